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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec_of(any::<u8>(), 0..=MAX_MESSAGE_SIZE + 64)) {
        decode_all_families(&bytes);
    }

    /// Random bytes rarely get past the first byte; damaged valid messages reach deep.
    #[test]
    fn damaged_messages_never_panic(
        message in any_message(),
        edits in vec_of((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut bytes = message.encode();
        for (index, byte, edit) in edits {
            let at = index.index(bytes.len() + 1);
            match edit {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ if at < bytes.len() => { bytes.remove(at); }
                _ => bytes.push(byte),
            }
        }
        decode_all_families(&bytes);
    }
}
