//! The exit protocol: [`ExitRecord`] (VMM server → device model, one per VM exit) and
//! [`ExitReply`] (device model → VMM server).
//!
//! One round trip per exit: the server sends a record with the decoded exit and the guest
//! state groups the device model asked for the exit's [`ExitClass`]; the device model answers
//! with the record's sequence number and a short list of [`Action`]s. The server checks every
//! action against the device model's rights and the exit before applying any; a reply is
//! applied whole, in order, or not at all. A rejected reply is reported by sending the same
//! record again (same `seq`) with [`ExitRecord::rejected`] set, the guest still stopped.

use heapless::Vec;
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::block::block_struct;

use crate::common::{
    AccessSize, EventKind, EventRequest, ExitClass, FieldValue, GeneralRegisters, Gpr, Register, StateGroups,
};
use crate::request::ErrorReport;

/// Most actions in one [`ExitReply`].
pub const MAX_ACTIONS: usize = 16;

/// Longest x86 instruction, in bytes (SDM Vol. 2A, Section 2.3.11).
pub const MAX_INSTRUCTION_LEN: usize = 15;

/// The bytes of the instruction that caused an exit, as far as the server fetched them.
pub type InstructionBytes = Vec<u8, MAX_INSTRUCTION_LEN>;

/// [`ExitRecord::reason`] when no VM exit happened because VMLAUNCH/VMRESUME itself failed
/// (seL4 reports exit reason 0xFFFFFFFF; basic exit reasons are far below 0xFFFF).
pub const NO_EXIT_REASON: u16 = 0xFFFF;

/// One VM exit, sent by the VMM server to the device model.
///
/// Binary form: every field but `rejected` in one block, then `rejected` (see the crate
/// documentation). Human-readable form: a struct of all fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExitRecord {
    /// Sequence number: increases by one per exit; a re-sent record keeps its number.
    pub seq: u64,
    /// The VCPU that exited.
    pub vcpu: u16,
    /// Basic exit reason, bits 15:0 of the exit-reason field (SDM Vol. 3C, Section 28.2.1;
    /// Appendix C), or [`NO_EXIT_REASON`].
    pub reason: u16,
    /// VM entry failed (exit-reason bit 31, SDM Vol. 3C, Section 27.8; also set with
    /// [`NO_EXIT_REASON`]).
    pub entry_failure: bool,
    /// The exit, decoded.
    pub detail: ExitDetail,
    /// Guest RIP at the exit.
    pub rip: u64,
    /// VM-exit instruction length. Defined for exits caused by instructions (SDM Vol. 3C,
    /// Section 28.2.5); 0 or unspecified otherwise.
    pub instruction_len: u8,
    /// The guest state groups the device model asked for this exit's class.
    pub state: GuestState,
    /// Set when this record is sent again because the server rejected the reply to it: the
    /// reason and the index of the offending action. Nothing of that reply was applied.
    pub rejected: Option<ErrorReport>,
}

impl ExitRecord {
    /// A record of no exit (sequence number 0, reason 0, nothing decoded): storage to build
    /// or [`decode_into`](Self::decode_into) records in place.
    pub const EMPTY: ExitRecord = ExitRecord {
        seq: 0,
        vcpu: 0,
        reason: 0,
        entry_failure: false,
        detail: ExitDetail::Unknown { qualification: 0 },
        rip: 0,
        instruction_len: 0,
        state: GuestState::EMPTY,
        rejected: None,
    };

    /// The exit's class (see [`ExitDetail::class`]).
    pub const fn class(&self) -> ExitClass {
        self.detail.class()
    }
}

/// Direction of an I/O instruction.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoDirection {
    /// `IN`/`INS`: the guest reads from the port.
    In,
    /// `OUT`/`OUTS`: the guest writes to the port.
    Out,
}

/// The kind of access that caused an EPT violation (SDM Vol. 3C, Section 28.2.1, Table 28-7,
/// bits 2:0).
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemoryAccess {
    /// A data read (bit 0 only).
    Read,
    /// A data write (bit 1). A read-modify-write sets bit 1 and, depending on the processor,
    /// bit 0 too: it is reported as a write.
    Write,
    /// An instruction fetch (bit 2).
    Fetch,
}

/// The instruction of a control-register access (SDM Vol. 3C, Section 28.2.1, Table 28-3).
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrAccessKind {
    /// `MOV CRn, gpr` (access type 0).
    MovToCr {
        /// The source register.
        gpr: Gpr,
    },
    /// `MOV gpr, CRn` (access type 1).
    MovFromCr {
        /// The destination register.
        gpr: Gpr,
    },
    /// `CLTS` (access type 2).
    Clts,
    /// `LMSW` (access type 3).
    Lmsw {
        /// The LMSW source data (qualification bits 31:16).
        source_data: u16,
        /// The operand was in memory (bit 6), not in a register.
        memory_operand: bool,
    },
}

