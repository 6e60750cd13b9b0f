//! The device model as the host runs it: the standard platform, with the UART's output
//! collected per exit record so it can travel with the record's sequence number.

use std::cell::RefCell;

use device_model::platform::{StandardDevices, Wiring};
use device_model::server::{DeviceModel, DeviceModelConfig, DeviceModelState};
use device_model::uart::SerialOut;
use vmm_protocol::{ExitRecord, WireError};

/// UART output of the record being handled.
#[derive(Debug, Default)]
pub struct PendingOutput(RefCell<Vec<u8>>);

/// A [`SerialOut`] into [`PendingOutput`].
#[derive(Debug)]
pub struct PendingSink<'a>(&'a PendingOutput);

impl SerialOut for PendingSink<'_> {
    fn put(&mut self, byte: u8) {
        self.0.0.borrow_mut().push(byte);
    }
}

/// The device model with its devices.
pub struct DmHost<'a> {
    dm: DeviceModel<'a>,
    output: &'a PendingOutput,
    /// The state last reported (postcard), to report only changes; `None`: not tracked.
    last_state: Option<Vec<u8>>,
    /// The record being answered, decoded into in place (nearly 600 bytes, once per exit).
    record: ExitRecord,
    /// The output of the record last answered; swapped with the collecting buffer, so that
    /// neither is allocated again once both have grown.
    answered_output: Vec<u8>,
}

impl std::fmt::Debug for DmHost<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmHost").field("dm", &self.dm).finish()
    }
}

/// One answered record.
#[derive(Debug)]
pub struct Answer<'b> {
    /// The reply's bytes.
    pub reply: &'b [u8],
    /// The record's sequence number.
    pub seq: u64,
    /// UART output the record produced.
    pub output: &'b [u8],
    /// The devices' state after the record, if it changed (postcard of
    /// [`device_model::server::DeviceModelState`]).
    pub state: Option<Vec<u8>>,
}

impl<'a> DmHost<'a> {
    /// Answers a record given as bytes.
    ///
    /// # Errors
    /// The record does not decode.
    pub fn answer<'b>(&'b mut self, record: &[u8], out: &'b mut [u8]) -> Result<Answer<'b>, WireError> {
        self.record.decode_into(record)?;
        let reply = self.dm.handle(&self.record);
        let len = reply.encode(out)?.len();
        {
            let mut collected = self.output.0.borrow_mut();
            std::mem::swap(&mut *collected, &mut self.answered_output);
            collected.clear();
        }
        // Only a device model that may be restarted elsewhere reports its state.
        let state = match &self.last_state {
            Some(last) => self.state_bytes().filter(|s| s != last),
            None => None,
        };
        if let Some(s) = &state {
            self.last_state = Some(s.clone());
        }
        Ok(Answer {
            reply: &out[..len],
            seq: self.record.seq,
            output: &self.answered_output,
            state,
        })
    }

    fn state_bytes(&self) -> Option<Vec<u8>> {
        let state = self.dm.snapshot()?;
        let mut buf = [0u8; 4096];
        postcard::to_slice(&state, &mut buf).ok().map(|b| b.to_vec())
    }

    /// Takes on a state reported in an earlier [`Answer`] (of another device model instance).
    ///
    /// # Errors
    /// The bytes are not a state of this platform.
    pub fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let decoded: DeviceModelState = postcard::from_bytes(state).map_err(|e| e.to_string())?;
        self.dm.restore(&decoded).map_err(|e| format!("{e:?}"))?;
        self.last_state = Some(state.to_vec());
        Ok(())
    }

    /// Reports the devices' state with every answer that changes it, from now on.
    pub fn track_state(&mut self) {
        self.last_state = Some(self.state_bytes().unwrap_or_default());
    }

    /// The device model (for statistics).
    pub fn device_model(&self) -> &DeviceModel<'a> {
        &self.dm
    }
}

/// Builds the standard device model and runs `f` with it.
pub fn with_device_model<R>(f: impl FnOnce(&mut DmHost<'_>) -> R) -> R {
    let wiring = Wiring::default();
    let output = PendingOutput::default();
    let mut devices = StandardDevices::new(&wiring, PendingSink(&output));
    // The standard platform always fits its buses.
    let dm = match devices.device_model(&wiring, DeviceModelConfig::default()) {
        Ok(dm) => dm,
        Err(e) => unreachable!("standard platform: {e}"),
    };
    let mut host = DmHost {
        dm,
        output: &output,
        last_state: None,
        record: ExitRecord::EMPTY,
        answered_output: Vec::new(),
    };
    f(&mut host)
}
