//! `vmm bench`: exits per second through the bundled guest, per transport.

use std::time::Instant;

use root_task::host::script::looped_hello;
use root_task::host::{RunOptions, Transport, run as run_system};
use serde_json::json;

use crate::Refusal;

/// Arguments of `vmm bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rounds of the bundled guest (about 50 exits each).
    #[arg(long, default_value_t = 2000)]
    rounds: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `vmm bench`.
pub fn run(args: &Args) -> Result<String, Refusal> {
    let script = looped_hello(args.rounds.max(1));
    let mut rows = Vec::new();
    for transport in [Transport::Inproc, Transport::Threads, Transport::Processes] {
        let options = RunOptions {
            script: script.clone(),
            transport,
            echo: false,
            kill_device_model_after: None,
            component_exe: None,
        };
        let started = Instant::now();
        let report = run_system(&options)?;
        let seconds = started.elapsed().as_secs_f64();
        if !report.guest_satisfied() {
            return Err(Refusal(format!(
                "{}: the guest did not complete: {:?}",
                transport.name(),
                report.differences
            )));
        }
        let exits: u64 = report.exits.values().sum();
        rows.push((transport.name(), exits, seconds, exits as f64 / seconds));
    }
    let baseline = rows[0].3;
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .map(|(name, exits, seconds, rate)| {
                json!({"transport": name, "exits": exits, "seconds": seconds, "exits_per_second": rate, "ratio_to_inproc": rate / baseline})
            })
            .collect();
        return Ok(serde_json::Value::Array(list).to_string());
    }
    let mut text = String::from("transport    exits     seconds   exits/s      ratio to inproc\n");
    for (name, exits, seconds, rate) in rows {
        text.push_str(&format!(
            "{name:<10} {exits:>8} {seconds:>10.3} {rate:>12.0} {:>10.3}\n",
            rate / baseline
        ));
    }
    text.push_str("(whole runs: process start-up and the controller's boot requests included)");
    Ok(text)
}
