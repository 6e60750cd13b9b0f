//! The seL4 5.0.0 kernel, built from source in two configurations (without and with VT-x).
//!
//! - The source: the only seL4 kernel tree the package registries offer is the `seL4/`
//!   directory of the crates.io package `sel4-sys` 0.0.28 (seL4 5.0.0). [`stage_tree`] fetches
//!   that package with cargo, copies the tree to `target/sel4/tree-5.0.0/` and applies
//!   [`TREE_FIXES`] to the copy (the registry copy stays untouched).
//! - The configurations: [`NO_VTX`] (QEMU, TCG) and [`VTX`] (Bochs, or QEMU on KVM with nested
//!   VT-x), each rendered to the `autoconf.h` the standalone Makefile builds against.
//! - The build: [`build`] runs the tree's Makefile in
//!   `target/sel4/kernel/<name>-<hash of autoconf.h and fixes>/` and converts the ELF64
//!   kernel to ELF32 for QEMU's multiboot loader. A finished build directory is reused.
//!
//! The host tools come from Debian ([`ensure_tools`]): installed when running as root, named
//! otherwise; the Python modules the generators import live in a venv under
//! `target/sel4/venv`.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::apt::{self, Package, Probe};
use std::time::Instant;

/// The registry package whose `seL4/` directory is the kernel source.
const SOURCE_PACKAGE: &str = "sel4-sys";
/// Its version: the last one that vendors the kernel (seL4 5.0.0).
const SOURCE_PACKAGE_VERSION: &str = "0.0.28";
/// The kernel version the tree must declare in its `VERSION` file.
pub const KERNEL_VERSION: &str = "5.0.0";

// ---------------------------------------------------------------------------------------------
// Host tools
// ---------------------------------------------------------------------------------------------

/// Debian packages the kernel build (and the QEMU tier after it) needs, each with its probe.
/// `gcc`, `git` and Python 3 are assumed present on the build machine; gcc is probed anyway.
const PACKAGES: &[Package] = &[
    Package {
        name: "make",
        probe: Probe::Program("make"),
    },
    Package {
        name: "gcc",
        probe: Probe::Program("gcc"),
    },
    Package {
        name: "binutils",
        probe: Probe::Program("objcopy"),
    },
    // The Makefile validates the interface XML with xmllint.
    Package {
        name: "libxml2-utils",
        probe: Probe::Program("xmllint"),
    },
    // Debian splits `ensurepip`, which `python3 -m venv` needs, into `python3.11-venv`.
    Package {
        name: "python3-venv",
        probe: Probe::PythonModule("ensurepip"),
    },
    // Not used by the kernel build: the QEMU tier boots the kernel it makes.
    Package {
        name: "qemu-system-x86",
        probe: Probe::Program("qemu-system-x86_64"),
    },
];

/// Python packages the kernel's generators import (`bitfield_gen.py`: six and ply's yacc;
/// the syscall and invocation header generators: tempita), pinned to versions that built
/// both kernels.
const PYTHON_PACKAGES: &[&str] = &["tempita==0.6.0", "six==1.17.0", "ply==3.11"];
/// The import names of [`PYTHON_PACKAGES`].
const PYTHON_MODULES: &str = "tempita, six, ply";

