//! VMX operation: entering it, the VMCS regions, VMCLEAR/VMPTRLD/VMPTRST, and VMREAD/VMWRITE
//! through the `vmcs` crate's `vmx` backend.

use core::cell::UnsafeCell;

use oracle_proto::{FieldOp, FieldOutcome, GUEST_MEMORY, GuestRegisters, MAX_FIELD_OPS, Region, Response};
use vmcs::vmx::Vmx;
use vmcs::{
    VmInstructionError, VmcsAccess, VmcsError, VmcsGuest16, VmcsGuest32, VmcsGuest64, VmcsGuestNW,
    VmcsHost16, VmcsHost32, VmcsHostNW,
};

use crate::gdt;

/// How many VMCS regions the stub owns.
pub const VMCS_REGIONS: u8 = 5;

const IA32_FEATURE_CONTROL: u32 = 0x3A;
const IA32_VMX_BASIC: u32 = 0x480;
const IA32_VMX_CR0_FIXED0: u32 = 0x486;
const IA32_VMX_CR0_FIXED1: u32 = 0x487;
const IA32_VMX_CR4_FIXED0: u32 = 0x488;
const IA32_VMX_CR4_FIXED1: u32 = 0x489;

/// IA32_FEATURE_CONTROL: lock (bit 0) and "enable VMX outside SMX" (bit 2) (SDM Vol. 3C,
/// Section 24.7).
const FEATURE_CONTROL_LOCK_AND_VMX: u64 = 0x5;

#[repr(C, align(4096))]
struct Page([u8; 4096]);

struct Regions(UnsafeCell<[Page; 1 + VMCS_REGIONS as usize]>);

// SAFETY: one processor; the regions are only touched by the serving loop and the processor.
unsafe impl Sync for Regions {}

/// Region 0 is the VMXON region; 1.. are VMCS regions.
static REGIONS: Regions = Regions(UnsafeCell::new(
    [const { Page([0; 4096]) }; 1 + VMCS_REGIONS as usize],
));

fn region_address(index: usize) -> u64 {
    // Identity-mapped: the linear address is the physical address.
    (REGIONS.0.get() as u64) + 4096 * index as u64
}

fn write_header(index: usize, header: u32) {
    let address = region_address(index) as *mut u32;
    // SAFETY: `index` is within REGIONS (checked by the callers); a volatile write because the
    // processor, not Rust, reads it.
    unsafe { address.write_volatile(header) }
}

/// The physical address a request names; `None` for a region index out of range.
pub fn address_of(region: Region) -> Option<u64> {
    match region {
        Region::Vmcs(i) if i < VMCS_REGIONS => Some(region_address(1 + usize::from(i))),
        Region::Vmcs(_) => None,
        Region::Vmxon => Some(region_address(0)),
        Region::Physical(address) => Some(address),
    }
}

/// RDMSR.
pub fn rdmsr(msr: u32) -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: RDMSR reads a register; a missing MSR raises #GP, which the guarded call reports.
    unsafe {
        core::arch::asm!("rdmsr", in("ecx") msr, out("eax") low, out("edx") high, options(nomem, nostack))
    }
    (u64::from(high) << 32) | u64::from(low)
}

/// WRMSR.
fn wrmsr(msr: u32, value: u64) {
    // SAFETY: used only for IA32_FEATURE_CONTROL, which affects no memory.
    unsafe {
        core::arch::asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
            options(nomem, nostack))
    }
}

/// Turns RFLAGS.CF/ZF after a VMX instruction into an outcome (SDM Vol. 3C, Section 31.2).
fn outcome(carry: u8, zero: u8) -> Result<(), VmcsError> {
    if carry != 0 {
        Err(VmcsError::VmFailInvalid)
    } else if zero != 0 {
        // SAFETY: VMfailValid happens only in VMX root operation with a current VMCS.
        let mut vmx = unsafe { Vmx::new() };
        let number = vmx.read(0x4400).unwrap_or(0) as u32;
        Err(VmcsError::VmFailValid(VmInstructionError::from_number(number)))
    } else {
        Ok(())
    }
}

