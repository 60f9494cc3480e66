//! Parsing the JSON-lines history format, with errors that name the line and the field.

use std::fmt;

use serde_json::{Map, Value};

use super::{Op, Operation, Output};

/// A malformed history line: its 1-based number and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for HistoryError {}

/// Parses a whole history; blank lines are skipped. Stops at the first bad line.
pub fn parse_history(text: &str) -> Result<Vec<Operation>, HistoryError> {
    let mut ops = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let op = parse_line(line).map_err(|message| HistoryError {
            line: index + 1,
            message,
        })?;
        ops.push(op);
    }
    Ok(ops)
}

const FIELDS: [&str; 8] = [
    "client", "op", "key", "value", "expected", "output", "call", "return",
];

fn parse_line(line: &str) -> Result<Operation, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(fields) = value else {
        return Err("not a JSON object".to_string());
    };
    // Unknown fields are rejected: a misspelt "ouput" must not silently mean "no output".
    if let Some(name) = fields.keys().find(|name| !FIELDS.contains(&name.as_str())) {
        return Err(format!("unknown field \"{name}\""));
    }
    let call = integer(&fields, "call")?;
    let ret = match required(&fields, "return")? {
        Value::Null => None,
        _ => Some(integer(&fields, "return")?),
    };
    if let Some(ret) = ret.filter(|&ret| ret < call) {
        return Err(format!("\"return\" ({ret}) is before \"call\" ({call})"));
    }
    let op = parse_op(&fields)?;
    let output = parse_output(&fields, &op, ret.is_some())?;
    Ok(Operation {
        client: integer(&fields, "client")?,
        key: string(&fields, "key")?,
        op,
        output,
        call,
        ret,
    })
}

fn parse_op(fields: &Map<String, Value>) -> Result<Op, String> {
    let name = string(fields, "op")?;
    let op = match name.as_str() {
        "get" => Op::Get,
        "put" => Op::Put {
            value: string(fields, "value")?,
        },
        "append" => Op::Append {
            value: string(fields, "value")?,
        },
        "cas" => Op::Cas {
            expected: string(fields, "expected")?,
            value: string(fields, "value")?,
        },
        _ => {
            return Err(format!(
                "unknown op \"{name}\" (expected get, put, append or cas)"
            ))
        }
    };
    let allowed: &[&str] = match op {
        Op::Get => &[],
        Op::Put { .. } | Op::Append { .. } => &["value"],
        Op::Cas { .. } => &["expected", "value"],
    };
    for field in ["value", "expected"] {
        if fields.contains_key(field) && !allowed.contains(&field) {
            return Err(format!("\"{field}\" does not belong to a {name}"));
        }
    }
    Ok(op)
}

/// A completed get/cas must say what the client was told; for a pending operation
/// an absent or null output means unknown, while a recorded one is kept (it then
/// constrains the operation, should it have taken effect). A put or append has no
/// output, or `"error"` when it completed and failed.
fn parse_output(fields: &Map<String, Value>, op: &Op, completed: bool) -> Result<Output, String> {
    let output = fields.get("output").unwrap_or(&Value::Null);
    let recorded = fields.contains_key("output");
    match op {
        Op::Put { .. } | Op::Append { .. } => match output {
            Value::Null if completed => Ok(Output::Empty),
            Value::Null => Ok(Output::Unknown),
            Value::String(told) if told == "error" && completed => Ok(Output::Error),
            Value::String(told) if told == "error" => Err(format!(
                "a pending {} cannot have failed (\"output\": \"error\" needs a \"return\")",
                op.name()
            )),
            _ => Err(format!(
                "a {} has no output but \"error\", found {output}",
                op.name()
            )),
        },
        _ if !completed && output.is_null() => Ok(Output::Unknown),
        _ if !recorded => Err(format!(
            "missing field \"output\" (a completed {} needs one)",
            op.name()
        )),
        Op::Get => match output {
            Value::Null => Ok(Output::Value(None)),
            Value::String(value) => Ok(Output::Value(Some(value.clone()))),
            _ => Err(format!(
                "\"output\" of a get must be a string or null, found {output}"
            )),
        },
        Op::Cas { .. } => match output {
            Value::Bool(swapped) => Ok(Output::Swapped(*swapped)),
            _ => Err(format!(
                "\"output\" of a cas must be true or false, found {output}"
            )),
        },
    }
}

fn required<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<&'a Value, String> {
    fields
        .get(name)
        .ok_or_else(|| format!("missing field \"{name}\""))
}

fn integer(fields: &Map<String, Value>, name: &str) -> Result<u64, String> {
    required(fields, name)?
        .as_u64()
        .ok_or_else(|| format!("\"{name}\" must be an integer"))
}

