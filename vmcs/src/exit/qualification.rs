//! Exit-qualification formats (SDM Vol. 3C, Section 28.2.1, Tables 28-1 to 28-7, and the
//! prose around them).
//!
//! Each decoder keeps exactly what the SDM defines. Multi-bit fields with values the SDM
//! marks "not used" make the checked constructors fail with a [`QualificationError`]; bits the
//! SDM calls reserved are ignored (the processor clears them, and later SDMs keep assigning
//! them: bits 13–16 of the EPT-violation qualification were reserved in 2016).
//! `to_qualification` rebuilds the defined bits, so decoding is lossless for them.

use super::QualificationError;

const fn bit(value: u64, n: u32) -> bool {
    (value >> n) & 1 != 0
}

const fn flag(set: bool, n: u32) -> u64 {
    (set as u64) << n
}

/// A general-purpose register in the hardware numbering every VMX field uses (0 = RAX,
/// 1 = RCX, 2 = RDX, 3 = RBX, 4 = RSP, 5 = RBP, 6 = RSI, 7 = RDI, 8–15 = R8–R15; e.g. SDM
/// Vol. 3C, Table 28-3). Note that this is not the order of the x86 "general registers"
/// (EAX, EBX, ECX, ...) seL4's `WriteRegisters` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[allow(missing_docs)] // the names are the registers
pub enum Gpr {
    Rax,
    Rcx,
    Rdx,
    Rbx,
    Rsp,
    Rbp,
    Rsi,
    Rdi,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
}

impl Gpr {
    /// All sixteen, in hardware order.
    pub const ALL: [Self; 16] = [
        Self::Rax,
        Self::Rcx,
        Self::Rdx,
        Self::Rbx,
        Self::Rsp,
        Self::Rbp,
        Self::Rsi,
        Self::Rdi,
        Self::R8,
        Self::R9,
        Self::R10,
        Self::R11,
        Self::R12,
        Self::R13,
        Self::R14,
        Self::R15,
    ];

    /// The register numbered by the low four bits of `number` (every 4-bit value names one).
    pub const fn from_number(number: u8) -> Self {
        match number & 0xF {
            0 => Self::Rax,
            1 => Self::Rcx,
            2 => Self::Rdx,
            3 => Self::Rbx,
            4 => Self::Rsp,
            5 => Self::Rbp,
            6 => Self::Rsi,
            7 => Self::Rdi,
            8 => Self::R8,
            9 => Self::R9,
            10 => Self::R10,
            11 => Self::R11,
            12 => Self::R12,
            13 => Self::R13,
            14 => Self::R14,
            _ => Self::R15,
        }
    }

    /// The hardware number, 0–15.
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// Lower-case 64-bit name: `"rax"`, ..., `"r15"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rax => "rax",
            Self::Rcx => "rcx",
            Self::Rdx => "rdx",
            Self::Rbx => "rbx",
            Self::Rsp => "rsp",
            Self::Rbp => "rbp",
            Self::Rsi => "rsi",
            Self::Rdi => "rdi",
            Self::R8 => "r8",
            Self::R9 => "r9",
            Self::R10 => "r10",
            Self::R11 => "r11",
            Self::R12 => "r12",
            Self::R13 => "r13",
            Self::R14 => "r14",
            Self::R15 => "r15",
        }
    }
}

/// Exit qualification for debug exceptions (#DB, vector 1; SDM Vol. 3C, Section 28.2.1,
/// Table 28-1). It reports what DR6 would have reported, but with every flag active-high:
/// DR6 itself is not updated by a #DB that causes a VM exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DebugQualification {
    /// Bits 3:0 (B0–B3): bit n set means the condition of breakpoint n (DR7, DRn) was met.
    /// May be set for breakpoints not enabled in DR7.
    pub breakpoints: u8,
    /// Bit 11 (BLD): a bus lock was asserted while OS bus-lock detection was enabled.
    pub bus_lock: bool,
    /// Bit 13 (BD): debug-register access detected (DR7.GD).
    pub debug_register_access: bool,
    /// Bit 14 (BS): single step (RFLAGS.TF) or branch trace.
    pub single_step: bool,
    /// Bit 16 (RTM): the #DB or #BP occurred inside an RTM region with advanced debugging
    /// of RTM transactional regions enabled.
    pub rtm: bool,
}

impl DebugQualification {
    /// Decodes the qualification (every encoding is defined).
    pub const fn from_qualification(qualification: u64) -> Self {
        Self {
            breakpoints: (qualification & 0xF) as u8,
            bus_lock: bit(qualification, 11),
            debug_register_access: bit(qualification, 13),
            single_step: bit(qualification, 14),
            rtm: bit(qualification, 16),
        }
    }

    /// The qualification with these fields (defined bits only).
    pub const fn to_qualification(self) -> u64 {
        (self.breakpoints & 0xF) as u64
            | flag(self.bus_lock, 11)
            | flag(self.debug_register_access, 13)
            | flag(self.single_step, 14)
            | flag(self.rtm, 16)
    }

    /// Whether the condition of breakpoint `n` (0–3) was met; `false` for `n > 3`.
    pub const fn breakpoint(self, n: u8) -> bool {
        n < 4 && (self.breakpoints >> n) & 1 != 0
    }
}

/// What started a task switch (bits 31:30 of its exit qualification; SDM Vol. 3C,
/// Table 28-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum TaskSwitchSource {
    /// 0: CALL instruction.
    Call,
    /// 1: IRET instruction.
    Iret,
    /// 2: JMP instruction.
    Jmp,
    /// 3: task gate in the IDT (event delivery).
    TaskGate,
}

