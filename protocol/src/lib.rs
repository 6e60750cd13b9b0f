//! The messages that cross component boundaries in the VMM service, and their wire format.
//!
//! Four message families, one per direction of each endpoint:
//!
//! | family | direction | type |
//! |---|---|---|
//! | request | client (controller, monitor, device model) → VMM server | [`Request`] |
//! | response | VMM server → client | [`Response`] |
//! | exit record | VMM server → device model, one per VM exit | [`ExitRecord`] |
//! | exit reply | device model → VMM server, answers one record | [`ExitReply`] |
//!
//! Every type here is plain data: no allocation, `no_std`, fixed-capacity
//! [`heapless::Vec`]s where a message carries a batch. Encoding and decoding never
//! allocate and never panic: [`encode`], [`decode`], [`decode_canonical`], or the per-family
//! methods (`Request::decode(bytes)`, `reply.encode(&mut buf)`, also through the [`Message`]
//! trait for generic code).
//!
//! ```
//! use vmm_protocol::{Action, ExitReply, MAX_MESSAGE_SIZE};
//!
//! let mut reply = ExitReply::new(7);
//! reply.actions.push(Action::CompleteIo { value: 0x60 }).unwrap();
//! reply.actions.push(Action::AdvanceRip).unwrap();
//! let mut buf = [0u8; MAX_MESSAGE_SIZE];
//! let bytes = reply.encode(&mut buf).unwrap();
//! // seq 7, two actions: CompleteIo (0) with 0x60, AdvanceRip (2).
//! assert_eq!(bytes, [7, 2, 0, 0x60, 2]);
//! assert_eq!(ExitReply::decode(bytes), Ok(reply));
//! ```
//!
//! # Wire format
//!
//! Messages are [postcard](https://docs.rs/postcard) 1.x encodings of the types in this
//! crate, with no framing, checksum or COBS: one message is one transport payload, and the
//! transport carries its exact byte length (seL4 message registers count words, so an seL4
//! transport must carry the byte count itself, e.g. in the message label).
//!
//! - `u8` is one raw byte; `bool` is one byte, `0` or `1` and nothing else.
//! - `u16`, `u32`, `u64` are unsigned LEB128 varints: 7 bits per byte, low bits first, the high
//!   bit set on every byte but the last. Worst cases: 3, 5 and 10 bytes; values below 128 take
//!   one byte.
//! - A struct is its fields in declaration order, with no names and no padding.
//! - An enum is its variant index (declaration order, from 0) as a varint, then that
//!   variant's fields. Reordering or inserting variants therefore changes the wire format.
//! - `Option<T>` is a byte `0` (none) or `1` followed by `T`.
//! - A byte string is its length as a varint, then the bytes.
//! - A fixed array `[T; N]` is its `N` elements, with no length.
//! - Flag sets ([`StateGroups`], [`GprSet`]) are their bits as a varint; unknown bits are an
//!   error.
//! - The actions of an [`ExitReply`] are their count as a varint, then the actions; a count
//!   above [`MAX_ACTIONS`] is an error.
//!
//! Register groups, guest state, batches of numbers and the exit record travel as *blocks*
//! instead: one byte string holding the values in fixed-width little-endian form, in
//! declaration order, with no padding. A block costs one length check and one copy where
//! per-field varints cost a loop and a trip through serde for every number (see
//! `benches/wire.rs`).
//!
//! - Register groups ([`GeneralRegisters`], [`Segment`], [`Segments`], [`DescriptorTables`],
//!   [`ControlRegisters`], [`InterruptibilityState`], [`PendingEvents`]): the fields, `u16`,
//!   `u32`, `u64` in 2, 4 and 8 bytes. [`GeneralRegisters`] is 120 bytes, RAX first.
//! - Batches of numbers ([`Request::ReadFields`], [`Request::WriteFields`],
//!   [`Response::Values`], [`Response::Written`], [`DumpPage::entries`]): the elements back
//!   to back, field encodings in 4 bytes, values in 8, a [`FieldValue`] in 12 (encoding, then
//!   value); a length that is not a whole number of elements, or more than the capacity, is
//!   an error.
//! - [`GuestState`]: the [`StateGroups`] present (2 bytes), then the block of each present
//!   group in field order (`rsp`, `rflags` and `dr7` in 8 bytes).
//! - [`ExitRecord`]: a postcard pair of the *record block* and `rejected` (an ordinary
//!   `Option<ErrorReport>`). The record block is `seq` (8 bytes), `vcpu` (2), `reason` (2),
//!   `entry_failure` (1), `rip` (8), `instruction_len` (1), the [`ExitDetail`] (its variant
//!   index in one byte, then the variant's fields), then the guest state as above. Within the
//!   block a fieldless enum is its variant index in one byte, a `bool` is `0` or `1`, an
//!   `Option` is a `0`/`1` tag followed by the value when `1`, and [`InstructionBytes`] are
//!   their count in one byte followed by the bytes.
//!
//! A block must be consumed exactly. In human-readable formats (JSON) all these types keep
//! their ordinary struct and list forms.
//!
//! Decoding is strict: truncated input, bytes after the message, unknown variant indexes,
//! over-long batches, unknown flag bits, bytes other than 0/1 where a `bool` or an option
//! tag belongs, varints that overflow their type and blocks of the wrong length are all
//! [`WireError`]s. Like postcard, [`decode`] accepts varints with redundant bytes (`0x80 0x00`
//! for 0), which decode to the same value; [`decode_canonical`] rejects them too
//! ([`WireError::NonCanonical`]), so that an accepted message has exactly one byte form, at
//! the price of one more encoding pass.
//!
//! The exit record's `encode`/`decode` methods (and the [`Message`] trait's) write and parse
//! its blocks directly rather than through serde, [`Request::decode`] decodes read requests
//! directly, and the families' `decode_canonical` methods re-encode with these. The generic
//! [`encode`], [`decode`] and [`decode_canonical`] go through serde; both paths produce and
//! accept the same bytes, with the same errors (property tests check).
//!
//! # Limits
//!
//! Every message fits one seL4 IPC payload: 120 message registers of 8 bytes,
//! [`MAX_MESSAGE_SIZE`] = 960 bytes. Each family's worst-case encoding is computed at compile
//! time ([`Request::MAX_SIZE`], [`Response::MAX_SIZE`], [`ExitRecord::MAX_SIZE`],
//! [`ExitReply::MAX_SIZE`]) and checked against that limit by a `const` assertion; the tests
//! encode a worst-case value of each family and check that it takes exactly that many bytes.
//!
//! # Versioning
//!
//! [`PROTOCOL_VERSION`] names the wire format. A client starts with [`Request::Hello`]; a
//! server that speaks another version answers [`ErrorCode::VersionMismatch`]. Changing the
//! wire format in any way (a field, a variant, an order, a capacity) means bumping
//! `PROTOCOL_VERSION` and regenerating the golden vectors (`protocol/tests/golden.txt`) in the
//! same commit; the golden test fails when the vectors change under an unchanged version.
#![no_std]
#![deny(missing_docs)]

