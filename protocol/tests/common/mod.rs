//! Shared by the integration tests: proptest strategies for every message type, one value of
//! each family in a common enum, and worst-case values.
#![allow(dead_code)] // Each test binary uses part of this module.

use proptest::collection::vec as vec_of;
use proptest::prelude::*;
use vmm_protocol::heapless::Vec as HVec;
use vmm_protocol::*;

/// A message of any family.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyMessage {
    Request(Request),
    Response(Response),
    ExitRecord(ExitRecord),
    ExitReply(ExitReply),
}

impl AnyMessage {
    pub fn kind(&self) -> MessageKind {
        match self {
            AnyMessage::Request(_) => MessageKind::Request,
            AnyMessage::Response(_) => MessageKind::Response,
            AnyMessage::ExitRecord(_) => MessageKind::ExitRecord,
            AnyMessage::ExitReply(_) => MessageKind::ExitReply,
        }
    }

    pub fn encode(&self) -> std::vec::Vec<u8> {
        let mut buf = [0u8; MAX_MESSAGE_SIZE];
        let bytes = match self {
            AnyMessage::Request(m) => m.encode(&mut buf),
            AnyMessage::Response(m) => m.encode(&mut buf),
            AnyMessage::ExitRecord(m) => m.encode(&mut buf),
            AnyMessage::ExitReply(m) => m.encode(&mut buf),
        };
        bytes.expect("every message fits MAX_MESSAGE_SIZE").to_vec()
    }

    pub fn decode(kind: MessageKind, bytes: &[u8]) -> Result<AnyMessage, WireError> {
        Ok(match kind {
            MessageKind::Request => AnyMessage::Request(Request::decode(bytes)?),
            MessageKind::Response => AnyMessage::Response(Response::decode(bytes)?),
            MessageKind::ExitRecord => AnyMessage::ExitRecord(ExitRecord::decode(bytes)?),
            MessageKind::ExitReply => AnyMessage::ExitReply(ExitReply::decode(bytes)?),
        })
    }

    pub fn decode_canonical(kind: MessageKind, bytes: &[u8]) -> Result<AnyMessage, WireError> {
        Ok(match kind {
            MessageKind::Request => AnyMessage::Request(Request::decode_canonical(bytes)?),
            MessageKind::Response => AnyMessage::Response(Response::decode_canonical(bytes)?),
            MessageKind::ExitRecord => AnyMessage::ExitRecord(ExitRecord::decode_canonical(bytes)?),
            MessageKind::ExitReply => AnyMessage::ExitReply(ExitReply::decode_canonical(bytes)?),
        })
    }

    /// Feeds the message to a serde serializer (for the variant-coverage check).
    pub fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::Serialize;
        match self {
            AnyMessage::Request(m) => m.serialize(serializer),
            AnyMessage::Response(m) => m.serialize(serializer),
            AnyMessage::ExitRecord(m) => m.serialize(serializer),
            AnyMessage::ExitReply(m) => m.serialize(serializer),
        }
    }
}

pub fn hvec<T: Clone, const N: usize>(items: &[T]) -> HVec<T, N> {
    HVec::from_slice(items).expect("test batch within capacity")
}

// ---- numbers: every varint length, with the boundaries, not just uniform (mostly 10-byte) values

pub fn num64() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..128,
        128u64..16_384,
        (0u32..64).prop_map(|shift| 1u64 << shift),
        (1u32..64).prop_map(|shift| (1u64 << shift) - 1),
        Just(u64::MAX),
    ]
}

pub fn num32() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), 0u32..128, 128u32..16_384, Just(u32::MAX)]
}

pub fn num16() -> impl Strategy<Value = u16> {
    prop_oneof![any::<u16>(), 0u16..128, Just(u16::MAX)]
}

// ---- common types

pub fn gpr() -> impl Strategy<Value = Gpr> {
    prop::sample::select(Gpr::ALL.to_vec())
}

pub fn register() -> impl Strategy<Value = Register> {
    prop_oneof![
        gpr().prop_map(Register::Gpr),
        Just(Register::Rip),
        Just(Register::Rflags)
    ]
}

