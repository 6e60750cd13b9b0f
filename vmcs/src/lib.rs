//! Type-safe VMCS field management for Intel VT-x.
//!
//! - [`catalogue`]: every VMCS field of the current Intel SDM, declared once; typed accessors
//!   whose value types are the fields' widths, and no write method for read-only fields.
//! - [`access`]: the [`VmcsAccess`] trait all backends implement, and its errors.
//! - Backends: [`soft`] (in-memory, with hardware semantics) and `vmx` (the VMREAD/VMWRITE
//!   instructions; feature `vmx`, x86 and x86_64).
//! - [`controls`]: bitflags for every VM-execution, VM-exit and VM-entry control word.
//! - [`caps`]: capability MSRs and the control-setting algorithm ([`set_control`]).
//! - [`event`]: interruption-information words.
//! - [`exit`]: exit reasons and every exit-information decoder; [`VmxExitInfo`].
//! - [`inject`]: event injection and re-injection; [`ia32e`]: IA-32e mode transitions on CR0.PG writes.
//! - [`dump`]: a readable dump of any backend.
//! - [`ept`]: the EPT pointer, checked against IA32_VMX_EPT_VPID_CAP; [`bitmap`]: I/O and MSR
//!   bitmaps.
//! - [`support`]: which fields a processor has, from its capability MSRs.
//!
//! Citations name the Intel 64 and IA-32 Architectures Software Developer's Manual, order
//! no. 325462-085 (2024) ("SDM"), whose VMX chapters are Vol. 3C Chapters 24–33 and
//! Appendices A–C (bound in Vol. 3D).
//!
//! ```
//! use vmcs::{SoftVmcs, VmcsAccess, VmcsGuestNW, VmcsReadOnly32};
//! let mut vmcs = SoftVmcs::default();
//! VmcsGuestNW::Rip.write(&mut vmcs, 0x2000)?;
//! assert_eq!(VmcsGuestNW::Rip.read(&mut vmcs)?, 0x2000);
//! // Read-only fields have no `write` method; VMWRITE by encoding fails as on hardware.
//! assert!(vmcs.write(VmcsReadOnly32::ExitReason as u32, 1).is_err());
//! # Ok::<(), vmcs::VmcsError>(())
//! ```
#![no_std]
#![deny(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod access;
pub mod bitmap;
pub mod caps;
pub mod catalogue;
pub mod controls;
pub mod dump;
pub mod encoding;
pub mod ept;
pub mod event;
pub mod exit;
#[cfg(any(test, all(feature = "vmx", target_arch = "x86")))]
mod halves;
pub mod ia32e;
pub mod inject;
pub mod soft;
pub mod support;
#[cfg(all(feature = "vmx", any(target_arch = "x86_64", target_arch = "x86")))]
pub mod vmx;

pub use access::{VmInstructionError, VmcsAccess, VmcsError};
pub use caps::{
    AllowedBits, ControlError, ControlKind, EptVpidCapabilities, VmxBasic, VmxCapabilities, VmxCapabilityMsr,
    VmxMisc, WriteControlError, set_control, set_control_flags, write_control,
};
pub use catalogue::{
    FIELDS, Field, FieldAccess, FieldInfo, VmcsControl16, VmcsControl32, VmcsControl64, VmcsControlNW,
    VmcsGuest16, VmcsGuest32, VmcsGuest64, VmcsGuestNW, VmcsHost16, VmcsHost32, VmcsHost64, VmcsHostNW,
    VmcsReadOnly32, VmcsReadOnly64, VmcsReadOnlyNW,
};
pub use controls::{
    ControlWord, EntryControls, PinBasedControls, PrimaryControls, PrimaryExitControls, SecondaryControls,
    SecondaryExitControls, TertiaryControls,
};
pub use encoding::{AccessType, FieldEncoding, FieldType, FieldWidth};
pub use event::{InterruptionInfo, InterruptionType};
pub use exit::{ExitDetail, ExitReason, ExitReasonWord, QualificationError, VmxExitInfo};
pub use ia32e::{Cr0WriteError, Cr0WriteFault, Cr0WriteOutcome, GuestPagingState, PagingChange};
pub use inject::{
    ActivityState, EntryEvent, Event, EventKind, GuestStateConflict, InjectError, InjectionCapabilities,
    InjectionError, Interruptibility, NmiBlockingFixup,
};
pub use soft::{SoftProfile, SoftVmcs};
pub use support::{FieldRequirement, FieldSet};
