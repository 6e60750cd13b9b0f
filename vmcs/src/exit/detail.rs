//! One decoded exit: the right decoder chosen by the exit reason.

use super::QualificationError;
use super::instruction_info::{
    DescriptorTableInfo, InsOutsInfo, InvalidationInfo, LdtrTrInfo, MemoryInstructionInfo, RdrandRdseedInfo,
    VmreadVmwriteInfo,
};
use super::qualification::{
    ApicAccessQualification, ApicWriteQualification, CrAccessQualification, DebugQualification,
    EntryFailureQualification, EptViolationQualification, Gpr, InstructionTimeoutQualification,
    IoQualification, MovDrQualification, SipiQualification, SppQualification, TaskSwitchQualification,
    VirtualizedEoiQualification,
};
use super::reason::ExitReason;
use crate::event::{InterruptionInfo, InterruptionType};

/// What the exit qualification says about an exception exit (SDM Vol. 3C, Section 28.2.1):
/// only #DB and #PF define it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ExceptionQualification {
    /// Not #DB or #PF (or an NMI): the qualification is not defined.
    None,
    /// #DB (vector 1): which debug conditions were met (Table 28-1).
    Debug(DebugQualification),
    /// #PF (vector 14): the linear address that faulted. CR2 is not written by a #PF that
    /// exits; the VMM must load it if it reflects the fault.
    PageFault {
        /// The faulting linear address.
        linear_address: u64,
    },
}

/// Which TLB-invalidation instruction exited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[allow(missing_docs)] // the names are the instructions
pub enum InvalidationInstruction {
    Invept,
    Invpcid,
    Invvpid,
}

impl InvalidationInstruction {
    /// Lower-case mnemonic.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Invept => "invept",
            Self::Invpcid => "invpcid",
            Self::Invvpid => "invvpid",
        }
    }
}

