//! Scripted guests: what the guest does, one exit per step, and what the VMM must have done
//! before the guest continues.
//!
//! A script is data (serde-readable with the `serde` feature; the host tool reads JSON).
//! Expectations use serde's external tagging: a unit expectation is its kebab-case name, one
//! with fields an object with that name as its only key. Each [`Step`] describes one
//! exit as the processor reports it ([`ExitSpec`]) and the [`Expectation`]s checked at the
//! next `VMEnter`, i.e. after the VMM handled the exit. Example (JSON):
//!
//! ```json
//! { "name": "one OUT",
//!   "start_rip": 8192,
//!   "steps": [
//!     { "label": "out dx, al ('H')",
//!       "exit": { "reason": 30, "qualification": 66584576, "instruction_len": 1,
//!                 "registers": { "rax": 72, "rdx": 1016 } },
//!       "expect": [ "rip-advanced", { "register": { "register": "rdx", "value": 1016 } } ] } ] }
//! ```
//!
//! The guest's RIP at each exit is where the VMM last entered it; registers not named by a
//! step keep the values the VMM gave them.

use crate::kernel::VcpuRegisters;

/// Capacity of a step's expectation list.
pub const MAX_EXPECTATIONS: usize = 8;
/// Capacity of a label.
pub const MAX_LABEL: usize = 48;

/// A named general register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[allow(missing_docs)]
pub enum Register {
    Rax,
    Rbx,
    Rcx,
    Rdx,
    Rsi,
    Rdi,
    Rbp,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
}

impl Register {
    /// The register's value in `regs`.
    pub fn get(self, regs: &VcpuRegisters) -> u64 {
        match self {
            Self::Rax => regs.rax,
            Self::Rbx => regs.rbx,
            Self::Rcx => regs.rcx,
            Self::Rdx => regs.rdx,
            Self::Rsi => regs.rsi,
            Self::Rdi => regs.rdi,
            Self::Rbp => regs.rbp,
            Self::R8 => regs.r8,
            Self::R9 => regs.r9,
            Self::R10 => regs.r10,
            Self::R11 => regs.r11,
            Self::R12 => regs.r12,
            Self::R13 => regs.r13,
            Self::R14 => regs.r14,
            Self::R15 => regs.r15,
        }
    }

    /// Sets the register in `regs`.
    pub fn set(self, regs: &mut VcpuRegisters, value: u64) {
        let slot = match self {
            Self::Rax => &mut regs.rax,
            Self::Rbx => &mut regs.rbx,
            Self::Rcx => &mut regs.rcx,
            Self::Rdx => &mut regs.rdx,
            Self::Rsi => &mut regs.rsi,
            Self::Rdi => &mut regs.rdi,
            Self::Rbp => &mut regs.rbp,
            Self::R8 => &mut regs.r8,
            Self::R9 => &mut regs.r9,
            Self::R10 => &mut regs.r10,
            Self::R11 => &mut regs.r11,
            Self::R12 => &mut regs.r12,
            Self::R13 => &mut regs.r13,
            Self::R14 => &mut regs.r14,
            Self::R15 => &mut regs.r15,
        };
        *slot = value;
    }

    /// Every register, in `seL4_VCPUContext` order.
    pub const ALL: [Register; 15] = [
        Self::Rax,
        Self::Rbx,
        Self::Rcx,
        Self::Rdx,
        Self::Rsi,
        Self::Rdi,
        Self::Rbp,
        Self::R8,
        Self::R9,
        Self::R10,
        Self::R11,
        Self::R12,
        Self::R13,
        Self::R14,
        Self::R15,
    ];
}

/// Register values the guest holds when it exits; `None` leaves a register as it was.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[allow(missing_docs)]
pub struct RegisterValues {
    pub rax: Option<u64>,
    pub rbx: Option<u64>,
    pub rcx: Option<u64>,
    pub rdx: Option<u64>,
    pub rsi: Option<u64>,
    pub rdi: Option<u64>,
    pub rbp: Option<u64>,
    pub r8: Option<u64>,
    pub r9: Option<u64>,
    pub r10: Option<u64>,
    pub r11: Option<u64>,
    pub r12: Option<u64>,
    pub r13: Option<u64>,
    pub r14: Option<u64>,
    pub r15: Option<u64>,
}

