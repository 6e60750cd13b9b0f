//! Just enough x86 decoding to emulate an MMIO access: the `MOV` forms compilers and drivers
//! use for device registers (SDM Vol. 2B, MOV, MOVZX; Vol. 2A, Section 2.1 and Tables 2-1 to
//! 2-3 for ModRM/SIB, Section 2.2.1 for REX).
//!
//! EPT violations define no instruction length (SDM Vol. 3C, Section 28.2.5), so the device
//! model needs the instruction to know the register, the size and where the next
//! instruction starts. 16-bit addressing (real mode, or the 0x67 prefix in 32-bit code) is
//! not supported.

/// What the instruction does with the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioOperation {
    /// Read `size` bytes into general register `register` (hardware number; with
    /// `zero_extend`, the value fills the whole destination as MOVZX does).
    Read {
        /// Destination register.
        register: u8,
        /// Bytes read.
        size: u8,
        /// Bytes the destination receives (differs from `size` for MOVZX).
        destination_size: u8,
    },
    /// Write `size` bytes from general register `register`.
    WriteRegister {
        /// Source register.
        register: u8,
        /// Bytes written.
        size: u8,
    },
    /// Write an immediate.
    WriteImmediate {
        /// The value (sign-extended for 64-bit operands, as MOV r/m64, imm32 does).
        value: u64,
        /// Bytes written.
        size: u8,
    },
}

/// A decoded MMIO instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioInstruction {
    /// The access.
    pub operation: MmioOperation,
    /// The instruction's length in bytes.
    pub length: u8,
}

/// Why an instruction could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end inside the instruction.
    Truncated,
    /// Not one of the supported forms.
    Unsupported(u8),
    /// The operand is a register, not memory (cannot cause an EPT violation).
    RegisterOperand,
    /// An 8-bit high register (AH, CH, DH, BH) is the other operand.
    HighByteRegister,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn next(&mut self) -> Result<u8, DecodeError> {
        let byte = *self.bytes.get(self.at).ok_or(DecodeError::Truncated)?;
        self.at += 1;
        Ok(byte)
    }

    fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        if self.at + n > self.bytes.len() {
            return Err(DecodeError::Truncated);
        }
        self.at += n;
        Ok(())
    }

    fn immediate(&mut self, n: usize) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..n {
            value |= u64::from(self.next()?) << (8 * i);
        }
        Ok(value)
    }
}

/// MOV between the accumulator and a memory offset encoded in the instruction, A0–A3 (SDM
/// Vol. 2B, MOV; the offset is as wide as the address size: 8 bytes in 64-bit mode, Vol. 2A,
/// Section 2.2.1.4; 4 in 32-bit mode; the 0x67 prefix halves it).
fn moffs(
    c: &mut Cursor<'_>,
    opcode: u8,
    full_size: u8,
    long_mode: bool,
    address_override: bool,
) -> Result<MmioInstruction, DecodeError> {
    let offset_bytes = match (long_mode, address_override) {
        (true, false) => 8,
        (true, true) | (false, false) => 4,
        (false, true) => 2,
    };
    c.skip(offset_bytes)?;
    let size = if opcode & 1 == 0 { 1 } else { full_size };
    let operation = if opcode & 2 == 0 {
        MmioOperation::Read {
            register: 0,
            size,
            destination_size: size,
        }
    } else {
        MmioOperation::WriteRegister { register: 0, size }
    };
    Ok(MmioInstruction {
        operation,
        length: c.at as u8,
    })
}

