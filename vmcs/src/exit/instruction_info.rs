//! The VM-exit instruction-information field (SDM Vol. 3C, Section 25.9.4; its formats in
//! Section 28.2.5, Tables 28-8 to 28-14).
//!
//! Fields the SDM calls undefined for a form (e.g. the segment of an INS, the addressing of
//! a register operand) are not decoded, so junk in them cannot make decoding fail. Values the
//! SDM does not use in a decoded field (address size 3–7, segment 6–7, operand size 3) fail
//! with a [`QualificationError`].

use super::QualificationError;
use super::qualification::{Gpr, IoDirection};

/// Address size of a memory operand (bits 9:7; SDM Vol. 3C, Tables 28-8 to 28-14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AddressSize {
    /// 0: 16-bit.
    Bits16,
    /// 1: 32-bit.
    Bits32,
    /// 2: 64-bit.
    Bits64,
}

impl AddressSize {
    /// Decodes the 3-bit field.
    ///
    /// # Errors
    /// [`QualificationError::ReservedAddressSize`] for 3–7.
    pub const fn from_bits(bits: u8) -> Result<Self, QualificationError> {
        match bits {
            0 => Ok(Self::Bits16),
            1 => Ok(Self::Bits32),
            2 => Ok(Self::Bits64),
            other => Err(QualificationError::ReservedAddressSize(other)),
        }
    }

    /// The 3-bit field.
    pub const fn bits(self) -> u8 {
        self as u8
    }

    /// 16, 32 or 64.
    pub const fn width(self) -> u8 {
        match self {
            Self::Bits16 => 16,
            Self::Bits32 => 32,
            Self::Bits64 => 64,
        }
    }

    /// Mask of an address of this size.
    pub const fn mask(self) -> u64 {
        match self {
            Self::Bits16 => 0xFFFF,
            Self::Bits32 => 0xFFFF_FFFF,
            Self::Bits64 => u64::MAX,
        }
    }
}

/// Operand size (bits 12:11 of the RDRAND/RDSEED form; bit 11 of the descriptor-table form).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OperandSize {
    /// 0: 16-bit.
    Bits16,
    /// 1: 32-bit.
    Bits32,
    /// 2: 64-bit.
    Bits64,
}

impl OperandSize {
    /// 16, 32 or 64.
    pub const fn width(self) -> u8 {
        match self {
            Self::Bits16 => 16,
            Self::Bits32 => 32,
            Self::Bits64 => 64,
        }
    }
}

/// A segment register (bits 17:15; SDM Vol. 3C, Tables 28-8 to 28-14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[allow(missing_docs)] // the names are the registers
pub enum SegmentRegister {
    Es,
    Cs,
    Ss,
    Ds,
    Fs,
    Gs,
}

impl SegmentRegister {
    /// Decodes the 3-bit field.
    ///
    /// # Errors
    /// [`QualificationError::ReservedSegmentRegister`] for 6 and 7.
    pub const fn from_bits(bits: u8) -> Result<Self, QualificationError> {
        match bits {
            0 => Ok(Self::Es),
            1 => Ok(Self::Cs),
            2 => Ok(Self::Ss),
            3 => Ok(Self::Ds),
            4 => Ok(Self::Fs),
            5 => Ok(Self::Gs),
            other => Err(QualificationError::ReservedSegmentRegister(other)),
        }
    }

    /// The 3-bit field (the hardware segment-register number).
    pub const fn bits(self) -> u8 {
        self as u8
    }

    /// Lower-case name: `"es"`, ..., `"gs"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Es => "es",
            Self::Cs => "cs",
            Self::Ss => "ss",
            Self::Ds => "ds",
            Self::Fs => "fs",
            Self::Gs => "gs",
        }
    }
}

/// The index register of a memory operand and its scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaledIndex {
    /// Bits 21:18: the index register.
    pub register: Gpr,
    /// Bits 1:0: the scale factor, 1, 2, 4 or 8.
    pub scale: u8,
}

