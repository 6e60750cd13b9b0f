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

const SKYLAKE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vmcs/testdata/caps/bochs-corei7_skylake_x.json"
);

fn refused(args: &[&str]) -> String {
    let out = vmm(args);
    assert_eq!(out.status.code(), Some(2), "vmm {args:?} should refuse");
    let message = String::from_utf8(out.stderr).unwrap();
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    message
}

#[test]
fn decode_matches_exits_observed_in_bochs() {
    let out = json(&[
        "decode",
        "--reason",
        "30",
        "--qualification",
        "0x03F80000",
        "--json",
    ]);
    assert_eq!(out["reason"]["number"], 30);
    assert_eq!(out["reason"]["entry_failure"], false);
    let d = &out["detail"];
    assert_eq!(
        (d["kind"].as_str(), d["port"].as_u64(), d["size"].as_u64()),
        (Some("io"), Some(1016), Some(1))
    );
    assert_eq!(
        (d["direction"].as_str(), d["string"].as_bool(), d["rep"].as_bool()),
        (Some("out"), Some(false), Some(false))
    );
    assert_eq!(d["immediate"], false);

    let d = &json(&[
        "decode",
        "--reason",
        "30",
        "--qualification",
        "0x03F80008",
        "--json",
    ])["detail"];
    assert_eq!(d["direction"], "in");

    let d = &json(&["decode", "--reason", "48", "--qualification", "0x181", "--json"])["detail"];
    assert_eq!(d["kind"], "ept-violation");
    for (flag, expected) in [
        ("read", true),
        ("write", false),
        ("fetch", false),
        ("readable", false),
        ("writable", false),
        ("executable", false),
        ("linear_address_valid", true),
        ("translation", true),
        ("nmi_unblocking", false),
    ] {
        assert_eq!(d[flag], expected, "{flag}");
    }

    let d = &json(&[
        "decode",
        "--reason",
        "0",
        "--interruption-info",
        "0x80000306",
        "--json",
    ])["detail"];
    assert_eq!(d["kind"], "exception");
    assert_eq!(d["vector"], 6);
    assert_eq!(d["type"], "hardware-exception");
    assert_eq!(
        (d["error_code_valid"].as_bool(), d["valid"].as_bool()),
        (Some(false), Some(true))
    );
}

#[test]
fn decode_cr_access_keeps_the_whole_lmsw_operand() {
    let d = &json(&[
        "decode",
        "--reason",
        "28",
        "--qualification",
        "0xFFFF0070",
        "--json",
    ])["detail"];
    assert_eq!(
        (d["access"].as_str(), d["lmsw_source"].as_str()),
        (Some("lmsw"), Some("memory"))
    );
    assert_eq!(d["lmsw_data"], 0xFFFF);
    let d = &json(&["decode", "--reason", "28", "--qualification", "0x800", "--json"])["detail"];
    assert_eq!(
        (d["access"].as_str(), d["cr"].as_u64(), d["gpr"].as_u64()),
        (Some("mov-to-cr"), Some(0), Some(8))
    );
}

#[test]
fn decode_reports_entry_failures_and_unknown_reasons() {
    let out = json(&["decode", "--reason", "0x80000021", "--json"]);
    assert_eq!(out["reason"]["number"], 33);
    assert_eq!(out["reason"]["entry_failure"], true);
    let out = json(&["decode", "--reason", "9999", "--qualification", "5", "--json"]);
    assert_eq!(out["reason"]["number"], 9999);
    assert_eq!(out["detail"]["kind"], "other");
}

#[test]
fn decode_refuses_reserved_encodings() {
    let message = refused(&["decode", "--reason", "30", "--qualification", "0x2", "--json"]);
    assert!(message.contains("size"), "{message}");
    refused(&["decode", "--reason", "notanumber"]);
}

#[test]
fn controls_gives_the_values_that_ran_a_guest_in_bochs() {
    let cases: [(&str, &str, &str, &str); 7] = [
        ("pin", "", "", "0x00000016"),
        ("primary", "7,24", "", "0x0501e1f2"),
        ("primary", "7,24", "15,16", "0x050061f2"),
        ("exit", "9", "", "0x00036fff"),
        ("exit", "9", "2", "0x00036ffb"),
        ("entry", "9", "", "0x000013ff"),
        ("entry", "9", "2", "0x000013fb"),
    ];
    for (control, set, clear, expected) in cases {
        let out = json(&[
            "controls",
            "--caps",
            SKYLAKE,
            "--control",
            control,
            "--set",
            set,
            "--clear",
            clear,
            "--json",
        ]);
        assert_eq!(out["value"], expected, "{control} set {set} clear {clear}");
        assert_eq!(out["control"], control);
        assert_eq!(out["true_msrs"], true);
    }
}

