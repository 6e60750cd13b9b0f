//! Size limits, the byte layout the crate documentation promises, and the exact error for
//! each kind of bad input.

mod common;

use common::*;
use vmm_protocol::*;

#[test]
fn every_family_fits_one_ipc_payload() {
    assert_eq!(MAX_MESSAGE_SIZE, 960);
    for kind in MessageKind::ALL {
        assert!(kind.max_size() <= MAX_MESSAGE_SIZE, "{kind}: {}", kind.max_size());
    }
    assert_eq!(Request::MAX_SIZE, MessageKind::Request.max_size());
    assert_eq!(<Response as Message>::MAX_SIZE, Response::MAX_SIZE);
    assert_eq!(<ExitRecord as Message>::KIND, MessageKind::ExitRecord);
    assert_eq!(<ExitReply as Message>::KIND, MessageKind::ExitReply);
}

/// The computed maxima are exact: a worst-case value takes exactly that many bytes. (This
/// checks postcard's `MaxSize` arithmetic and our flag-set sizes against real encodings.)
#[test]
fn worst_cases_take_exactly_the_maximum() {
    for message in worst_cases() {
        let kind = message.kind();
        let bytes = message.encode();
        assert_eq!(bytes.len(), kind.max_size(), "{kind}");
        assert_eq!(AnyMessage::decode(kind, &bytes), Ok(message));
    }
}

#[test]
fn the_largest_variant_of_each_family_is_the_one_tested() {
    // Every other large variant, at its worst, is no longer than the worst case above.
    let full_values = Response::Values(hvec(&[u64::MAX; MAX_FIELDS]));
    let full_reads = Request::ReadFields(hvec(&[u32::MAX; MAX_FIELDS]));
    let full_stats = Response::Statistics(Statistics {
        exits: u64::MAX,
        exits_by_class: [u64::MAX; ExitClass::COUNT],
        kernel_invocations: u64::MAX,
        kernel_invocations_by_class: [u64::MAX; ExitClass::COUNT],
        requests: u64::MAX,
        forbidden: u64::MAX,
        malformed: u64::MAX,
        failed: u64::MAX,
        replies_rejected: u64::MAX,
        interrupts_raised: u64::MAX,
        events_injected: u64::MAX,
    });
    let full_registers = Request::WriteRegisters {
        registers: MAX_GPRS,
        mask: GprSet::all(),
    };
    for message in [
        AnyMessage::Response(full_values),
        AnyMessage::Request(full_reads),
        AnyMessage::Response(full_stats),
        AnyMessage::Request(full_registers),
    ] {
        assert!(message.encode().len() <= message.kind().max_size(), "{message:?}");
    }
}

#[test]
fn layout_matches_the_documentation() {
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    // A unit variant is its index: Run is the ninth Request variant.
    assert_eq!(Request::Run.encode(&mut buf).unwrap(), &[8]);
    // A u16 varint: 300 = 0b10_0101100 -> 0xAC 0x02.
    assert_eq!(
        Request::Hello { version: 300 }.encode(&mut buf).unwrap(),
        &[0, 0xAC, 0x02]
    );
    // A batch: variant, length, elements; u64::MAX takes 10 bytes.
    assert_eq!(
        Response::Values(hvec(&[1, u64::MAX])).encode(&mut buf).unwrap(),
        &[
            1, 2, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01
        ]
    );
    // An option is a 0/1 tag; a u8 is a raw byte.
    let inject = Request::Inject(EventRequest {
        vector: 0xEE,
        kind: None,
        error_code: Some(0),
        instruction_len: Some(2),
    });
    assert_eq!(inject.encode(&mut buf).unwrap(), &[4, 0xEE, 0, 1, 0, 1, 2]);
    // A flag set is its bits as a varint.
    let reply = ExitReply {
        seq: 1,
        actions: hvec(&[Action::SetStateGroups {
            class: ExitClass::Io,
            groups: StateGroups::GPRS | StateGroups::PENDING_EVENTS,
        }]),
    };
    assert_eq!(reply.encode(&mut buf).unwrap(), &[1, 1, 10, 0, 0x81, 0x02]);
    // Gpr wire bytes are the hardware register numbers.
    for gpr in Gpr::ALL {
        let action = ExitReply {
            seq: 0,
            actions: hvec(&[Action::SetRegister {
                register: Register::Gpr(gpr),
                value: 0,
            }]),
        };
        assert_eq!(action.encode(&mut buf).unwrap(), &[0, 1, 3, 0, gpr.number(), 0]);
    }
}

