//! The I/O bitmaps and the MSR bitmap: which port and MSR accesses exit.
//!
//! - I/O bitmaps A and B (SDM Vol. 3C, Section 25.6.4): 4 KiB each, one bit per port; A covers
//!   ports 0000H–7FFFH, B covers 8000H–FFFFH. With "use I/O bitmaps", an access exits if the
//!   bit of any port it touches is 1 (Section 26.1.3). `reference-gaps.md`, nearby: the
//!   reference's setter indexed only the first KiB and panicked above port 0x1FFF.
//! - The MSR bitmap (Section 25.6.9): 4 KiB: read bitmap for low MSRs (0–1FFFH) at offset 0,
//!   read for high MSRs (C0000000H–C0001FFFH) at 1024, write low at 2048, write high at 3072.
//!   MSRs outside both ranges always exit.

/// The two I/O bitmaps, as the processor reads them.
#[derive(Clone)]
pub struct IoBitmaps {
    /// Bitmap A (ports 0000H–7FFFH), to place at the "I/O bitmap A" address.
    pub a: [u8; 4096],
    /// Bitmap B (ports 8000H–FFFFH).
    pub b: [u8; 4096],
}

impl core::fmt::Debug for IoBitmaps {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let exiting = (0..=u16::MAX).filter(|&p| self.exits(p)).count();
        f.debug_struct("IoBitmaps")
            .field("exiting_ports", &exiting)
            .finish()
    }
}

impl IoBitmaps {
    /// Every port exits.
    pub const fn all_exit() -> Self {
        Self {
            a: [0xFF; 4096],
            b: [0xFF; 4096],
        }
    }

    /// No port exits.
    pub const fn none_exit() -> Self {
        Self {
            a: [0; 4096],
            b: [0; 4096],
        }
    }

    fn slot(&mut self, port: u16) -> (&mut u8, u8) {
        let index = usize::from(port & 0x7FFF);
        let map = if port & 0x8000 == 0 {
            &mut self.a
        } else {
            &mut self.b
        };
        (&mut map[index / 8], 1 << (index % 8))
    }

    /// Makes accesses to `ports` exit (`true`) or not.
    pub fn set(&mut self, ports: core::ops::RangeInclusive<u16>, exit: bool) {
        for port in ports {
            let (byte, bit) = self.slot(port);
            if exit { *byte |= bit } else { *byte &= !bit }
        }
    }

    /// Whether an access to `port` exits.
    pub fn exits(&self, port: u16) -> bool {
        let index = usize::from(port & 0x7FFF);
        let map = if port & 0x8000 == 0 { &self.a } else { &self.b };
        map[index / 8] & (1 << (index % 8)) != 0
    }

    /// Whether an access of `size` bytes at `port` exits: any byte's bit set, or a wrap past
    /// FFFFH (Section 26.1.3: such an access always exits).
    pub fn access_exits(&self, port: u16, size: u8) -> bool {
        (0..u32::from(size.max(1))).any(|i| {
            let p = u32::from(port) + i;
            p > 0xFFFF || self.exits(p as u16)
        })
    }
}

/// Direction of an MSR access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsrAccess {
    /// RDMSR.
    Read,
    /// WRMSR.
    Write,
}

/// The MSR bitmap.
#[derive(Clone)]
pub struct MsrBitmap(pub [u8; 4096]);

impl core::fmt::Debug for MsrBitmap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let ones: u32 = self.0.iter().map(|b| b.count_ones()).sum();
        f.debug_struct("MsrBitmap").field("exiting_bits", &ones).finish()
    }
}

impl MsrBitmap {
    /// Every covered MSR access exits.
    pub const fn all_exit() -> Self {
        Self([0xFF; 4096])
    }

    /// No covered MSR access exits.
    pub const fn none_exit() -> Self {
        Self([0; 4096])
    }

    /// Byte offset and bit of `msr`'s bit for `access`; `None` for MSRs the bitmap does not
    /// cover (they always exit).
    fn position(msr: u32, access: MsrAccess) -> Option<(usize, u8)> {
        let (base, index) = match msr {
            0..=0x1FFF => (0, msr),
            0xC000_0000..=0xC000_1FFF => (1024, msr - 0xC000_0000),
            _ => return None,
        };
        let base = base + if access == MsrAccess::Write { 2048 } else { 0 };
        Some((base + index as usize / 8, 1 << (index % 8)))
    }

    /// Makes `access` to `msr` exit or not. Returns `false` (and changes nothing) for MSRs the
    /// bitmap does not cover.
    pub fn set(&mut self, msr: u32, access: MsrAccess, exit: bool) -> bool {
        match Self::position(msr, access) {
            Some((byte, bit)) => {
                if exit {
                    self.0[byte] |= bit
                } else {
                    self.0[byte] &= !bit
                }
                true
            }
            None => false,
        }
    }

    /// Whether `access` to `msr` exits.
    pub fn exits(&self, msr: u32, access: MsrAccess) -> bool {
        Self::position(msr, access).is_none_or(|(byte, bit)| self.0[byte] & bit != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_port_has_its_bit() {
        let mut io = IoBitmaps::none_exit();
        io.set(0x3F8..=0x3FF, true);
        io.set(0xFFFF..=0xFFFF, true);
        io.set(0x2000..=0x2000, true); // beyond the first KiB: the reference panicked here
        io.set(0xA000..=0xA000, true);
        for port in [0x3F8, 0x3FF, 0xFFFF, 0x2000, 0xA000] {
            assert!(io.exits(port), "{port:#x}");
        }
        assert!(!io.exits(0x3F7) && !io.exits(0x400) && !io.exits(0x7FFF) && !io.exits(0x8000));
        assert_eq!(io.b[0xFFFF_usize.wrapping_sub(0x8000) / 8], 0x80);
        io.set(0x3FA..=0x3FA, false);
        assert!(!io.exits(0x3FA));
        assert!(io.access_exits(0x3F6, 4), "a dword at 0x3F6 touches 0x3F8");
        assert!(!io.access_exits(0x3F4, 4));
        let mut none = IoBitmaps::none_exit();
        none.set(0..=0, false);
        assert!(none.access_exits(0xFFFE, 4), "wraps past 0xFFFF");
    }

    #[test]
    fn msr_ranges_and_directions() {
        let mut msrs = MsrBitmap::none_exit();
        assert!(msrs.set(0x1B, MsrAccess::Write, true));
        assert!(msrs.set(0xC000_0080, MsrAccess::Read, true));
        assert!(!msrs.set(0x4000_0000, MsrAccess::Read, true), "not covered");
        assert!(msrs.exits(0x1B, MsrAccess::Write) && !msrs.exits(0x1B, MsrAccess::Read));
        assert!(msrs.exits(0xC000_0080, MsrAccess::Read) && !msrs.exits(0xC000_0080, MsrAccess::Write));
        assert!(
            msrs.exits(0x4000_0000, MsrAccess::Read),
            "uncovered MSRs always exit"
        );
        assert_eq!(msrs.0[2048 + 0x1B / 8], 1 << (0x1B % 8));
        assert_eq!(msrs.0[1024 + 0x80 / 8], 1);
    }
}
