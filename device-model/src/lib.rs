//! The device-model server core.
//!
//! - [`bus`]: port and MMIO buses; devices are state machines behind [`bus::PortDevice`] /
//!   [`bus::MmioDevice`].
//! - [`uart`]: a 16550A UART; [`ports`]: debug-exit, POST code, unclaimed ports.
//! - [`irq`]: interrupt lines from devices to the device model.
//! - [`policy`]: CPUID and MSR tables.
#![no_std]
#![deny(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod bus;
pub mod decode;
pub mod irq;
pub mod platform;
pub mod policy;
pub mod ports;
pub mod server;
pub mod uart;
