//! Everything an exit handler needs, read once from the VMCS.

use super::QualificationError;
use super::detail::ExitDetail;
use super::qualification::TaskSwitchSource;
use super::reason::{ExitReason, ExitReasonWord};
use crate::access::{VmcsAccess, VmcsError};
use crate::catalogue::{VmcsGuestNW, VmcsReadOnly32, VmcsReadOnly64, VmcsReadOnlyNW};
use crate::event::{InterruptionInfo, InterruptionType};

/// The I/O RCX, RSI, RDI and RIP fields: the state of the I/O instruction an SMI arrived
/// right after, saved only by SMM VM exits for I/O SMIs (SDM Vol. 3C, Section 25.9.4;
/// Section 33.15.2.3). Ordinary I/O exits leave them alone: their registers are in the
/// guest state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IoSmiRegisters {
    /// RCX before the I/O instruction.
    pub rcx: u64,
    /// RSI before the I/O instruction.
    pub rsi: u64,
    /// RDI before the I/O instruction.
    pub rdi: u64,
    /// RIP of the I/O instruction.
    pub rip: u64,
}

/// The VM-exit information fields of one exit, read by [`VmxExitInfo::read`].
///
/// Fields the exit reason leaves undefined are not read (each VMREAD is a kernel call on
/// seL4, and an undefined field is worse than none): they hold `None`, or for the two
/// interruption-information words the invalid value 0 (bit 31 clear), which is what the
/// SDM says they contain when they do not apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct VmxExitInfo {
    /// Exit reason (always read).
    pub reason: ExitReasonWord,
    /// Exit qualification, read when [`ExitReason::has_qualification`] (for exceptions, only
    /// for #DB and #PF); 0 otherwise.
    pub qualification: u64,
    /// VM-exit interruption information, read for exceptions/NMIs (reason 0) and external
    /// interrupts (reason 1), the only exits that set it (SDM Vol. 3C, Section 28.2.2).
    pub interruption_info: InterruptionInfo,
    /// VM-exit interruption error code, read when `interruption_info` is valid and says an
    /// error code was pushed.
    pub interruption_error_code: Option<u32>,
    /// IDT-vectoring information: the event whose delivery this exit interrupted (any true
    /// VM exit may set it; SDM Vol. 3C, Section 28.2.4). Not read for VM-entry failures.
    pub idt_vectoring_info: InterruptionInfo,
    /// IDT-vectoring error code, read when `idt_vectoring_info` is valid and has one.
    pub idt_vectoring_error_code: Option<u32>,
    /// VM-exit instruction length, read when [`VmxExitInfo::instruction_length_defined`]
    /// says the exit recorded one.
    pub instruction_length: Option<u32>,
    /// VM-exit instruction information, read when [`ExitReason::has_instruction_info`] (for
    /// I/O exits, only for INS/OUTS).
    pub instruction_info: Option<u32>,
    /// Guest-linear address, read for the exits that set it (SDM Vol. 3C, Section 28.2.1):
    /// EPT violations with qualification bit 7, LMSW with a memory operand, INS/OUTS, and
    /// SPP-related events.
    pub guest_linear_address: Option<u64>,
    /// Guest-physical address, read for EPT violations, EPT misconfigurations and
    /// SPP-related events, the only exits that set it.
    pub guest_physical_address: Option<u64>,
    /// I/O RCX/RSI/RDI/RIP, read for SMM VM exits due to I/O SMIs (reason 5) only.
    pub io_smi: Option<IoSmiRegisters>,
    /// Guest RIP (always read): the instruction that exited, or the next one for trap-like
    /// exits.
    pub guest_rip: u64,
}

