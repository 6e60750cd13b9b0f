//! The exit link's shared-memory mailbox: records and replies cross between the VMM server and
//! the device model without a system call while both are busy.
//!
//! The composer creates one region (a sealed `memfd`, [`Region::create`]) and gives it to both
//! components; each maps it shared ([`Region::map`]). It holds two single-slot boxes, each with
//! one writer: the record box (VMM server → device model) and the reply box (device model →
//! VMM server). A box is a published sequence number, the number of the message being written
//! (a seqlock: a reader detects a message overwritten while it copied it), a length, the
//! waiter's `sleeping` flag and [`MAX_MESSAGE_SIZE`] bytes.
//!
//! Everything in the region is an atomic: the peer is another process that may write any of it
//! at any time, buggy or malicious, so no plain Rust reference to its bytes can exist, and a
//! length read from it is checked before use (a bad one is a malformed message).
//!
//! A waiter spins on the sequence number for up to [`POLL_BEFORE_BLOCKING`], then blocks in a
//! read of the exit link's socket, which now carries only 1-byte wake-ups and the liveness of
//! the peer (end of stream: the peer is gone). Why no wake-up is lost:
//!
//! - the waiter stores `sleeping = 1`, then loads the sequence number, and blocks only if the
//!   message is not there; the publisher stores the sequence number, then swaps `sleeping` to
//!   0 and sends a byte if it was 1. All four accesses are `SeqCst`, so they fall in one total
//!   order: either the waiter's load comes after the publisher's store (it sees the message and
//!   does not block) or the publisher's swap comes after the waiter's store (it sees 1 and sends
//!   the byte, which the blocked read returns). Both may happen: then a byte is left over.
//! - Left-over bytes only cause a spurious wake-up: the waiter looks at the sequence number
//!   again after every wake-up. It drains all bytes after waking, before it sets `sleeping`
//!   again, so it never swallows the byte meant for its next sleep. A full socket queue means a
//!   wake-up is already waiting, so the publisher does not block on it.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv, send};
use vmm_protocol::MAX_MESSAGE_SIZE;

use super::shared_memory::{AtomicLayout, Mapping};

/// How long a waiter spins on a box before it blocks. A blocked reader is woken through the
/// scheduler, which on a virtual machine with idle cores costs tens of microseconds (the core
/// must be woken first); an exit round trip takes a few. Spinning briefly keeps both
/// components on their cores while the guest is busy.
pub const POLL_BEFORE_BLOCKING: Duration = Duration::from_micros(500);

/// 8-byte words of a box's message.
const WORDS: usize = MAX_MESSAGE_SIZE.div_ceil(8);

/// One single-slot box. Aligned so that the two boxes share no cache line.
#[repr(C, align(128))]
#[derive(Debug)]
struct MessageBox {
    /// The sequence number of the complete message in the box (0: none yet).
    published: AtomicU64,
    /// The sequence number of the message being written: differs from `published` while a
    /// writer overwrites the box.
    writing: AtomicU64,
    /// The message's length in bytes, as the writer claims it.
    len: AtomicU32,
    /// Non-zero while the waiter is (about to be) blocked on the socket.
    sleeping: AtomicU32,
    /// The message, little-endian in 8-byte words (atomics: the writer is another process).
    words: [AtomicU64; WORDS],
}

/// The region's layout.
#[repr(C)]
#[derive(Debug)]
pub struct Shared {
    /// VMM server → device model.
    record: MessageBox,
    /// Device model → VMM server.
    reply: MessageBox,
}

/// A message copied out of a box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The box's sequence number of the message.
    pub seq: u64,
    /// Its length (the bytes are at the start of the caller's buffer).
    pub len: usize,
}

