//! Takes over sel4-sys's configuration cfgs (`sel4_config_vtx`, ...): sel4-sys's build script
//! passes them through its `links = "sel4"` metadata.

fn main() {
    let known = std::env::var("DEP_SEL4_KNOWN_CFGS").unwrap_or_default();
    for cfg in known.split(',').filter(|c| !c.is_empty()) {
        println!("cargo::rustc-check-cfg=cfg(sel4_config_{cfg})");
    }
    let Ok(set) = std::env::var("DEP_SEL4_CFGS") else {
        eprintln!("error: sel4-sys did not pass its configuration (DEP_SEL4_CFGS)");
        std::process::exit(1);
    };
    for cfg in set.split(',').filter(|c| !c.is_empty()) {
        println!("cargo::rustc-cfg=sel4_config_{cfg}");
    }
}
