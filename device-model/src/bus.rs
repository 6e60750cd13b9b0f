//! The bus: port and MMIO ranges, each served by one device. Overlapping ranges are refused.
//!
//! A device sees offsets from the start of its range; the bus does the arithmetic. Ranges
//! are kept sorted, so lookups are a binary search.

use core::fmt;

/// A device on the I/O-port bus.
///
/// Devices are deterministic state machines; [`PortDevice::save`] / [`PortDevice::load`]
/// capture that state so a device model can be recreated exactly (after its process died).
pub trait PortDevice {
    /// An IN of `size` bytes (1, 2 or 4) at `offset` from the device's base port.
    fn read(&mut self, offset: u16, size: u8) -> u32;
    /// An OUT of `size` bytes at `offset`; `value` holds the low `size` bytes.
    fn write(&mut self, offset: u16, size: u8, value: u32);
    /// Writes the device's state into `out`; returns its length, `None` if it does not fit.
    /// Stateless devices keep the default (no state).
    fn save(&self, _out: &mut [u8]) -> Option<usize> {
        Some(0)
    }
    /// Takes on a state written by [`PortDevice::save`]; `false` if it is not one.
    fn load(&mut self, state: &[u8]) -> bool {
        state.is_empty()
    }
}

/// A device on the MMIO bus (see [`PortDevice`] for state).
pub trait MmioDevice {
    /// A read of `size` bytes (1, 2, 4 or 8) at `offset` from the device's base address.
    fn read(&mut self, offset: u64, size: u8) -> u64;
    /// A write of `size` bytes at `offset`.
    fn write(&mut self, offset: u64, size: u8, value: u64);
    /// Writes the device's state into `out`; returns its length, `None` if it does not fit.
    fn save(&self, _out: &mut [u8]) -> Option<usize> {
        Some(0)
    }
    /// Takes on a state written by [`MmioDevice::save`]; `false` if it is not one.
    fn load(&mut self, state: &[u8]) -> bool {
        state.is_empty()
    }
}

/// Encodes a device's state (postcard) for [`PortDevice::save`].
pub fn save_state<T: serde::Serialize>(state: &T, out: &mut [u8]) -> Option<usize> {
    postcard::to_slice(state, out).ok().map(|b| b.len())
}

/// Decodes a device's state for [`PortDevice::load`].
pub fn load_state<T: serde::de::DeserializeOwned>(state: &[u8]) -> Option<T> {
    postcard::from_bytes(state).ok()
}

/// Why a range could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusError {
    /// The range is empty or wraps around the address space.
    InvalidRange {
        /// First address.
        base: u64,
        /// Length.
        len: u64,
    },
    /// The range overlaps one already on the bus.
    Overlap {
        /// The new range's base.
        base: u64,
        /// The base of the range it overlaps.
        existing: u64,
    },
    /// The bus is full.
    Full,
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRange { base, len } => write!(f, "invalid range {base:#x}+{len:#x}"),
            Self::Overlap { base, existing } => {
                write!(f, "range at {base:#x} overlaps the range at {existing:#x}")
            }
            Self::Full => f.write_str("bus full"),
        }
    }
}

impl core::error::Error for BusError {}

/// Sorted, non-overlapping ranges with one device reference each.
struct Ranges<R, const N: usize> {
    entries: heapless::Vec<(u64, u64, R), N>,
}

impl<R, const N: usize> Ranges<R, N> {
    const fn new() -> Self {
        Self {
            entries: heapless::Vec::new(),
        }
    }

    fn insert(&mut self, base: u64, len: u64, device: R) -> Result<(), BusError> {
        let end = base
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or(BusError::InvalidRange { base, len })?;
        let at = self.entries.partition_point(|(b, _, _)| *b < base);
        if let Some((prev_base, prev_len, _)) = at.checked_sub(1).and_then(|i| self.entries.get(i)) {
            if prev_base + prev_len > base {
                return Err(BusError::Overlap {
                    base,
                    existing: *prev_base,
                });
            }
        }
        if let Some((next_base, _, _)) = self.entries.get(at) {
            if *next_base < end {
                return Err(BusError::Overlap {
                    base,
                    existing: *next_base,
                });
            }
        }
        self.entries
            .insert(at, (base, len, device))
            .map_err(|_| BusError::Full)
    }

    fn iter(&self) -> impl Iterator<Item = (u64, &R)> {
        self.entries.iter().map(|(base, _, device)| (*base, device))
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut R)> {
        self.entries.iter_mut().map(|(base, _, device)| (*base, device))
    }

    fn find(&mut self, address: u64) -> Option<(u64, &mut R)> {
        let at = self.entries.partition_point(|(b, _, _)| *b <= address);
        let (base, len, device) = self.entries.get_mut(at.checked_sub(1)?)?;
        (address - *base < *len).then_some((address - *base, device))
    }
}

/// The I/O-port bus: up to `N` devices.
pub struct PortBus<'d, const N: usize = 16> {
    ranges: Ranges<&'d mut dyn PortDevice, N>,
}

impl<const N: usize> fmt::Debug for PortBus<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (base, len, _) in &self.ranges.entries {
            list.entry(&format_args!("{base:#x}+{len:#x}"));
        }
        list.finish()
    }
}

impl<'d, const N: usize> Default for PortBus<'d, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'d, const N: usize> PortBus<'d, N> {
    /// An empty bus.
    pub const fn new() -> Self {
        Self {
            ranges: Ranges::new(),
        }
    }

