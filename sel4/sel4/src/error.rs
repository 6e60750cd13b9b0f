//! Errors of kernel invocations.

use core::fmt;

use sel4_sys as sys;
use sys::seL4_Word;

/// A failed invocation: the error code of the kernel's reply (its label) with the details the
/// kernel puts in the reply's message registers (`setMRs_syscall_error` in the 5.0 kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// `seL4_InvalidArgument`: argument number `index` (counted over the message words) is
    /// invalid.
    InvalidArgument {
        /// Which argument.
        index: seL4_Word,
    },
    /// `seL4_InvalidCapability`: capability argument number `index` (0: the invoked capability,
    /// 1.. the extra capabilities) is of the wrong type or lacks rights.
    InvalidCapability {
        /// Which capability.
        index: seL4_Word,
    },
    /// `seL4_IllegalOperation`: the object does not allow this operation (now).
    IllegalOperation,
    /// `seL4_RangeError`: an argument is outside `min..=max`.
    RangeError {
        /// Smallest allowed value.
        min: seL4_Word,
        /// Largest allowed value.
        max: seL4_Word,
    },
    /// `seL4_AlignmentError`: an address or size is misaligned.
    AlignmentError,
    /// `seL4_FailedLookup`: a capability address did not resolve.
    FailedLookup {
        /// The failed lookup was of a source capability (as opposed to a destination).
        source: bool,
        /// Why the lookup failed.
        failure: LookupFailure,
    },
    /// `seL4_TruncatedMessage`: the message has fewer words or capabilities than the invocation
    /// needs.
    TruncatedMessage,
    /// `seL4_DeleteFirst`: the destination slot is occupied.
    DeleteFirst,
    /// `seL4_RevokeFirst`: the capability has children (or the object is in use) and must be
    /// revoked first.
    RevokeFirst,
    /// `seL4_NotEnoughMemory`: the untyped region has only `available` bytes left.
    NotEnoughMemory {
        /// Bytes left in the untyped region.
        available: seL4_Word,
    },
    /// An error code this crate does not know.
    Unknown(seL4_Word),
}

/// Why a capability lookup failed (`seL4_LookupFailureType` and its details).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LookupFailure {
    /// `seL4_InvalidRoot`: the CNode to start from is not a CNode.
    InvalidRoot,
    /// `seL4_MissingCapability`: an empty slot, or the wrong type, with `bits_left` unresolved.
    MissingCapability {
        /// Address bits left to resolve.
        bits_left: seL4_Word,
    },
    /// `seL4_DepthMismatch`: the depth given does not end at a slot.
    DepthMismatch {
        /// Address bits left to resolve.
        bits_left: seL4_Word,
        /// Bits the CNode at that point would have resolved.
        bits_found: seL4_Word,
    },
    /// `seL4_GuardMismatch`: the address does not match a CNode's guard.
    GuardMismatch {
        /// Address bits left to resolve.
        bits_left: seL4_Word,
        /// The CNode's guard.
        guard_found: seL4_Word,
        /// The guard's size in bits.
        bits_found: seL4_Word,
    },
    /// A lookup-failure type this crate does not know (`seL4_NoFailure` included).
    Unknown(seL4_Word),
}

/// `core::result::Result` with [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

impl LookupFailure {
    /// Decodes a lookup failure from `mrs`, which start at the failure-type word.
    pub fn decode(mrs: &[seL4_Word]) -> LookupFailure {
        let mr = |i: usize| mrs.get(i).copied().unwrap_or(0);
        match mr(0) {
            sys::seL4_InvalidRoot => LookupFailure::InvalidRoot,
            sys::seL4_MissingCapability => LookupFailure::MissingCapability { bits_left: mr(1) },
            sys::seL4_DepthMismatch => LookupFailure::DepthMismatch {
                bits_left: mr(1),
                bits_found: mr(2),
            },
            sys::seL4_GuardMismatch => LookupFailure::GuardMismatch {
                bits_left: mr(1),
                guard_found: mr(2),
                bits_found: mr(3),
            },
            other => LookupFailure::Unknown(other),
        }
    }
}

