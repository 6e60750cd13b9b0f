//! Typed access to seL4 5.0.0 on x86_64, on top of [`sel4_sys`].
//!
//! - Capabilities are [`Cap<T>`] values: a capability address with a marker type from
//!   [`cap_type`] saying what the capability is expected to point to, so that only the
//!   invocations of that object type are available (`Cap<Tcb>::configure`, ...). Aliases such as
//!   [`Endpoint`] or [`Tcb`] name the usual ones.
//! - Every invocation returns [`Result`]: errors are decoded from the kernel's reply into
//!   [`Error`], with the details the kernel gives.
//! - Messages go through the calling thread's IPC buffer, registered once with
//!   [`set_ipc_buffer`] and reached with [`with_ipc_buffer`]. Programs using this crate are
//!   single-threaded.
//! - In a VT-x kernel configuration (`cfg(sel4_config_vtx)`): VCPUs, EPT, [`vm_enter`]. In a
//!   debug kernel (`cfg(sel4_config_debug_build)`): [`debug_put_char`] and friends.
//!
//! Argument orders and which arguments are capabilities follow the kernel's interface XML; every
//! method's documentation names the invocation it performs.

#![no_std]
#![deny(missing_docs)]

mod bootinfo;
mod cap;
mod cnode;
#[cfg(sel4_config_debug_build)]
mod debug;
mod endpoint;
mod error;
mod ipc_buffer;
mod message;
mod tcb;
mod untyped;
#[cfg(sel4_config_vtx)]
mod vcpu;
mod x86;

pub use sel4_sys as sys;

pub use bootinfo::{BootInfo, UntypedDesc, init_thread};
pub use cap::{Cap, CapType, cap_type};
pub use cnode::{CapData, CapRights};
#[cfg(sel4_config_debug_build)]
pub use debug::{DebugWriter, debug_halt, debug_put_char, debug_put_str};
pub use endpoint::{reply, yield_now};
pub use error::{Error, LookupFailure, Result};
pub use ipc_buffer::{IpcBuffer, MAX_PAYLOAD_BYTES, PayloadError, set_ipc_buffer, with_ipc_buffer};
pub use message::{Badge, MessageInfo};
pub use tcb::UserContext;
pub use untyped::ObjectType;
#[cfg(sel4_config_vtx)]
pub use vcpu::{VcpuContext, VmEnterResult, VmExit, vm_enter};
pub use x86::{Frame, VSpaceRoot, VmAttributes};

/// Capability to an endpoint.
pub type Endpoint = Cap<cap_type::Endpoint>;
/// Capability to a notification.
pub type Notification = Cap<cap_type::Notification>;
/// Capability to untyped memory.
pub type Untyped = Cap<cap_type::Untyped>;
/// Capability to a CNode.
pub type CNode = Cap<cap_type::CNode>;
/// Capability to a thread control block.
pub type Tcb = Cap<cap_type::Tcb>;
/// Capability to a 4 KiB frame.
pub type Page = Cap<cap_type::Page>;
/// Capability to a 2 MiB frame.
pub type LargePage = Cap<cap_type::LargePage>;
/// Capability to a page table.
pub type PageTable = Cap<cap_type::PageTable>;
/// Capability to a page directory.
pub type PageDirectory = Cap<cap_type::PageDirectory>;
/// Capability to a page-directory-pointer table.
pub type Pdpt = Cap<cap_type::Pdpt>;
/// Capability to a PML4, the root of an address space.
pub type VSpace = Cap<cap_type::Pml4>;
/// Capability to an ASID pool.
pub type AsidPool = Cap<cap_type::AsidPool>;
/// Capability to the ASID controller.
pub type AsidControl = Cap<cap_type::AsidControl>;
/// Capability to the IRQ controller.
pub type IrqControl = Cap<cap_type::IrqControl>;
/// Capability to a range of I/O ports.
pub type IoPort = Cap<cap_type::IoPort>;
/// Capability to a virtual CPU.
#[cfg(sel4_config_vtx)]
pub type Vcpu = Cap<cap_type::Vcpu>;
/// Capability to an EPT PML4, the root of a guest-physical address space.
#[cfg(sel4_config_vtx)]
pub type EptPml4 = Cap<cap_type::EptPml4>;
/// Capability to an EPT page-directory-pointer table.
#[cfg(sel4_config_vtx)]
pub type EptPdpt = Cap<cap_type::EptPdpt>;
/// Capability to an EPT page directory.
#[cfg(sel4_config_vtx)]
pub type EptPd = Cap<cap_type::EptPd>;
/// Capability to an EPT page table.
#[cfg(sel4_config_vtx)]
pub type EptPt = Cap<cap_type::EptPt>;

#[cfg(test)]
mod tests;