#[test]
fn controls_refuses_what_the_hardware_would() {
    let message = refused(&[
        "controls",
        "--caps",
        SKYLAKE,
        "--control",
        "tertiary",
        "--set",
        "1",
    ]);
    assert!(
        message.contains("17"),
        "names the missing activation bit: {message}"
    );
    let message = refused(&[
        "controls",
        "--caps",
        SKYLAKE,
        "--control",
        "primary",
        "--set",
        "7",
        "--clear",
        "7",
    ]);
    assert!(message.contains('7'), "{message}");
    refused(&[
        "controls",
        "--caps",
        SKYLAKE,
        "--control",
        "primary",
        "--clear",
        "1",
    ]);
    refused(&["controls", "--caps", "/nonexistent.json", "--control", "pin"]);
    refused(&["controls", "--caps", SKYLAKE, "--control", "sideways"]);
}

#[test]
fn inject_builds_entry_fields() {
    let out = json(&["inject", "--vector", "13", "--error-code", "0", "--json"]);
    assert_eq!(out["interruption_info"], "0x80000b0d");
    assert_eq!(out["error_code"], "0x0");
    assert_eq!(out["instruction_len"], serde_json::Value::Null);
    let out = json(&["inject", "--vector", "21", "--error-code", "0x3", "--json"]);
    assert_eq!(
        out["interruption_info"], "0x80000b15",
        "#CP is a hardware exception with an error code"
    );
    let out = json(&["inject", "--vector", "2", "--json"]);
    assert_eq!(out["interruption_info"], "0x80000202");
    let out = json(&["inject", "--vector", "0x30", "--json"]);
    assert_eq!(out["interruption_info"], "0x80000030");
    let out = json(&[
        "inject",
        "--vector",
        "0x80",
        "--type",
        "software-interrupt",
        "--instruction-len",
        "2",
        "--json",
    ]);
    assert_eq!(
        (out["interruption_info"].as_str(), out["instruction_len"].as_u64()),
        (Some("0x80000480"), Some(2))
    );
    let out = json(&[
        "inject",
        "--vector",
        "13",
        "--error-code",
        "0",
        "--cr0",
        "0",
        "--json",
    ]);
    assert_eq!(
        out["error_code"],
        serde_json::Value::Null,
        "no error code in real mode"
    );
    refused(&["inject", "--vector", "14"]);
    refused(&["inject", "--vector", "6", "--error-code", "0"]);
    refused(&["inject", "--vector", "256"]);
    refused(&["inject", "--vector", "3", "--type", "software-exception"]);
}

/// Random arguments never crash the tool: every run ends with status 0 or 2.
#[test]
fn random_arguments_never_crash() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    let number = prop_oneof![
        any::<u64>().prop_map(|v| format!("{v:#x}")),
        any::<u32>().prop_map(|v| v.to_string()),
        "[0-9a-zx,]{0,12}"
    ];
    let strategy = (0usize..3, number.clone(), number.clone(), number.clone(), number);
    runner
        .run(&strategy, |(which, a, b, c, d)| {
            let args: Vec<&str> = match which {
                0 => vec![
                    "decode",
                    "--reason",
                    &a,
                    "--qualification",
                    &b,
                    "--interruption-info",
                    &c,
                    "--instruction-info",
                    &d,
                    "--json",
                ],
                1 => vec![
                    "inject",
                    "--vector",
                    &a,
                    "--error-code",
                    &b,
                    "--instruction-len",
                    &c,
                    "--cr0",
                    &d,
                    "--json",
                ],
                _ => vec![
                    "controls",
                    "--caps",
                    SKYLAKE,
                    "--control",
                    "primary",
                    "--set",
                    &a,
                    "--clear",
                    &b,
                    "--previous",
                    &c,
                ],
            };
            let code = vmm(&args).status.code();
            prop_assert!(
                code == Some(0) || code == Some(2),
                "vmm {:?} exited {:?}",
                args,
                code
            );
            Ok(())
        })
        .unwrap();
}
