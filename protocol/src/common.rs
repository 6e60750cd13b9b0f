//! Types shared by several message families: registers, field values, controls, events,
//! exit classes and the flag sets.

use core::fmt;

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::block::{Block, FixedBlock, Reader, Writer, block_index_enum, block_struct};

/// A general-purpose register, numbered as the hardware numbers them: the numbering of the
/// control-register-access and MOV-DR exit qualifications (SDM Vol. 3C, Section 28.2.1,
/// Tables 28-3 and 28-4). The wire byte is the number.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Gpr {
    /// 0
    Rax = 0,
    /// 1
    Rcx = 1,
    /// 2
    Rdx = 2,
    /// 3
    Rbx = 3,
    /// 4: held in the VMCS (guest RSP), not in [`GeneralRegisters`].
    Rsp = 4,
    /// 5
    Rbp = 5,
    /// 6
    Rsi = 6,
    /// 7
    Rdi = 7,
    /// 8
    R8 = 8,
    /// 9
    R9 = 9,
    /// 10
    R10 = 10,
    /// 11
    R11 = 11,
    /// 12
    R12 = 12,
    /// 13
    R13 = 13,
    /// 14
    R14 = 14,
    /// 15
    R15 = 15,
}

impl Gpr {
    /// All sixteen, in hardware order.
    pub const ALL: [Gpr; 16] = [
        Gpr::Rax,
        Gpr::Rcx,
        Gpr::Rdx,
        Gpr::Rbx,
        Gpr::Rsp,
        Gpr::Rbp,
        Gpr::Rsi,
        Gpr::Rdi,
        Gpr::R8,
        Gpr::R9,
        Gpr::R10,
        Gpr::R11,
        Gpr::R12,
        Gpr::R13,
        Gpr::R14,
        Gpr::R15,
    ];

    /// The hardware register number, 0–15.
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// The register with hardware number `number`, if it is below 16.
    pub const fn from_number(number: u8) -> Option<Gpr> {
        if (number as usize) < Self::ALL.len() {
            Some(Self::ALL[number as usize])
        } else {
            None
        }
    }

    /// Lower-case assembler name (`"rax"`, `"r8"`).
    pub const fn name(self) -> &'static str {
        match self {
            Gpr::Rax => "rax",
            Gpr::Rcx => "rcx",
            Gpr::Rdx => "rdx",
            Gpr::Rbx => "rbx",
            Gpr::Rsp => "rsp",
            Gpr::Rbp => "rbp",
            Gpr::Rsi => "rsi",
            Gpr::Rdi => "rdi",
            Gpr::R8 => "r8",
            Gpr::R9 => "r9",
            Gpr::R10 => "r10",
            Gpr::R11 => "r11",
            Gpr::R12 => "r12",
            Gpr::R13 => "r13",
            Gpr::R14 => "r14",
            Gpr::R15 => "r15",
        }
    }
}

block_index_enum! {
    Gpr => Gpr::ALL;
}

/// A register an exit reply may set: a general-purpose register (RSP included), RIP or RFLAGS.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Register {
    /// A general-purpose register.
    Gpr(Gpr),
    /// The instruction pointer (guest RIP).
    Rip,
    /// The flags register (guest RFLAGS).
    Rflags,
}

impl From<Gpr> for Register {
    fn from(gpr: Gpr) -> Self {
        Register::Gpr(gpr)
    }
}

block_struct! {
    /// The general-purpose registers other than RSP, in hardware order.
    ///
    /// These are the registers seL4 transfers in the VM-exit fault message and sets with
    /// `seL4_X86_VCPU_WriteRegisters` (R8–R15 only with 64-bit guest support). RSP lives in the
    /// VMCS and travels separately ([`GuestState::rsp`](crate::GuestState::rsp)).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct GeneralRegisters {
        /// RAX.
        pub rax: u64,
        /// RCX.
        pub rcx: u64,
        /// RDX.
        pub rdx: u64,
        /// RBX.
        pub rbx: u64,
        /// RBP.
        pub rbp: u64,
        /// RSI.
        pub rsi: u64,
        /// RDI.
        pub rdi: u64,
        /// R8.
        pub r8: u64,
        /// R9.
        pub r9: u64,
        /// R10.
        pub r10: u64,
        /// R11.
        pub r11: u64,
        /// R12.
        pub r12: u64,
        /// R13.
        pub r13: u64,
        /// R14.
        pub r14: u64,
        /// R15.
        pub r15: u64,
    }
}

