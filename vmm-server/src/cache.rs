//! Kernel-mediated VMCS access with a per-exit field cache.
//!
//! Every kernel invocation is a system call, so the server keeps what it knows about the
//! VMCS for the duration of one exit (the approach of seL4's libsel4vm, and the reason NOVA
//! sends state with the exit message):
//! - on an exit, the fields the fault message carries are cached for free: RIP, primary
//!   controls, entry interruption info, exit reason, qualification, instruction length,
//!   RFLAGS, interruptibility, CR3 (and the guest-physical address on EPT exits, the only
//!   ones where it is meaningful);
//! - any other field is read from the kernel once (`ReadVMCS`) and then served from the cache;
//! - writes are kept as dirty and written back once before the next entry (`WriteVMCS`), except
//!   RIP, primary controls and entry interruption info, which travel as `seL4_VMEnter` inputs;
//! - general registers come with the fault message and go back with one `WriteRegisters`
//!   only if changed.
//!
//! [`Mediated`] joins the cache and the kernel and implements [`vmcs::VmcsAccess`], so all of
//! the `vmcs` crate's typed accessors, decoders and injection work through the kernel.

use vmcs::{
    FIELDS, Field, FieldEncoding, VmcsAccess, VmcsControl32, VmcsError, VmcsGuestNW, VmcsReadOnly32,
    VmcsReadOnly64, VmcsReadOnlyNW,
};

use crate::kernel::{EnterInput, FaultMessage, KernelError, VcpuKernel, VcpuRegisters};

/// Kernel invocations made, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InvocationCounts {
    /// `ReadVMCS` calls.
    pub read_vmcs: u64,
    /// `WriteVMCS` calls.
    pub write_vmcs: u64,
    /// `WriteRegisters` calls.
    pub write_registers: u64,
    /// `seL4_VMEnter` calls.
    pub vm_enter: u64,
}

impl InvocationCounts {
    /// All invocations.
    pub fn total(&self) -> u64 {
        self.read_vmcs + self.write_vmcs + self.write_registers + self.vm_enter
    }

    /// Invocations beyond the one `VMEnter` every exit needs.
    pub fn beyond_enter(&self) -> u64 {
        self.read_vmcs + self.write_vmcs + self.write_registers
    }

    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &InvocationCounts) {
        self.read_vmcs += other.read_vmcs;
        self.write_vmcs += other.write_vmcs;
        self.write_registers += other.write_registers;
        self.vm_enter += other.vm_enter;
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// The slot is meaningful only when this equals the cache's generation.
    generation: u32,
    dirty: bool,
    value: u64,
}

/// Fields whose home is the `seL4_VMEnter` input registers rather than `WriteVMCS`.
const RIP: u32 = VmcsGuestNW::Rip as u32;
const PRIMARY: u32 = VmcsControl32::PrimaryProcBasedControls as u32;
const ENTRY_INFO: u32 = VmcsControl32::EntryInterruptionInfo as u32;

/// The per-exit cache. See the module documentation.
#[derive(Debug)]
pub struct FieldCache {
    slots: [Slot; FIELDS.len()],
    generation: u32,
    /// Positions of dirty slots, in the order they became dirty (each at most once).
    dirty: [u8; FIELDS.len()],
    dirty_len: usize,
    registers: VcpuRegisters,
    registers_dirty: bool,
    enter: EnterInput,
    counts: InvocationCounts,
}

// Positions are stored as `u8`.
const _: () = assert!(FIELDS.len() <= 256);

impl Default for FieldCache {
    fn default() -> Self {
        Self::new()
    }
}

impl FieldCache {
    /// An empty cache (nothing known; the first entry input is all zero).
    pub const fn new() -> Self {
        Self {
            slots: [Slot {
                generation: 0,
                dirty: false,
                value: 0,
            }; FIELDS.len()],
            generation: 1,
            dirty: [0; FIELDS.len()],
            dirty_len: 0,
            registers: VcpuRegisters {
                rax: 0,
                rbx: 0,
                rcx: 0,
                rdx: 0,
                rsi: 0,
                rdi: 0,
                rbp: 0,
                r8: 0,
                r9: 0,
                r10: 0,
                r11: 0,
                r12: 0,
                r13: 0,
                r14: 0,
                r15: 0,
            },
            registers_dirty: false,
            enter: EnterInput {
                rip: 0,
                primary_controls: 0,
                entry_interruption_info: 0,
            },
            counts: InvocationCounts {
                read_vmcs: 0,
                write_vmcs: 0,
                write_registers: 0,
                vm_enter: 0,
            },
        }
    }

