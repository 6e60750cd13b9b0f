//! seL4 itself: the kernel, built from source for the QEMU and Bochs tiers.

// Used by the seL4 tiers of `cargo xtask test` and `run` once they are wired in.
#[allow(dead_code)]
pub mod bochs;
#[allow(dead_code)]
pub mod guest;
pub mod kernel;

use std::path::{Path, PathBuf};

/// The workspace root (xtask's parent directory): `target/sel4/` lives under it.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
