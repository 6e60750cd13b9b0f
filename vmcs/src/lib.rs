//! Type-safe VMCS field management for Intel VT-x.
//!
//! - [`catalogue`]: every VMCS field of the current Intel SDM, declared once; typed accessors.
//! - [`access`]: the [`VmcsAccess`] trait all backends implement, and its errors.
//! - Backends: [`soft`] (in-memory, hardware semantics) and `vmx` (the instructions; feature `vmx`).
//!
//! Citations name the Intel SDM, order no. 325462/326019-085 (2024), whose VMX chapters are
//! Vol. 3C Chapters 24–33 and Appendices A–C.
#![no_std]
#![deny(missing_docs)]

pub mod access;
pub mod catalogue;
pub mod encoding;

pub use access::{VmInstructionError, VmcsAccess, VmcsError};
pub use catalogue::{
    FIELDS, Field, FieldAccess, FieldInfo, VmcsControl16, VmcsControl32, VmcsControl64, VmcsControlNW,
    VmcsGuest16, VmcsGuest32, VmcsGuest64, VmcsGuestNW, VmcsHost16, VmcsHost32, VmcsHost64, VmcsHostNW,
    VmcsReadOnly32, VmcsReadOnly64, VmcsReadOnlyNW,
};
pub use encoding::{AccessType, FieldEncoding, FieldType, FieldWidth};
pub mod event;
pub use event::{InterruptionInfo, InterruptionType};
pub mod exit;
pub use exit::{ExitDetail, ExitReason, ExitReasonWord, QualificationError, VmxExitInfo};
