//! System-call entry for seL4 5.0 on x86_64 (`CONFIG_SYSCALL`: the `syscall` instruction).
//!
//! Registers, as `libsel4/sel4_arch_include/x86_64/sel4/sel4_arch/syscalls_syscall.h` and the
//! kernel's `handle_fastsyscall` / `restore_user_context` use them: `rdx` the syscall number,
//! `rdi` the capability (in) and badge (out), `rsi` the message info (in and out), `r10`, `r8`,
//! `r9`, `r15` message registers 0-3 (in and out). `syscall` itself overwrites `rcx` and `r11`,
//! and the kernel's `sysret` path returns with `rsp` zeroed, so the stack pointer is kept in `r12`
//! across the instruction (Rust's inline assembly cannot name `rbx`, which libsel4 uses).

use crate::{
    seL4_CPtr, seL4_IPCBuffer, seL4_MessageInfo_t, seL4_SysCall, seL4_SysNBRecv, seL4_SysNBSend,
    seL4_SysRecv, seL4_SysReply, seL4_SysReplyRecv, seL4_SysSend, seL4_SysYield, seL4_Syscall_ID, seL4_Word,
};

/// The registers a system call passes to the kernel and gets back (all but the number).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyscallRegisters {
    /// `rdi`: capability to invoke; after a receive, the sender's badge.
    pub rdi: seL4_Word,
    /// `rsi`: message info, in and out.
    pub rsi: seL4_Word,
    /// `r10`, `r8`, `r9`, `r15`: message registers 0 to 3, in and out.
    pub mr: [seL4_Word; 4],
}

/// Performs system call `sys`. `ipc` is the caller's IPC buffer (or null when the call cannot
/// touch it): it is handed to the assembly so that the compiler knows the kernel may read and
/// write it.
#[inline(always)]
fn syscall(sys: seL4_Syscall_ID, regs: &mut SyscallRegisters, ipc: *mut seL4_IPCBuffer) {
    #[cfg(not(any(test, feature = "host-mock")))]
    // SAFETY: the kernel's syscall path changes only the registers declared here (rsp is restored
    // from r12 by our own code), and memory only in the caller's IPC buffer, which the caller
    // lends to this call through `ipc`.
    unsafe {
        core::arch::asm!(
            "mov r12, rsp",
            "syscall",
            "mov rsp, r12",
            "# IPC buffer: {ipc}",
            ipc = in(reg) ipc,
            inout("rdx") sys => _,
            inout("rdi") regs.rdi,
            inout("rsi") regs.rsi,
            inout("r10") regs.mr[0],
            inout("r8") regs.mr[1],
            inout("r9") regs.mr[2],
            inout("r15") regs.mr[3],
            out("rcx") _,
            out("r11") _,
            out("r12") _,
            options(nostack),
        );
    }
    #[cfg(any(test, feature = "host-mock"))]
    crate::host_mock::dispatch(sys, regs, ipc);
}

/// Gives up the rest of the time slice (`seL4_Yield`).
#[inline]
pub fn seL4_Yield() {
    let mut regs = SyscallRegisters::default();
    syscall(seL4_SysYield, &mut regs, core::ptr::null_mut());
}

/// Signals a notification (`seL4_Signal`: `seL4_Send` of an empty message; on an endpoint that
/// is a blocking empty send).
#[inline]
pub fn seL4_Signal(dest: seL4_CPtr) {
    let mut regs = SyscallRegisters {
        rdi: dest,
        ..Default::default()
    };
    syscall(seL4_SysSend, &mut regs, core::ptr::null_mut());
}

/// Waits on a notification and returns its badge (`seL4_Wait`: `seL4_Recv` on a notification).
/// For endpoints use [`seL4_IPCBuffer::seL4_Recv`], which keeps the message.
#[inline]
pub fn seL4_Wait(src: seL4_CPtr) -> seL4_Word {
    let mut regs = SyscallRegisters {
        rdi: src,
        ..Default::default()
    };
    syscall(seL4_SysRecv, &mut regs, core::ptr::null_mut());
    regs.rdi
}

/// Polls a notification: its badge if it was signalled, else 0 (`seL4_Poll`: `seL4_NBRecv` on a
/// notification).
#[inline]
pub fn seL4_Poll(src: seL4_CPtr) -> seL4_Word {
    let mut regs = SyscallRegisters {
        rdi: src,
        ..Default::default()
    };
    syscall(seL4_SysNBRecv, &mut regs, core::ptr::null_mut());
    regs.rdi
}

/// Prints one character on the kernel's console (`seL4_DebugPutChar`; debug kernels only).
#[cfg(sel4_config_debug_build)]
#[inline]
pub fn seL4_DebugPutChar(c: u8) {
    let mut regs = SyscallRegisters {
        rdi: seL4_Word::from(c),
        ..Default::default()
    };
    syscall(crate::seL4_SysDebugPutChar, &mut regs, core::ptr::null_mut());
}

/// Halts the kernel (`seL4_DebugHalt`; debug kernels only).
#[cfg(sel4_config_debug_build)]
#[inline]
pub fn seL4_DebugHalt() {
    let mut regs = SyscallRegisters::default();
    syscall(crate::seL4_SysDebugHalt, &mut regs, core::ptr::null_mut());
}

