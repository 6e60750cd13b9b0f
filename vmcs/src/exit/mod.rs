//! VM-exit information: reasons, qualifications, instruction information, and everything an
//! exit handler reads from the VMCS.
//!
//! - [`ExitReason`] names every basic exit reason (SDM Vol. 3D, Appendix C, Table C-1);
//!   [`ExitReasonWord`] is the whole exit-reason field with its flag bits (SDM Vol. 3C,
//!   Section 25.9.1, Table 25-18).
//! - One decoder per exit-qualification format (SDM Vol. 3C, Section 28.2.1) and per
//!   instruction-information format (Section 28.2.5), each with a checked constructor.
//!   Interruption information and IDT-vectoring information use [`crate::InterruptionInfo`].
//! - [`ExitDetail`] picks the right decoder for a reason.
//! - [`VmxExitInfo`] reads, through any [`crate::VmcsAccess`], the exit-information fields the
//!   reason makes meaningful.
//!
//! Nothing here panics on any input: numbers the SDM does not assign become
//! [`ExitReason::Unknown`], and encodings it does not use become a [`QualificationError`].

use core::fmt;

mod detail;
mod info;
mod instruction_info;
mod qualification;
mod reason;

pub use detail::{ExceptionQualification, ExitDetail, InvalidationInstruction};
pub use info::{IoSmiRegisters, VmxExitInfo};
pub use instruction_info::{
    AddressSize, DescriptorTableInfo, DescriptorTableInstruction, InsOutsInfo, InvalidationInfo, LdtrTrInfo,
    LdtrTrInstruction, MemoryInstructionInfo, MemoryOperand, OperandSize, RdrandRdseedInfo, RegisterOrMemory,
    ScaledIndex, SegmentRegister, VmreadVmwriteInfo,
};
pub use qualification::{
    ApicAccessQualification, ApicAccessType, ApicWriteQualification, ControlRegister, CrAccessQualification,
    CrAccessType, DebugQualification, EntryFailureQualification, EptViolationQualification, Gpr,
    InstructionTimeoutQualification, IoDirection, IoQualification, IoSize, LmswOperand, MovDrDirection,
    MovDrQualification, SipiQualification, SppEvent, SppQualification, TaskSwitchQualification,
    TaskSwitchSource, VirtualizedEoiQualification,
};
pub use reason::{ExitReason, ExitReasonWord};

/// An exit qualification or instruction-information field that holds an encoding the SDM
/// does not use, or a decode that lacks a field it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum QualificationError {
    /// I/O access size encoding 2 or 4–7 (SDM Vol. 3C, Table 28-5: only 0, 1 and 3 are used).
    ReservedIoSize(u8),
    /// A control-register number no CR access can exit for (Table 28-3: 0, 2, 3, 4 or 8 for
    /// MOV CR; 0 for CLTS and LMSW).
    InvalidControlRegister(u8),
    /// APIC-access type 4–9 or 11–14 (Table 28-6).
    ReservedApicAccessType(u8),
    /// A VM-entry-failure qualification other than 0, 2, 3 or 4 (Section 27.8).
    ReservedEntryFailure(u64),
    /// Instruction-information address size 3–7 (Tables 28-8 to 28-14).
    ReservedAddressSize(u8),
    /// Instruction-information segment register 6 or 7 (Tables 28-8 to 28-14).
    ReservedSegmentRegister(u8),
    /// RDRAND/RDSEED operand size 3 (Table 28-12).
    ReservedOperandSize(u8),
    /// An exception or NMI exit was decoded without its VM-exit interruption information.
    MissingInterruptionInfo,
}

impl fmt::Display for QualificationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReservedIoSize(n) => write!(f, "I/O access size encoding {n} is not used (only 0, 1, 3)"),
            Self::InvalidControlRegister(n) => {
                write!(
                    f,
                    "control register {n} cannot be the subject of a CR-access exit"
                )
            }
            Self::ReservedApicAccessType(n) => write!(f, "APIC-access type {n} is not used"),
            Self::ReservedEntryFailure(n) => {
                write!(
                    f,
                    "VM-entry failure qualification {n:#x} is not used (only 0, 2, 3, 4)"
                )
            }
            Self::ReservedAddressSize(n) => write!(f, "address-size encoding {n} is not used (only 0, 1, 2)"),
            Self::ReservedSegmentRegister(n) => write!(f, "segment-register encoding {n} is not used"),
            Self::ReservedOperandSize(n) => write!(f, "operand-size encoding {n} is not used"),
            Self::MissingInterruptionInfo => {
                f.write_str("an exception or NMI exit needs the VM-exit interruption information")
            }
        }
    }
}

impl core::error::Error for QualificationError {}

#[cfg(test)]
mod tests;