/// A VM exit, decoded. The server fills this from the exit reason, the exit qualification
/// and the other exit-information fields; reasons it does not decode arrive as
/// [`Unknown`](Self::Unknown) with the raw qualification. Exit reason numbers: SDM Vol. 3C,
/// Appendix C, Table C-1.
///
/// On the wire it travels inside the [`ExitRecord`]'s block (see the crate documentation);
/// its serde derive gives its human-readable (JSON) form.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExitDetail {
    /// Reason 0: an exception or NMI, from the VM-exit interruption-information and error-code
    /// fields (SDM Vol. 3C, Section 28.2.2).
    Exception {
        /// The vector.
        vector: u8,
        /// The interruption type (NMI, hardware exception, or a software exception).
        kind: EventKind,
        /// The error code, when the exception pushed one.
        error_code: Option<u32>,
    },
    /// Reason 2: triple fault.
    TripleFault,
    /// Reason 7: interrupt window (the guest can take an external interrupt).
    InterruptWindow,
    /// Reason 8: NMI window.
    NmiWindow,
    /// Reason 10: `CPUID`.
    Cpuid {
        /// The leaf (EAX).
        leaf: u32,
        /// The subleaf (ECX).
        subleaf: u32,
    },
    /// Reason 12: `HLT`.
    Hlt,
    /// Reason 18: `VMCALL`.
    Vmcall,
    /// Reason 28: control-register access (SDM Vol. 3C, Section 28.2.1, Table 28-3).
    CrAccess {
        /// The control register (0, 3, 4 or 8; 0 for CLTS and LMSW).
        cr: u8,
        /// The instruction.
        access: CrAccessKind,
    },
    /// Reason 30: an I/O instruction (SDM Vol. 3C, Section 28.2.1, Table 28-5).
    Io {
        /// The port.
        port: u16,
        /// The access size (1, 2 or 4 bytes).
        size: AccessSize,
        /// In or out.
        direction: IoDirection,
        /// `INS`/`OUTS`.
        string: bool,
        /// REP-prefixed.
        rep: bool,
        /// For an OUT, the data written: the low `size` bytes of RAX, or for OUTS the element
        /// the server fetched from guest memory. `None` for IN, and for an OUTS whose data
        /// the server did not fetch.
        value: Option<u32>,
    },
    /// Reason 31: `RDMSR`.
    Rdmsr {
        /// The MSR (ECX).
        index: u32,
    },
    /// Reason 32: `WRMSR`.
    Wrmsr {
        /// The MSR (ECX).
        index: u32,
        /// The value (EDX:EAX).
        value: u64,
    },
    /// Reason 33: VM entry failed because of invalid guest state (SDM Vol. 3C, Section 27.8).
    InvalidGuestState {
        /// The exit qualification (which check failed, when it says).
        qualification: u64,
    },
    /// Reason 48: EPT violation, normally memory-mapped I/O (SDM Vol. 3C, Section 28.2.1,
    /// Table 28-7).
    Mmio {
        /// The guest-physical address accessed.
        gpa: u64,
        /// The guest-linear address, when the qualification marks it valid (bit 7).
        gla: Option<u64>,
        /// Read, write or fetch.
        access: MemoryAccess,
        /// The raw exit qualification (permissions, NMI unblocking and the other bits).
        qualification: u64,
        /// The bytes of the faulting instruction, for the device model to decode; empty when
        /// the server did not fetch them.
        instruction: InstructionBytes,
    },
    /// Reason 49: EPT misconfiguration.
    EptMisconfig {
        /// The guest-physical address accessed.
        gpa: u64,
    },
    /// No VM exit: VMLAUNCH/VMRESUME failed as an instruction (record reason
    /// [`NO_EXIT_REASON`]).
    VmInstructionError {
        /// The VM-instruction error number (SDM Vol. 3C, Section 31.4, Table 31-1).
        error: u32,
    },
    /// Any other exit reason, known or not: the record's `reason` says which.
    Unknown {
        /// The raw exit qualification (0 for reasons that have none).
        qualification: u64,
    },
}

