//! Thread control blocks.

use sel4_sys::{seL4_CPtr, seL4_PrioProps_t, seL4_UserContext, seL4_Word};

use crate::ipc_buffer::{invoke, invoke_unit};
use crate::{Cap, CapData, Result, cap_type};

/// A thread's registers in the order `ReadRegisters`/`WriteRegisters` carry them (x86_64: `rip`,
/// `rsp`, `rflags`, `rax`, `rbx`, `rcx`, `rdx`, `rsi`, `rdi`, `rbp`, `r8`-`r15`, `tls_base`),
/// generated from the kernel's interface XML.
pub type UserContext = seL4_UserContext;

/// Number of registers in a [`UserContext`].
const USER_CONTEXT_WORDS: seL4_Word = UserContext::WORDS as seL4_Word;

impl Cap<cap_type::Tcb> {
    /// Sets the thread's fault endpoint, priorities, address spaces and IPC buffer at once
    /// (seL4 5.0's non-MCS argument list). `fault_ep` is a capability address in the *configured*
    /// thread's CSpace (0: none). `cspace_root_data` sets the root CNode's guard
    /// ([`CapData::guard`]; [`CapData::NONE`] leaves it), `vspace_root_data` is unused on x86.
    /// `ipc_buffer` is the buffer's address in the thread's VSpace (512-byte aligned, 0: none)
    /// and `ipc_buffer_frame` the frame it lies in. Performs `seL4_TCB_Configure`.
    #[allow(clippy::too_many_arguments)]
    pub fn configure(
        self,
        fault_ep: seL4_CPtr,
        priority: u8,
        max_controlled_priority: u8,
        cspace_root: Cap<cap_type::CNode>,
        cspace_root_data: CapData,
        vspace_root: Cap<cap_type::Pml4>,
        vspace_root_data: CapData,
        ipc_buffer: seL4_Word,
        ipc_buffer_frame: Cap<cap_type::Page>,
    ) -> Result<()> {
        let prio = seL4_PrioProps_t::new(max_controlled_priority.into(), priority.into());
        invoke_unit(|b| {
            b.seL4_TCB_Configure(
                self.bits(),
                fault_ep,
                prio,
                cspace_root.bits(),
                cspace_root_data.into_raw(),
                vspace_root.bits(),
                vspace_root_data.into_raw(),
                ipc_buffer,
                ipc_buffer_frame.bits(),
            )
        })
    }

    /// Sets the fault endpoint and the address spaces (arguments as for
    /// [`configure`](Self::configure)). Performs `seL4_TCB_SetSpace`.
    pub fn set_space(
        self,
        fault_ep: seL4_CPtr,
        cspace_root: Cap<cap_type::CNode>,
        cspace_root_data: CapData,
        vspace_root: Cap<cap_type::Pml4>,
        vspace_root_data: CapData,
    ) -> Result<()> {
        invoke_unit(|b| {
            b.seL4_TCB_SetSpace(
                self.bits(),
                fault_ep,
                cspace_root.bits(),
                cspace_root_data.into_raw(),
                vspace_root.bits(),
                vspace_root_data.into_raw(),
            )
        })
    }

    /// Sets the IPC buffer: its address in the thread's VSpace and the frame it lies in. Performs
    /// `seL4_TCB_SetIPCBuffer`.
    pub fn set_ipc_buffer(self, address: seL4_Word, frame: Cap<cap_type::Page>) -> Result<()> {
        invoke_unit(|b| b.seL4_TCB_SetIPCBuffer(self.bits(), address, frame.bits()))
    }

    /// Sets the thread's priority (at most the caller's maximum controlled priority; seL4 5.0
    /// takes no authority argument). Performs `seL4_TCB_SetPriority`.
    pub fn set_priority(self, priority: u8) -> Result<()> {
        invoke_unit(|b| b.seL4_TCB_SetPriority(self.bits(), priority))
    }

    /// Sets the thread's maximum controlled priority. Performs `seL4_TCB_SetMCPriority`.
    pub fn set_max_controlled_priority(self, mcp: u8) -> Result<()> {
        invoke_unit(|b| b.seL4_TCB_SetMCPriority(self.bits(), mcp))
    }

    /// Writes the first `count` registers of `regs` (all of them when `count` is larger), and
    /// resumes the thread if `resume`. Performs `seL4_TCB_WriteRegisters`.
    pub fn write_registers(self, resume: bool, count: seL4_Word, regs: &UserContext) -> Result<()> {
        let count = count.min(USER_CONTEXT_WORDS);
        invoke_unit(|b| b.seL4_TCB_WriteRegisters(self.bits(), resume.into(), 0, count, regs))
    }

    /// Reads the first `count` registers (the rest of the result is zero), suspending the thread
    /// first if `suspend`. Performs `seL4_TCB_ReadRegisters`.
    pub fn read_registers(self, suspend: bool, count: seL4_Word) -> Result<UserContext> {
        let count = count.min(USER_CONTEXT_WORDS);
        invoke(|b| {
            let mut regs = UserContext::default();
            let code = b.seL4_TCB_ReadRegisters(self.bits(), suspend.into(), 0, count, &mut regs);
            // The stub fills every field from the reply; keep only what the kernel sent.
            let mut words = regs.to_words();
            for w in words.iter_mut().skip(count as usize) {
                *w = 0;
            }
            (code, UserContext::from_words(words))
        })
    }

    /// Makes the thread runnable. Performs `seL4_TCB_Resume`.
    pub fn resume(self) -> Result<()> {
        invoke_unit(|b| b.seL4_TCB_Resume(self.bits()))
    }

    /// Stops the thread. Performs `seL4_TCB_Suspend`.
    pub fn suspend(self) -> Result<()> {
        invoke_unit(|b| b.seL4_TCB_Suspend(self.bits()))
    }

    /// Binds `notification` to this thread: signals to it also wake the thread when it waits on
    /// an endpoint, and end its `vm_enter`. Performs `seL4_TCB_BindNotification`.
    pub fn bind_notification(self, notification: Cap<cap_type::Notification>) -> Result<()> {
        invoke_unit(|b| b.seL4_TCB_BindNotification(self.bits(), notification.bits()))
    }

    /// Unbinds the thread's notification. Performs `seL4_TCB_UnbindNotification`.
    pub fn unbind_notification(self) -> Result<()> {
        invoke_unit(|b| b.seL4_TCB_UnbindNotification(self.bits()))
    }

    /// Makes `ept` the guest-physical address space of the VCPU this thread runs (the EPT PML4
    /// must have an ASID: [`AsidPool::assign`](crate::AsidPool)). Performs
    /// `seL4_TCB_SetEPTRoot`.
    #[cfg(sel4_config_vtx)]
    pub fn set_ept_root(self, ept: Cap<cap_type::EptPml4>) -> Result<()> {
        invoke_unit(|b| b.seL4_TCB_SetEPTRoot(self.bits(), ept.bits()))
    }
}
