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

/// The compiler's memory intrinsics (no libc here). Written with string instructions so that
/// they cannot be compiled back into calls to themselves.
mod mem {
    /// memcpy.
    ///
    /// # Safety
    /// As C's memcpy.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // SAFETY: the caller passes valid, non-overlapping ranges of n bytes.
        unsafe {
            core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
                options(nostack, preserves_flags))
        }
        dest
    }

    /// memmove.
    ///
    /// # Safety
    /// As C's memmove.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        if (dest as usize) <= (src as usize) || (dest as usize) >= (src as usize).wrapping_add(n) {
            // SAFETY: a forward copy is correct when dest does not start inside src.
            unsafe { memcpy(dest, src, n) }
        } else if n > 0 {
            // SAFETY: a backward copy from the last byte handles dest inside src.
            unsafe {
                core::arch::asm!("std", "rep movsb", "cld", inout("rcx") n => _,
                    inout("rdi") dest.add(n - 1) => _, inout("rsi") src.add(n - 1) => _, options(nostack))
            }
            dest
        } else {
            dest
        }
    }

    /// memset.
    ///
    /// # Safety
    /// As C's memset.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memset(dest: *mut u8, value: i32, n: usize) -> *mut u8 {
        // SAFETY: the caller passes a valid range of n bytes.
        unsafe {
            core::arch::asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _, in("al") value as u8,
                options(nostack, preserves_flags))
        }
        dest
    }

    /// memcmp.
    ///
    /// # Safety
    /// As C's memcmp.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        for i in 0..n {
            // SAFETY: the caller passes valid ranges of n bytes.
            let (x, y) = unsafe {
                (
                    core::ptr::read_volatile(a.add(i)),
                    core::ptr::read_volatile(b.add(i)),
                )
            };
            if x != y {
                return i32::from(x) - i32::from(y);
            }
        }
        0
    }

    /// bcmp.
    ///
    /// # Safety
    /// As memcmp.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: same contract.
        unsafe { memcmp(a, b, n) }
    }

    /// Referenced by the precompiled `core`; never called (panic = "abort").
    #[unsafe(no_mangle)]
    pub extern "C" fn rust_eh_personality() {}
}