/// An exit decoded according to its reason.
///
/// Built by [`ExitDetail::decode`] from the basic reason, the exit qualification and, where
/// the reason uses them, the VM-exit interruption information and instruction information.
/// Forms that need an instruction-information field hold `None` when it was not supplied.
/// The guest-linear and guest-physical addresses are not here: see
/// [`crate::exit::VmxExitInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ExitDetail {
    /// Reason 0: an exception or NMI (exit interruption information; SDM Vol. 3C,
    /// Section 28.2.2, Table 25-19).
    Exception {
        /// Vector, type, error-code valid, NMI unblocking, valid.
        info: InterruptionInfo,
        /// The exit qualification, for #DB and #PF.
        qualification: ExceptionQualification,
    },
    /// Reason 1: an external interrupt.
    ExternalInterrupt {
        /// The vector, when "acknowledge interrupt on exit" is 1 (the exit interruption
        /// information is then valid); otherwise the interrupt is still pending.
        vector: Option<u8>,
    },
    /// Reason 4: a SIPI while in wait-for-SIPI.
    Sipi(SipiQualification),
    /// Reason 5: an SMM VM exit for an SMI right after an I/O instruction, described by the
    /// qualification (SDM Vol. 3C, Section 33.15.2.3).
    IoSmi(IoQualification),
    /// Reason 9: task switch (Table 28-2).
    TaskSwitch(TaskSwitchQualification),
    /// Reason 14: INVLPG.
    Invlpg {
        /// The linear-address operand (bits 63:32 clear outside 64-bit mode).
        linear_address: u64,
    },
    /// Reason 28: MOV CR, CLTS, LMSW (Table 28-3).
    CrAccess(CrAccessQualification),
    /// Reason 29: MOV DR (Table 28-4).
    MovDr(MovDrQualification),
    /// Reason 30: IN, INS, OUT, OUTS (Table 28-5).
    Io {
        /// The exit qualification.
        qualification: IoQualification,
        /// For INS/OUTS, the instruction information (Table 28-8) when supplied.
        string: Option<InsOutsInfo>,
    },
    /// Reason 33: VM-entry failure due to invalid guest state (Section 27.8).
    EntryFailureGuestState(EntryFailureQualification),
    /// Reason 34: VM-entry failure due to MSR loading (Section 27.8).
    EntryFailureMsrLoading {
        /// Which entry of the VM-entry MSR-load area failed, counting from 1.
        entry: u64,
    },
    /// Reason 36: MWAIT.
    Mwait {
        /// Bit 0: address-range monitoring hardware was armed.
        monitor_armed: bool,
    },
    /// Reason 44: APIC access (Table 28-6).
    ApicAccess(ApicAccessQualification),
    /// Reason 45: EOI virtualization.
    VirtualizedEoi(VirtualizedEoiQualification),
    /// Reason 46: LGDT, LIDT, SGDT, SIDT.
    DescriptorTable {
        /// The displacement of the memory operand (exit qualification).
        displacement: u64,
        /// The instruction information (Table 28-10), when supplied.
        info: Option<DescriptorTableInfo>,
    },
    /// Reason 47: LLDT, LTR, SLDT, STR.
    LdtrTr {
        /// The displacement of a memory operand (exit qualification; 0 for a register).
        displacement: u64,
        /// The instruction information (Table 28-11), when supplied.
        info: Option<LdtrTrInfo>,
    },
    /// Reason 48: EPT violation (Table 28-7).
    EptViolation(EptViolationQualification),
    /// Reason 49: EPT misconfiguration (only the guest-physical address is reported).
    EptMisconfiguration,
    /// Reasons 50, 53, 58: INVEPT, INVVPID, INVPCID.
    Invalidation {
        /// Which one.
        instruction: InvalidationInstruction,
        /// The displacement of the descriptor operand (exit qualification).
        displacement: u64,
        /// The instruction information (Table 28-9), when supplied.
        info: Option<InvalidationInfo>,
    },
    /// Reason 56: APIC write.
    ApicWrite(ApicWriteQualification),
    /// Reasons 19, 21, 22, 27, 63, 64: VMCLEAR, VMPTRLD, VMPTRST, VMXON, XSAVES, XRSTORS
    /// (the reason says which).
    MemoryInstruction {
        /// The displacement of the memory operand (exit qualification).
        displacement: u64,
        /// The instruction information (Table 28-13), when supplied.
        info: Option<MemoryInstructionInfo>,
    },
    /// Reasons 23, 25: VMREAD, VMWRITE.
    VmreadVmwrite {
        /// The displacement of a memory operand (exit qualification; 0 for a register).
        displacement: u64,
        /// The instruction information (Table 28-14), when supplied.
        info: Option<VmreadVmwriteInfo>,
    },
    /// Reasons 57, 61: RDRAND, RDSEED.
    RandomNumber {
        /// The instruction information (Table 28-12), when supplied.
        info: Option<RdrandRdseedInfo>,
    },
    /// Reason 62: page-modification log full.
    PmlFull {
        /// Bit 12: NMI unblocking due to IRET.
        nmi_unblocking: bool,
    },
    /// Reason 66: SPP-related event.
    Spp(SppQualification),
    /// Reason 75: instruction timeout.
    InstructionTimeout(InstructionTimeoutQualification),
    /// Reasons 80, 81, 84, 85: URDMSR, UWRMSR, RDMSR and WRMSRNS with an immediate operand.
    MsrImmediate {
        /// The MSR index (exit qualification).
        msr: u32,
        /// The data register (instruction information bits 6:3), when supplied.
        register: Option<Gpr>,
    },
    /// Any other reason: nothing beyond the raw qualification to decode.
    Other {
        /// The reason.
        reason: ExitReason,
        /// The raw exit qualification (0 or undefined for most such reasons).
        qualification: u64,
    },
}

fn decode_optional<T>(
    info: Option<u32>,
    decode: fn(u32) -> Result<T, QualificationError>,
) -> Result<Option<T>, QualificationError> {
    info.map(decode).transpose()
}

