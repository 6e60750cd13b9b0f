//! Which VMCS fields a processor has, derived from its capability MSRs.
//!
//! Many fields exist only on processors that support the 1-setting of the control that uses
//! them: the notes of SDM Vol. 3D, Appendix B ("This field exists only on processors that
//! support the 1-setting of the 'enable VPID' VM-execution control", and so on), repeated in
//! the field descriptions of Vol. 3C, Chapter 25 (e.g. Section 25.6.11: "The EPTP exists only
//! on processors that support the 1-setting of the 'enable EPT' VM-execution control").
//! VMREAD and VMWRITE of a field the processor lacks fail with VM-instruction error 12, as for
//! an undefined encoding (Vol. 3C, Section 31.3).
//!
//! [`requirement`] states the rule for each catalogue field; [`VmxCapabilities::supports_field`]
//! applies it to capability MSR values; [`FieldSet`] holds the result for the `soft` backend
//! ([`crate::SoftProfile::from_capabilities`]).

use crate::caps::{ControlKind, VmxCapabilities};
use crate::catalogue::{
    FIELDS, Field, VmcsControl16, VmcsControl32, VmcsControl64, VmcsGuest16, VmcsGuest32, VmcsGuest64,
    VmcsGuestNW, VmcsHost64, VmcsHostNW, VmcsReadOnly64,
};

/// What a processor must support for a field to exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldRequirement {
    /// Every VMX processor has the field (no note in Appendix B).
    Always,
    /// The 1-setting of this bit of this control word must be allowed.
    Control(ControlKind, u32),
    /// The 1-setting of at least one of two controls must be allowed (a field that is loaded
    /// on VM entry or saved on VM exit, e.g. guest IA32_PAT).
    EitherControl((ControlKind, u32), (ControlKind, u32)),
    /// The 1-setting of "enable VM functions" and of this VM-function control must be allowed
    /// (IA32_VMX_VMFUNC, SDM Vol. 3D, Appendix A.11).
    VmFunction(u32),
}

use ControlKind::{Entry, Exit, Exit2, Pin, Primary, Secondary, Tertiary};