impl TaskSwitchSource {
    /// Decodes the 2-bit field.
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 3 {
            0 => Self::Call,
            1 => Self::Iret,
            2 => Self::Jmp,
            _ => Self::TaskGate,
        }
    }

    /// The 2-bit field.
    pub const fn bits(self) -> u8 {
        self as u8
    }

    /// Kebab-case name: `"call"`, `"iret"`, `"jmp"`, `"task-gate"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Iret => "iret",
            Self::Jmp => "jmp",
            Self::TaskGate => "task-gate",
        }
    }

    /// Whether an instruction (CALL, IRET, JMP) started the switch, so that the VM-exit
    /// instruction length is recorded (SDM Vol. 3C, Section 28.2.5).
    pub const fn is_instruction(self) -> bool {
        !matches!(self, Self::TaskGate)
    }
}

/// Exit qualification for task switches (SDM Vol. 3C, Section 28.2.1, Table 28-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TaskSwitchQualification {
    /// Bits 15:0: selector of the task-state segment switched to.
    pub selector: u16,
    /// Bits 31:30: source of the task switch.
    pub source: TaskSwitchSource,
}

impl TaskSwitchQualification {
    /// Decodes the qualification (every encoding is defined).
    pub const fn from_qualification(qualification: u64) -> Self {
        Self {
            selector: qualification as u16,
            source: TaskSwitchSource::from_bits((qualification >> 30) as u8),
        }
    }

    /// The qualification with these fields.
    pub const fn to_qualification(self) -> u64 {
        self.selector as u64 | (self.source.bits() as u64) << 30
    }
}

/// A control register that MOV to/from CR can exit for (bits 3:0 of the CR-access
/// qualification; SDM Vol. 3C, Table 28-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[allow(missing_docs)] // the names are the registers
pub enum ControlRegister {
    Cr0,
    Cr2,
    Cr3,
    Cr4,
    Cr8,
}

impl ControlRegister {
    /// The register numbered `number`, if there is such a control register.
    pub const fn from_number(number: u8) -> Option<Self> {
        match number {
            0 => Some(Self::Cr0),
            2 => Some(Self::Cr2),
            3 => Some(Self::Cr3),
            4 => Some(Self::Cr4),
            8 => Some(Self::Cr8),
            _ => None,
        }
    }

    /// The register's number.
    pub const fn number(self) -> u8 {
        match self {
            Self::Cr0 => 0,
            Self::Cr2 => 2,
            Self::Cr3 => 3,
            Self::Cr4 => 4,
            Self::Cr8 => 8,
        }
    }
}

/// Access type of a control-register access (bits 5:4; SDM Vol. 3C, Table 28-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CrAccessType {
    /// 0: MOV to CR.
    MovToCr,
    /// 1: MOV from CR.
    MovFromCr,
    /// 2: CLTS.
    Clts,
    /// 3: LMSW.
    Lmsw,
}

impl CrAccessType {
    /// Decodes the 2-bit field.
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 3 {
            0 => Self::MovToCr,
            1 => Self::MovFromCr,
            2 => Self::Clts,
            _ => Self::Lmsw,
        }
    }

    /// The 2-bit field.
    pub const fn bits(self) -> u8 {
        self as u8
    }

    /// Kebab-case name: `"mov-to-cr"`, `"mov-from-cr"`, `"clts"`, `"lmsw"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::MovToCr => "mov-to-cr",
            Self::MovFromCr => "mov-from-cr",
            Self::Clts => "clts",
            Self::Lmsw => "lmsw",
        }
    }
}

/// Where LMSW's operand came from (bit 6; SDM Vol. 3C, Table 28-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LmswOperand {
    /// 0: a register.
    Register,
    /// 1: memory; the guest-linear address field holds the operand's linear address.
    Memory,
}

impl LmswOperand {
    /// Kebab-case name: `"register"` or `"memory"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Memory => "memory",
        }
    }
}

/// Exit qualification for control-register accesses (SDM Vol. 3C, Section 28.2.1,
/// Table 28-3).
///
/// | bits  | meaning |
/// |-------|---------|
/// | 3:0   | control register (0 for CLTS and LMSW) |
/// | 5:4   | access type ([`CrAccessType`]) |
/// | 6     | LMSW operand type ([`LmswOperand`]) |
/// | 11:8  | MOV CR: the general-purpose register ([`Gpr`]) |
/// | 31:16 | LMSW: the 16-bit source data |
///
/// The VM-exit instruction length, not a constant, says how far to advance RIP:
/// `mov cr0, rax` is 3 bytes, `mov cr0, r8` is 4 (REX prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CrAccessQualification {
    /// MOV to CR`cr` from `gpr`.
    MovToCr {
        /// Destination control register.
        cr: ControlRegister,
        /// Source register.
        gpr: Gpr,
    },
    /// MOV from CR`cr` to `gpr`.
    MovFromCr {
        /// Source control register.
        cr: ControlRegister,
        /// Destination register.
        gpr: Gpr,
    },
    /// CLTS (clears CR0.TS).
    Clts,
    /// LMSW: loads CR0 bits 3:0 from `source_data`.
    Lmsw {
        /// Register or memory operand.
        operand: LmswOperand,
        /// Bits 31:16: the whole 16-bit operand (only bits 3:0 reach CR0, but the guest
        /// supplied all 16).
        source_data: u16,
    },
}

