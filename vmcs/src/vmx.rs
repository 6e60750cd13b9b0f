//! `vmx`: VMREAD and VMWRITE on the current VMCS (feature `vmx`).
//!
//! Only code running in VMX root operation with a current VMCS may use this backend; host
//! tests never execute it. On 32-bit x86 a 64-bit field is accessed as two halves, FULL then
//! HIGH (SDM Vol. 3C, Section 25.11.2: "in 32-bit mode ... the high 32 bits are accessed with
//! the HIGH encoding").
//!
//! Outcomes follow the VMX instruction conventions (SDM Vol. 3C, Section 31.2): CF = 1 is
//! VMfailInvalid (no current VMCS), ZF = 1 is VMfailValid, with the error number in the
//! VM-instruction error field (encoding 0x4400), which this backend then reads.

use crate::access::{VmInstructionError, VmcsAccess, VmcsError};

/// VM-instruction error field (SDM Vol. 3D, Table B-9).
const VM_INSTRUCTION_ERROR: u32 = 0x4400;

/// The current VMCS of this logical processor, accessed with the VMX instructions.
#[derive(Debug)]
pub struct Vmx {
    // Not constructible outside `new`: holding one asserts VMX root operation.
    _private: (),
}

impl Vmx {
    /// A handle on the current VMCS.
    ///
    /// # Safety
    /// The caller must be in VMX root operation (after a successful VMXON) on this logical
    /// processor; otherwise VMREAD/VMWRITE raise #UD. A current VMCS is not required: without
    /// one, accesses fail with [`VmcsError::VmFailInvalid`].
    pub const unsafe fn new() -> Self {
        Self { _private: () }
    }

    /// Turns the flags of a VMX instruction into an outcome.
    fn outcome(&mut self, carry: u8, zero: u8) -> Result<(), VmcsError> {
        if carry != 0 {
            Err(VmcsError::VmFailInvalid)
        } else if zero != 0 {
            let (number, _, _) = self.raw_read(VM_INSTRUCTION_ERROR);
            let number = number as u32;
            Err(VmcsError::VmFailValid(VmInstructionError::from_number(number)))
        } else {
            Ok(())
        }
    }

    /// One VMREAD of the natural operand size; returns (value, CF, ZF).
    #[cfg(target_arch = "x86_64")]
    fn raw_read(&mut self, encoding: u32) -> (u64, u8, u8) {
        let value: u64;
        let (carry, zero): (u8, u8);
        // SAFETY: `Vmx::new`'s contract puts us in VMX root operation, where VMREAD is defined
        // for any encoding (failures are reported in RFLAGS, which we capture). It touches no
        // memory: both operands are registers.
        unsafe {
            core::arch::asm!(
                "vmread {value}, {encoding}",
                "setc {carry}",
                "setz {zero}",
                encoding = in(reg) u64::from(encoding),
                value = out(reg) value,
                carry = out(reg_byte) carry,
                zero = out(reg_byte) zero,
                options(nostack, nomem),
            );
        }
        (value, carry, zero)
    }

    /// One VMWRITE of the natural operand size; returns (CF, ZF).
    #[cfg(target_arch = "x86_64")]
    fn raw_write(&mut self, encoding: u32, value: u64) -> (u8, u8) {
        let (carry, zero): (u8, u8);
        // SAFETY: as in `raw_read`; VMWRITE changes only the current VMCS, which is not Rust
        // memory.
        unsafe {
            core::arch::asm!(
                "vmwrite {encoding}, {value}",
                "setc {carry}",
                "setz {zero}",
                encoding = in(reg) u64::from(encoding),
                value = in(reg) value,
                carry = out(reg_byte) carry,
                zero = out(reg_byte) zero,
                options(nostack, nomem),
            );
        }
        (carry, zero)
    }

    /// One VMREAD of the natural operand size; returns (value, CF, ZF).
    #[cfg(target_arch = "x86")]
    fn raw_read(&mut self, encoding: u32) -> (u64, u8, u8) {
        let value: u32;
        let (carry, zero): (u8, u8);
        // SAFETY: see the x86_64 version.
        unsafe {
            core::arch::asm!(
                "vmread {value}, {encoding}",
                "setc {carry}",
                "setz {zero}",
                encoding = in(reg) encoding,
                value = out(reg) value,
                carry = out(reg_byte) carry,
                zero = out(reg_byte) zero,
                options(nostack, nomem),
            );
        }
        (u64::from(value), carry, zero)
    }

    /// One VMWRITE of the natural operand size; returns (CF, ZF).
    #[cfg(target_arch = "x86")]
    fn raw_write(&mut self, encoding: u32, value: u64) -> (u8, u8) {
        let (carry, zero): (u8, u8);
        // SAFETY: see the x86_64 version.
        unsafe {
            core::arch::asm!(
                "vmwrite {encoding}, {value}",
                "setc {carry}",
                "setz {zero}",
                encoding = in(reg) encoding,
                value = in(reg) value as u32,
                carry = out(reg_byte) carry,
                zero = out(reg_byte) zero,
                options(nostack, nomem),
            );
        }
        (carry, zero)
    }

    fn read_once(&mut self, encoding: u32) -> Result<u64, VmcsError> {
        let (value, carry, zero) = self.raw_read(encoding);
        self.outcome(carry, zero).map(|()| value)
    }

    fn write_once(&mut self, encoding: u32, value: u64) -> Result<(), VmcsError> {
        let (carry, zero) = self.raw_write(encoding, value);
        self.outcome(carry, zero)
    }
}

impl VmcsAccess for Vmx {
    #[cfg(target_arch = "x86_64")]
    fn read(&mut self, encoding: u32) -> Result<u64, VmcsError> {
        self.read_once(encoding)
    }

    #[cfg(target_arch = "x86_64")]
    fn write(&mut self, encoding: u32, value: u64) -> Result<(), VmcsError> {
        self.write_once(encoding, value)
    }

    #[cfg(target_arch = "x86")]
    fn read(&mut self, encoding: u32) -> Result<u64, VmcsError> {
        crate::halves::read_in_halves(encoding, |e| self.read_once(e).map(|v| v as u32))
    }

    #[cfg(target_arch = "x86")]
    fn write(&mut self, encoding: u32, value: u64) -> Result<(), VmcsError> {
        crate::halves::write_in_halves(encoding, value, |e, v| self.write_once(e, u64::from(v)))
    }
}
