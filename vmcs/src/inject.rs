//! Event injection: the VM-entry interruption-information, exception error-code and
//! instruction-length fields (SDM Vol. 3C, Section 25.8.3, Table 25-17), built so that VM entry
//! accepts them (the checks of Section 27.2.1.3) and the guest sees what the request meant
//! (Section 27.6, "Event Injection").
//!
//! - [`prepare`] turns an [`Event`] request into an [`EntryEvent`] (pure); [`inject`] does the
//!   same through any [`VmcsAccess`], refusing to overwrite an event that is already pending.
//! - [`reinjection_from_idt_vectoring`] / [`reinject_idt_vectoring`] deliver again an event whose
//!   delivery a VM exit interrupted (Section 28.2.4).
//! - [`nmi_blocking_fixup`] says what a VMM must do to blocking by NMI after such exits.
//! - [`interrupt_window_open`], [`nmi_window_open`] and [`check_guest_state_for_injection`] say
//!   whether the guest's interruptibility and activity state allow an injection now.
//!
//! Nothing here reads a VM-exit information field to fill in something the caller left out:
//! the exit's error code and instruction length describe the exit's own event or instruction,
//! not the one being injected.

use core::fmt;
use core::str::FromStr;

use bitflags::bitflags;

use crate::access::{VmcsAccess, VmcsError};
use crate::catalogue::{VmcsControl32, VmcsGuest32, VmcsGuestNW, VmcsReadOnly32};
use crate::event::{InterruptionInfo, InterruptionType};

/// CR0.PE (bit 0): protected mode.
const CR0_PE: u64 = 1 << 0;
/// RFLAGS.IF (bit 9): maskable interrupts enabled.
const RFLAGS_IF: u64 = 1 << 9;

/// The NMI vector (SDM Vol. 3A, Table 7-1).
pub const NMI_VECTOR: u8 = 2;
/// The double-fault vector, #DF.
pub const DOUBLE_FAULT_VECTOR: u8 = 8;
/// The general-protection vector, #GP.
pub const GENERAL_PROTECTION_VECTOR: u8 = 13;
/// The machine-check vector, #MC.
pub const MACHINE_CHECK_VECTOR: u8 = 18;
/// The longest instruction: VM entry requires the instruction length of a software interrupt
/// or exception to be at most 15 (SDM Vol. 3C, Section 27.2.1.3).
pub const MAX_INSTRUCTION_LENGTH: u32 = 15;

/// Whether delivering exception `vector` pushes an error code: #DF (8), #TS (10), #NP (11),
/// #SS (12), #GP (13), #PF (14), #AC (17) and #CP (21) (SDM Vol. 3A, Table 7-1;
/// the same list is the VM-entry check of SDM Vol. 3C, Section 27.2.1.3).
pub const fn exception_pushes_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21)
}

/// The kind of event a caller asks for; [`EventKind::Auto`] lets the vector decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum EventKind {
    /// Vector 2: NMI; 0–31: hardware exception; 32–255: external interrupt.
    #[default]
    Auto,
    /// An external (maskable) interrupt, any vector (real-mode guests take 8259 interrupts on
    /// vectors 8–15).
    ExternalInterrupt,
    /// A non-maskable interrupt; the vector must be 2.
    Nmi,
    /// A hardware exception (fault, trap or abort); vector 0–31 other than 2. Vectors 22–31
    /// are reserved by the architecture but VM entry delivers them as type 3 (SDM Vol. 3C,
    /// Section 27.2.1.3 only bounds the vector by 31).
    HardwareException,
    /// A software interrupt, `INT n` (any vector); needs the instruction length.
    SoftwareInterrupt,
    /// A privileged software exception, `INT1`/ICEBP; vector 1 only; needs the instruction
    /// length.
    PrivilegedSoftwareException,
    /// A software exception, `INT3` (#BP, vector 3) or `INTO` (#OF, vector 4); needs the
    /// instruction length.
    SoftwareException,
}

impl EventKind {
    /// Every kind, [`EventKind::Auto`] first.
    pub const ALL: [Self; 7] = [
        Self::Auto,
        Self::ExternalInterrupt,
        Self::Nmi,
        Self::HardwareException,
        Self::SoftwareInterrupt,
        Self::PrivilegedSoftwareException,
        Self::SoftwareException,
    ];

    /// The interruption type this kind asks for; `None` for [`EventKind::Auto`].
    pub const fn interruption_type(self) -> Option<InterruptionType> {
        match self {
            Self::Auto => None,
            Self::ExternalInterrupt => Some(InterruptionType::ExternalInterrupt),
            Self::Nmi => Some(InterruptionType::Nmi),
            Self::HardwareException => Some(InterruptionType::HardwareException),
            Self::SoftwareInterrupt => Some(InterruptionType::SoftwareInterrupt),
            Self::PrivilegedSoftwareException => Some(InterruptionType::PrivilegedSoftwareException),
            Self::SoftwareException => Some(InterruptionType::SoftwareException),
        }
    }

