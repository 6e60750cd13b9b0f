//! The VMX oracle stub: boots from its own ROM in Bochs (no BIOS), enters long mode, and serves
//! VMX requests from the host over COM1 (see the `oracle-proto` crate).
//!
//! Built by `cargo xtask` (see `xtask/src/oracle.rs`), not by the workspace: it is a
//! freestanding static image for the ROM, with its own flags and target directory.
#![no_std]
#![no_main]

mod boot;
mod fault;
mod gdt;
mod port;
mod serial;
mod vmx;

// The memory intrinsics and the personality symbol.
use freestanding as _;
use oracle_proto::{Booted, MAX_FRAME, PROTOCOL_VERSION, Request, Response};

fn send(response: &Response) {
    let mut buf = [0u8; MAX_FRAME];
    match oracle_proto::encode(response, &mut buf) {
        Ok(frame) => serial::write(frame),
        Err(_) => {
            // Every response is bounded by MAX_FRAME (tested in oracle-proto).
            port::debug("oracle-stub: response too large\n");
            port::shutdown();
        }
    }
}

/// Reads one frame (up to its 0x00) into `buf`; `None` if it overflowed (the rest is dropped).
fn receive(buf: &mut [u8; MAX_FRAME]) -> Option<usize> {
    let mut len = 0;
    let mut overflow = false;
    loop {
        let byte = serial::read_byte();
        if byte == 0 {
            return if overflow { None } else { Some(len) };
        }
        match buf.get_mut(len) {
            Some(slot) => {
                *slot = byte;
                len += 1;
            }
            None => overflow = true,
        }
    }
}

fn serve(request: &Request) -> Response {
    match request {
        Request::ReadMsr(msr) => Response::Msr(vmx::rdmsr(*msr)),
        Request::EnableVmx => match vmx::enable() {
            Ok(()) => Response::Done,
            Err(e) => Response::Failed(e),
        },
        Request::DisableVmx => match vmx::disable() {
            Ok(()) => Response::Done,
            Err(e) => Response::Failed(e),
        },
        Request::SetRegionHeader { region, header } => {
            if vmx::set_header(*region, *header) {
                Response::Done
            } else {
                Response::BadRequest
            }
        }
        Request::Vmclear(region) => vmx::pointer_instruction(*region, false),
        Request::Vmptrld(region) => vmx::pointer_instruction(*region, true),
        Request::Vmptrst => Response::Pointer(vmx::vmptrst()),
        Request::Fields(ops) => vmx::fields(ops),
        Request::Launch => match vmx::launch() {
            Ok(()) => Response::Done,
            Err(e) => Response::Failed(e),
        },
        Request::GuestPreset { rip, rsp } => match vmx::guest_preset(*rip, *rsp) {
            Ok(()) => Response::Done,
            Err(e) => Response::Failed(e),
        },
        Request::WriteMemory { address, bytes } => {
            if vmx::write_memory(*address, bytes) {
                Response::Done
            } else {
                Response::BadRequest
            }
        }
        Request::Enter { launch, registers } => {
            let mut registers = *registers;
            match vmx::enter(*launch, &mut registers) {
                Ok(()) => Response::Exited(registers),
                Err(e) => Response::Failed(e),
            }
        }
        Request::Shutdown => Response::Done,
    }
}

#[unsafe(no_mangle)]
extern "C" fn oracle_main() -> ! {
    fault::init();
    gdt::init();
    serial::init();
    port::debug("oracle-stub: up\n");
    send(&Response::Booted(Booted {
        version: PROTOCOL_VERSION,
        vmcs_regions: vmx::VMCS_REGIONS,
    }));
    let mut buf = [0u8; MAX_FRAME];
    loop {
        let response = match receive(&mut buf) {
            None => Response::BadRequest,
            Some(len) => match oracle_proto::decode::<Request>(&mut buf[..len]) {
                Err(_) => Response::BadRequest,
                Ok(Request::Shutdown) => {
                    serial::flush();
                    port::debug("oracle-stub: shutdown\n");
                    port::shutdown()
                }
                Ok(request) => fault::guarded(|| serve(&request)).unwrap_or_else(Response::Fault),
            },
        };
        send(&response);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    port::debug("oracle-stub: PANIC\n");
    port::shutdown()
}
