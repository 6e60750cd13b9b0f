//! Messages between the VMX oracle stub, which runs inside Bochs in VMX root operation, and
//! the host harness (`cargo xtask`) that drives it over COM1.
//!
//! Every message is one postcard value, COBS-encoded and ended by a 0x00 byte, so that either
//! side can find frame boundaries in the byte stream and resynchronise after garbage. The host
//! sends one [`Request`] and waits for one [`Response`]; the stub also sends one unsolicited
//! [`Response::Booted`] when it is ready.
#![no_std]
#![deny(missing_docs)]

use heapless::Vec;
use serde::{Deserialize, Serialize};
use vmcs::VmcsError;

/// Field operations per [`Request::Fields`] batch (bounds both frames).
pub const MAX_FIELD_OPS: usize = 32;

/// Bytes per [`Request::WriteMemory`].
pub const MAX_MEMORY_WRITE: usize = 128;

/// Guest memory the host may write: 2 MiB to 16 MiB (the stub lives below 2 MiB).
pub const GUEST_MEMORY: core::ops::Range<u64> = 0x20_0000..0x100_0000;

/// General-purpose registers in encoding order: RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI,
/// R8–R15 (SDM Vol. 2A, Table 2-2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[repr(C)]
pub struct GuestRegisters(pub [u64; 16]);

/// Largest encoded frame either side sends, including COBS overhead and the 0x00 end.
pub const MAX_FRAME: usize = 1024;

/// Port the stub writes `Shutdown` to, to end Bochs (Bochs' shutdown port).
pub const BOCHS_SHUTDOWN_PORT: u16 = 0x8900;

/// Version of this protocol; [`Response::Booted`] carries it.
pub const PROTOCOL_VERSION: u16 = 3;

/// What a VMCLEAR or VMPTRLD operand points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Region {
    /// One of the stub's own page-aligned VMCS regions (index below [`Booted::vmcs_regions`]).
    Vmcs(u8),
    /// The stub's VMXON region (an error case for VMCLEAR and VMPTRLD).
    Vmxon,
    /// Any physical address, taken as it is.
    Physical(u64),
}

/// One VMREAD or VMWRITE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldOp {
    /// VMREAD of this encoding (a 64-bit register operand: the encoding is zero-extended).
    Read(u32),
    /// VMWRITE of this value to this encoding.
    Write(u32, u64),
}

/// The outcome of one [`FieldOp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldOutcome {
    /// VMREAD succeeded with this value.
    Value(u64),
    /// VMWRITE succeeded.
    Written,
    /// The instruction failed (VMfailInvalid or VMfailValid with its error number).
    Failed(VmcsError),
}

/// A request from the host.
// The stub has no allocator to box the batch; one message at a time lives on its stack.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// RDMSR of this MSR (a missing MSR raises #GP, reported as [`Response::Fault`]).
    ReadMsr(u32),
    /// Enter VMX root operation: IA32_FEATURE_CONTROL (lock + VMX outside SMX) if it is
    /// unlocked, CR0/CR4 adjusted to the fixed bits (CR4.VMXE included), VMXON.
    EnableVmx,
    /// VMXOFF.
    DisableVmx,
    /// Write this revision identifier (bits 30:0) and shadow-VMCS indicator (bit 31) into the
    /// first 4 bytes of one of the stub's VMCS regions.
    SetRegionHeader {
        /// Region index.
        region: u8,
        /// The 32-bit header.
        header: u32,
    },
    /// VMCLEAR.
    Vmclear(Region),
    /// VMPTRLD.
    Vmptrld(Region),
    /// VMPTRST: the current-VMCS pointer.
    Vmptrst,
    /// A batch of VMREAD/VMWRITE, executed in order; execution goes on after a failure.
    Fields(Vec<FieldOp, MAX_FIELD_OPS>),
    /// VMLAUNCH of the current VMCS, for entries meant to fail: the host state is left as the
    /// host wrote it, so the host learns which check failed first.
    Launch,
    /// Write the stub's own host state into the current VMCS (so that a VM exit returns to
    /// the stub) and a 64-bit guest that shares the stub's page tables, GDT and IDT, with
    /// this RIP and RSP. Controls and the exception bitmap are the host's to write.
    GuestPreset {
        /// Guest RIP.
        rip: u64,
        /// Guest RSP.
        rsp: u64,
    },
    /// Copy bytes into guest memory (identity-mapped; only inside [`GUEST_MEMORY`]).
    WriteMemory {
        /// Physical (= linear) address.
        address: u64,
        /// The bytes.
        bytes: Vec<u8, MAX_MEMORY_WRITE>,
    },
    /// VMLAUNCH (`launch`) or VMRESUME with these guest registers; answered by
    /// [`Response::Exited`] after the VM exit, or [`Response::Failed`].
    Enter {
        /// VMLAUNCH rather than VMRESUME.
        launch: bool,
        /// General-purpose registers (RSP is the VMCS's guest RSP, not this one).
        registers: GuestRegisters,
    },
    /// Write `Shutdown` to the Bochs shutdown port; no response.
    Shutdown,
}

