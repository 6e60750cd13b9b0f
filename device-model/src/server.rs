//! The device model's server loop: one [`ExitReply`] for each [`ExitRecord`].
//!
//! | exit | answer |
//! |---|---|
//! | OUT / OUTS element | write to the port's device (or drop it, counted); advance RIP |
//! | IN / INS element | read the port's device (all ones if unclaimed); complete; advance RIP |
//! | EPT violation (MMIO) | decode the MOV, read or write the MMIO device; complete; set RIP |
//! | EPT violation during event delivery | nothing (the server re-injects the event) |
//! | CPUID | the configured leaf; advance RIP |
//! | RDMSR / WRMSR | the configured MSR; #GP(0) for an unknown one |
//! | HLT | advance RIP and wait for an interrupt (raised at once if one is pending) |
//! | exception | reflect it into the guest |
//! | triple fault, invalid guest state, failed entry | stop with a [`status`] code |
//! | anything else | stop with [`status::UNHANDLED_EXIT`] |
//!
//! Device interrupts (pending [`InterruptLines`]) go out with every reply as `RaiseInterrupt`
//! actions, vector = `vector_base + line`. A stop asked for by the guest (the debug-exit
//! port) ends the reply with `Stop`.

use core::cell::Cell;

use vmm_protocol::{
    AccessSize, Action, EventKind, EventRequest, ExitDetail, ExitRecord, ExitReply, Gpr, IoDirection,
    MAX_MESSAGE_SIZE, MemoryAccess, Register, WireError,
};

use crate::bus::{MmioBus, PortBus, PortDevice};
use crate::decode::{MmioOperation, decode_mmio};
use crate::irq::InterruptLines;
use crate::policy::{CpuidPolicy, MsrOutcome, MsrPolicy};
use crate::ports::{Unclaimed, size_mask};

/// Exit statuses the device model stops a guest with (besides what the guest writes to the
/// debug-exit port).
pub mod status {
    /// The guest triple-faulted.
    pub const TRIPLE_FAULT: u32 = 0xDEAD_0002;
    /// VM entry failed on invalid guest state.
    pub const INVALID_GUEST_STATE: u32 = 0xDEAD_0021;
    /// VMLAUNCH/VMRESUME failed.
    pub const ENTRY_FAILED: u32 = 0xDEAD_00FF;
    /// An exit the device model does not handle.
    pub const UNHANDLED_EXIT: u32 = 0xDEAD_0000;
    /// An MMIO access whose instruction could not be decoded.
    pub const UNDECODABLE_MMIO: u32 = 0xDEAD_0030;
}

/// Where the debug-exit port puts the status the guest asked to stop with.
#[derive(Debug, Default)]
pub struct StopRequest {
    status: Cell<Option<u32>>,
}

impl StopRequest {
    /// No stop asked for.
    pub const fn new() -> Self {
        Self {
            status: Cell::new(None),
        }
    }

    /// Asks to stop with `status`.
    pub fn request(&self, status: u32) {
        self.status.set(Some(status));
    }

    /// Takes the request.
    pub fn take(&self) -> Option<u32> {
        self.status.take()
    }
}

/// The debug-exit port on a [`StopRequest`]: a write of v stops the guest with status v.
#[derive(Debug)]
pub struct DebugExitPort<'a> {
    stop: &'a StopRequest,
}

impl<'a> DebugExitPort<'a> {
    /// A port that signals `stop`.
    pub fn new(stop: &'a StopRequest) -> Self {
        Self { stop }
    }
}

impl PortDevice for DebugExitPort<'_> {
    fn read(&mut self, _offset: u16, size: u8) -> u32 {
        size_mask(size)
    }

    fn write(&mut self, _offset: u16, size: u8, value: u32) {
        self.stop.request(value & size_mask(size));
    }
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Records answered.
    pub records: u64,
    /// Records that did not decode.
    pub malformed: u64,
    /// Records that arrived marked rejected (our previous reply was refused).
    pub rejected: u64,
    /// Records that came again and were answered from the reply cache.
    pub repeated: u64,
    /// Unclaimed port accesses.
    pub unclaimed: Unclaimed,
    /// Unclaimed MMIO accesses.
    pub unclaimed_mmio: u64,
    /// Interrupts raised.
    pub interrupts: u64,
}

/// Largest state of one device.
pub const MAX_DEVICE_STATE: usize = 96;

/// One device's saved state.
pub type DeviceState = heapless::Vec<u8, MAX_DEVICE_STATE>;

/// Everything a device model must carry over to be recreated exactly: each device's state by
/// base address, the MSR values and the pending interrupt lines. CPUID tables and the bus
/// layout are configuration, rebuilt the same way.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceModelState {
    /// Port devices: base port, state.
    pub ports: heapless::Vec<(u16, DeviceState), 16>,
    /// MMIO devices: base address, state.
    pub mmio: heapless::Vec<(u64, DeviceState), 8>,
    /// MSR values, in table order.
    pub msrs: heapless::Vec<u64, 16>,
    /// Pending interrupt lines.
    pub lines: u16,
}

