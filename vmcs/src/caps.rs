//! VMX capability MSRs and the control-setting algorithm.
//!
//! The processor reports which settings of each VMX control it supports through the capability
//! MSRs of SDM Vol. 3D, Appendix A. [`VmxCapabilities`] holds their raw values (as read with
//! RDMSR, or as recorded elsewhere: nothing here reads an MSR), decodes the fields software
//! commonly needs, and [`set_control`] computes a control value from them: a pure function, so
//! every case can be tested without hardware. [`write_control`] is the thin layer that reads
//! and writes the VMCS through any [`VmcsAccess`].
//!
//! The control-setting rules are those of Appendix A.2 (reserved controls and their default
//! settings) and A.3–A.5 (allowed-0 and allowed-1 settings, the TRUE_ MSRs, the 64-bit
//! allowed-1-only MSRs of the tertiary and secondary VM-exit controls), applied the way
//! "Algorithm 3" of Section 31.5.1 "Algorithms for Determining VMX Capabilities" spells out. That section is
//! in Vol. 3C up to the May 2020 edition (chapter "Virtual-Machine Monitor Programming
//! Considerations"); later editions dropped the chapter, and Appendix A.2 is what remains.

use core::fmt;

use crate::access::{VmcsAccess, VmcsError};
use crate::catalogue::{Field, VmcsControl32, VmcsControl64};
use crate::controls::{
    ControlWord, EntryControls, PinBasedControls, PrimaryControls, PrimaryExitControls, SecondaryControls,
    SecondaryExitControls, TertiaryControls,
};

macro_rules! capability_msrs {
    ($( $variant:ident = $number:literal, $name:literal, $doc:literal; )*) => {
        /// A VMX capability MSR (SDM Vol. 3D, Appendix A; numbers from SDM Vol. 4, Table 2-2).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum VmxCapabilityMsr {
            $( #[doc = concat!("`", $name, "` (", stringify!($number), "): ", $doc)] $variant, )*
        }

        impl VmxCapabilityMsr {
            /// Every capability MSR, in MSR-number order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The MSR number (ECX for RDMSR).
            pub const fn msr_number(self) -> u32 {
                match self { $(Self::$variant => $number,)* }
            }

            /// The SDM's name, e.g. `"IA32_VMX_TRUE_PROCBASED_CTLS"`.
            pub const fn name(self) -> &'static str {
                match self { $(Self::$variant => $name,)* }
            }

            /// The MSR with this number; `None` if it is not a VMX capability MSR.
            pub const fn from_msr_number(number: u32) -> Option<Self> {
                match number { $($number => Some(Self::$variant),)* _ => None }
            }

            /// The MSR with this SDM name, compared without regard to ASCII case.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|msr| msr.name().eq_ignore_ascii_case(name))
            }

            /// Position in [`VmxCapabilities`]' table (the MSR numbers are contiguous).
            const fn index(self) -> usize {
                (self.msr_number() - 0x480) as usize
            }
        }
    };
}

capability_msrs! {
    Basic = 0x480, "IA32_VMX_BASIC",
        "VMCS revision, region size and memory type; bit 55 announces the TRUE_ MSRs (A.1).";
    PinbasedCtls = 0x481, "IA32_VMX_PINBASED_CTLS", "allowed settings of the pin-based controls (A.3.1).";
    ProcbasedCtls = 0x482, "IA32_VMX_PROCBASED_CTLS",
        "allowed settings of the primary processor-based controls (A.3.2).";
    ExitCtls = 0x483, "IA32_VMX_EXIT_CTLS", "allowed settings of the primary VM-exit controls (A.4.1).";
    EntryCtls = 0x484, "IA32_VMX_ENTRY_CTLS", "allowed settings of the VM-entry controls (A.5).";
    Misc = 0x485, "IA32_VMX_MISC",
        "miscellaneous data: timer rate, activity states, CR3 targets, VMWRITE to exit fields (A.6).";
    Cr0Fixed0 = 0x486, "IA32_VMX_CR0_FIXED0", "CR0 bits fixed to 1 in VMX operation (A.7).";
    Cr0Fixed1 = 0x487, "IA32_VMX_CR0_FIXED1", "CR0 bits allowed to be 1 in VMX operation (A.7).";
    Cr4Fixed0 = 0x488, "IA32_VMX_CR4_FIXED0", "CR4 bits fixed to 1 in VMX operation (A.8).";
    Cr4Fixed1 = 0x489, "IA32_VMX_CR4_FIXED1", "CR4 bits allowed to be 1 in VMX operation (A.8).";
    VmcsEnum = 0x48A, "IA32_VMX_VMCS_ENUM", "highest index used in any VMCS field encoding (A.9).";
    ProcbasedCtls2 = 0x48B, "IA32_VMX_PROCBASED_CTLS2",
        "allowed settings of the secondary processor-based controls (A.3.3).";
    EptVpidCap = 0x48C, "IA32_VMX_EPT_VPID_CAP", "EPT and VPID capabilities (A.10).";
    TruePinbasedCtls = 0x48D, "IA32_VMX_TRUE_PINBASED_CTLS",
        "allowed settings of the pin-based controls, default1 bits included (A.3.1).";
    TrueProcbasedCtls = 0x48E, "IA32_VMX_TRUE_PROCBASED_CTLS",
        "allowed settings of the primary processor-based controls, default1 bits included (A.3.2).";
    TrueExitCtls = 0x48F, "IA32_VMX_TRUE_EXIT_CTLS",
        "allowed settings of the primary VM-exit controls, default1 bits included (A.4.1).";
    TrueEntryCtls = 0x490, "IA32_VMX_TRUE_ENTRY_CTLS",
        "allowed settings of the VM-entry controls, default1 bits included (A.5).";
    Vmfunc = 0x491, "IA32_VMX_VMFUNC", "allowed settings of the VM-function controls (A.11).";
    ProcbasedCtls3 = 0x492, "IA32_VMX_PROCBASED_CTLS3",
        "allowed-1 settings of the tertiary processor-based controls (A.3.4).";
    ExitCtls2 = 0x493, "IA32_VMX_EXIT_CTLS2", "allowed-1 settings of the secondary VM-exit controls (A.4.2).";
}

const MSR_COUNT: usize = 20;
const _: () = assert!(VmxCapabilityMsr::ALL.len() == MSR_COUNT);

/// Which settings of each bit of a control word (or of CR0/CR4 in VMX operation) are allowed.
///
/// For a 32-bit control with an allowed-0/allowed-1 MSR (SDM Vol. 3D, Appendix A.3.1):
/// `must_be_one` is the low half (bit X = 1: the control must be 1) and `may_be_one` the high
/// half (bit X = 0: the control must be 0). For the 64-bit allowed-1-only MSRs `must_be_one`
/// is 0. For CR0/CR4, `must_be_one` is FIXED0 and `may_be_one` is FIXED1 (Appendix A.7, A.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AllowedBits {
    /// Bits that must be 1.
    pub must_be_one: u64,
    /// Bits that may be 1; every other bit must be 0.
    pub may_be_one: u64,
}

impl AllowedBits {
    /// Bits that may be either 0 or 1.
    pub const fn flexible(self) -> u64 {
        self.may_be_one & !self.must_be_one
    }

    /// Whether every must-be-1 bit is also allowed to be 1. A real processor always reports
    /// consistent values; a recorded or hand-written profile might not.
    pub const fn is_consistent(self) -> bool {
        self.must_be_one & !self.may_be_one == 0
    }

    /// Bits of `value` that are 0 but must be 1.
    pub const fn missing_ones(self, value: u64) -> u64 {
        self.must_be_one & !value
    }

    /// Bits of `value` that are 1 but must be 0.
    pub const fn forbidden_ones(self, value: u64) -> u64 {
        value & !self.may_be_one
    }

    /// Whether `value` obeys both constraints.
    pub const fn permits(self, value: u64) -> bool {
        self.missing_ones(value) == 0 && self.forbidden_ones(value) == 0
    }

    /// `value` with every must-be-1 bit set and every must-be-0 bit cleared.
    pub const fn apply(self, value: u64) -> u64 {
        (value | self.must_be_one) & self.may_be_one
    }
}

/// IA32_VMX_BASIC decoded (SDM Vol. 3D, Appendix A.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct VmxBasic {
    /// Bits 30:0: the VMCS revision identifier to write at the start of VMXON and VMCS regions.
    pub revision_id: u32,
    /// Bits 44:32: bytes to allocate for the VMXON region and any VMCS region (at most 4096).
    pub region_size: u16,
    /// Bit 48: region and structure addresses are limited to 32 bits.
    pub addresses_limited_to_32_bits: bool,
    /// Bit 49: the dual-monitor treatment of SMIs and SMM is supported.
    pub dual_monitor_treatment: bool,
    /// Bits 53:50: memory type for VMCS-related accesses (6 = write-back).
    pub vmcs_memory_type: u8,
    /// Bit 54: exits due to INS/OUTS report the VM-exit instruction-information field.
    pub ins_outs_instruction_info: bool,
    /// Bit 55: default1 controls may be 0; the IA32_VMX_TRUE_*_CTLS MSRs exist.
    pub true_controls: bool,
    /// Bit 56: VM entry may deliver a hardware exception with or without an error code,
    /// whatever its vector.
    pub any_exception_error_code: bool,
}

impl VmxBasic {
    /// Decodes the raw MSR value.
    pub const fn from_raw(raw: u64) -> Self {
        Self {
            revision_id: (raw & 0x7FFF_FFFF) as u32,
            region_size: ((raw >> 32) & 0x1FFF) as u16,
            addresses_limited_to_32_bits: raw & (1 << 48) != 0,
            dual_monitor_treatment: raw & (1 << 49) != 0,
            vmcs_memory_type: ((raw >> 50) & 0xF) as u8,
            ins_outs_instruction_info: raw & (1 << 54) != 0,
            true_controls: raw & (1 << 55) != 0,
            any_exception_error_code: raw & (1 << 56) != 0,
        }
    }
}