    /// Forgets every cached field (dirty ones are dropped: call [`FieldCache::flush`] first).
    pub fn invalidate(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // After 2^32 exits: make sure no old slot can look current.
            self.slots = [Slot::default(); FIELDS.len()];
            self.generation = 1;
        }
        self.dirty_len = 0;
    }

    /// Starts a new exit: forgets the previous exit's fields and takes what the fault
    /// message carries. Resets the per-exit invocation counts (the `VMEnter` that produced
    /// this exit is counted).
    pub fn begin_exit(&mut self, fault: &FaultMessage) {
        self.invalidate();
        self.counts = InvocationCounts {
            vm_enter: 1,
            ..InvocationCounts::default()
        };
        self.enter = EnterInput {
            rip: fault.rip,
            primary_controls: fault.primary_controls,
            entry_interruption_info: fault.entry_interruption_info,
        };
        self.registers = fault.registers;
        self.registers_dirty = false;
        self.fill(VmcsReadOnly32::ExitReason.into(), u64::from(fault.exit_reason));
        self.fill(VmcsReadOnlyNW::ExitQualification.into(), fault.qualification);
        self.fill(
            VmcsReadOnly32::ExitInstructionLength.into(),
            u64::from(fault.instruction_len),
        );
        self.fill(VmcsGuestNW::Rflags.into(), fault.rflags);
        self.fill(
            vmcs::VmcsGuest32::InterruptibilityState.into(),
            u64::from(fault.interruptibility),
        );
        self.fill(VmcsGuestNW::Cr3.into(), fault.cr3);
        // The guest-physical address register is stale on other exits (sel4-5.0-vtx-guest.md).
        if matches!(fault.exit_reason & 0xFFFF, 48 | 49) {
            self.fill(VmcsReadOnly64::GuestPhysicalAddress.into(), fault.guest_physical);
        }
    }

    /// Takes the VCPU's entry state as the server finds it (before the first exit).
    pub fn load_enter_input(&mut self, input: EnterInput) {
        self.enter = input;
    }

    /// Takes the state to re-enter with after a notification interrupted `VMEnter`.
    pub fn resume_after_notification(&mut self, resume: &EnterInput) {
        self.enter = *resume;
    }

    fn fill(&mut self, field: Field, value: u64) {
        self.slots[field.position()] = Slot {
            generation: self.generation,
            dirty: false,
            value,
        };
    }

    /// The cached value of a field, if this exit knows it.
    pub fn cached(&self, field: Field) -> Option<u64> {
        match field.encoding().raw() {
            RIP => Some(self.enter.rip),
            PRIMARY => Some(u64::from(self.enter.primary_controls)),
            ENTRY_INFO => Some(u64::from(self.enter.entry_interruption_info)),
            _ => {
                let slot = &self.slots[field.position()];
                (slot.generation == self.generation).then_some(slot.value)
            }
        }
    }

    /// The general registers (from the fault message, with any changes).
    pub fn registers(&self) -> &VcpuRegisters {
        &self.registers
    }

    /// Changes the general registers; written back once before entry.
    pub fn registers_mut(&mut self) -> &mut VcpuRegisters {
        self.registers_dirty = true;
        &mut self.registers
    }

    /// What the next `VMEnter` will pass.
    pub fn enter_input(&self) -> EnterInput {
        self.enter
    }

    /// Invocations made since the current exit began.
    pub fn counts(&self) -> &InvocationCounts {
        &self.counts
    }

    /// Records a value to be written before entry.
    fn stage(&mut self, field: Field, value: u64) {
        let value = value & field.width().mask();
        match field.encoding().raw() {
            RIP => self.enter.rip = value,
            PRIMARY => self.enter.primary_controls = value as u32,
            ENTRY_INFO => self.enter.entry_interruption_info = value as u32,
            _ => {
                let position = field.position();
                let slot = &mut self.slots[position];
                let was_dirty = slot.generation == self.generation && slot.dirty;
                *slot = Slot {
                    generation: self.generation,
                    dirty: true,
                    value,
                };
                if !was_dirty {
                    self.dirty[self.dirty_len] = position as u8;
                    self.dirty_len += 1;
                }
            }
        }
    }

    fn remove_dirty(&mut self, position: usize) {
        if let Some(i) = self.dirty[..self.dirty_len]
            .iter()
            .position(|&p| usize::from(p) == position)
        {
            self.dirty.copy_within(i + 1..self.dirty_len, i);
            self.dirty_len -= 1;
        }
    }

    /// Writes every dirty field and, if changed, the registers; returns the `VMEnter` input.
    /// Call before entering; then count the entry with [`FieldCache::count_enter`].
    ///
    /// # Errors
    /// The first kernel refusal; the fields written before it stay written, the rest stay dirty.
    pub fn flush<K: VcpuKernel + ?Sized>(
        &mut self,
        kernel: &mut K,
    ) -> Result<EnterInput, (Field, KernelError)> {
        let mut done = 0;
        while done < self.dirty_len {
            let position = usize::from(self.dirty[done]);
            let row = &FIELDS[position];
            let value = self.slots[position].value;
            self.counts.write_vmcs += 1;
            match kernel.write_vmcs(row.encoding.raw(), value) {
                Ok(written) => {
                    self.slots[position] = Slot {
                        generation: self.generation,
                        dirty: false,
                        value: written,
                    }
                }
                Err(e) => {
                    self.dirty.copy_within(done..self.dirty_len, 0);
                    self.dirty_len -= done;
                    return Err((row.field, e));
                }
            }
            done += 1;
        }
        self.dirty_len = 0;
        if self.registers_dirty {
            self.counts.write_registers += 1;
            // A register failure is reported against guest RIP's neighbour: there is no field.
            kernel
                .write_registers(&self.registers)
                .map_err(|e| (VmcsGuestNW::Rsp.into(), e))?;
            self.registers_dirty = false;
        }
        Ok(self.enter)
    }

    /// Starts counting invocations afresh (after they were attributed to an exit).
    pub fn reset_counts(&mut self) {
        self.counts = InvocationCounts::default();
    }

    /// Counts a `VMEnter` made outside an exit (the first entry, or after a notification).
    pub fn count_enter(&mut self) {
        self.counts.vm_enter += 1;
    }

    /// Whether anything waits to be written back.
    pub fn is_dirty(&self) -> bool {
        self.dirty_len > 0 || self.registers_dirty
    }

    /// A [`VmcsAccess`] view through `kernel`.
    pub fn mediated<'a, K: VcpuKernel + ?Sized>(&'a mut self, kernel: &'a mut K) -> Mediated<'a, K> {
        Mediated { cache: self, kernel }
    }
}

