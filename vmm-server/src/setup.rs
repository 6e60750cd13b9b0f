//! Bringing a VCPU up through the kernel, before the exit loop starts.
//!
//! - [`probe_capabilities`]: what the VMM may set, learnt from the kernel itself. A user-level
//!   VMM on seL4 cannot read the VMX capability MSRs (RDMSR is privileged), but `WriteVMCS`
//!   answers with the value it really wrote, `(value | must-be-1 | forced) & may-be-1`
//!   (`notes/sel4-vcpu-api.md`): writing 0 reveals the bits that are always 1, writing all ones
//!   the bits that may be 1. The result is the capability set the kernel enforces, which is
//!   what `vmcs::caps::set_control` must be checked against.
//! - [`FlatProtectedMode`]: the guest state of a 32-bit protected-mode guest with paging on
//!   flat segments, the start state seL4 5.0 allows (it forces CR0.PE and CR0.PG).

use vmcs::VmcsAccess;
use vmcs::caps::{VmxCapabilities, VmxCapabilityMsr as Msr};
use vmcs::catalogue::{VmcsControl32, VmcsControlNW, VmcsGuest16, VmcsGuest32, VmcsGuest64, VmcsGuestNW};

use crate::kernel::{KernelError, VcpuKernel};

/// IA32_VMX_BASIC bit 55: the TRUE control MSRs report the allowed settings (SDM Vol. 3D,
/// Appendix A.1). Probed settings are the true ones, so the probed set says so.
const BASIC_TRUE_CONTROLS: u64 = 1 << 55;

/// One probed control: its field, and the capability MSRs it stands in for (the TRUE one
/// first; both get the same value: the kernel's masking already includes every default-1
/// bit it keeps).
const PROBED_CONTROLS: [(VmcsControl32, Msr, Option<Msr>); 5] = [
    (
        VmcsControl32::PinBasedControls,
        Msr::TruePinbasedCtls,
        Some(Msr::PinbasedCtls),
    ),
    (
        VmcsControl32::PrimaryProcBasedControls,
        Msr::TrueProcbasedCtls,
        Some(Msr::ProcbasedCtls),
    ),
    (
        VmcsControl32::SecondaryProcBasedControls,
        Msr::ProcbasedCtls2,
        None,
    ),
    (
        VmcsControl32::PrimaryExitControls,
        Msr::TrueExitCtls,
        Some(Msr::ExitCtls),
    ),
    (
        VmcsControl32::EntryControls,
        Msr::TrueEntryCtls,
        Some(Msr::EntryCtls),
    ),
];

/// Controls that need a companion VMCS field (an address, a vector, an index) before VM entry
/// can succeed or the control can mean anything (SDM Vol. 3C, Section 27.2.1.1 and Section
/// 25.6): (control field, bit, companion fields). A VMM that cannot write the companion, and
/// whose kernel does not force the control on (and so manage the companion itself, as seL4
/// does for the I/O and MSR bitmaps, EPT and VPID), cannot use the control.
const NEEDS_COMPANION: &[(VmcsControl32, u32, &[u32])] = &[
    // Process posted interrupts: notification vector, descriptor address.
    (VmcsControl32::PinBasedControls, 7, &[0x0002, 0x2016]),
    // Use TPR shadow: virtual-APIC address, TPR threshold.
    (VmcsControl32::PrimaryProcBasedControls, 21, &[0x2012, 0x401C]),
    // Activate tertiary controls.
    (VmcsControl32::PrimaryProcBasedControls, 17, &[0x2034]),
    // Use I/O bitmaps, use MSR bitmaps: their addresses.
    (VmcsControl32::PrimaryProcBasedControls, 25, &[0x2000, 0x2002]),
    (VmcsControl32::PrimaryProcBasedControls, 28, &[0x2004]),
    // Virtualize APIC accesses: APIC-access address.
    (VmcsControl32::SecondaryProcBasedControls, 0, &[0x2014]),
    // Enable EPT: EPT pointer. Enable VPID: VPID.
    (VmcsControl32::SecondaryProcBasedControls, 1, &[0x201A]),
    (VmcsControl32::SecondaryProcBasedControls, 5, &[0x0000]),
    // APIC-register virtualization, virtual-interrupt delivery: the virtual APIC (TPR
    // shadow's page), EOI-exit bitmaps, guest interrupt status.
    (VmcsControl32::SecondaryProcBasedControls, 8, &[0x2012]),
    (
        VmcsControl32::SecondaryProcBasedControls,
        9,
        &[0x2012, 0x201C, 0x0810],
    ),
    // Enable VM functions: VM-function controls.
    (VmcsControl32::SecondaryProcBasedControls, 13, &[0x2018]),
    // VMCS shadowing: VMREAD and VMWRITE bitmap addresses.
    (VmcsControl32::SecondaryProcBasedControls, 14, &[0x2026, 0x2028]),
    // Enable PML: PML address and index.
    (VmcsControl32::SecondaryProcBasedControls, 17, &[0x200E, 0x0812]),
    // EPT-violation #VE: virtualization-exception information address.
    (VmcsControl32::SecondaryProcBasedControls, 18, &[0x202A]),
];