impl CrAccessQualification {
    /// Decodes the qualification.
    ///
    /// # Errors
    /// [`QualificationError::InvalidControlRegister`] when bits 3:0 name no control register
    /// a MOV can exit for (anything but 0, 2, 3, 4, 8), or are not 0 for CLTS or LMSW.
    pub const fn from_qualification(qualification: u64) -> Result<Self, QualificationError> {
        let number = (qualification & 0xF) as u8;
        let access = CrAccessType::from_bits((qualification >> 4) as u8);
        let gpr = Gpr::from_number((qualification >> 8) as u8);
        match access {
            CrAccessType::MovToCr | CrAccessType::MovFromCr => match ControlRegister::from_number(number) {
                Some(cr) if matches!(access, CrAccessType::MovToCr) => Ok(Self::MovToCr { cr, gpr }),
                Some(cr) => Ok(Self::MovFromCr { cr, gpr }),
                None => Err(QualificationError::InvalidControlRegister(number)),
            },
            _ if number != 0 => Err(QualificationError::InvalidControlRegister(number)),
            CrAccessType::Clts => Ok(Self::Clts),
            CrAccessType::Lmsw => Ok(Self::Lmsw {
                operand: if bit(qualification, 6) {
                    LmswOperand::Memory
                } else {
                    LmswOperand::Register
                },
                source_data: (qualification >> 16) as u16,
            }),
        }
    }

    /// The qualification with these fields.
    pub const fn to_qualification(self) -> u64 {
        let access = (self.access_type().bits() as u64) << 4;
        match self {
            Self::MovToCr { cr, gpr } | Self::MovFromCr { cr, gpr } => {
                cr.number() as u64 | access | (gpr.number() as u64) << 8
            }
            Self::Clts => access,
            Self::Lmsw { operand, source_data } => {
                access | flag(matches!(operand, LmswOperand::Memory), 6) | (source_data as u64) << 16
            }
        }
    }

    /// The access type.
    pub const fn access_type(self) -> CrAccessType {
        match self {
            Self::MovToCr { .. } => CrAccessType::MovToCr,
            Self::MovFromCr { .. } => CrAccessType::MovFromCr,
            Self::Clts => CrAccessType::Clts,
            Self::Lmsw { .. } => CrAccessType::Lmsw,
        }
    }

    /// The control register accessed (CR0 for CLTS and LMSW).
    pub const fn cr(self) -> ControlRegister {
        match self {
            Self::MovToCr { cr, .. } | Self::MovFromCr { cr, .. } => cr,
            Self::Clts | Self::Lmsw { .. } => ControlRegister::Cr0,
        }
    }

    /// The general-purpose register operand of MOV CR.
    pub const fn gpr(self) -> Option<Gpr> {
        match self {
            Self::MovToCr { gpr, .. } | Self::MovFromCr { gpr, .. } => Some(gpr),
            Self::Clts | Self::Lmsw { .. } => None,
        }
    }

    /// LMSW's operand type.
    pub const fn lmsw_operand(self) -> Option<LmswOperand> {
        match self {
            Self::Lmsw { operand, .. } => Some(operand),
            _ => None,
        }
    }

    /// LMSW's 16-bit source data.
    pub const fn lmsw_source_data(self) -> Option<u16> {
        match self {
            Self::Lmsw { source_data, .. } => Some(source_data),
            _ => None,
        }
    }
}

/// Direction of a MOV DR (bit 4; SDM Vol. 3C, Table 28-4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MovDrDirection {
    /// 0: MOV to DR.
    ToDr,
    /// 1: MOV from DR.
    FromDr,
}

impl MovDrDirection {
    /// Kebab-case name: `"mov-to-dr"` or `"mov-from-dr"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ToDr => "mov-to-dr",
            Self::FromDr => "mov-from-dr",
        }
    }
}

/// Exit qualification for MOV DR (SDM Vol. 3C, Section 28.2.1, Table 28-4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MovDrQualification {
    /// Bits 2:0: number of the debug register (4 and 5 are the aliases of 6 and 7 that
    /// exist when CR4.DE = 0).
    pub dr: u8,
    /// Bit 4: direction.
    pub direction: MovDrDirection,
    /// Bits 11:8: the general-purpose register.
    pub gpr: Gpr,
}

impl MovDrQualification {
    /// Decodes the qualification (every encoding is defined).
    pub const fn from_qualification(qualification: u64) -> Self {
        Self {
            dr: (qualification & 7) as u8,
            direction: if bit(qualification, 4) {
                MovDrDirection::FromDr
            } else {
                MovDrDirection::ToDr
            },
            gpr: Gpr::from_number((qualification >> 8) as u8),
        }
    }

    /// The qualification with these fields.
    pub const fn to_qualification(self) -> u64 {
        (self.dr & 7) as u64
            | flag(matches!(self.direction, MovDrDirection::FromDr), 4)
            | (self.gpr.number() as u64) << 8
    }
}

/// Size of an I/O access (bits 2:0 of the I/O qualification; SDM Vol. 3C, Table 28-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum IoSize {
    /// Encoding 0: 1 byte.
    Byte,
    /// Encoding 1: 2 bytes.
    Word,
    /// Encoding 3: 4 bytes.
    Dword,
}

impl IoSize {
    /// Decodes the 3-bit field.
    ///
    /// # Errors
    /// [`QualificationError::ReservedIoSize`] for 2 and 4–7, which the SDM does not use.
    pub const fn from_bits(bits: u8) -> Result<Self, QualificationError> {
        match bits {
            0 => Ok(Self::Byte),
            1 => Ok(Self::Word),
            3 => Ok(Self::Dword),
            other => Err(QualificationError::ReservedIoSize(other)),
        }
    }

    /// The 3-bit field.
    pub const fn bits(self) -> u8 {
        match self {
            Self::Byte => 0,
            Self::Word => 1,
            Self::Dword => 3,
        }
    }

    /// The size in bytes: 1, 2 or 4.
    pub const fn bytes(self) -> u8 {
        match self {
            Self::Byte => 1,
            Self::Word => 2,
            Self::Dword => 4,
        }
    }
}