impl ExitDetail {
    /// The exit class whose state groups travel with this exit.
    pub const fn class(&self) -> ExitClass {
        match self {
            ExitDetail::Exception { .. } => ExitClass::Exception,
            ExitDetail::TripleFault | ExitDetail::InvalidGuestState { .. } => ExitClass::Failure,
            ExitDetail::VmInstructionError { .. } => ExitClass::Failure,
            ExitDetail::InterruptWindow | ExitDetail::NmiWindow => ExitClass::InterruptWindow,
            ExitDetail::Cpuid { .. } => ExitClass::Cpuid,
            ExitDetail::Hlt => ExitClass::Hlt,
            ExitDetail::Vmcall => ExitClass::Vmcall,
            ExitDetail::CrAccess { .. } => ExitClass::CrAccess,
            ExitDetail::Io { .. } => ExitClass::Io,
            ExitDetail::Rdmsr { .. } | ExitDetail::Wrmsr { .. } => ExitClass::Msr,
            ExitDetail::Mmio { .. } | ExitDetail::EptMisconfig { .. } => ExitClass::Mmio,
            ExitDetail::Unknown { .. } => ExitClass::Other,
        }
    }
}

block_struct! {
    /// A segment register as the VMCS holds it (SDM Vol. 3C, Section 25.4.1).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Segment {
        /// The selector.
        pub selector: u16,
        /// The base address.
        pub base: u64,
        /// The segment limit.
        pub limit: u32,
        /// The access rights in the VMCS format (bit 16: unusable).
        pub access_rights: u32,
    }
}

block_struct! {
    /// All segment registers, LDTR and TR.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Segments {
        /// ES.
        pub es: Segment,
        /// CS.
        pub cs: Segment,
        /// SS.
        pub ss: Segment,
        /// DS.
        pub ds: Segment,
        /// FS.
        pub fs: Segment,
        /// GS.
        pub gs: Segment,
        /// LDTR.
        pub ldtr: Segment,
        /// TR.
        pub tr: Segment,
    }
}

block_struct! {
    /// GDTR and IDTR.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct DescriptorTables {
        /// GDTR base.
        pub gdtr_base: u64,
        /// GDTR limit.
        pub gdtr_limit: u32,
        /// IDTR base.
        pub idtr_base: u64,
        /// IDTR limit.
        pub idtr_limit: u32,
    }
}

block_struct! {
    /// The control registers and EFER.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ControlRegisters {
        /// CR0.
        pub cr0: u64,
        /// CR3.
        pub cr3: u64,
        /// CR4.
        pub cr4: u64,
        /// EFER.
        pub efer: u64,
    }
}

block_struct! {
    /// Guest interruptibility and activity state (SDM Vol. 3C, Section 25.4.2, Tables 25-3 and
    /// 25-4), raw.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct InterruptibilityState {
        /// The interruptibility-state field (STI/MOV-SS/SMI/NMI blocking).
        pub interruptibility: u32,
        /// The activity-state field (0 active, 1 HLT, 2 shutdown, 3 wait-for-SIPI).
        pub activity: u32,
    }
}

block_struct! {
    /// Events in flight, raw interruption-information words (SDM Vol. 3C, Sections 25.8.3 and
    /// 25.9.3): what the exit interrupted, and what the next entry will inject.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct PendingEvents {
        /// IDT-vectoring information: an event whose delivery the exit interrupted.
        pub idt_vectoring_info: u32,
        /// IDT-vectoring error code.
        pub idt_vectoring_error_code: u32,
        /// VM-entry interruption information: the event the next entry injects.
        pub entry_interruption_info: u32,
    }
}

/// Guest state carried by an [`ExitRecord`]: each group is present when the device model asked
/// for it ([`StateGroups`]), absent otherwise.
///
/// Binary form: one byte string holding the [`groups`](Self::groups) present (`u16`,
/// little-endian), then the block of each present group in field order (see the crate
/// documentation). Human-readable form: a struct with one optional field per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GuestState {
    /// [`StateGroups::GPRS`].
    pub gprs: Option<GeneralRegisters>,
    /// [`StateGroups::RSP`].
    pub rsp: Option<u64>,
    /// [`StateGroups::RFLAGS`].
    pub rflags: Option<u64>,
    /// [`StateGroups::SEGMENTS`].
    pub segments: Option<Segments>,
    /// [`StateGroups::DESCRIPTOR_TABLES`].
    pub descriptor_tables: Option<DescriptorTables>,
    /// [`StateGroups::CONTROL_REGISTERS`].
    pub control_registers: Option<ControlRegisters>,
    /// [`StateGroups::DR7`].
    pub dr7: Option<u64>,
    /// [`StateGroups::INTERRUPTIBILITY`].
    pub interruptibility: Option<InterruptibilityState>,
    /// [`StateGroups::PENDING_EVENTS`].
    pub pending_events: Option<PendingEvents>,
}

