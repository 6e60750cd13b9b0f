//! The VMM server's kernel interface on seL4 with VT-x: every method is one invocation on the
//! VCPU capability (or `seL4_VMEnter`), as `vmm_server::kernel` documents.

use sel4::{Vcpu, VcpuContext, VmEnterResult};
use vmm_server::kernel::{EnterInput, EnterOutcome, FaultMessage, KernelError, VcpuKernel, VcpuRegisters};
use vmm_server::model::KernelRules;

/// The VCPU bound to the calling thread.
#[derive(Debug)]
pub struct Sel4Vcpu {
    vcpu: Vcpu,
}

impl Sel4Vcpu {
    /// The VCPU behind `vcpu` (bound to this thread by the root task).
    pub fn new(vcpu: Vcpu) -> Self {
        Self { vcpu }
    }
}

fn kernel_error(error: sel4::Error) -> KernelError {
    KernelError::from_number(u32::try_from(error.code()).unwrap_or(u32::MAX))
}

/// The fault message registers, named (`SEL4_VMENTER_FAULT_*`, 5.0 has no R8–R15).
fn fault_message(exit: &sel4::VmExit) -> FaultMessage {
    let r = &exit.registers;
    FaultMessage {
        rip: exit.rip,
        primary_controls: exit.primary_controls as u32,
        entry_interruption_info: exit.entry_interruption_info as u32,
        exit_reason: exit.reason as u32,
        qualification: exit.qualification,
        instruction_len: exit.instruction_length as u32,
        guest_physical: exit.guest_physical_address,
        rflags: exit.rflags,
        interruptibility: exit.interruptibility as u32,
        cr3: exit.cr3,
        registers: VcpuRegisters {
            rax: r.eax,
            rbx: r.ebx,
            rcx: r.ecx,
            rdx: r.edx,
            rsi: r.esi,
            rdi: r.edi,
            rbp: r.ebp,
            ..VcpuRegisters::default()
        },
    }
}

impl VcpuKernel for Sel4Vcpu {
    fn read_vmcs(&mut self, field: u32) -> Result<u64, KernelError> {
        self.vcpu.read_vmcs(u64::from(field)).map_err(kernel_error)
    }

    fn write_vmcs(&mut self, field: u32, value: u64) -> Result<u64, KernelError> {
        self.vcpu
            .write_vmcs(u64::from(field), value)
            .map_err(kernel_error)
    }

    fn write_registers(&mut self, registers: &VcpuRegisters) -> Result<(), KernelError> {
        let context = VcpuContext {
            eax: registers.rax,
            ebx: registers.rbx,
            ecx: registers.rcx,
            edx: registers.rdx,
            esi: registers.rsi,
            edi: registers.rdi,
            ebp: registers.rbp,
        };
        self.vcpu.write_registers(&context).map_err(kernel_error)
    }

    fn writable(&self, field: u32) -> bool {
        KernelRules::Sel4V5.writable(field)
    }

    fn vm_enter(&mut self, input: &EnterInput) -> Result<EnterOutcome, KernelError> {
        Ok(
            match sel4::vm_enter(
                input.rip,
                u64::from(input.primary_controls),
                u64::from(input.entry_interruption_info),
            ) {
                VmEnterResult::Exit(exit) => EnterOutcome::Exit(fault_message(&exit)),
                VmEnterResult::Notification {
                    badge,
                    rip,
                    primary_controls,
                    entry_interruption_info,
                } => EnterOutcome::Notification {
                    badge,
                    resume: EnterInput {
                        rip,
                        primary_controls: primary_controls as u32,
                        entry_interruption_info: entry_interruption_info as u32,
                    },
                },
            },
        )
    }
}
