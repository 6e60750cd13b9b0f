//! The exit reply's direct path: exactly the bytes of postcard's serde encoding of
//! [`ExitReply`] (see the crate documentation), written and read without serde's visitors.
//!
//! A reply crosses once per exit; through serde, encoding and decoding a two-action reply cost
//! about 400 instructions, mostly in the generic visitor machinery. Here every check comes in
//! the order serde's derive and postcard make it, so both paths give the same bytes, the
//! same value and the same error for every input (the property tests compare them).

use crate::common::{AccessSize, EventKind, EventRequest, ExitClass, FieldValue, Gpr, Register, StateGroups};
use crate::exit::{Action, ExitReply};
use crate::wire::WireError;

/// Writes postcard's primitive forms into a slice.
struct Out<'b> {
    buf: &'b mut [u8],
    position: usize,
}

impl Out<'_> {
    #[inline(always)]
    fn byte(&mut self, byte: u8) -> Result<(), WireError> {
        let slot = self.buf.get_mut(self.position).ok_or(WireError::BufferTooSmall)?;
        *slot = byte;
        self.position += 1;
        Ok(())
    }

    /// An unsigned LEB128 varint (postcard's `u16`, `u32`, `u64`, `usize`, variant indexes).
    #[inline(always)]
    fn varint(&mut self, mut value: u64) -> Result<(), WireError> {
        while value >= 0x80 {
            self.byte(value as u8 | 0x80)?;
            value >>= 7;
        }
        self.byte(value as u8)
    }

    #[inline(always)]
    fn option<T>(
        &mut self,
        value: Option<T>,
        put: impl FnOnce(&mut Self, T) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        match value {
            None => self.byte(0),
            Some(value) => {
                self.byte(1)?;
                put(self, value)
            }
        }
    }
}

/// Encodes `reply` into the front of `buf`; returns the length.
#[inline]
pub(crate) fn encode(reply: &ExitReply, buf: &mut [u8]) -> Result<usize, WireError> {
    let mut out = Out { buf, position: 0 };
    out.varint(reply.seq)?;
    out.varint(reply.actions.len() as u64)?;
    for action in &reply.actions {
        put_action(*action, &mut out)?;
    }
    Ok(out.position)
}

/// Variant indexes of [`Action`], in declaration order.
mod tag {
    pub const COMPLETE_IO: u32 = 0;
    pub const COMPLETE_MMIO_READ: u32 = 1;
    pub const ADVANCE_RIP: u32 = 2;
    pub const SET_REGISTER: u32 = 3;
    pub const WRITE_FIELD: u32 = 4;
    pub const INJECT: u32 = 5;
    pub const RAISE_INTERRUPT: u32 = 6;
    pub const REQUEST_INTERRUPT_WINDOW: u32 = 7;
    pub const REQUEST_NMI_WINDOW: u32 = 8;
    pub const WAIT_FOR_INTERRUPT: u32 = 9;
    pub const SET_STATE_GROUPS: u32 = 10;
    pub const STOP: u32 = 11;
}

#[inline(always)]
fn put_action(action: Action, out: &mut Out<'_>) -> Result<(), WireError> {
    let tag = |out: &mut Out<'_>, tag: u32| out.varint(u64::from(tag));
    match action {
        Action::CompleteIo { value } => {
            tag(out, tag::COMPLETE_IO)?;
            out.varint(u64::from(value))
        }
        Action::CompleteMmioRead {
            register,
            size,
            value,
        } => {
            tag(out, tag::COMPLETE_MMIO_READ)?;
            out.varint(register as u64)?;
            out.varint(size as u64)?;
            out.varint(value)
        }
        Action::AdvanceRip => tag(out, tag::ADVANCE_RIP),
        Action::SetRegister { register, value } => {
            tag(out, tag::SET_REGISTER)?;
            match register {
                Register::Gpr(gpr) => {
                    out.varint(0)?;
                    out.varint(gpr as u64)?;
                }
                Register::Rip => out.varint(1)?,
                Register::Rflags => out.varint(2)?,
            }
            out.varint(value)
        }
        Action::WriteField(FieldValue { encoding, value }) => {
            tag(out, tag::WRITE_FIELD)?;
            out.varint(u64::from(encoding))?;
            out.varint(value)
        }
        Action::Inject(EventRequest {
            vector,
            kind,
            error_code,
            instruction_len,
        }) => {
            tag(out, tag::INJECT)?;
            out.byte(vector)?;
            out.option(kind, |out, kind| out.varint(kind as u64))?;
            out.option(error_code, |out, code| out.varint(u64::from(code)))?;
            out.option(instruction_len, Out::byte)
        }
        Action::RaiseInterrupt { vector } => {
            tag(out, tag::RAISE_INTERRUPT)?;
            out.byte(vector)
        }
        Action::RequestInterruptWindow => tag(out, tag::REQUEST_INTERRUPT_WINDOW),
        Action::RequestNmiWindow => tag(out, tag::REQUEST_NMI_WINDOW),
        Action::WaitForInterrupt => tag(out, tag::WAIT_FOR_INTERRUPT),
        Action::SetStateGroups { class, groups } => {
            tag(out, tag::SET_STATE_GROUPS)?;
            out.varint(class as u64)?;
            out.varint(u64::from(groups.bits()))
        }
        Action::Stop { status } => {
            tag(out, tag::STOP)?;
            out.varint(u64::from(status))
        }
    }
}

