//! The model VCPU: a software implementation of [`VcpuKernel`] that obeys the seL4 kernel's
//! rules and plays a scripted guest.
//!
//! - Field access follows [`KernelRules`]: fields the kernel does not expose fail with
//!   `IllegalOperation`, exactly as the real invocations do.
//! - Writes are masked as the kernel masks them: controls with the capability MSRs (the TRUE_
//!   ones when IA32_VMX_BASIC bit 55 says so) plus the kernel's forced bits; guest CR0/CR4
//!   with the FIXED0/FIXED1 MSRs (and, on 5.0, CR0.PE/PG always). `WriteVMCS` answers with
//!   the value written.
//! - `VMEnter` checks the previous step's [`Expectation`]s, applies the VM-entry checks on
//!   the event to inject (SDM Vol. 3C, Section 27.2.1.3; a failure is reported as the kernel
//!   reports it: exit reason 0xFFFFFFFF, VM-instruction error 7) and on RFLAGS (reserved
//!   bit 1 must be 1, Section 27.3.1.4: exit reason 33), delivers the event, and returns the
//!   next step's exit as a fault message.
//! - A violated expectation is recorded as a [`Difference`] naming the step, what was
//!   expected and what was found. Entering after the last step is a difference too, answered
//!   with a triple-fault exit so that the server stops.

pub mod rules;
pub mod script;

use vmcs::caps::{AllowedBits, ControlKind, VmxCapabilities};
use vmcs::inject::{ActivityState, Interruptibility, check_guest_state_for_injection};
use vmcs::{
    Field, InterruptionInfo, InterruptionType, SoftProfile, SoftVmcs, VmcsControl32, VmcsGuest32,
    VmcsGuestNW, VmcsReadOnly32, VmcsReadOnly64, VmcsReadOnlyNW,
};

use crate::kernel::{
    ENTRY_FAILED, EnterInput, EnterOutcome, FaultMessage, KernelError, VcpuKernel, VcpuRegisters,
};
pub use rules::KernelRules;
use rules::{FORCED_EXIT, FORCED_PIN, FORCED_PRIMARY, FORCED_SECONDARY};
pub use script::{ExitSpec, Expectation, Label, Register, RegisterValues, StartState, Step};

/// How many differences a model keeps (later ones are counted, not kept).
pub const MAX_DIFFERENCES: usize = 16;

/// A violated expectation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// Index of the step whose expectation failed (the number of steps for "entered after
    /// the end of the script").
    pub step: usize,
    /// The step's label.
    pub label: Label,
    /// What was expected.
    pub expected: Expectation,
    /// What was found (the value the expectation looks at; for `Stopped`, the RIP entered at).
    pub actual: u64,
}

impl core::fmt::Display for Difference {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "step {} ({}): expected {:?}, found {:#x}",
            self.step, self.label, self.expected, self.actual
        )
    }
}

/// The model VCPU. See the module documentation.
#[derive(Debug)]
pub struct ModelVcpu<'s> {
    rules: KernelRules,
    caps: VmxCapabilities,
    /// The primary controls' allowed bits, worked out once: every entry masks with them.
    primary_allowed: AllowedBits,
    vmcs: SoftVmcs,
    registers: VcpuRegisters,
    steps: &'s [Step],
    start: StartState,
    next: usize,
    /// The step whose exit the VMM is handling, and the RIP it happened at.
    handling: Option<(usize, u64)>,
    differences: heapless::Vec<Difference, MAX_DIFFERENCES>,
    differences_total: usize,
    notification: Option<u64>,
    events_delivered: u64,
    entries: u64,
    ran_past_end: bool,
}

/// The bits `caps` allow in control word `kind`; a control the processor lacks can hold no
/// 1 bits.
fn allowed_bits(caps: &VmxCapabilities, kind: ControlKind) -> AllowedBits {
    caps.allowed(kind).unwrap_or(AllowedBits {
        must_be_one: 0,
        may_be_one: 0,
    })
}

const RFLAGS_FIXED_1: u64 = 1 << 1;
const CR0_PE: u64 = 1;
const CR0_PG: u64 = 1 << 31;
const UNRESTRICTED_GUEST: u64 = 1 << 7;
const INTERRUPT_WINDOW_EXITING: u32 = 1 << 2;

