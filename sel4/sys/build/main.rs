//! Generates sel4-sys's constants, labels, bitfield types, register structures and invocation
//! stubs from a seL4 kernel tree (`SEL4_KERNEL_TREE`) and its configuration header
//! (`SEL4_AUTOCONF`), both provided by `cargo xtask`.

mod bitfield;
mod cpp;
mod interface;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cpp::{Config, ConfigValue, Defines};

/// Configuration options that become `cfg(sel4_config_<name>)` for this crate and, through the
/// `links` metadata, for crates that depend on it.
const CFG_OPTIONS: [&str; 6] = [
    "VTX",
    "DEBUG_BUILD",
    "HUGE_PAGE",
    "IOMMU",
    "HARDWARE_DEBUG_API",
    "PRINTING",
];

/// libsel4 headers read for constants, in include order (a header may use its predecessors'
/// names). `true`: its `seL4_`/`SEL4_` constants are emitted; `false`: read for macros only.
/// `{arch}`, `{sel4_arch}` and `{plat}` are filled in from the configuration.
const HEADERS: [(&str, bool); 14] = [
    ("include/sel4/macros.h", false),
    ("sel4_arch_include/{sel4_arch}/sel4/sel4_arch/constants.h", true),
    ("sel4_plat_include/{plat}/sel4/plat/api/constants.h", true),
    ("include/sel4/objecttype.h", true),
    ("sel4_arch_include/{sel4_arch}/sel4/sel4_arch/objecttype.h", true),
    ("arch_include/{arch}/sel4/arch/objecttype.h", true),
    ("include/sel4/errors.h", true),
    ("include/sel4/constants.h", true),
    ("include/sel4/shared_types.h", true),
    ("include/sel4/types.h", true),
    ("arch_include/{arch}/sel4/arch/types.h", true),
    ("arch_include/{arch}/sel4/arch/constants.h", true),
    ("include/sel4/bootinfo_types.h", true),
    ("arch_include/{arch}/sel4/arch/vmenter.h", true),
];

const MISSING: &str = "sel4-sys generates its bindings from a seL4 5.0.0 kernel tree and that kernel's \
configuration header, named by SEL4_KERNEL_TREE and SEL4_AUTOCONF. These crates are built by \
`cargo xtask` (for example `cargo xtask test`), which prepares both and sets the variables; see \
sel4/README.md";

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

struct Inputs {
    tree: PathBuf,
    paths: BTreeMap<&'static str, &'static str>,
}

impl Inputs {
    fn path(&self, template: &str) -> PathBuf {
        let mut rel = template.to_string();
        for (k, v) in &self.paths {
            rel = rel.replace(k, v);
        }
        self.tree.join(rel)
    }

    fn read(&self, template: &str) -> Result<(String, String), String> {
        let path = self.path(template);
        let rel = path
            .strip_prefix(&self.tree)
            .unwrap_or(&path)
            .display()
            .to_string();
        Ok((rel, read(&path)?))
    }
}

