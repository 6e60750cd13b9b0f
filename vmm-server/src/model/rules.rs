//! The seL4 kernel's rules for the x86 VCPU object: which VMCS fields user level may read and
//! write, and which control bits the kernel forces (seL4 `src/arch/x86/object/vcpu.c`,
//! functions `decodeReadVMCS`, `decodeWriteVMCS`, `vcpu_init`; 5.0.0 tree and modern master;
//! summarised in `notes/sel4-vcpu-api.md`).

/// Which kernel's rules to follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum KernelRules {
    /// seL4 5.0.0 (`"sel4-v5"` in scripts): no entry controls (read or write), no entry exception error code, no
    /// secondary-controls reads; CR0.PE and CR0.PG always forced; no 64-bit guests.
    #[cfg_attr(feature = "serde", serde(rename = "sel4-v5"))]
    Sel4V5,
    /// seL4 after 16.0.0 (`"modern"` in scripts): entry controls and the entry error code accessible; PE/PG optional
    /// with unrestricted guest; R8–R15 in the register set.
    #[cfg_attr(feature = "serde", serde(rename = "modern"))]
    Modern,
}

/// Fields both readable and writable under both rule sets.
const READ_WRITE: &[u32] = &[
    0x681E, 0x681C, // RIP, RSP
    0x0800, 0x0802, 0x0804, 0x0806, 0x0808, 0x080A, 0x080C, 0x080E, // selectors
    0x2802, 0x2804, 0x2806, 0x2808, // DEBUGCTL, PAT, EFER, PERF_GLOBAL_CTRL
    0x280A, 0x280C, 0x280E, 0x2810, // PDPTE0-3
    0x4800, 0x4802, 0x4804, 0x4806, 0x4808, 0x480A, 0x480C, 0x480E, 0x4810, 0x4812, // limits
    0x4814, 0x4816, 0x4818, 0x481A, 0x481C, 0x481E, 0x4820, 0x4822, // access rights
    0x4824, 0x4826, 0x4828, 0x482A, 0x482E, // interruptibility, activity, SMBASE, SYSENTER_CS, timer
    0x6806, 0x6808, 0x680A, 0x680C, 0x680E, 0x6810, 0x6812, 0x6814, 0x6816, 0x6818, // bases
    0x681A, 0x6820, 0x6822, 0x6824, 0x6826, // DR7, RFLAGS, pending debug, SYSENTER_ESP/EIP
    0x6800, 0x6802, 0x6804, // CR0, CR3, CR4
    0x6000, 0x6002, 0x6004, 0x6006, // CR0/CR4 guest/host mask and read shadow
    0x4004, // exception bitmap
    0x4016, // VM-entry interruption information
    0x4000, 0x4002, 0x400C, // pin-based, primary, exit controls
];

/// Exit-information fields user level may read but not write.
const READ_ONLY: &[u32] = &[
    0x4400, 0x4404, 0x4406, 0x4408, 0x440A, 0x440C, 0x440E, // instruction error .. instruction info
    0x2400, // guest-physical address
    0x6402, 0x6404, 0x6406, 0x6408, 0x640A, // I/O RCX/RSI/RDI/RIP, guest-linear address
];

/// The secondary controls: writable under both rule sets, readable only on modern kernels.
pub const SECONDARY_CONTROLS: u32 = 0x401E;
/// The entry controls: modern kernels only.
pub const ENTRY_CONTROLS: u32 = 0x4012;
/// The entry exception error code: write-only, modern kernels only.
pub const ENTRY_ERROR_CODE: u32 = 0x4018;

impl KernelRules {
    /// Whether `ReadVMCS` of `field` succeeds (else `seL4_IllegalOperation`).
    pub fn readable(self, field: u32) -> bool {
        READ_WRITE.contains(&field)
            || READ_ONLY.contains(&field)
            || (self == Self::Modern && matches!(field, SECONDARY_CONTROLS | ENTRY_CONTROLS))
    }

