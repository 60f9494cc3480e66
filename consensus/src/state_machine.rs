//! The replicated state machine: a trait the replica executes committed ops through, and a
//! key-value machine with get/put/append/cas (the semantics of one key are `kv::apply`).

use crate::kv;
use bytes::Bytes;
use std::collections::BTreeMap;

/// A deterministic state machine. `execute` must give the same output and state on every
/// replica for the same sequence of inputs; it never panics on malformed input (it answers
/// with an error output instead), because the input came from a client.
pub trait StateMachine {
    fn execute(&mut self, op: u64, timestamp: u64, input: &[u8]) -> Bytes;
    /// A digest of the whole state, for comparing replicas.
    fn digest(&self) -> u128;
    /// The whole state as bytes, for a checkpoint. Equal states give equal bytes.
    fn snapshot(&self) -> Bytes;
    /// Replaces the state with a snapshot. False (and the state unchanged) if the bytes are
    /// not a snapshot: they came from a disk or a peer and are checked, never trusted.
    fn restore(&mut self, snapshot: &[u8]) -> bool;
}

/// Longest key a request may name.
pub const KEY_SIZE_MAX: usize = 64;
/// Longest value a request may carry.
pub const VALUE_INPUT_SIZE_MAX: usize = 1024;
/// Longest value a key may hold (an append beyond it fails: see `kv::apply`).
pub const VALUE_SIZE_MAX: usize = 16 * 1024;

/// One key-value operation: a key and what to do to it (`kv::Op`, see `KvOp::split`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvOp {
    Get {
        key: String,
    },
    Put {
        key: String,
        value: String,
    },
    Append {
        key: String,
        value: String,
    },
    Cas {
        key: String,
        expected: String,
        value: String,
    },
}

/// What a key-value operation returned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvOutput {
    /// get: the value, or None for an absent key.
    Value(Option<String>),
    /// put and append.
    Ok,
    /// cas: whether it swapped.
    Swapped(bool),
    /// Malformed input (nothing changed), or an append that would make the value longer
    /// than `VALUE_SIZE_MAX` (nothing changed, but an absent key is created, empty).
    Error,
}

impl KvOp {
    pub fn key(&self) -> &str {
        self.split().0
    }

    /// The key, and the operation on it.
    pub fn split(&self) -> (&str, kv::Op<'_>) {
        match self {
            KvOp::Get { key } => (key, kv::Op::Get),
            KvOp::Put { key, value } => (key, kv::Op::Put { value }),
            KvOp::Append { key, value } => (key, kv::Op::Append { value }),
            KvOp::Cas {
                key,
                expected,
                value,
            } => (key, kv::Op::Cas { expected, value }),
        }
    }

    /// Wire form: tag, then length-prefixed (u16 LE) strings.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        let strings: Vec<&str> = match self {
            KvOp::Get { key } => {
                out.push(1);
                vec![key]
            }
            KvOp::Put { key, value } => {
                out.push(2);
                vec![key, value]
            }
            KvOp::Append { key, value } => {
                out.push(3);
                vec![key, value]
            }
            KvOp::Cas {
                key,
                expected,
                value,
            } => {
                out.push(4);
                vec![key, expected, value]
            }
        };
        for s in strings {
            out.extend_from_slice(&(s.len() as u16).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Bytes::from(out)
    }

    /// Parses the wire form; None for anything malformed or over the limits.
    pub fn decode(b: &[u8]) -> Option<KvOp> {
        let (&tag, mut rest) = b.split_first()?;
        let mut next = |max: usize| -> Option<String> {
            let len = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize;
            let s = rest.get(2..2 + len)?;
            rest = &rest[2 + len..];
            if len > max {
                return None;
            }
            String::from_utf8(s.to_vec()).ok()
        };
        let op = match tag {
            1 => KvOp::Get {
                key: next(KEY_SIZE_MAX)?,
            },
            2 => KvOp::Put {
                key: next(KEY_SIZE_MAX)?,
                value: next(VALUE_INPUT_SIZE_MAX)?,
            },
            3 => KvOp::Append {
                key: next(KEY_SIZE_MAX)?,
                value: next(VALUE_INPUT_SIZE_MAX)?,
            },
            4 => KvOp::Cas {
                key: next(KEY_SIZE_MAX)?,
                expected: next(VALUE_INPUT_SIZE_MAX)?,
                value: next(VALUE_INPUT_SIZE_MAX)?,
            },
            _ => return None,
        };
        rest.is_empty().then_some(op)
    }
}