impl VmxExitInfo {
    /// Reads the exit information of the current exit through `vmcs`.
    ///
    /// Reads, in order: the exit reason and guest RIP; for a true VM exit the interruption
    /// information; the qualification; then for a true VM exit the IDT-vectoring information
    /// (with error codes when flagged), the instruction length and information, and the
    /// addresses. Each is read only when the reason, and what was already read, makes it
    /// meaningful. A VM-entry failure (bit 31) updates only the exit reason and the
    /// qualification (SDM Vol. 3C, Section 27.8), so nothing else is read for it.
    ///
    /// # Errors
    /// The first error the backend reports.
    pub fn read<A: VmcsAccess + ?Sized>(vmcs: &mut A) -> Result<Self, VmcsError> {
        let reason = ExitReasonWord::from_raw(VmcsReadOnly32::ExitReason.read(vmcs)?);
        let basic = reason.reason();
        let guest_rip = VmcsGuestNW::Rip.read(vmcs)?;
        let mut info = Self {
            reason,
            qualification: 0,
            interruption_info: InterruptionInfo::default(),
            interruption_error_code: None,
            idt_vectoring_info: InterruptionInfo::default(),
            idt_vectoring_error_code: None,
            instruction_length: None,
            instruction_info: None,
            guest_linear_address: None,
            guest_physical_address: None,
            io_smi: None,
            guest_rip,
        };
        let entry_failure = reason.entry_failure();
        if !entry_failure && matches!(basic, ExitReason::ExceptionOrNmi | ExitReason::ExternalInterrupt) {
            info.interruption_info =
                InterruptionInfo::from_raw(VmcsReadOnly32::ExitInterruptionInfo.read(vmcs)?);
            if info.interruption_info.valid() && info.interruption_info.error_code_valid() {
                info.interruption_error_code = Some(VmcsReadOnly32::ExitInterruptionErrorCode.read(vmcs)?);
            }
        }
        let qualification_defined = match basic {
            // Of the exceptions, only #DB and #PF define a qualification.
            ExitReason::ExceptionOrNmi => {
                info.interruption_info.valid() && matches!(info.interruption_info.vector(), 1 | 14)
            }
            _ => basic.has_qualification(),
        };
        if qualification_defined {
            info.qualification = VmcsReadOnlyNW::ExitQualification.read(vmcs)?;
        }
        if entry_failure {
            return Ok(info);
        }
        let qualification = info.qualification;

        info.idt_vectoring_info = InterruptionInfo::from_raw(VmcsReadOnly32::IdtVectoringInfo.read(vmcs)?);
        if info.idt_vectoring_info.valid() && info.idt_vectoring_info.error_code_valid() {
            info.idt_vectoring_error_code = Some(VmcsReadOnly32::IdtVectoringErrorCode.read(vmcs)?);
        }

        if Self::instruction_length_defined(
            basic,
            qualification,
            info.interruption_info,
            info.idt_vectoring_info,
        ) {
            info.instruction_length = Some(VmcsReadOnly32::ExitInstructionLength.read(vmcs)?);
        }
        let string_io = qualification & (1 << 4) != 0;
        if basic.has_instruction_info() && (basic != ExitReason::IoInstruction || string_io) {
            info.instruction_info = Some(VmcsReadOnly32::ExitInstructionInfo.read(vmcs)?);
        }

        let linear_address_set = match basic {
            ExitReason::EptViolation => qualification & (1 << 7) != 0,
            // LMSW (access type 3) with a memory operand (bit 6).
            ExitReason::CrAccess => qualification & 0x70 == 0x70,
            ExitReason::IoInstruction => string_io,
            ExitReason::SppEvent => true,
            _ => false,
        };
        if linear_address_set {
            info.guest_linear_address = Some(VmcsReadOnlyNW::GuestLinearAddress.read(vmcs)?);
        }
        if matches!(
            basic,
            ExitReason::EptViolation | ExitReason::EptMisconfiguration | ExitReason::SppEvent
        ) {
            info.guest_physical_address = Some(VmcsReadOnly64::GuestPhysicalAddress.read(vmcs)?);
        }
        if basic == ExitReason::IoSmi {
            info.io_smi = Some(IoSmiRegisters {
                rcx: VmcsReadOnlyNW::IoRcx.read(vmcs)?,
                rsi: VmcsReadOnlyNW::IoRsi.read(vmcs)?,
                rdi: VmcsReadOnlyNW::IoRdi.read(vmcs)?,
                rip: VmcsReadOnlyNW::IoRip.read(vmcs)?,
            });
        }
        Ok(info)
    }