    /// Whether `WriteVMCS` of `field` succeeds (else `seL4_IllegalOperation`).
    pub fn writable(self, field: u32) -> bool {
        READ_WRITE.contains(&field)
            || field == SECONDARY_CONTROLS
            || (self == Self::Modern && matches!(field, ENTRY_CONTROLS | ENTRY_ERROR_CODE))
    }

    /// Whether `WriteRegisters` and the fault message carry R8–R15.
    pub fn has_64_bit_guests(self) -> bool {
        self == Self::Modern
    }

    /// Whether the kernel forces CR0.PE and CR0.PG whatever the unrestricted-guest control says.
    pub fn forces_protected_paging(self) -> bool {
        self == Self::Sel4V5
    }
}

/// Bits the kernel sets in the pin-based controls on top of the capability masking:
/// external-interrupt exiting (0), NMI exiting (3), virtual NMIs (5).
pub const FORCED_PIN: u32 = (1 << 0) | (1 << 3) | (1 << 5);
/// Primary controls: use I/O bitmaps (25), use MSR bitmaps (28), activate secondary (31).
pub const FORCED_PRIMARY: u32 = (1 << 25) | (1 << 28) | (1 << 31);
/// Secondary controls, where supported: enable EPT (1), enable VPID (5).
pub const FORCED_SECONDARY: u32 = (1 << 1) | (1 << 5);
/// Primary exit controls: save debug controls (2), host address-space size (9, 64-bit host),
/// save/load IA32_PAT and IA32_EFER (18–21), and where supported load
/// IA32_PERF_GLOBAL_CTRL (12) and acknowledge interrupt on exit (15).
pub const FORCED_EXIT: u32 = (1 << 2) | (1 << 9) | (0xF << 18) | (1 << 12) | (1 << 15);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_oh_hides_what_modern_kernels_expose() {
        assert!(!KernelRules::Sel4V5.readable(ENTRY_CONTROLS));
        assert!(!KernelRules::Sel4V5.writable(ENTRY_CONTROLS));
        assert!(!KernelRules::Sel4V5.readable(SECONDARY_CONTROLS));
        assert!(KernelRules::Sel4V5.writable(SECONDARY_CONTROLS));
        assert!(!KernelRules::Sel4V5.writable(ENTRY_ERROR_CODE));
        assert!(KernelRules::Modern.readable(ENTRY_CONTROLS));
        assert!(KernelRules::Modern.writable(ENTRY_ERROR_CODE));
        assert!(!KernelRules::Modern.readable(ENTRY_ERROR_CODE), "write-only");
    }

    #[test]
    fn exit_reason_and_qualification_only_come_in_the_fault_message() {
        for rules in [KernelRules::Sel4V5, KernelRules::Modern] {
            for field in [0x4402, 0x6400, 0x0000, 0x201A, 0x2010, 0x401A, 0x6C16] {
                assert!(!rules.readable(field), "{field:#x}");
                assert!(!rules.writable(field), "{field:#x}");
            }
            assert!(rules.readable(0x4408) && !rules.writable(0x4408));
        }
    }

    #[test]
    fn every_listed_field_is_in_the_catalogue() {
        for &f in READ_WRITE.iter().chain(READ_ONLY) {
            assert!(vmcs::Field::from_encoding(f).is_some(), "{f:#x}");
        }
    }

    #[test]
    fn forced_bits_reproduce_what_the_5_0_kernel_wrote_in_bochs() {
        // sel4-5.0-vtx-guest.md: primary 0x80 asked -> 0x960061F2 with TRUE allowed-0 0x04006172
        // (the model also applies allowed-1; here all of these are allowed).
        assert_eq!(0x80 | 0x0400_6172 | FORCED_PRIMARY, 0x9600_61F2);
        assert_eq!(0x16 | FORCED_PIN, 0x3F);
        assert_eq!(0x36DFB | FORCED_EXIT, 0x3F_FFFF);
    }
}