impl GeneralRegisters {
    /// The value of `gpr`, or `None` for RSP, which this struct does not hold.
    pub const fn get(&self, gpr: Gpr) -> Option<u64> {
        match gpr {
            Gpr::Rax => Some(self.rax),
            Gpr::Rcx => Some(self.rcx),
            Gpr::Rdx => Some(self.rdx),
            Gpr::Rbx => Some(self.rbx),
            Gpr::Rsp => None,
            Gpr::Rbp => Some(self.rbp),
            Gpr::Rsi => Some(self.rsi),
            Gpr::Rdi => Some(self.rdi),
            Gpr::R8 => Some(self.r8),
            Gpr::R9 => Some(self.r9),
            Gpr::R10 => Some(self.r10),
            Gpr::R11 => Some(self.r11),
            Gpr::R12 => Some(self.r12),
            Gpr::R13 => Some(self.r13),
            Gpr::R14 => Some(self.r14),
            Gpr::R15 => Some(self.r15),
        }
    }

    /// The slot of `gpr`, or `None` for RSP.
    pub fn get_mut(&mut self, gpr: Gpr) -> Option<&mut u64> {
        match gpr {
            Gpr::Rax => Some(&mut self.rax),
            Gpr::Rcx => Some(&mut self.rcx),
            Gpr::Rdx => Some(&mut self.rdx),
            Gpr::Rbx => Some(&mut self.rbx),
            Gpr::Rsp => None,
            Gpr::Rbp => Some(&mut self.rbp),
            Gpr::Rsi => Some(&mut self.rsi),
            Gpr::Rdi => Some(&mut self.rdi),
            Gpr::R8 => Some(&mut self.r8),
            Gpr::R9 => Some(&mut self.r9),
            Gpr::R10 => Some(&mut self.r10),
            Gpr::R11 => Some(&mut self.r11),
            Gpr::R12 => Some(&mut self.r12),
            Gpr::R13 => Some(&mut self.r13),
            Gpr::R14 => Some(&mut self.r14),
            Gpr::R15 => Some(&mut self.r15),
        }
    }

    /// Copies the registers named in `mask` from `other` (how a server applies
    /// [`Request::WriteRegisters`](crate::Request::WriteRegisters)).
    pub fn merge(&mut self, other: &GeneralRegisters, mask: GprSet) {
        for gpr in Gpr::ALL {
            if mask.contains(GprSet::of(gpr))
                && let (Some(slot), Some(value)) = (self.get_mut(gpr), other.get(gpr))
            {
                *slot = value;
            }
        }
    }
}

/// One VMCS field and a value: an item of a write batch, or an entry of a dump page.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldValue {
    /// The field's VMCS encoding (SDM Vol. 3C, Section 25.11.2 and Appendix B).
    pub encoding: u32,
    /// The value; fields narrower than 64 bits use the low bits.
    pub value: u64,
}

/// In a batch block ([`Request::WriteFields`](crate::Request::WriteFields),
/// [`DumpPage`](crate::DumpPage)): the encoding (`u32`), then the value (`u64`), little-endian.
impl Block for FieldValue {
    const MAX_SIZE: usize = u32::SIZE + u64::SIZE;

    #[inline(always)]
    fn put(&self, out: &mut Writer<'_>) -> Option<()> {
        self.encoding.put(out)?;
        self.value.put(out)
    }

    #[inline(always)]
    fn take(input: &mut Reader<'_>) -> Option<Self> {
        Some(FieldValue {
            encoding: u32::take(input)?,
            value: u64::take(input)?,
        })
    }
}

impl FixedBlock for FieldValue {}