/// What can go wrong on a mailbox.
#[derive(Debug)]
pub enum MailboxError {
    /// A message longer than a box holds was to be published.
    TooLong(usize),
    /// The box's message `seq` claims a length that is no message's (over
    /// [`MAX_MESSAGE_SIZE`] or the reader's buffer): malformed.
    BadLength {
        /// The box's sequence number.
        seq: u64,
        /// The length it claimed.
        len: u32,
    },
    /// The peer closed its end of the socket: it is gone.
    Closed,
    /// Nothing came within the time allowed.
    Timeout,
    /// The socket failed otherwise.
    Io(io::Error),
}

impl std::fmt::Display for MailboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong(len) => write!(f, "a {len}-byte message does not fit a box"),
            Self::BadLength { seq, len } => write!(f, "message {seq} claims {len} bytes"),
            Self::Closed => f.write_str("the peer is gone"),
            Self::Timeout => f.write_str("no message in time"),
            Self::Io(e) => write!(f, "wake-up socket: {e}"),
        }
    }
}

impl std::error::Error for MailboxError {}

impl MessageBox {
    /// Writes `message` as number `seq` and publishes it; `true` if the waiter sleeps and must
    /// be woken.
    fn publish(&self, seq: u64, message: &[u8]) -> Result<bool, MailboxError> {
        let len = u32::try_from(message.len())
            .ok()
            .filter(|_| message.len() <= MAX_MESSAGE_SIZE)
            .ok_or(MailboxError::TooLong(message.len()))?;
        self.writing.store(seq, Ordering::Relaxed);
        // Pairs with the reader's acquire fence: a reader that sees any word below sees
        // `writing == seq` after it, and knows its copy may be torn.
        fence(Ordering::Release);
        for (word, chunk) in self.words.iter().zip(message.chunks(8)) {
            let mut bytes = [0u8; 8];
            if let Some(head) = bytes.get_mut(..chunk.len()) {
                head.copy_from_slice(chunk);
            }
            word.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        self.len.store(len, Ordering::Relaxed);
        // A release store (and SeqCst for the wake-up argument in the module's documentation).
        self.published.store(seq, Ordering::SeqCst);
        Ok(self.sleeping.swap(0, Ordering::SeqCst) != 0)
    }

    /// The sequence number of the published message.
    fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// Copies the published message into `dest`; `Ok(None)` if it was overwritten meanwhile
    /// (look again).
    fn read(&self, dest: &mut [u8]) -> Result<Option<Received>, MailboxError> {
        let seq = self.published.load(Ordering::Acquire);
        let claimed = self.len.load(Ordering::Relaxed);
        let bad = MailboxError::BadLength { seq, len: claimed };
        let len = usize::try_from(claimed)
            .ok()
            .filter(|&len| len <= MAX_MESSAGE_SIZE)
            .ok_or(bad)?;
        let target = dest
            .get_mut(..len)
            .ok_or(MailboxError::BadLength { seq, len: claimed })?;
        for (word, chunk) in self.words.iter().zip(target.chunks_mut(8)) {
            let bytes = word.load(Ordering::Relaxed).to_le_bytes();
            if let Some(head) = bytes.get(..chunk.len()) {
                chunk.copy_from_slice(head);
            }
        }
        fence(Ordering::Acquire);
        if self.writing.load(Ordering::Relaxed) != seq {
            return Ok(None);
        }
        Ok(Some(Received { seq, len }))
    }
}

/// A mapping of the mailbox's region ([`Region::create`] makes one, [`Region::map`] maps it).
pub type Region = Mapping<Shared>;

// SAFETY: `Shared` is two boxes of atomics (and arrays of atomics) only.
unsafe impl AtomicLayout for Shared {}

/// The name of the mailbox's `memfd`.
pub const REGION_NAME: &std::ffi::CStr = c"vmm-exit-mailbox";

/// Which component an [`Endpoint`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Publishes records, waits for replies.
    VmmServer,
    /// Publishes replies, waits for records.
    DeviceModel,
}

/// One component's view of the mailbox: what it publishes and what it waits for.
#[derive(Debug)]
pub struct Endpoint {
    region: Region,
    side: Side,
}

