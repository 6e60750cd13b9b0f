//! Exits: guest snippets run in Bochs, and the exit each causes, as the `vmcs` crate decodes
//! it ([`VmxExitInfo::read`] through the stub, then [`VmxExitInfo::detail`]), must equal what
//! the SDM says the snippet produces.

use oracle_proto::{FieldOp, FieldOutcome, GuestRegisters, Region, Request, Response};
use vmcs::caps::{ControlKind, VmxCapabilities, set_control};
use vmcs::exit::{
    AddressSize, ControlRegister, CrAccessQualification, EptViolationQualification, ExceptionQualification,
    ExitDetail, ExitReason, Gpr, InsOutsInfo, IoDirection, IoQualification, IoSize, LmswOperand,
    MemoryInstructionInfo, MemoryOperand, MovDrDirection, MovDrQualification, RegisterOrMemory,
    SegmentRegister, VmreadVmwriteInfo,
};
use vmcs::{
    InterruptionInfo, VmcsAccess, VmcsControl32, VmcsControl64, VmcsControlNW, VmcsError, VmcsGuestNW,
    VmxExitInfo,
};

use super::diff::{Oracle, Tally};

/// Where snippets run: code, a stack, and data for string I/O (inside the stub's guest memory).
const CODE: u64 = 0x20_0000;
const STACK: u64 = 0x30_0000;
const DATA: u64 = 0x28_0000;

/// EPT for the snippets that need it (SDM Vol. 3C, Section 29.3.2): 2-MiB pages mapping the
/// first 16 MiB 1:1, write-back, read/write/execute, except a read-only page, an absent page
/// and a page that is readable and writable but not executable.
const EPT_TABLES: u64 = 0x40_0000;
const EPT_READ_ONLY: u64 = 0x60_0000;
const EPT_ABSENT: u64 = 0x80_0000;
const EPT_NO_EXECUTE: u64 = 0xA0_0000;

/// The EPT paging structures as (address, 64-bit entry) writes.
fn ept_tables() -> Vec<(u64, u64)> {
    const READ: u64 = 1;
    const WRITE: u64 = 2;
    const EXECUTE: u64 = 4;
    // Memory type WB (6) in bits 5:3, bit 7: a 2-MiB page (Table 29-4).
    const LARGE_WB: u64 = 6 << 3 | 1 << 7;
    let mut entries = vec![(EPT_TABLES, (EPT_TABLES + 0x1000) | READ | WRITE | EXECUTE)];
    entries.push((
        EPT_TABLES + 0x1000,
        (EPT_TABLES + 0x2000) | READ | WRITE | EXECUTE,
    ));
    for page in 0..8u64 {
        let base = page << 21;
        let access = match base {
            EPT_READ_ONLY => READ,
            EPT_ABSENT => continue,
            EPT_NO_EXECUTE => READ | WRITE,
            _ => READ | WRITE | EXECUTE,
        };
        entries.push((EPT_TABLES + 0x2000 + 8 * page, base | LARGE_WB | access));
    }
    entries
}

/// The EPTP for [`ept_tables`]: write-back, 4-level walk (Table 25-9).
const EPTP: u64 = EPT_TABLES | 3 << 3 | 6;

/// An EPT violation by a data access or fetch at a linear address the guest translated
/// (bits 7 and 8 set), with the entry's permissions; no advanced information.
const fn ept_violation(
    read: bool,
    write: bool,
    fetch: bool,
    (readable, writable, executable): (bool, bool, bool),
) -> EptViolationQualification {
    EptViolationQualification {
        read,
        write,
        fetch,
        readable,
        writable,
        executable,
        user_executable: false,
        linear_address_valid: true,
        translation: true,
        user_mode_linear_address: false,
        linear_writable: false,
        linear_execute_disable: false,
        nmi_unblocking: false,
        shadow_stack: false,
        supervisor_shadow_stack: false,
        guest_paging_verification: false,
        asynchronous: false,
    }
}

/// The VMCS region the snippets use.
const REGION: u8 = 4;

/// `VmcsAccess` through the stub: one VMREAD or VMWRITE per request.
struct Remote<'a, O: Oracle> {
    oracle: &'a mut O,
    link_error: Option<String>,
}

