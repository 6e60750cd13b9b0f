//! Property tests: round trips, and decoding hostile input never panics and never accepts
//! anything but one exact message.

mod common;

use common::*;
use proptest::collection::vec as vec_of;
use proptest::prelude::*;
use vmm_protocol::*;

/// Either outcome is fine; a panic fails the test. What `decode_canonical` accepts is exactly
/// the encoding of what it decoded to; `decode` accepts the same message, or a non-canonical
/// form of one.
fn decode_all_families(bytes: &[u8]) {
    for kind in MessageKind::ALL {
        let lenient = AnyMessage::decode(kind, bytes);
        match AnyMessage::decode_canonical(kind, bytes) {
            Ok(message) => {
                assert_eq!(message.encode(), bytes, "{kind}: accepted input is not canonical");
                assert_eq!(lenient, Ok(message), "{kind}");
            }
            Err(WireError::NonCanonical) => {
                let message = lenient.expect("decode accepts what is merely non-canonical");
                assert_ne!(message.encode(), bytes, "{kind}");
                assert!(
                    message.encode().len() < bytes.len(),
                    "{kind}: canonical is shortest"
                );
            }
            Err(error) => assert_eq!(lenient, Err(error), "{kind}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_message_round_trips_within_its_limit(message in any_message()) {
        let bytes = message.encode();
        prop_assert!(bytes.len() <= message.kind().max_size());
        prop_assert!(bytes.len() <= MAX_MESSAGE_SIZE);
        prop_assert_eq!(AnyMessage::decode_canonical(message.kind(), &bytes), Ok(message.clone()));
        prop_assert_eq!(AnyMessage::decode(message.kind(), &bytes), Ok(message));
    }

    #[test]
    fn every_proper_prefix_is_truncated(message in any_message()) {
        let bytes = message.encode();
        for len in 0..bytes.len() {
            prop_assert_eq!(
                AnyMessage::decode(message.kind(), &bytes[..len]),
                Err(WireError::Truncated),
                "prefix of {} bytes out of {}", len, bytes.len()
            );
        }
    }

    #[test]
    fn appended_bytes_are_rejected(message in any_message(), extra in vec_of(any::<u8>(), 1..8)) {
        let mut bytes = message.encode();
        bytes.extend_from_slice(&extra);
        prop_assert_eq!(
            AnyMessage::decode(message.kind(), &bytes),
            Err(WireError::TrailingBytes { count: extra.len() })
        );
    }

    #[test]
    fn encoding_into_a_short_buffer_fails_cleanly(message in any_message()) {
        let len = message.encode().len();
        let mut buf = vec![0u8; len - 1];
        let result = match &message {
            AnyMessage::Request(m) => m.encode(&mut buf).map(|b| b.len()),
            AnyMessage::Response(m) => m.encode(&mut buf).map(|b| b.len()),
            AnyMessage::ExitRecord(m) => m.encode(&mut buf).map(|b| b.len()),
            AnyMessage::ExitReply(m) => m.encode(&mut buf).map(|b| b.len()),
        };
        prop_assert_eq!(result, Err(WireError::BufferTooSmall));
    }
}

/// Applies `edits` to `bytes`: each (where, byte, kind) replaces (0), inserts (1) or removes
/// (2) a byte; at the end, a removal appends instead.
fn damage(bytes: &mut Vec<u8>, edits: &[(prop::sample::Index, u8, u8)]) {
    for &(index, byte, edit) in edits {
        let at = index.index(bytes.len() + 1);
        match edit {
            0 if at < bytes.len() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => bytes.push(byte),
        }
    }
}

/// A record with every state group and an error report: what `decode_into` must overwrite.
fn full_record() -> ExitRecord {
    ExitRecord {
        seq: 7,
        vcpu: 1,
        reason: 48,
        entry_failure: false,
        detail: ExitDetail::Mmio {
            gpa: 0xFEC0_0000,
            gla: Some(0xFEC0_0000),
            access: MemoryAccess::Write,
            qualification: 0x182,
            instruction: heapless::Vec::from_slice(&[0x89, 0x08]).unwrap(),
        },
        rip: 0x1000,
        instruction_len: 2,
        state: GuestState {
            gprs: Some(GeneralRegisters::default()),
            rsp: Some(1),
            rflags: Some(2),
            segments: Some(Segments::default()),
            descriptor_tables: Some(DescriptorTables::default()),
            control_registers: Some(ControlRegisters::default()),
            dr7: Some(0x400),
            interruptibility: Some(InterruptibilityState::default()),
            pending_events: Some(PendingEvents::default()),
        },
        rejected: Some(ErrorReport::at(ErrorCode::Forbidden, 3)),
    }
}

/// A reply with a full action list.
fn full_reply() -> ExitReply {
    let mut reply = ExitReply::new(9);
    while reply.actions.push(Action::AdvanceRip).is_ok() {}
    reply
}

/// `ExitRecord::encode`/`decode`, `Request::decode` for read requests, the families'
/// `decode_canonical`, `ExitReply::decode`, every `decode_into` and the `Message` trait's
/// methods take direct paths; the generic
/// `encode`/`decode`/`decode_canonical` go through serde. Both must give the same bytes and
/// the same results, errors included.
fn direct_and_serde_paths_agree(bytes: &[u8]) {
    assert_eq!(
        ExitRecord::decode(bytes),
        vmm_protocol::decode::<ExitRecord>(bytes),
        "{bytes:02x?}"
    );
    assert_eq!(
        Request::decode(bytes),
        vmm_protocol::decode::<Request>(bytes),
        "{bytes:02x?}"
    );
    // With the read-request tag in front, random bytes reach the direct path's checks.
    let mut read = vec![1];
    read.extend_from_slice(bytes);
    assert_eq!(
        Request::decode(&read),
        vmm_protocol::decode::<Request>(&read),
        "{read:02x?}"
    );
    assert_eq!(
        ExitReply::decode(bytes),
        vmm_protocol::decode::<ExitReply>(bytes),
        "{bytes:02x?}"
    );
    // Decoding into a used message gives what decoding gives, whatever it held before.
    let mut record = full_record();
    let into = record.decode_into(bytes).map(|()| record);
    assert_eq!(into, ExitRecord::decode(bytes), "{bytes:02x?}");
    let mut reply = full_reply();
    let into = reply.decode_into(bytes).map(|()| reply);
    assert_eq!(into, ExitReply::decode(bytes), "{bytes:02x?}");
    // The families' canonical decoding re-encodes on their own paths.
    assert_eq!(
        ExitRecord::decode_canonical(bytes),
        vmm_protocol::decode_canonical::<ExitRecord>(bytes)
    );
    assert_eq!(
        Request::decode_canonical(&read),
        vmm_protocol::decode_canonical::<Request>(&read)
    );
    assert_eq!(
        Response::decode_canonical(bytes),
        vmm_protocol::decode_canonical::<Response>(bytes)
    );
    assert_eq!(
        ExitReply::decode_canonical(bytes),
        vmm_protocol::decode_canonical::<ExitReply>(bytes)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn exit_record_direct_and_serde_paths_agree(record in exit_record(), cut in any::<prop::sample::Index>()) {
        let mut direct = [0u8; MAX_MESSAGE_SIZE];
        let mut serde = [0u8; MAX_MESSAGE_SIZE];
        let bytes = record.encode(&mut direct).unwrap().to_vec();
        prop_assert_eq!(&bytes, &vmm_protocol::encode(&record, &mut serde).unwrap().to_vec());
        prop_assert_eq!(<ExitRecord as Message>::encode(&record, &mut direct).map(|b| b.len()), Ok(bytes.len()));
        direct_and_serde_paths_agree(&bytes);
        prop_assert_eq!(<ExitRecord as Message>::decode(&bytes), Ok(record.clone()));
        // Short buffers fail alike.
        let short = cut.index(bytes.len());
        prop_assert_eq!(record.encode(&mut direct[..short]).map(|b| b.len()), Err(WireError::BufferTooSmall));
        prop_assert_eq!(
            vmm_protocol::encode(&record, &mut serde[..short]).map(|b| b.len()),
            Err(WireError::BufferTooSmall)
        );
    }

    #[test]
    fn exit_reply_direct_and_serde_paths_agree(reply in exit_reply(), cut in any::<prop::sample::Index>()) {
        let mut direct = [0u8; MAX_MESSAGE_SIZE];
        let mut serde = [0u8; MAX_MESSAGE_SIZE];
        let bytes = reply.encode(&mut direct).unwrap().to_vec();
        prop_assert_eq!(&bytes, &vmm_protocol::encode(&reply, &mut serde).unwrap().to_vec());
        direct_and_serde_paths_agree(&bytes);
        prop_assert_eq!(vmm_protocol::decode::<ExitReply>(&bytes), Ok(reply.clone()));
        let short = cut.index(bytes.len());
        prop_assert_eq!(reply.encode(&mut direct[..short]).map(|b| b.len()), Err(WireError::BufferTooSmall));
        prop_assert_eq!(
            vmm_protocol::encode(&reply, &mut serde[..short]).map(|b| b.len()),
            Err(WireError::BufferTooSmall)
        );
    }

    #[test]
    fn messages_round_trip_through_json(message in any_message()) {
        // The human-readable forms (the CLI's JSON) of block-encoded types are their fields.
        let json = match &message {
            AnyMessage::Request(m) => serde_json::to_string(m),
            AnyMessage::Response(m) => serde_json::to_string(m),
            AnyMessage::ExitRecord(m) => serde_json::to_string(m),
            AnyMessage::ExitReply(m) => serde_json::to_string(m),
        }
        .unwrap();
        let back = match message.kind() {
            MessageKind::Request => serde_json::from_str(&json).map(AnyMessage::Request),
            MessageKind::Response => serde_json::from_str(&json).map(AnyMessage::Response),
            MessageKind::ExitRecord => serde_json::from_str(&json).map(AnyMessage::ExitRecord),
            MessageKind::ExitReply => serde_json::from_str(&json).map(AnyMessage::ExitReply),
        }
        .unwrap();
        prop_assert_eq!(back, message);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec_of(any::<u8>(), 0..=MAX_MESSAGE_SIZE + 64)) {
        decode_all_families(&bytes);
        direct_and_serde_paths_agree(&bytes);
    }

    /// Each way a reply's bytes can go wrong, on both paths alike.
    #[test]
    fn damaged_replies_fail_alike_on_both_paths(
        reply in exit_reply(),
        edits in vec_of((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..3),
    ) {
        let mut bytes = vec![0u8; MAX_MESSAGE_SIZE];
        let len = reply.encode(&mut bytes).unwrap().len();
        bytes.truncate(len);
        damage(&mut bytes, &edits);
        prop_assert_eq!(ExitReply::decode(&bytes), vmm_protocol::decode::<ExitReply>(&bytes), "{:02x?}", bytes);
    }

    /// Random bytes rarely get past the first byte; damaged valid messages reach deep.
    #[test]
    fn damaged_messages_never_panic(
        message in any_message(),
        edits in vec_of((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut bytes = message.encode();
        damage(&mut bytes, &edits);
        decode_all_families(&bytes);
        direct_and_serde_paths_agree(&bytes);
    }
}