    /// Puts `device` at ports `base..base + len`.
    ///
    /// # Errors
    /// Empty or wrapping range, overlap with a device already there, or a full bus.
    pub fn insert(&mut self, base: u16, len: u16, device: &'d mut dyn PortDevice) -> Result<(), BusError> {
        if u32::from(base) + u32::from(len) > 0x1_0000 {
            return Err(BusError::InvalidRange {
                base: base.into(),
                len: len.into(),
            });
        }
        self.ranges.insert(base.into(), len.into(), device)
    }

    /// Every device with its base port, in port order.
    pub fn devices(&self) -> impl Iterator<Item = (u16, &(dyn PortDevice + 'd))> {
        self.ranges.iter().map(|(base, d)| (base as u16, &**d))
    }

    /// Every device, mutable, in port order.
    pub fn devices_mut(&mut self) -> impl Iterator<Item = (u16, &mut (dyn PortDevice + 'd))> {
        self.ranges.iter_mut().map(|(base, d)| (base as u16, &mut **d))
    }

    /// The device serving `port` and the offset within its range.
    pub fn find(&mut self, port: u16) -> Option<(u16, &mut (dyn PortDevice + 'd))> {
        self.ranges
            .find(port.into())
            .map(|(offset, device)| (offset as u16, &mut **device))
    }
}

/// The MMIO bus: up to `N` devices.
pub struct MmioBus<'d, const N: usize = 16> {
    ranges: Ranges<&'d mut dyn MmioDevice, N>,
}

impl<const N: usize> fmt::Debug for MmioBus<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (base, len, _) in &self.ranges.entries {
            list.entry(&format_args!("{base:#x}+{len:#x}"));
        }
        list.finish()
    }
}

impl<'d, const N: usize> Default for MmioBus<'d, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'d, const N: usize> MmioBus<'d, N> {
    /// An empty bus.
    pub const fn new() -> Self {
        Self {
            ranges: Ranges::new(),
        }
    }

    /// Puts `device` at guest-physical addresses `base..base + len`.
    ///
    /// # Errors
    /// Empty or wrapping range, overlap, or a full bus.
    pub fn insert(&mut self, base: u64, len: u64, device: &'d mut dyn MmioDevice) -> Result<(), BusError> {
        self.ranges.insert(base, len, device)
    }

    /// Every device with its base address, in address order.
    pub fn devices(&self) -> impl Iterator<Item = (u64, &(dyn MmioDevice + 'd))> {
        self.ranges.iter().map(|(base, d)| (base, &**d))
    }

    /// Every device, mutable, in address order.
    pub fn devices_mut(&mut self) -> impl Iterator<Item = (u64, &mut (dyn MmioDevice + 'd))> {
        self.ranges.iter_mut().map(|(base, d)| (base, &mut **d))
    }

    /// The device serving `address` and the offset within its range.
    pub fn find(&mut self, address: u64) -> Option<(u64, &mut (dyn MmioDevice + 'd))> {
        self.ranges
            .find(address)
            .map(|(offset, device)| (offset, &mut **device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Latch {
        last: Option<(u16, u8, u32)>,
    }

    impl PortDevice for Latch {
        fn read(&mut self, offset: u16, _size: u8) -> u32 {
            u32::from(offset) + 0x100
        }
        fn write(&mut self, offset: u16, size: u8, value: u32) {
            self.last = Some((offset, size, value));
        }
    }

    #[test]
    fn routes_by_range_with_offsets() {
        let (mut a, mut b) = (Latch::default(), Latch::default());
        {
            let mut bus: PortBus<4> = PortBus::new();
            bus.insert(0x3F8, 8, &mut a).unwrap();
            bus.insert(0x80, 1, &mut b).unwrap();
            let (offset, dev) = bus.find(0x3FD).unwrap();
            assert_eq!(offset, 5);
            assert_eq!(dev.read(offset, 1), 0x105);
            bus.find(0x3F8).unwrap().1.write(0, 1, b'H'.into());
            bus.find(0x80).unwrap().1.write(0, 1, 0x42);
            assert!(bus.find(0x400).is_none());
            assert!(bus.find(0x3F7).is_none());
            assert!(bus.find(0x81).is_none());
        }
        assert_eq!(a.last, Some((0, 1, u32::from(b'H'))));
        assert_eq!(b.last, Some((0, 1, 0x42)));
    }

    #[test]
    fn rejects_overlaps_and_bad_ranges() {
        let (mut a, mut b, mut c, mut d) = (
            Latch::default(),
            Latch::default(),
            Latch::default(),
            Latch::default(),
        );
        let (mut e, mut f, mut g) = (Latch::default(), Latch::default(), Latch::default());
        let mut bus: PortBus<2> = PortBus::new();
        bus.insert(0x3F8, 8, &mut a).unwrap();
        assert_eq!(
            bus.insert(0x3FF, 1, &mut b),
            Err(BusError::Overlap {
                base: 0x3FF,
                existing: 0x3F8
            })
        );
        assert_eq!(
            bus.insert(0x3F0, 9, &mut c),
            Err(BusError::Overlap {
                base: 0x3F0,
                existing: 0x3F8
            })
        );
        assert!(matches!(
            bus.insert(0xFFFF, 2, &mut d),
            Err(BusError::InvalidRange { .. })
        ));
        assert!(matches!(
            bus.insert(0x10, 0, &mut e),
            Err(BusError::InvalidRange { .. })
        ));
        bus.insert(0x3F0, 8, &mut f).unwrap();
        assert_eq!(bus.insert(0x500, 1, &mut g), Err(BusError::Full));
    }
}
