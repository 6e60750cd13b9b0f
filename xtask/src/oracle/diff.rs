//! The differential checks: the same operations on the oracle (Bochs' VMX through the stub)
//! and on the `vmcs` crate, outcome by outcome.

use oracle_proto::{FieldOp, FieldOutcome, MAX_FIELD_OPS, Region, Request, Response};
use vmcs::caps::{ControlError, ControlKind, VmxCapabilities, VmxCapabilityMsr, set_control};
use vmcs::{FIELDS, FieldWidth, SoftProfile, SoftVmcs, VmInstructionError, VmcsAccess, VmcsError};

use super::rng::Rng;

/// Something that answers stub requests: a Bochs session, or a model of one in tests.
pub trait Oracle {
    /// Sends `request` and returns the response.
    ///
    /// # Errors
    /// When the link fails or times out.
    fn call(&mut self, request: &Request) -> Result<Response, String>;
}

/// Counts of checks and the disagreements found.
#[derive(Debug, Default)]
pub struct Tally {
    /// Instruction-protocol checks (VMXON/VMCLEAR/VMPTRLD error cases).
    pub instruction_checks: usize,
    /// VMREAD/VMWRITE operations compared with the `soft` backend.
    pub field_ops: usize,
    /// `set_control` requests checked against the model's MSRs.
    pub control_requests: usize,
    /// VM entries attempted with controls from `set_control` (each must pass the control
    /// checks).
    pub entries: usize,
    /// VM entries with a value `set_control` refused, forced in (each must fail the control
    /// checks).
    pub refusals: usize,
    /// Guest snippets run to a VM exit and decoded.
    pub exits: usize,
    /// Snippets skipped because the model lacks what they need (EPT).
    pub skipped_exits: usize,
    /// Every disagreement, described.
    pub disagreements: Vec<String>,
}

impl Tally {
    fn disagree(&mut self, what: String) {
        self.disagreements.push(what);
    }
}

/// Reads the capability MSRs 0x480–0x493; an MSR whose RDMSR raises #GP is absent.
pub fn read_capabilities(oracle: &mut impl Oracle) -> Result<VmxCapabilities, String> {
    let mut caps = VmxCapabilities::new();
    for &msr in VmxCapabilityMsr::ALL {
        match oracle.call(&Request::ReadMsr(msr.msr_number()))? {
            Response::Msr(value) => caps.set(msr, value),
            Response::Fault(fault) if fault.vector == 13 => {}
            other => return Err(format!("RDMSR {}: unexpected {other:?}", msr.name())),
        }
    }
    Ok(caps)
}

/// Enters VMX operation.
pub fn enable_vmx(oracle: &mut impl Oracle) -> Result<(), String> {
    match oracle.call(&Request::EnableVmx)? {
        Response::Done => Ok(()),
        other => Err(format!("VMXON: {other:?}")),
    }
}

const fn fail_valid(error: VmInstructionError) -> Response {
    Response::Failed(VmcsError::VmFailValid(error))
}