/// The bits of `field`'s allowed settings a VMM cannot use on this kernel: those of
/// [`NEEDS_COMPANION`] that the kernel neither forces (`always`) nor lets it complete.
fn unusable_bits<K: VcpuKernel + ?Sized>(kernel: &K, field: VmcsControl32, always: u64) -> u64 {
    NEEDS_COMPANION
        .iter()
        .filter(|(control, bit, companions)| {
            *control == field
                && always & (1 << bit) == 0
                && !companions.iter().all(|&companion| kernel.writable(companion))
        })
        .fold(0, |bits, (_, bit, _)| bits | 1 << bit)
}

/// The VMX capabilities the kernel enforces, probed with `WriteVMCS` (see the module
/// documentation). Controls the kernel does not let user level write (seL4 5.0: the entry
/// controls) are left out of the result; so are the capabilities nothing can reveal (EPT/VPID,
/// VMFUNC, MISC). Controls that need a companion field the VMM cannot write are not offered
/// (posted interrupts, TPR shadow, APIC virtualization, VMCS shadowing, PML, #VE on seL4 5.0):
/// setting them would make every VM entry fail. Guest CR0 and CR4 are
/// probed too: the written values give the fixed bits.
///
/// The probe leaves the probed fields with all bits the kernel allows set: set them afterwards.
///
/// # Errors
/// A kernel error other than `IllegalOperation` on a field it may refuse.
pub fn probe_capabilities<K: VcpuKernel + ?Sized>(kernel: &mut K) -> Result<VmxCapabilities, KernelError> {
    let mut caps = VmxCapabilities::new().with(Msr::Basic, BASIC_TRUE_CONTROLS);
    for (field, true_msr, plain_msr) in PROBED_CONTROLS {
        let encoding = field.encoding().raw();
        if !kernel.writable(encoding) {
            continue;
        }
        let always = match kernel.write_vmcs(encoding, 0) {
            Ok(written) => written & 0xFFFF_FFFF,
            Err(KernelError::IllegalOperation) => continue,
            Err(e) => return Err(e),
        };
        let allowed = kernel.write_vmcs(encoding, 0xFFFF_FFFF)? & 0xFFFF_FFFF;
        let allowed = allowed & !unusable_bits(kernel, field, always);
        let value = (allowed << 32) | always;
        caps.set(true_msr, value);
        if let Some(msr) = plain_msr {
            caps.set(msr, value);
        }
    }
    for (field, fixed0, fixed1) in [
        (VmcsGuestNW::Cr0, Msr::Cr0Fixed0, Msr::Cr0Fixed1),
        (VmcsGuestNW::Cr4, Msr::Cr4Fixed0, Msr::Cr4Fixed1),
    ] {
        let encoding = field.encoding().raw();
        caps.set(fixed0, kernel.write_vmcs(encoding, 0)?);
        caps.set(fixed1, kernel.write_vmcs(encoding, u64::from(u32::MAX))?);
    }
    Ok(caps)
}

/// `VmcsAccess` straight over the kernel interface, without the exit loop's field cache: for
/// setting a VCPU up before the server owns it (every read and write is one invocation).
#[derive(Debug)]
pub struct KernelAccess<'k, K: VcpuKernel + ?Sized>(pub &'k mut K);

impl<K: VcpuKernel + ?Sized> VmcsAccess for KernelAccess<'_, K> {
    fn read(&mut self, encoding: u32) -> Result<u64, vmcs::VmcsError> {
        self.0
            .read_vmcs(encoding)
            .map_err(|e| vmcs::VmcsError::Kernel(e.number()))
    }

    fn write(&mut self, encoding: u32, value: u64) -> Result<(), vmcs::VmcsError> {
        self.0
            .write_vmcs(encoding, value)
            .map(|_| ())
            .map_err(|e| vmcs::VmcsError::Kernel(e.number()))
    }
}

