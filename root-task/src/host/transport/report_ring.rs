//! The device model's reports to the composer (each exit's UART output and, when it changed,
//! the devices' state) through a shared-memory ring: one writer (the device model), one
//! reader (the composer).
//!
//! A report must reach the composer before the reply to its exit is published, or a device
//! model dying in between would take the output with it while the server went on (output lost)
//! or leave the composer an old state to restart from (output repeated). A report in the ring
//! is safe once published: the ring outlives the writer. So the device model publishes the
//! report, then the reply, and the system call of a socket write leaves the exit's path.
//!
//! Layout: a published byte count (`written`), a consumed byte count (`taken`), both growing
//! without wrapping, and [`RING_BYTES`] bytes of frames. A frame starts at an 8-byte boundary
//! with its payload length as a word, then the payload, padded to 8 bytes; a frame that would
//! cross the end of the ring is preceded by a wrap word (all ones) and starts again at 0. The writer
//! publishes with a release store of `written`; the reader reads up to an acquired `written`
//! and gives the space back with a release store of `taken`.
//!
//! The composer reads the ring when it wakes (at least every [`MAX_READ_INTERVAL`] while
//! reports come, and at every event); a writer that finds the ring half full nudges it through
//! the console socket. The writer is not trusted: every count and length the reader loads is
//! checked, and a ring that breaks the rules is reported as [`RingError::Corrupt`].

use std::ffi::CStr;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::shared_memory::{AtomicLayout, Mapping};

/// Bytes of frames in a ring.
pub const RING_BYTES: usize = 256 * 1024;
const RING_WORDS: usize = RING_BYTES / 8;

/// The largest payload: a quarter of the ring (a report is a few hundred bytes).
pub const MAX_PAYLOAD: usize = RING_BYTES / 4;

/// The length word that sends the reader back to the start of the ring.
const WRAP: u64 = u64::MAX;

/// The longest the composer waits before it reads a ring that is receiving reports.
pub const MAX_READ_INTERVAL: Duration = Duration::from_millis(1);

/// How long a writer waits for room before it gives up (the composer is gone or stuck).
const FULL_TIMEOUT: Duration = Duration::from_secs(10);

/// The name of a ring's `memfd`.
const NAME: &CStr = c"vmm-report-ring";

/// The ring's layout.
#[repr(C)]
#[derive(Debug)]
pub struct RingLayout {
    written: AtomicU64,
    taken: AtomicU64,
    words: [AtomicU64; RING_WORDS],
}

// SAFETY: atomics and an array of atomics only.
unsafe impl AtomicLayout for RingLayout {}

/// Creates a ring for a new device model.
///
/// # Errors
/// The kernel refused the `memfd`.
pub fn create() -> io::Result<OwnedFd> {
    Mapping::<RingLayout>::create(NAME)
}

/// Why a ring cannot be used.
#[derive(Debug)]
pub enum RingError {
    /// The payload is longer than [`MAX_PAYLOAD`].
    TooLong(usize),
    /// No room came free within the writer's timeout.
    Full,
    /// The counts or a frame break the ring's rules: the writer misbehaves.
    Corrupt(&'static str),
    /// The descriptor is no ring.
    Io(io::Error),
}

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RingError::TooLong(len) => write!(f, "report of {len} bytes is too long"),
            RingError::Full => f.write_str("the report ring stayed full"),
            RingError::Corrupt(what) => write!(f, "report ring corrupt: {what}"),
            RingError::Io(e) => write!(f, "report ring: {e}"),
        }
    }
}

/// The space a frame of `len` payload bytes takes: its length word and the padded payload.
const fn frame_bytes(len: usize) -> u64 {
    8 + len.next_multiple_of(8) as u64
}

/// The device model's end.
#[derive(Debug)]
pub struct Writer {
    ring: Mapping<RingLayout>,
    /// Bytes published, kept here: the shared count is the reader's to trust, not ours.
    written: u64,
    /// `taken` when the reader was last nudged (once per read is enough).
    nudged_at: Option<u64>,
}

impl Writer {
    /// Maps the ring at `fd` (as the composer created it, empty).
    ///
    /// # Errors
    /// The descriptor is no ring.
    pub fn map(fd: BorrowedFd<'_>) -> Result<Self, RingError> {
        let ring = Mapping::map(fd).map_err(RingError::Io)?;
        Ok(Self {
            ring,
            written: 0,
            nudged_at: None,
        })
    }