impl ExitDetail {
    /// Decodes an exit.
    ///
    /// `interruption_info` is the VM-exit interruption-information field: required for
    /// reason 0, used for reason 1. `instruction_info` is the VM-exit instruction-information
    /// field, used by the forms that define it; pass `None` when it was not read.
    ///
    /// # Errors
    /// A [`QualificationError`] when the qualification or instruction information holds an
    /// encoding the SDM does not use, or [`QualificationError::MissingInterruptionInfo`] for
    /// reason 0 without interruption information.
    pub fn decode(
        reason: ExitReason,
        qualification: u64,
        interruption_info: Option<InterruptionInfo>,
        instruction_info: Option<u32>,
    ) -> Result<Self, QualificationError> {
        use ExitReason as R;
        Ok(match reason {
            R::ExceptionOrNmi => {
                let info = interruption_info.ok_or(QualificationError::MissingInterruptionInfo)?;
                let hardware = matches!(info.kind(), InterruptionType::HardwareException);
                let icebp = matches!(info.kind(), InterruptionType::PrivilegedSoftwareException);
                let qualification = match info.vector() {
                    1 if hardware || icebp => {
                        ExceptionQualification::Debug(DebugQualification::from_qualification(qualification))
                    }
                    14 if hardware => ExceptionQualification::PageFault {
                        linear_address: qualification,
                    },
                    _ => ExceptionQualification::None,
                };
                Self::Exception { info, qualification }
            }
            R::ExternalInterrupt => Self::ExternalInterrupt {
                vector: interruption_info
                    .filter(|i| i.valid())
                    .map(InterruptionInfo::vector),
            },
            R::StartupIpi => Self::Sipi(SipiQualification::from_qualification(qualification)),
            R::IoSmi => Self::IoSmi(IoQualification::from_qualification(qualification)?),
            R::TaskSwitch => Self::TaskSwitch(TaskSwitchQualification::from_qualification(qualification)),
            R::Invlpg => Self::Invlpg {
                linear_address: qualification,
            },
            R::CrAccess => Self::CrAccess(CrAccessQualification::from_qualification(qualification)?),
            R::MovDr => Self::MovDr(MovDrQualification::from_qualification(qualification)),
            R::IoInstruction => {
                let io = IoQualification::from_qualification(qualification)?;
                let string = match instruction_info {
                    Some(info) if io.string => Some(InsOutsInfo::from_instruction_info(info, io.direction)?),
                    _ => None,
                };
                Self::Io {
                    qualification: io,
                    string,
                }
            }
            R::EntryFailureGuestState => {
                Self::EntryFailureGuestState(EntryFailureQualification::from_qualification(qualification)?)
            }
            R::EntryFailureMsrLoading => Self::EntryFailureMsrLoading { entry: qualification },
            R::Mwait => Self::Mwait {
                monitor_armed: qualification & 1 != 0,
            },
            R::ApicAccess => Self::ApicAccess(ApicAccessQualification::from_qualification(qualification)?),
            R::VirtualizedEoi => {
                Self::VirtualizedEoi(VirtualizedEoiQualification::from_qualification(qualification))
            }
            R::GdtrIdtrAccess => Self::DescriptorTable {
                displacement: qualification,
                info: decode_optional(instruction_info, DescriptorTableInfo::from_instruction_info)?,
            },
            R::LdtrTrAccess => Self::LdtrTr {
                displacement: qualification,
                info: decode_optional(instruction_info, LdtrTrInfo::from_instruction_info)?,
            },
            R::EptViolation => {
                Self::EptViolation(EptViolationQualification::from_qualification(qualification))
            }
            R::EptMisconfiguration => Self::EptMisconfiguration,
            R::Invept | R::Invvpid | R::Invpcid => Self::Invalidation {
                instruction: match reason {
                    R::Invept => InvalidationInstruction::Invept,
                    R::Invvpid => InvalidationInstruction::Invvpid,
                    _ => InvalidationInstruction::Invpcid,
                },
                displacement: qualification,
                info: decode_optional(instruction_info, InvalidationInfo::from_instruction_info)?,
            },
            R::ApicWrite => Self::ApicWrite(ApicWriteQualification::from_qualification(qualification)),
            R::Vmclear | R::Vmptrld | R::Vmptrst | R::Vmxon | R::Xsaves | R::Xrstors => {
                Self::MemoryInstruction {
                    displacement: qualification,
                    info: decode_optional(instruction_info, MemoryInstructionInfo::from_instruction_info)?,
                }
            }
            R::Vmread | R::Vmwrite => Self::VmreadVmwrite {
                displacement: qualification,
                info: decode_optional(instruction_info, VmreadVmwriteInfo::from_instruction_info)?,
            },
            R::Rdrand | R::Rdseed => Self::RandomNumber {
                info: decode_optional(instruction_info, RdrandRdseedInfo::from_instruction_info)?,
            },
            R::PmlFull => Self::PmlFull {
                nmi_unblocking: qualification & (1 << 12) != 0,
            },
            R::SppEvent => Self::Spp(SppQualification::from_qualification(qualification)),
            R::InstructionTimeout => {
                Self::InstructionTimeout(InstructionTimeoutQualification::from_qualification(qualification))
            }
            R::Urdmsr | R::Uwrmsr | R::RdmsrImmediate | R::WrmsrnsImmediate => Self::MsrImmediate {
                msr: qualification as u32,
                register: instruction_info.map(|info| Gpr::from_number((info >> 3) as u8)),
            },
            _ => Self::Other {
                reason,
                qualification,
            },
        })
    }