fn read(path: &Path) -> Result<String, String> {
    println!("cargo::rerun-if-changed={}", path.display());
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn env_path(name: &str) -> Result<PathBuf, String> {
    println!("cargo::rerun-if-env-changed={name}");
    match std::env::var_os(name) {
        Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
        _ => Err(format!("{name} is not set. {MISSING}")),
    }
}

fn run() -> Result<(), String> {
    println!("cargo::rerun-if-changed=build");
    for opt in CFG_OPTIONS {
        println!("cargo::rustc-check-cfg=cfg(sel4_config_{})", opt.to_lowercase());
    }
    let tree = env_path("SEL4_KERNEL_TREE")?;
    let autoconf = env_path("SEL4_AUTOCONF")?;
    if !tree.join("libsel4").is_dir() {
        return Err(format!(
            "SEL4_KERNEL_TREE={} has no libsel4/ directory. {MISSING}",
            tree.display()
        ));
    }
    let config = Config::parse(&read(&autoconf)?).map_err(|e| format!("{}: {e}", autoconf.display()))?;
    if !config.is_set("CONFIG_ARCH_X86_64") || config.int("CONFIG_WORD_SIZE") != Some(64) {
        return Err(format!(
            "{}: sel4-sys supports x86_64 only (CONFIG_ARCH_X86_64 and CONFIG_WORD_SIZE 64)",
            autoconf.display()
        ));
    }
    let plat = if config.is_set("CONFIG_PLAT_PC99") {
        "pc99"
    } else {
        return Err("only the pc99 platform is supported".into());
    };
    let inputs = Inputs {
        tree: tree.clone(),
        paths: BTreeMap::from([("{arch}", "x86"), ("{sel4_arch}", "x86_64"), ("{plat}", plat)]),
    };
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);

    // cfgs for this crate and for dependents (links = "sel4" makes them DEP_SEL4_CFGS).
    let mut cfgs = Vec::new();
    for opt in CFG_OPTIONS {
        if config.is_set(&format!("CONFIG_{opt}")) {
            println!("cargo::rustc-cfg=sel4_config_{}", opt.to_lowercase());
            cfgs.push(opt.to_lowercase());
        }
    }
    println!("cargo::metadata=cfgs={}", cfgs.join(","));
    let all: Vec<String> = CFG_OPTIONS.iter().map(|o| o.to_lowercase()).collect();
    println!("cargo::metadata=known_cfgs={}", all.join(","));
    println!("cargo::rustc-env=SEL4_SYS_KERNEL_TREE={}", tree.display());
    println!("cargo::rustc-env=SEL4_SYS_AUTOCONF={}", autoconf.display());

    let banner = format!(
        "// Generated by sel4-sys's build script from {} and {}. Do not edit.\n\n",
        tree.display(),
        autoconf.display()
    );
    let write = |name: &str, body: String| -> Result<(), String> {
        let path = out_dir.join(name);
        std::fs::write(&path, format!("{banner}{body}"))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };

    write("config.rs", generate_config(&config))?;
    write("constants.rs", generate_constants(&inputs, &config)?)?;
    write("bitfields.rs", generate_bitfields(&inputs, &config)?)?;

    let (_, syscall_xml) = inputs.read("libsel4/include/api/syscall.xml")?;
    let syscalls = interface::read_syscalls(&syscall_xml, &config)?;
    let mut s = String::new();
    for (name, number) in &syscalls {
        let _ = writeln!(s, "/// `seL4_Sys{name}` (`libsel4/include/api/syscall.xml`).");
        let _ = writeln!(s, "pub const seL4_Sys{name}: seL4_Syscall_ID = {number};");
    }
    write("syscalls.rs", s)?;

    let mut files = Vec::new();
    for f in [
        "libsel4/include/interfaces/sel4.xml",
        "libsel4/sel4_arch_include/{sel4_arch}/interfaces/sel4arch.xml",
        "libsel4/arch_include/{arch}/interfaces/sel4arch.xml",
    ] {
        files.push(inputs.read(f)?);
    }
    let file_refs: Vec<(&str, String)> = files.iter().map(|(p, t)| (p.as_str(), t.clone())).collect();
    let interfaces = interface::read_interfaces(&file_refs, &config)?;
    let mut s = String::new();
    for (name, value) in &interfaces.labels {
        let _ = writeln!(
            s,
            "/// Invocation label `{name}` (numbered as `tools/invocation_header_gen.py` numbers it)."
        );
        let _ = writeln!(s, "pub const {name}: invocation_label = {value};");
    }
    write("invocation.rs", s)?;
    write("structs.rs", interface::generate_structs(&interfaces))?;
    write("stubs.rs", interface::generate_stubs(&interfaces)?)?;
    Ok(())
}

