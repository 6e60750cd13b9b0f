//! Untyped memory and the object types it can be retyped into.

use sel4_sys as sys;
use sys::seL4_Word;

use crate::ipc_buffer::invoke_unit;
use crate::{Cap, Result, cap_type};

/// A kernel object type (`seL4_ObjectType` and the x86 ones), for [`Untyped::retype`](crate::Untyped).
/// The numbers come from the kernel tree's headers for the configuration built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// Untyped memory of `2^size_bits` bytes.
    Untyped,
    /// A thread control block.
    Tcb,
    /// An endpoint.
    Endpoint,
    /// A notification.
    Notification,
    /// A CNode of `2^size_bits` slots.
    CNode,
    /// A page-directory-pointer table.
    Pdpt,
    /// A PML4 (address-space root).
    Pml4,
    /// A 1 GiB frame.
    #[cfg(sel4_config_huge_page)]
    HugePage,
    /// A 4 KiB frame.
    Page,
    /// A 2 MiB frame.
    LargePage,
    /// A page table.
    PageTable,
    /// A page directory.
    PageDirectory,
    /// An IOMMU page table.
    #[cfg(sel4_config_iommu)]
    IoPageTable,
    /// A virtual CPU.
    #[cfg(sel4_config_vtx)]
    Vcpu,
    /// An EPT PML4.
    #[cfg(sel4_config_vtx)]
    EptPml4,
    /// An EPT page-directory-pointer table.
    #[cfg(sel4_config_vtx)]
    EptPdpt,
    /// An EPT page directory.
    #[cfg(sel4_config_vtx)]
    EptPd,
    /// An EPT page table.
    #[cfg(sel4_config_vtx)]
    EptPt,
}

impl ObjectType {
    /// The kernel's number for the type.
    pub const fn into_word(self) -> seL4_Word {
        match self {
            ObjectType::Untyped => sys::seL4_UntypedObject,
            ObjectType::Tcb => sys::seL4_TCBObject,
            ObjectType::Endpoint => sys::seL4_EndpointObject,
            ObjectType::Notification => sys::seL4_NotificationObject,
            ObjectType::CNode => sys::seL4_CapTableObject,
            ObjectType::Pdpt => sys::seL4_X86_PDPTObject,
            ObjectType::Pml4 => sys::seL4_X64_PML4Object,
            #[cfg(sel4_config_huge_page)]
            ObjectType::HugePage => sys::seL4_X64_HugePageObject,
            ObjectType::Page => sys::seL4_X86_4K,
            ObjectType::LargePage => sys::seL4_X86_LargePageObject,
            ObjectType::PageTable => sys::seL4_X86_PageTableObject,
            ObjectType::PageDirectory => sys::seL4_X86_PageDirectoryObject,
            #[cfg(sel4_config_iommu)]
            ObjectType::IoPageTable => sys::seL4_X86_IOPageTableObject,
            #[cfg(sel4_config_vtx)]
            ObjectType::Vcpu => sys::seL4_X86_VCPUObject,
            #[cfg(sel4_config_vtx)]
            ObjectType::EptPml4 => sys::seL4_X86_EPTPML4Object,
            #[cfg(sel4_config_vtx)]
            ObjectType::EptPdpt => sys::seL4_X86_EPTPDPTObject,
            #[cfg(sel4_config_vtx)]
            ObjectType::EptPd => sys::seL4_X86_EPTPDObject,
            #[cfg(sel4_config_vtx)]
            ObjectType::EptPt => sys::seL4_X86_EPTPTObject,
        }
    }

    /// Size in bits (log2 bytes) of one object, for the types whose size is fixed; `None` for
    /// [`Untyped`](Self::Untyped) and [`CNode`](Self::CNode), sized by `size_bits` when
    /// retyping (a CNode of `2^size_bits` slots takes `size_bits + seL4_SlotBits` bits).
    pub const fn size_bits(self) -> Option<seL4_Word> {
        Some(match self {
            ObjectType::Untyped | ObjectType::CNode => return None,
            ObjectType::Tcb => sys::seL4_TCBBits,
            ObjectType::Endpoint => sys::seL4_EndpointBits,
            ObjectType::Notification => sys::seL4_NotificationBits,
            ObjectType::Pdpt => sys::seL4_PDPTBits,
            ObjectType::Pml4 => sys::seL4_PML4Bits,
            #[cfg(sel4_config_huge_page)]
            ObjectType::HugePage => sys::seL4_HugePageBits,
            ObjectType::Page => sys::seL4_PageBits,
            ObjectType::LargePage => sys::seL4_LargePageBits,
            ObjectType::PageTable => sys::seL4_PageTableBits,
            ObjectType::PageDirectory => sys::seL4_PageDirBits,
            #[cfg(sel4_config_iommu)]
            ObjectType::IoPageTable => sys::seL4_IOPageTableBits,
            #[cfg(sel4_config_vtx)]
            ObjectType::Vcpu => sys::seL4_X86_VCPUBits,
            #[cfg(sel4_config_vtx)]
            ObjectType::EptPml4 => sys::seL4_X86_EPTPML4Bits,
            #[cfg(sel4_config_vtx)]
            ObjectType::EptPdpt => sys::seL4_X86_EPTPDPTBits,
            #[cfg(sel4_config_vtx)]
            ObjectType::EptPd => sys::seL4_X86_EPTPDBits,
            #[cfg(sel4_config_vtx)]
            ObjectType::EptPt => sys::seL4_X86_EPTPTBits,
        })
    }
}

impl Cap<cap_type::Untyped> {
    /// Creates `count` objects of `object_type` (sized by `size_bits` for untyped memory and
    /// CNodes, ignored otherwise) and puts capabilities to them in consecutive slots from
    /// `node_offset` of the CNode found at `node_index`/`node_depth` from `root` (depth 0: `root`
    /// itself). Performs `seL4_Untyped_Retype`.
    ///
    /// seL4 5.0 halts when retyping from an untyped whose newest child is a VCPU (see the
    /// project notes): retype VCPUs last from a given untyped.
    #[allow(clippy::too_many_arguments)]
    pub fn retype(
        self,
        object_type: ObjectType,
        size_bits: seL4_Word,
        root: Cap<cap_type::CNode>,
        node_index: seL4_Word,
        node_depth: seL4_Word,
        node_offset: seL4_Word,
        count: seL4_Word,
    ) -> Result<()> {
        invoke_unit(|b| {
            b.seL4_Untyped_Retype(
                self.bits(),
                object_type.into_word(),
                size_bits,
                root.bits(),
                node_index,
                node_depth,
                node_offset,
                count,
            )
        })
    }
}