macro_rules! vmx_pointer_instruction {
    ($name:ident, $mnemonic:literal) => {
        /// The instruction with a memory operand holding `address`.
        fn $name(address: u64) -> Result<(), VmcsError> {
            let operand = address;
            let (carry, zero): (u8, u8);
            // SAFETY: the operand is a readable u64; the instruction changes VMX state, which
            // is what the request asks for, and may fault (#UD outside VMX operation), which
            // the guarded call reports.
            unsafe {
                core::arch::asm!(
                    concat!($mnemonic, " qword ptr [{operand}]"),
                    "setc {carry}",
                    "setz {zero}",
                    operand = in(reg) &operand,
                    carry = out(reg_byte) carry,
                    zero = out(reg_byte) zero,
                    options(nostack),
                );
            }
            outcome(carry, zero)
        }
    };
}

vmx_pointer_instruction!(vmxon, "vmxon");
vmx_pointer_instruction!(vmclear, "vmclear");
vmx_pointer_instruction!(vmptrld, "vmptrld");

fn read_cr0() -> u64 {
    let value: u64;
    // SAFETY: reading CR0 has no side effect.
    unsafe { core::arch::asm!("mov {}, cr0", out(reg) value, options(nomem, nostack)) }
    value
}

fn read_cr4() -> u64 {
    let value: u64;
    // SAFETY: reading CR4 has no side effect.
    unsafe { core::arch::asm!("mov {}, cr4", out(reg) value, options(nomem, nostack)) }
    value
}

/// IA32_FEATURE_CONTROL if unlocked, CR0/CR4 to the fixed bits, revision IDs, VMXON.
pub fn enable() -> Result<(), VmcsError> {
    if rdmsr(IA32_FEATURE_CONTROL) & 1 == 0 {
        // No BIOS ran: the MSR reads 0 and VMXON would #GP until it is locked with VMX on.
        wrmsr(IA32_FEATURE_CONTROL, FEATURE_CONTROL_LOCK_AND_VMX);
    }
    // CR0/CR4 in VMX operation (SDM Vol. 3D, Appendix A.7, A.8).
    let cr0 = (read_cr0() | rdmsr(IA32_VMX_CR0_FIXED0)) & rdmsr(IA32_VMX_CR0_FIXED1);
    let cr4 = (read_cr4() | rdmsr(IA32_VMX_CR4_FIXED0)) & rdmsr(IA32_VMX_CR4_FIXED1);
    // SAFETY: the fixed bits keep PE, PG and NE set, and add CR4.VMXE; paging is unchanged.
    unsafe { core::arch::asm!("mov cr0, {}", "mov cr4, {}", in(reg) cr0, in(reg) cr4, options(nostack)) }
    // The VMCS revision identifier (IA32_VMX_BASIC bits 30:0; Appendix A.1).
    let revision = (rdmsr(IA32_VMX_BASIC) & 0x7FFF_FFFF) as u32;
    for index in 0..=usize::from(VMCS_REGIONS) {
        write_header(index, revision);
    }
    vmxon(region_address(0))
}

/// VMXOFF.
pub fn disable() -> Result<(), VmcsError> {
    let (carry, zero): (u8, u8);
    // SAFETY: leaves VMX operation; #UD outside it is reported by the guarded call.
    unsafe {
        core::arch::asm!("vmxoff", "setc {c}", "setz {z}", c = out(reg_byte) carry, z = out(reg_byte) zero,
            options(nostack))
    }
    outcome(carry, zero)
}

/// Writes the header of a VMCS region; false if the index is out of range.
pub fn set_header(region: u8, header: u32) -> bool {
    if region >= VMCS_REGIONS {
        return false;
    }
    write_header(1 + usize::from(region), header);
    true
}

/// VMCLEAR or VMPTRLD of a region.
pub fn pointer_instruction(region: Region, load: bool) -> Response {
    let Some(address) = address_of(region) else {
        return Response::BadRequest;
    };
    let result = if load { vmptrld(address) } else { vmclear(address) };
    match result {
        Ok(()) => Response::Done,
        Err(e) => Response::Failed(e),
    }
}

