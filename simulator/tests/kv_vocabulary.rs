//! One vocabulary for the key-value operations: the replicated state machine
//! (`KvMachine`), the checker's model (`KvModel`) and the history format agree
//! on every operation, a failed append (a value over `VALUE_SIZE_MAX`) included.

use consensus::state_machine::VALUE_SIZE_MAX;
use consensus::{KvMachine, KvOp, KvOutput};
use proptest::prelude::*;
use simulator::checker::linearizability::{check_kv, Budget, Verdict};
use simulator::checker::model::{KvModel, Model};
use simulator::end_of_run::{to_jsonl, to_operations};
use simulator::history::{parse_history, Op, Operation, Output};
use simulator::workload::HistoryRecord;

const KEYS: [&str; 2] = ["k0", "k1"];

/// Value lengths around the limit: a few appends of the long ones reach it.
fn lengths() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0),
        1..4usize,
        Just(1024),
        Just(VALUE_SIZE_MAX / 3),
        Just(VALUE_SIZE_MAX / 2),
        Just(VALUE_SIZE_MAX - 1),
        Just(VALUE_SIZE_MAX),
        Just(VALUE_SIZE_MAX + 1),
    ]
}

/// A value of `length` bytes made of one letter drawn from `seed`, so reads
/// tell writes apart.
fn text(seed: u8, length: usize) -> String {
    char::from(b'a' + seed % 26).to_string().repeat(length)
}

fn kv_op() -> impl Strategy<Value = KvOp> {
    (0..KEYS.len(), 0..4u8, any::<u8>(), lengths(), any::<bool>()).prop_map(
        |(key, kind, seed, length, expect_current)| {
            let key = KEYS[key].to_string();
            let value = text(seed, length);
            match kind {
                0 => KvOp::Get { key },
                1 => KvOp::Put { key, value },
                2 => KvOp::Append { key, value },
                _ => KvOp::Cas {
                    key,
                    // Filled in with the current value when `expect_current`.
                    expected: if expect_current {
                        "\0".into()
                    } else {
                        "a".into()
                    },
                    value,
                },
            }
        },
    )
}

/// Makes a cas marked to expect the current value expect it, so some swap.
fn expecting_current(machine: &KvMachine, mut op: KvOp) -> KvOp {
    if let KvOp::Cas { key, expected, .. } = &mut op {
        if expected == "\0" {
            *expected = machine.get(key).cloned().unwrap_or_default();
        }
    }
    op
}

/// The history operation of a state machine operation and its output.
fn operation(op: &KvOp, told: &KvOutput, call: u64, ret: u64) -> Operation {
    let record = HistoryRecord {
        client: 1,
        op: op.clone(),
        output: Some(told.clone()),
        call,
        ret: Some(ret),
    };
    to_operations(&[record]).remove(0)
}

/// The outputs a put or append could have been recorded with.
const WRITE_OUTPUTS: [Output; 2] = [Output::Empty, Output::Error];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every output the machine gives, recorded in a history, is the one the
    /// model accepts (and the other write output is refused), and the model's
    /// state for each key is the machine's value. A model that appended on a
    /// failed append, or a machine that did, would fail here.
    #[test]
    fn the_model_accepts_the_machines_outputs_and_reaches_its_values(
        ops in prop::collection::vec(kv_op(), 1..48)
    ) {
        let mut machine = KvMachine::new();
        let mut states = vec![KvModel.init(); KEYS.len()];
        for (index, op) in ops.into_iter().enumerate() {
            let op = expecting_current(&machine, op);
            let told = machine.apply(&op);
            let recorded = operation(&op, &told, index as u64, index as u64);
            // The recorded line means the same after a round trip through the format.
            let line = recorded.to_json_line();
            prop_assert_eq!(&parse_history(&line).unwrap()[0], &recorded, "{}", line);
            let key = KEYS.iter().position(|k| *k == op.key()).unwrap();
            let state = &states[key];
            if matches!(recorded.op, Op::Put { .. } | Op::Append { .. }) {
                for other in WRITE_OUTPUTS.iter().filter(|o| **o != recorded.output) {
                    prop_assert_eq!(KvModel.step(state, &recorded.op, other), None, "{}", line);
                }
            }
            let next = KvModel.step(state, &recorded.op, &recorded.output);
            prop_assert!(next.is_some(), "the model refused {} from {:?}", line, state);
            states[key] = next.unwrap();
            for (key, state) in KEYS.iter().zip(&states) {
                prop_assert_eq!(state.as_ref(), machine.get(key), "after {}", line);
            }
        }
    }

    /// A history recorded from the machine, with the operations' intervals
    /// overlapping but each around its point in the machine's order, is
    /// linearizable: the checker (its shortcuts included) must say so, failed
    /// appends and all.
    #[test]
    fn histories_of_the_machine_are_linearizable(
        ops in prop::collection::vec((kv_op(), 0..25u64, 0..25u64), 1..24)
    ) {
        let mut machine = KvMachine::new();
        let mut records = Vec::new();
        for (index, (op, before, after)) in ops.into_iter().enumerate() {
            let op = expecting_current(&machine, op);
            let point = 100 + 10 * index as u64;
            let output = Some(machine.apply(&op));
            let (call, ret) = (point - before, Some(point + after));
            records.push(HistoryRecord { client: index as u8, op, output, call, ret });
        }
        let text = to_jsonl(&records);
        let ops = parse_history(&text).unwrap();
        prop_assert_eq!(&ops, &to_operations(&records));
        let result = check_kv(&ops, Budget::default());
        prop_assert_eq!(result.verdict, Verdict::Linearizable, "{}\n{}", text, result);
    }
}

