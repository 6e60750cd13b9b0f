//! Script files: a scripted guest with what it needs around it (start state, kernel rules,
//! initial guest memory), and the bundled default guest.
//!
//! JSON shape (every field but `steps` optional):
//!
//! ```json
//! { "name": "example",
//!   "rules": "sel4-v5",
//!   "start": { "rip": 4096, "rflags": 2 },
//!   "cr0": 17,
//!   "memory": [ { "gpa": 4096, "hex": "8b050000c0fe" } ],
//!   "steps": [ { "label": "out dx, al", "exit": { "reason": 30, "qualification": 66584576,
//!                "instruction_len": 1, "registers": { "rax": 72 } },
//!                "expect": [ "rip-advanced" ] } ] }
//! ```
//!
//! Step and expectation fields are those of [`vmm_server::model::script`].

use serde::{Deserialize, Serialize};
use vmm_server::model::{
    ExitSpec, Expectation, KernelRules, Label, Register, RegisterValues, StartState, Step,
};

use vmm_server::composition::{
    FixedGuestImage, GUEST_IMAGE_MAX_CHUNK, GUEST_IMAGE_MAX_CHUNKS, GUEST_IMAGE_MAX_STEPS, GuestImage,
};

use device_model::platform::{CPUID_0, DEBUG_EXIT_PORT, MMIO_BASE, MSR_APIC_BASE, UART_PORT};

/// Initial guest memory contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryInit {
    /// Guest-physical address.
    pub gpa: u64,
    /// Bytes, in hex.
    pub hex: String,
}

fn default_rules() -> KernelRules {
    KernelRules::Sel4V5
}

fn default_start() -> StartState {
    StartState {
        rip: 0x1000,
        rflags: 0x2,
    }
}

fn default_cr0() -> u64 {
    0x11
}

/// A script file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptFile {
    /// A name for reports.
    #[serde(default)]
    pub name: String,
    /// Whose kernel rules the model VCPU follows.
    #[serde(default = "default_rules")]
    pub rules: KernelRules,
    /// Where the guest starts.
    #[serde(default = "default_start")]
    pub start: StartState,
    /// Guest CR0 at the start (protected mode by default).
    #[serde(default = "default_cr0")]
    pub cr0: u64,
    /// Initial guest memory.
    #[serde(default)]
    pub memory: Vec<MemoryInit>,
    /// The steps.
    pub steps: Vec<Step>,
}

/// Why a script file is unusable.
#[derive(Debug)]
pub enum ScriptError {
    /// Not readable.
    Io(std::io::Error),
    /// Not a script.
    Json(serde_json::Error),
    /// A memory entry with bad hex or outside guest RAM.
    Memory(String),
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read the script: {e}"),
            Self::Json(e) => write!(f, "not a valid script: {e}"),
            Self::Memory(m) => write!(f, "invalid memory entry: {m}"),
        }
    }
}

impl std::error::Error for ScriptError {}

impl ScriptFile {
    /// Reads a script from a JSON file.
    ///
    /// # Errors
    /// Unreadable file or invalid script.
    pub fn load(path: &std::path::Path) -> Result<Self, ScriptError> {
        let text = std::fs::read_to_string(path).map_err(ScriptError::Io)?;
        Self::parse(&text)
    }

    /// Parses a script from JSON text.
    ///
    /// # Errors
    /// Invalid script.
    pub fn parse(text: &str) -> Result<Self, ScriptError> {
        let script: Self = serde_json::from_str(text).map_err(ScriptError::Json)?;
        for m in &script.memory {
            script_bytes(m)?;
        }
        Ok(script)
    }

    /// Copies the memory entries into `ram` (a flat RAM starting at guest-physical 0).
    ///
    /// # Errors
    /// An entry with bad hex or outside `ram`.
    pub fn load_memory(&self, ram: &mut [u8]) -> Result<(), ScriptError> {
        for m in &self.memory {
            let bytes = script_bytes(m)?;
            let start =
                usize::try_from(m.gpa).map_err(|_| ScriptError::Memory(format!("{:#x} too high", m.gpa)))?;
            let slot = start
                .checked_add(bytes.len())
                .and_then(|end| ram.get_mut(start..end))
                .ok_or_else(|| {
                    ScriptError::Memory(format!("{:#x}+{} outside guest RAM", m.gpa, bytes.len()))
                })?;
            slot.copy_from_slice(&bytes);
        }
        Ok(())
    }
}