    /// Publishes `payload` as one frame; waits while the ring is full, calling `nudge` (once
    /// per read) when it is half full or fuller, so that the reader comes.
    ///
    /// # Errors
    /// The payload is too long, or the ring stayed full.
    pub fn publish(&mut self, payload: &[u8], mut nudge: impl FnMut()) -> Result<(), RingError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(RingError::TooLong(payload.len()));
        }
        let ring = self.ring.get();
        let need = frame_bytes(payload.len());
        let at = (self.written % RING_BYTES as u64) as usize;
        let to_end = (RING_BYTES - at) as u64;
        let skip = if need > to_end { to_end } else { 0 };
        let started = Instant::now();
        loop {
            let taken = ring.taken.load(Ordering::Acquire);
            let after = self.written.saturating_sub(taken) + skip + need;
            if after > RING_BYTES as u64 / 2 && self.nudged_at != Some(taken) {
                self.nudged_at = Some(taken);
                nudge();
            }
            if after <= RING_BYTES as u64 {
                break;
            }
            if started.elapsed() >= FULL_TIMEOUT {
                return Err(RingError::Full);
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        let mut word = self.written / 8;
        if skip > 0 {
            ring.words[(word as usize) % RING_WORDS].store(WRAP, Ordering::Relaxed);
            word += skip / 8;
        }
        ring.words[(word as usize) % RING_WORDS].store(payload.len() as u64, Ordering::Relaxed);
        for (i, chunk) in payload.chunks(8).enumerate() {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            let slot = (word as usize + 1 + i) % RING_WORDS;
            ring.words[slot].store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        self.written += skip + need;
        ring.written.store(self.written, Ordering::Release);
        Ok(())
    }
}

/// The composer's end.
#[derive(Debug)]
pub struct Reader {
    ring: Mapping<RingLayout>,
    /// Bytes consumed, kept here (the shared count is the writer's to read).
    taken: u64,
}

impl Reader {
    /// Maps the ring at `fd`.
    ///
    /// # Errors
    /// The descriptor is no ring.
    pub fn map(fd: BorrowedFd<'_>) -> Result<Self, RingError> {
        let ring = Mapping::map(fd).map_err(RingError::Io)?;
        Ok(Self { ring, taken: 0 })
    }

    /// Hands every frame published since the last read to `take`, in order, and gives their
    /// space back; returns how many there were.
    ///
    /// # Errors
    /// The ring breaks its rules; frames before the offending one were taken.
    pub fn read(&mut self, buf: &mut Vec<u8>, mut take: impl FnMut(&[u8])) -> Result<usize, RingError> {
        let ring = self.ring.get();
        let written = ring.written.load(Ordering::Acquire);
        if written < self.taken || written - self.taken > RING_BYTES as u64 || !written.is_multiple_of(8) {
            return Err(RingError::Corrupt("published count out of range"));
        }
        let mut frames = 0;
        let mut result = Ok(());
        while self.taken < written {
            let available = written - self.taken;
            let at = (self.taken % RING_BYTES as u64) as usize;
            let header = ring.words[at / 8].load(Ordering::Relaxed);
            if header == WRAP {
                let to_end = (RING_BYTES - at) as u64;
                if to_end > available {
                    result = Err(RingError::Corrupt("wrap beyond the published bytes"));
                    break;
                }
                self.taken += to_end;
                continue;
            }
            let len = usize::try_from(header).unwrap_or(usize::MAX);
            if len > MAX_PAYLOAD
                || frame_bytes(len) > available
                || frame_bytes(len) > (RING_BYTES - at) as u64
            {
                result = Err(RingError::Corrupt("frame length out of range"));
                break;
            }
            buf.clear();
            for i in 0..len.div_ceil(8) {
                let value = ring.words[at / 8 + 1 + i].load(Ordering::Relaxed);
                buf.extend_from_slice(&value.to_le_bytes());
            }
            buf.truncate(len);
            take(buf);
            frames += 1;
            self.taken += frame_bytes(len);
        }
        ring.taken.store(self.taken, Ordering::Release);
        result.map(|()| frames)
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    fn pair() -> (Writer, Reader) {
        let fd = create().unwrap();
        (Writer::map(fd.as_fd()).unwrap(), Reader::map(fd.as_fd()).unwrap())
    }

    fn read_all(reader: &mut Reader) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        reader
            .read(&mut Vec::new(), |frame| frames.push(frame.to_vec()))
            .unwrap();
        frames
    }

    #[test]
    fn frames_arrive_whole_and_in_order_across_many_wraps() {
        let (mut writer, mut reader) = pair();
        let mut expected = std::collections::VecDeque::new();
        let mut nudges = 0;
        for n in 0..20_000usize {
            // Lengths 0 to 300, most not a multiple of 8, so frames wrap at every offset.
            let payload: Vec<u8> = (0..n % 301).map(|i| (n + i) as u8).collect();
            writer.publish(&payload, || nudges += 1).unwrap();
            expected.push_back(payload);
            if n % 97 == 0 {
                for frame in read_all(&mut reader) {
                    assert_eq!(Some(frame), expected.pop_front());
                }
            }
        }
        for frame in read_all(&mut reader) {
            assert_eq!(Some(frame), expected.pop_front());
        }
        assert!(expected.is_empty());
        assert_eq!(nudges, 0, "read often enough, the ring never got half full");
    }

    #[test]
    fn a_half_full_ring_nudges_the_reader_once_per_read() {
        let (mut writer, mut reader) = pair();
        let payload = [7u8; 1000];
        let mut nudges = 0;
        // Fill past half: the nudge comes once, not for every frame after.
        for _ in 0..(RING_BYTES / 2 / 1008 + 10) {
            writer.publish(&payload, || nudges += 1).unwrap();
        }
        assert_eq!(nudges, 1);
        assert!(!read_all(&mut reader).is_empty());
    }

    #[test]
    fn a_full_ring_waits_for_the_reader() {
        let fd = create().unwrap();
        let mut writer = Writer::map(fd.as_fd()).unwrap();
        let mut reader = Reader::map(fd.as_fd()).unwrap();
        let payload = vec![1u8; MAX_PAYLOAD];
        // Three quarter-ring frames fit with room for their length words; the fourth waits.
        for _ in 0..3 {
            writer.publish(&payload, || {}).unwrap();
        }
        let reading = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let mut count = 0;
            reader.read(&mut Vec::new(), |_| count += 1).unwrap();
            count
        });
        let started = Instant::now();
        writer.publish(&payload, || {}).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(40));
        assert_eq!(reading.join().unwrap(), 3);
    }

    #[test]
    fn an_unpublished_frame_is_not_read() {
        let (mut writer, mut reader) = pair();
        writer.publish(b"first", || {}).unwrap();
        // A writer that dies while writing its next frame has not moved `written`.
        let ring = writer.ring.get();
        ring.words[2].store(99, Ordering::Relaxed);
        ring.words[3].store(0x4141, Ordering::Relaxed);
        assert_eq!(read_all(&mut reader), [b"first".to_vec()]);
        assert_eq!(read_all(&mut reader), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn a_lying_writer_is_refused_not_followed() {
        let (writer, mut reader) = pair();
        let ring = writer.ring.get();
        // A count beyond the ring's size.
        ring.written.store(RING_BYTES as u64 + 8, Ordering::Release);
        assert!(matches!(
            reader.read(&mut Vec::new(), |_| {}),
            Err(RingError::Corrupt(_))
        ));
        // A count that is not a frame boundary.
        ring.written.store(12, Ordering::Release);
        assert!(matches!(
            reader.read(&mut Vec::new(), |_| {}),
            Err(RingError::Corrupt(_))
        ));
        // A frame longer than what was published.
        ring.words[0].store(64, Ordering::Relaxed);
        ring.written.store(16, Ordering::Release);
        assert!(matches!(
            reader.read(&mut Vec::new(), |_| {}),
            Err(RingError::Corrupt(_))
        ));
        // A length far beyond any payload.
        ring.words[0].store(u64::MAX - 1, Ordering::Relaxed);
        assert!(matches!(
            reader.read(&mut Vec::new(), |_| {}),
            Err(RingError::Corrupt(_))
        ));
        // A wrap word whose skip goes past the published bytes.
        ring.words[0].store(WRAP, Ordering::Relaxed);
        assert!(matches!(
            reader.read(&mut Vec::new(), |_| {}),
            Err(RingError::Corrupt(_))
        ));
    }

    #[test]
    fn an_oversized_payload_is_refused() {
        let (mut writer, _reader) = pair();
        assert!(matches!(
            writer.publish(&vec![0; MAX_PAYLOAD + 1], || {}),
            Err(RingError::TooLong(_))
        ));
    }
}
