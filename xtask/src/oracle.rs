//! The VMX oracle tier: the `vmcs` crate checked against Bochs' VMX implementation.
//!
//! For each CPU model, one Bochs runs the oracle stub (`oracle/stub`, booted from a ROM of its
//! own) and serves requests over COM1. For each model the tier
//! - reads the capability MSRs and checks them against `vmcs/testdata/caps/bochs-<model>.json`
//!   (which the `vmcs` unit tests use too);
//! - checks the VMX instructions' error cases (VMCLEAR/VMPTRLD/VMXON error numbers);
//! - compares thousands of VMREAD/VMWRITE outcomes with the `soft` backend configured from
//!   those MSRs ([`vmcs::SoftProfile::from_capabilities`]), operation by operation;
//! - checks random `set_control` requests against the MSRs, then enters VMX non-root with the
//!   results: a value must pass VM entry's control checks, and a value `set_control` refused
//!   (forced in) must fail them;
//! - runs guest snippets to a VM exit and compares the exit, as [`vmcs::VmxExitInfo`] decodes
//!   it, with what the SDM says the snippet produces.
//!
//! Any disagreement fails the tier. `cargo xtask oracle [--save-caps] [--seed N] [--ops N]
//! [--controls N] [--entries N] [MODEL...]` runs it alone; `--save-caps` rewrites the
//! capability files instead of checking them.

mod bochs;
mod caps_file;
mod diff;
mod exits;
mod rng;

use std::path::{Path, PathBuf};
use std::time::Instant;

use diff::Tally;
use rng::Rng;

/// The CPU models checked: four generations of VMX (Penryn: no EPT, no TRUE-MSR
/// default1 relief beyond the basics, read-only exit fields; Sandy Bridge; Haswell: VMCS
/// shadowing, VMFUNC; Skylake-X: PML, TSC scaling; Ice Lake: CET state).
pub const MODELS: &[&str] = &[
    "core2_penryn_t9600",
    "corei7_sandy_bridge_2600k",
    "corei7_haswell_4770",
    "corei7_skylake_x",
    "corei7_icelake_u",
];

/// Options of one oracle run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Models to check.
    pub models: Vec<String>,
    /// Rewrite the capability files rather than compare with them.
    pub save_caps: bool,
    /// Seed of the random cases.
    pub seed: u64,
    /// Random field operations per model (on top of the systematic ones).
    pub random_ops: usize,
    /// Random `set_control` requests per model.
    pub control_requests: usize,
    /// VM entries with `set_control` results per model.
    pub entries: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            models: MODELS.iter().map(|m| m.to_string()).collect(),
            save_caps: false,
            seed: 0x05EE_D0F0_AC1E,
            random_ops: 20_000,
            control_requests: 2000,
            entries: 300,
        }
    }
}

impl Options {
    /// Parses `[--save-caps] [--seed N] [--ops N] [--controls N] [--entries N] [MODEL...]`.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self::default();
        let mut models = Vec::new();
        let mut args = args.iter();
        let number = |value: Option<&String>, flag: &str| -> Result<u64, String> {
            let text = value.ok_or_else(|| format!("{flag} needs a value"))?;
            match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            }
            .map_err(|e| format!("{flag} {text}: {e}"))
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--save-caps" => options.save_caps = true,
                "--seed" => options.seed = number(args.next(), "--seed")?,
                "--ops" => options.random_ops = number(args.next(), "--ops")? as usize,
                "--controls" => options.control_requests = number(args.next(), "--controls")? as usize,
                "--entries" => options.entries = number(args.next(), "--entries")? as usize,
                flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
                model => models.push(model.to_string()),
            }
        }
        if !models.is_empty() {
            options.models = models;
        }
        Ok(options)
    }
}

