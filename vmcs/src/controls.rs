//! The VMX control words as bit flags: every bit the SDM defines, one type per VMCS field.
//!
//! | type | VMCS field | bits | SDM Vol. 3C |
//! |------|------------|------|-------------|
//! | [`PinBasedControls`] | pin-based VM-execution controls | 32 | 25.6.1, Table 25-5 |
//! | [`PrimaryControls`] | primary processor-based VM-execution controls | 32 | 25.6.2, Table 25-6 |
//! | [`SecondaryControls`] | secondary processor-based VM-execution controls | 32 | 25.6.2, Table 25-7 |
//! | [`TertiaryControls`] | tertiary processor-based VM-execution controls | 64 | 25.6.2, Table 25-8 |
//! | [`PrimaryExitControls`] | primary VM-exit controls | 32 | 25.7.1, Table 25-13 |
//! | [`SecondaryExitControls`] | secondary VM-exit controls | 64 | 25.7.1, Table 25-14 |
//! | [`EntryControls`] | VM-entry controls | 32 | 25.8.1, Table 25-16 |
//!
//! Section and table numbers are those of the 2024 edition used throughout this crate. The bit
//! definitions are those of the newest edition consulted, Vol. 3C order no. 326019-092 (2026),
//! whose VMCS chapter is 27 (the same tables are 27-5 to 27-8, 27-14, 27-15 and 27-17 there);
//! it adds bits the 2024 tables lack (e.g. tertiary bits 8, 9 and 12, secondary VM-exit bits 2
//! and 3, VM-entry bits 24 and 25). Positions were cross-checked against Linux, Xen and Bochs.
//!
//! A bit being defined says nothing about the processor supporting it: the capability MSRs
//! decide that (see [`crate::caps`] and [`crate::caps::set_control`]). Reserved bits are kept
//! by `from_bits_retain` and never silently dropped.

use crate::caps::ControlKind;

bitflags::bitflags! {
    /// Pin-based VM-execution controls: asynchronous events (SDM Vol. 3C, Section 25.6.1,
    /// Table 25-5). Bits 1, 2 and 4 are "default1" reserved bits ([`PinBasedControls::DEFAULT1`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct PinBasedControls: u32 {
        /// Bit 0, external-interrupt exiting: external interrupts cause VM exits.
        const EXTERNAL_INTERRUPT_EXITING = 1 << 0;
        /// Bit 3, NMI exiting: non-maskable interrupts cause VM exits.
        const NMI_EXITING = 1 << 3;
        /// Bit 5, virtual NMIs: NMIs are never blocked; "blocking by NMI" tracks virtual-NMI blocking.
        const VIRTUAL_NMIS = 1 << 5;
        /// Bit 6, activate VMX-preemption timer: the timer counts down in non-root operation.
        const ACTIVATE_VMX_PREEMPTION_TIMER = 1 << 6;
        /// Bit 7, process posted interrupts: the posted-interrupt notification vector is special.
        const PROCESS_POSTED_INTERRUPTS = 1 << 7;
    }
}

