//! `vmm decode`: an exit reason and its qualification, decoded.

use serde_json::{Value, json};
use vmcs::exit::{CrAccessQualification, ExitDetail, ExitReasonWord};
use vmcs::{InterruptionInfo, VmxExitInfo};

use crate::Refusal;
use crate::number::{parse_u32, parse_u64};

/// Arguments of `vmm decode`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The exit-reason field: a basic reason (e.g. 30) or the whole word (e.g. 0x80000021).
    #[arg(long)]
    reason: String,
    /// The exit qualification.
    #[arg(long, default_value = "0")]
    qualification: String,
    /// The VM-exit interruption information (exception or NMI exits).
    #[arg(long)]
    interruption_info: Option<String>,
    /// The VM-exit instruction information.
    #[arg(long)]
    instruction_info: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn interruption_json(info: InterruptionInfo) -> Value {
    json!({
        "vector": info.vector(),
        "type": info.kind().name(),
        "error_code_valid": info.error_code_valid(),
        "nmi_unblocking": info.nmi_unblocking(),
        "valid": info.valid(),
    })
}

fn with_kind(kind: &str, mut body: Value) -> Value {
    if let Value::Object(map) = &mut body {
        map.insert("kind".into(), kind.into());
        return body;
    }
    json!({ "kind": kind, "value": body })
}

/// The detail as JSON: the documented shapes for the common kinds, the serde form of the
/// decoded value for the rest.
fn detail_json(detail: &ExitDetail) -> Value {
    match detail {
        ExitDetail::Io {
            qualification: q,
            string,
        } => {
            let mut value = json!({
                "kind": "io",
                "port": q.port,
                "size": q.size.bytes(),
                "direction": q.direction.name(),
                "string": q.string,
                "rep": q.rep,
                "immediate": q.immediate,
            });
            if let Some(info) = string {
                value["string_operand"] = serde_json::to_value(info).unwrap_or(Value::Null);
            }
            value
        }
        ExitDetail::CrAccess(q) => {
            let mut value =
                json!({ "kind": "cr-access", "cr": q.cr().number(), "access": q.access_type().name() });
            if let Some(gpr) = q.gpr() {
                value["gpr"] = gpr.number().into();
                value["gpr_name"] = gpr.name().into();
            }
            if let CrAccessQualification::Lmsw { operand, source_data } = q {
                value["lmsw_source"] = operand.name().into();
                value["lmsw_data"] = (*source_data).into();
            }
            value
        }
        ExitDetail::EptViolation(q) => json!({
            "kind": "ept-violation",
            "read": q.read,
            "write": q.write,
            "fetch": q.fetch,
            "readable": q.readable,
            "writable": q.writable,
            "executable": q.executable,
            "user_executable": q.user_executable,
            "linear_address_valid": q.linear_address_valid,
            "translation": q.translation,
            "user_mode_linear_address": q.user_mode_linear_address,
            "linear_writable": q.linear_writable,
            "linear_execute_disable": q.linear_execute_disable,
            "nmi_unblocking": q.nmi_unblocking,
            "shadow_stack": q.shadow_stack,
            "supervisor_shadow_stack": q.supervisor_shadow_stack,
            "guest_paging_verification": q.guest_paging_verification,
            "asynchronous": q.asynchronous,
        }),
        ExitDetail::Exception { info, qualification } => {
            let mut value = with_kind("exception", interruption_json(*info));
            value["qualification"] = serde_json::to_value(qualification).unwrap_or(Value::Null);
            value
        }
        ExitDetail::MovDr(q) => json!({
            "kind": "mov-dr",
            "dr": q.dr,
            "direction": q.direction.name(),
            "gpr": q.gpr.number(),
            "gpr_name": q.gpr.name(),
        }),
        ExitDetail::TaskSwitch(q) => json!({
            "kind": "task-switch",
            "selector": q.selector,
            "source": q.source.name(),
        }),
        ExitDetail::Other { qualification, .. } => json!({ "kind": "other", "qualification": qualification }),
        other => {
            let body = serde_json::to_value(other).unwrap_or(Value::Null);
            // Serde's externally tagged form: {"Variant": {...}} or "Variant".
            let inner = match body {
                Value::Object(mut map) if map.len() == 1 => {
                    map.values_mut().next().map(Value::take).unwrap_or(Value::Null)
                }
                _ => Value::Null,
            };
            match inner {
                Value::Object(_) => with_kind(other.kind(), inner),
                Value::Null => json!({ "kind": other.kind() }),
                scalar => json!({ "kind": other.kind(), "value": scalar }),
            }
        }
    }
}

/// Runs `vmm decode`.
pub fn run(args: &Args) -> Result<String, Refusal> {
    let word = ExitReasonWord::from_raw(parse_u32(&args.reason)?);
    let qualification = parse_u64(&args.qualification)?;
    let interruption_info = args
        .interruption_info
        .as_deref()
        .map(parse_u32)
        .transpose()?
        .map(InterruptionInfo::from_raw);
    let instruction_info = args.instruction_info.as_deref().map(parse_u32).transpose()?;
    let reason = word.reason();
    let detail =
        ExitDetail::decode(reason, qualification, interruption_info, instruction_info).map_err(|e| {
            format!(
                "qualification {qualification:#x} is invalid for exit reason {} ({}): {e}",
                reason.number(),
                reason.name()
            )
        })?;
    if args.json {
        return Ok(json!({
            "reason": {
                "number": reason.number(),
                "name": reason.name(),
                "entry_failure": word.entry_failure(),
                "raw": format!("0x{:08x}", word.raw()),
            },
            "detail": detail_json(&detail),
        })
        .to_string());
    }
    let mut text = format!("exit reason {} ({})", reason.number(), reason.name());
    if word.entry_failure() {
        text.push_str(", VM-entry failure");
    }
    if word.raw() != u32::from(reason.number()) {
        text.push_str(&format!(" [word 0x{:08x}]", word.raw()));
    }
    if let Value::Object(fields) = detail_json(&detail) {
        for (key, value) in fields {
            let shown = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            text.push_str(&format!("\n  {key}: {shown}"));
        }
    }
    if VmxExitInfo::instruction_length_defined(
        reason,
        qualification,
        interruption_info.unwrap_or_default(),
        InterruptionInfo::default(),
    ) {
        text.push_str("\n(the VM-exit instruction length is defined for this exit)");
    }
    Ok(text)
}
