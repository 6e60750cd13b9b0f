//! The one interface every VMCS backend implements, and its errors.

use core::fmt;

use crate::catalogue::Field;

/// Read and write VMCS fields by raw encoding.
///
/// Implemented by the `vmx` backend (the VMREAD/VMWRITE instructions), the `soft` backend (an
/// in-memory VMCS with hardware semantics) and, in the VMM server, by a kernel-mediated cache
/// over seL4 VCPU invocations. The typed methods of the catalogue enums (e.g.
/// [`crate::VmcsGuestNW::read`]) are built on it.
///
/// Values are passed as `u64` whatever the field's width; a backend truncates written values
/// to the width, and a read never returns bits beyond it.
pub trait VmcsAccess {
    /// Reads the field with encoding `encoding` (FULL or HIGH).
    ///
    /// # Errors
    /// [`VmcsError::VmFailInvalid`] when there is no current VMCS, [`VmcsError::VmFailValid`]
    /// with the VM-instruction error (12 for an unsupported component), or a mediating
    /// kernel's refusal.
    fn read(&mut self, encoding: u32) -> Result<u64, VmcsError>;

    /// Writes `value` to the field with encoding `encoding` (FULL or HIGH).
    ///
    /// # Errors
    /// As for [`VmcsAccess::read`]; also error 13 for a read-only field when the processor
    /// does not allow writing them.
    fn write(&mut self, encoding: u32, value: u64) -> Result<(), VmcsError>;

    /// Reads a catalogue field through its FULL encoding. The typed methods of the catalogue
    /// enums come here: a backend that keeps fields by [`Field::position`] can override it
    /// and skip working the field out of its encoding again.
    ///
    /// # Errors
    /// As for [`VmcsAccess::read`].
    #[inline]
    fn read_field(&mut self, field: Field) -> Result<u64, VmcsError> {
        self.read(field.encoding().raw())
    }

    /// Writes a catalogue field through its FULL encoding (see [`VmcsAccess::read_field`]).
    ///
    /// # Errors
    /// As for [`VmcsAccess::write`].
    #[inline]
    fn write_field(&mut self, field: Field, value: u64) -> Result<(), VmcsError> {
        self.write(field.encoding().raw(), value)
    }
}

impl<T: VmcsAccess + ?Sized> VmcsAccess for &mut T {
    fn read(&mut self, encoding: u32) -> Result<u64, VmcsError> {
        (**self).read(encoding)
    }

    fn write(&mut self, encoding: u32, value: u64) -> Result<(), VmcsError> {
        (**self).write(encoding, value)
    }

    fn read_field(&mut self, field: Field) -> Result<u64, VmcsError> {
        (**self).read_field(field)
    }

    fn write_field(&mut self, field: Field, value: u64) -> Result<(), VmcsError> {
        (**self).write_field(field, value)
    }
}

/// Why a VMCS access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum VmcsError {
    /// VMfailInvalid: no current VMCS (RFLAGS.CF = 1; SDM Vol. 3C, Section 31.2).
    VmFailInvalid,
    /// VMfailValid: the instruction failed with this VM-instruction error (RFLAGS.ZF = 1, error
    /// number in the VM-instruction error field; SDM Vol. 3C, Section 31.4).
    VmFailValid(VmInstructionError),
    /// A kernel that mediates VMCS access (e.g. seL4's `X86_VCPU_ReadVMCS`) refused with this
    /// error number.
    Kernel(u32),
}

impl fmt::Display for VmcsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VmFailInvalid => f.write_str("VMfailInvalid (no current VMCS)"),
            Self::VmFailValid(e) => write!(f, "VMfailValid: {e}"),
            Self::Kernel(n) => write!(f, "refused by the kernel (error {n})"),
        }
    }
}

impl core::error::Error for VmcsError {}

