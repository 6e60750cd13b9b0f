//! `soft`: an in-memory VMCS with the semantics of VMREAD/VMWRITE.
//!
//! It behaves as the instructions do when a current VMCS is loaded (SDM Vol. 3C, Section 31.3,
//! "VMREAD" and "VMWRITE"):
//! - an encoding the processor does not support fails with VM-instruction error 12
//!   (reserved bits set, HIGH of a narrow field, undefined in the SDM, or not supported by
//!   the [`SoftProfile`]);
//! - a write to a VM-exit information field fails with error 13 unless IA32_VMX_MISC bit 29
//!   says VMWRITE may write them (Appendix A.6);
//! - values are truncated to the field's width; the HIGH encoding of a 64-bit field reads and
//!   writes its upper 32 bits only;
//! - a failure (VMfailValid) stores its error number in the VM-instruction error field, as
//!   the instructions do (Section 31.2, "VMfailValid(ErrorNumber)");
//! - a field never written reads 0.
//!
//! Tests and the model VCPU use it wherever hardware is not available. Its agreement with a
//! real VMX implementation is what the oracle tier checks.

use crate::access::{VmInstructionError, VmcsAccess, VmcsError};
use crate::caps::VmxCapabilities;
use crate::catalogue::{FIELDS, Field, FieldAccess, VmcsReadOnly32};
use crate::encoding::{AccessType, FieldEncoding, FieldWidth};
use crate::support::FieldSet;

/// Which fields a simulated processor supports and how VMWRITE treats read-only fields.
#[derive(Clone, Copy, Debug)]
pub struct SoftProfile {
    /// IA32_VMX_MISC bit 29: VMWRITE may write VM-exit information fields.
    pub writable_exit_info: bool,
    /// Highest field index supported (IA32_VMX_VMCS_ENUM bits 9:1); fields with a larger index
    /// fail with error 12.
    pub max_index: u16,
    /// Further restriction: a field is supported only if this returns true.
    pub supports: fn(Field) -> bool,
    /// The fields the processor has (all, unless built from capabilities).
    pub fields: FieldSet,
}

impl SoftProfile {
    /// Every catalogue field supported; read-only fields not writable.
    pub const fn all_fields() -> Self {
        Self {
            writable_exit_info: false,
            max_index: 0x1FF,
            supports: |_| true,
            fields: FieldSet::all(),
        }
    }

    /// A profile from raw IA32_VMX_MISC and IA32_VMX_VMCS_ENUM values.
    pub const fn from_msrs(vmx_misc: u64, vmcs_enum: u64) -> Self {
        Self {
            writable_exit_info: vmx_misc & (1 << 29) != 0,
            max_index: ((vmcs_enum >> 1) & 0x1FF) as u16,
            supports: |_| true,
            fields: FieldSet::all(),
        }
    }

    /// The profile of the processor these capability MSRs describe: IA32_VMX_MISC bit 29,
    /// the IA32_VMX_VMCS_ENUM index limit, and only the fields whose controls the processor
    /// supports ([`VmxCapabilities::supports_field`]; SDM Vol. 3D, Appendix B notes). An
    /// absent IA32_VMX_MISC reads as 0, an absent IA32_VMX_VMCS_ENUM as no limit.
    pub fn from_capabilities(caps: &VmxCapabilities) -> Self {
        Self {
            writable_exit_info: caps.vmx_misc_allows_vmwrite_to_exit_info(),
            max_index: caps.vmcs_enum_max_index().unwrap_or(0x1FF),
            supports: |_| true,
            fields: caps.supported_fields(),
        }
    }

    /// Whether `field` is supported.
    #[inline]
    pub fn supports(&self, field: Field) -> bool {
        field.encoding().index() <= self.max_index && self.fields.contains(field) && (self.supports)(field)
    }
}

impl Default for SoftProfile {
    fn default() -> Self {
        Self::all_fields()
    }
}

/// An in-memory VMCS. See the module documentation for its semantics.
#[derive(Clone, Debug)]
pub struct SoftVmcs {
    profile: SoftProfile,
    values: [u64; FIELDS.len()],
}

impl SoftVmcs {
    /// A VMCS with every field 0.
    pub const fn new(profile: SoftProfile) -> Self {
        Self {
            profile,
            values: [0; FIELDS.len()],
        }
    }

    /// The profile in use.
    pub fn profile(&self) -> &SoftProfile {
        &self.profile
    }

    /// Sets a field as the processor would on a VM exit, bypassing VMWRITE's read-only
    /// check (for tests and models that play the processor's part). Truncates to the width.
    #[inline]
    pub fn set(&mut self, field: impl Into<Field>, value: u64) {
        let field = field.into();
        self.values[field.position()] = value & field.width().mask();
    }

    /// The stored value of a field, regardless of support.
    #[inline]
    pub fn get(&self, field: impl Into<Field>) -> u64 {
        self.values[field.into().position()]
    }