impl RegisterValues {
    /// Applies the named values to `regs`. Field by field: this runs once per scripted exit,
    /// and a loop over [`Register::ALL`] with a `match` per register cost several times more.
    pub fn apply(&self, regs: &mut VcpuRegisters) {
        let pairs = [
            (self.rax, &mut regs.rax),
            (self.rbx, &mut regs.rbx),
            (self.rcx, &mut regs.rcx),
            (self.rdx, &mut regs.rdx),
            (self.rsi, &mut regs.rsi),
            (self.rdi, &mut regs.rdi),
            (self.rbp, &mut regs.rbp),
            (self.r8, &mut regs.r8),
            (self.r9, &mut regs.r9),
            (self.r10, &mut regs.r10),
            (self.r11, &mut regs.r11),
            (self.r12, &mut regs.r12),
            (self.r13, &mut regs.r13),
            (self.r14, &mut regs.r14),
            (self.r15, &mut regs.r15),
        ];
        for (value, register) in pairs {
            if let Some(value) = value {
                *register = value;
            }
        }
    }
}

/// One exit as the processor reports it. Unnamed fields are 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct ExitSpec {
    /// Where the exit happens, if not where the VMM last entered the guest (the guest
    /// branched since: e.g. the first step of a loop's next iteration).
    pub rip: Option<u64>,
    /// Basic exit reason (SDM Vol. 3D, Appendix C), or 0xFFFFFFFF for a failed VM entry.
    pub reason: u32,
    /// Exit qualification.
    pub qualification: u64,
    /// VM-exit instruction length.
    pub instruction_len: u32,
    /// VM-exit instruction information.
    pub instruction_info: u32,
    /// Guest-physical address (EPT violations and misconfigurations).
    pub guest_physical: u64,
    /// Guest-linear address.
    pub guest_linear: u64,
    /// VM-exit interruption information (exceptions, NMIs, external interrupts).
    pub interruption_info: u32,
    /// VM-exit interruption error code.
    pub interruption_error: u32,
    /// IDT-vectoring information: the event whose delivery the exit interrupted.
    pub idt_vectoring_info: u32,
    /// IDT-vectoring error code.
    pub idt_vectoring_error: u32,
    /// VM-instruction error, for a failed VM entry.
    pub vm_instruction_error: u32,
    /// Guest RFLAGS at the exit (`None`: unchanged).
    pub rflags: Option<u64>,
    /// Guest interruptibility state at the exit (`None`: unchanged).
    pub interruptibility: Option<u32>,
    /// Register values at the exit.
    pub registers: RegisterValues,
}

/// Something the VMM must have done by the time it enters the guest after a step's exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case", deny_unknown_fields))]
pub enum Expectation {
    /// RIP moved past the instruction: exit RIP + instruction length.
    RipAdvanced,
    /// RIP is where the exit happened (the instruction is re-executed, or an event is delivered).
    RipUnchanged,
    /// RIP has this value.
    Rip {
        /// Expected RIP.
        value: u64,
    },
    /// A general register has this value.
    Register {
        /// Which register.
        register: Register,
        /// Expected value.
        value: u64,
    },
    /// The entry injects this event (VM-entry interruption information, valid bit included).
    EventPending {
        /// Expected VM-entry interruption information.
        info: u32,
    },
    /// The entry injects nothing.
    NoEventPending,
    /// A VMCS field holds this value (as the kernel wrote it).
    Field {
        /// Field encoding.
        encoding: u32,
        /// Expected value.
        value: u64,
    },
    /// Interrupt-window exiting (primary control bit 2) is on.
    InterruptWindowRequested,
    /// Interrupt-window exiting is off.
    InterruptWindowNotRequested,
    /// The VMM does not enter the guest again: the run ends after this exit.
    Stopped,
}

/// A label for reports.
pub type Label = heapless::String<MAX_LABEL>;

/// One step of a scripted guest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Step {
    /// What the step is (for reports).
    #[cfg_attr(feature = "serde", serde(default))]
    pub label: Label,
    /// The exit the guest causes.
    pub exit: ExitSpec,
    /// What must hold at the next entry.
    #[cfg_attr(feature = "serde", serde(default))]
    pub expect: heapless::Vec<Expectation, MAX_EXPECTATIONS>,
}

/// Where a guest starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct StartState {
    /// RIP at the first entry (the VMM sets it; a mismatch is reported).
    pub rip: u64,
    /// RFLAGS.
    pub rflags: u64,
}
