//! Typed capabilities.

use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;

use sel4_sys::seL4_CPtr;

/// What a capability points to. Implemented by the marker types of [`cap_type`].
pub trait CapType: Copy + fmt::Debug + 'static {
    /// The object type's name, for `Debug` output.
    const NAME: &'static str;
}

/// A capability address in the calling thread's CSpace (resolved at full word depth), with the
/// object type `T` it is expected to point to. Only `T`'s invocations are available on it; the
/// kernel still checks the real type and answers `InvalidCapability` when it differs.
#[repr(transparent)]
pub struct Cap<T: CapType> {
    bits: seL4_CPtr,
    _type: PhantomData<T>,
}

impl<T: CapType> Cap<T> {
    /// The capability at address `bits`.
    pub const fn from_bits(bits: seL4_CPtr) -> Self {
        Self {
            bits,
            _type: PhantomData,
        }
    }

    /// The capability's address.
    pub const fn bits(self) -> seL4_CPtr {
        self.bits
    }

    /// The same address, seen as a capability to another object type.
    pub const fn cast<U: CapType>(self) -> Cap<U> {
        Cap::from_bits(self.bits)
    }

    /// The same address with the object type forgotten.
    pub const fn upcast(self) -> Cap<cap_type::Unknown> {
        self.cast()
    }
}

impl Cap<cap_type::Null> {
    /// The null capability (address 0, `seL4_CapNull`).
    pub const NULL: Self = Self::from_bits(0);
}

impl<T: CapType> Clone for Cap<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: CapType> Copy for Cap<T> {}

impl<T: CapType> PartialEq for Cap<T> {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits
    }
}

impl<T: CapType> Eq for Cap<T> {}

impl<T: CapType> Hash for Cap<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bits.hash(state);
    }
}

impl<T: CapType> fmt::Debug for Cap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cap<{}>({:#x})", T::NAME, self.bits)
    }
}

/// Marker types for [`Cap`]: one per kernel object type (and [`Null`](cap_type::Null),
/// [`Unknown`](cap_type::Unknown)). They have no values.
pub mod cap_type {
    use super::CapType;

    macro_rules! cap_types {
        ($($(#[$attr:meta])* $name:ident,)*) => {
            $(
                $(#[$attr])*
                #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
                pub enum $name {}

                $(#[$attr])*
                impl CapType for $name {
                    const NAME: &'static str = stringify!($name);
                }
            )*
        };
    }

    cap_types! {
        /// The null capability.
        Null,
        /// A capability of a type not stated.
        Unknown,
        /// An endpoint (synchronous IPC).
        Endpoint,
        /// A notification (asynchronous signals).
        Notification,
        /// Untyped memory.
        Untyped,
        /// A CNode.
        CNode,
        /// A thread control block.
        Tcb,
        /// A 4 KiB frame (`seL4_X86_4K`).
        Page,
        /// A 2 MiB frame (`seL4_X86_LargePageObject`).
        LargePage,
        /// A 1 GiB frame (`seL4_X64_HugePageObject`).
        #[cfg(sel4_config_huge_page)]
        HugePage,
        /// A page table.
        PageTable,
        /// A page directory.
        PageDirectory,
        /// A page-directory-pointer table.
        Pdpt,
        /// A PML4: the root of an address space (VSpace).
        Pml4,
        /// An ASID pool.
        AsidPool,
        /// The ASID controller.
        AsidControl,
        /// The IRQ controller.
        IrqControl,
        /// An IRQ handler.
        IrqHandler,
        /// A range of I/O ports. seL4 5.0 has no I/O-port controller: the initial thread's
        /// I/O-port capability covers every port, and narrower ones are minted from it with
        /// [`CapData::io_port_range`](crate::CapData::io_port_range).
        IoPort,
        /// The scheduling-domain controller.
        DomainSet,
        /// A virtual CPU (VT-x).
        #[cfg(sel4_config_vtx)]
        Vcpu,
        /// An EPT PML4: the root of a guest-physical address space.
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
}
