//! What every composition of the system agrees on, on a Linux host or on seL4: the badges the
//! composer mints for the VMM server's clients, the policy that goes with them, the
//! controller's boot requests, and the image format that carries a scripted guest to wherever
//! the VMM server runs.

use vmcs::catalogue::VmcsGuestNW;
use vmm_protocol::{ControlId, FieldValue, PROTOCOL_VERSION, Request, Response};

use crate::model::StartState;
use crate::policy::{BadgePolicy, Rights};

/// Badges the composer mints, one per client of the VMM server. A server learns a caller's
/// badge from the channel (seL4: the endpoint capability) the message came in on, never from
/// the message.
pub mod badge {
    /// The device model.
    pub const DEVICE_MODEL: u64 = 1;
    /// The controller (the composer itself).
    pub const CONTROLLER: u64 = 2;
    /// A read-only monitor.
    pub const MONITOR: u64 = 3;
}

/// The policy for the standard badges: the device model, the controller, the monitor.
pub fn standard_policy() -> BadgePolicy<8> {
    let mut policy = BadgePolicy::new();
    for (badge, rights) in [
        (badge::DEVICE_MODEL, Rights::device_model()),
        (badge::CONTROLLER, Rights::controller()),
        (badge::MONITOR, Rights::monitor()),
    ] {
        // Three entries fit the policy's eight.
        let _ = policy.grant(badge, rights);
    }
    policy
}

/// Primary processor-based controls the controller asks for: HLT exiting (bit 7) and
/// unconditional I/O exiting (bit 24) (SDM Vol. 3C, Section 25.6.2, Table 25-6). Where the
/// kernel forces "use I/O bitmaps" (bit 25), as seL4 does, the bitmaps decide which port
/// accesses exit and bit 24 is ignored; seL4's bitmaps start with every port exiting.
pub const BOOT_PRIMARY_CONTROLS: u64 = (1 << 7) | (1 << 24);

/// One request of the controller's boot sequence.
#[derive(Clone, Debug)]
pub struct BootStep {
    /// What it does (for reports).
    pub name: &'static str,
    /// The request.
    pub request: Request,
    /// Whether `response` accepts it.
    pub accepted: fn(&Response) -> bool,
}

/// The controller's boot sequence: handshake, guest RIP, RFLAGS and CR0, HLT and I/O exiting,
/// run. Each step must be accepted before the next is sent.
pub fn boot_sequence(start: StartState, cr0: u64) -> [BootStep; 4] {
    let writes = [
        FieldValue {
            encoding: VmcsGuestNW::Rip.encoding().raw(),
            value: start.rip,
        },
        FieldValue {
            encoding: VmcsGuestNW::Rflags.encoding().raw(),
            value: start.rflags,
        },
        FieldValue {
            encoding: VmcsGuestNW::Cr0.encoding().raw(),
            value: cr0,
        },
    ];
    let mut batch = heapless::Vec::new();
    for write in writes {
        // Three writes fit any batch (MAX_FIELDS is far larger).
        let _ = batch.push(write);
    }
    [
        BootStep {
            name: "hello",
            request: Request::Hello {
                version: PROTOCOL_VERSION,
            },
            accepted: |r| matches!(r, Response::Hello { .. }),
        },
        BootStep {
            name: "guest state",
            request: Request::WriteFields(batch),
            accepted: |r| matches!(r, Response::Written(_)),
        },
        BootStep {
            name: "primary controls",
            request: Request::SetControl {
                control: ControlId::Primary,
                set: BOOT_PRIMARY_CONTROLS,
                clear: 0,
            },
            accepted: |r| matches!(r, Response::Written(_)),
        },
        BootStep {
            name: "run",
            request: Request::Run,
            accepted: |r| matches!(r, Response::Ok),
        },
    ]
}

/// A scripted guest as it travels to the VMM server (postcard): where it starts, the kernel
/// rules the model VCPU follows, initial memory, the steps. Generic over the containers so that
/// the host writes it with `Vec`s and a freestanding server reads it into fixed-capacity ones:
/// postcard encodes both the same way.
#[cfg(feature = "serde")]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GuestImage<Memory, Steps> {
    /// Whose kernel rules the model VCPU follows.
    pub rules: crate::model::KernelRules,
    /// Where the guest starts.
    pub start: StartState,
    /// Guest CR0 at the start.
    pub cr0: u64,
    /// Initial memory: (guest-physical address, bytes) pairs.
    pub memory: Memory,
    /// The steps.
    pub steps: Steps,
}

/// Most steps a `FixedGuestImage` holds.
pub const GUEST_IMAGE_MAX_STEPS: usize = 128;
/// Most memory chunks a `FixedGuestImage` holds.
pub const GUEST_IMAGE_MAX_CHUNKS: usize = 8;
/// Most bytes in one memory chunk of a `FixedGuestImage`.
pub const GUEST_IMAGE_MAX_CHUNK: usize = 512;

/// A [`GuestImage`] in fixed-capacity containers, as a freestanding VMM server holds it.
#[cfg(feature = "serde")]
pub type FixedGuestImage = GuestImage<
    heapless::Vec<(u64, heapless::Vec<u8, GUEST_IMAGE_MAX_CHUNK>), GUEST_IMAGE_MAX_CHUNKS>,
    heapless::Vec<crate::model::Step, GUEST_IMAGE_MAX_STEPS>,
>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_policy_knows_every_badge() {
        let policy = standard_policy();
        for b in [badge::DEVICE_MODEL, badge::CONTROLLER, badge::MONITOR] {
            assert_ne!(policy.rights(b), Rights::NONE, "badge {b}");
        }
        assert_eq!(policy.rights(99), Rights::NONE);
    }

    #[test]
    fn the_boot_sequence_writes_the_start_state_and_ends_with_run() {
        let steps = boot_sequence(
            StartState {
                rip: 0x1234,
                rflags: 0x202,
            },
            0x11,
        );
        let Request::WriteFields(writes) = &steps[1].request else {
            panic!("{:?}", steps[1].request)
        };
        let values: heapless::Vec<(u32, u64), 3> = writes.iter().map(|w| (w.encoding, w.value)).collect();
        assert_eq!(values, [(0x681E, 0x1234), (0x6820, 0x202), (0x6800, 0x11)]);
        assert_eq!(steps[3].request, Request::Run);
        assert!((steps[3].accepted)(&Response::Ok));
        assert!(!(steps[0].accepted)(&Response::Ok));
    }
}