    /// Whether an exit records the VM-exit instruction length (SDM Vol. 3C, Section 28.2.5):
    /// - every exit of a reason caused by an instruction ([`ExitReason::has_instruction_length`]);
    /// - exceptions raised by INT3, INTO (software exceptions) and INT1 (privileged software
    ///   exception);
    /// - any exit during the delivery of a software interrupt, software exception or
    ///   privileged software exception (IDT-vectoring information valid with one of those
    ///   types): faults, APIC accesses, EPT violations, task gates met on the way;
    /// - task switches started by CALL, IRET or JMP.
    ///
    /// In every other case the field is undefined: Bochs, for one, reports a length for EPT
    /// violations anyway (notes/sel4-5.0-vtx-guest.md), which must not be trusted.
    pub fn instruction_length_defined(
        reason: ExitReason,
        qualification: u64,
        interruption_info: InterruptionInfo,
        idt_vectoring_info: InterruptionInfo,
    ) -> bool {
        let software_exception = reason == ExitReason::ExceptionOrNmi
            && interruption_info.valid()
            && matches!(
                interruption_info.kind(),
                InterruptionType::SoftwareException | InterruptionType::PrivilegedSoftwareException
            );
        let during_software_event =
            idt_vectoring_info.valid() && idt_vectoring_info.kind().needs_instruction_length();
        let task_switch_instruction = reason == ExitReason::TaskSwitch
            && TaskSwitchSource::from_bits((qualification >> 30) as u8).is_instruction();
        reason.has_instruction_length()
            || software_exception
            || during_software_event
            || task_switch_instruction
    }

    /// The basic exit reason.
    pub const fn basic_reason(&self) -> ExitReason {
        self.reason.reason()
    }

    /// Decodes the exit according to its reason (see [`ExitDetail::decode`]).
    ///
    /// # Errors
    /// A [`QualificationError`] when a field holds an encoding the SDM does not use.
    pub fn detail(&self) -> Result<ExitDetail, QualificationError> {
        ExitDetail::decode(
            self.basic_reason(),
            self.qualification,
            Some(self.interruption_info),
            self.instruction_info,
        )
    }

