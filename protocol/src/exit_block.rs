//! The binary forms of [`ExitRecord`] and [`GuestState`]: blocks (see [`crate::block`]).
//!
//! One record per VM exit makes the exit record the hottest message. Its binary form is a
//! postcard tuple of two items:
//!
//! 1. the *record block*, one byte string: `seq` (`u64`), `vcpu` (`u16`), `reason` (`u16`),
//!    `entry_failure` (`bool`), `rip` (`u64`), `instruction_len` (`u8`), then the
//!    [`ExitDetail`] block, then the [`GuestState`] block;
//! 2. `rejected`, an ordinary postcard `Option<ErrorReport>` (absent in the common case).
//!
//! The detail block is the variant's index as one byte (declaration order), then the
//! variant's fields in order; the guest-state block is the [`StateGroups`] present (`u16`),
//! then the block of each present group in field order. Inside blocks, fieldless enums are
//! their variant index as one byte, a `bool` is `0`/`1`, an `Option` a `0`/`1` tag followed
//! by the value when `1`, the instruction bytes their count as one byte and then the bytes.
//! A block decodes only if it is exactly consumed; every other inconsistency (a tag or
//! `bool` byte above 1, an unknown variant index or group bit) is an invalid value.
//!
//! Human-readable formats see the derived struct forms (private mirrors with the same
//! fields), so the `vmm` CLI's JSON shows named fields.

use core::fmt;

use postcard::experimental::max_size::MaxSize;
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::block::{Block, FixedBlock, Reader, Writer, block_index_enum, block_struct, byte_string_size};
use crate::common::{GeneralRegisters, StateGroups};
use crate::exit::{
    ControlRegisters, CrAccessKind, DescriptorTables, ExitDetail, ExitRecord, GuestState,
    InterruptibilityState, IoDirection, MemoryAccess, PendingEvents, Segments,
};
use crate::request::ErrorReport;

block_index_enum! {
    IoDirection => [IoDirection::In, IoDirection::Out];
    MemoryAccess => [MemoryAccess::Read, MemoryAccess::Write, MemoryAccess::Fetch];
}

/// Variant index byte, then the variant's fields.
impl Block for CrAccessKind {
    /// The variant index, then the largest variant: LMSW's.
    const MAX_SIZE: usize = 1 + u16::SIZE + bool::SIZE;

    #[inline(always)]
    fn put(&self, out: &mut Writer<'_>) -> Option<()> {
        match *self {
            CrAccessKind::MovToCr { gpr } => {
                0u8.put(out)?;
                gpr.put(out)
            }
            CrAccessKind::MovFromCr { gpr } => {
                1u8.put(out)?;
                gpr.put(out)
            }
            CrAccessKind::Clts => 2u8.put(out),
            CrAccessKind::Lmsw {
                source_data,
                memory_operand,
            } => {
                3u8.put(out)?;
                source_data.put(out)?;
                memory_operand.put(out)
            }
        }
    }

    #[inline]
    fn take(input: &mut Reader<'_>) -> Option<Self> {
        Some(match u8::take(input)? {
            0 => CrAccessKind::MovToCr {
                gpr: Block::take(input)?,
            },
            1 => CrAccessKind::MovFromCr {
                gpr: Block::take(input)?,
            },
            2 => CrAccessKind::Clts,
            3 => CrAccessKind::Lmsw {
                source_data: Block::take(input)?,
                memory_operand: Block::take(input)?,
            },
            _ => return None,
        })
    }
}

/// Variant index byte (declaration order), then the variant's fields.
impl Block for ExitDetail {
    /// The variant index, then the largest variant: MMIO's.
    const MAX_SIZE: usize = 1
        + u64::SIZE
        + <Option<u64>>::MAX_SIZE
        + MemoryAccess::SIZE
        + u64::SIZE
        + crate::InstructionBytes::MAX_SIZE;