pub fn general_registers() -> BoxedStrategy<GeneralRegisters> {
    prop::array::uniform15(num64())
        .prop_map(|r| GeneralRegisters {
            rax: r[0],
            rcx: r[1],
            rdx: r[2],
            rbx: r[3],
            rbp: r[4],
            rsi: r[5],
            rdi: r[6],
            r8: r[7],
            r9: r[8],
            r10: r[9],
            r11: r[10],
            r12: r[11],
            r13: r[12],
            r14: r[13],
            r15: r[14],
        })
        .boxed()
}

pub fn gpr_set() -> impl Strategy<Value = GprSet> {
    any::<u16>().prop_map(GprSet::from_bits_truncate)
}

pub fn state_groups() -> impl Strategy<Value = StateGroups> {
    any::<u16>().prop_map(StateGroups::from_bits_truncate)
}

pub fn field_value() -> impl Strategy<Value = FieldValue> {
    (num32(), num64()).prop_map(|(encoding, value)| FieldValue { encoding, value })
}

pub fn control_id() -> impl Strategy<Value = ControlId> {
    prop::sample::select(ControlId::ALL.to_vec())
}

pub fn event_kind() -> impl Strategy<Value = EventKind> {
    prop::sample::select(EventKind::ALL.to_vec())
}

pub fn event_request() -> BoxedStrategy<EventRequest> {
    (
        any::<u8>(),
        prop::option::of(event_kind()),
        prop::option::of(num32()),
        prop::option::of(any::<u8>()),
    )
        .prop_map(|(vector, kind, error_code, instruction_len)| EventRequest {
            vector,
            kind,
            error_code,
            instruction_len,
        })
        .boxed()
}

pub fn access_size() -> impl Strategy<Value = AccessSize> {
    prop::sample::select(AccessSize::ALL.to_vec())
}

pub fn exit_class() -> impl Strategy<Value = ExitClass> {
    prop::sample::select(ExitClass::ALL.to_vec())
}

// ---- request endpoint

pub fn error_code() -> BoxedStrategy<ErrorCode> {
    prop_oneof![
        Just(ErrorCode::Malformed),
        num16().prop_map(|server| ErrorCode::VersionMismatch { server }),
        Just(ErrorCode::Unsupported),
        Just(ErrorCode::Forbidden),
        Just(ErrorCode::UnknownField),
        Just(ErrorCode::Inaccessible),
        Just(ErrorCode::ReadOnly),
        Just(ErrorCode::WriteOnly),
        Just(ErrorCode::InvalidControl),
        Just(ErrorCode::InvalidEvent),
        Just(ErrorCode::EventPending),
        Just(ErrorCode::InvalidAction),
        Just(ErrorCode::SequenceMismatch),
        Just(ErrorCode::NotPaused),
        Just(ErrorCode::Stopped),
        Just(ErrorCode::Busy),
        num32().prop_map(ErrorCode::Kernel),
        num32().prop_map(ErrorCode::Vmcs),
    ]
    .boxed()
}

pub fn error_report() -> BoxedStrategy<ErrorReport> {
    (error_code(), prop::option::of(num16()))
        .prop_map(|(code, index)| ErrorReport { code, index })
        .boxed()
}

pub fn request() -> BoxedStrategy<Request> {
    prop_oneof![
        num16().prop_map(|version| Request::Hello { version }),
        vec_of(num32(), 0..=MAX_FIELDS).prop_map(|v| Request::ReadFields(hvec(&v))),
        vec_of(field_value(), 0..=MAX_FIELDS).prop_map(|v| Request::WriteFields(hvec(&v))),
        (control_id(), num64(), num64()).prop_map(|(control, set, clear)| Request::SetControl {
            control,
            set,
            clear
        }),
        event_request().prop_map(Request::Inject),
        Just(Request::ReadRegisters),
        (general_registers(), gpr_set())
            .prop_map(|(registers, mask)| Request::WriteRegisters { registers, mask }),
        any::<u8>().prop_map(|vector| Request::RaiseInterrupt { vector }),
        Just(Request::Run),
        Just(Request::Pause),
        Just(Request::Statistics),
        num16().prop_map(|start| Request::Dump { start }),
    ]
    .boxed()
}