impl<'s> ModelVcpu<'s> {
    /// A model that follows `rules` on a processor with `caps` and plays `steps`.
    pub fn new(rules: KernelRules, caps: VmxCapabilities, start: StartState, steps: &'s [Step]) -> Self {
        let mut vmcs = SoftVmcs::new(SoftProfile::all_fields());
        vmcs.set(VmcsGuestNW::Rip, start.rip);
        vmcs.set(VmcsGuestNW::Rflags, start.rflags);
        let primary_allowed = allowed_bits(&caps, ControlKind::Primary);
        Self {
            rules,
            caps,
            primary_allowed,
            vmcs,
            registers: VcpuRegisters::default(),
            steps,
            start,
            next: 0,
            handling: None,
            differences: heapless::Vec::new(),
            differences_total: 0,
            notification: None,
            events_delivered: 0,
            entries: 0,
            ran_past_end: false,
        }
    }

    /// Signals the notification bound to the VMM thread: the next `VMEnter` returns at once
    /// with this badge (badges of several signals are OR-ed, as seL4 does).
    pub fn signal(&mut self, badge: u64) {
        self.notification = Some(self.notification.unwrap_or(0) | badge);
    }

    /// Differences recorded so far (at most [`MAX_DIFFERENCES`]).
    pub fn differences(&self) -> &[Difference] {
        &self.differences
    }

    /// All differences found, including those not kept.
    pub fn differences_total(&self) -> usize {
        self.differences_total
    }

    /// Steps played so far.
    pub fn steps_played(&self) -> usize {
        self.next
    }

    /// Whether every step was played, the last one ended the run as it expected, and nothing
    /// differed.
    pub fn completed(&self) -> bool {
        self.next == self.steps.len() && !self.ran_past_end && self.differences_total == 0
    }

    /// Events the model delivered to the guest.
    pub fn events_delivered(&self) -> u64 {
        self.events_delivered
    }

    /// `VMEnter` calls made.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The model's VMCS (the kernel's copy), for inspection.
    pub fn vmcs(&self) -> &SoftVmcs {
        &self.vmcs
    }

    /// The guest's registers as the model holds them.
    pub fn registers(&self) -> &VcpuRegisters {
        &self.registers
    }

    fn differ(&mut self, step: usize, expected: Expectation, actual: u64) {
        self.differences_total += 1;
        let label = self.steps.get(step).map(|s| s.label.clone()).unwrap_or_else(|| {
            let mut l = Label::new();
            let _ = l.push_str("end of script");
            l
        });
        let _ = self.differences.push(Difference {
            step,
            label,
            expected,
            actual,
        });
    }

    /// Checks the expectations of the step the VMM just handled, at an entry with `input`.
    fn check_expectations(&mut self, input: &EnterInput, primary: u32) {
        let Some((index, exit_rip)) = self.handling.take() else {
            return;
        };
        let steps = self.steps;
        let Some(step) = steps.get(index) else { return };
        for &expectation in &step.expect {
            let (ok, actual) = match expectation {
                Expectation::RipAdvanced => {
                    let want = exit_rip.wrapping_add(u64::from(step.exit.instruction_len));
                    (input.rip == want, input.rip)
                }
                Expectation::RipUnchanged => (input.rip == exit_rip, input.rip),
                Expectation::Rip { value } => (input.rip == value, input.rip),
                Expectation::Register { register, value } => {
                    let actual = register.get(&self.registers);
                    (actual == value, actual)
                }
                Expectation::EventPending { info } => (
                    input.entry_interruption_info == info,
                    u64::from(input.entry_interruption_info),
                ),
                Expectation::NoEventPending => (
                    !InterruptionInfo::from_raw(input.entry_interruption_info).valid(),
                    u64::from(input.entry_interruption_info),
                ),
                Expectation::Field { encoding, value } => {
                    let actual = match encoding {
                        0x681E => input.rip,
                        0x4016 => u64::from(input.entry_interruption_info),
                        0x4002 => u64::from(primary),
                        _ => match Field::from_encoding(encoding) {
                            Some(field) => self.vmcs.get(field),
                            None => !value,
                        },
                    };
                    (actual == value, actual)
                }
                Expectation::InterruptWindowRequested => {
                    (primary & INTERRUPT_WINDOW_EXITING != 0, u64::from(primary))
                }
                Expectation::InterruptWindowNotRequested => {
                    (primary & INTERRUPT_WINDOW_EXITING == 0, u64::from(primary))
                }
                Expectation::Stopped => (false, input.rip),
            };
            if !ok {
                self.differ(index, expectation, actual);
            }
        }
    }