    #[inline(always)]
    fn put(&self, out: &mut Writer<'_>) -> Option<()> {
        match self {
            ExitDetail::Exception {
                vector,
                kind,
                error_code,
            } => {
                0u8.put(out)?;
                vector.put(out)?;
                kind.put(out)?;
                error_code.put(out)
            }
            ExitDetail::TripleFault => 1u8.put(out),
            ExitDetail::InterruptWindow => 2u8.put(out),
            ExitDetail::NmiWindow => 3u8.put(out),
            ExitDetail::Cpuid { leaf, subleaf } => {
                4u8.put(out)?;
                leaf.put(out)?;
                subleaf.put(out)
            }
            ExitDetail::Hlt => 5u8.put(out),
            ExitDetail::Vmcall => 6u8.put(out),
            ExitDetail::CrAccess { cr, access } => {
                7u8.put(out)?;
                cr.put(out)?;
                access.put(out)
            }
            ExitDetail::Io {
                port,
                size,
                direction,
                string,
                rep,
                value,
            } => {
                8u8.put(out)?;
                port.put(out)?;
                size.put(out)?;
                direction.put(out)?;
                string.put(out)?;
                rep.put(out)?;
                value.put(out)
            }
            ExitDetail::Rdmsr { index } => {
                9u8.put(out)?;
                index.put(out)
            }
            ExitDetail::Wrmsr { index, value } => {
                10u8.put(out)?;
                index.put(out)?;
                value.put(out)
            }
            ExitDetail::InvalidGuestState { qualification } => {
                11u8.put(out)?;
                qualification.put(out)
            }
            ExitDetail::Mmio {
                gpa,
                gla,
                access,
                qualification,
                instruction,
            } => {
                12u8.put(out)?;
                gpa.put(out)?;
                gla.put(out)?;
                access.put(out)?;
                qualification.put(out)?;
                instruction.put(out)
            }
            ExitDetail::EptMisconfig { gpa } => {
                13u8.put(out)?;
                gpa.put(out)
            }
            ExitDetail::VmInstructionError { error } => {
                14u8.put(out)?;
                error.put(out)
            }
            ExitDetail::Unknown { qualification } => {
                15u8.put(out)?;
                qualification.put(out)
            }
        }
    }

    #[inline]
    fn take(input: &mut Reader<'_>) -> Option<Self> {
        Some(match u8::take(input)? {
            0 => ExitDetail::Exception {
                vector: Block::take(input)?,
                kind: Block::take(input)?,
                error_code: Block::take(input)?,
            },
            1 => ExitDetail::TripleFault,
            2 => ExitDetail::InterruptWindow,
            3 => ExitDetail::NmiWindow,
            4 => ExitDetail::Cpuid {
                leaf: Block::take(input)?,
                subleaf: Block::take(input)?,
            },
            5 => ExitDetail::Hlt,
            6 => ExitDetail::Vmcall,
            7 => ExitDetail::CrAccess {
                cr: Block::take(input)?,
                access: Block::take(input)?,
            },
            8 => ExitDetail::Io {
                port: Block::take(input)?,
                size: Block::take(input)?,
                direction: Block::take(input)?,
                string: Block::take(input)?,
                rep: Block::take(input)?,
                value: Block::take(input)?,
            },
            9 => ExitDetail::Rdmsr {
                index: Block::take(input)?,
            },
            10 => ExitDetail::Wrmsr {
                index: Block::take(input)?,
                value: Block::take(input)?,
            },
            11 => ExitDetail::InvalidGuestState {
                qualification: Block::take(input)?,
            },
            12 => ExitDetail::Mmio {
                gpa: Block::take(input)?,
                gla: Block::take(input)?,
                access: Block::take(input)?,
                qualification: Block::take(input)?,
                instruction: Block::take(input)?,
            },
            13 => ExitDetail::EptMisconfig {
                gpa: Block::take(input)?,
            },
            14 => ExitDetail::VmInstructionError {
                error: Block::take(input)?,
            },
            15 => ExitDetail::Unknown {
                qualification: Block::take(input)?,
            },
            _ => return None,
        })
    }
}

// ---- guest state

/// The groups present, then every group's block.
impl Block for GuestState {
    const MAX_SIZE: usize = u16::SIZE
        + GeneralRegisters::SIZE
        + u64::SIZE
        + u64::SIZE
        + Segments::SIZE
        + DescriptorTables::SIZE
        + ControlRegisters::SIZE
        + u64::SIZE
        + InterruptibilityState::SIZE
        + PendingEvents::SIZE;

    #[inline(always)]
    fn put(&self, out: &mut Writer<'_>) -> Option<()> {
        #[inline(always)]
        fn put_group<T: Block>(group: &Option<T>, out: &mut Writer<'_>) -> Option<()> {
            match group {
                Some(value) => value.put(out),
                None => Some(()),
            }
        }
        self.groups().bits().put(out)?;
        put_group(&self.gprs, out)?;
        put_group(&self.rsp, out)?;
        put_group(&self.rflags, out)?;
        put_group(&self.segments, out)?;
        put_group(&self.descriptor_tables, out)?;
        put_group(&self.control_registers, out)?;
        put_group(&self.dr7, out)?;
        put_group(&self.interruptibility, out)?;
        put_group(&self.pending_events, out)
    }

