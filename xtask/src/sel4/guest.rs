//! The guest of the VT-x tier, `guest/vtx-hello/guest.S`, assembled from source with binutils.
//!
//! A flat 32-bit binary, linked at [`LOAD_ADDRESS`] and entered at its first byte, in
//! protected mode with paging on (seL4 5.0 forces CR0.PE and CR0.PG). The source's header
//! comment lists what the VMM's loader must provide (GDT, page directory, stack). The exits
//! it causes, in order, with a VMM that queues the interrupt raised by the IER write until
//! the guest can take it:
//!
//! | # | guest | exit reason | qualification | VMM answer |
//! |---|---|---|---|---|
//! | 1 | `in al, dx` (LSR 0x3FD) | 30 I/O | 0x03FD0008 | AL = LSR (bit 5 set), RIP + 1 |
//! | 2 | `out dx, al` (THR 0x3F8) | 30 I/O | 0x03F80000 | the byte is output, RIP + 1 |
//! | | 1–2 once per byte of [`GREETING`] (32 bytes: 64 exits; more INs if LSR bit 5 is clear) | | | |
//! | 3 | `cpuid` (EAX 0) | 10 CPUID | 0 | EAX/EBX/ECX/EDX, RIP + 2 |
//! | 4 | `rdmsr` (ECX 0x1B) | 31 RDMSR | 0 | EDX:EAX, RIP + 2 |
//! | 5 | `mov eax, [0xFEC00000]` | 48 EPT violation | 0x181 (bit 0 read; bit 7 linear address valid; bit 8 the access was to the translated address) | GPA and GLA 0xFEC00000; EAX = value, RIP + 5 (decode `A1 imm32`) |
//! | 6 | `out dx, al` (MCR 0x3FC, AL 8: OUT2) | 30 I/O | 0x03FC0000 | RIP + 1 (a PC UART's interrupt reaches the PIC only with OUT2) |
//! | 7 | `out dx, al` (IER 0x3F9, AL 2) | 30 I/O | 0x03F90000 | RIP + 1; THR is empty, so the UART raises line 4 at once, but IF = 0: hold vector 0x24 (line 4 + base 0x20) |
//! | 8 | `hlt` after `sti` | 12 HLT | 0 | RIP + 1, clear blocking by STI (interruptibility bit 0), inject vector 0x24 as an external interrupt (entry interruption info 0x80000024) |
//! | 9 | `out dx, al` (0xF4, AL 0) | 30 I/O | 0x00F40000 | stop: status 0 |
//!
//! A VMM that asks for an interrupt-window exit after #7 sees none before #8: the HLT sits in
//! STI's shadow. The status in #9 is 1 if HLT was resumed without the interrupt. All exits
//! have instruction length 1 except CPUID and RDMSR (2); for the EPT violation the SDM defines
//! no length (Bochs reports 5). Any other exit (e.g. reason 2, triple fault) is a failure: the
//! guest's IDT has only the UART's gate.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::apt::{self, Package, Probe};

/// Where the guest is linked and loaded (guest-physical = linear: identity paging), and where
/// it starts.
pub const LOAD_ADDRESS: u32 = 0x2000;
/// End of the space the image may use: the stack page begins here.
pub const IMAGE_LIMIT: u32 = 0x3000;
/// The source, relative to the workspace root.
pub const SOURCE: &str = "guest/vtx-hello/guest.S";
/// What the guest writes to the UART.
pub const GREETING: &str = "Hello from a VT-x guest on seL4\n";

/// The assembler, the linker and objcopy all come from binutils.
const BINUTILS: [Package; 3] = [
    Package {
        name: "binutils",
        probe: Probe::Program("as"),
    },
    Package {
        name: "binutils",
        probe: Probe::Program("ld"),
    },
    Package {
        name: "binutils",
        probe: Probe::Program("objcopy"),
    },
];

/// The bare-PC harness, relative to the workspace root (see [`run_on_bare_pc`]).
pub const BARE_PC_SOURCE: &str = "guest/vtx-hello/bare-pc.S";
/// Where the harness is linked (QEMU's multiboot loader puts it there).
const BARE_PC_ADDRESS: u32 = 0x10_0000;

/// How long the guest may take on the bare PC (it needs well under a second).
const BARE_PC_TIMEOUT: Duration = Duration::from_secs(30);

/// QEMU, for [`run_on_bare_pc`].
const QEMU: Package = Package {
    name: "qemu-system-x86",
    probe: Probe::Program("qemu-system-x86_64"),
};