bitflags::bitflags! {
    /// Primary processor-based VM-execution controls: synchronous events, mostly instructions
    /// (SDM Vol. 3C, Section 25.6.2, Table 25-6). Bits 1, 4–6, 8, 13–16 and 26 are "default1"
    /// ([`PrimaryControls::DEFAULT1`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct PrimaryControls: u32 {
        /// Bit 2, interrupt-window exiting: exit when RFLAGS.IF = 1 and nothing blocks interrupts.
        const INTERRUPT_WINDOW_EXITING = 1 << 2;
        /// Bit 3, use TSC offsetting: RDTSC, RDTSCP and RDMSR of the TSC add the TSC offset.
        const USE_TSC_OFFSETTING = 1 << 3;
        /// Bit 7, HLT exiting: HLT causes VM exits.
        const HLT_EXITING = 1 << 7;
        /// Bit 9, INVLPG exiting: INVLPG (and INVPCID) cause VM exits.
        const INVLPG_EXITING = 1 << 9;
        /// Bit 10, MWAIT exiting: MWAIT causes VM exits.
        const MWAIT_EXITING = 1 << 10;
        /// Bit 11, RDPMC exiting: RDPMC causes VM exits.
        const RDPMC_EXITING = 1 << 11;
        /// Bit 12, RDTSC exiting: RDTSC and RDTSCP cause VM exits.
        const RDTSC_EXITING = 1 << 12;
        /// Bit 15, CR3-load exiting: MOV to CR3 exits unless the value is a CR3-target value.
        const CR3_LOAD_EXITING = 1 << 15;
        /// Bit 16, CR3-store exiting: MOV from CR3 causes VM exits.
        const CR3_STORE_EXITING = 1 << 16;
        /// Bit 17, activate tertiary controls: use the tertiary processor-based controls.
        const ACTIVATE_TERTIARY_CONTROLS = 1 << 17;
        /// Bit 19, CR8-load exiting: MOV to CR8 causes VM exits.
        const CR8_LOAD_EXITING = 1 << 19;
        /// Bit 20, CR8-store exiting: MOV from CR8 causes VM exits.
        const CR8_STORE_EXITING = 1 << 20;
        /// Bit 21, use TPR shadow: TPR virtualization and the other APIC virtualization features.
        const USE_TPR_SHADOW = 1 << 21;
        /// Bit 22, NMI-window exiting: exit when there is no virtual-NMI blocking.
        const NMI_WINDOW_EXITING = 1 << 22;
        /// Bit 23, MOV-DR exiting: MOV DR causes VM exits.
        const MOV_DR_EXITING = 1 << 23;
        /// Bit 24, unconditional I/O exiting: every I/O instruction exits (ignored with I/O bitmaps).
        const UNCONDITIONAL_IO_EXITING = 1 << 24;
        /// Bit 25, use I/O bitmaps: the I/O bitmaps decide which I/O instructions exit.
        const USE_IO_BITMAPS = 1 << 25;
        /// Bit 27, monitor trap flag: the MTF debugging feature is enabled.
        const MONITOR_TRAP_FLAG = 1 << 27;
        /// Bit 28, use MSR bitmaps: the MSR bitmaps decide which RDMSR/WRMSR exit.
        const USE_MSR_BITMAPS = 1 << 28;
        /// Bit 29, MONITOR exiting: MONITOR causes VM exits.
        const MONITOR_EXITING = 1 << 29;
        /// Bit 30, PAUSE exiting: PAUSE causes VM exits.
        const PAUSE_EXITING = 1 << 30;
        /// Bit 31, activate secondary controls: use the secondary processor-based controls.
        const ACTIVATE_SECONDARY_CONTROLS = 1 << 31;
    }
}

bitflags::bitflags! {
    /// Secondary processor-based VM-execution controls (SDM Vol. 3C, Section 25.6.2, Table 25-7).
    /// In effect only when [`PrimaryControls::ACTIVATE_SECONDARY_CONTROLS`] is set.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct SecondaryControls: u32 {
        /// Bit 0, virtualize APIC accesses: accesses to the APIC-access page are special.
        const VIRTUALIZE_APIC_ACCESSES = 1 << 0;
        /// Bit 1, enable EPT: extended page tables translate guest-physical addresses.
        const ENABLE_EPT = 1 << 1;
        /// Bit 2, descriptor-table exiting: LGDT, LIDT, LLDT, LTR, SGDT, SIDT, SLDT, STR exit.
        const DESCRIPTOR_TABLE_EXITING = 1 << 2;
        /// Bit 3, enable RDTSCP: if 0, RDTSCP causes #UD.
        const ENABLE_RDTSCP = 1 << 3;
        /// Bit 4, virtualize x2APIC mode: RDMSR/WRMSR of MSRs 800H–8FFH are special.
        const VIRTUALIZE_X2APIC_MODE = 1 << 4;
        /// Bit 5, enable VPID: cached translations are tagged with the VPID.
        const ENABLE_VPID = 1 << 5;
        /// Bit 6, WBINVD exiting: WBINVD and WBNOINVD cause VM exits.
        const WBINVD_EXITING = 1 << 6;
        /// Bit 7, unrestricted guest: the guest may run unpaged or in real-address mode.
        const UNRESTRICTED_GUEST = 1 << 7;
        /// Bit 8, APIC-register virtualization: certain APIC register accesses are virtualized.
        const APIC_REGISTER_VIRTUALIZATION = 1 << 8;
        /// Bit 9, virtual-interrupt delivery: pending virtual interrupts are evaluated and delivered.
        const VIRTUAL_INTERRUPT_DELIVERY = 1 << 9;
        /// Bit 10, PAUSE-loop exiting: a long loop of PAUSE causes a VM exit (PLE_Gap/PLE_Window).
        const PAUSE_LOOP_EXITING = 1 << 10;
        /// Bit 11, RDRAND exiting: RDRAND causes VM exits.
        const RDRAND_EXITING = 1 << 11;
        /// Bit 12, enable INVPCID: if 0, INVPCID causes #UD.
        const ENABLE_INVPCID = 1 << 12;
        /// Bit 13, enable VM functions: VMFUNC may be used in non-root operation.
        const ENABLE_VM_FUNCTIONS = 1 << 13;
        /// Bit 14, VMCS shadowing: VMREAD/VMWRITE in non-root operation may use a shadow VMCS.
        const VMCS_SHADOWING = 1 << 14;
        /// Bit 15, enable ENCLS exiting: ENCLS consults the ENCLS-exiting bitmap.
        const ENABLE_ENCLS_EXITING = 1 << 15;
        /// Bit 16, RDSEED exiting: RDSEED causes VM exits.
        const RDSEED_EXITING = 1 << 16;
        /// Bit 17, enable PML: setting an EPT dirty flag first logs the page in the PML.
        const ENABLE_PML = 1 << 17;
        /// Bit 18, EPT-violation #VE: EPT violations may cause a virtualization exception instead.
        const EPT_VIOLATION_VE = 1 << 18;
        /// Bit 19, conceal VMX from PT: Intel PT hides non-root operation from PIPs and PSB+.
        const CONCEAL_VMX_FROM_PT = 1 << 19;
        /// Bit 20, enable XSAVES/XRSTORS: if 0, XSAVES and XRSTORS cause #UD.
        const ENABLE_XSAVES_XRSTORS = 1 << 20;
        /// Bit 21, PASID translation: ENQCMD and ENQCMDS translate PASIDs.
        const PASID_TRANSLATION = 1 << 21;
        /// Bit 22, mode-based execute control for EPT: separate supervisor/user execute rights.
        const MODE_BASED_EXECUTE_CONTROL_FOR_EPT = 1 << 22;
        /// Bit 23, sub-page write permissions for EPT: write rights at 128-byte granularity.
        const SUB_PAGE_WRITE_PERMISSIONS_FOR_EPT = 1 << 23;
        /// Bit 24, Intel PT uses guest physical addresses: PT output addresses go through EPT.
        const PT_USES_GUEST_PHYSICAL_ADDRESSES = 1 << 24;
        /// Bit 25, use TSC scaling: RDTSC, RDTSCP and RDMSR of the TSC apply the TSC multiplier.
        const USE_TSC_SCALING = 1 << 25;
        /// Bit 26, enable user wait and pause: if 0, TPAUSE, UMONITOR and UMWAIT cause #UD.
        const ENABLE_USER_WAIT_AND_PAUSE = 1 << 26;
        /// Bit 27, enable PCONFIG: if 0, PCONFIG causes #UD; if 1 it consults its exiting bitmap.
        const ENABLE_PCONFIG = 1 << 27;
        /// Bit 28, enable ENCLV exiting: ENCLV consults the ENCLV-exiting bitmap.
        const ENABLE_ENCLV_EXITING = 1 << 28;
        /// Bit 30, VMM bus-lock detection: asserting a bus lock causes a VM exit.
        const VMM_BUS_LOCK_DETECTION = 1 << 30;
        /// Bit 31, instruction timeout: exit when no instruction boundary is reached in time.
        const INSTRUCTION_TIMEOUT = 1 << 31;
    }
}

