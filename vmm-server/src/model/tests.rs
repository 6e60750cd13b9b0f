use super::*;
use vmcs::caps::profiles::bochs_corei7_skylake_x;

fn step(label: &str, exit: ExitSpec, expect: &[Expectation]) -> Step {
    Step {
        label: Label::try_from(label).unwrap(),
        exit,
        expect: heapless::Vec::from_slice(expect).unwrap(),
    }
}

fn out_step(byte: u8) -> Step {
    step(
        "out dx, al",
        ExitSpec {
            reason: 30,
            qualification: 0x03F8_0000,
            instruction_len: 1,
            registers: RegisterValues {
                rax: Some(byte.into()),
                rdx: Some(0x3F8),
                ..Default::default()
            },
            ..Default::default()
        },
        &[Expectation::RipAdvanced],
    )
}

const START: StartState = StartState {
    rip: 0x2000,
    rflags: 0x2,
};

fn enter(model: &mut ModelVcpu<'_>, rip: u64, info: u32) -> FaultMessage {
    match model
        .vm_enter(&EnterInput {
            rip,
            primary_controls: 0x80,
            entry_interruption_info: info,
        })
        .unwrap()
    {
        EnterOutcome::Exit(fault) => fault,
        other => panic!("expected an exit, got {other:?}"),
    }
}

#[test]
fn masks_controls_and_cr_as_the_5_0_kernel_did_in_bochs() {
    // sel4-5.0-vtx-guest.md: primary 0x80 -> 0x960061F2, pin -> 0x3F, exit -> 0x3FFFFF,
    // CR0 0x80000011 -> 0x80000031, CR4 0x10 -> 0x2010.
    let mut model = ModelVcpu::new(KernelRules::Sel4V5, bochs_corei7_skylake_x(), START, &[]);
    assert_eq!(model.write_vmcs(0x4002, 0x80), Ok(0x9600_61F2));
    assert_eq!(model.write_vmcs(0x4000, 0), Ok(0x3F));
    assert_eq!(model.write_vmcs(0x400C, 0), Ok(0x3F_FFFF));
    assert_eq!(model.write_vmcs(0x6800, 0x8000_0011), Ok(0x8000_0031));
    assert_eq!(model.write_vmcs(0x6804, 0x10), Ok(0x2010));
    // 5.0 forces PE and PG even when the guest asks for real mode.
    assert_eq!(model.write_vmcs(0x6800, 0), Ok(0x8000_0021 | 0x8000_0001));
    assert_eq!(model.read_vmcs(0x6800), Ok(0x8000_0021));
    // Secondary: EPT and VPID forced where supported (skylake_x allows both).
    assert_eq!(model.write_vmcs(0x401E, 0), Ok(0x22));
    // A selector keeps 16 bits.
    assert_eq!(model.write_vmcs(0x0802, 0x1_0008), Ok(8));
}

#[test]
fn modern_rules_let_unrestricted_guests_clear_pe_and_pg() {
    let mut model = ModelVcpu::new(KernelRules::Modern, bochs_corei7_skylake_x(), START, &[]);
    model.write_vmcs(0x401E, 1 << 7).unwrap();
    assert_eq!(
        model.write_vmcs(0x6800, 0x10),
        Ok(0x30),
        "NE forced, PE/PG optional"
    );
    let mut old = ModelVcpu::new(KernelRules::Sel4V5, bochs_corei7_skylake_x(), START, &[]);
    old.write_vmcs(0x401E, 1 << 7).unwrap();
    assert_eq!(old.write_vmcs(0x6800, 0x10), Ok(0x8000_0031));
}

#[test]
fn refuses_fields_the_kernel_does_not_expose() {
    let mut v5 = ModelVcpu::new(KernelRules::Sel4V5, bochs_corei7_skylake_x(), START, &[]);
    assert_eq!(
        v5.read_vmcs(0x4402),
        Err(KernelError::IllegalOperation),
        "exit reason only in the fault message"
    );
    assert_eq!(v5.read_vmcs(0x6400), Err(KernelError::IllegalOperation));
    assert_eq!(
        v5.write_vmcs(0x4012, 0x200),
        Err(KernelError::IllegalOperation),
        "no entry controls on 5.0"
    );
    assert_eq!(v5.read_vmcs(0x401E), Err(KernelError::IllegalOperation));
    assert_eq!(v5.write_vmcs(0x4018, 0), Err(KernelError::IllegalOperation));
    assert_eq!(
        v5.write_vmcs(0x201A, 0),
        Err(KernelError::IllegalOperation),
        "EPTP belongs to the kernel"
    );
    assert_eq!(v5.write_vmcs(0x4404, 0), Err(KernelError::IllegalOperation));
    assert_eq!(v5.read_vmcs(0x4404), Ok(0));
    let mut modern = ModelVcpu::new(KernelRules::Modern, bochs_corei7_skylake_x(), START, &[]);
    assert_eq!(
        modern.write_vmcs(0x4012, 0x200),
        Ok(0x13FB),
        "entry controls masked by TRUE_ENTRY_CTLS"
    );
    assert_eq!(modern.read_vmcs(0x4012), Ok(0x13FB));
}

