//! `vmm run`: a scripted guest on the model VCPU, the VMM server and the device model wired
//! by the chosen transport.

use std::path::PathBuf;

use root_task::host::script::{ScriptFile, bundled_hello, looped_hello};
use root_task::host::{RunOptions, Transport, run as run_system};

use crate::Refusal;

/// Arguments of `vmm run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A script file (JSON); default: the bundled guest that says hello.
    #[arg(long)]
    script: Option<PathBuf>,
    /// How the VMM server and the device model are wired.
    #[arg(long, value_enum, default_value = "processes")]
    transport: Transport,
    /// Print one JSON object at the end instead of text.
    #[arg(long)]
    json: bool,
    /// Kill the device-model process after this many exits with UART output, then restart it
    /// (processes transport).
    #[arg(long)]
    kill_device_model_after: Option<u64>,
    /// Print the script (JSON) instead of running it.
    #[arg(long)]
    print_script: bool,
    /// Write the script as the guest image the VMM server loads on seL4 (postcard; see
    /// `cargo xtask test`) to this file instead of running it.
    #[arg(long)]
    export_guest: Option<PathBuf>,
    /// Repeat the bundled guest's work this many times before it stops.
    #[arg(long, conflicts_with = "script")]
    rounds: Option<usize>,
}

/// Runs `vmm run`.
pub fn run(args: &Args) -> Result<String, Refusal> {
    let script = match &args.script {
        Some(path) => ScriptFile::load(path)?,
        None => match args.rounds {
            Some(rounds) => looped_hello(rounds.max(1)),
            None => bundled_hello(),
        },
    };
    if args.print_script {
        return Ok(serde_json::to_string_pretty(&script)?);
    }
    if let Some(path) = &args.export_guest {
        let image = script.guest_image()?;
        std::fs::write(path, &image).map_err(|e| Refusal(format!("{}: {e}", path.display())))?;
        return Ok(format!(
            "{}: guest image, {} steps, {} bytes",
            path.display(),
            script.steps.len(),
            image.len()
        ));
    }
    let options = RunOptions {
        script,
        transport: args.transport,
        echo: !args.json,
        kill_device_model_after: args.kill_device_model_after,
        component_exe: None,
    };
    let report = run_system(&options)?;
    if args.json {
        return Ok(report.to_json().to_string());
    }
    Ok(format!("\n{}", report.summary().trim_end()))
}