/// Why a state could not be restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// A device in the state is not on this model's bus at that address.
    NoDevice(u64),
    /// A device refused its state.
    BadState(u64),
}

/// Configuration.
#[derive(Clone, Copy, Debug)]
pub struct DeviceModelConfig {
    /// Vector of interrupt line 0 (like a PIC's base; 0x20 by default).
    pub vector_base: u8,
    /// The guest runs in 64-bit mode (for decoding MMIO instructions).
    pub long_mode: bool,
}

impl Default for DeviceModelConfig {
    fn default() -> Self {
        Self {
            vector_base: 0x20,
            long_mode: false,
        }
    }
}

/// The device model. See the module documentation.
pub struct DeviceModel<'d> {
    /// The port bus.
    pub ports: PortBus<'d, 16>,
    /// The MMIO bus.
    pub mmio: MmioBus<'d, 8>,
    /// CPUID answers.
    pub cpuid: CpuidPolicy<16>,
    /// MSRs.
    pub msrs: MsrPolicy<16>,
    lines: &'d InterruptLines,
    stop: &'d StopRequest,
    config: DeviceModelConfig,
    stats: DeviceStats,
    /// The last reply, for a record that comes again (same `seq`).
    last_reply: Option<ExitReply>,
}

impl core::fmt::Debug for DeviceModel<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeviceModel")
            .field("ports", &self.ports)
            .field("mmio", &self.mmio)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn advance_to(record: &ExitRecord, length: u8) -> Action {
    Action::SetRegister {
        register: Register::Rip,
        value: record.rip.wrapping_add(u64::from(length)),
    }
}

fn general_protection() -> Action {
    Action::Inject(EventRequest {
        vector: 13,
        kind: Some(EventKind::HardwareException),
        error_code: Some(0),
        instruction_len: None,
    })
}

impl<'d> DeviceModel<'d> {
    /// A device model with empty buses; devices raise `lines`, the debug-exit port signals `stop`.
    pub fn new(lines: &'d InterruptLines, stop: &'d StopRequest, config: DeviceModelConfig) -> Self {
        Self {
            ports: PortBus::new(),
            mmio: MmioBus::new(),
            cpuid: CpuidPolicy::new(),
            msrs: MsrPolicy::new(),
            lines,
            stop,
            config,
            stats: DeviceStats::default(),
            last_reply: None,
        }
    }

    /// Counters.
    pub fn stats(&self) -> &DeviceStats {
        &self.stats
    }

    /// The devices' state; `None` if a device's state is larger than [`MAX_DEVICE_STATE`].
    pub fn snapshot(&self) -> Option<DeviceModelState> {
        let mut state = DeviceModelState {
            lines: self.lines.pending_mask(),
            ..DeviceModelState::default()
        };
        let mut buf = [0u8; MAX_DEVICE_STATE];
        for (base, device) in self.ports.devices() {
            let len = device.save(&mut buf)?;
            state
                .ports
                .push((base, DeviceState::from_slice(&buf[..len]).ok()?))
                .ok()?;
        }
        for (base, device) in self.mmio.devices() {
            let len = device.save(&mut buf)?;
            state
                .mmio
                .push((base, DeviceState::from_slice(&buf[..len]).ok()?))
                .ok()?;
        }
        for value in self.msrs.values() {
            state.msrs.push(value).ok()?;
        }
        Some(state)
    }

    /// Takes on a state from [`DeviceModel::snapshot`] of a device model built the same way.
    ///
    /// # Errors
    /// A device missing at a saved address, or refusing its state.
    pub fn restore(&mut self, state: &DeviceModelState) -> Result<(), RestoreError> {
        for (base, saved) in &state.ports {
            let (_, device) = self
                .ports
                .find(*base)
                .ok_or(RestoreError::NoDevice((*base).into()))?;
            if !device.load(saved) {
                return Err(RestoreError::BadState((*base).into()));
            }
        }
        for (base, saved) in &state.mmio {
            let (_, device) = self.mmio.find(*base).ok_or(RestoreError::NoDevice(*base))?;
            if !device.load(saved) {
                return Err(RestoreError::BadState(*base));
            }
        }
        self.msrs.set_values(&state.msrs);
        self.lines.set_pending_mask(state.lines);
        Ok(())
    }