pub fn statistics() -> BoxedStrategy<Statistics> {
    (
        num64(),
        prop::array::uniform11(num64()),
        num64(),
        prop::array::uniform11(num64()),
        prop::array::uniform7(num64()),
    )
        .prop_map(
            |(exits, exits_by_class, kernel_invocations, kernel_invocations_by_class, n)| Statistics {
                exits,
                exits_by_class,
                kernel_invocations,
                kernel_invocations_by_class,
                requests: n[0],
                forbidden: n[1],
                malformed: n[2],
                failed: n[3],
                replies_rejected: n[4],
                interrupts_raised: n[5],
                events_injected: n[6],
            },
        )
        .boxed()
}

pub fn response() -> BoxedStrategy<Response> {
    prop_oneof![
        num16().prop_map(|version| Response::Hello { version }),
        vec_of(num64(), 0..=MAX_FIELDS).prop_map(|v| Response::Values(hvec(&v))),
        vec_of(num64(), 0..=MAX_FIELDS).prop_map(|v| Response::Written(hvec(&v))),
        Just(Response::Ok),
        general_registers().prop_map(Response::Registers),
        statistics().prop_map(Response::Statistics),
        (
            vec_of(field_value(), 0..=DUMP_PAGE_ENTRIES),
            prop::option::of(num16())
        )
            .prop_map(|(entries, next)| Response::Dump(DumpPage {
                entries: hvec(&entries),
                next
            })),
        error_report().prop_map(Response::Error),
    ]
    .boxed()
}

// ---- exit protocol

pub fn cr_access_kind() -> BoxedStrategy<CrAccessKind> {
    prop_oneof![
        gpr().prop_map(|gpr| CrAccessKind::MovToCr { gpr }),
        gpr().prop_map(|gpr| CrAccessKind::MovFromCr { gpr }),
        Just(CrAccessKind::Clts),
        (num16(), any::<bool>()).prop_map(|(source_data, memory_operand)| CrAccessKind::Lmsw {
            source_data,
            memory_operand
        }),
    ]
    .boxed()
}

pub fn memory_access() -> impl Strategy<Value = MemoryAccess> {
    prop_oneof![
        Just(MemoryAccess::Read),
        Just(MemoryAccess::Write),
        Just(MemoryAccess::Fetch)
    ]
}

pub fn io_direction() -> impl Strategy<Value = IoDirection> {
    prop_oneof![Just(IoDirection::In), Just(IoDirection::Out)]
}

pub fn exit_detail() -> BoxedStrategy<ExitDetail> {
    prop_oneof![
        (any::<u8>(), event_kind(), prop::option::of(num32())).prop_map(|(vector, kind, error_code)| {
            ExitDetail::Exception {
                vector,
                kind,
                error_code,
            }
        }),
        Just(ExitDetail::TripleFault),
        Just(ExitDetail::InterruptWindow),
        Just(ExitDetail::NmiWindow),
        (num32(), num32()).prop_map(|(leaf, subleaf)| ExitDetail::Cpuid { leaf, subleaf }),
        Just(ExitDetail::Hlt),
        Just(ExitDetail::Vmcall),
        (any::<u8>(), cr_access_kind()).prop_map(|(cr, access)| ExitDetail::CrAccess { cr, access }),
        (
            num16(),
            access_size(),
            io_direction(),
            any::<bool>(),
            any::<bool>(),
            prop::option::of(num32())
        )
            .prop_map(|(port, size, direction, string, rep, value)| ExitDetail::Io {
                port,
                size,
                direction,
                string,
                rep,
                value
            }),
        num32().prop_map(|index| ExitDetail::Rdmsr { index }),
        (num32(), num64()).prop_map(|(index, value)| ExitDetail::Wrmsr { index, value }),
        num64().prop_map(|qualification| ExitDetail::InvalidGuestState { qualification }),
        (
            num64(),
            prop::option::of(num64()),
            memory_access(),
            num64(),
            vec_of(any::<u8>(), 0..=MAX_INSTRUCTION_LEN)
        )
            .prop_map(
                |(gpa, gla, access, qualification, instruction)| ExitDetail::Mmio {
                    gpa,
                    gla,
                    access,
                    qualification,
                    instruction: hvec(&instruction),
                }
            ),
        num64().prop_map(|gpa| ExitDetail::EptMisconfig { gpa }),
        num32().prop_map(|error| ExitDetail::VmInstructionError { error }),
        num64().prop_map(|qualification| ExitDetail::Unknown { qualification }),
    ]
    .boxed()
}

