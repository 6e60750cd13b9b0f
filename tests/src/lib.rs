//! A whole system in one process for message-level tests: the VMM server core on the model
//! VCPU, the device-model core with its standard devices, wired by an in-memory link that
//! records every message crossing either boundary into a transcript.
//!
//! Badges: [`DEVICE_MODEL`], [`CONTROLLER`], [`MONITOR`], as a root task would mint them.

#![allow(missing_debug_implementations)]

use std::cell::RefCell;

pub use device_model::platform::{
    self, CPUID_0, DEBUG_EXIT_PORT, MMIO_BASE, StandardDevices, UART_LINE, UART_PORT,
};
use device_model::server::{DeviceModel, DeviceModelConfig};
use device_model::uart::SerialOut;
use vmcs::caps::profiles::bochs_corei7_skylake_x;
use vmm_protocol::{
    ControlId, ExitRecord, ExitReply, FieldValue, MAX_MESSAGE_SIZE, PROTOCOL_VERSION, Request, Response,
};
use vmm_server::memory::FlatMemory;
use vmm_server::model::{KernelRules, ModelVcpu, StartState, Step};
use vmm_server::policy::{BadgePolicy, Rights};
use vmm_server::server::{ExitLink, LinkError, RunError, RunOutcome, ServerConfig, VmmServer};

/// The device model's badge.
pub const DEVICE_MODEL: u64 = 1;
/// The controller's badge.
pub const CONTROLLER: u64 = 2;
/// A read-only monitor's badge.
pub const MONITOR: u64 = 3;

/// Guest RAM: 64 KiB at guest-physical 0.
pub const RAM_SIZE: usize = 0x1_0000;
/// Where scripted guests start.
pub const START_RIP: u64 = 0x1000;

/// An MSR the guest may read and write (IA32_TSC_AUX).
pub const MSR_TSC_AUX: u32 = platform::MSR_TSC_AUX.0;
/// An MSR the guest may only read (IA32_APIC_BASE).
pub const MSR_APIC_BASE: u32 = platform::MSR_APIC_BASE.0;

/// UART output collected in memory.
#[derive(Debug, Default)]
pub struct Output(pub RefCell<Vec<u8>>);

/// A [`SerialOut`] into an [`Output`].
#[derive(Debug)]
pub struct OutputSink<'a>(pub &'a Output);

impl SerialOut for OutputSink<'_> {
    fn put(&mut self, byte: u8) {
        self.0.0.borrow_mut().push(byte);
    }
}

/// A fault the link injects into the next device-model call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkFault {
    /// The reply is garbage bytes.
    Garbage,
    /// The reply answers another sequence number.
    WrongSequence,
    /// The reply also writes guest CR0 (the device model may not).
    ForbiddenWrite,
    /// No reply: the device model stopped answering.
    Silent,
}

/// The in-memory link: calls the device model, records both messages.
pub struct RecordingLink<'x, 'a> {
    device_model: &'x mut DeviceModel<'a>,
    transcript: &'x RefCell<Vec<String>>,
    faults: &'x RefCell<Vec<LinkFault>>,
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("<{e}>"))
}

