//! Booting seL4 images where VT-x exists: Bochs (its VMX is a full software implementation;
//! this machine's KVM has none) from a GRUB multiboot ISO, or QEMU on a KVM that offers nested
//! VT-x.
//!
//! - [`ensure_tools`]: the Debian packages (Bochs, its BIOS images and term display, GRUB's
//!   BIOS platform and `grub-mkrescue` with what it calls).
//! - [`build_iso`]: kernel + root task into a GRUB ISO that boots at once, console on COM1.
//! - [`boot`]: one headless Bochs run from that ISO, COM1 to a file; ends at a line holding a
//!   marker the caller names, when Bochs ends, or at a timeout.
//! - [`kvm_offers_vtx`] and [`boot_qemu_kvm`]: the same kernel and root task in QEMU with
//!   `-enable-kvm -cpu host,+vmx`, for hosts whose KVM has nested VT-x.
//!
//! What a run leaves (configuration, serial output, logs) stays in a directory beside the
//! image, named in [`BootRun::dir`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::apt::{self, Package, Probe};

/// The Bochs BIOS (package `bochsbios`).
pub const BIOS: &str = "/usr/share/bochs/BIOS-bochs-latest";
/// The VGA BIOS (package `vgabios`). The kernel runs without video, but the BIOS expects a
/// VGA ROM.
pub const VGA_BIOS: &str = "/usr/share/vgabios/vgabios.bin";
/// A file of GRUB's BIOS platform (package `grub-pc-bin`), whose directory `grub-mkrescue`
/// builds the ISO's boot image from.
const GRUB_I386_PC: &str = "/usr/lib/grub/i386-pc/multiboot.mod";

/// The CPU model the seL4 5.0 VT-x kernel boots on: VMX with EPT, write-back EPT structures
/// and 2 MiB EPT pages, which the kernel's VT-x initialisation requires.
pub const DEFAULT_MODEL: &str = "corei7_haswell_4770";

/// Guest memory of the emulated PC, MiB.
pub const MEMORY_MIB: u32 = 512;

/// Emulated instructions per emulated second. Bochs counts emulated time in instructions
/// (`clock: sync=none`), so everything that waits for time (the BIOS' device timeouts, the
/// UART's bit times, the kernel's timer calibration) costs fewer host instructions at a low
/// rate: measured to the kernel's first line, 50 M took 6.6 s and 200 M 8.5 s against about
/// 3–4.5 s for 4 M and 10 M (noisy host). Much lower and the kernel's 2 ms timer tick comes
/// every few thousand instructions.
pub const IPS: u32 = 10_000_000;

/// Debian packages [`ensure_tools`] installs, each with what it must provide.
pub const PACKAGES: [Package; 8] = [
    apt::BOCHS[0],
    apt::BOCHS[1],
    Package {
        name: "bochsbios",
        probe: Probe::File(BIOS),
    },
    Package {
        name: "vgabios",
        probe: Probe::File(VGA_BIOS),
    },
    Package {
        name: "grub-pc-bin",
        probe: Probe::File(GRUB_I386_PC),
    },
    Package {
        name: "grub-common",
        probe: Probe::Program("grub-mkrescue"),
    },
    // grub-mkrescue writes the ISO with xorriso, and its EFI boot image (made whenever an EFI
    // platform is installed) with mtools' mformat.
    Package {
        name: "xorriso",
        probe: Probe::Program("xorriso"),
    },
    Package {
        name: "mtools",
        probe: Probe::Program("mformat"),
    },
];

/// Installs what [`build_iso`] and [`boot`] need when running as root; otherwise fails with
/// the `apt-get` command to run.
pub fn ensure_tools() -> Result<(), String> {
    apt::ensure("booting seL4 in Bochs", &PACKAGES)
}

// ---------------------------------------------------------------------------------------------
// The ISO
// ---------------------------------------------------------------------------------------------

/// Where [`build_iso`] puts the kernel and the root task inside the ISO.
const ISO_KERNEL: &str = "/boot/sel4-kernel";
const ISO_ROOT_TASK: &str = "/boot/sel4-root-task";

