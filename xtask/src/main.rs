//! `cargo xtask`: the project's build and test driver.
//!
//! - `cargo xtask test`: every test tier (see `TIERS`); exits non-zero on the first failure.
//! - `cargo xtask run`: the main job: builds the seL4 kernel with VT-x, the guest, the root
//!   task and the components, boots them in Bochs (QEMU on KVM where KVM offers VT-x), streams
//!   the serial line and ends with the exit statistics.
//! - `cargo xtask run -- ARGS`: builds and runs the host tool `vmm` with ARGS (e.g. `run`: the
//!   model VCPU's guest through both servers as Linux processes).
//! - `cargo xtask oracle [...]`: only the VMX oracle tier (see `oracle`).
//! - `cargo xtask sel4-kernel [NAME...]`: builds the seL4 kernel configurations NAME (default:
//!   all; see `sel4::kernel`) and prints where they are.
//! - `cargo xtask sel4-qemu`: only the seL4-in-QEMU tier, printing the serial output.
//! - `cargo xtask sel4-bochs [--model M] [--timeout S] [--marker TEXT] [KERNEL [ROOT_TASK]]`:
//!   boots seL4 images in Bochs by hand (see `sel4::bochs::main`).

mod apt;
mod oracle;
mod sel4;

use std::process::{Command, ExitCode};
use std::time::Instant;

/// One step of `cargo xtask test`: a name and the cargo arguments that run it.
struct Step {
    name: &'static str,
    cargo_args: &'static [&'static str],
}

/// Tier 1 (host unit and property tests) and the static checks. Later tiers are added here.
const TIERS: &[Step] = &[
    Step {
        name: "format",
        cargo_args: &["fmt", "--all", "--", "--check"],
    },
    Step {
        name: "clippy",
        cargo_args: &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
    },
    Step {
        name: "clippy (vmcs with the vmx backend)",
        cargo_args: &[
            "clippy",
            "-p",
            "vmcs",
            "--features",
            "vmx",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    },
    Step {
        name: "component crates build without std",
        cargo_args: &[
            "build",
            "--manifest-path",
            "no-std-check/Cargo.toml",
            "--target-dir",
            "target/no-std-check",
        ],
    },
    Step {
        name: "unit, property and message-level tests",
        cargo_args: &["test", "--workspace"],
    },
    Step {
        name: "vmx backend doc tests (type-level VMCS rules)",
        cargo_args: &["test", "-p", "vmcs", "--features", "vmx", "--doc"],
    },
    Step {
        name: "docs build (warnings are errors)",
        cargo_args: &["doc", "--workspace", "--no-deps"],
    },
];

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn test() -> ExitCode {
    let mut summary = Vec::new();
    for step in TIERS {
        eprintln!("xtask: {} (cargo {})", step.name, step.cargo_args.join(" "));
        let started = Instant::now();
        let status = cargo()
            .args(step.cargo_args)
            .env("RUSTDOCFLAGS", "-D warnings")
            .status();
        let seconds = started.elapsed().as_secs_f64();
        match status {
            Ok(s) if s.success() => summary.push(format!("  ok    {:<45} {seconds:6.1} s", step.name)),
            Ok(s) => {
                eprintln!("xtask: {} FAILED ({s})", step.name);
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("xtask: could not start cargo for {}: {e}", step.name);
                return ExitCode::FAILURE;
            }
        }
    }
    let started = Instant::now();
    eprintln!("xtask: seL4 in QEMU (root task, VMM server, device model, monitor; model VCPU)");
    match sel4::qemu_tier(false) {
        Ok(result) => summary.push(format!(
            "  ok    {:<45} {:6.1} s  ({result})",
            "seL4 in QEMU",
            started.elapsed().as_secs_f64()
        )),
        Err(e) => {
            eprintln!("xtask: seL4 in QEMU FAILED: {e}");
            return ExitCode::FAILURE;
        }
    }
    let started = Instant::now();
    eprintln!("xtask: VT-x guest on seL4 (kernel with VT-x, real VCPU and EPT, in Bochs)");
    match sel4::vtx_tier(false) {
        Ok(result) => summary.push(format!(
            "  ok    {:<45} {:6.1} s  ({result})",
            "VT-x guest on seL4",
            started.elapsed().as_secs_f64()
        )),
        Err(e) => {
            eprintln!("xtask: VT-x guest on seL4 FAILED: {e}");
            return ExitCode::FAILURE;
        }
    }
    let started = Instant::now();
    eprintln!("xtask: VMX oracle (the vmcs crate against Bochs' VMX)");
    match oracle::run(&oracle::Options::default()) {
        Ok(result) => summary.push(format!(
            "  ok    {:<45} {:6.1} s  ({result})",
            "VMX oracle",
            started.elapsed().as_secs_f64()
        )),
        Err(e) => {
            eprintln!("xtask: VMX oracle FAILED: {e}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!("xtask: all tiers passed\n{}", summary.join("\n"));
    ExitCode::SUCCESS
}

/// `cargo run` of the host tool `vmm` (release); the caller adds its arguments.
fn vmm_tool() -> Command {
    let mut command = cargo();
    command.args([
        "run",
        "--quiet",
        "--release",
        "--package",
        "root-task",
        "--bin",
        "vmm",
        "--",
    ]);
    command
}

fn run(args: &[String]) -> ExitCode {
    let status = vmm_tool().args(args).status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().map_or(1, |c| c.clamp(1, 255) as u8)),
        Err(e) => {
            eprintln!("xtask: could not start cargo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("oracle") => oracle::main(&args[1..]),
        Some("sel4-kernel") => match sel4::kernel::main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtask: sel4-kernel: {e}");
                ExitCode::FAILURE
            }
        },
        Some("sel4-bochs") => match sel4::bochs::main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtask: sel4-bochs: {e}");
                ExitCode::FAILURE
            }
        },
        Some("sel4-qemu") => match sel4::qemu_tier(true) {
            Ok(summary) => {
                eprintln!("xtask: sel4-qemu: {summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask: sel4-qemu: {e}");
                ExitCode::FAILURE
            }
        },
        Some("run") => {
            let rest = match args.get(1).map(String::as_str) {
                Some("--") => &args[2..],
                _ => &args[1..],
            };
            if rest.is_empty() {
                // The main job: the VT-x guest on seL4, its serial line streamed.
                match sel4::vtx_tier(true) {
                    Ok(summary) => {
                        eprintln!("xtask: run: {summary}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("xtask: run: {e}");
                        ExitCode::FAILURE
                    }
                }
            } else {
                run(rest)
            }
        }
        _ => {
            eprintln!(
                "usage: cargo xtask test | cargo xtask oracle [OPTIONS] | cargo xtask run [-- VMM-ARGS] \
                 | cargo xtask sel4-kernel [NAME...] | cargo xtask sel4-qemu | cargo xtask sel4-bochs [...]"
            );
            ExitCode::from(2)
        }
    }
}
