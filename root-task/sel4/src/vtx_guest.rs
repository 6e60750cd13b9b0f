//! The VT-x guest's start: guest RAM, what the VMM server's loader puts into it, and the
//! state the guest starts in. seL4 5.0 forces CR0.PE and CR0.PG (notes/sel4-5.0-vtx-guest.md),
//! so the guest cannot start in real mode and build this itself: it starts in 32-bit protected
//! mode with paging, on structures the loader writes (the layout `guest/vtx-hello/guest.S`
//! expects):
//!
//! | guest-physical | what |
//! |---|---|
//! | 0x0000 | GDT: null, 0x08 flat 32-bit code, 0x10 flat data, 0x18 busy 32-bit TSS (base 0x100) |
//! | 0x1000 | page directory: two 4 MiB pages, RAM at 0 and the MMIO window at 0xFEC00000 |
//! | 0x2000 | the guest image, entered at its first byte |
//! | 0x4000 | top of the stack |

use vmm_server::setup::FlatProtectedMode;

/// Guest RAM: 64 KiB at guest-physical 0 (sixteen 4 KiB frames).
pub const RAM_SIZE: usize = 0x1_0000;
/// Where the guest image is loaded and entered.
pub const LOAD_ADDRESS: u64 = 0x2000;
/// Most bytes the image may take (it ends where the stack page starts).
pub const MAX_IMAGE: usize = 0x1000;
/// The page directory.
pub const PAGE_DIRECTORY: u64 = 0x1000;
/// The MMIO window the guest maps (and the EPT does not: accesses are EPT violations).
pub const MMIO_WINDOW: u64 = 0xFEC0_0000;
/// Guest CR0: PE, ET, PG (the kernel adds its fixed bits, e.g. NE).
pub const CR0: u64 = 0x8000_0011;
/// Guest CR4: PSE, for the 4 MiB pages.
pub const CR4: u64 = 1 << 4;

/// GDT entries (SDM Vol. 3A, Section 3.4.5): flat 4 GiB code (type 0xB) and data (type 0x3),
/// 32-bit, 4 KiB granularity; a busy 32-bit TSS (type 0xB) at 0x100, limit 0x67.
const GDT: [u64; 4] = [
    0,
    0x00CF_9B00_0000_FFFF,
    0x00CF_9300_0000_FFFF,
    0x0000_8B00_0100_0067,
];
/// Page-directory entries (SDM Vol. 3A, Section 4.3, Table 4-4): present, writable, 4 MiB
/// page (PS); the MMIO window also cache-disabled.
const PDE_RAM: u32 = 0x83;
const PDE_MMIO: u32 = (MMIO_WINDOW as u32) | 0x93;

/// Why the guest could not be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The image is empty or larger than [`MAX_IMAGE`].
    ImageSize(usize),
    /// Guest RAM is smaller than [`RAM_SIZE`].
    RamSize(usize),
}

fn put(ram: &mut [u8], at: u64, bytes: &[u8]) {
    let at = at as usize;
    ram[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Writes the GDT, the page directory and `image` into `ram` (guest-physical 0 onwards) and
/// returns the state the guest starts in.
///
/// # Errors
/// See [`LoadError`].
pub fn load(ram: &mut [u8], image: &[u8]) -> Result<FlatProtectedMode, LoadError> {
    if ram.len() < RAM_SIZE {
        return Err(LoadError::RamSize(ram.len()));
    }
    if image.is_empty() || image.len() > MAX_IMAGE {
        return Err(LoadError::ImageSize(image.len()));
    }
    for (i, descriptor) in GDT.iter().enumerate() {
        put(ram, i as u64 * 8, &descriptor.to_le_bytes());
    }
    put(ram, PAGE_DIRECTORY, &PDE_RAM.to_le_bytes());
    put(
        ram,
        PAGE_DIRECTORY + (MMIO_WINDOW >> 22) * 4,
        &PDE_MMIO.to_le_bytes(),
    );
    put(ram, LOAD_ADDRESS, image);
    Ok(FlatProtectedMode {
        code_selector: 0x08,
        data_selector: 0x10,
        tss_selector: 0x18,
        tss_base: 0x100,
        tss_limit: 0x67,
        gdt_base: 0,
        gdt_limit: (GDT.len() * 8 - 1) as u32,
        cr3: PAGE_DIRECTORY,
        cr0: CR0,
        cr4: CR4,
        rip: LOAD_ADDRESS,
        rsp: 0x4000,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loader_writes_what_the_guest_expects() {
        let mut ram = vec![0u8; RAM_SIZE];
        let start = load(&mut ram, &[0xF4, 0x90]).unwrap();
        // notes/sel4-5.0-vtx-guest.md: the descriptors that passed VM entry.
        assert_eq!(&ram[8..16], &0x00CF_9B00_0000_FFFFu64.to_le_bytes());
        assert_eq!(&ram[16..24], &0x00CF_9300_0000_FFFFu64.to_le_bytes());
        // TSS descriptor: base 0x100 (bits 16..39), limit 0x67, type 0xB, present.
        let tss = u64::from_le_bytes(ram[24..32].try_into().unwrap());
        assert_eq!((tss >> 16) & 0xFF_FFFF, 0x100);
        assert_eq!(tss & 0xFFFF, 0x67);
        assert_eq!((tss >> 40) & 0xFF, 0x8B);
        assert_eq!(&ram[0x1000..0x1004], &0x83u32.to_le_bytes());
        assert_eq!(
            &ram[0x1000 + 0x3FB * 4..0x1000 + 0x3FC * 4],
            &0xFEC0_0093u32.to_le_bytes()
        );
        assert_eq!(&ram[0x2000..0x2002], &[0xF4, 0x90]);
        assert_eq!((start.rip, start.cr3, start.gdt_limit), (0x2000, 0x1000, 31));
    }

    #[test]
    fn bad_sizes_are_refused() {
        let mut ram = vec![0u8; RAM_SIZE];
        assert_eq!(load(&mut ram, &[]), Err(LoadError::ImageSize(0)));
        assert_eq!(
            load(&mut ram, &[0; MAX_IMAGE + 1]),
            Err(LoadError::ImageSize(MAX_IMAGE + 1))
        );
        assert_eq!(load(&mut ram[..0x100], &[1]), Err(LoadError::RamSize(0x100)));
    }
}
