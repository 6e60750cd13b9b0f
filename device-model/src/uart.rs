//! A 16550A UART: every register, DLAB, FIFO, line-status and interrupt-identification logic,
//! loopback, and an interrupt through a [`Trigger`]. Transmitted bytes go to any
//! [`SerialOut`] at once (the transmitter is infinitely fast, so THR is always empty again
//! by the time the guest looks).
//!
//! Register map (offset from the base port; National Semiconductor PC16550D datasheet,
//! Table II "Register Summary"):
//!
//! | off | DLAB=0 read | DLAB=0 write | DLAB=1 |
//! |-----|-------------|--------------|--------|
//! | 0 | RBR receive buffer | THR transmit holding | DLL divisor low |
//! | 1 | IER interrupt enable | IER | DLM divisor high |
//! | 2 | IIR interrupt identification | FCR FIFO control | (same) |
//! | 3 | LCR line control (bit 7 = DLAB) | LCR | |
//! | 4 | MCR modem control | MCR | |
//! | 5 | LSR line status | (ignored) | |
//! | 6 | MSR modem status | (ignored) | |
//! | 7 | SCR scratch | SCR | |
//!
//! As on a PC, the interrupt reaches the interrupt controller only while MCR.OUT2 is set.

use crate::irq::Trigger;

/// Where transmitted bytes go.
pub trait SerialOut {
    /// One byte left the transmitter.
    fn put(&mut self, byte: u8);
}

impl<const N: usize> SerialOut for heapless::Vec<u8, N> {
    fn put(&mut self, byte: u8) {
        // A full buffer drops, as a disconnected line would.
        let _ = self.push(byte);
    }
}

impl<T: SerialOut + ?Sized> SerialOut for &mut T {
    fn put(&mut self, byte: u8) {
        (**self).put(byte);
    }
}

/// Register offsets.
pub mod reg {
    /// RBR / THR / DLL.
    pub const DATA: u16 = 0;
    /// IER / DLM.
    pub const IER: u16 = 1;
    /// IIR (read) / FCR (write).
    pub const IIR_FCR: u16 = 2;
    /// LCR.
    pub const LCR: u16 = 3;
    /// MCR.
    pub const MCR: u16 = 4;
    /// LSR.
    pub const LSR: u16 = 5;
    /// MSR.
    pub const MSR: u16 = 6;
    /// SCR.
    pub const SCR: u16 = 7;
}

/// LSR bits.
pub mod lsr {
    /// Data ready.
    pub const DATA_READY: u8 = 1 << 0;
    /// Overrun error.
    pub const OVERRUN: u8 = 1 << 1;
    /// Transmit holding register empty.
    pub const THR_EMPTY: u8 = 1 << 5;
    /// Transmitter empty.
    pub const TRANSMITTER_EMPTY: u8 = 1 << 6;
}

const IER_RECEIVED_DATA: u8 = 1 << 0;
const IER_THR_EMPTY: u8 = 1 << 1;
const IER_LINE_STATUS: u8 = 1 << 2;
const IER_MODEM_STATUS: u8 = 1 << 3;
const LCR_DLAB: u8 = 1 << 7;
const MCR_OUT2: u8 = 1 << 3;
const MCR_LOOPBACK: u8 = 1 << 4;
const FCR_ENABLE: u8 = 1 << 0;
const FCR_CLEAR_RX: u8 = 1 << 1;
const IIR_NONE: u8 = 0x01;
const IIR_LINE_STATUS: u8 = 0x06;
const IIR_RECEIVED_DATA: u8 = 0x04;
const IIR_THR_EMPTY: u8 = 0x02;
const IIR_MODEM_STATUS: u8 = 0x00;
const IIR_FIFO_ENABLED: u8 = 0xC0;
/// CTS, DSR and DCD: a connected peer.
const MSR_CONNECTED: u8 = 0xB0;

/// Receive FIFO depth of the 16550A.
pub const FIFO_DEPTH: usize = 16;

/// The UART. See the module documentation.
#[derive(Debug)]
pub struct Uart16550<O: SerialOut, T: Trigger> {
    out: O,
    trigger: T,
    rx: heapless::Deque<u8, FIFO_DEPTH>,
    ier: u8,
    lcr: u8,
    mcr: u8,
    fcr: u8,
    scr: u8,
    divisor: u16,
    overrun: bool,
    thr_empty_pending: bool,
    modem_delta: bool,
    /// Whether the interrupt output was asserted after the last change (edges trigger).
    asserted: bool,
    transmitted: u64,
}

