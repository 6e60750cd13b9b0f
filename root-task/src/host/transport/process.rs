//! Two child processes wired like seL4 components.
//!
//! The composer (this process) plays the root task: it creates the channels (Unix-domain
//! `SOCK_SEQPACKET` socket pairs for the exit and control links: one message per packet,
//! ordered, reliable; a stream for the console; a shared-memory mailbox for the exit link's
//! messages), starts each component with exactly the descriptors it needs, and supervises them.
//!
//! The exit link is two parts: records and replies go through the [`mailbox`](super::mailbox)
//! (no system call while both components are busy: each spins up to 500 µs for the next message
//! before it blocks), and the socket carries the wake-ups of a blocked component and tells each
//! side when the other is gone.
//!
//! | process | fd 3 ([`EXIT_FD`]) | fd 4 ([`SECOND_FD`]) | fd 5 ([`MAILBOX_FD`]) | fd 6 ([`REPORTS_FD`]) |
//! |---|---|---|---|---|
//! | VMM server (`vmm __vmm-server`) | exit link to the device model | control link to the composer | exit mailbox | |
//! | device model (`vmm __device-model`) | exit link to the VMM server | console to the composer | exit mailbox | report ring to the composer |
//!
//! Every other descriptor is close-on-exec; standard input is `/dev/null`. The device model
//! holds no VCPU and no control link; the VMM server holds no console.
//!
//! Control packets start with a tag byte ([`tag`]). For an exit that produced UART output or
//! changed device state, the device model publishes a report in its
//! [report ring](super::report_ring) before the reply: the exit's sequence number (8 bytes,
//! little-endian), the length of the state (2 bytes) and the state (postcard of the device
//! model's `DeviceModelState`, empty if unchanged), then the UART bytes. The console is a byte
//! stream: the composer sends a new device model one frame on it first (4-byte length, then
//! the state to start from; empty: reset); the device model writes a byte on it only to wake
//! the composer when its ring is half full, and its end of stream tells the composer it is gone.
//! Every device model gets a new ring; the composer reads an old one to its end after the
//! device model is gone.
//!
//! When the device model dies, the VMM server keeps the exit it was handling pending, tells
//! the composer, and waits; the composer makes sure the old device model is gone (so that it
//! can no longer write the mailbox), starts a new device model with the same mailbox and passes
//! the server its end of a new exit socket (`SCM_RIGHTS`: a capability handed over); the server
//! sends the pending record again. The new device model starts from the devices' state as it
//! was before that record (devices are deterministic), and UART output stays exactly-once (see
//! [`crate::host::console`]). The new device model may find the pending record still in the
//! mailbox and answer it before the server sends it again: its reply cache answers the second
//! copy (same record `seq`) without touching a device, and the server takes only the reply to
//! its newest mailbox message.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg, sendmsg,
    socketpair,
};
use serde::{Deserialize, Serialize};
use vmm_protocol::{MAX_MESSAGE_SIZE, Request, Response};
use vmm_server::server::{ExitLink, LinkError, RunError, RunOutcome, RunState};

use super::mailbox::{Endpoint, MailboxError, REGION_NAME, Region, Side};
use super::report_ring::{self, MAX_READ_INTERVAL, Reader as ReportReader, Writer as ReportWriter};
use super::{Counted, RunOptions, finish_report};
use crate::host::HostError;
use crate::host::badge::CONTROLLER;
use crate::host::console::Console;
use crate::host::dm_side::with_device_model;
use crate::host::report::{RunReport, Traffic};
use crate::host::script::ScriptFile;
use crate::host::vmm_side::{boot, build_server};

