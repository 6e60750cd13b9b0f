//! `vmm wire`: the messages between components (the `vmm-protocol` wire format), decoded from
//! hex, encoded from JSON, and the size limit of each family.

use std::fmt::{Debug, Write as _};
use std::io::{BufRead, Write as _};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use vmm_protocol::{
    ExitRecord, ExitReply, MAX_MESSAGE_SIZE, Message, MessageKind, PROTOCOL_VERSION, Request, Response,
};

use crate::Refusal;

/// Arguments of `vmm wire`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: WireCommand,
}

#[derive(clap::Subcommand, Debug)]
enum WireCommand {
    /// Decode messages given in hex.
    Decode(DecodeArgs),
    /// Encode a message given as JSON (the form `decode --json` prints) into hex.
    Encode(EncodeArgs),
    /// The largest encoding of each message family, in bytes.
    Limits(LimitsArgs),
}

/// A message family, as the command line names it.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Kind {
    /// Client to VMM server.
    Request,
    /// VMM server to client.
    Response,
    /// VMM server to device model, one per VM exit.
    ExitRecord,
    /// Device model to VMM server.
    ExitReply,
}

impl Kind {
    fn family(self) -> MessageKind {
        match self {
            Kind::Request => MessageKind::Request,
            Kind::Response => MessageKind::Response,
            Kind::ExitRecord => MessageKind::ExitRecord,
            Kind::ExitReply => MessageKind::ExitReply,
        }
    }
}

#[derive(clap::Args, Debug)]
struct DecodeArgs {
    /// The message family.
    #[arg(long, value_enum)]
    kind: Kind,
    /// An encoded message in hex (whitespace ignored). Repeat for several; `-` reads one per
    /// line from standard input. With several, one line is printed per input, an error line
    /// for each that does not decode, and the exit status is 2 if any did not.
    #[arg(long, required = true)]
    hex: Vec<String>,
    /// Accept only the canonical encoding (no redundant varint bytes).
    #[arg(long)]
    canonical: bool,
    /// Print each message as one line of JSON (errors as {"error": ...}).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct EncodeArgs {
    /// The message family.
    #[arg(long, value_enum)]
    kind: Kind,
    /// The message as JSON, or `-` to read it from standard input.
    #[arg(long)]
    json: String,
}

#[derive(clap::Args, Debug)]
struct LimitsArgs {
    /// Print JSON: {"request": n, "response": n, "exit-record": n, "exit-reply": n}.
    #[arg(long)]
    json: bool,
}

/// Runs `vmm wire`.
pub fn run(args: &Args) -> Result<String, Refusal> {
    match &args.command {
        WireCommand::Decode(args) => decode(args),
        WireCommand::Encode(args) => encode(args),
        WireCommand::Limits(args) => Ok(limits(args)),
    }
}

fn limits(args: &LimitsArgs) -> String {
    if args.json {
        let sizes: serde_json::Map<_, _> = MessageKind::ALL
            .iter()
            .map(|kind| (kind.name().to_owned(), kind.max_size().into()))
            .collect();
        return serde_json::Value::Object(sizes).to_string();
    }
    let mut text = String::new();
    for kind in MessageKind::ALL {
        let _ = writeln!(text, "{:<12} {:>4} bytes", kind.name(), kind.max_size());
    }
    let _ = write!(
        text,
        "limit {MAX_MESSAGE_SIZE} bytes (one seL4 IPC payload), protocol version {PROTOCOL_VERSION}"
    );
    text
}

/// Parses hex digits, ignoring whitespace and an optional `0x` prefix.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let digits = digits
        .strip_prefix(b"0x")
        .or_else(|| digits.strip_prefix(b"0X"))
        .unwrap_or(&digits);
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| {
            let text = std::str::from_utf8(pair).map_err(|_| format!("invalid hex at byte {i}"))?;
            u8::from_str_radix(text, 16).map_err(|_| format!("invalid hex {text:?} at byte {i}"))
        })
        .collect()
}