    /// Decodes a record, answers it, encodes the reply into `out`.
    ///
    /// # Errors
    /// The record does not decode (counted); nothing is answered.
    pub fn handle_bytes<'o>(
        &mut self,
        record: &[u8],
        out: &'o mut [u8; MAX_MESSAGE_SIZE],
    ) -> Result<&'o [u8], WireError> {
        let record = ExitRecord::decode(record).inspect_err(|_| self.stats.malformed += 1)?;
        let reply = self.handle(&record);
        let len = reply.encode(&mut out[..])?.len();
        Ok(&out[..len])
    }

    /// Answers one record. A record that comes again (the same `seq`, e.g. because the
    /// reply was lost or garbled on the way) gets the same reply without touching any device
    /// again, so that no device effect happens twice.
    pub fn handle(&mut self, record: &ExitRecord) -> &ExitReply {
        self.stats.records += 1;
        if record.rejected.is_some() {
            self.stats.rejected += 1;
            log::warn!("record {} came back rejected: {:?}", record.seq, record.rejected);
        }
        let Self {
            ports,
            mmio,
            cpuid,
            msrs,
            lines,
            stop,
            config,
            stats,
            last_reply,
        } = self;
        let repeated = last_reply.as_ref().is_some_and(|last| last.seq == record.seq);
        // Answered in place: the reply is 400 bytes, and this runs once per exit.
        let reply = last_reply.get_or_insert_with(|| ExitReply::new(record.seq));
        if repeated {
            stats.repeated += 1;
        } else {
            let mut devices = Devices {
                ports,
                mmio,
                cpuid,
                msrs,
                lines,
                stop,
                config: *config,
                stats,
            };
            devices.answer(record, reply);
        }
        reply
    }
}

/// A device model's devices and counters, borrowed apart from its reply cache so that the
/// answer can be written straight into the cache.
struct Devices<'a, 'd> {
    ports: &'a mut PortBus<'d, 16>,
    mmio: &'a mut MmioBus<'d, 8>,
    cpuid: &'a CpuidPolicy<16>,
    msrs: &'a mut MsrPolicy<16>,
    lines: &'d InterruptLines,
    stop: &'d StopRequest,
    config: DeviceModelConfig,
    stats: &'a mut DeviceStats,
}

impl Devices<'_, '_> {
    fn port_read(&mut self, port: u16, size: u8) -> u32 {
        match self.ports.find(port) {
            Some((offset, device)) => device.read(offset, size),
            None => self.stats.unclaimed.read(size),
        }
    }

    fn port_write(&mut self, port: u16, size: u8, value: u32) {
        match self.ports.find(port) {
            Some((offset, device)) => device.write(offset, size, value),
            None => self.stats.unclaimed.write(),
        }
    }