/// Decodes the MOV at the start of `bytes`; `long_mode` selects 64-bit decoding (REX).
///
/// # Errors
/// See [`DecodeError`].
pub fn decode_mmio(bytes: &[u8], long_mode: bool) -> Result<MmioInstruction, DecodeError> {
    let mut c = Cursor { bytes, at: 0 };
    let mut operand16 = false;
    let mut address_override = false;
    let mut rex = 0u8;
    let mut opcode = c.next()?;
    loop {
        match opcode {
            0x66 => operand16 = true,
            0x67 => address_override = true,
            0x26 | 0x2E | 0x36 | 0x3E | 0x64 | 0x65 => {}
            0x40..=0x4F if long_mode => {
                rex = opcode;
                opcode = c.next()?;
                break;
            }
            _ => break,
        }
        opcode = c.next()?;
    }
    let rex_w = rex & 0x08 != 0;
    let full_size = if rex_w {
        8
    } else if operand16 {
        2
    } else {
        4
    };
    if let 0xA0..=0xA3 = opcode {
        return moffs(&mut c, opcode, full_size, long_mode, address_override);
    }
    if address_override && !long_mode {
        // 16-bit addressing: a different ModRM table (SDM Vol. 2A, Table 2-1), not decoded.
        return Err(DecodeError::Unsupported(0x67));
    }
    let two_byte = opcode == 0x0F;
    if two_byte {
        opcode = c.next()?;
    }
    let supported = matches!(
        (two_byte, opcode),
        (false, 0x88..=0x8B | 0xC6 | 0xC7) | (true, 0xB6 | 0xB7)
    );
    if !supported {
        return Err(DecodeError::Unsupported(opcode));
    }
    let (modrm_reg, memory) = modrm(&mut c, rex)?;
    if !memory {
        return Err(DecodeError::RegisterOperand);
    }
    let byte_register = |reg: u8| -> Result<u8, DecodeError> {
        // Without REX, byte registers 4-7 are AH, CH, DH, BH.
        if rex == 0 && (4..8).contains(&reg) {
            Err(DecodeError::HighByteRegister)
        } else {
            Ok(reg)
        }
    };
    let operation = match (two_byte, opcode) {
        (false, 0x88) => MmioOperation::WriteRegister {
            register: byte_register(modrm_reg)?,
            size: 1,
        },
        (false, 0x89) => MmioOperation::WriteRegister {
            register: modrm_reg,
            size: full_size,
        },
        (false, 0x8A) => MmioOperation::Read {
            register: byte_register(modrm_reg)?,
            size: 1,
            destination_size: 1,
        },
        (false, 0x8B) => MmioOperation::Read {
            register: modrm_reg,
            size: full_size,
            destination_size: full_size,
        },
        (false, 0xC6) if modrm_reg & 7 == 0 => MmioOperation::WriteImmediate {
            value: c.immediate(1)?,
            size: 1,
        },
        (false, 0xC7) if modrm_reg & 7 == 0 => {
            let (value, size) = match full_size {
                2 => (c.immediate(2)?, 2),
                4 => (c.immediate(4)?, 4),
                _ => (c.immediate(4)? as u32 as i32 as i64 as u64, 8),
            };
            MmioOperation::WriteImmediate { value, size }
        }
        (true, 0xB6) => MmioOperation::Read {
            register: modrm_reg,
            size: 1,
            destination_size: full_size,
        },
        (true, 0xB7) => MmioOperation::Read {
            register: modrm_reg,
            size: 2,
            destination_size: full_size,
        },
        (_, other) => return Err(DecodeError::Unsupported(other)),
    };
    Ok(MmioInstruction {
        operation,
        length: c.at as u8,
    })
}