    /// Records a VMfailValid in the VM-instruction error field, as the processor does (SDM
    /// Vol. 3C, Section 31.2) whether or not that field is otherwise writable.
    #[inline]
    fn fail<T>(&mut self, error: VmcsError) -> Result<T, VmcsError> {
        if let VmcsError::VmFailValid(e) = error {
            self.set(VmcsReadOnly32::VmInstructionError, u64::from(e.number()));
        }
        Err(error)
    }

    /// Checks an encoding as VMREAD/VMWRITE do; returns the field and the half addressed.
    #[inline]
    fn resolve(&self, raw: u32) -> Result<(Field, AccessType), VmcsError> {
        const UNSUPPORTED: VmcsError = VmcsError::VmFailValid(VmInstructionError::UnsupportedComponent);
        let encoding = FieldEncoding::new(raw).ok_or(UNSUPPORTED)?;
        let field = Field::from_encoding(encoding.full().raw()).ok_or(UNSUPPORTED)?;
        if !self.profile.supports(field) {
            return Err(UNSUPPORTED);
        }
        Ok((field, encoding.access_type()))
    }
}

impl Default for SoftVmcs {
    fn default() -> Self {
        Self::new(SoftProfile::default())
    }
}

impl VmcsAccess for SoftVmcs {
    fn read(&mut self, encoding: u32) -> Result<u64, VmcsError> {
        let (field, half) = match self.resolve(encoding) {
            Ok(resolved) => resolved,
            Err(e) => return self.fail(e),
        };
        let value = self.values[field.position()];
        Ok(match half {
            AccessType::Full => value,
            AccessType::High => value >> 32,
        })
    }