/// A VM-execution, VM-exit or VM-entry control word, for [`Request::SetControl`](crate::Request::SetControl).
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlId {
    /// Pin-based VM-execution controls (32 bits).
    Pin,
    /// Primary processor-based VM-execution controls (32 bits).
    Primary,
    /// Secondary processor-based VM-execution controls (32 bits).
    Secondary,
    /// Tertiary processor-based VM-execution controls (64 bits).
    Tertiary,
    /// Primary VM-exit controls (32 bits).
    Exit,
    /// Secondary VM-exit controls (64 bits).
    SecondaryExit,
    /// VM-entry controls (32 bits).
    Entry,
}

impl ControlId {
    /// All seven.
    pub const ALL: [ControlId; 7] = [
        ControlId::Pin,
        ControlId::Primary,
        ControlId::Secondary,
        ControlId::Tertiary,
        ControlId::Exit,
        ControlId::SecondaryExit,
        ControlId::Entry,
    ];

    /// The control word's VMCS field encoding (SDM Vol. 3C, Sections 25.6.1, 25.6.2, 25.7.1,
    /// 25.8.1; Appendix B).
    pub const fn encoding(self) -> u32 {
        match self {
            ControlId::Pin => 0x4000,
            ControlId::Primary => 0x4002,
            ControlId::Secondary => 0x401E,
            ControlId::Tertiary => 0x2034,
            ControlId::Exit => 0x400C,
            ControlId::SecondaryExit => 0x2044,
            ControlId::Entry => 0x4012,
        }
    }

    /// Width of the control word in bits (32, or 64 for the tertiary and secondary exit
    /// controls).
    pub const fn bits(self) -> u32 {
        match self {
            ControlId::Tertiary | ControlId::SecondaryExit => 64,
            _ => 32,
        }
    }
}

/// How an event is delivered: the interruption types of the VM-entry interruption-information
/// field (SDM Vol. 3C, Section 25.8.3, Table 25-17) that a VMM may inject. Types 1 (reserved)
/// and 7 (other event) cannot be requested.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Type 0: external interrupt.
    ExternalInterrupt,
    /// Type 2: non-maskable interrupt (vector 2).
    Nmi,
    /// Type 3: hardware exception.
    HardwareException,
    /// Type 4: software interrupt (`INT n`); needs an instruction length.
    SoftwareInterrupt,
    /// Type 5: privileged software exception (`INT1`); needs an instruction length.
    PrivilegedSoftwareException,
    /// Type 6: software exception (`INT3`, `INTO`); needs an instruction length.
    SoftwareException,
}

impl EventKind {
    /// All six.
    pub const ALL: [EventKind; 6] = [
        EventKind::ExternalInterrupt,
        EventKind::Nmi,
        EventKind::HardwareException,
        EventKind::SoftwareInterrupt,
        EventKind::PrivilegedSoftwareException,
        EventKind::SoftwareException,
    ];

    /// The 3-bit interruption type (bits 10:8 of an interruption-information word).
    pub const fn interruption_type(self) -> u8 {
        match self {
            EventKind::ExternalInterrupt => 0,
            EventKind::Nmi => 2,
            EventKind::HardwareException => 3,
            EventKind::SoftwareInterrupt => 4,
            EventKind::PrivilegedSoftwareException => 5,
            EventKind::SoftwareException => 6,
        }
    }

    /// The kind with interruption type `bits`; `None` for the reserved type 1, the "other
    /// event" type 7 and anything above 7.
    pub const fn from_interruption_type(bits: u8) -> Option<EventKind> {
        match bits {
            0 => Some(EventKind::ExternalInterrupt),
            2 => Some(EventKind::Nmi),
            3 => Some(EventKind::HardwareException),
            4 => Some(EventKind::SoftwareInterrupt),
            5 => Some(EventKind::PrivilegedSoftwareException),
            6 => Some(EventKind::SoftwareException),
            _ => None,
        }
    }
}