/// The instruction error cases of SDM Vol. 3C, Chapter 31 (and their numbers, Section 31.4),
/// each checked once; leaves VMCS region 1 current. Call right after [`enable_vmx`].
pub fn instruction_checks(
    oracle: &mut impl Oracle,
    caps: &VmxCapabilities,
    tally: &mut Tally,
) -> Result<(), String> {
    use VmInstructionError as E;
    let revision = caps.vmcs_revision_id().ok_or("IA32_VMX_BASIC is absent")?;
    let no_vmcs = Response::Fields(
        [FieldOutcome::Failed(VmcsError::VmFailInvalid)]
            .into_iter()
            .collect(),
    );
    let cases: Vec<(&str, Request, Response)> = vec![
        (
            "VMREAD with no current VMCS",
            Request::Fields([FieldOp::Read(0x4400)].into_iter().collect()),
            no_vmcs,
        ),
        (
            "VMCLEAR of the VMXON region with no current VMCS",
            Request::Vmclear(Region::Vmxon),
            Response::Failed(VmcsError::VmFailInvalid),
        ),
        (
            "VMCLEAR of a fresh region",
            Request::Vmclear(Region::Vmcs(1)),
            Response::Done,
        ),
        ("VMPTRLD of it", Request::Vmptrld(Region::Vmcs(1)), Response::Done),
        (
            "VMCLEAR of the VMXON pointer",
            Request::Vmclear(Region::Vmxon),
            fail_valid(E::VmclearVmxonPointer),
        ),
        (
            "VMPTRLD of the VMXON pointer",
            Request::Vmptrld(Region::Vmxon),
            fail_valid(E::VmptrldVmxonPointer),
        ),
        (
            "VMCLEAR of an unaligned address",
            Request::Vmclear(Region::Physical(0x10_0010)),
            fail_valid(E::VmclearInvalidAddress),
        ),
        (
            "VMPTRLD of an unaligned address",
            Request::Vmptrld(Region::Physical(0x10_0010)),
            fail_valid(E::VmptrldInvalidAddress),
        ),
        (
            "set a wrong revision",
            Request::SetRegionHeader {
                region: 2,
                header: revision ^ 1,
            },
            Response::Done,
        ),
        (
            "VMPTRLD with a wrong revision",
            Request::Vmptrld(Region::Vmcs(2)),
            fail_valid(E::VmptrldBadRevision),
        ),
        (
            "VMXON in VMX root operation",
            Request::EnableVmx,
            fail_valid(E::VmxonInRoot),
        ),
    ];
    for (what, request, expected) in cases {
        let got = oracle.call(&request)?;
        tally.instruction_checks += 1;
        if got != expected {
            tally.disagree(format!("{what}: expected {expected:?}, the oracle said {got:?}"));
        }
    }
    Ok(())
}

/// The operations of the field comparison: a sweep of the whole encoding space where fields
/// live, every catalogue field written and read back (FULL and HIGH), then `random` random
/// operations.
pub fn plan_field_ops(rng: &mut Rng, random: usize) -> Vec<FieldOp> {
    let mut ops = Vec::new();
    // Every encoding with a valid shape and an index below 64 (no field uses more), FULL and
    // HIGH: defined fields read 0 on a fresh VMCS, the rest fail with error 12.
    for width in 0..4u32 {
        for field_type in 0..4u32 {
            for index in 0..64u32 {
                let full = (width << 13) | (field_type << 10) | (index << 1);
                ops.push(FieldOp::Read(full));
                ops.push(FieldOp::Read(full | 1));
            }
        }
    }
    for row in FIELDS {
        let full = row.encoding.raw();
        ops.push(FieldOp::Write(full, rng.value()));
        ops.push(FieldOp::Read(full));
        if row.width == FieldWidth::Bits64 {
            ops.push(FieldOp::Write(full | 1, rng.value()));
            ops.push(FieldOp::Read(full | 1));
            ops.push(FieldOp::Read(full));
        }
    }
    while ops.len() < random + 2048 + 3 * FIELDS.len() {
        let encoding = random_encoding(rng);
        match rng.below(10) {
            0..=4 => {
                ops.push(FieldOp::Write(encoding, rng.value()));
                ops.push(FieldOp::Read(encoding));
            }
            5..=7 => ops.push(FieldOp::Read(encoding)),
            _ => ops.push(FieldOp::Write(encoding, rng.value())),
        }
    }
    ops
}

/// An encoding drawn to hit defined fields, their HIGH halves and their near misses.
fn random_encoding(rng: &mut Rng) -> u32 {
    let row = rng.pick(FIELDS).encoding.raw();
    match rng.below(20) {
        0..=6 => row,
        7..=9 => row | 1,
        10..=13 => {
            ((rng.below(4) as u32) << 13)
                | ((rng.below(4) as u32) << 10)
                | ((rng.below(64) as u32) << 1)
                | (rng.below(2) as u32)
        }
        14..=15 => row ^ (1 << rng.below(32)),
        16..=17 => row | (1 << 12) | ((rng.below(2) as u32) << (15 + rng.below(17))),
        _ => rng.next_u64() as u32,
    }
}

