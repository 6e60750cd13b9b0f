//! Links every image statically at a fixed address with our linker script, and passes the
//! inputs `cargo xtask` provides on to the code: the guest image the VMM server plays and, for
//! the root task, the directory holding the component images it loads.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--build-id=none",
        "-Wl,--gc-sections",
        "-Wl,-z,norelro",
        &format!("-Wl,-T,{dir}/link.ld"),
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=link.ld");
    // The kernel configuration decides which images the VMM server is built for: on a kernel
    // with VT-x it drives a real VCPU, otherwise the model VCPU.
    println!("cargo:rustc-check-cfg=cfg(sel4_config_vtx)");
    println!("cargo:rerun-if-env-changed=SEL4_AUTOCONF");
    if let Ok(autoconf) = std::env::var("SEL4_AUTOCONF") {
        println!("cargo:rerun-if-changed={autoconf}");
        let text = std::fs::read_to_string(&autoconf).unwrap_or_default();
        let vtx = text.lines().any(|line| {
            let mut words = line.split_whitespace();
            words.next() == Some("#define") && words.next() == Some("CONFIG_VTX") && words.next() != Some("0")
        });
        if vtx {
            println!("cargo:rustc-cfg=sel4_config_vtx");
        }
    }
    for var in ["SEL4_GUEST_IMAGE", "SEL4_COMPONENTS_DIR", "SEL4_VTX_GUEST"] {
        println!("cargo:rerun-if-env-changed={var}");
        if let Ok(value) = std::env::var(var) {
            println!("cargo:rustc-env={var}={value}");
            println!("cargo:rerun-if-changed={value}");
        }
    }
}
