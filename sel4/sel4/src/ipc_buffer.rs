//! The calling thread's IPC buffer: message registers, extra capabilities, the receive slot, a
//! byte-payload encoding, and the one registered buffer every invocation goes through.

use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use sel4_sys::{MSG_MAX_EXTRA_CAPS, MSG_MAX_LENGTH, seL4_Error, seL4_IPCBuffer, seL4_Word};

use crate::{CNode, Error, MessageInfo, Result};

/// Largest byte payload [`IpcBuffer::write_bytes`] accepts: every message register but the first
/// (which holds the length) carries 8 bytes.
pub const MAX_PAYLOAD_BYTES: usize = 8 * (MSG_MAX_LENGTH - 1);

/// An IPC buffer (`seL4_IPCBuffer`), 1024 bytes aligned to 1024.
#[repr(transparent)]
#[derive(Clone, PartialEq, Eq)]
pub struct IpcBuffer(seL4_IPCBuffer);

/// Why a byte payload could not be written or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadError {
    /// The payload has `len` bytes; at most `max` fit in a message.
    TooLong {
        /// Bytes of the payload.
        len: usize,
        /// [`MAX_PAYLOAD_BYTES`].
        max: usize,
    },
    /// The message announces `len` bytes but has only `words` message registers, fewer than the
    /// `1 + ceil(len / 8)` the payload needs.
    Truncated {
        /// Bytes announced in message register 0.
        len: usize,
        /// Message registers in the message.
        words: usize,
    },
    /// The payload has `len` bytes but the destination holds only `capacity`.
    BufferTooSmall {
        /// Bytes of the payload.
        len: usize,
        /// Bytes the destination holds.
        capacity: usize,
    },
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::TooLong { len, max } => {
                write!(f, "payload of {len} bytes exceeds the {max} that fit")
            }
            PayloadError::Truncated { len, words } => {
                write!(
                    f,
                    "message of {words} words is too short for its {len}-byte payload"
                )
            }
            PayloadError::BufferTooSmall { len, capacity } => {
                write!(
                    f,
                    "payload of {len} bytes does not fit the {capacity}-byte buffer"
                )
            }
        }
    }
}

impl core::error::Error for PayloadError {}

impl IpcBuffer {
    /// An all-zero buffer (for buffers the program registers itself with
    /// [`Tcb::configure`](crate::Tcb) and for tests).
    pub const fn new() -> Self {
        Self(seL4_IPCBuffer::zeroed())
    }

    /// The buffer at `ptr` (for the initial thread: [`BootInfo::ipc_buffer`](crate::BootInfo)).
    ///
    /// # Safety
    ///
    /// `ptr` must point to a mapped, writable `seL4_IPCBuffer` that nothing else accesses while
    /// the returned reference lives (the kernel's own accesses during this thread's system calls
    /// aside).
    pub unsafe fn from_ptr<'a>(ptr: *mut seL4_IPCBuffer) -> &'a mut IpcBuffer {
        // SAFETY: IpcBuffer is a transparent wrapper; the caller guarantees validity and
        // exclusivity.
        unsafe { &mut *ptr.cast::<IpcBuffer>() }
    }

    /// The raw bindings' buffer, for the generated invocation stubs of [`sel4_sys`].
    pub fn raw(&self) -> &seL4_IPCBuffer {
        &self.0
    }

    /// The raw bindings' buffer, mutably.
    pub fn raw_mut(&mut self) -> &mut seL4_IPCBuffer {
        &mut self.0
    }

    /// All message registers. The system calls of this crate pass registers 0-3 in CPU registers
    /// and copy them to and from here, so that a message reads the same whatever its length.
    pub fn msg_regs(&self) -> &[seL4_Word; MSG_MAX_LENGTH] {
        &self.0.msg
    }

    /// All message registers, mutably.
    pub fn msg_regs_mut(&mut self) -> &mut [seL4_Word; MSG_MAX_LENGTH] {
        &mut self.0.msg
    }

    /// The extra-capability slots: capability addresses to send, or, after receiving, the badges
    /// of capabilities that were unwrapped (see [`MessageInfo::caps_unwrapped`]).
    pub fn caps_or_badges(&self) -> &[seL4_Word; MSG_MAX_EXTRA_CAPS] {
        &self.0.caps_or_badges
    }

    /// The extra-capability slots, mutably.
    pub fn caps_or_badges_mut(&mut self) -> &mut [seL4_Word; MSG_MAX_EXTRA_CAPS] {
        &mut self.0.caps_or_badges
    }

    /// Sets where a received capability is placed: the slot `index`, resolved to `depth` bits in
    /// the CSpace whose root is `root`.
    pub fn set_receive_slot(&mut self, root: CNode, index: seL4_Word, depth: u8) {
        self.0.receiveCNode = root.bits();
        self.0.receiveIndex = index;
        self.0.receiveDepth = seL4_Word::from(depth);
    }

    /// The receive slot: root, index and depth.
    pub fn receive_slot(&self) -> (CNode, seL4_Word, seL4_Word) {
        (
            CNode::from_bits(self.0.receiveCNode),
            self.0.receiveIndex,
            self.0.receiveDepth,
        )
    }

