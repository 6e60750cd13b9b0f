//! Exit-protocol tests: both server cores wired in memory over the model VCPU. Each test
//! checks the guest's expectations (the model), the outcome, and the exact transcript of
//! every message across both boundaries (`tests/transcripts/*.txt`; `BLESS=1` rewrites them).

use system_tests::*;
use vmm_protocol::{ErrorCode, ErrorReport, ExitClass, Request, Response};
use vmm_server::memory::FlatMemory;
use vmm_server::model::{ExitSpec, Expectation, KernelRules, Label, Register, RegisterValues, Step};
use vmm_server::server::{LinkError, RunError, RunOutcome, RunState};

const IN: u64 = 1 << 3;
const STRING: u64 = 1 << 4;
const REP: u64 = 1 << 5;
const IMMEDIATE: u64 = 1 << 6;

fn io(port: u16, size: u8, flags: u64) -> u64 {
    let size_bits = match size {
        1 => 0,
        2 => 1,
        _ => 3,
    };
    (u64::from(port) << 16) | flags | size_bits
}

fn step(label: &str, exit: ExitSpec, expect: &[Expectation]) -> Step {
    Step {
        label: Label::try_from(label).unwrap(),
        exit,
        expect: heapless_vec(expect),
    }
}

fn heapless_vec<const N: usize>(e: &[Expectation]) -> heapless::Vec<Expectation, N> {
    heapless::Vec::from_slice(e).unwrap()
}

fn regs() -> RegisterValues {
    RegisterValues::default()
}

fn out(port: u16, size: u8, value: u64, len: u32) -> Step {
    step(
        "out",
        ExitSpec {
            reason: 30,
            qualification: io(port, size, if len == 2 { IMMEDIATE } else { 0 }),
            instruction_len: len,
            registers: RegisterValues {
                rax: Some(value),
                rdx: Some(port.into()),
                ..regs()
            },
            ..Default::default()
        },
        &[Expectation::RipAdvanced],
    )
}

fn debug_exit(status: u64) -> Step {
    step(
        "out to debug-exit",
        ExitSpec {
            reason: 30,
            qualification: io(DEBUG_EXIT_PORT, 1, 0),
            instruction_len: 1,
            registers: RegisterValues {
                rax: Some(status),
                rdx: Some(DEBUG_EXIT_PORT.into()),
                ..regs()
            },
            ..Default::default()
        },
        &[Expectation::Stopped],
    )
}

fn ram() -> FlatMemory<RAM_SIZE> {
    FlatMemory::new(0)
}

macro_rules! system {
    ($sys:ident, $rules:expr, $steps:expr, $ram:expr) => {
        let wiring = Wiring::default();
        let mut devices = Devices::new(&wiring);
        #[allow(unused_mut)]
        let mut $sys = devices.system(&wiring, $rules, $steps, $ram);
    };
}

