//! `vmm wire`, run as a user runs it: the golden vectors decode through it, the limits are
//! the crate's, and thousands of random byte strings never make it crash.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use vmm_protocol::{ExitRecord, ExitReply, MAX_MESSAGE_SIZE, Message, MessageKind, Request, Response};

fn vmm(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vmm runs");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("vmm finishes")
}

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Exit status 2, one line on stderr, nothing on stdout; returns the line.
fn refused(args: &[&str]) -> String {
    let out = vmm(args, None);
    assert_eq!(out.status.code(), Some(2), "vmm {args:?} should refuse");
    assert!(out.stdout.is_empty(), "vmm {args:?} printed {:?}", out.stdout);
    let message = String::from_utf8(out.stderr).unwrap();
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    message
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// What the tool should print for `bytes` of `kind` with `--json`: the message's JSON, or
/// `{"error": ...}` with the decoder's message.
fn expected_json(kind: MessageKind, bytes: &[u8]) -> Value {
    fn json<M: Message + serde::Serialize>(bytes: &[u8]) -> Value {
        match M::decode(bytes) {
            Ok(message) => serde_json::to_value(message).unwrap(),
            Err(error) => serde_json::json!({ "error": error.to_string() }),
        }
    }
    match kind {
        MessageKind::Request => json::<Request>(bytes),
        MessageKind::Response => json::<Response>(bytes),
        MessageKind::ExitRecord => json::<ExitRecord>(bytes),
        MessageKind::ExitReply => json::<ExitReply>(bytes),
    }
}

/// The golden vectors of `vmm-protocol`, by family: (name, bytes).
fn golden() -> BTreeMap<&'static str, Vec<(String, Vec<u8>)>> {
    let text = include_str!("../../protocol/tests/golden.txt");
    let mut vectors: BTreeMap<&'static str, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let mut parts = line.split(' ');
        let (Some(family), Some(name), Some(bytes)) = (parts.next(), parts.next(), parts.next()) else {
            panic!("malformed golden line {line}");
        };
        let kind = MessageKind::from_name(family).expect("family");
        vectors
            .entry(kind.name())
            .or_default()
            .push((name.to_owned(), unhex(bytes)));
    }
    assert_eq!(vectors.len(), 4, "every family has vectors");
    vectors
}

#[test]
fn golden_vectors_decode_through_the_cli() {
    for (family, vectors) in golden() {
        let kind = MessageKind::from_name(family).unwrap();
        let hexes: Vec<String> = vectors.iter().map(|(_, bytes)| hex(bytes)).collect();
        for canonical in [false, true] {
            let mut args = vec!["wire", "decode", "--kind", family, "--json"];
            if canonical {
                args.push("--canonical");
            }
            for h in &hexes {
                args.extend(["--hex", h]);
            }
            let out = vmm(&args, None);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{family}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let lines = stdout_lines(&out);
            assert_eq!(lines.len(), vectors.len(), "{family}: one line per vector");
            for ((name, bytes), line) in vectors.iter().zip(&lines) {
                let printed: Value = serde_json::from_str(line).expect("a JSON line");
                assert!(printed.get("error").is_none(), "{family} {name}: {line}");
                assert_eq!(printed, expected_json(kind, bytes), "{family} {name}");
            }
        }
    }
}

