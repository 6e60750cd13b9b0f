//! Capability test data: `vmcs/testdata/caps/bochs-<model>.json`, an object mapping SDM MSR
//! names to hex strings (the format `vmm controls --caps` reads). Absent MSRs are left out.

use vmcs::caps::{VmxCapabilities, VmxCapabilityMsr};

/// Whether an MSR's value is a bit mask best read at full width.
fn full_width(msr: VmxCapabilityMsr) -> bool {
    !matches!(
        msr,
        VmxCapabilityMsr::Cr0Fixed0
            | VmxCapabilityMsr::Cr0Fixed1
            | VmxCapabilityMsr::Cr4Fixed0
            | VmxCapabilityMsr::Cr4Fixed1
            | VmxCapabilityMsr::VmcsEnum
            | VmxCapabilityMsr::Vmfunc
    )
}

/// The file's text for `caps` (stable: MSR-number order, two-space indent, final newline).
pub fn format(caps: &VmxCapabilities) -> String {
    let lines: Vec<String> = caps
        .iter()
        .map(|(msr, value)| {
            if full_width(msr) {
                format!("  \"{}\": \"{value:#018x}\"", msr.name())
            } else {
                format!("  \"{}\": \"{value:#x}\"", msr.name())
            }
        })
        .collect();
    format!("{{\n{}\n}}\n", lines.join(",\n"))
}

/// Parses a capability file.
pub fn parse(text: &str) -> Result<VmxCapabilities, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let object = value.as_object().ok_or("expected a JSON object")?;
    let mut caps = VmxCapabilities::new();
    for (name, value) in object {
        let msr = VmxCapabilityMsr::from_name(name).ok_or_else(|| format!("unknown MSR {name:?}"))?;
        let text = value
            .as_str()
            .ok_or_else(|| format!("{name}: expected a string"))?;
        let digits = text
            .strip_prefix("0x")
            .ok_or_else(|| format!("{name}: expected 0x..."))?;
        let raw = u64::from_str_radix(digits, 16).map_err(|e| format!("{name}: {e}"))?;
        caps.set(msr, raw);
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_skylake_file_is_in_canonical_form() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../vmcs/testdata/caps/bochs-corei7_skylake_x.json"
        );
        let text = std::fs::read_to_string(path).expect("test data present");
        let caps = parse(&text).expect("parses");
        assert_eq!(caps, vmcs::caps::profiles::bochs_corei7_skylake_x());
        assert_eq!(format(&caps), text);
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(parse("[]").is_err());
        assert!(parse(r#"{"IA32_VMX_NOPE": "0x1"}"#).is_err());
        assert!(parse(r#"{"IA32_VMX_BASIC": "12"}"#).is_err());
        assert!(parse(r#"{"IA32_VMX_BASIC": 12}"#).is_err());
    }
}