/// The rule for `field`, from the notes of SDM Vol. 3D, Appendix B (tables B-1 to B-15) and
/// the field descriptions of Vol. 3C, Sections 25.4–25.9. The FRED fields follow the FRED
/// specification (rev. 7.0, Section 9.3): guest FRED state is loaded by the "load FRED" VM-entry
/// control and saved by the "save FRED" secondary VM-exit control, host FRED state is loaded by
/// the "load FRED" secondary VM-exit control; the event-data fields serve FRED event delivery
/// ("load FRED"). The shared-EPT pointer (Intel TDX) has no capability bit in the SDM: only the
/// IA32_VMX_VMCS_ENUM index limit applies to it.
pub const fn requirement(field: Field) -> FieldRequirement {
    use FieldRequirement::{Always, Control, EitherControl, VmFunction};
    const LOAD_FRED_OR_SAVE_FRED: FieldRequirement = EitherControl((Entry, 23), (Exit2, 0));
    match field {
        Field::VmcsControl16(f) => match f {
            VmcsControl16::Vpid => Control(Secondary, 5),
            VmcsControl16::PostedInterruptNotificationVector => Control(Pin, 7),
            VmcsControl16::EptpIndex => Control(Secondary, 18),
            VmcsControl16::HlatPrefixSize => Control(Tertiary, 1),
            VmcsControl16::LastPidPointerIndex => Control(Tertiary, 4),
            VmcsControl16::VirtualTimerVector => Control(Tertiary, 8),
        },
        Field::VmcsGuest16(f) => match f {
            VmcsGuest16::InterruptStatus => Control(Secondary, 9),
            VmcsGuest16::PmlIndex => Control(Secondary, 17),
            VmcsGuest16::Uinv => Control(Entry, 19),
            _ => Always,
        },
        Field::VmcsHost16(_) => Always,
        Field::VmcsControl64(f) => match f {
            VmcsControl64::MsrBitmaps => Control(Primary, 28),
            VmcsControl64::PmlAddress => Control(Secondary, 17),
            VmcsControl64::VirtualApicAddress => Control(Primary, 21),
            VmcsControl64::ApicAccessAddress => Control(Secondary, 0),
            VmcsControl64::PostedInterruptDescriptorAddress => Control(Pin, 7),
            VmcsControl64::VmFunctionControls => Control(Secondary, 13),
            VmcsControl64::EptPointer => Control(Secondary, 1),
            VmcsControl64::EoiExitBitmap0
            | VmcsControl64::EoiExitBitmap1
            | VmcsControl64::EoiExitBitmap2
            | VmcsControl64::EoiExitBitmap3 => Control(Secondary, 9),
            VmcsControl64::EptpListAddress => VmFunction(0),
            VmcsControl64::VmreadBitmapAddress | VmcsControl64::VmwriteBitmapAddress => {
                Control(Secondary, 14)
            }
            VmcsControl64::VirtualizationExceptionInfoAddress => Control(Secondary, 18),
            VmcsControl64::XssExitingBitmap => Control(Secondary, 20),
            VmcsControl64::EnclsExitingBitmap => Control(Secondary, 15),
            VmcsControl64::SubPagePermissionTablePointer => Control(Secondary, 23),
            VmcsControl64::TscMultiplier => Control(Secondary, 25),
            VmcsControl64::TertiaryProcBasedControls => Control(Primary, 17),
            VmcsControl64::EnclvExitingBitmap => Control(Secondary, 28),
            VmcsControl64::LowPasidDirectoryAddress | VmcsControl64::HighPasidDirectoryAddress => {
                Control(Secondary, 21)
            }
            VmcsControl64::PconfigExitingBitmap => Control(Secondary, 27),
            VmcsControl64::HlatPointer => Control(Tertiary, 1),
            VmcsControl64::PidPointerTableAddress => Control(Tertiary, 4),
            VmcsControl64::SecondaryExitControls => Control(Exit, 31),
            VmcsControl64::SpecCtrlMask | VmcsControl64::SpecCtrlShadow => Control(Tertiary, 7),
            VmcsControl64::GuestDeadlineShadow => Control(Tertiary, 8),
            VmcsControl64::InjectedEventData => Control(Entry, 23),
            VmcsControl64::IoBitmapA
            | VmcsControl64::IoBitmapB
            | VmcsControl64::ExitMsrStoreAddress
            | VmcsControl64::ExitMsrLoadAddress
            | VmcsControl64::EntryMsrLoadAddress
            | VmcsControl64::ExecutiveVmcsPointer
            | VmcsControl64::TscOffset
            | VmcsControl64::SharedEptPointer => Always,
        },
        Field::VmcsReadOnly64(f) => match f {
            VmcsReadOnly64::GuestPhysicalAddress => Control(Secondary, 1),
            // Filled by RDMSRLIST/WRMSRLIST exits ("enable MSR-list instructions").
            VmcsReadOnly64::MsrData => Control(Tertiary, 6),
            VmcsReadOnly64::OriginalEventData => Control(Entry, 23),
        },
        Field::VmcsGuest64(f) => match f {
            VmcsGuest64::VmcsLinkPointer | VmcsGuest64::Debugctl => Always,
            VmcsGuest64::Pat => EitherControl((Entry, 14), (Exit, 18)),
            VmcsGuest64::Efer => EitherControl((Entry, 15), (Exit, 20)),
            VmcsGuest64::PerfGlobalCtrl => Control(Entry, 13),
            VmcsGuest64::Pdpte0 | VmcsGuest64::Pdpte1 | VmcsGuest64::Pdpte2 | VmcsGuest64::Pdpte3 => {
                Control(Secondary, 1)
            }
            VmcsGuest64::Bndcfgs => EitherControl((Entry, 16), (Exit, 23)),
            VmcsGuest64::RtitCtl => EitherControl((Entry, 18), (Exit, 25)),
            VmcsGuest64::LbrCtl => EitherControl((Entry, 21), (Exit, 26)),
            VmcsGuest64::Pkrs => Control(Entry, 22),
            // Loaded by the "load IA32_SPEC_CTRL" VM-entry control.
            VmcsGuest64::SpecCtrl => Control(Entry, 24),
            VmcsGuest64::Deadline => Control(Tertiary, 8),
            VmcsGuest64::FredConfig
            | VmcsGuest64::FredRsp1
            | VmcsGuest64::FredRsp2
            | VmcsGuest64::FredRsp3
            | VmcsGuest64::FredStklvls
            | VmcsGuest64::FredSsp1
            | VmcsGuest64::FredSsp2
            | VmcsGuest64::FredSsp3 => LOAD_FRED_OR_SAVE_FRED,
        },
        Field::VmcsHost64(f) => match f {
            VmcsHost64::Pat => Control(Exit, 19),
            VmcsHost64::Efer => Control(Exit, 21),
            VmcsHost64::PerfGlobalCtrl => Control(Exit, 12),
            VmcsHost64::Pkrs => Control(Exit, 29),
            // Loaded by the "load IA32_SPEC_CTRL" secondary VM-exit control.
            VmcsHost64::SpecCtrl => Control(Exit2, 2),
            VmcsHost64::FredConfig
            | VmcsHost64::FredRsp1
            | VmcsHost64::FredRsp2
            | VmcsHost64::FredRsp3
            | VmcsHost64::FredStklvls
            | VmcsHost64::FredSsp1
            | VmcsHost64::FredSsp2
            | VmcsHost64::FredSsp3 => Control(Exit2, 1),
        },
        Field::VmcsControl32(f) => match f {
            VmcsControl32::TprThreshold => Control(Primary, 21),
            VmcsControl32::SecondaryProcBasedControls => Control(Primary, 31),
            VmcsControl32::PleGap | VmcsControl32::PleWindow => Control(Secondary, 10),
            VmcsControl32::InstructionTimeoutControl => Control(Secondary, 31),
            _ => Always,
        },
        Field::VmcsReadOnly32(_) => Always,
        Field::VmcsGuest32(f) => match f {
            VmcsGuest32::PreemptionTimerValue => Control(Pin, 6),
            _ => Always,
        },
        Field::VmcsHost32(_) | Field::VmcsControlNW(_) | Field::VmcsReadOnlyNW(_) => Always,
        Field::VmcsGuestNW(f) => match f {
            VmcsGuestNW::SCet | VmcsGuestNW::Ssp | VmcsGuestNW::InterruptSspTableAddress => {
                Control(Entry, 20)
            }
            _ => Always,
        },
        Field::VmcsHostNW(f) => match f {
            VmcsHostNW::SCet | VmcsHostNW::Ssp | VmcsHostNW::InterruptSspTableAddress => Control(Exit, 28),
            _ => Always,
        },
    }
}

