//! `vmm controls`: the control-setting algorithm on a capability file.

use std::path::PathBuf;

use serde_json::json;
use vmcs::caps::{ControlKind, VmxCapabilities, VmxCapabilityMsr, set_control};
use vmcs::controls::{
    EntryControls, PinBasedControls, PrimaryControls, PrimaryExitControls, SecondaryControls,
    SecondaryExitControls, TertiaryControls,
};

use crate::Refusal;
use crate::number::{bit_numbers, parse_bits, parse_u64};

/// Arguments of `vmm controls`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSON file mapping SDM capability MSR names ("IA32_VMX_BASIC", ...) to hex strings;
    /// an absent MSR is not supported.
    #[arg(long)]
    caps: PathBuf,
    /// Which control word: pin, primary, secondary, tertiary, exit, exit2 or entry.
    #[arg(long)]
    control: String,
    /// Bits to set: comma-separated bit numbers.
    #[arg(long, default_value = "")]
    set: String,
    /// Bits to clear: comma-separated bit numbers.
    #[arg(long, default_value = "")]
    clear: String,
    /// The control's current value; flexible bits not set or cleared keep it. Without it they
    /// take their default (1 for the plain MSR's default1 bits, else 0).
    #[arg(long)]
    previous: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Reads a capability file.
pub fn load_capabilities(path: &std::path::Path) -> Result<VmxCapabilities, Refusal> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let object = value
        .as_object()
        .ok_or_else(|| format!("{}: expected a JSON object", path.display()))?;
    let mut caps = VmxCapabilities::new();
    for (name, value) in object {
        let msr =
            VmxCapabilityMsr::from_name(name).ok_or_else(|| format!("unknown capability MSR {name:?}"))?;
        let text = value
            .as_str()
            .ok_or_else(|| format!("{name}: expected a hex string"))?;
        let digits = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .unwrap_or(text);
        let raw =
            u64::from_str_radix(digits, 16).map_err(|e| format!("{name}: invalid hex {text:?}: {e}"))?;
        caps.set(msr, raw);
    }
    Ok(caps)
}

/// Names of the flags set in `value` for control `kind`.
fn flag_names(kind: ControlKind, value: u64) -> Vec<String> {
    fn names<F: bitflags::Flags>(flags: F) -> Vec<String> {
        flags.iter_names().map(|(name, _)| name.to_string()).collect()
    }
    match kind {
        ControlKind::Pin => names(PinBasedControls::from_bits_retain(value as u32)),
        ControlKind::Primary => names(PrimaryControls::from_bits_retain(value as u32)),
        ControlKind::Secondary => names(SecondaryControls::from_bits_retain(value as u32)),
        ControlKind::Tertiary => names(TertiaryControls::from_bits_retain(value)),
        ControlKind::Exit => names(PrimaryExitControls::from_bits_retain(value as u32)),
        ControlKind::Exit2 => names(SecondaryExitControls::from_bits_retain(value)),
        ControlKind::Entry => names(EntryControls::from_bits_retain(value as u32)),
    }
}

/// Runs `vmm controls`.
pub fn run(args: &Args) -> Result<String, Refusal> {
    let caps = load_capabilities(&args.caps)?;
    let kind = ControlKind::from_name(&args.control).ok_or_else(|| {
        format!(
            "unknown control {:?} (pin, primary, secondary, tertiary, exit, exit2, entry)",
            args.control
        )
    })?;
    let set = parse_bits(&args.set)?;
    let clear = parse_bits(&args.clear)?;
    let previous = args.previous.as_deref().map(parse_u64).transpose()?;
    let value = set_control(&caps, kind, previous, set, clear)?;
    let msr = caps.control_msr(kind);
    let true_msrs = msr != kind.capability_msr();
    let digits = (kind.width() / 4) as usize;
    let hex = format!("0x{value:0digits$x}");
    if args.json {
        return Ok(json!({ "control": kind.name(), "value": hex, "true_msrs": true_msrs }).to_string());
    }
    let bits: Vec<String> = bit_numbers(value).iter().map(u32::to_string).collect();
    Ok(format!(
        "{} controls = {hex} (allowed settings from {})\n  bits:  {}\n  flags: {}",
        kind.name(),
        msr.name(),
        bits.join(" "),
        flag_names(kind, value).join(" ")
    ))
}
