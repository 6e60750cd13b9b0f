//! Guest memory as the VMM server sees it: needed to complete string I/O (`INS`/`OUTS`),
//! whose data lives in guest memory.
//!
//! On seL4 the root task maps guest RAM frames into the VMM server's address space; the
//! model VCPU uses [`FlatMemory`]. Translation from guest-linear to guest-physical addresses
//! is the implementation's business (identity for flat guests; a walk of the guest's page
//! tables otherwise).

/// Guest memory access.
pub trait GuestMemory {
    /// The guest-physical address of guest-linear address `linear`, if mapped.
    fn translate(&mut self, linear: u64) -> Option<u64>;
    /// Reads `buf.len()` bytes at guest-physical `gpa`; `false` if not RAM.
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool;
    /// Writes `data` at guest-physical `gpa`; `false` if not RAM.
    fn write(&mut self, gpa: u64, data: &[u8]) -> bool;
}

/// No guest memory: every access fails (string I/O cannot be completed).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoGuestMemory;

impl GuestMemory for NoGuestMemory {
    fn translate(&mut self, _: u64) -> Option<u64> {
        None
    }
    fn read(&mut self, _: u64, _: &mut [u8]) -> bool {
        false
    }
    fn write(&mut self, _: u64, _: &[u8]) -> bool {
        false
    }
}

/// `N` bytes of RAM at guest-physical `base`, identity-mapped (linear = physical).
#[derive(Debug, Clone)]
pub struct FlatMemory<const N: usize> {
    base: u64,
    bytes: [u8; N],
}

impl<const N: usize> FlatMemory<N> {
    /// Zeroed RAM at `base`.
    pub const fn new(base: u64) -> Self {
        Self { base, bytes: [0; N] }
    }

    /// The RAM's bytes.
    pub fn bytes(&self) -> &[u8; N] {
        &self.bytes
    }

    /// The RAM's bytes, writable (to load a guest).
    pub fn bytes_mut(&mut self) -> &mut [u8; N] {
        &mut self.bytes
    }
}

/// Where `len` bytes at `gpa` lie in RAM of `size` bytes at `base`.
fn ram_range(base: u64, size: usize, gpa: u64, len: usize) -> Option<core::ops::Range<usize>> {
    let start = usize::try_from(gpa.checked_sub(base)?).ok()?;
    let end = start.checked_add(len)?;
    (end <= size).then_some(start..end)
}

fn read_ram(ram: &[u8], base: u64, gpa: u64, buf: &mut [u8]) -> bool {
    match ram_range(base, ram.len(), gpa, buf.len()) {
        Some(range) => {
            buf.copy_from_slice(&ram[range]);
            true
        }
        None => false,
    }
}

fn write_ram(ram: &mut [u8], base: u64, gpa: u64, data: &[u8]) -> bool {
    match ram_range(base, ram.len(), gpa, data.len()) {
        Some(range) => {
            ram[range].copy_from_slice(data);
            true
        }
        None => false,
    }
}

impl<const N: usize> GuestMemory for FlatMemory<N> {
    fn translate(&mut self, linear: u64) -> Option<u64> {
        Some(linear)
    }

    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool {
        read_ram(&self.bytes, self.base, gpa, buf)
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> bool {
        write_ram(&mut self.bytes, self.base, gpa, data)
    }
}

/// Guest RAM that lives elsewhere (on seL4: the guest's frames, mapped into the VMM server's
/// address space too) at guest-physical `base`, identity-mapped (linear = physical: the guest
/// identity-maps what it uses, as the VMM's loader sets it up).
#[derive(Debug)]
pub struct BorrowedMemory<'a> {
    base: u64,
    bytes: &'a mut [u8],
}

impl<'a> BorrowedMemory<'a> {
    /// `bytes` as guest RAM at `base`.
    pub fn new(base: u64, bytes: &'a mut [u8]) -> Self {
        Self { base, bytes }
    }

    /// The RAM's bytes, writable (to load a guest).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.bytes
    }
}

impl GuestMemory for BorrowedMemory<'_> {
    fn translate(&mut self, linear: u64) -> Option<u64> {
        Some(linear)
    }

    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool {
        read_ram(self.bytes, self.base, gpa, buf)
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> bool {
        write_ram(self.bytes, self.base, gpa, data)
    }
}

impl<T: GuestMemory + ?Sized> GuestMemory for &mut T {
    fn translate(&mut self, linear: u64) -> Option<u64> {
        (**self).translate(linear)
    }
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool {
        (**self).read(gpa, buf)
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> bool {
        (**self).write(gpa, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_memory_bounds() {
        let mut backing = [0u8; 16];
        let mut ram = BorrowedMemory::new(0x1000, &mut backing);
        assert!(ram.write(0x100C, b"abcd"));
        assert!(!ram.write(0x100D, b"abcd"), "one byte past the end");
        assert!(!ram.write(0xFFF, b"a"), "below the base");
        let mut buf = [0u8; 4];
        assert!(ram.read(0x100C, &mut buf));
        assert_eq!(&buf, b"abcd");
        assert!(!ram.read(u64::MAX, &mut buf));
        assert_eq!(ram.translate(0x1234), Some(0x1234));
        assert_eq!(&backing[12..], b"abcd");
    }

    #[test]
    fn flat_memory_bounds() {
        let mut ram: FlatMemory<16> = FlatMemory::new(0x1000);
        assert!(ram.write(0x100C, b"abcd"));
        assert!(!ram.write(0x100D, b"abcd"), "crosses the end");
        assert!(!ram.write(0xFFF, b"a"), "below the base");
        assert!(!ram.read(u64::MAX, &mut [0; 2]));
        let mut buf = [0; 4];
        assert!(ram.read(0x100C, &mut buf));
        assert_eq!(&buf, b"abcd");
        assert_eq!(NoGuestMemory.translate(5), None);
    }
}
