//! `vmm`: the host tool. Subcommands print human-readable text by default and one JSON value
//! with `--json`. Invalid requests exit with status 2 and a one-line message on stderr.

mod bench;
mod controls;
mod decode;
mod fields;
mod inject;
mod number;
mod run;
mod wire;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "vmm", version, about = "VT-x VMM service for seL4: host tool")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every VMCS field of the catalogue.
    Fields(fields::Args),
    /// Decode an exit reason and its qualification (SDM Vol. 3C, Section 28.2).
    Decode(decode::Args),
    /// Compute a VMX control word from capability MSRs (SDM Vol. 3D, Appendix A.3-A.5).
    Controls(controls::Args),
    /// Build the VM-entry fields that inject an event (SDM Vol. 3C, Section 27.6).
    Inject(inject::Args),
    /// Decode and encode the messages between components; their size limits.
    Wire(wire::Args),
    /// Run a scripted guest: VMM server and device model over a transport.
    Run(run::Args),
    /// Exits per second through the bundled guest, per transport.
    Bench(bench::Args),
    /// The VMM server component (started by `vmm run --transport processes`).
    #[command(name = "__vmm-server", hide = true)]
    VmmServerRole,
    /// The device-model component (started by `vmm run --transport processes`).
    #[command(name = "__device-model", hide = true)]
    DeviceModelRole,
}

/// A component's exit: errors go to the log; the composer judges by what it sees.
fn component(result: Result<(), root_task::host::HostError>) -> Result<String, Refusal> {
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            log::error!("{e}");
            std::process::exit(1)
        }
    }
}

/// A request the tool refuses: printed on one line, exit status 2.
#[derive(Debug)]
pub struct Refusal(pub String);

impl<E: std::fmt::Display> From<E> for Refusal {
    fn from(error: E) -> Self {
        Self(error.to_string())
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::VmmServerRole => component(root_task::host::transport::process::serve_vmm()),
        Command::DeviceModelRole => component(root_task::host::transport::process::serve_device_model()),
        Command::Run(args) => run::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Fields(args) => fields::run(&args),
        Command::Controls(args) => controls::run(&args),
        Command::Decode(args) => decode::run(&args),
        Command::Inject(args) => inject::run(&args),
        Command::Wire(args) => wire::run(&args),
    };
    match outcome {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(Refusal(message)) => {
            eprintln!("vmm: {message}");
            ExitCode::from(2)
        }
    }
}