    #[inline]
    fn take(input: &mut Reader<'_>) -> Option<Self> {
        let mut state = GuestState::EMPTY;
        take_guest_state(&mut state, input)?;
        Some(state)
    }
}

/// Takes a guest-state block into `state`, whose groups must all be `None`.
#[inline(always)]
fn take_guest_state(state: &mut GuestState, input: &mut Reader<'_>) -> Option<()> {
    #[inline(always)]
    fn take_group<T: Block>(group: &mut Option<T>, wanted: bool, input: &mut Reader<'_>) -> Option<()> {
        if wanted {
            *group = Some(T::take(input)?);
        }
        Some(())
    }
    let groups = StateGroups::from_bits(u16::take(input)?)?;
    let wants = |group| groups.contains(group);
    take_group(&mut state.gprs, wants(StateGroups::GPRS), input)?;
    take_group(&mut state.rsp, wants(StateGroups::RSP), input)?;
    take_group(&mut state.rflags, wants(StateGroups::RFLAGS), input)?;
    take_group(&mut state.segments, wants(StateGroups::SEGMENTS), input)?;
    take_group(
        &mut state.descriptor_tables,
        wants(StateGroups::DESCRIPTOR_TABLES),
        input,
    )?;
    take_group(
        &mut state.control_registers,
        wants(StateGroups::CONTROL_REGISTERS),
        input,
    )?;
    take_group(&mut state.dr7, wants(StateGroups::DR7), input)?;
    take_group(
        &mut state.interruptibility,
        wants(StateGroups::INTERRUPTIBILITY),
        input,
    )?;
    take_group(
        &mut state.pending_events,
        wants(StateGroups::PENDING_EVENTS),
        input,
    )
}

/// A guest state standing alone: its block as one byte string.
impl Serialize for GuestState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return mirror::GuestState::from(self).serialize(serializer);
        }
        let mut buf = [0u8; GuestState::MAX_SIZE];
        let mut out = Writer::new(&mut buf);
        self.put(&mut out)
            .ok_or_else(|| serde::ser::Error::custom(BLOCK_OVERFLOW))?;
        let len = GuestState::MAX_SIZE - out.remaining();
        serializer.serialize_bytes(buf.get(..len).unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for GuestState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            return mirror::GuestState::deserialize(deserializer).map(GuestState::from);
        }
        deserializer.deserialize_bytes(BlockOf(parse_guest_state_block))
    }
}

/// Parses a whole guest-state block.
fn parse_guest_state_block(block: &[u8]) -> Option<GuestState> {
    let input = &mut Reader::new(block);
    let state = GuestState::take(input)?;
    input.is_empty().then_some(state)
}

impl MaxSize for GuestState {
    const POSTCARD_MAX_SIZE: usize = byte_string_size(GuestState::MAX_SIZE);
}

// ---- exit record

/// Largest record block: the fixed fields, the largest detail, every state group.
const RECORD_BLOCK_MAX: usize = RecordHead::SIZE + ExitDetail::MAX_SIZE + GuestState::MAX_SIZE;

block_struct! {
    /// The fixed-size fields at the start of a record block.
    #[derive(Clone, Copy)]
    pub struct RecordHead {
        /// [`ExitRecord::seq`].
        pub seq: u64,
        /// [`ExitRecord::vcpu`].
        pub vcpu: u16,
        /// [`ExitRecord::reason`].
        pub reason: u16,
        /// [`ExitRecord::entry_failure`].
        pub entry_failure: bool,
        /// [`ExitRecord::rip`].
        pub rip: u64,
        /// [`ExitRecord::instruction_len`].
        pub instruction_len: u8,
    }
}

impl ExitRecord {
    /// Appends the record block.
    #[inline(always)]
    fn put_block(&self, out: &mut Writer<'_>) -> Option<()> {
        let head = RecordHead {
            seq: self.seq,
            vcpu: self.vcpu,
            reason: self.reason,
            entry_failure: self.entry_failure,
            rip: self.rip,
            instruction_len: self.instruction_len,
        };
        head.put(out)?;
        self.detail.put(out)?;
        self.state.put(out)
    }
}