#[test]
fn one_message_prints_readably() {
    let record = &golden()["exit-record"];
    let (_, io_out) = record
        .iter()
        .find(|(name, _)| name == "io-out-byte")
        .expect("io-out-byte vector");
    let out = vmm(
        &["wire", "decode", "--kind", "exit-record", "--hex", &hex(io_out)],
        None,
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("ExitRecord {"), "{text}");
    assert!(text.contains("port: 1016"), "{text}");
    assert!(text.contains("rax: 65"), "{text}");
    // Whitespace and a 0x prefix are fine.
    let spaced = format!(
        "0x{}",
        hex(io_out)
            .as_bytes()
            .chunks(8)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = vmm(
        &["wire", "decode", "--kind", "exit-record", "--hex", &spaced],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
}

#[test]
fn decoded_json_encodes_back_to_the_same_bytes() {
    for (family, vectors) in golden() {
        let kind = MessageKind::from_name(family).unwrap();
        for (name, bytes) in vectors {
            let json = expected_json(kind, &bytes).to_string();
            let out = vmm(&["wire", "encode", "--kind", family, "--json", &json], None);
            assert!(
                out.status.success(),
                "{family} {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                String::from_utf8(out.stdout).unwrap().trim_end(),
                hex(&bytes),
                "{family} {name}"
            );
        }
    }
    // From standard input.
    let out = vmm(
        &["wire", "encode", "--kind", "request", "--json", "-"],
        Some(r#"{"ReadFields": [26654, 18468]}"#),
    );
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "01081e68000024480000\n");
}

#[test]
fn limits_are_the_crates() {
    let out = vmm(&["wire", "limits", "--json"], None);
    assert!(out.status.success());
    let limits: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = serde_json::json!({
        "request": Request::MAX_SIZE,
        "response": Response::MAX_SIZE,
        "exit-record": ExitRecord::MAX_SIZE,
        "exit-reply": ExitReply::MAX_SIZE,
    });
    assert_eq!(limits, expected);
    for kind in MessageKind::ALL {
        assert!(limits[kind.name()].as_u64().unwrap() <= MAX_MESSAGE_SIZE as u64);
    }
    let out = vmm(&["wire", "limits"], None);
    let text = String::from_utf8(out.stdout).unwrap();
    for kind in MessageKind::ALL {
        assert!(text.contains(&format!("{} ", kind.name())), "{text}");
        assert!(text.contains(&format!("{} bytes", kind.max_size())), "{text}");
    }
}

#[test]
fn bad_input_is_refused_on_one_line() {
    let message = refused(&["wire", "decode", "--kind", "request", "--hex", "0"]);
    assert!(message.contains("odd number of hex digits"), "{message}");
    let message = refused(&["wire", "decode", "--kind", "request", "--hex", "zz"]);
    assert!(message.contains("invalid hex"), "{message}");
    let message = refused(&["wire", "decode", "--kind", "request", "--hex", ""]);
    assert_eq!(message, "vmm: request: input ends inside the message\n");
    let message = refused(&["wire", "decode", "--kind", "request", "--hex", "0800"]);
    assert_eq!(message, "vmm: request: 1 bytes after the end of the message\n");
    let message = refused(&["wire", "decode", "--kind", "exit-reply", "--hex", "000120"]);
    assert!(message.contains("value not allowed"), "{message}");
    // Redundant varint bytes: accepted unless --canonical.
    assert!(
        vmm(&["wire", "decode", "--kind", "request", "--hex", "8800"], None)
            .status
            .success()
    );
    let message = refused(&[
        "wire",
        "decode",
        "--kind",
        "request",
        "--hex",
        "8800",
        "--canonical",
    ]);
    assert!(message.contains("non-canonical"), "{message}");

    let message = refused(&["wire", "encode", "--kind", "request", "--json", "{"]);
    assert!(message.contains("invalid message JSON"), "{message}");
    refused(&["wire", "encode", "--kind", "request", "--json", r#"{"Bogus": 1}"#]);
    refused(&["wire", "encode", "--kind", "exit-reply", "--json", r#""Run""#]);
    let too_many = format!(r#"{{"ReadFields": {:?}}}"#, vec![0; 33]);
    refused(&["wire", "encode", "--kind", "request", "--json", &too_many]);
    // An unknown family is a usage error (clap's, status 2).
    assert_eq!(
        vmm(&["wire", "decode", "--kind", "nope", "--hex", "00"], None)
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn several_inputs_print_one_line_each() {
    let args = [
        "wire", "decode", "--kind", "request", "--json", "--hex", "08", "--hex", "0x", "--hex", "-", "--hex",
        "0002",
    ];
    let out = vmm(&args, Some("09\n\n  0b05  \nzz\n"));
    assert_eq!(out.status.code(), Some(2));
    let lines = stdout_lines(&out);
    let values: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(values.len(), 6, "{lines:?}");
    assert_eq!(values[0], "Run");
    assert_eq!(values[1]["error"], "input ends inside the message");
    assert_eq!(values[2], "Pause");
    assert_eq!(values[3], serde_json::json!({"Dump": {"start": 5}}));
    assert!(values[4]["error"].as_str().unwrap().contains("invalid hex"));
    assert_eq!(values[5], serde_json::json!({"Hello": {"version": 2}}));
    let message = String::from_utf8(out.stderr).unwrap();
    assert_eq!(message, "vmm: request: 2 of 6 inputs did not decode\n");

    // All good: status 0; text lines.
    let out = vmm(
        &["wire", "decode", "--kind", "request", "--hex", "-"],
        Some("08\n09\n"),
    );
    assert!(out.status.success());
    assert_eq!(stdout_lines(&out), ["Run", "Pause"]);
}

/// A small deterministic generator (SplitMix64), so that a failure can be replayed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random byte strings: uniform ones of every length up to a full message (the empty one is
/// tested apart: it would be a blank line, which `--hex -` skips), and golden vectors
/// with a few bytes changed, inserted or removed (they get past the first byte).
fn random_inputs(random: &mut Random, golden: &[Vec<u8>], count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| {
            if random.below(2) == 0 {
                let len = 1 + random.below(MAX_MESSAGE_SIZE as u64 + 32) as usize;
                (0..len).map(|_| random.next() as u8).collect()
            } else {
                let mut bytes = golden[random.below(golden.len() as u64) as usize].clone();
                for _ in 0..=random.below(3) {
                    let at = random.below(bytes.len() as u64 + 1) as usize;
                    let byte = random.next() as u8;
                    match random.below(3) {
                        0 if at < bytes.len() => bytes[at] = byte,
                        1 => bytes.insert(at, byte),
                        _ if at < bytes.len() => {
                            bytes.remove(at);
                        }
                        _ => bytes.push(byte),
                    }
                }
                if bytes.is_empty() {
                    bytes.push(random.next() as u8);
                }
                bytes
            }
        })
        .collect()
}

#[test]
fn random_bytes_never_crash_the_decoder() {
    const PER_RUN: usize = 500;
    const RUNS_PER_FAMILY: usize = 2;
    let golden = golden();
    let mut random = Random(0x5EED_0F7E_57AB);
    let mut total = 0;
    let mut decoded = 0;
    for kind in MessageKind::ALL {
        let family_golden: Vec<Vec<u8>> = golden[kind.name()]
            .iter()
            .map(|(_, bytes)| bytes.clone())
            .collect();
        for run in 0..RUNS_PER_FAMILY {
            let inputs = random_inputs(&mut random, &family_golden, PER_RUN);
            let stdin: String = inputs.iter().map(|bytes| hex(bytes) + "\n").collect();
            // Empty inputs are blank lines, which stdin skips: give those as arguments.
            let mut args = vec!["wire", "decode", "--kind", kind.name(), "--json", "--hex", "-"];
            if run == 0 {
                args.extend(["--hex", ""]);
            }
            let out = vmm(&args, Some(&stdin));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                matches!(out.status.code(), Some(0 | 2)),
                "{kind}: status {:?}: {stderr}",
                out.status
            );
            assert!(!stderr.contains("panicked"), "{kind}: {stderr}");
            assert!(stderr.lines().count() <= 1, "{kind}: {stderr}");
            let lines = stdout_lines(&out);
            let expected: Vec<&Vec<u8>> = inputs.iter().filter(|bytes| !bytes.is_empty()).collect();
            let extra = usize::from(run == 0);
            assert_eq!(lines.len(), expected.len() + extra, "{kind}: one line per input");
            if run == 0 {
                assert_eq!(
                    lines.last().map(String::as_str),
                    Some(r#"{"error":"input ends inside the message"}"#)
                );
            }
            for (bytes, line) in expected.iter().zip(&lines) {
                let printed: Value = serde_json::from_str(line).expect("a JSON line");
                assert_eq!(printed, expected_json(kind, bytes), "{kind}: {}", hex(bytes));
                decoded += usize::from(printed.get("error").is_none());
            }
            total += lines.len();
        }
    }
    assert!(total >= 4000, "{total} inputs");
    // The damaged vectors make some inputs decode, not only fail at the first byte.
    assert!(decoded > 200, "only {decoded} of {total} decoded");
}