mod block;
mod common;
mod exit;
mod exit_block;
mod reply_codec;
mod request;
mod wire;

pub use common::{
    AccessSize, ControlId, EventKind, EventRequest, ExitClass, FieldValue, GeneralRegisters, Gpr, GprSet,
    Register, StateGroups,
};
pub use exit::{
    Action, ControlRegisters, CrAccessKind, DescriptorTables, ExitDetail, ExitRecord, ExitReply, GuestState,
    InstructionBytes, InterruptibilityState, IoDirection, MAX_ACTIONS, MAX_INSTRUCTION_LEN, MemoryAccess,
    NO_EXIT_REASON, PendingEvents, Segment, Segments,
};
pub use request::{
    DUMP_PAGE_ENTRIES, DumpPage, ErrorCode, ErrorReport, MAX_FIELDS, Request, Response, Statistics,
};
pub use wire::{Message, MessageKind, WireError, decode, decode_canonical, encode};

/// Re-exported so users name the same `heapless` version as the message types.
pub use heapless;

/// The wire-format version. Bumped with every change to any encoding (see the crate docs).
pub const PROTOCOL_VERSION: u16 = 2;

/// The largest message any endpoint accepts: one seL4 IPC payload of 120 message registers
/// of 8 bytes each.
pub const MAX_MESSAGE_SIZE: usize = 120 * 8;
