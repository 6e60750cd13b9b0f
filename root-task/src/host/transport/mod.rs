//! The three ways to wire the VMM server and the device model on a host.
//!
//! | transport | VMM server | device model | exit record / reply travel as |
//! |---|---|---|---|
//! | `inproc` | this thread | this thread | bytes, by function call |
//! | `threads` | this thread | another thread | bytes over channels |
//! | `processes` | a child process | another child process | a shared-memory mailbox (wake-ups and liveness over `SOCK_SEQPACKET`); UART output and device state to the composer through a shared-memory ring |
//!
//! Every transport carries the postcard bytes of every message, so the statistics (messages
//! and bytes per boundary, exits, kernel invocations) are the same whichever is used.

pub mod inproc;
pub mod mailbox;
pub mod process;
pub mod report_ring;
pub mod shared_memory;
pub mod threads;

use vmm_protocol::{MAX_MESSAGE_SIZE, Request, Response};
use vmm_server::server::{ExitLink, LinkError, RunError, RunOutcome};

use super::HostError;
use super::report::{RunReport, Traffic};
use super::script::ScriptFile;
use super::vmm_side::HostServer;

/// Which transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// Function calls in one thread.
    Inproc,
    /// Two threads and channels.
    Threads,
    /// Two child processes and socket pairs.
    Processes,
}

impl Transport {
    /// All three, in-process (the benchmarks' baseline) first.
    pub const ALL: [Transport; 3] = [Transport::Inproc, Transport::Threads, Transport::Processes];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Inproc => "inproc",
            Self::Threads => "threads",
            Self::Processes => "processes",
        }
    }
}

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The guest.
    pub script: ScriptFile,
    /// The transport.
    pub transport: Transport,
    /// Print UART output as it comes.
    pub echo: bool,
    /// Kill the device model after this many exits (`processes` only), then restart it.
    pub kill_device_model_after: Option<u64>,
    /// The executable that runs the components (`processes`); default: this one.
    pub component_exe: Option<std::path::PathBuf>,
}

impl RunOptions {
    /// `script` on `transport`, quietly (no echo), undisturbed, with this executable's
    /// components: a benchmark's run.
    pub fn quiet(script: ScriptFile, transport: Transport) -> Self {
        Self {
            script,
            transport,
            echo: false,
            kill_device_model_after: None,
            component_exe: None,
        }
    }
}

/// Runs the scripted guest and reports.
///
/// # Errors
/// An unusable script, a refused boot request, or a failed component.
pub fn run(options: &RunOptions) -> Result<RunReport, HostError> {
    if options.kill_device_model_after.is_some() && options.transport != Transport::Processes {
        return Err(HostError::Refused(
            "--kill-device-model-after needs --transport processes".into(),
        ));
    }
    let mut report = match options.transport {
        Transport::Inproc => inproc::run(options)?,
        Transport::Threads => threads::run(options)?,
        Transport::Processes => process::run(options)?,
    };
    report.transport = options.transport.name().into();
    Ok(report)
}

/// An [`ExitLink`] that counts messages and bytes in both directions.
#[derive(Debug)]
pub struct Counted<L> {
    /// The link.
    pub inner: L,
    /// Records sent.
    pub records: Traffic,
    /// Replies received.
    pub replies: Traffic,
    /// Encoding buffers, kept across exits (zeroing two fresh ones per exit costs more than
    /// the copy of a small record).
    record_buf: Box<[u8; MAX_MESSAGE_SIZE]>,
    reply_buf: Box<[u8; MAX_MESSAGE_SIZE]>,
}

impl<L> Counted<L> {
    /// Counts over `inner`.
    pub fn new(inner: L) -> Self {
        Self {
            inner,
            records: Traffic::default(),
            replies: Traffic::default(),
            record_buf: Box::new([0; MAX_MESSAGE_SIZE]),
            reply_buf: Box::new([0; MAX_MESSAGE_SIZE]),
        }
    }
}

impl<L: ExitLink> ExitLink for Counted<L> {
    fn call(&mut self, record: &[u8], reply: &mut [u8]) -> Result<usize, LinkError> {
        self.records.count(record.len());
        let len = self.inner.call(record, reply)?;
        self.replies.count(len);
        Ok(len)
    }