impl Error {
    /// Decodes the reply to an invocation: `None` for `seL4_NoError`, otherwise the error with
    /// its details from the reply's message registers `mrs` (missing words read as 0).
    pub fn decode(code: seL4_Word, mrs: &[seL4_Word]) -> Option<Error> {
        let mr = |i: usize| mrs.get(i).copied().unwrap_or(0);
        Some(match code {
            sys::seL4_NoError => return None,
            sys::seL4_InvalidArgument => Error::InvalidArgument { index: mr(0) },
            sys::seL4_InvalidCapability => Error::InvalidCapability { index: mr(0) },
            sys::seL4_IllegalOperation => Error::IllegalOperation,
            sys::seL4_RangeError => Error::RangeError {
                min: mr(0),
                max: mr(1),
            },
            sys::seL4_AlignmentError => Error::AlignmentError,
            sys::seL4_FailedLookup => Error::FailedLookup {
                source: mr(0) != 0,
                failure: LookupFailure::decode(mrs.get(1..).unwrap_or(&[])),
            },
            sys::seL4_TruncatedMessage => Error::TruncatedMessage,
            sys::seL4_DeleteFirst => Error::DeleteFirst,
            sys::seL4_RevokeFirst => Error::RevokeFirst,
            sys::seL4_NotEnoughMemory => Error::NotEnoughMemory { available: mr(0) },
            other => Error::Unknown(other),
        })
    }

    /// The kernel's error code (`seL4_Error`).
    pub fn code(self) -> seL4_Word {
        match self {
            Error::InvalidArgument { .. } => sys::seL4_InvalidArgument,
            Error::InvalidCapability { .. } => sys::seL4_InvalidCapability,
            Error::IllegalOperation => sys::seL4_IllegalOperation,
            Error::RangeError { .. } => sys::seL4_RangeError,
            Error::AlignmentError => sys::seL4_AlignmentError,
            Error::FailedLookup { .. } => sys::seL4_FailedLookup,
            Error::TruncatedMessage => sys::seL4_TruncatedMessage,
            Error::DeleteFirst => sys::seL4_DeleteFirst,
            Error::RevokeFirst => sys::seL4_RevokeFirst,
            Error::NotEnoughMemory { .. } => sys::seL4_NotEnoughMemory,
            Error::Unknown(code) => code,
        }
    }
}

impl fmt::Display for LookupFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupFailure::InvalidRoot => write!(f, "the root is not a CNode"),
            LookupFailure::MissingCapability { bits_left } => {
                write!(f, "missing capability with {bits_left} bits left to resolve")
            }
            LookupFailure::DepthMismatch {
                bits_left,
                bits_found,
            } => {
                write!(
                    f,
                    "depth mismatch: {bits_left} bits left, the CNode resolves {bits_found}"
                )
            }
            LookupFailure::GuardMismatch {
                bits_left,
                guard_found,
                bits_found,
            } => write!(
                f,
                "guard mismatch: {bits_left} bits left, guard {guard_found:#x} of {bits_found} bits"
            ),
            LookupFailure::Unknown(t) => write!(f, "lookup failure of unknown type {t}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument { index } => write!(f, "invalid argument {index}"),
            Error::InvalidCapability { index } => write!(f, "invalid capability argument {index}"),
            Error::IllegalOperation => write!(f, "illegal operation"),
            Error::RangeError { min, max } => write!(f, "argument out of range {min:#x}..={max:#x}"),
            Error::AlignmentError => write!(f, "alignment error"),
            Error::FailedLookup { source, failure } => {
                let which = if *source { "source" } else { "destination" };
                write!(f, "{which} capability lookup failed: {failure}")
            }
            Error::TruncatedMessage => write!(f, "truncated message"),
            Error::DeleteFirst => write!(f, "destination slot is occupied (delete first)"),
            Error::RevokeFirst => write!(f, "capability must be revoked first"),
            Error::NotEnoughMemory { available } => write!(f, "not enough memory ({available} bytes left)"),
            Error::Unknown(code) => write!(f, "unknown seL4 error {code}"),
        }
    }
}

impl core::error::Error for Error {}