impl ScriptFile {
    /// The script as a guest image ([`vmm_server::composition::GuestImage`], postcard), checked
    /// to fit the fixed capacities of a freestanding VMM server ([`FixedGuestImage`]).
    ///
    /// # Errors
    /// Bad memory hex, or more steps or memory than the fixed image holds.
    pub fn guest_image(&self) -> Result<Vec<u8>, ScriptError> {
        let memory = self
            .memory
            .iter()
            .map(|m| Ok((m.gpa, script_bytes(m)?)))
            .collect::<Result<Vec<_>, ScriptError>>()?;
        let image = GuestImage {
            rules: self.rules,
            start: self.start,
            cr0: self.cr0,
            memory,
            steps: self.steps.clone(),
        };
        let bytes = postcard::to_stdvec(&image).map_err(|e| ScriptError::Memory(e.to_string()))?;
        let fixed: FixedGuestImage = postcard::from_bytes(&bytes).map_err(|_| {
            ScriptError::Memory(format!(
                "the guest image holds at most {GUEST_IMAGE_MAX_STEPS} steps and \
                 {GUEST_IMAGE_MAX_CHUNKS} memory entries of {GUEST_IMAGE_MAX_CHUNK} bytes"
            ))
        })?;
        debug_assert_eq!(fixed.steps.len(), self.steps.len());
        Ok(bytes)
    }
}

fn script_bytes(m: &MemoryInit) -> Result<Vec<u8>, ScriptError> {
    let hex: String = m.hex.chars().filter(|c| !c.is_whitespace()).collect();
    if !hex.len().is_multiple_of(2) {
        return Err(ScriptError::Memory(format!(
            "odd number of hex digits at {:#x}",
            m.gpa
        )));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hex[i..i + 2], 16)
                .map_err(|e| ScriptError::Memory(format!("at {:#x}: {e}", m.gpa)))
        })
        .collect()
}

/// The text the bundled guest prints.
pub const HELLO: &str = "Hello from the guest\n";

/// Builds the bundled guest step by step, keeping track of RIP.
struct Builder {
    rip: u64,
    steps: Vec<Step>,
    memory: Vec<MemoryInit>,
}

fn label(text: &str) -> Label {
    let mut l = Label::new();
    for c in text.chars() {
        if l.push(c).is_err() {
            break;
        }
    }
    l
}

fn io_qualification(port: u16, input: bool) -> u64 {
    (u64::from(port) << 16) | if input { 1 << 3 } else { 0 }
}

impl Builder {
    fn push(&mut self, text: &str, exit: ExitSpec, length: u64, expect: &[Expectation]) {
        let expect = expect.iter().copied().collect();
        self.steps.push(Step {
            label: label(text),
            exit,
            expect,
        });
        self.rip += length;
    }