    /// Kebab-case name of the variant, for JSON `"kind"`: `"io"`, `"cr-access"`,
    /// `"ept-violation"`, `"exception"`, ..., `"other"`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Exception { .. } => "exception",
            Self::ExternalInterrupt { .. } => "external-interrupt",
            Self::Sipi(_) => "sipi",
            Self::IoSmi(_) => "io-smi",
            Self::TaskSwitch(_) => "task-switch",
            Self::Invlpg { .. } => "invlpg",
            Self::CrAccess(_) => "cr-access",
            Self::MovDr(_) => "mov-dr",
            Self::Io { .. } => "io",
            Self::EntryFailureGuestState(_) => "entry-failure-guest-state",
            Self::EntryFailureMsrLoading { .. } => "entry-failure-msr-loading",
            Self::Mwait { .. } => "mwait",
            Self::ApicAccess(_) => "apic-access",
            Self::VirtualizedEoi(_) => "virtualized-eoi",
            Self::DescriptorTable { .. } => "descriptor-table",
            Self::LdtrTr { .. } => "ldtr-tr",
            Self::EptViolation(_) => "ept-violation",
            Self::EptMisconfiguration => "ept-misconfiguration",
            Self::Invalidation { .. } => "invalidation",
            Self::ApicWrite(_) => "apic-write",
            Self::MemoryInstruction { .. } => "memory-instruction",
            Self::VmreadVmwrite { .. } => "vmread-vmwrite",
            Self::RandomNumber { .. } => "random-number",
            Self::PmlFull { .. } => "pml-full",
            Self::Spp(_) => "spp",
            Self::InstructionTimeout(_) => "instruction-timeout",
            Self::MsrImmediate { .. } => "msr-immediate",
            Self::Other { .. } => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{
        ControlRegister, CrAccessType, InsOutsInfo, IoDirection, IoSize, LmswOperand, SegmentRegister,
    };

    fn decode(reason: u16, qualification: u64) -> Result<ExitDetail, QualificationError> {
        ExitDetail::decode(ExitReason::from_number(reason), qualification, None, None)
    }

    /// Bochs, `out dx, al` with DX = 0x3F8 (bochs-vmx.md, sel4-5.0-vtx-guest.md).
    #[test]
    fn bochs_out_dx_al() {
        let detail = decode(30, 0x03F8_0000).unwrap();
        assert_eq!(detail.kind(), "io");
        let ExitDetail::Io {
            qualification,
            string,
        } = detail
        else {
            panic!("{detail:?}")
        };
        assert_eq!(qualification.port, 0x3F8);
        assert_eq!(qualification.size, IoSize::Byte);
        assert_eq!(qualification.direction, IoDirection::Out);
        assert!(!qualification.string && !qualification.rep && !qualification.immediate);
        assert_eq!(string, None);
    }

    /// `in al, dx` from the same port: only bit 3 differs.
    #[test]
    fn bochs_in_al_dx() {
        let Ok(ExitDetail::Io { qualification, .. }) = decode(30, 0x03F8_0008) else {
            panic!()
        };
        assert_eq!(qualification.direction, IoDirection::In);
        assert_eq!(qualification.direction.name(), "in");
        assert_eq!((qualification.port, qualification.size.bytes()), (1016, 1));
    }

