//! `vmm inject`: the VM-entry fields that inject an event.

use serde_json::json;
use vmcs::inject::{Event, EventKind, InjectionCapabilities, prepare};

use crate::Refusal;
use crate::number::{parse_u8, parse_u32, parse_u64};

/// Arguments of `vmm inject`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Vector, 0–255.
    #[arg(long)]
    vector: String,
    /// Event type: auto, external-interrupt, nmi, hardware-exception, software-interrupt,
    /// privileged-software-exception or software-exception.
    #[arg(long = "type", default_value = "auto")]
    kind: String,
    /// Error code to deliver (only for exceptions that push one).
    #[arg(long)]
    error_code: Option<String>,
    /// Instruction length (software interrupts and exceptions).
    #[arg(long)]
    instruction_len: Option<String>,
    /// Guest CR0 (default 0x1: protected mode, where error codes are delivered).
    #[arg(long, default_value = "0x1")]
    cr0: String,
    /// The processor allows instruction length 0 (IA32_VMX_MISC bit 30).
    #[arg(long)]
    allow_zero_length: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `vmm inject`.
pub fn run(args: &Args) -> Result<String, Refusal> {
    let kind =
        EventKind::from_name(&args.kind).ok_or_else(|| format!("unknown event type {:?}", args.kind))?;
    let event = Event {
        vector: parse_u8(&args.vector)?,
        kind,
        error_code: args.error_code.as_deref().map(parse_u32).transpose()?,
        instruction_len: args.instruction_len.as_deref().map(parse_u32).transpose()?,
    };
    let cr0 = parse_u64(&args.cr0)?;
    let caps = InjectionCapabilities {
        zero_length_instruction: args.allow_zero_length,
    };
    let entry = prepare(&event, cr0, caps)?;
    let info = entry.interruption_info;
    if args.json {
        return Ok(json!({
            "interruption_info": format!("0x{:08x}", info.raw()),
            "error_code": entry.error_code.map(|e| format!("0x{e:x}")),
            "instruction_len": entry.instruction_len,
        })
        .to_string());
    }
    let mut text = format!(
        "VM-entry interruption information = 0x{:08x} (vector {}, {}{})",
        info.raw(),
        info.vector(),
        info.kind().name(),
        if info.error_code_valid() {
            ", deliver error code"
        } else {
            ""
        }
    );
    match entry.error_code {
        Some(code) => text.push_str(&format!("\nVM-entry exception error code    = 0x{code:x}")),
        None if event.error_code.is_some() => {
            text.push_str("\n(error code dropped: the guest is in real mode, where none is pushed)")
        }
        None => {}
    }
    if let Some(len) = entry.instruction_len {
        text.push_str(&format!("\nVM-entry instruction length      = {len}"));
    }
    Ok(text)
}
