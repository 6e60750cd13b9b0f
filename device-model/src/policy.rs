//! CPUID and MSR policies: what the guest sees when the processor asks the VMM.

/// One configured CPUID result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuidEntry {
    /// EAX input.
    pub leaf: u32,
    /// ECX input, or `None` if the leaf ignores ECX.
    pub subleaf: Option<u32>,
    /// Results: EAX, EBX, ECX, EDX.
    pub result: [u32; 4],
}

/// CPUID answers from a fixed table. Leaves not in the table return zeros (documented
/// behaviour of this model; a real processor returns the highest basic leaf's data for
/// out-of-range basic leaves, SDM Vol. 2A, CPUID).
#[derive(Clone, Debug, Default)]
pub struct CpuidPolicy<const N: usize = 16> {
    entries: heapless::Vec<CpuidEntry, N>,
}

impl<const N: usize> CpuidPolicy<N> {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            entries: heapless::Vec::new(),
        }
    }

    /// Adds an entry; `Err` returns it when the table is full.
    ///
    /// # Errors
    /// The entry back, when the table is full.
    pub fn insert(&mut self, entry: CpuidEntry) -> Result<(), CpuidEntry> {
        self.entries.push(entry)
    }

    /// The answer to CPUID with EAX = `leaf`, ECX = `subleaf`.
    pub fn lookup(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        self.entries
            .iter()
            .find(|e| e.leaf == leaf && e.subleaf.is_none_or(|s| s == subleaf))
            .map_or([0; 4], |e| e.result)
    }
}

/// One MSR the guest may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsrEntry {
    /// MSR index (ECX).
    pub index: u32,
    /// Current value.
    pub value: u64,
    /// Whether WRMSR may change it (else a write raises #GP).
    pub writable: bool,
}

/// What an RDMSR or WRMSR does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrOutcome {
    /// RDMSR: this value goes to EDX:EAX.
    Value(u64),
    /// WRMSR took effect.
    Written,
    /// #GP(0) for the guest: unknown MSR, or a write to a read-only one.
    GeneralProtection,
}

/// MSRs from a table; unknown MSRs raise #GP (SDM Vol. 2B, RDMSR/WRMSR: "#GP(0) if ECX
/// specifies a reserved or unimplemented MSR address").
#[derive(Clone, Debug, Default)]
pub struct MsrPolicy<const N: usize = 16> {
    entries: heapless::Vec<MsrEntry, N>,
}

impl<const N: usize> MsrPolicy<N> {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            entries: heapless::Vec::new(),
        }
    }

    /// Adds an MSR.
    ///
    /// # Errors
    /// The entry back, when the table is full.
    pub fn insert(&mut self, entry: MsrEntry) -> Result<(), MsrEntry> {
        self.entries.push(entry)
    }

    /// The MSRs' current values, in table order (for snapshots).
    pub fn values(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.iter().map(|e| e.value)
    }

    /// Sets the MSRs' values in table order (restoring a snapshot); extra values are ignored.
    pub fn set_values(&mut self, values: &[u64]) {
        for (entry, &value) in self.entries.iter_mut().zip(values) {
            entry.value = value;
        }
    }

    /// RDMSR of `index`.
    pub fn read(&self, index: u32) -> MsrOutcome {
        self.entries
            .iter()
            .find(|e| e.index == index)
            .map_or(MsrOutcome::GeneralProtection, |e| MsrOutcome::Value(e.value))
    }

    /// WRMSR of `value` to `index`.
    pub fn write(&mut self, index: u32, value: u64) -> MsrOutcome {
        match self.entries.iter_mut().find(|e| e.index == index) {
            Some(entry) if entry.writable => {
                entry.value = value;
                MsrOutcome::Written
            }
            _ => MsrOutcome::GeneralProtection,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuid_matches_leaf_and_subleaf() {
        let mut cpuid: CpuidPolicy<4> = CpuidPolicy::new();
        cpuid
            .insert(CpuidEntry {
                leaf: 0,
                subleaf: None,
                result: [1, 0x756E_6547, 0x6C65_746E, 0x4965_6E69],
            })
            .unwrap();
        cpuid
            .insert(CpuidEntry {
                leaf: 7,
                subleaf: Some(0),
                result: [0, 1, 2, 3],
            })
            .unwrap();
        assert_eq!(cpuid.lookup(0, 99)[1], 0x756E_6547);
        assert_eq!(cpuid.lookup(7, 0), [0, 1, 2, 3]);
        assert_eq!(cpuid.lookup(7, 1), [0; 4]);
        assert_eq!(cpuid.lookup(0x8000_0000, 0), [0; 4]);
    }

    #[test]
    fn msrs_known_unknown_and_read_only() {
        let mut msrs: MsrPolicy<4> = MsrPolicy::new();
        msrs.insert(MsrEntry {
            index: 0x1B,
            value: 0xFEE0_0900,
            writable: false,
        })
        .unwrap();
        msrs.insert(MsrEntry {
            index: 0xC000_0080,
            value: 0,
            writable: true,
        })
        .unwrap();
        assert_eq!(msrs.read(0x1B), MsrOutcome::Value(0xFEE0_0900));
        assert_eq!(msrs.read(0x1234), MsrOutcome::GeneralProtection);
        assert_eq!(msrs.write(0x1B, 0), MsrOutcome::GeneralProtection);
        assert_eq!(msrs.write(0xC000_0080, 0x500), MsrOutcome::Written);
        assert_eq!(msrs.read(0xC000_0080), MsrOutcome::Value(0x500));
        assert_eq!(msrs.write(0x1234, 1), MsrOutcome::GeneralProtection);
    }
}