fn soft_outcome(soft: &mut SoftVmcs, op: FieldOp) -> FieldOutcome {
    match op {
        FieldOp::Read(encoding) => match soft.read(encoding) {
            Ok(value) => FieldOutcome::Value(value),
            Err(e) => FieldOutcome::Failed(e),
        },
        FieldOp::Write(encoding, value) => match soft.write(encoding, value) {
            Ok(()) => FieldOutcome::Written,
            Err(e) => FieldOutcome::Failed(e),
        },
    }
}

fn describe(op: FieldOp) -> String {
    match op {
        FieldOp::Read(encoding) => format!("VMREAD {encoding:#x}"),
        FieldOp::Write(encoding, value) => format!("VMWRITE {encoding:#x} <- {value:#x}"),
    }
}

/// Runs `ops` on a fresh VMCS (region 0) of the oracle and on a `soft` VMCS with the profile
/// of `caps`, comparing every outcome.
pub fn field_differential(
    oracle: &mut impl Oracle,
    caps: &VmxCapabilities,
    ops: &[FieldOp],
    tally: &mut Tally,
) -> Result<(), String> {
    for request in [
        Request::Vmclear(Region::Vmcs(0)),
        Request::Vmptrld(Region::Vmcs(0)),
    ] {
        match oracle.call(&request)? {
            Response::Done => {}
            other => return Err(format!("{request:?}: {other:?}")),
        }
    }
    let mut soft = SoftVmcs::new(SoftProfile::from_capabilities(caps));
    for (batch_number, batch) in ops.chunks(MAX_FIELD_OPS).enumerate() {
        let request = Request::Fields(batch.iter().copied().collect());
        let outcomes = match oracle.call(&request)? {
            Response::Fields(outcomes) if outcomes.len() == batch.len() => outcomes,
            other => return Err(format!("field batch {batch_number}: unexpected {other:?}")),
        };
        for (i, (&op, &oracle_outcome)) in batch.iter().zip(outcomes.iter()).enumerate() {
            let soft_outcome = soft_outcome(&mut soft, op);
            tally.field_ops += 1;
            if soft_outcome != oracle_outcome {
                tally.disagree(format!(
                    "op {}: {}: Bochs {oracle_outcome:?}, soft {soft_outcome:?}",
                    batch_number * MAX_FIELD_OPS + i,
                    describe(op)
                ));
            }
        }
    }
    Ok(())
}

/// Random `set_control` requests checked against the allowed settings the model reports:
/// a value must have every must-be-1 bit, no bit that may not be 1, the requested bits as
/// requested; a refusal must name bits the MSRs really forbid.
pub fn control_checks(caps: &VmxCapabilities, rng: &mut Rng, requests: usize, tally: &mut Tally) {
    for _ in 0..requests {
        let kind = *rng.pick(ControlKind::ALL);
        let defined = kind.defined_bits();
        let set = defined & rng.next_u64() & rng.next_u64() & rng.next_u64();
        let clear = defined & !set & rng.next_u64() & rng.next_u64() & rng.next_u64();
        let previous = rng.chance(50).then(|| rng.next_u64() & kind.mask());
        tally.control_requests += 1;
        let result = set_control(caps, kind, previous, set, clear);
        if let Some(problem) = control_problem(caps, kind, set, clear, result) {
            tally.disagree(format!(
                "set_control({kind:?}, previous {previous:x?}, set {set:#x}, clear {clear:#x}) = {result:x?}: {problem}"
            ));
        }
    }
}

