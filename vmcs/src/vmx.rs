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

/// One VMX instruction that takes a 64-bit memory operand holding a physical address
/// (VMXON, VMCLEAR, VMPTRLD); returns (CF, ZF).
macro_rules! pointer_instruction {
    ($name:ident, $mnemonic:literal) => {
        /// # Safety
        /// VMX root operation (or, for VMXON, CR4.VMXE = 1 and the region prepared), and
        /// `physical` names a region the caller owns.
        unsafe fn $name(physical: u64) -> (u8, u8) {
            let (carry, zero): (u8, u8);
            let operand = physical;
            // SAFETY: the caller upholds the contract above; the instruction reads only the
            // 8-byte operand on our stack and reports failure in RFLAGS, which we capture.
            unsafe {
                core::arch::asm!(
                    concat!($mnemonic, " [{operand}]"),
                    "setc {carry}",
                    "setz {zero}",
                    operand = in(reg) &operand,
                    carry = out(reg_byte) carry,
                    zero = out(reg_byte) zero,
                    options(nostack),
                );
            }
            (carry, zero)
        }
    };
}

pointer_instruction!(vmxon_raw, "vmxon");
pointer_instruction!(vmclear_raw, "vmclear");
pointer_instruction!(vmptrld_raw, "vmptrld");

/// A VMCS region the caller owns: 4-KiB aligned physical memory whose first 31 bits hold the
/// VMCS revision identifier (SDM Vol. 3C, Section 25.2). Before its memory is freed or reused,
/// [`VmxRoot::clear`] it: the processor may still hold its data (Section 25.11.1); the types do
/// not enforce this.
#[derive(Debug)]
pub struct VmcsRegion {
    physical: u64,
}

impl VmcsRegion {
    /// A region at `physical`.
    ///
    /// # Safety
    /// `physical` is 4-KiB aligned, at least IA32_VMX_BASIC bits 44:32 bytes long, owned by the
    /// caller for the region's lifetime, and starts with the revision identifier.
    pub const unsafe fn new(physical: u64) -> Self {
        Self { physical }
    }

    /// The region's physical address.
    pub const fn physical(&self) -> u64 {
        self.physical
    }
}

/// VMX root operation on this logical processor: the only way to load a VMCS.
///
/// Type-level tracking of the current VMCS (`reference-gaps.md` item 12): [`VmxRoot::load`]
/// borrows the root and the region mutably for as long as the returned [`CurrentVmcs`] lives,
/// so there is one current VMCS at a time, it cannot be cleared while in use, and VMREAD /
/// VMWRITE are reachable only through it:
///
/// ```no_run
/// # fn f(root: &mut vmcs::vmx::VmxRoot, a: &mut vmcs::vmx::VmcsRegion) -> Result<(), vmcs::VmcsError> {
/// use vmcs::VmcsGuestNW;
/// {
///     let mut current = root.load(a)?;
///     VmcsGuestNW::Rip.write(&mut current, 0x1000)?;
/// }
/// root.clear(a)?; // fine: `current` is gone
/// # Ok(()) }
/// ```
///
/// and both mistakes are compile errors:
///
/// ```compile_fail,E0499
/// # fn f(root: &mut vmcs::vmx::VmxRoot, a: &mut vmcs::vmx::VmcsRegion, b: &mut vmcs::vmx::VmcsRegion) {
/// let first = root.load(a).unwrap();
/// let second = root.load(b).unwrap(); // a second current VMCS while the first is in use
/// drop(first);
/// # }
/// ```
///
/// ```compile_fail,E0499
/// # fn f(root: &mut vmcs::vmx::VmxRoot, a: &mut vmcs::vmx::VmcsRegion) {
/// let current = root.load(a).unwrap();
/// root.clear(a).unwrap(); // clearing the VMCS in use
/// drop(current);
/// # }
/// ```
#[derive(Debug)]
pub struct VmxRoot {
    _private: (),
}

/// The current VMCS, loaded by [`VmxRoot::load`].
#[derive(Debug)]
pub struct CurrentVmcs<'a> {
    vmx: Vmx,
    region: &'a mut VmcsRegion,
}

impl VmxRoot {
    /// Enters VMX root operation with VMXON.
    ///
    /// # Safety
    /// CR4.VMXE = 1, CR0/CR4 satisfy the fixed-bit MSRs, IA32_FEATURE_CONTROL allows VMXON,
    /// and `vmxon_region` is a prepared region (revision identifier) owned by the caller for as
    /// long as VMX operation lasts.
    pub unsafe fn enter(vmxon_region: &VmcsRegion) -> Result<Self, VmcsError> {
        // SAFETY: the caller's contract is VMXON's.
        let (carry, zero) = unsafe { vmxon_raw(vmxon_region.physical) };
        if carry != 0 {
            return Err(VmcsError::VmFailInvalid);
        }
        if zero != 0 {
            // VMXON in VMX root operation is the only VMfailValid (error 15).
            return Err(VmcsError::VmFailValid(VmInstructionError::VmxonInRoot));
        }
        Ok(Self { _private: () })
    }

    fn outcome(&mut self, (carry, zero): (u8, u8)) -> Result<(), VmcsError> {
        // SAFETY: holding a `VmxRoot` means VMX root operation.
        let mut vmx = unsafe { Vmx::new() };
        vmx.outcome(carry, zero)
    }

    /// VMCLEAR: makes `region` clear (and not current); its data is written back to memory.
    ///
    /// # Errors
    /// VMfailInvalid / VMfailValid (2: invalid address, 3: the VMXON pointer).
    pub fn clear(&mut self, region: &mut VmcsRegion) -> Result<(), VmcsError> {
        // SAFETY: VMX root operation (we hold `self`); the region is the caller's.
        let flags = unsafe { vmclear_raw(region.physical) };
        self.outcome(flags)
    }

    /// VMPTRLD: makes `region` the current VMCS for as long as the result lives.
    ///
    /// # Errors
    /// VMfailInvalid / VMfailValid (9: invalid address, 10: the VMXON pointer, 11: wrong
    /// revision identifier).
    pub fn load<'a>(&'a mut self, region: &'a mut VmcsRegion) -> Result<CurrentVmcs<'a>, VmcsError> {
        // SAFETY: VMX root operation (we hold `self`); the region is the caller's.
        let flags = unsafe { vmptrld_raw(region.physical) };
        self.outcome(flags)?;
        // SAFETY: VMX root operation with `region` current.
        let vmx = unsafe { Vmx::new() };
        Ok(CurrentVmcs { vmx, region })
    }
}

impl CurrentVmcs<'_> {
    /// The current region's physical address.
    pub fn physical(&self) -> u64 {
        self.region.physical
    }
}

impl VmcsAccess for CurrentVmcs<'_> {
    fn read(&mut self, encoding: u32) -> Result<u64, VmcsError> {
        self.vmx.read(encoding)
    }

    fn write(&mut self, encoding: u32, value: u64) -> Result<(), VmcsError> {
        self.vmx.write(encoding, value)
    }
}