/// Direction of an I/O access (bit 3; SDM Vol. 3C, Table 28-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum IoDirection {
    /// 0: OUT / OUTS.
    Out,
    /// 1: IN / INS.
    In,
}

impl IoDirection {
    /// `"in"` or `"out"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Out => "out",
            Self::In => "in",
        }
    }
}

/// Exit qualification for I/O instructions (SDM Vol. 3C, Section 28.2.1, Table 28-5); also
/// the format of the qualification of SMM VM exits for I/O SMIs (Section 33.15.2.3).
///
/// | bits  | meaning |
/// |-------|---------|
/// | 2:0   | size: 0 = 1 byte, 1 = 2 bytes, 3 = 4 bytes (2 and 4–7 not used) |
/// | 3     | direction: 0 = OUT, 1 = IN |
/// | 4     | string instruction (INS/OUTS) |
/// | 5     | REP prefixed |
/// | 6     | operand encoding: 0 = DX, 1 = immediate |
/// | 31:16 | port number |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IoQualification {
    /// Bits 31:16: the port (from DX or the immediate).
    pub port: u16,
    /// Bits 2:0: access size.
    pub size: IoSize,
    /// Bit 3: direction.
    pub direction: IoDirection,
    /// Bit 4: INS or OUTS.
    pub string: bool,
    /// Bit 5: REP prefix.
    pub rep: bool,
    /// Bit 6: the port came from an immediate operand (`in al, 0x60`), not from DX.
    pub immediate: bool,
}

impl IoQualification {
    /// Decodes the qualification.
    ///
    /// # Errors
    /// [`QualificationError::ReservedIoSize`] when bits 2:0 are 2 or 4–7.
    pub const fn from_qualification(qualification: u64) -> Result<Self, QualificationError> {
        let size = match IoSize::from_bits((qualification & 7) as u8) {
            Ok(size) => size,
            Err(e) => return Err(e),
        };
        Ok(Self {
            port: (qualification >> 16) as u16,
            size,
            direction: if bit(qualification, 3) {
                IoDirection::In
            } else {
                IoDirection::Out
            },
            string: bit(qualification, 4),
            rep: bit(qualification, 5),
            immediate: bit(qualification, 6),
        })
    }

    /// The qualification with these fields.
    pub const fn to_qualification(self) -> u64 {
        self.size.bits() as u64
            | flag(matches!(self.direction, IoDirection::In), 3)
            | flag(self.string, 4)
            | flag(self.rep, 5)
            | flag(self.immediate, 6)
            | (self.port as u64) << 16
    }
}

/// How the APIC-access page was accessed (bits 15:12 of the APIC-access qualification; SDM
/// Vol. 3C, Table 28-6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ApicAccessType {
    /// 0: linear access for a data read during instruction execution.
    LinearRead,
    /// 1: linear access for a data write during instruction execution.
    LinearWrite,
    /// 2: linear access for an instruction fetch.
    LinearFetch,
    /// 3: linear access (read or write) during event delivery.
    LinearEventDelivery,
    /// 10: guest-physical access during event delivery.
    GuestPhysicalEventDelivery,
    /// 15: guest-physical access for an instruction fetch or during instruction execution.
    GuestPhysicalInstruction,
}

impl ApicAccessType {
    /// Decodes the 4-bit field.
    ///
    /// # Errors
    /// [`QualificationError::ReservedApicAccessType`] for 4–9 and 11–14, which the SDM does
    /// not use.
    pub const fn from_bits(bits: u8) -> Result<Self, QualificationError> {
        match bits {
            0 => Ok(Self::LinearRead),
            1 => Ok(Self::LinearWrite),
            2 => Ok(Self::LinearFetch),
            3 => Ok(Self::LinearEventDelivery),
            10 => Ok(Self::GuestPhysicalEventDelivery),
            15 => Ok(Self::GuestPhysicalInstruction),
            other => Err(QualificationError::ReservedApicAccessType(other)),
        }
    }

    /// The 4-bit field.
    pub const fn bits(self) -> u8 {
        match self {
            Self::LinearRead => 0,
            Self::LinearWrite => 1,
            Self::LinearFetch => 2,
            Self::LinearEventDelivery => 3,
            Self::GuestPhysicalEventDelivery => 10,
            Self::GuestPhysicalInstruction => 15,
        }
    }

    /// Kebab-case name, e.g. `"linear-write"`, `"guest-physical-event-delivery"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::LinearRead => "linear-read",
            Self::LinearWrite => "linear-write",
            Self::LinearFetch => "linear-fetch",
            Self::LinearEventDelivery => "linear-event-delivery",
            Self::GuestPhysicalEventDelivery => "guest-physical-event-delivery",
            Self::GuestPhysicalInstruction => "guest-physical-instruction",
        }
    }

    /// Whether the access used a linear address (then the page offset is reported).
    pub const fn is_linear(self) -> bool {
        matches!(
            self,
            Self::LinearRead | Self::LinearWrite | Self::LinearFetch | Self::LinearEventDelivery
        )
    }

    /// Whether the access happened while delivering an event (then the IDT-vectoring
    /// information is valid, and describes that event).
    pub const fn during_event_delivery(self) -> bool {
        matches!(self, Self::LinearEventDelivery | Self::GuestPhysicalEventDelivery)
    }
}

/// Exit qualification for APIC-access VM exits caused by linear or guest-physical accesses
/// (SDM Vol. 3C, Section 28.2.1, Table 28-6). For exits caused by physical accesses the SDM
/// leaves the qualification undefined, and decoding it may fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ApicAccessQualification {
    /// Bits 11:0: offset of the access within the APIC page, for linear accesses (undefined,
    /// hence `None`, for guest-physical ones; 0 for accesses in enclave mode).
    pub offset: Option<u16>,
    /// Bits 15:12: access type.
    pub access: ApicAccessType,
    /// Bit 16: the access was asynchronous to instruction execution and not part of event
    /// delivery (Intel PT trace output, EPT-friendly PEBS, user-interrupt delivery).
    pub asynchronous: bool,
}