/// The cache and the kernel together: VMCS access as the `vmcs` crate expects it, with
/// every kernel invocation counted. Writes are deferred until [`FieldCache::flush`]; use
/// [`Mediated::write_through`] to learn the value the kernel really wrote.
#[derive(Debug)]
pub struct Mediated<'a, K: VcpuKernel + ?Sized> {
    cache: &'a mut FieldCache,
    kernel: &'a mut K,
}

fn unsupported() -> VmcsError {
    VmcsError::VmFailValid(vmcs::VmInstructionError::UnsupportedComponent)
}

/// The catalogue field an encoding addresses, and whether it addresses the upper half.
fn resolve(encoding: u32) -> Result<(Field, bool), VmcsError> {
    let encoding = FieldEncoding::new(encoding).ok_or_else(unsupported)?;
    let field = Field::from_encoding(encoding.full().raw()).ok_or_else(unsupported)?;
    Ok((field, encoding.access_type() == vmcs::AccessType::High))
}

impl<K: VcpuKernel + ?Sized> Mediated<'_, K> {
    fn read_cached(&mut self, field: Field) -> Result<u64, VmcsError> {
        if let Some(value) = self.cache.cached(field) {
            return Ok(value);
        }
        self.cache.counts.read_vmcs += 1;
        let value = self
            .kernel
            .read_vmcs(field.encoding().raw())
            .map_err(|e| VmcsError::Kernel(e.number()))?;
        let value = value & field.width().mask();
        self.cache.fill(field, value);
        Ok(value)
    }

    /// Writes a field now and returns what the kernel actually wrote (it may force or mask
    /// bits). The value is cached as clean. For RIP, primary controls and entry info, which
    /// are `VMEnter` inputs, the kernel is still told now so that the answer is its own.
    ///
    /// # Errors
    /// The kernel's refusal, as [`VmcsError::Kernel`], or error 12 for an encoding the
    /// catalogue does not define.
    pub fn write_through(&mut self, encoding: u32, value: u64) -> Result<u64, VmcsError> {
        let (field, high) = resolve(encoding)?;
        let value = if high {
            let current = self.read_cached(field)?;
            (current & 0xFFFF_FFFF) | (value << 32)
        } else {
            value & field.width().mask()
        };
        self.cache.counts.write_vmcs += 1;
        let written = self
            .kernel
            .write_vmcs(field.encoding().raw(), value)
            .map_err(|e| VmcsError::Kernel(e.number()))?;
        if matches!(field.encoding().raw(), RIP | PRIMARY | ENTRY_INFO) {
            self.cache.stage(field, written);
        } else {
            // Clean now: the kernel holds exactly this value.
            self.cache.fill(field, written);
            self.cache.remove_dirty(field.position());
        }
        Ok(if high { written >> 32 } else { written })
    }

    /// The cache behind this view.
    pub fn cache(&mut self) -> &mut FieldCache {
        self.cache
    }
}