/// The GRUB configuration: no menu, no wait, the console on COM1 as a dumb terminal (GRUB's
/// own errors, e.g. a file it cannot load, show up in the serial output without escape
/// sequences), then the kernel by multiboot with the root task as its one module.
///
/// GRUB prints ``Booting `seL4'`` and, since the Bochs VGA has no VBE (`vga: extension=none`),
/// `error: Can't get controller info..` when the kernel's multiboot header asks about video;
/// both are harmless: the kernel boots after them.
pub fn grub_cfg() -> String {
    format!(
        "set timeout=0\n\
         set default=0\n\
         serial --unit=0 --speed=115200\n\
         terminfo serial dumb\n\
         terminal_input serial\n\
         terminal_output serial\n\
         menuentry \"seL4\" {{\n\
         \x20   multiboot {ISO_KERNEL}\n\
         \x20   module {ISO_ROOT_TASK}\n\
         }}\n"
    )
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

/// Builds `out_dir/sel4.iso`: GRUB (BIOS) booting `kernel` (the kernel ELF, 64- or 32-bit:
/// GRUB's multiboot loader takes both) with `root_task` as the module. The ISO's tree is
/// staged in `out_dir/iso-root/`. Returns the ISO's path.
pub fn build_iso(kernel: &Path, root_task: &Path, out_dir: &Path) -> Result<PathBuf, String> {
    let staging = out_dir.join("iso-root");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    }
    let grub_dir = staging.join("boot/grub");
    std::fs::create_dir_all(&grub_dir).map_err(|e| format!("{}: {e}", grub_dir.display()))?;
    std::fs::write(grub_dir.join("grub.cfg"), grub_cfg()).map_err(|e| format!("grub.cfg: {e}"))?;
    copy(kernel, &staging.join(ISO_KERNEL.trim_start_matches('/')))?;
    copy(root_task, &staging.join(ISO_ROOT_TASK.trim_start_matches('/')))?;
    let iso = out_dir.join("sel4.iso");
    let grub_mkrescue =
        apt::on_path("grub-mkrescue").ok_or("grub-mkrescue is not installed: run ensure_tools first")?;
    let output = Command::new(&grub_mkrescue)
        .arg("-o")
        .arg(&iso)
        .arg(&staging)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", grub_mkrescue.display()))?;
    if !output.status.success() || !iso.is_file() {
        return Err(format!(
            "grub-mkrescue failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(iso)
}

// ---------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootEnd {
    /// A line of the serial output contained `marker`; `line` is that line (without the line
    /// end).
    Marker {
        /// The marker found (one of those the caller gave).
        marker: String,
        /// The whole line it was found in.
        line: String,
    },
    /// The emulator ended on its own, with this exit code (`None`: killed by a signal). Bochs
    /// exits with 1 even when the guest asked for a shutdown.
    Exited(Option<i32>),
    /// The timeout passed first; the emulator was killed.
    TimedOut,
}

/// One line of serial output and when it was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedLine {
    /// Wall time from starting the emulator, seconds.
    pub seconds: f64,
    /// The line.
    pub text: String,
}

/// What one boot produced.
#[derive(Debug, Clone, PartialEq)]
pub struct BootRun {
    /// Everything written to COM1 (bytes that are not UTF-8 replaced).
    pub serial: String,
    /// Wall time from starting the emulator to the end of the run, seconds.
    pub seconds: f64,
    /// Wall time from starting the emulator to the first serial byte, seconds (to within the
    /// polling interval), if any came.
    pub first_output_seconds: Option<f64>,
    /// Each line of the serial output (line end and a carriage return dropped) with the wall
    /// time it was first seen complete, seconds (to within the polling interval). A last line
    /// without a line end is included once the run is over.
    pub lines: Vec<TimedLine>,
    /// Why the run ended.
    pub end: BootEnd,
    /// The run's directory: configuration, serial file, the emulator's log and output.
    pub dir: PathBuf,
    /// The emulator's log (Bochs' log file, or QEMU's standard error).
    pub log: PathBuf,
}

impl BootRun {
    /// The marker that ended the run, if one did.
    pub fn marker(&self) -> Option<&str> {
        match &self.end {
            BootEnd::Marker { marker, .. } => Some(marker),
            _ => None,
        }
    }

    /// When the first line containing `needle` was seen, seconds from the start.
    pub fn seconds_to(&self, needle: &str) -> Option<f64> {
        self.lines
            .iter()
            .find(|l| l.text.contains(needle))
            .map(|l| l.seconds)
    }

    /// The last `lines` lines of the emulator's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// What the seL4 5.0 debug kernel prints when the system cannot go on: it halted (a failed
/// boot, a failed kernel assertion) or a thread faulted with no handler to send the fault to
/// (the root task has none). Pass them along with the caller's own markers so that such a run
/// ends at once rather than at the timeout.
pub const KERNEL_FAILURE_MARKERS: [&str; 2] = ["halting...", "while trying to handle:"];

/// The first line of `serial` that contains one of `markers`, with the marker (the first of
/// `markers` it contains). Only complete lines (ended by `\n`) count unless `partial_too`: a
/// line still being written may hold a marker's prefix only.
pub fn find_marker(serial: &str, markers: &[&str], partial_too: bool) -> Option<(String, String)> {
    let complete = if partial_too {
        serial
    } else {
        serial.rfind('\n').map_or("", |end| &serial[..end])
    };
    complete.lines().find_map(|line| {
        markers
            .iter()
            .find(|m| !m.is_empty() && line.contains(**m))
            .map(|m| (m.to_string(), line.trim_matches('\r').to_string()))
    })
}

/// Settings of one Bochs run, rendered by [`bochsrc`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BochsConfig {
    /// The ISO to boot from.
    pub iso: PathBuf,
    /// The CPU model (`bochs --help cpu` lists them).
    pub model: String,
    /// Memory, MiB.
    pub memory_mib: u32,
    /// Emulated instructions per second.
    pub ips: u32,
    /// File that receives COM1's output.
    pub serial: PathBuf,
    /// Bochs' log file.
    pub log: PathBuf,
}

/// The bochsrc for `config`.
pub fn bochsrc(config: &BochsConfig) -> String {
    let BochsConfig {
        iso,
        model,
        memory_mib,
        ips,
        serial,
        log,
    } = config;
    format!(
        "# Generated by cargo xtask (sel4::bochs).\n\
         cpu: model={model}, count=1, ips={ips}, reset_on_triple_fault=0, ignore_bad_msrs=0\n\
         # Emulated time follows the instruction count, not the host clock: runs are as fast,\n\
         # and as repeatable, as the host allows.\n\
         clock: sync=none\n\
         memory: guest={memory_mib}, host={memory_mib}\n\
         romimage: file={BIOS}\n\
         vgaromimage: file={VGA_BIOS}\n\
         # Without the VBE extension: the seL4 kernel triple-faults copying the VBE information\n\
         # GRUB passes otherwise.\n\
         vga: extension=none\n\
         # Bochs needs a display library even headless; term draws on the output file.\n\
         display_library: term\n\
         ata0-master: type=cdrom, path={iso}, status=inserted\n\
         boot: cdrom\n\
         com1: enabled=1, mode=file, dev={serial}\n\
         mouse: enabled=0\n\
         log: {log}\n\
         debug: action=ignore\n\
         info: action=report\n\
         error: action=report\n\
         # A panic (e.g. a triple fault, with reset_on_triple_fault=0) ends Bochs.\n\
         panic: action=fatal\n",
        iso = iso.display(),
        serial = serial.display(),
        log = log.display(),
    )
}

/// How often the serial file is read.
const POLL: Duration = Duration::from_millis(10);

/// Kills the child when dropped (early returns included), unless it has ended.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Where a run's output goes, and where to find its log.
struct RunFiles {
    dir: PathBuf,
    serial: PathBuf,
    log: PathBuf,
}

/// Watches `files.serial` while `child` runs: ends at a marker line, when the child ends, or
/// at `timeout`. Kills the child unless it ended by itself.
fn watch(
    child: Child,
    started: Instant,
    files: RunFiles,
    timeout: Duration,
    markers: &[&str],
    echo: bool,
) -> Result<BootRun, String> {
    let mut child = Running(child);
    let mut first_output = None;
    let mut lines: Vec<TimedLine> = Vec::new();
    loop {
        // Read after checking the child, so that output written just before it ended counts.
        let exited = child
            .0
            .try_wait()
            .map_err(|e| format!("cannot wait for the emulator: {e}"))?;
        let bytes = std::fs::read(&files.serial).unwrap_or_default();
        let elapsed = started.elapsed();
        let seconds = elapsed.as_secs_f64();
        if first_output.is_none() && !bytes.is_empty() {
            first_output = Some(seconds);
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let over = exited.is_some() || elapsed >= timeout;
        let complete = if over {
            text.as_str()
        } else {
            text.rfind('\n').map_or("", |end| &text[..=end])
        };
        for line in complete.lines().skip(lines.len()) {
            if echo {
                println!("{}", line.trim_matches('\r'));
            }
            lines.push(TimedLine {
                seconds,
                text: line.trim_matches('\r').to_string(),
            });
        }
        let end = match find_marker(&text, markers, over) {
            Some((marker, line)) => Some(BootEnd::Marker { marker, line }),
            None if exited.is_some() => Some(BootEnd::Exited(exited.and_then(|s| s.code()))),
            None if over => Some(BootEnd::TimedOut),
            None => None,
        };
        if let Some(end) = end {
            drop(child);
            return Ok(BootRun {
                serial: text,
                seconds,
                first_output_seconds: first_output,
                lines,
                end,
                dir: files.dir,
                log: files.log,
            });
        }
        std::thread::sleep(POLL);
    }
}

fn fresh_dir(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Boots `iso` in Bochs with CPU `model`, headless, and watches COM1 until a line contains
/// one of `markers` (e.g. `SEL4-SYSTEM: PASS`, `SEL4-SYSTEM: FAIL`), Bochs ends, or `timeout`
/// passes; Bochs is killed then (with SIGKILL: its term display catches SIGTERM and goes on).
/// The run's files go to `bochs-<model>/` beside the ISO (emptied first: one run per ISO and
/// model at a time). Errors only when Bochs cannot be set up or started: how the run ended is
/// in [`BootRun::end`].
pub fn boot(
    iso: &Path,
    model: &str,
    timeout: Duration,
    markers: &[&str],
    echo: bool,
) -> Result<BootRun, String> {
    let bochs = apt::on_path("bochs-bin").ok_or("bochs-bin is not installed: run ensure_tools first")?;
    let iso = std::path::absolute(iso).map_err(|e| format!("{}: {e}", iso.display()))?;
    let dir = iso
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!("bochs-{model}"));
    fresh_dir(&dir)?;
    let config = BochsConfig {
        iso: iso.clone(),
        model: model.into(),
        memory_mib: MEMORY_MIB,
        ips: IPS,
        serial: dir.join("serial.txt"),
        log: dir.join("bochs.log"),
    };
    let rc = dir.join("bochsrc");
    std::fs::write(&rc, bochsrc(&config)).map_err(|e| format!("{}: {e}", rc.display()))?;
    // The Debian build has the internal debugger, which stops before the first instruction:
    // the command file's "c" continues.
    let commands = dir.join("debugger-commands");
    std::fs::write(&commands, "c\n").map_err(|e| format!("{}: {e}", commands.display()))?;
    let out_path = dir.join("bochs.out");
    let out = std::fs::File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let child = Command::new(&bochs)
        .arg("-q")
        .arg("-f")
        .arg(&rc)
        .arg("-rc")
        .arg(&commands)
        .current_dir(&dir)
        // The term display needs a terminal type, not a terminal.
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bochs.display()))?;
    let files = RunFiles {
        dir,
        serial: config.serial,
        log: config.log,
    };
    watch(child, started, files, timeout, markers, echo)
}