fn run_logged(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    eprintln!("xtask: sel4: {shown}");
    let status = command
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

/// Installs the missing Debian packages of [`PACKAGES`] when running as root (otherwise fails
/// with the command to run), then makes sure the venv `target/sel4/venv` has the Python
/// packages the generators import. Returns the venv's `bin` directory, which must come
/// first on PATH for the build (the generators run as `#!/usr/bin/env python` scripts).
pub fn ensure_tools(root: &Path) -> Result<PathBuf, String> {
    apt::ensure("the seL4 kernel build", PACKAGES)?;
    ensure_venv(&root.join("target/sel4/venv"))
}

/// Creates the venv at `venv` if needed and installs [`PYTHON_PACKAGES`] unless they are
/// already importable there. Returns its `bin` directory.
fn ensure_venv(venv: &Path) -> Result<PathBuf, String> {
    let bin = venv.join("bin");
    let python = bin.join("python");
    if apt::python_imports(&python, PYTHON_MODULES) {
        return Ok(bin);
    }
    if !python.is_file() {
        // A half-made venv (interrupted creation) is not worth repairing.
        if venv.exists() {
            std::fs::remove_dir_all(venv).map_err(|e| format!("{}: {e}", venv.display()))?;
        }
        run_logged(Command::new(apt::system_python()).args([
            OsStr::new("-m"),
            "venv".as_ref(),
            venv.as_os_str(),
        ]))?;
    }
    run_logged(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(PYTHON_PACKAGES),
    )?;
    if apt::python_imports(&python, PYTHON_MODULES) {
        Ok(bin)
    } else {
        Err(format!(
            "{} still cannot import {PYTHON_MODULES}",
            python.display()
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------------------------

/// The value of one `CONFIG_` macro in `autoconf.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigValue {
    /// A boolean option that is on: `#define CONFIG_X 1`. Options that are off are absent.
    On,
    /// An integer option: `#define CONFIG_X 12`.
    Number(u32),
    /// A string option, quoted: `#define CONFIG_X "text"`.
    Text(&'static str),
    /// Defined with no value: `#define CONFIG_X`. Used for the options only the Makefile
    /// reads (it takes them from its own variables, not from the header).
    Empty,
}

/// One `CONFIG_` macro: its name without the prefix, its value, and why it has that value
/// (rendered as a comment above it; empty when it is the kernel's default and obvious).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The name without `CONFIG_`, e.g. `VTX`.
    pub name: &'static str,
    /// The value.
    pub value: ConfigValue,
    /// Why this value (a C comment in the header), or empty.
    pub why: &'static str,
}

const fn entry(name: &'static str, value: ConfigValue, why: &'static str) -> ConfigEntry {
    ConfigEntry { name, value, why }
}

/// One kernel configuration: a name (also the prefix of its build directory) and the
/// macros of its `autoconf.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelConfig {
    /// Short name, used on the command line and in paths.
    pub name: &'static str,
    /// The macros, in the order they are rendered.
    pub entries: &'static [ConfigEntry],
}

use ConfigValue::{Empty, Number, On, Text};

/// The options shared by both configurations: a uniprocessor x86-64 PC debug kernel that
/// runs on QEMU's `Nehalem` model under TCG (`-cpu Nehalem,-vme,+pdpe1gb,-xsave,-xsaveopt,
/// -xsavec,-fsgsbase,-invpcid,enforce`) and on Bochs' `corei7_haswell_4770`. The values are
/// the Kconfig defaults except where a comment says why.
const COMMON: [ConfigEntry; 38] = [
    entry("KERNEL_MASTER", On, ""),
    entry("ARCH_X86", On, ""),
    entry("ARCH_X86_64", On, ""),
    entry("WORD_SIZE", Number(64), ""),
    entry("PLAT_PC99", On, ""),
    entry("HAVE_FPU", On, ""),
    entry(
        "IRQ_IOAPIC",
        On,
        "the PCs QEMU and Bochs emulate have one I/O APIC",
    ),
    entry("MAX_NUM_IOAPIC", Number(1), ""),
    entry(
        "XAPIC",
        On,
        "QEMU's Nehalem model has no x2APIC under TCG (an x2APIC kernel stops at boot)",
    ),
    entry(
        "HUGE_PAGE",
        On,
        "1 GiB pages: QEMU is given +pdpe1gb, Bochs' Haswell has them",
    ),
    entry(
        "SYSCALL",
        On,
        "syscall/sysret entry, the x86-64 user ABI the project's bindings use",
    ),
    entry(
        "FXSAVE",
        On,
        "legacy 512-byte FPU state: the QEMU model is run with -xsave",
    ),
    entry("XSAVE_SIZE", Number(512), "the FXSAVE region"),
    entry(
        "FSGSBASE_MSR",
        On,
        "FS/GS base through MSRs: the QEMU model is run with -fsgsbase",
    ),
    entry(
        "MULTIBOOT_GRAPHICS_MODE_NONE",
        On,
        "serial console only: no video mode asked of the boot loader",
    ),
    entry("ROOT_CNODE_SIZE_BITS", Number(12), ""),
    entry("TIMER_TICK_MS", Number(2), ""),
    entry("TIME_SLICE", Number(5), ""),
    entry("RETYPE_FAN_OUT_LIMIT", Number(256), ""),
    entry("MAX_NUM_WORK_UNITS_PER_PREEMPTION", Number(100), ""),
    entry("MAX_NUM_BOOTINFO_UNTYPED_CAPS", Number(167), ""),
    entry("FASTPATH", On, ""),
    entry("NUM_DOMAINS", Number(1), ""),
    entry(
        "DOMAIN_SCHEDULE",
        Text(""),
        "no schedule file: the Makefile uses its default",
    ),
    entry("NUM_PRIORITIES", Number(256), ""),
    entry(
        "MAX_NUM_NODES",
        Number(1),
        "uniprocessor: the emulators run one CPU",
    ),
    entry("CACHE_LN_SZ", Number(64), ""),
    entry("KERNEL_STACK_BITS", Number(12), ""),
    entry("FPU_MAX_RESTORES_SINCE_SWITCH", Number(64), ""),
    entry(
        "DEBUG_BUILD",
        On,
        "debug kernel: seL4_DebugPutChar for the root task's output, kernel error messages; \
         the Makefile must then also get DEBUG=1",
    ),
    entry("PRINTING", On, "kernel messages on the serial port"),
    entry("IRQ_REPORTING", On, ""),
    entry(
        "USER_STACK_TRACE_LENGTH",
        Number(16),
        "words of user stack printed on a user fault (DEBUG=1 alone would give 1)",
    ),
    entry("OPTIMISATION_O2", On, ""),
    entry("NO_BENCHMARKS", On, ""),
    entry(
        "KERNEL_CFLAGS",
        Empty,
        "read by the Makefile from its variables only; empty here and cleared in its environment",
    ),
    entry("KERNEL_EXTRA_CPPFLAGS", Empty, ""),
    entry("KERNEL_COMPILER", Empty, ""),
];

/// The options only the VT-x kernel has.
const VTX_ONLY: [ConfigEntry; 2] = [
    entry(
        "VTX",
        On,
        "the VCPU and EPT objects and seL4_VMEnter; the kernel then needs VMX with EPT at boot",
    ),
    entry(
        "MAX_VPIDS",
        Number(1024),
        "the Kconfig default: more VPIDs than the project ever has VCPUs",
    ),
];

/// `a` followed by `b`, as one array of length `N` (checked at compile time).
const fn concat<const N: usize>(a: &[ConfigEntry], b: &[ConfigEntry]) -> [ConfigEntry; N] {
    assert!(a.len() + b.len() == N, "concat: wrong length");
    let mut out = [entry("", Empty, ""); N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < b.len() {
        out[a.len() + j] = b[j];
        j += 1;
    }
    out
}

const VTX_ENTRIES: [ConfigEntry; COMMON.len() + VTX_ONLY.len()] = concat(&COMMON, &VTX_ONLY);

/// The kernel without VT-x (SUPPORT_PCID, IOMMU and VTX off): boots in QEMU under TCG, which
/// has no VMX. Used with the model VCPU.
pub const NO_VTX: KernelConfig = KernelConfig {
    name: "no-vtx",
    entries: &COMMON,
};

/// The kernel with VT-x: [`NO_VTX`] plus `CONFIG_VTX` and `CONFIG_MAX_VPIDS`. Its VT-x
/// initialisation needs VMX with EPT, write-back EPT structures and 2 MiB EPT pages (Bochs'
/// `corei7_haswell_4770` has them; QEMU TCG stops with `vt-x: not supported`).
pub const VTX: KernelConfig = KernelConfig {
    name: "vtx",
    entries: &VTX_ENTRIES,
};

/// Options the Makefile also defines on the compiler's command line when given `DEBUG=1`
/// (`-DCONFIG_USER_STACK_TRACE_LENGTH=1`; its `-DCONFIG_DEBUG_BUILD` agrees with ours).
pub const MAKEFILE_DEFINES: &[&str] = &["USER_STACK_TRACE_LENGTH"];

/// Every configuration, in build order.
pub const CONFIGS: &[&KernelConfig] = &[&NO_VTX, &VTX];

impl KernelConfig {
    /// The configuration called `name` in [`CONFIGS`].
    pub fn by_name(name: &str) -> Option<&'static KernelConfig> {
        CONFIGS.iter().copied().find(|c| c.name == name)
    }

    /// The value of `CONFIG_<name>`, if the configuration defines it.
    pub fn value(&self, name: &str) -> Option<ConfigValue> {
        self.entries.iter().find(|e| e.name == name).map(|e| e.value)
    }

    /// The configuration's `autoconf.h`. Macros of [`MAKEFILE_DEFINES`] are `#undef`ined
    /// first, so that ours replace the Makefile's command-line ones without a warning.
    pub fn render(&self) -> String {
        let mut text = format!(
            "/* seL4 {KERNEL_VERSION} kernel configuration \"{}\", written by `cargo xtask sel4-kernel`\n \
             * from xtask/src/sel4/kernel.rs: edit it there. */\n",
            self.name
        );
        for e in self.entries {
            if !e.why.is_empty() {
                let _ = writeln!(text, "/* {} */", e.why);
            }
            if MAKEFILE_DEFINES.contains(&e.name) {
                let _ = writeln!(text, "#undef CONFIG_{}", e.name);
            }
            let _ = match e.value {
                On => writeln!(text, "#define CONFIG_{} 1", e.name),
                Number(n) => writeln!(text, "#define CONFIG_{} {n}", e.name),
                Text(s) => writeln!(text, "#define CONFIG_{} \"{s}\"", e.name),
                Empty => writeln!(text, "#define CONFIG_{}", e.name),
            };
        }
        text
    }
}

// ---------------------------------------------------------------------------------------------
// The source tree and its fixes
// ---------------------------------------------------------------------------------------------

/// What a [`TreeFix`] does to its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// Replace the text `find`, which must occur exactly once, with `with`.
    Replace {
        /// The text to find.
        find: &'static str,
        /// Its replacement.
        with: &'static str,
    },
    /// Delete the file, which must exist.
    Remove,
}

/// One change to the copied kernel tree, applied by [`apply_fixes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeFix {
    /// Short name (shown in errors, and part of the fix stamp).
    pub name: &'static str,
    /// The file, relative to the tree.
    pub file: &'static str,
    /// The change.
    pub edit: Edit,
}

/// Build fix: `tools/circular_includes.py` skips the preprocessor's line marker for the main
/// file, which it expects as `# 1 "kernel_all.c"`; GCC 12 writes `# 0 "kernel_all.c"`, which
/// the script then takes for an include and reports a circular one. Accept both.
pub const FIX_CIRCULAR_INCLUDES: TreeFix = TreeFix {
    name: "circular-includes-gcc12-line-marker",
    file: "tools/circular_includes.py",
    edit: Edit::Replace {
        find: r#"re.compile(r'^# 1 "kernel_all\.c"')"#,
        with: r#"re.compile(r'^# [01] "kernel_all\.c"')"#,
    },
};

/// Build fix: the tree ships a stale `include/plat/pc99/autoconf.h` (a seL4-test
/// configuration with x2APIC, PCID and IOMMU) whose include directory comes before the build
/// directory, so it shadows the `autoconf.h` we write. Remove it.
pub const FIX_STALE_AUTOCONF: TreeFix = TreeFix {
    name: "remove-stale-pc99-autoconf",
    file: "include/plat/pc99/autoconf.h",
    edit: Edit::Remove,
};

/// VT-x bug 1, in `cap_get_archCapIsPhysical` (include/arch/x86/arch/object/structures.h):
/// the switch has no case for VCPU caps, so it falls through to the mode helper, which halts
/// the kernel with "Invalid mode cap type". Retype asks this of an untyped's newest child,
/// so any Retype from an untyped whose last object was a VCPU stopped the kernel. A VCPU is
/// a physical object (its cap points at kernel memory): answer true, as for the EPT tables.
pub const FIX_VCPU_CAP_IS_PHYSICAL: TreeFix = TreeFix {
    name: "vcpu-cap-is-physical",
    file: "include/arch/x86/arch/object/structures.h",
    edit: Edit::Replace {
        find: "#ifdef CONFIG_VTX\n    case cap_ept_pt_cap:\n        return true;\n",
        with: "#ifdef CONFIG_VTX\n    /* xtask fix: VCPU caps are physical too */\n    case cap_vcpu_cap:\n        return true;\n\n    case cap_ept_pt_cap:\n        return true;\n",
    },
};

/// VT-x bug 1, in `cap_get_archCapPtr` (same file): the same missing VCPU case (same halt);
/// return the VCPU object's address, as `cap_get_archCapSizeBits` already knows its size.
/// (A plain `void *` cast: `vcpu_t` is not declared yet where this header is included.)
pub const FIX_VCPU_CAP_PTR: TreeFix = TreeFix {
    name: "vcpu-cap-ptr",
    file: "include/arch/x86/arch/object/structures.h",
    edit: Edit::Replace {
        find: "#ifdef CONFIG_VTX\n    case cap_ept_pt_cap:\n        return EPT_PT_PTR(",
        with: "#ifdef CONFIG_VTX\n    /* xtask fix: the VCPU object's address */\n    case cap_vcpu_cap:\n        return (void *)cap_vcpu_cap_get_capVCPUPtr(cap);\n\n    case cap_ept_pt_cap:\n        return EPT_PT_PTR(",
    },
};

/// VT-x bug 2, in `finishVmexitSaving` (src/arch/x86/object/vcpu.c), which runs on every VM
/// exit: it marks the VCPU launched unconditionally, also when the "exit" is a VM-entry
/// failure (exit reason bit 31, e.g. 33 for invalid guest state). Such a failed VMLAUNCH
/// leaves the VMCS clear (SDM Vol. 3C, Section 27.8; the VMLAUNCH pseudocode in Chapter 31
/// sets "launched" only after a successful entry), so every later VMEnter used VMRESUME and
/// failed with VM-instruction error 5. Mark launched only when bit 31 is clear; a failed
/// VMRESUME leaves the flag as it was (already launched).
pub const FIX_LAUNCHED_ONLY_AFTER_ENTRY: TreeFix = TreeFix {
    name: "vcpu-launched-only-after-successful-entry",
    file: "src/arch/x86/object/vcpu.c",
    edit: Edit::Replace {
        find: "    vcpu->launched = true;\n    /* Update our cache",
        with: "    /* xtask fix: a VM-entry failure (exit reason bit 31) leaves the VMCS clear */\n    \
               if (!(vmread(VMX_DATA_EXIT_REASON) & BIT(31))) {\n        vcpu->launched = true;\n    }\n    \
               /* Update our cache",
    },
};

/// VT-x bug 3, in `invept` (src/arch/x86/object/vcpu.c): the INVEPT descriptor's first
/// quadword must be an EPT pointer (memory type in bits 2:0, page-walk length minus one in
/// bits 5:3, SDM Vol. 3C, Section 25.6.11 and the INVEPT reference in Chapter 31), but the
/// kernel passed the bare physical address of the PML4, which a single-context INVEPT
/// rejects (Bochs: "INVEPT: invalid EPTPTR value", on every EPT map). Build it exactly as
/// `setEPTRoot` builds the VMCS's EPT pointer (write-back, 4-level walk, no A/D flags), so the
/// invalidation hits the context the guest runs in.
pub const FIX_INVEPT_EPT_POINTER: TreeFix = TreeFix {
    name: "invept-with-ept-pointer",
    file: "src/arch/x86/object/vcpu.c",
    edit: Edit::Replace {
        find: "        address.parts[0] = pptr_to_paddr((void*)ept_pml4);\n",
        with: "        /* xtask fix: an EPT pointer, as setEPTRoot writes it to the VMCS */\n        \
               address.parts[0] = vmx_eptp_new(pptr_to_paddr((void*)ept_pml4), 0, 3, 6).words[0];\n",
    },
};

/// VT-x bug 3, second half, in `unmapEPTPage` (src/arch/x86/kernel/ept.c): unmapping a frame
/// from an EPT (the Unmap invocation, or deleting the frame's last cap) clears the entry but
/// never invalidates, so the guest can keep using a stale translation of a frame that was
/// unmapped or remapped. The table unmaps already call `invept`; do the same after a page
/// entry was cleared (every path through the switch that clears nothing returns early; its
/// `default` is unreachable).
pub const FIX_INVEPT_AFTER_PAGE_UNMAP: TreeFix = TreeFix {
    name: "invept-after-ept-page-unmap",
    file: "src/arch/x86/kernel/ept.c",
    edit: Edit::Replace {
        find: "        assert(!\"Invalid page size for unmap\");\n    }\n}\n",
        with: "        assert(!\"Invalid page size for unmap\");\n    }\n    \
               /* xtask fix: drop the guest's cached translation of the page */\n    \
               invept(find_ret.ept);\n}\n",
    },
};

/// The fixes applied to the staged tree, in order.
pub const TREE_FIXES: &[TreeFix] = &[
    FIX_CIRCULAR_INCLUDES,
    FIX_STALE_AUTOCONF,
    FIX_VCPU_CAP_IS_PHYSICAL,
    FIX_VCPU_CAP_PTR,
    FIX_LAUNCHED_ONLY_AFTER_ENTRY,
    FIX_INVEPT_EPT_POINTER,
    FIX_INVEPT_AFTER_PAGE_UNMAP,
];

/// The text of the stamp a staged tree carries: each fix's name, file and a hash of its
/// edit, so that changing a fix in any way restages the tree and rebuilds the kernels (the
/// stamp is also part of the build directory's hash).
fn fixes_stamp(fixes: &[TreeFix]) -> String {
    let mut text = format!("seL4 {KERNEL_VERSION} from {SOURCE_PACKAGE} {SOURCE_PACKAGE_VERSION}\n");
    for fix in fixes {
        let edit = match fix.edit {
            Edit::Replace { find, with } => fnv1a64(format!("replace\0{find}\0{with}").as_bytes()),
            Edit::Remove => fnv1a64(b"remove"),
        };
        let _ = writeln!(text, "{} {} {edit:016x}", fix.name, fix.file);
    }
    text
}

/// Applies `fixes` to the tree at `tree`, in order. Each must find what it changes: a
/// `Replace` whose text is absent or not unique, or a `Remove` of a missing file, is an error
/// naming the fix (the tree is then only partly fixed; callers discard it).
pub fn apply_fixes(tree: &Path, fixes: &[TreeFix]) -> Result<(), String> {
    for fix in fixes {
        let path = tree.join(fix.file);
        match fix.edit {
            Edit::Remove => {
                if !path.is_file() {
                    return Err(format!("fix {}: {} does not exist", fix.name, path.display()));
                }
                std::fs::remove_file(&path)
                    .map_err(|e| format!("fix {}: {}: {e}", fix.name, path.display()))?;
            }
            Edit::Replace { find, with } => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("fix {}: {}: {e}", fix.name, path.display()))?;
                let count = text.matches(find).count();
                if count != 1 {
                    return Err(format!(
                        "fix {}: expected the pattern exactly once in {}, found it {count} times: {find:?}",
                        fix.name,
                        path.display()
                    ));
                }
                std::fs::write(&path, text.replacen(find, with, 1))
                    .map_err(|e| format!("fix {}: {}: {e}", fix.name, path.display()))?;
            }
        }
    }
    Ok(())
}

