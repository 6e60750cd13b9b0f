//! The contract between the root task and the components it starts: where each component finds
//! its capabilities, which badges the root task mints, where the IPC buffer is mapped.
//!
//! | component | holds (slot: capability) |
//! |---|---|
//! | VMM server | 1 fault endpoint (root, badged), 2 report endpoint (root, badged), 3 its own request endpoint (receive), 5 the device model's endpoint (send, badge [`dm_badge::EXIT_RECORDS`]), 9 its VCPU (VT-x); a notification bound to its thread; guest RAM mapped at [`GUEST_RAM`] (VT-x) |
//! | device model | 1, 2 as above, 3 its own endpoint (receive), 4 the VMM server's endpoint (send, badge [`vmm_server::composition::badge::DEVICE_MODEL`]), 6 and 10 the UART's transmit and line-status ports (0x3F8, 0x3FD; one each), 7 the VMM server's notification (send only); slot 8 is never filled |
//! | monitor | 1, 2 as above, 4 the VMM server's endpoint (send, badge [`vmm_server::composition::badge::MONITOR`]) |
//!
//! No component holds a CNode, TCB, VSpace or untyped capability, not even its own.

/// Each component's CSpace is one CNode of `2^CNODE_BITS` slots whose guard covers the other
/// `64 - CNODE_BITS` bits of a capability pointer, so a slot number is its capability pointer.
pub const CNODE_BITS: u8 = 8;

/// Capability slots in a component's CSpace (slot 0 stays empty, as seL4 expects).
pub mod slot {
    /// The root task's endpoint, badged [`super::fault_badge`]: the kernel sends the
    /// component's faults here (the TCB's fault endpoint is looked up in the component's own
    /// CSpace in seL4 5.0).
    pub const FAULT: u64 = 1;
    /// The root task's endpoint, badged [`super::report_badge`]: the component's reports.
    pub const REPORT: u64 = 2;
    /// The component's own endpoint, with receive rights: requests (VMM server), exit records
    /// and statistics queries (device model).
    pub const SERVICE: u64 = 3;
    /// The VMM server's endpoint, badged with the holder's client badge (send and grant-reply).
    pub const VMM: u64 = 4;
    /// The device model's endpoint, badged [`super::dm_badge::EXIT_RECORDS`] (VMM server only).
    pub const DEVICE_MODEL: u64 = 5;
    /// The UART's transmit register, I/O port [`super::UART_DATA_PORT`] alone (device model
    /// only): the guest's serial output reaches the real serial line.
    pub const UART_DATA: u64 = 6;
    /// The VMM server's bound notification, send only, badged [`super::VMM_READY_BADGE`]
    /// (device model only).
    pub const VMM_NOTIFICATION: u64 = 7;
    /// Never filled: the device model probes that invoking it fails.
    pub const NEVER_GRANTED: u64 = 8;
    /// The VCPU bound to the VMM server's thread (VMM server only; kernels with VT-x).
    pub const VCPU: u64 = 9;
    /// The UART's line status register, I/O port [`super::UART_STATUS_PORT`] alone (device
    /// model only). The UART is the kernel's console too: the device model may send bytes and
    /// wait for the transmitter, not reprogram the line.
    pub const UART_STATUS: u64 = 10;
}

/// The components, in the order the root task starts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Component {
    /// The device model.
    DeviceModel = 0,
    /// The read-only monitor.
    Monitor = 1,
    /// The VMM server.
    VmmServer = 2,
}

impl Component {
    /// All components.
    pub const ALL: [Self; 3] = [Self::DeviceModel, Self::Monitor, Self::VmmServer];

    /// Its name in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::DeviceModel => "device-model",
            Self::Monitor => "monitor",
            Self::VmmServer => "vmm-server",
        }
    }

    /// The component a root-endpoint badge belongs to, and whether it is a fault.
    pub fn from_badge(badge: u64) -> Option<(Self, bool)> {
        let component = Self::ALL.into_iter().find(|c| badge & 0xFF == *c as u64)?;
        match badge & !0xFF {
            FAULT_BADGE_BIT => Some((component, true)),
            REPORT_BADGE_BIT => Some((component, false)),
            _ => None,
        }
    }
}

const FAULT_BADGE_BIT: u64 = 0x100;
const REPORT_BADGE_BIT: u64 = 0x200;

/// Badge of a component's fault endpoint capability.
pub const fn fault_badge(component: Component) -> u64 {
    FAULT_BADGE_BIT | component as u64
}

/// Badge of a component's report endpoint capability.
pub const fn report_badge(component: Component) -> u64 {
    REPORT_BADGE_BIT | component as u64
}

/// Badges on the device model's endpoint.
pub mod dm_badge {
    /// Exit records from the VMM server.
    pub const EXIT_RECORDS: u64 = 1;
    /// Statistics queries from the root task.
    pub const STATISTICS: u64 = 2;
}

/// Badge the device model signals the VMM server's notification with once it serves records.
/// A bound notification arrives through `Recv` on the VMM server's endpoint with this badge;
/// it is outside every client badge ([`vmm_server::composition::badge`]) and within the 28 bits
/// a badge has in seL4 5.0 (`seL4_CapData` Badge block, `types_64.bf`).
pub const VMM_READY_BADGE: u64 = 1 << 27;

/// The UART's (COM1) transmit holding register.
pub const UART_DATA_PORT: u16 = 0x3F8;
/// The UART's line status register.
pub const UART_STATUS_PORT: u16 = 0x3FD;
/// QEMU's `isa-debug-exit` port: the root task ends the run through it.
pub const QEMU_EXIT_PORT: u16 = 0xF4;

/// Where every image is linked (see `link.ld`).
pub const IMAGE_BASE: u64 = 0x40_0000;
/// Where the root task maps a component's IPC buffer in the component's address space.
pub const IPC_BUFFER: u64 = 0x1000_0000;

/// Where the root task maps guest RAM in the VMM server's address space (kernels with VT-x;
/// the same frames back guest-physical 0 in the EPT).
pub const GUEST_RAM: u64 = 0x2000_0000;

/// Scheduling priority of the servers (the root task keeps the maximum, 255).
pub const COMPONENT_PRIORITY: u8 = 100;
/// Scheduling priority of the monitor: below the servers, so that it runs when they wait (and
/// its console lines do not interleave with theirs).
pub const MONITOR_PRIORITY: u8 = COMPONENT_PRIORITY - 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badges_name_their_component_and_kind() {
        for c in Component::ALL {
            assert_eq!(Component::from_badge(fault_badge(c)), Some((c, true)));
            assert_eq!(Component::from_badge(report_badge(c)), Some((c, false)));
        }
        assert_eq!(Component::from_badge(0x2FF), None);
        assert_eq!(Component::from_badge(0x400), None);
        assert_eq!(Component::from_badge(VMM_READY_BADGE), None);
    }
}