/// A 32-bit protected-mode guest with paging, on flat 4 GiB segments from a GDT in guest
/// memory (SDM Vol. 3C, Section 27.3.1.2 for the checks this state passes: code segment type
/// 11 (execute/read, accessed), data segments type 3, a busy 32-bit TSS, LDTR unusable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlatProtectedMode {
    /// Code segment selector (the GDT's 32-bit code descriptor).
    pub code_selector: u16,
    /// Data segment selector for SS, DS, ES, FS, GS.
    pub data_selector: u16,
    /// Task register selector and the TSS base and limit (a VM entry needs a usable TR).
    pub tss_selector: u16,
    /// TSS base.
    pub tss_base: u64,
    /// TSS limit.
    pub tss_limit: u32,
    /// GDT base and limit.
    pub gdt_base: u64,
    /// GDT limit.
    pub gdt_limit: u32,
    /// Guest CR3: the page directory.
    pub cr3: u64,
    /// Guest CR0 (PE and PG set; the kernel forces them anyway and adds its fixed bits).
    pub cr0: u64,
    /// Guest CR4 as the guest sees it; the kernel adds VMXE, which the CR4 guest/host mask and
    /// read shadow hide.
    pub cr4: u64,
    /// Where the guest starts.
    pub rip: u64,
    /// Its stack.
    pub rsp: u64,
}

/// Access rights (SDM Vol. 3C, Section 25.4.1, Table 25-2): type, S, DPL 0, P, D/B, G.
const AR_CODE_32: u32 = 0xC09B;
const AR_DATA_32: u32 = 0xC093;
/// Type 11 (busy 32-bit TSS), present.
const AR_TSS_BUSY_32: u32 = 0x8B;
/// Bit 16: the segment is unusable.
const AR_UNUSABLE: u32 = 1 << 16;
/// CR4.VMXE (bit 13).
const CR4_VMXE: u64 = 1 << 13;

