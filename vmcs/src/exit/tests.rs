//! Tests across the exit module: the gaps of the reference implementation, exhaustive and
//! property tests.

use super::*;
use crate::access::{VmcsAccess, VmcsError};
use crate::event::{InterruptionInfo, InterruptionType};
use proptest::prelude::*;

/// `reference-gaps.md` item 2: the reference panics (`expect`) on reasons it does not know,
/// lacks 70 and 72–77, and ignores bits 26–29 of the exit-reason word.
#[test]
fn reference_gap_2_unknown_and_newer_reasons_and_flag_bits() {
    for n in [70u16, 72, 73, 74, 75, 76, 77] {
        assert!(
            !matches!(ExitReason::from_number(n), ExitReason::Unknown(_)),
            "{n}"
        );
    }
    let word = ExitReasonWord::from_raw(0x3C00_0000 | 71);
    assert_eq!(word.reason(), ExitReason::Unknown(71));
    assert!(word.bus_lock_detected() && word.enclave_mode() && word.pending_mtf() && word.from_vmx_root());
    assert!(!word.entry_failure());
    assert_eq!(
        ExitDetail::decode(word.reason(), 0, None, None),
        Ok(ExitDetail::Other {
            reason: ExitReason::Unknown(71),
            qualification: 0
        })
    );
}

/// `reference-gaps.md` item 5: bit 12 of the interruption information (NMI unblocking due to
/// IRET) reaches the decoded exception.
#[test]
fn reference_gap_5_nmi_unblocking_in_exception_exits() {
    // #GP with error code, during IRET that unblocked NMIs.
    let info = InterruptionInfo::from_raw(0x8000_1B0D);
    let Ok(ExitDetail::Exception { info: decoded, .. }) =
        ExitDetail::decode(ExitReason::ExceptionOrNmi, 0, Some(info), None)
    else {
        panic!()
    };
    assert!(decoded.nmi_unblocking());
    assert!(decoded.error_code_valid());
    assert_eq!(decoded.kind(), InterruptionType::HardwareException);
    assert_eq!(decoded.vector(), 13);
}

/// `reference-gaps.md` item 6: bit 6 (immediate operand) is decoded, size encoding 2 is an
/// error, and INS/OUTS instruction information is offered.
#[test]
fn reference_gap_6_io_immediate_reserved_size_and_string_info() {
    // in eax, 0x60.
    let Ok(ExitDetail::Io { qualification, .. }) =
        ExitDetail::decode(ExitReason::IoInstruction, 0x0060_004B, None, None)
    else {
        panic!()
    };
    assert!(qualification.immediate);
    assert_eq!(qualification.size.bytes(), 4);
    assert_eq!(
        ExitDetail::decode(ExitReason::IoInstruction, 0x0060_000A, None, None),
        Err(QualificationError::ReservedIoSize(2))
    );
    // rep insw with 32-bit addressing.
    let Ok(ExitDetail::Io {
        string: Some(string), ..
    }) = ExitDetail::decode(ExitReason::IoInstruction, 0x0060_0039, None, Some(1 << 7))
    else {
        panic!()
    };
    assert_eq!(string.address_size, AddressSize::Bits32);
    assert_eq!(string.segment, SegmentRegister::Es);
}

/// `reference-gaps.md` item 7: EPT-violation bits 3–16 are decoded, and the exit offers the
/// guest-linear and guest-physical addresses; EPT misconfigurations are decoded too.
#[test]
fn reference_gap_7_ept_violation_beyond_bit_2() {
    let Ok(ExitDetail::EptViolation(q)) = ExitDetail::decode(ExitReason::EptViolation, 0x1_F1BA, None, None)
    else {
        panic!()
    };
    assert!(q.write && q.readable && q.writable && q.executable);
    assert!(q.linear_address_valid && q.translation);
    assert!(q.nmi_unblocking && q.shadow_stack && q.supervisor_shadow_stack);
    assert!(q.guest_paging_verification && q.asynchronous);
    assert_eq!(
        ExitDetail::decode(ExitReason::EptMisconfiguration, 0, None, None),
        Ok(ExitDetail::EptMisconfiguration)
    );
}

/// `reference-gaps.md` item 8: LMSW keeps all 16 source bits (the reference stores a u8).
#[test]
fn reference_gap_8_lmsw_source_is_16_bits() {
    let Ok(ExitDetail::CrAccess(q)) = ExitDetail::decode(ExitReason::CrAccess, 0xABCD_0030, None, None)
    else {
        panic!()
    };
    assert_eq!(q.lmsw_source_data(), Some(0xABCD));
    assert_eq!(q.lmsw_operand(), Some(LmswOperand::Register));
}

