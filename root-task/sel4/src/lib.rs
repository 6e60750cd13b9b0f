//! The system on seL4 (kernel without VT-x: the model VCPU): the root task and the components
//! it composes, each a freestanding image built by `cargo xtask` for one kernel configuration.
//!
//! | image | what |
//! |---|---|
//! | `root-task` | creates every object, loads the components, mints their capabilities ([`layout`]), starts them, serves as their fault handler, drives the VMM server as its controller and judges the run |
//! | `vmm-server` | the VMM server on the model VCPU playing the guest image, serving requests and sending exit records over seL4 IPC |
//! | `device-model` | the standard devices; the guest's UART output goes to the real serial line |
//! | `monitor` | a read-only client of the VMM server |
#![cfg_attr(not(test), no_std)]

// The memory intrinsics and the personality symbol (not in host tests: they would replace libc's).
#[cfg(not(test))]
use freestanding as _;

pub mod elf;
pub mod ipc;
pub mod layout;
pub mod report;
pub mod runtime;
#[cfg(sel4_config_vtx)]
pub mod vcpu;
pub mod vtx_guest;
