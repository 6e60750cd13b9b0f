//! The kernel interface: what the seL4 x86 VCPU object lets a user-level VMM do, and nothing more.
//!
//! The trait mirrors the invocations one to one (seL4 5.0 `libsel4` interface XML, object
//! `X86_VCPU`, and the `seL4_VMEnter` system call; see `notes/sel4-vcpu-api.md`):
//!
//! | method | seL4 |
//! |---|---|
//! | [`VcpuKernel::read_vmcs`] | `seL4_X86_VCPU_ReadVMCS(vcpu, field)` → `.value` |
//! | [`VcpuKernel::write_vmcs`] | `seL4_X86_VCPU_WriteVMCS(vcpu, field, value)` → `.written` |
//! | [`VcpuKernel::write_registers`] | `seL4_X86_VCPU_WriteRegisters(vcpu, &regs)` |
//! | [`VcpuKernel::vm_enter`] | `seL4_VMEnter(&badge)` with MR0–MR2 in, fault message out |
//!
//! Implementations: the seL4 backend (invocations on the VCPU capability) and
//! [`crate::model::ModelVcpu`], a software VCPU that obeys the same rules.

use core::fmt;

/// seL4's error codes (`seL4_Error`, libsel4 `include/sel4/errors.h`), as returned by an
/// invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum KernelError {
    /// `seL4_InvalidArgument` (1).
    InvalidArgument,
    /// `seL4_InvalidCapability` (2).
    InvalidCapability,
    /// `seL4_IllegalOperation` (3): e.g. ReadVMCS/WriteVMCS of a field the kernel does not expose.
    IllegalOperation,
    /// `seL4_RangeError` (4).
    RangeError,
    /// `seL4_AlignmentError` (5).
    AlignmentError,
    /// `seL4_FailedLookup` (6).
    FailedLookup,
    /// `seL4_TruncatedMessage` (7).
    TruncatedMessage,
    /// `seL4_DeleteFirst` (8).
    DeleteFirst,
    /// `seL4_RevokeFirst` (9).
    RevokeFirst,
    /// `seL4_NotEnoughMemory` (10).
    NotEnoughMemory,
    /// A number seL4 does not define.
    Unknown(u32),
}

impl KernelError {
    /// The `seL4_Error` number.
    pub const fn number(self) -> u32 {
        match self {
            Self::InvalidArgument => 1,
            Self::InvalidCapability => 2,
            Self::IllegalOperation => 3,
            Self::RangeError => 4,
            Self::AlignmentError => 5,
            Self::FailedLookup => 6,
            Self::TruncatedMessage => 7,
            Self::DeleteFirst => 8,
            Self::RevokeFirst => 9,
            Self::NotEnoughMemory => 10,
            Self::Unknown(n) => n,
        }
    }

    /// Decodes an `seL4_Error` number (0, no error, is not an error and maps to `Unknown(0)`).
    pub const fn from_number(n: u32) -> Self {
        match n {
            1 => Self::InvalidArgument,
            2 => Self::InvalidCapability,
            3 => Self::IllegalOperation,
            4 => Self::RangeError,
            5 => Self::AlignmentError,
            6 => Self::FailedLookup,
            7 => Self::TruncatedMessage,
            8 => Self::DeleteFirst,
            9 => Self::RevokeFirst,
            10 => Self::NotEnoughMemory,
            other => Self::Unknown(other),
        }
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::InvalidArgument => "invalid argument",
            Self::InvalidCapability => "invalid capability",
            Self::IllegalOperation => "illegal operation",
            Self::RangeError => "range error",
            Self::AlignmentError => "alignment error",
            Self::FailedLookup => "failed lookup",
            Self::TruncatedMessage => "truncated message",
            Self::DeleteFirst => "delete first",
            Self::RevokeFirst => "revoke first",
            Self::NotEnoughMemory => "not enough memory",
            Self::Unknown(_) => "unknown error",
        };
        write!(f, "seL4 error {} ({name})", self.number())
    }
}