/// Reads postcard's primitive forms, failing as postcard fails.
struct In<'a> {
    bytes: &'a [u8],
}

impl In<'_> {
    #[inline(always)]
    fn byte(&mut self) -> Result<u8, WireError> {
        let (&first, rest) = self.bytes.split_first().ok_or(WireError::Truncated)?;
        self.bytes = rest;
        Ok(first)
    }

    /// A varint of at most `BITS` bits: at most `ceil(BITS / 7)` bytes, the last of which may
    /// carry only the bits left (postcard's `try_take_varint_*`).
    #[inline(always)]
    fn varint<const BITS: u32>(&mut self) -> Result<u64, WireError> {
        // Most values in a reply fit in one byte.
        if let Some((&first, rest)) = self.bytes.split_first()
            && first < 0x80
        {
            self.bytes = rest;
            return Ok(u64::from(first));
        }
        let max_bytes = BITS.div_ceil(7);
        let last_byte_max = (1u8 << (BITS % 7)) - 1;
        let mut value = 0u64;
        for i in 0..max_bytes {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                if i == max_bytes - 1 && byte > last_byte_max {
                    return Err(WireError::BadVarint);
                }
                return Ok(value);
            }
        }
        Err(WireError::BadVarint)
    }

    #[inline(always)]
    fn u16(&mut self) -> Result<u16, WireError> {
        // At most 16 bits: the last-byte check saw to it.
        self.varint::<16>().map(|v| v as u16)
    }

    #[inline(always)]
    fn u32(&mut self) -> Result<u32, WireError> {
        self.varint::<32>().map(|v| v as u32)
    }

    #[inline(always)]
    fn u64(&mut self) -> Result<u64, WireError> {
        self.varint::<64>()
    }

    /// An enum's variant index among `variants` (an unknown one is serde's "invalid value").
    #[inline(always)]
    fn variant<T: Copy>(&mut self, variants: &[T]) -> Result<T, WireError> {
        let index = self.u32()?;
        variants
            .get(index as usize)
            .copied()
            .ok_or(WireError::InvalidValue)
    }

    #[inline(always)]
    fn option<T>(
        &mut self,
        take: impl FnOnce(&mut Self) -> Result<T, WireError>,
    ) -> Result<Option<T>, WireError> {
        match self.byte()? {
            0 => Ok(None),
            1 => take(self).map(Some),
            _ => Err(WireError::BadTag),
        }
    }
}

/// Decodes all of `bytes` into `reply` (on an error, `reply` holds what was read so far).
#[inline]
pub(crate) fn decode_into(bytes: &[u8], reply: &mut ExitReply) -> Result<(), WireError> {
    let input = &mut In { bytes };
    reply.seq = input.u64()?;
    reply.actions.clear();
    // Postcard's sequence length is a `usize` varint; heapless rejects the first action
    // beyond its capacity, after decoding it.
    let len = input.u64()?;
    for _ in 0..len {
        let action = take_action(input)?;
        reply.actions.push(action).map_err(|_| WireError::InvalidValue)?;
    }
    match input.bytes.len() {
        0 => Ok(()),
        count => Err(WireError::TrailingBytes { count }),
    }
}

#[inline(always)]
fn take_action(input: &mut In<'_>) -> Result<Action, WireError> {
    Ok(match input.u32()? {
        tag::COMPLETE_IO => Action::CompleteIo { value: input.u32()? },
        tag::COMPLETE_MMIO_READ => Action::CompleteMmioRead {
            register: input.variant(&Gpr::ALL)?,
            size: input.variant(&AccessSize::ALL)?,
            value: input.u64()?,
        },
        tag::ADVANCE_RIP => Action::AdvanceRip,
        tag::SET_REGISTER => {
            let register = match input.u32()? {
                0 => Register::Gpr(input.variant(&Gpr::ALL)?),
                1 => Register::Rip,
                2 => Register::Rflags,
                _ => return Err(WireError::InvalidValue),
            };
            Action::SetRegister {
                register,
                value: input.u64()?,
            }
        }
        tag::WRITE_FIELD => Action::WriteField(FieldValue {
            encoding: input.u32()?,
            value: input.u64()?,
        }),
        tag::INJECT => Action::Inject(EventRequest {
            vector: input.byte()?,
            kind: input.option(|input| input.variant(&EventKind::ALL))?,
            error_code: input.option(In::u32)?,
            instruction_len: input.option(In::byte)?,
        }),
        tag::RAISE_INTERRUPT => Action::RaiseInterrupt {
            vector: input.byte()?,
        },
        tag::REQUEST_INTERRUPT_WINDOW => Action::RequestInterruptWindow,
        tag::REQUEST_NMI_WINDOW => Action::RequestNmiWindow,
        tag::WAIT_FOR_INTERRUPT => Action::WaitForInterrupt,
        tag::SET_STATE_GROUPS => Action::SetStateGroups {
            class: input.variant(&ExitClass::ALL)?,
            groups: StateGroups::from_bits(input.u16()?).ok_or(WireError::InvalidValue)?,
        },
        tag::STOP => Action::Stop { status: input.u32()? },
        _ => return Err(WireError::InvalidValue),
    })
}