    /// Bochs, a read beyond EPT: qualification 0x181.
    #[test]
    fn bochs_ept_violation_read() {
        let Ok(ExitDetail::EptViolation(q)) = decode(48, 0x181) else {
            panic!()
        };
        assert!(q.read && !q.write && !q.fetch);
        assert!(!q.readable && !q.writable && !q.executable);
        assert!(q.linear_address_valid && q.translation);
        assert!(!q.nmi_unblocking);
    }

    /// Bochs, `ud2` with exception bitmap bit 6: interruption info 0x80000306.
    #[test]
    fn bochs_ud2() {
        let info = InterruptionInfo::from_raw(0x8000_0306);
        let detail = ExitDetail::decode(ExitReason::ExceptionOrNmi, 0, Some(info), None).unwrap();
        assert_eq!(
            detail,
            ExitDetail::Exception {
                info,
                qualification: ExceptionQualification::None
            }
        );
        assert_eq!(detail.kind(), "exception");
        assert_eq!(decode(0, 0), Err(QualificationError::MissingInterruptionInfo));
    }

    #[test]
    fn exception_qualifications() {
        let pf = InterruptionInfo::from_raw(0x8000_0B0E);
        assert_eq!(
            ExitDetail::decode(ExitReason::ExceptionOrNmi, 0xDEAD_B000, Some(pf), None),
            Ok(ExitDetail::Exception {
                info: pf,
                qualification: ExceptionQualification::PageFault {
                    linear_address: 0xDEAD_B000
                }
            })
        );
        let db = InterruptionInfo::from_raw(0x8000_0301);
        let Ok(ExitDetail::Exception {
            qualification: ExceptionQualification::Debug(q),
            ..
        }) = ExitDetail::decode(ExitReason::ExceptionOrNmi, 0x4000, Some(db), None)
        else {
            panic!()
        };
        assert!(q.single_step);
        // An NMI (type 2, vector 2) has no qualification.
        let nmi = InterruptionInfo::from_raw(0x8000_0202);
        assert!(matches!(
            ExitDetail::decode(ExitReason::ExceptionOrNmi, 0x4000, Some(nmi), None),
            Ok(ExitDetail::Exception {
                qualification: ExceptionQualification::None,
                ..
            })
        ));
    }

    #[test]
    fn external_interrupt_vector_only_when_acknowledged() {
        let acked = InterruptionInfo::from_raw(0x8000_0030);
        assert_eq!(
            ExitDetail::decode(ExitReason::ExternalInterrupt, 0, Some(acked), None),
            Ok(ExitDetail::ExternalInterrupt { vector: Some(0x30) })
        );
        assert_eq!(
            ExitDetail::decode(
                ExitReason::ExternalInterrupt,
                0,
                Some(InterruptionInfo::from_raw(0x30)),
                None
            ),
            Ok(ExitDetail::ExternalInterrupt { vector: None })
        );
    }

    #[test]
    fn io_rep_outsb_with_instruction_info() {
        // rep outsb, 64-bit addressing, DS.
        let detail = ExitDetail::decode(
            ExitReason::IoInstruction,
            0x03F8_0030,
            None,
            Some(2 << 7 | 3 << 15),
        )
        .unwrap();
        let ExitDetail::Io {
            qualification,
            string,
        } = detail
        else {
            panic!()
        };
        assert!(qualification.string && qualification.rep);
        assert_eq!(
            string,
            Some(InsOutsInfo {
                address_size: crate::exit::AddressSize::Bits64,
                segment: SegmentRegister::Ds
            })
        );
        // Instruction information is ignored for IN/OUT.
        assert!(matches!(
            ExitDetail::decode(ExitReason::IoInstruction, 0x03F8_0000, None, Some(u32::MAX)),
            Ok(ExitDetail::Io { string: None, .. })
        ));
    }

