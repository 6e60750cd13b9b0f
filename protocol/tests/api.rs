//! The helpers on the message types: register numbering and access, flag sets, sizes, event
//! kinds, controls, exit classes, and the JSON shape the CLI shows.

mod common;

use common::*;
use proptest::prelude::*;
use vmm_protocol::*;

#[test]
fn gpr_numbers_are_the_hardware_numbers() {
    for (number, gpr) in Gpr::ALL.iter().enumerate() {
        assert_eq!(gpr.number() as usize, number);
        assert_eq!(Gpr::from_number(number as u8), Some(*gpr));
    }
    assert_eq!(Gpr::from_number(16), None);
    assert_eq!(Gpr::from_number(u8::MAX), None);
    // The register names of the CR-access qualification (SDM Vol. 3C, Table 28-3).
    let names: Vec<&str> = Gpr::ALL.iter().map(|g| g.name()).collect();
    assert_eq!(
        names,
        [
            "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
            "r14", "r15"
        ]
    );
}

#[test]
fn general_registers_hold_every_gpr_but_rsp() {
    let mut regs = GeneralRegisters::default();
    for gpr in Gpr::ALL {
        match regs.get_mut(gpr) {
            Some(slot) => *slot = 0x100 + u64::from(gpr.number()),
            None => assert_eq!(gpr, Gpr::Rsp),
        }
    }
    for gpr in Gpr::ALL {
        let expected = (gpr != Gpr::Rsp).then(|| 0x100 + u64::from(gpr.number()));
        assert_eq!(regs.get(gpr), expected, "{gpr:?}");
    }
    assert_eq!(regs.rbx, 0x103);
    assert_eq!(regs.r15, 0x10F);
}

#[test]
fn gpr_set_bits_are_register_numbers() {
    for gpr in Gpr::ALL {
        let set = GprSet::of(gpr);
        if gpr == Gpr::Rsp {
            assert!(set.is_empty());
        } else {
            assert_eq!(set.bits(), 1 << gpr.number(), "{gpr:?}");
        }
    }
    assert_eq!(GprSet::all().bits(), 0xFFEF);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn merge_copies_exactly_the_masked_registers(
        base in general_registers(),
        other in general_registers(),
        mask in gpr_set(),
    ) {
        let mut merged = base;
        merged.merge(&other, mask);
        for gpr in Gpr::ALL {
            let expected = if mask.contains(GprSet::of(gpr)) && gpr != Gpr::Rsp { other.get(gpr) } else { base.get(gpr) };
            prop_assert_eq!(merged.get(gpr), expected, "{:?}", gpr);
        }
    }

    #[test]
    fn guest_state_groups_name_the_present_fields(state in guest_state()) {
        let groups = state.groups();
        prop_assert_eq!(groups.contains(StateGroups::GPRS), state.gprs.is_some());
        prop_assert_eq!(groups.contains(StateGroups::RSP), state.rsp.is_some());
        prop_assert_eq!(groups.contains(StateGroups::RFLAGS), state.rflags.is_some());
        prop_assert_eq!(groups.contains(StateGroups::SEGMENTS), state.segments.is_some());
        prop_assert_eq!(groups.contains(StateGroups::DESCRIPTOR_TABLES), state.descriptor_tables.is_some());
        prop_assert_eq!(groups.contains(StateGroups::CONTROL_REGISTERS), state.control_registers.is_some());
        prop_assert_eq!(groups.contains(StateGroups::DR7), state.dr7.is_some());
        prop_assert_eq!(groups.contains(StateGroups::INTERRUPTIBILITY), state.interruptibility.is_some());
        prop_assert_eq!(groups.contains(StateGroups::PENDING_EVENTS), state.pending_events.is_some());
    }
}