    /// Writes the answer to `record` into `reply`.
    fn answer(&mut self, record: &ExitRecord, reply: &mut ExitReply) {
        reply.seq = record.seq;
        reply.actions.clear();
        let push = |actions: &mut vmm_protocol::heapless::Vec<Action, { vmm_protocol::MAX_ACTIONS }>, a| {
            // Our replies are short; the capacity (16) is never reached.
            let _ = actions.push(a);
        };
        match &record.detail {
            ExitDetail::Io {
                port,
                size,
                direction,
                value,
                ..
            } => {
                let bytes = size.bytes();
                match direction {
                    IoDirection::Out => match value {
                        Some(v) => self.port_write(*port, bytes, *v),
                        // OUTS whose element the server could not fetch: nothing to write.
                        None => self.stats.unclaimed.write(),
                    },
                    IoDirection::In => {
                        let v = self.port_read(*port, bytes);
                        push(&mut reply.actions, Action::CompleteIo { value: v });
                    }
                }
                push(&mut reply.actions, Action::AdvanceRip);
            }
            ExitDetail::Mmio { .. }
                if record
                    .state
                    .pending_events
                    .is_some_and(|p| p.idt_vectoring_info & (1 << 31) != 0) =>
            {
                // The access was the delivery of an event (the IDT, a stack), not an
                // instruction: nothing to emulate; the server has re-injected the event.
                log::warn!("EPT violation during event delivery at rip {:#x}", record.rip);
            }
            ExitDetail::Mmio {
                gpa,
                access,
                instruction,
                ..
            } => match self.mmio_access(record, *gpa, *access, instruction) {
                Some(actions) => {
                    for a in actions.into_iter().flatten() {
                        push(&mut reply.actions, a);
                    }
                }
                None => push(
                    &mut reply.actions,
                    Action::Stop {
                        status: status::UNDECODABLE_MMIO,
                    },
                ),
            },
            ExitDetail::Cpuid { leaf, subleaf } => {
                let [a, b, c, d] = self.cpuid.lookup(*leaf, *subleaf);
                for (gpr, value) in [(Gpr::Rax, a), (Gpr::Rbx, b), (Gpr::Rcx, c), (Gpr::Rdx, d)] {
                    push(
                        &mut reply.actions,
                        Action::SetRegister {
                            register: Register::Gpr(gpr),
                            value: value.into(),
                        },
                    );
                }
                push(&mut reply.actions, Action::AdvanceRip);
            }
            ExitDetail::Rdmsr { index } => match self.msrs.read(*index) {
                MsrOutcome::Value(v) => {
                    push(
                        &mut reply.actions,
                        Action::SetRegister {
                            register: Gpr::Rax.into(),
                            value: v & 0xFFFF_FFFF,
                        },
                    );
                    push(
                        &mut reply.actions,
                        Action::SetRegister {
                            register: Gpr::Rdx.into(),
                            value: v >> 32,
                        },
                    );
                    push(&mut reply.actions, Action::AdvanceRip);
                }
                _ => push(&mut reply.actions, general_protection()),
            },
            ExitDetail::Wrmsr { index, value } => match self.msrs.write(*index, *value) {
                MsrOutcome::Written => push(&mut reply.actions, Action::AdvanceRip),
                _ => push(&mut reply.actions, general_protection()),
            },
            ExitDetail::Hlt => {
                push(&mut reply.actions, Action::AdvanceRip);
                push(&mut reply.actions, Action::WaitForInterrupt);
            }
            ExitDetail::Exception {
                vector,
                kind,
                error_code,
            } => {
                let event = EventRequest {
                    vector: *vector,
                    kind: Some(*kind),
                    error_code: *error_code,
                    instruction_len: None,
                };
                push(&mut reply.actions, Action::Inject(event));
            }
            ExitDetail::InterruptWindow | ExitDetail::NmiWindow => {}
            ExitDetail::TripleFault => push(
                &mut reply.actions,
                Action::Stop {
                    status: status::TRIPLE_FAULT,
                },
            ),
            ExitDetail::InvalidGuestState { .. } => push(
                &mut reply.actions,
                Action::Stop {
                    status: status::INVALID_GUEST_STATE,
                },
            ),
            ExitDetail::VmInstructionError { .. } => push(
                &mut reply.actions,
                Action::Stop {
                    status: status::ENTRY_FAILED,
                },
            ),
            ExitDetail::Vmcall
            | ExitDetail::CrAccess { .. }
            | ExitDetail::EptMisconfig { .. }
            | ExitDetail::Unknown { .. } => {
                log::warn!("exit reason {} not handled; stopping the guest", record.reason);
                push(
                    &mut reply.actions,
                    Action::Stop {
                        status: status::UNHANDLED_EXIT | u32::from(record.reason),
                    },
                )
            }
        }
        // A stop asked for by the guest ends the run after this instruction.
        if let Some(code) = self.stop.take() {
            push(&mut reply.actions, Action::Stop { status: code });
            return;
        }
        while let Some(line) = self.lines.take_next() {
            self.stats.interrupts += 1;
            push(
                &mut reply.actions,
                Action::RaiseInterrupt {
                    vector: self.config.vector_base.wrapping_add(line),
                },
            );
        }
    }

    /// Emulates an MMIO access; `None` if the instruction cannot be decoded.
    fn mmio_access(
        &mut self,
        record: &ExitRecord,
        gpa: u64,
        access: MemoryAccess,
        instruction: &[u8],
    ) -> Option<[Option<Action>; 2]> {
        let decoded = decode_mmio(instruction, self.config.long_mode).ok()?;
        let next = advance_to(record, decoded.length);
        let mut device = self.mmio.find(gpa);
        match decoded.operation {
            MmioOperation::Read {
                register,
                size,
                destination_size,
            } => {
                if access != MemoryAccess::Read {
                    return None;
                }
                let value = match device.as_mut() {
                    Some((offset, dev)) => dev.read(*offset, size),
                    None => {
                        self.stats.unclaimed_mmio += 1;
                        u64::MAX
                    }
                } & AccessSize::from_bytes(size).map_or(u64::MAX, AccessSize::mask);
                let size = AccessSize::from_bytes(destination_size)?;
                let register = Gpr::from_number(register)?;
                Some([
                    Some(Action::CompleteMmioRead {
                        register,
                        size,
                        value,
                    }),
                    Some(next),
                ])
            }
            MmioOperation::WriteRegister { register, size } => {
                let gprs = record.state.gprs?;
                let value = gprs.get(Gpr::from_number(register)?)?;
                self.mmio_write(gpa, size, value);
                Some([Some(next), None])
            }
            MmioOperation::WriteImmediate { value, size } => {
                self.mmio_write(gpa, size, value);
                Some([Some(next), None])
            }
        }
    }

    fn mmio_write(&mut self, gpa: u64, size: u8, value: u64) {
        let value = value & AccessSize::from_bytes(size).map_or(u64::MAX, AccessSize::mask);
        match self.mmio.find(gpa) {
            Some((offset, dev)) => dev.write(offset, size, value),
            None => self.stats.unclaimed_mmio += 1,
        }
    }
}