macro_rules! instruction_errors {
    ($( $variant:ident = $n:literal, $text:literal; )*) => {
        /// VM-instruction error numbers (SDM Vol. 3C, Section 31.4, Table 31-1).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum VmInstructionError {
            $( #[doc = concat!($text, " (", stringify!($n), ").")] $variant, )*
            /// A number the SDM does not define.
            Unknown(u32),
        }

        impl VmInstructionError {
            /// Decodes the VM-instruction error field.
            pub const fn from_number(n: u32) -> Self {
                match n { $($n => Self::$variant,)* other => Self::Unknown(other) }
            }

            /// The error number.
            pub const fn number(self) -> u32 {
                match self { $(Self::$variant => $n,)* Self::Unknown(n) => n }
            }

            /// The SDM's description.
            pub const fn description(self) -> &'static str {
                match self { $(Self::$variant => $text,)* Self::Unknown(_) => "undefined VM-instruction error" }
            }
        }
    };
}

instruction_errors! {
    VmcallInRoot = 1, "VMCALL executed in VMX root operation";
    VmclearInvalidAddress = 2, "VMCLEAR with invalid physical address";
    VmclearVmxonPointer = 3, "VMCLEAR with VMXON pointer";
    VmlaunchNonClear = 4, "VMLAUNCH with non-clear VMCS";
    VmresumeNonLaunched = 5, "VMRESUME with non-launched VMCS";
    VmresumeAfterVmxoff = 6, "VMRESUME after VMXOFF";
    EntryInvalidControls = 7, "VM entry with invalid control field(s)";
    EntryInvalidHostState = 8, "VM entry with invalid host-state field(s)";
    VmptrldInvalidAddress = 9, "VMPTRLD with invalid physical address";
    VmptrldVmxonPointer = 10, "VMPTRLD with VMXON pointer";
    VmptrldBadRevision = 11, "VMPTRLD with incorrect VMCS revision identifier";
    UnsupportedComponent = 12, "VMREAD/VMWRITE from/to unsupported VMCS component";
    WriteReadOnlyComponent = 13, "VMWRITE to read-only VMCS component";
    VmxonInRoot = 15, "VMXON executed in VMX root operation";
    EntryInvalidExecutiveVmcsPointer = 16, "VM entry with invalid executive-VMCS pointer";
    EntryNonLaunchedExecutiveVmcs = 17, "VM entry with non-launched executive VMCS";
    EntryExecutiveVmcsNotVmxon = 18, "VM entry with executive-VMCS pointer not VMXON pointer (when attempting to deactivate the dual-monitor treatment of SMIs and SMM)";
    VmcallNonClearVmcs = 19, "VMCALL with non-clear VMCS (when attempting to activate the dual-monitor treatment of SMIs and SMM)";
    VmcallInvalidExitControls = 20, "VMCALL with invalid VM-exit control fields";
    VmcallBadMsegRevision = 22, "VMCALL with incorrect MSEG revision identifier";
    VmxoffUnderDualMonitor = 23, "VMXOFF under dual-monitor treatment of SMIs and SMM";
    VmcallInvalidSmmMonitorFeatures = 24, "VMCALL with invalid SMM-monitor features";
    EntryInvalidExecutiveControls = 25, "VM entry with invalid VM-execution control fields in executive VMCS";
    EntryEventsBlockedByMovSs = 26, "VM entry with events blocked by MOV SS";
    InvalidInveptInvvpidOperand = 28, "Invalid operand to INVEPT/INVVPID";
}

impl fmt::Display for VmInstructionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VM-instruction error {}: {}",
            self.number(),
            self.description()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_numbers_round_trip() {
        for n in 0..64 {
            assert_eq!(VmInstructionError::from_number(n).number(), n);
        }
        assert_eq!(
            VmInstructionError::from_number(12),
            VmInstructionError::UnsupportedComponent
        );
        assert_eq!(
            VmInstructionError::from_number(14),
            VmInstructionError::Unknown(14)
        );
        assert_eq!(
            VmInstructionError::from_number(21),
            VmInstructionError::Unknown(21)
        );
    }
}