    #[test]
    fn cr_access_and_lmsw() {
        let Ok(ExitDetail::CrAccess(q)) = decode(28, 0x800) else {
            panic!()
        };
        assert_eq!(q.access_type(), CrAccessType::MovToCr);
        assert_eq!(q.cr(), ControlRegister::Cr0);
        assert_eq!(q.gpr(), Some(Gpr::R8));
        let Ok(ExitDetail::CrAccess(q)) = decode(28, 0xFFFF_0070) else {
            panic!()
        };
        assert_eq!(q.lmsw_operand(), Some(LmswOperand::Memory));
        assert_eq!(q.lmsw_source_data(), Some(0xFFFF));
        assert_eq!(
            decode(28, 0x5),
            Err(QualificationError::InvalidControlRegister(5))
        );
    }

    #[test]
    fn reserved_encodings_are_errors_not_panics() {
        assert_eq!(decode(30, 0x2), Err(QualificationError::ReservedIoSize(2)));
        assert_eq!(decode(5, 0x7), Err(QualificationError::ReservedIoSize(7)));
        assert_eq!(
            decode(44, 0x5000),
            Err(QualificationError::ReservedApicAccessType(5))
        );
        assert_eq!(decode(33, 9), Err(QualificationError::ReservedEntryFailure(9)));
        assert_eq!(
            ExitDetail::decode(ExitReason::Invept, 0, None, Some(7 << 7)),
            Err(QualificationError::ReservedAddressSize(7))
        );
    }

    /// `reference-gaps.md` item 10: decoders for MOV DR, task switch, INVLPG/INVPCID,
    /// VMX-instruction info, #DB, SIPI, APIC access/write, virtualized EOI.
    #[test]
    fn every_decoder_is_reachable_from_its_reason() {
        let cases: [(u16, u64, Option<u32>, &str); 22] = [
            (4, 0x9F, None, "sipi"),
            (5, 0x03F8_0000, None, "io-smi"),
            (9, 0x4000_0030, None, "task-switch"),
            (14, 0xFFFF_8000_0000_1000, None, "invlpg"),
            (29, 0x17, None, "mov-dr"),
            (33, 2, None, "entry-failure-guest-state"),
            (34, 3, None, "entry-failure-msr-loading"),
            (36, 1, None, "mwait"),
            (44, 0x1300, None, "apic-access"),
            (45, 0x31, None, "virtualized-eoi"),
            (46, 8, Some(3 << 28 | 1 << 7 | 3 << 15), "descriptor-table"),
            (47, 0, Some(1 << 28 | 1 << 10), "ldtr-tr"),
            (49, 0, None, "ept-misconfiguration"),
            (58, 0, Some(2 << 7 | 3 << 15 | 1 << 28), "invalidation"),
            (56, 0x300, None, "apic-write"),
            (21, 0x10, Some(2 << 7 | 3 << 15), "memory-instruction"),
            (23, 0, Some(1 << 10), "vmread-vmwrite"),
            (57, 0, Some(2 << 11), "random-number"),
            (62, 1 << 12, None, "pml-full"),
            (66, 1 << 11, None, "spp"),
            (75, 1, None, "instruction-timeout"),
            (84, 0x10, Some(1 << 3), "msr-immediate"),
        ];
        for (reason, qualification, info, kind) in cases {
            let detail = ExitDetail::decode(ExitReason::from_number(reason), qualification, None, info)
                .unwrap_or_else(|e| panic!("reason {reason}: {e}"));
            assert_eq!(detail.kind(), kind, "reason {reason}");
        }
        assert_eq!(
            decode(14, 0xFFFF_8000_0000_1000),
            Ok(ExitDetail::Invlpg {
                linear_address: 0xFFFF_8000_0000_1000
            })
        );
        assert_eq!(
            ExitDetail::decode(ExitReason::Invpcid, 0x40, None, None),
            Ok(ExitDetail::Invalidation {
                instruction: InvalidationInstruction::Invpcid,
                displacement: 0x40,
                info: None
            })
        );
        assert_eq!(
            decode(10, 0),
            Ok(ExitDetail::Other {
                reason: ExitReason::Cpuid,
                qualification: 0
            })
        );
        assert_eq!(decode(0x7FFF, 5).map(|d| d.kind()), Ok("other"));
    }
}