fn string(fields: &Map<String, Value>, name: &str) -> Result<String, String> {
    match required(fields, name)? {
        Value::String(text) => Ok(text.clone()),
        _ => Err(format!("\"{name}\" must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> HistoryError {
        parse_history(text).expect_err("should not parse")
    }

    const GOOD: &str = r#"{"client":1,"op":"put","key":"k","value":"a","call":1,"return":2}"#;

    /// The error names the line (blank lines counted) and the problem.
    #[test]
    fn errors_give_line_and_reason() {
        let cases = [
            (
                r#"{"client":1,"op":"put","key":"k","value":"a","call":"x","return":2}"#,
                "\"call\" must be an integer",
            ),
            (
                r#"{"client":-1,"op":"put","key":"k","value":"a","call":1,"return":2}"#,
                "\"client\" must be an integer",
            ),
            (
                r#"{"client":1,"op":"put","key":"k","call":1,"return":2}"#,
                "missing field \"value\"",
            ),
            (
                r#"{"client":1,"op":"put","key":"k","value":"a","call":1}"#,
                "missing field \"return\"",
            ),
            (
                r#"{"client":1,"op":"del","key":"k","call":1,"return":2}"#,
                "unknown op \"del\"",
            ),
            (
                r#"{"client":1,"op":"get","key":"k","call":5,"return":2,"output":null}"#,
                "\"return\" (2) is before \"call\" (5)",
            ),
            (
                r#"{"client":1,"op":"get","key":"k","call":1,"return":2}"#,
                "missing field \"output\"",
            ),
            (
                r#"{"client":1,"op":"cas","key":"k","expected":"a","value":"b","call":1,"return":2}"#,
                "missing field \"output\"",
            ),
            (
                r#"{"client":1,"op":"cas","key":"k","expected":"a","value":"b","call":1,"return":2,"output":"yes"}"#,
                "must be true or false",
            ),
            (
                r#"{"client":1,"op":"get","key":"k","call":1,"return":2,"output":7}"#,
                "must be a string or null",
            ),
            (
                r#"{"client":1,"op":"put","key":"k","value":"a","call":1,"return":2,"output":"a"}"#,
                "a put has no output",
            ),
            (
                r#"{"client":1,"op":"get","key":"k","value":"a","call":1,"return":2,"output":null}"#,
                "\"value\" does not belong to a get",
            ),
            (
                r#"{"client":1,"op":"put","key":"k","value":"a","call":1,"return":2,"ouput":null}"#,
                "unknown field \"ouput\"",
            ),
            (r#"[1,2]"#, "not a JSON object"),
            (r#"{"client":1,"#, "invalid JSON"),
        ];
        for (bad, reason) in cases {
            let text = format!("{GOOD}\n\n{GOOD}\n  \n{GOOD}\n{GOOD}\n{bad}\n{GOOD}\n");
            let error = error_of(&text);
            assert_eq!(error.line, 7, "{bad}");
            assert!(error.message.contains(reason), "{bad}: {}", error.message);
            assert!(error.to_string().starts_with("line 7: "), "{error}");
        }
    }

    #[test]
    fn display_matches_contract_example() {
        let text = format!(
            "{GOOD}\n{GOOD}\n{GOOD}\n{GOOD}\n{GOOD}\n{GOOD}\n{}",
            GOOD.replace("\"call\":1", "\"call\":\"1\"")
        );
        assert_eq!(
            error_of(&text).to_string(),
            "line 7: \"call\" must be an integer"
        );
    }

    /// Pending operations: absent or null output is unknown; a recorded one is kept.
    #[test]
    fn pending_outputs() {
        let ops = parse_history(
            r#"{"client":1,"op":"get","key":"k","call":1,"return":null}
{"client":1,"op":"get","key":"k","call":1,"return":null,"output":null}
{"client":1,"op":"cas","key":"k","expected":"a","value":"b","call":1,"return":null,"output":true}
{"client":1,"op":"put","key":"k","value":"a","call":1,"return":null}
{"client":1,"op":"put","key":"k","value":"a","call":1,"return":2}"#,
        )
        .unwrap();
        let outputs: Vec<&Output> = ops.iter().map(|op| &op.output).collect();
        assert_eq!(
            outputs,
            [
                &Output::Unknown,
                &Output::Unknown,
                &Output::Swapped(true),
                &Output::Unknown,
                &Output::Empty
            ]
        );
    }

    #[test]
    fn fields_in_any_order_and_blank_lines() {
        let ops = parse_history(
            "\n{\"return\":9,\"output\":\"v\",\"call\":3,\"key\":\"k\",\"op\":\"get\",\"client\":4}\n\n",
        )
        .unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].output, Output::Value(Some("v".to_string())));
        assert_eq!((ops[0].call, ops[0].ret), (3, Some(9)));
    }
}