fn generate_config(config: &Config) -> String {
    let mut s = String::new();
    for (name, value) in &config.entries {
        let _ = writeln!(s, "/// `{name}` from the kernel configuration header.");
        match value {
            ConfigValue::Int(v) if *v >= 0 => {
                let _ = writeln!(s, "pub const {name}: seL4_Word = {v};");
            }
            ConfigValue::Int(v) => {
                let _ = writeln!(s, "pub const {name}: seL4_Int64 = {v};");
            }
            ConfigValue::Str(v) => {
                let _ = writeln!(s, "pub const {name}: &str = \"{v}\";");
            }
        }
    }
    s
}

fn generate_constants(inputs: &Inputs, config: &Config) -> Result<String, String> {
    let mut defs: Defines = config.defs.clone();
    let mut seen: BTreeMap<String, i128> = BTreeMap::new();
    let mut s = String::new();
    for (template, emit) in HEADERS {
        let (rel, text) = inputs.read(&format!("libsel4/{template}"))?;
        let header = cpp::scan_header(&text, &mut defs).map_err(|e| format!("{rel}: {e}"))?;
        if !emit {
            continue;
        }
        for c in header.constants {
            if !(c.name.starts_with("seL4_") || c.name.starts_with("SEL4_")) {
                continue;
            }
            match seen.get(&c.name) {
                Some(v) if *v == c.value => continue,
                Some(v) => return Err(format!("{rel}: {} is {} here but {v} earlier", c.name, c.value)),
                None => {}
            }
            seen.insert(c.name.clone(), c.value);
            let _ = writeln!(s, "/// `{}` (`{rel}`).", c.name);
            if c.value < 0 {
                let _ = writeln!(s, "pub const {}: seL4_Int64 = {};", c.name, c.value);
            } else {
                let v = u64::try_from(c.value).map_err(|_| format!("{}: value out of range", c.name))?;
                let _ = writeln!(s, "pub const {}: seL4_Word = {v:#x};", c.name);
            }
        }
    }
    Ok(s)
}

fn generate_bitfields(inputs: &Inputs, config: &Config) -> Result<String, String> {
    let mut s = String::new();
    let parse = |template: &str| -> Result<(String, bitfield::BfFile), String> {
        let (rel, text) = inputs.read(template)?;
        let mut defs = config.defs.clone();
        let file = bitfield::parse(&text, &mut defs).map_err(|e| format!("{rel}: {e}"))?;
        Ok((rel, file))
    };
    // libsel4's own types: every plain block becomes a structure, every union a union type.
    for template in [
        "libsel4/include/sel4/shared_types_64.bf",
        "libsel4/include/sel4/types_64.bf",
    ] {
        let (rel, file) = parse(template)?;
        let in_union: Vec<&str> = file
            .unions
            .iter()
            .flat_map(|u| u.tags.iter().map(|(t, _)| t.as_str()))
            .collect();
        for block in file
            .blocks
            .iter()
            .filter(|b| !in_union.contains(&b.name.as_str()))
        {
            s.push_str(&bitfield::generate_block(
                block,
                &format!("{}_t", block.name),
                &rel,
            )?);
        }
        for u in &file.unions {
            s.push_str(&bitfield::generate_union(u, &file, &rel)?);
        }
    }
    // The fault tags (their blocks describe the kernel's storage, not the fault messages).
    let (rel, file) = parse("libsel4/arch_include/{arch}/sel4/arch/shared_types.bf")?;
    for u in &file.unions {
        s.push_str(&bitfield::generate_union_tags(u, &rel));
    }
    // The capability data that restricts an I/O port capability's range when it is minted:
    // defined by the kernel only.
    let (rel, file) = parse("include/arch/{arch}/arch/64/mode/object/structures.bf")?;
    let block = file
        .block("io_port_capdata")
        .ok_or(format!("{rel}: no io_port_capdata block"))?;
    s.push_str(&bitfield::generate_block(block, "io_port_capdata_t", &rel)?);
    Ok(s)
}