impl FlatProtectedMode {
    /// Writes the guest state through `vmcs` (on seL4: `WriteVMCS` invocations). RFLAGS is 2
    /// (interrupts off), nothing is pending, the activity state is active.
    ///
    /// # Errors
    /// A field the backend refused.
    pub fn write<A: VmcsAccess + ?Sized>(&self, vmcs: &mut A) -> Result<(), vmcs::VmcsError> {
        VmcsGuest16::CsSelector.write(vmcs, self.code_selector)?;
        for selector in [
            VmcsGuest16::SsSelector,
            VmcsGuest16::DsSelector,
            VmcsGuest16::EsSelector,
            VmcsGuest16::FsSelector,
            VmcsGuest16::GsSelector,
        ] {
            selector.write(vmcs, self.data_selector)?;
        }
        VmcsGuest16::TrSelector.write(vmcs, self.tss_selector)?;
        VmcsGuest16::LdtrSelector.write(vmcs, 0)?;
        let flat = [
            (
                VmcsGuestNW::CsBase,
                VmcsGuest32::CsLimit,
                VmcsGuest32::CsAccessRights,
                AR_CODE_32,
            ),
            (
                VmcsGuestNW::SsBase,
                VmcsGuest32::SsLimit,
                VmcsGuest32::SsAccessRights,
                AR_DATA_32,
            ),
            (
                VmcsGuestNW::DsBase,
                VmcsGuest32::DsLimit,
                VmcsGuest32::DsAccessRights,
                AR_DATA_32,
            ),
            (
                VmcsGuestNW::EsBase,
                VmcsGuest32::EsLimit,
                VmcsGuest32::EsAccessRights,
                AR_DATA_32,
            ),
            (
                VmcsGuestNW::FsBase,
                VmcsGuest32::FsLimit,
                VmcsGuest32::FsAccessRights,
                AR_DATA_32,
            ),
            (
                VmcsGuestNW::GsBase,
                VmcsGuest32::GsLimit,
                VmcsGuest32::GsAccessRights,
                AR_DATA_32,
            ),
        ];
        for (base, limit, rights, ar) in flat {
            base.write(vmcs, 0)?;
            limit.write(vmcs, u32::MAX)?;
            rights.write(vmcs, ar)?;
        }
        VmcsGuestNW::TrBase.write(vmcs, self.tss_base)?;
        VmcsGuest32::TrLimit.write(vmcs, self.tss_limit)?;
        VmcsGuest32::TrAccessRights.write(vmcs, AR_TSS_BUSY_32)?;
        VmcsGuestNW::LdtrBase.write(vmcs, 0)?;
        VmcsGuest32::LdtrLimit.write(vmcs, 0)?;
        VmcsGuest32::LdtrAccessRights.write(vmcs, AR_UNUSABLE)?;
        VmcsGuestNW::GdtrBase.write(vmcs, self.gdt_base)?;
        VmcsGuest32::GdtrLimit.write(vmcs, self.gdt_limit)?;
        VmcsGuestNW::IdtrBase.write(vmcs, 0)?;
        VmcsGuest32::IdtrLimit.write(vmcs, 0)?;

        VmcsGuestNW::Cr0.write(vmcs, self.cr0)?;
        VmcsGuestNW::Cr3.write(vmcs, self.cr3)?;
        VmcsGuestNW::Cr4.write(vmcs, self.cr4 | CR4_VMXE)?;
        VmcsControlNW::Cr4GuestHostMask.write(vmcs, CR4_VMXE)?;
        VmcsControlNW::Cr4ReadShadow.write(vmcs, self.cr4)?;
        VmcsGuestNW::Dr7.write(vmcs, 0x400)?;
        VmcsGuestNW::Rsp.write(vmcs, self.rsp)?;
        VmcsGuestNW::Rip.write(vmcs, self.rip)?;
        VmcsGuestNW::Rflags.write(vmcs, 0x2)?;
        VmcsGuestNW::PendingDebugExceptions.write(vmcs, 0)?;
        VmcsGuestNW::SysenterEsp.write(vmcs, 0)?;
        VmcsGuestNW::SysenterEip.write(vmcs, 0)?;
        VmcsGuest32::SysenterCs.write(vmcs, 0)?;
        VmcsGuest32::InterruptibilityState.write(vmcs, 0)?;
        VmcsGuest32::ActivityState.write(vmcs, 0)?;
        // Loaded at VM entry only with the matching entry controls (SDM Vol. 3C, Section
        // 27.3.2.1); seL4 5.0 sets just the entry controls that must be 1, so there they stay
        // the host's values. Written anyway: kernels that load them get a defined state.
        VmcsGuest64::Debugctl.write(vmcs, 0)?;
        VmcsGuest64::Efer.write(vmcs, 0)?;
        // The power-on default (SDM Vol. 3A, Section 13.12.4).
        VmcsGuest64::Pat.write(vmcs, 0x0007_0406_0007_0406)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{EnterInput, EnterOutcome};
    use crate::model::{ExitSpec, KernelRules, ModelVcpu, StartState, Step};
    use vmcs::caps::profiles::bochs_corei7_skylake_x;
    use vmcs::caps::{ControlKind, set_control};

    fn hlt_step() -> [Step; 1] {
        [Step {
            exit: ExitSpec {
                reason: 12,
                instruction_len: 1,
                ..Default::default()
            },
            ..Default::default()
        }]
    }

    /// The model VCPU on Bochs' Skylake-X capabilities.
    fn model(rules: KernelRules, start: StartState, steps: &[Step]) -> ModelVcpu<'_> {
        ModelVcpu::new(rules, bochs_corei7_skylake_x(), start, steps)
    }