#[test]
fn in_and_out_of_each_size() {
    let steps = [
        out(UART_PORT, 1, u64::from(b'H'), 1),
        out(0x80, 1, 0x42, 2),    // out 0x80, al (immediate)
        out(0x500, 2, 0xBEEF, 1), // unclaimed: dropped, counted
        out(0x500, 4, 0xDEAD_BEEF, 1),
        // in al, dx from the UART scratch register after writing it: keeps RAX's upper bits.
        out(UART_PORT + 7, 1, 0x5A, 1),
        step(
            "in al, dx (scratch)",
            ExitSpec {
                reason: 30,
                qualification: io(UART_PORT + 7, 1, IN),
                instruction_len: 1,
                registers: RegisterValues {
                    rax: Some(0x1122_3344_5566_7700),
                    ..regs()
                },
                ..Default::default()
            },
            &[
                Expectation::Register {
                    register: Register::Rax,
                    value: 0x1122_3344_5566_775A,
                },
                Expectation::RipAdvanced,
            ],
        ),
        step(
            "in ax, dx (unclaimed)",
            ExitSpec {
                reason: 30,
                qualification: io(0x500, 2, IN),
                instruction_len: 2,
                registers: RegisterValues {
                    rax: Some(0x1122_3344_5566_7788),
                    ..regs()
                },
                ..Default::default()
            },
            &[
                Expectation::Register {
                    register: Register::Rax,
                    value: 0x1122_3344_5566_FFFF,
                },
                Expectation::RipAdvanced,
            ],
        ),
        step(
            "in eax, 0x60 (unclaimed, immediate)",
            ExitSpec {
                reason: 30,
                qualification: io(0x60, 4, IN | IMMEDIATE),
                instruction_len: 2,
                registers: RegisterValues {
                    rax: Some(0x1122_3344_5566_7788),
                    ..regs()
                },
                ..Default::default()
            },
            &[
                Expectation::Register {
                    register: Register::Rax,
                    value: 0xFFFF_FFFF,
                },
                Expectation::RipAdvanced,
            ],
        ),
        debug_exit(0),
    ];
    system!(sys, KernelRules::Sel4V5, &steps, ram());
    sys.boot();
    assert_eq!(sys.run(100), Ok(RunOutcome::Stopped(0)));
    sys.assert_model_satisfied();
    assert_eq!(sys.uart(), "H");
    assert_eq!(sys.device_model.stats().unclaimed.writes, 2);
    assert_eq!(sys.device_model.stats().unclaimed.reads, 2);
    // An OUT exit costs no ReadVMCS or WriteVMCS: everything came with the fault message and
    // went back as VMEnter inputs.
    let io = sys.server.invocations_by_class()[ExitClass::Io.index()];
    assert_eq!(
        (io.read_vmcs, io.write_vmcs, io.write_registers),
        (0, 0, 3),
        "three INs wrote RAX back"
    );
    sys.check_transcript("io_sizes");
}

#[test]
fn string_and_rep_io_one_element_per_exit() {
    let mut memory = ram();
    memory.bytes_mut()[0x2000..0x2003].copy_from_slice(b"Hi!");
    // rep outsb: RSI = 0x2000, RCX = 3; 32-bit address size in the instruction information.
    let outsb = |rcx: u64, rsi: u64, last: bool| {
        step(
            "rep outsb",
            ExitSpec {
                reason: 30,
                qualification: io(UART_PORT, 1, STRING | REP),
                instruction_len: 2,
                guest_linear: rsi,
                instruction_info: 1 << 7,
                registers: RegisterValues {
                    rcx: Some(rcx),
                    rsi: Some(rsi),
                    rdx: Some(UART_PORT.into()),
                    ..regs()
                },
                ..Default::default()
            },
            &[
                if last {
                    Expectation::RipAdvanced
                } else {
                    Expectation::RipUnchanged
                },
                Expectation::Register {
                    register: Register::Rcx,
                    value: rcx - 1,
                },
                Expectation::Register {
                    register: Register::Rsi,
                    value: rsi + 1,
                },
            ],
        )
    };
    let insb = step(
        "insb (unclaimed port reads all ones)",
        ExitSpec {
            reason: 30,
            qualification: io(0x500, 1, STRING | IN),
            instruction_len: 1,
            guest_linear: 0x3000,
            instruction_info: 1 << 7,
            registers: RegisterValues {
                rdi: Some(0x3000),
                rdx: Some(0x500),
                ..regs()
            },
            ..Default::default()
        },
        &[
            Expectation::RipAdvanced,
            Expectation::Register {
                register: Register::Rdi,
                value: 0x3001,
            },
        ],
    );
    let steps = [
        outsb(3, 0x2000, false),
        outsb(2, 0x2001, false),
        outsb(1, 0x2002, true),
        insb,
        debug_exit(0),
    ];
    system!(sys, KernelRules::Sel4V5, &steps, memory);
    sys.boot();
    assert_eq!(sys.run(100), Ok(RunOutcome::Stopped(0)));
    sys.assert_model_satisfied();
    assert_eq!(sys.uart(), "Hi!");
    assert_eq!(
        sys.server.memory().bytes()[0x3000],
        0xFF,
        "INS stored the element"
    );
    sys.check_transcript("string_io");
}