/// The UART's registers and FIFO: everything but its output and trigger, so that a UART can
/// be recreated exactly (a restarted device model).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UartState {
    /// Receive FIFO contents, oldest first.
    pub rx: heapless::Vec<u8, FIFO_DEPTH>,
    /// IER, LCR, MCR, FCR, SCR.
    pub registers: [u8; 5],
    /// DLM:DLL.
    pub divisor: u16,
    /// Overrun, THR-empty pending, modem-status delta, interrupt asserted.
    pub flags: [bool; 4],
    /// Bytes transmitted.
    pub transmitted: u64,
}

impl<O: SerialOut, T: Trigger> Uart16550<O, T> {
    /// The register state.
    pub fn state(&self) -> UartState {
        UartState {
            rx: self.rx.iter().copied().collect(),
            registers: [self.ier, self.lcr, self.mcr, self.fcr, self.scr],
            divisor: self.divisor,
            flags: [
                self.overrun,
                self.thr_empty_pending,
                self.modem_delta,
                self.asserted,
            ],
            transmitted: self.transmitted,
        }
    }

    /// Takes on `state` (without triggering: the interrupt line's own state is restored
    /// separately).
    pub fn restore(&mut self, state: &UartState) {
        self.rx.clear();
        for &b in &state.rx {
            let _ = self.rx.push_back(b);
        }
        [self.ier, self.lcr, self.mcr, self.fcr, self.scr] = state.registers;
        self.divisor = state.divisor;
        [
            self.overrun,
            self.thr_empty_pending,
            self.modem_delta,
            self.asserted,
        ] = state.flags;
        self.transmitted = state.transmitted;
    }

    /// A UART after reset: 8N1 at divisor 12 (9600 baud), interrupts disabled.
    pub fn new(out: O, trigger: T) -> Self {
        Self {
            out,
            trigger,
            rx: heapless::Deque::new(),
            ier: 0,
            lcr: 0x03,
            mcr: 0,
            fcr: 0,
            scr: 0,
            divisor: 12,
            overrun: false,
            thr_empty_pending: false,
            modem_delta: false,
            asserted: false,
            transmitted: 0,
        }
    }

    /// The output sink.
    pub fn output(&self) -> &O {
        &self.out
    }

    /// Bytes transmitted so far.
    pub fn transmitted(&self) -> u64 {
        self.transmitted
    }

    /// The baud-rate divisor (DLM:DLL).
    pub fn divisor(&self) -> u16 {
        self.divisor
    }

    fn fifo_capacity(&self) -> usize {
        if self.fcr & FCR_ENABLE != 0 { FIFO_DEPTH } else { 1 }
    }

    /// Bytes arriving on the receive line. Returns how many were taken; the rest overrun
    /// (LSR.OE is set) and are lost, as on the wire.
    pub fn receive(&mut self, bytes: &[u8]) -> usize {
        let mut taken = 0;
        for &byte in bytes {
            if self.rx.len() >= self.fifo_capacity() || self.rx.push_back(byte).is_err() {
                self.overrun = true;
                break;
            }
            taken += 1;
        }
        self.update_interrupt();
        taken
    }

    fn line_status(&self) -> u8 {
        let mut value = lsr::THR_EMPTY | lsr::TRANSMITTER_EMPTY;
        if !self.rx.is_empty() {
            value |= lsr::DATA_READY;
        }
        if self.overrun {
            value |= lsr::OVERRUN;
        }
        value
    }

