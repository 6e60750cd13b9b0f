//! Golden vectors: `tests/golden.txt` holds the encoding of one value per variant (lines
//! `family name hex`). The test encodes each value and compares bytes, decodes each vector
//! back, checks that every variant of every enum appears, and ties the vectors to
//! `PROTOCOL_VERSION`.
//!
//! After an intended wire-format change: bump `PROTOCOL_VERSION`, run
//! `VMM_PROTOCOL_BLESS=1 cargo test -p vmm-protocol --test golden` to rewrite the file, and add
//! the printed fingerprint to `FORMAT_FINGERPRINTS`, all in one commit.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use common::*;
use vmm_protocol::*;

/// The fingerprint of the golden vectors of each protocol version. A new version adds a row;
/// rows are never edited.
const FORMAT_FINGERPRINTS: &[(u16, u64)] = &[(1, 0x1177_7e2f_309b_4a7e), (2, 0x3fb4_ee36_a97e_904c)];

const GOLDEN_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden.txt");

fn gprs_sample() -> GeneralRegisters {
    GeneralRegisters {
        rax: 0x41,
        rcx: 0x3,
        rdx: 0x3F8,
        rbx: 0xFFFF_8000_0000_1000,
        rbp: 0x7FFF_FFFF_E000,
        rsi: 0x1000,
        rdi: 0x2000,
        r8: 8,
        r9: 9,
        r10: 10,
        r11: 0x202,
        r12: 12,
        r13: 13,
        r14: 14,
        r15: u64::MAX,
    }
}

fn record(seq: u64, reason: u16, detail: ExitDetail, state: GuestState) -> ExitRecord {
    ExitRecord {
        seq,
        vcpu: 0,
        reason,
        entry_failure: false,
        detail,
        rip: 0xFFFF_FFFF_8100_0010,
        instruction_len: 0,
        state,
        rejected: None,
    }
}

fn with_gprs() -> GuestState {
    GuestState {
        gprs: Some(gprs_sample()),
        ..GuestState::EMPTY
    }
}

fn reply(seq: u64, actions: &[Action]) -> ExitReply {
    ExitReply {
        seq,
        actions: hvec(actions),
    }
}

fn inject(
    vector: u8,
    kind: Option<EventKind>,
    error_code: Option<u32>,
    instruction_len: Option<u8>,
) -> EventRequest {
    EventRequest {
        vector,
        kind,
        error_code,
        instruction_len,
    }
}