#[test]
fn mmio_read_and_write() {
    let mut memory = ram();
    // 0x1000: mov eax, [0xFEC00000]; 0x1006: mov [0xFEC00004], ecx; 0x100C: mov byte [0xFEC00008], 0x7F
    let code: &[u8] = &[
        0x8B, 0x05, 0x00, 0x00, 0xC0, 0xFE, 0x89, 0x0D, 0x04, 0x00, 0xC0, 0xFE, 0xC6, 0x05, 0x08, 0x00, 0xC0,
        0xFE, 0x7F,
    ];
    memory.bytes_mut()[0x1000..0x1000 + code.len()].copy_from_slice(code);
    let ept = |gpa: u64, qualification: u64, next_rip: u64, expect: Expectation| {
        step(
            "mmio",
            ExitSpec {
                reason: 48,
                qualification,
                guest_physical: gpa,
                guest_linear: gpa,
                registers: RegisterValues {
                    rcx: Some(0xCAFE_F00D),
                    ..regs()
                },
                ..Default::default()
            },
            &[Expectation::Rip { value: next_rip }, expect],
        )
    };
    let steps = [
        ept(
            MMIO_BASE,
            0x181,
            0x1006,
            Expectation::Register {
                register: Register::Rax,
                value: 0,
            },
        ),
        ept(MMIO_BASE + 4, 0x182, 0x100C, Expectation::NoEventPending),
        ept(MMIO_BASE + 8, 0x182, 0x1013, Expectation::NoEventPending),
        step(
            "mov eax, [0xFEC00004]",
            ExitSpec {
                reason: 48,
                qualification: 0x181,
                guest_physical: MMIO_BASE + 4,
                ..Default::default()
            },
            &[Expectation::Register {
                register: Register::Rax,
                value: 0xCAFE_F00D,
            }],
        ),
        debug_exit(0),
    ];
    memory.bytes_mut()[0x1013..0x1019].copy_from_slice(&[0x8B, 0x05, 0x04, 0x00, 0xC0, 0xFE]);
    system!(sys, KernelRules::Sel4V5, &steps, memory);
    sys.boot();
    sys.run_to_clean_stop("mmio");
}

#[test]
fn cpuid_and_msrs_known_and_unknown() {
    let ecx = |v: u64| RegisterValues {
        rcx: Some(v),
        rax: Some(0),
        rdx: Some(0),
        ..regs()
    };
    let steps = [
        step(
            "cpuid leaf 0",
            ExitSpec {
                reason: 10,
                instruction_len: 2,
                registers: RegisterValues {
                    rax: Some(0),
                    rcx: Some(0),
                    ..regs()
                },
                ..Default::default()
            },
            &[
                Expectation::Register {
                    register: Register::Rbx,
                    value: u64::from(CPUID_0[1]),
                },
                Expectation::Register {
                    register: Register::Rdx,
                    value: u64::from(CPUID_0[3]),
                },
                Expectation::RipAdvanced,
            ],
        ),
        step(
            "rdmsr IA32_APIC_BASE",
            ExitSpec {
                reason: 31,
                instruction_len: 2,
                registers: ecx(MSR_APIC_BASE.into()),
                ..Default::default()
            },
            &[
                Expectation::Register {
                    register: Register::Rax,
                    value: 0xFEE0_0900,
                },
                Expectation::RipAdvanced,
            ],
        ),
        step(
            "rdmsr unknown: #GP(0)",
            ExitSpec {
                reason: 31,
                instruction_len: 2,
                registers: ecx(0x1234),
                ..Default::default()
            },
            &[
                Expectation::EventPending { info: 0x8000_0B0D },
                Expectation::RipUnchanged,
            ],
        ),
        step(
            "wrmsr IA32_TSC_AUX",
            ExitSpec {
                reason: 32,
                instruction_len: 2,
                registers: RegisterValues {
                    rcx: Some(MSR_TSC_AUX.into()),
                    rax: Some(9),
                    rdx: Some(0),
                    ..regs()
                },
                ..Default::default()
            },
            &[Expectation::RipAdvanced, Expectation::NoEventPending],
        ),
        step(
            "wrmsr to the read-only IA32_APIC_BASE: #GP(0)",
            ExitSpec {
                reason: 32,
                instruction_len: 2,
                registers: ecx(MSR_APIC_BASE.into()),
                ..Default::default()
            },
            &[Expectation::EventPending { info: 0x8000_0B0D }],
        ),
        debug_exit(0),
    ];
    // Modern rules: the entry exception error code is writable (5.0 refuses it).
    system!(sys, KernelRules::Modern, &steps, ram());
    sys.boot();
    assert_eq!(sys.run(100), Ok(RunOutcome::Stopped(0)));
    sys.assert_model_satisfied();
    assert_eq!(
        sys.device_model.msrs.read(MSR_TSC_AUX),
        device_model::policy::MsrOutcome::Value(9)
    );
    sys.check_transcript("cpuid_msr");
}

