//! The key-value semantics, on one key: the one definition that the replicated state machine
//! (`KvMachine`, key by key) and the simulator's linearizability model (`KvModel`, whose
//! state for a key is its value) both apply, so the two cannot disagree.
//!
//! A key holds a value or is absent. get reads it (`None` when absent); put sets it; append
//! adds to its end (an absent key counts as ""), unless the result would be longer than
//! [`VALUE_SIZE_MAX`]: then the append fails (`KvOutput::Error`) and changes nothing, except
//! that it still creates an absent key, empty; cas sets it to `value` iff it holds exactly
//! `expected` (never on an absent key). Nothing makes a key absent again.
//!
//! The limits on a request's input (`KEY_SIZE_MAX`, `VALUE_INPUT_SIZE_MAX`) belong to its wire
//! form: `KvOp::decode` refuses a request over them before it reaches [`apply`].

use crate::state_machine::{KvOutput, VALUE_SIZE_MAX};

/// One operation on one key: a `KvOp` without its key, borrowing its strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op<'a> {
    Get,
    Put { value: &'a str },
    Append { value: &'a str },
    Cas { expected: &'a str, value: &'a str },
}

/// Applies `op` to a key holding `value` (`None`: absent). Returns the key's new value, or
/// `None` when `op` leaves it as it was, and what the client is told.
pub fn apply(value: Option<&str>, op: Op<'_>) -> (Option<String>, KvOutput) {
    match op {
        Op::Get => (None, KvOutput::Value(value.map(str::to_string))),
        Op::Put { value: new } => (Some(new.to_string()), KvOutput::Ok),
        Op::Append { value: piece } => {
            let old = value.unwrap_or_default();
            if old.len() + piece.len() > VALUE_SIZE_MAX {
                // A failed append to an absent key still creates it, empty.
                let created = value.is_none().then(String::new);
                return (created, KvOutput::Error);
            }
            let mut new = String::with_capacity(old.len() + piece.len());
            new.push_str(old);
            new.push_str(piece);
            (Some(new), KvOutput::Ok)
        }
        Op::Cas {
            expected,
            value: new,
        } => {
            let swaps = value == Some(expected);
            (swaps.then(|| new.to_string()), KvOutput::Swapped(swaps))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key() {
        let s = |text: &str| Some(text.to_string());
        assert_eq!(apply(None, Op::Get), (None, KvOutput::Value(None)));
        assert_eq!(apply(Some("a"), Op::Get), (None, KvOutput::Value(s("a"))));
        assert_eq!(apply(None, Op::Put { value: "b" }), (s("b"), KvOutput::Ok));
        let append = Op::Append { value: "x" };
        assert_eq!(apply(None, append), (s("x"), KvOutput::Ok));
        assert_eq!(apply(Some("a"), append), (s("ax"), KvOutput::Ok));
        let cas = Op::Cas {
            expected: "a",
            value: "b",
        };
        assert_eq!(apply(Some("a"), cas), (s("b"), KvOutput::Swapped(true)));
        assert_eq!(apply(Some("c"), cas), (None, KvOutput::Swapped(false)));
        let cas_empty = Op::Cas {
            expected: "",
            value: "b",
        };
        assert_eq!(apply(None, cas_empty), (None, KvOutput::Swapped(false)));
    }

    #[test]
    fn an_append_over_the_limit_fails_and_only_creates_an_absent_key() {
        let full = "f".repeat(VALUE_SIZE_MAX);
        let one = Op::Append { value: "x" };
        assert_eq!(apply(Some(&full), one), (None, KvOutput::Error));
        assert_eq!(
            apply(Some(&full[1..]), one),
            (Some(format!("{}x", &full[1..])), KvOutput::Ok)
        );
        assert_eq!(apply(Some(""), Op::Append { value: &full }).1, KvOutput::Ok);
        let over = "o".repeat(VALUE_SIZE_MAX + 1);
        let over = Op::Append { value: &over };
        assert_eq!(apply(None, over), (Some(String::new()), KvOutput::Error));
        assert_eq!(apply(Some(""), over), (None, KvOutput::Error));
    }
}