/// IA32_VMX_MISC decoded (SDM Vol. 3D, Appendix A.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct VmxMisc {
    /// Bits 4:0: the VMX-preemption timer counts down by 1 each time this TSC bit changes.
    pub preemption_timer_tsc_shift: u8,
    /// Bit 5: VM exits store IA32_EFER.LMA into the "IA-32e mode guest" entry control.
    pub exit_stores_efer_lma: bool,
    /// Bit 6: the HLT activity state is supported.
    pub activity_hlt: bool,
    /// Bit 7: the shutdown activity state is supported.
    pub activity_shutdown: bool,
    /// Bit 8: the wait-for-SIPI activity state is supported.
    pub activity_wait_for_sipi: bool,
    /// Bit 14: Intel PT may be used in VMX operation.
    pub intel_pt_in_vmx: bool,
    /// Bit 15: RDMSR may read IA32_SMBASE in SMM.
    pub rdmsr_smbase_in_smm: bool,
    /// Bits 24:16: number of CR3-target values supported.
    pub cr3_target_count: u16,
    /// Bits 27:25 (N): the recommended maximum number of MSRs in each MSR list is 512 × (N + 1).
    pub max_msr_list_entries: u32,
    /// Bit 28: IA32_SMM_MONITOR_CTL bit 2 may be set (VMXOFF unblocks SMIs).
    pub smm_monitor_ctl_bit2: bool,
    /// Bit 29: VMWRITE may write any supported field, VM-exit information fields included.
    pub vmwrite_to_exit_info: bool,
    /// Bit 30: VM entry may inject software interrupts and exceptions with instruction length 0.
    pub zero_length_instruction_injection: bool,
    /// Bits 63:32: MSEG revision identifier.
    pub mseg_revision_id: u32,
}

impl VmxMisc {
    /// Decodes the raw MSR value.
    pub const fn from_raw(raw: u64) -> Self {
        Self {
            preemption_timer_tsc_shift: (raw & 0x1F) as u8,
            exit_stores_efer_lma: raw & (1 << 5) != 0,
            activity_hlt: raw & (1 << 6) != 0,
            activity_shutdown: raw & (1 << 7) != 0,
            activity_wait_for_sipi: raw & (1 << 8) != 0,
            intel_pt_in_vmx: raw & (1 << 14) != 0,
            rdmsr_smbase_in_smm: raw & (1 << 15) != 0,
            cr3_target_count: ((raw >> 16) & 0x1FF) as u16,
            max_msr_list_entries: 512 * (((raw >> 25) & 7) as u32 + 1),
            smm_monitor_ctl_bit2: raw & (1 << 28) != 0,
            vmwrite_to_exit_info: raw & (1 << 29) != 0,
            zero_length_instruction_injection: raw & (1 << 30) != 0,
            mseg_revision_id: (raw >> 32) as u32,
        }
    }
}

/// The commonly used bits of IA32_VMX_EPT_VPID_CAP (SDM Vol. 3D, Appendix A.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EptVpidCapabilities {
    /// Bit 0: execute-only EPT translations.
    pub execute_only: bool,
    /// Bit 6: page-walk length 4 (4-level EPT).
    pub page_walk_length_4: bool,
    /// Bit 7: page-walk length 5 (5-level EPT).
    pub page_walk_length_5: bool,
    /// Bit 8: the EPT paging structures may be uncacheable (EPTP memory type 0).
    pub memory_type_uc: bool,
    /// Bit 14: the EPT paging structures may be write-back (EPTP memory type 6).
    pub memory_type_wb: bool,
    /// Bit 16: a PDE may map a 2-Mbyte page.
    pub pages_2m: bool,
    /// Bit 17: a PDPTE may map a 1-Gbyte page.
    pub pages_1g: bool,
    /// Bit 20: INVEPT is supported.
    pub invept: bool,
    /// Bit 21: accessed and dirty flags for EPT (EPTP bit 6).
    pub accessed_dirty_flags: bool,
    /// Bit 22: advanced VM-exit information for EPT violations.
    pub advanced_ept_violation_info: bool,
    /// Bit 23: supervisor shadow-stack control (EPTP bit 7).
    pub supervisor_shadow_stack: bool,
    /// Bit 25: single-context INVEPT.
    pub invept_single_context: bool,
    /// Bit 26: all-context INVEPT.
    pub invept_all_context: bool,
    /// Bit 32: INVVPID is supported.
    pub invvpid: bool,
    /// Bit 40: individual-address INVVPID.
    pub invvpid_individual_address: bool,
    /// Bit 41: single-context INVVPID.
    pub invvpid_single_context: bool,
    /// Bit 42: all-context INVVPID.
    pub invvpid_all_context: bool,
    /// Bit 43: single-context-retaining-globals INVVPID.
    pub invvpid_single_context_retaining_globals: bool,
    /// Bits 53:48: maximum HLAT prefix size.
    pub max_hlat_prefix_size: u8,
}

impl EptVpidCapabilities {
    /// Decodes the raw MSR value.
    pub const fn from_raw(raw: u64) -> Self {
        const fn bit(raw: u64, n: u32) -> bool {
            raw & (1 << n) != 0
        }
        Self {
            execute_only: bit(raw, 0),
            page_walk_length_4: bit(raw, 6),
            page_walk_length_5: bit(raw, 7),
            memory_type_uc: bit(raw, 8),
            memory_type_wb: bit(raw, 14),
            pages_2m: bit(raw, 16),
            pages_1g: bit(raw, 17),
            invept: bit(raw, 20),
            accessed_dirty_flags: bit(raw, 21),
            advanced_ept_violation_info: bit(raw, 22),
            supervisor_shadow_stack: bit(raw, 23),
            invept_single_context: bit(raw, 25),
            invept_all_context: bit(raw, 26),
            invvpid: bit(raw, 32),
            invvpid_individual_address: bit(raw, 40),
            invvpid_single_context: bit(raw, 41),
            invvpid_all_context: bit(raw, 42),
            invvpid_single_context_retaining_globals: bit(raw, 43),
            max_hlat_prefix_size: ((raw >> 48) & 0x3F) as u8,
        }
    }
}

/// One of the seven VMX control words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ControlKind {
    /// Pin-based VM-execution controls ([`PinBasedControls`]).
    Pin,
    /// Primary processor-based VM-execution controls ([`PrimaryControls`]).
    Primary,
    /// Secondary processor-based VM-execution controls ([`SecondaryControls`]).
    Secondary,
    /// Tertiary processor-based VM-execution controls, 64-bit ([`TertiaryControls`]).
    Tertiary,
    /// Primary VM-exit controls ([`PrimaryExitControls`]).
    Exit,
    /// Secondary VM-exit controls, 64-bit ([`SecondaryExitControls`]).
    Exit2,
    /// VM-entry controls ([`EntryControls`]).
    Entry,
}

impl ControlKind {
    /// Every control word.
    pub const ALL: &'static [Self] = &[
        Self::Pin,
        Self::Primary,
        Self::Secondary,
        Self::Tertiary,
        Self::Exit,
        Self::Exit2,
        Self::Entry,
    ];

    /// Short name used on command lines and in JSON: `pin`, `primary`, `secondary`,
    /// `tertiary`, `exit`, `exit2` or `entry`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Pin => "pin",
            Self::Primary => "primary",
            Self::Secondary => "secondary",
            Self::Tertiary => "tertiary",
            Self::Exit => "exit",
            Self::Exit2 => "exit2",
            Self::Entry => "entry",
        }
    }

    /// The control word with this short name (exact match).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.name() == name)
    }

    /// The SDM's name of the field.
    pub const fn description(self) -> &'static str {
        match self {
            Self::Pin => "pin-based VM-execution controls",
            Self::Primary => "primary processor-based VM-execution controls",
            Self::Secondary => "secondary processor-based VM-execution controls",
            Self::Tertiary => "tertiary processor-based VM-execution controls",
            Self::Exit => "primary VM-exit controls",
            Self::Exit2 => "secondary VM-exit controls",
            Self::Entry => "VM-entry controls",
        }
    }

    /// The VMCS field holding this control word.
    pub const fn vmcs_field(self) -> Field {
        match self {
            Self::Pin => Field::VmcsControl32(VmcsControl32::PinBasedControls),
            Self::Primary => Field::VmcsControl32(VmcsControl32::PrimaryProcBasedControls),
            Self::Secondary => Field::VmcsControl32(VmcsControl32::SecondaryProcBasedControls),
            Self::Tertiary => Field::VmcsControl64(VmcsControl64::TertiaryProcBasedControls),
            Self::Exit => Field::VmcsControl32(VmcsControl32::PrimaryExitControls),
            Self::Exit2 => Field::VmcsControl64(VmcsControl64::SecondaryExitControls),
            Self::Entry => Field::VmcsControl32(VmcsControl32::EntryControls),
        }
    }

    /// Width of the field in bits: 32, or 64 for the tertiary and secondary VM-exit controls.
    pub const fn width(self) -> u32 {
        match self {
            Self::Tertiary | Self::Exit2 => 64,
            _ => 32,
        }
    }

    /// Mask of the bits the field holds.
    pub const fn mask(self) -> u64 {
        match self.width() {
            64 => u64::MAX,
            _ => 0xFFFF_FFFF,
        }
    }

    /// Every bit the SDM defines for this control word (the union of the named flags).
    pub const fn defined_bits(self) -> u64 {
        match self {
            Self::Pin => PinBasedControls::all().bits() as u64,
            Self::Primary => PrimaryControls::all().bits() as u64,
            Self::Secondary => SecondaryControls::all().bits() as u64,
            Self::Tertiary => TertiaryControls::all().bits(),
            Self::Exit => PrimaryExitControls::all().bits() as u64,
            Self::Exit2 => SecondaryExitControls::all().bits(),
            Self::Entry => EntryControls::all().bits() as u64,
        }
    }

    /// The plain capability MSR: allowed-0/allowed-1 for the 32-bit controls, allowed-1 only
    /// for the two 64-bit ones.
    pub const fn capability_msr(self) -> VmxCapabilityMsr {
        match self {
            Self::Pin => VmxCapabilityMsr::PinbasedCtls,
            Self::Primary => VmxCapabilityMsr::ProcbasedCtls,
            Self::Secondary => VmxCapabilityMsr::ProcbasedCtls2,
            Self::Tertiary => VmxCapabilityMsr::ProcbasedCtls3,
            Self::Exit => VmxCapabilityMsr::ExitCtls,
            Self::Exit2 => VmxCapabilityMsr::ExitCtls2,
            Self::Entry => VmxCapabilityMsr::EntryCtls,
        }
    }

    /// The TRUE_ capability MSR, for the four controls that have "default1" bits.
    pub const fn true_capability_msr(self) -> Option<VmxCapabilityMsr> {
        match self {
            Self::Pin => Some(VmxCapabilityMsr::TruePinbasedCtls),
            Self::Primary => Some(VmxCapabilityMsr::TrueProcbasedCtls),
            Self::Exit => Some(VmxCapabilityMsr::TrueExitCtls),
            Self::Entry => Some(VmxCapabilityMsr::TrueEntryCtls),
            Self::Secondary | Self::Tertiary | Self::Exit2 => None,
        }
    }

    /// For a control word that exists only if another one activates it: that control word
    /// and the activating bit (SDM Vol. 3C, Sections 25.6.2 and 25.7.1).
    pub const fn activated_by(self) -> Option<(ControlKind, u32)> {
        match self {
            Self::Secondary => Some((Self::Primary, 31)),
            Self::Tertiary => Some((Self::Primary, 17)),
            Self::Exit2 => Some((Self::Exit, 31)),
            Self::Pin | Self::Primary | Self::Exit | Self::Entry => None,
        }
    }

    /// Whether the capability MSR reports allowed-0 settings in its low half (the 32-bit
    /// controls) rather than allowed-1 settings in all 64 bits.
    const fn has_allowed0_half(self) -> bool {
        self.width() == 32
    }
}

