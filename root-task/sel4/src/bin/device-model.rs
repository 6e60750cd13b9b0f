//! The device model on seL4: first checks what its capabilities and its badge let it do (and
//! reports it), then answers exit records from the VMM server with the standard devices. The
//! guest's UART output goes to the real serial line through the I/O-port capability it holds.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use device_model::platform::{StandardDevices, Wiring};
use device_model::server::DeviceModelConfig;
use device_model::uart::SerialOut;
use sel4::{Endpoint, IoPort, Notification, Tcb};
use sel4_system::ipc;
use sel4_system::layout::{UART_DATA_PORT, UART_STATUS_PORT, dm_badge, slot};
use sel4_system::report::{self, DeviceModelStatistics, Report};
use sel4_system::{main, println};
use vmm_protocol::{ExitRecord, MAX_MESSAGE_SIZE, PROTOCOL_VERSION, Request, Response};

main!("device-model", serve);

/// UART bytes that reached the serial line.
static UART_BYTES: AtomicU64 = AtomicU64::new(0);

/// The real COM1, driven through two single-port capabilities.
struct SerialLine {
    data: IoPort,
    status: IoPort,
}

/// The line status register's "transmitter holding register empty" bit.
const LSR_THR_EMPTY: u8 = 1 << 5;

impl SerialOut for SerialLine {
    fn put(&mut self, byte: u8) {
        // Wait until the transmitter takes a byte (a bounded wait: the line may be absent).
        for _ in 0..10_000 {
            match self.status.in8(UART_STATUS_PORT) {
                Ok(lsr) if lsr & LSR_THR_EMPTY != 0 => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if self.data.out8(UART_DATA_PORT, byte).is_ok() {
            UART_BYTES.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn serve(_argument: u64) -> ! {
    // SAFETY: this is a component started by the root task, and nothing has used IPC yet.
    unsafe { sel4_system::runtime::use_component_ipc_buffer() };
    report::send(&probe());
    // Tell the VMM server that exit records will be answered from now on.
    Notification::from_bits(slot::VMM_NOTIFICATION).signal();

    let wiring = Wiring::default();
    let line = SerialLine {
        data: IoPort::from_bits(slot::UART_DATA),
        status: IoPort::from_bits(slot::UART_STATUS),
    };
    let mut devices = StandardDevices::new(&wiring, line);
    let mut dm = match devices.device_model(&wiring, DeviceModelConfig::default()) {
        Ok(dm) => dm,
        Err(e) => panic!("the standard platform does not fit its buses: {e:?}"),
    };
    let service = Endpoint::from_bits(slot::SERVICE);
    let mut replies = 0u64;
    let mut seen: heapless::Vec<u16, 32> = heapless::Vec::new();
    let mut record = [0u8; MAX_MESSAGE_SIZE];
    let mut out = [0u8; MAX_MESSAGE_SIZE];
    loop {
        let (info, badge) = service.recv();
        let answer: &[u8] = match badge {
            dm_badge::EXIT_RECORDS => {
                // A record that does not decode gets an empty reply: the VMM server counts it as
                // malformed and sends the record again, marked rejected.
                let len = ipc::read_payload(info, &mut record).unwrap_or(0);
                if let Ok(decoded) = ExitRecord::decode(&record[..len])
                    && !seen.contains(&decoded.reason)
                    && seen.push(decoded.reason).is_ok()
                {
                    // The first exit of each reason, as decoded: what the system test checks.
                    println!(
                        "first exit {} at {:#x}: {:?}",
                        decoded.reason, decoded.rip, decoded.detail
                    );
                }
                match dm.handle_bytes(&record[..len], &mut out) {
                    Ok(reply) => reply,
                    Err(_) => &[],
                }
            }
            dm_badge::STATISTICS => {
                let stats = dm.stats();
                let answer = DeviceModelStatistics {
                    records: stats.records,
                    replies,
                    malformed: stats.malformed,
                    uart_bytes: UART_BYTES.load(Ordering::Relaxed),
                    interrupts: stats.interrupts,
                };
                postcard::to_slice(&answer, &mut out[..]).map_or(&[][..], |b| &*b)
            }
            other => {
                println!("message with unknown badge {other:#x} ignored");
                &[]
            }
        };
        if badge == dm_badge::EXIT_RECORDS {
            replies += 1;
        }
        if let Err(e) = ipc::reply(answer) {
            println!("cannot reply: {e:?}");
        }
    }
}

/// What this component may do: talk to the VMM server as the device model, not as the
/// controller; invoke nothing it was not given.
fn probe() -> Report {
    let vmm = Endpoint::from_bits(slot::VMM);
    let hello = matches!(
        ipc::request(
            vmm,
            &Request::Hello {
                version: PROTOCOL_VERSION
            }
        ),
        Ok(Response::Hello { .. })
    );
    let forbidden_request = match ipc::request(vmm, &Request::Run) {
        Ok(Response::Error(report)) => Some(report.code),
        Ok(other) => {
            println!("Run was not refused: {other:?}");
            None
        }
        Err(e) => {
            println!("Run: {e:?}");
            None
        }
    };
    // Any invocation would do: a TCB's Suspend on a slot this component was never given.
    let never_granted_slot = match Tcb::from_bits(slot::NEVER_GRANTED).suspend() {
        Ok(()) => None,
        Err(e) => Some(e.code()),
    };
    println!(
        "probes: hello {hello}, Run -> {forbidden_request:?}, slot {} -> kernel error {never_granted_slot:?}",
        slot::NEVER_GRANTED
    );
    Report::DeviceModelReady {
        hello,
        forbidden_request,
        never_granted_slot,
    }
}