/// VMLAUNCH, for a VMCS whose entry fails: on failure the processor continues after the
/// instruction with RFLAGS reporting the outcome (SDM Vol. 3C, Section 31.3, VMLAUNCH).
pub fn launch() -> Result<(), VmcsError> {
    let (carry, zero): (u8, u8);
    // SAFETY: the host asks only for entries that fail (no VM-exit path exists here), which
    // leave all state as it was; #UD outside VMX operation is reported by the guarded call.
    unsafe {
        core::arch::asm!("vmlaunch", "setc {c}", "setz {z}", c = out(reg_byte) carry, z = out(reg_byte) zero,
            options(nostack))
    }
    outcome(carry, zero)
}

/// VMPTRST.
pub fn vmptrst() -> u64 {
    let mut pointer = 0u64;
    // SAFETY: stores 8 bytes into `pointer`.
    unsafe { core::arch::asm!("vmptrst qword ptr [{}]", in(reg) &mut pointer, options(nostack)) }
    pointer
}

/// A batch of VMREAD/VMWRITE through the `vmx` backend.
pub fn fields(ops: &[FieldOp]) -> Response {
    // SAFETY: VMREAD/VMWRITE outside VMX operation raise #UD, which the guarded call reports.
    let mut vmx = unsafe { Vmx::new() };
    let mut outcomes = heapless::Vec::<FieldOutcome, MAX_FIELD_OPS>::new();
    for op in ops {
        let outcome = match *op {
            FieldOp::Read(encoding) => match vmx.read(encoding) {
                Ok(value) => FieldOutcome::Value(value),
                Err(e) => FieldOutcome::Failed(e),
            },
            FieldOp::Write(encoding, value) => match vmx.write(encoding, value) {
                Ok(()) => FieldOutcome::Written,
                Err(e) => FieldOutcome::Failed(e),
            },
        };
        // Capacity equals the request's: cannot overflow.
        let _ = outcomes.push(outcome);
    }
    Response::Fields(outcomes)
}

// u64 oracle_enter(u64 launch, GuestRegisters *registers): 0 after a VM exit (the guest's
// registers stored back), else 0x1000 | (RFLAGS & (CF | ZF)) after a failed VMLAUNCH/VMRESUME.
// The host RSP field is set here, to the stack that holds the callee-saved registers and the
// register block's address; the host RIP field (the preset) points at oracle_vm_exit.
core::arch::global_asm!(
    r#"
    .text
    .globl oracle_enter
oracle_enter:
    pushq %rbx
    pushq %rbp
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    pushq %rsi
    movq $0x6C14, %rax
    vmwrite %rsp, %rax
    testq %rdi, %rdi
    movq 0(%rsi), %rax
    movq 8(%rsi), %rcx
    movq 16(%rsi), %rdx
    movq 24(%rsi), %rbx
    movq 40(%rsi), %rbp
    movq 56(%rsi), %rdi
    movq 64(%rsi), %r8
    movq 72(%rsi), %r9
    movq 80(%rsi), %r10
    movq 88(%rsi), %r11
    movq 96(%rsi), %r12
    movq 104(%rsi), %r13
    movq 112(%rsi), %r14
    movq 120(%rsi), %r15
    movq 48(%rsi), %rsi
    jz 1f
    vmlaunch
    jmp 2f
1:
    vmresume
2:
    pushfq
    popq %rdx
    popq %rsi
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbp
    popq %rbx
    movq %rdx, %rax
    andq $0x41, %rax
    orq $0x1000, %rax
    ret

    .globl oracle_vm_exit
oracle_vm_exit:
    pushq %rax
    movq 8(%rsp), %rax
    movq %rcx, 8(%rax)
    movq %rdx, 16(%rax)
    movq %rbx, 24(%rax)
    movq %rbp, 40(%rax)
    movq %rsi, 48(%rax)
    movq %rdi, 56(%rax)
    movq %r8, 64(%rax)
    movq %r9, 72(%rax)
    movq %r10, 80(%rax)
    movq %r11, 88(%rax)
    movq %r12, 96(%rax)
    movq %r13, 104(%rax)
    movq %r14, 112(%rax)
    movq %r15, 120(%rax)
    popq %rcx
    movq %rcx, 0(%rax)
    popq %rsi
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbp
    popq %rbx
    xorl %eax, %eax
    ret
"#,
    options(att_syntax)
);

