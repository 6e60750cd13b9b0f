//! x86 address spaces (ASIDs, paging structures, frames) and I/O ports.

use sel4_sys as sys;
use sys::seL4_Word;

use crate::ipc_buffer::{invoke, invoke_unit};
use crate::{Cap, CapRights, CapType, ObjectType, Result, cap_type};

/// Caching attributes of a mapping (`seL4_X86_VMAttributes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VmAttributes {
    /// Write-back (`seL4_X86_WriteBack`, the default).
    #[default]
    WriteBack,
    /// Write-through (`seL4_X86_WriteThrough`).
    WriteThrough,
    /// Cache disabled (`seL4_X86_CacheDisabled`).
    CacheDisabled,
    /// Uncacheable (`seL4_X86_Uncacheable`).
    Uncacheable,
    /// Write-combining (`seL4_X86_WriteCombining`).
    WriteCombining,
}

impl VmAttributes {
    /// The kernel's value.
    pub const fn into_word(self) -> seL4_Word {
        match self {
            VmAttributes::WriteBack => sys::seL4_X86_WriteBack,
            VmAttributes::WriteThrough => sys::seL4_X86_WriteThrough,
            VmAttributes::CacheDisabled => sys::seL4_X86_CacheDisabled,
            VmAttributes::Uncacheable => sys::seL4_X86_Uncacheable,
            VmAttributes::WriteCombining => sys::seL4_X86_WriteCombining,
        }
    }
}

/// Frame capability types: the page invocations work on frames of every size.
pub trait Frame: CapType {
    /// The object type to retype into.
    const OBJECT_TYPE: ObjectType;
    /// log2 of the frame's size in bytes.
    const SIZE_BITS: seL4_Word;
}

impl Frame for cap_type::Page {
    const OBJECT_TYPE: ObjectType = ObjectType::Page;
    const SIZE_BITS: seL4_Word = sys::seL4_PageBits;
}

impl Frame for cap_type::LargePage {
    const OBJECT_TYPE: ObjectType = ObjectType::LargePage;
    const SIZE_BITS: seL4_Word = sys::seL4_LargePageBits;
}

#[cfg(sel4_config_huge_page)]
impl Frame for cap_type::HugePage {
    const OBJECT_TYPE: ObjectType = ObjectType::HugePage;
    const SIZE_BITS: seL4_Word = sys::seL4_HugePageBits;
}

/// Roots of address spaces, which need an ASID before anything is mapped into them: the PML4 of
/// a VSpace, and (VT-x) the EPT PML4 of a guest.
pub trait VSpaceRoot: CapType {}

impl VSpaceRoot for cap_type::Pml4 {}

#[cfg(sel4_config_vtx)]
impl VSpaceRoot for cap_type::EptPml4 {}

impl Cap<cap_type::AsidControl> {
    /// Turns `untyped` (4 KiB, `seL4_ASIDPoolBits`) into a new ASID pool whose capability goes
    /// to slot `index`/`depth` of `root`. Performs `seL4_X86_ASIDControl_MakePool`.
    pub fn make_pool(
        self,
        untyped: Cap<cap_type::Untyped>,
        root: Cap<cap_type::CNode>,
        index: seL4_Word,
        depth: u8,
    ) -> Result<()> {
        invoke_unit(|b| {
            b.seL4_X86_ASIDControl_MakePool(self.bits(), untyped.bits(), root.bits(), index, depth)
        })
    }
}

impl Cap<cap_type::AsidPool> {
    /// Gives `root` an ASID from this pool. Performs `seL4_X86_ASIDPool_Assign`.
    pub fn assign<T: VSpaceRoot>(self, root: Cap<T>) -> Result<()> {
        invoke_unit(|b| b.seL4_X86_ASIDPool_Assign(self.bits(), root.bits()))
    }
}

impl Cap<cap_type::Pdpt> {
    /// Maps this table into `vspace` to cover the 512 GiB at `vaddr`. Performs
    /// `seL4_X86_PDPT_Map`.
    pub fn map(self, vspace: Cap<cap_type::Pml4>, vaddr: seL4_Word, attributes: VmAttributes) -> Result<()> {
        invoke_unit(|b| b.seL4_X86_PDPT_Map(self.bits(), vspace.bits(), vaddr, attributes.into_word()))
    }

    /// Unmaps this table. Performs `seL4_X86_PDPT_Unmap`.
    pub fn unmap(self) -> Result<()> {
        invoke_unit(|b| b.seL4_X86_PDPT_Unmap(self.bits()))
    }
}

impl Cap<cap_type::PageDirectory> {
    /// Maps this directory into `vspace` to cover the 1 GiB at `vaddr`. Performs
    /// `seL4_X86_PageDirectory_Map`.
    pub fn map(self, vspace: Cap<cap_type::Pml4>, vaddr: seL4_Word, attributes: VmAttributes) -> Result<()> {
        invoke_unit(|b| {
            b.seL4_X86_PageDirectory_Map(self.bits(), vspace.bits(), vaddr, attributes.into_word())
        })
    }