#[test]
fn plays_a_script_and_checks_what_the_vmm_did() {
    let steps = [out_step(b'H'), out_step(b'i')];
    let mut model = ModelVcpu::new(KernelRules::Sel4V5, bochs_corei7_skylake_x(), START, &steps);
    let fault = enter(&mut model, 0x2000, 0);
    assert_eq!(
        (fault.exit_reason, fault.qualification, fault.instruction_len),
        (30, 0x03F8_0000, 1)
    );
    assert_eq!(
        (fault.rip, fault.registers.rax, fault.registers.rdx),
        (0x2000, u64::from(b'H'), 0x3F8)
    );
    assert_eq!(
        fault.primary_controls, 0x9600_61F2,
        "the masked controls come back in MR1"
    );
    let fault = enter(&mut model, 0x2001, 0);
    assert_eq!(fault.registers.rax, u64::from(b'i'));
    assert!(model.differences().is_empty());
    assert_eq!(model.steps_played(), 2);
    assert!(model.completed(), "the VMM stopped after the last step");
}

#[test]
fn reports_a_forgotten_rip_advance_precisely() {
    let steps = [out_step(b'H'), out_step(b'i')];
    let mut model = ModelVcpu::new(KernelRules::Sel4V5, bochs_corei7_skylake_x(), START, &steps);
    enter(&mut model, 0x2000, 0);
    enter(&mut model, 0x2000, 0);
    assert_eq!(
        model.differences(),
        [Difference {
            step: 0,
            label: Label::try_from("out dx, al").unwrap(),
            expected: Expectation::RipAdvanced,
            actual: 0x2000
        }]
    );
    assert!(!model.completed());
    assert_eq!(
        std::format!("{}", model.differences()[0]),
        "step 0 (out dx, al): expected RipAdvanced, found 0x2000"
    );
}

#[test]
fn checks_registers_events_fields_and_interrupt_windows() {
    let in_step = step(
        "in al, dx (LSR)",
        ExitSpec {
            reason: 30,
            qualification: 0x03FD_0008,
            instruction_len: 1,
            ..Default::default()
        },
        &[
            Expectation::Register {
                register: Register::Rax,
                value: 0x60,
            },
            Expectation::NoEventPending,
            Expectation::Field {
                encoding: 0x4824,
                value: 0,
            },
            Expectation::InterruptWindowNotRequested,
        ],
    );
    let hlt = step(
        "hlt",
        ExitSpec {
            reason: 12,
            instruction_len: 1,
            rflags: Some(0x202),
            ..Default::default()
        },
        &[
            Expectation::EventPending { info: 0x8000_0024 },
            Expectation::RipAdvanced,
        ],
    );
    let last = step(
        "end",
        ExitSpec {
            reason: 12,
            instruction_len: 1,
            ..Default::default()
        },
        &[Expectation::Stopped],
    );
    let steps = [in_step, hlt, last];
    let mut model = ModelVcpu::new(KernelRules::Modern, bochs_corei7_skylake_x(), START, &steps);
    enter(&mut model, 0x2000, 0);
    model
        .write_registers(&VcpuRegisters {
            rax: 0x60,
            ..*model.registers()
        })
        .unwrap();
    enter(&mut model, 0x2001, 0);
    let fault = enter(&mut model, 0x2002, 0x8000_0024);
    assert_eq!(
        fault.entry_interruption_info, 0x24,
        "delivered: valid bit cleared in MR2"
    );
    assert_eq!(model.events_delivered(), 1);
    assert!(model.differences().is_empty(), "{:?}", model.differences());
    assert!(model.completed());
}

#[test]
fn a_reserved_event_type_fails_entry_as_the_kernel_reports_it() {
    let steps = [out_step(b'H')];
    let mut model = ModelVcpu::new(KernelRules::Sel4V5, bochs_corei7_skylake_x(), START, &steps);
    // Type 1 is reserved (sel4-5.0-vtx-guest.md: reason 0xFFFFFFFF, VM_INSTRUCTION_ERROR 7).
    let fault = enter(&mut model, 0x2000, 0x8000_0120);
    assert_eq!(fault.exit_reason, ENTRY_FAILED);
    assert_eq!(model.read_vmcs(0x4400), Ok(7));
    assert_eq!(model.steps_played(), 0, "the guest did not run");
    // An error code on a vector that pushes none fails the same way.
    let fault = enter(&mut model, 0x2000, 0x8000_0B06);
    assert_eq!(fault.exit_reason, ENTRY_FAILED);
    // A good entry then plays the step.
    assert_eq!(enter(&mut model, 0x2000, 0).exit_reason, 30);
}

