//! Basic exit reasons (SDM Vol. 3D, Appendix C, Table C-1) and the 32-bit exit-reason field
//! (SDM Vol. 3C, Section 25.9.1, Table 25-18).

use core::fmt;

/// The exit qualification has a defined format for this reason (SDM Vol. 3C, Section 28.2.1).
const Q: u8 = 1 << 0;
/// Every exit with this reason records the VM-exit instruction length (Section 28.2.5).
const L: u8 = 1 << 1;
/// The VM-exit instruction-information field is defined for this reason (Section 28.2.5).
const I: u8 = 1 << 2;
/// None of the above.
const NONE: u8 = 0;

macro_rules! exit_reasons {
    ($( $(#[doc = $doc:literal])* $variant:ident = $n:literal, $name:literal, $flags:expr; )*) => {
        /// A basic exit reason: bits 15:0 of the exit-reason field (SDM Vol. 3D, Appendix C,
        /// Table C-1).
        ///
        /// Every number the SDM assigns has a variant; any other number is kept as
        /// [`ExitReason::Unknown`], so decoding never fails and [`ExitReason::number`] always
        /// gives back the number that was decoded.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum ExitReason {
            $(
                #[doc = concat!($name, " (", stringify!($n), ").")]
                $(#[doc = ""] #[doc = $doc])*
                $variant,
            )*
            /// A number the SDM does not assign (35, 38, 42, 71, 82, 83, 86 and up, ...).
            Unknown(u16),
        }

        impl ExitReason {
            /// Every defined exit reason, in numeric order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The reason with basic exit-reason number `number`.
            pub const fn from_number(number: u16) -> Self {
                match number {
                    $($n => Self::$variant,)*
                    other => Self::Unknown(other),
                }
            }

            /// The basic exit-reason number.
            pub const fn number(self) -> u16 {
                match self {
                    $(Self::$variant => $n,)*
                    Self::Unknown(n) => n,
                }
            }

            /// The SDM's name of the reason (Table C-1), e.g. `"I/O instruction"`;
            /// `"unknown"` for [`ExitReason::Unknown`].
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                    Self::Unknown(_) => "unknown",
                }
            }

            const fn flags(self) -> u8 {
                match self {
                    $(Self::$variant => $flags,)*
                    Self::Unknown(_) => NONE,
                }
            }
        }
    };
}

