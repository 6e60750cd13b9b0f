//! Interrupt lines from devices to the device model's interrupt controller.
//!
//! Devices raise a line through a [`Trigger`]; the device model turns pending lines into
//! external-interrupt vectors (`base + line`, like a PIC programmed with that base) and asks
//! the VMM server to inject them. Interior mutability lets every device hold a trigger while
//! the server reads the pending set.

use core::cell::Cell;

/// Something a device pulls to request an interrupt (an edge).
pub trait Trigger {
    /// Requests the interrupt.
    fn trigger(&self);
}

/// Sixteen interrupt lines (ISA numbering).
#[derive(Debug, Default)]
pub struct InterruptLines {
    pending: Cell<u16>,
}

impl InterruptLines {
    /// No line pending.
    pub const fn new() -> Self {
        Self {
            pending: Cell::new(0),
        }
    }

    /// A trigger for `line` (0–15; other numbers are taken modulo 16).
    pub fn line(&self, line: u8) -> LineTrigger<'_> {
        LineTrigger {
            lines: self,
            bit: 1 << (line & 15),
        }
    }

    /// Takes the lowest-numbered pending line (highest priority on a PIC), if any.
    pub fn take_next(&self) -> Option<u8> {
        let pending = self.pending.get();
        if pending == 0 {
            return None;
        }
        let line = pending.trailing_zeros() as u8;
        self.pending.set(pending & !(1 << line));
        Some(line)
    }

    /// The pending lines as a bit mask (bit n = line n), for snapshots.
    pub fn pending_mask(&self) -> u16 {
        self.pending.get()
    }

    /// Sets the pending lines (restoring a snapshot).
    pub fn set_pending_mask(&self, mask: u16) {
        self.pending.set(mask);
    }

    /// Whether any line is pending.
    pub fn any_pending(&self) -> bool {
        self.pending.get() != 0
    }
}

/// A [`Trigger`] on one line of [`InterruptLines`].
#[derive(Debug, Clone, Copy)]
pub struct LineTrigger<'a> {
    lines: &'a InterruptLines,
    bit: u16,
}

impl Trigger for LineTrigger<'_> {
    fn trigger(&self) {
        self.lines.pending.set(self.lines.pending.get() | self.bit);
    }
}

/// A trigger that does nothing (a device whose interrupt is not wired).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTrigger;

impl Trigger for NoTrigger {
    fn trigger(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_taken_in_priority_order_once() {
        let lines = InterruptLines::new();
        lines.line(4).trigger();
        lines.line(1).trigger();
        lines.line(4).trigger();
        assert!(lines.any_pending());
        assert_eq!(lines.take_next(), Some(1));
        assert_eq!(lines.take_next(), Some(4));
        assert_eq!(lines.take_next(), None);
    }
}
