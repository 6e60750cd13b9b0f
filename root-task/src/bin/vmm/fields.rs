//! `vmm fields`: the field catalogue.

use serde_json::json;
use vmcs::FIELDS;

use crate::Refusal;

/// Arguments of `vmm fields`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `vmm fields`.
pub fn run(args: &Args) -> Result<String, Refusal> {
    if args.json {
        let rows: Vec<_> = FIELDS
            .iter()
            .map(|row| {
                json!({
                    "name": row.name,
                    "ident": row.ident,
                    "encoding": format!("{:#06x}", row.encoding.raw()),
                    "width": row.width.name(),
                    "category": row.field_type.name(),
                    "sdm": format!("Vol. 3C, Section {}; Vol. 3D, Table {}", row.sdm_section, row.sdm_table),
                })
            })
            .collect();
        return Ok(serde_json::Value::Array(rows).to_string());
    }
    let mut text = format!(
        "{:<8} {:<8} {:<10} {:<55} {}\n",
        "encoding", "width", "category", "name", "SDM"
    );
    for row in FIELDS {
        text.push_str(&format!(
            "{:#06x}   {:<8} {:<10} {:<55} {} / {}\n",
            row.encoding.raw(),
            row.width.name(),
            row.field_type.name(),
            row.name,
            row.sdm_section,
            row.sdm_table
        ));
    }
    text.push_str(&format!("{} fields", FIELDS.len()));
    Ok(text)
}