bitflags::bitflags! {
    /// Tertiary processor-based VM-execution controls, a 64-bit field (SDM Vol. 3C,
    /// Section 25.6.2, Table 25-8). In effect only when
    /// [`PrimaryControls::ACTIVATE_TERTIARY_CONTROLS`] is set.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct TertiaryControls: u64 {
        /// Bit 0, LOADIWKEY exiting: LOADIWKEY causes VM exits.
        const LOADIWKEY_EXITING = 1 << 0;
        /// Bit 1, enable HLAT: hypervisor-managed linear-address translation.
        const ENABLE_HLAT = 1 << 1;
        /// Bit 2, EPT paging-write control: EPT may allow only paging-related writes.
        const EPT_PAGING_WRITE_CONTROL = 1 << 2;
        /// Bit 3, guest-paging verification: EPT may block accesses by translation attributes.
        const GUEST_PAGING_VERIFICATION = 1 << 3;
        /// Bit 4, IPI virtualization: interprocessor interrupts are virtualized.
        const IPI_VIRTUALIZATION = 1 << 4;
        /// Bit 5, SEAM guest-physical address width: EPT behaviour in SEAM non-root operation.
        const SEAM_GUEST_PHYSICAL_ADDRESS_WIDTH = 1 << 5;
        /// Bit 6, enable MSR-list instructions: if 0, RDMSRLIST and WRMSRLIST cause #UD.
        const ENABLE_MSR_LIST_INSTRUCTIONS = 1 << 6;
        /// Bit 7, virtualize IA32_SPEC_CTRL: RDMSR/WRMSR of IA32_SPEC_CTRL use the mask and shadow.
        const VIRTUALIZE_IA32_SPEC_CTRL = 1 << 7;
        /// Bit 8, APIC-timer virtualization: guest timer events; IA32_TSC_DEADLINE is virtualized.
        const APIC_TIMER_VIRTUALIZATION = 1 << 8;
        /// Bit 9, enable PBNDKB: if 0, PBNDKB causes #UD.
        const ENABLE_PBNDKB = 1 << 9;
        /// Bit 12, PEBS uses guest physical addresses: architectural PEBS output goes through EPT.
        const PEBS_USES_GUEST_PHYSICAL_ADDRESSES = 1 << 12;
    }
}