unsafe extern "C" {
    fn oracle_enter(launch: u64, registers: *mut GuestRegisters) -> u64;
    fn oracle_vm_exit();
}

/// VMLAUNCH or VMRESUME with `registers`; after the VM exit they hold the guest's.
pub fn enter(launch: bool, registers: &mut GuestRegisters) -> Result<(), VmcsError> {
    // SAFETY: the preset made the host state return to `oracle_vm_exit` on this stack
    // (host RSP is set by `oracle_enter` itself); the guest runs code the host placed in
    // guest memory. A failed entry returns with the flags.
    let result = unsafe { oracle_enter(u64::from(launch), registers) };
    if result == 0 {
        Ok(())
    } else {
        outcome(u8::from(result & 1 != 0), u8::from(result & 0x40 != 0))
    }
}

/// SGDT (`interrupts` false) or SIDT: the table's base and limit.
fn descriptor_table(interrupts: bool) -> (u64, u16) {
    let mut pointer = crate::fault::DescriptorPointer { limit: 0, base: 0 };
    // SAFETY: SGDT/SIDT store 10 bytes into `pointer`.
    unsafe {
        if interrupts {
            core::arch::asm!("sidt [{}]", in(reg) &mut pointer, options(nostack));
        } else {
            core::arch::asm!("sgdt [{}]", in(reg) &mut pointer, options(nostack));
        }
    }
    (pointer.base, pointer.limit)
}

fn read_cr3() -> u64 {
    let value: u64;
    // SAFETY: reading CR3 has no side effect.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) value, options(nomem, nostack)) }
    value
}