impl fmt::Display for ControlKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// Raw capability MSR values; an absent value means the MSR does not exist (RDMSR would fault).
///
/// Build one with [`VmxCapabilities::new`] and [`VmxCapabilities::with`], or mutate with
/// [`VmxCapabilities::set`]. Nothing here reads an MSR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct VmxCapabilities {
    values: [Option<u64>; MSR_COUNT],
}

impl VmxCapabilities {
    /// No MSR present.
    pub const fn new() -> Self {
        Self {
            values: [None; MSR_COUNT],
        }
    }

    /// `self` with `msr` present and holding `value`.
    #[must_use]
    pub const fn with(mut self, msr: VmxCapabilityMsr, value: u64) -> Self {
        self.values[msr.index()] = Some(value);
        self
    }

    /// `self` with `msr` absent.
    #[must_use]
    pub const fn without(mut self, msr: VmxCapabilityMsr) -> Self {
        self.values[msr.index()] = None;
        self
    }

    /// Records `value` for `msr`.
    pub fn set(&mut self, msr: VmxCapabilityMsr, value: u64) {
        self.values[msr.index()] = Some(value);
    }

    /// Marks `msr` absent.
    pub fn remove(&mut self, msr: VmxCapabilityMsr) {
        self.values[msr.index()] = None;
    }

    /// The raw value of `msr`, or `None` if it is absent.
    pub const fn get(&self, msr: VmxCapabilityMsr) -> Option<u64> {
        self.values[msr.index()]
    }

    /// The present MSRs and their values, in MSR-number order.
    pub fn iter(&self) -> impl Iterator<Item = (VmxCapabilityMsr, u64)> + '_ {
        VmxCapabilityMsr::ALL
            .iter()
            .filter_map(|&msr| self.get(msr).map(|value| (msr, value)))
    }

    /// IA32_VMX_BASIC decoded.
    pub const fn basic(&self) -> Option<VmxBasic> {
        match self.get(VmxCapabilityMsr::Basic) {
            Some(raw) => Some(VmxBasic::from_raw(raw)),
            None => None,
        }
    }

    /// Whether IA32_VMX_BASIC bit 55 is 1, i.e. the TRUE_ MSRs exist and govern the pin-based,
    /// primary processor-based, primary VM-exit and VM-entry controls (SDM Vol. 3D, Appendix
    /// A.1, A.2). `false` when IA32_VMX_BASIC is absent.
    pub const fn uses_true_msrs(&self) -> bool {
        match self.get(VmxCapabilityMsr::Basic) {
            Some(raw) => raw & (1 << 55) != 0,
            None => false,
        }
    }

    /// The VMCS revision identifier (IA32_VMX_BASIC bits 30:0).
    pub const fn vmcs_revision_id(&self) -> Option<u32> {
        match self.basic() {
            Some(basic) => Some(basic.revision_id),
            None => None,
        }
    }

    /// IA32_VMX_MISC decoded.
    pub const fn misc(&self) -> Option<VmxMisc> {
        match self.get(VmxCapabilityMsr::Misc) {
            Some(raw) => Some(VmxMisc::from_raw(raw)),
            None => None,
        }
    }

    /// Whether VMWRITE may write the VM-exit information fields (IA32_VMX_MISC bit 29; SDM
    /// Vol. 3D, Appendix A.6). `false` when IA32_VMX_MISC is absent.
    pub const fn vmx_misc_allows_vmwrite_to_exit_info(&self) -> bool {
        match self.get(VmxCapabilityMsr::Misc) {
            Some(raw) => raw & (1 << 29) != 0,
            None => false,
        }
    }

    /// The highest index value used in any VMCS field encoding (IA32_VMX_VMCS_ENUM bits 9:1;
    /// SDM Vol. 3D, Appendix A.9).
    pub const fn vmcs_enum_max_index(&self) -> Option<u16> {
        match self.get(VmxCapabilityMsr::VmcsEnum) {
            Some(raw) => Some(((raw >> 1) & 0x1FF) as u16),
            None => None,
        }
    }

    /// Allowed CR0 values in VMX operation: FIXED0 gives the must-be-1 bits, FIXED1 the
    /// may-be-1 bits (SDM Vol. 3D, Appendix A.7). With the "unrestricted guest" control, the
    /// guest's PE and PG may be 0 even if FIXED0 says otherwise (same appendix).
    pub const fn cr0_fixed(&self) -> Option<AllowedBits> {
        self.fixed_pair(VmxCapabilityMsr::Cr0Fixed0, VmxCapabilityMsr::Cr0Fixed1)
    }

    /// Allowed CR4 values in VMX operation (SDM Vol. 3D, Appendix A.8).
    pub const fn cr4_fixed(&self) -> Option<AllowedBits> {
        self.fixed_pair(VmxCapabilityMsr::Cr4Fixed0, VmxCapabilityMsr::Cr4Fixed1)
    }

    const fn fixed_pair(&self, fixed0: VmxCapabilityMsr, fixed1: VmxCapabilityMsr) -> Option<AllowedBits> {
        match (self.get(fixed0), self.get(fixed1)) {
            (Some(must_be_one), Some(may_be_one)) => Some(AllowedBits {
                must_be_one,
                may_be_one,
            }),
            _ => None,
        }
    }

    /// IA32_VMX_EPT_VPID_CAP decoded. It exists only if the secondary controls allow "enable
    /// EPT" or "enable VPID" to be 1.
    pub const fn ept_vpid(&self) -> Option<EptVpidCapabilities> {
        match self.get(VmxCapabilityMsr::EptVpidCap) {
            Some(raw) => Some(EptVpidCapabilities::from_raw(raw)),
            None => None,
        }
    }

    /// The allowed VM-function controls (IA32_VMX_VMFUNC: bit X = 1 means VM function X may
    /// be enabled; SDM Vol. 3D, Appendix A.11).
    pub const fn vmfunc(&self) -> Option<u64> {
        self.get(VmxCapabilityMsr::Vmfunc)
    }

    /// The capability MSR [`set_control`] consults for the allowed settings of `kind`: the
    /// TRUE_ MSR exactly when IA32_VMX_BASIC bit 55 is 1 and `kind` has one.
    pub const fn control_msr(&self, kind: ControlKind) -> VmxCapabilityMsr {
        match (self.uses_true_msrs(), kind.true_capability_msr()) {
            (true, Some(true_msr)) => true_msr,
            _ => kind.capability_msr(),
        }
    }

    /// The allowed settings of the control word `kind` (SDM Vol. 3D, Appendix A.3–A.5).
    ///
    /// # Errors
    /// - [`ControlError::MissingMsr`] when IA32_VMX_BASIC or the MSR reporting `kind` is absent;
    /// - [`ControlError::NotSupported`] when `kind` is the secondary, tertiary or secondary
    ///   VM-exit controls and the control that activates it is not allowed to be 1;
    /// - [`ControlError::InconsistentMsr`] when the MSR reports a bit both must-be-1 and not
    ///   allowed-1.
    pub fn allowed(&self, kind: ControlKind) -> Result<AllowedBits, ControlError> {
        if self.get(VmxCapabilityMsr::Basic).is_none() {
            return Err(ControlError::MissingMsr {
                kind,
                msr: VmxCapabilityMsr::Basic,
            });
        }
        if let Some((activator, bit)) = kind.activated_by() {
            // Appendix A.3.2/A.4.1: a processor that allows only the 0-setting of the
            // activating bit does not support these controls (nor, usually, their MSR).
            let activating = self.allowed(activator).map_err(|error| error.for_kind(kind))?;
            if activating.may_be_one & (1 << bit) == 0 {
                return Err(ControlError::NotSupported { kind, activator, bit });
            }
        }
        let msr = self.control_msr(kind);
        let raw = self.get(msr).ok_or(ControlError::MissingMsr { kind, msr })?;
        let allowed = if kind.has_allowed0_half() {
            AllowedBits {
                must_be_one: raw & 0xFFFF_FFFF,
                may_be_one: raw >> 32,
            }
        } else {
            AllowedBits {
                must_be_one: 0,
                may_be_one: raw,
            }
        };
        if !allowed.is_consistent() {
            return Err(ControlError::InconsistentMsr {
                kind,
                msr,
                bits: allowed.must_be_one & !allowed.may_be_one,
            });
        }
        Ok(allowed)
    }

    /// The "default1" bits of `kind`: the must-be-1 bits of the plain (non-TRUE) MSR, which a
    /// VMM unaware of a control's function sets to 1 (Appendix A.2; Algorithm 3, step c.iii).
    /// Zero for the controls without a TRUE_ MSR.
    fn default1(&self, kind: ControlKind) -> Result<u64, ControlError> {
        if kind.true_capability_msr().is_none() {
            return Ok(0);
        }
        let msr = kind.capability_msr();
        let raw = self.get(msr).ok_or(ControlError::MissingMsr { kind, msr })?;
        Ok(raw & 0xFFFF_FFFF)
    }
}