bitflags::bitflags! {
    /// Primary VM-exit controls (SDM Vol. 3C, Section 25.7.1, Table 25-13). Bits 0–8, 10, 11,
    /// 13, 14, 16 and 17 are "default1" ([`PrimaryExitControls::DEFAULT1`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct PrimaryExitControls: u32 {
        /// Bit 2, save debug controls: DR7 and IA32_DEBUGCTL are saved on VM exit.
        const SAVE_DEBUG_CONTROLS = 1 << 2;
        /// Bit 9, host address-space size: the host runs in 64-bit mode after the exit.
        const HOST_ADDRESS_SPACE_SIZE = 1 << 9;
        /// Bit 12, load IA32_PERF_GLOBAL_CTRL: the host value is loaded on VM exit.
        const LOAD_IA32_PERF_GLOBAL_CTRL = 1 << 12;
        /// Bit 15, acknowledge interrupt on exit: the exit acknowledges and records the vector.
        const ACKNOWLEDGE_INTERRUPT_ON_EXIT = 1 << 15;
        /// Bit 18, save IA32_PAT: the guest value is saved on VM exit.
        const SAVE_IA32_PAT = 1 << 18;
        /// Bit 19, load IA32_PAT: the host value is loaded on VM exit.
        const LOAD_IA32_PAT = 1 << 19;
        /// Bit 20, save IA32_EFER: the guest value is saved on VM exit.
        const SAVE_IA32_EFER = 1 << 20;
        /// Bit 21, load IA32_EFER: the host value is loaded on VM exit.
        const LOAD_IA32_EFER = 1 << 21;
        /// Bit 22, save VMX-preemption timer value: the timer value is saved on VM exit.
        const SAVE_VMX_PREEMPTION_TIMER_VALUE = 1 << 22;
        /// Bit 23, clear IA32_BNDCFGS: the MSR is cleared on VM exit.
        const CLEAR_IA32_BNDCFGS = 1 << 23;
        /// Bit 24, conceal VMX from PT: Intel PT emits no PIP on VM exit.
        const CONCEAL_VMX_FROM_PT = 1 << 24;
        /// Bit 25, clear IA32_RTIT_CTL: the MSR is cleared on VM exit.
        const CLEAR_IA32_RTIT_CTL = 1 << 25;
        /// Bit 26, clear IA32_LBR_CTL: the MSR is cleared on VM exit.
        const CLEAR_IA32_LBR_CTL = 1 << 26;
        /// Bit 27, clear UINV: the user-interrupt notification vector is cleared on VM exit.
        const CLEAR_UINV = 1 << 27;
        /// Bit 28, load CET state: the host CET MSRs and SSP are loaded on VM exit.
        const LOAD_CET_STATE = 1 << 28;
        /// Bit 29, load PKRS: the host IA32_PKRS is loaded on VM exit.
        const LOAD_PKRS = 1 << 29;
        /// Bit 30, save IA32_PERF_GLOBAL_CTRL: the guest value is saved on VM exit.
        const SAVE_IA32_PERF_GLOBAL_CTRL = 1 << 30;
        /// Bit 31, activate secondary controls: use the secondary VM-exit controls.
        const ACTIVATE_SECONDARY_CONTROLS = 1 << 31;
    }
}

bitflags::bitflags! {
    /// Secondary VM-exit controls, a 64-bit field (SDM Vol. 3C, Section 25.7.1, Table 25-14).
    /// In effect only when [`PrimaryExitControls::ACTIVATE_SECONDARY_CONTROLS`] is set.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct SecondaryExitControls: u64 {
        /// Bit 0, save FRED: the guest FRED MSRs are saved on VM exit.
        const SAVE_FRED = 1 << 0;
        /// Bit 1, load FRED: the host FRED MSRs are loaded on VM exit.
        const LOAD_FRED = 1 << 1;
        /// Bit 2, load IA32_SPEC_CTRL: the host IA32_SPEC_CTRL is loaded on VM exit.
        const LOAD_IA32_SPEC_CTRL = 1 << 2;
        /// Bit 3, prematurely busy shadow stack: such exits say so (exit reason bit 25) and save more.
        const PREMATURELY_BUSY_SHADOW_STACK = 1 << 3;
    }
}