    fn write(&mut self, encoding: u32, value: u64) -> Result<(), VmcsError> {
        let (field, half) = match self.resolve(encoding) {
            Ok(resolved) => resolved,
            Err(e) => return self.fail(e),
        };
        if field.access() == FieldAccess::ReadOnly && !self.profile.writable_exit_info {
            return self.fail(VmcsError::VmFailValid(VmInstructionError::WriteReadOnlyComponent));
        }
        let slot = &mut self.values[field.position()];
        *slot = match (half, field.width()) {
            (AccessType::High, _) => (*slot & 0xFFFF_FFFF) | (value << 32),
            (AccessType::Full, width @ (FieldWidth::Bits16 | FieldWidth::Bits32)) => value & width.mask(),
            (AccessType::Full, FieldWidth::Bits64 | FieldWidth::Natural) => value,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{VmcsControl64, VmcsGuest16, VmcsGuestNW};
    use proptest::prelude::*;

    const ERR12: VmcsError = VmcsError::VmFailValid(VmInstructionError::UnsupportedComponent);
    const ERR13: VmcsError = VmcsError::VmFailValid(VmInstructionError::WriteReadOnlyComponent);

    #[test]
    fn behaves_as_bochs_was_seen_to() {
        // notes/bochs-vmx.md, model corei7_skylake_x (MISC 0x600401e0 has bit 29 set).
        let mut vmcs = SoftVmcs::new(SoftProfile::from_msrs(0x6004_01e0, 0x34));
        assert_eq!(vmcs.read(0x6BFE), Err(ERR12));
        assert_eq!(vmcs.read(0x7FFF), Err(ERR12));
        assert_eq!(vmcs.write(0x2C7E, 1), Err(ERR12));
        // Read-only fields are writable on this model.
        assert_eq!(vmcs.write(0x4402, 30), Ok(()));
        assert_eq!(vmcs.write(0x6400, 0x03F8_0000), Ok(()));
        assert_eq!(VmcsReadOnly32::ExitReason.read(&mut vmcs), Ok(30));
        // A 16-bit selector keeps 16 bits.
        vmcs.write(0x0802, 0x12345).unwrap();
        assert_eq!(VmcsGuest16::CsSelector.read(&mut vmcs), Ok(0x2345));
        // The HIGH encoding of a 64-bit field writes only its upper half.
        vmcs.write(0x201A, 0x1111_2222_3333_4444).unwrap();
        vmcs.write(0x201B, 0xAAAA_BBBB).unwrap();
        assert_eq!(
            VmcsControl64::EptPointer.read(&mut vmcs),
            Ok(0xAAAA_BBBB_3333_4444)
        );
        assert_eq!(vmcs.read(0x201B), Ok(0xAAAA_BBBB));
    }

    #[test]
    fn read_only_fields_refuse_writes_without_misc_bit_29() {
        // penryn..ivy_bridge: IA32_VMX_MISC bit 29 clear.
        let mut vmcs = SoftVmcs::new(SoftProfile::from_msrs(0x0000_01e0, 0x34));
        assert_eq!(vmcs.write(0x4402, 1), Err(ERR13));
        assert_eq!(vmcs.write(0x6400, 1), Err(ERR13));
        assert_eq!(vmcs.write(0x2401, 1), Err(ERR13));
        vmcs.set(VmcsReadOnly32::ExitReason, 48);
        assert_eq!(vmcs.read(0x4402), Ok(48));
    }

    #[test]
    fn failures_leave_their_number_in_the_vm_instruction_error_field() {
        // Found by the oracle (Bochs, every model): VMREAD 0x4400 after a failed VMWRITE
        // reads the failure's number.
        let mut vmcs = SoftVmcs::new(SoftProfile::from_msrs(0x0000_01e0, 0x34));
        assert_eq!(VmcsReadOnly32::VmInstructionError.read(&mut vmcs), Ok(0));
        assert_eq!(vmcs.write(0x7FFF, 1), Err(ERR12));
        assert_eq!(VmcsReadOnly32::VmInstructionError.read(&mut vmcs), Ok(12));
        assert_eq!(vmcs.write(0x4402, 1), Err(ERR13));
        assert_eq!(VmcsReadOnly32::VmInstructionError.read(&mut vmcs), Ok(13));
        assert_eq!(vmcs.read(0x6BFE), Err(ERR12));
        assert_eq!(VmcsReadOnly32::VmInstructionError.read(&mut vmcs), Ok(12));
        // Successes leave it alone.
        VmcsGuestNW::Rip.write(&mut vmcs, 1).unwrap();
        assert_eq!(VmcsReadOnly32::VmInstructionError.read(&mut vmcs), Ok(12));
    }

    #[test]
    fn unwritten_fields_read_zero_and_index_limit_applies() {
        let mut vmcs = SoftVmcs::new(SoftProfile::from_msrs(0, 0x32)); // max index 0x19
        assert_eq!(VmcsGuestNW::Rip.read(&mut vmcs), Ok(0));
        // Tertiary controls (index 0x1A) are beyond this profile's highest index.
        assert_eq!(vmcs.read(0x2034), Err(ERR12));
        assert_eq!(vmcs.read(0x2032), Ok(0), "TSC multiplier has index 0x19");
        assert_eq!(vmcs.read(0x4826), Ok(0));
    }

    #[test]
    fn a_custom_support_predicate_restricts_fields() {
        let profile = SoftProfile {
            supports: |f| !matches!(f, Field::VmcsGuestNW(VmcsGuestNW::SCet)),
            ..SoftProfile::all_fields()
        };
        let mut vmcs = SoftVmcs::new(profile);
        assert_eq!(vmcs.read(0x6828), Err(ERR12));
        assert_eq!(vmcs.read(0x682A), Ok(0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any encoding and value: no panic, and the outcome follows the rules.
        #[test]
        fn any_access_follows_the_rules(raw in any::<u32>(), value in any::<u64>(), writable in any::<bool>()) {
            let profile = SoftProfile { writable_exit_info: writable, ..SoftProfile::all_fields() };
            let mut vmcs = SoftVmcs::new(profile);
            let defined = FieldEncoding::new(raw).and_then(|e| Field::from_encoding(e.full().raw()));
            let write = vmcs.write(raw, value);
            let read = vmcs.read(raw);
            match defined {
                None => {
                    prop_assert_eq!(write, Err(ERR12));
                    prop_assert_eq!(read, Err(ERR12));
                }
                Some(field) => {
                    if field.access() == FieldAccess::ReadOnly && !writable {
                        prop_assert_eq!(write, Err(ERR13));
                        // The failed write left its number in the VM-instruction error field.
                        let expected = if raw == VmcsReadOnly32::VmInstructionError as u32 { 13 } else { 0 };
                        prop_assert_eq!(read, Ok(expected));
                    } else {
                        prop_assert_eq!(write, Ok(()));
                        let expected = if raw & 1 == 1 { value & 0xFFFF_FFFF } else { value & field.width().mask() };
                        prop_assert_eq!(read, Ok(expected));
                    }
                }
            }
        }

        /// Near the defined encodings (where mistakes live), FULL and HIGH stay consistent.
        #[test]
        fn full_and_high_halves_compose(
            row in proptest::sample::select(
                FIELDS.iter().filter(|r| r.width == FieldWidth::Bits64 && r.access == FieldAccess::ReadWrite)
                    .collect::<std::vec::Vec<_>>(),
            ),
            low in any::<u32>(),
            high in any::<u32>(),
        ) {
            let mut vmcs = SoftVmcs::default();
            let full = row.encoding.raw();
            vmcs.write(full, u64::from(low)).unwrap();
            vmcs.write(full | 1, u64::from(high)).unwrap();
            prop_assert_eq!(vmcs.read(full), Ok((u64::from(high) << 32) | u64::from(low)));
            prop_assert_eq!(vmcs.read(full | 1), Ok(u64::from(high)));
        }
    }
}