/// `{"client":..,"op":"append",...}` lines for a key filled to the limit by a
/// put and appends, then an append that fails, then `tail` (more lines).
fn full_key_then(tail: &str) -> String {
    let mut records = Vec::new();
    let mut machine = KvMachine::new();
    let mut ops = vec![KvOp::Put {
        key: "k".into(),
        value: text(0, 1024),
    }];
    ops.extend((1..16).map(|seed| KvOp::Append {
        key: "k".into(),
        value: text(seed, 1024),
    }));
    ops.push(KvOp::Append {
        key: "k".into(),
        value: ",1.9".into(),
    });
    for (index, op) in ops.into_iter().enumerate() {
        let output = Some(machine.apply(&op));
        let call = 10 * index as u64;
        let ret = Some(call + 5);
        records.push(HistoryRecord {
            client: 1,
            op,
            output,
            call,
            ret,
        });
    }
    assert_eq!(machine.get("k").unwrap().len(), VALUE_SIZE_MAX);
    let text = to_jsonl(&records);
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with(r#"{"client":1,"op":"append","key":"k","value":",1.9","output":"error","#),
        "{last}"
    );
    format!("{text}{tail}")
}

fn verdict(text: &str) -> Verdict {
    check_kv(&parse_history(text).unwrap(), Budget::default()).verdict
}

#[test]
fn a_read_after_a_failed_append_sees_the_value_without_it() {
    let full: String = (0..16).map(|seed| text(seed, 1024)).collect();
    let get = |read: &str| {
        format!(r#"{{"client":2,"op":"get","key":"k","output":"{read}","call":200,"return":210}}"#)
    };
    assert_eq!(verdict(&full_key_then(&get(&full))), Verdict::Linearizable);
    // As if the failed append had appended: no linearization explains it.
    let appended = format!("{full},1.9");
    assert_eq!(
        verdict(&full_key_then(&get(&appended))),
        Verdict::NotLinearizable
    );
    // The same append recorded as a success (as runs recorded it before
    // "error" existed) cannot be: the key was full.
    let as_success = full_key_then(&get(&appended)).replace(r#","output":"error""#, "");
    assert_eq!(verdict(&as_success), Verdict::NotLinearizable);
}

#[test]
fn a_failed_append_creates_an_absent_key_empty() {
    let over = text(0, VALUE_SIZE_MAX + 1);
    let mut machine = KvMachine::new();
    let append = KvOp::Append {
        key: "k".into(),
        value: over.clone(),
    };
    assert_eq!(machine.apply(&append), KvOutput::Error);
    assert_eq!(machine.get("k").map(String::as_str), Some(""));
    let history = |read: &str| {
        format!(
            r#"{{"client":1,"op":"append","key":"k","value":"{over}","output":"error","call":1,"return":2}}
{{"client":2,"op":"get","key":"k","output":{read},"call":3,"return":4}}"#
        )
    };
    assert_eq!(verdict(&history(r#""""#)), Verdict::Linearizable);
    assert_eq!(verdict(&history("null")), Verdict::NotLinearizable);
    assert_eq!(
        verdict(&history(&format!("{over:?}"))),
        Verdict::NotLinearizable
    );
}

#[test]
fn error_is_an_output_of_a_completed_write_only() {
    let line = |op: &str, output: &str, ret: &str| {
        let fields = match op {
            "get" => String::new(),
            "cas" => r#","expected":"a","value":"b""#.to_string(),
            _ => r#","value":"b""#.to_string(),
        };
        format!(
            r#"{{"client":1,"op":"{op}","key":"k"{fields},"output":{output},"call":1,"return":{ret}}}"#
        )
    };
    for op in ["put", "append"] {
        let ops = parse_history(&line(op, r#""error""#, "2")).unwrap();
        assert_eq!(ops[0].output, Output::Error);
        assert_eq!(ops[0].to_json_line(), line(op, r#""error""#, "2"));
        let pending = parse_history(&line(op, r#""error""#, "null")).unwrap_err();
        assert!(pending.message.contains("pending"), "{pending}");
        let other = parse_history(&line(op, r#""ok""#, "2")).unwrap_err();
        assert!(other.message.contains("has no output"), "{other}");
    }
    // A get that read "error" read a value; a cas's output is a boolean.
    let read = parse_history(&line("get", r#""error""#, "2")).unwrap();
    assert_eq!(read[0].output, Output::Value(Some("error".into())));
    assert!(parse_history(&line("cas", r#""error""#, "2")).is_err());
}