/// Why a control value cannot be computed. Bit numbers are positions in the control word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ControlError {
    /// Bits asked to be set or cleared lie beyond the field's width (32 bits for all but the
    /// tertiary and secondary VM-exit controls).
    BitsBeyondWidth {
        /// The control word.
        kind: ControlKind,
        /// The offending bits.
        bits: u64,
    },
    /// The same bits were asked to be both set and cleared.
    SetAndCleared {
        /// The control word.
        kind: ControlKind,
        /// The bits in both requests.
        bits: u64,
    },
    /// A capability MSR needed to compute the value is absent.
    MissingMsr {
        /// The control word.
        kind: ControlKind,
        /// The absent MSR.
        msr: VmxCapabilityMsr,
    },
    /// The processor lacks this control word: its activating control may not be 1.
    NotSupported {
        /// The control word.
        kind: ControlKind,
        /// The control word holding the activating bit.
        activator: ControlKind,
        /// The activating bit (primary bit 31 or 17, primary VM-exit bit 31).
        bit: u32,
    },
    /// The capability MSR reports bits as must-be-1 that are not allowed to be 1.
    InconsistentMsr {
        /// The control word.
        kind: ControlKind,
        /// The inconsistent MSR.
        msr: VmxCapabilityMsr,
        /// The contradictory bits.
        bits: u64,
    },
    /// Bits asked to be set that the processor does not allow to be 1.
    NotAllowedOne {
        /// The control word.
        kind: ControlKind,
        /// The MSR that says so.
        msr: VmxCapabilityMsr,
        /// The offending bits.
        bits: u64,
    },
    /// Bits asked to be cleared that the processor requires to be 1.
    MustBeOne {
        /// The control word.
        kind: ControlKind,
        /// The MSR that says so.
        msr: VmxCapabilityMsr,
        /// The offending bits.
        bits: u64,
    },
}

impl ControlError {
    /// The control word the request was for.
    pub const fn kind(&self) -> ControlKind {
        match *self {
            Self::BitsBeyondWidth { kind, .. }
            | Self::SetAndCleared { kind, .. }
            | Self::MissingMsr { kind, .. }
            | Self::NotSupported { kind, .. }
            | Self::InconsistentMsr { kind, .. }
            | Self::NotAllowedOne { kind, .. }
            | Self::MustBeOne { kind, .. } => kind,
        }
    }

    /// The same error, reported against `kind` (used when checking an activating control).
    const fn for_kind(self, kind: ControlKind) -> Self {
        match self {
            Self::BitsBeyondWidth { bits, .. } => Self::BitsBeyondWidth { kind, bits },
            Self::SetAndCleared { bits, .. } => Self::SetAndCleared { kind, bits },
            Self::MissingMsr { msr, .. } => Self::MissingMsr { kind, msr },
            Self::NotSupported { activator, bit, .. } => Self::NotSupported { kind, activator, bit },
            Self::InconsistentMsr { msr, bits, .. } => Self::InconsistentMsr { kind, msr, bits },
            Self::NotAllowedOne { msr, bits, .. } => Self::NotAllowedOne { kind, msr, bits },
            Self::MustBeOne { msr, bits, .. } => Self::MustBeOne { kind, msr, bits },
        }
    }
}

/// Formats a bit set as "bit 7" or "bits 15, 16".
struct BitList(u64);

impl fmt::Display for BitList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.count_ones() == 1 { "bit " } else { "bits " })?;
        let mut rest = self.0;
        let mut first = true;
        while rest != 0 {
            let bit = rest.trailing_zeros();
            rest &= rest - 1;
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{bit}")?;
        }
        Ok(())
    }
}

const fn activating_bit_name(activator: ControlKind, bit: u32) -> &'static str {
    match (activator, bit) {
        (ControlKind::Primary, 17) => "activate tertiary controls",
        (ControlKind::Primary, 31) | (ControlKind::Exit, 31) => "activate secondary controls",
        _ => "activating control",
    }
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BitsBeyondWidth { kind, bits } => write!(
                f,
                "{kind}: {} lie beyond the {}-bit field",
                BitList(bits),
                kind.width()
            ),
            Self::SetAndCleared { kind, bits } => {
                write!(f, "{kind}: {} asked to be both set and cleared", BitList(bits))
            }
            Self::MissingMsr { kind, msr } => {
                write!(
                    f,
                    "{kind}: capability MSR {} is absent (not supported)",
                    msr.name()
                )
            }
            Self::NotSupported { kind, activator, bit } => write!(
                f,
                "{kind} are not supported: {activator} do not allow bit {bit} ({}) to be 1",
                activating_bit_name(activator, bit)
            ),
            Self::InconsistentMsr { kind, msr, bits } => write!(
                f,
                "{kind}: {} reports {} as must-be-1 but not allowed-1",
                msr.name(),
                BitList(bits)
            ),
            Self::NotAllowedOne { kind, msr, bits } => write!(
                f,
                "{kind}: cannot set {}: not allowed to be 1 ({})",
                BitList(bits),
                msr.name()
            ),
            Self::MustBeOne { kind, msr, bits } => write!(
                f,
                "{kind}: cannot clear {}: must be 1 ({})",
                BitList(bits),
                msr.name()
            ),
        }
    }
}

impl core::error::Error for ControlError {}

/// Computes the value of the control word `kind`: a pure function of its arguments.
///
/// Implements SDM Vol. 3D, Appendix A.2–A.5 the way "Algorithm 3" of Vol. 3C, Section 31.5.1
/// (May 2020 edition; see the module documentation) applies them:
/// - the allowed settings come from the TRUE_ MSR exactly when IA32_VMX_BASIC bit 55 is 1 (for
///   the pin-based, primary processor-based, primary VM-exit and VM-entry controls), else from
///   the plain MSR; 32-bit controls use its allowed-0 (low half: 1 = must be 1) and allowed-1
///   (high half: 0 = must be 0) settings; the tertiary and secondary VM-exit controls have
///   64-bit allowed-1-only MSRs;
/// - bits in `set` become 1, bits in `clear` become 0, must-be-1 bits are 1, must-be-0 bits 0;
/// - every other (flexible) bit keeps its value in `previous` when given; with no previous
///   value it takes its default: 1 for a "default1" bit (must-be-1 in the plain MSR), else 0.
///
/// Bits of `previous` that are not flexible are ignored. Whether a secondary, tertiary or
/// secondary VM-exit value takes effect also depends on the activating bit being set in the
/// primary control word; that is the caller's to set.
///
/// # Errors
/// See [`ControlError`]: bits beyond the width, set ∩ clear, an absent MSR, a control word
/// the processor lacks, an inconsistent MSR, a set bit not allowed to be 1, a cleared bit that
/// must be 1. Never panics.
///
/// # Example
/// ```
/// use vmcs::caps::{profiles, set_control, ControlKind};
///
/// let caps = profiles::bochs_corei7_skylake_x();
/// // HLT exiting (7) and unconditional I/O exiting (24); CR3 exiting (15, 16) off, which only
/// // the TRUE_ MSR allows.
/// let primary = set_control(&caps, ControlKind::Primary, None, 1 << 7 | 1 << 24, 1 << 15 | 1 << 16);
/// assert_eq!(primary, Ok(0x0500_61F2));
/// ```
pub fn set_control(
    caps: &VmxCapabilities,
    kind: ControlKind,
    previous: Option<u64>,
    set: u64,
    clear: u64,
) -> Result<u64, ControlError> {
    let beyond = (set | clear) & !kind.mask();
    if beyond != 0 {
        return Err(ControlError::BitsBeyondWidth { kind, bits: beyond });
    }
    if set & clear != 0 {
        return Err(ControlError::SetAndCleared {
            kind,
            bits: set & clear,
        });
    }
    let allowed = caps.allowed(kind)?;
    let msr = caps.control_msr(kind);
    let not_allowed = allowed.forbidden_ones(set);
    if not_allowed != 0 {
        return Err(ControlError::NotAllowedOne {
            kind,
            msr,
            bits: not_allowed,
        });
    }
    let must_stay = clear & allowed.must_be_one;
    if must_stay != 0 {
        return Err(ControlError::MustBeOne {
            kind,
            msr,
            bits: must_stay,
        });
    }
    let base = match previous {
        Some(previous) => previous,
        None => caps.default1(kind)?,
    };
    let flexible = allowed.flexible();
    Ok(allowed.must_be_one | (base & flexible & !clear) | set)
}