/// The system calls that carry a message. Message registers 0-3 are taken from and returned to
/// `msg[0..4]` (as libsel4's `seL4_Call` etc. do with `seL4_GetMR`/`seL4_SetMR`); the kernel
/// reads and writes the rest of the buffer directly. These must be called on the calling
/// thread's registered IPC buffer, or the kernel sees other message registers than `self` holds.
impl seL4_IPCBuffer {
    fn regs(&self, rdi: seL4_Word, info: seL4_MessageInfo_t) -> SyscallRegisters {
        SyscallRegisters {
            rdi,
            rsi: info.words[0],
            mr: [self.msg[0], self.msg[1], self.msg[2], self.msg[3]],
        }
    }

    fn message_syscall(
        &mut self,
        sys: seL4_Syscall_ID,
        rdi: seL4_Word,
        info: seL4_MessageInfo_t,
    ) -> SyscallRegisters {
        let mut regs = self.regs(rdi, info);
        syscall(sys, &mut regs, self);
        regs
    }

    fn store_mrs(&mut self, regs: &SyscallRegisters) -> seL4_MessageInfo_t {
        self.msg[..4].copy_from_slice(&regs.mr);
        seL4_MessageInfo_t { words: [regs.rsi] }
    }

    /// Sends a message, blocking until it is delivered (`seL4_Send`).
    pub fn seL4_Send(&mut self, dest: seL4_CPtr, info: seL4_MessageInfo_t) {
        self.message_syscall(seL4_SysSend, dest, info);
    }

    /// Sends a message if a receiver is waiting, else drops it (`seL4_NBSend`).
    pub fn seL4_NBSend(&mut self, dest: seL4_CPtr, info: seL4_MessageInfo_t) {
        self.message_syscall(seL4_SysNBSend, dest, info);
    }

    /// Sends a message and waits for the reply (`seL4_Call`); returns the reply's message info.
    pub fn seL4_Call(&mut self, dest: seL4_CPtr, info: seL4_MessageInfo_t) -> seL4_MessageInfo_t {
        let regs = self.message_syscall(seL4_SysCall, dest, info);
        self.store_mrs(&regs)
    }

    /// `seL4_Call` with message registers 0-3 passed and returned in the arguments instead of the
    /// buffer (`seL4_CallWithMRs`); what the invocation stubs use.
    pub fn seL4_CallWithMRs(
        &mut self,
        dest: seL4_CPtr,
        info: seL4_MessageInfo_t,
        mr0: &mut seL4_Word,
        mr1: &mut seL4_Word,
        mr2: &mut seL4_Word,
        mr3: &mut seL4_Word,
    ) -> seL4_MessageInfo_t {
        let mut regs = SyscallRegisters {
            rdi: dest,
            rsi: info.words[0],
            mr: [*mr0, *mr1, *mr2, *mr3],
        };
        syscall(seL4_SysCall, &mut regs, self);
        [*mr0, *mr1, *mr2, *mr3] = regs.mr;
        seL4_MessageInfo_t { words: [regs.rsi] }
    }

    /// Waits for a message (`seL4_Recv`); returns its message info and the sender's badge.
    pub fn seL4_Recv(&mut self, src: seL4_CPtr) -> (seL4_MessageInfo_t, seL4_Word) {
        let regs = self.message_syscall(seL4_SysRecv, src, seL4_MessageInfo_t::default());
        (self.store_mrs(&regs), regs.rdi)
    }

    /// Receives a message if one is waiting (`seL4_NBRecv`); returns its message info and the
    /// sender's badge (both 0 when there was none).
    pub fn seL4_NBRecv(&mut self, src: seL4_CPtr) -> (seL4_MessageInfo_t, seL4_Word) {
        let regs = self.message_syscall(seL4_SysNBRecv, src, seL4_MessageInfo_t::default());
        (self.store_mrs(&regs), regs.rdi)
    }

    /// Replies to the thread that last called this one (`seL4_Reply`; 5.0 keeps one implicit
    /// reply capability per thread).
    pub fn seL4_Reply(&mut self, info: seL4_MessageInfo_t) {
        self.message_syscall(seL4_SysReply, 0, info);
    }

    /// Replies, then waits for the next message on `src` (`seL4_ReplyRecv`); returns its message
    /// info and the sender's badge.
    pub fn seL4_ReplyRecv(
        &mut self,
        src: seL4_CPtr,
        info: seL4_MessageInfo_t,
    ) -> (seL4_MessageInfo_t, seL4_Word) {
        let regs = self.message_syscall(seL4_SysReplyRecv, src, info);
        (self.store_mrs(&regs), regs.rdi)
    }

    /// Enters the guest of the VCPU bound to the calling thread (`seL4_VMEnter`, VT-x kernels).
    /// In: `msg[0]` guest RIP, `msg[1]` primary processor-based controls, `msg[2]` VM-entry
    /// interruption information (`SEL4_VMENTER_CALL_*_MR`). Returns `SEL4_VMENTER_RESULT_FAULT`
    /// (a VM exit: `msg[0..17]` hold the `SEL4_VMENTER_*` registers) or
    /// `SEL4_VMENTER_RESULT_NOTIF` (the bound notification was signalled; the badge is the second
    /// value and `msg[0..3]` hold the guest state again).
    ///
    /// `vcpu` is passed as libsel4 passes it; the 5.0 kernel enters the thread's bound VCPU.
    #[cfg(sel4_config_vtx)]
    pub fn seL4_VMEnter(&mut self, vcpu: seL4_CPtr) -> (seL4_Word, seL4_Word) {
        let regs = self.message_syscall(crate::seL4_SysVMEnter, vcpu, seL4_MessageInfo_t::default());
        self.store_mrs(&regs);
        (regs.rsi, regs.rdi)
    }
}
