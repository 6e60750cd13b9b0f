//! The VMM server on seL4, on the model VCPU (a kernel without VT-x): plays the guest image,
//! serves its clients' requests on its endpoint (the badge says who is asking) and sends every
//! exit record to the device model with `seL4_Call`.
#![no_std]
#![no_main]

use sel4::Endpoint;
use sel4_system::ipc::{self, EndpointLink};
use sel4_system::layout::{VMM_READY_BADGE, slot};
use sel4_system::report::{self, Report};
use sel4_system::{main, println};
use vmcs::caps::profiles::bochs_corei7_skylake_x;
use vmm_protocol::MAX_MESSAGE_SIZE;
use vmm_server::composition::{FixedGuestImage, badge, standard_policy};
use vmm_server::memory::FlatMemory;
use vmm_server::model::ModelVcpu;
use vmm_server::server::{RunOutcome, RunState, ServerConfig, VmmServer};

main!("vmm-server", serve);

/// The guest this server plays (`vmm run --export-guest`), chosen by `cargo xtask`.
static GUEST_IMAGE: &[u8] = include_bytes!(env!(
    "SEL4_GUEST_IMAGE",
    "built by `cargo xtask`, which names the guest image in SEL4_GUEST_IMAGE"
));

/// Guest RAM: 64 KiB at guest-physical 0, as on the host.
const RAM_SIZE: usize = 0x1_0000;

/// Exits handled between two looks at the endpoint for requests (a `Pause` from the controller
/// takes effect within this many exits).
const EXITS_PER_BATCH: u64 = 64;

type Server<'s> = VmmServer<ModelVcpu<'s>, FlatMemory<RAM_SIZE>>;

fn serve(_argument: u64) -> ! {
    // SAFETY: this is a component started by the root task, and nothing has used IPC yet.
    unsafe { sel4_system::runtime::use_component_ipc_buffer() };
    let image: FixedGuestImage = match postcard::from_bytes(GUEST_IMAGE) {
        Ok(image) => image,
        Err(e) => panic!("the guest image does not decode: {e}"),
    };
    let mut ram = FlatMemory::<RAM_SIZE>::new(0);
    for (gpa, bytes) in &image.memory {
        let slot = usize::try_from(*gpa)
            .ok()
            .and_then(|start| ram.bytes_mut().get_mut(start..start.checked_add(bytes.len())?));
        match slot {
            Some(slot) => slot.copy_from_slice(bytes),
            None => panic!("guest memory at {gpa:#x} is outside guest RAM"),
        }
    }
    let caps = bochs_corei7_skylake_x();
    let model = ModelVcpu::new(image.rules, caps, image.start, &image.steps);
    let config = ServerConfig {
        vcpu: 0,
        caps,
        exit_handler: badge::DEVICE_MODEL,
        start_running: false,
    };
    let mut server: Server<'_> = VmmServer::new(model, ram, standard_policy(), config);
    let mut link = EndpointLink::new(Endpoint::from_bits(slot::DEVICE_MODEL));
    let service = Endpoint::from_bits(slot::SERVICE);
    let mut notifications = 0u64;
    println!("serving ({} guest steps)", image.steps.len());
    loop {
        let (info, badge) = service.recv();
        if badge & VMM_READY_BADGE != 0 {
            notifications += 1;
            println!("the device model is ready (notification)");
            continue;
        }
        answer(&mut server, info, badge);
        if server.state() == RunState::Running {
            // Paused: back to serving until the controller says `Run` again.
            let Some(report) = run_guest(&mut server, &mut link, service, &mut notifications) else {
                continue;
            };
            report::send(&report);
        }
    }
}

/// Answers one request that arrived with `info` from `badge`.
fn answer(server: &mut Server<'_>, info: sel4::MessageInfo, badge: u64) {
    let mut request = [0u8; MAX_MESSAGE_SIZE];
    let mut out = [0u8; MAX_MESSAGE_SIZE];
    // A message that is not a byte payload is handed on as empty bytes: the server answers
    // `Malformed` and keeps serving.
    let len = ipc::read_payload(info, &mut request).unwrap_or(0);
    let response = server.handle_request(badge, &request[..len], &mut out);
    if let Err(e) = ipc::reply(response) {
        println!("cannot reply: {e:?}");
    }
}

/// Runs the guest until it stops; requests that arrive meanwhile are answered between batches
/// of exits.
fn run_guest(
    server: &mut Server<'_>,
    link: &mut EndpointLink,
    service: Endpoint,
    notifications: &mut u64,
) -> Option<Report> {
    loop {
        match server.run(&mut *link, EXITS_PER_BATCH) {
            Ok(RunOutcome::ExitLimit) => loop {
                let (info, badge) = service.nb_recv();
                match badge {
                    // Nothing waiting: every client badge is non-zero.
                    0 => break,
                    b if b & VMM_READY_BADGE != 0 => *notifications += 1,
                    b => answer(server, info, b),
                }
            },
            Ok(RunOutcome::Notification(_)) => *notifications += 1,
            Ok(RunOutcome::Stopped(status)) => {
                let mut exits = heapless::Vec::new();
                for entry in server.exits_by_reason() {
                    if exits.push(entry).is_err() {
                        println!("more exit reasons than a report lists; the rest are left out");
                        break;
                    }
                }
                println!(
                    "the guest stopped with status {status} after {} exits",
                    link.records
                );
                return Some(Report::GuestStopped {
                    status,
                    exits,
                    records: link.records,
                    replies: link.replies,
                    notifications: *notifications,
                });
            }
            Ok(RunOutcome::Paused) => return None,
            Ok(RunOutcome::Waiting) => {
                return Some(failed(format_args!("the guest halted with nothing to wake it")));
            }
            Err(e) => return Some(failed(format_args!("the exit loop failed: {e:?}"))),
        }
    }
}

fn failed(why: core::fmt::Arguments<'_>) -> Report {
    use core::fmt::Write as _;
    let mut reason = heapless::String::new();
    // A reason longer than the report holds is cut short.
    let _ = reason.write_fmt(why);
    println!("{reason}");
    Report::GuestFailed { reason }
}
