//! VMCS component encodings.
//!
//! Every VMCS field is named by a 32-bit encoding whose bits say its width, its type and
//! whether it is the FULL or HIGH half of a 64-bit field (Intel SDM Vol. 3C, Section 25.11.2,
//! Table 25-21 "Structure of VMCS Component Encoding"; order no. 326019-085, 2024):
//!
//! | bits  | meaning |
//! |-------|---------|
//! | 0     | access type: 0 = full, 1 = high (only for 64-bit fields) |
//! | 9:1   | index |
//! | 11:10 | type: 0 control, 1 VM-exit information (read-only), 2 guest state, 3 host state |
//! | 12    | reserved, must be 0 |
//! | 14:13 | width: 0 16-bit, 1 64-bit, 2 32-bit, 3 natural-width |
//! | 31:15 | reserved, must be 0 |

use core::fmt;

/// Width of a VMCS field (encoding bits 14:13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum FieldWidth {
    /// 16-bit field (width 0).
    Bits16,
    /// 64-bit field (width 1); has a FULL and a HIGH encoding.
    Bits64,
    /// 32-bit field (width 2).
    Bits32,
    /// Natural-width field (width 3): 64 bits on processors that support Intel 64, else 32.
    Natural,
}

impl FieldWidth {
    /// Decodes encoding bits 14:13.
    pub const fn from_bits(bits: u32) -> Self {
        match bits & 3 {
            0 => Self::Bits16,
            1 => Self::Bits64,
            2 => Self::Bits32,
            _ => Self::Natural,
        }
    }

    /// The value of encoding bits 14:13 for this width.
    pub const fn bits(self) -> u32 {
        match self {
            Self::Bits16 => 0,
            Self::Bits64 => 1,
            Self::Bits32 => 2,
            Self::Natural => 3,
        }
    }

    /// Mask of the bits a field of this width holds on a 64-bit processor.
    pub const fn mask(self) -> u64 {
        match self {
            Self::Bits16 => 0xFFFF,
            Self::Bits32 => 0xFFFF_FFFF,
            Self::Bits64 | Self::Natural => u64::MAX,
        }
    }

    /// Short name used in dumps and JSON: `16`, `32`, `64` or `natural`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Bits16 => "16",
            Self::Bits32 => "32",
            Self::Bits64 => "64",
            Self::Natural => "natural",
        }
    }
}

/// Type of a VMCS field (encoding bits 11:10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum FieldType {
    /// VM-execution, VM-exit and VM-entry control fields (type 0).
    Control,
    /// VM-exit information fields (type 1); read-only unless IA32_VMX_MISC bit 29 is set.
    ReadOnly,
    /// Guest-state fields (type 2).
    Guest,
    /// Host-state fields (type 3).
    Host,
}

impl FieldType {
    /// Decodes encoding bits 11:10.
    pub const fn from_bits(bits: u32) -> Self {
        match bits & 3 {
            0 => Self::Control,
            1 => Self::ReadOnly,
            2 => Self::Guest,
            _ => Self::Host,
        }
    }

    /// The value of encoding bits 11:10 for this type.
    pub const fn bits(self) -> u32 {
        match self {
            Self::Control => 0,
            Self::ReadOnly => 1,
            Self::Guest => 2,
            Self::Host => 3,
        }
    }

    /// Short name used in dumps and JSON: `control`, `read-only`, `guest` or `host`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Control => "control",
            Self::ReadOnly => "read-only",
            Self::Guest => "guest",
            Self::Host => "host",
        }
    }
}

/// Which half of a field an encoding addresses (encoding bit 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AccessType {
    /// The whole field (bit 0 = 0).
    Full,
    /// The upper 32 bits of a 64-bit field (bit 0 = 1).
    High,
}

/// A syntactically valid VMCS component encoding.
///
/// Valid means the reserved bits (31:15 and 12) are zero and the HIGH access type is used
/// only with the 64-bit width. Whether the SDM defines a field there is a separate question:
/// see [`crate::Field::from_encoding`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct FieldEncoding(u32);

/// Encoding bits that must be zero (31:15 and 12).
const RESERVED_BITS: u32 = 0xFFFF_8000 | (1 << 12);