    fn out(&mut self, text: &str, port: u16, value: u8, rflags: Option<u64>) {
        let exit = ExitSpec {
            reason: 30,
            qualification: io_qualification(port, false),
            instruction_len: 1,
            rflags,
            registers: RegisterValues {
                rax: Some(value.into()),
                rdx: Some(port.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        self.push(text, exit, 1, &[Expectation::RipAdvanced]);
    }

    fn mmio(&mut self, text: &str, code: &[u8], write: bool, expect: Option<Expectation>) {
        let hex = code.iter().map(|b| format!("{b:02x}")).collect();
        self.memory.push(MemoryInit { gpa: self.rip, hex });
        let exit = ExitSpec {
            reason: 48,
            // Read or write, linear address valid, translation (as Bochs reports, 0x181).
            qualification: if write { 0x182 } else { 0x181 },
            guest_physical: MMIO_BASE,
            guest_linear: MMIO_BASE,
            ..Default::default()
        };
        let next = self.rip + code.len() as u64;
        let mut expectations = vec![Expectation::Rip { value: next }];
        expectations.extend(expect);
        self.push(text, exit, code.len() as u64, &expectations);
    }
}

/// The bundled guest: sets up the UART, prints [`HELLO`] polling LSR before each byte, runs
/// CPUID and RDMSR, writes and reads back an MMIO register, halts with the UART's interrupt
/// pending, and ends through the debug-exit port with status 0.
pub fn bundled_hello() -> ScriptFile {
    let mut b = Builder {
        rip: 0x1000,
        steps: Vec::new(),
        memory: Vec::new(),
    };
    b.out("out IER=0 (interrupts off)", UART_PORT + 1, 0x00, None);
    b.out("out MCR=OUT2", UART_PORT + 4, 0x08, None);
    for byte in HELLO.bytes() {
        let lsr = ExitSpec {
            reason: 30,
            qualification: io_qualification(UART_PORT + 5, true),
            instruction_len: 1,
            registers: RegisterValues {
                rdx: Some((UART_PORT + 5).into()),
                ..Default::default()
            },
            ..Default::default()
        };
        // LSR: THR empty and transmitter empty (0x60); AL only, the rest of RAX is kept.
        b.push(
            "in al, dx (LSR)",
            lsr,
            1,
            &[
                Expectation::Register {
                    register: Register::Rax,
                    value: 0x60,
                },
                Expectation::RipAdvanced,
            ],
        );
        b.out("out dx, al (THR)", UART_PORT, byte, None);
    }
    let cpuid = ExitSpec {
        reason: 10,
        instruction_len: 2,
        registers: RegisterValues {
            rax: Some(0),
            rcx: Some(0),
            ..Default::default()
        },
        ..Default::default()
    };
    b.push(
        "cpuid (leaf 0)",
        cpuid,
        2,
        &[
            Expectation::Register {
                register: Register::Rbx,
                value: CPUID_0[1].into(),
            },
            Expectation::RipAdvanced,
        ],
    );
    let rdmsr = ExitSpec {
        reason: 31,
        instruction_len: 2,
        registers: RegisterValues {
            rcx: Some(MSR_APIC_BASE.0.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    b.push(
        "rdmsr IA32_APIC_BASE",
        rdmsr,
        2,
        &[
            Expectation::Register {
                register: Register::Rax,
                value: MSR_APIC_BASE.1 & 0xFFFF_FFFF,
            },
            Expectation::RipAdvanced,
        ],
    );
    // mov dword [0xFEC00000], 0x1234 ; mov eax, [0xFEC00000]
    b.mmio(
        "mov dword [0xfec00000], 0x1234",
        &[0xC7, 0x05, 0x00, 0x00, 0xC0, 0xFE, 0x34, 0x12, 0x00, 0x00],
        true,
        None,
    );
    b.mmio(
        "mov eax, [0xfec00000]",
        &[0x8B, 0x05, 0x00, 0x00, 0xC0, 0xFE],
        false,
        Some(Expectation::Register {
            register: Register::Rax,
            value: 0x1234,
        }),
    );
    // Enable the THR-empty interrupt with interrupts off: it stays pending...
    let ier = ExitSpec {
        reason: 30,
        qualification: io_qualification(UART_PORT + 1, false),
        instruction_len: 1,
        rflags: Some(0x2),
        registers: RegisterValues {
            rax: Some(0x02),
            rdx: Some((UART_PORT + 1).into()),
            ..Default::default()
        },
        ..Default::default()
    };
    b.push(
        "out IER=THRE (IF=0)",
        ier,
        1,
        &[Expectation::RipAdvanced, Expectation::InterruptWindowRequested],
    );
    // ... until `sti; hlt`: the interrupt (line 4, vector 0x24) is delivered on the way out of HLT.
    b.rip += 1; // sti
    let hlt = ExitSpec {
        reason: 12,
        instruction_len: 1,
        rflags: Some(0x202),
        ..Default::default()
    };
    b.push(
        "sti; hlt",
        hlt,
        1,
        &[
            Expectation::RipAdvanced,
            Expectation::EventPending { info: 0x8000_0024 },
        ],
    );
    let exit = ExitSpec {
        reason: 30,
        qualification: io_qualification(DEBUG_EXIT_PORT, false) | (1 << 6),
        instruction_len: 2,
        registers: RegisterValues {
            rax: Some(0),
            ..Default::default()
        },
        ..Default::default()
    };
    b.push(
        "out 0xf4, al (debug exit, status 0)",
        exit,
        2,
        &[Expectation::Stopped],
    );
    ScriptFile {
        name: "hello".into(),
        rules: KernelRules::Sel4V5,
        start: StartState {
            rip: 0x1000,
            rflags: 0x2,
        },
        cr0: default_cr0(),
        memory: b.memory,
        steps: b.steps,
    }
}

/// The bundled guest's work repeated `iterations` times (the guest jumps back to its start
/// after each round), then the debug-exit: a long run for throughput measurements.
pub fn looped_hello(iterations: usize) -> ScriptFile {
    let mut script = bundled_hello();
    let Some(last) = script.steps.pop() else {
        return script;
    };
    let round = script.steps.clone();
    for _ in 1..iterations {
        let mut again = round.clone();
        if let Some(first) = again.first_mut() {
            first.exit.rip = Some(script.start.rip);
        }
        script.steps.extend(again);
    }
    script.steps.push(last);
    script.name = format!("hello x{iterations}");
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_script_round_trips_through_json() {
        let script = bundled_hello();
        let json = serde_json::to_string_pretty(&script).unwrap();
        assert_eq!(ScriptFile::parse(&json).unwrap(), script);
        assert_eq!(script.steps.len(), 2 + 2 * HELLO.len() + 2 + 2 + 3);
    }

    #[test]
    fn the_bundled_guest_travels_as_a_fixed_capacity_image() {
        let script = bundled_hello();
        let bytes = script.guest_image().unwrap();
        let image: FixedGuestImage = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(image.steps.as_slice(), script.steps.as_slice());
        assert_eq!(
            (image.start, image.cr0, image.rules),
            (script.start, script.cr0, script.rules)
        );
        let mut ram = vec![0u8; 0x1_0000];
        script.load_memory(&mut ram).unwrap();
        for (gpa, chunk) in &image.memory {
            let at = usize::try_from(*gpa).unwrap();
            assert_eq!(&ram[at..at + chunk.len()], chunk.as_slice());
        }
        assert!(!image.memory.is_empty(), "the MMIO instruction bytes");
    }

    #[test]
    fn a_guest_too_large_for_the_fixed_image_is_refused() {
        let mut script = bundled_hello();
        let step = script.steps[0].clone();
        script.steps.resize(GUEST_IMAGE_MAX_STEPS + 1, step);
        assert!(matches!(script.guest_image(), Err(ScriptError::Memory(m)) if m.contains("at most")));
    }

    #[test]
    fn bad_scripts_are_errors() {
        assert!(matches!(ScriptFile::parse("{}"), Err(ScriptError::Json(_))));
        assert!(matches!(
            ScriptFile::parse(r#"{"steps":[],"bogus":1}"#),
            Err(ScriptError::Json(_))
        ));
        assert!(matches!(
            ScriptFile::parse(r#"{"steps":[],"memory":[{"gpa":0,"hex":"abc"}]}"#),
            Err(ScriptError::Memory(_))
        ));
        let far = ScriptFile::parse(r#"{"steps":[],"memory":[{"gpa":65535,"hex":"0102"}]}"#).unwrap();
        assert!(matches!(
            far.load_memory(&mut [0u8; 65536]),
            Err(ScriptError::Memory(_))
        ));
        let minimal = ScriptFile::parse(r#"{"steps":[{"exit":{"reason":12,"instruction_len":1},"expect":["rip-advanced",{"register":{"register":"rax","value":5}}]}]}"#).unwrap();
        assert_eq!(minimal.rules, KernelRules::Sel4V5);
        assert_eq!(minimal.steps[0].expect.len(), 2);
    }
}