impl ApicAccessQualification {
    /// Decodes the qualification.
    ///
    /// # Errors
    /// [`QualificationError::ReservedApicAccessType`] for an access type the SDM does not use.
    pub const fn from_qualification(qualification: u64) -> Result<Self, QualificationError> {
        let access = match ApicAccessType::from_bits(((qualification >> 12) & 0xF) as u8) {
            Ok(access) => access,
            Err(e) => return Err(e),
        };
        Ok(Self {
            offset: if access.is_linear() {
                Some((qualification & 0xFFF) as u16)
            } else {
                None
            },
            access,
            asynchronous: bit(qualification, 16),
        })
    }

    /// The qualification with these fields (offset 0 when `None`).
    pub const fn to_qualification(self) -> u64 {
        let offset = match self.offset {
            Some(offset) => (offset & 0xFFF) as u64,
            None => 0,
        };
        offset | (self.access.bits() as u64) << 12 | flag(self.asynchronous, 16)
    }
}

/// Exit qualification for EPT violations (SDM Vol. 3C, Section 28.2.1, Table 28-7): every bit
/// the SDM defines, 0–16.
///
/// Bits 9–11 are defined only when bits 7 and 8 are both 1 and the processor reports
/// advanced VM-exit information for EPT violations (IA32_VMX_EPT_VPID_CAP bit 22); otherwise
/// they are undefined. Bit 12 is undefined when the IDT-vectoring information is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EptViolationQualification {
    /// Bit 0: the access was a data read.
    pub read: bool,
    /// Bit 1: the access was a data write (read-modify-write sets this, and maybe bit 0).
    pub write: bool,
    /// Bit 2: the access was an instruction fetch.
    pub fetch: bool,
    /// Bit 3: the guest-physical address was readable (AND of bit 0 of the EPT entries).
    pub readable: bool,
    /// Bit 4: the guest-physical address was writable (AND of bit 1).
    pub writable: bool,
    /// Bit 5: the guest-physical address was executable (AND of bit 2; supervisor-mode
    /// executable when "mode-based execute control for EPT" is 1).
    pub executable: bool,
    /// Bit 6: user-mode executable (AND of bit 10) when "mode-based execute control for EPT"
    /// is 1; otherwise undefined.
    pub user_executable: bool,
    /// Bit 7: the guest-linear address field is valid.
    pub linear_address_valid: bool,
    /// Bit 8 (if bit 7 is 1): the access was to the guest-physical address the linear
    /// address translates to (`true`), not to a paging-structure entry during translation
    /// (`false`). Cleared when bit 7 is 0.
    pub translation: bool,
    /// Bit 9: the linear address is a user-mode address (advanced information only).
    pub user_mode_linear_address: bool,
    /// Bit 10: paging maps the linear address read/write (advanced information only).
    pub linear_writable: bool,
    /// Bit 11: paging maps the linear address execute-disable (advanced information only).
    pub linear_execute_disable: bool,
    /// Bit 12: NMI unblocking due to IRET (SDM Vol. 3C, Section 28.2.3).
    pub nmi_unblocking: bool,
    /// Bit 13: the access was a shadow-stack access.
    pub shadow_stack: bool,
    /// Bit 14: supervisor shadow-stack page (bit 60 of the EPT entry, when EPTP bit 7
    /// enables supervisor shadow-stack control).
    pub supervisor_shadow_stack: bool,
    /// Bit 15: the violation arose from guest-paging verification (HLAT).
    pub guest_paging_verification: bool,
    /// Bit 16: the access was asynchronous to instruction execution and not part of event
    /// delivery (Intel PT trace output, EPT-friendly PEBS, user-interrupt delivery).
    pub asynchronous: bool,
}

impl EptViolationQualification {
    /// Mask of the bits the SDM defines (16:0).
    pub const DEFINED: u64 = 0x1_FFFF;

    /// Decodes the qualification (every encoding is defined).
    pub const fn from_qualification(qualification: u64) -> Self {
        Self {
            read: bit(qualification, 0),
            write: bit(qualification, 1),
            fetch: bit(qualification, 2),
            readable: bit(qualification, 3),
            writable: bit(qualification, 4),
            executable: bit(qualification, 5),
            user_executable: bit(qualification, 6),
            linear_address_valid: bit(qualification, 7),
            translation: bit(qualification, 8),
            user_mode_linear_address: bit(qualification, 9),
            linear_writable: bit(qualification, 10),
            linear_execute_disable: bit(qualification, 11),
            nmi_unblocking: bit(qualification, 12),
            shadow_stack: bit(qualification, 13),
            supervisor_shadow_stack: bit(qualification, 14),
            guest_paging_verification: bit(qualification, 15),
            asynchronous: bit(qualification, 16),
        }
    }

    /// The qualification with these fields.
    pub const fn to_qualification(self) -> u64 {
        flag(self.read, 0)
            | flag(self.write, 1)
            | flag(self.fetch, 2)
            | flag(self.readable, 3)
            | flag(self.writable, 4)
            | flag(self.executable, 5)
            | flag(self.user_executable, 6)
            | flag(self.linear_address_valid, 7)
            | flag(self.translation, 8)
            | flag(self.user_mode_linear_address, 9)
            | flag(self.linear_writable, 10)
            | flag(self.linear_execute_disable, 11)
            | flag(self.nmi_unblocking, 12)
            | flag(self.shadow_stack, 13)
            | flag(self.supervisor_shadow_stack, 14)
            | flag(self.guest_paging_verification, 15)
            | flag(self.asynchronous, 16)
    }

