//! Raw bindings to the seL4 5.0.0 kernel on x86_64, with libsel4's C names.
//!
//! Generated at build time from the kernel tree (`SEL4_KERNEL_TREE`) and its configuration
//! (`SEL4_AUTOCONF`), so that they follow the kernel that is actually built:
//! - system-call numbers from `libsel4/include/api/syscall.xml` (`seL4_SysCall`, ...);
//! - invocation labels from the interface XML files (`CNodeCopy`, `X86VCPUReadVMCS`, ...), numbered
//!   as the tree's `invocation_header_gen.py` numbers them for this configuration;
//! - object types, error codes, initial capability slots, object sizes, message limits, fault
//!   message-register indices and the `SEL4_VMENTER_*` indices from libsel4's headers;
//! - the bitfield types (`seL4_MessageInfo_t`, `seL4_CapRights_t`, `seL4_CapData_t`, ...) from the
//!   `.bf` files;
//! - the register structures (`seL4_UserContext`, `seL4_VCPUContext`) and one stub per invocation
//!   (`seL4_IPCBuffer::seL4_CNode_Copy`, ...) from the interface XML, laid out as the tree's
//!   `syscall_stub_gen.py` lays them out;
//! - the configuration itself in [`config`].
//!
//! Hand-written: the system-call entry (`syscall` instruction), the IPC buffer and boot-information
//! layouts.
//!
//! Configuration options become cfgs: `sel4_config_vtx`, `sel4_config_debug_build`, ... (also
//! passed to dependents as `DEP_SEL4_CFGS`).

#![no_std]
#![deny(missing_docs)]
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

mod syscalls;
mod types;

#[cfg(any(test, feature = "host-mock"))]
pub mod host_mock;

pub use syscalls::*;
pub use types::*;

/// Signed 8-bit integer (`seL4_Int8`).
pub type seL4_Int8 = i8;
/// Signed 16-bit integer (`seL4_Int16`).
pub type seL4_Int16 = i16;
/// Signed 32-bit integer (`seL4_Int32`).
pub type seL4_Int32 = i32;
/// Signed 64-bit integer (`seL4_Int64`).
pub type seL4_Int64 = i64;
/// Unsigned 8-bit integer (`seL4_Uint8`).
pub type seL4_Uint8 = u8;
/// Unsigned 16-bit integer (`seL4_Uint16`).
pub type seL4_Uint16 = u16;
/// Unsigned 32-bit integer (`seL4_Uint32`).
pub type seL4_Uint32 = u32;
/// Unsigned 64-bit integer (`seL4_Uint64`).
pub type seL4_Uint64 = u64;
/// A machine word (`seL4_Word`).
pub type seL4_Word = u64;
/// A boolean as the kernel interface passes it (`seL4_Bool`: 0 or 1).
pub type seL4_Bool = seL4_Int8;
/// A capability address in the caller's CSpace (`seL4_CPtr`).
pub type seL4_CPtr = seL4_Word;
/// A node identifier (`seL4_NodeId`).
pub type seL4_NodeId = seL4_Word;
/// A physical address (`seL4_PAddr`).
pub type seL4_PAddr = seL4_Word;
/// A scheduling domain (`seL4_Domain`).
pub type seL4_Domain = seL4_Word;
/// A slot position in a CNode (`seL4_SlotPos`).
pub type seL4_SlotPos = seL4_Word;
/// An error code: the label of an invocation's reply (`seL4_Error`, `seL4_NoError` = 0).
pub type seL4_Error = seL4_Word;
/// A system-call number (`seL4_Syscall_ID`; negative).
pub type seL4_Syscall_ID = seL4_Int64;
/// An invocation label (`invocation_label` and the arch enums chained to it).
pub type invocation_label = seL4_Word;
/// x86 page-table entry attributes (`seL4_X86_VMAttributes`: `seL4_X86_WriteBack`, ...).
pub type seL4_X86_VMAttributes = seL4_Word;