fn hlt(expect: &[Expectation], rflags: u64) -> Step {
    step(
        "hlt",
        ExitSpec {
            reason: 12,
            instruction_len: 1,
            rflags: Some(rflags),
            ..Default::default()
        },
        expect,
    )
}

#[test]
fn hlt_with_a_pending_interrupt_and_the_interrupt_window() {
    // The guest enables the UART's THR-empty interrupt with interrupts off (IF = 0): the device
    // model raises line 4, the server asks for an interrupt window; `sti; hlt` exits with IF = 1
    // and the entry after it delivers vector 0x24.
    let steps = [
        out(UART_PORT + 4, 1, 0x08, 1), // MCR.OUT2
        step(
            "out IER=THRE, IF=0",
            ExitSpec {
                reason: 30,
                qualification: io(UART_PORT + 1, 1, 0),
                instruction_len: 1,
                rflags: Some(0x2),
                registers: RegisterValues {
                    rax: Some(0x02),
                    ..regs()
                },
                ..Default::default()
            },
            &[
                Expectation::RipAdvanced,
                Expectation::InterruptWindowRequested,
                Expectation::NoEventPending,
            ],
        ),
        hlt(
            &[
                Expectation::RipAdvanced,
                Expectation::EventPending { info: 0x8000_0024 },
                Expectation::InterruptWindowNotRequested,
            ],
            0x202,
        ),
        debug_exit(0),
    ];
    system!(sys, KernelRules::Sel4V5, &steps, ram());
    sys.boot();
    sys.run_to_clean_stop("hlt_pending_interrupt");
    assert_eq!(sys.server.kernel().events_delivered(), 1);
}

#[test]
fn interrupt_window_exit_delivers_the_queued_interrupt() {
    let steps = [
        step(
            "cpuid with IF=0",
            ExitSpec {
                reason: 10,
                instruction_len: 2,
                rflags: Some(0x2),
                ..Default::default()
            },
            &[Expectation::InterruptWindowRequested, Expectation::NoEventPending],
        ),
        step(
            "interrupt window (guest did sti)",
            ExitSpec {
                reason: 7,
                rflags: Some(0x202),
                ..Default::default()
            },
            &[
                Expectation::EventPending { info: 0x8000_0030 },
                Expectation::RipUnchanged,
                Expectation::InterruptWindowNotRequested,
            ],
        ),
        debug_exit(0),
    ];
    system!(sys, KernelRules::Sel4V5, &steps, ram());
    sys.boot();
    // The device model (its badge) raises an interrupt asynchronously before the guest runs.
    assert_eq!(
        sys.request(DEVICE_MODEL, Request::RaiseInterrupt { vector: 0x30 }),
        Response::Ok
    );
    sys.run_to_clean_stop("interrupt_window");
}

#[test]
fn hlt_without_an_interrupt_waits_until_one_is_raised() {
    let steps = [
        hlt(
            &[
                Expectation::RipAdvanced,
                Expectation::EventPending { info: 0x8000_0040 },
            ],
            0x202,
        ),
        debug_exit(0),
    ];
    system!(sys, KernelRules::Sel4V5, &steps, ram());
    sys.boot();
    assert_eq!(sys.run(100), Ok(RunOutcome::Waiting));
    assert_eq!(sys.server.state(), RunState::WaitingForInterrupt);
    assert_eq!(
        sys.request(CONTROLLER, Request::RaiseInterrupt { vector: 0x40 }),
        Response::Ok
    );
    assert_eq!(sys.server.state(), RunState::Running);
    sys.run_to_clean_stop("hlt_waits");
}