pub fn segment() -> BoxedStrategy<Segment> {
    (num16(), num64(), num32(), num32())
        .prop_map(|(selector, base, limit, access_rights)| Segment {
            selector,
            base,
            limit,
            access_rights,
        })
        .boxed()
}

pub fn segments() -> BoxedStrategy<Segments> {
    prop::array::uniform8(segment())
        .prop_map(|s| Segments {
            es: s[0],
            cs: s[1],
            ss: s[2],
            ds: s[3],
            fs: s[4],
            gs: s[5],
            ldtr: s[6],
            tr: s[7],
        })
        .boxed()
}

pub fn guest_state() -> BoxedStrategy<GuestState> {
    use prop::option::of;
    (
        of(general_registers()),
        of(num64()),
        of(num64()),
        of(segments()),
        of((num64(), num32(), num64(), num32()).prop_map(
            |(gdtr_base, gdtr_limit, idtr_base, idtr_limit)| DescriptorTables {
                gdtr_base,
                gdtr_limit,
                idtr_base,
                idtr_limit,
            },
        )),
        of(prop::array::uniform4(num64()).prop_map(|c| ControlRegisters {
            cr0: c[0],
            cr3: c[1],
            cr4: c[2],
            efer: c[3],
        })),
        of(num64()),
        of(
            (num32(), num32()).prop_map(|(interruptibility, activity)| InterruptibilityState {
                interruptibility,
                activity,
            }),
        ),
        of((num32(), num32(), num32()).prop_map(
            |(idt_vectoring_info, idt_vectoring_error_code, entry_interruption_info)| PendingEvents {
                idt_vectoring_info,
                idt_vectoring_error_code,
                entry_interruption_info,
            },
        )),
    )
        .prop_map(
            |(
                gprs,
                rsp,
                rflags,
                segments,
                descriptor_tables,
                control_registers,
                dr7,
                interruptibility,
                pending_events,
            )| GuestState {
                gprs,
                rsp,
                rflags,
                segments,
                descriptor_tables,
                control_registers,
                dr7,
                interruptibility,
                pending_events,
            },
        )
        .boxed()
}

pub fn exit_record() -> BoxedStrategy<ExitRecord> {
    (
        (num64(), num16(), num16(), any::<bool>()),
        exit_detail(),
        (num64(), any::<u8>()),
        guest_state(),
        prop::option::of(error_report()),
    )
        .prop_map(
            |((seq, vcpu, reason, entry_failure), detail, (rip, instruction_len), state, rejected)| {
                ExitRecord {
                    seq,
                    vcpu,
                    reason,
                    entry_failure,
                    detail,
                    rip,
                    instruction_len,
                    state,
                    rejected,
                }
            },
        )
        .boxed()
}

pub fn action() -> BoxedStrategy<Action> {
    prop_oneof![
        num32().prop_map(|value| Action::CompleteIo { value }),
        (gpr(), access_size(), num64()).prop_map(|(register, size, value)| Action::CompleteMmioRead {
            register,
            size,
            value
        }),
        Just(Action::AdvanceRip),
        (register(), num64()).prop_map(|(register, value)| Action::SetRegister { register, value }),
        field_value().prop_map(Action::WriteField),
        event_request().prop_map(Action::Inject),
        any::<u8>().prop_map(|vector| Action::RaiseInterrupt { vector }),
        Just(Action::RequestInterruptWindow),
        Just(Action::RequestNmiWindow),
        Just(Action::WaitForInterrupt),
        (exit_class(), state_groups()).prop_map(|(class, groups)| Action::SetStateGroups { class, groups }),
        num32().prop_map(|status| Action::Stop { status }),
    ]
    .boxed()
}

