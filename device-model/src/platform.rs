//! The standard platform: the devices and tables a scripted or real guest of this project
//! sees. Host tools, tests and the seL4 component all build the same one.
//!
//! | what | where |
//! |---|---|
//! | 16550 UART (COM1) | ports 0x3F8–0x3FF, interrupt line 4 (vector 0x24) |
//! | debug-exit port | port 0xF4: a write stops the guest with that status |
//! | POST-code port | port 0x80 |
//! | four 32-bit test registers | MMIO 0xFEC0_0000–0xFEC0_000F (register 3 counts accesses) |
//! | CPUID leaf 0 | "GenuineIntel", highest leaf 1 |
//! | MSRs | IA32_APIC_BASE (0x1B, read-only), IA32_TSC_AUX (0xC000_0103, read-write) |

use crate::bus::{BusError, MmioDevice};
use crate::irq::{InterruptLines, LineTrigger};
use crate::policy::{CpuidEntry, MsrEntry};
use crate::ports::PostCode;
use crate::server::{DebugExitPort, DeviceModel, DeviceModelConfig, StopRequest};
use crate::uart::{SerialOut, Uart16550};

/// The UART's base port.
pub const UART_PORT: u16 = 0x3F8;
/// The UART's interrupt line.
pub const UART_LINE: u8 = 4;
/// The debug-exit port.
pub const DEBUG_EXIT_PORT: u16 = 0xF4;
/// The POST-code port.
pub const POST_PORT: u16 = 0x80;
/// Base of the test registers.
pub const MMIO_BASE: u64 = 0xFEC0_0000;
/// CPUID leaf 0: highest leaf 1, "GenuineIntel".
pub const CPUID_0: [u32; 4] = [1, 0x756E_6547, 0x6C65_746E, 0x4965_6E69];
/// IA32_APIC_BASE and its value (xAPIC at 0xFEE00000, enabled, BSP).
pub const MSR_APIC_BASE: (u32, u64) = (0x1B, 0xFEE0_0900);
/// IA32_TSC_AUX and its initial value.
pub const MSR_TSC_AUX: (u32, u64) = (0xC000_0103, 7);

/// Four 32-bit registers at [`MMIO_BASE`]; register 3 counts accesses.
#[derive(Debug, Default)]
pub struct TestRegisters {
    /// The registers.
    pub values: [u32; 4],
}

impl MmioDevice for TestRegisters {
    fn save(&self, out: &mut [u8]) -> Option<usize> {
        crate::bus::save_state(&self.values, out)
    }

    fn load(&mut self, state: &[u8]) -> bool {
        crate::bus::load_state(state).map(|v| self.values = v).is_some()
    }

    fn read(&mut self, offset: u64, _size: u8) -> u64 {
        self.values[3] = self.values[3].wrapping_add(1);
        self.values
            .get((offset / 4) as usize)
            .copied()
            .unwrap_or(0)
            .into()
    }

    fn write(&mut self, offset: u64, _size: u8, value: u64) {
        self.values[3] = self.values[3].wrapping_add(1);
        if let Some(slot) = self.values.get_mut((offset / 4) as usize) {
            *slot = value as u32;
        }
    }
}

/// What the devices share with the server loop: interrupt lines and the stop request.
#[derive(Debug, Default)]
pub struct Wiring {
    /// Interrupt lines.
    pub lines: InterruptLines,
    /// The debug-exit request.
    pub stop: StopRequest,
}

/// The standard devices, writing UART output to `O`.
#[derive(Debug)]
pub struct StandardDevices<'a, O: SerialOut> {
    /// The UART.
    pub uart: Uart16550<O, LineTrigger<'a>>,
    /// The debug-exit port.
    pub debug_exit: DebugExitPort<'a>,
    /// The POST-code port.
    pub post: PostCode,
    /// The test registers.
    pub registers: TestRegisters,
}

impl<'a, O: SerialOut> StandardDevices<'a, O> {
    /// The devices, on `wiring`, with UART output to `out`.
    pub fn new(wiring: &'a Wiring, out: O) -> Self {
        Self {
            uart: Uart16550::new(out, wiring.lines.line(UART_LINE)),
            debug_exit: DebugExitPort::new(&wiring.stop),
            post: PostCode::new(),
            registers: TestRegisters::default(),
        }
    }

    /// A device model with these devices on its buses and the standard CPUID/MSR tables.
    ///
    /// # Errors
    /// Only if the buses were too small (they are not).
    pub fn device_model(
        &'a mut self,
        wiring: &'a Wiring,
        config: DeviceModelConfig,
    ) -> Result<DeviceModel<'a>, BusError> {
        let mut dm = DeviceModel::new(&wiring.lines, &wiring.stop, config);
        dm.ports.insert(UART_PORT, 8, &mut self.uart)?;
        dm.ports.insert(DEBUG_EXIT_PORT, 1, &mut self.debug_exit)?;
        dm.ports.insert(POST_PORT, 1, &mut self.post)?;
        dm.mmio.insert(MMIO_BASE, 16, &mut self.registers)?;
        let full = BusError::Full;
        dm.cpuid
            .insert(CpuidEntry {
                leaf: 0,
                subleaf: None,
                result: CPUID_0,
            })
            .map_err(|_| full)?;
        dm.msrs
            .insert(MsrEntry {
                index: MSR_APIC_BASE.0,
                value: MSR_APIC_BASE.1,
                writable: false,
            })
            .map_err(|_| full)?;
        dm.msrs
            .insert(MsrEntry {
                index: MSR_TSC_AUX.0,
                value: MSR_TSC_AUX.1,
                writable: true,
            })
            .map_err(|_| full)?;
        Ok(dm)
    }
}