    /// Whether the entries mapping the address allowed none of read, write and execute,
    /// i.e. the guest-physical address is not mapped at all.
    pub const fn not_present(self) -> bool {
        !(self.readable || self.writable || self.executable || self.user_executable)
    }
}

/// Exit qualification of a start-up IPI (SIPI) exit: bits 7:0 hold the SIPI vector, 63:8 are
/// cleared (SDM Vol. 3C, Section 28.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SipiQualification {
    /// The SIPI vector: the AP starts at real-mode address `vector << 12`.
    pub vector: u8,
}

impl SipiQualification {
    /// Decodes the qualification.
    pub const fn from_qualification(qualification: u64) -> Self {
        Self {
            vector: qualification as u8,
        }
    }

    /// The qualification with this vector.
    pub const fn to_qualification(self) -> u64 {
        self.vector as u64
    }
}

/// Exit qualification of an EOI-virtualization exit: bits 7:0 hold the vector of the EOI
/// being virtualized (SDM Vol. 3C, Section 28.2.1; Section 30.1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct VirtualizedEoiQualification {
    /// The vector whose EOI was virtualized.
    pub vector: u8,
}

impl VirtualizedEoiQualification {
    /// Decodes the qualification.
    pub const fn from_qualification(qualification: u64) -> Self {
        Self {
            vector: qualification as u8,
        }
    }

    /// The qualification with this vector.
    pub const fn to_qualification(self) -> u64 {
        self.vector as u64
    }
}

/// Exit qualification of an APIC-write exit: bits 11:0 hold the offset of the write within
/// the APIC page (SDM Vol. 3C, Section 28.2.1; Section 30.4.3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ApicWriteQualification {
    /// Offset of the write within the APIC page, 0–0xFFF.
    pub offset: u16,
}

impl ApicWriteQualification {
    /// Decodes the qualification.
    pub const fn from_qualification(qualification: u64) -> Self {
        Self {
            offset: (qualification & 0xFFF) as u16,
        }
    }

    /// The qualification with this offset.
    pub const fn to_qualification(self) -> u64 {
        (self.offset & 0xFFF) as u64
    }
}

/// Exit qualification of a VM-entry failure due to invalid guest state (reason 33; SDM
/// Vol. 3C, Section 27.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum EntryFailureQualification {
    /// 0: no further information.
    Default,
    /// 2: loading the PDPTEs failed.
    PdpteLoading,
    /// 3: an NMI was to be injected into a guest blocking events by STI.
    NmiInjectionBlockedBySti,
    /// 4: the VMCS link pointer is invalid.
    InvalidVmcsLinkPointer,
}

impl EntryFailureQualification {
    /// Decodes the qualification.
    ///
    /// # Errors
    /// [`QualificationError::ReservedEntryFailure`] for any value but 0, 2, 3 and 4.
    pub const fn from_qualification(qualification: u64) -> Result<Self, QualificationError> {
        match qualification {
            0 => Ok(Self::Default),
            2 => Ok(Self::PdpteLoading),
            3 => Ok(Self::NmiInjectionBlockedBySti),
            4 => Ok(Self::InvalidVmcsLinkPointer),
            other => Err(QualificationError::ReservedEntryFailure(other)),
        }
    }

    /// The qualification.
    pub const fn to_qualification(self) -> u64 {
        match self {
            Self::Default => 0,
            Self::PdpteLoading => 2,
            Self::NmiInjectionBlockedBySti => 3,
            Self::InvalidVmcsLinkPointer => 4,
        }
    }

    /// Kebab-case name, e.g. `"pdpte-loading"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::PdpteLoading => "pdpte-loading",
            Self::NmiInjectionBlockedBySti => "nmi-injection-blocked-by-sti",
            Self::InvalidVmcsLinkPointer => "invalid-vmcs-link-pointer",
        }
    }
}

/// Which sub-page-permission event caused an SPP-related exit (bit 11 of its qualification;
/// SDM Vol. 3C, Section 28.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SppEvent {
    /// 0: SPP miss (an SPP-table entry was not present).
    Miss,
    /// 1: SPP misconfiguration.
    Misconfiguration,
}

impl SppEvent {
    /// `"miss"` or `"misconfiguration"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Miss => "miss",
            Self::Misconfiguration => "misconfiguration",
        }
    }
}

/// Exit qualification of an SPP-related event (SDM Vol. 3C, Section 28.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SppQualification {
    /// Bit 11: miss or misconfiguration.
    pub event: SppEvent,
    /// Bit 12: NMI unblocking due to IRET.
    pub nmi_unblocking: bool,
}

impl SppQualification {
    /// Decodes the qualification.
    pub const fn from_qualification(qualification: u64) -> Self {
        Self {
            event: if bit(qualification, 11) {
                SppEvent::Misconfiguration
            } else {
                SppEvent::Miss
            },
            nmi_unblocking: bit(qualification, 12),
        }
    }

    /// The qualification with these fields.
    pub const fn to_qualification(self) -> u64 {
        flag(matches!(self.event, SppEvent::Misconfiguration), 11) | flag(self.nmi_unblocking, 12)
    }
}

/// Exit qualification of an instruction-timeout exit (Linux: "notify"; SDM Vol. 3C,
/// Section 28.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InstructionTimeoutQualification {
    /// Bit 0: the guest context is corrupted and the guest must not be resumed.
    pub vm_context_invalid: bool,
    /// Bit 12: NMI unblocking due to IRET.
    pub nmi_unblocking: bool,
}

impl InstructionTimeoutQualification {
    /// Decodes the qualification.
    pub const fn from_qualification(qualification: u64) -> Self {
        Self {
            vm_context_invalid: bit(qualification, 0),
            nmi_unblocking: bit(qualification, 12),
        }
    }

