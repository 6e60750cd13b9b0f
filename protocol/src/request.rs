//! The request endpoint: [`Request`] (client → VMM server) and [`Response`] (VMM server →
//! client).
//!
//! Every request gets exactly one response: the one named in the request's documentation,
//! or [`Response::Error`]. The server checks each request against the rights of the
//! caller's badge; a request addresses the VCPU that the endpoint (or badge) names.

use core::fmt;

use heapless::Vec;
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::block::batch_max_size;
use crate::common::{ControlId, EventRequest, ExitClass, FieldValue, GeneralRegisters, GprSet};

/// Most fields in one read or write batch, and so values in one [`Response::Values`] or
/// [`Response::Written`].
pub const MAX_FIELDS: usize = 32;

/// Most entries in one [`DumpPage`].
pub const DUMP_PAGE_ENTRIES: usize = 32;

/// A message from a client to the VMM server.
#[allow(
    clippy::large_enum_variant,
    reason = "no allocation: batches are inline and fixed-capacity"
)]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash)]
pub enum Request {
    /// Announce the client's protocol version. Response: [`Response::Hello`] with the
    /// server's, or [`ErrorCode::VersionMismatch`].
    Hello {
        /// The client's [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).
        version: u16,
    },
    /// Read VMCS fields, by encoding. Response: [`Response::Values`], one per field, in order;
    /// or an error naming the first field that failed (nothing is returned then).
    ReadFields(#[serde(with = "crate::block::batch")] Vec<u32, MAX_FIELDS>),
    /// Write VMCS fields, in order. Response: [`Response::Written`], the value the kernel
    /// actually wrote for each (it masks controls and CR0/CR4); or an error naming the first
    /// field that failed (the server checks rights and encodings before writing any; a
    /// kernel error leaves the earlier fields written).
    WriteFields(#[serde(with = "crate::block::batch")] Vec<FieldValue, MAX_FIELDS>),
    /// Change a control word: `new = (old | set) & !clear`, then masked by the kernel.
    /// Response: [`Response::Written`] with one value, the control word now in force.
    SetControl {
        /// Which control word.
        control: ControlId,
        /// Bits to set.
        set: u64,
        /// Bits to clear (must not overlap `set`).
        clear: u64,
    },
    /// Inject an event at the next VM entry. Response: [`Response::Ok`].
    Inject(EventRequest),
    /// Read the general registers (as of the last exit). Response: [`Response::Registers`].
    ReadRegisters,
    /// Write the registers named in `mask`. Response: [`Response::Ok`].
    WriteRegisters {
        /// New values (only those in `mask` count).
        registers: GeneralRegisters,
        /// Which registers to write.
        mask: GprSet,
    },
    /// Queue an external interrupt; the server injects it when the guest can take it
    /// (asynchronous, typically from the device model). Response: [`Response::Ok`], or
    /// [`ErrorCode::Busy`] when the queue is full.
    RaiseInterrupt {
        /// The vector (32–255).
        vector: u8,
    },
    /// Start or resume the guest. Response: [`Response::Ok`].
    Run,
    /// Stop entering the guest after the current exit. Response: [`Response::Ok`].
    Pause,
    /// Read the server's counters. Response: [`Response::Statistics`].
    Statistics,
    /// Read one page of a full VMCS dump (every field the kernel lets the caller read, in
    /// catalogue order), starting at entry `start`. Response: [`Response::Dump`].
    Dump {
        /// Index of the first entry (0, then the previous page's `next`).
        start: u16,
    },
}

/// A message from the VMM server to a client: the answer to one [`Request`].
#[allow(
    clippy::large_enum_variant,
    reason = "no allocation: batches are inline and fixed-capacity"
)]
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash)]
pub enum Response {
    /// Answer to [`Request::Hello`].
    Hello {
        /// The server's [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).
        version: u16,
    },
    /// Answer to [`Request::ReadFields`]: one value per field, in order.
    Values(#[serde(with = "crate::block::batch")] Vec<u64, MAX_FIELDS>),
    /// Answer to [`Request::WriteFields`] and [`Request::SetControl`]: the values the kernel
    /// actually wrote, in order.
    Written(#[serde(with = "crate::block::batch")] Vec<u64, MAX_FIELDS>),
    /// The request was carried out.
    Ok,
    /// Answer to [`Request::ReadRegisters`].
    Registers(GeneralRegisters),
    /// Answer to [`Request::Statistics`].
    Statistics(Statistics),
    /// Answer to [`Request::Dump`].
    Dump(DumpPage),
    /// The request failed.
    Error(ErrorReport),
}

/// Request's largest encoding: the variant index, then the largest variant. Written out
/// because the batch variants' byte-string form is not what postcard's derive would compute
/// from their types; `tests/strictness.rs` checks it against real worst cases.
impl MaxSize for Request {
    const POSTCARD_MAX_SIZE: usize = crate::wire::varint_len(11)
        + max_of(&[
            u16::POSTCARD_MAX_SIZE,                                          // Hello
            batch_max_size::<u32>(MAX_FIELDS),                               // ReadFields
            batch_max_size::<FieldValue>(MAX_FIELDS),                        // WriteFields
            ControlId::POSTCARD_MAX_SIZE + 2 * u64::POSTCARD_MAX_SIZE,       // SetControl
            EventRequest::POSTCARD_MAX_SIZE,                                 // Inject
            0,                                                               // ReadRegisters
            GeneralRegisters::POSTCARD_MAX_SIZE + GprSet::POSTCARD_MAX_SIZE, // WriteRegisters
            u8::POSTCARD_MAX_SIZE,                                           // RaiseInterrupt
            0,                                                               // Run, Pause, Statistics
            u16::POSTCARD_MAX_SIZE,                                          // Dump
        ]);
}

/// Response's largest encoding (see [`Request`]'s).
impl MaxSize for Response {
    const POSTCARD_MAX_SIZE: usize = crate::wire::varint_len(7)
        + max_of(&[
            u16::POSTCARD_MAX_SIZE,              // Hello
            batch_max_size::<u64>(MAX_FIELDS),   // Values, Written
            0,                                   // Ok
            GeneralRegisters::POSTCARD_MAX_SIZE, // Registers
            Statistics::POSTCARD_MAX_SIZE,       // Statistics
            DumpPage::POSTCARD_MAX_SIZE,         // Dump
            ErrorReport::POSTCARD_MAX_SIZE,      // Error
        ]);
}

impl MaxSize for DumpPage {
    const POSTCARD_MAX_SIZE: usize =
        batch_max_size::<FieldValue>(DUMP_PAGE_ENTRIES) + <Option<u16>>::POSTCARD_MAX_SIZE;
}

/// The largest of `sizes`.
const fn max_of(sizes: &[usize]) -> usize {
    let mut max = 0;
    let mut i = 0;
    while i < sizes.len() {
        if sizes[i] > max {
            max = sizes[i];
        }
        i += 1;
    }
    max
}

/// One page of a VMCS dump.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash)]
pub struct DumpPage {
    /// Fields and their values.
    #[serde(with = "crate::block::batch")]
    pub entries: Vec<FieldValue, DUMP_PAGE_ENTRIES>,
    /// The `start` of the next page, or `None` after the last.
    pub next: Option<u16>,
}

/// The VMM server's counters, since it started.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Statistics {
    /// VM exits handled.
    pub exits: u64,
    /// VM exits per class, indexed by [`ExitClass::index`].
    pub exits_by_class: [u64; ExitClass::COUNT],
    /// Kernel invocations (ReadVMCS, WriteVMCS, WriteRegisters, VMEnter, ...), in total.
    pub kernel_invocations: u64,
    /// Kernel invocations made while handling exits, per class of the exit handled.
    pub kernel_invocations_by_class: [u64; ExitClass::COUNT],
    /// Requests received (including refused and malformed ones).
    pub requests: u64,
    /// Requests refused with [`ErrorCode::Forbidden`].
    pub forbidden: u64,
    /// Requests and replies that did not decode.
    pub malformed: u64,
    /// Requests answered with any other error.
    pub failed: u64,
    /// Exit replies rejected.
    pub replies_rejected: u64,
    /// Interrupts raised (by request or reply action).
    pub interrupts_raised: u64,
    /// Events injected at VM entry.
    pub events_injected: u64,
}

/// A failure: what went wrong, and for a batch which item.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorReport {
    /// What went wrong.
    pub code: ErrorCode,
    /// The index of the offending item: a field of a read or write batch, an action of an
    /// exit reply. `None` when the failure concerns the message as a whole.
    pub index: Option<u16>,
}