exit_reasons! {
    /// Exception (exception-bitmap hit) or NMI with "NMI exiting"; see the exit
    /// interruption information. The exit qualification is defined for #DB and #PF only.
    ExceptionOrNmi = 0, "Exception or non-maskable interrupt (NMI)", Q;
    ExternalInterrupt = 1, "External interrupt", NONE;
    TripleFault = 2, "Triple fault", NONE;
    InitSignal = 3, "INIT signal", NONE;
    StartupIpi = 4, "Start-up IPI (SIPI)", Q;
    /// An SMM VM exit (dual-monitor treatment) for an SMI right after an I/O instruction; the
    /// exit qualification describes that instruction (SDM Vol. 3C, Section 33.15.2.3).
    IoSmi = 5, "I/O system-management interrupt (SMI)", Q;
    OtherSmi = 6, "Other SMI", NONE;
    InterruptWindow = 7, "Interrupt window", NONE;
    NmiWindow = 8, "NMI window", NONE;
    /// The instruction length is recorded only for CALL, IRET, JMP, and for task gates met
    /// while delivering a software event; see [`crate::exit::VmxExitInfo`].
    TaskSwitch = 9, "Task switch", Q;
    Cpuid = 10, "CPUID", L;
    Getsec = 11, "GETSEC", L;
    Hlt = 12, "HLT", L;
    Invd = 13, "INVD", L;
    Invlpg = 14, "INVLPG", Q | L;
    Rdpmc = 15, "RDPMC", L;
    Rdtsc = 16, "RDTSC", L;
    Rsm = 17, "RSM", L;
    Vmcall = 18, "VMCALL", L;
    Vmclear = 19, "VMCLEAR", Q | L | I;
    Vmlaunch = 20, "VMLAUNCH", L;
    Vmptrld = 21, "VMPTRLD", Q | L | I;
    Vmptrst = 22, "VMPTRST", Q | L | I;
    Vmread = 23, "VMREAD", Q | L | I;
    Vmresume = 24, "VMRESUME", L;
    Vmwrite = 25, "VMWRITE", Q | L | I;
    Vmxoff = 26, "VMXOFF", L;
    Vmxon = 27, "VMXON", Q | L | I;
    /// MOV to/from CR0, CR3, CR4, CR8, CLTS and LMSW.
    CrAccess = 28, "Control-register accesses", Q | L;
    MovDr = 29, "MOV DR", Q | L;
    /// IN, INS, OUT, OUTS. Instruction information is defined for INS and OUTS only, and
    /// only on processors that set IA32_VMX_BASIC bit 54.
    IoInstruction = 30, "I/O instruction", Q | L | I;
    Rdmsr = 31, "RDMSR", L;
    /// WRMSR and WRMSRNS.
    Wrmsr = 32, "WRMSR", L;
    EntryFailureGuestState = 33, "VM-entry failure due to invalid guest state", Q;
    EntryFailureMsrLoading = 34, "VM-entry failure due to MSR loading", Q;
    Mwait = 36, "MWAIT", Q | L;
    MonitorTrapFlag = 37, "Monitor trap flag", NONE;
    Monitor = 39, "MONITOR", L;
    Pause = 40, "PAUSE", L;
    EntryFailureMachineCheck = 41, "VM-entry failure due to machine-check event", NONE;
    TprBelowThreshold = 43, "TPR below threshold", NONE;
    ApicAccess = 44, "APIC access", Q;
    VirtualizedEoi = 45, "Virtualized EOI", Q;
    /// LGDT, LIDT, SGDT, SIDT.
    GdtrIdtrAccess = 46, "Access to GDTR or IDTR", Q | L | I;
    /// LLDT, LTR, SLDT, STR.
    LdtrTrAccess = 47, "Access to LDTR or TR", Q | L | I;
    EptViolation = 48, "EPT violation", Q;
    /// The exit qualification is not defined; the guest-physical address field is.
    EptMisconfiguration = 49, "EPT misconfiguration", NONE;
    Invept = 50, "INVEPT", Q | L | I;
    Rdtscp = 51, "RDTSCP", L;
    PreemptionTimerExpired = 52, "VMX-preemption timer expired", NONE;
    Invvpid = 53, "INVVPID", Q | L | I;
    Wbinvd = 54, "WBINVD or WBNOINVD", L;
    Xsetbv = 55, "XSETBV", L;
    ApicWrite = 56, "APIC write", Q;
    Rdrand = 57, "RDRAND", L | I;
    Invpcid = 58, "INVPCID", Q | L | I;
    /// Only failing VMFUNC invocations exit, and each records its length.
    Vmfunc = 59, "VMFUNC", L;
    Encls = 60, "ENCLS", L;
    Rdseed = 61, "RDSEED", L | I;
    PmlFull = 62, "Page-modification log full", Q;
    Xsaves = 63, "XSAVES", Q | L | I;
    Xrstors = 64, "XRSTORS", Q | L | I;
    Pconfig = 65, "PCONFIG", L;
    SppEvent = 66, "SPP-related event", Q;
    Umwait = 67, "UMWAIT", L | I;
    Tpause = 68, "TPAUSE", L | I;
    Loadiwkey = 69, "LOADIWKEY", L | I;
    Enclv = 70, "ENCLV", L;
    EnqcmdPasidFailure = 72, "ENQCMD PASID translation failure", NONE;
    EnqcmdsPasidFailure = 73, "ENQCMDS PASID translation failure", NONE;
    /// A bus lock was asserted while "bus-lock detection" was 1 (Linux: `BUS_LOCK`). Other
    /// exits that coincide with a bus lock set bit 26 of the exit-reason field instead.
    BusLock = 74, "Bus lock", NONE;
    /// The "instruction timeout" control fired (Linux calls it `NOTIFY`).
    InstructionTimeout = 75, "Instruction timeout", Q;
    Seamcall = 76, "SEAMCALL", L;
    Tdcall = 77, "TDCALL", L;
    Rdmsrlist = 78, "RDMSRLIST", L;
    Wrmsrlist = 79, "WRMSRLIST", L;
    /// From the Intel ISE (USER_MSR); the exit qualification holds the MSR index.
    Urdmsr = 80, "URDMSR", Q | L | I;
    /// From the Intel ISE (USER_MSR); the exit qualification holds the MSR index.
    Uwrmsr = 81, "UWRMSR", Q | L | I;
    /// From the Intel ISE (MSR_IMM); the exit qualification holds the MSR index.
    RdmsrImmediate = 84, "RDMSR with immediate operand", Q | L | I;
    /// From the Intel ISE (MSR_IMM); the exit qualification holds the MSR index.
    WrmsrnsImmediate = 85, "WRMSRNS with immediate operand", Q | L | I;
}