/// Capability to a CNode (`seL4_CNode`).
pub type seL4_CNode = seL4_CPtr;
/// Capability to an IRQ handler (`seL4_IRQHandler`).
pub type seL4_IRQHandler = seL4_CPtr;
/// Capability to the IRQ controller (`seL4_IRQControl`).
pub type seL4_IRQControl = seL4_CPtr;
/// Capability to a thread control block (`seL4_TCB`).
pub type seL4_TCB = seL4_CPtr;
/// Capability to untyped memory (`seL4_Untyped`).
pub type seL4_Untyped = seL4_CPtr;
/// Capability to the domain controller (`seL4_DomainSet`).
pub type seL4_DomainSet = seL4_CPtr;
/// Capability to a top-level page table (`seL4_X64_PML4`).
pub type seL4_X64_PML4 = seL4_CPtr;
/// Capability to the ASID controller (`seL4_X86_ASIDControl`).
pub type seL4_X86_ASIDControl = seL4_CPtr;
/// Capability to an ASID pool (`seL4_X86_ASIDPool`).
pub type seL4_X86_ASIDPool = seL4_CPtr;
/// Capability to an IOMMU space (`seL4_X86_IOSpace`).
pub type seL4_X86_IOSpace = seL4_CPtr;
/// Capability to a range of I/O ports (`seL4_X86_IOPort`).
pub type seL4_X86_IOPort = seL4_CPtr;
/// Capability to a frame of any size (`seL4_X86_Page`).
pub type seL4_X86_Page = seL4_CPtr;
/// Capability to a page-directory-pointer table (`seL4_X86_PDPT`).
pub type seL4_X86_PDPT = seL4_CPtr;
/// Capability to a page directory (`seL4_X86_PageDirectory`).
pub type seL4_X86_PageDirectory = seL4_CPtr;
/// Capability to a page table (`seL4_X86_PageTable`).
pub type seL4_X86_PageTable = seL4_CPtr;
/// Capability to an IOMMU page table (`seL4_X86_IOPageTable`).
pub type seL4_X86_IOPageTable = seL4_CPtr;
/// Capability to an EPT PML4 (`seL4_X86_EPTPML4`).
pub type seL4_X86_EPTPML4 = seL4_CPtr;
/// Capability to an EPT page-directory-pointer table (`seL4_X86_EPTPDPT`).
pub type seL4_X86_EPTPDPT = seL4_CPtr;
/// Capability to an EPT page directory (`seL4_X86_EPTPD`).
pub type seL4_X86_EPTPD = seL4_CPtr;
/// Capability to an EPT page table (`seL4_X86_EPTPT`).
pub type seL4_X86_EPTPT = seL4_CPtr;
/// Capability to a virtual CPU (`seL4_X86_VCPU`).
pub type seL4_X86_VCPU = seL4_CPtr;

/// The kernel configuration the bindings were generated for (every `CONFIG_` entry of the
/// configuration header; text entries as `&str`).
pub mod config {
    #[allow(unused_imports)]
    use crate::{seL4_Int64, seL4_Word};
    include!(concat!(env!("OUT_DIR"), "/config.rs"));
}

include!(concat!(env!("OUT_DIR"), "/constants.rs"));
include!(concat!(env!("OUT_DIR"), "/bitfields.rs"));
include!(concat!(env!("OUT_DIR"), "/syscalls.rs"));
include!(concat!(env!("OUT_DIR"), "/invocation.rs"));
include!(concat!(env!("OUT_DIR"), "/structs.rs"));
include!(concat!(env!("OUT_DIR"), "/stubs.rs"));

/// `seL4_MsgMaxExtraCaps` as a length: the number of extra-capability slots of a message.
pub const MSG_MAX_EXTRA_CAPS: usize = seL4_MsgMaxExtraCaps as usize;
/// `seL4_MsgMaxLength` as a length: the number of message registers.
pub const MSG_MAX_LENGTH: usize = seL4_MsgMaxLength as usize;

#[cfg(test)]
mod tests;
