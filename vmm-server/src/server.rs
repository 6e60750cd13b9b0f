//! The VMM server core: request dispatch under the badge policy, and the exit loop.
//!
//! The core is transport-agnostic and `no_std`. A host (the seL4 component, a Linux process,
//! a test) feeds it:
//! - requests, with the badge they arrived with: [`VmmServer::handle_request`] (bytes in,
//!   bytes out) or [`VmmServer::handle`] (typed);
//! - the exit loop: [`VmmServer::enter`] runs the guest until it exits (the record to send to
//!   the device model is then [`VmmServer::pending_record`]) or a notification arrives;
//!   [`VmmServer::complete`] / [`VmmServer::complete_bytes`] apply the device model's reply.
//!   [`VmmServer::run`] strings these together over an [`ExitLink`].
//!
//! Message ordering: one exit record is outstanding at a time. A reply is checked whole
//! before any of it is applied (rights of the device model's badge, fit to the exit, the
//! sequence number); a rejected reply changes nothing and the same record is sent again with
//! [`ExitRecord::rejected`] set.

use vmcs::caps::{ControlKind, VmxCapabilities, set_control};
use vmcs::exit::{
    CrAccessQualification, ExitDetail as Decoded, ExitReason, IoDirection as DecodedIoDirection,
};
use vmcs::inject::{self, InjectError, InjectionCapabilities, Interruptibility};
use vmcs::{
    FIELDS, Field, FieldAccess, InterruptionInfo, InterruptionType, VmcsAccess, VmcsControl32, VmcsError,
    VmcsGuest16, VmcsGuest32, VmcsGuest64, VmcsGuestNW, VmcsReadOnly32, VmcsReadOnlyNW,
};
use vmm_protocol::{
    AccessSize, Action, ControlId, ControlRegisters, CrAccessKind, DescriptorTables, DumpPage, ErrorCode,
    ErrorReport, EventKind, EventRequest, ExitClass, ExitDetail, ExitRecord, ExitReply, GeneralRegisters,
    GeneralRegisters as Gprs, GuestState, InterruptibilityState, IoDirection, MAX_MESSAGE_SIZE, MemoryAccess,
    NO_EXIT_REASON, PROTOCOL_VERSION, PendingEvents, Register, Request, Response, Segment, Segments,
    StateGroups, Statistics,
};

use crate::cache::{FieldCache, InvocationCounts};
use crate::kernel::{
    ENTRY_FAILED, EnterInput, EnterOutcome, FaultMessage, KernelError, VcpuKernel, VcpuRegisters,
};
use crate::memory::GuestMemory;
use crate::policy::{BadgePolicy, RequestRights, Rights};

/// External interrupts the server can hold for injection.
pub const IRQ_QUEUE_DEPTH: usize = 32;
/// Rejected replies to the same record after which [`VmmServer::run`] gives up.
pub const MAX_REJECTIONS_IN_A_ROW: u32 = 4;
/// Exit reasons counted individually (higher ones are counted together).
pub const COUNTED_REASONS: usize = 96;

const RFLAGS_DF: u64 = 1 << 10;
const INTERRUPT_WINDOW_EXITING: u32 = 1 << 2;
const NMI_WINDOW_EXITING: u32 = 1 << 22;

/// Exit reasons whose exit can interrupt the delivery of an event, so that IDT-vectoring
/// information may be valid (SDM Vol. 3C, Section 28.2.4): exceptions during delivery, task
/// switches, APIC accesses, EPT violations and misconfigurations, PML full, SPP events.
/// KVM also counts instruction-timeout (75) exits among these.
const DELIVERY_REASONS: [u32; 8] = [0, 9, 44, 48, 49, 62, 66, 75];

/// Whether the guest runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Not entered until a `Run` request.
    Paused,
    /// Entered by the exit loop.
    Running,
    /// Halted: not entered until an interrupt is raised.
    WaitingForInterrupt,
    /// Stopped for good with this status.
    Stopped(u32),
}

/// What [`VmmServer::enter`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entered {
    /// A VM exit; [`VmmServer::pending_record`] holds its record.
    Exit,
    /// The bound notification was signalled (badge): serve requests, then enter again.
    Notification(u64),
}

/// Why the exit loop could not go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerError {
    /// The guest is not running (paused, halted or stopped).
    NotRunning(RunState),
    /// The last exit has not been answered yet.
    ExitPending(u64),
    /// The kernel refused to write back a field before entry (the guest is paused).
    WriteBack(Field, KernelError),
    /// `seL4_VMEnter` itself failed.
    Enter(KernelError),
}

impl core::fmt::Display for ServerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotRunning(state) => write!(f, "the guest is not running ({state:?})"),
            Self::ExitPending(seq) => write!(f, "exit {seq} has not been answered"),
            Self::WriteBack(field, e) => write!(f, "writing back {} failed: {e}", field.name()),
            Self::Enter(e) => write!(f, "VMEnter failed: {e}"),
        }
    }
}

/// What applying a reply did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completed {
    /// The guest continues.
    Resume,
    /// The guest halted and waits for an interrupt.
    Waiting,
    /// The guest was stopped with this status.
    Stopped(u32),
}

/// String I/O in progress for the pending exit.
#[derive(Clone, Copy, Debug)]
struct StringIo {
    input: bool,
    rep: bool,
    /// REP with a count of 0: the exit happens (the I/O check precedes the count check), but
    /// no element moves; the instruction just ends.
    empty: bool,
    size: u8,
    /// Guest-physical address of the element (None: not translatable).
    gpa: Option<u64>,
    /// Address-size mask for RSI/RDI/RCX.
    address_mask: u64,
}

/// The last exit: its record (built, sent and re-sent in place: it is nearly 600 bytes and
/// there is one per exit) and the string I/O it started.
#[derive(Clone, Debug)]
struct Pending {
    record: ExitRecord,
    string: Option<StringIo>,
    /// The record waits for its reply.
    open: bool,
}

/// What applying a reply needs to know of the exit it answers.
#[derive(Clone, Copy, Debug)]
struct ExitFacts {
    rip: u64,
    instruction_len: u8,
    /// The access size of an I/O exit.
    io_size: Option<AccessSize>,
    string: Option<StringIo>,
}

impl Pending {
    fn facts(&self) -> ExitFacts {
        let io_size = match &self.record.detail {
            ExitDetail::Io { size, .. } => Some(*size),
            _ => None,
        };
        ExitFacts {
            rip: self.record.rip,
            instruction_len: self.record.instruction_len,
            io_size,
            string: self.string,
        }
    }
}

/// Server configuration.
#[derive(Clone, Copy, Debug)]
pub struct ServerConfig {
    /// The VCPU's number, reported in exit records.
    pub vcpu: u16,
    /// The capability MSRs of the processor (as the kernel enforces them), for `SetControl`.
    pub caps: VmxCapabilities,
    /// The badge of the component that answers exits (the device model).
    pub exit_handler: u64,
    /// The guest starts running without waiting for a `Run` request.
    pub start_running: bool,
}

/// The VMM server. `K` is the kernel interface, `M` guest memory, `B` the policy's capacity.
#[derive(Debug)]
pub struct VmmServer<K: VcpuKernel, M: GuestMemory, const B: usize = 8> {
    kernel: K,
    memory: M,
    cache: FieldCache,
    policy: BadgePolicy<B>,
    config: ServerConfig,
    state: RunState,
    seq: u64,
    /// The last exit; see [`VmmServer::pending`].
    last_exit: Pending,
    /// The class of the exit whose invocations are being counted.
    counting_class: Option<ExitClass>,
    groups: [StateGroups; ExitClass::COUNT],
    irqs: heapless::Deque<u8, IRQ_QUEUE_DEPTH>,
    stats: Statistics,
    by_reason: [u64; COUNTED_REASONS],
    by_reason_other: u64,
    invocations_by_class: [InvocationCounts; ExitClass::COUNT],
    invocations_outside_exits: InvocationCounts,
}

/// The groups each class carries until the device model asks otherwise: what the fault
/// message brings for free (general registers, RFLAGS), nothing for I/O.
fn default_groups(class: ExitClass) -> StateGroups {
    match class {
        ExitClass::Io => StateGroups::empty(),
        // Whether an EPT violation hit an instruction or the delivery of an event decides
        // whether there is anything to emulate; the IDT-vectoring information was read anyway.
        ExitClass::Mmio => StateGroups::GPRS | StateGroups::RFLAGS | StateGroups::PENDING_EVENTS,
        _ => StateGroups::GPRS | StateGroups::RFLAGS,
    }
}