impl<O: Oracle> Remote<'_, O> {
    fn op(&mut self, op: FieldOp) -> Result<FieldOutcome, VmcsError> {
        match self.oracle.call(&Request::Fields([op].into_iter().collect())) {
            Ok(Response::Fields(outcomes)) if outcomes.len() == 1 => Ok(outcomes[0]),
            Ok(other) => {
                self.link_error = Some(format!("{op:?}: {other:?}"));
                Err(VmcsError::Kernel(0))
            }
            Err(e) => {
                self.link_error = Some(e);
                Err(VmcsError::Kernel(0))
            }
        }
    }
}

impl<O: Oracle> VmcsAccess for Remote<'_, O> {
    fn read(&mut self, encoding: u32) -> Result<u64, VmcsError> {
        match self.op(FieldOp::Read(encoding))? {
            FieldOutcome::Value(v) => Ok(v),
            FieldOutcome::Failed(e) => Err(e),
            FieldOutcome::Written => Err(VmcsError::Kernel(0)),
        }
    }

    fn write(&mut self, encoding: u32, value: u64) -> Result<(), VmcsError> {
        match self.op(FieldOp::Write(encoding, value))? {
            FieldOutcome::Written => Ok(()),
            FieldOutcome::Failed(e) => Err(e),
            FieldOutcome::Value(_) => Err(VmcsError::Kernel(0)),
        }
    }
}

/// One guest snippet and what its first instruction must cause.
struct Snippet {
    name: &'static str,
    /// Machine code; the first instruction exits.
    code: &'static [u8],
    /// Guest registers (RAX, RCX, RDX, RBX, RSP-unused, RBP, RSI, RDI, R8..R15).
    registers: &'static [(Gpr, u64)],
    /// Extra field writes (CR masks and shadows, guest CR4).
    fields: &'static [(u32, u64)],
    reason: ExitReason,
    detail: ExitDetail,
    /// The instruction length the exit must report, where the SDM defines one.
    length: Option<u32>,
    /// VM-exit interruption error code, for exceptions that push one.
    error_code: Option<u32>,
    /// Runs with EPT on (the tables of [`ept_tables`]); skipped on models without EPT.
    needs_ept: bool,
    /// Bits set in guest CR4 on top of the preset's (e.g. OSXSAVE for XSETBV).
    guest_cr4_or: u64,
    /// Guest RIP at the exit.
    exit_rip: u64,
    /// Guest-physical and guest-linear addresses the exit must report (EPT violations).
    addresses: Option<(u64, u64)>,
}

const BASE: Snippet = Snippet {
    name: "",
    code: &[],
    registers: &[],
    fields: &[],
    reason: ExitReason::Hlt,
    detail: plain(ExitReason::Hlt),
    length: None,
    error_code: None,
    needs_ept: false,
    guest_cr4_or: 0,
    exit_rip: CODE,
    addresses: None,
};

const CR0_MASK: u32 = VmcsControlNW::Cr0GuestHostMask as u32;
const CR0_SHADOW: u32 = VmcsControlNW::Cr0ReadShadow as u32;
const CR4_MASK: u32 = VmcsControlNW::Cr4GuestHostMask as u32;

const fn io(
    port: u16,
    size: IoSize,
    direction: IoDirection,
    string: bool,
    rep: bool,
    immediate: bool,
) -> IoQualification {
    IoQualification {
        port,
        size,
        direction,
        string,
        rep,
        immediate,
    }
}

const fn plain(reason: ExitReason) -> ExitDetail {
    ExitDetail::Other {
        reason,
        qualification: 0,
    }
}

const fn exception(raw: u32) -> ExitDetail {
    ExitDetail::Exception {
        info: InterruptionInfo::from_raw(raw),
        qualification: ExceptionQualification::None,
    }
}