    fn exchange(
        &mut self,
        record: &vmm_protocol::ExitRecord,
        reply: &mut vmm_protocol::ExitReply,
    ) -> Result<Result<(), vmm_protocol::WireError>, LinkError> {
        let len = record
            .encode(&mut self.record_buf[..])
            .map_err(|_| LinkError::Closed)?
            .len();
        self.records.count(len);
        let reply_len = self
            .inner
            .call(&self.record_buf[..len], &mut self.reply_buf[..])?;
        self.replies.count(reply_len);
        Ok(reply.decode_into(self.reply_buf.get(..reply_len).unwrap_or(&[])))
    }
}

/// The controller's requests to a server in this thread, as bytes, counted.
pub fn local_request(
    server: &mut HostServer<'_>,
    report: &mut RunReport,
    request: &Request,
) -> Result<Response, HostError> {
    let mut bytes = [0u8; MAX_MESSAGE_SIZE];
    let bytes = request
        .encode(&mut bytes)
        .map_err(|e| HostError::Component(format!("encode: {e}")))?;
    report.requests.count(bytes.len());
    let mut out = [0u8; MAX_MESSAGE_SIZE];
    let response = server.handle_request(super::badge::CONTROLLER, bytes, &mut out);
    report.responses.count(response.len());
    Response::decode(response).map_err(|e| HostError::Component(format!("response: {e}")))
}

/// A server in this thread, booted by the controller (the start of `inproc` and `threads`).
///
/// # Errors
/// An unusable script or a refused boot request.
pub fn local_server(options: &RunOptions) -> Result<(Box<HostServer<'_>>, RunReport), HostError> {
    let mut server = super::vmm_side::build_server(&options.script)?;
    let mut report = RunReport {
        steps_total: options.script.steps.len(),
        ..RunReport::default()
    };
    super::vmm_side::boot(&options.script, |request| {
        local_request(&mut server, &mut report, &request)
    })?;
    Ok((server, report))
}

/// Runs the exit loop over a counted link and records its traffic in the report.
///
/// # Errors
/// As [`drive`].
pub fn drive_counted<L: ExitLink>(
    server: &mut HostServer<'_>,
    link: &mut Counted<L>,
    report: &mut RunReport,
) -> Result<(), HostError> {
    let result = drive(server, link, report);
    report.exit_records = link.records;
    report.exit_replies = link.replies;
    result
}

/// Runs the exit loop to its end; returns the guest's stop status, if it stopped.
pub fn drive<L: ExitLink>(
    server: &mut HostServer<'_>,
    link: &mut L,
    report: &mut RunReport,
) -> Result<(), HostError> {
    loop {
        match server.run(link, u64::MAX) {
            Ok(RunOutcome::Stopped(status)) => {
                report.exit_status = Some(status);
                report.outcome = "stopped".into();
                return Ok(());
            }
            // No timer or input source exists on this host: a halted guest stays halted.
            Ok(RunOutcome::Waiting) => {
                report.outcome = "halted with no interrupt to come".into();
                return Ok(());
            }
            Ok(RunOutcome::Paused) => {
                report.outcome = "paused".into();
                return Ok(());
            }
            Ok(RunOutcome::Notification(_) | RunOutcome::ExitLimit) => {}
            Err(RunError::Rejected(r)) => {
                report.outcome = format!("device model misbehaves: {r}");
                return Ok(());
            }
            Err(e) => return Err(HostError::Component(format!("exit loop: {e:?}"))),
        }
    }
}

/// Fills `report` from a server after its run.
pub fn finish_report(server: &HostServer<'_>, report: &mut RunReport) {
    let stats = server.statistics();
    report.take_server_counters(
        server.exits_by_reason(),
        &stats.exits_by_class,
        server.invocations_by_class(),
    );
    report.replies_rejected = stats.replies_rejected;
    let model = server.kernel();
    report.steps_played = model.steps_played();
    report.differences = model.differences().iter().map(ToString::to_string).collect();
    if model.differences_total() > model.differences().len() {
        report.differences.push(format!(
            "... {} more",
            model.differences_total() - model.differences().len()
        ));
    }
}