/// The stub's host state, and a 64-bit guest sharing its paging and descriptor tables (the
/// guest-state checks of SDM Vol. 3C, Section 27.3.1: flat segments, CS.L = 1, a busy TSS,
/// LDTR unusable, VMCS link pointer all ones).
pub fn guest_preset(rip: u64, rsp: u64) -> Result<(), VmcsError> {
    // SAFETY: a VMX instruction failure is an outcome; #UD outside VMX operation is reported.
    let v = &mut unsafe { Vmx::new() };
    let (cr0, cr3, cr4) = (read_cr0(), read_cr3(), read_cr4());
    let (gdt_base, gdt_limit) = descriptor_table(false);
    let (idt_base, idt_limit) = descriptor_table(true);
    let tss = gdt::tss_base();
    VmcsHostNW::Cr0.write(v, cr0)?;
    VmcsHostNW::Cr3.write(v, cr3)?;
    VmcsHostNW::Cr4.write(v, cr4)?;
    VmcsHost16::CsSelector.write(v, gdt::CODE64)?;
    for selector in [
        VmcsHost16::SsSelector,
        VmcsHost16::DsSelector,
        VmcsHost16::EsSelector,
    ] {
        selector.write(v, gdt::DATA)?;
    }
    VmcsHost16::FsSelector.write(v, 0)?;
    VmcsHost16::GsSelector.write(v, 0)?;
    VmcsHost16::TrSelector.write(v, gdt::TSS)?;
    VmcsHostNW::FsBase.write(v, 0)?;
    VmcsHostNW::GsBase.write(v, 0)?;
    VmcsHostNW::TrBase.write(v, tss)?;
    VmcsHostNW::GdtrBase.write(v, gdt_base)?;
    VmcsHostNW::IdtrBase.write(v, idt_base)?;
    VmcsHost32::SysenterCs.write(v, 0)?;
    VmcsHostNW::SysenterEsp.write(v, 0)?;
    VmcsHostNW::SysenterEip.write(v, 0)?;
    VmcsHostNW::Rip.write(v, oracle_vm_exit as *const () as u64)?;

    VmcsGuestNW::Cr0.write(v, cr0)?;
    VmcsGuestNW::Cr3.write(v, cr3)?;
    VmcsGuestNW::Cr4.write(v, cr4)?;
    VmcsGuestNW::Dr7.write(v, 0x400)?;
    VmcsGuestNW::Rip.write(v, rip)?;
    VmcsGuestNW::Rsp.write(v, rsp)?;
    VmcsGuestNW::Rflags.write(v, 0x2)?;
    VmcsGuest16::CsSelector.write(v, gdt::CODE64)?;
    VmcsGuest32::CsAccessRights.write(v, 0xA09B)?;
    let data = [
        (
            VmcsGuest16::SsSelector,
            VmcsGuest32::SsAccessRights,
            VmcsGuest32::SsLimit,
        ),
        (
            VmcsGuest16::DsSelector,
            VmcsGuest32::DsAccessRights,
            VmcsGuest32::DsLimit,
        ),
        (
            VmcsGuest16::EsSelector,
            VmcsGuest32::EsAccessRights,
            VmcsGuest32::EsLimit,
        ),
        (
            VmcsGuest16::FsSelector,
            VmcsGuest32::FsAccessRights,
            VmcsGuest32::FsLimit,
        ),
        (
            VmcsGuest16::GsSelector,
            VmcsGuest32::GsAccessRights,
            VmcsGuest32::GsLimit,
        ),
    ];
    for (selector, rights, limit) in data {
        selector.write(v, gdt::DATA)?;
        rights.write(v, 0xC093)?;
        limit.write(v, 0xFFFF_FFFF)?;
    }
    VmcsGuest32::CsLimit.write(v, 0xFFFF_FFFF)?;
    for base in [
        VmcsGuestNW::CsBase,
        VmcsGuestNW::SsBase,
        VmcsGuestNW::DsBase,
        VmcsGuestNW::EsBase,
        VmcsGuestNW::FsBase,
        VmcsGuestNW::GsBase,
        VmcsGuestNW::LdtrBase,
    ] {
        base.write(v, 0)?;
    }
    VmcsGuest16::LdtrSelector.write(v, 0)?;
    VmcsGuest32::LdtrAccessRights.write(v, 0x1_0000)?;
    VmcsGuest16::TrSelector.write(v, gdt::TSS)?;
    VmcsGuest32::TrAccessRights.write(v, 0x8B)?;
    VmcsGuest32::TrLimit.write(v, 103)?;
    VmcsGuestNW::TrBase.write(v, tss)?;
    VmcsGuestNW::GdtrBase.write(v, gdt_base)?;
    VmcsGuest32::GdtrLimit.write(v, u32::from(gdt_limit))?;
    VmcsGuestNW::IdtrBase.write(v, idt_base)?;
    VmcsGuest32::IdtrLimit.write(v, u32::from(idt_limit))?;
    VmcsGuest32::InterruptibilityState.write(v, 0)?;
    VmcsGuest32::ActivityState.write(v, 0)?;
    VmcsGuestNW::PendingDebugExceptions.write(v, 0)?;
    VmcsGuest64::VmcsLinkPointer.write(v, u64::MAX)?;
    VmcsGuest64::Debugctl.write(v, 0)?;
    Ok(())
}

/// Copies `bytes` to `address` if the range lies inside guest memory.
pub fn write_memory(address: u64, bytes: &[u8]) -> bool {
    let end = address.saturating_add(bytes.len() as u64);
    if address < GUEST_MEMORY.start || end > GUEST_MEMORY.end {
        return false;
    }
    for (i, b) in bytes.iter().enumerate() {
        // SAFETY: inside guest memory, identity-mapped RAM the stub itself never uses.
        unsafe { ((address + i as u64) as *mut u8).write_volatile(*b) }
    }
    true
}