/// What is wrong with a `set_control` result, judged by the MSRs alone.
fn control_problem(
    caps: &VmxCapabilities,
    kind: ControlKind,
    set: u64,
    clear: u64,
    result: Result<u64, ControlError>,
) -> Option<String> {
    let allowed = caps.allowed(kind);
    match (result, allowed) {
        (Ok(value), Ok(allowed)) => {
            if !allowed.permits(value) {
                Some(format!("not permitted by the MSRs ({allowed:x?})"))
            } else if value & set != set || value & clear != 0 {
                Some("the requested bits are not as requested".into())
            } else {
                None
            }
        }
        (Ok(_), Err(e)) => Some(format!("a value although the MSRs say {e}")),
        (Err(ControlError::NotAllowedOne { bits, .. }), Ok(allowed)) => {
            (bits == 0 || bits & !set != 0 || bits & allowed.may_be_one != 0)
                .then(|| "bits wrongly refused".into())
        }
        (Err(ControlError::MustBeOne { bits, .. }), Ok(allowed)) => {
            (bits == 0 || bits & !clear != 0 || bits & !allowed.must_be_one != 0)
                .then(|| "bits wrongly kept".into())
        }
        (Err(ControlError::NotSupported { activator, bit, .. }), _) => caps
            .allows_one(activator, bit)
            .then(|| "the activating control is allowed".into()),
        (Err(e), Ok(_)) => Some(format!("refused ({e}) although the MSRs allow it")),
        (Err(_), Err(_)) => None,
    }
}

use ControlKind::{Entry, Exit, Pin, Primary, Secondary};

/// One bit of one control word.
type ControlBit = (ControlKind, u32);

/// Controls that require another control to be 1 (SDM Vol. 3C, Section 27.2.1.1 for the
/// VM-execution controls, 27.2.1.2 for the VM-exit controls): `set_control` decides one word
/// from its MSR and cannot know them, so the entry trials request the prerequisite too.
const REQUIRES: &[(ControlBit, ControlBit)] = &[
    ((Pin, 5), (Pin, 3)),              // virtual NMIs -> NMI exiting
    ((Primary, 22), (Pin, 5)),         // NMI-window exiting -> virtual NMIs
    ((Pin, 7), (Secondary, 9)),        // process posted interrupts -> virtual-interrupt delivery
    ((Pin, 7), (Exit, 15)),            // ... and acknowledge interrupt on exit
    ((Secondary, 4), (Primary, 21)),   // virtualize x2APIC mode -> use TPR shadow
    ((Secondary, 8), (Primary, 21)),   // APIC-register virtualization -> use TPR shadow
    ((Secondary, 9), (Primary, 21)),   // virtual-interrupt delivery -> use TPR shadow
    ((Secondary, 9), (Pin, 0)),        // ... and external-interrupt exiting
    ((Secondary, 7), (Secondary, 1)),  // unrestricted guest -> enable EPT
    ((Secondary, 17), (Secondary, 1)), // enable PML -> enable EPT
    ((Secondary, 22), (Secondary, 1)), // mode-based execute control -> enable EPT
    ((Secondary, 23), (Secondary, 1)), // sub-page write permissions -> enable EPT
    ((Exit, 22), (Pin, 6)),            // save VMX-preemption timer -> activate the timer
];

/// Controls that must stay 0 here: "virtualize x2APIC mode" excludes "virtualize APIC
/// accesses" (27.2.1.1), and "entry to SMM" / "deactivate dual-monitor treatment" are for
/// entries from SMM only (27.2.1.3).
const NEVER: &[ControlBit] = &[(Secondary, 4), (Entry, 10), (Entry, 11)];

/// The five control words an entry trial sets, in VMCS write order.
const ENTRY_WORDS: [ControlKind; 5] = [Pin, Primary, Secondary, Exit, Entry];

fn word_index(kind: ControlKind) -> usize {
    ENTRY_WORDS.iter().position(|k| *k == kind).unwrap_or(0)
}

