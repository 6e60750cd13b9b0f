//! Debian packages the xtask steps need: probe for them, install the missing ones when running
//! as root, or fail with the exact command to run.
//!
//! Each package comes with a probe (a program on PATH or a file it installs), so that a
//! machine that has the tool from elsewhere is not asked to install anything.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How to tell that a package's contribution is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A program on PATH.
    Program(&'static str),
    /// A file at an absolute path (data files, plugins, firmware images).
    File(&'static str),
    /// A module the system Python (Debian's `/usr/bin/python3`) can import.
    PythonModule(&'static str),
}

impl Probe {
    /// Whether the probed program or file is there.
    pub fn present(self) -> bool {
        match self {
            Probe::Program(program) => on_path(program).is_some(),
            Probe::File(path) => Path::new(path).is_file(),
            Probe::PythonModule(module) => python_imports(&system_python(), module),
        }
    }
}

/// A Debian package and how to tell that it is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package {
    /// The package name, as `apt-get install` takes it.
    pub name: &'static str,
    /// What it provides that the step uses.
    pub probe: Probe,
}

/// The term display plugin of Bochs (package `bochs-term`).
pub const BOCHS_TERM_PLUGIN: &str = "/usr/lib/x86_64-linux-gnu/bochs/plugins/libbx_term_gui.so";

/// Bochs with VMX (Debian builds it with VMX and the internal debugger) and its terminal
/// display library: Bochs needs a display library even headless, and `term` works without a
/// terminal.
pub const BOCHS: [Package; 2] = [
    Package {
        name: "bochs",
        probe: Probe::Program("bochs-bin"),
    },
    Package {
        name: "bochs-term",
        probe: Probe::File(BOCHS_TERM_PLUGIN),
    },
];

/// The full path of `program` if it is on PATH.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Whether this process runs as root (and so may install packages).
/// The Python that runs the kernel's tools and makes their venv: Debian's own (the one
/// `python3-venv` completes) when it exists, whatever `python3` is on PATH otherwise.
pub fn system_python() -> PathBuf {
    let debian = Path::new("/usr/bin/python3");
    if debian.is_file() {
        debian.to_path_buf()
    } else {
        PathBuf::from("python3")
    }
}

/// Whether `python` can import `modules` (a comma-separated list, as `import` takes it).
pub fn python_imports(python: &Path, modules: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {modules}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The names of the packages whose probe fails, in the order given, without repeats.
pub fn missing(packages: &[Package]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for package in packages {
        if !names.contains(&package.name) && !package.probe.present() {
            names.push(package.name);
        }
    }
    names
}

/// The shell command that installs `names`, as a root user would type it.
pub fn install_command(names: &[&str]) -> String {
    format!(
        "apt-get update -qq && apt-get install -y -qq --no-install-recommends {}",
        names.join(" ")
    )
}

fn run_logged(program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("xtask: {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed ({status})", args.join(" ")))
    }
}

/// Makes sure every package of `packages` is present: installs the missing ones when running
/// as root, otherwise fails with the command to run. `purpose` names the step in messages
/// ("the oracle", "the seL4 Bochs runner").
pub fn ensure(purpose: &str, packages: &[Package]) -> Result<(), String> {
    let absent = missing(packages);
    if absent.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "{purpose} needs the Debian packages {}: run `{}` as root",
            absent.join(", "),
            install_command(&absent)
        ));
    }
    run_logged("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&absent);
    run_logged("apt-get", &args)?;
    let still = missing(packages);
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{purpose}: still missing after apt-get install: {}",
            still.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes() {
        assert!(Probe::Program("sh").present());
        assert!(!Probe::Program("no-such-program-xtask").present());
        assert!(Probe::File("/proc/self/status").present());
        assert!(!Probe::File("/no/such/file").present());
        // A directory is not a file.
        assert!(!Probe::File("/").present());
    }

    #[test]
    fn missing_keeps_order_and_drops_repeats() {
        let absent = Probe::File("/no/such/file");
        let packages = [
            Package {
                name: "b",
                probe: absent,
            },
            Package {
                name: "present",
                probe: Probe::Program("sh"),
            },
            Package {
                name: "a",
                probe: absent,
            },
            Package {
                name: "b",
                probe: Probe::Program("no-such-program-xtask"),
            },
        ];
        assert_eq!(missing(&packages), ["b", "a"]);
        assert!(missing(&packages[1..2]).is_empty());
        assert!(ensure("test", &packages[1..2]).is_ok());
    }

    #[test]
    fn install_command_text() {
        assert_eq!(
            install_command(&["grub-pc-bin", "xorriso"]),
            "apt-get update -qq && apt-get install -y -qq --no-install-recommends grub-pc-bin xorriso"
        );
    }
}