impl ErrorReport {
    /// A failure of the whole message.
    pub const fn new(code: ErrorCode) -> ErrorReport {
        ErrorReport { code, index: None }
    }

    /// A failure of item `index` of a batch.
    pub const fn at(code: ErrorCode, index: u16) -> ErrorReport {
        ErrorReport {
            code,
            index: Some(index),
        }
    }
}

impl fmt::Display for ErrorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(index) => write!(f, "item {index}: {}", self.code),
            None => write!(f, "{}", self.code),
        }
    }
}

/// Why the VMM server refused or failed a request or an exit reply.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The message did not decode (see [`WireError`](crate::WireError)).
    Malformed,
    /// The client speaks another protocol version than the server.
    VersionMismatch {
        /// The server's version.
        server: u16,
    },
    /// The server or the processor does not support this (e.g. tertiary controls on a
    /// processor without them).
    Unsupported,
    /// The caller's badge does not have the right to do this.
    Forbidden,
    /// Not the encoding of any VMCS field.
    UnknownField,
    /// A VMCS field the kernel gives no access to (e.g. the exit reason, host state).
    Inaccessible,
    /// The field can be read but not written.
    ReadOnly,
    /// The field can be written but not read (seL4: the VM-entry exception error code).
    WriteOnly,
    /// An invalid control change (`set` and `clear` overlap, or bits beyond the control's
    /// width).
    InvalidControl,
    /// An event that cannot be injected as given (e.g. an NMI with a vector other than 2, an
    /// external interrupt below 32, a software event without an instruction length).
    InvalidEvent,
    /// An event is already waiting for the next VM entry.
    EventPending,
    /// An exit-reply action that does not fit the exit it answers (completing an IN for an
    /// OUT exit, an MMIO read for a write).
    InvalidAction,
    /// An exit reply whose `seq` is not that of the outstanding record.
    SequenceMismatch,
    /// The request needs the guest paused.
    NotPaused,
    /// The guest has stopped for good; only reads and statistics are answered.
    Stopped,
    /// A bounded resource is full (the pending-interrupt queue): retry later.
    Busy,
    /// A kernel invocation failed with this seL4 error number.
    Kernel(u32),
    /// VMREAD/VMWRITE (or the kernel doing it) failed with this VM-instruction error number
    /// (SDM Vol. 3C, Section 31.4, Table 31-1).
    Vmcs(u32),
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Malformed => f.write_str("malformed message"),
            ErrorCode::VersionMismatch { server } => {
                write!(f, "protocol version mismatch (server speaks {server})")
            }
            ErrorCode::Unsupported => f.write_str("not supported"),
            ErrorCode::Forbidden => f.write_str("forbidden for this badge"),
            ErrorCode::UnknownField => f.write_str("unknown VMCS field"),
            ErrorCode::Inaccessible => f.write_str("VMCS field not accessible"),
            ErrorCode::ReadOnly => f.write_str("VMCS field is read-only"),
            ErrorCode::WriteOnly => f.write_str("VMCS field is write-only"),
            ErrorCode::InvalidControl => f.write_str("invalid control change"),
            ErrorCode::InvalidEvent => f.write_str("invalid event"),
            ErrorCode::EventPending => f.write_str("an event is already pending"),
            ErrorCode::InvalidAction => f.write_str("action does not fit the exit"),
            ErrorCode::SequenceMismatch => f.write_str("reply does not answer the outstanding exit record"),
            ErrorCode::NotPaused => f.write_str("guest is not paused"),
            ErrorCode::Stopped => f.write_str("guest has stopped"),
            ErrorCode::Busy => f.write_str("busy, retry later"),
            ErrorCode::Kernel(n) => write!(f, "kernel error {n}"),
            ErrorCode::Vmcs(n) => write!(f, "VM-instruction error {n}"),
        }
    }
}