impl MaxSize for ExitRecord {
    const POSTCARD_MAX_SIZE: usize =
        byte_string_size(RECORD_BLOCK_MAX) + <Option<ErrorReport>>::POSTCARD_MAX_SIZE;
}

impl Serialize for ExitRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return mirror::ExitRecord::from(self).serialize(serializer);
        }
        let mut buf = [0u8; RECORD_BLOCK_MAX];
        let mut out = Writer::new(&mut buf);
        self.put_block(&mut out)
            .ok_or_else(|| serde::ser::Error::custom(BLOCK_OVERFLOW))?;
        let len = RECORD_BLOCK_MAX - out.remaining();
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&ByteString(buf.get(..len).unwrap_or_default()))?;
        tuple.serialize_element(&self.rejected)?;
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for ExitRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            return mirror::ExitRecord::deserialize(deserializer).map(ExitRecord::from);
        }
        deserializer.deserialize_tuple(2, ExitRecordVisitor)
    }
}

struct ExitRecordVisitor;

impl<'de> Visitor<'de> for ExitRecordVisitor {
    type Value = ExitRecord;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an exit record: a record block and an optional error report")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ExitRecord, A::Error> {
        let mut record = seq
            .next_element_seed(BlockOf(parse_record_block))?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        record.rejected = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Ok(record)
    }
}

/// Parses a whole record block, `rejected` left `None`.
fn parse_record_block(block: &[u8]) -> Option<ExitRecord> {
    let input = &mut Reader::new(block);
    let mut record = stateless_record(RecordHead::take(input)?, ExitDetail::take(input)?);
    take_guest_state_in_memory(&mut record.state, input)?;
    input.is_empty().then_some(record)
}

/// A record with the head and detail of a record block and no state groups yet.
#[inline(always)]
fn stateless_record(head: RecordHead, detail: ExitDetail) -> ExitRecord {
    // Written out, not `GuestState::EMPTY`, which the compiler materialises as a 480-byte
    // clear; the groups present are filled in afterwards.
    ExitRecord {
        seq: head.seq,
        vcpu: head.vcpu,
        reason: head.reason,
        entry_failure: head.entry_failure,
        detail,
        rip: head.rip,
        instruction_len: head.instruction_len,
        state: GuestState {
            gprs: None,
            rsp: None,
            rflags: None,
            segments: None,
            descriptor_tables: None,
            control_registers: None,
            dr7: None,
            interruptibility: None,
            pending_events: None,
        },
        rejected: None,
    }
}

/// [`take_guest_state`], not inlined: the state is then filled in memory, group by group,
/// where inlined the optimizer splits it into scalars and writes back every one of them.
#[inline(never)]
fn take_guest_state_in_memory(state: &mut GuestState, input: &mut Reader<'_>) -> Option<()> {
    take_guest_state(state, input)
}