bitflags::bitflags! {
    /// VM-entry controls (SDM Vol. 3C, Section 25.8.1, Table 25-16). Bits 0–8 and 12 are
    /// "default1" ([`EntryControls::DEFAULT1`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct EntryControls: u32 {
        /// Bit 2, load debug controls: DR7 and IA32_DEBUGCTL are loaded on VM entry.
        const LOAD_DEBUG_CONTROLS = 1 << 2;
        /// Bit 9, IA-32e mode guest: the guest is in IA-32e mode after entry (loaded into EFER.LMA).
        const IA32E_MODE_GUEST = 1 << 9;
        /// Bit 10, entry to SMM: the processor is in SMM after entry (only from SMM).
        const ENTRY_TO_SMM = 1 << 10;
        /// Bit 11, deactivate dual-monitor treatment: default SMI/SMM treatment after entry.
        const DEACTIVATE_DUAL_MONITOR_TREATMENT = 1 << 11;
        /// Bit 13, load IA32_PERF_GLOBAL_CTRL: the guest value is loaded on VM entry.
        const LOAD_IA32_PERF_GLOBAL_CTRL = 1 << 13;
        /// Bit 14, load IA32_PAT: the guest value is loaded on VM entry.
        const LOAD_IA32_PAT = 1 << 14;
        /// Bit 15, load IA32_EFER: the guest value is loaded on VM entry.
        const LOAD_IA32_EFER = 1 << 15;
        /// Bit 16, load IA32_BNDCFGS: the guest value is loaded on VM entry.
        const LOAD_IA32_BNDCFGS = 1 << 16;
        /// Bit 17, conceal VMX from PT: Intel PT emits no PIP on VM entry.
        const CONCEAL_VMX_FROM_PT = 1 << 17;
        /// Bit 18, load IA32_RTIT_CTL: the guest value is loaded on VM entry.
        const LOAD_IA32_RTIT_CTL = 1 << 18;
        /// Bit 19, load UINV: the guest user-interrupt notification vector is loaded on VM entry.
        const LOAD_UINV = 1 << 19;
        /// Bit 20, load CET state: the guest CET MSRs and SSP are loaded on VM entry.
        const LOAD_CET_STATE = 1 << 20;
        /// Bit 21, load guest IA32_LBR_CTL: the guest value is loaded on VM entry.
        const LOAD_GUEST_IA32_LBR_CTL = 1 << 21;
        /// Bit 22, load PKRS: the guest IA32_PKRS is loaded on VM entry.
        const LOAD_PKRS = 1 << 22;
        /// Bit 23, load FRED: the guest FRED MSRs are loaded on VM entry.
        const LOAD_FRED = 1 << 23;
        /// Bit 24, load IA32_SPEC_CTRL: the guest IA32_SPEC_CTRL is loaded on VM entry.
        const LOAD_IA32_SPEC_CTRL = 1 << 24;
        /// Bit 25, allow SEAM-guest telemetry: out-of-band telemetry on entry to SEAM non-root.
        const ALLOW_SEAM_GUEST_TELEMETRY = 1 << 25;
    }
}

impl PinBasedControls {
    /// The "default1" reserved bits 1, 2 and 4: the first VMX processors supported only their
    /// 1-setting, and IA32_VMX_PINBASED_CTLS always reports them as must-be-1 (SDM Vol. 3C,
    /// Section 25.6.1; Appendix A.2).
    pub const DEFAULT1: Self = Self::from_bits_retain(0x0000_0016);
}

impl PrimaryControls {
    /// The "default1" bits 1, 4–6, 8, 13–16 and 26, reported as must-be-1 by
    /// IA32_VMX_PROCBASED_CTLS (SDM Vol. 3C, Section 25.6.2; Appendix A.2).
    pub const DEFAULT1: Self = Self::from_bits_retain(0x0401_E172);
}

impl PrimaryExitControls {
    /// The "default1" bits 0–8, 10, 11, 13, 14, 16 and 17, reported as must-be-1 by
    /// IA32_VMX_EXIT_CTLS (SDM Vol. 3C, Section 25.7.1; Appendix A.2).
    pub const DEFAULT1: Self = Self::from_bits_retain(0x0003_6DFF);
}

impl EntryControls {
    /// The "default1" bits 0–8 and 12, reported as must-be-1 by IA32_VMX_ENTRY_CTLS (SDM Vol.
    /// 3C, Section 25.8.1; Appendix A.2).
    pub const DEFAULT1: Self = Self::from_bits_retain(0x0000_11FF);
}

/// A control word type: links a bit-flags type to its [`ControlKind`], so that typed requests
/// can go through [`crate::caps::set_control_flags`].
pub trait ControlWord: Copy {
    /// The control field this type describes.
    const KIND: ControlKind;

    /// The raw value, zero-extended to 64 bits.
    fn to_raw(self) -> u64;

    /// The value with these raw bits, keeping undefined ones; bits beyond the field's width
    /// are dropped.
    fn from_raw_truncate(raw: u64) -> Self;
}

macro_rules! control_word {
    ($($ty:ident: $int:ty => $kind:ident;)*) => {
        $(
            impl ControlWord for $ty {
                const KIND: ControlKind = ControlKind::$kind;

                fn to_raw(self) -> u64 {
                    u64::from(self.bits())
                }

                fn from_raw_truncate(raw: u64) -> Self {
                    // Truncation is the documented behaviour for bits beyond the width.
                    Self::from_bits_retain(raw as $int)
                }
            }
        )*
    };
}