impl VmxCapabilities {
    /// Whether the 1-setting of `bit` of control word `kind` is allowed. False when the MSRs
    /// needed to tell are absent or the control word itself is not supported.
    pub fn allows_one(&self, kind: ControlKind, bit: u32) -> bool {
        match self.allowed(kind) {
            Ok(allowed) => bit < 64 && allowed.may_be_one & (1 << bit) != 0,
            Err(_) => false,
        }
    }

    /// Whether the processor has `field`: [`requirement`] applied to these capabilities, plus
    /// the IA32_VMX_VMCS_ENUM limit (Appendix A.9: no field has an index above the one it
    /// reports) when that MSR is present.
    pub fn supports_field(&self, field: Field) -> bool {
        let within_index = match self.vmcs_enum_max_index() {
            Some(max) => field.encoding().index() <= max,
            None => true,
        };
        let present = match requirement(field) {
            FieldRequirement::Always => true,
            FieldRequirement::Control(kind, bit) => self.allows_one(kind, bit),
            FieldRequirement::EitherControl((kind_a, bit_a), (kind_b, bit_b)) => {
                self.allows_one(kind_a, bit_a) || self.allows_one(kind_b, bit_b)
            }
            FieldRequirement::VmFunction(function) => {
                self.allows_one(Secondary, 13)
                    && function < 64
                    && self.vmfunc().unwrap_or(0) & (1 << function) != 0
            }
        };
        within_index && present
    }
}