/// The first byte of a control packet.
pub mod tag {
    /// Composer → server: a part of the script (postcard: a tenth of the JSON's encoding and
    /// decoding work, which for a long script rivals the run itself; split into packets of
    /// at most [`SCRIPT_PART`](super::SCRIPT_PART) bytes).
    pub const SCRIPT: u8 = 1;
    /// Composer → server: the script's last part.
    pub const SCRIPT_END: u8 = 8;
    /// Composer → server: a protocol request (postcard).
    pub const REQUEST: u8 = 2;
    /// Server → composer: the response to a request.
    pub const RESPONSE: u8 = 3;
    /// Server → composer: an [`Event`](super::Event), as JSON.
    pub const EVENT: u8 = 4;
    /// Composer → server: a new exit link to a new device model, in `SCM_RIGHTS`.
    pub const NEW_DEVICE_MODEL: u8 = 5;
    /// Composer → server: stop after this many exits (u64, little-endian) and report
    /// [`Event::Progress`](super::Event::Progress); the run goes on at [`CONTINUE`].
    pub const PAUSE_AT: u8 = 6;
    /// Composer → server: go on after [`Event::Progress`](super::Event::Progress).
    pub const CONTINUE: u8 = 7;
}

/// The hidden subcommand that runs the VMM server.
pub const SERVER_ROLE: &str = "__vmm-server";
/// The hidden subcommand that runs the device model.
pub const DEVICE_MODEL_ROLE: &str = "__device-model";
/// The descriptor a component finds its exit link at.
pub const EXIT_FD: RawFd = 3;
/// The descriptor of the second link (control for the server, console for the device model).
pub const SECOND_FD: RawFd = 4;
/// The descriptor of the exit link's shared-memory mailbox (both components; see
/// [`Region`]).
pub const MAILBOX_FD: RawFd = 5;
/// The descriptor of the device model's report ring (see [`super::report_ring`]).
pub const REPORTS_FD: RawFd = 6;

/// Largest part of the script in one packet (packets are bounded by the socket buffer).
pub const SCRIPT_PART: usize = 32 * 1024;

/// The longest the composer sleeps between two reads of the report rings when nothing comes
/// (it reads every [`MAX_READ_INTERVAL`] while reports come).
const IDLE_READ_INTERVAL: Duration = Duration::from_millis(20);

/// How long the server waits for a reply before it considers the device model gone.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Exits between two looks at the control link while the guest runs.
const EXITS_PER_CONTROL_CHECK: u64 = 256;

/// What the server tells the composer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Event {
    /// `exits` exits have been handled; the server waits for [`tag::CONTINUE`].
    Progress {
        /// Exits handled.
        exits: u64,
    },
    /// The device model is gone; exit `pending` waits for an answer.
    DeviceModelGone {
        /// The pending record's sequence number.
        pending: Option<u64>,
    },
    /// The run is over.
    Finished {
        /// The server's part of the report.
        report: Box<RunReport>,
    },
}

/// A byte-stream pair for the console: a seq-packet queue holds only
/// `net.unix.max_dgram_qlen` packets (10 by default), so a composer that reads output in
/// batches would stall the device model; a stream buffers by bytes. Frames are a 4-byte
/// little-endian length and the payload.
fn stream_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)
}

/// Writes one console frame.
fn write_frame(socket: &mut UnixStream, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| io::Error::other("frame too long"))?;
    let mut frame = Vec::with_capacity(payload.len() + 4);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(payload);
    socket.write_all(&frame)
}

/// Reads one console frame (blocking).
fn read_frame(socket: &mut UnixStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    socket.read_exact(&mut len)?;
    let mut payload = vec![0u8; u32::from_le_bytes(len) as usize];
    socket.read_exact(&mut payload)?;
    Ok(payload)
}

/// The composer's ends of one device model's reports: its console (wake-ups, end of stream)
/// and its report ring.
struct ConsoleStream {
    socket: UnixStream,
    reports: ReportReader,
}

impl ConsoleStream {
    /// The composer's ends for a device model spawned with `ring`; the first console frame
    /// (the state to start from) is sent.
    fn new(socket: OwnedFd, ring: &OwnedFd, state: &[u8]) -> io::Result<Self> {
        let mut socket = UnixStream::from(socket);
        write_frame(&mut socket, state)?;
        socket.set_nonblocking(true)?;
        let reports = ReportReader::map(ring.as_fd()).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self { socket, reports })
    }
}

