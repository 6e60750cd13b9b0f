//! Small port devices: the debug-exit port, the POST-code port, and the policy for ports no
//! device claims.

use crate::bus::PortDevice;

/// The debug-exit port: a write stops the VM with the written value as its exit status.
/// Reads return all ones. (QEMU's `isa-debug-exit` turns value v into host status
/// `(v << 1) | 1`; here the status is the value itself.)
#[derive(Debug, Default)]
pub struct DebugExit {
    status: Option<u32>,
}

impl DebugExit {
    /// Not yet written.
    pub const fn new() -> Self {
        Self { status: None }
    }

    /// The status the guest asked to stop with, once it has.
    pub fn status(&self) -> Option<u32> {
        self.status
    }
}

impl PortDevice for DebugExit {
    fn read(&mut self, _offset: u16, size: u8) -> u32 {
        size_mask(size)
    }

    fn write(&mut self, _offset: u16, size: u8, value: u32) {
        self.status = Some(value & size_mask(size));
    }
}

/// The POST-code port (0x80 on a PC): remembers the last code and counts writes.
#[derive(Debug, Default)]
pub struct PostCode {
    last: Option<u8>,
    writes: u64,
}

impl PostCode {
    /// No code written yet.
    pub const fn new() -> Self {
        Self {
            last: None,
            writes: 0,
        }
    }

    /// The last code written.
    pub fn last(&self) -> Option<u8> {
        self.last
    }

    /// Writes so far.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Takes on a recorded state (last code, write count).
    pub fn restore(&mut self, last: Option<u8>, writes: u64) {
        self.last = last;
        self.writes = writes;
    }
}

impl PortDevice for PostCode {
    fn read(&mut self, _offset: u16, _size: u8) -> u32 {
        u32::from(self.last.unwrap_or(0xFF))
    }

    fn write(&mut self, _offset: u16, _size: u8, value: u32) {
        self.last = Some(value as u8);
        self.writes += 1;
    }

    fn save(&self, out: &mut [u8]) -> Option<usize> {
        crate::bus::save_state(&(self.last, self.writes), out)
    }

    fn load(&mut self, state: &[u8]) -> bool {
        crate::bus::load_state(state)
            .map(|(last, writes)| self.restore(last, writes))
            .is_some()
    }
}

/// All ones in the low `size` bytes: what a read from a port nobody drives returns on a PC
/// (the ISA bus floats high).
pub const fn size_mask(size: u8) -> u32 {
    match size {
        1 => 0xFF,
        2 => 0xFFFF,
        _ => 0xFFFF_FFFF,
    }
}

/// Accesses to ports no device claims: reads return all ones, writes are dropped; both counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unclaimed {
    /// Reads of unclaimed ports.
    pub reads: u64,
    /// Writes to unclaimed ports (dropped).
    pub writes: u64,
}

impl Unclaimed {
    /// A read of `size` bytes from an unclaimed port.
    pub fn read(&mut self, size: u8) -> u32 {
        self.reads += 1;
        size_mask(size)
    }

    /// A dropped write.
    pub fn write(&mut self) {
        self.writes += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_exit_records_the_status() {
        let mut port = DebugExit::new();
        assert_eq!(port.status(), None);
        assert_eq!(port.read(0, 1), 0xFF);
        port.write(0, 1, 0x1_31);
        assert_eq!(port.status(), Some(0x31));
    }

    #[test]
    fn post_code_and_unclaimed_ports() {
        let mut post = PostCode::new();
        post.write(0, 1, 0x1AA);
        assert_eq!(
            (post.last(), post.writes(), post.read(0, 1)),
            (Some(0xAA), 1, 0xAA)
        );
        let mut unclaimed = Unclaimed::default();
        assert_eq!(unclaimed.read(2), 0xFFFF);
        unclaimed.write();
        assert_eq!(unclaimed, Unclaimed { reads: 1, writes: 1 });
    }
}