/// The built guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestBinary {
    /// The flat binary: load it at `load_address`.
    pub path: PathBuf,
    /// Guest-physical (and linear) address of its first byte.
    pub load_address: u32,
    /// Where it starts (guest RIP).
    pub entry: u32,
    /// Its size in bytes.
    pub size: u32,
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{shown} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Assembles and links `guest/vtx-hello/guest.S` of the workspace `root` into `out_dir`
/// (`guest.o`, `guest.elf`, and the flat `guest.bin` the result names), installing binutils
/// first if needed. The ELF is checked: one loadable segment at [`LOAD_ADDRESS`], entry at its
/// first byte, ending below [`IMAGE_LIMIT`].
pub fn build_guest(root: &Path, out_dir: &Path) -> Result<GuestBinary, String> {
    apt::ensure("the guest build", &BINUTILS)?;
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let source = root.join(SOURCE);
    let object = out_dir.join("guest.o");
    let elf = out_dir.join("guest.elf");
    let binary = out_dir.join("guest.bin");
    run(Command::new("as").args(["--32", "-o"]).arg(&object).arg(&source))?;
    // -N: one segment, not page-aligned, writable (the guest fills its IDT and results in
    // place), so the flat binary is exactly that segment.
    run(Command::new("ld")
        .args([
            "-m",
            "elf_i386",
            "-N",
            "--no-warn-rwx-segments",
            "--build-id=none",
        ])
        .arg(format!("-Ttext={LOAD_ADDRESS:#x}"))
        .args(["-e", "_start", "-o"])
        .arg(&elf)
        .arg(&object))?;
    run(Command::new("objcopy")
        .args(["-O", "binary"])
        .arg(&elf)
        .arg(&binary))?;
    let elf_bytes = std::fs::read(&elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let layout = elf32_layout(&elf_bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
    let size = std::fs::metadata(&binary)
        .map_err(|e| format!("{}: {e}", binary.display()))?
        .len();
    let size = u32::try_from(size).map_err(|_| format!("{}: too large", binary.display()))?;
    let guest = GuestBinary {
        path: binary,
        load_address: layout.address,
        entry: layout.entry,
        size,
    };
    if guest.load_address != LOAD_ADDRESS || guest.entry != LOAD_ADDRESS {
        return Err(format!(
            "{}: loads at {:#x} and starts at {:#x}, expected both at {LOAD_ADDRESS:#x}",
            elf.display(),
            guest.load_address,
            guest.entry
        ));
    }
    if layout.size != size || u64::from(LOAD_ADDRESS) + u64::from(size) > u64::from(IMAGE_LIMIT) {
        return Err(format!(
            "{}: segment of {} bytes, flat binary of {size}: must be equal and end by {IMAGE_LIMIT:#x}",
            elf.display(),
            layout.size
        ));
    }
    Ok(guest)
}

/// What the guest did on a plain PC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BareRun {
    /// What it wrote to COM1.
    pub serial: String,
    /// The status it wrote to the debug-exit port; `None` if QEMU ended otherwise (a triple
    /// fault ends it with 0, with `-no-reboot`).
    pub status: Option<u8>,
}

/// Runs `guest` on a plain emulated PC with no VMM (QEMU, TCG): the harness
/// `guest/vtx-hello/bare-pc.S` sets the machine up as the VMM's loader does and starts the
/// guest, whose port I/O, CPUID, RDMSR and MMIO read then reach QEMU's own devices and CPU,
/// and whose UART interrupt comes through the PIC as vector 0x24. This checks the
/// guest and the loader contract in its header, not the VMM. Files go to `out_dir`.
pub fn run_on_bare_pc(root: &Path, guest: &GuestBinary, out_dir: &Path) -> Result<BareRun, String> {
    apt::ensure("the bare-PC guest check", &[BINUTILS[0], BINUTILS[1], QEMU])?;
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let object = out_dir.join("bare-pc.o");
    let harness = out_dir.join("bare-pc.elf");
    run(Command::new("as")
        .args(["--32", "--defsym"])
        .arg(format!("LOAD_ADDRESS={LOAD_ADDRESS:#x}"))
        .arg("-o")
        .arg(&object)
        .arg(root.join(BARE_PC_SOURCE)))?;
    run(Command::new("ld")
        .args(["-m", "elf_i386", "--build-id=none"])
        .arg(format!("-Ttext={BARE_PC_ADDRESS:#x}"))
        .args(["-e", "_start", "-o"])
        .arg(&harness)
        .arg(&object))?;
    let serial = out_dir.join("bare-pc-serial.txt");
    let _ = std::fs::remove_file(&serial);
    let mut serial_arg = std::ffi::OsString::from("file:");
    serial_arg.push(&serial);
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-cpu", "Nehalem", "-m", "16M", "-display", "none", "-monitor", "none",
        ])
        .args(["-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-serial")
        .arg(serial_arg)
        .arg("-kernel")
        .arg(&harness)
        .arg("-initrd")
        .arg(&guest.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start qemu-system-x86_64: {e}"))?;
    let deadline = Instant::now() + BARE_PC_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the guest did not end within {} s on the bare PC",
                    BARE_PC_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("cannot wait for QEMU: {e}")),
        }
    };
    let serial_text = std::fs::read(&serial).map_err(|e| format!("{}: {e}", serial.display()))?;
    // isa-debug-exit ends QEMU with (value << 1) | 1; QEMU's own exits are 0 (guest reset or
    // shutdown) or 1 with a message (an error).
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    // QEMU's own failures also end it with 1, and say why (warnings aside).
    if let Some(error) = stderr.lines().find(|l| !l.contains("warning")) {
        return Err(format!("QEMU failed ({status}): {error}"));
    }
    let status = match status.code() {
        Some(0) => None,
        Some(code) if code & 1 == 1 => u8::try_from(code >> 1).ok(),
        _ => return Err(format!("QEMU ended with {status}")),
    };
    Ok(BareRun {
        serial: String::from_utf8_lossy(&serial_text).into_owned(),
        status,
    })
}

