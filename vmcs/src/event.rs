//! Interruption-information words: the format shared by the VM-entry interruption-information
//! field, the VM-exit interruption-information field and the IDT-vectoring information field
//! (SDM Vol. 3C, Section 25.8.3, Table 25-17; Section 25.9.2, Table 25-19; Section 25.9.3,
//! Table 25-20).
//!
//! | bits  | meaning |
//! |-------|---------|
//! | 7:0   | vector |
//! | 10:8  | type (see [`InterruptionType`]) |
//! | 11    | error code valid / deliver error code |
//! | 12    | NMI unblocking due to IRET (exit interruption info only; undefined in IDT-vectoring info, reserved for entry) |
//! | 30:13 | reserved |
//! | 31    | valid |

use core::fmt;

/// Interruption type, bits 10:8 of an interruption-information word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum InterruptionType {
    /// 0: external interrupt.
    ExternalInterrupt,
    /// 1: reserved (VM entry fails if injected).
    Reserved,
    /// 2: non-maskable interrupt; vector must be 2.
    Nmi,
    /// 3: hardware exception (fault, trap or abort other than those below).
    HardwareException,
    /// 4: software interrupt (`INT n`).
    SoftwareInterrupt,
    /// 5: privileged software exception (`INT1` / ICEBP).
    PrivilegedSoftwareException,
    /// 6: software exception (`INT3` or `INTO`).
    SoftwareException,
    /// 7: other event (vector 0: pending MTF VM exit; with FRED, also SYSCALL/SYSENTER).
    Other,
}

impl InterruptionType {
    /// Decodes the 3-bit type field.
    pub const fn from_bits(bits: u32) -> Self {
        match bits & 7 {
            0 => Self::ExternalInterrupt,
            1 => Self::Reserved,
            2 => Self::Nmi,
            3 => Self::HardwareException,
            4 => Self::SoftwareInterrupt,
            5 => Self::PrivilegedSoftwareException,
            6 => Self::SoftwareException,
            _ => Self::Other,
        }
    }

    /// The 3-bit type field.
    pub const fn bits(self) -> u32 {
        match self {
            Self::ExternalInterrupt => 0,
            Self::Reserved => 1,
            Self::Nmi => 2,
            Self::HardwareException => 3,
            Self::SoftwareInterrupt => 4,
            Self::PrivilegedSoftwareException => 5,
            Self::SoftwareException => 6,
            Self::Other => 7,
        }
    }

    /// Kebab-case name used in JSON output.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ExternalInterrupt => "external-interrupt",
            Self::Reserved => "reserved",
            Self::Nmi => "nmi",
            Self::HardwareException => "hardware-exception",
            Self::SoftwareInterrupt => "software-interrupt",
            Self::PrivilegedSoftwareException => "privileged-software-exception",
            Self::SoftwareException => "software-exception",
            Self::Other => "other",
        }
    }

    /// Whether delivering this type of event is caused by an instruction whose length the
    /// VM-entry instruction-length field must hold (SDM Vol. 3C, Section 27.6.1.1).
    pub const fn needs_instruction_length(self) -> bool {
        matches!(
            self,
            Self::SoftwareInterrupt | Self::PrivilegedSoftwareException | Self::SoftwareException
        )
    }
}

/// An interruption-information word. Any `u32` is accepted; the accessors decode it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct InterruptionInfo(u32);

impl InterruptionInfo {
    /// Bit 11: an error code is delivered (entry) / was pushed (exit, IDT vectoring).
    pub const ERROR_CODE_VALID: u32 = 1 << 11;
    /// Bit 12: NMI unblocking due to IRET.
    pub const NMI_UNBLOCKING: u32 = 1 << 12;
    /// Bit 31: valid.
    pub const VALID: u32 = 1 << 31;
    /// Bits 30:13, reserved (must be 0 for VM entry; bit 12 too for VM entry).
    pub const RESERVED: u32 = 0x7FFF_E000;

    /// Wraps a raw word.
    pub const fn from_raw(raw: u32) -> Self {
        Self(raw)
    }

    /// A valid word with the given parts (bit 12 and the reserved bits clear).
    pub const fn new(vector: u8, kind: InterruptionType, error_code_valid: bool) -> Self {
        let ec = if error_code_valid {
            Self::ERROR_CODE_VALID
        } else {
            0
        };
        Self(Self::VALID | ec | (kind.bits() << 8) | vector as u32)
    }

    /// The raw word.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Bits 7:0.
    pub const fn vector(self) -> u8 {
        self.0 as u8
    }

    /// Bits 10:8.
    pub const fn kind(self) -> InterruptionType {
        InterruptionType::from_bits(self.0 >> 8)
    }

    /// Bit 11.
    pub const fn error_code_valid(self) -> bool {
        self.0 & Self::ERROR_CODE_VALID != 0
    }

    /// Bit 12: the exit happened while IRET was unblocking NMIs (exit interruption info; SDM
    /// Vol. 3C, Section 28.2.3). Undefined in IDT-vectoring info (Section 25.9.3).
    pub const fn nmi_unblocking(self) -> bool {
        self.0 & Self::NMI_UNBLOCKING != 0
    }

    /// Bit 31.
    pub const fn valid(self) -> bool {
        self.0 & Self::VALID != 0
    }

    /// Bits 30:13 (reserved).
    pub const fn reserved_bits(self) -> u32 {
        self.0 & Self::RESERVED
    }
}

impl fmt::Debug for InterruptionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InterruptionInfo")
            .field("raw", &format_args!("{:#010x}", self.0))
            .field("vector", &self.vector())
            .field("kind", &self.kind())
            .field("error_code_valid", &self.error_code_valid())
            .field("nmi_unblocking", &self.nmi_unblocking())
            .field("valid", &self.valid())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_ud2_exit_interruption_info_seen_in_bochs() {
        // `ud2` with exception bitmap bit 6: exit interruption info 0x80000306 (bochs-vmx.md).
        let info = InterruptionInfo::from_raw(0x8000_0306);
        assert_eq!(info.vector(), 6);
        assert_eq!(info.kind(), InterruptionType::HardwareException);
        assert!(!info.error_code_valid());
        assert!(!info.nmi_unblocking());
        assert!(info.valid());
        assert_eq!(
            InterruptionInfo::new(6, InterruptionType::HardwareException, false),
            info
        );
    }

    /// `reference-gaps.md` item 5: bit 12 (NMI unblocking due to IRET) is decoded.
    #[test]
    fn decodes_nmi_unblocking_bit() {
        let info = InterruptionInfo::from_raw(0x8000_1B0E); // #PF, error code, NMI unblocking
        assert!(info.nmi_unblocking());
        assert!(info.error_code_valid());
        assert_eq!(info.vector(), 14);
    }

    #[test]
    fn every_type_round_trips() {
        for bits in 0..8 {
            assert_eq!(InterruptionType::from_bits(bits).bits(), bits);
        }
    }
}