/// Addressing of a memory operand, as the instruction-information field describes it. The
/// displacement is not in this field: the exit qualification holds it (already added to RIP
/// for RIP-relative operands; SDM Vol. 3C, Section 28.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MemoryOperand {
    /// Bits 9:7.
    pub address_size: AddressSize,
    /// Bits 17:15.
    pub segment: SegmentRegister,
    /// Bits 26:23, absent when bit 27 (base register invalid) is set.
    pub base: Option<Gpr>,
    /// Bits 21:18 and 1:0, absent when bit 22 (index register invalid) is set.
    pub index: Option<ScaledIndex>,
}

impl MemoryOperand {
    const fn from_instruction_info(info: u32) -> Result<Self, QualificationError> {
        let address_size = match AddressSize::from_bits(((info >> 7) & 7) as u8) {
            Ok(size) => size,
            Err(e) => return Err(e),
        };
        let segment = match SegmentRegister::from_bits(((info >> 15) & 7) as u8) {
            Ok(segment) => segment,
            Err(e) => return Err(e),
        };
        let index = if info & (1 << 22) == 0 {
            Some(ScaledIndex {
                register: Gpr::from_number((info >> 18) as u8),
                scale: 1 << (info & 3),
            })
        } else {
            None
        };
        let base = if info & (1 << 27) == 0 {
            Some(Gpr::from_number((info >> 23) as u8))
        } else {
            None
        };
        Ok(Self {
            address_size,
            segment,
            base,
            index,
        })
    }

    const fn to_instruction_info(self) -> u32 {
        let index = match self.index {
            Some(index) => {
                let scaling = match index.scale {
                    2 => 1,
                    4 => 2,
                    8 => 3,
                    _ => 0,
                };
                scaling | (index.register.number() as u32) << 18
            }
            None => 1 << 22,
        };
        let base = match self.base {
            Some(base) => (base.number() as u32) << 23,
            None => 1 << 27,
        };
        (self.address_size.bits() as u32) << 7 | (self.segment.bits() as u32) << 15 | index | base
    }

    /// The operand's offset within its segment: base + index × scale + `displacement`,
    /// truncated to the address size. `gpr` supplies the guest's register values;
    /// `displacement` is the exit qualification. Add the segment base for the linear address.
    pub fn effective_address(self, displacement: u64, mut gpr: impl FnMut(Gpr) -> u64) -> u64 {
        let base = match self.base {
            Some(register) => gpr(register),
            None => 0,
        };
        let index = match self.index {
            Some(index) => gpr(index.register).wrapping_mul(index.scale as u64),
            None => 0,
        };
        base.wrapping_add(index).wrapping_add(displacement) & self.address_size.mask()
    }
}

/// A register or a memory operand (bit 10: 0 = memory, 1 = register).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RegisterOrMemory {
    /// Bits 6:3: a register operand.
    Register(Gpr),
    /// A memory operand.
    Memory(MemoryOperand),
}

impl RegisterOrMemory {
    const fn from_instruction_info(info: u32) -> Result<Self, QualificationError> {
        if info & (1 << 10) != 0 {
            Ok(Self::Register(Gpr::from_number((info >> 3) as u8)))
        } else {
            match MemoryOperand::from_instruction_info(info) {
                Ok(operand) => Ok(Self::Memory(operand)),
                Err(e) => Err(e),
            }
        }
    }

    const fn to_instruction_info(self) -> u32 {
        match self {
            Self::Register(gpr) => 1 << 10 | (gpr.number() as u32) << 3,
            Self::Memory(operand) => operand.to_instruction_info(),
        }
    }
}

/// Instruction information for INS and OUTS (SDM Vol. 3C, Section 28.2.5, Table 28-8).
/// Reported only by processors that set IA32_VMX_BASIC bit 54.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InsOutsInfo {
    /// Bits 9:7: address size of the string operand (which of SI/ESI/RSI or DI/EDI/RDI).
    pub address_size: AddressSize,
    /// Bits 17:15 for OUTS (DS unless overridden). INS always writes ES:rDI: the SDM leaves
    /// the field undefined for INS, and this is ES.
    pub segment: SegmentRegister,
}