    #[test]
    fn probing_sel4_v5_finds_the_kernels_forced_bits_and_no_entry_controls() {
        let steps = hlt_step();
        let mut model = model(KernelRules::Sel4V5, StartState::default(), &steps);
        let caps = probe_capabilities(&mut model).unwrap();
        // notes/sel4-5.0-vtx-guest.md: pin-based 0x3F and exit 0x3FFFFF are what 5.0 writes
        // for 0 on Bochs' models (its forced bits plus the default-1 ones).
        let pin = caps.get(Msr::TruePinbasedCtls).unwrap();
        assert_eq!(pin & 0xFFFF_FFFF, 0x3F);
        assert_eq!(caps.get(Msr::EntryCtls), None, "5.0 refuses entry-control writes");
        // Companions 5.0 does not let user level write: TPR shadow (virtual-APIC address),
        // posted interrupts, APIC virtualization, VMCS shadowing, PML are not offered; the
        // bitmaps, EPT and VPID stay (the kernel forces and manages them).
        let primary = caps.get(Msr::TrueProcbasedCtls).unwrap() >> 32;
        assert_eq!(primary & (1 << 21), 0, "TPR shadow");
        assert_ne!(primary & (1 << 25), 0, "I/O bitmaps");
        assert_eq!(
            caps.get(Msr::TruePinbasedCtls).unwrap() >> 32 & (1 << 7),
            0,
            "posted interrupts"
        );
        let secondary = caps.get(Msr::ProcbasedCtls2).unwrap() >> 32;
        for bit in [0, 8, 9, 14, 17] {
            assert_eq!(secondary & (1 << bit), 0, "secondary bit {bit}");
        }
        assert_ne!(secondary & 0b10_0010, 0, "EPT and VPID");
        assert_eq!(caps.get(Msr::TrueEntryCtls), None);
        // What set_control computes from the probed set is what the kernel then writes.
        let primary = set_control(&caps, ControlKind::Primary, None, 1 << 7, 0).unwrap();
        let written = model
            .write_vmcs(VmcsControl32::PrimaryProcBasedControls.encoding().raw(), primary)
            .unwrap();
        assert_eq!(written, primary);
        assert_eq!(
            written & 0x9600_0000,
            0x9600_0000,
            "I/O bitmaps, MSR bitmaps, secondary forced on"
        );
        // CR0: PE and PG are forced on 5.0.
        assert_eq!(caps.get(Msr::Cr0Fixed0).unwrap() & 0x8000_0001, 0x8000_0001);
    }

    #[test]
    fn probing_modern_rules_includes_the_entry_controls() {
        let steps = hlt_step();
        let mut model = model(KernelRules::Modern, StartState::default(), &steps);
        let caps = probe_capabilities(&mut model).unwrap();
        assert!(caps.get(Msr::TrueEntryCtls).is_some());
    }

    #[test]
    fn a_flat_protected_mode_guest_passes_the_entry_checks() {
        let steps = hlt_step();
        let start = StartState {
            rip: 0x2000,
            rflags: 2,
        };
        let mut model = model(KernelRules::Sel4V5, start, &steps);
        let state = FlatProtectedMode {
            code_selector: 0x08,
            data_selector: 0x10,
            tss_selector: 0x18,
            tss_base: 0x100,
            tss_limit: 0x67,
            gdt_base: 0,
            gdt_limit: 0x1F,
            cr3: 0x1000,
            cr0: 0x8000_0011,
            cr4: 0,
            rip: 0x2000,
            rsp: 0x4000,
        };
        state.write(&mut KernelAccess(&mut model)).unwrap();
        let mut direct = KernelAccess(&mut model);
        assert_eq!(
            VmcsGuestNW::Cr4.read(&mut direct).unwrap() & CR4_VMXE,
            CR4_VMXE,
            "the kernel adds VMXE"
        );
        let outcome = model
            .vm_enter(&EnterInput {
                rip: 0x2000,
                primary_controls: 0x80,
                entry_interruption_info: 0,
            })
            .unwrap();
        let EnterOutcome::Exit(fault) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(fault.exit_reason, 12, "HLT, not a failed entry");
        assert_eq!(model.differences().len(), 0, "{:?}", model.differences());
    }

    #[test]
    fn a_server_keeps_the_entry_state_the_vcpu_was_set_up_with() {
        use crate::composition::{badge, standard_policy};
        use crate::memory::NoGuestMemory;
        use crate::server::{ServerConfig, VmmServer};
        use vmm_protocol::{Request, Response};

        let steps = hlt_step();
        let mut model = model(KernelRules::Sel4V5, StartState::default(), &steps);
        VmcsGuestNW::Rip
            .write(&mut KernelAccess(&mut model), 0x2000)
            .unwrap();
        let primary = VmcsControl32::PrimaryProcBasedControls.encoding().raw();
        let written = model.write_vmcs(primary, 0x80).unwrap();
        let config = ServerConfig {
            vcpu: 0,
            caps: bochs_corei7_skylake_x(),
            exit_handler: badge::DEVICE_MODEL,
            start_running: false,
        };
        let mut server: VmmServer<_, _> = VmmServer::new(model, NoGuestMemory, standard_policy(), config);
        let rip = VmcsGuestNW::Rip.encoding().raw();
        let read = Request::ReadFields([rip, primary].into_iter().collect());
        let Response::Values(values) = server.handle(badge::MONITOR, &read) else {
            panic!("not values")
        };
        assert_eq!(values.as_slice(), [0x2000, written]);
    }
}