impl ExitLink for RecordingLink<'_, '_> {
    fn call(&mut self, record: &[u8], reply: &mut [u8]) -> Result<usize, LinkError> {
        let decoded = ExitRecord::decode(record).expect("the server sends valid records");
        self.transcript
            .borrow_mut()
            .push(format!("record  {}", json(&decoded)));
        let fault = {
            let mut faults = self.faults.borrow_mut();
            if faults.is_empty() {
                None
            } else {
                Some(faults.remove(0))
            }
        };
        if fault == Some(LinkFault::Silent) {
            self.transcript
                .borrow_mut()
                .push("reply   <none: device model silent>".into());
            return Err(LinkError::Timeout);
        }
        let mut out = [0u8; MAX_MESSAGE_SIZE];
        let bytes = self
            .device_model
            .handle_bytes(record, &mut out)
            .expect("valid record");
        let mut answer = ExitReply::decode(bytes).expect("the device model sends valid replies");
        let encoded: Vec<u8> = match fault {
            Some(LinkFault::Garbage) => vec![0xFF, 0xFF, 0xFF],
            Some(LinkFault::WrongSequence) => {
                answer.seq += 1;
                encode(&answer)
            }
            Some(LinkFault::ForbiddenWrite) => {
                let _ = answer.actions.insert(
                    0,
                    vmm_protocol::Action::WriteField(FieldValue {
                        encoding: 0x6800,
                        value: 0,
                    }),
                );
                encode(&answer)
            }
            _ => bytes.to_vec(),
        };
        let shown = match ExitReply::decode(&encoded) {
            Ok(r) => json(&r),
            Err(e) => format!("<undecodable {} bytes: {e}>", encoded.len()),
        };
        self.transcript.borrow_mut().push(format!("reply   {shown}"));
        reply[..encoded.len()].copy_from_slice(&encoded);
        Ok(encoded.len())
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    vmm_protocol::encode(value, &mut buf).expect("fits").to_vec()
}

/// Everything one test drives.
pub struct System<'a, 's> {
    /// The VMM server on the model VCPU.
    pub server: VmmServer<ModelVcpu<'s>, FlatMemory<RAM_SIZE>>,
    /// The device model.
    pub device_model: DeviceModel<'a>,
    /// Every message, in order.
    pub transcript: RefCell<Vec<String>>,
    /// Faults for the next link calls.
    pub faults: RefCell<Vec<LinkFault>>,
    /// UART output.
    pub output: &'a Output,
}

/// What the devices of a [`System`] are made of; create one, then call [`Devices::system`].
pub struct Devices<'a> {
    standard: StandardDevices<'a, OutputSink<'a>>,
}

/// Shared state the devices point at.
#[derive(Debug, Default)]
pub struct Wiring {
    /// Interrupt lines and the stop request.
    pub platform: platform::Wiring,
    /// UART output.
    pub output: Output,
}

impl<'a> Devices<'a> {
    /// The standard devices on `wiring`.
    pub fn new(wiring: &'a Wiring) -> Self {
        Self {
            standard: StandardDevices::new(&wiring.platform, OutputSink(&wiring.output)),
        }
    }

    /// A system playing `steps` under `rules`, with `ram` as guest memory.
    pub fn system<'s>(
        &'a mut self,
        wiring: &'a Wiring,
        rules: KernelRules,
        steps: &'s [Step],
        ram: FlatMemory<RAM_SIZE>,
    ) -> System<'a, 's> {
        let caps = bochs_corei7_skylake_x();
        let model = ModelVcpu::new(
            rules,
            caps,
            StartState {
                rip: START_RIP,
                rflags: 0x2,
            },
            steps,
        );
        let mut policy: BadgePolicy<8> = BadgePolicy::new();
        policy.grant(DEVICE_MODEL, Rights::device_model()).expect("room");
        policy.grant(CONTROLLER, Rights::controller()).expect("room");
        policy.grant(MONITOR, Rights::monitor()).expect("room");
        let config = ServerConfig {
            vcpu: 0,
            caps,
            exit_handler: DEVICE_MODEL,
            start_running: false,
        };
        let server = VmmServer::new(model, ram, policy, config);
        let device_model = self
            .standard
            .device_model(&wiring.platform, DeviceModelConfig::default())
            .expect("standard platform");
        System {
            server,
            device_model,
            transcript: RefCell::new(Vec::new()),
            faults: RefCell::new(Vec::new()),
            output: &wiring.output,
        }
    }
}

impl System<'_, '_> {
    /// Sends a request from `badge` as bytes, records both messages, returns the response.
    pub fn request(&mut self, badge: u64, request: Request) -> Response {
        let bytes = encode(&request);
        let mut out = [0u8; MAX_MESSAGE_SIZE];
        let response =
            Response::decode(self.server.handle_request(badge, &bytes, &mut out)).expect("valid response");
        let mut t = self.transcript.borrow_mut();
        t.push(format!("request {badge} {}", json(&request)));
        t.push(format!("response {}", json(&response)));
        response
    }

