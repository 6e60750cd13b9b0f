//! VMX operation: entering it, the VMCS regions, VMCLEAR/VMPTRLD/VMPTRST, and VMREAD/VMWRITE
//! through the `vmcs` crate's `vmx` backend.

use core::cell::UnsafeCell;

use oracle_proto::{FieldOp, FieldOutcome, MAX_FIELD_OPS, Region, Response};
use vmcs::vmx::Vmx;
use vmcs::{VmInstructionError, VmcsAccess, VmcsError};

/// How many VMCS regions the stub owns.
pub const VMCS_REGIONS: u8 = 4;

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