/// [`set_control`] with typed control words, e.g. [`PrimaryControls`].
///
/// # Errors
/// As for [`set_control`].
pub fn set_control_flags<C: ControlWord>(
    caps: &VmxCapabilities,
    previous: Option<C>,
    set: C,
    clear: C,
) -> Result<C, ControlError> {
    set_control(
        caps,
        C::KIND,
        previous.map(C::to_raw),
        set.to_raw(),
        clear.to_raw(),
    )
    .map(C::from_raw_truncate)
}

/// Why [`write_control`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum WriteControlError {
    /// The value could not be computed.
    Control(ControlError),
    /// Reading or writing the field failed.
    Vmcs(VmcsError),
}

impl fmt::Display for WriteControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Control(e) => e.fmt(f),
            Self::Vmcs(e) => write!(f, "VMCS access failed: {e}"),
        }
    }
}

impl core::error::Error for WriteControlError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Control(e) => Some(e),
            Self::Vmcs(e) => Some(e),
        }
    }
}

impl From<ControlError> for WriteControlError {
    fn from(e: ControlError) -> Self {
        Self::Control(e)
    }
}

impl From<VmcsError> for WriteControlError {
    fn from(e: VmcsError) -> Self {
        Self::Vmcs(e)
    }
}

/// Reads the control word `kind` from `vmcs`, computes the new value with [`set_control`]
/// (the current value as `previous`) and writes it back. Returns the value written.
///
/// A field never written reads 0, so on a fresh VMCS the flexible bits start at 0, not at
/// their "default1" setting; for a first setting use [`set_control`] with no previous value
/// and write the result.
///
/// The capabilities are checked before the field is touched, so a control word the processor
/// lacks is reported as [`ControlError::NotSupported`] rather than as VM-instruction error 12.
///
/// # Errors
/// [`WriteControlError::Control`] as for [`set_control`] (nothing is written);
/// [`WriteControlError::Vmcs`] when the read or the write fails.
pub fn write_control<A: VmcsAccess + ?Sized>(
    vmcs: &mut A,
    caps: &VmxCapabilities,
    kind: ControlKind,
    set: u64,
    clear: u64,
) -> Result<u64, WriteControlError> {
    caps.allowed(kind)?;
    let encoding = kind.vmcs_field().encoding().raw();
    let previous = vmcs.read(encoding)?;
    let value = set_control(caps, kind, Some(previous), set, clear)?;
    vmcs.write(encoding, value)?;
    Ok(value)
}

/// Capability profiles recorded from real VMX implementations, for tests and tools.
pub mod profiles {
    use super::{VmxCapabilities, VmxCapabilityMsr as Msr};