impl InsOutsInfo {
    /// Decodes the field for an access in `direction` (from the I/O exit qualification).
    ///
    /// # Errors
    /// [`QualificationError::ReservedAddressSize`], or for OUTS
    /// [`QualificationError::ReservedSegmentRegister`].
    pub const fn from_instruction_info(
        info: u32,
        direction: IoDirection,
    ) -> Result<Self, QualificationError> {
        let address_size = match AddressSize::from_bits(((info >> 7) & 7) as u8) {
            Ok(size) => size,
            Err(e) => return Err(e),
        };
        let segment = match direction {
            IoDirection::In => SegmentRegister::Es,
            IoDirection::Out => match SegmentRegister::from_bits(((info >> 15) & 7) as u8) {
                Ok(segment) => segment,
                Err(e) => return Err(e),
            },
        };
        Ok(Self {
            address_size,
            segment,
        })
    }

    /// The field with these values.
    pub const fn to_instruction_info(self) -> u32 {
        (self.address_size.bits() as u32) << 7 | (self.segment.bits() as u32) << 15
    }
}

/// Instruction information for INVEPT, INVPCID and INVVPID (SDM Vol. 3C, Section 28.2.5,
/// Table 28-9). The memory operand is the descriptor; `register` holds the type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InvalidationInfo {
    /// The descriptor in memory.
    pub operand: MemoryOperand,
    /// Bits 31:28 (Reg2): the register holding the invalidation type.
    pub register: Gpr,
}

impl InvalidationInfo {
    /// Decodes the field.
    ///
    /// # Errors
    /// [`QualificationError::ReservedAddressSize`] or
    /// [`QualificationError::ReservedSegmentRegister`].
    pub const fn from_instruction_info(info: u32) -> Result<Self, QualificationError> {
        match MemoryOperand::from_instruction_info(info) {
            Ok(operand) => Ok(Self {
                operand,
                register: Gpr::from_number((info >> 28) as u8),
            }),
            Err(e) => Err(e),
        }
    }

    /// The field with these values.
    pub const fn to_instruction_info(self) -> u32 {
        self.operand.to_instruction_info() | (self.register.number() as u32) << 28
    }
}

/// Instruction information for VMCLEAR, VMPTRLD, VMPTRST, VMXON, XRSTORS and XSAVES (SDM
/// Vol. 3C, Section 28.2.5, Table 28-13): one memory operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MemoryInstructionInfo {
    /// The memory operand.
    pub operand: MemoryOperand,
}

impl MemoryInstructionInfo {
    /// Decodes the field.
    ///
    /// # Errors
    /// [`QualificationError::ReservedAddressSize`] or
    /// [`QualificationError::ReservedSegmentRegister`].
    pub const fn from_instruction_info(info: u32) -> Result<Self, QualificationError> {
        match MemoryOperand::from_instruction_info(info) {
            Ok(operand) => Ok(Self { operand }),
            Err(e) => Err(e),
        }
    }

    /// The field with these values.
    pub const fn to_instruction_info(self) -> u32 {
        self.operand.to_instruction_info()
    }
}

/// Instruction information for VMREAD and VMWRITE (SDM Vol. 3C, Section 28.2.5,
/// Table 28-14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct VmreadVmwriteInfo {
    /// The r/m operand: VMREAD's destination, VMWRITE's source (Reg1 or memory).
    pub operand: RegisterOrMemory,
    /// Bits 31:28 (Reg2): the register holding the field encoding.
    pub encoding_register: Gpr,
}

impl VmreadVmwriteInfo {
    /// Decodes the field.
    ///
    /// # Errors
    /// For a memory operand, [`QualificationError::ReservedAddressSize`] or
    /// [`QualificationError::ReservedSegmentRegister`].
    pub const fn from_instruction_info(info: u32) -> Result<Self, QualificationError> {
        match RegisterOrMemory::from_instruction_info(info) {
            Ok(operand) => Ok(Self {
                operand,
                encoding_register: Gpr::from_number((info >> 28) as u8),
            }),
            Err(e) => Err(e),
        }
    }

