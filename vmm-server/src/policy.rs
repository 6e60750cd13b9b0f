//! The badge policy: what each client of the VMM server may do.
//!
//! On seL4 the root task mints one badged endpoint capability per client; the badge arrives
//! with every message and cannot be forged. The server looks the badge up here and refuses
//! (with `Forbidden`, counted) anything the badge's [`Rights`] do not cover. A badge that is
//! not in the policy has no rights at all.

use vmcs::{FIELDS, Field, FieldType, VmcsControl32, VmcsGuest32, VmcsGuestNW};

bitflags::bitflags! {
    /// Requests a client may make.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct RequestRights: u16 {
        /// `Hello` (version handshake).
        const HELLO = 1 << 0;
        /// `ReadFields` (each field also checked against [`Rights::read`]).
        const READ_FIELDS = 1 << 1;
        /// `WriteFields` (each field also checked against [`Rights::write`]).
        const WRITE_FIELDS = 1 << 2;
        /// `SetControl`.
        const SET_CONTROL = 1 << 3;
        /// `Inject`, and the inject / interrupt-window exit actions.
        const INJECT = 1 << 4;
        /// `ReadRegisters`.
        const READ_REGISTERS = 1 << 5;
        /// `WriteRegisters`, and setting general registers in exit actions.
        const WRITE_REGISTERS = 1 << 6;
        /// `RaiseInterrupt` (asynchronous interrupt requests).
        const RAISE_INTERRUPT = 1 << 7;
        /// `Run` and `Pause`.
        const RUN_CONTROL = 1 << 8;
        /// `Statistics`.
        const STATISTICS = 1 << 9;
        /// `Dump`.
        const DUMP = 1 << 10;
        /// Answering exit records (completing I/O, advancing RIP, stopping the guest).
        const ANSWER_EXITS = 1 << 11;
    }
}

/// A set of catalogue fields, one bit per row of [`FIELDS`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSet([u64; 4]);

const _: () = assert!(FIELDS.len() <= 256);

impl core::fmt::Debug for FieldSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set()
            .entries(
                FIELDS
                    .iter()
                    .filter(|r| self.contains_field(r.field))
                    .map(|r| r.ident),
            )
            .finish()
    }
}

impl FieldSet {
    /// No field.
    pub const EMPTY: Self = Self([0; 4]);

    /// Every catalogue field.
    pub fn all() -> Self {
        Self::matching(|_| true)
    }

    /// The fields for which `keep` is true.
    pub fn matching(keep: impl Fn(Field) -> bool) -> Self {
        let mut set = Self::EMPTY;
        for row in FIELDS {
            if keep(row.field) {
                set.insert(row.field);
            }
        }
        set
    }

    /// The fields with these FULL encodings (unknown encodings are ignored).
    pub fn of(encodings: &[u32]) -> Self {
        let mut set = Self::EMPTY;
        for &raw in encodings {
            if let Some(field) = Field::from_encoding(raw) {
                set.insert(field);
            }
        }
        set
    }

    /// Adds a field.
    pub fn insert(&mut self, field: Field) {
        let p = field.position();
        self.0[p / 64] |= 1 << (p % 64);
    }

    /// Both sets together.
    pub fn union(self, other: Self) -> Self {
        Self([
            self.0[0] | other.0[0],
            self.0[1] | other.0[1],
            self.0[2] | other.0[2],
            self.0[3] | other.0[3],
        ])
    }

    /// Whether the set holds `field`.
    pub fn contains_field(&self, field: Field) -> bool {
        let p = field.position();
        self.0[p / 64] & (1 << (p % 64)) != 0
    }

    /// Whether the set holds the field an encoding (FULL or HIGH) names; `false` for
    /// encodings the catalogue does not define.
    pub fn contains(&self, encoding: u32) -> bool {
        Field::from_any_encoding(encoding).is_some_and(|(field, _)| self.contains_field(field))
    }
}

/// What one badge may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rights {
    /// Requests allowed.
    pub requests: RequestRights,
    /// Fields it may read.
    pub read: FieldSet,
    /// Fields it may write.
    pub write: FieldSet,
}

impl Rights {
    /// Nothing at all.
    pub const NONE: Self = Self {
        requests: RequestRights::empty(),
        read: FieldSet::EMPTY,
        write: FieldSet::EMPTY,
    };