    /// Kebab-case name: `"auto"` or the [`InterruptionType::name`] of the type.
    pub const fn name(self) -> &'static str {
        match self.interruption_type() {
            Some(kind) => kind.name(),
            None => "auto",
        }
    }

    /// The kind with this [`EventKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The kind whose events have interruption type `kind`; `None` for the types a VMM never
    /// injects through this module (reserved type 1; type 7, "other event").
    pub const fn from_interruption_type(kind: InterruptionType) -> Option<Self> {
        match kind {
            InterruptionType::ExternalInterrupt => Some(Self::ExternalInterrupt),
            InterruptionType::Nmi => Some(Self::Nmi),
            InterruptionType::HardwareException => Some(Self::HardwareException),
            InterruptionType::SoftwareInterrupt => Some(Self::SoftwareInterrupt),
            InterruptionType::PrivilegedSoftwareException => Some(Self::PrivilegedSoftwareException),
            InterruptionType::SoftwareException => Some(Self::SoftwareException),
            InterruptionType::Reserved | InterruptionType::Other => None,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not an [`EventKind::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnknownEventKind;

impl fmt::Display for UnknownEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown event type (expected auto, external-interrupt, nmi, hardware-exception, ")?;
        f.write_str("software-interrupt, privileged-software-exception or software-exception)")
    }
}

impl core::error::Error for UnknownEventKind {}

impl FromStr for EventKind {
    type Err = UnknownEventKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or(UnknownEventKind)
    }
}

/// What a caller wants delivered to the guest. Validated by [`prepare`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Event {
    /// The vector (IDT entry).
    pub vector: u8,
    /// The kind of event; [`EventKind::Auto`] derives it from the vector.
    pub kind: EventKind,
    /// The error code, for the hardware exceptions that push one.
    pub error_code: Option<u32>,
    /// The length of the instruction that raised a software interrupt or exception; the
    /// return address the guest sees is RIP plus this length (SDM Vol. 3C, Section 27.6.1.1).
    pub instruction_len: Option<u32>,
}

impl Event {
    /// Vector `vector`, kind [`EventKind::Auto`], no error code or instruction length.
    pub const fn new(vector: u8) -> Self {
        Self {
            vector,
            kind: EventKind::Auto,
            error_code: None,
            instruction_len: None,
        }
    }

    /// The same event with kind `kind`.
    pub const fn with_kind(self, kind: EventKind) -> Self {
        Self { kind, ..self }
    }

    /// The same event with error code `error_code`.
    pub const fn with_error_code(self, error_code: u32) -> Self {
        Self {
            error_code: Some(error_code),
            ..self
        }
    }

    /// The same event with instruction length `len`.
    pub const fn with_instruction_len(self, len: u32) -> Self {
        Self {
            instruction_len: Some(len),
            ..self
        }
    }

    /// An NMI.
    pub const fn nmi() -> Self {
        Self::new(NMI_VECTOR).with_kind(EventKind::Nmi)
    }

    /// An external interrupt on `vector`.
    pub const fn external_interrupt(vector: u8) -> Self {
        Self::new(vector).with_kind(EventKind::ExternalInterrupt)
    }

    /// Hardware exception `vector`, with `error_code` if it pushes one.
    pub const fn exception(vector: u8, error_code: Option<u32>) -> Self {
        Self {
            vector,
            kind: EventKind::HardwareException,
            error_code,
            instruction_len: None,
        }
    }

    /// #GP(`error_code`).
    pub const fn general_protection(error_code: u32) -> Self {
        Self::exception(GENERAL_PROTECTION_VECTOR, Some(error_code))
    }

    /// `INT n` with vector `vector`, raised by an instruction of `len` bytes.
    pub const fn software_interrupt(vector: u8, len: u32) -> Self {
        Self::new(vector)
            .with_kind(EventKind::SoftwareInterrupt)
            .with_instruction_len(len)
    }

    /// #BP raised by `INT3` (`len` bytes).
    pub const fn breakpoint(len: u32) -> Self {
        Self::new(3)
            .with_kind(EventKind::SoftwareException)
            .with_instruction_len(len)
    }

    /// #OF raised by `INTO` (`len` bytes).
    pub const fn overflow(len: u32) -> Self {
        Self::new(4)
            .with_kind(EventKind::SoftwareException)
            .with_instruction_len(len)
    }

    /// #DB raised by `INT1`/ICEBP (`len` bytes).
    pub const fn icebp(len: u32) -> Self {
        Self::new(1)
            .with_kind(EventKind::PrivilegedSoftwareException)
            .with_instruction_len(len)
    }
}

/// What the processor can do beyond the baseline VM-entry checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InjectionCapabilities {
    /// IA32_VMX_MISC bit 30: VM entry may inject a software interrupt, software exception or
    /// privileged software exception with instruction length 0 (SDM Vol. 3D, Appendix A.6).
    pub zero_length_instruction: bool,
}

impl InjectionCapabilities {
    /// IA32_VMX_MISC bit 30.
    pub const VMX_MISC_ZERO_LENGTH_INJECTION: u64 = 1 << 30;

    /// The capabilities a raw IA32_VMX_MISC value reports.
    pub const fn from_vmx_misc(vmx_misc: u64) -> Self {
        Self {
            zero_length_instruction: vmx_misc & Self::VMX_MISC_ZERO_LENGTH_INJECTION != 0,
        }
    }
}

/// The three VM-entry event-injection fields, ready to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EntryEvent {
    /// VM-entry interruption-information field (valid; bit 12 and bits 30:13 clear).
    pub interruption_info: InterruptionInfo,
    /// VM-entry exception error code: `Some` exactly when the deliver-error-code bit is set.
    pub error_code: Option<u32>,
    /// VM-entry instruction length: `Some` exactly for types 4, 5 and 6.
    pub instruction_len: Option<u32>,
}

/// Why [`prepare`] refused a request. Each is a request that VM entry would reject (SDM Vol. 3C,
/// Section 27.2.1.3) or that would deliver something other than the named event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum InjectionError {
    /// The vector cannot be delivered as this type: an NMI not on vector 2, a hardware
    /// exception above 31 (VM entry fails) or on vector 2 (that is the NMI), a software
    /// exception other than #BP/#OF, a privileged software exception other than #DB.
    VectorNotAllowed {
        /// The vector asked for.
        vector: u8,
        /// The type asked for (or derived).
        kind: InterruptionType,
    },
    /// A protected-mode hardware exception that pushes an error code, without one.
    MissingErrorCode {
        /// The exception vector.
        vector: u8,
    },
    /// An error code for an event that does not push one.
    UnexpectedErrorCode {
        /// The vector.
        vector: u8,
        /// The type.
        kind: InterruptionType,
    },
    /// An error code with bits 31:16 set: VM entry fails (SDM Vol. 3C, Section 27.2.1.3).
    ErrorCodeTooWide {
        /// The vector.
        vector: u8,
        /// The error code given.
        error_code: u32,
    },
    /// A software interrupt or (privileged) software exception without an instruction length.
    MissingInstructionLength {
        /// The type.
        kind: InterruptionType,
    },
    /// An instruction length for an event that is not raised by an instruction.
    UnexpectedInstructionLength {
        /// The type.
        kind: InterruptionType,
    },
    /// An instruction length outside 1–15 (0 only with IA32_VMX_MISC bit 30).
    InstructionLengthOutOfRange {
        /// The length given.
        length: u32,
    },
}

impl fmt::Display for InjectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::VectorNotAllowed { vector, kind } => {
                write!(f, "vector {vector} cannot be injected as {}", kind.name())?;
                match kind {
                    InterruptionType::Nmi => f.write_str(" (an NMI has vector 2)"),
                    InterruptionType::HardwareException if vector == NMI_VECTOR => {
                        f.write_str(" (vector 2 is the NMI)")
                    }
                    InterruptionType::HardwareException => f.write_str(" (exceptions are vectors 0-31)"),
                    InterruptionType::SoftwareException => f.write_str(" (only #BP 3 and #OF 4)"),
                    InterruptionType::PrivilegedSoftwareException => f.write_str(" (only #DB 1)"),
                    _ => Ok(()),
                }
            }
            Self::MissingErrorCode { vector } => {
                write!(
                    f,
                    "exception {vector} pushes an error code in protected mode; none given"
                )
            }
            Self::UnexpectedErrorCode { vector, kind } => {
                write!(f, "{} {vector} takes no error code", kind.name())
            }
            Self::ErrorCodeTooWide { vector, error_code } => write!(
                f,
                "error code {error_code:#x} for vector {vector} has bits 31:16 set (VM entry would fail)"
            ),
            Self::MissingInstructionLength { kind } => {
                write!(
                    f,
                    "a {} needs the length of the instruction that raised it",
                    kind.name()
                )
            }
            Self::UnexpectedInstructionLength { kind } => {
                write!(
                    f,
                    "a {} is not raised by an instruction; no instruction length",
                    kind.name()
                )
            }
            Self::InstructionLengthOutOfRange { length } => write!(
                f,
                "instruction length {length} is outside 1-{MAX_INSTRUCTION_LENGTH} \
                 (0 only where IA32_VMX_MISC bit 30 allows it)"
            ),
        }
    }
}

impl core::error::Error for InjectionError {}

/// Why [`inject`] or [`reinject_idt_vectoring`] did not inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum InjectError {
    /// The request is invalid.
    Invalid(InjectionError),
    /// An event is already pending in the VM-entry interruption-information field; writing
    /// another would lose it.
    EventPending(InterruptionInfo),
    /// A VMCS access failed.
    Vmcs(VmcsError),
}

impl From<InjectionError> for InjectError {
    fn from(e: InjectionError) -> Self {
        Self::Invalid(e)
    }
}

impl From<VmcsError> for InjectError {
    fn from(e: VmcsError) -> Self {
        Self::Vmcs(e)
    }
}

impl fmt::Display for InjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "invalid injection: {e}"),
            Self::EventPending(info) => write!(
                f,
                "an event is already pending for VM entry ({} {}, interruption info {:#010x})",
                info.kind().name(),
                info.vector(),
                info.raw()
            ),
            Self::Vmcs(e) => write!(f, "VMCS access failed: {e}"),
        }
    }
}

impl core::error::Error for InjectError {}

/// The interruption type a request resolves to.
const fn resolve_type(vector: u8, kind: EventKind) -> InterruptionType {
    match kind.interruption_type() {
        Some(kind) => kind,
        None if vector == NMI_VECTOR => InterruptionType::Nmi,
        None if vector <= 31 => InterruptionType::HardwareException,
        None => InterruptionType::ExternalInterrupt,
    }
}

/// Whether `vector` may be delivered as `kind`.
const fn vector_allowed(vector: u8, kind: InterruptionType) -> bool {
    match kind {
        // SDM Vol. 3C, Section 27.2.1.3: an NMI has vector 2, a hardware exception at most 31.
        InterruptionType::Nmi => vector == NMI_VECTOR,
        // Vector 2 as type 3 passes the check but delivers no NMI (no NMI blocking): refused.
        InterruptionType::HardwareException => vector <= 31 && vector != NMI_VECTOR,
        // Types 5 and 6 exist for exactly these instructions (SDM Vol. 3C, Section 25.8.3).
        InterruptionType::SoftwareException => matches!(vector, 3 | 4),
        InterruptionType::PrivilegedSoftwareException => vector == 1,
        InterruptionType::ExternalInterrupt | InterruptionType::SoftwareInterrupt => true,
        InterruptionType::Reserved | InterruptionType::Other => false,
    }
}

/// Builds the VM-entry event-injection fields for `event`, or says why it cannot be injected.
/// Pure: nothing is read or written.
///
/// `guest_cr0` is the guest CR0 *field* of the VMCS (not the read shadow): its PE bit decides
/// whether an error code is delivered. The rules (SDM Vol. 3C, Section 27.2.1.3 and 27.6.1.1;
/// Section 25.8.3):
/// - type: [`EventKind::Auto`] gives NMI for vector 2, hardware exception for 0–31 and
///   external interrupt for 32–255; an explicit kind must suit the vector (see
///   [`InjectionError::VectorNotAllowed`]).
/// - error code: delivered exactly for hardware exceptions 8, 10–14, 17 and 21 when CR0.PE = 1,
///   and then required and limited to 16 bits. When CR0.PE = 0 (a real-mode guest, which
///   needs "unrestricted guest") such a code is dropped: real-mode delivery pushes none and
///   VM entry forbids the deliver-error-code bit. Any other error code is an error.
/// - instruction length: required for software interrupts and (privileged) software
///   exceptions, 1–15, or 0 if `caps.zero_length_instruction`; given for anything else it is
///   an error.
///
/// This is stricter than a processor enumerating IA32_VMX_BASIC bit 56 (which lets a protected
/// mode hardware exception carry an error code or not regardless of vector) on purpose: the
/// guest should see what the architecture would deliver.
///
/// # Errors
/// [`InjectionError`] naming the rule broken.
pub fn prepare(
    event: &Event,
    guest_cr0: u64,
    caps: InjectionCapabilities,
) -> Result<EntryEvent, InjectionError> {
    let vector = event.vector;
    let kind = resolve_type(vector, event.kind);
    if !vector_allowed(vector, kind) {
        return Err(InjectionError::VectorNotAllowed { vector, kind });
    }

    let pushes_error_code =
        kind == InterruptionType::HardwareException && exception_pushes_error_code(vector);
    let error_code = match (pushes_error_code, event.error_code) {
        (false, None) => None,
        (false, Some(_)) => return Err(InjectionError::UnexpectedErrorCode { vector, kind }),
        (true, _) if guest_cr0 & CR0_PE == 0 => None,
        (true, None) => return Err(InjectionError::MissingErrorCode { vector }),
        (true, Some(error_code)) if error_code > 0xFFFF => {
            return Err(InjectionError::ErrorCodeTooWide { vector, error_code });
        }
        (true, Some(error_code)) => Some(error_code),
    };

    let instruction_len = match (kind.needs_instruction_length(), event.instruction_len) {
        (false, None) => None,
        (false, Some(_)) => return Err(InjectionError::UnexpectedInstructionLength { kind }),
        (true, None) => return Err(InjectionError::MissingInstructionLength { kind }),
        (true, Some(length)) => {
            let too_short = length == 0 && !caps.zero_length_instruction;
            if too_short || length > MAX_INSTRUCTION_LENGTH {
                return Err(InjectionError::InstructionLengthOutOfRange { length });
            }
            Some(length)
        }
    };

    Ok(EntryEvent {
        interruption_info: InterruptionInfo::new(vector, kind, error_code.is_some()),
        error_code,
        instruction_len,
    })
}

/// The event pending in the VM-entry interruption-information field, if its valid bit is set.
/// A VM exit clears the valid bit (SDM Vol. 3C, Section 25.8.3), so `Some` means someone
/// injected since the last exit.
///
/// # Errors
/// Whatever the backend reports.
pub fn pending_entry_event<A: VmcsAccess + ?Sized>(
    vmcs: &mut A,
) -> Result<Option<InterruptionInfo>, VmcsError> {
    let info = InterruptionInfo::from_raw(VmcsControl32::EntryInterruptionInfo.read(vmcs)?);
    Ok(info.valid().then_some(info))
}

/// Writes the three fields: error code and instruction length only when used, the
/// interruption information last so that a failed write never leaves a valid event with stale
/// companions.
fn write_entry_event<A: VmcsAccess + ?Sized>(vmcs: &mut A, entry: &EntryEvent) -> Result<(), VmcsError> {
    if let Some(code) = entry.error_code {
        VmcsControl32::EntryExceptionErrorCode.write(vmcs, code)?;
    }
    if let Some(len) = entry.instruction_len {
        VmcsControl32::EntryInstructionLength.write(vmcs, len)?;
    }
    VmcsControl32::EntryInterruptionInfo.write(vmcs, entry.interruption_info.raw())
}

/// Validates `event` against the guest's CR0 and writes it for the next VM entry.
///
/// Reads the VM-entry interruption-information field and guest CR0; writes the VM-entry
/// exception error code (only when delivered), the VM-entry instruction length (only for
/// types 4–6) and the interruption information. Reads no VM-exit information field.
///
/// # Errors
/// [`InjectError::EventPending`] if an event is already pending (nothing written);
/// [`InjectError::Invalid`] for a request [`prepare`] refuses (nothing written);
/// [`InjectError::Vmcs`] if an access fails.
pub fn inject<A: VmcsAccess + ?Sized>(
    vmcs: &mut A,
    event: &Event,
    caps: InjectionCapabilities,
) -> Result<EntryEvent, InjectError> {
    if let Some(pending) = pending_entry_event(vmcs)? {
        return Err(InjectError::EventPending(pending));
    }
    let guest_cr0 = VmcsGuestNW::Cr0.read(vmcs)?;
    let entry = prepare(event, guest_cr0, caps)?;
    write_entry_event(vmcs, &entry)?;
    Ok(entry)
}

/// The injection that redelivers the event whose delivery a VM exit interrupted; `None` when
/// the IDT-vectoring information is not valid.
///
/// Vector, type and error-code-valid are copied; bit 12 (undefined in IDT-vectoring
/// information) and bits 30:13 are cleared, since VM entry requires them 0 (SDM Vol. 3C,
/// Section 28.2.4; Section 31.7.1.2 of the May 2020 edition (the chapter was dropped later), "Resuming Guest Software after Handling an Exception").
/// `idt_error_code` (the IDT-vectoring error code) is used only if the error-code-valid bit is
/// set; `exit_instruction_len` (the VM-exit instruction length, which the processor fills for
/// exits during delivery of a software interrupt or (privileged) software exception, Section
/// 28.2.5) only for those types.
///
/// The word is taken as the processor reports it: types 0 and 2–6. When the type is NMI the
/// VMM must also clear blocking by NMI: see [`nmi_blocking_fixup`].
pub fn reinjection_from_idt_vectoring(
    idt_info: InterruptionInfo,
    idt_error_code: u32,
    exit_instruction_len: u32,
) -> Option<EntryEvent> {
    if !idt_info.valid() {
        return None;
    }
    let kind = idt_info.kind();
    let error_code_valid = idt_info.error_code_valid();
    Some(EntryEvent {
        interruption_info: InterruptionInfo::new(idt_info.vector(), kind, error_code_valid),
        error_code: error_code_valid.then_some(idt_error_code),
        instruction_len: kind.needs_instruction_length().then_some(exit_instruction_len),
    })
}

/// After a VM exit, arranges for the event whose delivery it interrupted to be delivered again
/// on the next VM entry; `Ok(None)` if no delivery was interrupted.
///
/// Reads the IDT-vectoring information, then (only when needed) the IDT-vectoring error code
/// and the VM-exit instruction length, and the VM-entry interruption information; writes the
/// VM-entry fields as [`reinjection_from_idt_vectoring`] builds them. For an NMI it also clears
/// blocking by NMI in the guest interruptibility state (the [`NmiBlockingFixup::ClearBlockingByNmi`]
/// of [`nmi_blocking_fixup`]).
///
/// # Errors
/// [`InjectError::EventPending`] if an event is already pending (nothing written; the caller
/// decides which one the guest sees, as a processor would: SDM Vol. 3C, Section 31.7.1.1 of the May 2020 edition, "Reflecting Exceptions to Guest Software");
/// [`InjectError::Vmcs`] if an access fails.
pub fn reinject_idt_vectoring<A: VmcsAccess + ?Sized>(
    vmcs: &mut A,
) -> Result<Option<EntryEvent>, InjectError> {
    let idt_info = InterruptionInfo::from_raw(VmcsReadOnly32::IdtVectoringInfo.read(vmcs)?);
    if !idt_info.valid() {
        return Ok(None);
    }
    if let Some(pending) = pending_entry_event(vmcs)? {
        return Err(InjectError::EventPending(pending));
    }
    let error_code = if idt_info.error_code_valid() {
        VmcsReadOnly32::IdtVectoringErrorCode.read(vmcs)?
    } else {
        0
    };
    let instruction_len = if idt_info.kind().needs_instruction_length() {
        VmcsReadOnly32::ExitInstructionLength.read(vmcs)?
    } else {
        0
    };
    let Some(entry) = reinjection_from_idt_vectoring(idt_info, error_code, instruction_len) else {
        return Ok(None);
    };
    apply_nmi_blocking_fixup(vmcs, nmi_blocking_fixup(idt_info, false))?;
    write_entry_event(vmcs, &entry)?;
    Ok(Some(entry))
}

bitflags! {
    /// The guest interruptibility-state field (SDM Vol. 3C, Section 25.4.2, Table 25-3).
    /// Bits 31:5 are reserved; [`Interruptibility::from_bits_retain`] keeps them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Interruptibility: u32 {
        /// Bit 0: blocking by STI (for one instruction after STI with RFLAGS.IF = 0).
        const BLOCKING_BY_STI = 1 << 0;
        /// Bit 1: blocking by MOV SS / POP SS (for one instruction).
        const BLOCKING_BY_MOV_SS = 1 << 1;
        /// Bit 2: blocking by SMI.
        const BLOCKING_BY_SMI = 1 << 2;
        /// Bit 3: blocking by NMI (virtual-NMI blocking when "virtual NMIs" is 1).
        const BLOCKING_BY_NMI = 1 << 3;
        /// Bit 4: enclave interruption.
        const ENCLAVE_INTERRUPTION = 1 << 4;
    }
}

/// The guest activity-state field (SDM Vol. 3C, Section 25.4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ActivityState {
    /// 0: executing instructions.
    Active,
    /// 1: halted by HLT.
    Hlt,
    /// 2: shut down after a triple fault.
    Shutdown,
    /// 3: waiting for a startup IPI.
    WaitForSipi,
    /// A value the SDM does not define (VM entry fails on it).
    Unknown(u32),
}

impl ActivityState {
    /// Decodes the field.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            0 => Self::Active,
            1 => Self::Hlt,
            2 => Self::Shutdown,
            3 => Self::WaitForSipi,
            other => Self::Unknown(other),
        }
    }

    /// The raw field value.
    pub const fn raw(self) -> u32 {
        match self {
            Self::Active => 0,
            Self::Hlt => 1,
            Self::Shutdown => 2,
            Self::WaitForSipi => 3,
            Self::Unknown(raw) => raw,
        }
    }
}

/// Whether an external interrupt may be injected now: RFLAGS.IF = 1, no blocking by STI or by
/// MOV SS, and the guest active or halted.
///
/// VM entry itself refuses to inject an external interrupt under STI or MOV-SS blocking (SDM
/// Vol. 3C, Section 27.3.1.5) and with RFLAGS.IF = 0 (Section 27.3.1.4: IF must be 1 when the
/// entry event is a valid external interrupt); the "interrupt-window exiting" control reports
/// when this turns true.
/// HLT is left by the injection; shutdown and wait-for-SIPI accept no external interrupt
/// (Section 27.3.1.5).
pub fn interrupt_window_open(
    rflags: u64,
    interruptibility: Interruptibility,
    activity: ActivityState,
) -> bool {
    let blocked = Interruptibility::BLOCKING_BY_STI | Interruptibility::BLOCKING_BY_MOV_SS;
    rflags & RFLAGS_IF != 0
        && !interruptibility.intersects(blocked)
        && matches!(activity, ActivityState::Active | ActivityState::Hlt)
}

/// Whether an NMI may be injected now: no blocking by NMI, MOV SS or STI, and the guest active,
/// halted or shut down.
///
/// Blocking by NMI means the guest's NMI handler has not yet returned (with "virtual NMIs",
/// VM entry also refuses the injection). MOV-SS blocking fails VM entry; STI blocking fails it
/// on some processors (SDM Vol. 3C, Section 27.3.1.5), so it is treated as closed. Wait-for-SIPI
/// accepts no event.
pub fn nmi_window_open(interruptibility: Interruptibility, activity: ActivityState) -> bool {
    let blocked = Interruptibility::BLOCKING_BY_NMI
        | Interruptibility::BLOCKING_BY_MOV_SS
        | Interruptibility::BLOCKING_BY_STI;
    !interruptibility.intersects(blocked)
        && matches!(
            activity,
            ActivityState::Active | ActivityState::Hlt | ActivityState::Shutdown
        )
}

/// A guest state in which VM entry would refuse a pending event (SDM Vol. 3C, Section 27.3.1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum GuestStateConflict {
    /// The activity state does not accept this event (HLT: external interrupts, NMIs, #DB,
    /// #MC and pending MTF exits only; shutdown: NMIs and #MC only; wait-for-SIPI: none).
    Activity(ActivityState),
    /// Blocking by STI with an external interrupt (or an NMI, on some processors).
    BlockingBySti,
    /// Blocking by MOV SS with an external interrupt or an NMI.
    BlockingByMovSs,
    /// Blocking by NMI with an NMI while "virtual NMIs" is 1.
    BlockingByNmi,
}

impl fmt::Display for GuestStateConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Activity(state) => write!(f, "activity state {} does not accept this event", state.raw()),
            Self::BlockingBySti => f.write_str("blocking by STI is in effect"),
            Self::BlockingByMovSs => f.write_str("blocking by MOV SS is in effect"),
            Self::BlockingByNmi => f.write_str("blocking by (virtual) NMI is in effect"),
        }
    }
}

impl core::error::Error for GuestStateConflict {}

/// Checks a pending event against the guest state as VM entry does (SDM Vol. 3C, Section
/// 27.3.1.5, activity state and interruptibility state); `Ok` for an invalid (absent) event.
/// STI blocking with an NMI is refused although only some processors refuse it.
///
/// A VMM injecting an exception into a halted guest, for example, must first set the activity
/// state to active. The RFLAGS.IF = 1 requirement for an external interrupt (Section 27.3.1.4)
/// is not checked here: [`interrupt_window_open`] covers it.
///
/// # Errors
/// The first [`GuestStateConflict`] found.
pub fn check_guest_state_for_injection(
    info: InterruptionInfo,
    interruptibility: Interruptibility,
    activity: ActivityState,
    virtual_nmis: bool,
) -> Result<(), GuestStateConflict> {
    if !info.valid() {
        return Ok(());
    }
    let kind = info.kind();
    let vector = info.vector();
    let allowed_in_activity = match activity {
        ActivityState::Active => true,
        ActivityState::Hlt => match kind {
            InterruptionType::ExternalInterrupt | InterruptionType::Nmi => true,
            InterruptionType::HardwareException => matches!(vector, 1 | MACHINE_CHECK_VECTOR),
            InterruptionType::Other => vector == 0,
            _ => false,
        },
        ActivityState::Shutdown => match kind {
            InterruptionType::Nmi => true,
            InterruptionType::HardwareException => vector == MACHINE_CHECK_VECTOR,
            _ => false,
        },
        ActivityState::WaitForSipi | ActivityState::Unknown(_) => false,
    };
    if !allowed_in_activity {
        return Err(GuestStateConflict::Activity(activity));
    }
    let masked_by_sti_or_mov_ss = matches!(kind, InterruptionType::ExternalInterrupt | InterruptionType::Nmi);
    if masked_by_sti_or_mov_ss && interruptibility.contains(Interruptibility::BLOCKING_BY_MOV_SS) {
        return Err(GuestStateConflict::BlockingByMovSs);
    }
    if masked_by_sti_or_mov_ss && interruptibility.contains(Interruptibility::BLOCKING_BY_STI) {
        return Err(GuestStateConflict::BlockingBySti);
    }
    if kind == InterruptionType::Nmi
        && virtual_nmis
        && interruptibility.contains(Interruptibility::BLOCKING_BY_NMI)
    {
        return Err(GuestStateConflict::BlockingByNmi);
    }
    Ok(())
}

/// What a VMM must do to blocking by NMI (bit 3 of the interruptibility state) before
/// resuming the guest after a VM exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum NmiBlockingFixup {
    /// Nothing.
    None,
    /// Set it: the exit was a fault on an IRET that had unblocked NMIs; re-executing the IRET
    /// must find them blocked, as they were (SDM Vol. 3C, Section 28.2.3; Section 31.7.1.2 of the May 2020 edition).
    SetBlockingByNmi,
    /// Clear it: the exit interrupted the delivery of an NMI that is being re-injected; VM
    /// entry refuses to inject an NMI while (virtual-)NMI blocking is set (Section 27.3.1.5),
    /// and the injected NMI blocks NMIs again anyway.
    ClearBlockingByNmi,
}

/// Whether an exit caused by an exception or NMI (exit interruption information
/// `exit_interruption`) reports that IRET unblocked NMIs. Bit 12 counts only where it is
/// defined (SDM Vol. 3C, Section 28.2.3): not when the exit interrupted event delivery (valid
/// IDT-vectoring information), not for #DF, and not with "NMI exiting" 1 and "virtual NMIs" 0.
///
/// For exits that report this in their exit qualification instead (EPT violations and others,
/// Section 28.2.3), pass that bit to [`nmi_blocking_fixup`] directly.
pub fn exit_iret_unblocked_nmi(
    exit_interruption: InterruptionInfo,
    idt_vectoring: InterruptionInfo,
    nmi_exiting: bool,
    virtual_nmis: bool,
) -> bool {
    let is_double_fault = exit_interruption.kind() == InterruptionType::HardwareException
        && exit_interruption.vector() == DOUBLE_FAULT_VECTOR;
    // With NMI exiting but no virtual NMIs, NMIs stay blocked throughout non-root operation.
    let bit_12_defined = !idt_vectoring.valid() && !is_double_fault && (virtual_nmis || !nmi_exiting);
    exit_interruption.valid() && exit_interruption.nmi_unblocking() && bit_12_defined
}

/// The fixup to blocking by NMI after a VM exit, from the IDT-vectoring information and
/// whether the exit reports NMI unblocking due to IRET (see [`exit_iret_unblocked_nmi`], or the
/// exit-qualification bit 12 of EPT violations and similar exits).
///
/// A re-injected NMI takes precedence: NMI unblocking is undefined when the IDT-vectoring
/// information is valid (SDM Vol. 3C, Section 28.2.3).
pub fn nmi_blocking_fixup(idt_vectoring: InterruptionInfo, iret_unblocked_nmi: bool) -> NmiBlockingFixup {
    if idt_vectoring.valid() {
        if idt_vectoring.kind() == InterruptionType::Nmi {
            NmiBlockingFixup::ClearBlockingByNmi
        } else {
            NmiBlockingFixup::None
        }
    } else if iret_unblocked_nmi {
        NmiBlockingFixup::SetBlockingByNmi
    } else {
        NmiBlockingFixup::None
    }
}

/// Applies `fixup` to the guest interruptibility state (read-modify-write; nothing is accessed
/// for [`NmiBlockingFixup::None`]).
///
/// # Errors
/// Whatever the backend reports.
pub fn apply_nmi_blocking_fixup<A: VmcsAccess + ?Sized>(
    vmcs: &mut A,
    fixup: NmiBlockingFixup,
) -> Result<(), VmcsError> {
    let nmi = Interruptibility::BLOCKING_BY_NMI.bits();
    if fixup == NmiBlockingFixup::None {
        return Ok(());
    }
    let state = VmcsGuest32::InterruptibilityState.read(vmcs)?;
    let new_state = match fixup {
        NmiBlockingFixup::SetBlockingByNmi => state | nmi,
        NmiBlockingFixup::ClearBlockingByNmi => state & !nmi,
        NmiBlockingFixup::None => state,
    };
    if new_state != state {
        VmcsGuest32::InterruptibilityState.write(vmcs, new_state)?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::soft::SoftVmcs;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// A VMCS that records every access, refuses reads the test forbids (failing the test), and
    /// can be told to fail one encoding.
    pub(crate) struct Recorder {
        pub(crate) inner: SoftVmcs,
        pub(crate) reads: Vec<u32>,
        pub(crate) writes: Vec<(u32, u64)>,
        pub(crate) forbidden_read: fn(u32) -> bool,
        pub(crate) fail_on: Option<u32>,
    }

    impl Recorder {
        pub(crate) fn new(inner: SoftVmcs) -> Self {
            Self {
                inner,
                reads: Vec::new(),
                writes: Vec::new(),
                forbidden_read: |_| false,
                fail_on: None,
            }
        }

        pub(crate) fn written(&self) -> Vec<u32> {
            self.writes.iter().map(|&(encoding, _)| encoding).collect()
        }
    }

    impl VmcsAccess for Recorder {
        fn read(&mut self, encoding: u32) -> Result<u64, VmcsError> {
            assert!(
                !(self.forbidden_read)(encoding),
                "read of forbidden field {encoding:#06x}"
            );
            self.reads.push(encoding);
            if self.fail_on == Some(encoding) {
                return Err(VmcsError::Kernel(99));
            }
            self.inner.read(encoding)
        }

        fn write(&mut self, encoding: u32, value: u64) -> Result<(), VmcsError> {
            self.writes.push((encoding, value));
            if self.fail_on == Some(encoding) {
                return Err(VmcsError::Kernel(99));
            }
            self.inner.write(encoding, value)
        }
    }

    /// VM-exit information fields: type bits 11:10 = 1 (SDM Vol. 3C, Section 25.11.2).
    fn is_exit_information(encoding: u32) -> bool {
        (encoding >> 10) & 3 == 1
    }

    const ENTRY_INFO: u32 = 0x4016;
    const ENTRY_ERROR_CODE: u32 = 0x4018;
    const ENTRY_LEN: u32 = 0x401A;
    const EXIT_ERROR_CODE: u32 = 0x4406;
    const EXIT_LEN: u32 = 0x440C;
    const PROTECTED: u64 = 0x8000_0031; // PG, NE, ET, PE
    const REAL: u64 = 0x0000_0030; // NE, ET
    const STRICT: InjectionCapabilities = InjectionCapabilities {
        zero_length_instruction: false,
    };
    const ZERO_LEN_OK: InjectionCapabilities = InjectionCapabilities {
        zero_length_instruction: true,
    };
    /// A value no valid event leaves in a field it does not use: fails both the error-code
    /// (bits 31:16) and the instruction-length (1–15) checks.
    const STALE: u32 = 0xFFFF_FFFF;

    /// The event-injection checks of VM entry, written from SDM Vol. 3C, Section 27.2.1.3
    /// independently of the code under test. `prot_mode` is "unrestricted guest = 0 or guest
    /// CR0.PE = 1".
    fn vm_entry_accepts(
        info: u32,
        error_code_field: u32,
        instruction_len_field: u32,
        prot_mode: bool,
        zero_length_ok: bool,
        mtf_supported: bool,
    ) -> bool {
        if info & 0x8000_0000 == 0 {
            return true;
        }
        let vector = info & 0xFF;
        let ty = (info >> 8) & 7;
        let deliver = info & 0x800 != 0;
        let reserved_type = ty == 1 || (ty == 7 && !mtf_supported);
        let vector_consistent = match ty {
            2 => vector == 2,
            3 => vector <= 31,
            7 => vector == 0,
            _ => true,
        };
        let should_deliver = prot_mode && ty == 3 && [8, 10, 11, 12, 13, 14, 17, 21].contains(&vector);
        let reserved_bits_clear = info & 0x7FFF_F000 == 0;
        let error_code_ok = !deliver || error_code_field & 0xFFFF_0000 == 0;
        let length_ok = !matches!(ty, 4..=6)
            || (instruction_len_field <= 15 && (instruction_len_field != 0 || zero_length_ok));
        !reserved_type
            && vector_consistent
            && deliver == should_deliver
            && reserved_bits_clear
            && error_code_ok
            && length_ok
    }

    /// The checker applied to an [`EntryEvent`] written over fields holding [`STALE`].
    fn entry_accepts(entry: &EntryEvent, guest_cr0: u64, caps: InjectionCapabilities) -> bool {
        vm_entry_accepts(
            entry.interruption_info.raw(),
            entry.error_code.unwrap_or(STALE),
            entry.instruction_len.unwrap_or(STALE),
            guest_cr0 & 1 != 0,
            caps.zero_length_instruction,
            false,
        ) && entry.interruption_info.valid()
            && entry.error_code.is_some() == entry.interruption_info.error_code_valid()
            && entry.instruction_len.is_some() == entry.interruption_info.kind().needs_instruction_length()
    }

    #[test]
    fn checker_rejects_what_the_sdm_rejects() {
        // The checker itself must be able to fail: the reference's #DB-as-ICEBP is fine, its
        // type 7 for vectors 21-31 and its #CP without error code are not.
        assert!(!vm_entry_accepts(0x8000_0715, 0, 0, true, false, true));
        assert!(!vm_entry_accepts(0x8000_0315, 0, 0, true, false, false));
        assert!(!vm_entry_accepts(0x8000_0B0D, 0, 0, false, false, false)); // error code in real mode
        assert!(!vm_entry_accepts(0x8000_0B0D, 0x1_0000, 0, true, false, false));
        assert!(!vm_entry_accepts(0x8000_1B0E, 0, 0, true, false, false)); // bit 12
        assert!(!vm_entry_accepts(0x8000_0480, 0, 0, true, false, false));
        assert!(vm_entry_accepts(0x8000_0480, 0, 0, true, true, false));
        assert!(!vm_entry_accepts(0x8000_0480, 0, 16, true, true, false));
        assert!(!vm_entry_accepts(0x8000_0203, 0, 0, true, false, false));
        assert!(!vm_entry_accepts(0x8000_0320, 0, 0, true, false, false));
        assert!(!vm_entry_accepts(0x8000_0100, 0, 0, true, false, true));
        assert!(vm_entry_accepts(0x8000_0B15, 0, 0, true, false, false));
        assert!(vm_entry_accepts(0x0000_0715, STALE, STALE, true, false, false)); // invalid: unchecked
    }

    fn allowed_vectors(kind: InterruptionType) -> Vec<u8> {
        match kind {
            InterruptionType::Nmi => std::vec![2],
            InterruptionType::HardwareException => (0..=31).filter(|&v| v != 2).collect(),
            InterruptionType::SoftwareException => std::vec![3, 4],
            InterruptionType::PrivilegedSoftwareException => std::vec![1],
            _ => (0..=255).collect(),
        }
    }

    fn auto_type(vector: u8) -> InterruptionType {
        match vector {
            2 => InterruptionType::Nmi,
            0..=31 => InterruptionType::HardwareException,
            _ => InterruptionType::ExternalInterrupt,
        }
    }

    /// Every vector × kind × error code × instruction length × CPU mode × capability: no
    /// panic; every `Ok` passes VM entry and means what was asked; every `Err` is justified.
    #[test]
    fn prepare_over_every_vector_and_kind() {
        let error_codes = [None, Some(0), Some(0xFFFF), Some(0x1_0000)];
        let lengths = [None, Some(0), Some(1), Some(15), Some(16)];
        let mut accepted = 0u32;
        for vector in 0..=255u8 {
            for kind in EventKind::ALL {
                for error_code in error_codes {
                    for instruction_len in lengths {
                        for cr0 in [PROTECTED, REAL] {
                            for caps in [STRICT, ZERO_LEN_OK] {
                                let event = Event {
                                    vector,
                                    kind,
                                    error_code,
                                    instruction_len,
                                };
                                let ty = kind.interruption_type().unwrap_or_else(|| auto_type(vector));
                                let pushes = ty == InterruptionType::HardwareException
                                    && [8, 10, 11, 12, 13, 14, 17, 21].contains(&vector);
                                let protected = cr0 & 1 != 0;
                                match prepare(&event, cr0, caps) {
                                    Ok(entry) => {
                                        accepted += 1;
                                        assert!(entry_accepts(&entry, cr0, caps), "{event:?} -> {entry:?}");
                                        let info = entry.interruption_info;
                                        assert_eq!(info.vector(), vector);
                                        assert_eq!(info.kind(), ty, "{event:?}");
                                        assert!(allowed_vectors(ty).contains(&vector));
                                        let delivered = pushes && protected;
                                        assert_eq!(
                                            entry.error_code,
                                            if delivered { error_code } else { None }
                                        );
                                        assert!(!pushes || error_code.is_some() || !protected);
                                        assert!(pushes || error_code.is_none());
                                        assert_eq!(entry.instruction_len, instruction_len);
                                    }
                                    Err(InjectionError::VectorNotAllowed { vector: v, kind: k }) => {
                                        assert_eq!((v, k), (vector, ty));
                                        assert!(!allowed_vectors(ty).contains(&vector));
                                    }
                                    Err(InjectionError::MissingErrorCode { vector: v }) => {
                                        assert!(v == vector && pushes && protected && error_code.is_none());
                                    }
                                    Err(InjectionError::UnexpectedErrorCode { vector: v, kind: k }) => {
                                        assert!(v == vector && k == ty && !pushes && error_code.is_some());
                                    }
                                    Err(InjectionError::ErrorCodeTooWide { error_code: e, .. }) => {
                                        assert!(pushes && protected && error_code == Some(e) && e > 0xFFFF);
                                    }
                                    Err(InjectionError::MissingInstructionLength { kind: k }) => {
                                        assert!(k == ty && ty.needs_instruction_length());
                                        assert!(instruction_len.is_none());
                                    }
                                    Err(InjectionError::UnexpectedInstructionLength { kind: k }) => {
                                        assert!(k == ty && !ty.needs_instruction_length());
                                        assert!(instruction_len.is_some());
                                    }
                                    Err(InjectionError::InstructionLengthOutOfRange { length }) => {
                                        assert_eq!(instruction_len, Some(length));
                                        assert!(
                                            length > 15 || (length == 0 && !caps.zero_length_instruction)
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(accepted > 4_000, "only {accepted} requests accepted");
    }

    /// A well-formed request (error code exactly when pushed, length exactly when needed) is
    /// accepted for every vector its type allows.
    #[test]
    fn well_formed_requests_are_accepted() {
        for kind in EventKind::ALL {
            for vector in 0..=255u8 {
                let ty = kind.interruption_type().unwrap_or_else(|| auto_type(vector));
                let pushes = ty == InterruptionType::HardwareException && exception_pushes_error_code(vector);
                let event = Event {
                    vector,
                    kind,
                    error_code: pushes.then_some(0x10),
                    instruction_len: ty.needs_instruction_length().then_some(2),
                };
                let outcome = prepare(&event, PROTECTED, STRICT);
                assert_eq!(
                    outcome.is_ok(),
                    allowed_vectors(ty).contains(&vector),
                    "{event:?}: {outcome:?}"
                );
            }
        }
    }

    /// reference-gaps.md item 4: #CP (21) gets its error code.
    #[test]
    fn control_protection_exception_delivers_its_error_code() {
        let entry = prepare(&Event::new(21).with_error_code(3), PROTECTED, STRICT).unwrap();
        assert_eq!(entry.interruption_info.raw(), 0x8000_0B15);
        assert_eq!(entry.error_code, Some(3));
        assert_eq!(
            prepare(&Event::new(21), PROTECTED, STRICT),
            Err(InjectionError::MissingErrorCode { vector: 21 })
        );
    }

    /// reference-gaps.md item 4: vectors 21-31 are hardware exceptions (type 3), never type 7.
    #[test]
    fn reserved_exception_vectors_are_type_3() {
        for vector in 22..=31u8 {
            let entry = prepare(&Event::new(vector), PROTECTED, STRICT).unwrap();
            assert_eq!(entry.interruption_info.raw(), 0x8000_0300 | u32::from(vector));
            assert_eq!((entry.interruption_info.raw() >> 8) & 7, 3);
            assert!(entry_accepts(&entry, PROTECTED, STRICT));
        }
    }

    /// reference-gaps.md item 4: #DB is a hardware exception unless ICEBP is asked for.
    #[test]
    fn debug_exception_is_hardware_by_default_and_icebp_on_request() {
        let hardware = prepare(&Event::new(1), PROTECTED, STRICT).unwrap();
        assert_eq!(hardware.interruption_info.raw(), 0x8000_0301);
        assert_eq!(hardware.instruction_len, None);
        let icebp = prepare(&Event::icebp(1), PROTECTED, STRICT).unwrap();
        assert_eq!(icebp.interruption_info.raw(), 0x8000_0501);
        assert_eq!(icebp.instruction_len, Some(1));
        assert_eq!(
            prepare(
                &Event::new(1).with_kind(EventKind::PrivilegedSoftwareException),
                PROTECTED,
                STRICT
            ),
            Err(InjectionError::MissingInstructionLength {
                kind: InterruptionType::PrivilegedSoftwareException
            })
        );
        assert!(matches!(
            prepare(
                &Event::new(3)
                    .with_kind(EventKind::PrivilegedSoftwareException)
                    .with_instruction_len(1),
                PROTECTED,
                STRICT
            ),
            Err(InjectionError::VectorNotAllowed { vector: 3, .. })
        ));
    }

    /// reference-gaps.md item 4: `INT n` is type 4 with its instruction length.
    #[test]
    fn software_interrupt_is_type_4_with_length() {
        let entry = prepare(&Event::software_interrupt(0x80, 2), PROTECTED, STRICT).unwrap();
        assert_eq!(entry.interruption_info.raw(), 0x8000_0480);
        assert_eq!(entry.instruction_len, Some(2));
        assert_eq!(entry.error_code, None);
        // BIOS calls in a real-mode guest: `int 0x10` (vector below 32).
        let bios = prepare(&Event::software_interrupt(0x10, 2), REAL, STRICT).unwrap();
        assert_eq!(bios.interruption_info.raw(), 0x8000_0410);
        assert_eq!(
            prepare(
                &Event::new(0x80).with_kind(EventKind::SoftwareInterrupt),
                PROTECTED,
                STRICT
            ),
            Err(InjectionError::MissingInstructionLength {
                kind: InterruptionType::SoftwareInterrupt
            })
        );
        // #BP / #OF from INT3 / INTO are software exceptions, type 6.
        assert_eq!(
            prepare(&Event::breakpoint(1), PROTECTED, STRICT)
                .unwrap()
                .interruption_info
                .raw(),
            0x8000_0603
        );
        assert_eq!(
            prepare(&Event::overflow(1), PROTECTED, STRICT)
                .unwrap()
                .interruption_info
                .raw(),
            0x8000_0604
        );
    }

    #[test]
    fn instruction_length_range_follows_the_capability() {
        let int0 = Event::software_interrupt(0x21, 0);
        assert_eq!(
            prepare(&int0, PROTECTED, STRICT),
            Err(InjectionError::InstructionLengthOutOfRange { length: 0 })
        );
        assert_eq!(
            prepare(&int0, PROTECTED, ZERO_LEN_OK).unwrap().instruction_len,
            Some(0)
        );
        assert_eq!(InjectionCapabilities::from_vmx_misc(1 << 30), ZERO_LEN_OK);
        assert_eq!(InjectionCapabilities::from_vmx_misc(!(1 << 30)), STRICT);
        assert!(prepare(&Event::software_interrupt(0x21, 15), PROTECTED, STRICT).is_ok());
        assert_eq!(
            prepare(&Event::software_interrupt(0x21, 16), PROTECTED, ZERO_LEN_OK),
            Err(InjectionError::InstructionLengthOutOfRange { length: 16 })
        );
        assert_eq!(
            prepare(&Event::new(0x21).with_instruction_len(2), PROTECTED, STRICT),
            Err(InjectionError::UnexpectedInstructionLength {
                kind: InterruptionType::ExternalInterrupt
            })
        );
    }

    /// reference-gaps.md item 4: no error code in real mode.
    #[test]
    fn error_code_is_dropped_in_real_mode() {
        let gp = Event::general_protection(0x18);
        let protected = prepare(&gp, PROTECTED, STRICT).unwrap();
        assert_eq!(protected.interruption_info.raw(), 0x8000_0B0D);
        assert_eq!(protected.error_code, Some(0x18));
        let real = prepare(&gp, REAL, STRICT).unwrap();
        assert_eq!(real.interruption_info.raw(), 0x8000_030D);
        assert_eq!(real.error_code, None);
        assert!(entry_accepts(&real, REAL, STRICT));
        // And none is needed there.
        assert!(prepare(&Event::exception(13, None), REAL, STRICT).is_ok());
        // A code for an exception that never pushes one is still wrong in real mode.
        assert_eq!(
            prepare(&Event::exception(6, Some(0)), REAL, STRICT),
            Err(InjectionError::UnexpectedErrorCode {
                vector: 6,
                kind: InterruptionType::HardwareException
            })
        );
    }

    #[test]
    fn error_code_rules() {
        for vector in [8u8, 10, 11, 12, 13, 14, 17, 21] {
            assert_eq!(
                prepare(&Event::exception(vector, None), PROTECTED, STRICT),
                Err(InjectionError::MissingErrorCode { vector })
            );
        }
        assert_eq!(
            prepare(&Event::exception(14, Some(0x1_0002)), PROTECTED, STRICT),
            Err(InjectionError::ErrorCodeTooWide {
                vector: 14,
                error_code: 0x1_0002
            })
        );
        assert_eq!(
            prepare(&Event::new(0x30).with_error_code(1), PROTECTED, STRICT),
            Err(InjectionError::UnexpectedErrorCode {
                vector: 0x30,
                kind: InterruptionType::ExternalInterrupt
            })
        );
        assert_eq!(
            prepare(&Event::nmi().with_error_code(0), PROTECTED, STRICT),
            Err(InjectionError::UnexpectedErrorCode {
                vector: 2,
                kind: InterruptionType::Nmi
            })
        );
        // #PF with the SGX bit (15) still fits.
        assert_eq!(
            prepare(&Event::exception(14, Some(0x8007)), PROTECTED, STRICT)
                .unwrap()
                .error_code,
            Some(0x8007)
        );
    }

    #[test]
    fn vectors_must_suit_their_type() {
        let nmi = prepare(&Event::new(2), PROTECTED, STRICT).unwrap();
        assert_eq!(nmi.interruption_info.raw(), 0x8000_0202);
        assert_eq!(prepare(&Event::nmi(), PROTECTED, STRICT), Ok(nmi));
        for (event, vector, kind) in [
            (Event::new(3).with_kind(EventKind::Nmi), 3, InterruptionType::Nmi),
            (
                Event::exception(32, None),
                32,
                InterruptionType::HardwareException,
            ),
            (Event::exception(2, None), 2, InterruptionType::HardwareException),
            (
                Event::new(5)
                    .with_kind(EventKind::SoftwareException)
                    .with_instruction_len(1),
                5,
                InterruptionType::SoftwareException,
            ),
        ] {
            assert_eq!(
                prepare(&event, PROTECTED, STRICT),
                Err(InjectionError::VectorNotAllowed { vector, kind })
            );
        }
        assert_eq!(
            prepare(&Event::new(0x20), PROTECTED, STRICT)
                .unwrap()
                .interruption_info
                .raw(),
            0x8000_0020
        );
        // An 8259 in a real-mode guest interrupts on vectors 8-15.
        assert_eq!(
            prepare(&Event::external_interrupt(8), REAL, STRICT)
                .unwrap()
                .interruption_info
                .raw(),
            0x8000_0008
        );
    }

    #[test]
    fn kind_names_match_the_cli_and_interruption_types() {
        for name in [
            "external-interrupt",
            "nmi",
            "hardware-exception",
            "software-interrupt",
            "privileged-software-exception",
            "software-exception",
        ] {
            let kind: EventKind = name.parse().unwrap();
            assert_eq!(kind.name(), name);
            let ty = kind.interruption_type().unwrap();
            assert_eq!(ty.name(), name);
            assert_eq!(EventKind::from_interruption_type(ty), Some(kind));
        }
        assert_eq!(EventKind::from_name("auto"), Some(EventKind::Auto));
        assert_eq!("other".parse::<EventKind>(), Err(UnknownEventKind));
        assert_eq!(
            EventKind::from_interruption_type(InterruptionType::Reserved),
            None
        );
        assert_eq!(EventKind::from_interruption_type(InterruptionType::Other), None);
    }

    fn vmcs_with_stale_exit_fields() -> Recorder {
        let mut soft = SoftVmcs::default();
        soft.set(crate::VmcsGuestNW::Cr0, PROTECTED);
        // What an exit left behind: a #PF's error code, a 3-byte instruction.
        soft.set(VmcsReadOnly32::ExitInterruptionInfo, 0x8000_0B0E);
        soft.set(VmcsReadOnly32::ExitInterruptionErrorCode, 0x6);
        soft.set(VmcsReadOnly32::ExitInstructionLength, 3);
        let mut vmcs = Recorder::new(soft);
        vmcs.forbidden_read = is_exit_information;
        vmcs
    }

    /// reference-gaps.md item 4: `inject` never falls back on the exit's error code or
    /// instruction length (the recorder fails the test on any read of an exit field).
    #[test]
    fn inject_never_reads_exit_fields() {
        for (event, expected) in [
            (
                Event::new(13),
                Err(InjectError::Invalid(InjectionError::MissingErrorCode {
                    vector: 13,
                })),
            ),
            (
                Event::new(0x80).with_kind(EventKind::SoftwareInterrupt),
                Err(InjectError::Invalid(InjectionError::MissingInstructionLength {
                    kind: InterruptionType::SoftwareInterrupt,
                })),
            ),
            (
                Event::general_protection(0),
                Ok(EntryEvent {
                    interruption_info: InterruptionInfo::from_raw(0x8000_0B0D),
                    error_code: Some(0),
                    instruction_len: None,
                }),
            ),
        ] {
            let mut vmcs = vmcs_with_stale_exit_fields();
            assert_eq!(inject(&mut vmcs, &event, STRICT), expected);
            assert!(!vmcs.reads.contains(&EXIT_ERROR_CODE) && !vmcs.reads.contains(&EXIT_LEN));
        }
        for vector in 0..=255u8 {
            for kind in EventKind::ALL {
                let mut vmcs = vmcs_with_stale_exit_fields();
                let _ = inject(&mut vmcs, &Event::new(vector).with_kind(kind), STRICT);
                assert!(vmcs.reads.iter().all(|&e| !is_exit_information(e)));
            }
        }
    }

    #[test]
    fn inject_writes_only_the_fields_the_event_uses() {
        let mut vmcs = vmcs_with_stale_exit_fields();
        inject(&mut vmcs, &Event::new(0x41), STRICT).unwrap();
        assert_eq!(vmcs.written(), [ENTRY_INFO]);
        assert_eq!(vmcs.inner.get(VmcsControl32::EntryInterruptionInfo), 0x8000_0041);

        let mut vmcs = vmcs_with_stale_exit_fields();
        inject(&mut vmcs, &Event::exception(14, Some(2)), STRICT).unwrap();
        assert_eq!(vmcs.written(), [ENTRY_ERROR_CODE, ENTRY_INFO]);
        assert_eq!(vmcs.inner.get(VmcsControl32::EntryExceptionErrorCode), 2);

        let mut vmcs = vmcs_with_stale_exit_fields();
        inject(&mut vmcs, &Event::software_interrupt(0x21, 2), STRICT).unwrap();
        assert_eq!(vmcs.written(), [ENTRY_LEN, ENTRY_INFO]);
        assert_eq!(vmcs.inner.get(VmcsControl32::EntryInstructionLength), 2);
        assert_eq!(vmcs.reads, [ENTRY_INFO, 0x6800]);

        // Real mode: the #GP's error code is not written.
        let mut vmcs = vmcs_with_stale_exit_fields();
        vmcs.inner.set(crate::VmcsGuestNW::Cr0, REAL);
        inject(&mut vmcs, &Event::general_protection(0), STRICT).unwrap();
        assert_eq!(vmcs.written(), [ENTRY_INFO]);
        assert_eq!(vmcs.inner.get(VmcsControl32::EntryInterruptionInfo), 0x8000_030D);

        // Invalid: nothing written.
        let mut vmcs = vmcs_with_stale_exit_fields();
        assert!(inject(&mut vmcs, &Event::exception(40, None), STRICT).is_err());
        assert!(vmcs.writes.is_empty());
    }

    /// reference-gaps.md item 4: a pending event is not overwritten.
    #[test]
    fn inject_refuses_to_overwrite_a_pending_event() {
        let mut vmcs = vmcs_with_stale_exit_fields();
        vmcs.inner.set(VmcsControl32::EntryInterruptionInfo, 0x8000_0B0E);
        assert_eq!(
            inject(&mut vmcs, &Event::new(0x30), STRICT),
            Err(InjectError::EventPending(InterruptionInfo::from_raw(0x8000_0B0E)))
        );
        assert!(vmcs.writes.is_empty());
        assert_eq!(
            pending_entry_event(&mut vmcs),
            Ok(Some(InterruptionInfo::from_raw(0x8000_0B0E)))
        );
        // A leftover word with the valid bit clear is not pending.
        vmcs.inner.set(VmcsControl32::EntryInterruptionInfo, 0x0000_0B0E);
        assert_eq!(pending_entry_event(&mut vmcs), Ok(None));
        assert!(inject(&mut vmcs, &Event::new(0x30), STRICT).is_ok());
    }

    #[test]
    fn inject_reports_vmcs_failures() {
        for encoding in [ENTRY_INFO, 0x6800, ENTRY_ERROR_CODE] {
            let mut vmcs = vmcs_with_stale_exit_fields();
            vmcs.fail_on = Some(encoding);
            assert_eq!(
                inject(&mut vmcs, &Event::general_protection(0), STRICT),
                Err(InjectError::Vmcs(VmcsError::Kernel(99)))
            );
            // The interruption information is never left valid after a failure.
            assert_eq!(vmcs.inner.get(VmcsControl32::EntryInterruptionInfo), 0);
        }
    }

    /// reference-gaps.md item 4: IDT-vectoring information is re-injected faithfully.
    #[test]
    fn reinjection_from_idt_vectoring_copies_the_event() {
        assert_eq!(
            reinjection_from_idt_vectoring(InterruptionInfo::from_raw(0x0000_0B0E), 4, 3),
            None
        );
        // #PF with error code, bit 12 (undefined in IDT-vectoring info) set: cleared.
        let pf = reinjection_from_idt_vectoring(InterruptionInfo::from_raw(0x8000_1B0E), 0x6, 3).unwrap();
        assert_eq!(pf.interruption_info.raw(), 0x8000_0B0E);
        assert_eq!((pf.error_code, pf.instruction_len), (Some(6), None));
        // INT 0x80 interrupted (e.g. by an EPT violation on the IDT): needs the exit's length.
        let int80 =
            reinjection_from_idt_vectoring(InterruptionInfo::from_raw(0x8000_0480), 0xDEAD, 2).unwrap();
        assert_eq!(int80.interruption_info.raw(), 0x8000_0480);
        assert_eq!((int80.error_code, int80.instruction_len), (None, Some(2)));
        let int3 = reinjection_from_idt_vectoring(InterruptionInfo::from_raw(0x8000_0603), 0, 1).unwrap();
        assert_eq!(int3.instruction_len, Some(1));
        let icebp = reinjection_from_idt_vectoring(InterruptionInfo::from_raw(0x8000_0501), 0, 1).unwrap();
        assert_eq!(icebp.instruction_len, Some(1));
        let external = reinjection_from_idt_vectoring(InterruptionInfo::from_raw(0x8000_0030), 7, 7).unwrap();
        assert_eq!(
            (
                external.interruption_info.raw(),
                external.error_code,
                external.instruction_len
            ),
            (0x8000_0030, None, None)
        );
        let nmi = reinjection_from_idt_vectoring(InterruptionInfo::from_raw(0x8000_0202), 0, 0).unwrap();
        assert_eq!(nmi.interruption_info.raw(), 0x8000_0202);
    }

    /// Every IDT-vectoring word a processor can report (types 0, 2-6 with their vectors; an
    /// error code only for the exceptions that push one; lengths 1-15) re-injects into an
    /// entry that VM entry accepts.
    #[test]
    fn reinjection_of_hardware_reports_passes_vm_entry() {
        for ty in [0u32, 2, 3, 4, 5, 6] {
            for vector in allowed_vectors(InterruptionType::from_bits(ty)) {
                let ec = ty == 3 && exception_pushes_error_code(vector);
                let raw = 0x8000_0000 | (u32::from(ec) << 11) | (ty << 8) | u32::from(vector);
                for (undefined_bit_12, len) in [(0u32, 1u32), (1 << 12, 15)] {
                    let entry = reinjection_from_idt_vectoring(
                        InterruptionInfo::from_raw(raw | undefined_bit_12),
                        0x1A,
                        len,
                    )
                    .unwrap();
                    assert!(entry_accepts(&entry, PROTECTED, STRICT), "{raw:#x}: {entry:?}");
                }
            }
        }
    }

    #[test]
    fn reinject_idt_vectoring_through_the_vmcs() {
        // Nothing interrupted: one read, nothing written.
        let mut vmcs = Recorder::new(SoftVmcs::default());
        assert_eq!(reinject_idt_vectoring(&mut vmcs), Ok(None));
        assert_eq!(vmcs.reads, [0x4408]);
        assert!(vmcs.writes.is_empty());

        // An external interrupt: neither the IDT error code nor the exit length is read.
        let mut soft = SoftVmcs::default();
        soft.set(VmcsReadOnly32::IdtVectoringInfo, 0x8000_0031);
        soft.set(VmcsReadOnly32::ExitInstructionLength, 5);
        let mut vmcs = Recorder::new(soft);
        vmcs.forbidden_read = |e| e == 0x440A || e == EXIT_LEN;
        let entry = reinject_idt_vectoring(&mut vmcs).unwrap().unwrap();
        assert_eq!(entry.interruption_info.raw(), 0x8000_0031);
        assert_eq!(vmcs.written(), [ENTRY_INFO]);

        // A software interrupt: the exit length is copied.
        let mut soft = SoftVmcs::default();
        soft.set(VmcsReadOnly32::IdtVectoringInfo, 0x8000_0480);
        soft.set(VmcsReadOnly32::ExitInstructionLength, 2);
        let mut vmcs = Recorder::new(soft);
        reinject_idt_vectoring(&mut vmcs).unwrap();
        assert_eq!(vmcs.inner.get(VmcsControl32::EntryInstructionLength), 2);
        assert_eq!(vmcs.inner.get(VmcsControl32::EntryInterruptionInfo), 0x8000_0480);

        // A #GP with error code and the undefined bit 12 set.
        let mut soft = SoftVmcs::default();
        soft.set(VmcsReadOnly32::IdtVectoringInfo, 0x8000_1B0D);
        soft.set(VmcsReadOnly32::IdtVectoringErrorCode, 0x10);
        let mut vmcs = Recorder::new(soft);
        reinject_idt_vectoring(&mut vmcs).unwrap();
        assert_eq!(vmcs.inner.get(VmcsControl32::EntryInterruptionInfo), 0x8000_0B0D);
        assert_eq!(vmcs.inner.get(VmcsControl32::EntryExceptionErrorCode), 0x10);

        // An NMI: blocking by NMI is cleared so that VM entry accepts the injection.
        let mut soft = SoftVmcs::default();
        soft.set(VmcsReadOnly32::IdtVectoringInfo, 0x8000_0202);
        soft.set(VmcsGuest32::InterruptibilityState, 0b1001);
        let mut vmcs = Recorder::new(soft);
        reinject_idt_vectoring(&mut vmcs).unwrap();
        assert_eq!(vmcs.inner.get(VmcsGuest32::InterruptibilityState), 0b0001);
        assert_eq!(vmcs.inner.get(VmcsControl32::EntryInterruptionInfo), 0x8000_0202);

        // Something already pending: refused, nothing written.
        let mut soft = SoftVmcs::default();
        soft.set(VmcsReadOnly32::IdtVectoringInfo, 0x8000_0202);
        soft.set(VmcsControl32::EntryInterruptionInfo, 0x8000_0B0E);
        let mut vmcs = Recorder::new(soft);
        assert_eq!(
            reinject_idt_vectoring(&mut vmcs),
            Err(InjectError::EventPending(InterruptionInfo::from_raw(0x8000_0B0E)))
        );
        assert!(vmcs.writes.is_empty());
    }

    #[test]
    fn nmi_blocking_after_exits() {
        let none = InterruptionInfo::from_raw(0);
        let gp_after_iret = InterruptionInfo::from_raw(0x8000_1B0D);
        // A #GP on IRET that had unblocked NMIs: block them again.
        assert!(exit_iret_unblocked_nmi(gp_after_iret, none, true, true));
        assert!(exit_iret_unblocked_nmi(gp_after_iret, none, false, false));
        assert_eq!(nmi_blocking_fixup(none, true), NmiBlockingFixup::SetBlockingByNmi);
        // Bit 12 is undefined for #DF, with valid IDT-vectoring info, and with NMI exiting but
        // no virtual NMIs.
        assert!(!exit_iret_unblocked_nmi(
            InterruptionInfo::from_raw(0x8000_1B08),
            none,
            true,
            true
        ));
        assert!(!exit_iret_unblocked_nmi(
            gp_after_iret,
            InterruptionInfo::from_raw(0x8000_0030),
            true,
            true
        ));
        assert!(!exit_iret_unblocked_nmi(gp_after_iret, none, true, false));
        assert!(!exit_iret_unblocked_nmi(
            InterruptionInfo::from_raw(0x8000_0B0D),
            none,
            true,
            true
        ));
        assert!(!exit_iret_unblocked_nmi(
            InterruptionInfo::from_raw(0x0000_1B0D),
            none,
            true,
            true
        ));
        // A re-injected NMI wins over bit 12.
        let nmi = InterruptionInfo::from_raw(0x8000_0202);
        assert_eq!(
            nmi_blocking_fixup(nmi, true),
            NmiBlockingFixup::ClearBlockingByNmi
        );
        assert_eq!(
            nmi_blocking_fixup(InterruptionInfo::from_raw(0x8000_0030), true),
            NmiBlockingFixup::None
        );
        assert_eq!(nmi_blocking_fixup(none, false), NmiBlockingFixup::None);

        let mut vmcs = Recorder::new(SoftVmcs::default());
        vmcs.inner.set(VmcsGuest32::InterruptibilityState, 0b0010);
        apply_nmi_blocking_fixup(&mut vmcs, NmiBlockingFixup::None).unwrap();
        assert!(vmcs.reads.is_empty() && vmcs.writes.is_empty());
        apply_nmi_blocking_fixup(&mut vmcs, NmiBlockingFixup::SetBlockingByNmi).unwrap();
        assert_eq!(vmcs.inner.get(VmcsGuest32::InterruptibilityState), 0b1010);
        apply_nmi_blocking_fixup(&mut vmcs, NmiBlockingFixup::ClearBlockingByNmi).unwrap();
        assert_eq!(vmcs.inner.get(VmcsGuest32::InterruptibilityState), 0b0010);
    }

    #[test]
    fn interrupt_and_nmi_windows() {
        let open = Interruptibility::empty();
        let sti = Interruptibility::BLOCKING_BY_STI;
        let mov_ss = Interruptibility::BLOCKING_BY_MOV_SS;
        let nmi = Interruptibility::BLOCKING_BY_NMI;
        let if_set = 0x202;
        assert!(interrupt_window_open(if_set, open, ActivityState::Active));
        assert!(interrupt_window_open(if_set, nmi, ActivityState::Hlt));
        assert!(!interrupt_window_open(0x2, open, ActivityState::Active));
        assert!(!interrupt_window_open(if_set, sti, ActivityState::Active));
        assert!(!interrupt_window_open(if_set, mov_ss, ActivityState::Active));
        assert!(!interrupt_window_open(if_set, open, ActivityState::Shutdown));
        assert!(!interrupt_window_open(if_set, open, ActivityState::WaitForSipi));
        assert!(!interrupt_window_open(if_set, open, ActivityState::Unknown(9)));

        assert!(nmi_window_open(open, ActivityState::Active));
        assert!(nmi_window_open(
            Interruptibility::BLOCKING_BY_SMI,
            ActivityState::Shutdown
        ));
        assert!(!nmi_window_open(nmi, ActivityState::Active));
        assert!(!nmi_window_open(sti, ActivityState::Active));
        assert!(!nmi_window_open(mov_ss, ActivityState::Hlt));
        assert!(!nmi_window_open(open, ActivityState::WaitForSipi));
        for raw in 0..8 {
            assert_eq!(ActivityState::from_raw(raw).raw(), raw);
        }
    }

    #[test]
    fn guest_state_checks_of_vm_entry() {
        let info = InterruptionInfo::from_raw;
        let open = Interruptibility::empty();
        let check = check_guest_state_for_injection;
        // Injecting #GP into a halted guest fails VM entry; #DB, #MC, interrupts and NMIs do not.
        assert_eq!(
            check(info(0x8000_0B0D), open, ActivityState::Hlt, true),
            Err(GuestStateConflict::Activity(ActivityState::Hlt))
        );
        for ok in [0x8000_0030, 0x8000_0202, 0x8000_0301, 0x8000_0312, 0x8000_0700] {
            assert_eq!(check(info(ok), open, ActivityState::Hlt, true), Ok(()), "{ok:#x}");
        }
        assert_eq!(
            check(info(0x8000_0312), open, ActivityState::Shutdown, true),
            Ok(())
        );
        assert_eq!(
            check(info(0x8000_0202), open, ActivityState::Shutdown, true),
            Ok(())
        );
        assert!(check(info(0x8000_0030), open, ActivityState::Shutdown, true).is_err());
        assert!(check(info(0x8000_0202), open, ActivityState::WaitForSipi, true).is_err());
        assert!(check(info(0x8000_0202), open, ActivityState::Unknown(4), true).is_err());
        assert_eq!(
            check(info(0x0000_0202), open, ActivityState::WaitForSipi, true),
            Ok(())
        );
        // Interruptibility.
        let sti = Interruptibility::BLOCKING_BY_STI;
        let mov_ss = Interruptibility::BLOCKING_BY_MOV_SS;
        let nmi = Interruptibility::BLOCKING_BY_NMI;
        assert_eq!(
            check(info(0x8000_0030), sti, ActivityState::Active, true),
            Err(GuestStateConflict::BlockingBySti)
        );
        assert_eq!(
            check(info(0x8000_0030), mov_ss, ActivityState::Active, true),
            Err(GuestStateConflict::BlockingByMovSs)
        );
        assert_eq!(
            check(info(0x8000_0202), mov_ss, ActivityState::Active, true),
            Err(GuestStateConflict::BlockingByMovSs)
        );
        assert_eq!(
            check(info(0x8000_0202), sti, ActivityState::Active, true),
            Err(GuestStateConflict::BlockingBySti)
        );
        assert_eq!(
            check(info(0x8000_0202), nmi, ActivityState::Active, true),
            Err(GuestStateConflict::BlockingByNmi)
        );
        assert_eq!(
            check(info(0x8000_0202), nmi, ActivityState::Active, false),
            Ok(())
        );
        // Exceptions are not held off by STI or MOV SS.
        assert_eq!(
            check(info(0x8000_0B0E), sti | nmi, ActivityState::Active, true),
            Ok(())
        );
    }

    #[test]
    fn errors_display() {
        use std::string::ToString;
        let e = InjectError::Invalid(InjectionError::VectorNotAllowed {
            vector: 40,
            kind: InterruptionType::HardwareException,
        });
        assert_eq!(
            e.to_string(),
            "invalid injection: vector 40 cannot be injected as hardware-exception (exceptions are vectors 0-31)"
        );
        assert!(
            InjectError::EventPending(InterruptionInfo::from_raw(0x8000_0B0E))
                .to_string()
                .contains("hardware-exception 14")
        );
    }

    fn any_kind() -> impl Strategy<Value = EventKind> {
        proptest::sample::select(EventKind::ALL.to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Any request: no panic, and anything accepted passes VM entry's checks.
        #[test]
        fn prepare_never_panics_and_accepts_only_valid_entries(
            vector in any::<u8>(),
            kind in any_kind(),
            error_code in any::<Option<u32>>(),
            instruction_len in any::<Option<u32>>(),
            cr0 in any::<u64>(),
            zero_length_instruction in any::<bool>(),
        ) {
            let caps = InjectionCapabilities { zero_length_instruction };
            let event = Event { vector, kind, error_code, instruction_len };
            if let Ok(entry) = prepare(&event, cr0, caps) {
                prop_assert!(entry_accepts(&entry, cr0, caps));
            }
        }

        /// Any IDT-vectoring word: no panic; the entry word has bit 12 and bits 30:13 clear.
        #[test]
        fn reinjection_never_panics(raw in any::<u32>(), code in any::<u32>(), len in any::<u32>()) {
            match reinjection_from_idt_vectoring(InterruptionInfo::from_raw(raw), code, len) {
                None => prop_assert!(raw & 0x8000_0000 == 0),
                Some(entry) => {
                    prop_assert_eq!(entry.interruption_info.raw(), raw & 0x8000_0FFF);
                    prop_assert_eq!(entry.error_code.is_some(), raw & 0x800 != 0);
                }
            }
        }

        /// Any guest state: the window helpers agree with VM entry's own checks.
        #[test]
        fn open_windows_pass_vm_entry(rflags in any::<u64>(), raw_state in any::<u32>(), activity in 0u32..6, vector in 32u8..) {
            let state = Interruptibility::from_bits_retain(raw_state);
            let activity = ActivityState::from_raw(activity);
            if interrupt_window_open(rflags, state, activity) {
                prop_assert_eq!(check_guest_state_for_injection(InterruptionInfo::new(vector, InterruptionType::ExternalInterrupt, false), state, activity, true), Ok(()));
            }
            if nmi_window_open(state, activity) {
                prop_assert_eq!(check_guest_state_for_injection(InterruptionInfo::new(2, InterruptionType::Nmi, false), state, activity, true), Ok(()));
            }
        }
    }
}