impl Endpoint {
    /// `side`'s end of `region`.
    pub fn new(region: Region, side: Side) -> Self {
        Self { region, side }
    }

    fn outbox(&self) -> &MessageBox {
        let shared = self.region.get();
        match self.side {
            Side::VmmServer => &shared.record,
            Side::DeviceModel => &shared.reply,
        }
    }

    fn inbox(&self) -> &MessageBox {
        let shared = self.region.get();
        match self.side {
            Side::VmmServer => &shared.reply,
            Side::DeviceModel => &shared.record,
        }
    }

    /// The sequence number last published in this side's own box (by it or a predecessor: the
    /// peer can write it too, so it is a hint, never trusted).
    pub fn last_sent(&self) -> u64 {
        self.outbox().published()
    }

    /// Publishes `message` as number `seq` and wakes the peer if it sleeps on `wake`.
    ///
    /// # Errors
    /// The message is too long, or the peer is gone.
    pub fn send(&self, wake: &UnixStream, seq: u64, message: &[u8]) -> Result<(), MailboxError> {
        if self.outbox().publish(seq, message)? {
            wake_peer(wake)?;
        }
        Ok(())
    }

    /// Waits for a message whose number `wanted` accepts and copies it into `dest`: spins for
    /// [`POLL_BEFORE_BLOCKING`], then blocks on `wake` (whose own read timeout, if any, bounds
    /// each block; `timeout` bounds the whole wait).
    ///
    /// # Errors
    /// The message's length is bad, the peer is gone (and left no wanted message), or the time
    /// is up.
    pub fn receive(
        &self,
        wake: &UnixStream,
        wanted: impl Fn(u64) -> bool,
        dest: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<Received, MailboxError> {
        let inbox = self.inbox();
        let started = Instant::now();
        loop {
            let spin_started = Instant::now();
            loop {
                if wanted(inbox.published()) {
                    match inbox.read(dest)? {
                        Some(got) if wanted(got.seq) => return Ok(got),
                        _ => continue, // overwritten while copied: copy again
                    }
                }
                if spin_started.elapsed() >= POLL_BEFORE_BLOCKING {
                    break;
                }
                std::hint::spin_loop();
            }
            inbox.sleeping.store(1, Ordering::SeqCst);
            if wanted(inbox.published.load(Ordering::SeqCst)) {
                inbox.sleeping.store(0, Ordering::Relaxed);
                continue;
            }
            let remaining = timeout.map(|limit| limit.saturating_sub(started.elapsed()));
            let woken = block(wake, remaining);
            inbox.sleeping.store(0, Ordering::Relaxed);
            match woken? {
                Wake::Woken | Wake::TimedOut => {}
                // A message published just before the peer went is still its answer.
                Wake::PeerGone if wanted(inbox.published()) => {}
                Wake::PeerGone => return Err(MailboxError::Closed),
            }
            if timeout.is_some_and(|limit| started.elapsed() >= limit) && !wanted(inbox.published()) {
                return Err(MailboxError::Timeout);
            }
        }
    }
}

/// How a block on the wake-up socket ended.
enum Wake {
    /// Wake-ups came (all of them are read).
    Woken,
    /// The peer closed its end.
    PeerGone,
    /// Nothing within the time (or a signal).
    TimedOut,
}

/// Blocks until a wake-up comes, the peer goes or `limit` passes (`None`: no limit); reads
/// every wake-up queued (more than one were sent while the waiter slept, or one was left over
/// from a sleep that did not happen).
fn block(wake: &UnixStream, limit: Option<Duration>) -> Result<Wake, MailboxError> {
    let timeout = match limit {
        None => PollTimeout::NONE,
        // Whole milliseconds, at least one: no busy loop for the last fraction.
        Some(limit) => PollTimeout::try_from(limit.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX),
    };
    let mut fds = [PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, timeout) {
        Ok(0) | Err(Errno::EINTR) => return Ok(Wake::TimedOut),
        Ok(_) => {}
        Err(e) => return Err(MailboxError::Io(e.into())),
    }
    let mut bytes = [0u8; 16];
    let mut woken = Wake::TimedOut;
    loop {
        match recv(wake.as_raw_fd(), &mut bytes, MsgFlags::MSG_DONTWAIT) {
            Ok(0) => return Ok(Wake::PeerGone),
            Ok(_) => woken = Wake::Woken,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => return Ok(woken),
            Err(Errno::ECONNRESET) => return Ok(Wake::PeerGone),
            Err(e) => return Err(MailboxError::Io(e.into())),
        }
    }
}

/// Sends the peer a 1-byte wake-up.
fn wake_peer(wake: &UnixStream) -> Result<(), MailboxError> {
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    match send(wake.as_raw_fd(), &[1], flags) {
        // A full queue holds wake-ups the peer has not read yet: it will wake.
        Ok(_) | Err(Errno::EAGAIN) => Ok(()),
        Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) => Err(MailboxError::Closed),
        Err(e) => Err(MailboxError::Io(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::os::unix::net::UnixDatagram;
    use std::sync::mpsc;

    use nix::sys::memfd::{MFdFlags, memfd_create};
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

    use super::*;

    /// Both ends of a fresh mailbox, each with its own mapping and its socket.
    fn pair() -> ((Endpoint, UnixStream), (Endpoint, UnixStream)) {
        let fd = Region::create(REGION_NAME).unwrap();
        let vmm = Endpoint::new(Region::map(fd.as_fd()).unwrap(), Side::VmmServer);
        let dm = Endpoint::new(Region::map(fd.as_fd()).unwrap(), Side::DeviceModel);
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        ((vmm, UnixStream::from(a)), (dm, UnixStream::from(b)))
    }

    #[test]
    fn a_message_goes_round_trip_through_two_mappings() {
        let ((vmm, vmm_wake), (dm, dm_wake)) = pair();
        let mut buf = [0u8; MAX_MESSAGE_SIZE];
        for (seq, len) in [
            (1u64, 0usize),
            (2, 1),
            (3, 7),
            (4, 8),
            (5, 9),
            (6, MAX_MESSAGE_SIZE),
        ] {
            let record: Vec<u8> = (0..len).map(|i| (i * 7 + seq as usize) as u8).collect();
            vmm.send(&vmm_wake, seq, &record).unwrap();
            let got = dm.receive(&dm_wake, |s| s == seq, &mut buf, None).unwrap();
            assert_eq!(got, Received { seq, len });
            assert_eq!(&buf[..len], &record[..]);
            let reply = [seq as u8; 3];
            dm.send(&dm_wake, seq, &reply).unwrap();
            let got = vmm
                .receive(&vmm_wake, |s| s == seq, &mut buf, Some(Duration::from_secs(5)))
                .unwrap();
            assert_eq!((got, &buf[..3]), (Received { seq, len: 3 }, &reply[..]));
        }
        assert_eq!(vmm.last_sent(), 6);
        assert_eq!(dm.last_sent(), 6);
    }

    #[test]
    fn an_oversized_message_is_not_published() {
        let ((vmm, vmm_wake), _dm) = pair();
        let long = vec![0u8; MAX_MESSAGE_SIZE + 1];
        assert!(matches!(
            vmm.send(&vmm_wake, 1, &long),
            Err(MailboxError::TooLong(n)) if n == MAX_MESSAGE_SIZE + 1
        ));
        assert_eq!(vmm.last_sent(), 0);
    }

    #[test]
    fn a_bad_length_in_shared_memory_is_refused() {
        let ((vmm, vmm_wake), (dm, dm_wake)) = pair();
        let mut buf = [0u8; MAX_MESSAGE_SIZE];
        // A device model that claims more than a box holds, or u32::MAX.
        for (seq, claimed) in [(1u64, MAX_MESSAGE_SIZE as u32 + 1), (2, u32::MAX)] {
            dm.send(&dm_wake, seq, b"ok").unwrap();
            dm.outbox().len.store(claimed, Ordering::Relaxed);
            let got = vmm.receive(&vmm_wake, |s| s == seq, &mut buf, Some(Duration::from_secs(5)));
            assert!(
                matches!(got, Err(MailboxError::BadLength { seq: s, len }) if s == seq && len == claimed),
                "{got:?}"
            );
        }
        // A length that fits a box but not the reader's buffer.
        dm.send(&dm_wake, 3, &[9; 64]).unwrap();
        let mut small = [0u8; 16];
        let got = vmm.receive(&vmm_wake, |s| s == 3, &mut small, None);
        assert!(
            matches!(got, Err(MailboxError::BadLength { seq: 3, len: 64 })),
            "{got:?}"
        );
        assert_eq!(small, [0; 16], "nothing copied");
    }

    #[test]
    fn a_stale_reply_is_never_taken_for_a_later_record() {
        let ((vmm, vmm_wake), (dm, dm_wake)) = pair();
        let mut buf = [0u8; MAX_MESSAGE_SIZE];
        // The device model answered record 1; record 2 is out, its reply not yet.
        vmm.send(&vmm_wake, 1, b"record 1").unwrap();
        dm.send(&dm_wake, 1, b"reply 1").unwrap();
        vmm.send(&vmm_wake, 2, b"record 2").unwrap();
        let waited = Instant::now();
        let got = vmm.receive(&vmm_wake, |s| s == 2, &mut buf, Some(Duration::from_millis(30)));
        assert!(matches!(got, Err(MailboxError::Timeout)), "{got:?}");
        assert!(waited.elapsed() >= Duration::from_millis(30));
        // The device model goes away without answering: the stale reply is still not taken.
        drop(dm_wake);
        let got = vmm.receive(&vmm_wake, |s| s == 2, &mut buf, Some(Duration::from_secs(5)));
        assert!(matches!(got, Err(MailboxError::Closed)), "{got:?}");
        // A reply published just before the peer went is taken.
        dm.outbox().publish(2, b"reply 2").unwrap();
        let got = vmm
            .receive(&vmm_wake, |s| s == 2, &mut buf, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(&buf[..got.len], b"reply 2");
    }

    #[test]
    fn a_restarted_device_model_answers_the_pending_record_and_only_the_newest_reply_counts() {
        let fd = Region::create(REGION_NAME).unwrap();
        let vmm = Endpoint::new(Region::map(fd.as_fd()).unwrap(), Side::VmmServer);
        let (vmm_wake, old_wake) = UnixStream::pair().unwrap();
        let mut buf = [0u8; MAX_MESSAGE_SIZE];
        {
            let old = Endpoint::new(Region::map(fd.as_fd()).unwrap(), Side::DeviceModel);
            vmm.send(&vmm_wake, 1, b"r1").unwrap();
            old.receive(&old_wake, |s| s != 0, &mut buf, None).unwrap();
            old.send(&old_wake, 1, b"a1").unwrap();
            vmm.receive(&vmm_wake, |s| s == 1, &mut buf, None).unwrap();
            // Record 2 goes out; the old device model dies with it unanswered.
            vmm.send(&vmm_wake, 2, b"r2").unwrap();
            drop(old_wake);
            let got = vmm.receive(&vmm_wake, |s| s == 2, &mut buf, None);
            assert!(matches!(got, Err(MailboxError::Closed)));
        }
        // The new one maps the same region and starts after what its predecessor answered: it
        // takes record 2 (published before it existed) ...
        let (vmm_wake, new_wake) = UnixStream::pair().unwrap();
        let new = Endpoint::new(Region::map(fd.as_fd()).unwrap(), Side::DeviceModel);
        let answered = new.last_sent();
        assert_eq!(answered, 1);
        let got = new.receive(&new_wake, |s| s != answered, &mut buf, None).unwrap();
        assert_eq!((got.seq, &buf[..got.len]), (2, &b"r2"[..]));
        new.send(&new_wake, 2, b"a2 (first)").unwrap();
        // ... while the server sends the same record again as box message 3: only the reply to 3
        // is its answer, not the one to 2.
        vmm.send(&vmm_wake, 3, b"r2").unwrap();
        let got = vmm.receive(&vmm_wake, |s| s == 3, &mut buf, Some(Duration::from_millis(20)));
        assert!(matches!(got, Err(MailboxError::Timeout)));
        let got = new.receive(&new_wake, |s| s != 2, &mut buf, None).unwrap();
        assert_eq!((got.seq, &buf[..got.len]), (3, &b"r2"[..]));
        new.send(&new_wake, 3, b"a2 (again)").unwrap();
        let got = vmm.receive(&vmm_wake, |s| s == 3, &mut buf, None).unwrap();
        assert_eq!(&buf[..got.len], b"a2 (again)");
    }

    #[test]
    fn a_blocked_waiter_is_woken_by_the_publisher() {
        let ((vmm, vmm_wake), (dm, dm_wake)) = pair();
        let (blocked_tx, blocked_rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let mut buf = [0u8; MAX_MESSAGE_SIZE];
            blocked_tx.send(()).unwrap();
            let got = dm.receive(&dm_wake, |s| s == 1, &mut buf, None).unwrap();
            buf[..got.len].to_vec()
        });
        blocked_rx.recv().unwrap();
        // Wait until the waiter has given up spinning and said it sleeps.
        let shared = vmm.region.get();
        let deadline = Instant::now() + Duration::from_secs(10);
        while shared.record.sleeping.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the waiter never blocked");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20));
        vmm.send(&vmm_wake, 1, b"wake up").unwrap();
        assert_eq!(
            shared.record.sleeping.load(Ordering::SeqCst),
            0,
            "the publisher took the flag"
        );
        assert_eq!(waiter.join().unwrap(), b"wake up");
    }

    #[test]
    fn no_wake_up_is_lost_in_many_ping_pongs_at_every_pace() {
        let ((vmm, vmm_wake), (dm, dm_wake)) = pair();
        const ROUNDS: u64 = 300;
        let echo = std::thread::spawn(move || {
            let mut buf = [0u8; MAX_MESSAGE_SIZE];
            let mut last = 0;
            loop {
                let got = match dm.receive(&dm_wake, |s| s != last, &mut buf, None) {
                    Ok(got) => got,
                    Err(MailboxError::Closed) => return last,
                    Err(e) => panic!("{e}"),
                };
                last = got.seq;
                // Sometimes long enough for the other side to block.
                if got.seq % 7 == 0 {
                    std::thread::sleep(Duration::from_micros(700));
                }
                dm.send(&dm_wake, got.seq, &buf[..got.len]).unwrap();
            }
        });
        let mut buf = [0u8; MAX_MESSAGE_SIZE];
        for seq in 1..=ROUNDS {
            if seq % 5 == 0 {
                std::thread::sleep(Duration::from_micros(600)); // the echo thread blocks
            }
            let message = seq.to_le_bytes();
            vmm.send(&vmm_wake, seq, &message).unwrap();
            let got = vmm
                .receive(&vmm_wake, |s| s == seq, &mut buf, Some(Duration::from_secs(10)))
                .unwrap();
            assert_eq!(&buf[..got.len], &message);
        }
        drop(vmm_wake);
        assert_eq!(echo.join().unwrap(), ROUNDS);
    }

    #[test]
    fn a_descriptor_that_is_no_region_is_refused() {
        let (a, _b) = UnixDatagram::pair().unwrap();
        assert!(Region::map(a.as_fd()).is_err());
        // An unsealed memfd could be shrunk under the mapping.
        let fd = memfd_create(c"unsealed", MFdFlags::MFD_CLOEXEC).unwrap();
        File::from(fd.try_clone().unwrap())
            .set_len(Region::SIZE as u64)
            .unwrap();
        assert!(Region::map(fd.as_fd()).is_err());
    }
}
