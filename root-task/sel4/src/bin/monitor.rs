//! A read-only monitor of the VMM server: reads guest state, checks that it may not change
//! it, reports both to the root task and ends.
#![no_std]
#![no_main]

use sel4::Endpoint;
use sel4_system::layout::slot;
use sel4_system::report::{self, Report};
use sel4_system::{ipc, main, println};
use vmcs::catalogue::VmcsGuestNW;
use vmm_protocol::{FieldValue, PROTOCOL_VERSION, Request, Response};

main!("monitor", watch);

fn watch(_argument: u64) -> ! {
    // SAFETY: this is a component started by the root task, and nothing has used IPC yet.
    unsafe { sel4_system::runtime::use_component_ipc_buffer() };
    let vmm = Endpoint::from_bits(slot::VMM);
    let rip = VmcsGuestNW::Rip.encoding().raw();
    let hello = ipc::request(
        vmm,
        &Request::Hello {
            version: PROTOCOL_VERSION,
        },
    );
    let read = ipc::request(vmm, &Request::ReadFields([rip].into_iter().collect()));
    let write = ipc::request(
        vmm,
        &Request::WriteFields(
            [FieldValue {
                encoding: rip,
                value: 0,
            }]
            .into_iter()
            .collect(),
        ),
    );
    println!("hello -> {hello:?}; read RIP -> {read:?}; write RIP -> {write:?}");
    report::send_and_wait(&Report::Monitor {
        rip: match read {
            Ok(Response::Values(values)) => values.first().copied(),
            _ => None,
        },
        write: match write {
            Ok(Response::Error(e)) => Some(e.code),
            _ => None,
        },
    })
}