fn packet_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)
}

/// Starts `role` of `exe` with `fds` at descriptors 3, 4, ...
fn spawn(exe: &std::path::Path, role: &str, fds: &[&OwnedFd]) -> io::Result<Child> {
    // Move the sources above the targets first, so that placing one cannot clobber another.
    let mut high = Vec::new();
    for fd in fds {
        let raw = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))
            .map_err(io::Error::from)?;
        // SAFETY: `raw` was just returned by F_DUPFD_CLOEXEC and is owned by nobody else.
        high.push(unsafe { OwnedFd::from_raw_fd(raw) });
    }
    let pairs: Vec<(RawFd, RawFd)> = high
        .iter()
        .enumerate()
        .map(|(i, fd)| (fd.as_raw_fd(), EXIT_FD + i as RawFd))
        .collect();
    let mut command = Command::new(exe);
    command.arg(role).stdin(Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec and calls only dup2, which is
    // async-signal-safe; it allocates nothing (the vector was built before the fork). dup2 also
    // clears close-on-exec on the target, so exactly these descriptors survive the exec.
    unsafe {
        command.pre_exec(move || {
            for &(source, target) in &pairs {
                if libc::dup2(source, target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = command.spawn();
    drop(high);
    child
}

/// Takes the descriptor the composer placed at `fd`.
///
/// # Safety
/// Call once per descriptor, in a process started by [`spawn`], which placed it there.
unsafe fn inherited(fd: RawFd) -> OwnedFd {
    // SAFETY: by the caller's contract the descriptor is open and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// This side's end of the mailbox the composer placed at [`MAILBOX_FD`].
fn inherited_mailbox(fd: OwnedFd, side: Side) -> Result<Endpoint, HostError> {
    let region = Region::map(fd.as_fd()).map_err(|e| HostError::Component(format!("mailbox: {e}")))?;
    // The mapping stays when the descriptor closes.
    Ok(Endpoint::new(region, side))
}

fn send_packet(socket: &mut UnixStream, tag: u8, body: &[u8]) -> io::Result<()> {
    let mut packet = Vec::with_capacity(body.len() + 1);
    packet.push(tag);
    packet.extend_from_slice(body);
    // One write is one packet on SOCK_SEQPACKET.
    let written = socket.write(&packet)?;
    if written != packet.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short packet"));
    }
    Ok(())
}

/// Reads one packet; `Ok(None)` at end of stream.
fn recv_packet(socket: &mut UnixStream, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    buf.resize(1 << 20, 0);
    let n = socket.read(buf)?;
    Ok((n > 0).then_some(n))
}

/// A console packet, parsed.
struct Chunk<'b> {
    seq: u64,
    state: &'b [u8],
    output: &'b [u8],
}

fn parse_chunk(packet: &[u8]) -> Option<Chunk<'_>> {
    let seq = u64::from_le_bytes(packet.get(..8)?.try_into().ok()?);
    let len = usize::from(u16::from_le_bytes(packet.get(8..10)?.try_into().ok()?));
    let state = packet.get(10..10 + len)?;
    let output = packet.get(10 + len..)?;
    Some(Chunk { seq, state, output })
}

/// Device states by the exit after which they held, newest last.
#[derive(Debug, Default)]
struct StateLog {
    states: Vec<(u64, Vec<u8>)>,
}

impl StateLog {
    fn record(&mut self, seq: u64, state: &[u8]) {
        if !state.is_empty() {
            self.states.push((seq, state.to_vec()));
            // Only the newest states can be needed: a restart resumes at the pending exit.
            if self.states.len() > 8 {
                self.states.remove(0);
            }
        }
    }

    /// The state before exit `pending` (after the newest exit before it).
    fn before(&self, pending: Option<u64>) -> &[u8] {
        let limit = pending.unwrap_or(u64::MAX);
        self.states
            .iter()
            .rev()
            .find(|(seq, _)| *seq < limit)
            .map_or(&[], |(_, s)| s)
    }
}

// ----- the composer -----

/// Runs the two components as processes.
///
/// # Errors
/// See [`super::run`].
pub fn run(options: &RunOptions) -> Result<RunReport, HostError> {
    let (server_exit, dm_exit) = packet_pair()?;
    let (server_control, composer_control) = packet_pair()?;
    let (dm_console, composer_console) = stream_pair()?;
    let exe = match &options.component_exe {
        Some(path) => path.clone(),
        None => std::env::current_exe()?,
    };
    let mailbox = Region::create(REGION_NAME)?;
    let mut server = spawn(&exe, SERVER_ROLE, &[&server_exit, &server_control, &mailbox])?;
    let ring = report_ring::create()?;
    let mut device_model = spawn(&exe, DEVICE_MODEL_ROLE, &[&dm_exit, &dm_console, &mailbox, &ring])?;
    drop((server_exit, server_control, dm_exit, dm_console));
    let mut control = UnixStream::from(composer_control);
    // The first device model starts from reset.
    let mut consoles = vec![ConsoleStream::new(composer_console, &ring, &[])?];
    drop(ring);
    let components = Components {
        exe: &exe,
        mailbox: &mailbox,
    };
    let result = supervise(
        options,
        &components,
        &mut control,
        &mut consoles,
        &mut device_model,
    );
    // Closing the control link ends the server; the exit link's end ends the device model.
    drop(control);
    let _ = device_model.kill();
    let _ = device_model.wait();
    let _ = server.wait();
    result
}

/// What the composer starts a device model from.
struct Components<'a> {
    /// The executable.
    exe: &'a std::path::Path,
    /// The exit link's mailbox, the same for every device model.
    mailbox: &'a OwnedFd,
}

fn supervise(
    options: &RunOptions,
    components: &Components<'_>,
    control: &mut UnixStream,
    consoles: &mut Vec<ConsoleStream>,
    device_model: &mut Child,
) -> Result<RunReport, HostError> {
    let script = postcard::to_allocvec(&options.script).map_err(|e| HostError::Component(e.to_string()))?;
    let mut parts = script.chunks(SCRIPT_PART).peekable();
    while let Some(part) = parts.next() {
        let tag = if parts.peek().is_some() {
            tag::SCRIPT
        } else {
            tag::SCRIPT_END
        };
        send_packet(control, tag, part)?;
    }
    if let Some(after) = options.kill_device_model_after {
        send_packet(control, tag::PAUSE_AT, &after.to_le_bytes())?;
    }
    let mut requests = Traffic::default();
    let mut responses = Traffic::default();
    let mut buf = Vec::new();
    boot(&options.script, |request: Request| {
        let mut bytes = [0u8; MAX_MESSAGE_SIZE];
        let bytes = request
            .encode(&mut bytes)
            .map_err(|e| HostError::Component(e.to_string()))?;
        requests.count(bytes.len());
        send_packet(control, tag::REQUEST, bytes)?;
        loop {
            let n = recv_packet(control, &mut buf)?
                .ok_or_else(|| HostError::Component("the server is gone".into()))?;
            if buf[0] == tag::RESPONSE {
                responses.count(n - 1);
                return Response::decode(&buf[1..n]).map_err(|e| HostError::Component(e.to_string()));
            }
        }
    })?;
    let mut console = Console::new(options.echo);
    let mut restarts = 0u32;
    let mut states = StateLog::default();
    // How long to sleep before reading the rings again: short while reports come, longer
    // while none do.
    let mut interval = MAX_READ_INTERVAL;
    loop {
        let mut fds: Vec<nix::poll::PollFd<'_>> = Vec::new();
        fds.push(nix::poll::PollFd::new(
            control.as_fd(),
            nix::poll::PollFlags::POLLIN,
        ));
        for c in consoles.iter() {
            let c = &c.socket;
            fds.push(nix::poll::PollFd::new(c.as_fd(), nix::poll::PollFlags::POLLIN));
        }
        let timeout = nix::poll::PollTimeout::try_from(interval).unwrap_or(nix::poll::PollTimeout::MAX);
        nix::poll::poll(&mut fds, timeout).map_err(io::Error::from)?;
        let control_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        drop(fds);
        // Reports first: output produced before an event belongs before it.
        let mut reports = 0;
        let mut closed = Vec::new();
        for (i, c) in consoles.iter_mut().enumerate() {
            let (open, count) = read_console(c, &mut buf, &mut console, &mut states);
            reports += count;
            if !open {
                closed.push(i);
            }
        }
        for i in closed.into_iter().rev() {
            consoles.remove(i);
        }
        interval = if reports > 0 {
            MAX_READ_INTERVAL
        } else {
            (interval * 2).min(IDLE_READ_INTERVAL)
        };
        if !control_ready {
            continue;
        }
        let n =
            recv_packet(control, &mut buf)?.ok_or_else(|| HostError::Component("the server died".into()))?;
        if buf[0] != tag::EVENT {
            continue;
        }
        let event: Event =
            serde_json::from_slice(&buf[1..n]).map_err(|e| HostError::Component(e.to_string()))?;
        match event {
            Event::Progress { exits } => {
                log::info!("killing the device model after {exits} exits");
                let _ = device_model.kill();
                let _ = device_model.wait();
                send_packet(control, tag::CONTINUE, &[])?;
            }
            Event::DeviceModelGone { pending } => {
                restarts += 1;
                log::warn!("device model gone (exit {pending:?} pending); starting a new one");
                // One that only stopped answering is still alive: it must be gone before the
                // next one shares the mailbox with it.
                let _ = device_model.kill();
                let _ = device_model.wait();
                let (server_exit, dm_exit) = packet_pair()?;
                let (dm_console, composer_console) = stream_pair()?;
                // Output and state of exits the old device model finished are in its ring.
                drain(consoles, &mut buf, &mut console, &mut states);
                let ring = report_ring::create()?;
                *device_model = spawn(
                    components.exe,
                    DEVICE_MODEL_ROLE,
                    &[&dm_exit, &dm_console, components.mailbox, &ring],
                )?;
                drop((dm_exit, dm_console));
                consoles.push(ConsoleStream::new(
                    composer_console,
                    &ring,
                    states.before(pending),
                )?);
                let fds = [server_exit.as_raw_fd()];
                let cmsg = [ControlMessage::ScmRights(&fds)];
                let iov = [io::IoSlice::new(&[tag::NEW_DEVICE_MODEL])];
                sendmsg::<()>(control.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
                    .map_err(io::Error::from)?;
            }
            Event::Finished { report } => {
                // Output of the last exits may still be in flight.
                drain(consoles, &mut buf, &mut console, &mut states);
                let mut report = *report;
                report.uart = console.text();
                report.requests = requests;
                report.responses = responses;
                report.device_model_restarts = restarts;
                return Ok(report);
            }
        }
    }
}

/// Reads everything already in the consoles (the device model writes its console before its
/// reply, so a finished exit's frame is there).
fn drain(consoles: &mut [ConsoleStream], buf: &mut Vec<u8>, console: &mut Console, states: &mut StateLog) {
    for c in consoles.iter_mut() {
        read_console(c, buf, console, states);
    }
}

/// Takes every report published in a device model's ring, and the wake-up bytes on its
/// console; returns whether the device model is still there (`false` once its console closed:
/// its ring was read to the end after that, or once its ring broke the rules: it misbehaves,
/// what came before is kept) and how many reports there were.
fn read_console(
    stream: &mut ConsoleStream,
    buf: &mut Vec<u8>,
    console: &mut Console,
    states: &mut StateLog,
) -> (bool, usize) {
    buf.resize(4096, 0);
    // The socket first: a closed console means the writer is done, so the ring read after it
    // holds every report it published.
    let open = loop {
        match stream.socket.read(buf) {
            Ok(0) => break false,
            Ok(_) => {} // wake-ups only
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break false,
        }
    };
    let read = stream.reports.read(buf, |report| match parse_chunk(report) {
        Some(chunk) => {
            console.accept(chunk.seq, chunk.output);
            states.record(chunk.seq, chunk.state);
        }
        None => log::warn!("malformed device-model report"),
    });
    match read {
        Ok(count) => (open, count),
        Err(e) => {
            log::error!("device model: {e}; its reports are no longer read");
            (false, 0)
        }
    }
}

// ----- the VMM server process -----

/// The server's end of the exit link: the mailbox, for its whole life, and the wake-up socket
/// of the current device model (`None` while there is none).
struct MailboxLink {
    mailbox: Endpoint,
    wake: Option<UnixStream>,
    /// The number of the last record published. Kept here, never read back from the shared
    /// memory, which the device model can write.
    sent: u64,
}

impl MailboxLink {
    fn connected(&self) -> bool {
        self.wake.is_some()
    }
}

impl ExitLink for MailboxLink {
    fn call(&mut self, record: &[u8], reply: &mut [u8]) -> Result<usize, LinkError> {
        let link_error = |e: MailboxError| match e {
            MailboxError::Timeout => LinkError::Timeout,
            _ => LinkError::Closed,
        };
        let wake = self.wake.as_ref().ok_or(LinkError::Closed)?;
        // Every record, even one sent again, gets a new number: a reply the device model
        // published for an earlier one (perhaps a dead device model) never answers it.
        self.sent += 1;
        let seq = self.sent;
        self.mailbox.send(wake, seq, record).map_err(link_error)?;
        match self
            .mailbox
            .receive(wake, |published| published == seq, reply, Some(REPLY_TIMEOUT))
        {
            Ok(received) => Ok(received.len),
            // No reply decodes from nothing: the server rejects it as malformed.
            Err(e @ MailboxError::BadLength { .. }) => {
                log::warn!("device model's reply: {e}");
                Ok(0)
            }
            Err(e) => Err(link_error(e)),
        }
    }
}

/// The VMM server process: fd 3 the exit link, fd 4 the control link, fd 5 the exit mailbox.
///
/// # Errors
/// A broken control link, an unusable mailbox or script.
pub fn serve_vmm() -> Result<(), HostError> {
    // SAFETY: the composer started this process with the exit link at fd 3, the control link
    // at fd 4 and the mailbox at fd 5 (see `spawn`); each is taken once.
    let (exit, control, mailbox) =
        unsafe { (inherited(EXIT_FD), inherited(SECOND_FD), inherited(MAILBOX_FD)) };
    let mut control = UnixStream::from(control);
    let mailbox = inherited_mailbox(mailbox, Side::VmmServer)?;
    let mut buf = Vec::new();
    let mut encoded = Vec::new();
    loop {
        let n =
            recv_packet(&mut control, &mut buf)?.ok_or_else(|| HostError::Component("no script".into()))?;
        match buf[0] {
            tag::SCRIPT => encoded.extend_from_slice(&buf[1..n]),
            tag::SCRIPT_END => {
                encoded.extend_from_slice(&buf[1..n]);
                break;
            }
            _ => return Err(HostError::Component("expected the script first".into())),
        }
    }
    let script: ScriptFile =
        postcard::from_bytes(&encoded).map_err(|e| HostError::Component(format!("script: {e}")))?;
    let mut server = build_server(&script)?;
    let mut link = Counted::new(MailboxLink {
        mailbox,
        wake: Some(UnixStream::from(exit)),
        sent: 0,
    });
    let mut records = Traffic::default();
    let mut replies = Traffic::default();
    let mut finished = false;
    let mut pause_at: Option<u64> = None;
    let mut paused_for_composer = false;
    let mut report = RunReport {
        steps_total: script.steps.len(),
        ..RunReport::default()
    };
    loop {
        // While the guest runs, look at the control link without waiting; otherwise wait.
        loop {
            let running = server.state() == RunState::Running
                && link.inner.connected()
                && !finished
                && !paused_for_composer;
            match recv_control(&control, &mut buf, !running) {
                Ok(None) => return Ok(()), // the composer is done
                Ok(Some((n, _))) if buf[0] == tag::REQUEST => {
                    let mut out = [0u8; MAX_MESSAGE_SIZE];
                    let response = server.handle_request(CONTROLLER, &buf[1..n], &mut out);
                    send_packet(&mut control, tag::RESPONSE, response)?;
                }
                Ok(Some((_, Some(fd)))) if buf[0] == tag::NEW_DEVICE_MODEL => {
                    log::info!("new device model: sending the pending record again");
                    link.inner.wake = Some(UnixStream::from(fd));
                }
                Ok(Some((n, _))) if buf[0] == tag::PAUSE_AT && n == 9 => {
                    pause_at = buf[1..9].try_into().ok().map(u64::from_le_bytes);
                }
                Ok(Some(_)) if buf[0] == tag::CONTINUE => paused_for_composer = false,
                Ok(Some(_)) => log::warn!("unexpected control packet {}", buf[0]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
            if !finished
                && !paused_for_composer
                && server.state() == RunState::Running
                && link.inner.connected()
            {
                break;
            }
        }
        if !link.inner.connected() {
            continue;
        }
        let handled = server.statistics().exits;
        let budget = match pause_at {
            Some(at) => at.saturating_sub(handled).min(EXITS_PER_CONTROL_CHECK),
            None => EXITS_PER_CONTROL_CHECK,
        };
        if pause_at.is_some_and(|at| handled >= at) && server.pending_record().is_none() {
            pause_at = None;
            paused_for_composer = true;
            send_event(&mut control, &Event::Progress { exits: handled })?;
            continue;
        }
        let outcome = server.run(&mut link, budget.max(1));
        records.messages += link.records.messages;
        records.bytes += link.records.bytes;
        replies.messages += link.replies.messages;
        replies.bytes += link.replies.bytes;
        link.records = Traffic::default();
        link.replies = Traffic::default();
        let done = match outcome {
            Ok(RunOutcome::ExitLimit | RunOutcome::Notification(_)) => None,
            Ok(RunOutcome::Stopped(status)) => {
                report.exit_status = Some(status);
                Some("stopped".to_string())
            }
            Ok(RunOutcome::Waiting) => Some("halted with no interrupt to come".into()),
            Ok(RunOutcome::Paused) => Some("paused".into()),
            Err(RunError::Link(e)) => {
                log::warn!("device model unreachable ({e:?}); guest paused until it is back");
                link.inner.wake = None;
                let pending = server.pending_record().map(|r| r.seq);
                send_event(&mut control, &Event::DeviceModelGone { pending })?;
                None
            }
            Err(RunError::Rejected(r)) => Some(format!("device model misbehaves: {r}")),
            Err(RunError::Server(e)) => Some(format!("exit loop: {e}")),
        };
        if let Some(outcome) = done {
            finished = true;
            report.outcome = outcome;
            report.exit_records = records;
            report.exit_replies = replies;
            finish_report(&server, &mut report);
            send_event(
                &mut control,
                &Event::Finished {
                    report: Box::new(report.clone()),
                },
            )?;
        }
    }
}

/// Reads one control packet with any descriptor it carries; `Ok(None)` at end of stream.
/// With `wait` false, returns `WouldBlock` when nothing is there.
fn recv_control(
    control: &UnixStream,
    buf: &mut Vec<u8>,
    wait: bool,
) -> io::Result<Option<(usize, Option<OwnedFd>)>> {
    buf.resize(1 << 20, 0);
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let flags = if wait {
        MsgFlags::empty()
    } else {
        MsgFlags::MSG_DONTWAIT
    };
    let message =
        recvmsg::<()>(control.as_raw_fd(), &mut iov, Some(&mut space), flags).map_err(io::Error::from)?;
    let mut received = None;
    for cmsg in message.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel just installed this descriptor for us with SCM_RIGHTS; we
                // are its only owner (extra ones are closed when dropped).
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                received.get_or_insert(owned);
            }
        }
    }
    let n = message.bytes;
    Ok((n > 0).then_some((n, received)))
}

fn send_event(control: &mut UnixStream, event: &Event) -> io::Result<()> {
    let body = serde_json::to_vec(event).map_err(io::Error::other)?;
    send_packet(control, tag::EVENT, &body)
}

// ----- the device-model process -----

/// The device-model process: fd 3 the exit link, fd 4 the console, fd 5 the exit mailbox, fd
/// 6 the report ring.
///
/// # Errors
/// A broken link or an unusable mailbox.
pub fn serve_device_model() -> Result<(), HostError> {
    // SAFETY: the composer started this process with the exit link at fd 3, the console at
    // fd 4, the mailbox at fd 5 and the report ring at fd 6 (see `spawn`); each is taken once.
    let (exit, console, mailbox, ring) = unsafe {
        (
            inherited(EXIT_FD),
            inherited(SECOND_FD),
            inherited(MAILBOX_FD),
            inherited(REPORTS_FD),
        )
    };
    let (exit, mut console) = (UnixStream::from(exit), UnixStream::from(console));
    let mailbox = inherited_mailbox(mailbox, Side::DeviceModel)?;
    let mut reports =
        ReportWriter::map(ring.as_fd()).map_err(|e| HostError::Component(format!("report ring: {e}")))?;
    drop(ring);
    with_device_model(|dm| {
        let mut record = [0u8; MAX_MESSAGE_SIZE];
        let mut out = [0u8; MAX_MESSAGE_SIZE];
        dm.track_state();
        // The first console frame is the state to start from (empty: reset).
        let state = read_frame(&mut console)?;
        if !state.is_empty() {
            dm.restore(&state).map_err(HostError::Component)?;
        }
        // From now on only wake-ups go out on it, and none of them may stall an exit.
        console.set_nonblocking(true)?;
        // Records up to the last one answered (by this device model's predecessor, if any)
        // are done; a newer one in the box is pending and is answered now, even if it was
        // published before this device model started.
        let mut answered = mailbox.last_sent();
        let mut report = Vec::new();
        loop {
            let received = match mailbox.receive(&exit, |seq| seq != answered, &mut record, None) {
                Ok(received) => received,
                Err(MailboxError::Closed) => return Ok(()), // the server is done
                Err(MailboxError::BadLength { seq, len }) => {
                    log::error!("device model: record {seq} claims {len} bytes");
                    answered = seq;
                    continue;
                }
                Err(e) => return Err(HostError::Component(format!("exit link: {e}"))),
            };
            answered = received.seq;
            let bytes = record.get(..received.len).unwrap_or(&[]);
            let answer = match dm.answer(bytes, &mut out) {
                Ok(answer) => answer,
                Err(e) => {
                    log::error!("device model: undecodable record: {e}");
                    continue;
                }
            };
            // The report before the reply (see the module documentation).
            if !answer.output.is_empty() || answer.state.is_some() {
                let state = answer.state.as_deref().unwrap_or(&[]);
                report.clear();
                report.extend_from_slice(&answer.seq.to_le_bytes());
                report.extend_from_slice(&(state.len() as u16).to_le_bytes());
                report.extend_from_slice(state);
                report.extend_from_slice(answer.output);
                // A wake-up the composer does not take at once is fine: it reads on its own.
                let nudge = || {
                    let _ = (&console).write(&[0]);
                };
                reports
                    .publish(&report, nudge)
                    .map_err(|e| HostError::Component(e.to_string()))?;
            }
            match mailbox.send(&exit, received.seq, answer.reply) {
                Ok(()) => {}
                Err(MailboxError::Closed) => return Ok(()), // the server is done
                Err(e) => return Err(HostError::Component(format!("exit link: {e}"))),
            }
        }
    })
}