fn to_wire_registers(r: &VcpuRegisters) -> GeneralRegisters {
    Gprs {
        rax: r.rax,
        rcx: r.rcx,
        rdx: r.rdx,
        rbx: r.rbx,
        rbp: r.rbp,
        rsi: r.rsi,
        rdi: r.rdi,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
    }
}

fn from_wire_registers(r: &GeneralRegisters) -> VcpuRegisters {
    VcpuRegisters {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        rbp: r.rbp,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
    }
}

fn control_kind(id: ControlId) -> ControlKind {
    match id {
        ControlId::Pin => ControlKind::Pin,
        ControlId::Primary => ControlKind::Primary,
        ControlId::Secondary => ControlKind::Secondary,
        ControlId::Tertiary => ControlKind::Tertiary,
        ControlId::Exit => ControlKind::Exit,
        ControlId::SecondaryExit => ControlKind::Exit2,
        ControlId::Entry => ControlKind::Entry,
    }
}

fn vmcs_error_code(error: VmcsError) -> ErrorCode {
    match error {
        VmcsError::Kernel(n) => ErrorCode::Kernel(n),
        VmcsError::VmFailValid(e) => ErrorCode::Vmcs(e.number()),
        VmcsError::VmFailInvalid => ErrorCode::Vmcs(0),
    }
}

fn inject_error_code(error: InjectError) -> ErrorCode {
    match error {
        InjectError::Invalid(_) => ErrorCode::InvalidEvent,
        InjectError::EventPending(_) => ErrorCode::EventPending,
        InjectError::Vmcs(e) => vmcs_error_code(e),
    }
}

/// The `vmcs` crate's event for a wire request; `exit_len` fills a missing instruction length.
fn to_event(request: &EventRequest, exit_len: u8) -> inject::Event {
    let kind = match request.kind {
        None => inject::EventKind::Auto,
        Some(EventKind::ExternalInterrupt) => inject::EventKind::ExternalInterrupt,
        Some(EventKind::Nmi) => inject::EventKind::Nmi,
        Some(EventKind::HardwareException) => inject::EventKind::HardwareException,
        Some(EventKind::SoftwareInterrupt) => inject::EventKind::SoftwareInterrupt,
        Some(EventKind::PrivilegedSoftwareException) => inject::EventKind::PrivilegedSoftwareException,
        Some(EventKind::SoftwareException) => inject::EventKind::SoftwareException,
    };
    let software = matches!(
        request.kind,
        Some(
            EventKind::SoftwareInterrupt
                | EventKind::PrivilegedSoftwareException
                | EventKind::SoftwareException
        )
    );
    // With the kind left to the server, exceptions that always push an error code get 0.
    let error_code = match (request.kind, request.error_code) {
        (None, None) if request.vector < 32 && inject::exception_pushes_error_code(request.vector) => Some(0),
        (_, code) => code,
    };
    let instruction_len = match request.instruction_len {
        Some(len) => Some(u32::from(len)),
        None if software => Some(u32::from(exit_len)),
        None => None,
    };
    inject::Event {
        vector: request.vector,
        kind,
        error_code,
        instruction_len,
    }
}

impl<K: VcpuKernel, M: GuestMemory, const B: usize> VmmServer<K, M, B> {
    /// A server over `kernel` and `memory`, with `policy` deciding who may do what.
    pub fn new(kernel: K, memory: M, policy: BadgePolicy<B>, config: ServerConfig) -> Self {
        let mut groups = [StateGroups::empty(); ExitClass::COUNT];
        for class in ExitClass::ALL {
            groups[class.index()] = default_groups(class);
        }
        let mut server = Self {
            kernel,
            memory,
            cache: FieldCache::new(),
            policy,
            config,
            state: if config.start_running {
                RunState::Running
            } else {
                RunState::Paused
            },
            seq: 0,
            last_exit: Pending {
                record: ExitRecord::EMPTY,
                string: None,
                open: false,
            },
            counting_class: None,
            groups,
            irqs: heapless::Deque::new(),
            stats: Statistics::default(),
            by_reason: [0; COUNTED_REASONS],
            by_reason_other: 0,
            invocations_by_class: [InvocationCounts::default(); ExitClass::COUNT],
            invocations_outside_exits: InvocationCounts::default(),
        };
        server.load_enter_input();
        server
    }

    /// Takes what the next `VMEnter` passes (guest RIP, primary controls, entry interruption
    /// information) from the VCPU as it was set up before the server got it: `VMEnter` writes
    /// these three fields itself, so a cache that started from zeros would undo the setup.
    /// A field the kernel does not let user level read stays 0.
    fn load_enter_input(&mut self) {
        let mut read = |field: u32| {
            let value = self.kernel.read_vmcs(field);
            self.invocations_outside_exits.read_vmcs += 1;
            self.stats.kernel_invocations += 1;
            value.unwrap_or(0)
        };
        let rip = read(VmcsGuestNW::Rip.encoding().raw());
        let primary_controls = read(VmcsControl32::PrimaryProcBasedControls.encoding().raw()) as u32;
        let entry_interruption_info = read(VmcsControl32::EntryInterruptionInfo.encoding().raw()) as u32;
        self.cache.load_enter_input(EnterInput {
            rip,
            primary_controls,
            entry_interruption_info,
        });
    }

    /// The kernel interface (e.g. the model VCPU, to inspect it after a run).
    pub fn kernel(&self) -> &K {
        &self.kernel
    }

    /// The kernel interface, mutable (e.g. to signal the model's notification).
    pub fn kernel_mut(&mut self) -> &mut K {
        &mut self.kernel
    }

    /// Guest memory.
    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// The run state.
    pub fn state(&self) -> RunState {
        self.state
    }

    /// Counters (the same as the `Statistics` response).
    pub fn statistics(&self) -> &Statistics {
        &self.stats
    }