/// Reads ModRM (and SIB, displacement); returns (reg field with REX.R, operand is memory).
fn modrm(c: &mut Cursor<'_>, rex: u8) -> Result<(u8, bool), DecodeError> {
    let modrm = c.next()?;
    let mode = modrm >> 6;
    let reg = ((modrm >> 3) & 7) | if rex & 0x04 != 0 { 8 } else { 0 };
    let rm = modrm & 7;
    if mode == 3 {
        return Ok((reg, false));
    }
    let mut disp = match mode {
        1 => 1,
        2 => 4,
        _ => 0,
    };
    if rm == 4 {
        let sib = c.next()?;
        if mode == 0 && sib & 7 == 5 {
            disp = 4;
        }
    } else if mode == 0 && rm == 5 {
        disp = 4; // disp32 (RIP-relative in 64-bit mode)
    }
    c.skip(disp)?;
    Ok((reg, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_mov_forms() {
        // mov eax, [0x3ff000] (8B 05 disp32 in 32-bit code: mod 0, rm 5)
        assert_eq!(
            decode_mmio(&[0x8B, 0x05, 0x00, 0xF0, 0x3F, 0x00], false),
            Ok(MmioInstruction {
                operation: MmioOperation::Read {
                    register: 0,
                    size: 4,
                    destination_size: 4
                },
                length: 6
            })
        );
        // mov [ebx+4], cl (88 4B 04)
        assert_eq!(
            decode_mmio(&[0x88, 0x4B, 0x04], false),
            Ok(MmioInstruction {
                operation: MmioOperation::WriteRegister { register: 1, size: 1 },
                length: 3
            })
        );
        // mov word [eax], 0x1234 (66 C7 00 34 12)
        assert_eq!(
            decode_mmio(&[0x66, 0xC7, 0x00, 0x34, 0x12], false),
            Ok(MmioInstruction {
                operation: MmioOperation::WriteImmediate {
                    value: 0x1234,
                    size: 2
                },
                length: 5
            })
        );
        // mov r9, [rax+rcx*8+0x10] (4C 8B 4C C8 10)
        assert_eq!(
            decode_mmio(&[0x4C, 0x8B, 0x4C, 0xC8, 0x10], true),
            Ok(MmioInstruction {
                operation: MmioOperation::Read {
                    register: 9,
                    size: 8,
                    destination_size: 8
                },
                length: 5
            })
        );
        // movzx eax, byte [esi] (0F B6 06)
        assert_eq!(
            decode_mmio(&[0x0F, 0xB6, 0x06], false),
            Ok(MmioInstruction {
                operation: MmioOperation::Read {
                    register: 0,
                    size: 1,
                    destination_size: 4
                },
                length: 3
            })
        );
        // mov qword [rdi], -1 (48 C7 07 FF FF FF FF): sign-extended
        assert_eq!(
            decode_mmio(&[0x48, 0xC7, 0x07, 0xFF, 0xFF, 0xFF, 0xFF], true),
            Ok(MmioInstruction {
                operation: MmioOperation::WriteImmediate {
                    value: u64::MAX,
                    size: 8
                },
                length: 7
            })
        );
    }

    #[test]
    fn accumulator_and_memory_offset_forms() {
        let read = |size| MmioOperation::Read {
            register: 0,
            size,
            destination_size: size,
        };
        let write = |size| MmioOperation::WriteRegister { register: 0, size };
        // mov eax, [0xfec00000]: what the VT-x guest's MMIO read assembles to.
        let ok = |operation, length| Ok(MmioInstruction { operation, length });
        assert_eq!(
            decode_mmio(&[0xA1, 0x00, 0x00, 0xC0, 0xFE, 0xA3], false),
            ok(read(4), 5)
        );
        assert_eq!(
            decode_mmio(&[0xA0, 0x00, 0x00, 0xC0, 0xFE], false),
            ok(read(1), 5)
        );
        assert_eq!(
            decode_mmio(&[0xA2, 0x00, 0x00, 0xC0, 0xFE], false),
            ok(write(1), 5)
        );
        assert_eq!(
            decode_mmio(&[0x66, 0xA3, 0x00, 0x00, 0xC0, 0xFE], false),
            ok(write(2), 6)
        );
        // 64-bit mode: an 8-byte offset; REX.W widens the accumulator; 0x67 narrows the offset.
        let long = [0x48, 0xA1, 0, 0, 0xC0, 0xFE, 0, 0, 0, 0];
        assert_eq!(decode_mmio(&long, true), ok(read(8), 10));
        assert_eq!(decode_mmio(&[0x67, 0xA1, 0, 0, 0xC0, 0xFE], true), ok(read(4), 6));
        // 32-bit code with 0x67: a 2-byte offset.
        assert_eq!(decode_mmio(&[0x67, 0xA1, 0x00, 0x10], false), ok(read(4), 4));
        assert_eq!(
            decode_mmio(&[0xA1, 0x00, 0x00, 0xC0], false),
            Err(DecodeError::Truncated)
        );
        // 16-bit ModRM addressing stays refused.
        assert_eq!(
            decode_mmio(&[0x67, 0x8B, 0x07], false),
            Err(DecodeError::Unsupported(0x67))
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            decode_mmio(&[0x8B, 0xC1], false),
            Err(DecodeError::RegisterOperand)
        );
        assert_eq!(
            decode_mmio(&[0x8A, 0x20], false),
            Err(DecodeError::HighByteRegister),
            "mov ah, [eax]"
        );
        assert_eq!(
            decode_mmio(&[0x8B, 0x05, 0x00], false),
            Err(DecodeError::Truncated)
        );
        assert_eq!(decode_mmio(&[], false), Err(DecodeError::Truncated));
        assert_eq!(decode_mmio(&[0x90], false), Err(DecodeError::Unsupported(0x90)));
        // In 32-bit code 0x48 is DEC EAX, not REX.W.
        assert_eq!(
            decode_mmio(&[0x48, 0x8B, 0x00], false),
            Err(DecodeError::Unsupported(0x48))
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16), long in proptest::prelude::any::<bool>()) {
            if let Ok(insn) = decode_mmio(&bytes, long) {
                proptest::prop_assert!(usize::from(insn.length) <= bytes.len());
            }
        }
    }
}