    /// Sends raw bytes as a request from `badge`.
    pub fn raw_request(&mut self, badge: u64, bytes: &[u8]) -> Response {
        let mut out = [0u8; MAX_MESSAGE_SIZE];
        let response =
            Response::decode(self.server.handle_request(badge, bytes, &mut out)).expect("valid response");
        let mut t = self.transcript.borrow_mut();
        t.push(format!("request {badge} <raw {:02x?}>", bytes));
        t.push(format!("response {}", json(&response)));
        response
    }

    /// The controller's usual start: handshake, guest RIP and RFLAGS, HLT and I/O exiting, run.
    pub fn boot(&mut self) {
        assert_eq!(
            self.request(
                CONTROLLER,
                Request::Hello {
                    version: PROTOCOL_VERSION
                }
            ),
            Response::Hello {
                version: PROTOCOL_VERSION
            }
        );
        // A protected-mode guest (PE, ET; the kernel adds what the fixed bits demand).
        let writes = [
            FieldValue {
                encoding: 0x681E,
                value: START_RIP,
            },
            FieldValue {
                encoding: 0x6820,
                value: 0x2,
            },
            FieldValue {
                encoding: 0x6800,
                value: 0x11,
            },
        ];
        let response = self.request(
            CONTROLLER,
            Request::WriteFields(vmm_protocol::heapless::Vec::from_slice(&writes).unwrap()),
        );
        assert!(matches!(response, Response::Written(_)), "{response:?}");
        let response = self.request(
            CONTROLLER,
            Request::SetControl {
                control: ControlId::Primary,
                set: (1 << 7) | (1 << 24),
                clear: 0,
            },
        );
        assert!(matches!(response, Response::Written(_)), "{response:?}");
        assert_eq!(self.request(CONTROLLER, Request::Run), Response::Ok);
    }

    /// Runs the exit loop until it stops (at most `max_exits` exits).
    pub fn run(&mut self, max_exits: u64) -> Result<RunOutcome, RunError> {
        let mut link = RecordingLink {
            device_model: &mut self.device_model,
            transcript: &self.transcript,
            faults: &self.faults,
        };
        let outcome = self.server.run(&mut link, max_exits);
        self.transcript.borrow_mut().push(format!("outcome {outcome:?}"));
        outcome
    }

    /// UART output so far, as text.
    pub fn uart(&self) -> String {
        String::from_utf8_lossy(&self.output.0.borrow()).into_owned()
    }

    /// The transcript as text, one message per line.
    pub fn transcript_text(&self) -> String {
        let mut text = self.transcript.borrow().join("\n");
        text.push('\n');
        text
    }

    /// Compares the transcript with `transcripts/NAME.txt` (written instead when the
    /// environment has `BLESS=1`).
    pub fn check_transcript(&self, name: &str) {
        let path = format!("{}/transcripts/{name}.txt", env!("CARGO_MANIFEST_DIR"));
        let actual = self.transcript_text();
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(&path, &actual).expect("write transcript");
            return;
        }
        let expected =
            std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing {path}; run with BLESS=1"));
        if expected != actual {
            for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
                if e != a {
                    panic!(
                        "transcript {name} differs at line {}:\nexpected: {e}\nactual:   {a}",
                        i + 1
                    );
                }
            }
            panic!(
                "transcript {name} differs in length: expected {} lines, got {}",
                expected.lines().count(),
                actual.lines().count()
            );
        }
    }

    /// Runs to the guest's debug-exit with status 0, checks the scripted guest's expectations
    /// and the transcript `name`: the end of most exit-protocol tests.
    pub fn run_to_clean_stop(&mut self, name: &str) {
        assert_eq!(self.run(100), Ok(RunOutcome::Stopped(0)), "{name}");
        self.assert_model_satisfied();
        self.check_transcript(name);
    }

    /// Fails with the model's differences, if any.
    pub fn assert_model_satisfied(&self) {
        let model = self.server.kernel();
        assert!(
            model.differences().is_empty(),
            "the VMM did not do what the guest expected: {:#?}",
            model.differences()
        );
        assert!(
            model.completed(),
            "script not completed: {} steps played",
            model.steps_played()
        );
    }
}
