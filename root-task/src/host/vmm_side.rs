//! The VMM server as the host runs it: on the model VCPU, with guest RAM, under the standard
//! badge policy; and the controller's boot sequence.

use vmcs::caps::profiles::bochs_corei7_skylake_x;
use vmm_protocol::{ControlId, FieldValue, PROTOCOL_VERSION, Request, Response};
use vmm_server::memory::FlatMemory;
use vmm_server::model::ModelVcpu;
use vmm_server::policy::{BadgePolicy, Rights};
use vmm_server::server::{ServerConfig, VmmServer};

use super::HostError;
use super::badge::{CONTROLLER, DEVICE_MODEL, MONITOR};
use super::script::ScriptFile;

/// Guest RAM size: 64 KiB at guest-physical 0.
pub const RAM_SIZE: usize = 0x1_0000;

/// The server type the host runs.
pub type HostServer<'s> = VmmServer<ModelVcpu<'s>, FlatMemory<RAM_SIZE>>;

/// A server playing `script` (boxed: guest RAM lives inside).
///
/// # Errors
/// The script's memory does not fit guest RAM.
pub fn build_server(script: &ScriptFile) -> Result<Box<HostServer<'_>>, HostError> {
    let caps = bochs_corei7_skylake_x();
    let mut ram = FlatMemory::<RAM_SIZE>::new(0);
    script.load_memory(ram.bytes_mut())?;
    let model = ModelVcpu::new(script.rules, caps, script.start, &script.steps);
    let mut policy: BadgePolicy<8> = BadgePolicy::new();
    for (badge, rights) in [
        (DEVICE_MODEL, Rights::device_model()),
        (CONTROLLER, Rights::controller()),
        (MONITOR, Rights::monitor()),
    ] {
        policy
            .grant(badge, rights)
            .map_err(|_| HostError::Component("policy full".into()))?;
    }
    let config = ServerConfig {
        vcpu: 0,
        caps,
        exit_handler: DEVICE_MODEL,
        start_running: false,
    };
    Ok(Box::new(VmmServer::new(model, ram, policy, config)))
}

/// The controller's boot sequence: handshake, guest RIP/RFLAGS/CR0, HLT and unconditional
/// I/O exiting, run. `call` carries one request to the server and returns its response.
///
/// # Errors
/// A refused request.
pub fn boot(
    script: &ScriptFile,
    mut call: impl FnMut(Request) -> Result<Response, HostError>,
) -> Result<(), HostError> {
    let expect = |what: &str, response: Response, ok: fn(&Response) -> bool| {
        if ok(&response) {
            Ok(())
        } else {
            Err(HostError::Refused(format!("{what}: {response:?}")))
        }
    };
    expect(
        "hello",
        call(Request::Hello {
            version: PROTOCOL_VERSION,
        })?,
        |r| matches!(r, Response::Hello { .. }),
    )?;
    let writes = [
        FieldValue {
            encoding: 0x681E,
            value: script.start.rip,
        },
        FieldValue {
            encoding: 0x6820,
            value: script.start.rflags,
        },
        FieldValue {
            encoding: 0x6800,
            value: script.cr0,
        },
    ];
    let writes =
        vmm_protocol::heapless::Vec::from_slice(&writes).map_err(|_| HostError::Component("batch".into()))?;
    expect("guest state", call(Request::WriteFields(writes))?, |r| {
        matches!(r, Response::Written(_))
    })?;
    let controls = Request::SetControl {
        control: ControlId::Primary,
        set: (1 << 7) | (1 << 24),
        clear: 0,
    };
    expect("primary controls", call(controls)?, |r| {
        matches!(r, Response::Written(_))
    })?;
    expect("run", call(Request::Run)?, |r| matches!(r, Response::Ok))
}
