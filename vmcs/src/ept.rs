//! The EPT pointer, built from what the processor reports (`reference-gaps.md` item 11: the
//! reference always used write-back, 4 levels and A/D flags without asking).
//!
//! EPTP format (SDM Vol. 3C, Section 25.6.11, Table 25-9):
//!
//! | bits | meaning |
//! |---|---|
//! | 2:0 | memory type of the EPT paging structures: 0 UC, 6 WB (IA32_VMX_EPT_VPID_CAP bits 8 and 14) |
//! | 5:3 | page-walk length − 1: 3 for 4 levels (cap bit 6), 4 for 5 levels (cap bit 7) |
//! | 6 | enable accessed and dirty flags (cap bit 21) |
//! | 7 | enforce access rights for supervisor shadow-stack pages (cap bit 23) |
//! | 11:8 | reserved (0) |
//! | N−1:12 | physical address of the EPT PML4 (or PML5) table; N = physical-address width |
//! | 63:N | reserved (0) |

use core::fmt;

use crate::caps::EptVpidCapabilities;

/// Memory type for the EPT paging structures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EptMemoryType {
    /// Uncacheable (0).
    Uncacheable,
    /// Write-back (6).
    WriteBack,
}

/// What the VMM wants of its EPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EptOptions {
    /// Memory type of the paging structures; `None`: write-back if supported, else uncacheable.
    pub memory_type: Option<EptMemoryType>,
    /// Use 5-level EPT (else 4-level).
    pub five_levels: bool,
    /// Enable accessed/dirty flags.
    pub accessed_dirty: bool,
    /// Enforce supervisor shadow-stack access rights.
    pub supervisor_shadow_stack: bool,
}

impl Default for EptOptions {
    /// 4 levels, the best memory type, no A/D flags, no shadow-stack control.
    fn default() -> Self {
        Self {
            memory_type: None,
            five_levels: false,
            accessed_dirty: false,
            supervisor_shadow_stack: false,
        }
    }
}

/// Why an EPT pointer cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EptError {
    /// The processor reports no EPT capabilities (IA32_VMX_EPT_VPID_CAP absent).
    NoEpt,
    /// The requested page-walk length is not supported.
    WalkLength(u8),
    /// The requested memory type is not supported (or none is).
    MemoryType,
    /// Accessed/dirty flags are not supported.
    AccessedDirty,
    /// Supervisor shadow-stack control is not supported.
    SupervisorShadowStack,
    /// The table address is not 4-KiB aligned or exceeds the physical-address width.
    Address(u64),
}

impl fmt::Display for EptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoEpt => f.write_str("the processor reports no EPT capabilities"),
            Self::WalkLength(n) => write!(f, "{n}-level EPT is not supported"),
            Self::MemoryType => f.write_str("the memory type for EPT paging structures is not supported"),
            Self::AccessedDirty => f.write_str("EPT accessed and dirty flags are not supported"),
            Self::SupervisorShadowStack => {
                f.write_str("EPT supervisor shadow-stack control is not supported")
            }
            Self::Address(a) => write!(
                f,
                "EPT table address {a:#x} is unaligned or beyond the physical-address width"
            ),
        }
    }
}

impl core::error::Error for EptError {}

/// Builds an EPT pointer for the table at `table` (physical), checking every choice against
/// `caps` (IA32_VMX_EPT_VPID_CAP, decoded) and the physical-address width `maxphyaddr`
/// (CPUID.80000008H:EAX[7:0]).
///
/// # Errors
/// See [`EptError`].
pub fn ept_pointer(
    caps: Option<EptVpidCapabilities>,
    maxphyaddr: u8,
    table: u64,
    options: EptOptions,
) -> Result<u64, EptError> {
    let caps = caps.ok_or(EptError::NoEpt)?;
    let levels = if options.five_levels { 5 } else { 4 };
    let walk_ok = if options.five_levels {
        caps.page_walk_length_5
    } else {
        caps.page_walk_length_4
    };
    if !walk_ok {
        return Err(EptError::WalkLength(levels));
    }
    let memory_type = match options.memory_type {
        Some(EptMemoryType::WriteBack) if caps.memory_type_wb => 6,
        Some(EptMemoryType::Uncacheable) if caps.memory_type_uc => 0,
        Some(_) => return Err(EptError::MemoryType),
        None if caps.memory_type_wb => 6,
        None if caps.memory_type_uc => 0,
        None => return Err(EptError::MemoryType),
    };
    if options.accessed_dirty && !caps.accessed_dirty_flags {
        return Err(EptError::AccessedDirty);
    }
    if options.supervisor_shadow_stack && !caps.supervisor_shadow_stack {
        return Err(EptError::SupervisorShadowStack);
    }
    let width = u32::from(maxphyaddr.clamp(12, 52));
    if table & 0xFFF != 0 || table >> width != 0 {
        return Err(EptError::Address(table));
    }
    Ok(table
        | memory_type
        | (u64::from(levels - 1) << 3)
        | (u64::from(options.accessed_dirty) << 6)
        | (u64::from(options.supervisor_shadow_stack) << 7))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::profiles::bochs_corei7_skylake_x;

    fn skylake() -> Option<EptVpidCapabilities> {
        bochs_corei7_skylake_x().ept_vpid()
    }

    #[test]
    fn write_back_four_levels_by_default() {
        // skylake_x EPT_VPID_CAP 0x00000f0106334141: WB (bit 14), 4-level (bit 6), A/D (bit 21).
        assert_eq!(
            ept_pointer(skylake(), 39, 0x1000, EptOptions::default()),
            Ok(0x1000 | 6 | (3 << 3))
        );
        let ad = EptOptions {
            accessed_dirty: true,
            ..EptOptions::default()
        };
        assert_eq!(
            ept_pointer(skylake(), 39, 0x5000, ad),
            Ok(0x5000 | 6 | (3 << 3) | (1 << 6))
        );
    }

    /// `reference-gaps.md` item 11: what the processor lacks is refused, not assumed.
    #[test]
    fn refuses_what_the_processor_does_not_report() {
        let mut caps = skylake().unwrap();
        caps.accessed_dirty_flags = false;
        let ad = EptOptions {
            accessed_dirty: true,
            ..EptOptions::default()
        };
        assert_eq!(
            ept_pointer(Some(caps), 39, 0x1000, ad),
            Err(EptError::AccessedDirty)
        );
        caps.memory_type_wb = false;
        caps.memory_type_uc = true;
        assert_eq!(
            ept_pointer(Some(caps), 39, 0x1000, EptOptions::default()),
            Ok(0x1000 | (3 << 3)),
            "falls back to UC"
        );
        let wb = EptOptions {
            memory_type: Some(EptMemoryType::WriteBack),
            ..EptOptions::default()
        };
        assert_eq!(ept_pointer(Some(caps), 39, 0x1000, wb), Err(EptError::MemoryType));
        let five = EptOptions {
            five_levels: true,
            ..EptOptions::default()
        };
        assert_eq!(
            ept_pointer(skylake(), 39, 0x1000, five),
            Err(EptError::WalkLength(5))
        );
        assert_eq!(
            ept_pointer(None, 39, 0x1000, EptOptions::default()),
            Err(EptError::NoEpt)
        );
        assert_eq!(
            ept_pointer(skylake(), 39, 0x1001, EptOptions::default()),
            Err(EptError::Address(0x1001))
        );
        assert_eq!(
            ept_pointer(skylake(), 39, 1 << 40, EptOptions::default()),
            Err(EptError::Address(1 << 40))
        );
    }
}