#[test]
fn empty_and_full_guest_state_groups() {
    assert_eq!(GuestState::EMPTY.groups(), StateGroups::empty());
    assert_eq!(GuestState::default(), GuestState::EMPTY);
    let AnyMessage::ExitRecord(worst) = &worst_cases()[2] else {
        panic!("worst case order")
    };
    assert_eq!(worst.state.groups(), StateGroups::all());
}

#[test]
fn access_sizes() {
    for size in AccessSize::ALL {
        assert_eq!(AccessSize::from_bytes(size.bytes()), Some(size));
        assert_eq!(size.mask(), u64::MAX >> (64 - 8 * u32::from(size.bytes())));
    }
    for bytes in [0, 3, 5, 6, 7, 9, 16, 255] {
        assert_eq!(AccessSize::from_bytes(bytes), None);
    }
}

#[test]
fn event_kinds_are_the_injectable_interruption_types() {
    // SDM Vol. 3C, Table 25-17: 0 external interrupt, 2 NMI, 3 hardware exception, 4 software
    // interrupt, 5 privileged software exception, 6 software exception; 1 and 7 are not ours.
    let types: Vec<u8> = EventKind::ALL.iter().map(|k| k.interruption_type()).collect();
    assert_eq!(types, [0, 2, 3, 4, 5, 6]);
    for kind in EventKind::ALL {
        assert_eq!(
            EventKind::from_interruption_type(kind.interruption_type()),
            Some(kind)
        );
    }
    for bits in [1, 7, 8, 255] {
        assert_eq!(EventKind::from_interruption_type(bits), None);
    }
}

#[test]
fn control_encodings() {
    // The five control fields seL4 exposes (notes/sel4-vcpu-api.md), plus the two 64-bit ones.
    let encodings: Vec<(u32, u32)> = ControlId::ALL.iter().map(|c| (c.encoding(), c.bits())).collect();
    assert_eq!(
        encodings,
        [
            (0x4000, 32),
            (0x4002, 32),
            (0x401E, 32),
            (0x2034, 64),
            (0x400C, 32),
            (0x2044, 64),
            (0x4012, 32)
        ]
    );
}

#[test]
fn exit_classes() {
    assert_eq!(ExitClass::ALL.len(), ExitClass::COUNT);
    for (index, class) in ExitClass::ALL.iter().enumerate() {
        assert_eq!(class.index(), index);
        assert_eq!(class.to_string(), class.name());
    }
    let names: std::collections::BTreeSet<&str> = ExitClass::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(names.len(), ExitClass::COUNT);

    let expectations = [
        (
            ExitDetail::Io {
                port: 0x3F8,
                size: AccessSize::Byte,
                direction: IoDirection::Out,
                string: false,
                rep: false,
                value: Some(0),
            },
            ExitClass::Io,
        ),
        (
            ExitDetail::Mmio {
                gpa: 0,
                gla: None,
                access: MemoryAccess::Read,
                qualification: 0,
                instruction: hvec(&[]),
            },
            ExitClass::Mmio,
        ),
        (
            ExitDetail::Exception {
                vector: 6,
                kind: EventKind::HardwareException,
                error_code: None,
            },
            ExitClass::Exception,
        ),
        (ExitDetail::TripleFault, ExitClass::Failure),
        (ExitDetail::InterruptWindow, ExitClass::InterruptWindow),
        (ExitDetail::NmiWindow, ExitClass::InterruptWindow),
        (ExitDetail::Cpuid { leaf: 0, subleaf: 0 }, ExitClass::Cpuid),
        (ExitDetail::Hlt, ExitClass::Hlt),
        (ExitDetail::Vmcall, ExitClass::Vmcall),
        (
            ExitDetail::CrAccess {
                cr: 0,
                access: CrAccessKind::Clts,
            },
            ExitClass::CrAccess,
        ),
        (ExitDetail::Rdmsr { index: 0 }, ExitClass::Msr),
        (ExitDetail::Wrmsr { index: 0, value: 0 }, ExitClass::Msr),
        (
            ExitDetail::InvalidGuestState { qualification: 0 },
            ExitClass::Failure,
        ),
        (ExitDetail::EptMisconfig { gpa: 0 }, ExitClass::Mmio),
        (ExitDetail::VmInstructionError { error: 7 }, ExitClass::Failure),
        (ExitDetail::Unknown { qualification: 0 }, ExitClass::Other),
    ];
    for (detail, class) in expectations {
        assert_eq!(detail.class(), class, "{detail:?}");
    }
}