    /// Bochs 2.7, `cpu: model=corei7_skylake_x`: the capability MSRs as read by RDMSR inside
    /// Bochs 2.7 (a guest that ran with controls computed from them is recorded in the
    /// project's notes). TRUE_ MSRs present (IA32_VMX_BASIC bit 55 = 1); no tertiary or
    /// secondary VM-exit controls; IA32_VMX_MISC bit 29 set.
    pub const fn bochs_corei7_skylake_x() -> VmxCapabilities {
        VmxCapabilities::new()
            .with(Msr::Basic, 0x00D8_1000_0000_002B)
            .with(Msr::PinbasedCtls, 0x0000_007F_0000_0016)
            .with(Msr::ProcbasedCtls, 0xF7F9_FFFE_0401_E172)
            .with(Msr::ExitCtls, 0x007F_FFFF_0003_6DFF)
            .with(Msr::EntryCtls, 0x0000_FFFF_0000_11FF)
            .with(Msr::Misc, 0x0000_0000_6004_01E0)
            .with(Msr::Cr0Fixed0, 0x8000_0021)
            .with(Msr::Cr0Fixed1, 0xFFFF_FFFF)
            .with(Msr::Cr4Fixed0, 0x2000)
            .with(Msr::Cr4Fixed1, 0x0037_27FF)
            .with(Msr::VmcsEnum, 0x34)
            .with(Msr::ProcbasedCtls2, 0x0217_7FFF_0000_0000)
            .with(Msr::EptVpidCap, 0x0000_0F01_0633_4141)
            .with(Msr::TruePinbasedCtls, 0x0000_007F_0000_0016)
            .with(Msr::TrueProcbasedCtls, 0xF7F9_FFFE_0400_6172)
            .with(Msr::TrueExitCtls, 0x007F_FFFF_0003_6DFB)
            .with(Msr::TrueEntryCtls, 0x0000_FFFF_0000_11FB)
            .with(Msr::Vmfunc, 0x1)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::string::ToString;

    use super::profiles::bochs_corei7_skylake_x;
    use super::*;
    use crate::access::VmInstructionError;
    use proptest::prelude::*;

    const B7: u64 = 1 << 7;
    const B24: u64 = 1 << 24;
    const B15_16: u64 = 1 << 15 | 1 << 16;

    fn skylake() -> VmxCapabilities {
        bochs_corei7_skylake_x()
    }

    /// The skylake profile without IA32_VMX_BASIC bit 55: only the plain MSRs count.
    fn skylake_without_true_msrs() -> VmxCapabilities {
        let caps = skylake();
        let basic = caps.get(VmxCapabilityMsr::Basic).unwrap_or(0);
        caps.with(VmxCapabilityMsr::Basic, basic & !(1 << 55))
    }

    /// The skylake profile extended with tertiary and secondary VM-exit controls.
    fn with_64bit_controls() -> VmxCapabilities {
        let caps = skylake();
        let primary = caps.get(VmxCapabilityMsr::TrueProcbasedCtls).unwrap_or(0) | 1 << (32 + 17);
        let exit = caps.get(VmxCapabilityMsr::TrueExitCtls).unwrap_or(0) | 1 << 63;
        caps.with(VmxCapabilityMsr::TrueProcbasedCtls, primary)
            .with(VmxCapabilityMsr::TrueExitCtls, exit)
            .with(VmxCapabilityMsr::ProcbasedCtls3, 0x0000_0001_0000_00FF)
            .with(VmxCapabilityMsr::ExitCtls2, 0x3)
    }

    #[test]
    fn capability_msr_table() {
        assert_eq!(VmxCapabilityMsr::ALL.len(), 20);
        for (i, &msr) in VmxCapabilityMsr::ALL.iter().enumerate() {
            assert_eq!(msr.msr_number(), 0x480 + i as u32);
            assert_eq!(VmxCapabilityMsr::from_msr_number(msr.msr_number()), Some(msr));
            assert_eq!(VmxCapabilityMsr::from_name(msr.name()), Some(msr));
            assert!(msr.name().starts_with("IA32_VMX_"));
        }
        assert_eq!(
            VmxCapabilityMsr::TrueProcbasedCtls.name(),
            "IA32_VMX_TRUE_PROCBASED_CTLS"
        );
        assert_eq!(VmxCapabilityMsr::TrueProcbasedCtls.msr_number(), 0x48E);
        assert_eq!(VmxCapabilityMsr::ProcbasedCtls3.msr_number(), 0x492);
        assert_eq!(VmxCapabilityMsr::ExitCtls2.name(), "IA32_VMX_EXIT_CTLS2");
        assert_eq!(
            VmxCapabilityMsr::from_name("ia32_vmx_basic"),
            Some(VmxCapabilityMsr::Basic)
        );
        assert_eq!(VmxCapabilityMsr::from_name("IA32_VMX_BOGUS"), None);
        assert_eq!(VmxCapabilityMsr::from_name(""), None);
        assert_eq!(VmxCapabilityMsr::from_msr_number(0x47F), None);
        assert_eq!(VmxCapabilityMsr::from_msr_number(0x494), None);
    }

    #[test]
    fn control_kinds() {
        let expected = [
            (ControlKind::Pin, "pin", 0x4000, 32),
            (ControlKind::Primary, "primary", 0x4002, 32),
            (ControlKind::Secondary, "secondary", 0x401E, 32),
            (ControlKind::Tertiary, "tertiary", 0x2034, 64),
            (ControlKind::Exit, "exit", 0x400C, 32),
            (ControlKind::Exit2, "exit2", 0x2044, 64),
            (ControlKind::Entry, "entry", 0x4012, 32),
        ];
        assert_eq!(ControlKind::ALL.len(), expected.len());
        for (kind, name, encoding, width) in expected {
            assert_eq!(kind.name(), name);
            assert_eq!(ControlKind::from_name(name), Some(kind));
            assert_eq!(kind.vmcs_field().encoding().raw(), encoding);
            assert_eq!(kind.width(), width);
            assert_eq!(kind.defined_bits() & !kind.mask(), 0);
        }
        assert_eq!(ControlKind::from_name("Primary"), None);
        assert_eq!(ControlKind::from_name("exit3"), None);
    }

    /// The acceptance values: skylake_x profile, no previous value.
    #[test]
    fn bochs_skylake_x_acceptance_values() {
        let caps = skylake();
        assert!(caps.uses_true_msrs());
        assert_eq!(set_control(&caps, ControlKind::Pin, None, 0, 0), Ok(0x16));
        assert_eq!(
            set_control(&caps, ControlKind::Primary, None, B7 | B24, 0),
            Ok(0x0501_E1F2)
        );
        assert_eq!(
            set_control(&caps, ControlKind::Primary, None, B7 | B24, B15_16),
            Ok(0x0500_61F2)
        );
        assert_eq!(
            set_control(&caps, ControlKind::Exit, None, 1 << 9, 0),
            Ok(0x3_6FFF)
        );
        assert_eq!(
            set_control(&caps, ControlKind::Exit, None, 1 << 9, 1 << 2),
            Ok(0x3_6FFB)
        );
        assert_eq!(
            set_control(&caps, ControlKind::Entry, None, 1 << 9, 0),
            Ok(0x13FF)
        );
        assert_eq!(
            set_control(&caps, ControlKind::Entry, None, 1 << 9, 1 << 2),
            Ok(0x13FB)
        );
    }

    /// reference-gaps item 3: the TRUE-vs-plain choice is made here, from IA32_VMX_BASIC bit
    /// 55, not left to the caller.
    #[test]
    fn gap3_true_msrs_exactly_when_basic_bit_55() {
        let plain = skylake_without_true_msrs();
        assert!(!plain.uses_true_msrs());
        assert_eq!(
            plain.control_msr(ControlKind::Primary),
            VmxCapabilityMsr::ProcbasedCtls
        );
        assert_eq!(
            skylake().control_msr(ControlKind::Primary),
            VmxCapabilityMsr::TrueProcbasedCtls
        );
        assert_eq!(
            skylake().control_msr(ControlKind::Secondary),
            VmxCapabilityMsr::ProcbasedCtls2
        );
        assert_eq!(
            set_control(&plain, ControlKind::Primary, None, B7 | B24, B15_16),
            Err(ControlError::MustBeOne {
                kind: ControlKind::Primary,
                msr: VmxCapabilityMsr::ProcbasedCtls,
                bits: B15_16,
            })
        );
        // Without clearing them, both choices agree: the default1 bits are 1 either way.
        assert_eq!(
            set_control(&plain, ControlKind::Primary, None, B7 | B24, 0),
            Ok(0x0501_E1F2)
        );
        assert_eq!(
            set_control(&plain, ControlKind::Exit, None, 1 << 9, 1 << 2),
            Err(ControlError::MustBeOne {
                kind: ControlKind::Exit,
                msr: VmxCapabilityMsr::ExitCtls,
                bits: 1 << 2
            })
        );
        assert_eq!(
            set_control(&plain, ControlKind::Entry, None, 1 << 9, 1 << 2),
            Err(ControlError::MustBeOne {
                kind: ControlKind::Entry,
                msr: VmxCapabilityMsr::EntryCtls,
                bits: 1 << 2
            })
        );
        // Bit 55 set but the TRUE_ MSR missing: an error, not a silent fallback.
        let broken = skylake().without(VmxCapabilityMsr::TrueProcbasedCtls);
        assert_eq!(
            set_control(&broken, ControlKind::Primary, None, 0, 0),
            Err(ControlError::MissingMsr {
                kind: ControlKind::Primary,
                msr: VmxCapabilityMsr::TrueProcbasedCtls
            })
        );
    }

    #[test]
    fn previous_value_is_preserved() {
        let caps = skylake();
        let first = 0x0500_61F2;
        // Flexible bits keep their previous setting (15 and 16 stay clear, 7 and 24 stay set).
        assert_eq!(
            set_control(&caps, ControlKind::Primary, Some(first), 1 << 3, 0),
            Ok(first | 1 << 3)
        );
        assert_eq!(
            set_control(&caps, ControlKind::Primary, Some(first), 0, 0),
            Ok(first)
        );
        assert_eq!(
            set_control(&caps, ControlKind::Primary, Some(first), 0, B7),
            Ok(first & !B7)
        );
        // Without a previous value the same request takes the default1 setting of 15 and 16.
        assert_eq!(
            set_control(&caps, ControlKind::Primary, None, 1 << 3, 0),
            Ok(0x0401_E17A)
        );
        // Bits of `previous` that are not flexible are forced: must-be-1 bits come back,
        // must-be-0 bits (0 and 27 here) and bits beyond the width go.
        assert_eq!(
            set_control(&caps, ControlKind::Primary, Some(0), 0, 0),
            Ok(0x0400_6172)
        );
        assert_eq!(
            set_control(
                &caps,
                ControlKind::Primary,
                Some(1 | 1 << 27 | 1 << 40 | B7),
                0,
                0
            ),
            Ok(0x0400_6172 | B7)
        );
        // Previous value for a 64-bit control.
        let caps = with_64bit_controls();
        let tertiary = set_control(&caps, ControlKind::Tertiary, Some(1 << 32 | 1 << 50), 1 << 4, 0);
        assert_eq!(tertiary, Ok(1 << 32 | 1 << 4));
    }

    #[test]
    fn default1_constants_match_the_plain_msrs() {
        let caps = skylake();
        let low = |msr| caps.get(msr).map(|v| v & 0xFFFF_FFFF);
        assert_eq!(
            low(VmxCapabilityMsr::PinbasedCtls),
            Some(u64::from(PinBasedControls::DEFAULT1.bits()))
        );
        assert_eq!(
            low(VmxCapabilityMsr::ProcbasedCtls),
            Some(u64::from(PrimaryControls::DEFAULT1.bits()))
        );
        assert_eq!(
            low(VmxCapabilityMsr::ExitCtls),
            Some(u64::from(PrimaryExitControls::DEFAULT1.bits()))
        );
        assert_eq!(
            low(VmxCapabilityMsr::EntryCtls),
            Some(u64::from(EntryControls::DEFAULT1.bits()))
        );
    }

    #[test]
    fn typed_requests() {
        let caps = skylake();
        let primary = set_control_flags(
            &caps,
            None,
            PrimaryControls::HLT_EXITING | PrimaryControls::UNCONDITIONAL_IO_EXITING,
            PrimaryControls::CR3_LOAD_EXITING | PrimaryControls::CR3_STORE_EXITING,
        );
        assert_eq!(primary.map(|p| p.bits()), Ok(0x0500_61F2));
        let secondary = set_control_flags(
            &caps,
            None,
            SecondaryControls::ENABLE_EPT | SecondaryControls::UNRESTRICTED_GUEST,
            SecondaryControls::empty(),
        );
        assert_eq!(secondary.map(|s| s.bits()), Ok(0x82));
        let entry = set_control_flags(
            &caps,
            None,
            EntryControls::IA32E_MODE_GUEST,
            EntryControls::LOAD_DEBUG_CONTROLS,
        );
        assert_eq!(entry.map(|e| e.bits()), Ok(0x13FB));
    }

    /// reference-gaps item 3: 64-bit controls (tertiary, secondary VM-exit) are handled, with
    /// allowed-1-only MSRs and bits above 31.
    #[test]
    fn gap3_64bit_controls() {
        let caps = with_64bit_controls();
        assert_eq!(
            caps.allowed(ControlKind::Tertiary),
            Ok(AllowedBits {
                must_be_one: 0,
                may_be_one: 0x1_0000_00FF
            })
        );
        assert_eq!(
            set_control(&caps, ControlKind::Tertiary, None, 1 << 4 | 1 << 32, 0),
            Ok(0x1_0000_0010)
        );
        assert_eq!(
            set_control(&caps, ControlKind::Tertiary, None, 1 << 40, 0),
            Err(ControlError::NotAllowedOne {
                kind: ControlKind::Tertiary,
                msr: VmxCapabilityMsr::ProcbasedCtls3,
                bits: 1 << 40
            })
        );
        assert_eq!(set_control(&caps, ControlKind::Exit2, None, 0b11, 0), Ok(0b11));
        assert_eq!(
            set_control(&caps, ControlKind::Exit2, Some(0b11), 0, 0b10),
            Ok(0b01)
        );
        // No default1 bits: an empty request with no previous value is 0.
        assert_eq!(set_control(&caps, ControlKind::Exit2, None, 0, 0), Ok(0));
        // A 32-bit control refuses bits above 31.
        assert_eq!(
            set_control(&caps, ControlKind::Primary, None, 1 << 32, 0),
            Err(ControlError::BitsBeyondWidth {
                kind: ControlKind::Primary,
                bits: 1 << 32
            })
        );
        assert_eq!(
            set_control(&caps, ControlKind::Entry, None, 0, 1 << 63),
            Err(ControlError::BitsBeyondWidth {
                kind: ControlKind::Entry,
                bits: 1 << 63
            })
        );
    }

    /// reference-gaps item 3: the secondary (and tertiary, secondary VM-exit) controls are
    /// checked to exist before use.
    #[test]
    fn gap3_activated_controls_must_exist() {
        let caps = skylake();
        assert_eq!(
            caps.allowed(ControlKind::Secondary).map(|a| a.may_be_one),
            Ok(0x0217_7FFF)
        );
        // skylake_x: primary bit 17 and primary VM-exit bit 31 are not allowed-1.
        assert_eq!(
            set_control(&caps, ControlKind::Tertiary, None, 0, 0),
            Err(ControlError::NotSupported {
                kind: ControlKind::Tertiary,
                activator: ControlKind::Primary,
                bit: 17
            })
        );
        assert_eq!(
            set_control(&caps, ControlKind::Exit2, None, 0, 0),
            Err(ControlError::NotSupported {
                kind: ControlKind::Exit2,
                activator: ControlKind::Exit,
                bit: 31
            })
        );
        // Primary bit 31 not allowed-1: no secondary controls, whatever IA32_VMX_PROCBASED_CTLS2 says.
        let primary = caps.get(VmxCapabilityMsr::TrueProcbasedCtls).unwrap_or(0) & !(1 << 63);
        let no_secondary = caps.with(VmxCapabilityMsr::TrueProcbasedCtls, primary);
        assert_eq!(
            set_control(&no_secondary, ControlKind::Secondary, None, 1 << 1, 0),
            Err(ControlError::NotSupported {
                kind: ControlKind::Secondary,
                activator: ControlKind::Primary,
                bit: 31
            })
        );
        // Bit 31 allowed but the MSR absent.
        let no_msr = caps.without(VmxCapabilityMsr::ProcbasedCtls2);
        assert_eq!(
            set_control(&no_msr, ControlKind::Secondary, None, 1 << 1, 0),
            Err(ControlError::MissingMsr {
                kind: ControlKind::Secondary,
                msr: VmxCapabilityMsr::ProcbasedCtls2
            })
        );
        // The activating control's own MSR absent: reported against the requested kind.
        let no_primary = caps.without(VmxCapabilityMsr::TrueProcbasedCtls);
        assert_eq!(
            set_control(&no_primary, ControlKind::Secondary, None, 0, 0),
            Err(ControlError::MissingMsr {
                kind: ControlKind::Secondary,
                msr: VmxCapabilityMsr::TrueProcbasedCtls
            })
        );
        let caps = with_64bit_controls();
        let no_ctls3 = caps.without(VmxCapabilityMsr::ProcbasedCtls3);
        assert_eq!(
            set_control(&no_ctls3, ControlKind::Tertiary, None, 0, 0),
            Err(ControlError::MissingMsr {
                kind: ControlKind::Tertiary,
                msr: VmxCapabilityMsr::ProcbasedCtls3
            })
        );
        let no_ctls2 = caps.without(VmxCapabilityMsr::ExitCtls2);
        assert_eq!(
            set_control(&no_ctls2, ControlKind::Exit2, None, 0, 0),
            Err(ControlError::MissingMsr {
                kind: ControlKind::Exit2,
                msr: VmxCapabilityMsr::ExitCtls2
            })
        );
    }

    /// reference-gaps item 3: an inconsistent MSR is an error, not a panic.
    #[test]
    fn gap3_inconsistent_msr_is_an_error() {
        // Bit 1 must be 1 (allowed-0 half) but is not allowed to be 1 (allowed-1 half).
        let caps = skylake().with(VmxCapabilityMsr::TruePinbasedCtls, 0x0000_007D_0000_0016);
        let expected = ControlError::InconsistentMsr {
            kind: ControlKind::Pin,
            msr: VmxCapabilityMsr::TruePinbasedCtls,
            bits: 1 << 1,
        };
        assert_eq!(set_control(&caps, ControlKind::Pin, None, 0, 0), Err(expected));
        assert_eq!(caps.allowed(ControlKind::Pin), Err(expected));
        assert_eq!(
            expected.to_string(),
            "pin-based VM-execution controls: IA32_VMX_TRUE_PINBASED_CTLS reports bit 1 as must-be-1 \
             but not allowed-1"
        );
    }

    #[test]
    fn request_errors() {
        let caps = skylake();
        let both = set_control(&caps, ControlKind::Primary, None, B7 | B24, B7);
        assert_eq!(
            both,
            Err(ControlError::SetAndCleared {
                kind: ControlKind::Primary,
                bits: B7
            })
        );
        // Bit 27 (monitor trap flag) is not allowed-1 on this model; bit 0 is reserved.
        let not_allowed = set_control(&caps, ControlKind::Primary, None, 1 << 27 | 1, 0);
        assert_eq!(
            not_allowed,
            Err(ControlError::NotAllowedOne {
                kind: ControlKind::Primary,
                msr: VmxCapabilityMsr::TrueProcbasedCtls,
                bits: 1 << 27 | 1
            })
        );
        let must_be_one = set_control(&caps, ControlKind::Pin, None, 0, 1 << 1 | 1 << 4);
        assert_eq!(
            must_be_one,
            Err(ControlError::MustBeOne {
                kind: ControlKind::Pin,
                msr: VmxCapabilityMsr::TruePinbasedCtls,
                bits: 1 << 1 | 1 << 4
            })
        );
        let no_basic = caps.without(VmxCapabilityMsr::Basic);
        assert_eq!(
            set_control(&no_basic, ControlKind::Pin, None, 0, 0),
            Err(ControlError::MissingMsr {
                kind: ControlKind::Pin,
                msr: VmxCapabilityMsr::Basic
            })
        );
        // No previous value: the plain MSR is needed for the default1 bits.
        let no_plain = caps.without(VmxCapabilityMsr::ProcbasedCtls);
        assert_eq!(
            set_control(&no_plain, ControlKind::Primary, None, 0, 0),
            Err(ControlError::MissingMsr {
                kind: ControlKind::Primary,
                msr: VmxCapabilityMsr::ProcbasedCtls
            })
        );
        assert_eq!(
            set_control(&no_plain, ControlKind::Primary, Some(0), B7, 0),
            Ok(0x0400_6172 | B7)
        );
        assert_eq!(
            set_control(&VmxCapabilities::new(), ControlKind::Entry, None, 0, 0),
            Err(ControlError::MissingMsr {
                kind: ControlKind::Entry,
                msr: VmxCapabilityMsr::Basic
            })
        );
    }

    #[test]
    fn error_messages_name_the_bits() {
        let caps = skylake_without_true_msrs();
        let error = set_control(&caps, ControlKind::Primary, None, B7 | B24, B15_16);
        assert_eq!(
            error.map_err(|e| e.to_string()),
            Err(
                "primary processor-based VM-execution controls: cannot clear bits 15, 16: must be 1 \
                 (IA32_VMX_PROCBASED_CTLS)"
                    .to_string()
            )
        );
        let cases = [
            (
                ControlError::SetAndCleared {
                    kind: ControlKind::Pin,
                    bits: 1 << 3,
                },
                "bit 3 asked to be both set and cleared",
            ),
            (
                ControlError::BitsBeyondWidth {
                    kind: ControlKind::Entry,
                    bits: 1 << 32 | 1 << 40,
                },
                "bits 32, 40 lie beyond the 32-bit field",
            ),
            (
                ControlError::NotAllowedOne {
                    kind: ControlKind::Primary,
                    msr: VmxCapabilityMsr::TrueProcbasedCtls,
                    bits: 1 << 27,
                },
                "cannot set bit 27: not allowed to be 1 (IA32_VMX_TRUE_PROCBASED_CTLS)",
            ),
            (
                ControlError::NotSupported {
                    kind: ControlKind::Tertiary,
                    activator: ControlKind::Primary,
                    bit: 17,
                },
                "tertiary processor-based VM-execution controls are not supported: primary processor-based \
                 VM-execution controls do not allow bit 17 (activate tertiary controls) to be 1",
            ),
            (
                ControlError::MissingMsr {
                    kind: ControlKind::Exit2,
                    msr: VmxCapabilityMsr::ExitCtls2,
                },
                "capability MSR IA32_VMX_EXIT_CTLS2 is absent",
            ),
        ];
        for (error, text) in cases {
            let shown = error.to_string();
            assert!(shown.contains(text), "{shown:?} lacks {text:?}");
            assert_eq!(error.kind(), error.for_kind(error.kind()).kind());
        }
    }

    #[test]
    fn decoded_capabilities_of_skylake_x() {
        let caps = skylake();
        let basic = caps.basic();
        assert_eq!(
            basic,
            Some(VmxBasic {
                revision_id: 0x2B,
                region_size: 4096,
                addresses_limited_to_32_bits: false,
                dual_monitor_treatment: false,
                vmcs_memory_type: 6,
                ins_outs_instruction_info: true,
                true_controls: true,
                any_exception_error_code: false,
            })
        );
        assert_eq!(caps.vmcs_revision_id(), Some(0x2B));
        assert_eq!(VmxBasic::from_raw(u64::MAX).revision_id, 0x7FFF_FFFF);
        let misc = caps.misc();
        assert_eq!(misc.map(|m| m.cr3_target_count), Some(4));
        assert_eq!(misc.map(|m| m.max_msr_list_entries), Some(512));
        assert_eq!(
            misc.map(|m| (m.activity_hlt, m.activity_shutdown, m.activity_wait_for_sipi)),
            Some((true, true, true))
        );
        assert_eq!(misc.map(|m| m.exit_stores_efer_lma), Some(true));
        assert_eq!(misc.map(|m| m.zero_length_instruction_injection), Some(true));
        assert!(caps.vmx_misc_allows_vmwrite_to_exit_info());
        // Older models (penryn .. ivy_bridge) lack bit 29: VMWRITE to exit fields fails there.
        let older = caps.with(VmxCapabilityMsr::Misc, 0x0000_0000_4004_01E0);
        assert!(!older.vmx_misc_allows_vmwrite_to_exit_info());
        assert!(!VmxCapabilities::new().vmx_misc_allows_vmwrite_to_exit_info());
        assert_eq!(caps.vmcs_enum_max_index(), Some(0x1A));
        assert_eq!(caps.vmfunc(), Some(1));

        let ept = caps.ept_vpid();
        assert_eq!(
            ept,
            Some(EptVpidCapabilities {
                execute_only: true,
                page_walk_length_4: true,
                page_walk_length_5: false,
                memory_type_uc: true,
                memory_type_wb: true,
                pages_2m: true,
                pages_1g: true,
                invept: true,
                accessed_dirty_flags: true,
                advanced_ept_violation_info: false,
                supervisor_shadow_stack: false,
                invept_single_context: true,
                invept_all_context: true,
                invvpid: true,
                invvpid_individual_address: true,
                invvpid_single_context: true,
                invvpid_all_context: true,
                invvpid_single_context_retaining_globals: true,
                max_hlat_prefix_size: 0,
            })
        );
        assert_eq!(VmxCapabilities::new().ept_vpid(), None);
    }

    /// The CR0/CR4 fixed-bit check really checks (the reference's was a no-op).
    #[test]
    fn cr_fixed_bits() {
        let caps = skylake();
        let cr0 = caps.cr0_fixed();
        assert_eq!(
            cr0,
            Some(AllowedBits {
                must_be_one: 0x8000_0021,
                may_be_one: 0xFFFF_FFFF
            })
        );
        let cr0 = cr0.unwrap_or(AllowedBits {
            must_be_one: 0,
            may_be_one: 0,
        });
        assert!(cr0.permits(0x8000_0031));
        assert!(!cr0.permits(0x31));
        assert_eq!(cr0.missing_ones(0x31), 0x8000_0000);
        assert_eq!(cr0.forbidden_ones(1 << 32), 1 << 32);
        assert_eq!(cr0.apply(0x10), 0x8000_0031);

        let cr4 = caps.cr4_fixed().unwrap_or(AllowedBits {
            must_be_one: 0,
            may_be_one: 0,
        });
        assert!(cr4.permits(0x2020));
        assert!(!cr4.permits(0x20));
        // CR4.LA57 (bit 12) is not allowed on this model.
        assert_eq!(cr4.forbidden_ones(0x3020), 0x1000);
        assert_eq!(cr4.apply(0x1020), 0x2020);
        assert_eq!(caps.without(VmxCapabilityMsr::Cr4Fixed1).cr4_fixed(), None);
    }

    #[test]
    fn capabilities_builder() {
        let mut caps = VmxCapabilities::new();
        assert_eq!(caps.iter().count(), 0);
        caps.set(VmxCapabilityMsr::Vmfunc, 7);
        caps.set(VmxCapabilityMsr::Basic, 1);
        let present: std::vec::Vec<_> = caps.iter().collect();
        assert_eq!(
            present,
            [(VmxCapabilityMsr::Basic, 1), (VmxCapabilityMsr::Vmfunc, 7)]
        );
        caps.remove(VmxCapabilityMsr::Basic);
        assert_eq!(caps.get(VmxCapabilityMsr::Basic), None);
        assert_eq!(skylake().iter().count(), 18);
        assert_eq!(VmxCapabilities::default(), VmxCapabilities::new());
    }

    /// An in-memory VMCS holding the seven control fields, counting accesses.
    struct ControlFields {
        values: [(u32, u64); 7],
        reads: usize,
        writes: usize,
        fail_writes: bool,
    }

    impl ControlFields {
        fn new() -> Self {
            let mut values = [(0, 0); 7];
            for (slot, kind) in values.iter_mut().zip(ControlKind::ALL) {
                *slot = (kind.vmcs_field().encoding().raw(), 0);
            }
            Self {
                values,
                reads: 0,
                writes: 0,
                fail_writes: false,
            }
        }

        fn slot(&mut self, encoding: u32) -> Result<&mut u64, VmcsError> {
            self.values
                .iter_mut()
                .find(|(e, _)| *e == encoding)
                .map(|(_, v)| v)
                .ok_or(VmcsError::VmFailValid(VmInstructionError::UnsupportedComponent))
        }
    }

    impl VmcsAccess for ControlFields {
        fn read(&mut self, encoding: u32) -> Result<u64, VmcsError> {
            self.reads += 1;
            self.slot(encoding).map(|v| *v)
        }

        fn write(&mut self, encoding: u32, value: u64) -> Result<(), VmcsError> {
            self.writes += 1;
            if self.fail_writes {
                return Err(VmcsError::Kernel(3));
            }
            *self.slot(encoding)? = value;
            Ok(())
        }
    }

    /// reference-gaps item 3: the VMCS is written through any `VmcsAccess`, so the whole path
    /// is testable without hardware.
    #[test]
    fn gap3_write_control_through_any_backend() {
        let caps = skylake();
        let mut vmcs = ControlFields::new();
        // The field reads 0: flexible bits start clear.
        assert_eq!(
            write_control(&mut vmcs, &caps, ControlKind::Primary, B7 | B24, 0),
            Ok(0x0500_61F2)
        );
        assert_eq!(vmcs.read(0x4002), Ok(0x0500_61F2));
        // The next request keeps what the field holds.
        assert_eq!(
            write_control(&mut vmcs, &caps, ControlKind::Primary, 1 << 3, B7),
            Ok(0x0500_617A)
        );
        assert_eq!(vmcs.read(0x4002), Ok(0x0500_617A));
        // Through a `&mut dyn VmcsAccess` too.
        let dynamic: &mut dyn VmcsAccess = &mut vmcs;
        assert_eq!(
            write_control(dynamic, &caps, ControlKind::Entry, 1 << 9, 0),
            Ok(0x11FB | 1 << 9)
        );

        // Unsupported control word: refused before any access.
        let (reads, writes) = (vmcs.reads, vmcs.writes);
        let error = write_control(&mut vmcs, &caps, ControlKind::Tertiary, 1, 0);
        assert_eq!(
            error,
            Err(WriteControlError::Control(ControlError::NotSupported {
                kind: ControlKind::Tertiary,
                activator: ControlKind::Primary,
                bit: 17
            }))
        );
        assert_eq!((vmcs.reads, vmcs.writes), (reads, writes));
        // An impossible request writes nothing.
        let error = write_control(&mut vmcs, &caps, ControlKind::Pin, 0, 1 << 1);
        assert!(matches!(
            error,
            Err(WriteControlError::Control(ControlError::MustBeOne { .. }))
        ));
        assert_eq!(vmcs.writes, writes);
        // Backend failures come back as such.
        vmcs.fail_writes = true;
        let error = write_control(&mut vmcs, &caps, ControlKind::Pin, 0, 0);
        assert_eq!(error, Err(WriteControlError::Vmcs(VmcsError::Kernel(3))));
        assert_eq!(
            error.map_err(|e| e.to_string()),
            Err("VMCS access failed: refused by the kernel (error 3)".to_string())
        );
    }

    /// A 32-bit control MSR whose must-be-1 bits are all allowed-1.
    fn consistent(high: u32, low: u32) -> u64 {
        u64::from(high) << 32 | u64::from(low & high)
    }

    fn msr_value() -> impl Strategy<Value = Option<u64>> {
        prop_oneof![
            1 => Just(None),
            1 => any::<u64>().prop_map(Some),
            4 => (any::<u32>(), any::<u32>()).prop_map(|(high, low)| Some(consistent(high, low))),
        ]
    }

    fn arbitrary_caps() -> impl Strategy<Value = VmxCapabilities> {
        proptest::array::uniform20(msr_value()).prop_map(|values| VmxCapabilities { values })
    }

    /// Every MSR present, every 32-bit control MSR consistent.
    fn consistent_caps() -> impl Strategy<Value = VmxCapabilities> {
        proptest::array::uniform20((any::<u32>(), any::<u32>(), any::<u64>())).prop_map(|values| {
            let mut caps = VmxCapabilities::new();
            for (&msr, (high, low, wide)) in VmxCapabilityMsr::ALL.iter().zip(values) {
                let value = match msr {
                    VmxCapabilityMsr::ProcbasedCtls3
                    | VmxCapabilityMsr::ExitCtls2
                    | VmxCapabilityMsr::Basic => wide,
                    _ => consistent(high, low),
                };
                caps.set(msr, value);
            }
            caps
        })
    }

    /// Requests: random over 64 or 32 bits, one bit, or none.
    fn request_bits() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            any::<u32>().prop_map(u64::from),
            (0u32..64).prop_map(|bit| 1 << bit),
            (0u32..32).prop_map(|bit| 1 << bit),
            Just(0),
        ]
    }

    fn kind() -> impl Strategy<Value = ControlKind> {
        proptest::sample::select(ControlKind::ALL)
    }

    /// Checks the properties every successful result has.
    fn check_result(
        caps: &VmxCapabilities,
        kind: ControlKind,
        previous: Option<u64>,
        set: u64,
        clear: u64,
        value: u64,
    ) -> Result<(), TestCaseError> {
        let allowed = caps.allowed(kind);
        prop_assert!(allowed.is_ok());
        let allowed = allowed.unwrap_or(AllowedBits {
            must_be_one: 0,
            may_be_one: 0,
        });
        prop_assert_eq!(value & !kind.mask(), 0);
        prop_assert_eq!(allowed.must_be_one & !value, 0, "must_be_one ⊆ result");
        prop_assert_eq!(value & !allowed.may_be_one, 0, "result ⊆ may_be_one");
        prop_assert_eq!(set & !value, 0, "set ⊆ result");
        prop_assert_eq!(value & clear, 0, "result ∩ clear = ∅");
        if let Some(previous) = previous {
            let untouched = allowed.flexible() & !set & !clear;
            prop_assert_eq!(value & untouched, previous & untouched, "previous preserved");
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Arbitrary capability values and requests never panic; any success is valid.
        #[test]
        fn never_panics(
            caps in arbitrary_caps(),
            kind in kind(),
            previous in proptest::option::of(any::<u64>()),
            set in request_bits(),
            clear in request_bits(),
        ) {
            match set_control(&caps, kind, previous, set, clear) {
                Ok(value) => check_result(&caps, kind, previous, set, clear, value)?,
                Err(error) => {
                    prop_assert_eq!(error.kind(), kind);
                    prop_assert!(!error.to_string().is_empty());
                }
            }
            let _ = caps.basic();
            let _ = caps.misc();
            let _ = caps.ept_vpid();
            let _ = caps.vmcs_enum_max_index();
        }

        /// With consistent capabilities, any request within the allowed bits succeeds.
        #[test]
        fn allowed_requests_succeed(
            caps in consistent_caps(),
            kind in kind(),
            previous in proptest::option::of(any::<u64>()),
            want_set in any::<u64>(),
            want_clear in any::<u64>(),
        ) {
            let allowed = match caps.allowed(kind) {
                Ok(allowed) => allowed,
                Err(ControlError::NotSupported { .. }) => return Ok(()),
                Err(error) => return Err(TestCaseError::fail(error.to_string())),
            };
            let set = want_set & allowed.may_be_one;
            let clear = want_clear & allowed.flexible() & !set;
            let value = set_control(&caps, kind, previous, set, clear);
            prop_assert!(value.is_ok(), "{:?}", value);
            check_result(&caps, kind, previous, set, clear, value.unwrap_or(0))?;
            if previous.is_none() {
                // Untouched flexible bits take the default1 setting of the plain MSR.
                let default1 = match kind.true_capability_msr() {
                    Some(_) => caps.get(kind.capability_msr()).unwrap_or(0) & 0xFFFF_FFFF,
                    None => 0,
                };
                let untouched = allowed.flexible() & !set & !clear;
                prop_assert_eq!(value.unwrap_or(0) & untouched, default1 & untouched);
            }
        }
    }
}