/// A set of catalogue fields, one bit per row of [`FIELDS`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSet([u64; 4]);

const _: () = assert!(FIELDS.len() <= 4 * 64, "FieldSet holds at most 256 fields");

impl FieldSet {
    /// No field.
    pub const fn empty() -> Self {
        Self([0; 4])
    }

    /// Every catalogue field.
    pub const fn all() -> Self {
        let mut words = [0u64; 4];
        let mut i = 0;
        while i < FIELDS.len() {
            words[i / 64] |= 1 << (i % 64);
            i += 1;
        }
        Self(words)
    }

    /// The fields for which `keep` returns true.
    pub fn from_fn(mut keep: impl FnMut(Field) -> bool) -> Self {
        let mut set = Self::empty();
        for row in FIELDS {
            if keep(row.field) {
                set.insert(row.field);
            }
        }
        set
    }

    /// Whether `field` is in the set.
    #[inline]
    pub const fn contains(&self, field: Field) -> bool {
        let i = field.position();
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// Adds `field`.
    pub fn insert(&mut self, field: Field) {
        let i = field.position();
        self.0[i / 64] |= 1 << (i % 64);
    }

    /// Removes `field`.
    pub fn remove(&mut self, field: Field) {
        let i = field.position();
        self.0[i / 64] &= !(1 << (i % 64));
    }

    /// How many fields the set holds.
    pub const fn len(&self) -> usize {
        (self.0[0].count_ones() + self.0[1].count_ones() + self.0[2].count_ones() + self.0[3].count_ones())
            as usize
    }

    /// Whether the set is empty.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The fields in the set, in catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = Field> + '_ {
        FIELDS.iter().map(|row| row.field).filter(|f| self.contains(*f))
    }
}

impl Default for FieldSet {
    fn default() -> Self {
        Self::all()
    }
}

impl core::fmt::Debug for FieldSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set()
            .entries(self.iter().map(|field| field.encoding()))
            .finish()
    }
}