    fn allowed(&self, kind: ControlKind) -> AllowedBits {
        allowed_bits(&self.caps, kind)
    }

    /// The value the kernel writes for `value` (see the module documentation).
    fn masked(&self, field: u32, value: u64) -> u64 {
        match field {
            0x4000 => self.allowed(ControlKind::Pin).apply(value) | u64::from(FORCED_PIN),
            0x4002 => self.primary_allowed.apply(value) | u64::from(FORCED_PRIMARY),
            0x401E => {
                let allowed = self.allowed(ControlKind::Secondary);
                allowed.apply(value) | (u64::from(FORCED_SECONDARY) & allowed.may_be_one)
            }
            0x400C => {
                let allowed = self.allowed(ControlKind::Exit);
                let always = FORCED_EXIT & !((1 << 12) | (1 << 15));
                allowed.apply(value) | u64::from(always) | (u64::from(FORCED_EXIT) & allowed.may_be_one)
            }
            0x4012 => self.allowed(ControlKind::Entry).apply(value),
            0x6800 => {
                let Some(mut fixed) = self.caps.cr0_fixed() else {
                    return value;
                };
                let secondary = self.vmcs.get(VmcsControl32::SecondaryProcBasedControls);
                if !self.rules.forces_protected_paging() && secondary & UNRESTRICTED_GUEST != 0 {
                    fixed.must_be_one &= !(CR0_PE | CR0_PG);
                }
                let mut written = fixed.apply(value);
                if self.rules.forces_protected_paging() {
                    written |= CR0_PE | CR0_PG;
                }
                written
            }
            0x6804 => self.caps.cr4_fixed().map_or(value, |fixed| fixed.apply(value)),
            _ => Field::from_encoding(field).map_or(value, |f| value & f.width().mask()),
        }
    }

    /// The VM-entry checks on the event to inject (SDM Vol. 3C, Section 27.2.1.3); `false`
    /// means VM entry fails with error 7.
    fn event_passes_entry_checks(&self, info: InterruptionInfo) -> bool {
        if !info.valid() {
            return true;
        }
        let vector = info.vector();
        let kind = info.kind();
        let type_ok = match kind {
            InterruptionType::Reserved => false,
            InterruptionType::Nmi => vector == 2,
            InterruptionType::HardwareException => vector <= 31,
            InterruptionType::Other => vector == 0,
            _ => true,
        };
        // Bit 11 exactly for the exceptions that push an error code, in protected mode (unless
        // IA32_VMX_BASIC bit 56 relaxes it); never in real mode.
        let protected = self.vmcs.get(VmcsGuestNW::Cr0) & CR0_PE != 0;
        let pushes_error = protected
            && kind == InterruptionType::HardwareException
            && matches!(vector, 8 | 10..=14 | 17 | 21);
        let relaxed = self.caps.basic().is_some_and(|b| b.any_exception_error_code) && protected;
        let error_ok = info.error_code_valid() == pushes_error
            || (relaxed && kind == InterruptionType::HardwareException);
        // Software events need an instruction length of 1-15 (0 with IA32_VMX_MISC bit 30).
        let length_ok = !kind.needs_instruction_length() || {
            let length = self.vmcs.get(VmcsControl32::EntryInstructionLength);
            let zero_ok = self
                .caps
                .get(vmcs::caps::VmxCapabilityMsr::Misc)
                .is_some_and(|m| m & (1 << 30) != 0);
            (1..=15).contains(&length) || (length == 0 && zero_ok)
        };
        // Bits 30:12 are reserved for VM entry.
        type_ok && error_ok && length_ok && info.raw() & 0x7FFF_F000 == 0
    }

    /// The checks on guest state that involve the event to inject (SDM Vol. 3C, Sections
    /// 27.3.1.4 and 27.3.1.5); `false` means VM entry fails on invalid guest state (exit 33).
    fn event_fits_guest_state(&self, info: InterruptionInfo) -> bool {
        if !info.valid() {
            return true;
        }
        let external = info.kind() == InterruptionType::ExternalInterrupt;
        if external && self.vmcs.get(VmcsGuestNW::Rflags) & (1 << 9) == 0 {
            return false; // an external interrupt needs RFLAGS.IF = 1
        }
        let interruptibility =
            Interruptibility::from_bits_retain(self.vmcs.get(VmcsGuest32::InterruptibilityState) as u32);
        let activity = ActivityState::from_raw(self.vmcs.get(VmcsGuest32::ActivityState) as u32);
        let virtual_nmis = self.vmcs.get(VmcsControl32::PinBasedControls) & (1 << 5) != 0;
        check_guest_state_for_injection(info, interruptibility, activity, virtual_nmis).is_ok()
    }

