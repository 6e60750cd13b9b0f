//! The capability MSRs of every Bochs CPU model the oracle checks (`testdata/caps/`, read by
//! RDMSR inside Bochs 2.7 and verified on every oracle run): the control algorithm and the
//! `soft` profile on real values. The field-support facts asserted here are ones the oracle
//! observed (VMREAD/VMWRITE of the field succeeds or fails with error 12 on that model).

use std::path::PathBuf;

use proptest::prelude::*;
use vmcs::caps::{ControlError, ControlKind, VmxCapabilities, VmxCapabilityMsr, profiles, set_control};
use vmcs::{
    FIELDS, SoftProfile, SoftVmcs, VmInstructionError, VmcsAccess, VmcsControl16, VmcsControl32,
    VmcsControl64, VmcsError, VmcsGuest32, VmcsGuest64, VmcsReadOnly32,
};

const ERR12: VmcsError = VmcsError::VmFailValid(VmInstructionError::UnsupportedComponent);
const ERR13: VmcsError = VmcsError::VmFailValid(VmInstructionError::WriteReadOnlyComponent);

fn caps_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/caps")
}

fn parse(text: &str) -> VmxCapabilities {
    let value: serde_json::Value = serde_json::from_str(text).expect("JSON");
    let mut caps = VmxCapabilities::new();
    for (name, value) in value.as_object().expect("an object") {
        let msr = VmxCapabilityMsr::from_name(name).unwrap_or_else(|| panic!("unknown MSR {name}"));
        let hex = value.as_str().and_then(|s| s.strip_prefix("0x")).expect("0x...");
        caps.set(msr, u64::from_str_radix(hex, 16).expect("hex"));
    }
    caps
}

fn model(name: &str) -> VmxCapabilities {
    let path = caps_dir().join(format!("bochs-{name}.json"));
    parse(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn every_model() -> Vec<(String, VmxCapabilities)> {
    let mut models: Vec<(String, VmxCapabilities)> = std::fs::read_dir(caps_dir())
        .expect("testdata/caps")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable");
            (
                path.file_stem().unwrap().to_string_lossy().into_owned(),
                parse(&text),
            )
        })
        .collect();
    models.sort_by(|a, b| a.0.cmp(&b.0));
    models
}

#[test]
fn there_are_at_least_four_models_and_skylake_x_matches_its_profile() {
    let models = every_model();
    assert!(models.len() >= 4, "{models:?}");
    assert_eq!(model("corei7_skylake_x"), profiles::bochs_corei7_skylake_x());
}

#[test]
fn every_model_has_the_basic_msrs_and_a_consistent_profile() {
    for (name, caps) in every_model() {
        let basic = caps.basic().unwrap_or_else(|| panic!("{name}: IA32_VMX_BASIC"));
        assert!(caps.uses_true_msrs(), "{name}: Bochs reports the TRUE_ MSRs");
        assert_eq!(basic.revision_id, caps.vmcs_revision_id().unwrap());
        for kind in [
            ControlKind::Pin,
            ControlKind::Primary,
            ControlKind::Exit,
            ControlKind::Entry,
        ] {
            assert!(
                caps.allowed(kind).is_ok_and(|a| a.is_consistent()),
                "{name}: {kind:?}"
            );
        }
        // Bochs 2.7 has no tertiary or secondary VM-exit controls: their MSRs #GP.
        assert_eq!(caps.get(VmxCapabilityMsr::ProcbasedCtls3), None, "{name}");
        assert_eq!(caps.get(VmxCapabilityMsr::ExitCtls2), None, "{name}");
        let profile = SoftProfile::from_capabilities(&caps);
        assert_eq!(
            profile.writable_exit_info,
            caps.vmx_misc_allows_vmwrite_to_exit_info(),
            "{name}"
        );
        for row in FIELDS {
            assert_eq!(
                profile.supports(row.field),
                caps.supports_field(row.field),
                "{name} {}",
                row.ident
            );
        }
    }
}

#[test]
fn read_only_fields_are_writable_from_haswell_on() {
    // notes/bochs-vmx.md: penryn .. ivy_bridge fail with error 13; later models accept.
    for (name, writable) in [
        ("core2_penryn_t9600", false),
        ("corei7_sandy_bridge_2600k", false),
        ("corei7_haswell_4770", true),
        ("corei7_skylake_x", true),
        ("corei7_icelake_u", true),
    ] {
        let mut vmcs = SoftVmcs::new(SoftProfile::from_capabilities(&model(name)));
        let result = vmcs.write(VmcsReadOnly32::ExitReason as u32, 30);
        assert_eq!(result, if writable { Ok(()) } else { Err(ERR13) }, "{name}");
    }
}

