//! The debug kernel's console (`cfg(sel4_config_debug_build)`).

use core::fmt;

use sel4_sys as sys;

/// Prints one byte on the kernel's console. Performs `seL4_DebugPutChar`.
pub fn debug_put_char(c: u8) {
    sys::seL4_DebugPutChar(c);
}

/// Prints `s` on the kernel's console, byte by byte. Performs `seL4_DebugPutChar`.
pub fn debug_put_str(s: &str) {
    s.bytes().for_each(debug_put_char);
}

/// Halts the kernel (and the machine). Performs `seL4_DebugHalt`.
pub fn debug_halt() {
    sys::seL4_DebugHalt();
}

/// A [`fmt::Write`] sink for the kernel's console, for `write!`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DebugWriter;

impl fmt::Write for DebugWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        debug_put_str(s);
        Ok(())
    }
}