/// Copies the directory `from` to `to` (which must not exist): files with their permissions,
/// symbolic links as links.
fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", from.display()))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", source.display()))?;
        if kind.is_dir() {
            copy_dir(&source, &target)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(&source).map_err(|e| format!("{}: {e}", source.display()))?;
            std::os::unix::fs::symlink(&link, &target).map_err(|e| format!("{}: {e}", target.display()))?;
        } else {
            std::fs::copy(&source, &target).map_err(|e| format!("{}: {e}", source.display()))?;
        }
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The pristine kernel tree inside the registry copy of `sel4-sys` 0.0.28: a throwaway
/// manifest under `sel4_dir/fetch` depends on it, `cargo fetch` downloads it (a no-op when
/// cached), and `cargo metadata` says where it is.
fn registry_tree(sel4_dir: &Path) -> Result<PathBuf, String> {
    let fetch = sel4_dir.join("fetch");
    std::fs::create_dir_all(fetch.join("src")).map_err(|e| format!("{}: {e}", fetch.display()))?;
    // The library is never built: it only gives the dependency a place. `[workspace]` keeps
    // cargo from treating the project's workspace as this package's.
    let manifest = format!(
        "[package]\nname = \"sel4-kernel-source\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [lib]\npath = \"src/lib.rs\"\n\n[dependencies]\n{SOURCE_PACKAGE} = \"={SOURCE_PACKAGE_VERSION}\"\n\n[workspace]\n"
    );
    let manifest_path = fetch.join("Cargo.toml");
    write_if_changed(&manifest_path, &manifest)?;
    write_if_changed(&fetch.join("src/lib.rs"), "")?;
    run_logged(cargo().arg("fetch").arg("--manifest-path").arg(&manifest_path))?;
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&manifest_path)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo metadata failed ({})", output.status));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let package_manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == SOURCE_PACKAGE && p["version"] == SOURCE_PACKAGE_VERSION)
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or_else(|| format!("cargo metadata does not list {SOURCE_PACKAGE} {SOURCE_PACKAGE_VERSION}"))?;
    let tree = Path::new(package_manifest)
        .parent()
        .map(|dir| dir.join("seL4"))
        .ok_or_else(|| format!("odd manifest path {package_manifest}"))?;
    let version = std::fs::read_to_string(tree.join("VERSION"))
        .map_err(|e| format!("{}: {e}", tree.join("VERSION").display()))?;
    if version.trim() != KERNEL_VERSION {
        return Err(format!(
            "{} says seL4 {}, expected {KERNEL_VERSION}",
            tree.display(),
            version.trim()
        ));
    }
    Ok(tree)
}