/// An event to inject at the next VM entry.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventRequest {
    /// The vector (for an NMI, 2).
    pub vector: u8,
    /// How to deliver it. `None` lets the server choose from the vector: NMI for 2, hardware
    /// exception for the other vectors below 32, external interrupt from 32 up.
    pub kind: Option<EventKind>,
    /// The error code to push. `None`: none is pushed, or, with `kind: None`, the server
    /// pushes 0 for the exceptions that always deliver one.
    pub error_code: Option<u32>,
    /// The VM-entry instruction length, for software interrupts and exceptions. `None`: the
    /// length of the instruction that caused the current exit.
    pub instruction_len: Option<u8>,
}

/// The size of an I/O or memory access.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessSize {
    /// 1 byte.
    Byte,
    /// 2 bytes.
    Word,
    /// 4 bytes.
    Dword,
    /// 8 bytes (memory only: port I/O is at most 4 bytes wide).
    Qword,
}

impl AccessSize {
    /// All four.
    pub const ALL: [AccessSize; 4] = [
        AccessSize::Byte,
        AccessSize::Word,
        AccessSize::Dword,
        AccessSize::Qword,
    ];

    /// The size in bytes: 1, 2, 4 or 8.
    pub const fn bytes(self) -> u8 {
        match self {
            AccessSize::Byte => 1,
            AccessSize::Word => 2,
            AccessSize::Dword => 4,
            AccessSize::Qword => 8,
        }
    }

    /// The size of `bytes` bytes, if it is 1, 2, 4 or 8.
    pub const fn from_bytes(bytes: u8) -> Option<AccessSize> {
        match bytes {
            1 => Some(AccessSize::Byte),
            2 => Some(AccessSize::Word),
            4 => Some(AccessSize::Dword),
            8 => Some(AccessSize::Qword),
            _ => None,
        }
    }

    /// A mask of the low `bytes() * 8` bits.
    pub const fn mask(self) -> u64 {
        match self {
            AccessSize::Byte => 0xFF,
            AccessSize::Word => 0xFFFF,
            AccessSize::Dword => 0xFFFF_FFFF,
            AccessSize::Qword => u64::MAX,
        }
    }
}

block_index_enum! {
    EventKind => EventKind::ALL;
    AccessSize => AccessSize::ALL;
}

/// A class of VM exits: the unit at which the device model chooses which guest state
/// travels with each [`ExitRecord`](crate::ExitRecord) (like a NOVA portal's message transfer
/// descriptor), and at which the server counts exits and kernel invocations.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitClass {
    /// I/O instructions.
    Io,
    /// EPT violations and misconfigurations (memory-mapped I/O).
    Mmio,
    /// `CPUID`.
    Cpuid,
    /// `RDMSR` and `WRMSR`.
    Msr,
    /// `HLT`.
    Hlt,
    /// Control-register accesses.
    CrAccess,
    /// Exceptions and NMIs.
    Exception,
    /// Interrupt and NMI windows.
    InterruptWindow,
    /// `VMCALL`.
    Vmcall,
    /// The guest cannot go on: triple fault, invalid guest state, failed VM entry.
    Failure,
    /// Every other exit reason, known or not.
    Other,
}

impl ExitClass {
    /// Number of classes.
    pub const COUNT: usize = 11;

    /// All classes, in [`index`](Self::index) order.
    pub const ALL: [ExitClass; Self::COUNT] = [
        ExitClass::Io,
        ExitClass::Mmio,
        ExitClass::Cpuid,
        ExitClass::Msr,
        ExitClass::Hlt,
        ExitClass::CrAccess,
        ExitClass::Exception,
        ExitClass::InterruptWindow,
        ExitClass::Vmcall,
        ExitClass::Failure,
        ExitClass::Other,
    ];

    /// Position in [`ALL`](Self::ALL) and in per-class arrays such as
    /// [`Statistics::exits_by_class`](crate::Statistics::exits_by_class).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Kebab-case name (`"interrupt-window"`).
    pub const fn name(self) -> &'static str {
        match self {
            ExitClass::Io => "io",
            ExitClass::Mmio => "mmio",
            ExitClass::Cpuid => "cpuid",
            ExitClass::Msr => "msr",
            ExitClass::Hlt => "hlt",
            ExitClass::CrAccess => "cr-access",
            ExitClass::Exception => "exception",
            ExitClass::InterruptWindow => "interrupt-window",
            ExitClass::Vmcall => "vmcall",
            ExitClass::Failure => "failure",
            ExitClass::Other => "other",
        }
    }
}