fn snippets() -> Vec<Snippet> {
    use ExitReason as R;
    use IoDirection::{In, Out};
    use IoSize::{Byte, Dword, Word};
    let outs_info = InsOutsInfo {
        address_size: AddressSize::Bits64,
        segment: SegmentRegister::Ds,
    };
    let ins_info = InsOutsInfo {
        address_size: AddressSize::Bits64,
        segment: SegmentRegister::Es,
    };
    let rax_operand = MemoryOperand {
        address_size: AddressSize::Bits64,
        segment: SegmentRegister::Ds,
        base: Some(Gpr::Rax),
        index: None,
    };
    vec![
        Snippet {
            name: "out dx, al",
            code: &[0xEE],
            registers: &[(Gpr::Rdx, 0x3F8)],
            fields: &[],
            reason: R::IoInstruction,
            detail: ExitDetail::Io {
                qualification: io(0x3F8, Byte, Out, false, false, false),
                string: None,
            },
            length: Some(1),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "in ax, dx",
            code: &[0x66, 0xED],
            registers: &[(Gpr::Rdx, 0x60)],
            fields: &[],
            reason: R::IoInstruction,
            detail: ExitDetail::Io {
                qualification: io(0x60, Word, In, false, false, false),
                string: None,
            },
            length: Some(2),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "in eax, dx",
            code: &[0xED],
            registers: &[(Gpr::Rdx, 0xCFC)],
            fields: &[],
            reason: R::IoInstruction,
            detail: ExitDetail::Io {
                qualification: io(0xCFC, Dword, In, false, false, false),
                string: None,
            },
            length: Some(1),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "out 0x80, eax",
            code: &[0xE7, 0x80],
            registers: &[],
            fields: &[],
            reason: R::IoInstruction,
            detail: ExitDetail::Io {
                qualification: io(0x80, Dword, Out, false, false, true),
                string: None,
            },
            length: Some(2),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "in al, 0x71",
            code: &[0xE4, 0x71],
            registers: &[],
            fields: &[],
            reason: R::IoInstruction,
            detail: ExitDetail::Io {
                qualification: io(0x71, Byte, In, false, false, true),
                string: None,
            },
            length: Some(2),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "rep outsb",
            code: &[0xF3, 0x6E],
            registers: &[(Gpr::Rdx, 0x3F8), (Gpr::Rsi, DATA), (Gpr::Rcx, 3)],
            fields: &[],
            reason: R::IoInstruction,
            detail: ExitDetail::Io {
                qualification: io(0x3F8, Byte, Out, true, true, false),
                string: Some(outs_info),
            },
            length: Some(2),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "insw",
            code: &[0x66, 0x6D],
            registers: &[(Gpr::Rdx, 0x1F0), (Gpr::Rdi, DATA)],
            fields: &[],
            reason: R::IoInstruction,
            detail: ExitDetail::Io {
                qualification: io(0x1F0, Word, In, true, false, false),
                string: Some(ins_info),
            },
            length: Some(2),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "rep insd",
            code: &[0xF3, 0x6D],
            registers: &[(Gpr::Rdx, 0x1F0), (Gpr::Rdi, DATA), (Gpr::Rcx, 2)],
            fields: &[],
            reason: R::IoInstruction,
            detail: ExitDetail::Io {
                qualification: io(0x1F0, Dword, In, true, true, false),
                string: Some(ins_info),
            },
            length: Some(2),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "cpuid",
            code: &[0x0F, 0xA2],
            registers: &[],
            fields: &[],
            reason: R::Cpuid,
            detail: plain(R::Cpuid),
            length: Some(2),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "hlt",
            code: &[0xF4],
            registers: &[],
            fields: &[],
            reason: R::Hlt,
            detail: plain(R::Hlt),
            length: Some(1),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "vmcall",
            code: &[0x0F, 0x01, 0xC1],
            registers: &[],
            fields: &[],
            reason: R::Vmcall,
            detail: plain(R::Vmcall),
            length: Some(3),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "rdmsr",
            code: &[0x0F, 0x32],
            registers: &[(Gpr::Rcx, 0x10)],
            fields: &[],
            reason: R::Rdmsr,
            detail: plain(R::Rdmsr),
            length: Some(2),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "wrmsr",
            code: &[0x0F, 0x30],
            registers: &[(Gpr::Rcx, 0x10)],
            fields: &[],
            reason: R::Wrmsr,
            detail: plain(R::Wrmsr),
            length: Some(2),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "rdtsc",
            code: &[0x0F, 0x31],
            registers: &[],
            fields: &[],
            reason: R::Rdtsc,
            detail: plain(R::Rdtsc),
            length: Some(2),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "invd",
            code: &[0x0F, 0x08],
            registers: &[],
            fields: &[],
            reason: R::Invd,
            detail: plain(R::Invd),
            length: Some(2),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "invlpg [rax]",
            code: &[0x0F, 0x01, 0x38],
            registers: &[(Gpr::Rax, 0x12_3000)],
            fields: &[],
            reason: R::Invlpg,
            detail: ExitDetail::Invlpg {
                linear_address: 0x12_3000,
            },
            length: Some(3),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "mov cr3, rax",
            code: &[0x0F, 0x22, 0xD8],
            registers: &[],
            fields: &[],
            reason: R::CrAccess,
            detail: ExitDetail::CrAccess(CrAccessQualification::MovToCr {
                cr: ControlRegister::Cr3,
                gpr: Gpr::Rax,
            }),
            length: Some(3),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "mov rbx, cr3",
            code: &[0x0F, 0x20, 0xDB],
            registers: &[],
            fields: &[],
            reason: R::CrAccess,
            detail: ExitDetail::CrAccess(CrAccessQualification::MovFromCr {
                cr: ControlRegister::Cr3,
                gpr: Gpr::Rbx,
            }),
            length: Some(3),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "mov cr0, rax (TS owned by the host)",
            code: &[0x0F, 0x22, 0xC0],
            registers: &[(Gpr::Rax, 0x8000_002B)],
            fields: &[(CR0_MASK, 0x8), (CR0_SHADOW, 0)],
            reason: R::CrAccess,
            detail: ExitDetail::CrAccess(CrAccessQualification::MovToCr {
                cr: ControlRegister::Cr0,
                gpr: Gpr::Rax,
            }),
            length: Some(3),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "mov cr4, r9 (PCE owned by the host)",
            code: &[0x41, 0x0F, 0x22, 0xE1],
            registers: &[(Gpr::R9, 0x2720)],
            fields: &[(CR4_MASK, 0x100)],
            reason: R::CrAccess,
            detail: ExitDetail::CrAccess(CrAccessQualification::MovToCr {
                cr: ControlRegister::Cr4,
                gpr: Gpr::R9,
            }),
            length: Some(4),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "mov cr8, rax",
            code: &[0x44, 0x0F, 0x22, 0xC0],
            registers: &[],
            fields: &[],
            reason: R::CrAccess,
            detail: ExitDetail::CrAccess(CrAccessQualification::MovToCr {
                cr: ControlRegister::Cr8,
                gpr: Gpr::Rax,
            }),
            length: Some(4),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "mov rdx, cr8",
            code: &[0x44, 0x0F, 0x20, 0xC2],
            registers: &[],
            fields: &[],
            reason: R::CrAccess,
            detail: ExitDetail::CrAccess(CrAccessQualification::MovFromCr {
                cr: ControlRegister::Cr8,
                gpr: Gpr::Rdx,
            }),
            length: Some(4),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "clts (TS owned by the host, shadow set)",
            code: &[0x0F, 0x06],
            registers: &[],
            fields: &[(CR0_MASK, 0x8), (CR0_SHADOW, 0x8)],
            reason: R::CrAccess,
            detail: ExitDetail::CrAccess(CrAccessQualification::Clts),
            length: Some(2),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "lmsw ax",
            code: &[0x0F, 0x01, 0xF0],
            registers: &[(Gpr::Rax, 0xFFFB)],
            fields: &[(CR0_MASK, 0xF), (CR0_SHADOW, 0x3)],
            reason: R::CrAccess,
            detail: ExitDetail::CrAccess(CrAccessQualification::Lmsw {
                operand: LmswOperand::Register,
                source_data: 0xFFFB,
            }),
            length: Some(3),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "lmsw [rax]",
            code: &[0x0F, 0x01, 0x30],
            registers: &[(Gpr::Rax, STACK - 0x100)],
            fields: &[(CR0_MASK, 0xF), (CR0_SHADOW, 0xB)],
            reason: R::CrAccess,
            // The word at STACK - 0x100 is 0 in fresh memory: it differs from the shadow in TS.
            detail: ExitDetail::CrAccess(CrAccessQualification::Lmsw {
                operand: LmswOperand::Memory,
                source_data: 0,
            }),
            length: Some(3),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "mov dr7, rax",
            code: &[0x0F, 0x23, 0xF8],
            registers: &[(Gpr::Rax, 0x400)],
            fields: &[],
            reason: R::MovDr,
            detail: ExitDetail::MovDr(MovDrQualification {
                dr: 7,
                direction: MovDrDirection::ToDr,
                gpr: Gpr::Rax,
            }),
            length: Some(3),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "mov rsi, dr6",
            code: &[0x0F, 0x21, 0xF6],
            registers: &[],
            fields: &[],
            reason: R::MovDr,
            detail: ExitDetail::MovDr(MovDrQualification {
                dr: 6,
                direction: MovDrDirection::FromDr,
                gpr: Gpr::Rsi,
            }),
            length: Some(3),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "ud2",
            code: &[0x0F, 0x0B],
            registers: &[],
            fields: &[],
            reason: R::ExceptionOrNmi,
            detail: exception(0x8000_0306),
            length: None,
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "int3",
            code: &[0xCC],
            registers: &[],
            fields: &[],
            reason: R::ExceptionOrNmi,
            detail: exception(0x8000_0603),
            length: Some(1),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "div ecx (by zero)",
            code: &[0xF7, 0xF1],
            registers: &[(Gpr::Rcx, 0)],
            fields: &[],
            reason: R::ExceptionOrNmi,
            detail: exception(0x8000_0300),
            length: None,
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "mov rax, [rax] (non-canonical: #GP(0))",
            code: &[0x48, 0x8B, 0x00],
            registers: &[(Gpr::Rax, 0x8000_0000_0000_0000)],
            fields: &[],
            reason: R::ExceptionOrNmi,
            detail: exception(0x8000_0B0D),
            length: None,
            error_code: Some(0),
            ..BASE
        },
        Snippet {
            name: "mov rax, [rax] (unmapped: #PF)",
            code: &[0x48, 0x8B, 0x00],
            registers: &[(Gpr::Rax, 0x4000_1234)],
            fields: &[],
            reason: R::ExceptionOrNmi,
            detail: ExitDetail::Exception {
                info: InterruptionInfo::from_raw(0x8000_0B0E),
                qualification: ExceptionQualification::PageFault {
                    linear_address: 0x4000_1234,
                },
            },
            length: None,
            error_code: Some(0),
            ..BASE
        },
        Snippet {
            name: "vmptrst [rax]",
            code: &[0x0F, 0xC7, 0x38],
            registers: &[(Gpr::Rax, DATA)],
            fields: &[],
            reason: R::Vmptrst,
            detail: ExitDetail::MemoryInstruction {
                displacement: 0,
                info: Some(MemoryInstructionInfo { operand: rax_operand }),
            },
            length: Some(3),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "vmread rbx, rcx",
            code: &[0x0F, 0x78, 0xCB],
            registers: &[],
            fields: &[],
            reason: R::Vmread,
            detail: ExitDetail::VmreadVmwrite {
                displacement: 0,
                info: Some(VmreadVmwriteInfo {
                    operand: RegisterOrMemory::Register(Gpr::Rbx),
                    encoding_register: Gpr::Rcx,
                }),
            },
            length: Some(3),
            error_code: None,
            ..BASE
        },
        Snippet {
            name: "xsetbv",
            code: &[0x0F, 0x01, 0xD1],
            registers: &[(Gpr::Rcx, 0), (Gpr::Rax, 3), (Gpr::Rdx, 0)],
            reason: R::Xsetbv,
            detail: plain(R::Xsetbv),
            length: Some(3),
            guest_cr4_or: 1 << 18,
            ..BASE
        },
        Snippet {
            name: "mov [rax], rcx (EPT: read-only page)",
            code: &[0x48, 0x89, 0x08],
            registers: &[(Gpr::Rax, EPT_READ_ONLY + 0x10)],
            reason: R::EptViolation,
            detail: ExitDetail::EptViolation(ept_violation(false, true, false, (true, false, false))),
            needs_ept: true,
            addresses: Some((EPT_READ_ONLY + 0x10, EPT_READ_ONLY + 0x10)),
            ..BASE
        },
        Snippet {
            name: "mov rax, [rax] (EPT: not present)",
            code: &[0x48, 0x8B, 0x00],
            registers: &[(Gpr::Rax, EPT_ABSENT + 0x20)],
            reason: R::EptViolation,
            detail: ExitDetail::EptViolation(ept_violation(true, false, false, (false, false, false))),
            needs_ept: true,
            addresses: Some((EPT_ABSENT + 0x20, EPT_ABSENT + 0x20)),
            ..BASE
        },
        Snippet {
            name: "jmp rax (EPT: not executable)",
            code: &[0xFF, 0xE0],
            registers: &[(Gpr::Rax, EPT_NO_EXECUTE)],
            reason: R::EptViolation,
            detail: ExitDetail::EptViolation(ept_violation(false, false, true, (true, true, false))),
            needs_ept: true,
            exit_rip: EPT_NO_EXECUTE,
            addresses: Some((EPT_NO_EXECUTE, EPT_NO_EXECUTE)),
            ..BASE
        },
    ]
}