/// Name of the stamp file in a staged tree.
const STAMP: &str = ".xtask-fixes";

/// The staged kernel tree `target/sel4/tree-5.0.0/`: a copy of the registry tree with
/// [`TREE_FIXES`] applied. Reused when its stamp matches the current fixes; otherwise
/// rebuilt (copied to a scratch directory, fixed, stamped, then renamed into place, so a
/// staged tree is always complete).
pub fn stage_tree(root: &Path) -> Result<PathBuf, String> {
    let sel4_dir = root.join("target/sel4");
    let staged = sel4_dir.join(format!("tree-{KERNEL_VERSION}"));
    let stamp = fixes_stamp(TREE_FIXES);
    if std::fs::read_to_string(staged.join(STAMP)).is_ok_and(|s| s == stamp) {
        return Ok(staged);
    }
    let pristine = registry_tree(&sel4_dir)?;
    let scratch = sel4_dir.join(format!("tree-{KERNEL_VERSION}.partial"));
    for dir in [&scratch, &staged] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
    }
    eprintln!(
        "xtask: sel4: staging {} -> {}",
        pristine.display(),
        staged.display()
    );
    copy_dir(&pristine, &scratch)?;
    apply_fixes(&scratch, TREE_FIXES)?;
    std::fs::write(scratch.join(STAMP), &stamp).map_err(|e| format!("{}: {e}", scratch.display()))?;
    std::fs::rename(&scratch, &staged).map_err(|e| format!("{}: {e}", staged.display()))?;
    Ok(staged)
}