#[test]
fn message_kinds_by_name() {
    for kind in MessageKind::ALL {
        assert_eq!(MessageKind::from_name(kind.name()), Some(kind));
        assert_eq!(kind.to_string(), kind.name());
    }
    assert_eq!(MessageKind::from_name("exit_record"), None);
    assert_eq!(MessageKind::from_name(""), None);
}

#[test]
fn json_shape_for_the_cli() {
    // Human-readable formats show flag sets by name, and round-trip strictly.
    let action = Action::SetStateGroups {
        class: ExitClass::Io,
        groups: StateGroups::GPRS | StateGroups::RFLAGS,
    };
    let json = serde_json::to_string(&action).unwrap();
    assert_eq!(
        json,
        r#"{"SetStateGroups":{"class":"Io","groups":"GPRS | RFLAGS"}}"#
    );
    assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), action);
    let bad = r#"{"SetStateGroups":{"class":"Io","groups":"0x8000"}}"#;
    assert!(serde_json::from_str::<Action>(bad).is_err());

    let request = Request::ReadFields(hvec(&[0x681E]));
    assert_eq!(
        serde_json::to_string(&request).unwrap(),
        r#"{"ReadFields":[26654]}"#
    );
    assert_eq!(serde_json::to_string(&Request::Run).unwrap(), r#""Run""#);
}

#[test]
fn exit_reply_starts_empty() {
    let reply = ExitReply::new(42);
    assert_eq!(reply.seq, 42);
    assert!(reply.actions.is_empty());
}

#[test]
fn json_shows_the_fields_of_block_encoded_types() {
    // Register groups, guest state, exit records and batches are blocks on the wire but keep
    // their field names and lists in JSON.
    let record = ExitRecord {
        seq: 9,
        vcpu: 0,
        reason: 30,
        entry_failure: false,
        detail: ExitDetail::Io {
            port: 0x3F8,
            size: AccessSize::Byte,
            direction: IoDirection::Out,
            string: false,
            rep: false,
            value: Some(0x41),
        },
        rip: 0x1000,
        instruction_len: 1,
        state: GuestState {
            gprs: Some(GeneralRegisters {
                rax: 0x41,
                ..GeneralRegisters::default()
            }),
            segments: Some(Segments::default()),
            ..GuestState::EMPTY
        },
        rejected: None,
    };
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["seq"], 9);
    assert_eq!(json["detail"]["Io"]["port"], 0x3F8);
    assert_eq!(json["state"]["gprs"]["rax"], 0x41);
    assert_eq!(json["state"]["gprs"]["r15"], 0);
    assert_eq!(json["state"]["segments"]["tr"]["limit"], 0);
    assert!(json["state"]["rsp"].is_null());
    assert_eq!(serde_json::from_value::<ExitRecord>(json).unwrap(), record);

    let write = Request::WriteFields(hvec(&[FieldValue {
        encoding: 0x681E,
        value: 7,
    }]));
    assert_eq!(
        serde_json::to_string(&write).unwrap(),
        r#"{"WriteFields":[{"encoding":26654,"value":7}]}"#
    );
    assert_eq!(
        serde_json::to_string(&Response::Values(hvec(&[1, 2]))).unwrap(),
        r#"{"Values":[1,2]}"#
    );
    // Over-long batches are refused in JSON too.
    let long = format!(r#"{{"ReadFields":{:?}}}"#, vec![1; MAX_FIELDS + 1]);
    assert!(serde_json::from_str::<Request>(&long).is_err());
}
