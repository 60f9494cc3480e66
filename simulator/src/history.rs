//! Client histories in the project's JSON-lines format (a contract with users' tools).
//!
//! One operation per line, for example
//! `{"client":1,"op":"put","key":"k1","value":"v7","call":120,"return":135}`.
//! Times are ticks; `"return": null` means no reply came, so the operation may
//! have taken effect at any time after its call, or never.
//!
//! Fields: `client`, `op` (`get`, `put`, `append` or `cas`), `key`, `value` (put,
//! append, cas), `expected` (cas), `output`, `call`, `return`. The `output` is what
//! the client was told: a get's value, a string or `null` (absent key); a cas's
//! `true` or `false` (swapped or not); a put or append has none when it succeeded,
//! and `"error"` when it failed: an append that would make the value longer than
//! the limit (`consensus::state_machine::VALUE_SIZE_MAX`) fails, changing nothing
//! but creating an absent key, empty. Only a completed operation records an error.
//! A completed get or cas must record its output; a pending one may (its output
//! then constrains it, should it have taken effect).
//!
//! The operations mean what `consensus::kv::apply` does on one key: [`Op::as_kv`]
//! and [`Output::admits`] map them onto that vocabulary, which the checker's model
//! applies.

pub mod generate;
mod parse;

use std::fmt;

use consensus::kv;
use consensus::KvOutput;

pub use parse::{parse_history, HistoryError};

/// What a client asked for (the input of an operation).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Get,
    Put {
        value: String,
    },
    Append {
        value: String,
    },
    /// Swap in `value` iff the current value equals `expected`.
    Cas {
        expected: String,
        value: String,
    },
}

/// What the client was told (the output of an operation).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// put/append: an acknowledgement carries nothing more.
    Empty,
    /// put/append: it failed (`"output":"error"`); see `consensus::kv::apply`.
    Error,
    /// get: the value read; `None` when the key was absent.
    Value(Option<String>),
    /// cas: whether it swapped.
    Swapped(bool),
    /// No reply came (`"return": null`) and no output was recorded.
    Unknown,
}

/// One client operation with its real-time interval `[call, ret]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Operation {
    pub client: u64,
    pub key: String,
    pub op: Op,
    pub output: Output,
    pub call: u64,
    /// `None` when no reply came: the operation is pending forever.
    pub ret: Option<u64>,
}

impl Op {
    /// The name used in the `"op"` field.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put { .. } => "put",
            Op::Append { .. } => "append",
            Op::Cas { .. } => "cas",
        }
    }

    /// The operation in the state machine's vocabulary.
    pub fn as_kv(&self) -> kv::Op<'_> {
        match self {
            Op::Get => kv::Op::Get,
            Op::Put { value } => kv::Op::Put { value },
            Op::Append { value } => kv::Op::Append { value },
            Op::Cas { expected, value } => kv::Op::Cas { expected, value },
        }
    }
}

impl Output {
    /// True when a client told `told` could have recorded this output:
    /// `Unknown` admits any.
    pub fn admits(&self, told: &KvOutput) -> bool {
        match (self, told) {
            (Output::Unknown, _) | (Output::Empty, KvOutput::Ok) => true,
            (Output::Error, KvOutput::Error) => true,
            (Output::Value(recorded), KvOutput::Value(told)) => recorded == told,
            (Output::Swapped(recorded), KvOutput::Swapped(told)) => recorded == told,
            _ => false,
        }
    }
}

/// What a client was told, as recorded.
impl From<KvOutput> for Output {
    fn from(told: KvOutput) -> Output {
        match told {
            KvOutput::Value(value) => Output::Value(value),
            KvOutput::Ok => Output::Empty,
            KvOutput::Swapped(swapped) => Output::Swapped(swapped),
            KvOutput::Error => Output::Error,
        }
    }
}

impl Operation {
    /// True when the client got a reply.
    pub fn is_completed(&self) -> bool {
        self.ret.is_some()
    }