    fn modem_status(&self) -> u8 {
        if self.mcr & MCR_LOOPBACK != 0 {
            // Loopback: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
            let m = self.mcr;
            ((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) | ((m & 0x08) << 4)
        } else {
            MSR_CONNECTED
        }
    }

    /// The highest-priority pending interrupt, as IIR bits 3:0.
    fn interrupt_id(&self) -> u8 {
        if self.ier & IER_LINE_STATUS != 0 && self.overrun {
            IIR_LINE_STATUS
        } else if self.ier & IER_RECEIVED_DATA != 0 && !self.rx.is_empty() {
            IIR_RECEIVED_DATA
        } else if self.ier & IER_THR_EMPTY != 0 && self.thr_empty_pending {
            IIR_THR_EMPTY
        } else if self.ier & IER_MODEM_STATUS != 0 && self.modem_delta {
            IIR_MODEM_STATUS
        } else {
            IIR_NONE
        }
    }

    /// Re-evaluates the interrupt output and triggers on a rising edge.
    fn update_interrupt(&mut self) {
        let asserted = self.interrupt_id() != IIR_NONE && self.mcr & MCR_OUT2 != 0;
        if asserted && !self.asserted {
            self.trigger.trigger();
        }
        self.asserted = asserted;
    }

    fn transmit(&mut self, byte: u8) {
        if self.mcr & MCR_LOOPBACK != 0 {
            self.receive(&[byte]);
        } else {
            self.out.put(byte);
            self.transmitted += 1;
        }
        // The byte left at once: THR is empty again.
        self.thr_empty_pending = true;
    }

    /// Reads register `offset` (0–7; others read as 0xFF).
    pub fn read_register(&mut self, offset: u16) -> u8 {
        let dlab = self.lcr & LCR_DLAB != 0;
        let value = match offset {
            reg::DATA if dlab => self.divisor as u8,
            reg::DATA => self.rx.pop_front().unwrap_or(0),
            reg::IER if dlab => (self.divisor >> 8) as u8,
            reg::IER => self.ier,
            reg::IIR_FCR => {
                let id = self.interrupt_id();
                // Reading IIR while it reports THR empty acknowledges that interrupt.
                if id == IIR_THR_EMPTY {
                    self.thr_empty_pending = false;
                }
                let fifo = if self.fcr & FCR_ENABLE != 0 {
                    IIR_FIFO_ENABLED
                } else {
                    0
                };
                id | fifo
            }
            reg::LCR => self.lcr,
            reg::MCR => self.mcr,
            reg::LSR => {
                let value = self.line_status();
                self.overrun = false; // OE clears on read
                value
            }
            reg::MSR => {
                self.modem_delta = false;
                self.modem_status()
            }
            reg::SCR => self.scr,
            _ => 0xFF,
        };
        self.update_interrupt();
        value
    }

    /// Writes register `offset` (0–7; others are ignored).
    pub fn write_register(&mut self, offset: u16, value: u8) {
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset {
            reg::DATA if dlab => self.divisor = (self.divisor & 0xFF00) | u16::from(value),
            reg::DATA => self.transmit(value),
            reg::IER if dlab => self.divisor = (self.divisor & 0x00FF) | (u16::from(value) << 8),
            reg::IER => {
                let enabling_thre = value & IER_THR_EMPTY != 0 && self.ier & IER_THR_EMPTY == 0;
                self.ier = value & 0x0F;
                // Enabling the THRE interrupt while THR is empty raises it at once.
                if enabling_thre {
                    self.thr_empty_pending = true;
                }
            }
            reg::IIR_FCR => {
                if value & FCR_CLEAR_RX != 0 {
                    self.rx.clear();
                }
                self.fcr = value & 0xC9; // enable, DMA mode, trigger level
                if self.fcr & FCR_ENABLE == 0 {
                    self.rx.clear();
                }
            }
            reg::LCR => self.lcr = value,
            reg::MCR => {
                let before = self.modem_status();
                self.mcr = value & 0x1F;
                if self.modem_status() != before {
                    self.modem_delta = true;
                }
            }
            reg::SCR => self.scr = value,
            _ => {} // LSR and MSR are read-only here
        }
        self.update_interrupt();
    }
}

impl<O: SerialOut, T: Trigger> crate::bus::PortDevice for Uart16550<O, T> {
    fn save(&self, out: &mut [u8]) -> Option<usize> {
        crate::bus::save_state(&self.state(), out)
    }

    fn load(&mut self, state: &[u8]) -> bool {
        crate::bus::load_state(state)
            .map(|s: UartState| self.restore(&s))
            .is_some()
    }

    fn read(&mut self, offset: u16, size: u8) -> u32 {
        // Wider accesses read consecutive registers (what the bus would do byte by byte).
        let mut value = 0;
        for i in 0..u16::from(size.min(4)) {
            value |= u32::from(self.read_register(offset + i)) << (8 * i);
        }
        value
    }