    /// The field with these values.
    pub const fn to_instruction_info(self) -> u32 {
        self.operand.to_instruction_info() | (self.encoding_register.number() as u32) << 28
    }
}

/// Which descriptor-table instruction exited (bits 29:28; SDM Vol. 3C, Table 28-10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[allow(missing_docs)] // the names are the instructions
pub enum DescriptorTableInstruction {
    Sgdt,
    Sidt,
    Lgdt,
    Lidt,
}

impl DescriptorTableInstruction {
    /// Lower-case mnemonic.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sgdt => "sgdt",
            Self::Sidt => "sidt",
            Self::Lgdt => "lgdt",
            Self::Lidt => "lidt",
        }
    }
}

/// Instruction information for LIDT, LGDT, SIDT and SGDT (SDM Vol. 3C, Section 28.2.5,
/// Table 28-10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DescriptorTableInfo {
    /// Bits 29:28.
    pub instruction: DescriptorTableInstruction,
    /// The 6- or 10-byte pseudo-descriptor in memory.
    pub operand: MemoryOperand,
    /// Bit 11: operand size, [`OperandSize::Bits16`] or [`OperandSize::Bits32`] (a 16-bit
    /// LGDT/LIDT loads a 24-bit base). Undefined for exits from 64-bit mode.
    pub operand_size: OperandSize,
}

impl DescriptorTableInfo {
    /// Decodes the field.
    ///
    /// # Errors
    /// [`QualificationError::ReservedAddressSize`] or
    /// [`QualificationError::ReservedSegmentRegister`].
    pub const fn from_instruction_info(info: u32) -> Result<Self, QualificationError> {
        let operand = match MemoryOperand::from_instruction_info(info) {
            Ok(operand) => operand,
            Err(e) => return Err(e),
        };
        Ok(Self {
            instruction: match (info >> 28) & 3 {
                0 => DescriptorTableInstruction::Sgdt,
                1 => DescriptorTableInstruction::Sidt,
                2 => DescriptorTableInstruction::Lgdt,
                _ => DescriptorTableInstruction::Lidt,
            },
            operand,
            operand_size: if info & (1 << 11) != 0 {
                OperandSize::Bits32
            } else {
                OperandSize::Bits16
            },
        })
    }

    /// The field with these values (a 64-bit operand size encodes as 32-bit).
    pub const fn to_instruction_info(self) -> u32 {
        let size = match self.operand_size {
            OperandSize::Bits16 => 0,
            OperandSize::Bits32 | OperandSize::Bits64 => 1 << 11,
        };
        self.operand.to_instruction_info() | size | (self.instruction as u32) << 28
    }
}

/// Which LDTR/TR instruction exited (bits 29:28; SDM Vol. 3C, Table 28-11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[allow(missing_docs)] // the names are the instructions
pub enum LdtrTrInstruction {
    Sldt,
    Str,
    Lldt,
    Ltr,
}

impl LdtrTrInstruction {
    /// Lower-case mnemonic.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sldt => "sldt",
            Self::Str => "str",
            Self::Lldt => "lldt",
            Self::Ltr => "ltr",
        }
    }
}

/// Instruction information for LLDT, LTR, SLDT and STR (SDM Vol. 3C, Section 28.2.5,
/// Table 28-11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LdtrTrInfo {
    /// Bits 29:28.
    pub instruction: LdtrTrInstruction,
    /// The selector operand.
    pub operand: RegisterOrMemory,
}

impl LdtrTrInfo {
    /// Decodes the field.
    ///
    /// # Errors
    /// For a memory operand, [`QualificationError::ReservedAddressSize`] or
    /// [`QualificationError::ReservedSegmentRegister`].
    pub const fn from_instruction_info(info: u32) -> Result<Self, QualificationError> {
        let operand = match RegisterOrMemory::from_instruction_info(info) {
            Ok(operand) => operand,
            Err(e) => return Err(e),
        };
        Ok(Self {
            instruction: match (info >> 28) & 3 {
                0 => LdtrTrInstruction::Sldt,
                1 => LdtrTrInstruction::Str,
                2 => LdtrTrInstruction::Lldt,
                _ => LdtrTrInstruction::Ltr,
            },
            operand,
        })
    }

