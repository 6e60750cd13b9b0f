//! VT-x: virtual CPUs, EPT paging structures and entering the guest (`cfg(sel4_config_vtx)`).

use sel4_sys as sys;
use sys::{seL4_VCPUContext, seL4_Word};

use crate::ipc_buffer::{invoke, invoke_unit};
use crate::{Badge, Cap, Result, VmAttributes, cap_type, with_ipc_buffer};

/// The guest registers `WriteRegisters` sets and a VM exit reports: EAX, EBX, ECX, EDX, ESI,
/// EDI, EBP (generated from the kernel's interface XML).
pub type VcpuContext = seL4_VCPUContext;

impl Cap<cap_type::Vcpu> {
    /// Binds this VCPU to `tcb`, the thread that will call [`vm_enter`]. Performs
    /// `seL4_X86_VCPU_SetTCB`.
    pub fn set_tcb(self, tcb: Cap<cap_type::Tcb>) -> Result<()> {
        invoke_unit(|b| b.seL4_X86_VCPU_SetTCB(self.bits(), tcb.bits()))
    }

    /// Reads VMCS field `field` (its encoding). The kernel refuses fields it does not expose
    /// (`IllegalOperation`). Performs `seL4_X86_VCPU_ReadVMCS`.
    pub fn read_vmcs(self, field: seL4_Word) -> Result<seL4_Word> {
        invoke(|b| {
            let r = b.seL4_X86_VCPU_ReadVMCS(self.bits(), field);
            (r.error, r.value)
        })
    }

    /// Writes VMCS field `field` and returns the value the kernel actually wrote (it forces the
    /// bits the hardware and the kernel require). Performs `seL4_X86_VCPU_WriteVMCS`.
    pub fn write_vmcs(self, field: seL4_Word, value: seL4_Word) -> Result<seL4_Word> {
        invoke(|b| {
            let r = b.seL4_X86_VCPU_WriteVMCS(self.bits(), field, value);
            (r.error, r.written)
        })
    }

    /// Lets the guest use ports `first..=last` directly (no exits), within the range of
    /// `io_port`. Performs `seL4_X86_VCPU_EnableIOPort`.
    pub fn enable_io_port(self, io_port: Cap<cap_type::IoPort>, first: u16, last: u16) -> Result<()> {
        invoke_unit(|b| b.seL4_X86_VCPU_EnableIOPort(self.bits(), io_port.bits(), first.into(), last.into()))
    }

    /// Makes ports `first..=last` exit again. Performs `seL4_X86_VCPU_DisableIOPort`.
    pub fn disable_io_port(self, first: u16, last: u16) -> Result<()> {
        invoke_unit(|b| b.seL4_X86_VCPU_DisableIOPort(self.bits(), first.into(), last.into()))
    }

    /// Sets the guest's general registers. Performs `seL4_X86_VCPU_WriteRegisters`.
    pub fn write_registers(self, regs: &VcpuContext) -> Result<()> {
        invoke_unit(|b| b.seL4_X86_VCPU_WriteRegisters(self.bits(), regs))
    }
}

macro_rules! ept_table {
    ($ty:ident, $map:ident, $unmap:ident, $covers:literal) => {
        impl Cap<cap_type::$ty> {
            #[doc = concat!(
                        "Maps this table into the EPT rooted at `ept` (which needs an ASID) to cover the ",
                        $covers,
                        " at guest-physical address `gpa`. Performs `",
                        stringify!($map),
                        "`."
                    )]
            pub fn map(
                self,
                ept: Cap<cap_type::EptPml4>,
                gpa: seL4_Word,
                attributes: VmAttributes,
            ) -> Result<()> {
                invoke_unit(|b| b.$map(self.bits(), ept.bits(), gpa, attributes.into_word()))
            }

            #[doc = concat!("Unmaps this table. Performs `", stringify!($unmap), "`.")]
            pub fn unmap(self) -> Result<()> {
                invoke_unit(|b| b.$unmap(self.bits()))
            }
        }
    };
}

ept_table!(EptPdpt, seL4_X86_EPTPDPT_Map, seL4_X86_EPTPDPT_Unmap, "512 GiB");
ept_table!(EptPd, seL4_X86_EPTPD_Map, seL4_X86_EPTPD_Unmap, "1 GiB");
ept_table!(EptPt, seL4_X86_EPTPT_Map, seL4_X86_EPTPT_Unmap, "2 MiB");

