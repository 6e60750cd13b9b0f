//! The seL4 system tier: builds the freestanding images (components, then the root task that
//! embeds them) for one kernel configuration, boots them in QEMU and checks what the serial
//! line shows.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::kernel::KernelBuild;

/// The package of the root task and the components.
const SYSTEM_MANIFEST: &str = "root-task/sel4/Cargo.toml";
/// The bindings' workspace (host tests).
const BINDINGS_MANIFEST: &str = "sel4/Cargo.toml";
/// The components, by binary name; the root task embeds them from one directory.
const COMPONENTS: &[&str] = &["vmm-server", "device-model", "monitor"];
/// What a boot must show beyond the common checks.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The guest's greeting on the serial line.
    pub greeting: &'a str,
    /// Lines that must appear (each a substring of one line), with what they show.
    pub lines: &'a [(&'a str, &'a str)],
}

/// The model VCPU's bundled guest (QEMU).
pub const MODEL_GUEST: Expected<'static> = Expected {
    greeting: "Hello from the guest",
    lines: &[],
};

/// The VT-x guest (`guest/vtx-hello`) on a real VCPU: every exit reason it causes, first seen
/// with the decoded qualification the device model printed (`first exit REASON at RIP: ...`).
pub const VTX_GUEST: Expected<'static> = Expected {
    greeting: "Hello from a VT-x guest on seL4",
    lines: &[
        (
            "an IN from the UART's LSR (I/O, reason 30)",
            "Io { port: 1021, size: Byte, direction: In, string: false, rep: false",
        ),
        ("CPUID leaf 0 (reason 10)", "Cpuid { leaf: 0, subleaf: 0 }"),
        ("RDMSR IA32_APIC_BASE (reason 31)", "Rdmsr { index: 27 }"),
        (
            "a read at unmapped guest-physical 0xFEC00000 (EPT violation, reason 48: data read, linear address valid and translated)",
            "Mmio { gpa: 4273995776, gla: Some(4273995776), access: Read, qualification: 385",
        ),
        ("HLT (reason 12)", ": Hlt"),
        (
            "the UART's interrupt injected once",
            "vmm interrupts-raised 1 events-injected 1",
        ),
        (
            "the interrupt taken and the stop through the debug-exit port",
            "ok guest exit-status 0",
        ),
    ],
};
/// Marker of every line the root task writes for the test.
const MARKER: &str = "SEL4-SYSTEM:";

/// The images of one configuration.
#[derive(Debug)]
pub struct Images {
    /// The root task (ELF64, the multiboot module QEMU passes to the kernel).
    pub root_task: PathBuf,
}