impl core::error::Error for KernelError {}

/// The guest's general registers as the VCPU object holds them: the seven of
/// `seL4_VCPUContext` (EAX, EBX, ECX, EDX, ESI, EDI, EBP) and, with 64-bit guest support
/// (modern kernels), R8–R15. RSP is a VMCS field (guest RSP), not one of these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[allow(missing_docs)]
pub struct VcpuRegisters {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

impl VcpuRegisters {
    /// The register with hardware number `n` (the numbering of ModRM, CR-access and MOV-DR
    /// qualifications: 0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP, 5 RBP, 6 RSI, 7 RDI, 8–15 R8–R15;
    /// SDM Vol. 3C, Table 28-3). `None` for 4 (RSP lives in the VMCS) and numbers above 15.
    pub fn by_hardware_number(&self, n: u8) -> Option<u64> {
        Some(match n {
            0 => self.rax,
            1 => self.rcx,
            2 => self.rdx,
            3 => self.rbx,
            5 => self.rbp,
            6 => self.rsi,
            7 => self.rdi,
            8 => self.r8,
            9 => self.r9,
            10 => self.r10,
            11 => self.r11,
            12 => self.r12,
            13 => self.r13,
            14 => self.r14,
            15 => self.r15,
            _ => return None,
        })
    }

    /// Mutable access to the register with hardware number `n`; `None` as for
    /// [`VcpuRegisters::by_hardware_number`].
    pub fn by_hardware_number_mut(&mut self, n: u8) -> Option<&mut u64> {
        Some(match n {
            0 => &mut self.rax,
            1 => &mut self.rcx,
            2 => &mut self.rdx,
            3 => &mut self.rbx,
            5 => &mut self.rbp,
            6 => &mut self.rsi,
            7 => &mut self.rdi,
            8 => &mut self.r8,
            9 => &mut self.r9,
            10 => &mut self.r10,
            11 => &mut self.r11,
            12 => &mut self.r12,
            13 => &mut self.r13,
            14 => &mut self.r14,
            15 => &mut self.r15,
            _ => return None,
        })
    }
}

/// `seL4_VMEnter` inputs: MR0 guest RIP, MR1 primary processor-based controls, MR2 VM-entry
/// interruption information.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnterInput {
    /// Guest RIP.
    pub rip: u64,
    /// Primary processor-based VM-execution controls (the kernel masks them).
    pub primary_controls: u32,
    /// VM-entry interruption-information field.
    pub entry_interruption_info: u32,
}

/// Exit reason the kernel reports when VM entry itself failed (VMLAUNCH/VMRESUME returned
/// VMfail); the VM-instruction error field says why.
pub const ENTRY_FAILED: u32 = 0xFFFF_FFFF;

/// The fault message `seL4_VMEnter` returns on a VM exit (message registers 0–16, plus 17–24
/// for R8–R15 with 64-bit guests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultMessage {
    /// MR0: guest RIP.
    pub rip: u64,
    /// MR1: primary processor-based controls.
    pub primary_controls: u32,
    /// MR2: VM-entry interruption information (valid bit cleared if the event was delivered).
    pub entry_interruption_info: u32,
    /// MR3: exit reason (`& 0xFFFF`, or [`ENTRY_FAILED`]).
    pub exit_reason: u32,
    /// MR4: exit qualification (0 for reasons without one).
    pub qualification: u64,
    /// MR5: VM-exit instruction length.
    pub instruction_len: u32,
    /// MR6: guest-physical address (stale on exits other than EPT violation/misconfiguration).
    pub guest_physical: u64,
    /// MR7: guest RFLAGS.
    pub rflags: u64,
    /// MR8: guest interruptibility state.
    pub interruptibility: u32,
    /// MR9: guest CR3.
    pub cr3: u64,
    /// MR10–MR16 (and MR17–MR24): general registers.
    pub registers: VcpuRegisters,
}

