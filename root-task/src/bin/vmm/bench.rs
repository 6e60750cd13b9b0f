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
    /// Runs per transport; the report gives the median and the best (a shared machine's
    /// noise easily halves a single run).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// One transport's runs.
struct Row {
    name: &'static str,
    exits: u64,
    /// Exits per second of each run, ascending.
    rates: Vec<f64>,
}

impl Row {
    fn median(&self) -> f64 {
        let n = self.rates.len();
        if n % 2 == 1 {
            self.rates[n / 2]
        } else {
            (self.rates[n / 2 - 1] + self.rates[n / 2]) / 2.0
        }
    }

    fn best(&self) -> f64 {
        self.rates.last().copied().unwrap_or(0.0)
    }
}

/// Runs `vmm bench`.
pub fn run(args: &Args) -> Result<String, Refusal> {
    let script = looped_hello(args.rounds.max(1));
    let mut rows = Vec::new();
    for transport in Transport::ALL {
        let options = RunOptions::quiet(script.clone(), transport);
        let mut row = Row {
            name: transport.name(),
            exits: 0,
            rates: Vec::new(),
        };
        for _ in 0..args.repeat {
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
            row.exits = report.exits.values().sum();
            row.rates.push(row.exits as f64 / seconds);
        }
        row.rates.sort_by(f64::total_cmp);
        rows.push(row);
    }
    let baseline = rows[0].median();
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .map(|row| {
                json!({
                    "transport": row.name,
                    "exits": row.exits,
                    "runs": row.rates.len(),
                    "exits_per_second": row.median(),
                    "best_exits_per_second": row.best(),
                    "ratio_to_inproc": row.median() / baseline,
                })
            })
            .collect();
        return Ok(serde_json::Value::Array(list).to_string());
    }
    let mut text = String::from("transport    exits  exits/s (median)  exits/s (best)  ratio to inproc\n");
    for row in &rows {
        text.push_str(&format!(
            "{:<10} {:>8} {:>17.0} {:>15.0} {:>16.3}\n",
            row.name,
            row.exits,
            row.median(),
            row.best(),
            row.median() / baseline
        ));
    }
    text.push_str(&format!(
        "({} whole runs per transport: process start-up and the controller's boot requests included; ratios of medians)",
        args.repeat
    ));
    Ok(text)
}