impl<K: VcpuKernel + ?Sized> VmcsAccess for Mediated<'_, K> {
    fn read(&mut self, encoding: u32) -> Result<u64, VmcsError> {
        let (field, high) = resolve(encoding)?;
        let value = self.read_cached(field)?;
        Ok(if high { value >> 32 } else { value })
    }

    fn write(&mut self, encoding: u32, value: u64) -> Result<(), VmcsError> {
        let (field, high) = resolve(encoding)?;
        let value = if high {
            let current = self.read_cached(field)?;
            (current & 0xFFFF_FFFF) | (value << 32)
        } else {
            value
        };
        self.cache.stage(field, value);
        Ok(())
    }

    /// The typed path: the field is known, no encoding to resolve.
    #[inline]
    fn read_field(&mut self, field: Field) -> Result<u64, VmcsError> {
        self.read_cached(field)
    }

    #[inline]
    fn write_field(&mut self, field: Field, value: u64) -> Result<(), VmcsError> {
        self.cache.stage(field, value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::EnterOutcome;
    use std::vec::Vec;
    use vmcs::{VmcsGuest32, VmcsGuestNW};

    /// A kernel that records invocations, exposes a few fields and masks writes to RFLAGS
    /// (bit 1 forced on) so that "written" differs from "asked".
    #[derive(Default)]
    struct RecordingKernel {
        log: Vec<(&'static str, u32, u64)>,
    }

    impl VcpuKernel for RecordingKernel {
        fn read_vmcs(&mut self, field: u32) -> Result<u64, KernelError> {
            self.log.push(("read", field, 0));
            match field {
                0x681C => Ok(0x3000),
                0x6800 => Ok(0x8000_0031),
                _ => Err(KernelError::IllegalOperation),
            }
        }
        fn write_vmcs(&mut self, field: u32, value: u64) -> Result<u64, KernelError> {
            self.log.push(("write", field, value));
            match field {
                0x6820 => Ok(value | 2),
                0x4402 => Err(KernelError::IllegalOperation),
                _ => Ok(value),
            }
        }
        fn write_registers(&mut self, r: &VcpuRegisters) -> Result<(), KernelError> {
            self.log.push(("registers", 0, r.rax));
            Ok(())
        }
        fn vm_enter(&mut self, _: &EnterInput) -> Result<EnterOutcome, KernelError> {
            unreachable!("the cache never enters")
        }
    }

    fn out_exit() -> FaultMessage {
        FaultMessage {
            rip: 0x2000,
            primary_controls: 0x9600_61F2,
            exit_reason: 30,
            qualification: 0x03F8_0000,
            instruction_len: 1,
            guest_physical: 0xDEAD_0000,
            rflags: 0x2,
            registers: VcpuRegisters {
                rax: u64::from(b'H'),
                rdx: 0x3F8,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn an_out_exit_needs_no_invocation_beyond_enter() {
        let mut cache = FieldCache::new();
        let mut kernel = RecordingKernel::default();
        cache.begin_exit(&out_exit());
        {
            let mut vmcs = cache.mediated(&mut kernel);
            // What an OUT handler reads: reason, qualification, length, RIP, RFLAGS.
            assert_eq!(VmcsReadOnly32::ExitReason.read(&mut vmcs), Ok(30));
            assert_eq!(VmcsReadOnlyNW::ExitQualification.read(&mut vmcs), Ok(0x03F8_0000));
            assert_eq!(VmcsReadOnly32::ExitInstructionLength.read(&mut vmcs), Ok(1));
            assert_eq!(VmcsGuestNW::Rflags.read(&mut vmcs), Ok(2));
            let rip = VmcsGuestNW::Rip.read(&mut vmcs).unwrap();
            VmcsGuestNW::Rip.write(&mut vmcs, rip + 1).unwrap();
        }
        let input = cache.flush(&mut kernel).unwrap();
        assert_eq!(input.rip, 0x2001);
        assert!(kernel.log.is_empty(), "{:?}", kernel.log);
        assert_eq!(cache.counts().beyond_enter(), 0);
        assert_eq!(cache.counts().vm_enter, 1);
    }

    #[test]
    fn other_fields_are_read_once_and_written_back_once() {
        let mut cache = FieldCache::new();
        let mut kernel = RecordingKernel::default();
        cache.begin_exit(&out_exit());
        {
            let mut vmcs = cache.mediated(&mut kernel);
            assert_eq!(VmcsGuestNW::Rsp.read(&mut vmcs), Ok(0x3000));
            assert_eq!(VmcsGuestNW::Rsp.read(&mut vmcs), Ok(0x3000));
            // By encoding, as a request names fields: the same cached value.
            assert_eq!(vmcs::VmcsAccess::read(&mut vmcs, 0x681C), Ok(0x3000));
            vmcs::VmcsAccess::write(&mut vmcs, 0x6820, 0x200).unwrap();
            VmcsGuestNW::Rflags.write(&mut vmcs, 0x200).unwrap();
            VmcsGuestNW::Rflags.write(&mut vmcs, 0x202).unwrap();
            VmcsGuest32::InterruptibilityState.write(&mut vmcs, 0).unwrap();
        }
        cache.registers_mut().rax = 0x41;
        assert!(cache.is_dirty());
        cache.flush(&mut kernel).unwrap();
        assert_eq!(
            kernel.log,
            [
                ("read", 0x681C, 0),
                ("write", 0x6820, 0x202),
                ("write", 0x4824, 0),
                ("registers", 0, 0x41)
            ]
        );
        // The kernel's answer (bit 1 forced) replaced what we asked.
        assert_eq!(cache.cached(VmcsGuestNW::Rflags.into()), Some(0x202));
        assert_eq!(cache.counts().read_vmcs, 1);
        assert_eq!(cache.counts().write_vmcs, 2);
        assert_eq!(cache.counts().write_registers, 1);
        assert!(!cache.is_dirty());
    }

    #[test]
    fn write_through_reports_the_value_the_kernel_wrote() {
        let mut cache = FieldCache::new();
        let mut kernel = RecordingKernel::default();
        cache.begin_exit(&out_exit());
        let mut vmcs = cache.mediated(&mut kernel);
        VmcsGuestNW::Rflags.write(&mut vmcs, 0x40).unwrap();
        assert_eq!(vmcs.write_through(0x6820, 0x200), Ok(0x202));
        assert!(
            !vmcs.cache().is_dirty(),
            "a written-through field is no longer dirty"
        );
        assert_eq!(vmcs.write_through(0x4402, 1), Err(VmcsError::Kernel(3)));
        assert_eq!(vmcs.write_through(0x7FFF, 1), Err(unsupported()));
    }

    #[test]
    fn a_new_exit_forgets_the_previous_one() {
        let mut cache = FieldCache::new();
        let mut kernel = RecordingKernel::default();
        cache.begin_exit(&out_exit());
        assert_eq!(
            VmcsGuestNW::Rsp.read(&mut cache.mediated(&mut kernel)),
            Ok(0x3000)
        );
        cache.begin_exit(&out_exit());
        assert_eq!(cache.cached(VmcsGuestNW::Rsp.into()), None);
        assert_eq!(
            cache.cached(VmcsReadOnly64::GuestPhysicalAddress.into()),
            None,
            "stale except on EPT exits"
        );
        let ept = FaultMessage {
            exit_reason: 48,
            ..out_exit()
        };
        cache.begin_exit(&ept);
        assert_eq!(
            cache.cached(VmcsReadOnly64::GuestPhysicalAddress.into()),
            Some(0xDEAD_0000)
        );
    }

    #[test]
    fn a_refused_write_back_keeps_the_rest_dirty() {
        let mut cache = FieldCache::new();
        let mut kernel = RecordingKernel::default();
        cache.begin_exit(&out_exit());
        {
            let mut vmcs = cache.mediated(&mut kernel);
            vmcs.write(0x4402, 5).unwrap(); // the kernel will refuse this one
            vmcs.write(0x6820, 0x202).unwrap();
        }
        let err = cache.flush(&mut kernel).unwrap_err();
        assert_eq!(
            err,
            (VmcsReadOnly32::ExitReason.into(), KernelError::IllegalOperation)
        );
        assert!(cache.is_dirty());
    }

    #[test]
    fn high_halves_merge_into_the_full_field() {
        let mut cache = FieldCache::new();
        let mut kernel = RecordingKernel::default();
        cache.begin_exit(&FaultMessage {
            exit_reason: 48,
            guest_physical: 0x1234_5678,
            ..out_exit()
        });
        let mut vmcs = cache.mediated(&mut kernel);
        assert_eq!(vmcs.read(0x2401), Ok(0));
        assert_eq!(vmcs.read(0x2400), Ok(0x1234_5678));
    }
}