fn run(what: &str, command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// Environment every build of the bindings needs: the staged tree and the configuration.
fn kernel_env(command: &mut Command, kernel: &KernelBuild) {
    command
        .env("SEL4_KERNEL_TREE", &kernel.tree)
        .env("SEL4_AUTOCONF", &kernel.autoconf);
}

/// Host tests of the bindings (generated values, layouts) and of the system's own modules.
///
/// # Errors
/// A test failed.
pub fn host_tests(root: &Path, kernel: &KernelBuild, config_name: &str) -> Result<(), String> {
    let target = root.join("target/sel4").join(config_name).join("host");
    for (what, manifest, extra) in [
        (
            "seL4 bindings: format",
            BINDINGS_MANIFEST,
            // A virtual manifest: `--all` names its members.
            &["fmt", "--all", "--check"][..],
        ),
        (
            "seL4 bindings: clippy",
            BINDINGS_MANIFEST,
            &["clippy", "--quiet", "--all-targets", "--", "-D", "warnings"][..],
        ),
        (
            "seL4 bindings: tests",
            BINDINGS_MANIFEST,
            &["test", "--quiet"][..],
        ),
        ("seL4 system: format", SYSTEM_MANIFEST, &["fmt", "--check"][..]),
        (
            "seL4 system: tests",
            SYSTEM_MANIFEST,
            &["test", "--quiet", "--lib"][..],
        ),
    ] {
        let mut command = crate::cargo();
        let (subcommand, rest) = extra.split_first().unwrap_or((&"test", &[]));
        command
            .arg(subcommand)
            .arg("--manifest-path")
            .arg(root.join(manifest))
            .args(rest)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS");
        kernel_env(&mut command, kernel);
        run(what, &mut command)?;
    }
    Ok(())
}

/// Builds the guest image, the components and the root task for `kernel`'s configuration.
///
/// # Errors
/// A build step failed.
pub fn build_images(
    root: &Path,
    kernel: &KernelBuild,
    config_name: &str,
    vtx_guest: Option<&Path>,
) -> Result<Images, String> {
    let out = root.join("target/sel4").join(config_name);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let guest = out.join("guest.postcard");
    run(
        "guest image",
        crate::vmm_tool()
            .args(["run", "--export-guest"])
            .arg(&guest)
            .stdout(Stdio::null()),
    )?;

    let target = out.join("images");
    let components = out.join("components");
    std::fs::create_dir_all(&components).map_err(|e| format!("{}: {e}", components.display()))?;
    // Static code at fixed addresses, no red zone, for the host target (no bare-metal target on
    // stable without rust-src); the package's build script adds the linker script.
    let rustflags = ["-Crelocation-model=static", "-Cno-redzone=yes"].join("\u{1f}");
    // `args` go to cargo; `tool_args` after a `--` (to clippy).
    let image_build = |what: &str, args: &[&str], tool_args: &[&str]| -> Result<(), String> {
        let mut command = crate::cargo();
        command
            .args(args)
            .arg("--manifest-path")
            .arg(root.join(SYSTEM_MANIFEST))
            .args(["--target", "x86_64-unknown-linux-gnu"])
            .args(tool_args)
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO_ENCODED_RUSTFLAGS", &rustflags)
            .env_remove("RUSTFLAGS")
            .env("SEL4_GUEST_IMAGE", &guest)
            .env("SEL4_COMPONENTS_DIR", &components);
        if let Some(guest) = vtx_guest {
            command.env("SEL4_VTX_GUEST", guest);
        }
        kernel_env(&mut command, kernel);
        run(what, &mut command)
    };
    let mut component_args = vec!["build", "--quiet", "--release"];
    for c in COMPONENTS {
        component_args.extend(["--bin", c]);
    }
    image_build("seL4 components", &component_args, &[])?;
    let built = target.join("x86_64-unknown-linux-gnu/release");
    for c in COMPONENTS {
        std::fs::copy(built.join(c), components.join(c)).map_err(|e| format!("component {c}: {e}"))?;
    }
    image_build(
        "seL4 root task",
        &["build", "--quiet", "--release", "--bin", "root-task"],
        &[],
    )?;
    // With every input present, clippy sees all four images.
    image_build(
        "seL4 system: clippy",
        &["clippy", "--quiet", "--release", "--bins"],
        &["--", "-D", "warnings"],
    )?;
    Ok(Images {
        root_task: built.join("root-task"),
    })
}

/// What a QEMU boot produced.
#[derive(Debug)]
pub struct Boot {
    /// Everything on the serial line.
    pub serial: String,
    /// From starting QEMU to the root task's verdict line.
    pub seconds: f64,
    /// QEMU's exit status (`isa-debug-exit`: value * 2 + 1), if it ended by itself.
    pub exit_code: Option<i32>,
}

/// QEMU's CPU for the kernel without VT-x: what the kernel configuration assumes (no x2APIC,
/// no XSAVE, FSGSBASE through the MSRs), enforced (see notes/sel4-5.0-build-and-boot.md).
const QEMU_CPU: &str = "Nehalem,-vme,+pdpe1gb,-xsave,-xsaveopt,-xsavec,-fsgsbase,-invpcid,enforce";

/// Boots `kernel32` with `root_task` in QEMU (TCG) until the root task's verdict or `timeout`.
///
/// # Errors
/// QEMU could not start.
pub fn boot_qemu(kernel32: &Path, root_task: &Path, timeout: Duration) -> Result<Boot, String> {
    let started = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-machine", "pc", "-cpu", QEMU_CPU, "-m", "512M", "-display", "none",
        ])
        .args(["-serial", "stdio", "-monitor", "none", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-kernel")
        .arg(kernel32)
        .arg("-initrd")
        .arg(root_task)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start qemu-system-x86_64: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no QEMU stdout")?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut serial = Vec::new();
    let mut verdict_at = None;
    while started.elapsed() < timeout {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(chunk) => {
                serial.extend_from_slice(&chunk);
                let text = String::from_utf8_lossy(&serial);
                if verdict_at.is_none() && verdict(&text).is_some() {
                    verdict_at = Some(started.elapsed().as_secs_f64());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if verdict_at.is_some_and(|at| started.elapsed().as_secs_f64() > at + 2.0) {
            break;
        }
    }
    // QEMU ends by itself after the verdict (the exit port); otherwise it is stopped here.
    let exit_code = match child.try_wait() {
        Ok(Some(status)) => status.code(),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    };
    let _ = reader.join();
    while let Ok(chunk) = rx.try_recv() {
        serial.extend_from_slice(&chunk);
    }
    Ok(Boot {
        serial: String::from_utf8_lossy(&serial).into_owned(),
        seconds: verdict_at.unwrap_or_else(|| started.elapsed().as_secs_f64()),
        exit_code,
    })
}

/// The root task's verdict line, if it is there: `Some(true)` for PASS. A panic of any image or
/// a component's fault is a verdict too (FAIL): no PASS can follow.
fn verdict(serial: &str) -> Option<bool> {
    serial
        .lines()
        .find_map(|line| match line.split_once(MARKER)?.1.trim() {
            "PASS" => Some(true),
            "FAIL" => Some(false),
            rest if rest.starts_with("FAIL fault in ") || rest.contains(" panicked: ") => Some(false),
            _ => None,
        })
}

/// The numbers the checks found.
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    /// VM exits (and exit records).
    pub exits: u64,
    /// Replies the VMM server received.
    pub replies: u64,
    /// Exit records the device model received.
    pub dm_records: u64,
}

/// The value after `key` in the root task's line that contains `key` (`... key N ...`).
fn number_after(serial: &str, key: &str) -> Option<u64> {
    serial
        .lines()
        .filter(|line| line.contains(MARKER))
        .find_map(|line| line.split_once(key)?.1.split_whitespace().next()?.parse().ok())
}

/// Checks a boot's serial output: the guest's greeting on the serial line, the root task's
/// checks (probes, counts), and the verdict.
///
/// # Errors
/// What is missing or wrong, with the serial output's tail.
pub fn check(boot: &Boot, expected: &Expected<'_>) -> Result<Summary, String> {
    let serial = &boot.serial;
    let mut problems = Vec::new();
    match verdict(serial) {
        Some(true) => {}
        Some(false) => problems.push("the root task's verdict is FAIL".to_string()),
        None => problems.push(format!("no verdict within {:.0} s", boot.seconds)),
    }
    for line in serial.lines().filter(|l| l.contains(&format!("{MARKER} FAIL"))) {
        problems.push(line.trim().to_string());
    }
    if !serial.contains(expected.greeting) {
        problems.push(format!(
            "the guest's \"{}\" is not on the serial line",
            expected.greeting
        ));
    }
    for (what, needle) in [
        (
            "forbidden request refused",
            "ok device-model forbidden-request Some(Forbidden)",
        ),
        (
            "never-granted slot fails",
            "ok device-model never-granted-slot kernel-error Some(2)",
        ),
        ("monitor reads", "ok monitor read guest-rip Some("),
        (
            "monitor may not write",
            "ok monitor write refused Some(Forbidden)",
        ),
    ] {
        if !serial.contains(needle) {
            problems.push(format!("{what}: no `{needle}` line"));
        }
    }
    for (what, needle) in expected.lines {
        if !serial.contains(needle) {
            problems.push(format!("{what}: no `{needle}` line"));
        }
    }
    let exits = number_after(serial, "vmm exits").unwrap_or(0);
    let records = number_after(serial, "records-sent").unwrap_or(0);
    let replies = number_after(serial, "replies-received").unwrap_or(0);
    let dm_records = number_after(serial, "records-received").unwrap_or(0);
    let dm_replies = number_after(serial, "replies-sent").unwrap_or(0);
    if exits == 0
        || [records, replies, dm_records, dm_replies]
            .iter()
            .any(|&n| n != exits)
    {
        problems.push(format!(
            "exits {exits}, records sent {records}, replies received {replies}, records received by the device model {dm_records}, replies sent {dm_replies}: not all equal and non-zero"
        ));
    }
    if boot.exit_code.is_some_and(|code| code != 1) {
        problems.push(format!("QEMU exited with {:?} (1 is a pass)", boot.exit_code));
    }
    if problems.is_empty() {
        Ok(Summary {
            exits,
            replies,
            dm_records,
        })
    } else {
        let tail: Vec<&str> = serial.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!(
            "{}\n--- serial (last 40 lines) ---\n{}",
            problems.join("\n"),
            tail.join("\n")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passing_serial() -> String {
        [
            "Booting all finished, dropped to user space",
            "root-task: started device-model (entry 0x400000)",
            "Hello from the guest",
            "root-task: SEL4-SYSTEM: ok device-model hello",
            "root-task: SEL4-SYSTEM: ok device-model forbidden-request Some(Forbidden)",
            "root-task: SEL4-SYSTEM: ok device-model never-granted-slot kernel-error Some(2) (InvalidCapability = 2)",
            "root-task: SEL4-SYSTEM: ok monitor read guest-rip Some(0)",
            "root-task: SEL4-SYSTEM: ok monitor write refused Some(Forbidden)",
            "root-task: SEL4-SYSTEM: ok vmm exits 51 records-sent 51 replies-received 51",
            "root-task: SEL4-SYSTEM: ok device-model records-received 51 replies-sent 51 malformed 0 uart-bytes 21",
            "root-task: SEL4-SYSTEM: PASS",
        ]
        .join("\n")
    }

    fn boot(serial: String) -> Boot {
        Boot {
            serial,
            seconds: 1.0,
            exit_code: Some(1),
        }
    }

    #[test]
    fn a_passing_run_is_summarised() {
        assert_eq!(
            check(&boot(passing_serial()), &MODEL_GUEST).unwrap(),
            Summary {
                exits: 51,
                replies: 51,
                dm_records: 51
            }
        );
    }

    #[test]
    fn every_missing_piece_fails_the_check() {
        for (from, to) in [
            ("Hello from the guest", "Hello from the"),
            ("SEL4-SYSTEM: PASS", "SEL4-SYSTEM: FAIL"),
            (
                "Some(Forbidden)\nroot-task: SEL4-SYSTEM: ok device-model never",
                "None\nroot-task: SEL4-SYSTEM: ok device-model never",
            ),
            ("kernel-error Some(2)", "kernel-error None"),
            ("write refused Some(Forbidden)", "write refused None"),
            ("records-received 51", "records-received 50"),
            ("replies-received 51", "replies-received 0"),
        ] {
            let serial = passing_serial().replacen(from, to, 1);
            assert_ne!(serial, passing_serial(), "{from}");
            assert!(check(&boot(serial), &MODEL_GUEST).is_err(), "{from} -> {to}");
        }
        for line in [
            "vmm-server: SEL4-SYSTEM: FAIL vmm-server panicked: panicked at src/bin/vmm-server.rs:1:1",
            "root-task: SEL4-SYSTEM: FAIL fault in monitor: label 5",
        ] {
            assert_eq!(verdict(line), Some(false), "{line}");
        }
        assert_eq!(
            verdict("root-task: SEL4-SYSTEM: FAIL guest exit-status 3"),
            None,
            "a check, not the verdict"
        );
        let mut wrong_exit = boot(passing_serial());
        wrong_exit.exit_code = Some(3);
        assert!(check(&wrong_exit, &MODEL_GUEST).is_err());
        assert!(check(&boot(String::new()), &MODEL_GUEST).is_err());
        // An expected line missing fails too.
        assert!(check(&boot(passing_serial()), &VTX_GUEST).is_err());
    }
}