/// Primary controls for the snippets: HLT, INVLPG, RDTSC, CR3 load/store, CR8 load/store,
/// MOV DR and unconditional I/O exiting; no MSR or I/O bitmaps (so every RDMSR, WRMSR, IN and
/// OUT exits; SDM Vol. 3C, Sections 26.1.3).
const PRIMARY_EXITING: u64 =
    1 << 7 | 1 << 9 | 1 << 12 | 1 << 15 | 1 << 16 | 1 << 19 | 1 << 20 | 1 << 23 | 1 << 24;

fn expect(oracle: &mut impl Oracle, request: &Request, expected: &Response) -> Result<(), String> {
    let got = oracle.call(request)?;
    if &got == expected {
        Ok(())
    } else {
        Err(format!("{request:?}: {got:?}"))
    }
}

/// Runs every snippet as a fresh 64-bit guest and compares the decoded exit.
pub fn exit_checks(
    oracle: &mut impl Oracle,
    caps: &VmxCapabilities,
    tally: &mut Tally,
) -> Result<(), String> {
    let control = |kind, set, clear| {
        set_control(caps, kind, None, set, clear).map_err(|e| format!("controls for the snippets: {e}"))
    };
    let pin = control(ControlKind::Pin, 0, 0)?;
    let primary = control(ControlKind::Primary, PRIMARY_EXITING, 1 << 25 | 1 << 28 | 1 << 31)?;
    // A 64-bit host after the exit; an IA-32e-mode guest (SDM Vol. 3C, Sections 25.7.1, 25.8.1).
    let exit = control(ControlKind::Exit, 1 << 9, 0)?;
    let entry = control(ControlKind::Entry, 1 << 9, 0)?;
    let ept = caps.allows_one(ControlKind::Secondary, 1);
    let advanced_ept_info = caps.ept_vpid().is_some_and(|e| e.advanced_ept_violation_info);
    if ept {
        for (address, entry) in ept_tables() {
            let bytes = entry.to_le_bytes().into_iter().collect();
            expect(oracle, &Request::WriteMemory { address, bytes }, &Response::Done)?;
        }
    }
    for snippet in snippets() {
        if snippet.needs_ept && !ept {
            tally.skipped_exits += 1;
            continue;
        }
        let mut code = snippet.code.to_vec();
        code.push(0xF4); // a guard: HLT after the instruction under test
        let mut writes = vec![
            FieldOp::Write(VmcsControl32::PinBasedControls as u32, pin),
            FieldOp::Write(VmcsControl32::PrimaryProcBasedControls as u32, primary),
            FieldOp::Write(VmcsControl32::PrimaryExitControls as u32, exit),
            FieldOp::Write(VmcsControl32::EntryControls as u32, entry),
            FieldOp::Write(VmcsControl32::ExceptionBitmap as u32, 0xFFFF_FFFF),
        ];
        writes.extend(
            snippet
                .fields
                .iter()
                .map(|&(field, value)| FieldOp::Write(field, value)),
        );
        if snippet.needs_ept {
            let secondary = control(ControlKind::Secondary, 1 << 1, 0)?;
            writes[1] = FieldOp::Write(VmcsControl32::PrimaryProcBasedControls as u32, primary | 1 << 31);
            writes.push(FieldOp::Write(
                VmcsControl32::SecondaryProcBasedControls as u32,
                secondary,
            ));
            writes.push(FieldOp::Write(VmcsControl64::EptPointer as u32, EPTP));
        }
        expect(oracle, &Request::Vmclear(Region::Vmcs(REGION)), &Response::Done)?;
        expect(oracle, &Request::Vmptrld(Region::Vmcs(REGION)), &Response::Done)?;
        expect(
            oracle,
            &Request::GuestPreset {
                rip: CODE,
                rsp: STACK,
            },
            &Response::Done,
        )?;
        let written = Response::Fields(writes.iter().map(|_| FieldOutcome::Written).collect());
        expect(
            oracle,
            &Request::Fields(writes.iter().copied().collect()),
            &written,
        )?;
        let bytes = code.iter().copied().collect();
        expect(
            oracle,
            &Request::WriteMemory { address: CODE, bytes },
            &Response::Done,
        )?;
        if snippet.guest_cr4_or != 0 {
            let mut remote = Remote {
                oracle: &mut *oracle,
                link_error: None,
            };
            let cr4 = VmcsGuestNW::Cr4
                .read(&mut remote)
                .and_then(|cr4| VmcsGuestNW::Cr4.write(&mut remote, cr4 | snippet.guest_cr4_or));
            if let Some(e) = remote.link_error {
                return Err(e);
            }
            cr4.map_err(|e| format!("{}: guest CR4: {e}", snippet.name))?;
        }
        let mut registers = GuestRegisters::default();
        for &(gpr, value) in snippet.registers {
            if let Some(slot) = registers.0.get_mut(gpr.number() as usize) {
                *slot = value;
            }
        }
        tally.exits += 1;
        match oracle.call(&Request::Enter {
            launch: true,
            registers,
        })? {
            Response::Exited(_) => {}
            other => {
                tally
                    .disagreements
                    .push(format!("{}: expected a VM exit, got {other:?}", snippet.name));
                continue;
            }
        }
        let mut remote = Remote {
            oracle: &mut *oracle,
            link_error: None,
        };
        let info = VmxExitInfo::read(&mut remote);
        if let Some(e) = remote.link_error {
            return Err(e);
        }
        let info = info.map_err(|e| format!("{}: reading the exit: {e}", snippet.name))?;
        let mut problems = Vec::new();
        if info.basic_reason() != snippet.reason {
            problems.push(format!("reason {:?}", info.basic_reason()));
        }
        let mut expected = snippet.detail;
        // Bits 9-11 are undefined without advanced information (Table 28-7).
        if let (ExitDetail::EptViolation(want), Ok(ExitDetail::EptViolation(got))) =
            (&mut expected, info.detail())
            && !advanced_ept_info
        {
            want.user_mode_linear_address = got.user_mode_linear_address;
            want.linear_writable = got.linear_writable;
            want.linear_execute_disable = got.linear_execute_disable;
        }
        match info.detail() {
            Ok(detail) if detail == expected => {}
            other => problems.push(format!("detail {other:?}")),
        }
        if let Some((physical, linear)) = snippet.addresses
            && (info.guest_physical_address != Some(physical) || info.guest_linear_address != Some(linear))
        {
            problems.push(format!(
                "addresses {:x?} (physical), {:x?} (linear)",
                info.guest_physical_address, info.guest_linear_address
            ));
        }
        if snippet.length.is_some() && info.instruction_length != snippet.length {
            problems.push(format!("instruction length {:?}", info.instruction_length));
        }
        if info.interruption_error_code != snippet.error_code {
            problems.push(format!("error code {:?}", info.interruption_error_code));
        }
        if info.guest_rip != snippet.exit_rip {
            problems.push(format!("guest RIP {:#x}", info.guest_rip));
        }
        if !problems.is_empty() {
            tally.disagreements.push(format!(
                "{}: expected {:?} {:?}, got {} (raw {info:x?})",
                snippet.name,
                snippet.reason,
                snippet.detail,
                problems.join(", ")
            ));
        }
    }
    Ok(())
}
