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
    // A batch: variant, then one byte string of the elements' little-endian blocks (its
    // length is 8 bytes per u64).
    assert_eq!(
        Response::Values(hvec(&[1, u64::MAX])).encode(&mut buf).unwrap(),
        &[
            1, 16, 1, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF
        ]
    );
    // Field encodings are 4 bytes; a field-value pair is 4 + 8.
    assert_eq!(
        Request::ReadFields(hvec(&[0x681E])).encode(&mut buf).unwrap(),
        &[1, 4, 0x1E, 0x68, 0, 0]
    );
    assert_eq!(
        Request::WriteFields(hvec(&[FieldValue {
            encoding: 0x4002,
            value: 0x1234
        }]))
        .encode(&mut buf)
        .unwrap(),
        &[2, 12, 0x02, 0x40, 0, 0, 0x34, 0x12, 0, 0, 0, 0, 0, 0]
    );
    // A register group is one byte string: 15 registers of 8 bytes, RAX first.
    let registers = GeneralRegisters {
        rax: 0x0102_0304_0506_0708,
        r15: 0xFF,
        ..GeneralRegisters::default()
    };
    let bytes = Response::Registers(registers).encode(&mut buf).unwrap().to_vec();
    assert_eq!(bytes.len(), 2 + 120);
    assert_eq!(&bytes[..10], &[4, 120, 8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(&bytes[2 + 14 * 8..], &[0xFF, 0, 0, 0, 0, 0, 0, 0]);
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
    // A full batch of field encodings: 32 blocks of 4 bytes, a 128-byte string.
    let mut bytes = vec![1, 0x80, 0x01];
    bytes.extend(std::iter::repeat_n(7, 4 * MAX_FIELDS));
    assert!(matches!(
        Request::decode(&bytes),
        Ok(Request::ReadFields(f)) if f.len() == MAX_FIELDS && f.iter().all(|&e| e == 0x0707_0707)
    ));
    // One more block, present in full.
    let mut bytes = vec![1, 0x84, 0x01];
    bytes.extend(std::iter::repeat_n(7, 4 * (MAX_FIELDS + 1)));
    assert_eq!(Request::decode(&bytes), Err(WireError::InvalidValue));
    // Not a whole number of blocks.
    assert_eq!(
        Request::decode(&[1, 5, 1, 2, 3, 4, 5]),
        Err(WireError::InvalidValue)
    );
    assert_eq!(
        Response::Values(hvec(&[1]))
            .encode(&mut [0u8; 16])
            .map(|b| b.len()),
        Ok(10)
    );
    assert_eq!(
        Response::decode(&[1, 7, 1, 0, 0, 0, 0, 0, 0]),
        Err(WireError::InvalidValue)
    );
    // A huge claimed length with little data ends at the end of the input.
    assert_eq!(
        Request::decode(&[1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 7, 7]),
        Err(WireError::Truncated)
    );
    // A length far beyond the capacity, with the data present.
    let mut bytes = vec![2, 0x80, 0x08];
    bytes.extend(std::iter::repeat_n(7, 1024));
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
    let block = record_block(&good);
    // The detail after the 22-byte head: variant 12, gpa, gla tag, access, qualification,
    // then the instruction bytes' count and the bytes.
    let detail = &block[22..];
    assert_eq!(detail[0], 12);
    assert_eq!(detail[1 + 8 + 1 + 1 + 8], MAX_INSTRUCTION_LEN as u8);
    let count_at = 22 + 1 + 8 + 1 + 1 + 8;
    let mut bad = block[..count_at].to_vec();
    bad.push(MAX_INSTRUCTION_LEN as u8 + 1);
    bad.extend(std::iter::repeat_n(0x90, MAX_INSTRUCTION_LEN + 1));
    bad.extend_from_slice(&block[count_at + 1 + MAX_INSTRUCTION_LEN..]);
    assert_eq!(
        ExitRecord::decode(&record_message(&bad, &[0])),
        Err(WireError::InvalidValue)
    );
}

/// The record block of an encoded exit record (after its 1- or 2-byte length).
fn record_block(message: &[u8]) -> Vec<u8> {
    let (len, start) = if message[0] < 0x80 {
        (usize::from(message[0]), 1)
    } else {
        (usize::from(message[0] & 0x7F) | usize::from(message[1]) << 7, 2)
    };
    message[start..start + len].to_vec()
}

/// An exit record message from a record block and the encoded `rejected`.
fn record_message(block: &[u8], rejected: &[u8]) -> Vec<u8> {
    let mut message = if block.len() < 0x80 {
        vec![block.len() as u8]
    } else {
        vec![(block.len() as u8) | 0x80, (block.len() >> 7) as u8]
    };
    message.extend_from_slice(block);
    message.extend_from_slice(rejected);
    message
}

#[test]
fn exit_record_layout() {
    let record = ExitRecord {
        seq: 0x0102_0304_0506_0708,
        vcpu: 3,
        reason: 30,
        entry_failure: false,
        detail: ExitDetail::Io {
            port: 0x3F8,
            size: AccessSize::Byte,
            direction: IoDirection::Out,
            string: false,
            rep: true,
            value: Some(0x41),
        },
        rip: 0xFFFF_FFFF_8100_0010,
        instruction_len: 2,
        state: GuestState {
            rflags: Some(0x202),
            ..GuestState::EMPTY
        },
        rejected: Some(ErrorReport::at(ErrorCode::InvalidAction, 1)),
    };
    let bytes = AnyMessage::ExitRecord(record.clone()).encode();
    #[rustfmt::skip]
    let block = [
        8, 7, 6, 5, 4, 3, 2, 1, // seq
        3, 0,                   // vcpu
        30, 0,                  // reason
        0,                      // entry_failure
        0x10, 0, 0, 0x81, 0xFF, 0xFF, 0xFF, 0xFF, // rip
        2,                      // instruction_len
        8,                      // detail: Io
        0xF8, 0x03,             // port
        0,                      // size: Byte
        1,                      // direction: Out
        0, 1,                   // string, rep
        1, 0x41, 0, 0, 0,       // value: Some(0x41)
        4, 0,                   // state groups: RFLAGS
        0x02, 0x02, 0, 0, 0, 0, 0, 0, // rflags
    ];
    // rejected: Some, InvalidAction (11), Some(1).
    assert_eq!(bytes, record_message(&block, &[1, 11, 1, 1]));
    assert_eq!(ExitRecord::decode(&bytes), Ok(record));
}

#[test]
fn bad_bools_and_option_tags_are_rejected() {
    let record = ExitRecord {
        seq: 5,
        vcpu: 0,
        reason: 30,
        entry_failure: false,
        detail: ExitDetail::Io {
            port: 0x60,
            size: AccessSize::Byte,
            direction: IoDirection::In,
            string: false,
            rep: false,
            value: None,
        },
        rip: 0,
        instruction_len: 1,
        state: GuestState::EMPTY,
        rejected: None,
    };
    let good = AnyMessage::ExitRecord(record).encode();
    let block = record_block(&good);
    // Head (22), Io (8), port, size, direction, string, rep, value tag, groups (2).
    assert_eq!(block.len(), 22 + 8 + 2);
    assert_eq!(good, record_message(&block, &[0]));
    // Inside the block a bool or tag byte other than 0 or 1 is an invalid block.
    for at in [12, 22 + 5, 22 + 6, 22 + 7] {
        let mut bad = block.clone();
        bad[at] = 2;
        assert_eq!(
            ExitRecord::decode(&record_message(&bad, &[0])),
            Err(WireError::InvalidValue),
            "byte {at}"
        );
    }
    // Outside blocks postcard's tags apply: `rejected`.
    assert_eq!(
        ExitRecord::decode(&record_message(&block, &[2])),
        Err(WireError::BadTag)
    );
    // An option tag in a request.
    assert_eq!(Request::decode(&[4, 0xEE, 2, 0, 0]), Err(WireError::BadTag));
}

#[test]
fn malformed_blocks_are_rejected() {
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    // A register block one byte short or long.
    let good = Response::Registers(GeneralRegisters::default())
        .encode(&mut buf)
        .unwrap()
        .to_vec();
    let mut short = vec![4, 119];
    short.extend_from_slice(&good[2..121]);
    assert_eq!(Response::decode(&short), Err(WireError::InvalidValue));
    let mut long = vec![4, 121];
    long.extend_from_slice(&good[2..]);
    long.push(0);
    assert_eq!(Response::decode(&long), Err(WireError::InvalidValue));
    assert_eq!(
        Response::decode(&good),
        Ok(Response::Registers(GeneralRegisters::default()))
    );

    // An exit record block: unknown detail variant, unknown group bit, a group missing its
    // block, a block with bytes left over.
    let record = ExitRecord {
        seq: 1,
        vcpu: 0,
        reason: 12,
        entry_failure: false,
        detail: ExitDetail::Hlt,
        rip: 0,
        instruction_len: 1,
        state: GuestState::EMPTY,
        rejected: None,
    };
    let block = record_block(&AnyMessage::ExitRecord(record.clone()).encode());
    assert_eq!(block.len(), 22 + 1 + 2);
    let decode = |block: &[u8]| ExitRecord::decode(&record_message(block, &[0]));
    assert_eq!(decode(&block), Ok(record));
    let mut bad = block.clone();
    bad[22] = 16;
    assert_eq!(decode(&bad), Err(WireError::InvalidValue));
    let mut bad = block.clone();
    bad[24] = 0x02; // bit 9
    assert_eq!(decode(&bad), Err(WireError::InvalidValue));
    let mut bad = block.clone();
    bad[23] = 0x40; // DR7, but no 8 bytes follow
    assert_eq!(decode(&bad), Err(WireError::InvalidValue));
    bad.extend_from_slice(&[0; 8]);
    assert!(decode(&bad).is_ok());
    bad.push(0);
    assert_eq!(decode(&bad), Err(WireError::InvalidValue));
    // A block shorter than its fixed head.
    assert_eq!(decode(&block[..21]), Err(WireError::InvalidValue));
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
        (&[0x88, 0x00], Request::Run), // variant index
        (&[1, 0x84, 0x00, 5, 0, 0, 0], Request::ReadFields(hvec(&[5]))), // batch length
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
        Request::decode_canonical(&[1, 4, 5, 0, 0, 0]),
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

#[test]
fn block_lengths_are_postcard_varints() {
    // The exit record and read requests are decoded without serde; their byte-string lengths
    // must fail exactly as postcard's do.
    let cases: [(&[u8], WireError); 5] = [
        (&[0x80, 0x80], WireError::Truncated),
        (&[0xFF; 10], WireError::BadVarint),
        (
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02],
            WireError::BadVarint,
        ),
        (
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
            WireError::Truncated,
        ),
        (&[0x05, 1, 2], WireError::Truncated),
    ];
    for (bytes, error) in cases {
        assert_eq!(ExitRecord::decode(bytes), Err(error), "{bytes:x?}");
        assert_eq!(decode::<ExitRecord>(bytes), Err(error), "{bytes:x?}");
        let read: Vec<u8> = [1].iter().chain(bytes).copied().collect();
        assert_eq!(Request::decode(&read), Err(error), "{read:x?}");
        assert_eq!(decode::<Request>(&read), Err(error), "{read:x?}");
    }
    // Redundant length bytes decode (not canonically).
    let read = [1, 0x84, 0x80, 0x00, 5, 0, 0, 0];
    assert_eq!(Request::decode(&read), Ok(Request::ReadFields(hvec(&[5]))));
    assert_eq!(Request::decode_canonical(&read), Err(WireError::NonCanonical));
}