/// `reference-gaps.md` item 10: decoders the reference lacks, end to end.
#[test]
fn reference_gap_10_decoders_the_reference_lacks() {
    let detail = |reason, q, info| ExitDetail::decode(reason, q, None, info).unwrap();
    assert_eq!(
        detail(ExitReason::MovDr, 0x317, None),
        ExitDetail::MovDr(MovDrQualification {
            dr: 7,
            direction: MovDrDirection::FromDr,
            gpr: Gpr::Rbx
        })
    );
    assert_eq!(
        detail(ExitReason::TaskSwitch, 0x8000_0040, None),
        ExitDetail::TaskSwitch(TaskSwitchQualification {
            selector: 0x40,
            source: TaskSwitchSource::Jmp
        })
    );
    assert_eq!(
        detail(ExitReason::Invlpg, 0xFFFF_FFFF_8000_0000, None),
        ExitDetail::Invlpg {
            linear_address: 0xFFFF_FFFF_8000_0000
        }
    );
    assert_eq!(
        detail(ExitReason::StartupIpi, 0x10, None),
        ExitDetail::Sipi(SipiQualification { vector: 0x10 })
    );
    assert_eq!(
        detail(ExitReason::VirtualizedEoi, 0xEF, None),
        ExitDetail::VirtualizedEoi(VirtualizedEoiQualification { vector: 0xEF })
    );
    assert_eq!(
        detail(ExitReason::ApicWrite, 0x380, None),
        ExitDetail::ApicWrite(ApicWriteQualification { offset: 0x380 })
    );
    let ExitDetail::ApicAccess(apic) = detail(ExitReason::ApicAccess, 0x3080, None) else {
        panic!()
    };
    assert_eq!(apic.access, ApicAccessType::LinearEventDelivery);
    assert_eq!(apic.offset, Some(0x80));
    // invpcid rax, [rdi] in 64-bit mode, DS; the type is in RAX.
    let ExitDetail::Invalidation {
        instruction,
        info: Some(info),
        ..
    } = detail(ExitReason::Invpcid, 0, Some(2 << 7 | 3 << 15 | 1 << 22 | 7 << 23))
    else {
        panic!()
    };
    assert_eq!(instruction.name(), "invpcid");
    assert_eq!(info.register, Gpr::Rax);
    assert_eq!(info.operand.base, Some(Gpr::Rdi));
    // lidt [rbx + 0x10], 32-bit operand size.
    let ExitDetail::DescriptorTable {
        displacement,
        info: Some(info),
    } = detail(
        ExitReason::GdtrIdtrAccess,
        0x10,
        Some(3 << 28 | 1 << 11 | 2 << 7 | 3 << 15 | 1 << 22 | 3 << 23),
    )
    else {
        panic!()
    };
    assert_eq!(info.instruction, DescriptorTableInstruction::Lidt);
    assert_eq!(info.operand.effective_address(displacement, |_| 0x8000), 0x8010);
    // #DB with B1 and BS.
    let db = InterruptionInfo::new(1, InterruptionType::HardwareException, false);
    let Ok(ExitDetail::Exception {
        qualification: ExceptionQualification::Debug(q),
        ..
    }) = ExitDetail::decode(ExitReason::ExceptionOrNmi, 0x4002, Some(db), None)
    else {
        panic!()
    };
    assert!(q.breakpoint(1) && q.single_step && !q.breakpoint(0));
}

#[test]
fn every_reason_decodes_every_few_qualifications_without_panic() {
    let info = InterruptionInfo::from_raw(0x8000_0B0E);
    for n in 0..=u16::MAX {
        let reason = ExitReason::from_number(n);
        assert_eq!(reason.number(), n);
        for q in [0, 1, 0x03F8_0002, u64::MAX] {
            if let Ok(detail) = ExitDetail::decode(reason, q, Some(info), Some(u32::MAX)) {
                assert!(!detail.kind().is_empty());
            }
        }
    }
}

/// Asserts that re-encoding a decoded value sets no bit the input did not, and decodes back
/// to the same value.
macro_rules! assert_round_trip {
    ($ty:ident, $raw:expr, checked) => {
        if let Ok(decoded) = $ty::from_qualification($raw) {
            let encoded = decoded.to_qualification();
            prop_assert_eq!(encoded & !$raw, 0);
            prop_assert_eq!($ty::from_qualification(encoded), Ok(decoded));
        }
    };
    ($ty:ident, $raw:expr) => {{
        let decoded = $ty::from_qualification($raw);
        let encoded = decoded.to_qualification();
        prop_assert_eq!(encoded & !$raw, 0);
        prop_assert_eq!($ty::from_qualification(encoded), decoded);
    }};
}