/// The one loadable segment of a 32-bit x86 ELF executable, and its entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Elf32Layout {
    entry: u32,
    address: u32,
    size: u32,
}

/// Reads the entry point and the single `PT_LOAD` segment (its address, and its size, which
/// must be the same in the file and in memory: a flat binary has no room for zero fill).
fn elf32_layout(bytes: &[u8]) -> Result<Elf32Layout, String> {
    let u16_at = |offset: usize| {
        bytes
            .get(offset..offset + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or("truncated ELF")
    };
    let u32_at = |offset: usize| {
        bytes
            .get(offset..offset + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or("truncated ELF")
    };
    const PT_LOAD: u32 = 1;
    const EM_386: u16 = 3;
    if bytes.get(..6) != Some(b"\x7fELF\x01\x01") || u16_at(18)? != EM_386 {
        return Err("not a little-endian 32-bit x86 ELF".into());
    }
    let entry = u32_at(24)?;
    let program_headers = u32_at(28)? as usize;
    let entry_size = usize::from(u16_at(42)?);
    let count = usize::from(u16_at(44)?);
    let mut loads = Vec::new();
    for index in 0..count {
        let header = program_headers + index * entry_size;
        if u32_at(header)? == PT_LOAD {
            // p_vaddr at +8, p_filesz at +16, p_memsz at +20.
            loads.push((u32_at(header + 8)?, u32_at(header + 16)?, u32_at(header + 20)?));
        }
    }
    match loads[..] {
        [(address, file_size, memory_size)] if file_size == memory_size => Ok(Elf32Layout {
            entry,
            address,
            size: file_size,
        }),
        [(_, file_size, memory_size)] => Err(format!(
            "the segment has {file_size} bytes in the file and {memory_size} in memory"
        )),
        _ => Err(format!("{} loadable segments, expected one", loads.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sel4::test_support::Scratch;

    /// The vector the guest expects the UART's interrupt on (line 4 + base 0x20).
    const UART_VECTOR: u8 = 0x24;

    #[test]
    fn guest_builds_small_at_its_load_address_with_the_greeting() {
        let scratch = Scratch::new("guest-build");
        let guest = build_guest(&super::super::workspace_root(), &scratch.0).unwrap();
        assert_eq!(guest.load_address, LOAD_ADDRESS);
        assert_eq!(guest.entry, LOAD_ADDRESS);
        let bytes = std::fs::read(&guest.path).unwrap();
        assert_eq!(bytes.len() as u32, guest.size);
        assert!(guest.size > 0 && guest.size <= 4096, "{} bytes", guest.size);
        assert!(LOAD_ADDRESS + guest.size <= IMAGE_LIMIT);
        // The greeting, NUL-terminated (the print loop stops at the NUL).
        let greeting = [GREETING.as_bytes(), b"\0"].concat();
        assert!(bytes.windows(greeting.len()).any(|w| w == greeting));
        // It starts with code, not data: `lea esi, greeting` (8D 35 disp32) pointing into the
        // image at the greeting.
        assert_eq!(bytes[..2], [0x8D, 0x35]);
        let target = u32::from_le_bytes(bytes[2..6].try_into().unwrap());
        let at = (target - LOAD_ADDRESS) as usize;
        assert_eq!(&bytes[at..at + GREETING.len()], GREETING.as_bytes());
        // The IDT limit covers exactly the gates up to the UART's vector.
        let limit = (u16::from(UART_VECTOR) + 1) * 8 - 1;
        assert!(bytes.windows(2).any(|w| w == limit.to_le_bytes()));
    }

    /// The instructions that exit (or that decide whether an interrupt can be injected)
    /// come in the order the module documentation gives.
    #[test]
    fn exiting_instructions_in_documented_order() {
        let scratch = Scratch::new("guest-order");
        build_guest(&super::super::workspace_root(), &scratch.0).unwrap();
        let output = Command::new("objdump")
            .args(["-d", "-M", "intel", "--no-show-raw-insn"])
            .arg(scratch.0.join("guest.elf"))
            .output()
            .unwrap();
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        let mut seen = Vec::new();
        // Disassembly lines are "address:\tmnemonic operands"; stop at the data.
        for line in text.lines() {
            if line.contains("<greeting>:") {
                break;
            }
            let Some((_, instruction)) = line.split_once(":\t") else {
                continue;
            };
            let words: Vec<&str> = instruction.split_whitespace().collect();
            match words[..] {
                [mnemonic @ ("in" | "out"), "al,dx" | "dx,al"] => {
                    seen.push(format!("{mnemonic} {}", words[1]))
                }
                [mnemonic @ ("cpuid" | "rdmsr" | "sti" | "hlt" | "cli" | "iret")] => {
                    seen.push(mnemonic.into())
                }
                ["lidtd", _] => seen.push("lidt".into()),
                // The MMIO read, in its absolute-address form (A1 imm32).
                ["mov", "eax,ds:0xfec00000"] => seen.push("mmio read".into()),
                [mnemonic @ ("in" | "out" | "int" | "wrmsr" | "vmcall"), ..] => {
                    panic!("unexpected {mnemonic}: {instruction}")
                }
                _ => {}
            }
        }
        assert_eq!(
            seen,
            [
                "in al,dx",
                "out dx,al",
                "cpuid",
                "rdmsr",
                "mmio read",
                "lidt",
                "out dx,al",
                "out dx,al",
                "sti",
                "hlt",
                "out dx,al",
                "cli",
                "hlt",
                "iret",
            ]
        );
    }

    /// On a plain PC, the guest prints the greeting, takes the UART interrupt and reports
    /// status 0: its code, its IDT gate, the page-directory entries its header asks of the
    /// loader and its interrupt handler all work on a CPU other than the VMM's view of it.
    #[test]
    fn guest_runs_to_status_zero_on_a_bare_pc() {
        let scratch = Scratch::new("guest-bare");
        let root = super::super::workspace_root();
        let guest = build_guest(&root, &scratch.0).unwrap();
        let run = run_on_bare_pc(&root, &guest, &scratch.0).unwrap();
        assert_eq!(run.serial, GREETING);
        assert_eq!(run.status, Some(0), "1 means HLT returned without the interrupt");
    }

    #[test]
    fn elf_layout_checks() {
        // A minimal ELF32 header with one program header at offset 52.
        let mut elf = vec![0u8; 52 + 32];
        elf[..6].copy_from_slice(b"\x7fELF\x01\x01");
        elf[18..20].copy_from_slice(&3u16.to_le_bytes());
        elf[24..28].copy_from_slice(&0x2000u32.to_le_bytes());
        elf[28..32].copy_from_slice(&52u32.to_le_bytes());
        elf[42..44].copy_from_slice(&32u16.to_le_bytes());
        elf[44..46].copy_from_slice(&1u16.to_le_bytes());
        elf[52..56].copy_from_slice(&1u32.to_le_bytes());
        elf[60..64].copy_from_slice(&0x2000u32.to_le_bytes());
        elf[68..72].copy_from_slice(&100u32.to_le_bytes());
        elf[72..76].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(
            elf32_layout(&elf),
            Ok(Elf32Layout {
                entry: 0x2000,
                address: 0x2000,
                size: 100
            })
        );
        let mut zero_fill = elf.clone();
        zero_fill[72..76].copy_from_slice(&200u32.to_le_bytes());
        assert!(elf32_layout(&zero_fill).is_err());
        let mut none = elf.clone();
        none[52..56].copy_from_slice(&6u32.to_le_bytes());
        assert!(elf32_layout(&none).unwrap_err().contains("0 loadable"));
        let mut x86_64 = elf.clone();
        x86_64[18..20].copy_from_slice(&62u16.to_le_bytes());
        assert!(elf32_layout(&x86_64).is_err());
        assert!(elf32_layout(&elf[..60]).is_err(), "truncated program header");
        assert!(elf32_layout(b"\x7fELF").is_err());
    }
}