    /// The field with these values.
    pub const fn to_instruction_info(self) -> u32 {
        self.operand.to_instruction_info() | (self.instruction as u32) << 28
    }
}

/// Instruction information for RDRAND and RDSEED (SDM Vol. 3C, Section 28.2.5, Table 28-12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RdrandRdseedInfo {
    /// Bits 6:3: the destination register.
    pub destination: Gpr,
    /// Bits 12:11: operand size.
    pub operand_size: OperandSize,
}

impl RdrandRdseedInfo {
    /// Decodes the field.
    ///
    /// # Errors
    /// [`QualificationError::ReservedOperandSize`] when bits 12:11 are 3.
    pub const fn from_instruction_info(info: u32) -> Result<Self, QualificationError> {
        let operand_size = match (info >> 11) & 3 {
            0 => OperandSize::Bits16,
            1 => OperandSize::Bits32,
            2 => OperandSize::Bits64,
            other => return Err(QualificationError::ReservedOperandSize(other as u8)),
        };
        Ok(Self {
            destination: Gpr::from_number((info >> 3) as u8),
            operand_size,
        })
    }

    /// The field with these values.
    pub const fn to_instruction_info(self) -> u32 {
        (self.destination.number() as u32) << 3 | (self.operand_size as u32) << 11
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ins_outs() {
        // rep outsb in 64-bit mode with an FS override: address size 2, segment 4.
        let info = InsOutsInfo::from_instruction_info(0x0002_0100, IoDirection::Out).unwrap();
        assert_eq!(info.address_size, AddressSize::Bits64);
        assert_eq!(info.segment, SegmentRegister::Fs);
        assert_eq!(info.to_instruction_info(), 0x0002_0100);
        // INS: the segment field is undefined, even junk in it is fine; ES is what INS uses.
        let ins = InsOutsInfo::from_instruction_info(0x0003_8080, IoDirection::In).unwrap();
        assert_eq!(ins.segment, SegmentRegister::Es);
        assert_eq!(ins.address_size, AddressSize::Bits32);
        assert_eq!(
            InsOutsInfo::from_instruction_info(0x0003_8080, IoDirection::Out),
            Err(QualificationError::ReservedSegmentRegister(7))
        );
        assert_eq!(
            InsOutsInfo::from_instruction_info(3 << 7, IoDirection::Out),
            Err(QualificationError::ReservedAddressSize(3))
        );
    }

    /// `reference-gaps.md` item 10: VMX-instruction information is decoded.
    #[test]
    fn invept_with_base_index_and_type_register() {
        // invept rcx, [rax + rbx*8 + disp] in 64-bit mode, DS:
        // scaling 3, address size 2, segment 3, index RBX, base RAX, reg2 RCX.
        let raw = 3 | 2 << 7 | 3 << 15 | 3 << 18 | 1 << 28;
        let info = InvalidationInfo::from_instruction_info(raw).unwrap();
        assert_eq!(info.register, Gpr::Rcx);
        assert_eq!(info.operand.segment, SegmentRegister::Ds);
        assert_eq!(info.operand.address_size, AddressSize::Bits64);
        assert_eq!(info.operand.base, Some(Gpr::Rax));
        assert_eq!(
            info.operand.index,
            Some(ScaledIndex {
                register: Gpr::Rbx,
                scale: 8
            })
        );
        assert_eq!(info.to_instruction_info(), raw);
        let regs = |gpr: Gpr| match gpr {
            Gpr::Rax => 0x1000,
            Gpr::Rbx => 3,
            _ => 0,
        };
        assert_eq!(info.operand.effective_address(0x20, regs), 0x1000 + 24 + 0x20);
    }

    #[test]
    fn memory_operand_without_base_or_index_and_address_wrap() {
        // vmptrld [disp32] in 32-bit mode: both registers invalid.
        let raw = 1 << 7 | 3 << 15 | 1 << 22 | 1 << 27 | 0x3F << 18;
        let info = MemoryInstructionInfo::from_instruction_info(raw).unwrap();
        assert_eq!(info.operand.base, None);
        assert_eq!(info.operand.index, None);
        assert_eq!(
            info.operand.effective_address(0x1234_5678, |_| unreachable!()),
            0x1234_5678
        );
        // 16-bit addressing wraps at 64 KiB.
        let wrap = MemoryOperand {
            address_size: AddressSize::Bits16,
            segment: SegmentRegister::Ss,
            base: Some(Gpr::Rbp),
            index: None,
        };
        assert_eq!(wrap.effective_address(0x10, |_| 0xFFF8), 0x8);
        assert_eq!(
            MemoryInstructionInfo::from_instruction_info(6 << 15),
            Err(QualificationError::ReservedSegmentRegister(6))
        );
    }

    #[test]
    fn vmread_register_and_memory_forms() {
        // vmread r9, rdx: register form, reg1 = R9, reg2 = RDX; memory fields are junk.
        let raw = 1 << 10 | 9 << 3 | 2 << 28 | 7 << 7 | 7 << 15;
        let info = VmreadVmwriteInfo::from_instruction_info(raw).unwrap();
        assert_eq!(info.operand, RegisterOrMemory::Register(Gpr::R9));
        assert_eq!(info.encoding_register, Gpr::Rdx);
        // vmwrite rax, [rsi]: memory form.
        let raw = 2 << 7 | 3 << 15 | 1 << 22 | 6 << 23;
        let info = VmreadVmwriteInfo::from_instruction_info(raw).unwrap();
        match info.operand {
            RegisterOrMemory::Memory(m) => assert_eq!((m.base, m.index), (Some(Gpr::Rsi), None)),
            RegisterOrMemory::Register(_) => panic!("memory operand expected"),
        }
        assert_eq!(info.to_instruction_info(), raw);
    }

    #[test]
    fn descriptor_table_instruction_identity() {
        for (identity, instruction) in [
            (0, DescriptorTableInstruction::Sgdt),
            (1, DescriptorTableInstruction::Sidt),
            (2, DescriptorTableInstruction::Lgdt),
            (3, DescriptorTableInstruction::Lidt),
        ] {
            let raw = identity << 28 | 1 << 11 | 1 << 7 | 3 << 15 | 1 << 22 | 1 << 27;
            let info = DescriptorTableInfo::from_instruction_info(raw).unwrap();
            assert_eq!(info.instruction, instruction);
            assert_eq!(info.operand_size, OperandSize::Bits32);
            assert_eq!(info.to_instruction_info(), raw);
        }
        assert_eq!(DescriptorTableInstruction::Lidt.name(), "lidt");
    }

    #[test]
    fn ldtr_tr_instruction_identity() {
        // ltr ax: register form.
        let info = LdtrTrInfo::from_instruction_info(3 << 28 | 1 << 10).unwrap();
        assert_eq!(info.instruction, LdtrTrInstruction::Ltr);
        assert_eq!(info.operand, RegisterOrMemory::Register(Gpr::Rax));
        // sldt [rdi]: memory form.
        let info = LdtrTrInfo::from_instruction_info(2 << 7 | 3 << 15 | 1 << 22 | 7 << 23).unwrap();
        assert_eq!(info.instruction, LdtrTrInstruction::Sldt);
        assert!(matches!(info.operand, RegisterOrMemory::Memory(m) if m.base == Some(Gpr::Rdi)));
        assert_eq!(LdtrTrInstruction::Str.name(), "str");
    }

    #[test]
    fn rdrand_destination() {
        // rdrand r11 (64-bit).
        let info = RdrandRdseedInfo::from_instruction_info(11 << 3 | 2 << 11).unwrap();
        assert_eq!(info.destination, Gpr::R11);
        assert_eq!(info.operand_size.width(), 64);
        assert_eq!(
            RdrandRdseedInfo::from_instruction_info(3 << 11),
            Err(QualificationError::ReservedOperandSize(3))
        );
    }
}
