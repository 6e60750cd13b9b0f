//! Everything in one thread: the VMM server calls the device model.

use vmm_server::server::{ExitLink, LinkError};

use super::{Counted, RunOptions, drive_counted, finish_report, local_server};
use crate::host::HostError;
use crate::host::console::Console;
use crate::host::dm_side::{DmHost, with_device_model};
use crate::host::report::RunReport;

/// A link that is a function call into the device model.
pub struct DirectLink<'x, 'a> {
    /// The device model.
    pub dm: &'x mut DmHost<'a>,
    /// Where its UART output goes.
    pub console: &'x mut Console,
}

impl std::fmt::Debug for DirectLink<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectLink").finish_non_exhaustive()
    }
}

impl ExitLink for DirectLink<'_, '_> {
    fn call(&mut self, record: &[u8], reply: &mut [u8]) -> Result<usize, LinkError> {
        // The reply is encoded straight into the caller's buffer.
        let answer = self.dm.answer(record, reply).map_err(|_| LinkError::Closed)?;
        self.console.accept(answer.seq, answer.output);
        Ok(answer.reply.len())
    }
}

/// Runs in process.
///
/// # Errors
/// See [`super::run`].
pub fn run(options: &RunOptions) -> Result<RunReport, HostError> {
    let (mut server, mut report) = local_server(options)?;
    let mut console = Console::new(options.echo);
    with_device_model(|dm| {
        let mut link = Counted::new(DirectLink {
            dm,
            console: &mut console,
        });
        drive_counted(&mut server, &mut link, &mut report)
    })?;
    report.uart = console.text();
    finish_report(&server, &mut report);
    Ok(report)
}