#[test]
fn exceptions_are_reflected_and_interrupted_events_reinjected() {
    let during_delivery = |label: &str, idt_info: u32, idt_error: u32, expect: &[Expectation]| {
        step(
            label,
            ExitSpec {
                reason: 48,
                qualification: 0x182,
                guest_physical: 0x8000,
                idt_vectoring_info: idt_info,
                idt_vectoring_error: idt_error,
                // The exit leaves the state from before the delivery began: IF was 1.
                rflags: Some(0x202),
                ..Default::default()
            },
            expect,
        )
    };
    let steps = [
        step(
            "ud2 (exception bitmap)",
            ExitSpec {
                reason: 0,
                interruption_info: 0x8000_0306,
                instruction_len: 2,
                ..Default::default()
            },
            &[
                Expectation::EventPending { info: 0x8000_0306 },
                Expectation::RipUnchanged,
            ],
        ),
        during_delivery(
            "EPT violation delivering interrupt 0x30",
            0x8000_0030,
            0,
            &[
                Expectation::EventPending { info: 0x8000_0030 },
                Expectation::RipUnchanged,
            ],
        ),
        during_delivery(
            "EPT violation delivering #PF(2)",
            0x8000_0B0E,
            2,
            &[
                Expectation::EventPending { info: 0x8000_0B0E },
                Expectation::Field {
                    encoding: 0x4018,
                    value: 2,
                },
                Expectation::RipUnchanged,
            ],
        ),
        debug_exit(0),
    ];
    // Modern rules: re-injecting an exception with an error code needs the entry error-code
    // field, which seL4 5.0 does not let user level write.
    system!(sys, KernelRules::Modern, &steps, ram());
    sys.boot();
    sys.run_to_clean_stop("exception_reinjection");
    assert_eq!(sys.server.kernel().events_delivered(), 3);
}

#[test]
fn failures_stop_the_guest_with_a_status() {
    for (name, spec, status) in [
        (
            "triple_fault",
            ExitSpec {
                reason: 2,
                ..Default::default()
            },
            device_model::server::status::TRIPLE_FAULT,
        ),
        (
            "invalid_guest_state",
            ExitSpec {
                reason: 33,
                ..Default::default()
            },
            device_model::server::status::INVALID_GUEST_STATE,
        ),
        (
            "entry_failure",
            ExitSpec {
                reason: 0xFFFF_FFFF,
                vm_instruction_error: 7,
                ..Default::default()
            },
            device_model::server::status::ENTRY_FAILED,
        ),
        (
            "unknown_reason",
            ExitSpec {
                reason: 99,
                qualification: 0x1234,
                ..Default::default()
            },
            device_model::server::status::UNHANDLED_EXIT | 99,
        ),
    ] {
        let steps = [step(name, spec, &[Expectation::Stopped])];
        system!(sys, KernelRules::Sel4V5, &steps, ram());
        sys.boot();
        assert_eq!(sys.run(10), Ok(RunOutcome::Stopped(status)), "{name}");
        sys.assert_model_satisfied();
        sys.check_transcript(name);
    }
}

#[test]
fn malformed_wrong_sequence_and_forbidden_replies_are_rejected_and_the_record_resent() {
    let steps = [
        out(UART_PORT, 1, u64::from(b'A'), 1),
        out(UART_PORT, 1, u64::from(b'B'), 1),
        debug_exit(0),
    ];
    system!(sys, KernelRules::Sel4V5, &steps, ram());
    sys.boot();
    sys.faults.borrow_mut().extend([
        LinkFault::Garbage,
        LinkFault::WrongSequence,
        LinkFault::ForbiddenWrite,
    ]);
    assert_eq!(sys.run(100), Ok(RunOutcome::Stopped(0)));
    sys.assert_model_satisfied();
    assert_eq!(
        sys.uart(),
        "AB",
        "each byte exactly once (the device model handles a re-sent record again)"
    );
    let stats = sys.server.statistics();
    assert_eq!(
        (stats.replies_rejected, stats.malformed, stats.forbidden),
        (3, 1, 1)
    );
    sys.check_transcript("rejected_replies");
}

