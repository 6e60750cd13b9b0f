//! What runs before `main` and after a panic, for every image of the system.
//!
//! seL4 starts the root task with the BootInfo pointer in `rdi` and no stack; the root task
//! starts the components with an argument in `rdi` and no stack either. `_start` switches to
//! the image's own stack (in `.bss`, so the ELF loader maps and zeroes it) and calls the
//! image's `main` through [`crate::main!`].

use core::fmt::Write;
use core::sync::atomic::{AtomicPtr, Ordering};

/// Stack size of every image's one thread (the VMM server keeps its guest image, about 70 KiB,
/// and its server, about 75 KiB with 64 KiB of guest RAM, on it).
pub const STACK_SIZE: usize = 1024 * 1024;

/// The stack; 16-byte aligned as the System V ABI requires at a call.
#[repr(C, align(16))]
struct Stack(core::cell::UnsafeCell<[u8; STACK_SIZE]>);

// SAFETY: only `_start` uses it, as the stack of the one thread.
unsafe impl Sync for Stack {}

/// The image's stack. Named so that `_start` can find it.
#[unsafe(no_mangle)]
static SEL4_SYSTEM_STACK: Stack = Stack(core::cell::UnsafeCell::new([0; STACK_SIZE]));

#[cfg(not(test))]
core::arch::global_asm!(
    ".pushsection .text._start, \"ax\"",
    ".global _start",
    "_start:",
    "    lea rsp, [rip + {stack} + {size}]",
    "    xor ebp, ebp",
    // rdi (BootInfo or the component's argument) passes through to main.
    "    call sel4_system_main",
    "    ud2",
    ".popsection",
    stack = sym SEL4_SYSTEM_STACK,
    size = const STACK_SIZE,
);

/// Defines the image's entry: `main!(name, function)` with `function: fn(u64) -> !` receiving
/// `rdi` (BootInfo for the root task, an argument for components). `name` prefixes the image's
/// console lines and panic messages.
#[macro_export]
macro_rules! main {
    ($name:literal, $function:path) => {
        /// The image's entry, called by `_start` on the image's own stack.
        #[unsafe(no_mangle)]
        extern "C" fn sel4_system_main(argument: u64) -> ! {
            static NAME: &str = $name;
            $crate::runtime::set_name(&NAME);
            $function(argument)
        }
    };
}

static NAME: AtomicPtr<&'static str> = AtomicPtr::new(core::ptr::null_mut());

/// Sets the image's name for console lines (from [`crate::main!`]).
pub fn set_name(name: &'static &'static str) {
    NAME.store(core::ptr::from_ref(name).cast_mut(), Ordering::Release);
}

/// The image's name.
pub fn name() -> &'static str {
    let name = NAME.load(Ordering::Acquire);
    // SAFETY: null, or a shared reference to a static (from `set_name`), never written.
    unsafe { name.as_ref() }.copied().unwrap_or("sel4-system")
}

/// Installs the IPC buffer the root task mapped for a component at
/// [`crate::layout::IPC_BUFFER`].
///
/// # Safety
/// Only in a component started by the root task (which maps that page before the component
/// runs), once, before any IPC.
pub unsafe fn use_component_ipc_buffer() {
    // SAFETY: the caller guarantees the page is mapped, writable and used by nothing else.
    unsafe { sel4::set_ipc_buffer(&mut *(crate::layout::IPC_BUFFER as *mut sel4::IpcBuffer)) }
}

/// Writes text to the kernel's debug console (`seL4_DebugPutChar`: the serial line).
#[derive(Debug, Clone, Copy)]
pub struct DebugConsole;

impl Write for DebugConsole {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for byte in s.bytes() {
            sel4::debug_put_char(byte);
        }
        Ok(())
    }
}

/// Prints one line to the debug console, prefixed with the image's name.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let mut console = $crate::runtime::DebugConsole;
        let _ = write!(console, "{}: ", $crate::runtime::name());
        let _ = writeln!(console, $($arg)*);
    }};
}

/// Marker that starts every line the system test looks for.
pub const MARKER: &str = "SEL4-SYSTEM:";

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut console = DebugConsole;
    let _ = writeln!(console, "{MARKER} FAIL {} panicked: {info}", name());
    // An invalid instruction: the kernel reports the fault to the root task (for components)
    // or prints it (for the root task itself); either way this thread stops here.
    loop {
        // SAFETY: `ud2` only raises #UD; nothing after it runs.
        unsafe { core::arch::asm!("ud2", options(nomem, nostack)) }
    }
}