// ---------------------------------------------------------------------------------------------
// The build
// ---------------------------------------------------------------------------------------------

/// A built kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelBuild {
    /// The staged, fixed kernel tree it was built from (the bindings read the interface XML
    /// and headers here).
    pub tree: PathBuf,
    /// The configuration header it was built with.
    pub autoconf: PathBuf,
    /// The kernel, ELF64 (for GRUB).
    pub kernel: PathBuf,
    /// The kernel converted to ELF32 (`objcopy -O elf32-i386`), for QEMU's multiboot loader.
    pub kernel32: PathBuf,
    /// Wall time of the build, 0 when a finished build was reused.
    pub seconds: f64,
}

/// 64-bit FNV-1a: a stable hash for naming build directories (not for security).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The build directory's name for a configuration: its name and 16 hex digits of the hash
/// of its header and the fix stamp, so a changed option or fix gets a fresh build.
pub fn build_dir_name(config: &KernelConfig) -> String {
    let key = format!("{}\n{}", config.render(), fixes_stamp(TREE_FIXES));
    format!("{}-{:016x}", config.name, fnv1a64(key.as_bytes()))
}

fn write_if_changed(path: &Path, text: &str) -> Result<(), String> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Checks that `path` is an x86 ELF of the given class (1: 32-bit, 2: 64-bit) and machine
/// (3: i386, 62: x86-64).
fn check_elf(path: &Path, class: u8, machine: u16) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let header_ok = bytes.get(0..4) == Some(b"\x7fELF".as_slice())
        && bytes.get(4) == Some(&class)
        && bytes.get(18..20) == Some(machine.to_le_bytes().as_slice());
    if header_ok {
        Ok(())
    } else {
        Err(format!(
            "{} is not an ELF{} for machine {machine}",
            path.display(),
            if class == 1 { 32 } else { 64 }
        ))
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Builds the kernel in `config` (tools, tree and all), or reuses a finished build.
pub fn build(root: &Path, config: &KernelConfig) -> Result<KernelBuild, String> {
    let venv_bin = ensure_tools(root)?;
    let tree = stage_tree(root)?;
    let dir = root.join("target/sel4/kernel").join(build_dir_name(config));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let autoconf = dir.join("autoconf.h");
    write_if_changed(&autoconf, &config.render())?;
    let kernel = dir.join("kernel.elf");
    let kernel32 = dir.join("kernel32.elf");
    let done = |seconds| KernelBuild {
        tree: tree.clone(),
        autoconf: autoconf.clone(),
        kernel: kernel.clone(),
        kernel32: kernel32.clone(),
        seconds,
    };
    // kernel32.elf is written last (renamed into place): its presence means a finished build.
    if kernel.is_file() && kernel32.is_file() {
        return Ok(done(0.0));
    }

    let started = Instant::now();
    let log_path = dir.join("build.log");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(venv_bin).chain(std::env::split_paths(&path)))
        .map_err(|e| format!("PATH: {e}"))?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut make = Command::new("make");
    make.current_dir(&dir)
        .arg("-f")
        .arg(tree.join("Makefile"))
        .arg(format!("SOURCE_ROOT={}", tree.display()))
        .args(["ARCH=x86", "SEL4_ARCH=x86_64", "PLAT=pc99", "PYTHON=python"])
        .args(["-o", "autoconf.h"])
        .arg(format!("-j{jobs}"));
    // The kernel's DEBUG-guarded declarations must match CONFIG_DEBUG_BUILD.
    if config.value("DEBUG_BUILD") == Some(On) {
        make.arg("DEBUG=1");
    }
    // make imports the environment as variables (CONFIG_KERNEL_CFLAGS would replace CFLAGS,
    // V, DEBUG and friends change the build): start from an empty one.
    make.env_clear()
        .env("PATH", path)
        .env("LC_ALL", "C")
        // GCC 12's newer warnings break the kernel's -Werror; the Makefile appends to CFLAGS.
        .env("CFLAGS", "-Wno-address-of-packed-member -Wno-array-bounds")
        // No __pycache__ in the staged tree. (The one file the build writes there is ply's
        // grammar-table cache tools/parsetab.py, the same for every configuration.)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    if let Some(home) = std::env::var_os("HOME") {
        make.env("HOME", home);
    }
    eprintln!(
        "xtask: sel4: building kernel {} in {} (log: build.log)",
        config.name,
        dir.display()
    );
    let status = make.status().map_err(|e| format!("cannot run make: {e}"))?;
    if !status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        return Err(format!(
            "kernel {} build failed ({status}); last lines of {}:\n{}",
            config.name,
            log_path.display(),
            tail(&text, 40)
        ));
    }
    check_elf(&kernel, 2, 62)?;
    let partial = dir.join("kernel32.elf.partial");
    run_logged(
        Command::new("objcopy")
            .args(["-O", "elf32-i386"])
            .arg(&kernel)
            .arg(&partial),
    )?;
    check_elf(&partial, 1, 3)?;
    std::fs::rename(&partial, &kernel32).map_err(|e| format!("{}: {e}", kernel32.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    remove_stale_builds(&dir)?;
    Ok(done(seconds))
}

/// Removes the other build directories of `current`'s configuration (`<name>-<16 hex>`):
/// builds made with an older header or older fixes, which nothing uses any more.
fn remove_stale_builds(current: &Path) -> Result<(), String> {
    let (Some(parent), Some(current_name)) = (current.parent(), current.file_name().and_then(OsStr::to_str))
    else {
        return Ok(());
    };
    let Some((config_name, _)) = current_name.rsplit_once('-') else {
        return Ok(());
    };
    let entries = std::fs::read_dir(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = name != current_name
            && name
                .strip_prefix(config_name)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|hash| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
        if stale {
            eprintln!("xtask: sel4: removing the stale build {name}");
            std::fs::remove_dir_all(entry.path()).map_err(|e| format!("{}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// `cargo xtask sel4-kernel [NAME...]`: builds the named configurations (default: all) and
/// prints where everything is.
pub fn main(args: &[String]) -> Result<(), String> {
    let root = super::workspace_root();
    let configs: Vec<&KernelConfig> = if args.is_empty() {
        CONFIGS.to_vec()
    } else {
        args.iter()
            .map(|name| {
                KernelConfig::by_name(name).ok_or_else(|| {
                    let known: Vec<&str> = CONFIGS.iter().map(|c| c.name).collect();
                    format!(
                        "unknown kernel configuration {name:?} (known: {})",
                        known.join(", ")
                    )
                })
            })
            .collect::<Result<_, _>>()?
    };
    for config in configs {
        let built = build(&root, config)?;
        let time = if built.seconds == 0.0 {
            "cached".to_string()
        } else {
            format!("built in {:.1} s", built.seconds)
        };
        println!("seL4 {KERNEL_VERSION} kernel {} ({time})", config.name);
        println!("  kernel    {}", built.kernel.display());
        println!("  kernel32  {}", built.kernel32.display());
        println!("  autoconf  {}", built.autoconf.display());
        println!("  tree      {}", built.tree.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sel4::test_support::Scratch;

    fn defines(config: &KernelConfig) -> Vec<(String, String)> {
        config
            .render()
            .lines()
            .filter_map(|line| line.strip_prefix("#define "))
            .map(|rest| match rest.split_once(' ') {
                Some((name, value)) => (name.to_string(), value.to_string()),
                None => (rest.to_string(), String::new()),
            })
            .collect()
    }

    fn define<'a>(defines: &'a [(String, String)], name: &str) -> Option<&'a str> {
        defines.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn vtx_adds_exactly_vtx_and_max_vpids() {
        let plain = defines(&NO_VTX);
        let vtx = defines(&VTX);
        assert_eq!(define(&vtx, "CONFIG_VTX"), Some("1"));
        assert_eq!(define(&vtx, "CONFIG_MAX_VPIDS"), Some("1024"));
        assert_eq!(define(&plain, "CONFIG_VTX"), None);
        assert_eq!(define(&plain, "CONFIG_MAX_VPIDS"), None);
        let extra: Vec<&str> = vtx
            .iter()
            .filter(|d| !plain.contains(d))
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(extra, ["CONFIG_VTX", "CONFIG_MAX_VPIDS"]);
        assert!(
            plain.iter().all(|d| vtx.contains(d)),
            "VTX must keep every NO_VTX option"
        );
    }

    #[test]
    fn values_the_emulators_need() {
        for config in CONFIGS {
            let d = defines(config);
            for (name, value) in [
                ("CONFIG_ARCH_X86_64", "1"),
                ("CONFIG_PLAT_PC99", "1"),
                ("CONFIG_XAPIC", "1"),
                ("CONFIG_FXSAVE", "1"),
                ("CONFIG_XSAVE_SIZE", "512"),
                ("CONFIG_FSGSBASE_MSR", "1"),
                ("CONFIG_SYSCALL", "1"),
                ("CONFIG_DEBUG_BUILD", "1"),
                ("CONFIG_PRINTING", "1"),
                ("CONFIG_MAX_NUM_NODES", "1"),
                ("CONFIG_DOMAIN_SCHEDULE", "\"\""),
                ("CONFIG_KERNEL_CFLAGS", ""),
                ("CONFIG_KERNEL_EXTRA_CPPFLAGS", ""),
                ("CONFIG_KERNEL_COMPILER", ""),
            ] {
                assert_eq!(define(&d, name), Some(value), "{} {name}", config.name);
            }
            // Off: absent, not defined to 0 (the kernel tests them with #ifdef).
            for name in [
                "CONFIG_X2APIC",
                "CONFIG_SUPPORT_PCID",
                "CONFIG_IOMMU",
                "CONFIG_XSAVE",
                "CONFIG_FSGSBASE_INST",
            ] {
                assert_eq!(define(&d, name), None, "{} {name}", config.name);
            }
        }
    }

    #[test]
    fn every_line_is_well_formed() {
        for config in CONFIGS {
            let text = config.render();
            let mut in_comment = false;
            let mut names = Vec::new();
            for line in text.lines() {
                if in_comment || line.starts_with("/*") {
                    in_comment = !line.ends_with("*/");
                    // Only one comment terminator, at the end.
                    assert_eq!(line.matches("*/").count(), usize::from(!in_comment), "{line:?}");
                    continue;
                }
                if let Some(name) = line.strip_prefix("#undef ") {
                    assert!(
                        MAKEFILE_DEFINES.iter().any(|m| name == format!("CONFIG_{m}")),
                        "{line:?}"
                    );
                    continue;
                }
                let rest = line
                    .strip_prefix("#define CONFIG_")
                    .unwrap_or_else(|| panic!("{line:?}"));
                let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
                assert!(
                    !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                    "{line:?}"
                );
                let number = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                let string = value.len() >= 2
                    && value.starts_with('"')
                    && value.ends_with('"')
                    && !value[1..value.len() - 1].contains(['"', '\\']);
                assert!(value.is_empty() || number || string, "{line:?}");
                assert!(
                    !names.contains(&name),
                    "{} defines CONFIG_{name} twice",
                    config.name
                );
                names.push(name);
            }
            assert!(!in_comment, "unterminated comment in {}", config.name);
            assert_eq!(names.len(), config.entries.len());
        }
    }

    #[test]
    fn makefile_defines_are_undefined_first() {
        let text = NO_VTX.render();
        let undef = text.find("#undef CONFIG_USER_STACK_TRACE_LENGTH\n").unwrap();
        let define = text.find("#define CONFIG_USER_STACK_TRACE_LENGTH 16\n").unwrap();
        assert!(undef < define);
    }

    #[test]
    fn configurations_by_name() {
        assert_eq!(KernelConfig::by_name("vtx"), Some(&VTX));
        assert_eq!(KernelConfig::by_name("no-vtx"), Some(&NO_VTX));
        assert_eq!(KernelConfig::by_name("VTX"), None);
        assert_eq!(VTX.value("MAX_VPIDS"), Some(Number(1024)));
        assert_eq!(NO_VTX.value("VTX"), None);
    }

    #[test]
    fn fnv1a64_known_values() {
        // The reference test vectors of FNV-1a, 64-bit.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn build_dirs_differ_per_configuration_and_fix() {
        let plain = build_dir_name(&NO_VTX);
        let vtx = build_dir_name(&VTX);
        for (name, dir) in [("no-vtx", &plain), ("vtx", &vtx)] {
            let hash = dir.strip_prefix(name).and_then(|r| r.strip_prefix('-')).unwrap();
            assert_eq!(hash.len(), 16);
            assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(plain, vtx);
        assert_eq!(plain, build_dir_name(&NO_VTX), "deterministic");
        // Any change to a fix's text changes the stamp, hence the build directories.
        let mut changed = TREE_FIXES.to_vec();
        changed[0].edit = Edit::Replace { find: "x", with: "y" };
        assert_ne!(fixes_stamp(TREE_FIXES), fixes_stamp(&changed));
    }

    /// A fake tree holding, for each fix, its pattern (or its file, for a removal) amid
    /// other text.
    fn fake_tree(dir: &Path, fixes: &[TreeFix]) {
        for fix in fixes {
            let path = dir.join(fix.file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let mut text = std::fs::read_to_string(&path).unwrap_or_default();
            match fix.edit {
                Edit::Replace { find, .. } => text.push_str(&format!("/* before */\n{find}/* after */\n")),
                Edit::Remove => text.push_str("#define CONFIG_X2APIC 1\n"),
            }
            std::fs::write(&path, text).unwrap();
        }
    }

    #[test]
    fn fixes_change_exactly_their_patterns() {
        let scratch = Scratch::new("sel4-kernel-fixes-ok");
        fake_tree(&scratch.0, TREE_FIXES);
        // What each file should become: the original with every fix of that file applied.
        let mut expected: Vec<(PathBuf, Option<String>)> = Vec::new();
        for fix in TREE_FIXES {
            let path = scratch.0.join(fix.file);
            let before = match expected.iter().position(|(p, _)| *p == path) {
                Some(i) => expected.remove(i).1,
                None => std::fs::read_to_string(&path).ok(),
            };
            let after = match fix.edit {
                Edit::Replace { find, with } => before.map(|t| t.replacen(find, with, 1)),
                Edit::Remove => None,
            };
            expected.push((path, after));
        }
        apply_fixes(&scratch.0, TREE_FIXES).unwrap();
        for (path, text) in expected {
            assert_eq!(std::fs::read_to_string(&path).ok(), text, "{}", path.display());
        }
        // Applying them again finds nothing to change: loud failure, not a silent no-op.
        let error = apply_fixes(&scratch.0, TREE_FIXES).unwrap_err();
        assert!(error.contains(TREE_FIXES[0].name), "{error}");
    }

    #[test]
    fn each_real_fix_changes_its_file() {
        for fix in TREE_FIXES {
            if let Edit::Replace { find, with } = fix.edit {
                assert_ne!(find, with, "{}", fix.name);
                assert!(
                    !with.contains(find),
                    "{}: must not match again after it applied",
                    fix.name
                );
            }
        }
    }

    #[test]
    fn missing_pattern_is_an_error() {
        let scratch = Scratch::new("sel4-kernel-fixes-missing");
        fake_tree(&scratch.0, &[FIX_LAUNCHED_ONLY_AFTER_ENTRY]);
        let error = apply_fixes(&scratch.0, &[FIX_INVEPT_EPT_POINTER]).unwrap_err();
        assert!(
            error.contains("invept-with-ept-pointer") && error.contains("0 times"),
            "{error}"
        );
        // A missing file too.
        let error = apply_fixes(&scratch.0, &[FIX_CIRCULAR_INCLUDES]).unwrap_err();
        assert!(error.contains("circular-includes"), "{error}");
        // And a removal of a file that is not there.
        let error = apply_fixes(&scratch.0, &[FIX_STALE_AUTOCONF]).unwrap_err();
        assert!(error.contains("does not exist"), "{error}");
    }

    #[test]
    fn ambiguous_pattern_is_an_error() {
        let scratch = Scratch::new("sel4-kernel-fixes-twice");
        fake_tree(&scratch.0, &[FIX_CIRCULAR_INCLUDES, FIX_CIRCULAR_INCLUDES]);
        let path = scratch.0.join(FIX_CIRCULAR_INCLUDES.file);
        let before = std::fs::read_to_string(&path).unwrap();
        let error = apply_fixes(&scratch.0, &[FIX_CIRCULAR_INCLUDES]).unwrap_err();
        assert!(error.contains("2 times"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before, "left unchanged");
    }

    #[test]
    fn copy_dir_keeps_structure_permissions_and_links() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = Scratch::new("sel4-kernel-copy");
        let from = scratch.0.join("from");
        std::fs::create_dir_all(from.join("tools/sub")).unwrap();
        std::fs::write(from.join("Makefile"), "all:\n").unwrap();
        std::fs::write(from.join("tools/sub/gen.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            from.join("tools/sub/gen.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("sub/gen.sh", from.join("tools/gen")).unwrap();
        let to = scratch.0.join("to");
        copy_dir(&from, &to).unwrap();
        assert_eq!(std::fs::read_to_string(to.join("Makefile")).unwrap(), "all:\n");
        let mode = std::fs::metadata(to.join("tools/sub/gen.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            std::fs::read_link(to.join("tools/gen")).unwrap(),
            Path::new("sub/gen.sh")
        );
        // The destination must be new.
        assert!(copy_dir(&from, &to).is_err());
    }

    #[test]
    fn elf_check() {
        let scratch = Scratch::new("sel4-kernel-elf");
        let path = scratch.0.join("k");
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = 2;
        header[18..20].copy_from_slice(&62u16.to_le_bytes());
        std::fs::write(&path, &header).unwrap();
        assert!(check_elf(&path, 2, 62).is_ok());
        assert!(check_elf(&path, 1, 3).is_err());
        std::fs::write(&path, &header[..10]).unwrap();
        assert!(check_elf(&path, 2, 62).is_err(), "truncated");
        assert!(check_elf(&scratch.0.join("missing"), 2, 62).is_err());
    }

    #[test]
    fn stale_builds_are_removed_and_others_kept() {
        let scratch = Scratch::new("sel4-kernel-stale");
        let keep = [
            "vtx-0123456789abcdef",
            "no-vtx-fedcba9876543210",
            "vtx-short",
            "vtxextra-0123456789abcdee",
        ];
        for name in keep.iter().chain(&["vtx-1111111111111111"]) {
            std::fs::create_dir(scratch.0.join(name)).unwrap();
        }
        remove_stale_builds(&scratch.0.join("vtx-0123456789abcdef")).unwrap();
        for name in keep {
            assert!(scratch.0.join(name).exists(), "{name}");
        }
        assert!(!scratch.0.join("vtx-1111111111111111").exists());
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 3), "");
    }
}