#[test]
fn forbidden_requests_are_refused_counted_and_the_server_goes_on() {
    let steps = [debug_exit(0)];
    system!(sys, KernelRules::Sel4V5, &steps, ram());
    sys.boot();
    let cr0 = vmm_protocol::FieldValue {
        encoding: 0x6800,
        value: 0,
    };
    let write_cr0 = || Request::WriteFields(vmm_protocol::heapless::Vec::from_slice(&[cr0]).unwrap());
    assert_eq!(
        sys.request(DEVICE_MODEL, write_cr0()),
        Response::Error(ErrorReport::at(ErrorCode::Forbidden, 0))
    );
    assert_eq!(
        sys.request(MONITOR, write_cr0()),
        Response::Error(ErrorReport::new(ErrorCode::Forbidden))
    );
    assert_eq!(
        sys.request(MONITOR, Request::Run),
        Response::Error(ErrorReport::new(ErrorCode::Forbidden))
    );
    assert_eq!(
        sys.request(99, Request::Statistics),
        Response::Error(ErrorReport::new(ErrorCode::Forbidden))
    );
    assert!(
        matches!(sys.request(MONITOR, Request::ReadFields(vmm_protocol::heapless::Vec::from_slice(&[0x681E]).unwrap())), Response::Values(v) if v[0] == START_RIP)
    );
    assert_eq!(
        sys.raw_request(CONTROLLER, &[0xFF, 0xFF, 0xFF]),
        Response::Error(ErrorReport::new(ErrorCode::Malformed))
    );
    assert_eq!(
        sys.request(CONTROLLER, Request::Hello { version: 999 }),
        Response::Error(ErrorReport::new(ErrorCode::VersionMismatch {
            server: vmm_protocol::PROTOCOL_VERSION
        }))
    );
    // The kernel refuses what it does not expose, and says so.
    let eptp = vmm_protocol::FieldValue {
        encoding: 0x201A,
        value: 0,
    };
    assert_eq!(
        sys.request(
            CONTROLLER,
            Request::WriteFields(vmm_protocol::heapless::Vec::from_slice(&[eptp]).unwrap())
        ),
        Response::Error(ErrorReport::at(ErrorCode::Kernel(3), 0))
    );
    assert_eq!(sys.run(10), Ok(RunOutcome::Stopped(0)));
    let stats = sys.server.statistics();
    assert_eq!((stats.forbidden, stats.malformed), (4, 1));
    sys.check_transcript("forbidden_requests");
}

#[test]
fn a_silent_device_model_leaves_the_exit_pending_until_it_answers() {
    let steps = [out(UART_PORT, 1, u64::from(b'Z'), 1), debug_exit(0)];
    system!(sys, KernelRules::Sel4V5, &steps, ram());
    sys.boot();
    sys.faults.borrow_mut().push(LinkFault::Silent);
    assert_eq!(sys.run(100), Err(RunError::Link(LinkError::Timeout)));
    assert_eq!(
        sys.server.pending_record().map(|r| r.seq),
        Some(1),
        "the exit waits for an answer"
    );
    assert_eq!(sys.uart(), "");
    // The device model is back: the same record goes again, and the guest continues.
    assert_eq!(sys.run(100), Ok(RunOutcome::Stopped(0)));
    assert_eq!(sys.uart(), "Z");
    sys.assert_model_satisfied();
    sys.check_transcript("silent_device_model");
}

#[test]
fn rep_string_io_with_a_zero_count_ends_without_the_device_model() {
    let steps = [
        step(
            "rep outsb with RCX = 0",
            ExitSpec {
                reason: 30,
                qualification: io(UART_PORT, 1, STRING | REP),
                instruction_len: 2,
                guest_linear: 0x2000,
                instruction_info: 1 << 7,
                registers: RegisterValues {
                    rcx: Some(0),
                    rsi: Some(0x2000),
                    ..regs()
                },
                ..Default::default()
            },
            &[
                Expectation::RipAdvanced,
                Expectation::Register {
                    register: Register::Rcx,
                    value: 0,
                },
                Expectation::Register {
                    register: Register::Rsi,
                    value: 0x2000,
                },
            ],
        ),
        debug_exit(0),
    ];
    system!(sys, KernelRules::Sel4V5, &steps, ram());
    sys.boot();
    assert_eq!(sys.run(10), Ok(RunOutcome::Stopped(0)));
    sys.assert_model_satisfied();
    assert_eq!(sys.uart(), "", "no element moved");
    assert_eq!(
        sys.device_model.stats().records,
        1,
        "only the debug exit reached the device model"
    );
    sys.check_transcript("rep_zero_count");
}