control_word! {
    PinBasedControls: u32 => Pin;
    PrimaryControls: u32 => Primary;
    SecondaryControls: u32 => Secondary;
    TertiaryControls: u64 => Tertiary;
    PrimaryExitControls: u32 => Exit;
    SecondaryExitControls: u64 => Exit2;
    EntryControls: u32 => Entry;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag the `x86` crate (2019 SDM) defines exists here at the same position, and
    /// the union of theirs is a subset of ours.
    #[test]
    fn superset_of_the_x86_crate() {
        use x86::vmx::vmcs::control as x;

        let pin = [
            (
                x::PinbasedControls::EXTERNAL_INTERRUPT_EXITING.bits(),
                PinBasedControls::EXTERNAL_INTERRUPT_EXITING,
            ),
            (
                x::PinbasedControls::NMI_EXITING.bits(),
                PinBasedControls::NMI_EXITING,
            ),
            (
                x::PinbasedControls::VIRTUAL_NMIS.bits(),
                PinBasedControls::VIRTUAL_NMIS,
            ),
            (
                x::PinbasedControls::VMX_PREEMPTION_TIMER.bits(),
                PinBasedControls::ACTIVATE_VMX_PREEMPTION_TIMER,
            ),
            (
                x::PinbasedControls::POSTED_INTERRUPTS.bits(),
                PinBasedControls::PROCESS_POSTED_INTERRUPTS,
            ),
        ];
        for (theirs, ours) in pin {
            assert_eq!(theirs, ours.bits(), "{ours:?}");
        }
        let all = x::PinbasedControls::all().bits();
        assert_eq!(all & !PinBasedControls::all().bits(), 0);

        use x::PrimaryControls as XP;
        let primary = [
            (
                XP::INTERRUPT_WINDOW_EXITING,
                PrimaryControls::INTERRUPT_WINDOW_EXITING,
            ),
            (XP::USE_TSC_OFFSETTING, PrimaryControls::USE_TSC_OFFSETTING),
            (XP::HLT_EXITING, PrimaryControls::HLT_EXITING),
            (XP::INVLPG_EXITING, PrimaryControls::INVLPG_EXITING),
            (XP::MWAIT_EXITING, PrimaryControls::MWAIT_EXITING),
            (XP::RDPMC_EXITING, PrimaryControls::RDPMC_EXITING),
            (XP::RDTSC_EXITING, PrimaryControls::RDTSC_EXITING),
            (XP::CR3_LOAD_EXITING, PrimaryControls::CR3_LOAD_EXITING),
            (XP::CR3_STORE_EXITING, PrimaryControls::CR3_STORE_EXITING),
            (XP::CR8_LOAD_EXITING, PrimaryControls::CR8_LOAD_EXITING),
            (XP::CR8_STORE_EXITING, PrimaryControls::CR8_STORE_EXITING),
            (XP::USE_TPR_SHADOW, PrimaryControls::USE_TPR_SHADOW),
            (XP::NMI_WINDOW_EXITING, PrimaryControls::NMI_WINDOW_EXITING),
            (XP::MOV_DR_EXITING, PrimaryControls::MOV_DR_EXITING),
            (XP::UNCOND_IO_EXITING, PrimaryControls::UNCONDITIONAL_IO_EXITING),
            (XP::USE_IO_BITMAPS, PrimaryControls::USE_IO_BITMAPS),
            (XP::MONITOR_TRAP_FLAG, PrimaryControls::MONITOR_TRAP_FLAG),
            (XP::USE_MSR_BITMAPS, PrimaryControls::USE_MSR_BITMAPS),
            (XP::MONITOR_EXITING, PrimaryControls::MONITOR_EXITING),
            (XP::PAUSE_EXITING, PrimaryControls::PAUSE_EXITING),
            (
                XP::SECONDARY_CONTROLS,
                PrimaryControls::ACTIVATE_SECONDARY_CONTROLS,
            ),
        ];
        for (theirs, ours) in primary {
            assert_eq!(theirs.bits(), ours.bits(), "{ours:?}");
        }
        assert_eq!(XP::all().bits() & !PrimaryControls::all().bits(), 0);

        use SecondaryControls as S;
        use x::SecondaryControls as XS;
        let secondary = [
            (XS::VIRTUALIZE_APIC, S::VIRTUALIZE_APIC_ACCESSES),
            (XS::ENABLE_EPT, S::ENABLE_EPT),
            (XS::DTABLE_EXITING, S::DESCRIPTOR_TABLE_EXITING),
            (XS::ENABLE_RDTSCP, S::ENABLE_RDTSCP),
            (XS::VIRTUALIZE_X2APIC, S::VIRTUALIZE_X2APIC_MODE),
            (XS::ENABLE_VPID, S::ENABLE_VPID),
            (XS::WBINVD_EXITING, S::WBINVD_EXITING),
            (XS::UNRESTRICTED_GUEST, S::UNRESTRICTED_GUEST),
            (XS::VIRTUALIZE_APIC_REGISTER, S::APIC_REGISTER_VIRTUALIZATION),
            (XS::VIRTUAL_INTERRUPT_DELIVERY, S::VIRTUAL_INTERRUPT_DELIVERY),
            (XS::PAUSE_LOOP_EXITING, S::PAUSE_LOOP_EXITING),
            (XS::RDRAND_EXITING, S::RDRAND_EXITING),
            (XS::ENABLE_INVPCID, S::ENABLE_INVPCID),
            (XS::ENABLE_VM_FUNCTIONS, S::ENABLE_VM_FUNCTIONS),
            (XS::VMCS_SHADOWING, S::VMCS_SHADOWING),
            (XS::ENCLS_EXITING, S::ENABLE_ENCLS_EXITING),
            (XS::RDSEED_EXITING, S::RDSEED_EXITING),
            (XS::ENABLE_PML, S::ENABLE_PML),
            (XS::EPT_VIOLATION_VE, S::EPT_VIOLATION_VE),
            (XS::CONCEAL_VMX_FROM_PT, S::CONCEAL_VMX_FROM_PT),
            (XS::ENABLE_XSAVES_XRSTORS, S::ENABLE_XSAVES_XRSTORS),
            (XS::MODE_BASED_EPT, S::MODE_BASED_EXECUTE_CONTROL_FOR_EPT),
            (XS::SUB_PAGE_EPT, S::SUB_PAGE_WRITE_PERMISSIONS_FOR_EPT),
            (XS::INTEL_PT_GUEST_PHYSICAL, S::PT_USES_GUEST_PHYSICAL_ADDRESSES),
            (XS::USE_TSC_SCALING, S::USE_TSC_SCALING),
            (XS::ENABLE_USER_WAIT_PAUSE, S::ENABLE_USER_WAIT_AND_PAUSE),
            (XS::ENCLV_EXITING, S::ENABLE_ENCLV_EXITING),
        ];
        for (theirs, ours) in secondary {
            assert_eq!(theirs.bits(), ours.bits(), "{ours:?}");
        }
        assert_eq!(XS::all().bits() & !S::all().bits(), 0);

        use PrimaryExitControls as E;
        use x::ExitControls as XE;
        let exit = [
            (XE::SAVE_DEBUG_CONTROLS, E::SAVE_DEBUG_CONTROLS),
            (XE::HOST_ADDRESS_SPACE_SIZE, E::HOST_ADDRESS_SPACE_SIZE),
            (XE::LOAD_IA32_PERF_GLOBAL_CTRL, E::LOAD_IA32_PERF_GLOBAL_CTRL),
            (XE::ACK_INTERRUPT_ON_EXIT, E::ACKNOWLEDGE_INTERRUPT_ON_EXIT),
            (XE::SAVE_IA32_PAT, E::SAVE_IA32_PAT),
            (XE::LOAD_IA32_PAT, E::LOAD_IA32_PAT),
            (XE::SAVE_IA32_EFER, E::SAVE_IA32_EFER),
            (XE::LOAD_IA32_EFER, E::LOAD_IA32_EFER),
            (XE::SAVE_VMX_PREEMPTION_TIMER, E::SAVE_VMX_PREEMPTION_TIMER_VALUE),
            (XE::CLEAR_IA32_BNDCFGS, E::CLEAR_IA32_BNDCFGS),
            (XE::CONCEAL_VMX_FROM_PT, E::CONCEAL_VMX_FROM_PT),
            (XE::CLEAR_IA32_RTIT_CTL, E::CLEAR_IA32_RTIT_CTL),
        ];
        for (theirs, ours) in exit {
            assert_eq!(theirs.bits(), ours.bits(), "{ours:?}");
        }
        assert_eq!(XE::all().bits() & !E::all().bits(), 0);

        use x::EntryControls as XN;
        let entry = [
            (XN::LOAD_DEBUG_CONTROLS, EntryControls::LOAD_DEBUG_CONTROLS),
            (XN::IA32E_MODE_GUEST, EntryControls::IA32E_MODE_GUEST),
            (XN::ENTRY_TO_SMM, EntryControls::ENTRY_TO_SMM),
            (
                XN::DEACTIVATE_DUAL_MONITOR,
                EntryControls::DEACTIVATE_DUAL_MONITOR_TREATMENT,
            ),
            (
                XN::LOAD_IA32_PERF_GLOBAL_CTRL,
                EntryControls::LOAD_IA32_PERF_GLOBAL_CTRL,
            ),
            (XN::LOAD_IA32_PAT, EntryControls::LOAD_IA32_PAT),
            (XN::LOAD_IA32_EFER, EntryControls::LOAD_IA32_EFER),
            (XN::LOAD_IA32_BNDCFGS, EntryControls::LOAD_IA32_BNDCFGS),
            (XN::CONCEAL_VMX_FROM_PT, EntryControls::CONCEAL_VMX_FROM_PT),
            (XN::LOAD_IA32_RTIT_CTL, EntryControls::LOAD_IA32_RTIT_CTL),
        ];
        for (theirs, ours) in entry {
            assert_eq!(theirs.bits(), ours.bits(), "{ours:?}");
        }
        assert_eq!(XN::all().bits() & !EntryControls::all().bits(), 0);
    }

    /// The bits the 2019 SDM (and the `x86` crate) lacks are present, at the positions the
    /// current SDM gives them.
    #[test]
    fn newer_bits_are_present() {
        assert_eq!(PrimaryControls::ACTIVATE_TERTIARY_CONTROLS.bits(), 1 << 17);
        assert_eq!(SecondaryControls::EPT_VIOLATION_VE.bits(), 1 << 18);
        assert_eq!(SecondaryControls::PASID_TRANSLATION.bits(), 1 << 21);
        assert_eq!(
            SecondaryControls::PT_USES_GUEST_PHYSICAL_ADDRESSES.bits(),
            1 << 24
        );
        assert_eq!(SecondaryControls::ENABLE_PCONFIG.bits(), 1 << 27);
        assert_eq!(SecondaryControls::ENABLE_ENCLV_EXITING.bits(), 1 << 28);
        assert_eq!(SecondaryControls::VMM_BUS_LOCK_DETECTION.bits(), 1 << 30);
        assert_eq!(SecondaryControls::INSTRUCTION_TIMEOUT.bits(), 1 << 31);
        assert_eq!(TertiaryControls::LOADIWKEY_EXITING.bits(), 1 << 0);
        assert_eq!(TertiaryControls::IPI_VIRTUALIZATION.bits(), 1 << 4);
        assert_eq!(TertiaryControls::VIRTUALIZE_IA32_SPEC_CTRL.bits(), 1 << 7);
        assert_eq!(PrimaryExitControls::LOAD_CET_STATE.bits(), 1 << 28);
        assert_eq!(PrimaryExitControls::LOAD_PKRS.bits(), 1 << 29);
        assert_eq!(PrimaryExitControls::SAVE_IA32_PERF_GLOBAL_CTRL.bits(), 1 << 30);
        assert_eq!(PrimaryExitControls::ACTIVATE_SECONDARY_CONTROLS.bits(), 1 << 31);
        assert_eq!(SecondaryExitControls::SAVE_FRED.bits(), 1 << 0);
        assert_eq!(SecondaryExitControls::LOAD_FRED.bits(), 1 << 1);
        assert_eq!(EntryControls::LOAD_CET_STATE.bits(), 1 << 20);
        assert_eq!(EntryControls::LOAD_GUEST_IA32_LBR_CTL.bits(), 1 << 21);
        assert_eq!(EntryControls::LOAD_PKRS.bits(), 1 << 22);
        assert_eq!(EntryControls::LOAD_FRED.bits(), 1 << 23);
    }

    /// Defined bits and "default1" reserved bits never overlap: a default1 bit is by
    /// definition one the SDM gives no function (the CR3 exiting bits 15 and 16 excepted,
    /// which are both).
    #[test]
    fn default1_bits_are_reserved_bits() {
        assert_eq!(
            PinBasedControls::DEFAULT1.bits() & PinBasedControls::all().bits(),
            0
        );
        assert_eq!(
            PrimaryControls::DEFAULT1.bits() & PrimaryControls::all().bits(),
            (PrimaryControls::CR3_LOAD_EXITING | PrimaryControls::CR3_STORE_EXITING).bits()
        );
        assert_eq!(
            PrimaryExitControls::DEFAULT1.bits() & PrimaryExitControls::all().bits(),
            PrimaryExitControls::SAVE_DEBUG_CONTROLS.bits()
        );
        assert_eq!(
            EntryControls::DEFAULT1.bits() & EntryControls::all().bits(),
            EntryControls::LOAD_DEBUG_CONTROLS.bits()
        );
    }

    #[test]
    fn control_word_round_trip_keeps_reserved_bits() {
        let raw = 0x8000_0001_u64;
        assert_eq!(PrimaryControls::from_raw_truncate(raw).to_raw(), raw);
        assert_eq!(PrimaryControls::from_raw_truncate(1 << 40).to_raw(), 0);
        assert_eq!(TertiaryControls::from_raw_truncate(1 << 40).to_raw(), 1 << 40);
        assert_eq!(<SecondaryExitControls as ControlWord>::KIND, ControlKind::Exit2);
    }
}
