//! Structures shared with the kernel through memory: the IPC buffer and the boot information.
//! Layouts follow libsel4's `shared_types.h` and `bootinfo_types.h` of seL4 5.0.0 (the boot
//! information is packed there); the tests compare them with the C definitions compiled by gcc.

use crate::{
    MSG_MAX_EXTRA_CAPS, MSG_MAX_LENGTH, config, seL4_CPtr, seL4_Domain, seL4_MessageInfo_t, seL4_NodeId,
    seL4_SlotPos, seL4_Uint8, seL4_Word,
};

/// A thread's IPC buffer (`seL4_IPCBuffer`): message registers beyond the fourth, extra
/// capabilities or badges, and where received capabilities go. The kernel requires it aligned to
/// its size (1024 bytes on x86_64).
#[repr(C, align(1024))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct seL4_IPCBuffer {
    /// The message info of the last message (unused by the kernel on x86_64 syscalls).
    pub tag: seL4_MessageInfo_t,
    /// Message registers. The first four travel in CPU registers; the stubs and syscall wrappers
    /// copy them between here and the registers.
    pub msg: [seL4_Word; MSG_MAX_LENGTH],
    /// Free for the user (libsel4 keeps its own data here).
    pub userData: seL4_Word,
    /// Extra capabilities to send, or the badges of received unwrapped capabilities.
    pub caps_or_badges: [seL4_Word; MSG_MAX_EXTRA_CAPS],
    /// CNode (root of the receiving CSpace lookup) where a received capability is placed.
    pub receiveCNode: seL4_CPtr,
    /// Index of the receive slot, resolved in `receiveCNode`.
    pub receiveIndex: seL4_CPtr,
    /// Depth to which `receiveIndex` is resolved.
    pub receiveDepth: seL4_Word,
}

impl seL4_IPCBuffer {
    /// An all-zero buffer.
    pub const fn zeroed() -> Self {
        Self {
            tag: seL4_MessageInfo_t { words: [0] },
            msg: [0; MSG_MAX_LENGTH],
            userData: 0,
            caps_or_badges: [0; MSG_MAX_EXTRA_CAPS],
            receiveCNode: 0,
            receiveIndex: 0,
            receiveDepth: 0,
        }
    }
}

impl Default for seL4_IPCBuffer {
    fn default() -> Self {
        Self::zeroed()
    }
}

/// A range of CNode slots, `start` inclusive, `end` exclusive (`seL4_SlotRegion`).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct seL4_SlotRegion {
    /// First slot of the region.
    pub start: seL4_SlotPos,
    /// First slot after the region.
    pub end: seL4_SlotPos,
}

/// One untyped capability given to the initial thread (`seL4_UntypedDesc`).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct seL4_UntypedDesc {
    /// Physical address of the untyped region.
    pub paddr: seL4_Word,
    /// Padding.
    pub padding1: seL4_Uint8,
    /// Padding.
    pub padding2: seL4_Uint8,
    /// The region is 2^`sizeBits` bytes.
    pub sizeBits: seL4_Uint8,
    /// Nonzero: device memory (cannot back kernel objects other than frames).
    pub isDevice: seL4_Uint8,
}

/// Number of untyped descriptors in the boot information (`CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS`).
pub const MAX_BOOTINFO_UNTYPED_CAPS: usize = config::CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS as usize;

/// The boot information the kernel gives the initial thread (`seL4_BootInfo`, packed in 5.0).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy)]
pub struct seL4_BootInfo {
    /// Length of the additional boot information after this structure's page.
    pub extraLen: seL4_Word,
    /// This node's identifier.
    pub nodeID: seL4_NodeId,
    /// Number of nodes.
    pub numNodes: seL4_Word,
    /// Number of IOMMU page-table levels (0 without an IOMMU).
    pub numIOPTLevels: seL4_Word,
    /// The initial thread's IPC buffer.
    pub ipcBuffer: *mut seL4_IPCBuffer,
    /// Empty slots of the initial CNode.
    pub empty: seL4_SlotRegion,
    /// Frames shared between nodes.
    pub sharedFrames: seL4_SlotRegion,
    /// Frames of the user image.
    pub userImageFrames: seL4_SlotRegion,
    /// Paging structures of the user image.
    pub userImagePaging: seL4_SlotRegion,
    /// IOMMU space capabilities.
    pub ioSpaceCaps: seL4_SlotRegion,
    /// Frames holding the additional boot information.
    pub extraBIPages: seL4_SlotRegion,
    /// The initial CNode has 2^`initThreadCNodeSizeBits` slots.
    pub initThreadCNodeSizeBits: seL4_Uint8,
    /// The initial thread's scheduling domain.
    pub initThreadDomain: seL4_Domain,
    /// On x86: the TSC frequency in MHz.
    pub archInfo: seL4_Word,
    /// Untyped capabilities.
    pub untyped: seL4_SlotRegion,
    /// One descriptor per untyped capability, in slot order.
    pub untypedList: [seL4_UntypedDesc; MAX_BOOTINFO_UNTYPED_CAPS],
}

/// Header of one chunk of the additional boot information (`seL4_BootInfoHeader`).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct seL4_BootInfoHeader {
    /// Chunk identifier (`SEL4_BOOTINFO_HEADER_*`).
    pub id: seL4_Word,
    /// Chunk length including this header.
    pub len: seL4_Word,
}
