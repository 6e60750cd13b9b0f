//! Port I/O.

/// OUT of one byte.
pub fn outb(port: u16, value: u8) {
    // SAFETY: the stub owns the machine; the ports it writes (COM1, 0xE9, 0x8900) have no
    // effect on memory.
    unsafe { core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack)) }
}

/// IN of one byte.
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: as for `outb`; reading COM1's registers has no effect on memory.
    unsafe { core::arch::asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack)) }
    value
}

/// Writes `text` to Bochs' port 0xE9 (it appears on Bochs' standard output): diagnostics that
/// do not depend on the serial link.
pub fn debug(text: &str) {
    for b in text.bytes() {
        outb(0xE9, b);
    }
}

/// Ends the Bochs run (its shutdown port).
pub fn shutdown() -> ! {
    for b in b"Shutdown" {
        outb(oracle_proto::BOCHS_SHUTDOWN_PORT, *b);
    }
    loop {
        // SAFETY: halting with interrupts off only stops this processor.
        unsafe { core::arch::asm!("cli", "hlt", options(nomem, nostack)) }
    }
}