/// What `seL4_VMEnter` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnterOutcome {
    /// `SEL4_VMENTER_RESULT_FAULT`: a VM exit (or entry failure) with its fault message.
    Exit(FaultMessage),
    /// `SEL4_VMENTER_RESULT_NOTIF`: the bound notification was signalled before or while the
    /// guest ran; MR0–MR2 hold the state to re-enter with.
    Notification {
        /// The notification's badge.
        badge: u64,
        /// Where to re-enter.
        resume: EnterInput,
    },
}

/// The seL4 x86 VCPU object, as seen by the thread bound to it.
pub trait VcpuKernel {
    /// `seL4_X86_VCPU_ReadVMCS`.
    ///
    /// # Errors
    /// `IllegalOperation` for a field the kernel does not expose for reading.
    fn read_vmcs(&mut self, field: u32) -> Result<u64, KernelError>;

    /// `seL4_X86_VCPU_WriteVMCS`; returns the value the kernel actually wrote (it forces and
    /// masks bits of the controls and of guest CR0/CR4).
    ///
    /// # Errors
    /// `IllegalOperation` for a field the kernel does not let user level write.
    fn write_vmcs(&mut self, field: u32, value: u64) -> Result<u64, KernelError>;

    /// `seL4_X86_VCPU_WriteRegisters`: EAX..EBP, plus R8–R15 on kernels with 64-bit guests.
    ///
    /// # Errors
    /// As the kernel reports.
    fn write_registers(&mut self, registers: &VcpuRegisters) -> Result<(), KernelError>;

    /// Whether `WriteVMCS` of `field` can succeed on this kernel (seL4 writes only a fixed
    /// set of fields, and 5.0 fewer than later versions). Lets a VMM avoid staging a write
    /// the kernel would refuse; the default claims every field.
    fn writable(&self, field: u32) -> bool {
        let _ = field;
        true
    }

    /// `seL4_VMEnter`: run the guest until it exits or the bound notification is signalled.
    ///
    /// # Errors
    /// As the kernel reports (e.g. no VCPU bound to the calling thread).
    fn vm_enter(&mut self, input: &EnterInput) -> Result<EnterOutcome, KernelError>;
}

impl<K: VcpuKernel + ?Sized> VcpuKernel for &mut K {
    fn read_vmcs(&mut self, field: u32) -> Result<u64, KernelError> {
        (**self).read_vmcs(field)
    }
    fn write_vmcs(&mut self, field: u32, value: u64) -> Result<u64, KernelError> {
        (**self).write_vmcs(field, value)
    }
    fn write_registers(&mut self, registers: &VcpuRegisters) -> Result<(), KernelError> {
        (**self).write_registers(registers)
    }
    fn writable(&self, field: u32) -> bool {
        (**self).writable(field)
    }
    fn vm_enter(&mut self, input: &EnterInput) -> Result<EnterOutcome, KernelError> {
        (**self).vm_enter(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_numbers_round_trip() {
        for n in 0..20 {
            assert_eq!(KernelError::from_number(n).number(), n);
        }
        assert_eq!(KernelError::from_number(3), KernelError::IllegalOperation);
    }

    #[test]
    fn hardware_numbering_maps_to_named_registers() {
        let mut regs = VcpuRegisters {
            rcx: 1,
            rbx: 3,
            r15: 15,
            ..Default::default()
        };
        assert_eq!(regs.by_hardware_number(1), Some(1));
        assert_eq!(regs.by_hardware_number(3), Some(3));
        assert_eq!(regs.by_hardware_number(15), Some(15));
        assert_eq!(regs.by_hardware_number(4), None, "RSP is a VMCS field");
        assert_eq!(regs.by_hardware_number(16), None);
        *regs.by_hardware_number_mut(2).unwrap() = 7;
        assert_eq!(regs.rdx, 7);
    }
}