    fn entry_failure(&mut self, input: &EnterInput, primary: u32, error: u32) -> EnterOutcome {
        self.vmcs
            .set(VmcsReadOnly32::VmInstructionError, u64::from(error));
        EnterOutcome::Exit(FaultMessage {
            rip: input.rip,
            primary_controls: primary,
            entry_interruption_info: input.entry_interruption_info,
            exit_reason: ENTRY_FAILED,
            qualification: u64::MAX,
            registers: self.visible_registers(),
            ..self.fault_common()
        })
    }

    fn visible_registers(&self) -> VcpuRegisters {
        let mut regs = self.registers;
        if !self.rules.has_64_bit_guests() {
            regs.r8 = 0;
            regs.r9 = 0;
            regs.r10 = 0;
            regs.r11 = 0;
            regs.r12 = 0;
            regs.r13 = 0;
            regs.r14 = 0;
            regs.r15 = 0;
        }
        regs
    }

    fn fault_common(&self) -> FaultMessage {
        FaultMessage {
            rflags: self.vmcs.get(VmcsGuestNW::Rflags),
            interruptibility: self.vmcs.get(VmcsGuest32::InterruptibilityState) as u32,
            cr3: self.vmcs.get(VmcsGuestNW::Cr3),
            guest_physical: self.vmcs.get(VmcsReadOnly64::GuestPhysicalAddress),
            ..FaultMessage::default()
        }
    }

    /// Plays step `index` at `rip`: updates the guest and the exit fields.
    fn play(&mut self, index: usize, input: &EnterInput, primary: u32, delivered_info: u32) -> EnterOutcome {
        let Some(step) = self.steps.get(index) else {
            return EnterOutcome::Exit(FaultMessage {
                exit_reason: 2,
                ..self.fault_common()
            });
        };
        let exit = &step.exit;
        let rip = exit.rip.unwrap_or(input.rip);
        exit.registers.apply(&mut self.registers);
        if let Some(rflags) = exit.rflags {
            self.vmcs.set(VmcsGuestNW::Rflags, rflags);
        }
        if let Some(interruptibility) = exit.interruptibility {
            self.vmcs
                .set(VmcsGuest32::InterruptibilityState, u64::from(interruptibility));
        }
        // VM-entry failures during or after loading guest state (reasons 33, 34, 41) set bit 31
        // of the exit-reason field (SDM Vol. 3C, Section 27.8).
        let reason_field = match exit.reason {
            33 | 34 | 41 => exit.reason | (1 << 31),
            other => other,
        };
        self.vmcs.set(VmcsReadOnly32::ExitReason, u64::from(reason_field));
        self.vmcs
            .set(VmcsReadOnlyNW::ExitQualification, exit.qualification);
        self.vmcs.set(
            VmcsReadOnly32::ExitInstructionLength,
            u64::from(exit.instruction_len),
        );
        self.vmcs.set(
            VmcsReadOnly32::ExitInstructionInfo,
            u64::from(exit.instruction_info),
        );
        self.vmcs.set(
            VmcsReadOnly32::ExitInterruptionInfo,
            u64::from(exit.interruption_info),
        );
        self.vmcs.set(
            VmcsReadOnly32::ExitInterruptionErrorCode,
            u64::from(exit.interruption_error),
        );
        self.vmcs.set(
            VmcsReadOnly32::IdtVectoringInfo,
            u64::from(exit.idt_vectoring_info),
        );
        self.vmcs.set(
            VmcsReadOnly32::IdtVectoringErrorCode,
            u64::from(exit.idt_vectoring_error),
        );
        self.vmcs
            .set(VmcsReadOnlyNW::GuestLinearAddress, exit.guest_linear);
        if matches!(exit.reason, 48 | 49) {
            self.vmcs
                .set(VmcsReadOnly64::GuestPhysicalAddress, exit.guest_physical);
        }
        self.vmcs.set(VmcsGuestNW::Rip, rip);
        self.handling = Some((index, rip));
        self.next = index + 1;
        if exit.reason == ENTRY_FAILED {
            self.vmcs.set(
                VmcsReadOnly32::VmInstructionError,
                u64::from(exit.vm_instruction_error),
            );
        }
        EnterOutcome::Exit(FaultMessage {
            rip,
            primary_controls: primary,
            entry_interruption_info: delivered_info,
            exit_reason: if exit.reason == ENTRY_FAILED {
                ENTRY_FAILED
            } else {
                exit.reason & 0xFFFF
            },
            qualification: exit.qualification,
            instruction_len: exit.instruction_len,
            registers: self.visible_registers(),
            ..self.fault_common()
        })
    }
}

