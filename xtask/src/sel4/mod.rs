//! seL4: the kernel, built from source, and the system on it (root task and components),
//! booted in QEMU (kernel without VT-x, model VCPU) by the `seL4 in QEMU` tier.

// Used by the seL4 tiers of `cargo xtask test` and `run` once they are wired in.
#[allow(dead_code)]
pub mod bochs;
#[allow(dead_code)]
pub mod guest;
pub mod kernel;
pub mod system;

use std::path::{Path, PathBuf};

/// The workspace root (xtask's parent directory): `target/sel4/` lives under it.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The `seL4 in QEMU` tier: builds the kernel without VT-x and the images, runs the host
/// tests of the bindings and of the system's modules, boots QEMU and checks the serial line.
/// Returns a one-line summary; with `echo`, the serial output is printed too.
///
/// # Errors
/// What failed.
pub fn qemu_tier(echo: bool) -> Result<String, String> {
    let root = workspace_root();
    kernel::ensure_tools(&root)?;
    let kernel = kernel::build(&root, &kernel::NO_VTX)?;
    system::host_tests(&root, &kernel, kernel::NO_VTX.name)?;
    let images = system::build_images(&root, &kernel, kernel::NO_VTX.name)?;
    let boot = system::boot_qemu(
        &kernel.kernel32,
        &images.root_task,
        std::time::Duration::from_secs(120),
    )?;
    if echo {
        println!("{}", boot.serial);
    }
    let summary = system::check(&boot)?;
    Ok(format!(
        "boot to verdict {:.2} s; {} exits, {} exit records and replies over seL4 IPC",
        boot.seconds, summary.exits, summary.replies
    ))
}