    /// The qualification with these fields.
    pub const fn to_qualification(self) -> u64 {
        flag(self.vm_context_invalid, 0) | flag(self.nmi_unblocking, 12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpr_numbers_round_trip_in_hardware_order() {
        for (n, gpr) in Gpr::ALL.into_iter().enumerate() {
            assert_eq!(Gpr::from_number(n as u8), gpr);
            assert_eq!(gpr.number() as usize, n);
        }
        assert_eq!(Gpr::from_number(1).name(), "rcx");
        assert_eq!(Gpr::from_number(3).name(), "rbx");
        assert_eq!(Gpr::from_number(8).name(), "r8");
    }

    #[test]
    fn debug_qualification_bits() {
        let q = DebugQualification::from_qualification(0x1_6805);
        assert!(q.breakpoint(0) && !q.breakpoint(1) && q.breakpoint(2) && !q.breakpoint(3));
        assert!(q.bus_lock && q.debug_register_access && q.single_step && q.rtm);
        assert!(!q.breakpoint(200));
        assert_eq!(q.to_qualification(), 0x1_6805);
        let bs = DebugQualification::from_qualification(1 << 14);
        assert_eq!(
            bs,
            DebugQualification {
                single_step: true,
                ..Default::default()
            }
        );
    }

    #[test]
    fn task_switch_sources() {
        let q = TaskSwitchQualification::from_qualification(0xC000_0028);
        assert_eq!(q.selector, 0x28);
        assert_eq!(q.source, TaskSwitchSource::TaskGate);
        assert!(!q.source.is_instruction());
        let iret = TaskSwitchQualification::from_qualification(0x4000_0030);
        assert_eq!(iret.source, TaskSwitchSource::Iret);
        assert_eq!(iret.source.name(), "iret");
        assert_eq!(iret.to_qualification(), 0x4000_0030);
    }

    #[test]
    fn cr_access_mov_to_cr0_from_r8() {
        // mov cr0, r8: CR 0, type 0, GPR 8.
        let q = CrAccessQualification::from_qualification(0x800).unwrap();
        assert_eq!(
            q,
            CrAccessQualification::MovToCr {
                cr: ControlRegister::Cr0,
                gpr: Gpr::R8
            }
        );
        assert_eq!(q.access_type().name(), "mov-to-cr");
        assert_eq!(q.gpr(), Some(Gpr::R8));
        assert_eq!(q.lmsw_source_data(), None);
        // mov rbx, cr3 and mov cr8, r15.
        let from = CrAccessQualification::from_qualification(0x313).unwrap();
        assert_eq!(
            from,
            CrAccessQualification::MovFromCr {
                cr: ControlRegister::Cr3,
                gpr: Gpr::Rbx
            }
        );
        assert_eq!(
            CrAccessQualification::from_qualification(0xF08).unwrap().cr(),
            ControlRegister::Cr8
        );
        assert_eq!(
            CrAccessQualification::from_qualification(0x20).unwrap(),
            CrAccessQualification::Clts
        );
    }

    /// `reference-gaps.md` item 8: the LMSW source data is 16 bits, not 8.
    #[test]
    fn cr_access_lmsw_keeps_all_16_source_bits() {
        // lmsw [mem] with 0xFFFF: type 3, operand type memory.
        let q = CrAccessQualification::from_qualification(0xFFFF_0070).unwrap();
        assert_eq!(
            q,
            CrAccessQualification::Lmsw {
                operand: LmswOperand::Memory,
                source_data: 0xFFFF
            }
        );
        assert_eq!(q.lmsw_source_data(), Some(0xFFFF));
        assert_eq!(q.lmsw_operand().map(LmswOperand::name), Some("memory"));
        assert_eq!(q.cr(), ControlRegister::Cr0);
        assert_eq!(q.gpr(), None);
        assert_eq!(q.to_qualification(), 0xFFFF_0070);
        // A value whose interesting bits are all above bit 7.
        let high = CrAccessQualification::from_qualification(0x1234_0030).unwrap();
        assert_eq!(high.lmsw_source_data(), Some(0x1234));
        assert_eq!(high.lmsw_operand(), Some(LmswOperand::Register));
    }

    #[test]
    fn cr_access_rejects_impossible_registers() {
        for cr in [1u64, 5, 6, 7, 9, 15] {
            assert_eq!(
                CrAccessQualification::from_qualification(cr),
                Err(QualificationError::InvalidControlRegister(cr as u8))
            );
        }
        // CLTS and LMSW always report CR 0.
        assert_eq!(
            CrAccessQualification::from_qualification(0x23),
            Err(QualificationError::InvalidControlRegister(3))
        );
    }

    #[test]
    fn mov_dr() {
        // mov dr7, rax: DR 7, to DR, RAX.
        let q = MovDrQualification::from_qualification(0x7);
        assert_eq!(q.dr, 7);
        assert_eq!(q.direction, MovDrDirection::ToDr);
        assert_eq!(q.gpr, Gpr::Rax);
        // mov r12, dr6.
        let q = MovDrQualification::from_qualification(0xC16);
        assert_eq!((q.dr, q.direction, q.gpr), (6, MovDrDirection::FromDr, Gpr::R12));
        assert_eq!(q.direction.name(), "mov-from-dr");
        assert_eq!(q.to_qualification(), 0xC16);
    }

    #[test]
    fn io_sizes() {
        assert_eq!(IoSize::from_bits(0).map(IoSize::bytes), Ok(1));
        assert_eq!(IoSize::from_bits(1).map(IoSize::bytes), Ok(2));
        assert_eq!(IoSize::from_bits(3).map(IoSize::bytes), Ok(4));
        for reserved in [2, 4, 5, 6, 7] {
            assert_eq!(
                IoSize::from_bits(reserved),
                Err(QualificationError::ReservedIoSize(reserved))
            );
        }
    }

    /// `reference-gaps.md` item 6: bit 6 (immediate operand) is decoded, size 2 is rejected.
    #[test]
    fn io_immediate_operand_and_reserved_size() {
        // in eax, 0x60: size 4, IN, immediate, port 0x60.
        let q = IoQualification::from_qualification(0x0060_004B).unwrap();
        assert_eq!(q.port, 0x60);
        assert_eq!(q.size, IoSize::Dword);
        assert_eq!(q.direction, IoDirection::In);
        assert!(q.immediate && !q.string && !q.rep);
        // The same with DX.
        assert!(
            !IoQualification::from_qualification(0x0060_000B)
                .unwrap()
                .immediate
        );
        // The reference reads encoding 2 as size 3; it is not used.
        assert_eq!(
            IoQualification::from_qualification(0x03F8_0002),
            Err(QualificationError::ReservedIoSize(2))
        );
    }

    #[test]
    fn io_rep_outsb() {
        // rep outsb to DX = 0x3F8: size 1, OUT, string, REP.
        let q = IoQualification::from_qualification(0x03F8_0030).unwrap();
        assert_eq!(
            q,
            IoQualification {
                port: 0x3F8,
                size: IoSize::Byte,
                direction: IoDirection::Out,
                string: true,
                rep: true,
                immediate: false,
            }
        );
        assert_eq!(q.to_qualification(), 0x03F8_0030);
    }

    #[test]
    fn apic_access() {
        // A linear write of the EOI register (offset 0xB0).
        let q = ApicAccessQualification::from_qualification(0x10B0).unwrap();
        assert_eq!(q.offset, Some(0xB0));
        assert_eq!(q.access, ApicAccessType::LinearWrite);
        assert!(!q.asynchronous);
        assert_eq!(q.to_qualification(), 0x10B0);
        // Guest-physical during event delivery: the offset is undefined.
        let q = ApicAccessQualification::from_qualification(0xA_ABC).unwrap();
        assert_eq!(q.offset, None);
        assert!(q.access.during_event_delivery());
        assert_eq!(q.access.name(), "guest-physical-event-delivery");
        let q = ApicAccessQualification::from_qualification(0x1_F000).unwrap();
        assert_eq!(q.access, ApicAccessType::GuestPhysicalInstruction);
        assert!(q.asynchronous);
        for reserved in [4u8, 5, 9, 11, 14] {
            assert_eq!(
                ApicAccessQualification::from_qualification((reserved as u64) << 12),
                Err(QualificationError::ReservedApicAccessType(reserved))
            );
        }
    }

    /// `reference-gaps.md` item 7: every bit 0–16 is decoded, not just 0–2.
    #[test]
    fn ept_violation_every_bit() {
        let names: [fn(&EptViolationQualification) -> bool; 17] = [
            |q| q.read,
            |q| q.write,
            |q| q.fetch,
            |q| q.readable,
            |q| q.writable,
            |q| q.executable,
            |q| q.user_executable,
            |q| q.linear_address_valid,
            |q| q.translation,
            |q| q.user_mode_linear_address,
            |q| q.linear_writable,
            |q| q.linear_execute_disable,
            |q| q.nmi_unblocking,
            |q| q.shadow_stack,
            |q| q.supervisor_shadow_stack,
            |q| q.guest_paging_verification,
            |q| q.asynchronous,
        ];
        for n in 0..17 {
            let q = EptViolationQualification::from_qualification(1 << n);
            for (m, get) in names.iter().enumerate() {
                assert_eq!(get(&q), m == n, "bit {n}, field {m}");
            }
            assert_eq!(q.to_qualification(), 1 << n);
        }
        assert_eq!(
            EptViolationQualification::from_qualification(u64::MAX).to_qualification(),
            EptViolationQualification::DEFINED
        );
    }

    #[test]
    fn ept_violation_write_to_read_only_page() {
        // Write to a page mapped read+execute, linear address valid, final translation.
        let q = EptViolationQualification::from_qualification(0x1AA);
        assert!(q.write && !q.read && !q.fetch);
        assert!(q.readable && !q.writable && q.executable);
        assert!(q.linear_address_valid && q.translation);
        assert!(!q.not_present());
        assert!(EptViolationQualification::from_qualification(0x181).not_present());
    }

    /// `reference-gaps.md` item 10: SIPI, virtualized EOI and APIC-write decoders exist.
    #[test]
    fn small_qualifications() {
        assert_eq!(SipiQualification::from_qualification(0x9F).vector, 0x9F);
        assert_eq!(VirtualizedEoiQualification::from_qualification(0x31).vector, 0x31);
        assert_eq!(ApicWriteQualification::from_qualification(0x300).offset, 0x300);
        assert_eq!(ApicWriteQualification::from_qualification(0xF_F380).offset, 0x380);
        assert_eq!(SipiQualification { vector: 9 }.to_qualification(), 9);
    }

    #[test]
    fn entry_failure_and_other_small_formats() {
        assert_eq!(
            EntryFailureQualification::from_qualification(4),
            Ok(EntryFailureQualification::InvalidVmcsLinkPointer)
        );
        assert_eq!(
            EntryFailureQualification::from_qualification(1),
            Err(QualificationError::ReservedEntryFailure(1))
        );
        let spp = SppQualification::from_qualification(0x1800);
        assert_eq!(spp.event, SppEvent::Misconfiguration);
        assert!(spp.nmi_unblocking);
        let timeout = InstructionTimeoutQualification::from_qualification(1);
        assert!(timeout.vm_context_invalid && !timeout.nmi_unblocking);
    }
}