impl ExitReason {
    /// Whether the SDM defines the exit qualification for this reason (SDM Vol. 3C,
    /// Section 28.2.1). For other reasons the field is cleared or undefined, and
    /// [`crate::exit::VmxExitInfo::read`] does not read it.
    pub const fn has_qualification(self) -> bool {
        self.flags() & Q != 0
    }

    /// Whether every exit with this reason is caused by executing an instruction and records
    /// its length in the VM-exit instruction-length field (SDM Vol. 3C, Section 28.2.5;
    /// Section 25.9.4).
    ///
    /// Some exits of other reasons record it too (software exceptions, faults while
    /// delivering a software event, task switches by CALL/IRET/JMP);
    /// [`crate::exit::VmxExitInfo::instruction_length`] applies the full rule.
    pub const fn has_instruction_length(self) -> bool {
        self.flags() & L != 0
    }

    /// Whether the VM-exit instruction-information field is defined for this reason (SDM
    /// Vol. 3C, Section 28.2.5). For [`ExitReason::IoInstruction`] it is defined for INS and
    /// OUTS only.
    pub const fn has_instruction_info(self) -> bool {
        self.flags() & I != 0
    }

    /// Whether this reason reports a failed VM entry rather than a VM exit (33, 34, 41;
    /// SDM Vol. 3C, Section 27.8). Such exits also set bit 31 of the exit-reason field.
    pub const fn is_entry_failure(self) -> bool {
        matches!(
            self,
            Self::EntryFailureGuestState | Self::EntryFailureMsrLoading | Self::EntryFailureMachineCheck
        )
    }
}

impl From<u16> for ExitReason {
    fn from(number: u16) -> Self {
        Self::from_number(number)
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.number())
    }
}

/// The whole 32-bit exit-reason field (SDM Vol. 3C, Section 25.9.1, Table 25-18).
///
/// | bits  | meaning |
/// |-------|---------|
/// | 15:0  | basic exit reason ([`ExitReason`]) |
/// | 16    | always 0 |
/// | 24:17 | not currently defined |
/// | 25    | shadow stack prematurely busy (with the secondary VM-exit control of that name) |
/// | 26    | a bus lock was detected during the instruction (when "bus-lock detection" is 1) |
/// | 27    | the exit was incident to enclave mode |
/// | 28    | pending MTF VM exit (SMM VM exits only) |
/// | 29    | VM exit from VMX root operation (SMM VM exits only) |
/// | 30    | not currently defined |
/// | 31    | VM-entry failure (0 = true VM exit) |
///
/// Any `u32` is accepted; the raw value stays available through [`ExitReasonWord::raw`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct ExitReasonWord(u32);

impl ExitReasonWord {
    /// Bits 15:0: the basic exit reason.
    pub const BASIC_REASON: u32 = 0xFFFF;
    /// Bit 25: a shadow-stack token was found prematurely busy during the exit (secondary
    /// VM-exit control "prematurely busy shadow stack", bit 3).
    pub const SHADOW_STACK_BUSY: u32 = 1 << 25;
    /// Bit 26: a bus lock was asserted (and "bus-lock detection" is 1) on an exit for
    /// another reason; the bus-lock exit itself was folded into this one.
    pub const BUS_LOCK_DETECTED: u32 = 1 << 26;
    /// Bit 27: the exit was incident to enclave mode (SGX).
    pub const ENCLAVE_MODE: u32 = 1 << 27;
    /// Bit 28: an MTF VM exit was pending when an SMI caused this SMM VM exit.
    pub const PENDING_MTF: u32 = 1 << 28;
    /// Bit 29: this SMM VM exit came from VMX root operation.
    pub const FROM_VMX_ROOT: u32 = 1 << 29;
    /// Bit 31: VM-entry failure.
    pub const ENTRY_FAILURE: u32 = 1 << 31;
    /// Bits 16–24 and 30: always 0 or not defined.
    pub const UNDEFINED: u32 = 0x41FF_0000;

