//! The VMM server core.
//!
//! - [`kernel`]: the kernel interface, a trait that mirrors the seL4 x86 VCPU object.
//! - [`cache`]: kernel-mediated VMCS access with a per-exit field cache.
#![no_std]
#![deny(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod cache;
pub mod composition;
pub mod kernel;
pub mod memory;
pub mod model;
pub mod policy;
pub mod server;
pub mod setup;
