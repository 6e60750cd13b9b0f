//! A GDT in RAM with a TSS: VM entry requires a non-null host TR selector (SDM Vol. 3C,
//! Section 27.2.3), and LTR marks the descriptor busy, which the ROM's GDT cannot hold.

use core::cell::UnsafeCell;

use crate::fault::DescriptorPointer;

/// Selectors, the same as the boot GDT's plus the TSS.
pub const CODE64: u16 = 0x18;
/// Data segment selector (flat, writable).
pub const DATA: u16 = 0x10;
/// 64-bit TSS selector.
pub const TSS: u16 = 0x20;

/// A 64-bit TSS (SDM Vol. 3A, Section 9.7, Figure 9-11); only its presence matters here.
#[repr(C, align(16))]
struct Tss([u8; 104]);

struct Tables(UnsafeCell<([u64; 6], Tss)>);

// SAFETY: one processor; written once by `init`, then read by the processor only.
unsafe impl Sync for Tables {}

static TABLES: Tables = Tables(UnsafeCell::new(([0; 6], Tss([0; 104]))));

/// The TSS's linear address.
pub fn tss_base() -> u64 {
    // SAFETY: taking the address of the static's field; nothing is read.
    unsafe { (&raw const (*TABLES.0.get()).1) as u64 }
}

/// The GDT's base and limit.
pub fn gdt() -> (u64, u16) {
    // SAFETY: as for `tss_base`.
    let base = unsafe { (&raw const (*TABLES.0.get()).0) as u64 };
    (base, (6 * 8 - 1) as u16)
}

/// Builds the GDT, loads it and the task register.
pub fn init() {
    let tss = tss_base();
    let limit = 104 - 1u64;
    // 64-bit TSS descriptor (Section 9.2.3, Figure 9-4): type 9 (available), present.
    let tss_low = (limit & 0xFFFF)
        | ((tss & 0xFF_FFFF) << 16)
        | (0x89 << 40)
        | (((limit >> 16) & 0xF) << 48)
        | (((tss >> 24) & 0xFF) << 56);
    let tss_high = tss >> 32;
    let entries = [
        0,
        0x00CF_9A00_0000_FFFF, // 0x08: 32-bit code
        0x00CF_9200_0000_FFFF, // 0x10: data
        0x00AF_9A00_0000_FFFF, // 0x18: 64-bit code
        tss_low,               // 0x20: TSS
        tss_high,
    ];
    // SAFETY: nothing uses the tables before LGDT below.
    unsafe { (*TABLES.0.get()).0 = entries };
    let (base, limit) = gdt();
    let pointer = DescriptorPointer { limit, base };
    // SAFETY: the new GDT has the boot GDT's code and data descriptors at the same selectors,
    // so the loaded segments stay valid; LTR loads a present, available TSS descriptor.
    unsafe {
        core::arch::asm!("lgdt [{}]", in(reg) &pointer, options(readonly, nostack));
        core::arch::asm!("ltr {0:x}", in(reg) TSS, options(nostack));
    }
}