    /// The device model: read guest state and exit information; write the general registers,
    /// RIP, RFLAGS, interruptibility and the VM-entry event fields; inject; raise interrupts;
    /// answer exits.
    pub fn device_model() -> Self {
        Self {
            requests: RequestRights::HELLO
                | RequestRights::READ_FIELDS
                | RequestRights::WRITE_FIELDS
                | RequestRights::INJECT
                | RequestRights::READ_REGISTERS
                | RequestRights::WRITE_REGISTERS
                | RequestRights::RAISE_INTERRUPT
                | RequestRights::ANSWER_EXITS,
            read: FieldSet::matching(|f| matches!(f.field_type(), FieldType::Guest | FieldType::ReadOnly)),
            write: FieldSet::of(&[
                VmcsGuestNW::Rip as u32,
                VmcsGuestNW::Rflags as u32,
                VmcsGuest32::InterruptibilityState as u32,
                VmcsControl32::EntryInterruptionInfo as u32,
                VmcsControl32::EntryExceptionErrorCode as u32,
                VmcsControl32::EntryInstructionLength as u32,
            ]),
        }
    }

    /// The controller: everything (the kernel still refuses what it does not expose).
    pub fn controller() -> Self {
        Self {
            requests: RequestRights::all(),
            read: FieldSet::all(),
            write: FieldSet::all(),
        }
    }

    /// A monitor: read-only access to fields, registers, statistics and dumps.
    pub fn monitor() -> Self {
        Self {
            requests: RequestRights::HELLO
                | RequestRights::READ_FIELDS
                | RequestRights::READ_REGISTERS
                | RequestRights::STATISTICS
                | RequestRights::DUMP,
            read: FieldSet::all(),
            write: FieldSet::EMPTY,
        }
    }
}

/// Badge → rights, for up to `N` clients.
#[derive(Clone, Debug, Default)]
pub struct BadgePolicy<const N: usize = 8> {
    entries: heapless::Vec<(u64, Rights), N>,
}

impl<const N: usize> BadgePolicy<N> {
    /// No client has any right.
    pub const fn new() -> Self {
        Self {
            entries: heapless::Vec::new(),
        }
    }

    /// Gives `badge` these rights (replacing earlier ones).
    ///
    /// # Errors
    /// The policy is full.
    pub fn grant(&mut self, badge: u64, rights: Rights) -> Result<(), Rights> {
        if let Some(entry) = self.entries.iter_mut().find(|(b, _)| *b == badge) {
            entry.1 = rights;
            return Ok(());
        }
        self.entries.push((badge, rights)).map_err(|(_, r)| r)
    }

    /// The rights of `badge` ([`Rights::NONE`] if unknown).
    pub fn rights(&self, badge: u64) -> Rights {
        self.entries
            .iter()
            .find(|(b, _)| *b == badge)
            .map_or(Rights::NONE, |(_, r)| *r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_model_defaults() {
        let dm = Rights::device_model();
        assert!(dm.read.contains(0x681E), "guest RIP");
        assert!(dm.read.contains(0x4402), "exit reason");
        assert!(
            dm.read.contains(0x2401),
            "HIGH half of the guest-physical address"
        );
        assert!(!dm.read.contains(0x4002), "controls are not guest state");
        assert!(dm.write.contains(0x681E) && dm.write.contains(0x6820) && dm.write.contains(0x4824));
        assert!(dm.write.contains(0x4016) && dm.write.contains(0x4018) && dm.write.contains(0x401A));
        assert!(!dm.write.contains(0x6800), "no CR0");
        assert!(!dm.write.contains(0x4002), "no controls");
        assert!(!dm.requests.contains(RequestRights::SET_CONTROL));
        assert!(
            dm.requests
                .contains(RequestRights::RAISE_INTERRUPT | RequestRights::ANSWER_EXITS)
        );
    }

    #[test]
    fn monitor_reads_only_and_unknown_badges_have_nothing() {
        let mut policy: BadgePolicy<4> = BadgePolicy::new();
        policy.grant(3, Rights::monitor()).unwrap();
        let monitor = policy.rights(3);
        assert!(monitor.read.contains(0x4002));
        assert_eq!(monitor.write, FieldSet::EMPTY);
        assert!(!monitor.requests.contains(RequestRights::WRITE_FIELDS));
        assert_eq!(policy.rights(99), Rights::NONE);
        assert!(
            !FieldSet::all().contains(0x7FFF),
            "undefined encodings are in no set"
        );
    }

    #[test]
    fn grant_replaces_and_fills() {
        let mut policy: BadgePolicy<1> = BadgePolicy::new();
        policy.grant(1, Rights::monitor()).unwrap();
        policy.grant(1, Rights::controller()).unwrap();
        assert_eq!(policy.rights(1), Rights::controller());
        assert!(policy.grant(2, Rights::monitor()).is_err());
    }
}