    fn write(&mut self, offset: u16, size: u8, value: u32) {
        for i in 0..u16::from(size.min(4)) {
            self.write_register(offset + i, (value >> (8 * i)) as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::InterruptLines;

    type Out = heapless::Vec<u8, 64>;

    #[test]
    fn transmits_and_always_reports_thr_empty() {
        let lines = InterruptLines::new();
        let mut uart = Uart16550::new(Out::new(), lines.line(4));
        for &b in b"Hello" {
            assert_ne!(uart.read_register(reg::LSR) & lsr::THR_EMPTY, 0);
            uart.write_register(reg::DATA, b);
        }
        assert_eq!(uart.output().as_slice(), b"Hello");
        assert_eq!(uart.transmitted(), 5);
        assert!(!lines.any_pending(), "interrupts are off after reset");
    }

    #[test]
    fn dlab_switches_to_the_divisor() {
        let mut uart = Uart16550::new(Out::new(), crate::irq::NoTrigger);
        uart.write_register(reg::LCR, 0x83);
        uart.write_register(reg::DATA, 0x01);
        uart.write_register(reg::IER, 0x00);
        assert_eq!(uart.divisor(), 1);
        assert_eq!(uart.read_register(reg::DATA), 0x01);
        uart.write_register(reg::LCR, 0x03);
        uart.write_register(reg::DATA, b'x');
        assert_eq!(uart.output().as_slice(), b"x", "divisor writes are not output");
        assert_eq!(uart.read_register(reg::IER), 0);
    }

    #[test]
    fn receive_sets_data_ready_and_raises_the_interrupt_with_out2() {
        let lines = InterruptLines::new();
        let mut uart = Uart16550::new(Out::new(), lines.line(4));
        uart.write_register(reg::IER, IER_RECEIVED_DATA);
        assert_eq!(uart.receive(b"a"), 1);
        assert!(!lines.any_pending(), "OUT2 gates the interrupt");
        uart.write_register(reg::MCR, MCR_OUT2);
        assert_eq!(lines.take_next(), Some(4));
        assert_eq!(uart.read_register(reg::IIR_FCR), IIR_RECEIVED_DATA);
        assert_ne!(uart.read_register(reg::LSR) & lsr::DATA_READY, 0);
        assert_eq!(uart.read_register(reg::DATA), b'a');
        assert_eq!(uart.read_register(reg::LSR) & lsr::DATA_READY, 0);
        assert_eq!(uart.read_register(reg::IIR_FCR), IIR_NONE);
    }

    #[test]
    fn thr_empty_interrupt_is_acknowledged_by_reading_iir() {
        let lines = InterruptLines::new();
        let mut uart = Uart16550::new(Out::new(), lines.line(4));
        uart.write_register(reg::MCR, MCR_OUT2);
        uart.write_register(reg::IER, IER_THR_EMPTY);
        assert_eq!(
            lines.take_next(),
            Some(4),
            "enabling THRE with THR empty interrupts"
        );
        assert_eq!(uart.read_register(reg::IIR_FCR), IIR_THR_EMPTY);
        assert_eq!(uart.read_register(reg::IIR_FCR), IIR_NONE, "acknowledged");
        uart.write_register(reg::DATA, b'z');
        assert_eq!(lines.take_next(), Some(4), "a new byte left: THR empty again");
    }

    #[test]
    fn overrun_without_fifo_and_fifo_depth_with_it() {
        let mut uart = Uart16550::new(Out::new(), crate::irq::NoTrigger);
        assert_eq!(uart.receive(b"ab"), 1);
        assert_ne!(uart.read_register(reg::LSR) & lsr::OVERRUN, 0);
        assert_eq!(
            uart.read_register(reg::LSR) & lsr::OVERRUN,
            0,
            "OE clears on read"
        );
        uart.write_register(reg::IIR_FCR, FCR_ENABLE | FCR_CLEAR_RX);
        assert_eq!(
            uart.read_register(reg::IIR_FCR) & IIR_FIFO_ENABLED,
            IIR_FIFO_ENABLED
        );
        assert_eq!(uart.receive(&[0u8; 20]), FIFO_DEPTH);
    }

    #[test]
    fn loopback_feeds_the_receiver() {
        let mut uart = Uart16550::new(Out::new(), crate::irq::NoTrigger);
        uart.write_register(reg::MCR, MCR_LOOPBACK | 0x03);
        uart.write_register(reg::DATA, b'q');
        assert!(uart.output().is_empty());
        assert_eq!(uart.read_register(reg::DATA), b'q');
        assert_eq!(uart.read_register(reg::MSR) & 0x30, 0x30, "RTS->CTS, DTR->DSR");
    }

    #[test]
    fn state_restores_exactly() {
        let mut a = Uart16550::new(Out::new(), crate::irq::NoTrigger);
        a.write_register(reg::MCR, MCR_OUT2 | MCR_LOOPBACK);
        a.write_register(reg::IIR_FCR, FCR_ENABLE);
        a.write_register(reg::SCR, 0x77);
        a.write_register(reg::DATA, b'x');
        let mut b = Uart16550::new(Out::new(), crate::irq::NoTrigger);
        b.restore(&a.state());
        assert_eq!(b.state(), a.state());
        assert_eq!(b.read_register(reg::DATA), b'x');
        assert_eq!(b.read_register(reg::SCR), 0x77);
    }

    #[test]
    fn scratch_register_holds_a_byte() {
        let mut uart = Uart16550::new(Out::new(), crate::irq::NoTrigger);
        uart.write_register(reg::SCR, 0x5A);
        assert_eq!(uart.read_register(reg::SCR), 0x5A);
        assert_eq!(uart.read_register(9), 0xFF);
    }
}