impl crate::wire::FamilyCodec for ExitRecord {
    /// Writes the record block straight into `buf`, not into a stack buffer that serde then
    /// copies; the bytes are those of the serde path (a property test compares them).
    #[inline]
    fn encode_family<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], crate::WireError> {
        const {
            assert!(
                RECORD_BLOCK_MAX < 1 << 14,
                "record block length is a 2-byte varint"
            )
        };
        let full = crate::WireError::BufferTooSmall;
        // The block goes after room for a 1-byte length, right for the common small record
        // (an I/O exit's); a block of 128 bytes or more is moved up by one for its 2-byte
        // length.
        let (_, body) = buf.split_at_mut_checked(1).ok_or(full)?;
        let capacity = body.len();
        let mut out = Writer::new(body);
        self.put_block(&mut out).ok_or(full)?;
        let len = capacity - out.remaining();
        let end = if len < 0x80 {
            *buf.first_mut().ok_or(full)? = len as u8;
            1 + len
        } else {
            if buf.len() < 2 + len {
                return Err(full);
            }
            buf.copy_within(1..1 + len, 2);
            let [low, high, ..] = buf else { return Err(full) };
            *low = (len as u8 & 0x7F) | 0x80;
            *high = (len >> 7) as u8;
            2 + len
        };
        let rest = buf.get_mut(end..).ok_or(full)?;
        let tail = crate::wire::encode(&self.rejected, rest)?.len();
        buf.get_mut(..end + tail).ok_or(full)
    }

    /// Borrows the record block from the input and parses it without serde's visitors, in
    /// the serde path's order, so that both report the same error for the same input. (Not
    /// with `parse_record_block`: its `Option` costs two more moves of the whole record.)
    #[inline]
    fn decode_family(bytes: &[u8]) -> Result<Self, crate::WireError> {
        use crate::WireError;
        let (block, rest) = postcard::take_from_bytes::<&[u8]>(bytes).map_err(WireError::from_postcard)?;
        let input = &mut Reader::new(block);
        let (Some(head), Some(detail)) = (RecordHead::take(input), ExitDetail::take(input)) else {
            return Err(WireError::InvalidValue);
        };
        let mut record = stateless_record(head, detail);
        if take_guest_state_in_memory(&mut record.state, input).is_none() || !input.is_empty() {
            return Err(WireError::InvalidValue);
        }
        record.rejected = crate::wire::decode(rest)?;
        Ok(record)
    }

    /// As [`decode_family`](Self::decode_family), straight into `record`.
    #[inline]
    fn decode_family_into(bytes: &[u8], record: &mut ExitRecord) -> Result<(), crate::WireError> {
        use crate::WireError;
        let (block, rest) = postcard::take_from_bytes::<&[u8]>(bytes).map_err(WireError::from_postcard)?;
        let input = &mut Reader::new(block);
        let (Some(head), Some(detail)) = (RecordHead::take(input), ExitDetail::take(input)) else {
            return Err(WireError::InvalidValue);
        };
        record.seq = head.seq;
        record.vcpu = head.vcpu;
        record.reason = head.reason;
        record.entry_failure = head.entry_failure;
        record.detail = detail;
        record.rip = head.rip;
        record.instruction_len = head.instruction_len;
        let state = &mut record.state;
        state.clear();
        if take_guest_state_in_memory(state, input).is_none() || !input.is_empty() {
            return Err(WireError::InvalidValue);
        }
        record.rejected = crate::wire::decode(rest)?;
        Ok(())
    }
}

// ---- helpers

const BLOCK_OVERFLOW: &str = "value larger than its block";

/// Serializes a byte slice as a byte string.
struct ByteString<'a>(&'a [u8]);

impl Serialize for ByteString<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// Deserializes a byte string with a parser that accepts exactly one block.
struct BlockOf<T>(fn(&[u8]) -> Option<T>);

impl<'de, T> DeserializeSeed<'de> for BlockOf<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_bytes(self)
    }
}

impl<T> Visitor<'_> for BlockOf<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a block")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<T, E> {
        (self.0)(bytes).ok_or_else(|| E::invalid_value(de::Unexpected::Bytes(bytes), &self))
    }
}

/// The human-readable forms: serde's derive on structs with the same fields.
mod mirror {
    use serde::{Deserialize, Serialize};

    use crate::common::GeneralRegisters;
    use crate::exit::{
        ControlRegisters, DescriptorTables, ExitDetail, InterruptibilityState, PendingEvents, Segments,
    };
    use crate::request::ErrorReport;

    /// Defines a mirror struct and the conversions both ways, from one field list.
    macro_rules! mirror {
        ($name:ident { $($field:ident: $ty:ty,)* }) => {
            #[derive(Serialize, Deserialize)]
            pub(super) struct $name {
                $( $field: $ty, )*
            }

            impl From<&crate::exit::$name> for $name {
                fn from(value: &crate::exit::$name) -> $name {
                    let crate::exit::$name { $( $field, )* } = value;
                    $name { $( $field: $field.clone(), )* }
                }
            }

            impl From<$name> for crate::exit::$name {
                fn from(mirror: $name) -> crate::exit::$name {
                    let $name { $( $field, )* } = mirror;
                    crate::exit::$name { $( $field, )* }
                }
            }
        };
    }

    mirror!(GuestState {
        gprs: Option<GeneralRegisters>,
        rsp: Option<u64>,
        rflags: Option<u64>,
        segments: Option<Segments>,
        descriptor_tables: Option<DescriptorTables>,
        control_registers: Option<ControlRegisters>,
        dr7: Option<u64>,
        interruptibility: Option<InterruptibilityState>,
        pending_events: Option<PendingEvents>,
    });

    mirror!(ExitRecord {
        seq: u64,
        vcpu: u16,
        reason: u16,
        entry_failure: bool,
        detail: ExitDetail,
        rip: u64,
        instruction_len: u8,
        state: crate::exit::GuestState,
        rejected: Option<ErrorReport>,
    });
}