    /// Wraps a raw exit-reason field.
    pub const fn from_raw(raw: u32) -> Self {
        Self(raw)
    }

    /// A word with this basic reason and no flag set.
    pub const fn new(reason: ExitReason) -> Self {
        Self(reason.number() as u32)
    }

    /// The raw field.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Bits 15:0 as a number.
    pub const fn basic_number(self) -> u16 {
        self.0 as u16
    }

    /// Bits 15:0, decoded.
    pub const fn reason(self) -> ExitReason {
        ExitReason::from_number(self.basic_number())
    }

    /// Bit 25: a shadow stack was prematurely busy.
    pub const fn shadow_stack_busy(self) -> bool {
        self.0 & Self::SHADOW_STACK_BUSY != 0
    }

    /// Bit 26: a bus lock was detected during the instruction that caused this exit.
    pub const fn bus_lock_detected(self) -> bool {
        self.0 & Self::BUS_LOCK_DETECTED != 0
    }

    /// Bit 27: the exit was incident to enclave mode.
    pub const fn enclave_mode(self) -> bool {
        self.0 & Self::ENCLAVE_MODE != 0
    }

    /// Bit 28: pending MTF VM exit (SMM VM exits only).
    pub const fn pending_mtf(self) -> bool {
        self.0 & Self::PENDING_MTF != 0
    }

    /// Bit 29: VM exit from VMX root operation (SMM VM exits only).
    pub const fn from_vmx_root(self) -> bool {
        self.0 & Self::FROM_VMX_ROOT != 0
    }

    /// Bit 31: the VM entry failed; this is not a true VM exit.
    pub const fn entry_failure(self) -> bool {
        self.0 & Self::ENTRY_FAILURE != 0
    }

    /// Bits 16–25 and 30 (0 on every processor so far).
    pub const fn undefined_bits(self) -> u32 {
        self.0 & Self::UNDEFINED
    }
}

impl From<u32> for ExitReasonWord {
    fn from(raw: u32) -> Self {
        Self(raw)
    }
}

impl fmt::Debug for ExitReasonWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExitReasonWord")
            .field("raw", &format_args!("{:#010x}", self.0))
            .field("reason", &self.reason())
            .field("bus_lock_detected", &self.bus_lock_detected())
            .field("enclave_mode", &self.enclave_mode())
            .field("pending_mtf", &self.pending_mtf())
            .field("from_vmx_root", &self.from_vmx_root())
            .field("entry_failure", &self.entry_failure())
            .finish()
    }
}