/// What one model's run found.
#[derive(Debug)]
struct ModelReport {
    model: String,
    tally: Tally,
    requests: usize,
    seconds: f64,
    caps_note: String,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn caps_path(root: &Path, model: &str) -> PathBuf {
    root.join("vmcs/testdata/caps")
        .join(format!("bochs-{model}.json"))
}

/// Checks one model end to end.
fn check_model(
    bochs: &Path,
    rom: &Path,
    build: &Path,
    model: &str,
    options: &Options,
) -> Result<ModelReport, String> {
    let started = Instant::now();
    let root = workspace_root();
    let (mut session, booted) = bochs::Session::start(bochs, rom, model, &build.join(model))?;
    if booted.vmcs_regions < 3 {
        return Err(format!(
            "{model}: the stub offers {} VMCS regions, 3 are needed",
            booted.vmcs_regions
        ));
    }
    let mut tally = Tally::default();
    let caps = diff::read_capabilities(&mut session).map_err(|e| format!("{model}: {e}"))?;

    let path = caps_path(&root, model);
    let text = caps_file::format(&caps);
    let caps_note = if options.save_caps {
        std::fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
        format!("saved {}", path.display())
    } else {
        match std::fs::read_to_string(&path) {
            Ok(saved) if saved == text => "capability MSRs match the test data".into(),
            Ok(saved) => {
                let differing: Vec<String> = match caps_file::parse(&saved) {
                    Ok(saved) => vmcs::caps::VmxCapabilityMsr::ALL
                        .iter()
                        .filter(|msr| saved.get(**msr) != caps.get(**msr))
                        .map(|msr| {
                            format!(
                                "{} saved {:x?}, read {:x?}",
                                msr.name(),
                                saved.get(*msr),
                                caps.get(*msr)
                            )
                        })
                        .collect(),
                    Err(e) => vec![format!("unreadable: {e}")],
                };
                tally.disagreements.push(format!(
                    "capability MSRs differ from {} (rerun with --save-caps if Bochs changed): {}",
                    path.display(),
                    differing.join("; ")
                ));
                "capability MSRs DIFFER from the test data".into()
            }
            Err(e) => {
                return Err(format!(
                    "{}: {e} (create it with `cargo xtask oracle --save-caps {model}`)",
                    path.display()
                ));
            }
        }
    };

    let mut rng = Rng::new(options.seed ^ fnv(model));
    diff::enable_vmx(&mut session).map_err(|e| format!("{model}: {e}"))?;
    diff::instruction_checks(&mut session, &caps, &mut tally).map_err(|e| format!("{model}: {e}"))?;
    let ops = diff::plan_field_ops(&mut rng, options.random_ops);
    diff::field_differential(&mut session, &caps, &ops, &mut tally).map_err(|e| format!("{model}: {e}"))?;
    diff::control_checks(&caps, &mut rng, options.control_requests, &mut tally);
    diff::entry_checks(&mut session, &caps, &mut rng, options.entries, &mut tally)
        .map_err(|e| format!("{model}: {e}"))?;
    exits::exit_checks(&mut session, &caps, &mut tally).map_err(|e| format!("{model}: {e}"))?;
    let requests = session.requests;
    session.finish()?;
    Ok(ModelReport {
        model: model.into(),
        tally,
        requests,
        seconds: started.elapsed().as_secs_f64(),
        caps_note,
    })
}

/// FNV-1a, to give each model its own random stream from one seed.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xCBF2_9CE4_8422_2325, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

/// Runs the oracle; prints a report; `Ok` with a one-line summary when every model agrees.
pub fn run(options: &Options) -> Result<String, String> {
    let started = Instant::now();
    let root = workspace_root();
    let bochs = bochs::ensure_tools()?;
    let build = root.join("build/oracle");
    let rom = bochs::build_rom(&root, &build)?;
    eprintln!(
        "xtask: oracle: {} models, seed {:#x}, {} random field operations and {} control requests each",
        options.models.len(),
        options.seed,
        options.random_ops,
        options.control_requests
    );
    // Two workers: the machines this runs on have two cores.
    let queue = std::sync::Mutex::new(options.models.clone());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some(model) = queue.lock().map(|mut q| q.pop()).unwrap_or(None) {
                    let result = check_model(&bochs, &rom, &build, &model, options);
                    if let Ok(mut results) = results.lock() {
                        results.push((model, result));
                    }
                }
            });
        }
    });
    let mut results = results
        .into_inner()
        .map_err(|_| "a worker panicked".to_string())?;
    results.sort_by_key(|(model, _)| options.models.iter().position(|m| m == model));

    let mut failures = 0;
    let mut total_ops = 0;
    for (model, result) in &results {
        match result {
            Ok(report) => {
                let t = &report.tally;
                total_ops += t.field_ops
                    + t.instruction_checks
                    + t.control_requests
                    + t.entries
                    + t.refusals
                    + t.exits;
                eprintln!(
                    "  {:<28} {:>6} field ops, {:>3} instruction checks, {:>5} control requests, {:>4} VM entries, {:>3} refusals confirmed, \
                     {:>3} exits ({} skipped), {:>4} requests, {:>5.1} s: {} disagreements; {}",
                    report.model,
                    t.field_ops,
                    t.instruction_checks,
                    t.control_requests,
                    t.entries,
                    t.refusals,
                    t.exits,
                    t.skipped_exits,
                    report.requests,
                    report.seconds,
                    t.disagreements.len(),
                    report.caps_note
                );
                for d in t.disagreements.iter().take(20) {
                    eprintln!("      {d}");
                }
                if t.disagreements.len() > 20 {
                    eprintln!("      ... and {} more", t.disagreements.len() - 20);
                }
                if !t.disagreements.is_empty() {
                    failures += 1;
                }
            }
            Err(e) => {
                eprintln!("  {model:<28} FAILED: {e}");
                failures += 1;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if failures == 0 {
        Ok(format!(
            "{} models, {total_ops} checks, 0 disagreements, {seconds:.1} s",
            results.len()
        ))
    } else {
        Err(format!(
            "{failures} of {} models failed or disagreed",
            results.len()
        ))
    }
}

/// `cargo xtask oracle ...`.
pub fn main(args: &[String]) -> std::process::ExitCode {
    let options = match Options::parse(args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!(
                "xtask: oracle: {e}\nusage: cargo xtask oracle [--save-caps] [--seed N] [--ops N] [--controls N] [--entries N] [MODEL...]"
            );
            return std::process::ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(summary) => {
            eprintln!("xtask: oracle: {summary}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: oracle: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse() {
        let args: Vec<String> = ["--seed", "0x10", "--ops", "5", "corei7_skylake_x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let options = Options::parse(&args).unwrap();
        assert_eq!(options.seed, 16);
        assert_eq!(options.random_ops, 5);
        assert_eq!(options.models, vec!["corei7_skylake_x".to_string()]);
        assert!(Options::parse(&["--bogus".to_string()]).is_err());
        assert!(Options::parse(&["--seed".to_string()]).is_err());
        assert_eq!(Options::parse(&[]).unwrap().models.len(), MODELS.len());
    }

    #[test]
    fn every_model_has_capability_test_data() {
        for model in MODELS {
            let path = caps_path(&workspace_root(), model);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            caps_file::parse(&text).unwrap();
        }
    }
}