pub fn exit_reply() -> BoxedStrategy<ExitReply> {
    (num64(), vec_of(action(), 0..=MAX_ACTIONS))
        .prop_map(|(seq, actions)| ExitReply {
            seq,
            actions: hvec(&actions),
        })
        .boxed()
}

pub fn any_message() -> BoxedStrategy<AnyMessage> {
    prop_oneof![
        request().prop_map(AnyMessage::Request),
        response().prop_map(AnyMessage::Response),
        exit_record().prop_map(AnyMessage::ExitRecord),
        exit_reply().prop_map(AnyMessage::ExitReply),
    ]
    .boxed()
}

// ---- worst cases: the longest encoding of each family

pub const MAX_GPRS: GeneralRegisters = GeneralRegisters {
    rax: u64::MAX,
    rcx: u64::MAX,
    rdx: u64::MAX,
    rbx: u64::MAX,
    rbp: u64::MAX,
    rsi: u64::MAX,
    rdi: u64::MAX,
    r8: u64::MAX,
    r9: u64::MAX,
    r10: u64::MAX,
    r11: u64::MAX,
    r12: u64::MAX,
    r13: u64::MAX,
    r14: u64::MAX,
    r15: u64::MAX,
};

const MAX_FIELD: FieldValue = FieldValue {
    encoding: u32::MAX,
    value: u64::MAX,
};

const MAX_SEGMENT: Segment = Segment {
    selector: u16::MAX,
    base: u64::MAX,
    limit: u32::MAX,
    access_rights: u32::MAX,
};

/// For each family, a value whose encoding is as long as any of the family's can be.
pub fn worst_cases() -> [AnyMessage; 4] {
    let request = Request::WriteFields(hvec(&[MAX_FIELD; MAX_FIELDS]));
    let response = Response::Dump(DumpPage {
        entries: hvec(&[MAX_FIELD; DUMP_PAGE_ENTRIES]),
        next: Some(u16::MAX),
    });
    let record = ExitRecord {
        seq: u64::MAX,
        vcpu: u16::MAX,
        reason: u16::MAX,
        entry_failure: true,
        detail: ExitDetail::Mmio {
            gpa: u64::MAX,
            gla: Some(u64::MAX),
            access: MemoryAccess::Fetch,
            qualification: u64::MAX,
            instruction: hvec(&[0xFF; MAX_INSTRUCTION_LEN]),
        },
        rip: u64::MAX,
        instruction_len: u8::MAX,
        state: GuestState {
            gprs: Some(MAX_GPRS),
            rsp: Some(u64::MAX),
            rflags: Some(u64::MAX),
            segments: Some(Segments {
                es: MAX_SEGMENT,
                cs: MAX_SEGMENT,
                ss: MAX_SEGMENT,
                ds: MAX_SEGMENT,
                fs: MAX_SEGMENT,
                gs: MAX_SEGMENT,
                ldtr: MAX_SEGMENT,
                tr: MAX_SEGMENT,
            }),
            descriptor_tables: Some(DescriptorTables {
                gdtr_base: u64::MAX,
                gdtr_limit: u32::MAX,
                idtr_base: u64::MAX,
                idtr_limit: u32::MAX,
            }),
            control_registers: Some(ControlRegisters {
                cr0: u64::MAX,
                cr3: u64::MAX,
                cr4: u64::MAX,
                efer: u64::MAX,
            }),
            dr7: Some(u64::MAX),
            interruptibility: Some(InterruptibilityState {
                interruptibility: u32::MAX,
                activity: u32::MAX,
            }),
            pending_events: Some(PendingEvents {
                idt_vectoring_info: u32::MAX,
                idt_vectoring_error_code: u32::MAX,
                entry_interruption_info: u32::MAX,
            }),
        },
        rejected: Some(ErrorReport {
            code: ErrorCode::Vmcs(u32::MAX),
            index: Some(u16::MAX),
        }),
    };
    let reply = ExitReply {
        seq: u64::MAX,
        actions: hvec(&[Action::WriteField(MAX_FIELD); MAX_ACTIONS]),
    };
    [
        AnyMessage::Request(request),
        AnyMessage::Response(response),
        AnyMessage::ExitRecord(record),
        AnyMessage::ExitReply(reply),
    ]
}
