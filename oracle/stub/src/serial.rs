//! COM1 (a 16550 UART at I/O port 0x3F8), polled. Bochs connects it to the host's TCP
//! listener (`mode=socket-client`); with the FIFO on, Bochs polls the socket at the byte rate.

use crate::port::{inb, outb};

const COM1: u16 = 0x3F8;
const DATA: u16 = COM1;
const INTERRUPT_ENABLE: u16 = COM1 + 1;
const FIFO_CONTROL: u16 = COM1 + 2;
const LINE_CONTROL: u16 = COM1 + 3;
const MODEM_CONTROL: u16 = COM1 + 4;
const LINE_STATUS: u16 = COM1 + 5;

const DATA_READY: u8 = 1 << 0;
const TRANSMIT_HOLDING_EMPTY: u8 = 1 << 5;
const TRANSMITTER_EMPTY: u8 = 1 << 6;

/// 115200 baud, 8N1, FIFO enabled and cleared, no interrupts.
pub fn init() {
    outb(INTERRUPT_ENABLE, 0);
    outb(LINE_CONTROL, 0x80);
    outb(DATA, 1);
    outb(INTERRUPT_ENABLE, 0);
    outb(LINE_CONTROL, 0x03);
    outb(FIFO_CONTROL, 0x07);
    outb(MODEM_CONTROL, 0x03);
}

/// Sends one byte.
pub fn write_byte(byte: u8) {
    while inb(LINE_STATUS) & TRANSMIT_HOLDING_EMPTY == 0 {}
    outb(DATA, byte);
}

/// Sends `bytes`.
pub fn write(bytes: &[u8]) {
    for &b in bytes {
        write_byte(b);
    }
}

/// Waits for and returns one byte.
pub fn read_byte() -> u8 {
    while inb(LINE_STATUS) & DATA_READY == 0 {}
    inb(DATA)
}

/// Waits until every byte written has left the UART.
pub fn flush() {
    while inb(LINE_STATUS) & TRANSMITTER_EMPTY == 0 {}
}
