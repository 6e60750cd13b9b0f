//! What the kernel gives the initial thread: boot information and capabilities in fixed slots.

use core::ops::Range;

use sel4_sys as sys;
use sys::{seL4_BootInfo, seL4_IPCBuffer, seL4_SlotRegion, seL4_Word};

/// One untyped capability of the boot information (`seL4_UntypedDesc`).
pub type UntypedDesc = sys::seL4_UntypedDesc;

/// The boot information (`seL4_BootInfo`, packed in 5.0), read in place.
#[derive(Debug, Clone, Copy)]
pub struct BootInfo {
    raw: &'static seL4_BootInfo,
}

fn slots(region: seL4_SlotRegion) -> Range<seL4_Word> {
    let (start, end) = (region.start, region.end);
    start..end.max(start)
}

impl BootInfo {
    /// The boot information at `ptr` (the initial thread receives it in `rdi`).
    ///
    /// # Safety
    ///
    /// `ptr` must point to the kernel's boot information frame, mapped and left unchanged for the
    /// rest of the program.
    pub unsafe fn from_ptr(ptr: *const seL4_BootInfo) -> Self {
        // SAFETY: the caller guarantees a valid, immutable seL4_BootInfo; it has alignment 1.
        let raw = unsafe { &*ptr };
        Self { raw }
    }

    /// The raw structure.
    pub fn raw(&self) -> &'static seL4_BootInfo {
        self.raw
    }

    /// The initial thread's IPC buffer (give it to [`IpcBuffer::from_ptr`](crate::IpcBuffer)).
    pub fn ipc_buffer(&self) -> *mut seL4_IPCBuffer {
        self.raw.ipcBuffer
    }

    /// Empty slots of the initial CNode.
    pub fn empty(&self) -> Range<seL4_Word> {
        slots(self.raw.empty)
    }

    /// Slots of the user image's frames.
    pub fn user_image_frames(&self) -> Range<seL4_Word> {
        slots(self.raw.userImageFrames)
    }

    /// Slots of the user image's paging structures.
    pub fn user_image_paging(&self) -> Range<seL4_Word> {
        slots(self.raw.userImagePaging)
    }

    /// Slots of the untyped capabilities.
    pub fn untyped(&self) -> Range<seL4_Word> {
        slots(self.raw.untyped)
    }

    /// One descriptor per untyped capability, in the order of [`untyped`](Self::untyped).
    pub fn untyped_list(&self) -> &'static [UntypedDesc] {
        let raw: &'static seL4_BootInfo = self.raw;
        let count = usize::try_from(self.untyped().end - self.untyped().start).unwrap_or(usize::MAX);
        let list = &raw.untypedList;
        &list[..count.min(list.len())]
    }

    /// The initial CNode has 2^`n` slots.
    pub fn init_thread_cnode_size_bits(&self) -> u8 {
        self.raw.initThreadCNodeSizeBits
    }

    /// On x86, the TSC frequency in MHz (`archInfo`).
    pub fn tsc_mhz(&self) -> seL4_Word {
        self.raw.archInfo
    }

    /// This node's identifier and the number of nodes.
    pub fn node(&self) -> (seL4_Word, seL4_Word) {
        (self.raw.nodeID, self.raw.numNodes)
    }

    /// Length of the extra boot information that follows the boot information frame.
    pub fn extra_len(&self) -> seL4_Word {
        self.raw.extraLen
    }
}

/// The capabilities the kernel puts in fixed slots of the initial thread's CNode
/// (`seL4_CapInitThreadTCB` ...).
pub mod init_thread {
    use sel4_sys as sys;

    use crate::{Cap, cap_type};

    /// The initial thread's TCB.
    pub const TCB: Cap<cap_type::Tcb> = Cap::from_bits(sys::seL4_CapInitThreadTCB);
    /// The initial thread's root CNode.
    pub const CNODE: Cap<cap_type::CNode> = Cap::from_bits(sys::seL4_CapInitThreadCNode);
    /// The initial thread's VSpace (PML4).
    pub const VSPACE: Cap<cap_type::Pml4> = Cap::from_bits(sys::seL4_CapInitThreadVSpace);
    /// The IRQ controller.
    pub const IRQ_CONTROL: Cap<cap_type::IrqControl> = Cap::from_bits(sys::seL4_CapIRQControl);
    /// The ASID controller.
    pub const ASID_CONTROL: Cap<cap_type::AsidControl> = Cap::from_bits(sys::seL4_CapASIDControl);
    /// The initial thread's ASID pool.
    pub const ASID_POOL: Cap<cap_type::AsidPool> = Cap::from_bits(sys::seL4_CapInitThreadASIDPool);
    /// Every I/O port (`seL4_CapIOPort`).
    pub const IO_PORT: Cap<cap_type::IoPort> = Cap::from_bits(sys::seL4_CapIOPort);
    /// The IOMMU space (null without an IOMMU).
    pub const IO_SPACE: Cap<cap_type::Unknown> = Cap::from_bits(sys::seL4_CapIOSpace);
    /// The boot information frame.
    pub const BOOT_INFO_FRAME: Cap<cap_type::Page> = Cap::from_bits(sys::seL4_CapBootInfoFrame);
    /// The initial thread's IPC buffer frame.
    pub const IPC_BUFFER: Cap<cap_type::Page> = Cap::from_bits(sys::seL4_CapInitThreadIPCBuffer);
    /// The domain controller.
    pub const DOMAIN: Cap<cap_type::DomainSet> = Cap::from_bits(sys::seL4_CapDomain);
}