impl fmt::Display for ExitReasonWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entry_failure() {
            write!(f, "VM-entry failure: {}", self.reason())
        } else {
            fmt::Display::fmt(&self.reason(), f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_decodes_and_round_trips() {
        for n in 0..=u16::MAX {
            let reason = ExitReason::from_number(n);
            assert_eq!(reason.number(), n);
            assert!(!reason.name().is_empty());
        }
    }

    #[test]
    fn all_lists_exactly_the_named_reasons_in_order() {
        let named = (0..=u16::MAX)
            .filter(|&n| !matches!(ExitReason::from_number(n), ExitReason::Unknown(_)))
            .count();
        assert_eq!(named, ExitReason::ALL.len());
        for pair in ExitReason::ALL.windows(2) {
            assert!(pair[0].number() < pair[1].number());
        }
        // 0–70 except the three unused numbers, 72–81, 84–85.
        assert_eq!(ExitReason::ALL.len(), 71 - 3 + 10 + 2);
        for unused in [35, 38, 42, 71, 82, 83, 86, 0xFFFF] {
            assert_eq!(ExitReason::from_number(unused), ExitReason::Unknown(unused));
        }
    }

    /// `reference-gaps.md` item 2: 70 and 72–77 (and newer) exist; unknown numbers do not panic.
    #[test]
    fn knows_the_reasons_added_after_2019() {
        let expected = [
            (69, ExitReason::Loadiwkey, "LOADIWKEY"),
            (70, ExitReason::Enclv, "ENCLV"),
            (
                72,
                ExitReason::EnqcmdPasidFailure,
                "ENQCMD PASID translation failure",
            ),
            (
                73,
                ExitReason::EnqcmdsPasidFailure,
                "ENQCMDS PASID translation failure",
            ),
            (74, ExitReason::BusLock, "Bus lock"),
            (75, ExitReason::InstructionTimeout, "Instruction timeout"),
            (76, ExitReason::Seamcall, "SEAMCALL"),
            (77, ExitReason::Tdcall, "TDCALL"),
            (78, ExitReason::Rdmsrlist, "RDMSRLIST"),
            (79, ExitReason::Wrmsrlist, "WRMSRLIST"),
            (80, ExitReason::Urdmsr, "URDMSR"),
            (81, ExitReason::Uwrmsr, "UWRMSR"),
        ];
        for (n, reason, name) in expected {
            assert_eq!(ExitReason::from_number(n), reason);
            assert_eq!(reason.name(), name);
        }
        assert_eq!(ExitReason::from_number(30).name(), "I/O instruction");
        assert_eq!(ExitReason::from_number(999), ExitReason::Unknown(999));
    }

    #[test]
    fn flag_tables_match_the_sdm_lists() {
        use ExitReason as R;
        // Reasons caused by instructions always record the length.
        for r in [
            R::Cpuid,
            R::Hlt,
            R::Vmcall,
            R::IoInstruction,
            R::CrAccess,
            R::Rdmsr,
            R::Wrmsr,
        ] {
            assert!(r.has_instruction_length(), "{r}");
        }
        // Asynchronous events never do.
        for r in [
            R::ExceptionOrNmi,
            R::ExternalInterrupt,
            R::TripleFault,
            R::EptViolation,
            R::EptMisconfiguration,
            R::ApicAccess,
            R::PreemptionTimerExpired,
            R::BusLock,
            R::Unknown(500),
        ] {
            assert!(!r.has_instruction_length(), "{r}");
        }
        for r in [
            R::CrAccess,
            R::MovDr,
            R::IoInstruction,
            R::EptViolation,
            R::TaskSwitch,
            R::ApicWrite,
        ] {
            assert!(r.has_qualification(), "{r}");
        }
        for r in [R::Cpuid, R::Hlt, R::EptMisconfiguration, R::Rdmsr, R::Unknown(71)] {
            assert!(!r.has_qualification(), "{r}");
        }
        for r in [
            R::Vmread,
            R::Invept,
            R::GdtrIdtrAccess,
            R::LdtrTrAccess,
            R::Rdrand,
            R::IoInstruction,
        ] {
            assert!(r.has_instruction_info(), "{r}");
        }
        assert!(!R::Cpuid.has_instruction_info());
        assert!(R::EntryFailureGuestState.is_entry_failure());
        assert!(!R::TripleFault.is_entry_failure());
    }

    /// `reference-gaps.md` item 2: bits 26–29 are decoded and named for what they are.
    #[test]
    fn decodes_every_flag_of_the_exit_reason_word() {
        let word = ExitReasonWord::from_raw(0x0400_001E);
        assert!(word.bus_lock_detected());
        assert!(!word.enclave_mode());
        assert_eq!(word.reason(), ExitReason::IoInstruction);

        let word = ExitReasonWord::from_raw(0x0800_0000 | 48);
        assert!(word.enclave_mode());
        assert!(!word.bus_lock_detected());

        let smm = ExitReasonWord::from_raw(0x3000_0006);
        assert!(smm.pending_mtf());
        assert!(smm.from_vmx_root());
        assert_eq!(smm.reason(), ExitReason::OtherSmi);

        // seL4 on Bochs, RFLAGS = 0: reason 33 with bit 31 (sel4-5.0-vtx-guest.md).
        let failed = ExitReasonWord::from_raw(0x8000_0021);
        assert!(failed.entry_failure());
        assert_eq!(failed.reason(), ExitReason::EntryFailureGuestState);
        assert_eq!(failed.raw(), 0x8000_0021);
        assert_eq!(failed.undefined_bits(), 0);

        // All ones (what the 5.0 kernel reports for a reserved injection type) does not panic.
        let ones = ExitReasonWord::from_raw(u32::MAX);
        assert_eq!(ones.reason(), ExitReason::Unknown(0xFFFF));
        assert_eq!(ones.undefined_bits(), ExitReasonWord::UNDEFINED);
        assert_eq!(ExitReasonWord::new(ExitReason::Hlt).raw(), 12);
    }
}