/// (model, encoding, whether Bochs supports it), as the oracle saw them.
const FIELD_FACTS: &[(&str, u32, bool)] = &[
    ("core2_penryn_t9600", VmcsControl64::EptPointer as u32, false),
    ("core2_penryn_t9600", VmcsControl16::Vpid as u32, false),
    (
        "core2_penryn_t9600",
        VmcsControl64::ApicAccessAddress as u32,
        true,
    ),
    (
        "core2_penryn_t9600",
        VmcsGuest32::PreemptionTimerValue as u32,
        false,
    ),
    ("core2_penryn_t9600", VmcsGuest64::Pat as u32, false),
    (
        "core2_penryn_t9600",
        VmcsControl32::SecondaryProcBasedControls as u32,
        true,
    ),
    (
        "corei7_sandy_bridge_2600k",
        VmcsControl64::EptPointer as u32,
        true,
    ),
    ("corei7_sandy_bridge_2600k", VmcsGuest64::Pdpte3 as u32 | 1, true),
    ("corei7_sandy_bridge_2600k", VmcsControl32::PleGap as u32, false),
    (
        "corei7_sandy_bridge_2600k",
        VmcsControl64::VmFunctionControls as u32,
        false,
    ),
    ("corei7_sandy_bridge_2600k", VmcsGuest64::Efer as u32, true),
    (
        "corei7_haswell_4770",
        VmcsControl64::VmreadBitmapAddress as u32,
        true,
    ),
    ("corei7_haswell_4770", VmcsControl16::EptpIndex as u32, true),
    ("corei7_haswell_4770", VmcsControl64::EptpListAddress as u32, true),
    ("corei7_haswell_4770", VmcsControl64::PmlAddress as u32, false),
    (
        "corei7_haswell_4770",
        VmcsControl64::XssExitingBitmap as u32,
        false,
    ),
    ("corei7_skylake_x", VmcsControl64::PmlAddress as u32, true),
    ("corei7_skylake_x", VmcsControl64::TscMultiplier as u32, true),
    ("corei7_skylake_x", VmcsControl64::XssExitingBitmap as u32, true),
    (
        "corei7_skylake_x",
        VmcsControl64::SubPagePermissionTablePointer as u32,
        false,
    ),
    (
        "corei7_icelake_u",
        VmcsControl64::SubPagePermissionTablePointer as u32,
        true,
    ),
    (
        "corei7_icelake_u",
        VmcsControl16::PostedInterruptNotificationVector as u32,
        false,
    ),
];

#[test]
fn field_support_follows_each_models_controls() {
    for &(name, encoding, supported) in FIELD_FACTS {
        let mut vmcs = SoftVmcs::new(SoftProfile::from_capabilities(&model(name)));
        let read = vmcs.read(encoding);
        if supported {
            assert_eq!(read, Ok(0), "{name} {encoding:#x}");
        } else {
            assert_eq!(read, Err(ERR12), "{name} {encoding:#x}");
        }
    }
}

#[test]
fn default_controls_are_allowed_on_every_model() {
    for (name, caps) in every_model() {
        for &kind in ControlKind::ALL {
            match (set_control(&caps, kind, None, 0, 0), caps.allowed(kind)) {
                (Ok(value), Ok(allowed)) => {
                    assert!(allowed.permits(value), "{name} {kind:?} {value:#x}");
                    // With no previous value, flexible bits start at their default1 setting.
                    let plain = caps.get(kind.capability_msr()).unwrap();
                    if kind.true_capability_msr().is_some() {
                        assert_eq!(value, plain & 0xFFFF_FFFF, "{name} {kind:?}");
                    }
                }
                (Err(ControlError::NotSupported { .. } | ControlError::MissingMsr { .. }), Err(_)) => {}
                other => panic!("{name} {kind:?}: {other:?}"),
            }
        }
    }
}

#[test]
fn the_entry_controls_of_notes_bochs_vmx_come_out_on_every_model() {
    // notes/bochs-vmx.md ran a 64-bit guest on skylake_x with pin 0x16, primary 0x050061F2,
    // exit 0x36FFB, entry 0x13FB. Every model allows the same settings.
    for (name, caps) in every_model() {
        let primary = set_control(
            &caps,
            ControlKind::Primary,
            None,
            1 << 7 | 1 << 24,
            1 << 15 | 1 << 16,
        );
        assert_eq!(primary, Ok(0x0500_61F2), "{name}");
        assert_eq!(
            set_control(&caps, ControlKind::Pin, None, 0, 0),
            Ok(0x16),
            "{name}"
        );
        // 64-bit host / IA-32e guest on, "save/load debug controls" (bit 2) off.
        assert_eq!(
            set_control(&caps, ControlKind::Exit, None, 1 << 9, 1 << 2),
            Ok(0x36FFB),
            "{name}"
        );
        assert_eq!(
            set_control(&caps, ControlKind::Entry, None, 1 << 9, 1 << 2),
            Ok(0x13FB),
            "{name}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Any request on any model: a value is permitted by the model's MSRs and honours the
    /// request; a refusal names bits the MSRs really forbid.
    #[test]
    fn set_control_respects_every_models_msrs(
        model_index in 0usize..16,
        kind_index in 0usize..7,
        set in any::<u64>(),
        clear in any::<u64>(),
        previous in proptest::option::of(any::<u64>()),
    ) {
        let models = every_model();
        let (name, caps) = &models[model_index % models.len()];
        let kind = ControlKind::ALL[kind_index];
        let set = set & kind.defined_bits() & (set >> 7);
        let clear = clear & kind.defined_bits() & !set & (clear >> 5);
        let previous = previous.map(|p| p & kind.mask());
        match (set_control(caps, kind, previous, set, clear), caps.allowed(kind)) {
            (Ok(value), Ok(allowed)) => {
                prop_assert!(allowed.permits(value), "{} {:?}", name, kind);
                prop_assert_eq!(value & set, set);
                prop_assert_eq!(value & clear, 0);
            }
            (Err(ControlError::NotAllowedOne { bits, .. }), Ok(allowed)) => {
                prop_assert!(bits != 0 && bits & set == bits && bits & allowed.may_be_one == 0);
            }
            (Err(ControlError::MustBeOne { bits, .. }), Ok(allowed)) => {
                prop_assert!(bits != 0 && bits & clear == bits && bits & allowed.must_be_one == bits);
            }
            (Err(_), Err(_)) => {}
            (result, allowed) => prop_assert!(false, "{} {:?}: {:?} with {:?}", name, kind, result, allowed),
        }
    }
}
