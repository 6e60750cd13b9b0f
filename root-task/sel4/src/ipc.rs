//! Postcard messages over seL4 IPC: one message per IPC, its bytes packed into the message
//! registers (see `sel4`'s byte payload), and the exit link the VMM server runs over.

use sel4::{Endpoint, MessageInfo, PayloadError};
use vmm_protocol::{MAX_MESSAGE_SIZE, Request, Response};
use vmm_server::server::{ExitLink, LinkError};

/// Label of a message that carries postcard bytes (any non-zero label would do; 0 is what a
/// bound notification arrives with).
pub const BYTES_LABEL: u64 = 0xB7;

/// Why a message could not be sent or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpcError {
    /// The payload is larger than the message registers hold, or the buffer given.
    TooLong,
    /// The message does not carry a byte payload (wrong label or length word).
    Malformed,
}

fn payload(bytes: &[u8]) -> Result<MessageInfo, IpcError> {
    let words = sel4::with_ipc_buffer(|buffer| buffer.write_bytes(bytes)).map_err(|_| IpcError::TooLong)?;
    Ok(MessageInfo::new(BYTES_LABEL, 0, 0, words))
}

/// Reads the byte payload of the message `info` describes into `buf`.
///
/// # Errors
/// Not a byte payload, or larger than `buf`.
pub fn read_payload(info: MessageInfo, buf: &mut [u8]) -> Result<usize, IpcError> {
    if info.label() != BYTES_LABEL {
        return Err(IpcError::Malformed);
    }
    sel4::with_ipc_buffer(|buffer| buffer.read_bytes(info, buf)).map_err(|e| match e {
        PayloadError::TooLong { .. } | PayloadError::BufferTooSmall { .. } => IpcError::TooLong,
        PayloadError::Truncated { .. } => IpcError::Malformed,
    })
}

/// `seL4_Call` with `bytes`; the reply's bytes land in `reply`.
///
/// # Errors
/// See [`IpcError`].
pub fn call(endpoint: Endpoint, bytes: &[u8], reply: &mut [u8]) -> Result<usize, IpcError> {
    let answer = endpoint.call(payload(bytes)?);
    read_payload(answer, reply)
}

/// `seL4_Send` with `bytes`.
///
/// # Errors
/// The payload is too long.
pub fn send(endpoint: Endpoint, bytes: &[u8]) -> Result<(), IpcError> {
    endpoint.send(payload(bytes)?);
    Ok(())
}

/// `seL4_Reply` with `bytes`, to the caller of the last `Recv`.
///
/// # Errors
/// The payload is too long.
pub fn reply(bytes: &[u8]) -> Result<(), IpcError> {
    sel4::reply(payload(bytes)?);
    Ok(())
}

/// Sends `request` to the VMM server's `endpoint` and decodes its response.
///
/// # Errors
/// The message could not be sent, or the response does not decode ([`IpcError::Malformed`]).
pub fn request(endpoint: Endpoint, request: &Request) -> Result<Response, IpcError> {
    let mut out = [0u8; MAX_MESSAGE_SIZE];
    let mut back = [0u8; MAX_MESSAGE_SIZE];
    // Every request fits MAX_MESSAGE_SIZE (the protocol checks it at compile time).
    let bytes = request.encode(&mut out).map_err(|_| IpcError::TooLong)?;
    let len = call(endpoint, bytes, &mut back)?;
    Response::decode(&back[..len]).map_err(|_| IpcError::Malformed)
}

/// The exit link over an endpoint of the device model: one `seL4_Call` per exit record.
#[derive(Debug)]
pub struct EndpointLink {
    endpoint: Endpoint,
    /// Records sent.
    pub records: u64,
    /// Replies received (whether or not they decode).
    pub replies: u64,
}

impl EndpointLink {
    /// A link over `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            records: 0,
            replies: 0,
        }
    }
}

impl ExitLink for EndpointLink {
    fn call(&mut self, record: &[u8], reply: &mut [u8]) -> Result<usize, LinkError> {
        self.records += 1;
        // A reply that is not a byte payload is handed on empty: the server counts it as
        // malformed and re-sends the record marked rejected.
        let len = call(self.endpoint, record, reply).unwrap_or(0);
        self.replies += 1;
        Ok(len)
    }
}