/// Sent once by the stub when it is ready to serve requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booted {
    /// [`PROTOCOL_VERSION`] of the stub.
    pub version: u16,
    /// How many VMCS regions [`Region::Vmcs`] may name.
    pub vmcs_regions: u8,
}

/// An exception the stub took while serving a request; the request was abandoned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Exception vector (e.g. 6 for #UD, 13 for #GP).
    pub vector: u8,
    /// Error code pushed by the processor, or 0 for vectors without one.
    pub error_code: u64,
    /// Address of the faulting instruction.
    pub rip: u64,
}

/// A reply from the stub.
#[allow(clippy::large_enum_variant)] // as for `Request`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The stub is ready (unsolicited, once).
    Booted(Booted),
    /// RDMSR's value.
    Msr(u64),
    /// The instruction succeeded.
    Done,
    /// VMPTRST's value.
    Pointer(u64),
    /// The VMX instruction failed.
    Failed(VmcsError),
    /// One outcome per operation of a [`Request::Fields`] batch.
    Fields(Vec<FieldOutcome, MAX_FIELD_OPS>),
    /// The request raised an exception and was abandoned.
    Fault(Fault),
    /// The guest exited (the host reads the exit fields); its registers at the exit.
    Exited(GuestRegisters),
    /// The request frame could not be decoded, or named something out of range.
    BadRequest,
}

/// Encodes `message` as one frame (COBS, ended by 0x00) into `buf`.
///
/// # Errors
/// When `buf` is too small.
pub fn encode<'a, T: Serialize>(message: &T, buf: &'a mut [u8]) -> Result<&'a mut [u8], postcard::Error> {
    postcard::to_slice_cobs(message, buf)
}

/// Decodes one frame (its COBS bytes, with or without the ending 0x00), in place.
///
/// # Errors
/// When the frame is not a valid COBS-encoded postcard value of type `T`.
pub fn decode<'a, T: Deserialize<'a>>(frame: &'a mut [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes_cobs(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmcs::VmInstructionError;

    fn round_trip<T: Serialize + for<'a> Deserialize<'a> + PartialEq + core::fmt::Debug>(
        message: T,
    ) -> usize {
        let mut buf = [0u8; MAX_FRAME];
        let frame = encode(&message, &mut buf).expect("fits");
        let len = frame.len();
        assert_eq!(frame.last(), Some(&0), "frames end with 0x00");
        assert!(frame[..len - 1].iter().all(|&b| b != 0), "no 0x00 inside a frame");
        let decoded: T = decode(frame).expect("decodes");
        assert_eq!(decoded, message);
        len
    }

    #[test]
    fn every_message_kind_round_trips() {
        round_trip(Request::ReadMsr(0x480));
        round_trip(Request::Vmclear(Region::Physical(0x1234)));
        round_trip(Request::SetRegionHeader {
            region: 1,
            header: 0x8000_002B,
        });
        round_trip(Response::Booted(Booted {
            version: PROTOCOL_VERSION,
            vmcs_regions: 4,
        }));
        round_trip(Response::Failed(VmcsError::VmFailValid(
            VmInstructionError::UnsupportedComponent,
        )));
        round_trip(Response::Fault(Fault {
            vector: 13,
            error_code: 0,
            rip: 0x10_0000,
        }));
    }

    #[test]
    fn the_largest_batches_fit_a_frame() {
        let ops = core::iter::repeat_n(FieldOp::Write(u32::MAX, u64::MAX), MAX_FIELD_OPS).collect();
        assert!(round_trip(Request::Fields(ops)) <= MAX_FRAME);
        let outcomes = core::iter::repeat_n(FieldOutcome::Value(u64::MAX), MAX_FIELD_OPS).collect();
        assert!(round_trip(Response::Fields(outcomes)) <= MAX_FRAME);
        let failures = core::iter::repeat_n(
            FieldOutcome::Failed(VmcsError::VmFailValid(VmInstructionError::Unknown(u32::MAX))),
            MAX_FIELD_OPS,
        )
        .collect();
        assert!(round_trip(Response::Fields(failures)) <= MAX_FRAME);
    }

    #[test]
    fn garbage_does_not_decode_as_a_request() {
        let mut junk = [0xFFu8, 0xFF, 0xFF, 0x00];
        assert!(decode::<Request>(&mut junk).is_err());
    }
}