/// Random set/clear requests for the five words, closed under [`REQUIRES`] and [`NEVER`].
fn entry_requests(caps: &VmxCapabilities, rng: &mut Rng) -> [(u64, u64); 5] {
    let mut requests = [(0u64, 0u64); 5];
    for (i, kind) in ENTRY_WORDS.iter().enumerate() {
        let defined = kind.defined_bits();
        let allowed = caps.allowed(*kind).map(|a| a.may_be_one).unwrap_or(0);
        // Mostly bits the model allows, so that most trials reach VMLAUNCH.
        let candidates = if rng.chance(90) {
            defined & allowed
        } else {
            defined
        };
        let set = candidates & rng.next_u64() & rng.next_u64();
        let must = caps.allowed(*kind).map(|a| a.must_be_one).unwrap_or(0);
        let clear = defined & !set & !must & rng.next_u64() & rng.next_u64();
        requests[i] = (set, clear);
    }
    // Secondary controls take effect only with primary bit 31; no tertiary controls here.
    if caps.allows_one(Primary, 31) {
        requests[word_index(Primary)].0 |= 1 << 31;
    }
    requests[word_index(Primary)].0 &= !(1 << 17);
    requests[word_index(Primary)].1 |= 1 << 17;
    for _ in 0..REQUIRES.len() {
        for &((kind, bit), (needed_kind, needed_bit)) in REQUIRES {
            if requests[word_index(kind)].0 & (1 << bit) != 0 {
                let needed = &mut requests[word_index(needed_kind)];
                needed.0 |= 1 << needed_bit;
                needed.1 &= !(1 << needed_bit);
            }
        }
    }
    for &(kind, bit) in NEVER {
        let request = &mut requests[word_index(kind)];
        request.0 &= !(1 << bit);
        request.1 |= 1 << bit;
    }
    for request in &mut requests {
        request.1 &= !request.0;
    }
    // A prerequisite that NEVER removed drags its dependants out too.
    for _ in 0..REQUIRES.len() {
        for &((kind, bit), (needed_kind, needed_bit)) in REQUIRES {
            if requests[word_index(needed_kind)].0 & (1 << needed_bit) == 0 {
                let request = &mut requests[word_index(kind)];
                request.0 &= !(1 << bit);
                request.1 |= 1 << bit;
            }
        }
    }
    requests
}

/// VM entries with controls computed by `set_control` from random requests: every entry must
/// get past the checks on the VMX controls (SDM Vol. 3C, Section 27.2.1). The host state is
/// invalid on purpose (host CR0 = 0 violates IA32_VMX_CR0_FIXED0, Section 27.2.2), so an entry
/// whose controls pass fails with VM-instruction error 8 and never runs a guest; error 7 means
/// our controls failed. Uses VMCS region 3.
pub fn entry_checks(
    oracle: &mut impl Oracle,
    caps: &VmxCapabilities,
    rng: &mut Rng,
    trials: usize,
    tally: &mut Tally,
) -> Result<(), String> {
    for request in [
        Request::Vmclear(Region::Vmcs(3)),
        Request::Vmptrld(Region::Vmcs(3)),
    ] {
        match oracle.call(&request)? {
            Response::Done => {}
            other => return Err(format!("{request:?}: {other:?}")),
        }
    }
    // Fields that other controls' checks read: a non-zero VPID, a valid EPTP (write-back if
    // supported, else uncached; 4-level walk), a non-zero TSC multiplier; zero everywhere
    // else is valid (aligned addresses, no MSR loads, no event injection).
    let ept_type = match caps.ept_vpid() {
        Some(ept) if ept.memory_type_wb => 6,
        _ => 0,
    };
    let mut setup = Vec::new();
    for (field, value) in [
        (vmcs::VmcsControl16::Vpid as u32, 1),
        (vmcs::VmcsControl64::EptPointer as u32, ept_type | (3 << 3)),
        (vmcs::VmcsControl64::TscMultiplier as u32, 1),
        (vmcs::VmcsHostNW::Cr0 as u32, 0),
    ] {
        if vmcs::Field::from_encoding(field).is_some_and(|f| caps.supports_field(f)) {
            setup.push(FieldOp::Write(field, value));
        }
    }
    expect_written(oracle, &setup)?;
    for _ in 0..trials {
        let requests = entry_requests(caps, rng);
        let mut values = [0u64; 5];
        // Words set_control refused: the value with the refused request forced in anyway.
        let mut forced = [false; 5];
        let mut usable = true;
        for (i, &kind) in ENTRY_WORDS.iter().enumerate() {
            let (set, clear) = requests[i];
            tally.control_requests += 1;
            let result = set_control(caps, kind, None, set, clear);
            if let Some(problem) = control_problem(caps, kind, set, clear, result) {
                tally.disagree(format!(
                    "set_control({kind:?}, set {set:#x}, clear {clear:#x}) = {result:x?}: {problem}"
                ));
            }
            let value = match result {
                Ok(value) => Some(value),
                Err(ControlError::NotAllowedOne { bits, .. }) => {
                    forced[i] = true;
                    set_control(caps, kind, None, set & !bits, clear)
                        .ok()
                        .map(|v| v | bits)
                }
                Err(ControlError::MustBeOne { bits, .. }) => {
                    forced[i] = true;
                    set_control(caps, kind, None, set, clear & !bits)
                        .ok()
                        .map(|v| v & !bits)
                }
                Err(_) => None,
            };
            match value {
                Some(value) => values[i] = value,
                None => usable = false,
            }
        }
        if !usable {
            continue;
        }
        let writes: Vec<FieldOp> = ENTRY_WORDS
            .iter()
            .zip(values)
            .filter(|(kind, _)| caps.supports_field(kind.vmcs_field()))
            .map(|(kind, value)| FieldOp::Write(kind.vmcs_field().encoding().raw(), value))
            .collect();
        expect_written(oracle, &writes)?;
        let refused = forced.iter().any(|f| *f);
        // A refusal is right if the processor rejects the value it refused to make (error 7);
        // a value it made must pass the control checks and fail on the host state (error 8).
        let (expected, what) = if refused {
            tally.refusals += 1;
            (
                fail_valid(VmInstructionError::EntryInvalidControls),
                "refused by set_control (values forced)",
            )
        } else {
            tally.entries += 1;
            (
                fail_valid(VmInstructionError::EntryInvalidHostState),
                "from set_control",
            )
        };
        match oracle.call(&Request::Launch)? {
            got if got == expected => {}
            got => tally.disagree(format!(
                "VMLAUNCH with pin {:#x}, primary {:#x}, secondary {:#x}, exit {:#x}, entry {:#x} ({what}): \
                 expected {expected:?}, got {got:?}",
                values[0], values[1], values[2], values[3], values[4]
            )),
        }
    }
    Ok(())
}