// ---------------------------------------------------------------------------------------------
// QEMU on KVM
// ---------------------------------------------------------------------------------------------

/// Whether a `flags` line of `/proc/cpuinfo` text lists `vmx`.
pub fn cpuinfo_has_vmx(cpuinfo: &str) -> bool {
    cpuinfo.lines().any(|line| {
        line.split_once(':').is_some_and(|(key, value)| {
            key.trim() == "flags" && value.split_whitespace().any(|flag| flag == "vmx")
        })
    })
}

/// Whether this host's KVM can run the VT-x kernel: the CPU KVM gives us shows `vmx` (nested
/// VT-x) and `/dev/kvm` exists. (A KVM without it, e.g. one served by `kvm_pvm`, cannot.)
pub fn kvm_offers_vtx() -> bool {
    Path::new("/dev/kvm").exists()
        && std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|text| cpuinfo_has_vmx(&text))
}

/// QEMU's arguments for booting `kernel32` (the kernel as ELF32: QEMU's multiboot loader
/// takes no ELF64) with `root_task` as the module on KVM with the host CPU and VMX, COM1 to
/// `serial`. The debug-exit device at port 0xF4 lets the root task end QEMU.
pub fn qemu_kvm_args(kernel32: &Path, root_task: &Path, serial: &Path) -> Result<Vec<OsString>, String> {
    // QEMU splits option values at commas.
    for path in [kernel32, root_task, serial] {
        if path.to_string_lossy().contains(',') {
            return Err(format!(
                "{}: QEMU cannot take a path with a comma",
                path.display()
            ));
        }
    }
    let mut serial_arg = OsString::from("file:");
    serial_arg.push(serial);
    let mut args: Vec<OsString> = [
        "-enable-kvm",
        "-cpu",
        "host,+vmx",
        "-m",
        &format!("{MEMORY_MIB}M"),
        "-display",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-serial",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(serial_arg);
    args.push("-kernel".into());
    args.push(kernel32.into());
    args.push("-initrd".into());
    args.push(root_task.into());
    Ok(args)
}

/// Boots `kernel32` with `root_task` in QEMU on KVM ([`qemu_kvm_args`]) and watches COM1 as
/// [`boot`] does. The run's files go to `qemu-kvm/` beside `root_task`. Fails at once when
/// [`kvm_offers_vtx`] is false.
pub fn boot_qemu_kvm(
    kernel32: &Path,
    root_task: &Path,
    timeout: Duration,
    markers: &[&str],
    echo: bool,
) -> Result<BootRun, String> {
    if !kvm_offers_vtx() {
        return Err("this host's KVM does not offer VT-x (no vmx flag or no /dev/kvm)".into());
    }
    let qemu = apt::on_path("qemu-system-x86_64").ok_or("qemu-system-x86_64 is not installed")?;
    let root_task = std::path::absolute(root_task).map_err(|e| format!("{}: {e}", root_task.display()))?;
    let dir = root_task.parent().unwrap_or(Path::new(".")).join("qemu-kvm");
    fresh_dir(&dir)?;
    let serial = dir.join("serial.txt");
    let log = dir.join("qemu.log");
    let args = qemu_kvm_args(kernel32, &root_task, &serial)?;
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let out_file = log_file.try_clone().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let child = Command::new(&qemu)
        .args(&args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", qemu.display()))?;
    watch(
        child,
        started,
        RunFiles { dir, serial, log },
        timeout,
        markers,
        echo,
    )
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

/// `cargo xtask sel4-bochs [--model M] [--timeout SECONDS] [--marker TEXT]... [--elf32]
/// [KERNEL [ROOT_TASK]]`: boots KERNEL (default: the VT-x kernel, built if needed; `--elf32`:
/// its ELF32 copy) with ROOT_TASK (default: the kernel itself, a bogus module: the kernel
/// prints its boot messages, then fails to find a valid root task) in Bochs, and prints the
/// serial output with the time each line was seen. The run ends at a `--marker` line, at one
/// of [`KERNEL_FAILURE_MARKERS`], or at the timeout (default 60 s).
pub fn main(args: &[String]) -> Result<(), String> {
    let mut model = DEFAULT_MODEL.to_string();
    let mut timeout = Duration::from_secs(60);
    let mut markers: Vec<String> = Vec::new();
    let mut elf32 = false;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().cloned().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--model" => model = value("--model")?,
            "--timeout" => {
                let text = value("--timeout")?;
                let seconds: f64 = text
                    .parse()
                    .map_err(|_| format!("--timeout {text:?}: not a number"))?;
                timeout = Duration::try_from_secs_f64(seconds).map_err(|e| format!("--timeout: {e}"))?;
            }
            "--marker" => markers.push(value("--marker")?),
            "--elf32" => elf32 = true,
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            file => files.push(PathBuf::from(file)),
        }
    }
    if files.len() > 2 {
        return Err("at most two files: KERNEL and ROOT_TASK".into());
    }
    let root = super::workspace_root();
    ensure_tools()?;
    let kernel = match files.first() {
        Some(path) => path.clone(),
        None => {
            let built = super::kernel::build(&root, &super::kernel::VTX)?;
            if elf32 { built.kernel32 } else { built.kernel }
        }
    };
    let root_task = files.get(1).cloned().unwrap_or_else(|| kernel.clone());
    let out = root.join("target/sel4/bochs");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let started = Instant::now();
    let iso = build_iso(&kernel, &root_task, &out)?;
    eprintln!(
        "xtask: sel4-bochs: {} in {:.2} s",
        iso.display(),
        started.elapsed().as_secs_f64()
    );
    let markers: Vec<&str> = markers
        .iter()
        .map(String::as_str)
        .chain(KERNEL_FAILURE_MARKERS)
        .collect();
    let run = boot(&iso, &model, timeout, &markers, false)?;
    for line in &run.lines {
        println!("[{:6.2}] {}", line.seconds, line.text);
    }
    let first = run
        .first_output_seconds
        .map_or("none".to_string(), |s| format!("{s:.2} s"));
    eprintln!(
        "xtask: sel4-bochs: {model}: {:?} after {:.2} s; first serial output {first}; files in {}",
        run.end,
        run.seconds,
        run.dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_cfg_boots_at_once_on_the_serial_console() {
        let cfg = grub_cfg();
        let lines: Vec<&str> = cfg.lines().map(str::trim).collect();
        for expected in [
            "set timeout=0",
            "serial --unit=0 --speed=115200",
            "terminfo serial dumb",
            "terminal_input serial",
            "terminal_output serial",
            "multiboot /boot/sel4-kernel",
            "module /boot/sel4-root-task",
        ] {
            assert!(lines.contains(&expected), "{expected:?} missing from\n{cfg}");
        }
        // The menu entry holds the kernel, then its module, then closes.
        let open = lines.iter().position(|l| l.starts_with("menuentry")).unwrap();
        assert!(lines[open].ends_with('{'));
        assert!(lines[open + 1].starts_with("multiboot "));
        assert!(lines[open + 2].starts_with("module "));
        assert_eq!(lines[open + 3], "}");
        assert_eq!(lines.len(), open + 4);
        // The serial console is set up before the entry runs.
        let serial = lines.iter().position(|l| *l == "terminal_output serial").unwrap();
        assert!(serial < open);
    }

    fn sample_config() -> BochsConfig {
        BochsConfig {
            iso: PathBuf::from("/build/sel4.iso"),
            model: "corei7_haswell_4770".into(),
            memory_mib: 512,
            ips: 10_000_000,
            serial: PathBuf::from("/build/run/serial.txt"),
            log: PathBuf::from("/build/run/bochs.log"),
        }
    }

    /// The bochsrc's settings as (directive, value) pairs, comments dropped.
    fn directives(rc: &str) -> Vec<(String, String)> {
        rc.lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (key, value) = l.split_once(':').unwrap_or_else(|| panic!("{l:?}"));
                (key.trim().to_string(), value.trim().to_string())
            })
            .collect()
    }

    #[test]
    fn bochsrc_has_what_the_vtx_kernel_needs() {
        let rc = bochsrc(&sample_config());
        let d = directives(&rc);
        let get = |key: &str| {
            let values: Vec<&str> = d
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(values.len(), 1, "{key} must appear once in\n{rc}");
            values[0].to_string()
        };
        assert_eq!(
            get("cpu"),
            "model=corei7_haswell_4770, count=1, ips=10000000, reset_on_triple_fault=0, ignore_bad_msrs=0"
        );
        assert_eq!(get("clock"), "sync=none");
        assert_eq!(get("memory"), "guest=512, host=512");
        assert_eq!(get("romimage"), format!("file={BIOS}"));
        assert_eq!(get("vgaromimage"), format!("file={VGA_BIOS}"));
        assert_eq!(get("vga"), "extension=none");
        assert_eq!(get("display_library"), "term");
        assert_eq!(
            get("ata0-master"),
            "type=cdrom, path=/build/sel4.iso, status=inserted"
        );
        assert_eq!(get("boot"), "cdrom");
        assert_eq!(get("com1"), "enabled=1, mode=file, dev=/build/run/serial.txt");
        assert_eq!(get("log"), "/build/run/bochs.log");
        assert_eq!(get("panic"), "action=fatal");
        // Every directive is one Bochs 2.7 knows, each once.
        let known = [
            "cpu",
            "clock",
            "memory",
            "romimage",
            "vgaromimage",
            "vga",
            "display_library",
            "ata0-master",
            "boot",
            "com1",
            "mouse",
            "log",
            "debug",
            "info",
            "error",
            "panic",
        ];
        for (key, _) in &d {
            assert!(known.contains(&key.as_str()), "unexpected directive {key}");
        }
        assert_eq!(d.len(), known.len());
    }

    #[test]
    fn bochsrc_follows_the_config() {
        let mut config = sample_config();
        config.model = "corei7_skylake_x".into();
        config.memory_mib = 64;
        config.ips = 4_000_000;
        let rc = bochsrc(&config);
        assert!(rc.contains("cpu: model=corei7_skylake_x, count=1, ips=4000000,"));
        assert!(rc.contains("memory: guest=64, host=64\n"));
    }

    const SERIAL: &str = "Boot config: parsing cmdline '/boot/sel4-kernel'\r\n\
                          Starting node #0\r\n\
                          SEL4-SYSTEM: step 3 of 5\n\
                          SEL4-SYSTEM: PASS (12 checks)\r\n\
                          SEL4-SYSTEM: FAIL later\n";

    #[test]
    fn markers_are_found_on_complete_lines() {
        let markers = ["SEL4-SYSTEM: PASS", "SEL4-SYSTEM: FAIL"];
        assert_eq!(
            find_marker(SERIAL, &markers, false),
            Some((
                "SEL4-SYSTEM: PASS".to_string(),
                "SEL4-SYSTEM: PASS (12 checks)".to_string()
            ))
        );
        // The earliest line wins, whichever marker it holds.
        assert_eq!(
            find_marker(SERIAL, &["SEL4-SYSTEM: FAIL", "SEL4-SYSTEM: PASS"], false)
                .unwrap()
                .0,
            "SEL4-SYSTEM: PASS"
        );
        assert_eq!(find_marker(SERIAL, &["NOT THERE"], false), None);
        assert_eq!(find_marker(SERIAL, &[], false), None);
        // An empty marker would match every line: it matches none.
        assert_eq!(find_marker(SERIAL, &[""], false), None);
    }

    #[test]
    fn a_line_still_being_written_counts_only_at_the_end() {
        let markers = ["SEL4-SYSTEM: PASS"];
        // The marker's line has no line end yet: more of it may follow.
        let partial = "Starting node #0\nSEL4-SYSTEM: PA";
        assert_eq!(find_marker(partial, &markers, false), None);
        let whole_but_open = "Starting node #0\nSEL4-SYSTEM: PASS";
        assert_eq!(find_marker(whole_but_open, &markers, false), None);
        assert_eq!(
            find_marker(whole_but_open, &markers, true),
            Some(("SEL4-SYSTEM: PASS".into(), "SEL4-SYSTEM: PASS".into()))
        );
        assert_eq!(find_marker("", &markers, true), None);
        // Non-UTF-8 noise (e.g. from a boot loader) around the marker does not hide it.
        let noisy = String::from_utf8_lossy(b"\x1b[2J\xff\xfe\nSEL4-SYSTEM: PASS\n").into_owned();
        assert_eq!(
            find_marker(&noisy, &markers, false).unwrap().1,
            "SEL4-SYSTEM: PASS"
        );
    }

    #[test]
    fn vmx_flag_detection() {
        let with = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse tsc msr vmx ssse3\n";
        let without = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr ssse3 svm\nbugs\t\t: vmx_like\n";
        assert!(cpuinfo_has_vmx(with));
        assert!(!cpuinfo_has_vmx(without));
        // The flag must be a whole word on a flags line.
        assert!(!cpuinfo_has_vmx("flags\t\t: fpu vmxe\n"));
        assert!(!cpuinfo_has_vmx("vmx flags\t: ept vpid\n"));
        assert!(!cpuinfo_has_vmx(""));
    }

    #[test]
    fn qemu_kvm_command_line() {
        let args = qemu_kvm_args(
            Path::new("/k/kernel32.elf"),
            Path::new("/r/root-task"),
            Path::new("/run/serial.txt"),
        )
        .unwrap();
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let after = |flag: &str| {
            let i = args
                .iter()
                .position(|a| a == flag)
                .unwrap_or_else(|| panic!("{flag} missing"));
            args[i + 1].clone()
        };
        assert!(args.contains(&"-enable-kvm".to_string()));
        assert_eq!(after("-cpu"), "host,+vmx");
        assert_eq!(after("-m"), "512M");
        assert_eq!(after("-display"), "none");
        assert_eq!(after("-serial"), "file:/run/serial.txt");
        assert_eq!(after("-kernel"), "/k/kernel32.elf");
        assert_eq!(after("-initrd"), "/r/root-task");
        assert_eq!(after("-device"), "isa-debug-exit,iobase=0xf4,iosize=0x04");
        assert!(args.contains(&"-no-reboot".to_string()));
        assert!(qemu_kvm_args(Path::new("/k/a,b"), Path::new("/r"), Path::new("/s")).is_err());
    }

    #[test]
    fn watch_ends_at_a_marker_at_the_exit_or_at_the_timeout() {
        let dir = std::env::temp_dir().join(format!("xtask-sel4-bochs-watch-{}", std::process::id()));
        fresh_dir(&dir).unwrap();
        let serial = dir.join("serial.txt");
        let serial_str = serial.to_str().unwrap().to_string();
        let markers = ["DONE: PASS", "DONE: FAIL"];
        let run = |script: &str, timeout: Duration| {
            let _ = std::fs::remove_file(&serial);
            let child = Command::new("sh").args(["-c", script]).spawn().unwrap();
            let files = RunFiles {
                dir: dir.clone(),
                serial: serial.clone(),
                log: dir.join("log"),
            };
            watch(child, Instant::now(), files, timeout, &markers, false).unwrap()
        };
        // A marker line ends the run while the writer still runs (and the writer is killed);
        // the lines before it are timed in order.
        let started = Instant::now();
        let boot = run(
            &format!(
                "printf 'boot\\r\\n' > {serial_str}; sleep 0.3; printf 'DONE: FAIL 3\\n' >> {serial_str}; \
                 exec sleep 30"
            ),
            Duration::from_secs(20),
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the writer was not waited for"
        );
        assert_eq!(
            boot.end,
            BootEnd::Marker {
                marker: "DONE: FAIL".into(),
                line: "DONE: FAIL 3".into()
            }
        );
        assert_eq!(boot.marker(), Some("DONE: FAIL"));
        assert_eq!(boot.serial, "boot\r\nDONE: FAIL 3\n");
        let texts: Vec<&str> = boot.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["boot", "DONE: FAIL 3"]);
        let first = boot.first_output_seconds.unwrap();
        let boot_line = boot.seconds_to("boot").unwrap();
        let done_line = boot.seconds_to("DONE").unwrap();
        assert!(first <= boot_line && boot_line + 0.2 < done_line && done_line <= boot.seconds);
        assert_eq!(boot.seconds_to("absent"), None);
        // The writer ends without a marker; its unterminated last line is kept.
        let exited = run(
            &format!("printf 'no marker' > {serial_str}; exit 3"),
            Duration::from_secs(20),
        );
        assert_eq!(exited.end, BootEnd::Exited(Some(3)));
        assert_eq!(exited.lines.len(), 1);
        assert_eq!(exited.marker(), None);
        // A marker on the last, unterminated line counts once the writer has ended.
        let last = run(
            &format!("printf 'x\\nDONE: PASS' > {serial_str}"),
            Duration::from_secs(20),
        );
        assert_eq!(
            last.end,
            BootEnd::Marker {
                marker: "DONE: PASS".into(),
                line: "DONE: PASS".into()
            }
        );
        // Nothing at all before the timeout.
        let silent = run("exec sleep 30", Duration::from_millis(300));
        assert_eq!(silent.end, BootEnd::TimedOut);
        assert_eq!(silent.serial, "");
        assert!(silent.lines.is_empty());
        assert_eq!(silent.first_output_seconds, None);
        assert!((0.3..10.0).contains(&silent.seconds), "{}", silent.seconds);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
