//! What the components tell the root task (postcard over the report endpoint), and what the
//! device model answers to a statistics query.

use heapless::{String, Vec};
use serde::{Deserialize, Serialize};
use vmm_protocol::ErrorCode;

use crate::ipc::{self, IpcError};

/// Most distinct exit reasons a report lists.
pub const MAX_REASONS: usize = 24;

/// A component's report to the root task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(
    clippy::large_enum_variant,
    reason = "no allocation: reports are built once, sent, and dropped"
)]
pub enum Report {
    /// The device model checked its own reach before serving exit records.
    DeviceModelReady {
        /// The VMM server answered its `Hello`.
        hello: bool,
        /// The error code the VMM server answered a request outside the device model's rights
        /// with (`Run`, a controller's request); `None` if it was accepted.
        forbidden_request: Option<ErrorCode>,
        /// The kernel's error code for an invocation on a slot the device model was never
        /// given; `None` if it succeeded.
        never_granted_slot: Option<u64>,
    },
    /// The monitor read guest state and tried to change it.
    Monitor {
        /// Guest RIP as read, if the read was answered.
        rip: Option<u64>,
        /// The error code the write was refused with; `None` if it was accepted.
        write: Option<ErrorCode>,
    },
    /// The guest stopped through the debug-exit port (the VMM server).
    GuestStopped {
        /// The status the guest wrote.
        status: u32,
        /// Exits handled, per basic exit reason.
        exits: Vec<(u16, u64), MAX_REASONS>,
        /// Exit records sent to the device model.
        records: u64,
        /// Replies received from it.
        replies: u64,
        /// Notifications received on the bound notification.
        notifications: u64,
    },
    /// The guest could not go on (the VMM server).
    GuestFailed {
        /// Why.
        reason: String<96>,
    },
}

/// The device model's answer to [`crate::layout::dm_badge::STATISTICS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceModelStatistics {
    /// Exit records received.
    pub records: u64,
    /// Replies sent.
    pub replies: u64,
    /// Records that did not decode.
    pub malformed: u64,
    /// Bytes the guest wrote to the UART (all of them reached the serial line).
    pub uart_bytes: u64,
    /// Interrupts the devices raised.
    pub interrupts: u64,
}

/// Largest encoded report.
pub const MAX_REPORT: usize = 512;

/// Sends `report` to the root task (`seL4_Send` on the report endpoint) and goes on.
pub fn send(report: &Report) {
    let mut buf = [0u8; MAX_REPORT];
    // Every report fits MAX_REPORT (tested below).
    let sent = postcard::to_slice(report, &mut buf)
        .map_err(|_| IpcError::TooLong)
        .and_then(|bytes| ipc::send(report_endpoint(), bytes));
    if let Err(e) = sent {
        crate::println!("cannot report: {e:?}");
    }
}

/// Sends `report` to the root task with `seL4_Call` and waits for ever: the root task never
/// answers reports, so this is how a component with nothing more to do ends.
pub fn send_and_wait(report: &Report) -> ! {
    let mut buf = [0u8; MAX_REPORT];
    let mut answer = [0u8; 8];
    match postcard::to_slice(report, &mut buf) {
        Ok(bytes) => {
            let answered = ipc::call(report_endpoint(), bytes, &mut answer);
            panic!("the root task answered a report: {answered:?}")
        }
        Err(e) => panic!("cannot encode the report: {e}"),
    }
}

fn report_endpoint() -> sel4::Endpoint {
    sel4::Endpoint::from_bits(crate::layout::slot::REPORT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_report_fits() {
        let mut exits = Vec::new();
        for r in 0..MAX_REASONS {
            exits.push((u16::MAX - r as u16, u64::MAX)).unwrap();
        }
        let report = Report::GuestStopped {
            status: u32::MAX,
            exits,
            records: u64::MAX,
            replies: u64::MAX,
            notifications: u64::MAX,
        };
        let mut buf = [0u8; MAX_REPORT];
        let bytes = postcard::to_slice(&report, &mut buf).unwrap();
        assert_eq!(postcard::from_bytes::<Report>(bytes).unwrap(), report);
        let failed = Report::GuestFailed {
            reason: String::try_from("x".repeat(96).as_str()).unwrap(),
        };
        assert!(postcard::to_slice(&failed, &mut buf).is_ok());
    }
}
