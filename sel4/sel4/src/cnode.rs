//! CNodes: copying, minting, moving and deleting capabilities; rights and capability data.

use sel4_sys::{seL4_CapData_t, seL4_CapRights_t, seL4_Word};

use crate::ipc_buffer::invoke_unit;
use crate::{Cap, Result, cap_type};

/// The access rights of a capability (`seL4_CapRights_t`: bit 0 write, bit 1 read, bit 2 grant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CapRights {
    /// Capabilities may be transferred through an endpoint capability with this right.
    pub grant: bool,
    /// Read (receive; map readable).
    pub read: bool,
    /// Write (send; map writable).
    pub write: bool,
}

impl CapRights {
    /// Every right (`seL4_AllRights`).
    pub const ALL: Self = Self {
        grant: true,
        read: true,
        write: true,
    };
    /// Read and write (`seL4_ReadWrite`).
    pub const READ_WRITE: Self = Self {
        grant: false,
        read: true,
        write: true,
    };
    /// Read only (`seL4_CanRead`).
    pub const READ: Self = Self {
        grant: false,
        read: true,
        write: false,
    };
    /// Write only (`seL4_CanWrite`).
    pub const WRITE: Self = Self {
        grant: false,
        read: false,
        write: true,
    };
    /// No rights (`seL4_NoRights`).
    pub const NONE: Self = Self {
        grant: false,
        read: false,
        write: false,
    };

    /// The raw bindings' value.
    pub const fn into_raw(self) -> seL4_CapRights_t {
        seL4_CapRights_t::new(
            self.grant as seL4_Word,
            self.read as seL4_Word,
            self.write as seL4_Word,
        )
    }
}

/// The data word given to `Mint` and `Mutate`: a badge, a CNode guard, or (5.0, x86) the port
/// range of an I/O-port capability. What it means depends on the capability it is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CapData(seL4_Word);

impl CapData {
    /// No badge, no guard (`seL4_NilData`).
    pub const NONE: Self = Self(0);

    /// A badge for an endpoint or notification capability (28 bits are kept,
    /// `seL4_CapData_Badge_new`).
    pub const fn badge(badge: seL4_Word) -> Self {
        Self(seL4_CapData_t::Badge_new(badge).words[0])
    }

    /// A guard for a CNode capability: `guard_size` bits of value `guard`
    /// (`seL4_CapData_Guard_new`).
    pub const fn guard(guard: seL4_Word, guard_size: seL4_Word) -> Self {
        Self(seL4_CapData_t::Guard_new(guard, guard_size).words[0])
    }

    /// Restricts a minted I/O-port capability to ports `first..=last` (the kernel's
    /// `io_port_capdata`; the range must lie within the source capability's). seL4 5.0 has no
    /// I/O-port controller: this is how I/O-port capabilities are narrowed.
    pub const fn io_port_range(first: u16, last: u16) -> Self {
        Self(sel4_sys::io_port_capdata_t::new(first as seL4_Word, last as seL4_Word).words[0])
    }

    /// An arbitrary data word.
    pub const fn from_word(word: seL4_Word) -> Self {
        Self(word)
    }

    /// The data word.
    pub const fn word(self) -> seL4_Word {
        self.0
    }

    /// The raw bindings' value.
    pub const fn into_raw(self) -> seL4_CapData_t {
        seL4_CapData_t { words: [self.0] }
    }
}

/// Slots are named as in the kernel interface: `index` resolved to `depth` bits from the CNode
/// invoked (destination) or from `src_root` (source).
impl Cap<cap_type::CNode> {
    /// Copies the capability at `src_root`/`src_index`/`src_depth` into slot
    /// `dest_index`/`dest_depth` of this CSpace, with at most `rights`. Performs
    /// `seL4_CNode_Copy`.
    pub fn copy(
        self,
        dest_index: seL4_Word,
        dest_depth: u8,
        src_root: Cap<cap_type::CNode>,
        src_index: seL4_Word,
        src_depth: u8,
        rights: CapRights,
    ) -> Result<()> {
        invoke_unit(|b| {
            b.seL4_CNode_Copy(
                self.bits(),
                dest_index,
                dest_depth,
                src_root.bits(),
                src_index,
                src_depth,
                rights.into_raw(),
            )
        })
    }

    /// Copies a capability as [`copy`](Self::copy) does, also applying `data` (a badge, a guard
    /// or an I/O-port range). Performs `seL4_CNode_Mint`.
    #[allow(clippy::too_many_arguments)]
    pub fn mint(
        self,
        dest_index: seL4_Word,
        dest_depth: u8,
        src_root: Cap<cap_type::CNode>,
        src_index: seL4_Word,
        src_depth: u8,
        rights: CapRights,
        data: CapData,
    ) -> Result<()> {
        invoke_unit(|b| {
            b.seL4_CNode_Mint(
                self.bits(),
                dest_index,
                dest_depth,
                src_root.bits(),
                src_index,
                src_depth,
                rights.into_raw(),
                data.into_raw(),
            )
        })
    }

    /// Moves a capability into slot `dest_index`/`dest_depth` of this CSpace. Performs
    /// `seL4_CNode_Move`.
    pub fn move_cap(
        self,
        dest_index: seL4_Word,
        dest_depth: u8,
        src_root: Cap<cap_type::CNode>,
        src_index: seL4_Word,
        src_depth: u8,
    ) -> Result<()> {
        invoke_unit(|b| {
            b.seL4_CNode_Move(
                self.bits(),
                dest_index,
                dest_depth,
                src_root.bits(),
                src_index,
                src_depth,
            )
        })
    }

    /// Moves a capability, applying `data`. Performs `seL4_CNode_Mutate`.
    pub fn mutate(
        self,
        dest_index: seL4_Word,
        dest_depth: u8,
        src_root: Cap<cap_type::CNode>,
        src_index: seL4_Word,
        src_depth: u8,
        data: CapData,
    ) -> Result<()> {
        invoke_unit(|b| {
            b.seL4_CNode_Mutate(
                self.bits(),
                dest_index,
                dest_depth,
                src_root.bits(),
                src_index,
                src_depth,
                data.into_raw(),
            )
        })
    }

    /// Deletes the capability in slot `index`/`depth`. Performs `seL4_CNode_Delete`.
    pub fn delete(self, index: seL4_Word, depth: u8) -> Result<()> {
        invoke_unit(|b| b.seL4_CNode_Delete(self.bits(), index, depth))
    }

    /// Deletes every capability derived from the one in slot `index`/`depth`. Performs
    /// `seL4_CNode_Revoke`.
    pub fn revoke(self, index: seL4_Word, depth: u8) -> Result<()> {
        invoke_unit(|b| b.seL4_CNode_Revoke(self.bits(), index, depth))
    }

    /// Moves the calling thread's reply capability into slot `index`/`depth`, so that the caller
    /// can be answered later (by invoking it with `Send`). Performs `seL4_CNode_SaveCaller`.
    pub fn save_caller(self, index: seL4_Word, depth: u8) -> Result<()> {
        invoke_unit(|b| b.seL4_CNode_SaveCaller(self.bits(), index, depth))
    }
}
