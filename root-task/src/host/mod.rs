//! Running the system on a Linux host.
//!
//! | piece | what |
//! |---|---|
//! | [`script`] | script files and the bundled guest |
//! | [`vmm_side`] | the VMM server on the model VCPU, and the controller's boot requests |
//! | [`dm_side`] | the device model with the standard platform, UART output per exit |
//! | [`console`] | UART output, printed once per exit even across device-model restarts |
//! | [`report`] | what a run reports (`vmm run` prints it) |
//! | [`transport`] | in-process, threads, processes |

pub mod console;
pub mod dm_side;
pub mod report;
pub mod script;
pub mod transport;
pub mod vmm_side;

pub use report::RunReport;
pub use transport::{RunOptions, Transport, run};

/// Badges the composer mints, one per client of the VMM server.
pub use vmm_server::composition::badge;

/// Why a run failed.
#[derive(Debug)]
pub enum HostError {
    /// The script is unusable.
    Script(script::ScriptError),
    /// A request the controller made was refused.
    Refused(String),
    /// A channel or process failed.
    Io(std::io::Error),
    /// A component misbehaved beyond what the system survives.
    Component(String),
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Script(e) => write!(f, "{e}"),
            Self::Refused(m) => write!(f, "request refused: {m}"),
            Self::Io(e) => write!(f, "{e}"),
            Self::Component(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for HostError {}

impl From<std::io::Error> for HostError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<script::ScriptError> for HostError {
    fn from(e: script::ScriptError) -> Self {
        Self::Script(e)
    }
}
