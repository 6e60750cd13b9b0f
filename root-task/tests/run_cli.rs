//! `vmm run` as a user runs it: the bundled guest on every transport, and a device model
//! killed mid-run.

use std::process::Command;

fn run_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_vmm"))
        .arg("run")
        .args(args)
        .arg("--json")
        .output()
        .expect("vmm runs");
    assert!(
        out.status.success(),
        "vmm run {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn without_transport(mut v: serde_json::Value) -> serde_json::Value {
    let object = v.as_object_mut().unwrap();
    object.remove("transport");
    v
}

#[test]
fn every_transport_says_hello_with_the_same_statistics() {
    let reports: Vec<_> = ["inproc", "threads", "processes"]
        .iter()
        .map(|t| run_json(&["--transport", t]))
        .collect();
    for (transport, report) in ["inproc", "threads", "processes"].iter().zip(&reports) {
        assert_eq!(report["uart"], "Hello from the guest\n", "{transport}");
        assert_eq!(report["exit_status"], 0, "{transport}");
        assert_eq!(
            report["differences"],
            serde_json::json!([]),
            "{transport}: the guest's expectations"
        );
        assert_eq!(report["steps_played"], report["steps_total"], "{transport}");
        assert_eq!(report["transport"], *transport);
        // I/O, CPUID, HLT, RDMSR, EPT violation.
        for reason in ["30", "10", "12", "31", "48"] {
            assert!(
                report["exits"][reason].as_u64().unwrap_or(0) > 0,
                "{transport}: no exit {reason}"
            );
        }
        assert!(report["messages"].as_u64().unwrap() > 100);
    }
    let first = without_transport(reports[0].clone());
    for other in &reports[1..] {
        assert_eq!(
            without_transport(other.clone()),
            first,
            "statistics differ between transports"
        );
    }
    // An OUT costs no ReadVMCS/WriteVMCS.
    let io = &reports[0]["invocations"]["io"];
    assert_eq!(
        (io["read_vmcs"].as_u64(), io["write_vmcs"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn a_killed_device_model_is_restarted_and_no_output_is_lost_or_repeated() {
    for after in ["1", "7", "30"] {
        let report = run_json(&["--transport", "processes", "--kill-device-model-after", after]);
        assert_eq!(report["device_model_restarts"], 1, "killed after {after} exits");
        assert_eq!(
            report["uart"], "Hello from the guest\n",
            "killed after {after} exits"
        );
        assert_eq!(report["exit_status"], 0);
        assert_eq!(
            report["differences"],
            serde_json::json!([]),
            "killed after {after} exits: {report}"
        );
        assert_eq!(report["steps_played"], report["steps_total"]);
    }
}

#[test]
fn a_long_run_killed_deep_inside_prints_what_an_undisturbed_run_prints() {
    // Reports of many exits wait in the device model's ring when it dies; the composer reads
    // them to the end before the new device model starts.
    let undisturbed = run_json(&["--transport", "inproc", "--rounds", "40"]);
    for after in ["1234", "1999"] {
        let report = run_json(&[
            "--transport",
            "processes",
            "--rounds",
            "40",
            "--kill-device-model-after",
            after,
        ]);
        assert_eq!(report["device_model_restarts"], 1, "killed after {after} exits");
        assert_eq!(report["uart"], undisturbed["uart"], "killed after {after} exits");
        assert_eq!(report["differences"], serde_json::json!([]));
    }
}

/// The device-model processes among `parent`'s children.
fn device_models_of(parent: u32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The parent is the second field after the command's closing parenthesis.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains("__device-model") {
            found.push(pid);
        }
    }
    found
}

#[test]
fn device_models_killed_at_random_moments_lose_and_repeat_no_output() {
    let undisturbed = run_json(&["--transport", "inproc", "--rounds", "1500"]);
    let child = Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(["run", "--transport", "processes", "--rounds", "1500", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("vmm runs");
    let mut child = child;
    let mut kills = 0;
    // Pauses that fall anywhere in an exit, including between a report and its reply; the
    // first device model appears once the composer has built the script.
    let pauses = [15, 7, 23, 11, 5, 17];
    let started = std::time::Instant::now();
    while kills < pauses.len() && child.try_wait().unwrap().is_none() {
        let targets = device_models_of(child.id());
        if targets.is_empty() {
            assert!(started.elapsed().as_secs() < 60, "no device model appeared");
            std::thread::sleep(std::time::Duration::from_millis(1));
            continue;
        }
        std::thread::sleep(std::time::Duration::from_millis(pauses[kills]));
        for pid in targets {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
        kills += 1;
    }
    let out = child.wait_with_output().expect("vmm ends");
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert!(kills > 0, "the run ended before the first kill");
    assert!(report["device_model_restarts"].as_u64().unwrap() >= 1);
    assert_eq!(report["uart"], undisturbed["uart"], "{kills} kills");
    assert_eq!(report["exit_status"], 0);
    assert_eq!(report["differences"], serde_json::json!([]));
}

#[test]
fn text_output_streams_the_guest_and_ends_with_statistics() {
    let out = Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(["run", "--transport", "inproc"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("Hello from the guest\n"), "{text}");
    assert!(text.contains("exits by reason:"));
    assert!(text.contains("kernel invocations per exit"));
    assert!(text.contains("messages and bytes per boundary"));
}

#[test]
fn scripts_from_files_and_bad_scripts() {
    let dir = std::env::temp_dir().join(format!("vmm-run-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let printed = Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(["run", "--print-script"])
        .output()
        .unwrap();
    let path = dir.join("hello.json");
    std::fs::write(&path, &printed.stdout).unwrap();
    let report = run_json(&["--script", path.to_str().unwrap(), "--transport", "threads"]);
    assert_eq!(report["uart"], "Hello from the guest\n");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"steps\": 5}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(["run", "--script", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(["run", "--transport", "inproc", "--kill-device-model-after", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "killing needs processes");
    // A script whose guest expects something the VMM does not do: reported, not hidden.
    let wrong = r#"{"steps":[{"exit":{"reason":30,"qualification":66584576,"instruction_len":1},"expect":["rip-unchanged"]},
                             {"exit":{"reason":30,"qualification":15990784,"instruction_len":1},"expect":["stopped"]}]}"#;
    let wrong_path = dir.join("wrong.json");
    std::fs::write(&wrong_path, wrong).unwrap();
    let report = run_json(&["--script", wrong_path.to_str().unwrap(), "--transport", "inproc"]);
    assert_eq!(report["differences"].as_array().unwrap().len(), 1, "{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_reports_every_transport_with_median_and_best() {
    let out = Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(["bench", "--rounds", "3", "--repeat", "3", "--json"])
        .output()
        .expect("vmm runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = rows.as_array().expect("one row per transport");
    let names: Vec<_> = rows.iter().map(|r| r["transport"].as_str().unwrap()).collect();
    assert_eq!(names, ["inproc", "threads", "processes"]);
    for row in rows {
        assert_eq!(row["runs"], 3);
        // Three rounds of about 50 exits, the same on every transport.
        assert_eq!(row["exits"], rows[0]["exits"]);
        assert!(row["exits"].as_u64().unwrap() > 100);
        let median = row["exits_per_second"].as_f64().unwrap();
        let best = row["best_exits_per_second"].as_f64().unwrap();
        assert!(median > 0.0 && best >= median, "{row}");
    }
    assert_eq!(rows[0]["ratio_to_inproc"], 1.0);

    let refused = Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(["bench", "--repeat", "0"])
        .output()
        .expect("vmm runs");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--repeat"));
}
