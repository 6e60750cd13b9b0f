//! The `vmm` tool, run as a user runs it.

use std::process::{Command, Output};

fn vmm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(args)
        .output()
        .expect("vmm runs")
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = vmm(args);
    assert!(
        out.status.success(),
        "vmm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON value")
}

#[test]
fn fields_lists_the_whole_catalogue_as_json() {
    let value = json(&["fields", "--json"]);
    let rows = value.as_array().unwrap();
    assert_eq!(rows.len(), vmcs::FIELDS.len());
    let rip = rows.iter().find(|r| r["encoding"] == "0x681e").unwrap();
    assert_eq!(rip["name"], "Guest RIP");
    assert_eq!(rip["width"], "natural");
    assert_eq!(rip["category"], "guest");
    let reason = rows.iter().find(|r| r["encoding"] == "0x4402").unwrap();
    assert_eq!(reason["category"], "read-only");
    assert_eq!(reason["width"], "32");
    let tertiary = rows.iter().find(|r| r["encoding"] == "0x2034").unwrap();
    assert_eq!(tertiary["width"], "64");
    assert_eq!(tertiary["category"], "control");
}

#[test]
fn fields_prints_a_table_by_default() {
    let out = vmm(&["fields"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("0x681e"));
    assert!(text.contains("Guest RIP"));
    assert!(
        text.trim_end()
            .ends_with(&format!("{} fields", vmcs::FIELDS.len()))
    );
}
