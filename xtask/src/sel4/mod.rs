//! seL4: the kernel, built from source, and the system on it (root task and components),
//! booted in QEMU (kernel without VT-x, model VCPU: the `seL4 in QEMU` tier) and in Bochs
//! (kernel with VT-x, a real guest: the `VT-x guest on seL4` tier and `cargo xtask run`).

pub mod bochs;
pub mod guest;
pub mod kernel;
pub mod system;

#[cfg(test)]
pub(crate) mod test_support;

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
    let images = system::build_images(&root, &kernel, kernel::NO_VTX.name, None)?;
    let boot = system::boot_qemu(
        &kernel.kernel32,
        &images.root_task,
        std::time::Duration::from_secs(120),
    )?;
    if echo {
        println!("{}", boot.serial);
    }
    let summary = system::check(&boot, &system::MODEL_GUEST)?;
    Ok(format!(
        "boot to verdict {:.2} s; {} exits, {} exit records and replies over seL4 IPC",
        boot.seconds, summary.exits, summary.replies
    ))
}

/// How long a VT-x boot may take (Bochs reaches the verdict in about 4 s on the build machine;
/// a loaded CI machine gets a wide margin).
const VTX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(240);

/// The `VT-x guest on seL4` tier (and, with `echo`, the main job): builds the kernel with VT-x,
/// the guest from `guest/vtx-hello`, the bindings' host tests for this configuration and the
/// images; boots them in Bochs (or in QEMU on KVM when the host's KVM offers VT-x) with the
/// serial line streamed when `echo`; checks the guest's greeting, every exit reason with its
/// decoded qualification, and the verdict. Returns a one-line summary.
///
/// # Errors
/// What failed.
pub fn vtx_tier(echo: bool) -> Result<String, String> {
    let root = workspace_root();
    kernel::ensure_tools(&root)?;
    bochs::ensure_tools()?;
    let kernel = kernel::build(&root, &kernel::VTX)?;
    let out = root.join("target/sel4").join(kernel::VTX.name);
    let guest = guest::build_guest(&root, &out.join("guest"))?;
    // The guest on a plain PC first: a broken guest is told apart from a broken VMM.
    let bare = guest::run_on_bare_pc(&root, &guest, &out.join("guest"))?;
    if bare.status != Some(0) || !bare.serial.contains(guest::GREETING) {
        return Err(format!(
            "the guest fails on a plain PC (no VMM): status {:?}, serial {:?}",
            bare.status, bare.serial
        ));
    }
    system::host_tests(&root, &kernel, kernel::VTX.name)?;
    let images = system::build_images(&root, &kernel, kernel::VTX.name, Some(&guest.path))?;
    let markers: Vec<&str> = ["SEL4-SYSTEM: PASS", "SEL4-SYSTEM: FAIL"]
        .into_iter()
        .chain(bochs::KERNEL_FAILURE_MARKERS)
        .collect();
    let (run, on) = if bochs::kvm_offers_vtx() {
        eprintln!("xtask: this host's KVM offers VT-x: booting in QEMU on KVM instead of Bochs");
        let run = bochs::boot_qemu_kvm(&kernel.kernel32, &images.root_task, VTX_TIMEOUT, &markers, echo)?;
        (run, "QEMU on KVM".to_string())
    } else {
        let iso = bochs::build_iso(&kernel.kernel, &images.root_task, &out)?;
        let run = bochs::boot(&iso, bochs::DEFAULT_MODEL, VTX_TIMEOUT, &markers, echo)?;
        (run, format!("Bochs {}", bochs::DEFAULT_MODEL))
    };
    let verdict_at = run
        .seconds_to("SEL4-SYSTEM: PASS")
        .or(run.seconds_to("SEL4-SYSTEM: FAIL"));
    let boot = system::Boot {
        serial: run.serial.clone(),
        seconds: verdict_at.unwrap_or(run.seconds),
        exit_code: None,
    };
    let summary = system::check(&boot, &system::VTX_GUEST).map_err(|e| {
        format!(
            "{e}\nended: {:?}; the emulator's log ({}):\n{}",
            run.marker(),
            run.dir.display(),
            run.log_tail(20)
        )
    })?;
    let greeting = run
        .seconds_to(system::VTX_GUEST.greeting)
        .map_or("-".to_string(), |s| format!("{s:.2} s"));
    Ok(format!(
        "{on}: boot to greeting {greeting}, to verdict {:.2} s; {} exits, every reason decoded as expected",
        boot.seconds, summary.exits
    ))
}