    /// The RIP of the instruction after the one that exited (guest RIP + instruction
    /// length), when the exit recorded a length. The caller truncates it for 16- and 32-bit
    /// code.
    pub const fn next_rip(&self) -> Option<u64> {
        match self.instruction_length {
            Some(length) => Some(self.guest_rip.wrapping_add(length as u64)),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{EptViolationQualification, IoDirection};

    /// A tiny VMCS: a fixed table of (encoding, value), recording which encodings were read.
    struct FakeVmcs {
        fields: [(u32, u64); 16],
        reads: [u32; 32],
        read_count: usize,
        fail_on: Option<u32>,
    }

    impl FakeVmcs {
        fn new(values: &[(u32, u64)]) -> Self {
            let mut fields = [(u32::MAX, 0); 16];
            for (slot, value) in fields.iter_mut().zip(values) {
                *slot = *value;
            }
            Self {
                fields,
                reads: [0; 32],
                read_count: 0,
                fail_on: None,
            }
        }

        fn was_read(&self, encoding: u32) -> bool {
            self.reads[..self.read_count].contains(&encoding)
        }
    }

    impl VmcsAccess for FakeVmcs {
        fn read(&mut self, encoding: u32) -> Result<u64, VmcsError> {
            if self.fail_on == Some(encoding) {
                return Err(VmcsError::Kernel(3));
            }
            self.reads[self.read_count] = encoding;
            self.read_count += 1;
            Ok(self
                .fields
                .iter()
                .find(|(e, _)| *e == encoding)
                .map_or(0, |(_, v)| *v))
        }

        fn write(&mut self, _encoding: u32, _value: u64) -> Result<(), VmcsError> {
            Err(VmcsError::VmFailInvalid)
        }
    }

    const REASON: u32 = 0x4402;
    const QUALIFICATION: u32 = 0x6400;
    const INTR_INFO: u32 = 0x4404;
    const INTR_ERROR: u32 = 0x4406;
    const IDT_INFO: u32 = 0x4408;
    const IDT_ERROR: u32 = 0x440A;
    const LENGTH: u32 = 0x440C;
    const INSN_INFO: u32 = 0x440E;
    const GLA: u32 = 0x640A;
    const GPA: u32 = 0x2400;
    const RIP: u32 = 0x681E;

    /// Bochs: `cpuid` exits with reason 10 and length 2.
    #[test]
    fn cpuid_reads_only_what_it_needs() {
        let mut vmcs = FakeVmcs::new(&[(REASON, 10), (RIP, 0x1000), (LENGTH, 2), (QUALIFICATION, 0xBAD)]);
        let info = VmxExitInfo::read(&mut vmcs).unwrap();
        assert_eq!(info.basic_reason(), ExitReason::Cpuid);
        assert_eq!(info.instruction_length, Some(2));
        assert_eq!(info.next_rip(), Some(0x1002));
        assert_eq!(info.qualification, 0);
        assert!(!vmcs.was_read(QUALIFICATION));
        assert!(!vmcs.was_read(INTR_INFO));
        assert!(!vmcs.was_read(GPA) && !vmcs.was_read(GLA) && !vmcs.was_read(INSN_INFO));
        assert!(vmcs.was_read(IDT_INFO));
        assert_eq!(vmcs.read_count, 4);
        assert_eq!(
            info.detail(),
            Ok(ExitDetail::Other {
                reason: ExitReason::Cpuid,
                qualification: 0
            })
        );
    }

    /// Bochs: `out dx, al` to 0x3F8, length 1.
    #[test]
    fn out_dx_al() {
        let mut vmcs = FakeVmcs::new(&[
            (REASON, 30),
            (QUALIFICATION, 0x03F8_0000),
            (LENGTH, 1),
            (RIP, 0x2000),
        ]);
        let info = VmxExitInfo::read(&mut vmcs).unwrap();
        assert_eq!(info.next_rip(), Some(0x2001));
        assert_eq!(
            info.instruction_info, None,
            "IN/OUT: instruction information is undefined"
        );
        assert_eq!(info.guest_linear_address, None);
        let Ok(ExitDetail::Io { qualification, .. }) = info.detail() else {
            panic!()
        };
        assert_eq!(
            (qualification.port, qualification.direction),
            (0x3F8, IoDirection::Out)
        );
    }

    #[test]
    fn rep_outsb_reads_instruction_info_and_linear_address() {
        let mut vmcs = FakeVmcs::new(&[
            (REASON, 30),
            (QUALIFICATION, 0x03F8_0030),
            (LENGTH, 2),
            (INSN_INFO, 2 << 7 | 3 << 15),
            (GLA, 0x5000),
        ]);
        let info = VmxExitInfo::read(&mut vmcs).unwrap();
        assert_eq!(info.instruction_info, Some(2 << 7 | 3 << 15));
        assert_eq!(info.guest_linear_address, Some(0x5000));
        assert!(matches!(
            info.detail(),
            Ok(ExitDetail::Io { string: Some(_), .. })
        ));
    }

    /// Bochs: a read at 0x3FF00000 beyond EPT: reason 48, qualification 0x181, GPA and GLA
    /// 0x3FF00000. Bochs also reports a length (7), which the SDM leaves undefined.
    #[test]
    fn ept_violation_reads_both_addresses_and_no_length() {
        let mut vmcs = FakeVmcs::new(&[
            (REASON, 48),
            (QUALIFICATION, 0x181),
            (GPA, 0x3FF0_0000),
            (GLA, 0x3FF0_0000),
            (LENGTH, 7),
        ]);
        let info = VmxExitInfo::read(&mut vmcs).unwrap();
        assert_eq!(info.guest_physical_address, Some(0x3FF0_0000));
        assert_eq!(info.guest_linear_address, Some(0x3FF0_0000));
        assert_eq!(info.instruction_length, None);
        assert!(!vmcs.was_read(LENGTH));
        assert_eq!(
            info.detail(),
            Ok(ExitDetail::EptViolation(
                EptViolationQualification::from_qualification(0x181)
            ))
        );
        // Without bit 7 the guest-linear address is undefined and not read.
        let mut vmcs = FakeVmcs::new(&[(REASON, 48), (QUALIFICATION, 0x1), (GLA, 0x1234)]);
        let info = VmxExitInfo::read(&mut vmcs).unwrap();
        assert_eq!(info.guest_linear_address, None);
        assert!(!vmcs.was_read(GLA));
    }

    /// Bochs: `ud2` with exception-bitmap bit 6: interruption info 0x80000306, no length.
    #[test]
    fn ud2_exception() {
        let mut vmcs = FakeVmcs::new(&[(REASON, 0), (INTR_INFO, 0x8000_0306), (LENGTH, 2)]);
        let info = VmxExitInfo::read(&mut vmcs).unwrap();
        assert_eq!(info.interruption_info.raw(), 0x8000_0306);
        assert_eq!(info.interruption_error_code, None);
        assert!(!vmcs.was_read(INTR_ERROR));
        assert!(!vmcs.was_read(QUALIFICATION), "#UD defines no qualification");
        assert_eq!(
            info.instruction_length, None,
            "a #UD is a fault, not a software exception"
        );
    }

    /// `reference-gaps.md` item 4 (the parts that are exit information): the error code is
    /// read only when flagged, and the length only when the exit records one.
    #[test]
    fn page_fault_with_error_code_during_int_n_delivery() {
        let mut vmcs = FakeVmcs::new(&[
            (REASON, 0),
            (QUALIFICATION, 0xDEAD_0000),
            (INTR_INFO, 0x8000_0B0E),
            (INTR_ERROR, 0x2),
            (IDT_INFO, 0x8000_0480), // INT 0x80, software interrupt
            (LENGTH, 2),
        ]);
        let info = VmxExitInfo::read(&mut vmcs).unwrap();
        assert_eq!(info.interruption_error_code, Some(2));
        assert_eq!(
            info.idt_vectoring_info.kind(),
            InterruptionType::SoftwareInterrupt
        );
        assert_eq!(info.idt_vectoring_error_code, None);
        assert_eq!(info.instruction_length, Some(2));
        assert_eq!(
            info.detail(),
            Ok(ExitDetail::Exception {
                info: InterruptionInfo::from_raw(0x8000_0B0E),
                qualification: crate::exit::ExceptionQualification::PageFault {
                    linear_address: 0xDEAD_0000
                }
            })
        );
    }

    #[test]
    fn int3_records_its_length() {
        let mut vmcs = FakeVmcs::new(&[(REASON, 0), (INTR_INFO, 0x8000_0603), (LENGTH, 1)]);
        assert_eq!(VmxExitInfo::read(&mut vmcs).unwrap().instruction_length, Some(1));
    }

    #[test]
    fn task_switch_length_depends_on_its_source() {
        let none = InterruptionInfo::default();
        let call = 0x0000_0028;
        let gate = 0xC000_0028;
        assert!(VmxExitInfo::instruction_length_defined(
            ExitReason::TaskSwitch,
            call,
            none,
            none
        ));
        assert!(!VmxExitInfo::instruction_length_defined(
            ExitReason::TaskSwitch,
            gate,
            none,
            none
        ));
        // A task gate met while delivering INT n.
        let int_n = InterruptionInfo::from_raw(0x8000_0420);
        assert!(VmxExitInfo::instruction_length_defined(
            ExitReason::TaskSwitch,
            gate,
            none,
            int_n
        ));
        // ... but not while delivering an external interrupt.
        let external = InterruptionInfo::from_raw(0x8000_0020);
        assert!(!VmxExitInfo::instruction_length_defined(
            ExitReason::TaskSwitch,
            gate,
            none,
            external
        ));
    }

    #[test]
    fn lmsw_memory_reads_the_linear_address() {
        let mut vmcs = FakeVmcs::new(&[
            (REASON, 28),
            (QUALIFICATION, 0xFFFF_0070),
            (GLA, 0x7000),
            (LENGTH, 3),
        ]);
        let info = VmxExitInfo::read(&mut vmcs).unwrap();
        assert_eq!(info.guest_linear_address, Some(0x7000));
        // mov cr0, r8: no linear address.
        let mut vmcs = FakeVmcs::new(&[(REASON, 28), (QUALIFICATION, 0x800), (LENGTH, 4)]);
        let info = VmxExitInfo::read(&mut vmcs).unwrap();
        assert_eq!(info.guest_linear_address, None);
        assert_eq!(info.instruction_length, Some(4));
    }

    /// seL4 on Bochs: RFLAGS = 0 gives reason 33 with bit 31 set.
    #[test]
    fn entry_failure_reads_reason_and_qualification_only() {
        let mut vmcs = FakeVmcs::new(&[(REASON, 0x8000_0021), (QUALIFICATION, 0), (IDT_INFO, 0x8000_0000)]);
        let info = VmxExitInfo::read(&mut vmcs).unwrap();
        assert!(info.reason.entry_failure());
        assert_eq!(vmcs.read_count, 3);
        assert!(!vmcs.was_read(IDT_INFO));
        assert!(!info.idt_vectoring_info.valid());
        assert!(matches!(info.detail(), Ok(ExitDetail::EntryFailureGuestState(_))));
    }

    #[test]
    fn io_smi_registers() {
        let mut vmcs = FakeVmcs::new(&[
            (REASON, 5),
            (QUALIFICATION, 0x0060_0049),
            (0x6402, 7),
            (0x6408, 0x100),
        ]);
        let info = VmxExitInfo::read(&mut vmcs).unwrap();
        let regs = info.io_smi.unwrap();
        assert_eq!((regs.rcx, regs.rip), (7, 0x100));
        assert!(matches!(info.detail(), Ok(ExitDetail::IoSmi(_))));
    }

    #[test]
    fn backend_errors_propagate() {
        let mut vmcs = FakeVmcs::new(&[(REASON, 48), (QUALIFICATION, 0x181)]);
        vmcs.fail_on = Some(GPA);
        assert_eq!(VmxExitInfo::read(&mut vmcs), Err(VmcsError::Kernel(3)));
        let mut vmcs = FakeVmcs::new(&[]);
        vmcs.fail_on = Some(REASON);
        assert_eq!(VmxExitInfo::read(&mut vmcs), Err(VmcsError::Kernel(3)));
        // Through a `&mut dyn VmcsAccess` as well.
        let mut vmcs = FakeVmcs::new(&[(REASON, 12), (LENGTH, 1)]);
        let dynamic: &mut dyn VmcsAccess = &mut vmcs;
        assert_eq!(VmxExitInfo::read(dynamic).unwrap().instruction_length, Some(1));
    }

    #[test]
    fn idt_vectoring_error_code_is_read_when_flagged() {
        // An EPT violation while delivering #PF with an error code.
        let mut vmcs = FakeVmcs::new(&[
            (REASON, 48),
            (QUALIFICATION, 0x2),
            (IDT_INFO, 0x8000_0B0E),
            (IDT_ERROR, 6),
        ]);
        let info = VmxExitInfo::read(&mut vmcs).unwrap();
        assert_eq!(info.idt_vectoring_error_code, Some(6));
        assert_eq!(info.instruction_length, None);
    }
}