/// A VM exit, as `seL4_VMEnter` reports it in the message registers (`SEL4_VMENTER_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmExit {
    /// Guest RIP (of the exiting instruction).
    pub rip: seL4_Word,
    /// Primary processor-based VM-execution controls.
    pub primary_controls: seL4_Word,
    /// VM-entry interruption information (valid bit cleared if the event was delivered).
    pub entry_interruption_info: seL4_Word,
    /// Exit reason (basic reason in bits 0-15; all ones when VM entry itself failed).
    pub reason: seL4_Word,
    /// Exit qualification (0 for reasons without one).
    pub qualification: seL4_Word,
    /// VM-exit instruction length.
    pub instruction_length: seL4_Word,
    /// Guest-physical address (meaningful for EPT exits only; stale otherwise).
    pub guest_physical_address: seL4_Word,
    /// Guest RFLAGS.
    pub rflags: seL4_Word,
    /// Guest interruptibility state.
    pub interruptibility: seL4_Word,
    /// Guest CR3.
    pub cr3: seL4_Word,
    /// Guest EAX, EBX, ECX, EDX, ESI, EDI, EBP.
    pub registers: VcpuContext,
}

/// How [`vm_enter`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmEnterResult {
    /// The guest exited (`SEL4_VMENTER_RESULT_FAULT`).
    Exit(VmExit),
    /// The thread's bound notification was signalled before or while the guest ran
    /// (`SEL4_VMENTER_RESULT_NOTIF`); the guest state to enter with is handed back unchanged.
    Notification {
        /// The notification's badges.
        badge: Badge,
        /// Guest RIP.
        rip: seL4_Word,
        /// Primary processor-based controls.
        primary_controls: seL4_Word,
        /// VM-entry interruption information.
        entry_interruption_info: seL4_Word,
    },
}

/// Enters the guest of the VCPU bound to the calling thread ([`Vcpu::set_tcb`](crate::Vcpu))
/// at `rip`, with the primary processor-based controls `primary_controls` (the kernel applies
/// its fixed bits) and VM-entry interruption information `entry_interruption_info` (an event to
/// inject, or 0). Returns at the next VM exit the kernel does not handle itself, or when the
/// thread's bound notification is signalled. Performs `seL4_VMEnter`.
///
/// The 5.0 kernel dereferences a null pointer if no VCPU is bound to the thread.
pub fn vm_enter(
    rip: seL4_Word,
    primary_controls: seL4_Word,
    entry_interruption_info: seL4_Word,
) -> VmEnterResult {
    with_ipc_buffer(|b| {
        let buf = b.raw_mut();
        buf.msg[sys::SEL4_VMENTER_CALL_EIP_MR as usize] = rip;
        buf.msg[sys::SEL4_VMENTER_CALL_CONTROL_PPC_MR as usize] = primary_controls;
        buf.msg[sys::SEL4_VMENTER_CALL_CONTROL_ENTRY_MR as usize] = entry_interruption_info;
        let (result, badge) = buf.seL4_VMEnter(0);
        let mr = |i: seL4_Word| buf.msg[i as usize];
        let rip = mr(sys::SEL4_VMENTER_CALL_EIP_MR);
        let primary_controls = mr(sys::SEL4_VMENTER_CALL_CONTROL_PPC_MR);
        let entry_interruption_info = mr(sys::SEL4_VMENTER_CALL_CONTROL_ENTRY_MR);
        // As libsel4: anything but SEL4_VMENTER_RESULT_NOTIF is an exit.
        if result == sys::SEL4_VMENTER_RESULT_NOTIF {
            return VmEnterResult::Notification {
                badge,
                rip,
                primary_controls,
                entry_interruption_info,
            };
        }
        VmEnterResult::Exit(VmExit {
            rip,
            primary_controls,
            entry_interruption_info,
            reason: mr(sys::SEL4_VMENTER_FAULT_REASON_MR),
            qualification: mr(sys::SEL4_VMENTER_FAULT_QUALIFICATION_MR),
            instruction_length: mr(sys::SEL4_VMENTER_FAULT_INSTRUCTION_LEN_MR),
            guest_physical_address: mr(sys::SEL4_VMENTER_FAULT_GUEST_PHYSICAL_MR),
            rflags: mr(sys::SEL4_VMENTER_FAULT_RFLAGS_MR),
            interruptibility: mr(sys::SEL4_VMENTER_FAULT_GUEST_INT_MR),
            cr3: mr(sys::SEL4_VMENTER_FAULT_CR3_MR),
            registers: VcpuContext {
                eax: mr(sys::SEL4_VMENTER_FAULT_EAX),
                ebx: mr(sys::SEL4_VMENTER_FAULT_EBX),
                ecx: mr(sys::SEL4_VMENTER_FAULT_ECX),
                edx: mr(sys::SEL4_VMENTER_FAULT_EDX),
                esi: mr(sys::SEL4_VMENTER_FAULT_ESI),
                edi: mr(sys::SEL4_VMENTER_FAULT_EDI),
                ebp: mr(sys::SEL4_VMENTER_FAULT_EBP),
            },
        })
    })
}
