//! A stand-in for the kernel, for tests on the host (feature `host-mock`, and this crate's own
//! tests): every system call goes to a handler function instead of the `syscall` instruction.
//! The handler sees the syscall number, the registers (and may change them, as the kernel
//! does), and the caller's IPC buffer when the call lends it.
//!
//! There is one handler for the whole process: tests that install one must not run in parallel
//! with each other (hold a lock).

use core::sync::atomic::{AtomicPtr, Ordering};

use crate::{SyscallRegisters, seL4_IPCBuffer, seL4_Syscall_ID};

/// What a mock kernel implements.
pub type Handler = fn(sys: seL4_Syscall_ID, regs: &mut SyscallRegisters, ipc: Option<&mut seL4_IPCBuffer>);

static HANDLER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Installs `handler` for every later system call (`None`: none; a system call then panics).
pub fn set_handler(handler: Option<Handler>) {
    let raw = handler.map_or(core::ptr::null_mut(), |h| h as *mut ());
    HANDLER.store(raw, Ordering::SeqCst);
}

pub(crate) fn dispatch(sys: seL4_Syscall_ID, regs: &mut SyscallRegisters, ipc: *mut seL4_IPCBuffer) {
    let raw = HANDLER.load(Ordering::SeqCst);
    assert!(
        !raw.is_null(),
        "sel4-sys host mock: system call {sys} with no handler installed"
    );
    // SAFETY: HANDLER only ever holds null (checked above) or a `Handler` stored by `set_handler`.
    let handler = unsafe { core::mem::transmute::<*mut (), Handler>(raw) };
    // SAFETY: `ipc` is null or comes from the `&mut self` of the IPC-buffer method making this
    // call, which is not used again until the call returns.
    let ipc = unsafe { ipc.as_mut() };
    handler(sys, regs, ipc);
}