impl fmt::Display for ExitClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Serde for a flag set: the bits as an integer (a varint in postcard; `"A | B"` text in
/// human-readable formats), rejecting unknown bits. Its postcard maximum size is exact: the
/// varint length of all defined bits.
macro_rules! strict_flags_serde {
    ($flags:ident) => {
        impl Serialize for $flags {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                bitflags::serde::serialize(self, serializer)
            }
        }

        impl<'de> Deserialize<'de> for $flags {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let flags: $flags = bitflags::serde::deserialize(deserializer)?;
                if flags.bits() & !$flags::all().bits() != 0 {
                    return Err(serde::de::Error::custom(concat!(
                        "unknown ",
                        stringify!($flags),
                        " bits"
                    )));
                }
                Ok(flags)
            }
        }

        impl MaxSize for $flags {
            const POSTCARD_MAX_SIZE: usize = crate::wire::varint_len($flags::all().bits() as u64);
        }
    };
}

bitflags::bitflags! {
    /// Groups of guest state an [`ExitRecord`](crate::ExitRecord) can carry, chosen per
    /// [`ExitClass`] by the device model. On seL4, GPRS, RFLAGS and most of INTERRUPTIBILITY
    /// come free with the exit's fault message; each other group costs ReadVMCS invocations.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct StateGroups: u16 {
        /// [`GuestState::gprs`](crate::GuestState::gprs).
        const GPRS = 1 << 0;
        /// [`GuestState::rsp`](crate::GuestState::rsp).
        const RSP = 1 << 1;
        /// [`GuestState::rflags`](crate::GuestState::rflags).
        const RFLAGS = 1 << 2;
        /// [`GuestState::segments`](crate::GuestState::segments).
        const SEGMENTS = 1 << 3;
        /// [`GuestState::descriptor_tables`](crate::GuestState::descriptor_tables).
        const DESCRIPTOR_TABLES = 1 << 4;
        /// [`GuestState::control_registers`](crate::GuestState::control_registers).
        const CONTROL_REGISTERS = 1 << 5;
        /// [`GuestState::dr7`](crate::GuestState::dr7).
        const DR7 = 1 << 6;
        /// [`GuestState::interruptibility`](crate::GuestState::interruptibility).
        const INTERRUPTIBILITY = 1 << 7;
        /// [`GuestState::pending_events`](crate::GuestState::pending_events).
        const PENDING_EVENTS = 1 << 8;
    }
}

strict_flags_serde!(StateGroups);

bitflags::bitflags! {
    /// A set of general-purpose registers; bit *n* is the register with hardware number *n*
    /// ([`Gpr::number`]). RSP (bit 4) is not a member: it is not in [`GeneralRegisters`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct GprSet: u16 {
        /// RAX (register 0).
        const RAX = 1 << 0;
        /// RCX (register 1).
        const RCX = 1 << 1;
        /// RDX (register 2).
        const RDX = 1 << 2;
        /// RBX (register 3).
        const RBX = 1 << 3;
        /// RBP (register 5).
        const RBP = 1 << 5;
        /// RSI (register 6).
        const RSI = 1 << 6;
        /// RDI (register 7).
        const RDI = 1 << 7;
        /// R8 (register 8).
        const R8 = 1 << 8;
        /// R9 (register 9).
        const R9 = 1 << 9;
        /// R10 (register 10).
        const R10 = 1 << 10;
        /// R11 (register 11).
        const R11 = 1 << 11;
        /// R12 (register 12).
        const R12 = 1 << 12;
        /// R13 (register 13).
        const R13 = 1 << 13;
        /// R14 (register 14).
        const R14 = 1 << 14;
        /// R15 (register 15).
        const R15 = 1 << 15;
    }
}

strict_flags_serde!(GprSet);

impl GprSet {
    /// The set holding just `gpr`; empty for RSP.
    pub const fn of(gpr: Gpr) -> GprSet {
        GprSet::from_bits_truncate(1 << gpr.number())
    }
}