#[test]
fn unknown_variant_indexes_are_rejected() {
    // Request has 12 variants (0..=11).
    assert_eq!(Request::decode(&[11, 0]), Ok(Request::Dump { start: 0 }));
    assert_eq!(Request::decode(&[12]), Err(WireError::InvalidValue));
    assert_eq!(Request::decode(&[0x80, 0x01]), Err(WireError::InvalidValue));
    assert_eq!(
        Request::decode(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
        Err(WireError::InvalidValue)
    );
    // A variant index beyond u32 is a bad varint.
    assert_eq!(
        Request::decode(&[0xFF, 0xFF, 0xFF, 0xFF, 0x1F]),
        Err(WireError::BadVarint)
    );
    // Nested: SetControl with control index 7 (ControlId has 7 variants).
    assert_eq!(Request::decode(&[3, 7, 0, 0]), Err(WireError::InvalidValue));
    assert_eq!(
        Request::decode(&[3, 6, 0, 0]),
        Ok(Request::SetControl {
            control: ControlId::Entry,
            set: 0,
            clear: 0
        })
    );
    // ExitReply: Action index 12 does not exist; AccessSize index 4 does not exist.
    assert_eq!(ExitReply::decode(&[0, 1, 12]), Err(WireError::InvalidValue));
    assert_eq!(
        ExitReply::decode(&[0, 1, 1, 0, 4, 0]),
        Err(WireError::InvalidValue)
    );
    // Gpr 16 does not exist.
    assert_eq!(
        ExitReply::decode(&[0, 1, 1, 16, 0, 0]),
        Err(WireError::InvalidValue)
    );
}

#[test]
fn over_long_batches_are_rejected() {
    let mut bytes = vec![1, MAX_FIELDS as u8];
    bytes.extend(std::iter::repeat_n(7, MAX_FIELDS));
    assert!(matches!(Request::decode(&bytes), Ok(Request::ReadFields(f)) if f.len() == MAX_FIELDS));

    let mut bytes = vec![1, MAX_FIELDS as u8 + 1];
    bytes.extend(std::iter::repeat_n(7, MAX_FIELDS + 1));
    assert_eq!(Request::decode(&bytes), Err(WireError::InvalidValue));
    // A huge claimed length with little data: stops at the capacity or the end of input.
    assert_eq!(
        Request::decode(&[1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 7, 7]),
        Err(WireError::Truncated)
    );
    let mut bytes = vec![1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F];
    bytes.extend(std::iter::repeat_n(7, MAX_MESSAGE_SIZE));
    assert_eq!(Request::decode(&bytes), Err(WireError::InvalidValue));

    let mut bytes = vec![0, MAX_ACTIONS as u8 + 1];
    bytes.extend(std::iter::repeat_n(2, MAX_ACTIONS + 1)); // AdvanceRip
    assert_eq!(ExitReply::decode(&bytes), Err(WireError::InvalidValue));
    assert_eq!(
        ExitReply::decode(&bytes[..bytes.len() - 1]).map(|r| r.actions.len()),
        Err(WireError::Truncated)
    );

    // 16 instruction bytes in an MMIO exit.
    let record = ExitRecord {
        seq: 0,
        vcpu: 0,
        reason: 48,
        entry_failure: false,
        detail: ExitDetail::Mmio {
            gpa: 0,
            gla: None,
            access: MemoryAccess::Read,
            qualification: 0,
            instruction: hvec(&[0x90; MAX_INSTRUCTION_LEN]),
        },
        rip: 0,
        instruction_len: 0,
        state: GuestState::EMPTY,
        rejected: None,
    };
    let good = AnyMessage::ExitRecord(record).encode();
    // seq, vcpu, reason, entry_failure, variant 12, gpa, gla tag, access, qualification, length
    assert_eq!(
        &good[..10],
        &[0, 0, 48, 0, 12, 0, 0, 0, 0, MAX_INSTRUCTION_LEN as u8]
    );
    let mut bad = good[..9].to_vec();
    bad.push(MAX_INSTRUCTION_LEN as u8 + 1);
    bad.extend(std::iter::repeat_n(0x90, MAX_INSTRUCTION_LEN + 1));
    bad.extend_from_slice(&good[10 + MAX_INSTRUCTION_LEN..]);
    assert_eq!(ExitRecord::decode(&bad), Err(WireError::InvalidValue));
}

#[test]
fn bad_bools_and_option_tags_are_rejected() {
    let record = ExitRecord {
        seq: 5,
        vcpu: 0,
        reason: 12,
        entry_failure: false,
        detail: ExitDetail::Hlt,
        rip: 0,
        instruction_len: 1,
        state: GuestState::EMPTY,
        rejected: None,
    };
    let good = AnyMessage::ExitRecord(record).encode();
    // seq, vcpu, reason, entry_failure, Hlt (5), rip, len, nine None tags, rejected None
    assert_eq!(good, [5, 0, 12, 0, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut bad = good.clone();
    bad[3] = 2;
    assert_eq!(ExitRecord::decode(&bad), Err(WireError::BadTag));
    let mut bad = good.clone();
    bad[7] = 2;
    assert_eq!(ExitRecord::decode(&bad), Err(WireError::BadTag));
    let mut bad = good.clone();
    bad[16] = 0xFF;
    assert_eq!(ExitRecord::decode(&bad), Err(WireError::BadTag));
}

#[test]
fn overflowing_and_non_canonical_varints_are_rejected() {
    // u16: 65535 is 0xFF 0xFF 0x03; 65536 does not fit.
    assert_eq!(
        Request::decode(&[0, 0xFF, 0xFF, 0x03]),
        Ok(Request::Hello { version: u16::MAX })
    );
    assert_eq!(Request::decode(&[0, 0x80, 0x80, 0x04]), Err(WireError::BadVarint));
    assert_eq!(
        Request::decode(&[0, 0x80, 0x80, 0x80, 0x01]),
        Err(WireError::BadVarint)
    );
    // u64: 11 bytes never fit.
    let mut bytes = vec![3, 0];
    bytes.extend([0x80; 10]);
    bytes.extend([0x01, 0]);
    assert_eq!(Request::decode(&bytes), Err(WireError::BadVarint));
    // Redundant varint bytes: `decode` takes them as postcard does, `decode_canonical` refuses.
    let redundant: [(&[u8], Request); 4] = [
        (&[0, 0x81, 0x00], Request::Hello { version: 1 }),
        (&[0, 0x80, 0x80, 0x00], Request::Hello { version: 0 }),
        (&[0x88, 0x00], Request::Run),                          // variant index
        (&[1, 0x81, 0x00, 5], Request::ReadFields(hvec(&[5]))), // batch length
    ];
    for (bytes, request) in redundant {
        assert_eq!(Request::decode(bytes), Ok(request), "{bytes:x?}");
        assert_eq!(
            Request::decode_canonical(bytes),
            Err(WireError::NonCanonical),
            "{bytes:x?}"
        );
    }
    assert_eq!(
        Request::decode_canonical(&[1, 1, 5]),
        Ok(Request::ReadFields(hvec(&[5])))
    );
    // Other errors come first.
    assert_eq!(
        Request::decode_canonical(&[0x88, 0x00, 0]),
        Err(WireError::TrailingBytes { count: 1 })
    );
}

#[test]
fn unknown_flag_bits_are_rejected() {
    let groups_at = |bits: &[u8]| {
        let mut bytes = vec![0, 1, 10, 0];
        bytes.extend_from_slice(bits);
        ExitReply::decode(&bytes)
    };
    assert!(groups_at(&[0xFF, 0x03]).is_ok()); // all nine groups
    assert_eq!(groups_at(&[0x80, 0x04]), Err(WireError::InvalidValue)); // bit 9
    assert_eq!(groups_at(&[0xFF, 0xFF, 0x03]), Err(WireError::InvalidValue));

    // GprSet: bit 4 (RSP) is not a member.
    let mut write = AnyMessage::Request(Request::WriteRegisters {
        registers: GeneralRegisters::default(),
        mask: GprSet::RAX,
    })
    .encode();
    assert_eq!(write.last(), Some(&1));
    *write.last_mut().unwrap() = 1 << 4;
    assert_eq!(Request::decode(&write), Err(WireError::InvalidValue));
}

#[test]
fn empty_input_is_truncated_for_every_family() {
    for kind in MessageKind::ALL {
        assert_eq!(AnyMessage::decode(kind, &[]), Err(WireError::Truncated), "{kind}");
    }
}

#[test]
fn errors_display_one_line() {
    let wire = [
        WireError::BufferTooSmall,
        WireError::Truncated,
        WireError::TrailingBytes { count: 3 },
        WireError::BadVarint,
        WireError::BadTag,
        WireError::InvalidValue,
        WireError::NonCanonical,
        WireError::Unsupported,
    ];
    for error in wire {
        let text = error.to_string();
        assert!(!text.is_empty() && !text.contains('\n'), "{error:?}");
    }
    assert_eq!(
        WireError::TrailingBytes { count: 3 }.to_string(),
        "3 bytes after the end of the message"
    );
    assert_eq!(
        ErrorReport::at(ErrorCode::ReadOnly, 4).to_string(),
        "item 4: VMCS field is read-only"
    );
    assert_eq!(
        ErrorReport::new(ErrorCode::Kernel(3)).to_string(),
        "kernel error 3"
    );
    assert_eq!(
        ErrorCode::VersionMismatch { server: 1 }.to_string(),
        "protocol version mismatch (server speaks 1)"
    );
}