impl KvOutput {
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        match self {
            KvOutput::Value(None) => out.push(1),
            KvOutput::Value(Some(v)) => {
                out.push(2);
                out.extend_from_slice(v.as_bytes());
            }
            KvOutput::Ok => out.push(3),
            KvOutput::Swapped(s) => out.extend_from_slice(&[4, *s as u8]),
            KvOutput::Error => out.push(5),
        }
        Bytes::from(out)
    }

    pub fn decode(b: &[u8]) -> Option<KvOutput> {
        let (&tag, rest) = b.split_first()?;
        Some(match (tag, rest) {
            (1, []) => KvOutput::Value(None),
            (2, v) => KvOutput::Value(Some(String::from_utf8(v.to_vec()).ok()?)),
            (3, []) => KvOutput::Ok,
            (4, [s]) if *s <= 1 => KvOutput::Swapped(*s == 1),
            (5, []) => KvOutput::Error,
            _ => return None,
        })
    }
}

/// The key-value state machine. Also serves as the simulator's reference model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvMachine {
    map: BTreeMap<String, String>,
    /// The sum (mod 2^128) of every entry's checksum, kept as entries change, so the digest
    /// costs O(1) and a simulator can compare states after every op.
    entries_sum: u128,
}

/// The checksum of one entry, as the digest sums it.
fn entry_checksum(key: &str, value: &str) -> u128 {
    let mut bytes = Vec::with_capacity(8 + key.len() + value.len());
    bytes.extend_from_slice(&(key.len() as u32).to_le_bytes());
    bytes.extend_from_slice(key.as_bytes());
    bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
    bytes.extend_from_slice(value.as_bytes());
    crate::wire::checksum(&bytes, 0x4b56)
}

impl KvMachine {
    pub fn new() -> KvMachine {
        KvMachine::default()
    }

    /// Applies one operation: the semantics of `kv::apply` on the key it names.
    pub fn apply(&mut self, op: &KvOp) -> KvOutput {
        let (key, op) = op.split();
        let (written, output) = kv::apply(self.map.get(key).map(String::as_str), op);
        if let Some(value) = written {
            self.set(key, value);
        }
        output
    }

    /// Sets `key` to `value`, keeping the digest's sum.
    fn set(&mut self, key: &str, value: String) {
        let added = entry_checksum(key, &value);
        match self.map.insert(key.to_string(), value) {
            Some(old) => {
                let removed = entry_checksum(key, &old);
                self.entries_sum = self.entries_sum.wrapping_sub(removed).wrapping_add(added);
            }
            None => self.entries_sum = self.entries_sum.wrapping_add(added),
        }
    }

    /// The digest computed from scratch (the paired check of the kept sum).
    fn digest_from_scratch(&self) -> u128 {
        self.map
            .iter()
            .fold(0u128, |sum, (k, v)| sum.wrapping_add(entry_checksum(k, v)))
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.map.get(key)
    }
}

impl StateMachine for KvMachine {
    fn execute(&mut self, _op: u64, _timestamp: u64, input: &[u8]) -> Bytes {
        match KvOp::decode(input) {
            Some(op) => self.apply(&op).encode(),
            None => KvOutput::Error.encode(),
        }
    }

    fn digest(&self) -> u128 {
        // The entry count too: a sum alone could not tell {} from {("", "")} - ("", "").
        self.entries_sum ^ (self.map.len() as u128).rotate_left(64)
    }

    fn snapshot(&self) -> Bytes {
        // Paired check of the digest kept op by op, at every checkpoint (in every build).
        assert_eq!(
            self.entries_sum,
            self.digest_from_scratch(),
            "the kept state digest drifted from the state"
        );
        let mut bytes = Vec::new();
        for (k, v) in &self.map {
            bytes.extend_from_slice(&(k.len() as u32).to_le_bytes());
            bytes.extend_from_slice(k.as_bytes());
            bytes.extend_from_slice(&(v.len() as u32).to_le_bytes());
            bytes.extend_from_slice(v.as_bytes());
        }
        Bytes::from(bytes)
    }

