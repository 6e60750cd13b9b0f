//! What a run reports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vmm_protocol::ExitClass;
use vmm_server::cache::InvocationCounts;

/// Messages and bytes that crossed one boundary in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Messages.
    pub messages: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Traffic {
    /// Counts one message of `bytes` bytes.
    pub fn count(&mut self, bytes: usize) {
        self.messages += 1;
        self.bytes += bytes as u64;
    }
}

/// Kernel invocations per exit of one class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassInvocations {
    /// Exits of this class.
    pub exits: u64,
    /// ReadVMCS calls.
    pub read_vmcs: u64,
    /// WriteVMCS calls.
    pub write_vmcs: u64,
    /// WriteRegisters calls.
    pub write_registers: u64,
    /// VMEnter calls.
    pub vm_enter: u64,
    /// All invocations per exit.
    pub per_exit: f64,
}

/// The report of one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The transport used.
    pub transport: String,
    /// The guest's UART output.
    pub uart: String,
    /// The status the guest stopped with (`None`: it did not stop through the debug-exit
    /// port or a device-model stop).
    pub exit_status: Option<u32>,
    /// How the run ended.
    pub outcome: String,
    /// Exits per basic reason number.
    pub exits: BTreeMap<u16, u64>,
    /// Kernel invocations per exit class.
    pub invocations: BTreeMap<String, ClassInvocations>,
    /// Exit records, server → device model.
    pub exit_records: Traffic,
    /// Exit replies, device model → server.
    pub exit_replies: Traffic,
    /// Requests, controller → server.
    pub requests: Traffic,
    /// Responses, server → controller.
    pub responses: Traffic,
    /// Device-model restarts.
    pub device_model_restarts: u32,
    /// Replies the server rejected.
    pub replies_rejected: u64,
    /// Steps of the script played.
    pub steps_played: usize,
    /// Steps in the script.
    pub steps_total: usize,
    /// Where the VMM did not do what the scripted guest expected.
    pub differences: Vec<String>,
}

impl RunReport {
    /// All messages across every boundary.
    pub fn messages(&self) -> u64 {
        self.exit_records.messages
            + self.exit_replies.messages
            + self.requests.messages
            + self.responses.messages
    }

    /// Whether the guest did everything its script expected and stopped.
    pub fn guest_satisfied(&self) -> bool {
        self.differences.is_empty() && self.steps_played == self.steps_total && self.exit_status.is_some()
    }

    /// Fills the exit and invocation tables from a server's counters.
    pub fn take_server_counters(
        &mut self,
        by_reason: impl Iterator<Item = (u16, u64)>,
        exits_by_class: &[u64; ExitClass::COUNT],
        by_class: &[InvocationCounts; ExitClass::COUNT],
    ) {
        self.exits = by_reason.collect();
        for class in ExitClass::ALL {
            let exits = exits_by_class[class.index()];
            if exits == 0 {
                continue;
            }
            let c = by_class[class.index()];
            self.invocations.insert(
                class.name().to_string(),
                ClassInvocations {
                    exits,
                    read_vmcs: c.read_vmcs,
                    write_vmcs: c.write_vmcs,
                    write_registers: c.write_registers,
                    vm_enter: c.vm_enter,
                    per_exit: c.total() as f64 / exits as f64,
                },
            );
        }
    }

    /// The one-object JSON form `vmm run --json` prints.
    pub fn to_json(&self) -> serde_json::Value {
        let exits: serde_json::Map<String, serde_json::Value> = self
            .exits
            .iter()
            .map(|(r, n)| (r.to_string(), (*n).into()))
            .collect();
        serde_json::json!({
            "uart": self.uart,
            "exit_status": self.exit_status,
            "exits": exits,
            "messages": self.messages(),
            "transport": self.transport,
            "outcome": self.outcome,
            "invocations": self.invocations,
            "boundaries": {
                "exit_records": self.exit_records,
                "exit_replies": self.exit_replies,
                "requests": self.requests,
                "responses": self.responses,
            },
            "device_model_restarts": self.device_model_restarts,
            "replies_rejected": self.replies_rejected,
            "steps_played": self.steps_played,
            "steps_total": self.steps_total,
            "differences": self.differences,
        })
    }

    /// The human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "guest stopped: {} ({}), transport {}\n",
            self.exit_status
                .map_or("no".to_string(), |v| format!("status {v}")),
            self.outcome,
            self.transport
        ));
        s.push_str(&format!(
            "script: {}/{} steps played",
            self.steps_played, self.steps_total
        ));
        if self.differences.is_empty() {
            s.push_str(", every expectation met\n");
        } else {
            s.push_str(&format!(", {} differences:\n", self.differences.len()));
            for d in &self.differences {
                s.push_str(&format!("  {d}\n"));
            }
        }
        s.push_str("exits by reason:\n");
        for (reason, count) in &self.exits {
            let name = vmcs::ExitReason::from_number(*reason).name();
            s.push_str(&format!("  {reason:>5} {name:<45} {count:>6}\n"));
        }
        s.push_str(
            "kernel invocations per exit, by class (ReadVMCS / WriteVMCS / WriteRegisters / VMEnter):\n",
        );
        for (class, c) in &self.invocations {
            s.push_str(&format!(
                "  {class:<18} {:>6} exits  {:.2} per exit  ({} / {} / {} / {})\n",
                c.exits, c.per_exit, c.read_vmcs, c.write_vmcs, c.write_registers, c.vm_enter
            ));
        }
        s.push_str("messages and bytes per boundary:\n");
        for (name, t) in [
            ("exit records (server -> device model)", self.exit_records),
            ("exit replies (device model -> server)", self.exit_replies),
            ("requests (controller -> server)", self.requests),
            ("responses (server -> controller)", self.responses),
        ] {
            s.push_str(&format!(
                "  {name:<40} {:>7} messages {:>9} bytes\n",
                t.messages, t.bytes
            ));
        }
        if self.device_model_restarts > 0 {
            s.push_str(&format!(
                "device model restarted {} times\n",
                self.device_model_restarts
            ));
        }
        s
    }
}
