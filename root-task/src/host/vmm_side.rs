//! The VMM server as the host runs it: on the model VCPU, with guest RAM, under the standard
//! badge policy; and the controller's boot sequence.

use vmcs::caps::profiles::bochs_corei7_skylake_x;
use vmm_protocol::{Request, Response};
use vmm_server::composition::{badge::DEVICE_MODEL, boot_sequence, standard_policy};
use vmm_server::memory::FlatMemory;
use vmm_server::model::ModelVcpu;
use vmm_server::server::{ServerConfig, VmmServer};

use super::HostError;
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
    let policy = standard_policy();
    let config = ServerConfig {
        vcpu: 0,
        caps,
        exit_handler: DEVICE_MODEL,
        start_running: false,
    };
    Ok(Box::new(VmmServer::new(model, ram, policy, config)))
}

/// The controller's boot sequence ([`boot_sequence`]). `call` carries one request to the server
/// and returns its response.
///
/// # Errors
/// A refused request.
pub fn boot(
    script: &ScriptFile,
    mut call: impl FnMut(Request) -> Result<Response, HostError>,
) -> Result<(), HostError> {
    for step in boot_sequence(script.start, script.cr0) {
        let response = call(step.request)?;
        if !(step.accepted)(&response) {
            return Err(HostError::Refused(format!("{}: {response:?}", step.name)));
        }
    }
    Ok(())
}
