//! See Cargo.toml: links the component crates into a `no_std` static library.
#![no_std]

use device_model::irq::InterruptLines;
use device_model::platform::{StandardDevices, Wiring};
use device_model::server::DeviceModelConfig;
use vmcs::caps::profiles::bochs_corei7_skylake_x;
use vmm_server::memory::NoGuestMemory;
use vmm_server::model::{KernelRules, ModelVcpu, StartState};
use vmm_server::policy::BadgePolicy;
use vmm_server::server::{ServerConfig, VmmServer};

struct Discard;

impl device_model::uart::SerialOut for Discard {
    fn put(&mut self, _byte: u8) {}
}

/// Builds a server on the model VCPU and a device model, so that their code is linked.
#[unsafe(no_mangle)]
pub extern "C" fn no_std_check() -> u64 {
    let caps = bochs_corei7_skylake_x();
    let model = ModelVcpu::new(KernelRules::Sel4V5, caps, StartState::default(), &[]);
    let config = ServerConfig {
        vcpu: 0,
        caps,
        exit_handler: 1,
        start_running: true,
    };
    let mut server: VmmServer<_, _, 4> =
        VmmServer::new(model, NoGuestMemory, BadgePolicy::<4>::new(), config);
    let _ = server.enter();
    let wiring = Wiring::default();
    let mut devices = StandardDevices::new(&wiring, Discard);
    let lines = InterruptLines::new();
    let _ = lines.any_pending();
    match devices.device_model(&wiring, DeviceModelConfig::default()) {
        Ok(dm) => dm.stats().records,
        Err(_) => 0,
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
