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
    for var in ["SEL4_GUEST_IMAGE", "SEL4_COMPONENTS_DIR"] {
        println!("cargo:rerun-if-env-changed={var}");
        if let Ok(value) = std::env::var(var) {
            println!("cargo:rustc-env={var}={value}");
            println!("cargo:rerun-if-changed={value}");
        }
    }
}