    /// The operation as one history line, fields in the order DESIGN.md §6 shows:
    /// client, op, key, value/expected, output, call, return. No trailing newline.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(&self.line()).expect("a history line serializes")
    }

    /// The operation as a JSON object (same fields as [`Operation::to_json_line`]).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.line()).expect("a history line serializes")
    }

    fn line(&self) -> Line<'_> {
        let (expected, value) = match &self.op {
            Op::Get => (None, None),
            Op::Put { value } | Op::Append { value } => (None, Some(value.as_str())),
            Op::Cas { expected, value } => (Some(expected.as_str()), Some(value.as_str())),
        };
        let output = match &self.output {
            Output::Empty | Output::Unknown => None,
            Output::Error => Some(LineOutput::Text("error")),
            Output::Value(None) => Some(LineOutput::Absent),
            Output::Value(Some(value)) => Some(LineOutput::Text(value)),
            Output::Swapped(swapped) => Some(LineOutput::Swapped(*swapped)),
        };
        Line {
            client: self.client,
            op: self.op.name(),
            key: &self.key,
            expected,
            value,
            output,
            call: self.call,
            ret: self.ret,
        }
    }

    /// The `"output"` field's value, or `None` when the field is left out.
    fn output_json(&self) -> Option<String> {
        match &self.output {
            Output::Empty | Output::Unknown => None,
            Output::Error => Some(json_string("error")),
            Output::Value(None) => Some("null".to_string()),
            Output::Value(Some(value)) => Some(json_string(value)),
            Output::Swapped(swapped) => Some(swapped.to_string()),
        }
    }
}

/// One history line as written: serde keeps the fields in this order (DESIGN.md §6), a cas's
/// `expected` before its `value`, and `"return": null` for no reply.
#[derive(serde::Serialize)]
struct Line<'a> {
    client: u64,
    op: &'static str,
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<LineOutput<'a>>,
    call: u64,
    #[serde(rename = "return")]
    ret: Option<u64>,
}

/// The `"output"` field: a string, `null` (a get of an absent key), or a cas's `true`/`false`.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum LineOutput<'a> {
    Text(&'a str),
    Absent,
    Swapped(bool),
}

fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// `client 2: cas("x", "0" -> "3") -> false  [call 26, return 28]`
impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = json_string(&self.key);
        write!(f, "client {}: ", self.client)?;
        match &self.op {
            Op::Get => write!(f, "get({key})")?,
            Op::Put { value } => write!(f, "put({key}, {})", json_string(value))?,
            Op::Append { value } => write!(f, "append({key}, {})", json_string(value))?,
            Op::Cas { expected, value } => write!(
                f,
                "cas({key}, {} -> {})",
                json_string(expected),
                json_string(value)
            )?,
        }
        match &self.output {
            Output::Empty => {}
            Output::Unknown => write!(f, " -> ?")?,
            Output::Value(_) | Output::Swapped(_) | Output::Error => {
                write!(f, " -> {}", self.output_json().unwrap_or_default())?
            }
        }
        match self.ret {
            Some(ret) => write!(f, "  [call {}, return {ret}]", self.call),
            None => write!(f, "  [call {}, no reply]", self.call),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example lines of DESIGN.md §6 survive parse -> to_json_line byte for byte.
    #[test]
    fn design_examples_round_trip_exactly() {
        let text = r#"{"client":1,"op":"put","key":"k1","value":"v7","call":120,"return":135}
{"client":2,"op":"get","key":"k1","output":"v7","call":121,"return":140}
{"client":3,"op":"get","key":"k2","output":null,"call":122,"return":141}
{"client":4,"op":"append","key":"k1","value":"x","call":125,"return":150}
{"client":5,"op":"cas","key":"k1","expected":"v7x","value":"v9","output":true,"call":126,"return":null}"#;
        let ops = parse_history(text).unwrap();
        let written: Vec<String> = ops.iter().map(Operation::to_json_line).collect();
        assert_eq!(written.join("\n"), text);
    }

    #[test]
    fn display_shows_interval_and_output() {
        let ops = parse_history(
            r#"{"client":2,"op":"cas","key":"x","expected":"0","value":"3","output":false,"call":26,"return":28}
{"client":4,"op":"put","key":"x","value":"1","call":53,"return":null}"#,
        )
        .unwrap();
        assert_eq!(
            ops[0].to_string(),
            r#"client 2: cas("x", "0" -> "3") -> false  [call 26, return 28]"#
        );
        assert_eq!(
            ops[1].to_string(),
            r#"client 4: put("x", "1") -> ?  [call 53, no reply]"#
        );
    }
}