impl VcpuKernel for ModelVcpu<'_> {
    fn read_vmcs(&mut self, field: u32) -> Result<u64, KernelError> {
        if !self.rules.readable(field) {
            return Err(KernelError::IllegalOperation);
        }
        let field = Field::from_encoding(field).ok_or(KernelError::IllegalOperation)?;
        Ok(self.vmcs.get(field))
    }

    fn write_vmcs(&mut self, field: u32, value: u64) -> Result<u64, KernelError> {
        if !self.rules.writable(field) {
            return Err(KernelError::IllegalOperation);
        }
        let target = Field::from_encoding(field).ok_or(KernelError::IllegalOperation)?;
        let written = self.masked(field, value);
        self.vmcs.set(target, written);
        Ok(written)
    }

    fn writable(&self, field: u32) -> bool {
        self.rules.writable(field)
    }

    fn write_registers(&mut self, registers: &VcpuRegisters) -> Result<(), KernelError> {
        let keep_high = self.registers;
        self.registers = *registers;
        if !self.rules.has_64_bit_guests() {
            // 5.0's seL4_VCPUContext has no R8-R15: they are not written.
            self.registers.r8 = keep_high.r8;
            self.registers.r9 = keep_high.r9;
            self.registers.r10 = keep_high.r10;
            self.registers.r11 = keep_high.r11;
            self.registers.r12 = keep_high.r12;
            self.registers.r13 = keep_high.r13;
            self.registers.r14 = keep_high.r14;
            self.registers.r15 = keep_high.r15;
        }
        Ok(())
    }

    fn vm_enter(&mut self, input: &EnterInput) -> Result<EnterOutcome, KernelError> {
        self.entries += 1;
        if let Some(badge) = self.notification.take() {
            return Ok(EnterOutcome::Notification {
                badge,
                resume: *input,
            });
        }
        let primary = self.masked(0x4002, u64::from(input.primary_controls)) as u32;
        self.vmcs
            .set(VmcsControl32::PrimaryProcBasedControls, u64::from(primary));
        self.vmcs.set(
            VmcsControl32::EntryInterruptionInfo,
            u64::from(input.entry_interruption_info),
        );
        if self.entries == 1 && input.rip != self.start.rip {
            let label = Label::new();
            self.differences_total += 1;
            let _ = self.differences.push(Difference {
                step: 0,
                label,
                expected: Expectation::Rip {
                    value: self.start.rip,
                },
                actual: input.rip,
            });
        }
        self.check_expectations(input, primary);
        if self.next >= self.steps.len() {
            self.ran_past_end = true;
            self.differ(self.steps.len(), Expectation::Stopped, input.rip);
            // A triple fault makes any sane VMM stop the guest.
            return Ok(EnterOutcome::Exit(FaultMessage {
                rip: input.rip,
                primary_controls: primary,
                exit_reason: 2,
                registers: self.visible_registers(),
                ..self.fault_common()
            }));
        }
        let event = InterruptionInfo::from_raw(input.entry_interruption_info);
        if !self.event_passes_entry_checks(event) {
            return Ok(self.entry_failure(input, primary, 7));
        }
        if self.vmcs.get(VmcsGuestNW::Rflags) & RFLAGS_FIXED_1 == 0 || !self.event_fits_guest_state(event) {
            // Invalid guest state: reported before the guest runs; the step is not played.
            self.vmcs.set(VmcsReadOnly32::ExitReason, 33 | (1 << 31));
            return Ok(EnterOutcome::Exit(FaultMessage {
                rip: input.rip,
                primary_controls: primary,
                entry_interruption_info: input.entry_interruption_info,
                exit_reason: 33,
                registers: self.visible_registers(),
                ..self.fault_common()
            }));
        }
        let delivered_info = if event.valid() {
            self.events_delivered += 1;
            input.entry_interruption_info & !InterruptionInfo::VALID
        } else {
            input.entry_interruption_info
        };
        Ok(self.play(self.next, input, primary, delivered_info))
    }
}

#[cfg(test)]
mod tests;