fn expect_written(oracle: &mut impl Oracle, ops: &[FieldOp]) -> Result<(), String> {
    for batch in ops.chunks(MAX_FIELD_OPS) {
        match oracle.call(&Request::Fields(batch.iter().copied().collect()))? {
            Response::Fields(outcomes) if outcomes.iter().all(|o| *o == FieldOutcome::Written) => {}
            other => return Err(format!("VMWRITE {batch:x?}: {other:?}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oracle_proto::Fault;
    use vmcs::caps::profiles;

    /// A stand-in for Bochs: a `soft` VMCS with a given profile behind the stub protocol.
    struct SoftOracle {
        vmcs: SoftVmcs,
        current: bool,
        in_root: bool,
        msrs: VmxCapabilities,
    }

    impl SoftOracle {
        fn new(msrs: VmxCapabilities, profile: SoftProfile) -> Self {
            Self {
                vmcs: SoftVmcs::new(profile),
                current: false,
                in_root: false,
                msrs,
            }
        }
    }

    impl Oracle for SoftOracle {
        fn call(&mut self, request: &Request) -> Result<Response, String> {
            use VmInstructionError as E;
            let fail = |current: bool, e| {
                Response::Failed(if current {
                    VmcsError::VmFailValid(e)
                } else {
                    VmcsError::VmFailInvalid
                })
            };
            Ok(match request {
                Request::ReadMsr(n) => {
                    match VmxCapabilityMsr::from_msr_number(*n).and_then(|m| self.msrs.get(m)) {
                        Some(v) => Response::Msr(v),
                        None => Response::Fault(Fault {
                            vector: 13,
                            error_code: 0,
                            rip: 0,
                        }),
                    }
                }
                Request::EnableVmx if self.in_root => fail(self.current, E::VmxonInRoot),
                Request::EnableVmx => {
                    self.in_root = true;
                    Response::Done
                }
                Request::Vmclear(Region::Vmxon) => fail(self.current, E::VmclearVmxonPointer),
                Request::Vmptrld(Region::Vmxon) => fail(self.current, E::VmptrldVmxonPointer),
                Request::Vmclear(Region::Physical(_)) => fail(self.current, E::VmclearInvalidAddress),
                Request::Vmptrld(Region::Physical(_)) => fail(self.current, E::VmptrldInvalidAddress),
                Request::Vmptrld(Region::Vmcs(2)) => fail(self.current, E::VmptrldBadRevision),
                Request::Vmclear(_) => Response::Done,
                Request::Vmptrld(_) => {
                    self.current = true;
                    Response::Done
                }
                Request::SetRegionHeader { .. } => Response::Done,
                Request::Fields(ops) if !self.current => Response::Fields(
                    ops.iter()
                        .map(|_| FieldOutcome::Failed(VmcsError::VmFailInvalid))
                        .collect(),
                ),
                Request::Fields(ops) => {
                    Response::Fields(ops.iter().map(|op| soft_outcome(&mut self.vmcs, *op)).collect())
                }
                other => return Err(format!("not modelled: {other:?}")),
            })
        }
    }

    fn run(oracle: &mut SoftOracle, caps: &VmxCapabilities) -> Tally {
        let mut tally = Tally::default();
        let read = read_capabilities(oracle).unwrap();
        assert_eq!(&read, caps);
        enable_vmx(oracle).unwrap();
        instruction_checks(oracle, caps, &mut tally).unwrap();
        let ops = plan_field_ops(&mut Rng::new(3), 500);
        field_differential(oracle, caps, &ops, &mut tally).unwrap();
        control_checks(caps, &mut Rng::new(4), 500, &mut tally);
        tally
    }

    #[test]
    fn an_oracle_that_behaves_like_soft_agrees_everywhere() {
        let caps = profiles::bochs_corei7_skylake_x();
        let mut oracle = SoftOracle::new(caps, SoftProfile::from_capabilities(&caps));
        let tally = run(&mut oracle, &caps);
        assert_eq!(tally.disagreements, Vec::<String>::new());
        assert_eq!(tally.instruction_checks, 11);
        assert!(tally.field_ops >= 500 + 2048 + FIELDS.len());
        assert_eq!(tally.control_requests, 500);
    }

    #[test]
    fn an_oracle_with_other_rules_is_caught() {
        let caps = profiles::bochs_corei7_skylake_x();
        // Bochs models without IA32_VMX_MISC bit 29 refuse VMWRITE to exit fields.
        let strict = SoftProfile {
            writable_exit_info: false,
            ..SoftProfile::from_capabilities(&caps)
        };
        let tally = run(&mut SoftOracle::new(caps, strict), &caps);
        assert!(
            tally.disagreements.iter().any(|d| d.contains("VMWRITE 0x4402")),
            "{:?}",
            tally.disagreements
        );
        // A processor with every catalogue field.
        let tally = run(&mut SoftOracle::new(caps, SoftProfile::all_fields()), &caps);
        assert!(
            tally.disagreements.iter().any(|d| d.contains("0x2c06")),
            "host PKRS: {:?}",
            tally.disagreements
        );
    }

    #[test]
    fn wrong_control_results_are_recognised() {
        let caps = profiles::bochs_corei7_skylake_x();
        let pin = ControlKind::Pin;
        assert_eq!(control_problem(&caps, pin, 0, 0, Ok(0x16)), None);
        assert!(
            control_problem(&caps, pin, 0, 0, Ok(0x0)).is_some(),
            "must-be-1 bits missing"
        );
        assert!(
            control_problem(&caps, pin, 1 << 7, 0, Ok(0x96)).is_some(),
            "bit 7 may not be 1"
        );
        assert!(
            control_problem(&caps, pin, 1, 0, Ok(0x16)).is_some(),
            "bit 0 was asked for"
        );
        let refused = ControlError::NotAllowedOne {
            kind: pin,
            msr: VmxCapabilityMsr::TruePinbasedCtls,
            bits: 1,
        };
        assert!(
            control_problem(&caps, pin, 1, 0, Err(refused)).is_some(),
            "bit 0 may be 1"
        );
    }
}