/// One value per variant of every enum (several for the interesting ones), named.
fn golden_values() -> Vec<(&'static str, AnyMessage)> {
    use AnyMessage as M;
    let mut v: Vec<(&'static str, AnyMessage)> = vec![
        (
            "hello",
            M::Request(Request::Hello {
                version: PROTOCOL_VERSION,
            }),
        ),
        (
            "read-fields",
            M::Request(Request::ReadFields(hvec(&[
                0x681E, 0x681C, 0x4824, 0x4402, 0x2800,
            ]))),
        ),
        ("read-fields-empty", M::Request(Request::ReadFields(hvec(&[])))),
        (
            "write-fields",
            M::Request(Request::WriteFields(hvec(&[
                FieldValue {
                    encoding: 0x681E,
                    value: 0xFFFF_FFFF_8100_0000,
                },
                FieldValue {
                    encoding: 0x4826,
                    value: 0,
                },
            ]))),
        ),
    ];
    let controls: [(&str, ControlId, u64, u64); 7] = [
        ("set-control-pin", ControlId::Pin, 1 << 3, 0),
        ("set-control-primary", ControlId::Primary, 1 << 7, 1 << 2),
        ("set-control-secondary", ControlId::Secondary, 1 << 7, 0),
        ("set-control-tertiary", ControlId::Tertiary, 0, 1 << 63),
        ("set-control-exit", ControlId::Exit, 1 << 15, 0),
        ("set-control-secondary-exit", ControlId::SecondaryExit, 0, 0),
        ("set-control-entry", ControlId::Entry, 1 << 9, 0),
    ];
    for (name, control, set, clear) in controls {
        v.push((name, M::Request(Request::SetControl { control, set, clear })));
    }
    let injections: [(&str, EventRequest); 7] = [
        ("inject-auto", inject(14, None, Some(0x2), None)),
        (
            "inject-external-interrupt",
            inject(0x20, Some(EventKind::ExternalInterrupt), None, None),
        ),
        ("inject-nmi", inject(2, Some(EventKind::Nmi), None, None)),
        (
            "inject-hardware-exception",
            inject(13, Some(EventKind::HardwareException), Some(0), None),
        ),
        (
            "inject-software-interrupt",
            inject(0x80, Some(EventKind::SoftwareInterrupt), None, Some(2)),
        ),
        (
            "inject-privileged-software-exception",
            inject(1, Some(EventKind::PrivilegedSoftwareException), None, Some(1)),
        ),
        (
            "inject-software-exception",
            inject(3, Some(EventKind::SoftwareException), None, Some(1)),
        ),
    ];
    for (name, event) in injections {
        v.push((name, M::Request(Request::Inject(event))));
    }
    v.extend([
        ("read-registers", M::Request(Request::ReadRegisters)),
        (
            "write-registers",
            M::Request(Request::WriteRegisters {
                registers: gprs_sample(),
                mask: GprSet::RAX | GprSet::RBX | GprSet::R15,
            }),
        ),
        (
            "raise-interrupt",
            M::Request(Request::RaiseInterrupt { vector: 0x24 }),
        ),
        ("run", M::Request(Request::Run)),
        ("pause", M::Request(Request::Pause)),
        ("statistics", M::Request(Request::Statistics)),
        ("dump", M::Request(Request::Dump { start: 0 })),
        (
            "dump-next",
            M::Request(Request::Dump {
                start: DUMP_PAGE_ENTRIES as u16,
            }),
        ),
    ]);

    // ---- responses
    v.extend([
        (
            "hello",
            M::Response(Response::Hello {
                version: PROTOCOL_VERSION,
            }),
        ),
        (
            "values",
            M::Response(Response::Values(hvec(&[0xFFFF_FFFF_8100_0000, 0x22, 0, 30]))),
        ),
        ("written", M::Response(Response::Written(hvec(&[0x8401_E172])))),
        ("ok", M::Response(Response::Ok)),
        ("registers", M::Response(Response::Registers(gprs_sample()))),
        (
            "statistics",
            M::Response(Response::Statistics(Statistics {
                exits: 1000,
                exits_by_class: [600, 50, 40, 30, 20, 10, 5, 4, 3, 2, 236],
                kernel_invocations: 2100,
                kernel_invocations_by_class: [600, 150, 80, 60, 40, 30, 20, 8, 6, 4, 472],
                requests: 70,
                forbidden: 2,
                malformed: 1,
                failed: 3,
                replies_rejected: 1,
                interrupts_raised: 17,
                events_injected: 16,
            })),
        ),
        (
            "dump",
            M::Response(Response::Dump(DumpPage {
                entries: hvec(&[
                    FieldValue {
                        encoding: 0x0800,
                        value: 0x10,
                    },
                    FieldValue {
                        encoding: 0x681E,
                        value: 0xFFF0,
                    },
                ]),
                next: Some(2),
            })),
        ),
        (
            "dump-last",
            M::Response(Response::Dump(DumpPage {
                entries: hvec(&[]),
                next: None,
            })),
        ),
    ]);
    let errors: [(&str, ErrorReport); 18] = [
        ("error-malformed", ErrorReport::new(ErrorCode::Malformed)),
        (
            "error-version-mismatch",
            ErrorReport::new(ErrorCode::VersionMismatch {
                server: PROTOCOL_VERSION,
            }),
        ),
        ("error-unsupported", ErrorReport::new(ErrorCode::Unsupported)),
        ("error-forbidden", ErrorReport::at(ErrorCode::Forbidden, 3)),
        ("error-unknown-field", ErrorReport::at(ErrorCode::UnknownField, 0)),
        ("error-inaccessible", ErrorReport::at(ErrorCode::Inaccessible, 1)),
        ("error-read-only", ErrorReport::at(ErrorCode::ReadOnly, 47)),
        ("error-write-only", ErrorReport::at(ErrorCode::WriteOnly, 2)),
        (
            "error-invalid-control",
            ErrorReport::new(ErrorCode::InvalidControl),
        ),
        ("error-invalid-event", ErrorReport::new(ErrorCode::InvalidEvent)),
        ("error-event-pending", ErrorReport::new(ErrorCode::EventPending)),
        (
            "error-invalid-action",
            ErrorReport::at(ErrorCode::InvalidAction, 1),
        ),
        (
            "error-sequence-mismatch",
            ErrorReport::new(ErrorCode::SequenceMismatch),
        ),
        ("error-not-paused", ErrorReport::new(ErrorCode::NotPaused)),
        ("error-stopped", ErrorReport::new(ErrorCode::Stopped)),
        ("error-busy", ErrorReport::new(ErrorCode::Busy)),
        ("error-kernel", ErrorReport::at(ErrorCode::Kernel(3), 5)),
        ("error-vmcs", ErrorReport::new(ErrorCode::Vmcs(12))),
    ];
    for (name, report) in errors {
        v.push((name, M::Response(Response::Error(report))));
    }

    // ---- exit records (values as the Bochs run in notes/bochs-vmx.md saw them where it applies)
    let io = |port, size, direction, string, rep, value| ExitDetail::Io {
        port,
        size,
        direction,
        string,
        rep,
        value,
    };
    let mmio = |gpa, gla, access, qualification, instruction: &[u8]| ExitDetail::Mmio {
        gpa,
        gla,
        access,
        qualification,
        instruction: hvec(instruction),
    };
    let cr = |cr, access| ExitDetail::CrAccess { cr, access };
    let records: Vec<(&'static str, ExitRecord)> = vec![
        (
            "exception-ud",
            record(
                1,
                0,
                ExitDetail::Exception {
                    vector: 6,
                    kind: EventKind::HardwareException,
                    error_code: None,
                },
                GuestState::EMPTY,
            ),
        ),
        (
            "exception-gp",
            record(
                2,
                0,
                ExitDetail::Exception {
                    vector: 13,
                    kind: EventKind::HardwareException,
                    error_code: Some(0x18),
                },
                GuestState::EMPTY,
            ),
        ),
        (
            "exception-nmi",
            record(
                3,
                0,
                ExitDetail::Exception {
                    vector: 2,
                    kind: EventKind::Nmi,
                    error_code: None,
                },
                GuestState::EMPTY,
            ),
        ),
        (
            "triple-fault",
            record(4, 2, ExitDetail::TripleFault, GuestState::EMPTY),
        ),
        (
            "interrupt-window",
            record(
                5,
                7,
                ExitDetail::InterruptWindow,
                GuestState {
                    rflags: Some(0x202),
                    interruptibility: Some(InterruptibilityState {
                        interruptibility: 0,
                        activity: 0,
                    }),
                    ..GuestState::EMPTY
                },
            ),
        ),
        (
            "nmi-window",
            record(6, 8, ExitDetail::NmiWindow, GuestState::EMPTY),
        ),
        (
            "cpuid",
            record(
                7,
                10,
                ExitDetail::Cpuid {
                    leaf: 0x4000_0000,
                    subleaf: 0,
                },
                with_gprs(),
            ),
        ),
        (
            "hlt",
            record(
                8,
                12,
                ExitDetail::Hlt,
                GuestState {
                    rflags: Some(0x202),
                    interruptibility: Some(InterruptibilityState {
                        interruptibility: 0,
                        activity: 0,
                    }),
                    ..GuestState::EMPTY
                },
            ),
        ),
        ("vmcall", record(9, 18, ExitDetail::Vmcall, with_gprs())),
        (
            "cr-access-mov-to-cr0",
            record(
                10,
                28,
                cr(0, CrAccessKind::MovToCr { gpr: Gpr::Rax }),
                with_gprs(),
            ),
        ),
        (
            "cr-access-mov-from-cr3",
            record(
                11,
                28,
                cr(3, CrAccessKind::MovFromCr { gpr: Gpr::R8 }),
                with_gprs(),
            ),
        ),
        (
            "cr-access-clts",
            record(12, 28, cr(0, CrAccessKind::Clts), GuestState::EMPTY),
        ),
        (
            "cr-access-lmsw",
            record(
                13,
                28,
                cr(
                    0,
                    CrAccessKind::Lmsw {
                        source_data: 0x0001,
                        memory_operand: true,
                    },
                ),
                GuestState::EMPTY,
            ),
        ),
        (
            "io-out-byte",
            record(
                14,
                30,
                io(
                    0x3F8,
                    AccessSize::Byte,
                    IoDirection::Out,
                    false,
                    false,
                    Some(0x41),
                ),
                with_gprs(),
            ),
        ),
        (
            "io-in-byte",
            record(
                15,
                30,
                io(0x3FD, AccessSize::Byte, IoDirection::In, false, false, None),
                with_gprs(),
            ),
        ),
        (
            "io-in-word",
            record(
                16,
                30,
                io(0x1F0, AccessSize::Word, IoDirection::In, false, false, None),
                with_gprs(),
            ),
        ),
        (
            "io-rep-outs-dword",
            record(
                17,
                30,
                io(
                    0xCFC,
                    AccessSize::Dword,
                    IoDirection::Out,
                    true,
                    true,
                    Some(0x8000_0000),
                ),
                with_gprs(),
            ),
        ),
        (
            "rdmsr",
            record(18, 31, ExitDetail::Rdmsr { index: 0x1B }, with_gprs()),
        ),
        (
            "wrmsr",
            record(
                19,
                32,
                ExitDetail::Wrmsr {
                    index: 0xC000_0080,
                    value: 0x501,
                },
                with_gprs(),
            ),
        ),
        (
            "mmio-read",
            record(
                20,
                48,
                mmio(
                    0x3FF0_0000,
                    Some(0x3FF0_0000),
                    MemoryAccess::Read,
                    0x181,
                    &[0x8B, 0x04, 0x25, 0x00, 0x00, 0xF0, 0x3F],
                ),
                with_gprs(),
            ),
        ),
        (
            "mmio-write",
            record(
                21,
                48,
                mmio(0xFEE0_00B0, None, MemoryAccess::Write, 0x182, &[0x89, 0x08]),
                with_gprs(),
            ),
        ),
        (
            "mmio-fetch",
            record(
                22,
                48,
                mmio(0xFFFF_0000, Some(0xFFFF_0000), MemoryAccess::Fetch, 0x184, &[]),
                GuestState::EMPTY,
            ),
        ),
        (
            "ept-misconfig",
            record(
                23,
                49,
                ExitDetail::EptMisconfig { gpa: 0xFED0_0000 },
                GuestState::EMPTY,
            ),
        ),
        (
            "invalid-guest-state",
            ExitRecord {
                entry_failure: true,
                ..record(
                    24,
                    33,
                    ExitDetail::InvalidGuestState { qualification: 0 },
                    GuestState::EMPTY,
                )
            },
        ),
        (
            "vm-instruction-error",
            ExitRecord {
                entry_failure: true,
                ..record(
                    25,
                    NO_EXIT_REASON,
                    ExitDetail::VmInstructionError { error: 7 },
                    GuestState::EMPTY,
                )
            },
        ),
        (
            "unknown-xsetbv",
            record(26, 55, ExitDetail::Unknown { qualification: 0 }, with_gprs()),
        ),
        (
            "full-state",
            ExitRecord {
                vcpu: 1,
                instruction_len: 1,
                ..record(
                    27,
                    12,
                    ExitDetail::Hlt,
                    GuestState {
                        gprs: Some(gprs_sample()),
                        rsp: Some(0x7FFF_FFFF_DFF0),
                        rflags: Some(0x246),
                        segments: Some(Segments {
                            es: Segment {
                                selector: 0x10,
                                base: 0,
                                limit: 0xFFFF_FFFF,
                                access_rights: 0xC093,
                            },
                            cs: Segment {
                                selector: 0x08,
                                base: 0,
                                limit: 0xFFFF_FFFF,
                                access_rights: 0xA09B,
                            },
                            ss: Segment {
                                selector: 0x10,
                                base: 0,
                                limit: 0xFFFF_FFFF,
                                access_rights: 0xC093,
                            },
                            ds: Segment {
                                selector: 0x10,
                                base: 0,
                                limit: 0xFFFF_FFFF,
                                access_rights: 0xC093,
                            },
                            fs: Segment {
                                selector: 0,
                                base: 0x7F00_0000_0000,
                                limit: 0xFFFF,
                                access_rights: 0x1_0000,
                            },
                            gs: Segment {
                                selector: 0,
                                base: 0xFFFF_8880_0000_0000,
                                limit: 0xFFFF,
                                access_rights: 0x1_0000,
                            },
                            ldtr: Segment {
                                selector: 0,
                                base: 0,
                                limit: 0xFFFF,
                                access_rights: 0x1_0082,
                            },
                            tr: Segment {
                                selector: 0x18,
                                base: 0x1000,
                                limit: 0x67,
                                access_rights: 0x8B,
                            },
                        }),
                        descriptor_tables: Some(DescriptorTables {
                            gdtr_base: 0x2000,
                            gdtr_limit: 0x27,
                            idtr_base: 0x3000,
                            idtr_limit: 0xFFF,
                        }),
                        control_registers: Some(ControlRegisters {
                            cr0: 0x8000_0031,
                            cr3: 0x10_0000,
                            cr4: 0x2020,
                            efer: 0x500,
                        }),
                        dr7: Some(0x400),
                        interruptibility: Some(InterruptibilityState {
                            interruptibility: 1,
                            activity: 1,
                        }),
                        pending_events: Some(PendingEvents {
                            idt_vectoring_info: 0x8000_0B0E,
                            idt_vectoring_error_code: 2,
                            entry_interruption_info: 0,
                        }),
                    },
                )
            },
        ),
        (
            "rejected-resend",
            ExitRecord {
                rejected: Some(ErrorReport::at(ErrorCode::InvalidAction, 0)),
                ..record(
                    14,
                    30,
                    io(
                        0x3F8,
                        AccessSize::Byte,
                        IoDirection::Out,
                        false,
                        false,
                        Some(0x41),
                    ),
                    with_gprs(),
                )
            },
        ),
    ];
    v.extend(records.into_iter().map(|(name, r)| (name, M::ExitRecord(r))));

    // ---- exit replies
    let set = |register: Register, value| Action::SetRegister { register, value };
    let all_gprs: Vec<Action> = Gpr::ALL
        .iter()
        .map(|&g| set(Register::Gpr(g), g.number().into()))
        .collect();
    let all_classes: Vec<Action> = ExitClass::ALL
        .iter()
        .map(|&class| Action::SetStateGroups {
            class,
            groups: match class {
                ExitClass::Io | ExitClass::Cpuid | ExitClass::Msr | ExitClass::Mmio => StateGroups::GPRS,
                ExitClass::Hlt | ExitClass::InterruptWindow => {
                    StateGroups::RFLAGS | StateGroups::INTERRUPTIBILITY
                }
                ExitClass::Exception => StateGroups::PENDING_EVENTS,
                ExitClass::Failure => StateGroups::all(),
                _ => StateGroups::empty(),
            },
        })
        .collect();
    let replies: Vec<(&'static str, ExitReply)> = vec![
        ("resume", reply(1, &[])),
        (
            "io-in",
            reply(15, &[Action::CompleteIo { value: 0x60 }, Action::AdvanceRip]),
        ),
        (
            "mmio-read",
            reply(
                20,
                &[
                    Action::CompleteMmioRead {
                        register: Gpr::Rax,
                        size: AccessSize::Dword,
                        value: 0x1234_5678,
                    },
                    set(Register::Rip, 0xFFFF_FFFF_8100_0017),
                ],
            ),
        ),
        (
            "mmio-read-sizes",
            reply(
                20,
                &[
                    Action::CompleteMmioRead {
                        register: Gpr::Rcx,
                        size: AccessSize::Byte,
                        value: 0x12,
                    },
                    Action::CompleteMmioRead {
                        register: Gpr::Rdx,
                        size: AccessSize::Word,
                        value: 0x1234,
                    },
                    Action::CompleteMmioRead {
                        register: Gpr::R9,
                        size: AccessSize::Qword,
                        value: u64::MAX,
                    },
                ],
            ),
        ),
        (
            "cpuid",
            reply(
                7,
                &[
                    set(Register::Gpr(Gpr::Rax), 0x4000_0001),
                    set(Register::Gpr(Gpr::Rbx), 0x4C65_5334),
                    set(Register::Gpr(Gpr::Rcx), 0x4D4D_5634),
                    set(Register::Gpr(Gpr::Rdx), 0x0000_0000),
                    Action::AdvanceRip,
                ],
            ),
        ),
        ("set-every-gpr", reply(9, &all_gprs)),
        (
            "set-rip-rflags",
            reply(9, &[set(Register::Rip, 0x1000), set(Register::Rflags, 0x2)]),
        ),
        (
            "write-field",
            reply(
                10,
                &[
                    Action::WriteField(FieldValue {
                        encoding: 0x6800,
                        value: 0x8000_0031,
                    }),
                    Action::AdvanceRip,
                ],
            ),
        ),
        (
            "inject-gp",
            reply(
                2,
                &[Action::Inject(inject(
                    13,
                    Some(EventKind::HardwareException),
                    Some(0),
                    None,
                ))],
            ),
        ),
        (
            "raise-interrupt",
            reply(14, &[Action::AdvanceRip, Action::RaiseInterrupt { vector: 0x24 }]),
        ),
        (
            "request-windows",
            reply(3, &[Action::RequestInterruptWindow, Action::RequestNmiWindow]),
        ),
        (
            "hlt-wait",
            reply(8, &[Action::AdvanceRip, Action::WaitForInterrupt]),
        ),
        ("set-state-groups", reply(0, &all_classes)),
        ("stop", reply(4, &[Action::Stop { status: 0x31 }])),
    ];
    v.extend(replies.into_iter().map(|(name, r)| (name, M::ExitReply(r))));
    v
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// FNV-1a, 64 bits.
fn fingerprint(lines: &[String]) -> u64 {
    let mut hash = 0xCBF2_9CE4_8422_2325u64;
    for line in lines {
        for &byte in line.as_bytes().iter().chain(b"\n") {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    hash
}

fn generated_lines() -> Vec<String> {
    let mut seen = BTreeSet::new();
    golden_values()
        .into_iter()
        .map(|(name, message)| {
            let kind = message.kind();
            assert!(
                seen.insert((kind.name(), name)),
                "duplicate golden name {kind} {name}"
            );
            format!("{kind} {name} {}", hex(&message.encode()))
        })
        .collect()
}

#[test]
fn golden_vectors_match_the_encoder() {
    let generated = generated_lines();
    if std::env::var_os("VMM_PROTOCOL_BLESS").is_some() {
        let mut text = format!(
            "# vmm-protocol golden vectors, protocol version {PROTOCOL_VERSION}: family name hex\n\
             # Regenerate with VMM_PROTOCOL_BLESS=1 only together with a PROTOCOL_VERSION bump.\n"
        );
        for line in &generated {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(GOLDEN_PATH, text).expect("write golden file");
        println!(
            "fingerprint of version {PROTOCOL_VERSION}: {:#018x}",
            fingerprint(&generated)
        );
    }
    let text = std::fs::read_to_string(GOLDEN_PATH).expect("read golden file");
    let header = format!("# vmm-protocol golden vectors, protocol version {PROTOCOL_VERSION}:");
    assert!(
        text.starts_with(&header),
        "golden file is not for protocol version {PROTOCOL_VERSION}"
    );
    let stored: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();

    let key = |line: &String| {
        line.rsplit_once(' ')
            .map(|(k, _)| k.to_owned())
            .unwrap_or_default()
    };
    let stored_map: BTreeMap<String, &String> = stored.iter().map(|l| (key(l), l)).collect();
    let generated_map: BTreeMap<String, &String> = generated.iter().map(|l| (key(l), l)).collect();
    let mut problems = Vec::new();
    for (k, line) in &generated_map {
        match stored_map.get(k) {
            None => problems.push(format!("missing from golden.txt: {line}")),
            Some(stored) if stored != line => {
                problems.push(format!("changed:\n  file: {stored}\n  code: {line}"))
            }
            Some(_) => {}
        }
    }
    for k in stored_map.keys().filter(|k| !generated_map.contains_key(*k)) {
        problems.push(format!("in golden.txt but not generated: {k}"));
    }
    assert!(
        problems.is_empty(),
        "golden vectors differ from the encoder:\n{}",
        problems.join("\n")
    );
    assert_eq!(stored, generated, "same vectors, different order");
}

#[test]
fn golden_vectors_decode_back() {
    let text = std::fs::read_to_string(GOLDEN_PATH).expect("read golden file");
    let values: BTreeMap<(String, &str), AnyMessage> = golden_values()
        .into_iter()
        .map(|(name, m)| ((m.kind().name().to_owned(), name), m))
        .collect();
    let mut count = 0;
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let mut parts = line.split(' ');
        let (Some(family), Some(name), Some(hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            panic!("malformed golden line: {line}");
        };
        let kind = MessageKind::from_name(family).unwrap_or_else(|| panic!("unknown family in: {line}"));
        let decoded =
            AnyMessage::decode_canonical(kind, &unhex(hex)).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(
            Some(&decoded),
            values.get(&(family.to_owned(), name)),
            "{family} {name}"
        );
        count += 1;
    }
    assert_eq!(count, values.len());
}

#[test]
fn golden_vectors_belong_to_this_protocol_version() {
    let generated = generated_lines();
    let print = fingerprint(&generated);
    let versions: BTreeSet<u16> = FORMAT_FINGERPRINTS.iter().map(|&(v, _)| v).collect();
    let prints: BTreeSet<u64> = FORMAT_FINGERPRINTS.iter().map(|&(_, p)| p).collect();
    assert_eq!(
        versions.len(),
        FORMAT_FINGERPRINTS.len(),
        "a version listed twice"
    );
    assert_eq!(
        prints.len(),
        FORMAT_FINGERPRINTS.len(),
        "two versions with one format"
    );
    let expected = FORMAT_FINGERPRINTS
        .iter()
        .find(|&&(v, _)| v == PROTOCOL_VERSION)
        .map(|&(_, p)| p);
    assert_eq!(
        expected,
        Some(print),
        "the wire format (or the golden values) changed but PROTOCOL_VERSION {PROTOCOL_VERSION} did not: \
         bump PROTOCOL_VERSION, regenerate golden.txt (VMM_PROTOCOL_BLESS=1) and add \
         ({}, {print:#018x}) to FORMAT_FINGERPRINTS",
        PROTOCOL_VERSION
    );
}

// ---- every variant of every enum appears in the golden values

/// The variant names of enum `T`, as serde's derive declares them.
fn variants_of<T: serde::de::DeserializeOwned>() -> (&'static str, &'static [&'static str]) {
    let mut lister = variant_reflection::Lister::default();
    let _ = T::deserialize(&mut lister);
    lister.found.expect("not an enum")
}

#[test]
fn golden_values_cover_every_variant_of_every_enum() {
    let mut seen = BTreeSet::new();
    for (_, message) in golden_values() {
        message
            .serialize(&mut variant_reflection::Recorder { seen: &mut seen })
            .expect("record");
    }
    let enums = [
        variants_of::<Request>(),
        variants_of::<Response>(),
        variants_of::<ExitDetail>(),
        variants_of::<Action>(),
        variants_of::<ErrorCode>(),
        variants_of::<ControlId>(),
        variants_of::<EventKind>(),
        variants_of::<Gpr>(),
        variants_of::<Register>(),
        variants_of::<AccessSize>(),
        variants_of::<ExitClass>(),
        variants_of::<IoDirection>(),
        variants_of::<MemoryAccess>(),
        variants_of::<CrAccessKind>(),
    ];
    let mut missing = Vec::new();
    for (name, variants) in enums {
        for variant in variants {
            if !seen.contains(&(name, *variant)) {
                missing.push(format!("{name}::{variant}"));
            }
        }
    }
    assert!(missing.is_empty(), "no golden vector for: {}", missing.join(", "));
    // Sanity: the recorder sees what it should.
    assert!(seen.contains(&("Request", "Hello")));
    assert!(seen.contains(&("Gpr", "R15")));
}

/// A serde serializer that records which enum variants a value contains, and a deserializer
/// that reports an enum's variant names.
mod variant_reflection {
    use std::collections::BTreeSet;
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::ser::{self, Serialize};

    #[derive(Debug)]
    pub struct Stop;

    impl fmt::Display for Stop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("stop")
        }
    }

    impl std::error::Error for Stop {}

    impl ser::Error for Stop {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    impl de::Error for Stop {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    #[derive(Debug)]
    pub struct Recorder<'a> {
        pub seen: &'a mut BTreeSet<(&'static str, &'static str)>,
    }

    type R = Result<(), Stop>;

    impl ser::Serializer for &mut Recorder<'_> {
        type Ok = ();
        type Error = Stop;
        type SerializeSeq = Self;
        type SerializeTuple = Self;
        type SerializeTupleStruct = Self;
        type SerializeTupleVariant = Self;
        type SerializeMap = Self;
        type SerializeStruct = Self;
        type SerializeStructVariant = Self;

        // The human-readable walk: types whose binary form is a block (register groups,
        // guest state, exit records, batches) show their fields and enums there.
        fn is_human_readable(&self) -> bool {
            true
        }
        fn serialize_bool(self, _: bool) -> R {
            Ok(())
        }
        fn serialize_i8(self, _: i8) -> R {
            Ok(())
        }
        fn serialize_i16(self, _: i16) -> R {
            Ok(())
        }
        fn serialize_i32(self, _: i32) -> R {
            Ok(())
        }
        fn serialize_i64(self, _: i64) -> R {
            Ok(())
        }
        fn serialize_u8(self, _: u8) -> R {
            Ok(())
        }
        fn serialize_u16(self, _: u16) -> R {
            Ok(())
        }
        fn serialize_u32(self, _: u32) -> R {
            Ok(())
        }
        fn serialize_u64(self, _: u64) -> R {
            Ok(())
        }
        fn serialize_f32(self, _: f32) -> R {
            Ok(())
        }
        fn serialize_f64(self, _: f64) -> R {
            Ok(())
        }
        fn serialize_char(self, _: char) -> R {
            Ok(())
        }
        fn serialize_str(self, _: &str) -> R {
            Ok(())
        }
        fn serialize_bytes(self, _: &[u8]) -> R {
            Ok(())
        }
        fn serialize_none(self) -> R {
            Ok(())
        }
        fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> R {
            value.serialize(self)
        }
        fn serialize_unit(self) -> R {
            Ok(())
        }
        fn serialize_unit_struct(self, _: &'static str) -> R {
            Ok(())
        }
        fn serialize_unit_variant(self, name: &'static str, _: u32, variant: &'static str) -> R {
            self.seen.insert((name, variant));
            Ok(())
        }
        fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> R {
            value.serialize(self)
        }
        fn serialize_newtype_variant<T: ?Sized + Serialize>(
            self,
            name: &'static str,
            _: u32,
            variant: &'static str,
            value: &T,
        ) -> R {
            self.seen.insert((name, variant));
            value.serialize(self)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self, Stop> {
            Ok(self)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self, Stop> {
            Ok(self)
        }
        fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Stop> {
            Ok(self)
        }
        fn serialize_tuple_variant(
            self,
            name: &'static str,
            _: u32,
            variant: &'static str,
            _: usize,
        ) -> Result<Self, Stop> {
            self.seen.insert((name, variant));
            Ok(self)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self, Stop> {
            Ok(self)
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Stop> {
            Ok(self)
        }
        fn serialize_struct_variant(
            self,
            name: &'static str,
            _: u32,
            variant: &'static str,
            _: usize,
        ) -> Result<Self, Stop> {
            self.seen.insert((name, variant));
            Ok(self)
        }
    }

    macro_rules! compound {
        ($trait:ident, $method:ident $(, $key:ty)?) => {
            impl ser::$trait for &mut Recorder<'_> {
                type Ok = ();
                type Error = Stop;
                fn $method<T: ?Sized + Serialize>(&mut self, $(_: $key,)? value: &T) -> R {
                    value.serialize(&mut **self)
                }
                fn end(self) -> R {
                    Ok(())
                }
            }
        };
    }
    compound!(SerializeSeq, serialize_element);
    compound!(SerializeTuple, serialize_element);
    compound!(SerializeTupleStruct, serialize_field);
    compound!(SerializeTupleVariant, serialize_field);
    compound!(SerializeStruct, serialize_field, &'static str);
    compound!(SerializeStructVariant, serialize_field, &'static str);

    impl ser::SerializeMap for &mut Recorder<'_> {
        type Ok = ();
        type Error = Stop;
        fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> R {
            key.serialize(&mut **self)
        }
        fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> R {
            value.serialize(&mut **self)
        }
        fn end(self) -> R {
            Ok(())
        }
    }

    #[derive(Debug, Default)]
    pub struct Lister {
        pub found: Option<(&'static str, &'static [&'static str])>,
    }

    impl<'de> de::Deserializer<'de> for &mut Lister {
        type Error = Stop;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.found = Some((name, variants));
            Err(Stop)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
            unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
        }
    }
}
