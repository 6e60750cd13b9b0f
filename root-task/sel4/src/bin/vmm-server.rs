//! The VMM server on seL4: serves its clients' requests on its endpoint (the badge says who is
//! asking) and sends every exit record to the device model with `seL4_Call`.
//!
//! - On a kernel with VT-x it drives the real VCPU the root task bound to its thread: probes
//!   what the kernel lets it set, loads the guest into guest RAM (mapped into its address
//!   space and into the EPT), writes the guest's start state through `WriteVMCS`.
//! - Otherwise it drives the model VCPU playing the guest image.
#![no_std]
#![no_main]

use sel4::Endpoint;
use sel4_system::ipc::{self, EndpointLink};
use sel4_system::layout::{VMM_READY_BADGE, slot};
use sel4_system::report::{self, Report};
use sel4_system::{main, println};
use vmm_protocol::MAX_MESSAGE_SIZE;
use vmm_server::composition::badge;
use vmm_server::kernel::VcpuKernel;
use vmm_server::memory::GuestMemory;
use vmm_server::server::{RunOutcome, RunState, ServerConfig, VmmServer};

main!("vmm-server", start);

/// Exits handled between two looks at the endpoint for requests (a `Pause` from the controller
/// takes effect within this many exits).
const EXITS_PER_BATCH: u64 = 64;

fn config(caps: vmcs::caps::VmxCapabilities) -> ServerConfig {
    ServerConfig {
        vcpu: 0,
        caps,
        exit_handler: badge::DEVICE_MODEL,
        start_running: false,
    }
}

#[cfg(not(sel4_config_vtx))]
mod backend {
    //! The model VCPU and the guest image it plays.
    use vmcs::caps::profiles::bochs_corei7_skylake_x;
    use vmm_server::composition::{FixedGuestImage, standard_policy};
    use vmm_server::memory::FlatMemory;
    use vmm_server::model::ModelVcpu;
    use vmm_server::server::VmmServer;

    /// The guest this server plays (`vmm run --export-guest`), chosen by `cargo xtask`.
    static GUEST_IMAGE: &[u8] = include_bytes!(env!(
        "SEL4_GUEST_IMAGE",
        "built by `cargo xtask`, which names the guest image in SEL4_GUEST_IMAGE"
    ));

    /// Guest RAM: 64 KiB at guest-physical 0, as on the host.
    const RAM_SIZE: usize = 0x1_0000;

    pub fn start() -> ! {
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
        sel4_system::println!("model VCPU, {} guest steps", image.steps.len());
        super::serve(VmmServer::new(model, ram, standard_policy(), super::config(caps)))
    }
}

#[cfg(sel4_config_vtx)]
mod backend {
    //! The real VCPU.
    use sel4::Vcpu;
    use sel4_system::layout::{GUEST_RAM, slot};
    use sel4_system::vcpu::Sel4Vcpu;
    use sel4_system::vtx_guest;
    use vmcs::caps::{ControlKind, set_control};
    use vmcs::catalogue::{VmcsControl32, VmcsControlNW};
    use vmm_server::composition::standard_policy;
    use vmm_server::memory::BorrowedMemory;
    use vmm_server::server::VmmServer;
    use vmm_server::setup::{KernelAccess, probe_capabilities};

    /// The guest (`guest/vtx-hello`), assembled by `cargo xtask`.
    static GUEST: &[u8] = include_bytes!(env!(
        "SEL4_VTX_GUEST",
        "built by `cargo xtask`, which names the VT-x guest's binary in SEL4_VTX_GUEST"
    ));

    pub fn start() -> ! {
        let mut vcpu = Sel4Vcpu::new(Vcpu::from_bits(slot::VCPU));
        let caps = probe_capabilities(&mut vcpu).unwrap_or_else(|e| panic!("probing the VCPU: {e:?}"));
        // The probe left every control with all its allowed bits: start from the least the
        // kernel allows; the controller asks for what it wants (HLT and I/O exiting).
        for (kind, field) in [
            (ControlKind::Pin, VmcsControl32::PinBasedControls),
            (ControlKind::Primary, VmcsControl32::PrimaryProcBasedControls),
            (ControlKind::Secondary, VmcsControl32::SecondaryProcBasedControls),
            (ControlKind::Exit, VmcsControl32::PrimaryExitControls),
        ] {
            let least = set_control(&caps, kind, None, 0, 0).unwrap_or_else(|e| panic!("{kind:?}: {e:?}"));
            if let Err(e) = field.write(&mut KernelAccess(&mut vcpu), least as u32) {
                panic!("{kind:?}: {e}");
            }
        }
        let exceptions = VmcsControl32::ExceptionBitmap.write(&mut KernelAccess(&mut vcpu), 0);
        let cr0_mask = VmcsControlNW::Cr0GuestHostMask.write(&mut KernelAccess(&mut vcpu), 0);
        if let Err(e) = exceptions.and(cr0_mask) {
            panic!("exception bitmap, CR0 mask: {e}");
        }
        // SAFETY: the root task maps guest RAM, RAM_SIZE bytes, at GUEST_RAM in this address
        // space before starting it; nothing else in this component refers to it.
        let ram = unsafe { core::slice::from_raw_parts_mut(GUEST_RAM as *mut u8, vtx_guest::RAM_SIZE) };
        let start = vtx_guest::load(ram, GUEST).unwrap_or_else(|e| panic!("loading the guest: {e:?}"));
        if let Err(e) = start.write(&mut KernelAccess(&mut vcpu)) {
            panic!("guest start state: {e}");
        }
        sel4_system::println!(
            "VT-x VCPU; guest of {} bytes loaded at {:#x}",
            GUEST.len(),
            vtx_guest::LOAD_ADDRESS
        );
        super::serve(VmmServer::new(
            vcpu,
            BorrowedMemory::new(0, ram),
            standard_policy(),
            super::config(caps),
        ))
    }
}

fn start(_argument: u64) -> ! {
    // SAFETY: this is a component started by the root task, and nothing has used IPC yet.
    unsafe { sel4_system::runtime::use_component_ipc_buffer() };
    backend::start()
}

/// Serves requests; runs the guest whenever the controller has said `Run`.
fn serve<K: VcpuKernel, M: GuestMemory>(mut server: VmmServer<K, M>) -> ! {
    let mut link = EndpointLink::new(Endpoint::from_bits(slot::DEVICE_MODEL));
    let service = Endpoint::from_bits(slot::SERVICE);
    let mut notifications = 0u64;
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
fn answer<K: VcpuKernel, M: GuestMemory>(server: &mut VmmServer<K, M>, info: sel4::MessageInfo, badge: u64) {
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
fn run_guest<K: VcpuKernel, M: GuestMemory>(
    server: &mut VmmServer<K, M>,
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