    /// Writes `bytes` as a payload: message register 0 holds the length in bytes, the following
    /// registers the bytes, eight per register, little-endian (the last one zero-padded).
    /// Returns the message length in registers, for the [`MessageInfo`].
    pub fn write_bytes(&mut self, bytes: &[u8]) -> core::result::Result<seL4_Word, PayloadError> {
        if bytes.len() > MAX_PAYLOAD_BYTES {
            return Err(PayloadError::TooLong {
                len: bytes.len(),
                max: MAX_PAYLOAD_BYTES,
            });
        }
        let [len_word, data @ ..] = &mut self.0.msg;
        *len_word = bytes.len() as seL4_Word;
        for (chunk, word) in bytes.chunks(8).zip(data.iter_mut()) {
            let mut le = [0u8; 8];
            for (dst, src) in le.iter_mut().zip(chunk) {
                *dst = *src;
            }
            *word = seL4_Word::from_le_bytes(le);
        }
        Ok(1 + bytes.len().div_ceil(8) as seL4_Word)
    }

    /// Reads a payload written by [`write_bytes`](Self::write_bytes) from a message described by
    /// `info` into `out`; returns its length in bytes.
    pub fn read_bytes(&self, info: MessageInfo, out: &mut [u8]) -> core::result::Result<usize, PayloadError> {
        let words = (info.length() as usize).min(MSG_MAX_LENGTH);
        let [len_word, data @ ..] = &self.0.msg;
        if words == 0 {
            return Err(PayloadError::Truncated { len: 0, words });
        }
        let len = usize::try_from(*len_word).unwrap_or(usize::MAX);
        if len > MAX_PAYLOAD_BYTES {
            return Err(PayloadError::TooLong {
                len,
                max: MAX_PAYLOAD_BYTES,
            });
        }
        if 1 + len.div_ceil(8) > words {
            return Err(PayloadError::Truncated { len, words });
        }
        let capacity = out.len();
        let dest = out
            .get_mut(..len)
            .ok_or(PayloadError::BufferTooSmall { len, capacity })?;
        for (chunk, word) in dest.chunks_mut(8).zip(data.iter()) {
            for (dst, src) in chunk.iter_mut().zip(word.to_le_bytes()) {
                *dst = src;
            }
        }
        Ok(len)
    }
}

impl Default for IpcBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for IpcBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpcBuffer")
            .field("msg[..8]", &&self.0.msg[..8])
            .field("caps_or_badges", &self.0.caps_or_badges)
            .field(
                "receive",
                &(self.0.receiveCNode, self.0.receiveIndex, self.0.receiveDepth),
            )
            .finish_non_exhaustive()
    }
}

static BUFFER: AtomicPtr<IpcBuffer> = AtomicPtr::new(ptr::null_mut());
static IN_USE: AtomicBool = AtomicBool::new(false);

/// Registers `buffer` as the IPC buffer every invocation of this crate uses.
///
/// # Safety
///
/// `buffer` must be the IPC buffer the kernel has registered for the calling thread (the initial
/// thread's is at [`BootInfo::ipc_buffer`](crate::BootInfo); others are set with
/// `Tcb::configure` or `Tcb::set_ipc_buffer`), and only that thread may use this crate: the
/// kernel reads and writes that memory during system calls.
pub unsafe fn set_ipc_buffer(buffer: &'static mut IpcBuffer) {
    BUFFER.store(buffer, Ordering::Release);
}

/// Runs `f` on the registered IPC buffer. Every invocation and message system call of this
/// crate borrows the buffer the same way, so prepare a message in one call, send it, and read
/// the reply in another:
///
/// ```no_run
/// # fn demo(endpoint: sel4::Endpoint, request: &[u8], response: &mut [u8]) -> Result<(), sel4::PayloadError> {
/// const LABEL: u64 = 1;
/// let words = sel4::with_ipc_buffer(|b| b.write_bytes(request))?;
/// let reply = endpoint.call(sel4::MessageInfo::with_label(LABEL, words));
/// let len = sel4::with_ipc_buffer(|b| b.read_bytes(reply, response))?;
/// # let _ = len;
/// # Ok(())
/// # }
/// ```
///
/// # Panics
///
/// If no buffer was registered with [`set_ipc_buffer`], or when called from inside `f` (the
/// buffer is lent to one user at a time).
pub fn with_ipc_buffer<R>(f: impl FnOnce(&mut IpcBuffer) -> R) -> R {
    struct Lent;
    impl Drop for Lent {
        fn drop(&mut self) {
            IN_USE.store(false, Ordering::Release);
        }
    }
    let buffer = BUFFER.load(Ordering::Acquire);
    assert!(
        !buffer.is_null(),
        "sel4: no IPC buffer registered (call sel4::set_ipc_buffer first)"
    );
    assert!(
        !IN_USE.swap(true, Ordering::Acquire),
        "sel4: the IPC buffer is already in use (nested with_ipc_buffer)"
    );
    let _lent = Lent;
    // SAFETY: `buffer` came from the `&'static mut` given to `set_ipc_buffer`; IN_USE makes this
    // the only reference made from it until `_lent` is dropped.
    f(unsafe { &mut *buffer })
}

/// Runs an invocation stub on the registered buffer and decodes its error code; on success
/// returns what `f` returned besides the code.
pub(crate) fn invoke<T>(f: impl FnOnce(&mut seL4_IPCBuffer) -> (seL4_Error, T)) -> Result<T> {
    with_ipc_buffer(|buffer| {
        let (code, value) = f(&mut buffer.0);
        match Error::decode(code, &buffer.0.msg) {
            None => Ok(value),
            Some(error) => Err(error),
        }
    })
}

/// [`invoke`] for stubs that return only the error code.
pub(crate) fn invoke_unit(f: impl FnOnce(&mut seL4_IPCBuffer) -> seL4_Error) -> Result<()> {
    invoke(|buffer| (f(buffer), ()))
}
