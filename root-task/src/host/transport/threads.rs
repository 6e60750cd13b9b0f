//! Two threads: the device model on its own thread, messages over channels.
//!
//! Each channel is a capability in the sense of the design: the device-model thread holds
//! only its ends (records in, replies and output out); the server learns the device model's
//! badge from the channel, never from the message.
//!
//! A receiver spins briefly before it blocks, as the processes transport's mailbox does (see
//! [`POLL_BEFORE_BLOCKING`]): a wake-up through the scheduler costs more than a round trip.

use std::time::Instant;

use crossbeam_channel as mpsc;

use vmm_protocol::MAX_MESSAGE_SIZE;
use vmm_server::server::{ExitLink, LinkError};

use super::mailbox::POLL_BEFORE_BLOCKING;
use super::{Counted, RunOptions, drive_counted, finish_report, local_server};
use crate::host::HostError;
use crate::host::console::Console;
use crate::host::dm_side::with_device_model;
use crate::host::report::RunReport;

/// Receives from `channel`, spinning for up to [`POLL_BEFORE_BLOCKING`] before blocking.
fn receive<T>(channel: &mpsc::Receiver<T>) -> Result<T, mpsc::RecvError> {
    let started = Instant::now();
    loop {
        match channel.try_recv() {
            Ok(message) => return Ok(message),
            Err(mpsc::TryRecvError::Disconnected) => return Err(mpsc::RecvError),
            Err(mpsc::TryRecvError::Empty) => {}
        }
        if started.elapsed() >= POLL_BEFORE_BLOCKING {
            return channel.recv();
        }
        std::hint::spin_loop();
    }
}

/// What the device-model thread sends back for each record.
struct Answer {
    reply: Vec<u8>,
    seq: u64,
    output: Vec<u8>,
}

/// The server's end: records out, answers in.
struct ChannelLink<'c> {
    records: mpsc::Sender<Vec<u8>>,
    answers: mpsc::Receiver<Answer>,
    console: &'c mut Console,
}

impl ExitLink for ChannelLink<'_> {
    fn call(&mut self, record: &[u8], reply: &mut [u8]) -> Result<usize, LinkError> {
        self.records
            .send(record.to_vec())
            .map_err(|_| LinkError::Closed)?;
        let answer = receive(&self.answers).map_err(|_| LinkError::Closed)?;
        self.console.accept(answer.seq, &answer.output);
        let dest = reply.get_mut(..answer.reply.len()).ok_or(LinkError::Closed)?;
        dest.copy_from_slice(&answer.reply);
        Ok(answer.reply.len())
    }
}

/// Runs on two threads.
///
/// # Errors
/// See [`super::run`].
pub fn run(options: &RunOptions) -> Result<RunReport, HostError> {
    let (mut server, mut report) = local_server(options)?;
    let (record_tx, record_rx) = mpsc::bounded::<Vec<u8>>(1);
    let (answer_tx, answer_rx) = mpsc::bounded::<Answer>(1);
    let device_model = std::thread::Builder::new()
        .name("device-model".into())
        .spawn(move || {
            with_device_model(|dm| {
                let mut out = [0u8; MAX_MESSAGE_SIZE];
                // Ends when the server drops its sender.
                while let Ok(record) = receive(&record_rx) {
                    let Ok(answer) = dm.answer(&record, &mut out) else {
                        log::error!("device model: undecodable record");
                        break;
                    };
                    let message = Answer {
                        reply: answer.reply.to_vec(),
                        seq: answer.seq,
                        output: answer.output.to_vec(),
                    };
                    if answer_tx.send(message).is_err() {
                        break;
                    }
                }
            });
        })?;
    let mut console = Console::new(options.echo);
    let mut link = Counted::new(ChannelLink {
        records: record_tx,
        answers: answer_rx,
        console: &mut console,
    });
    let result = drive_counted(&mut server, &mut link, &mut report);
    drop(link);
    device_model
        .join()
        .map_err(|_| HostError::Component("the device-model thread panicked".into()))?;
    result?;
    report.uart = console.text();
    finish_report(&server, &mut report);
    Ok(report)
}