#[test]
fn string_io_with_32_bit_addresses_zero_extends_the_index_registers() {
    let mut memory = ram();
    memory.bytes_mut()[0x2000] = b'x';
    let steps = [
        step(
            "outsb, 32-bit addresses, RSI upper half set",
            ExitSpec {
                reason: 30,
                qualification: io(UART_PORT, 1, STRING),
                instruction_len: 1,
                guest_linear: 0x2000,
                instruction_info: 1 << 7,
                registers: RegisterValues {
                    rsi: Some(0xFFFF_FFFF_0000_2000),
                    ..regs()
                },
                ..Default::default()
            },
            &[
                Expectation::RipAdvanced,
                Expectation::Register {
                    register: Register::Rsi,
                    value: 0x2001,
                },
            ],
        ),
        debug_exit(0),
    ];
    system!(sys, KernelRules::Sel4V5, &steps, memory);
    sys.boot();
    assert_eq!(sys.run(10), Ok(RunOutcome::Stopped(0)));
    sys.assert_model_satisfied();
    assert_eq!(sys.uart(), "x");
}

#[test]
fn moving_past_sti_hlt_ends_the_sti_shadow_so_the_interrupt_comes_at_once() {
    let steps = [
        step(
            "sti; hlt (STI blocking at the HLT exit)",
            ExitSpec {
                reason: 12,
                instruction_len: 1,
                rflags: Some(0x202),
                interruptibility: Some(1),
                ..Default::default()
            },
            &[
                Expectation::RipAdvanced,
                Expectation::Field {
                    encoding: 0x4824,
                    value: 0,
                },
                Expectation::EventPending { info: 0x8000_0030 },
            ],
        ),
        debug_exit(0),
    ];
    system!(sys, KernelRules::Sel4V5, &steps, ram());
    sys.boot();
    assert_eq!(
        sys.request(CONTROLLER, Request::RaiseInterrupt { vector: 0x30 }),
        Response::Ok
    );
    assert_eq!(sys.run(10), Ok(RunOutcome::Stopped(0)));
    sys.assert_model_satisfied();
}

#[test]
fn events_sel4_cannot_inject_are_left_to_recur_or_refused() {
    let steps = [
        step(
            "EPT violation while delivering INT 0x80",
            ExitSpec {
                reason: 48,
                qualification: 0x182,
                guest_physical: 0x8000,
                idt_vectoring_info: 0x8000_0480,
                instruction_len: 2,
                ..Default::default()
            },
            // seL4 exposes no VM-entry instruction length: not re-injected; the INT re-runs.
            &[Expectation::NoEventPending, Expectation::RipUnchanged],
        ),
        step(
            "rdmsr unknown MSR (5.0: #GP(0) not injectable)",
            ExitSpec {
                reason: 31,
                instruction_len: 2,
                registers: RegisterValues {
                    rcx: Some(0x1234),
                    ..regs()
                },
                ..Default::default()
            },
            &[],
        ),
    ];
    system!(sys, KernelRules::Sel4V5, &steps, ram());
    sys.boot();
    // The device model's #GP is refused (Unsupported) each time it answers; the server gives up.
    let outcome = sys.run(10);
    assert!(
        matches!(
            outcome,
            Err(RunError::Rejected(ErrorReport {
                code: ErrorCode::Unsupported,
                ..
            }))
        ),
        "{outcome:?}"
    );
    assert!(
        sys.server.kernel().differences().is_empty(),
        "{:?}",
        sys.server.kernel().differences()
    );
    // A controller asking for an error-code exception is refused the same way.
    let gp = vmm_protocol::EventRequest {
        vector: 13,
        kind: None,
        error_code: Some(0),
        instruction_len: None,
    };
    assert_eq!(
        sys.request(CONTROLLER, Request::Inject(gp)),
        Response::Error(ErrorReport::new(ErrorCode::Unsupported))
    );
}