impl GuestState {
    /// Removes every group, in place: only the groups' tags are written, where assigning
    /// [`GuestState::EMPTY`] writes all 480 bytes (this runs once per exit).
    #[inline]
    pub fn clear(&mut self) {
        self.gprs = None;
        self.rsp = None;
        self.rflags = None;
        self.segments = None;
        self.descriptor_tables = None;
        self.control_registers = None;
        self.dr7 = None;
        self.interruptibility = None;
        self.pending_events = None;
    }

    /// No group.
    pub const EMPTY: GuestState = GuestState {
        gprs: None,
        rsp: None,
        rflags: None,
        segments: None,
        descriptor_tables: None,
        control_registers: None,
        dr7: None,
        interruptibility: None,
        pending_events: None,
    };

    /// The groups present.
    pub const fn groups(&self) -> StateGroups {
        let mut groups = StateGroups::empty();
        let present = [
            (self.gprs.is_some(), StateGroups::GPRS),
            (self.rsp.is_some(), StateGroups::RSP),
            (self.rflags.is_some(), StateGroups::RFLAGS),
            (self.segments.is_some(), StateGroups::SEGMENTS),
            (self.descriptor_tables.is_some(), StateGroups::DESCRIPTOR_TABLES),
            (self.control_registers.is_some(), StateGroups::CONTROL_REGISTERS),
            (self.dr7.is_some(), StateGroups::DR7),
            (self.interruptibility.is_some(), StateGroups::INTERRUPTIBILITY),
            (self.pending_events.is_some(), StateGroups::PENDING_EVENTS),
        ];
        let mut i = 0;
        while i < present.len() {
            if present[i].0 {
                groups = groups.union(present[i].1);
            }
            i += 1;
        }
        groups
    }
}

/// The device model's answer to one [`ExitRecord`].
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExitReply {
    /// The `seq` of the record this answers.
    pub seq: u64,
    /// What the server is to do, in order, before it resumes the guest.
    pub actions: Vec<Action, MAX_ACTIONS>,
}

impl ExitReply {
    /// A reply to record `seq` with no action yet (resume the guest as it is).
    pub const fn new(seq: u64) -> ExitReply {
        ExitReply {
            seq,
            actions: Vec::new(),
        }
    }
}

/// One thing the device model asks the VMM server to do with the exit it answers.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Complete an `IN`/`INS` with the input `value` (its low `size` bytes count). For `IN`
    /// the server merges it into RAX as the instruction would: 1 and 2 bytes replace the low
    /// bits, 4 bytes zero-extend to 64 bits (SDM Vol. 1, Section 3.4.1.1).
    CompleteIo {
        /// The data read from the port.
        value: u32,
    },
    /// Complete an MMIO read: write `value` to `register` as a `MOV` of `size` would (1 and 2
    /// bytes replace the low bits, 4 bytes zero-extend, 8 bytes replace). For anything else
    /// (a high-byte register, sign extension) use [`SetRegister`](Self::SetRegister).
    CompleteMmioRead {
        /// The destination register.
        register: Gpr,
        /// The access size.
        size: AccessSize,
        /// The data read.
        value: u64,
    },
    /// Advance RIP by the record's `instruction_len` (past the exiting instruction).
    AdvanceRip,
    /// Set a register to a value.
    SetRegister {
        /// The register.
        register: Register,
        /// Its new value.
        value: u64,
    },
    /// Write a VMCS field (subject to the device model's write rights).
    WriteField(FieldValue),
    /// Inject an event at the next entry.
    Inject(EventRequest),
    /// Queue an external interrupt; the server injects it when the guest can take it,
    /// opening an interrupt window if needed (like [`Request::RaiseInterrupt`](crate::Request::RaiseInterrupt)).
    RaiseInterrupt {
        /// The vector (32–255).
        vector: u8,
    },
    /// Exit again as soon as the guest can take an external interrupt.
    RequestInterruptWindow,
    /// Exit again as soon as the guest can take an NMI.
    RequestNmiWindow,
    /// Do not resume the guest until an interrupt is raised (after a `HLT`); the server then
    /// injects it and resumes.
    WaitForInterrupt,
    /// From now on, send these state groups with every exit of `class`.
    SetStateGroups {
        /// The exit class.
        class: ExitClass,
        /// The groups its records are to carry.
        groups: StateGroups,
    },
    /// Stop the guest for good with an exit status.
    Stop {
        /// The status (e.g. what the guest wrote to a debug-exit port).
        status: u32,
    },
}