impl FieldEncoding {
    /// Checks `raw` and wraps it; `None` if a reserved bit is set or a HIGH access is
    /// asked of a field that is not 64 bits wide.
    pub const fn new(raw: u32) -> Option<Self> {
        if raw & RESERVED_BITS != 0 {
            return None;
        }
        let encoding = Self(raw);
        if raw & 1 == 1 && !matches!(encoding.width(), FieldWidth::Bits64) {
            return None;
        }
        Some(encoding)
    }

    /// Wraps an encoding from the catalogue, which is checked at compile time.
    pub(crate) const fn from_catalogue(raw: u32) -> Self {
        Self(raw)
    }

    /// Builds the FULL encoding from its parts. `index` is truncated to 9 bits.
    pub const fn from_parts(width: FieldWidth, field_type: FieldType, index: u16) -> Self {
        Self((width.bits() << 13) | (field_type.bits() << 10) | (((index as u32) & 0x1FF) << 1))
    }

    /// The raw 32-bit encoding, as VMREAD/VMWRITE take it.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The field's width.
    pub const fn width(self) -> FieldWidth {
        FieldWidth::from_bits(self.0 >> 13)
    }

    /// The field's type.
    pub const fn field_type(self) -> FieldType {
        FieldType::from_bits(self.0 >> 10)
    }

    /// FULL or HIGH.
    pub const fn access_type(self) -> AccessType {
        if self.0 & 1 == 1 {
            AccessType::High
        } else {
            AccessType::Full
        }
    }

    /// The 9-bit index (bits 9:1). IA32_VMX_VMCS_ENUM reports the highest index in use.
    pub const fn index(self) -> u16 {
        ((self.0 >> 1) & 0x1FF) as u16
    }

    /// The FULL encoding of the same field.
    pub const fn full(self) -> Self {
        Self(self.0 & !1)
    }

    /// The HIGH encoding of the same field, if it is 64 bits wide.
    pub const fn high(self) -> Option<Self> {
        if matches!(self.width(), FieldWidth::Bits64) {
            Some(Self(self.0 | 1))
        } else {
            None
        }
    }
}

impl fmt::Debug for FieldEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldEncoding({:#06x})", self.0)
    }
}

impl fmt::Display for FieldEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_parts_of_known_encodings() {
        // Guest CS selector: 16-bit guest, index 1.
        let cs = FieldEncoding::new(0x0802).unwrap();
        assert_eq!(cs.width(), FieldWidth::Bits16);
        assert_eq!(cs.field_type(), FieldType::Guest);
        assert_eq!(cs.index(), 1);
        assert_eq!(cs.access_type(), AccessType::Full);
        // TSC offset HIGH: 64-bit control, index 8.
        let tsc_high = FieldEncoding::new(0x2011).unwrap();
        assert_eq!(tsc_high.width(), FieldWidth::Bits64);
        assert_eq!(tsc_high.access_type(), AccessType::High);
        assert_eq!(tsc_high.full().raw(), 0x2010);
        assert_eq!(tsc_high.index(), 8);
        // Exit qualification: natural-width read-only.
        let qual = FieldEncoding::new(0x6400).unwrap();
        assert_eq!(qual.width(), FieldWidth::Natural);
        assert_eq!(qual.field_type(), FieldType::ReadOnly);
        assert_eq!(
            FieldEncoding::from_parts(FieldWidth::Bits64, FieldType::Control, 8),
            FieldEncoding::new(0x2010).unwrap()
        );
    }

    #[test]
    fn rejects_reserved_bits_and_high_of_narrow_fields() {
        assert!(FieldEncoding::new(0x1000).is_none(), "bit 12 is reserved");
        assert!(FieldEncoding::new(0x8000).is_none(), "bit 15 is reserved");
        assert!(
            FieldEncoding::new(0x4001).is_none(),
            "a 32-bit field has no HIGH half"
        );
        assert!(
            FieldEncoding::new(0x0801).is_none(),
            "a 16-bit field has no HIGH half"
        );
        assert!(
            FieldEncoding::new(0x6401).is_none(),
            "a natural-width field has no HIGH half"
        );
        assert!(FieldEncoding::new(0x2001).is_some());
        assert_eq!(FieldEncoding::new(0x4000).unwrap().high(), None);
    }

    #[test]
    fn parts_round_trip_for_every_valid_encoding() {
        for raw in 0..0x8000u32 {
            if let Some(e) = FieldEncoding::new(raw) {
                let rebuilt = FieldEncoding::from_parts(e.width(), e.field_type(), e.index());
                assert_eq!(rebuilt, e.full());
            }
        }
    }
}