macro_rules! assert_info_round_trip {
    ($ty:ident, $raw:expr) => {
        if let Ok(decoded) = $ty::from_instruction_info($raw) {
            let encoded = decoded.to_instruction_info();
            prop_assert_eq!(encoded & !$raw, 0);
            prop_assert_eq!($ty::from_instruction_info(encoded), Ok(decoded));
        }
    };
}

/// A VMCS whose every field reads as a value derived from a seed.
struct NoiseVmcs(u64);

impl VmcsAccess for NoiseVmcs {
    fn read(&mut self, encoding: u32) -> Result<u64, VmcsError> {
        // splitmix64 of seed and encoding: a different arbitrary value per field.
        let mut z = self.0 ^ (encoding as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let value = z ^ (z >> 31);
        Ok(match encoding {
            // Make every reason number likely, not just huge ones.
            0x4402 => value & 0xC000_007F,
            0x4000..=0x4FFF => value & 0xFFFF_FFFF,
            _ => value,
        })
    }

    fn write(&mut self, _encoding: u32, _value: u64) -> Result<(), VmcsError> {
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn decode_never_panics(
        reason in any::<u16>(),
        small_reason in 0u16..90,
        qualification in any::<u64>(),
        interruption in proptest::option::of(any::<u32>()),
        instruction in proptest::option::of(any::<u32>()),
    ) {
        for reason in [reason, small_reason] {
            let reason = ExitReason::from_number(reason);
            let interruption = interruption.map(InterruptionInfo::from_raw);
            if let Ok(detail) = ExitDetail::decode(reason, qualification, interruption, instruction) {
                prop_assert!(!detail.kind().is_empty());
            }
            let word = ExitReasonWord::from_raw(qualification as u32);
            prop_assert_eq!(word.reason().number(), word.basic_number());
        }
    }

    #[test]
    fn qualification_decoders_round_trip(raw in any::<u64>(), low in 0u64..0x2_0000) {
        for raw in [raw, low, raw & 0xFFFF_FFFF] {
            assert_round_trip!(DebugQualification, raw);
            assert_round_trip!(TaskSwitchQualification, raw);
            assert_round_trip!(CrAccessQualification, raw, checked);
            assert_round_trip!(MovDrQualification, raw);
            assert_round_trip!(IoQualification, raw, checked);
            assert_round_trip!(ApicAccessQualification, raw, checked);
            assert_round_trip!(EptViolationQualification, raw);
            assert_round_trip!(SipiQualification, raw);
            assert_round_trip!(VirtualizedEoiQualification, raw);
            assert_round_trip!(ApicWriteQualification, raw);
            assert_round_trip!(EntryFailureQualification, raw, checked);
            assert_round_trip!(SppQualification, raw);
            assert_round_trip!(InstructionTimeoutQualification, raw);
            if let Ok(io) = IoQualification::from_qualification(raw) {
                prop_assert_eq!(io.to_qualification(), raw & 0xFFFF_007F);
            }
            prop_assert_eq!(
                EptViolationQualification::from_qualification(raw).to_qualification(),
                raw & EptViolationQualification::DEFINED
            );
        }
    }

    #[test]
    fn instruction_info_decoders_round_trip(raw in any::<u32>()) {
        assert_info_round_trip!(InvalidationInfo, raw);
        assert_info_round_trip!(MemoryInstructionInfo, raw);
        assert_info_round_trip!(VmreadVmwriteInfo, raw);
        assert_info_round_trip!(DescriptorTableInfo, raw);
        assert_info_round_trip!(LdtrTrInfo, raw);
        assert_info_round_trip!(RdrandRdseedInfo, raw);
        for direction in [IoDirection::In, IoDirection::Out] {
            if let Ok(decoded) = InsOutsInfo::from_instruction_info(raw, direction) {
                prop_assert_eq!(InsOutsInfo::from_instruction_info(decoded.to_instruction_info(), direction), Ok(decoded));
            }
        }
    }

    #[test]
    fn effective_address_stays_within_the_address_size(raw in any::<u32>(), disp in any::<u64>(), reg in any::<u64>()) {
        if let Ok(info) = MemoryInstructionInfo::from_instruction_info(raw) {
            let address = info.operand.effective_address(disp, |_| reg);
            prop_assert_eq!(address & !info.operand.address_size.mask(), 0);
        }
    }

    #[test]
    fn reading_arbitrary_vmcs_contents_never_panics(seed in any::<u64>()) {
        let info = VmxExitInfo::read(&mut NoiseVmcs(seed)).unwrap();
        let _ = info.detail();
        let _ = info.next_rip();
        if info.reason.entry_failure() {
            prop_assert_eq!(info.instruction_length, None);
            prop_assert!(!info.idt_vectoring_info.valid());
        }
        if !info.basic_reason().has_qualification() {
            prop_assert_eq!(info.qualification, 0);
        }
    }
}
