//! `--timeline FILE`: one self-contained HTML page (inline CSS and JS, no network) to look at
//! a run (`run.rs`: replica lanes, fault bands, client operations, the violation) or a
//! checked history (`history.rs`: Porcupine-style, per key, with the checker's evidence).
//!
//! The page embeds its data as JSON; every 64-bit number in it is a string, as JavaScript's
//! numbers lose integers above 2^53. The drawing is in `page.js`, on canvases, aggregated at
//! low zoom so that a 40k-tick run stays smooth.

pub mod history;
pub mod run;

use crate::history::Operation;
use crate::run::Summary;
use crate::simulation::Simulation;
use crate::trace::Event;
use serde_json::Value;
use std::path::Path;

/// What a run collects for its timeline (`RunConfig::timeline`).
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// The trace events the timeline draws (`keeps`), in order.
    pub events: Vec<Event>,
    /// The client history, as `check-history` reads it.
    pub ops: Vec<Operation>,
    /// The replicas of the liveness core (empty when the phase never began).
    pub core: Vec<u8>,
}

/// The trace events a timeline keeps: replica state, crashes, client requests. Deliveries
/// (most of a trace) are left out; the lanes do not draw single packets.
pub fn keeps(event: &Event) -> bool {
    !matches!(event, Event::Deliver { .. } | Event::Corrupt { .. })
}

impl Collected {
    /// Takes what the simulation's trace kept and copies its history.
    pub fn of(sim: &mut Simulation) -> Collected {
        Collected {
            events: sim.trace.take_kept(),
            ops: crate::end_of_run::to_operations(&sim.history),
            core: sim.core.clone(),
        }
    }
}

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// The whole page around `data` (which names its `kind`: "run" or "history").
pub fn page(title: &str, data: &Value) -> String {
    // In a <script> element only "</script" could end the data early: JSON allows "<"
    // only inside strings, where \u003c means the same.
    let json = data.to_string().replace('<', "\\u003c");
    let title = title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>\n{STYLE}</style></head>\n<body>\n\
         <header id=\"head\"><h1>{title}</h1><div id=\"summary\"></div></header>\n\
         <main id=\"main\"><p id=\"noscript\">Drawing the timeline needs JavaScript.</p></main>\n\
         <div id=\"tip\" hidden></div>\n\
         <script type=\"application/json\" id=\"data\">{json}</script>\n\
         <script>\n{SCRIPT}</script>\n</body></html>\n"
    )
}

/// Writes `html` to `file`, created at `path` before the run; the error is one line naming
/// the path.
pub fn write_to(path: &Path, mut file: std::fs::File, html: &str) -> Result<(), String> {
    use std::io::Write;
    file.write_all(html.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| {
            format!(
                "cannot write the timeline to {}: {e}; pick a writable path",
                path.display()
            )
        })
}

/// Writes the timeline of a finished run (run with `RunConfig::timeline`) to `file`.
pub fn write_run(path: &Path, file: std::fs::File, summary: &Summary) -> Result<(), String> {
    let html = run::render(summary).ok_or_else(|| {
        format!(
            "no timeline to write to {}: the run collected nothing (it ended in a harness bug)",
            path.display()
        )
    })?;
    write_to(path, file, &html)
}

/// A 64-bit number as the page's JSON holds it.
fn n(value: u64) -> Value {
    Value::String(value.to_string())
}

/// An operation as one short line: `put("k1", "v7")`, `get("k1") -> "v7"`.
fn label(op: &Operation) -> String {
    let text = op.to_string();
    let text = text
        .split_once(": ")
        .map_or(text.as_str(), |(_, rest)| rest);
    text.split("  [").next().unwrap_or(text).to_string()
}