    /// Exits per basic reason number: `(reason, count)` for every reason seen (reasons
    /// `>= COUNTED_REASONS`, failed entries included, are reported as `u16::MAX`).
    pub fn exits_by_reason(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.by_reason
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| (r as u16, *n))
            .chain((self.by_reason_other > 0).then_some((u16::MAX, self.by_reason_other)))
    }

    /// Kernel invocations made while handling exits of each class (index: [`ExitClass::index`]).
    pub fn invocations_by_class(&self) -> &[InvocationCounts; ExitClass::COUNT] {
        &self.invocations_by_class
    }

    /// Kernel invocations made outside exit handling (requests before the first exit).
    pub fn invocations_outside_exits(&self) -> &InvocationCounts {
        &self.invocations_outside_exits
    }

    /// The record of the exit awaiting an answer.
    pub fn pending_record(&self) -> Option<&ExitRecord> {
        self.pending().map(|p| &p.record)
    }

    /// The exit awaiting an answer.
    fn pending(&self) -> Option<&Pending> {
        self.last_exit.open.then_some(&self.last_exit)
    }

    /// Encodes the pending record into `buf`.
    ///
    /// # Errors
    /// No record is pending, or the buffer is too small.
    pub fn encode_pending<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], vmm_protocol::WireError> {
        match self.pending() {
            Some(p) => p.record.encode(buf),
            None => Err(vmm_protocol::WireError::Unsupported),
        }
    }

    // ----- requests -----

    /// Decodes a request, handles it for `badge`, and encodes the response into `out`.
    /// Malformed input gets an `Error(Malformed)` response; this never fails.
    pub fn handle_request<'o>(
        &mut self,
        badge: u64,
        bytes: &[u8],
        out: &'o mut [u8; MAX_MESSAGE_SIZE],
    ) -> &'o [u8] {
        let response = match Request::decode(bytes) {
            Ok(request) => self.handle(badge, &request),
            Err(_) => {
                self.stats.requests += 1;
                self.stats.malformed += 1;
                Response::Error(ErrorReport::new(ErrorCode::Malformed))
            }
        };
        // Every response fits MAX_MESSAGE_SIZE (checked at compile time by the protocol).
        let len = response.encode(&mut out[..]).map(|b| b.len()).unwrap_or(0);
        &out[..len]
    }

    fn required_right(request: &Request) -> RequestRights {
        match request {
            Request::Hello { .. } => RequestRights::HELLO,
            Request::ReadFields(_) => RequestRights::READ_FIELDS,
            Request::WriteFields(_) => RequestRights::WRITE_FIELDS,
            Request::SetControl { .. } => RequestRights::SET_CONTROL,
            Request::Inject(_) => RequestRights::INJECT,
            Request::ReadRegisters => RequestRights::READ_REGISTERS,
            Request::WriteRegisters { .. } => RequestRights::WRITE_REGISTERS,
            Request::RaiseInterrupt { .. } => RequestRights::RAISE_INTERRUPT,
            Request::Run | Request::Pause => RequestRights::RUN_CONTROL,
            Request::Statistics => RequestRights::STATISTICS,
            Request::Dump { .. } => RequestRights::DUMP,
        }
    }

    /// Handles a decoded request from `badge`.
    pub fn handle(&mut self, badge: u64, request: &Request) -> Response {
        self.stats.requests += 1;
        let rights = self.policy.rights(badge);
        if !rights.requests.contains(Self::required_right(request)) {
            self.stats.forbidden += 1;
            log::warn!("badge {badge:#x}: {request:?} forbidden");
            return Response::Error(ErrorReport::new(ErrorCode::Forbidden));
        }
        let response = self.dispatch(&rights, request);
        if let Response::Error(report) = &response {
            if report.code == ErrorCode::Forbidden {
                self.stats.forbidden += 1;
            } else {
                self.stats.failed += 1;
            }
        }
        response
    }

    fn dispatch(&mut self, rights: &Rights, request: &Request) -> Response {
        match request {
            Request::Hello { version } if *version == PROTOCOL_VERSION => Response::Hello {
                version: PROTOCOL_VERSION,
            },
            Request::Hello { .. } => Response::Error(ErrorReport::new(ErrorCode::VersionMismatch {
                server: PROTOCOL_VERSION,
            })),
            Request::ReadFields(encodings) => self.read_fields(rights, encodings),
            Request::WriteFields(items) => self.write_fields(rights, items),
            Request::SetControl { control, set, clear } => self.set_control(*control, *set, *clear),
            Request::Inject(event) => {
                let exit_len = self.pending_record().map_or(0, |r| r.instruction_len);
                let event = to_event(event, exit_len);
                let caps = self.injection_caps();
                let cr0 = VmcsGuestNW::Cr0
                    .read(&mut self.cache.mediated(&mut self.kernel))
                    .unwrap_or(1);
                if inject::prepare(&event, cr0, caps).is_ok_and(|entry| !self.kernel_can_inject(&entry)) {
                    return Response::Error(ErrorReport::new(ErrorCode::Unsupported));
                }
                match inject::inject(&mut self.cache.mediated(&mut self.kernel), &event, caps) {
                    Ok(_) => {
                        self.stats.events_injected += 1;
                        Response::Ok
                    }
                    Err(e) => Response::Error(ErrorReport::new(inject_error_code(e))),
                }
            }
            Request::ReadRegisters => Response::Registers(to_wire_registers(self.cache.registers())),
            Request::WriteRegisters { registers, mask } => {
                let mut wire = to_wire_registers(self.cache.registers());
                wire.merge(registers, *mask);
                *self.cache.registers_mut() = from_wire_registers(&wire);
                Response::Ok
            }
            Request::RaiseInterrupt { vector } => match self.raise_interrupt(*vector) {
                Ok(()) => Response::Ok,
                Err(code) => Response::Error(ErrorReport::new(code)),
            },
            Request::Run => match self.state {
                RunState::Stopped(_) => Response::Error(ErrorReport::new(ErrorCode::Stopped)),
                _ => {
                    self.state = RunState::Running;
                    Response::Ok
                }
            },
            Request::Pause => match self.state {
                RunState::Stopped(_) => Response::Error(ErrorReport::new(ErrorCode::Stopped)),
                _ => {
                    self.state = RunState::Paused;
                    Response::Ok
                }
            },
            Request::Statistics => Response::Statistics(self.stats.clone()),
            Request::Dump { start } => Response::Dump(self.dump_page(rights, *start)),
        }
    }

    fn injection_caps(&self) -> InjectionCapabilities {
        InjectionCapabilities::from_vmx_misc(
            self.config
                .caps
                .get(vmcs::caps::VmxCapabilityMsr::Misc)
                .unwrap_or(0),
        )
    }

    fn read_fields(&mut self, rights: &Rights, encodings: &[u32]) -> Response {
        let mut values = vmm_protocol::heapless::Vec::new();
        for (index, &encoding) in encodings.iter().enumerate() {
            let at = |code| Response::Error(ErrorReport::at(code, index as u16));
            if Field::from_any_encoding(encoding).is_none() {
                return at(ErrorCode::UnknownField);
            }
            if !rights.read.contains(encoding) {
                return at(ErrorCode::Forbidden);
            }
            match self.cache.mediated(&mut self.kernel).read(encoding) {
                Ok(value) => {
                    let _ = values.push(value); // same capacity as the request batch
                }
                Err(e) => return at(vmcs_error_code(e)),
            }
        }
        Response::Values(values)
    }

    fn write_fields(&mut self, rights: &Rights, items: &[vmm_protocol::FieldValue]) -> Response {
        // Check the whole batch before writing any of it.
        for (index, item) in items.iter().enumerate() {
            let code = match Field::from_any_encoding(item.encoding) {
                None => Some(ErrorCode::UnknownField),
                Some((field, _)) if field.access() == FieldAccess::ReadOnly => Some(ErrorCode::ReadOnly),
                Some(_) if !rights.write.contains(item.encoding) => Some(ErrorCode::Forbidden),
                Some(_) => None,
            };
            if let Some(code) = code {
                return Response::Error(ErrorReport::at(code, index as u16));
            }
        }
        let mut written = vmm_protocol::heapless::Vec::new();
        for (index, item) in items.iter().enumerate() {
            match self
                .cache
                .mediated(&mut self.kernel)
                .write_through(item.encoding, item.value)
            {
                Ok(value) => {
                    let _ = written.push(value);
                }
                // Items before `index` are written; the report says where it stopped.
                Err(e) => return Response::Error(ErrorReport::at(vmcs_error_code(e), index as u16)),
            }
        }
        Response::Written(written)
    }

    fn set_control(&mut self, control: ControlId, set: u64, clear: u64) -> Response {
        let kind = control_kind(control);
        let mut vmcs = self.cache.mediated(&mut self.kernel);
        // The current value keeps the bits not mentioned; a kernel that hides the field
        // (seL4 5.0 and the secondary controls) leaves the defaults.
        let previous = vmcs.read(kind.vmcs_field().encoding().raw()).ok();
        let value = match set_control(&self.config.caps, kind, previous, set, clear) {
            Ok(value) => value,
            Err(e) => {
                log::info!("SetControl {control:?} refused: {e}");
                return Response::Error(ErrorReport::new(ErrorCode::InvalidControl));
            }
        };
        match vmcs.write_through(kind.vmcs_field().encoding().raw(), value) {
            Ok(written) => {
                Response::Written(vmm_protocol::heapless::Vec::from_slice(&[written]).unwrap_or_default())
            }
            Err(e) => Response::Error(ErrorReport::new(vmcs_error_code(e))),
        }
    }

    fn dump_page(&mut self, rights: &Rights, start: u16) -> DumpPage {
        let mut page = DumpPage {
            entries: vmm_protocol::heapless::Vec::new(),
            next: None,
        };
        let mut vmcs = self.cache.mediated(&mut self.kernel);
        for (index, row) in FIELDS.iter().enumerate().skip(usize::from(start)) {
            if page.entries.is_full() {
                page.next = Some(index as u16);
                break;
            }
            if !rights.read.contains_field(row.field) {
                continue;
            }
            if let Ok(value) = vmcs.read(row.encoding.raw()) {
                let _ = page.entries.push(vmm_protocol::FieldValue {
                    encoding: row.encoding.raw(),
                    value,
                });
            }
        }
        page
    }

    /// Queues an external interrupt (vector 32–255). A halted guest wakes up.
    fn raise_interrupt(&mut self, vector: u8) -> Result<(), ErrorCode> {
        if vector < 32 {
            return Err(ErrorCode::InvalidEvent);
        }
        self.irqs.push_back(vector).map_err(|_| ErrorCode::Busy)?;
        self.stats.interrupts_raised += 1;
        if self.state == RunState::WaitingForInterrupt {
            self.state = RunState::Running;
        }
        if !self.last_exit.open {
            self.deliver_interrupts();
        }
        Ok(())
    }

    /// Injects the first queued interrupt if the guest can take it now, else asks for an
    /// interrupt-window exit (SDM Vol. 3C, Section 26.7.5). Costs no kernel invocation after
    /// an exit: RFLAGS and interruptibility come with the fault message, and the controls and
    /// entry information are `VMEnter` inputs.
    fn deliver_interrupts(&mut self) {
        let Some(&vector) = self.irqs.front() else { return };
        let mut vmcs = self.cache.mediated(&mut self.kernel);
        let Ok(entry) = VmcsControl32::EntryInterruptionInfo.read(&mut vmcs) else {
            return;
        };
        let Ok(primary) = VmcsControl32::PrimaryProcBasedControls.read(&mut vmcs) else {
            return;
        };
        if InterruptionInfo::from_raw(entry).valid() {
            // Something is being injected already: come back when it has been delivered.
            let _ =
                VmcsControl32::PrimaryProcBasedControls.write(&mut vmcs, primary | INTERRUPT_WINDOW_EXITING);
            return;
        }
        let rflags = VmcsGuestNW::Rflags.read(&mut vmcs).unwrap_or(0);
        let interruptibility = Interruptibility::from_bits_retain(
            VmcsGuest32::InterruptibilityState.read(&mut vmcs).unwrap_or(0),
        );
        let open = inject::interrupt_window_open(rflags, interruptibility, inject::ActivityState::Active);
        if open {
            let info = InterruptionInfo::new(vector, InterruptionType::ExternalInterrupt, false);
            if VmcsControl32::EntryInterruptionInfo
                .write(&mut vmcs, info.raw())
                .is_ok()
            {
                let _ = self.irqs.pop_front();
                self.stats.events_injected += 1;
                let still_waiting = !self.irqs.is_empty();
                let window = if still_waiting {
                    primary | INTERRUPT_WINDOW_EXITING
                } else {
                    primary & !INTERRUPT_WINDOW_EXITING
                };
                let _ = VmcsControl32::PrimaryProcBasedControls.write(&mut vmcs, window);
            }
        } else {
            let _ =
                VmcsControl32::PrimaryProcBasedControls.write(&mut vmcs, primary | INTERRUPT_WINDOW_EXITING);
        }
    }

    // ----- the exit loop -----

    /// Writes back what changed and enters the guest.
    ///
    /// # Errors
    /// The guest is not running, the last exit is unanswered, or the kernel refused.
    pub fn enter(&mut self) -> Result<Entered, ServerError> {
        if self.state != RunState::Running {
            return Err(ServerError::NotRunning(self.state));
        }
        if let Some(p) = self.pending() {
            return Err(ServerError::ExitPending(p.record.seq));
        }
        let flushed = self.cache.flush(&mut self.kernel);
        self.close_exit_accounting();
        let input = match flushed {
            Ok(input) => input,
            Err((field, error)) => {
                log::error!("write-back of {} refused: {error}; guest paused", field.name());
                self.state = RunState::Paused;
                return Err(ServerError::WriteBack(field, error));
            }
        };
        let outcome = self.kernel.vm_enter(&input);
        self.stats.kernel_invocations += 1;
        // By reference: the fault message is 200 bytes.
        match &outcome {
            Err(error) => {
                self.state = RunState::Paused;
                Err(ServerError::Enter(*error))
            }
            Ok(EnterOutcome::Notification { badge, resume }) => {
                self.invocations_outside_exits.vm_enter += 1;
                self.cache.resume_after_notification(resume);
                Ok(Entered::Notification(*badge))
            }
            Ok(EnterOutcome::Exit(fault)) => {
                self.on_exit(fault);
                Ok(Entered::Exit)
            }
        }
    }

    /// Attributes the invocations of the exit just finished to its class.
    fn close_exit_accounting(&mut self) {
        let counts = *self.cache.counts();
        // The VMEnter that produced the exit was counted in `kernel_invocations` already.
        self.stats.kernel_invocations += counts.beyond_enter();
        match self.counting_class.take() {
            Some(class) => {
                self.invocations_by_class[class.index()].add(&counts);
                self.stats.kernel_invocations_by_class[class.index()] += counts.total();
            }
            None => self.invocations_outside_exits.add(&counts),
        }
        self.cache.reset_counts();
    }

    fn on_exit(&mut self, fault: &FaultMessage) {
        self.cache.begin_exit(fault);
        self.stats.exits += 1;
        let (reason, entry_failure) = match fault.exit_reason {
            ENTRY_FAILED => (NO_EXIT_REASON, true),
            raw => {
                let basic = (raw & 0xFFFF) as u16;
                (basic, matches!(basic, 33 | 34 | 41) || raw & (1 << 31) != 0)
            }
        };
        match self.by_reason.get_mut(usize::from(reason)) {
            Some(count) => *count += 1,
            None => self.by_reason_other += 1,
        }
        if DELIVERY_REASONS.contains(&fault.exit_reason) {
            self.reinject_interrupted_event();
        }
        let mut string = None;
        let detail = self.decode_detail(fault, reason, &mut string);
        let class = detail.class();
        if string.is_some_and(|s: StringIo| s.empty) {
            // REP INS/OUTS with a count of 0: nothing moves, nothing for the device model;
            // the instruction ends here.
            self.stats.exits_by_class[class.index()] += 1;
            self.counting_class = Some(class);
            let next = fault.rip.wrapping_add(u64::from(fault.instruction_len));
            let _ = VmcsGuestNW::Rip.write(&mut self.cache.mediated(&mut self.kernel), next);
            return;
        }
        self.stats.exits_by_class[class.index()] += 1;
        self.counting_class = Some(class);
        if class == ExitClass::InterruptWindow {
            // Our own request for a window: deliver what waits.
            self.clear_window_request(matches!(detail, ExitDetail::NmiWindow));
            self.deliver_interrupts();
        }
        let instruction_len = self.defined_instruction_len(fault, reason);
        self.seq += 1;
        // Field by field into the one record, not a new record moved in.
        let exit = &mut self.last_exit;
        let record = &mut exit.record;
        record.seq = self.seq;
        record.vcpu = self.config.vcpu;
        record.reason = reason;
        record.entry_failure = entry_failure;
        record.detail = detail;
        record.rip = fault.rip;
        record.instruction_len = instruction_len;
        record.rejected = None;
        read_guest_state(
            &mut record.state,
            self.groups[class.index()],
            &mut self.cache,
            &mut self.kernel,
        );
        exit.string = string;
        exit.open = true;
        log::debug!("exit {}: reason {} {:?}", record.seq, reason, record.detail);
    }

    /// The exit's instruction length where the SDM defines one (Section 28.2.5), else 0: an
    /// EPT violation, say, has none, whatever a processor leaves in the field.
    fn defined_instruction_len(&mut self, fault: &FaultMessage, reason: u16) -> u8 {
        if fault.exit_reason == ENTRY_FAILED {
            return 0;
        }
        let reason = ExitReason::from_number(reason);
        let cached = |cache: &FieldCache, field: VmcsReadOnly32| {
            InterruptionInfo::from_raw(cache.cached(field.into()).unwrap_or(0) as u32)
        };
        let interruption = cached(&self.cache, VmcsReadOnly32::ExitInterruptionInfo);
        // Read for the exits that can interrupt event delivery; invalid (0) otherwise.
        let idt = cached(&self.cache, VmcsReadOnly32::IdtVectoringInfo);
        if vmcs::VmxExitInfo::instruction_length_defined(reason, fault.qualification, interruption, idt) {
            u8::try_from(fault.instruction_len).unwrap_or(u8::MAX)
        } else {
            0
        }
    }

    fn clear_window_request(&mut self, nmi: bool) {
        let bit = if nmi {
            NMI_WINDOW_EXITING
        } else {
            INTERRUPT_WINDOW_EXITING
        };
        let mut vmcs = self.cache.mediated(&mut self.kernel);
        if let Ok(primary) = VmcsControl32::PrimaryProcBasedControls.read(&mut vmcs) {
            let _ = VmcsControl32::PrimaryProcBasedControls.write(&mut vmcs, primary & !bit);
        }
    }

    /// An exit during event delivery loses the event unless it is injected again
    /// (SDM Vol. 3C, Section 28.2.4; Section 31.7.1.1 of the May 2020 edition on re-injection).
    fn reinject_interrupted_event(&mut self) {
        let mut vmcs = self.cache.mediated(&mut self.kernel);
        let Ok(idt) = VmcsReadOnly32::IdtVectoringInfo
            .read(&mut vmcs)
            .map(InterruptionInfo::from_raw)
        else {
            return;
        };
        if !idt.valid() {
            return;
        }
        // A software event needs the VM-entry instruction length, an exception with an error
        // code the entry error-code field; seL4 lets user level write neither (5.0: not the
        // error code; no version: the length). Then the event is left to happen again: guest
        // RIP still points at the instruction that raised it.
        let needs_length = idt.kind().needs_instruction_length();
        let needs_error_code = idt.error_code_valid();
        if (needs_length && !self.kernel.writable(VmcsControl32::EntryInstructionLength as u32))
            || (needs_error_code
                && !self
                    .kernel
                    .writable(VmcsControl32::EntryExceptionErrorCode as u32))
        {
            log::info!("not re-injecting {idt:?}: the kernel does not expose the fields it needs");
            return;
        }
        let mut vmcs = self.cache.mediated(&mut self.kernel);
        match inject::reinject_idt_vectoring(&mut vmcs) {
            Ok(Some(entry)) => {
                self.stats.events_injected += 1;
                log::debug!("re-injecting {:?}", entry.interruption_info);
            }
            Ok(None) => {}
            Err(e) => log::warn!("cannot re-inject the interrupted event: {e:?}"),
        }
    }

    fn decode_detail(
        &mut self,
        fault: &FaultMessage,
        reason: u16,
        string: &mut Option<StringIo>,
    ) -> ExitDetail {
        if fault.exit_reason == ENTRY_FAILED {
            let error = VmcsReadOnly32::VmInstructionError
                .read(&mut self.cache.mediated(&mut self.kernel))
                .unwrap_or(0);
            return ExitDetail::VmInstructionError { error };
        }
        let regs = *self.cache.registers();
        let qualification = fault.qualification;
        let unknown = ExitDetail::Unknown { qualification };
        let exit_reason = ExitReason::from_number(reason);
        let interruption_info = if exit_reason == ExitReason::ExceptionOrNmi {
            match VmcsReadOnly32::ExitInterruptionInfo.read(&mut self.cache.mediated(&mut self.kernel)) {
                Ok(raw) => Some(InterruptionInfo::from_raw(raw)),
                Err(_) => return unknown,
            }
        } else {
            None
        };
        let decoded = match Decoded::decode(exit_reason, qualification, interruption_info, None) {
            Ok(decoded) => decoded,
            Err(e) => {
                log::warn!(
                    "exit reason {reason}: qualification {qualification:#x} does not decode ({e}); forwarded raw"
                );
                return unknown;
            }
        };
        match decoded {
            Decoded::Exception { info, .. } => {
                let Some(kind) = EventKind::from_interruption_type(info.kind().bits() as u8) else {
                    return unknown;
                };
                let error_code = if info.error_code_valid() {
                    VmcsReadOnly32::ExitInterruptionErrorCode
                        .read(&mut self.cache.mediated(&mut self.kernel))
                        .ok()
                } else {
                    None
                };
                ExitDetail::Exception {
                    vector: info.vector(),
                    kind,
                    error_code,
                }
            }
            Decoded::Io {
                qualification: io, ..
            } => {
                let size = match io.size.bytes() {
                    1 => AccessSize::Byte,
                    2 => AccessSize::Word,
                    _ => AccessSize::Dword,
                };
                let direction = match io.direction {
                    DecodedIoDirection::In => IoDirection::In,
                    DecodedIoDirection::Out => IoDirection::Out,
                };
                let value = if io.string {
                    let element =
                        self.start_string_io(io.direction == DecodedIoDirection::In, io.rep, io.size.bytes());
                    *string = Some(element.0);
                    element.1
                } else if direction == IoDirection::Out {
                    Some((regs.rax & size.mask()) as u32)
                } else {
                    None
                };
                ExitDetail::Io {
                    port: io.port,
                    size,
                    direction,
                    string: io.string,
                    rep: io.rep,
                    value,
                }
            }
            Decoded::CrAccess(cr) => {
                let access = match cr {
                    CrAccessQualification::MovToCr { gpr, .. } => CrAccessKind::MovToCr {
                        gpr: wire_gpr(gpr.number()),
                    },
                    CrAccessQualification::MovFromCr { gpr, .. } => CrAccessKind::MovFromCr {
                        gpr: wire_gpr(gpr.number()),
                    },
                    CrAccessQualification::Clts => CrAccessKind::Clts,
                    CrAccessQualification::Lmsw { operand, source_data } => CrAccessKind::Lmsw {
                        source_data,
                        memory_operand: operand == vmcs::exit::LmswOperand::Memory,
                    },
                };
                ExitDetail::CrAccess {
                    cr: cr.cr().number(),
                    access,
                }
            }
            Decoded::EptViolation(q) => {
                let gpa = self
                    .cache
                    .cached(vmcs::VmcsReadOnly64::GuestPhysicalAddress.into())
                    .unwrap_or(fault.guest_physical);
                let gla = if q.linear_address_valid {
                    VmcsReadOnlyNW::GuestLinearAddress
                        .read(&mut self.cache.mediated(&mut self.kernel))
                        .ok()
                } else {
                    None
                };
                let access = if q.write {
                    MemoryAccess::Write
                } else if q.fetch {
                    MemoryAccess::Fetch
                } else {
                    MemoryAccess::Read
                };
                let instruction = self.fetch_instruction(fault.rip);
                ExitDetail::Mmio {
                    gpa,
                    gla,
                    access,
                    qualification,
                    instruction,
                }
            }
            Decoded::EptMisconfiguration => ExitDetail::EptMisconfig {
                gpa: fault.guest_physical,
            },
            Decoded::EntryFailureGuestState(_) => ExitDetail::InvalidGuestState { qualification },
            Decoded::Other { reason: other, .. } => match other {
                ExitReason::TripleFault => ExitDetail::TripleFault,
                ExitReason::InterruptWindow => ExitDetail::InterruptWindow,
                ExitReason::NmiWindow => ExitDetail::NmiWindow,
                ExitReason::Cpuid => ExitDetail::Cpuid {
                    leaf: regs.rax as u32,
                    subleaf: regs.rcx as u32,
                },
                ExitReason::Hlt => ExitDetail::Hlt,
                ExitReason::Vmcall => ExitDetail::Vmcall,
                ExitReason::Rdmsr => ExitDetail::Rdmsr {
                    index: regs.rcx as u32,
                },
                ExitReason::Wrmsr => ExitDetail::Wrmsr {
                    index: regs.rcx as u32,
                    value: ((regs.rdx & 0xFFFF_FFFF) << 32) | (regs.rax & 0xFFFF_FFFF),
                },
                _ => unknown,
            },
            _ => unknown,
        }
    }

    /// The bytes at the guest's CS:RIP, for the device model to decode an MMIO access (EPT
    /// violations define no instruction length, SDM Vol. 3C, Section 28.2.5). Empty when
    /// guest memory cannot supply them.
    fn fetch_instruction(&mut self, rip: u64) -> vmm_protocol::InstructionBytes {
        let mut bytes = vmm_protocol::InstructionBytes::new();
        let cs_base = VmcsGuestNW::CsBase
            .read(&mut self.cache.mediated(&mut self.kernel))
            .unwrap_or(0);
        let Some(gpa) = self.memory.translate(cs_base.wrapping_add(rip)) else {
            return bytes;
        };
        let mut buf = [0u8; vmm_protocol::MAX_INSTRUCTION_LEN];
        // The instruction may end close to the end of RAM: take the longest readable prefix.
        for len in (1..=buf.len()).rev() {
            if self.memory.read(gpa, &mut buf[..len]) {
                let _ = bytes.extend_from_slice(&buf[..len]);
                break;
            }
        }
        bytes
    }

    /// Prepares one element of INS/OUTS: where it lives, and for OUTS its value.
    fn start_string_io(&mut self, input: bool, rep: bool, size: u8) -> (StringIo, Option<u32>) {
        let rcx = self.cache.registers().rcx;
        let mut vmcs = self.cache.mediated(&mut self.kernel);
        // The guest-linear address field holds the memory operand's address for INS/OUTS
        // (SDM Vol. 3C, Section 28.2.1); the instruction information gives the address size
        // (Section 28.2.5, Table 28-8) on processors that report it (IA32_VMX_BASIC bit 54).
        let reports_size = self
            .config
            .caps
            .basic()
            .is_some_and(|b| b.ins_outs_instruction_info);
        let address_mask = if reports_size {
            match VmcsReadOnly32::ExitInstructionInfo
                .read(&mut vmcs)
                .map(|i| (i >> 7) & 7)
            {
                Ok(0) => 0xFFFF,
                Ok(1) => 0xFFFF_FFFF,
                _ => u64::MAX,
            }
        } else {
            // Without IA32_VMX_BASIC bit 54 the field is undefined: assume 64-bit addressing.
            u64::MAX
        };
        let empty = rep && rcx & address_mask == 0;
        let linear = if empty {
            None
        } else {
            VmcsReadOnlyNW::GuestLinearAddress.read(&mut vmcs).ok()
        };
        let gpa = linear.and_then(|l| self.memory.translate(l));
        let mut value = None;
        if !input && let Some(gpa) = gpa {
            let mut bytes = [0u8; 4];
            if self.memory.read(gpa, &mut bytes[..usize::from(size)]) {
                value = Some(u32::from_le_bytes(bytes));
            }
        }
        (
            StringIo {
                input,
                rep,
                empty,
                size,
                gpa,
                address_mask,
            },
            value,
        )
    }

    // ----- replies -----

    /// Decodes and applies the device model's reply to the pending exit.
    ///
    /// # Errors
    /// The reply was rejected (malformed, wrong sequence number, an action not allowed or not
    /// applicable); nothing was applied and the pending record now carries the report.
    pub fn complete_bytes(&mut self, bytes: &[u8]) -> Result<Completed, ErrorReport> {
        match ExitReply::decode(bytes) {
            Ok(reply) => self.complete(&reply),
            Err(_) => {
                self.stats.malformed += 1;
                Err(self.reject(ErrorReport::new(ErrorCode::Malformed)))
            }
        }
    }

    fn reject(&mut self, report: ErrorReport) -> ErrorReport {
        self.stats.replies_rejected += 1;
        if self.last_exit.open {
            self.last_exit.record.rejected = Some(report);
        }
        log::warn!("exit reply rejected: {report}");
        report
    }

    /// Applies the device model's reply to the pending exit.
    ///
    /// # Errors
    /// As [`VmmServer::complete_bytes`].
    pub fn complete(&mut self, reply: &ExitReply) -> Result<Completed, ErrorReport> {
        let Some(pending) = self.pending() else {
            return Err(ErrorReport::new(ErrorCode::SequenceMismatch));
        };
        if reply.seq != pending.record.seq {
            return Err(self.reject(ErrorReport::new(ErrorCode::SequenceMismatch)));
        }
        let rights = self.policy.rights(self.config.exit_handler);
        if let Err(report) = self.check_actions(&rights, reply) {
            if report.code == ErrorCode::Forbidden {
                self.stats.forbidden += 1;
            }
            return Err(self.reject(report));
        }
        let facts = self.last_exit.facts();
        self.last_exit.open = false;
        let mut wait = false;
        for action in &reply.actions {
            match *action {
                Action::Stop { status } => {
                    self.state = RunState::Stopped(status);
                    return Ok(Completed::Stopped(status));
                }
                Action::WaitForInterrupt => wait = true,
                other => self.apply(&facts, other),
            }
        }
        self.deliver_interrupts();
        let injecting = InterruptionInfo::from_raw(self.cache.enter_input().entry_interruption_info).valid();
        if wait && self.irqs.is_empty() && !injecting {
            self.state = RunState::WaitingForInterrupt;
            return Ok(Completed::Waiting);
        }
        Ok(Completed::Resume)
    }

    /// Checks every action of a reply without changing anything.
    fn check_actions(&mut self, rights: &Rights, reply: &ExitReply) -> Result<(), ErrorReport> {
        // The field, not `pending()`: the checks below read the cache beside it.
        let pending = &self.last_exit;
        if !pending.open {
            return Err(ErrorReport::new(ErrorCode::SequenceMismatch));
        }
        let record = &pending.record;
        let mut injecting =
            InterruptionInfo::from_raw(self.cache.enter_input().entry_interruption_info).valid();
        for (index, action) in reply.actions.iter().enumerate() {
            let fail = |code| Err(ErrorReport::at(code, index as u16));
            let needs = |right: RequestRights| rights.requests.contains(right);
            match *action {
                Action::CompleteIo { .. } => {
                    if !needs(RequestRights::ANSWER_EXITS) {
                        return fail(ErrorCode::Forbidden);
                    }
                    let is_in = matches!(
                        record.detail,
                        ExitDetail::Io {
                            direction: IoDirection::In,
                            ..
                        }
                    );
                    let string_ok = pending.string.is_none_or(|s| s.gpa.is_some());
                    if !is_in || !string_ok {
                        return fail(ErrorCode::InvalidAction);
                    }
                }
                Action::CompleteMmioRead { register, .. } => {
                    if !needs(RequestRights::WRITE_REGISTERS)
                        || (register.number() == 4 && !rights.write.contains_field(VmcsGuestNW::Rsp.into()))
                    {
                        return fail(ErrorCode::Forbidden);
                    }
                    if !matches!(
                        record.detail,
                        ExitDetail::Mmio {
                            access: MemoryAccess::Read,
                            ..
                        }
                    ) {
                        return fail(ErrorCode::InvalidAction);
                    }
                }
                Action::AdvanceRip => {
                    if !rights.write.contains_field(VmcsGuestNW::Rip.into()) {
                        return fail(ErrorCode::Forbidden);
                    }
                    if record.instruction_len == 0 {
                        return fail(ErrorCode::InvalidAction);
                    }
                }
                Action::SetRegister { register, .. } => {
                    let allowed = match register {
                        Register::Gpr(g) if g.number() == 4 => {
                            rights.write.contains_field(VmcsGuestNW::Rsp.into())
                        }
                        Register::Gpr(_) => needs(RequestRights::WRITE_REGISTERS),
                        Register::Rip => rights.write.contains_field(VmcsGuestNW::Rip.into()),
                        Register::Rflags => rights.write.contains_field(VmcsGuestNW::Rflags.into()),
                    };
                    if !allowed {
                        return fail(ErrorCode::Forbidden);
                    }
                }
                Action::WriteField(item) => match Field::from_any_encoding(item.encoding) {
                    None => return fail(ErrorCode::UnknownField),
                    Some((field, _)) if field.access() == FieldAccess::ReadOnly => {
                        return fail(ErrorCode::ReadOnly);
                    }
                    Some(_) if !rights.write.contains(item.encoding) => return fail(ErrorCode::Forbidden),
                    Some(_) => {}
                },
                Action::Inject(event) => {
                    if !needs(RequestRights::INJECT) {
                        return fail(ErrorCode::Forbidden);
                    }
                    if injecting {
                        return fail(ErrorCode::EventPending);
                    }
                    let event = to_event(&event, record.instruction_len);
                    // CR0 only matters for exceptions (error codes); avoid the read otherwise.
                    let cr0 = if event.vector < 32 {
                        VmcsGuestNW::Cr0
                            .read(&mut self.cache.mediated(&mut self.kernel))
                            .unwrap_or(1)
                    } else {
                        1
                    };
                    let Ok(entry) = inject::prepare(&event, cr0, self.injection_caps()) else {
                        return fail(ErrorCode::InvalidEvent);
                    };
                    if !self.kernel_can_inject(&entry) {
                        return fail(ErrorCode::Unsupported);
                    }
                    injecting = true;
                }
                Action::RaiseInterrupt { vector } => {
                    if !needs(RequestRights::RAISE_INTERRUPT) {
                        return fail(ErrorCode::Forbidden);
                    }
                    if vector < 32 {
                        return fail(ErrorCode::InvalidEvent);
                    }
                }
                Action::RequestInterruptWindow | Action::RequestNmiWindow => {
                    if !needs(RequestRights::INJECT) {
                        return fail(ErrorCode::Forbidden);
                    }
                }
                Action::WaitForInterrupt | Action::SetStateGroups { .. } | Action::Stop { .. } => {
                    if !needs(RequestRights::ANSWER_EXITS) {
                        return fail(ErrorCode::Forbidden);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the kernel lets us write every field injecting `entry` needs (seL4: no entry
    /// instruction length at all, no entry error code on 5.0).
    fn kernel_can_inject(&self, entry: &inject::EntryEvent) -> bool {
        (entry.instruction_len.is_none()
            || self.kernel.writable(VmcsControl32::EntryInstructionLength as u32))
            && (entry.error_code.is_none()
                || self
                    .kernel
                    .writable(VmcsControl32::EntryExceptionErrorCode as u32))
    }

    /// Applies one checked action.
    fn apply(&mut self, exit: &ExitFacts, action: Action) {
        match action {
            Action::CompleteIo { value } => {
                let Some(size) = exit.io_size else {
                    return;
                };
                match exit.string {
                    Some(s) => {
                        if let Some(gpa) = s.gpa {
                            let bytes = value.to_le_bytes();
                            let _ = self.memory.write(gpa, &bytes[..usize::from(s.size)]);
                        }
                    }
                    None => {
                        let rax = &mut self.cache.registers_mut().rax;
                        // IN AL/AX keep the upper bits; IN EAX zero-extends (SDM Vol. 1, 3.4.1.1).
                        *rax = match size {
                            AccessSize::Dword | AccessSize::Qword => u64::from(value),
                            _ => (*rax & !size.mask()) | (u64::from(value) & size.mask()),
                        };
                    }
                }
            }
            Action::CompleteMmioRead {
                register,
                size,
                value,
            } => {
                let register = Register::Gpr(register);
                let current = self.register_value(register);
                let merged = match size {
                    AccessSize::Byte | AccessSize::Word => (current & !size.mask()) | (value & size.mask()),
                    AccessSize::Dword => value & 0xFFFF_FFFF,
                    AccessSize::Qword => value,
                };
                self.set_register(register, merged);
            }
            Action::AdvanceRip => self.advance_rip(exit),
            Action::SetRegister { register, value } => self.set_register(register, value),
            Action::WriteField(item) => {
                let _ = self
                    .cache
                    .mediated(&mut self.kernel)
                    .write(item.encoding, item.value);
            }
            Action::Inject(event) => {
                let event = to_event(&event, exit.instruction_len);
                let caps = self.injection_caps();
                match inject::inject(&mut self.cache.mediated(&mut self.kernel), &event, caps) {
                    Ok(_) => self.stats.events_injected += 1,
                    Err(e) => log::warn!("inject failed after checking: {e:?}"),
                }
            }
            Action::RaiseInterrupt { vector } => {
                if self.irqs.push_back(vector).is_ok() {
                    self.stats.interrupts_raised += 1;
                }
            }
            Action::RequestInterruptWindow | Action::RequestNmiWindow => {
                let bit = if action == Action::RequestNmiWindow {
                    NMI_WINDOW_EXITING
                } else {
                    INTERRUPT_WINDOW_EXITING
                };
                let mut vmcs = self.cache.mediated(&mut self.kernel);
                if let Ok(primary) = VmcsControl32::PrimaryProcBasedControls.read(&mut vmcs) {
                    let _ = VmcsControl32::PrimaryProcBasedControls.write(&mut vmcs, primary | bit);
                }
            }
            Action::SetStateGroups { class, groups } => self.groups[class.index()] = groups,
            Action::WaitForInterrupt | Action::Stop { .. } => {}
        }
    }

    /// Moves past the instruction; for string I/O, steps RSI/RDI and, with REP, RCX, and
    /// re-executes the instruction until RCX reaches 0 (one element per exit).
    fn advance_rip(&mut self, exit: &ExitFacts) {
        let mut repeat = false;
        if let Some(s) = exit.string.filter(|s| !s.empty) {
            let rflags = VmcsGuestNW::Rflags
                .read(&mut self.cache.mediated(&mut self.kernel))
                .unwrap_or(0);
            let step = u64::from(s.size);
            let regs = self.cache.registers_mut();
            let index = if s.input { &mut regs.rdi } else { &mut regs.rsi };
            let moved = if rflags & RFLAGS_DF != 0 {
                index.wrapping_sub(step)
            } else {
                index.wrapping_add(step)
            };
            *index = at_address_size(*index, moved, s.address_mask);
            if s.rep {
                let count = (regs.rcx & s.address_mask).wrapping_sub(1) & s.address_mask;
                regs.rcx = at_address_size(regs.rcx, count, s.address_mask);
                repeat = count != 0;
            }
        }
        if !repeat {
            let rip = exit.rip.wrapping_add(u64::from(exit.instruction_len));
            let mut vmcs = self.cache.mediated(&mut self.kernel);
            let _ = VmcsGuestNW::Rip.write(&mut vmcs, rip);
            // Moving past the instruction ends the one-instruction shadow of STI / MOV SS, as
            // executing it would; left set, it would delay an interrupt and, with IF = 0, fail
            // VM entry (SDM Vol. 3C, Section 27.3.1.5).
            if let Ok(blocking) = VmcsGuest32::InterruptibilityState.read(&mut vmcs)
                && blocking & 0b11 != 0
            {
                let _ = VmcsGuest32::InterruptibilityState.write(&mut vmcs, blocking & !0b11);
            }
        }
    }

    fn register_value(&mut self, register: Register) -> u64 {
        match register {
            Register::Gpr(g) if g.number() == 4 => VmcsGuestNW::Rsp
                .read(&mut self.cache.mediated(&mut self.kernel))
                .unwrap_or(0),
            Register::Gpr(g) => self.cache.registers().by_hardware_number(g.number()).unwrap_or(0),
            Register::Rip => VmcsGuestNW::Rip
                .read(&mut self.cache.mediated(&mut self.kernel))
                .unwrap_or(0),
            Register::Rflags => VmcsGuestNW::Rflags
                .read(&mut self.cache.mediated(&mut self.kernel))
                .unwrap_or(0),
        }
    }

    fn set_register(&mut self, register: Register, value: u64) {
        let field = match register {
            Register::Gpr(g) if g.number() == 4 => VmcsGuestNW::Rsp,
            Register::Gpr(g) => {
                if let Some(slot) = self.cache.registers_mut().by_hardware_number_mut(g.number()) {
                    *slot = value;
                }
                return;
            }
            Register::Rip => VmcsGuestNW::Rip,
            Register::Rflags => VmcsGuestNW::Rflags,
        };
        let _ = field.write(&mut self.cache.mediated(&mut self.kernel), value);
    }

    /// Runs the exit loop over `link` until the guest stops, halts with nothing to wake it,
    /// pauses, or `max_exits` exits have been handled.
    ///
    /// # Errors
    /// The link failed (the pending record is kept and can be re-sent after a restart), or
    /// the kernel refused.
    pub fn run<L: ExitLink>(&mut self, link: &mut L, max_exits: u64) -> Result<RunOutcome, RunError> {
        let mut handled = 0;
        let mut rejected_in_a_row = 0;
        // One reply for the whole run, decoded into in place (400 bytes).
        let mut reply = ExitReply::new(0);
        loop {
            if !self.last_exit.open {
                match self.state {
                    RunState::Running => {}
                    RunState::Stopped(status) => return Ok(RunOutcome::Stopped(status)),
                    RunState::WaitingForInterrupt => return Ok(RunOutcome::Waiting),
                    RunState::Paused => return Ok(RunOutcome::Paused),
                }
                if handled >= max_exits {
                    return Ok(RunOutcome::ExitLimit);
                }
                match self.enter().map_err(RunError::Server)? {
                    Entered::Exit => handled += 1,
                    Entered::Notification(badge) => return Ok(RunOutcome::Notification(badge)),
                }
            }
            if !self.last_exit.open {
                // The exit ended in the server (a REP string instruction with a count of 0).
                continue;
            }
            let answer = link
                .exchange(&self.last_exit.record, &mut reply)
                .map_err(RunError::Link)?;
            // A rejected reply leaves the record pending: send it again, now marked.
            let completed = match answer {
                Ok(()) => self.complete(&reply),
                Err(_) => {
                    self.stats.malformed += 1;
                    Err(self.reject(ErrorReport::new(ErrorCode::Malformed)))
                }
            };
            match completed {
                Ok(_) => rejected_in_a_row = 0,
                Err(report) => {
                    rejected_in_a_row += 1;
                    if rejected_in_a_row >= MAX_REJECTIONS_IN_A_ROW {
                        // The device model is not making progress; the guest stays stopped.
                        return Err(RunError::Rejected(report));
                    }
                }
            }
        }
    }
}

/// A string-I/O register after a step at `mask`'s address size: 16-bit keeps the upper bits,
/// 32-bit zero-extends (as any 32-bit register write in 64-bit mode), 64-bit is the whole.
fn at_address_size(old: u64, new: u64, mask: u64) -> u64 {
    match mask {
        0xFFFF => (old & !mask) | (new & mask),
        _ => new & mask,
    }
}

/// A lossless conversion of hardware register numbers to the wire type.
fn wire_gpr(number: u8) -> vmm_protocol::Gpr {
    vmm_protocol::Gpr::from_number(number).unwrap_or(vmm_protocol::Gpr::Rax)
}

/// Fills `state` with the groups `groups`, read through the cache; every other group is
/// cleared. A group the kernel will not let us read is left out. Written in place, group by
/// group: a whole `GuestState` is 480 bytes, and this runs once per exit.
fn read_guest_state<K: VcpuKernel>(
    state: &mut GuestState,
    groups: StateGroups,
    cache: &mut FieldCache,
    kernel: &mut K,
) {
    state.clear();
    if groups.is_empty() {
        return;
    }
    if groups.contains(StateGroups::GPRS) {
        state.gprs = Some(to_wire_registers(cache.registers()));
    }
    let mut vmcs = cache.mediated(kernel);
    if groups.contains(StateGroups::RSP) {
        state.rsp = VmcsGuestNW::Rsp.read(&mut vmcs).ok();
    }
    if groups.contains(StateGroups::RFLAGS) {
        state.rflags = VmcsGuestNW::Rflags.read(&mut vmcs).ok();
    }
    if groups.contains(StateGroups::SEGMENTS) {
        state.segments = read_segments(&mut vmcs).ok();
    }
    if groups.contains(StateGroups::DESCRIPTOR_TABLES) {
        state.descriptor_tables = read_descriptor_tables(&mut vmcs).ok();
    }
    if groups.contains(StateGroups::CONTROL_REGISTERS) {
        state.control_registers = read_control_registers(&mut vmcs).ok();
    }
    if groups.contains(StateGroups::DR7) {
        state.dr7 = VmcsGuestNW::Dr7.read(&mut vmcs).ok();
    }
    if groups.contains(StateGroups::INTERRUPTIBILITY) {
        state.interruptibility = read_interruptibility(&mut vmcs).ok();
    }
    if groups.contains(StateGroups::PENDING_EVENTS) {
        state.pending_events = read_pending_events(&mut vmcs).ok();
    }
}

fn read_descriptor_tables<A: VmcsAccess + ?Sized>(vmcs: &mut A) -> Result<DescriptorTables, VmcsError> {
    Ok(DescriptorTables {
        gdtr_base: VmcsGuestNW::GdtrBase.read(vmcs)?,
        gdtr_limit: VmcsGuest32::GdtrLimit.read(vmcs)?,
        idtr_base: VmcsGuestNW::IdtrBase.read(vmcs)?,
        idtr_limit: VmcsGuest32::IdtrLimit.read(vmcs)?,
    })
}

fn read_control_registers<A: VmcsAccess + ?Sized>(vmcs: &mut A) -> Result<ControlRegisters, VmcsError> {
    Ok(ControlRegisters {
        cr0: VmcsGuestNW::Cr0.read(vmcs)?,
        cr3: VmcsGuestNW::Cr3.read(vmcs)?,
        cr4: VmcsGuestNW::Cr4.read(vmcs)?,
        efer: VmcsGuest64::Efer.read(vmcs)?,
    })
}

fn read_interruptibility<A: VmcsAccess + ?Sized>(vmcs: &mut A) -> Result<InterruptibilityState, VmcsError> {
    Ok(InterruptibilityState {
        interruptibility: VmcsGuest32::InterruptibilityState.read(vmcs)?,
        activity: VmcsGuest32::ActivityState.read(vmcs)?,
    })
}

fn read_pending_events<A: VmcsAccess + ?Sized>(vmcs: &mut A) -> Result<PendingEvents, VmcsError> {
    Ok(PendingEvents {
        idt_vectoring_info: VmcsReadOnly32::IdtVectoringInfo.read(vmcs)?,
        idt_vectoring_error_code: VmcsReadOnly32::IdtVectoringErrorCode.read(vmcs)?,
        entry_interruption_info: VmcsControl32::EntryInterruptionInfo.read(vmcs)?,
    })
}

fn read_segments<A: VmcsAccess + ?Sized>(vmcs: &mut A) -> Result<Segments, VmcsError> {
    let mut segment = |sel: VmcsGuest16, base: VmcsGuestNW, limit: VmcsGuest32, ar: VmcsGuest32| {
        Ok::<_, VmcsError>(Segment {
            selector: sel.read(vmcs)?,
            base: base.read(vmcs)?,
            limit: limit.read(vmcs)?,
            access_rights: ar.read(vmcs)?,
        })
    };
    use VmcsGuest16 as S;
    use VmcsGuest32 as L;
    use VmcsGuestNW as N;
    Ok(Segments {
        es: segment(S::EsSelector, N::EsBase, L::EsLimit, L::EsAccessRights)?,
        cs: segment(S::CsSelector, N::CsBase, L::CsLimit, L::CsAccessRights)?,
        ss: segment(S::SsSelector, N::SsBase, L::SsLimit, L::SsAccessRights)?,
        ds: segment(S::DsSelector, N::DsBase, L::DsLimit, L::DsAccessRights)?,
        fs: segment(S::FsSelector, N::FsBase, L::FsLimit, L::FsAccessRights)?,
        gs: segment(S::GsSelector, N::GsBase, L::GsLimit, L::GsAccessRights)?,
        ldtr: segment(S::LdtrSelector, N::LdtrBase, L::LdtrLimit, L::LdtrAccessRights)?,
        tr: segment(S::TrSelector, N::TrBase, L::TrLimit, L::TrAccessRights)?,
    })
}

/// How exit records reach the device model: one call, one reply (seL4 `Call`; a function
/// call; a socket round trip).
pub trait ExitLink {
    /// Sends `record` and waits for the reply, written into `reply`; returns its length.
    ///
    /// # Errors
    /// The device model is gone or did not answer.
    fn call(&mut self, record: &[u8], reply: &mut [u8]) -> Result<usize, LinkError>;

    /// One round trip with typed messages: encodes `record`, [`ExitLink::call`]s, decodes the
    /// reply into `reply` (the inner `Err`: a reply that did not decode; `reply` then holds
    /// something else). A link may override it, e.g. to count messages and bytes.
    ///
    /// # Errors
    /// As [`ExitLink::call`].
    fn exchange(
        &mut self,
        record: &ExitRecord,
        reply: &mut ExitReply,
    ) -> Result<Result<(), vmm_protocol::WireError>, LinkError> {
        let mut record_buf = [0u8; MAX_MESSAGE_SIZE];
        let mut reply_buf = [0u8; MAX_MESSAGE_SIZE];
        // Records always fit (the protocol's size limit); a failure would be a bug there.
        let bytes = record.encode(&mut record_buf).map_err(|_| LinkError::Closed)?;
        let len = self.call(bytes, &mut reply_buf)?;
        Ok(reply.decode_into(reply_buf.get(..len).unwrap_or(&[])))
    }
}

impl<L: ExitLink + ?Sized> ExitLink for &mut L {
    fn call(&mut self, record: &[u8], reply: &mut [u8]) -> Result<usize, LinkError> {
        (**self).call(record, reply)
    }
    fn exchange(
        &mut self,
        record: &ExitRecord,
        reply: &mut ExitReply,
    ) -> Result<Result<(), vmm_protocol::WireError>, LinkError> {
        (**self).exchange(record, reply)
    }
}

/// Why an exit record could not be delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkError {
    /// The device model is gone.
    Closed,
    /// It did not answer in time.
    Timeout,
}

/// How [`VmmServer::run`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// The guest was stopped with this status.
    Stopped(u32),
    /// The guest halted and nothing is queued to wake it.
    Waiting,
    /// The guest was paused.
    Paused,
    /// The notification was signalled (badge): serve requests, then run again.
    Notification(u64),
    /// `max_exits` exits were handled.
    ExitLimit,
}

/// Why [`VmmServer::run`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunError {
    /// Entering failed.
    Server(ServerError),
    /// The device model could not be reached; the record stays pending.
    Link(LinkError),
    /// The device model's replies keep being rejected; the record stays pending.
    Rejected(ErrorReport),
}