#[test]
fn rflags_without_bit_1_is_invalid_guest_state() {
    let steps = [out_step(b'H')];
    let mut model = ModelVcpu::new(KernelRules::Sel4V5, bochs_corei7_skylake_x(), START, &steps);
    model.write_vmcs(0x6820, 0).unwrap();
    let fault = enter(&mut model, 0x2000, 0);
    assert_eq!(fault.exit_reason, 33);
    assert_eq!(model.vmcs().get(VmcsReadOnly32::ExitReason), 0x8000_0021);
}

#[test]
fn a_signalled_notification_returns_before_the_guest_runs() {
    let steps = [out_step(b'H')];
    let mut model = ModelVcpu::new(KernelRules::Sel4V5, bochs_corei7_skylake_x(), START, &steps);
    model.signal(0b01);
    model.signal(0b10);
    let input = EnterInput {
        rip: 0x2000,
        primary_controls: 0,
        entry_interruption_info: 0,
    };
    assert_eq!(
        model.vm_enter(&input),
        Ok(EnterOutcome::Notification {
            badge: 0b11,
            resume: input
        })
    );
    assert_eq!(model.steps_played(), 0);
    assert_eq!(enter(&mut model, 0x2000, 0).exit_reason, 30);
}

#[test]
fn entering_after_the_script_ends_is_reported_and_answered_with_a_triple_fault() {
    let steps = [out_step(b'H')];
    let mut model = ModelVcpu::new(KernelRules::Sel4V5, bochs_corei7_skylake_x(), START, &steps);
    enter(&mut model, 0x2000, 0);
    let fault = enter(&mut model, 0x2001, 0);
    assert_eq!(fault.exit_reason, 2);
    assert_eq!(model.differences().len(), 1);
    assert_eq!(model.differences()[0].expected, Expectation::Stopped);
    assert!(!model.completed());
}

#[test]
fn five_oh_has_no_r8_to_r15() {
    let s = step(
        "cpuid",
        ExitSpec {
            reason: 10,
            instruction_len: 2,
            registers: RegisterValues {
                rax: Some(1),
                r9: Some(9),
                ..Default::default()
            },
            ..Default::default()
        },
        &[],
    );
    let steps = [s];
    let mut v5 = ModelVcpu::new(KernelRules::Sel4V5, bochs_corei7_skylake_x(), START, &steps);
    assert_eq!(enter(&mut v5, 0x2000, 0).registers.r9, 0);
    let mut modern = ModelVcpu::new(KernelRules::Modern, bochs_corei7_skylake_x(), START, &steps);
    assert_eq!(enter(&mut modern, 0x2000, 0).registers.r9, 9);
}

#[test]
fn a_wrong_first_rip_is_reported() {
    let steps = [out_step(b'H')];
    let mut model = ModelVcpu::new(KernelRules::Sel4V5, bochs_corei7_skylake_x(), START, &steps);
    enter(&mut model, 0x1000, 0);
    assert_eq!(
        model.differences()[0].expected,
        Expectation::Rip { value: 0x2000 }
    );
}

#[test]
fn entry_checks_refuse_events_hardware_refuses() {
    let steps = [out_step(b'H'), out_step(b'i')];
    // skylake_x allows zero-length software events (IA32_VMX_MISC bit 30); a model that does not:
    let caps = bochs_corei7_skylake_x().with(vmcs::caps::VmxCapabilityMsr::Misc, 0x2004_01e0);
    let mut model = ModelVcpu::new(KernelRules::Modern, caps, START, &steps);
    model.write_vmcs(0x6800, 0x11).unwrap(); // protected mode
    // #GP without its error-code bit in protected mode: error 7.
    assert_eq!(enter(&mut model, 0x2000, 0x8000_030D).exit_reason, ENTRY_FAILED);
    assert_eq!(model.read_vmcs(0x4400), Ok(7));
    // A software interrupt with no instruction length (seL4 cannot write it): error 7.
    assert_eq!(enter(&mut model, 0x2000, 0x8000_0480).exit_reason, ENTRY_FAILED);
    // An external interrupt with RFLAGS.IF = 0: invalid guest state.
    assert_eq!(enter(&mut model, 0x2000, 0x8000_0030).exit_reason, 33);
    // With IF = 1 but blocking by STI: invalid guest state too.
    model.write_vmcs(0x6820, 0x202).unwrap();
    model.write_vmcs(0x4824, 1).unwrap();
    assert_eq!(enter(&mut model, 0x2000, 0x8000_0030).exit_reason, 33);
    model.write_vmcs(0x4824, 0).unwrap();
    assert_eq!(
        enter(&mut model, 0x2000, 0x8000_0030).exit_reason,
        30,
        "now it is delivered"
    );
    assert_eq!(model.events_delivered(), 1);
}