/// The inputs of `decode`: each `--hex`, with `-` replaced by the non-empty lines of stdin.
fn inputs(args: &DecodeArgs) -> Result<Vec<String>, Refusal> {
    let mut inputs = Vec::new();
    for hex in &args.hex {
        if hex == "-" {
            for line in std::io::stdin().lock().lines() {
                let line = line.map_err(|e| format!("reading standard input: {e}"))?;
                if !line.trim().is_empty() {
                    inputs.push(line);
                }
            }
        } else {
            inputs.push(hex.clone());
        }
    }
    Ok(inputs)
}

/// Decodes one input and renders it: JSON, or `Debug` (`pretty`: multi-line).
fn decode_one(args: &DecodeArgs, hex: &str, pretty: bool) -> Result<String, String> {
    fn render<M: Message + Serialize + Debug>(
        bytes: &[u8],
        canonical: bool,
        json: bool,
        pretty: bool,
    ) -> Result<String, String> {
        let message = if canonical {
            M::decode_canonical(bytes)
        } else {
            M::decode(bytes)
        }
        .map_err(|e| e.to_string())?;
        if json {
            serde_json::to_string(&message).map_err(|e| e.to_string())
        } else if pretty {
            Ok(format!("{message:#?}"))
        } else {
            Ok(format!("{message:?}"))
        }
    }
    let bytes = parse_hex(hex)?;
    let (canonical, json) = (args.canonical, args.json);
    match args.kind {
        Kind::Request => render::<Request>(&bytes, canonical, json, pretty),
        Kind::Response => render::<Response>(&bytes, canonical, json, pretty),
        Kind::ExitRecord => render::<ExitRecord>(&bytes, canonical, json, pretty),
        Kind::ExitReply => render::<ExitReply>(&bytes, canonical, json, pretty),
    }
}

fn decode(args: &DecodeArgs) -> Result<String, Refusal> {
    let family = args.kind.family();
    let inputs = inputs(args)?;
    let several = args.hex.len() > 1 || args.hex.iter().any(|hex| hex == "-");
    if !several {
        let [hex] = inputs.as_slice() else {
            return Err(Refusal("no hex input".into()));
        };
        return decode_one(args, hex, true).map_err(|e| Refusal(format!("{family}: {e}")));
    }
    let mut lines = Vec::with_capacity(inputs.len());
    let mut failed = 0;
    for hex in &inputs {
        lines.push(decode_one(args, hex, false).unwrap_or_else(|error| {
            failed += 1;
            if args.json {
                json!({ "error": error }).to_string()
            } else {
                format!("error: {error}")
            }
        }));
    }
    let text = lines.join("\n");
    if failed == 0 {
        return Ok(text);
    }
    // The lines still go to stdout, one per input; a broken pipe only loses them.
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Err(Refusal(format!(
        "{family}: {failed} of {} inputs did not decode",
        inputs.len()
    )))
}

fn encode(args: &EncodeArgs) -> Result<String, Refusal> {
    fn to_hex<M: Message + DeserializeOwned>(json: &str) -> Result<String, String> {
        let message: M = serde_json::from_str(json).map_err(|e| format!("invalid message JSON: {e}"))?;
        let mut buf = [0u8; MAX_MESSAGE_SIZE];
        let bytes = message.encode(&mut buf).map_err(|e| e.to_string())?;
        Ok(bytes
            .iter()
            .fold(String::with_capacity(bytes.len() * 2), |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            }))
    }
    let json = if args.json == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("reading standard input: {e}"))?
    } else {
        args.json.clone()
    };
    let family = args.kind.family();
    match args.kind {
        Kind::Request => to_hex::<Request>(&json),
        Kind::Response => to_hex::<Response>(&json),
        Kind::ExitRecord => to_hex::<ExitRecord>(&json),
        Kind::ExitReply => to_hex::<ExitReply>(&json),
    }
    .map_err(|e| Refusal(format!("{family}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex("0a0B ff"), Ok(vec![0x0A, 0x0B, 0xFF]));
        assert_eq!(parse_hex("0x0102"), Ok(vec![1, 2]));
        assert_eq!(parse_hex(""), Ok(vec![]));
        assert!(parse_hex("abc").unwrap_err().contains("odd"));
        assert!(parse_hex("zz").unwrap_err().contains("invalid hex"));
        assert!(parse_hex("é1").is_err());
    }
}