    /// Unmaps this directory. Performs `seL4_X86_PageDirectory_Unmap`.
    pub fn unmap(self) -> Result<()> {
        invoke_unit(|b| b.seL4_X86_PageDirectory_Unmap(self.bits()))
    }
}

impl Cap<cap_type::PageTable> {
    /// Maps this table into `vspace` to cover the 2 MiB at `vaddr`. Performs
    /// `seL4_X86_PageTable_Map`.
    pub fn map(self, vspace: Cap<cap_type::Pml4>, vaddr: seL4_Word, attributes: VmAttributes) -> Result<()> {
        invoke_unit(|b| b.seL4_X86_PageTable_Map(self.bits(), vspace.bits(), vaddr, attributes.into_word()))
    }

    /// Unmaps this table. Performs `seL4_X86_PageTable_Unmap`.
    pub fn unmap(self) -> Result<()> {
        invoke_unit(|b| b.seL4_X86_PageTable_Unmap(self.bits()))
    }
}

impl<F: Frame> Cap<F> {
    /// Maps this frame at `vaddr` in `vspace` with `rights` (read and write; grant is ignored).
    /// Performs `seL4_X86_Page_Map`.
    pub fn map(
        self,
        vspace: Cap<cap_type::Pml4>,
        vaddr: seL4_Word,
        rights: CapRights,
        attributes: VmAttributes,
    ) -> Result<()> {
        invoke_unit(|b| {
            b.seL4_X86_Page_Map(
                self.bits(),
                vspace.bits(),
                vaddr,
                rights.into_raw(),
                attributes.into_word(),
            )
        })
    }

    /// Unmaps this frame (from a VSpace or an EPT). Performs `seL4_X86_Page_Unmap`.
    pub fn unmap(self) -> Result<()> {
        invoke_unit(|b| b.seL4_X86_Page_Unmap(self.bits()))
    }

    /// The frame's physical address. Performs `seL4_X86_Page_GetAddress`.
    pub fn get_address(self) -> Result<seL4_Word> {
        invoke(|b| {
            let r = b.seL4_X86_Page_GetAddress(self.bits());
            (r.error, r.paddr)
        })
    }

    /// Maps this frame at guest-physical address `gpa` in the EPT rooted at `ept` (which needs an
    /// ASID). seL4 5.0 always sets read and execute, sets write from `rights`, and uses
    /// write-back memory. Performs `seL4_X86_Page_MapEPT`.
    #[cfg(sel4_config_vtx)]
    pub fn map_ept(
        self,
        ept: Cap<cap_type::EptPml4>,
        gpa: seL4_Word,
        rights: CapRights,
        attributes: VmAttributes,
    ) -> Result<()> {
        invoke_unit(|b| {
            b.seL4_X86_Page_MapEPT(
                self.bits(),
                ept.bits(),
                gpa,
                rights.into_raw(),
                attributes.into_word(),
            )
        })
    }
}

impl Cap<cap_type::IoPort> {
    /// Reads a byte from `port`. Performs `seL4_X86_IOPort_In8`.
    pub fn in8(self, port: u16) -> Result<u8> {
        invoke(|b| {
            let r = b.seL4_X86_IOPort_In8(self.bits(), port);
            (r.error, r.result)
        })
    }

    /// Reads 16 bits from `port`. Performs `seL4_X86_IOPort_In16`.
    pub fn in16(self, port: u16) -> Result<u16> {
        invoke(|b| {
            let r = b.seL4_X86_IOPort_In16(self.bits(), port);
            (r.error, r.result)
        })
    }

    /// Reads 32 bits from `port`. Performs `seL4_X86_IOPort_In32`.
    pub fn in32(self, port: u16) -> Result<u32> {
        invoke(|b| {
            let r = b.seL4_X86_IOPort_In32(self.bits(), port);
            (r.error, r.result)
        })
    }

    /// Writes a byte to `port`. Performs `seL4_X86_IOPort_Out8`.
    pub fn out8(self, port: u16, value: u8) -> Result<()> {
        invoke_unit(|b| b.seL4_X86_IOPort_Out8(self.bits(), port.into(), value.into()))
    }

    /// Writes 16 bits to `port`. Performs `seL4_X86_IOPort_Out16`.
    pub fn out16(self, port: u16, value: u16) -> Result<()> {
        invoke_unit(|b| b.seL4_X86_IOPort_Out16(self.bits(), port.into(), value.into()))
    }

    /// Writes 32 bits to `port`. Performs `seL4_X86_IOPort_Out32`.
    pub fn out32(self, port: u16, value: u32) -> Result<()> {
        invoke_unit(|b| b.seL4_X86_IOPort_Out32(self.bits(), port.into(), value.into()))
    }
}