impl VmxCapabilities {
    /// Every catalogue field these capabilities support ([`VmxCapabilities::supports_field`]).
    pub fn supported_fields(&self) -> FieldSet {
        FieldSet::from_fn(|field| self.supports_field(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::VmxCapabilityMsr as Msr;
    use crate::caps::profiles;
    use crate::catalogue::{VmcsControl32, VmcsHost16};
    use proptest::prelude::*;

    #[test]
    fn skylake_x_lacks_what_its_controls_do_not_allow() {
        // notes/bochs-vmx.md: VMWRITE of 0x2C7E fails; no PKRS, CET, posted interrupts, PML
        // are allowed by these MSRs.
        let caps = profiles::bochs_corei7_skylake_x();
        let has = |f: Field| caps.supports_field(f);
        assert!(has(VmcsGuestNW::Rip.into()));
        assert!(has(VmcsControl16::Vpid.into()));
        assert!(has(VmcsControl64::EptPointer.into()));
        assert!(
            has(VmcsControl64::EptpListAddress.into()),
            "VMFUNC bit 0 (EPTP switching) is set"
        );
        assert!(has(VmcsGuest64::Pat.into()));
        assert!(has(VmcsGuest32::PreemptionTimerValue.into()));
        assert!(
            !has(VmcsControl16::PostedInterruptNotificationVector.into()),
            "pin bit 7 not allowed"
        );
        assert!(
            !has(VmcsControl64::TertiaryProcBasedControls.into()),
            "primary bit 17 not allowed"
        );
        assert!(!has(VmcsGuestNW::SCet.into()), "entry bit 20 not allowed");
        assert!(!has(VmcsHost64::Pkrs.into()), "exit bit 29 not allowed");
        assert!(has(VmcsHost16::TrSelector.into()));
    }

    #[test]
    fn every_rule_names_a_bit_inside_its_control_word() {
        for row in FIELDS {
            let bits =
                |kind: ControlKind, bit: u32| bit < kind.width() && kind.defined_bits() & (1 << bit) != 0;
            match requirement(row.field) {
                FieldRequirement::Always => {}
                FieldRequirement::Control(kind, bit) => assert!(bits(kind, bit), "{}", row.ident),
                FieldRequirement::EitherControl((a, x), (b, y)) => {
                    assert!(bits(a, x) && bits(b, y), "{}", row.ident)
                }
                FieldRequirement::VmFunction(n) => assert!(n < 64, "{}", row.ident),
            }
        }
    }

    #[test]
    fn without_msrs_only_unconditional_fields_exist() {
        let caps = VmxCapabilities::new();
        for row in FIELDS {
            assert_eq!(
                caps.supports_field(row.field),
                requirement(row.field) == FieldRequirement::Always,
                "{}",
                row.ident
            );
        }
    }

    #[test]
    fn the_secondary_controls_field_follows_primary_bit_31() {
        let caps = profiles::bochs_corei7_skylake_x();
        let field = VmcsControl32::SecondaryProcBasedControls.into();
        assert!(caps.supports_field(field));
        let raw = caps.get(Msr::TrueProcbasedCtls).unwrap() & !(1 << 63);
        let without = caps.with(Msr::TrueProcbasedCtls, raw).with(
            Msr::ProcbasedCtls,
            caps.get(Msr::ProcbasedCtls).unwrap() & !(1 << 63),
        );
        assert!(!without.supports_field(field));
        // Everything the secondary controls gate disappears with them.
        assert!(!without.supports_field(VmcsControl64::EptPointer.into()));
    }

    #[test]
    fn the_vmcs_enum_index_limits_fields() {
        let caps = profiles::bochs_corei7_skylake_x().with(Msr::VmcsEnum, 0x2 << 1);
        assert!(caps.supports_field(VmcsGuestNW::Cr3.into()), "index 1");
        assert!(!caps.supports_field(VmcsGuestNW::Rip.into()), "index 0xF");
    }

    #[test]
    fn field_sets_insert_remove_and_count() {
        let mut set = FieldSet::empty();
        assert!(set.is_empty());
        set.insert(VmcsGuestNW::Rip.into());
        set.insert(VmcsControl16::Vpid.into());
        assert_eq!(set.len(), 2);
        assert!(set.contains(VmcsGuestNW::Rip.into()));
        set.remove(VmcsGuestNW::Rip.into());
        assert!(!set.contains(VmcsGuestNW::Rip.into()));
        assert_eq!(FieldSet::all().len(), FIELDS.len());
        assert_eq!(FieldSet::all().iter().count(), FIELDS.len());
        assert_eq!(FieldSet::default(), FieldSet::all());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Any MSR values: no panic, and a field is supported only if its rule holds.
        #[test]
        fn any_capabilities_decide_every_field(values in proptest::collection::vec(any::<Option<u64>>(), 20)) {
            let mut caps = VmxCapabilities::new();
            for (msr, value) in Msr::ALL.iter().zip(values) {
                if let Some(v) = value {
                    caps.set(*msr, v);
                }
            }
            let set = caps.supported_fields();
            for row in FIELDS {
                prop_assert_eq!(set.contains(row.field), caps.supports_field(row.field));
                if caps.supports_field(row.field) {
                    if let FieldRequirement::Control(kind, bit) = requirement(row.field) {
                        prop_assert!(caps.allows_one(kind, bit));
                    }
                }
            }
        }
    }
}