    fn restore(&mut self, snapshot: &[u8]) -> bool {
        let mut map = BTreeMap::new();
        let mut rest = snapshot;
        let mut next = |limit: usize| -> Option<String> {
            let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let text = rest.get(4..4 + len).filter(|_| len <= limit)?;
            let text = String::from_utf8(text.to_vec()).ok()?;
            rest = &rest[4 + len..];
            Some(text)
        };
        let mut last: Option<String> = None;
        while let Some(key) = next(KEY_SIZE_MAX) {
            let Some(value) = next(VALUE_SIZE_MAX) else {
                return false;
            };
            // Keys strictly ascending: one encoding per state.
            if last.as_ref().is_some_and(|l| *l >= key) {
                return false;
            }
            last = Some(key.clone());
            map.insert(key, value);
        }
        if !rest.is_empty() {
            return false;
        }
        self.map = map;
        self.entries_sum = self.digest_from_scratch();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_semantics() {
        let mut m = KvMachine::new();
        let get = |k: &str| KvOp::Get { key: k.into() };
        assert_eq!(m.apply(&get("a")), KvOutput::Value(None));
        let app = KvOp::Append {
            key: "a".into(),
            value: "x".into(),
        };
        assert_eq!(m.apply(&app), KvOutput::Ok);
        assert_eq!(m.apply(&get("a")), KvOutput::Value(Some("x".into())));
        let cas = |e: &str, v: &str| KvOp::Cas {
            key: "a".into(),
            expected: e.into(),
            value: v.into(),
        };
        assert_eq!(m.apply(&cas("y", "z")), KvOutput::Swapped(false));
        assert_eq!(m.apply(&cas("x", "z")), KvOutput::Swapped(true));
        assert_eq!(m.apply(&get("a")), KvOutput::Value(Some("z".into())));
        let cas_absent = KvOp::Cas {
            key: "b".into(),
            expected: "".into(),
            value: "v".into(),
        };
        assert_eq!(m.apply(&cas_absent), KvOutput::Swapped(false));
    }

    #[test]
    fn the_kept_digest_equals_the_digest_from_scratch_and_tells_states_apart() {
        let mut m = KvMachine::new();
        let mut digests = std::collections::BTreeSet::new();
        digests.insert(m.digest());
        let ops = [
            KvOp::Put {
                key: "a".into(),
                value: "1".into(),
            },
            KvOp::Append {
                key: "a".into(),
                value: "2".into(),
            },
            KvOp::Append {
                key: "b".into(),
                value: "x".into(),
            },
            KvOp::Cas {
                key: "a".into(),
                expected: "12".into(),
                value: "3".into(),
            },
            KvOp::Put {
                key: "b".into(),
                value: "".into(),
            },
            KvOp::Append {
                key: "c".into(),
                value: "y".repeat(VALUE_SIZE_MAX + 1),
            },
        ];
        for op in &ops {
            m.apply(op);
            assert_eq!(m.entries_sum, m.digest_from_scratch(), "after {op:?}");
            assert!(
                digests.insert(m.digest()),
                "a new state, a new digest: {op:?}"
            );
            let mut copy = KvMachine::new();
            assert!(copy.restore(&m.snapshot()));
            assert_eq!(copy.digest(), m.digest());
        }
        // The same state reached another way digests alike.
        let mut other = KvMachine::new();
        other.apply(&KvOp::Put {
            key: "c".into(),
            value: "".into(),
        });
        other.apply(&KvOp::Put {
            key: "b".into(),
            value: "".into(),
        });
        other.apply(&KvOp::Put {
            key: "a".into(),
            value: "3".into(),
        });
        assert_eq!(other.digest(), m.digest());
    }

    #[test]
    fn kv_snapshot_round_trips_and_rejects_garbage() {
        let mut m = KvMachine::new();
        for (k, v) in [("b", "2"), ("a", "1"), ("c", "")] {
            m.apply(&KvOp::Put {
                key: k.into(),
                value: v.into(),
            });
        }
        let snapshot = m.snapshot();
        let mut restored = KvMachine::new();
        assert!(restored.restore(&snapshot));
        assert_eq!(restored, m);
        assert_eq!(restored.digest(), m.digest());
        for cut in 1..snapshot.len() {
            let mut other = KvMachine::new();
            let ok = other.restore(&snapshot[..cut]);
            assert!(
                !ok || other != m,
                "a truncated snapshot restored the whole state"
            );
        }
        let mut bad = snapshot.to_vec();
        bad.push(0);
        assert!(!KvMachine::new().restore(&bad));
    }

    #[test]
    fn kv_encoding_round_trips_and_rejects_garbage() {
        let ops = [
            KvOp::Get { key: "k".into() },
            KvOp::Put {
                key: "k".into(),
                value: "v".into(),
            },
            KvOp::Cas {
                key: "k".into(),
                expected: "".into(),
                value: "v".into(),
            },
        ];
        for op in ops {
            assert_eq!(KvOp::decode(&op.encode()), Some(op));
        }
        assert_eq!(KvOp::decode(&[]), None);
        assert_eq!(KvOp::decode(&[9]), None);
        assert_eq!(KvOp::decode(&[1, 5, 0, b'a']), None);
        let mut m = KvMachine::new();
        assert_eq!(
            KvOutput::decode(&m.execute(1, 1, &[7, 7])),
            Some(KvOutput::Error)
        );
    }
}
