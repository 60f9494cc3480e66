//! The linearizability checker against the reference histories, small written
//! cases for every operation kind, and generated histories.

use proptest::prelude::*;
use simulator::checker::linearizability::{
    check_kv, Budget, CheckResult, Explanation, Limit, Verdict,
};
use simulator::checker::model::{KvModel, Model};
use simulator::history::{parse_history, Op, Operation, Output};

const HISTORIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/histories");

fn check(text: &str) -> CheckResult {
    let ops = parse_history(text).expect("test history parses");
    check_kv(&ops, Budget::default())
}

fn verdict(text: &str) -> Verdict {
    check(text).verdict
}

/// The explanation must be evidence, not just words: the prefix replays in the
/// model in an order real time allows, and every operation due next is refused.
/// A key refuted without a search names the operations of its anomaly instead.
fn assert_explains(explanation: &Explanation) {
    if let Some(anomaly) = &explanation.anomaly {
        assert!(explanation.longest_prefix.is_empty() && explanation.cannot_place.is_empty());
        assert!(!anomaly.message.is_empty());
        let impossible = anomaly.ops.last().expect("an anomaly names its operation");
        assert!(impossible.is_completed(), "{impossible}");
        assert!(anomaly.ops.iter().all(|op| op.key == explanation.key));
        return;
    }
    let model = KvModel;
    let mut state = model.init();
    for op in &explanation.longest_prefix {
        assert_eq!(op.key, explanation.key);
        state = model
            .step(&state, &op.op, &op.output)
            .expect("prefix replays");
    }
    for (i, earlier) in explanation.longest_prefix.iter().enumerate() {
        for later in &explanation.longest_prefix[i + 1..] {
            let returned_before = later.ret.is_some_and(|ret| ret < earlier.call);
            assert!(!returned_before, "{later} placed after {earlier}");
        }
    }
    assert!(!explanation.cannot_place.is_empty());
    // The plain search confirmed the violation: every operation due next is refused.
    assert!(explanation.would_strand.is_empty());
    for op in &explanation.cannot_place {
        assert!(op.is_completed(), "{op}");
        assert_eq!(model.step(&state, &op.op, &op.output), None, "{op} fits");
    }
    assert_eq!(model.describe_state(&state), explanation.state);
}

mod reference_histories {
    use super::*;

    struct Case {
        file: String,
        linearizable: bool,
        ops: usize,
    }

    fn manifest() -> Vec<Case> {
        let text = std::fs::read_to_string(format!("{HISTORIES}/MANIFEST.json")).unwrap();
        let entries: serde_json::Value = serde_json::from_str(&text).unwrap();
        let entries = entries.as_array().unwrap();
        entries
            .iter()
            .map(|entry| Case {
                file: entry["file"].as_str().unwrap().to_string(),
                linearizable: entry["linearizable"].as_bool().unwrap(),
                ops: entry["ops"].as_u64().unwrap() as usize,
            })
            .collect()
    }

    #[test]
    fn every_history_gets_its_verdict() {
        let cases = manifest();
        assert_eq!(cases.len(), 108);
        for case in cases {
            let text = std::fs::read_to_string(format!("{HISTORIES}/{}", case.file)).unwrap();
            let ops = parse_history(&text).unwrap_or_else(|e| panic!("{}: {e}", case.file));
            assert_eq!(ops.len(), case.ops, "{}", case.file);
            let result = check_kv(&ops, Budget::default());
            let expected = match case.linearizable {
                true => Verdict::Linearizable,
                false => Verdict::NotLinearizable,
            };
            assert_eq!(result.verdict, expected, "{}", case.file);
            match &result.explanation {
                Some(explanation) => assert_explains(explanation),
                None => assert!(case.linearizable, "{}: no explanation", case.file),
            }
        }
    }

    #[test]
    fn the_report_is_the_same_every_time() {
        for file in ["kv_c50-bad.jsonl", "etcd_099.jsonl"] {
            let text = std::fs::read_to_string(format!("{HISTORIES}/{file}")).unwrap();
            let ops = parse_history(&text).unwrap();
            let first = check_kv(&ops, Budget::default());
            assert_eq!(first, check_kv(&ops, Budget::default()), "{file}");
            assert_eq!(
                first.to_string(),
                check_kv(&ops, Budget::default()).to_string()
            );
        }
    }

    #[test]
    fn histories_round_trip_through_the_writer() {
        for case in manifest() {
            let text = std::fs::read_to_string(format!("{HISTORIES}/{}", case.file)).unwrap();
            let ops = parse_history(&text).unwrap();
            let written: Vec<String> = ops.iter().map(Operation::to_json_line).collect();
            assert_eq!(
                parse_history(&written.join("\n")).unwrap(),
                ops,
                "{}",
                case.file
            );
        }
    }
}

mod written_cases {
    use super::*;

    /// Line builders: `(client, call, return, ...)`; return "null" makes it pending.
    fn put(client: u64, call: u64, ret: &str, value: &str) -> String {
        format!(
            r#"{{"client":{client},"op":"put","key":"k","value":"{value}","call":{call},"return":{ret}}}"#
        )
    }

    fn append(client: u64, call: u64, ret: &str, value: &str) -> String {
        format!(
            r#"{{"client":{client},"op":"append","key":"k","value":"{value}","call":{call},"return":{ret}}}"#
        )
    }

    fn get(client: u64, call: u64, ret: &str, output: &str) -> String {
        format!(
            r#"{{"client":{client},"op":"get","key":"k","output":{output},"call":{call},"return":{ret}}}"#
        )
    }

    fn cas(client: u64, call: u64, ret: &str, expected: &str, value: &str, output: &str) -> String {
        format!(
            r#"{{"client":{client},"op":"cas","key":"k","expected":"{expected}","value":"{value}","output":{output},"call":{call},"return":{ret}}}"#
        )
    }

    fn history(lines: &[String]) -> String {
        lines.join("\n")
    }

    use Verdict::{Linearizable as Lin, NotLinearizable as NotLin};

    #[test]
    fn get_reads_the_latest_write() {
        assert_eq!(verdict(&history(&[get(1, 0, "1", "null")])), Lin);
        assert_eq!(verdict(&history(&[get(1, 0, "1", "\"a\"")])), NotLin);
        let sequential = [put(1, 0, "1", "a"), get(2, 2, "3", "\"a\"")];
        assert_eq!(verdict(&history(&sequential)), Lin);
        let stale = [
            put(1, 0, "1", "a"),
            put(1, 2, "3", "b"),
            get(2, 4, "5", "\"a\""),
        ];
        assert_eq!(verdict(&history(&stale)), NotLin);
    }

    #[test]
    fn put_concurrent_with_get_may_or_may_not_be_seen() {
        for seen in ["null", "\"a\""] {
            assert_eq!(
                verdict(&history(&[put(1, 0, "5", "a"), get(2, 1, "4", seen)])),
                Lin
            );
        }
        // Once a read saw the put, a later read cannot miss it.
        let flicker = [
            put(1, 0, "9", "a"),
            get(2, 1, "2", "\"a\""),
            get(2, 3, "4", "null"),
        ];
        assert_eq!(verdict(&history(&flicker)), NotLin);
    }

    #[test]
    fn equal_ticks_count_as_concurrent() {
        assert_eq!(
            verdict(&history(&[put(1, 0, "5", "a"), get(2, 5, "6", "null")])),
            Lin
        );
        assert_eq!(
            verdict(&history(&[put(1, 0, "5", "a"), get(2, 6, "7", "null")])),
            NotLin
        );
    }

    #[test]
    fn append_creates_and_extends() {
        let ordered = |read: &str| {
            history(&[
                append(1, 0, "1", "x"),
                append(1, 2, "3", "y"),
                get(2, 4, "5", read),
            ])
        };
        assert_eq!(verdict(&ordered("\"xy\"")), Lin);
        assert_eq!(verdict(&ordered("\"yx\"")), NotLin);
        let concurrent = [
            append(1, 0, "5", "x"),
            append(2, 0, "5", "y"),
            get(3, 6, "7", "\"yx\""),
        ];
        assert_eq!(verdict(&history(&concurrent)), Lin);
        let onto_put = [
            put(1, 0, "1", "a"),
            append(1, 2, "3", "b"),
            get(2, 4, "5", "\"ab\""),
        ];
        assert_eq!(verdict(&history(&onto_put)), Lin);
    }

    #[test]
    fn cas_that_swaps() {
        let swapped = |told: &str, read: &str| {
            history(&[
                put(1, 0, "1", "a"),
                cas(1, 2, "3", "a", "b", told),
                get(2, 4, "5", read),
            ])
        };
        assert_eq!(verdict(&swapped("true", "\"b\"")), Lin);
        assert_eq!(verdict(&swapped("true", "\"a\"")), NotLin);
        assert_eq!(verdict(&swapped("false", "\"a\"")), NotLin);
    }

    #[test]
    fn cas_that_does_not_swap() {
        let refused = |told: &str, read: &str| {
            history(&[
                put(1, 0, "1", "c"),
                cas(1, 2, "3", "a", "b", told),
                get(2, 4, "5", read),
            ])
        };
        assert_eq!(verdict(&refused("false", "\"c\"")), Lin);
        assert_eq!(verdict(&refused("false", "\"b\"")), NotLin);
        // An absent key equals no expected value, not even "".
        assert_eq!(
            verdict(&history(&[cas(1, 0, "1", "", "b", "true")])),
            NotLin
        );
        assert_eq!(verdict(&history(&[cas(1, 0, "1", "", "b", "false")])), Lin);
    }

    #[test]
    fn pending_put_that_must_have_happened() {
        let lines = [
            put(1, 0, "null", "a"),
            get(2, 5, "6", "\"a\""),
            get(2, 7, "8", "\"a\""),
        ];
        assert_eq!(verdict(&history(&lines)), Lin);
    }

    #[test]
    fn pending_put_that_never_happened() {
        let lines = [
            put(1, 0, "null", "a"),
            get(2, 5, "6", "null"),
            get(2, 7, "8", "null"),
        ];
        assert_eq!(verdict(&history(&lines)), Lin);
    }

    #[test]
    fn pending_put_cannot_be_undone() {
        let lines = [
            put(1, 0, "null", "a"),
            get(2, 5, "6", "\"a\""),
            get(2, 7, "8", "null"),
        ];
        assert_eq!(verdict(&history(&lines)), NotLin);
    }

    #[test]
    fn pending_op_seen_before_its_call() {
        let lines = [get(2, 1, "2", "\"a\""), put(1, 5, "null", "a")];
        let result = check(&history(&lines));
        assert_eq!(result.verdict, NotLin);
        // Refuted without a search: the only write of "a" was called too late.
        let explanation = result.explanation.unwrap();
        let anomaly = explanation.anomaly.as_ref().expect("refuted at once");
        assert_eq!(anomaly.ops.len(), 1);
        assert_eq!(anomaly.ops[0].output, Output::Value(Some("a".into())));
        assert_explains(&explanation);
    }

    #[test]
    fn pending_cas_with_a_recorded_output() {
        // Had it taken effect it swapped; or it never did.
        let base = |read: &str| {
            history(&[
                put(1, 0, "1", "a"),
                cas(1, 2, "null", "a", "b", "true"),
                get(2, 4, "5", read),
            ])
        };
        assert_eq!(verdict(&base("\"b\"")), Lin);
        assert_eq!(verdict(&base("\"a\"")), Lin);
        assert_eq!(verdict(&base("null")), NotLin);
    }

    #[test]
    fn failing_key_is_named_and_reported() {
        let text = r#"{"client":1,"op":"put","key":"a","value":"1","call":0,"return":1}
{"client":2,"op":"get","key":"a","output":"1","call":2,"return":3}
{"client":1,"op":"put","key":"b","value":"2","call":0,"return":10}
{"client":3,"op":"put","key":"b","value":"1","call":0,"return":10}
{"client":2,"op":"get","key":"b","output":"1","call":11,"return":12}
{"client":2,"op":"get","key":"b","output":"2","call":13,"return":14}
{"client":2,"op":"get","key":"c","output":null,"call":2,"return":3}"#;
        let result = check(text);
        assert_eq!(result.verdict, NotLin);
        assert_eq!(result.keys.len(), 3);
        assert_eq!(result.keys_checked(), 2, "stops at the failing key");
        let display = result.to_string();
        assert_eq!(display.lines().next(), Some("not linearizable"));
        assert!(
            display.contains(r#"client 2: get("b") -> "2"  [call 13, return 14]"#),
            "{display}"
        );
        let json = result.to_json();
        assert_eq!(json["verdict"], "not linearizable");
        assert_eq!(json["keys_checked"], 2);
        assert_eq!(json["failing_key"], "b");
        assert_eq!(json["state"], "1");
        assert_eq!(json["longest_prefix"][1]["value"], "1");
        assert_eq!(json["anomaly"], serde_json::Value::Null);
        assert_eq!(json["cannot_place"][0]["output"], "2");
        assert_explains(result.explanation.as_ref().unwrap());
    }

    #[test]
    fn linearizable_and_unknown_reports() {
        let text = history(&[
            put(1, 0, "5", "a"),
            put(2, 1, "6", "b"),
            get(3, 2, "7", "\"a\""),
        ]);
        let result = check(&text);
        assert_eq!(result.to_string().lines().next(), Some("linearizable"));
        assert_eq!(result.to_json()["failing_key"], serde_json::Value::Null);
        let ops = parse_history(&text).unwrap();
        let starved = check_kv(&ops, Budget::steps(2));
        assert_eq!(starved.verdict, Verdict::Unknown);
        assert_eq!(starved.to_string().lines().next(), Some("unknown"));
        assert_eq!(starved.to_json()["verdict"], "unknown");
    }

    /// Ten concurrent appends, then reads that saw them in one order: the search
    /// must not try the 10! orders the model accepts until a read refuses them.
    fn appends_pinned_by_reads(order: &[usize]) -> String {
        let mut lines: Vec<String> = (0..10)
            .map(|i| append(i, 0, "50", &format!(",{i}")))
            .collect();
        let seen: String = order.iter().map(|i| format!(",{i}")).collect();
        lines.push(get(10, 60, "70", &format!("\"{seen}\"")));
        lines.push(get(11, 60, "70", &format!("\"{seen}\"")));
        history(&lines)
    }

    #[test]
    fn concurrent_appends_are_ordered_by_the_reads_ahead() {
        let order = [3, 1, 4, 9, 5, 2, 6, 8, 7, 0];
        let result = check(&appends_pinned_by_reads(&order));
        assert_eq!(result.verdict, Lin);
        assert!(result.steps() < 10_000, "{} steps", result.steps());
        // A read that saw one append twice: no order explains it. The plain
        // search that confirms it cannot try all 10! orders within the budget,
        // so the lookahead's prefix is reported, with the appends that fit it.
        let result = check(&appends_pinned_by_reads(&[3, 1, 4, 1, 5, 2, 6, 8, 7, 0, 9]));
        assert_eq!(result.verdict, NotLin);
        assert!(!result.explanation.as_ref().unwrap().would_strand.is_empty());
        assert!(result.to_string().contains("leaving a read due soon"));
    }

    #[test]
    fn a_violation_the_lookahead_found_is_explained_by_the_plain_search() {
        let mut lines: Vec<String> = (0..5)
            .map(|i| append(i, 0, "50", &format!(",{i}")))
            .collect();
        lines.push(get(10, 60, "70", "\",3,1,4,1,0\""));
        let result = check(&history(&lines));
        assert_eq!(result.verdict, NotLin);
        let explanation = result.explanation.unwrap();
        assert!(explanation.would_strand.is_empty());
        assert_explains(&explanation);
    }

    #[test]
    fn a_small_memory_budget_answers_unknown_never_a_verdict() {
        let text = std::fs::read_to_string(format!("{HISTORIES}/kv_c50-ok.jsonl")).unwrap();
        let ops = parse_history(&text).unwrap();
        let full = check_kv(&ops, Budget::default());
        assert_eq!(full.verdict, Verdict::Linearizable);
        let memory = 64 << 10;
        assert!(
            full.memory_peak_bytes > memory,
            "the history needs more than the budget"
        );
        let starved = check_kv(&ops, Budget::default().with_memory(memory));
        assert_eq!(starved.verdict, Verdict::Unknown);
        assert_eq!(starved.budget_exhausted, Some(Limit::Memory));
        assert!(starved.memory_peak_bytes <= memory);
        assert_eq!(starved.to_json()["budget_exhausted"], "memory");
        assert!(
            starved
                .to_string()
                .contains("the memory budget ran out on key"),
            "{starved}"
        );
        // Counted, not measured: the same answer every time.
        assert_eq!(
            check_kv(&ops, Budget::default().with_memory(memory)),
            starved
        );
    }

    #[test]
    fn parse_errors_give_the_line() {
        let good = put(1, 0, "1", "a");
        let text = format!("{good}\n\n{good}\n{}\n{good}", get(1, 9, "3", "null"));
        let error = parse_history(&text).unwrap_err();
        assert_eq!(error.line, 4);
        assert_eq!(
            error.to_string(),
            "line 4: \"return\" (3) is before \"call\" (9)"
        );
    }
}

/// Histories made from a sequential run: each operation gets a linearization
/// point in order, and an interval around it; some get no reply.
mod generated {
    use super::*;

    #[derive(Clone, Debug)]
    struct Planned {
        key: u8,
        kind: u8,
        a: u8,
        b: u8,
        before: u64,
        after: u64,
        /// 0: completed; 1: no reply but took effect; 2: no reply, never happened.
        fate: u8,
    }

    fn planned() -> impl Strategy<Value = Planned> {
        (
            0..3u8,
            0..4u8,
            0..3u8,
            0..3u8,
            0..40u64,
            0..40u64,
            prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        )
            .prop_map(|(key, kind, a, b, before, after, fate)| Planned {
                key,
                kind,
                a,
                b,
                before,
                after,
                fate,
            })
    }

    fn input(plan: &Planned) -> Op {
        let (a, b) = (plan.a.to_string(), plan.b.to_string());
        match plan.kind {
            0 => Op::Get,
            1 => Op::Put { value: a },
            2 => Op::Append { value: a },
            _ => Op::Cas {
                expected: a,
                value: b,
            },
        }
    }

    /// Runs the plan sequentially on the model and records what clients saw.
    fn execute(plans: &[Planned]) -> Vec<Operation> {
        let model = KvModel;
        let mut states = vec![model.init(); 3];
        let mut ops = Vec::new();
        for (i, plan) in plans.iter().enumerate() {
            let point = 100 + 10 * i as u64;
            let op = input(plan);
            let state = &mut states[plan.key as usize];
            let output = if plan.fate == 2 {
                Output::Unknown
            } else {
                observe(state, &op)
            };
            if plan.fate != 2 {
                *state = model.step(state, &op, &Output::Unknown).unwrap();
            }
            ops.push(Operation {
                client: i as u64,
                key: format!("k{}", plan.key),
                output: if plan.fate == 0 {
                    output
                } else {
                    Output::Unknown
                },
                op,
                call: point - plan.before,
                ret: (plan.fate == 0).then_some(point + plan.after),
            });
        }
        ops
    }

    fn observe(state: &Option<String>, op: &Op) -> Output {
        match op {
            Op::Get => Output::Value(state.clone()),
            Op::Put { .. } | Op::Append { .. } => Output::Empty,
            Op::Cas { expected, .. } => {
                Output::Swapped(state.as_deref() == Some(expected.as_str()))
            }
        }
    }

    proptest! {
        #[test]
        fn sequential_runs_are_linearizable(plans in prop::collection::vec(planned(), 0..40)) {
            let ops = execute(&plans);
            let result = check_kv(&ops, Budget::default());
            prop_assert_eq!(result.verdict, Verdict::Linearizable, "{}", result);
        }

        #[test]
        fn a_read_of_a_value_never_written_is_caught(
            plans in prop::collection::vec(planned(), 0..40),
            key in 0..3u8,
            at in 0..50u64,
            width in 0..60u64,
        ) {
            let mut ops = execute(&plans);
            let call = 50 + 10 * at;
            ops.push(Operation {
                client: 999,
                key: format!("k{key}"),
                op: Op::Get,
                output: Output::Value(Some("never".to_string())),
                call,
                ret: Some(call + width),
            });
            let result = check_kv(&ops, Budget::default());
            prop_assert_eq!(result.verdict, Verdict::NotLinearizable);
            assert_explains(result.explanation.as_ref().unwrap());
        }
    }
}

/// Small random histories, mostly not linearizable, against the definition
/// checked by brute force: the search's pruning must never change a verdict.
mod against_brute_force {
    use super::*;

    /// Is there an order of all completed operations (and any of the pending
    /// ones) that real time allows and the model accepts?
    fn brute_force(ops: &[Operation], placed: &mut [bool], state: &Option<String>) -> bool {
        let open: Vec<usize> = (0..ops.len()).filter(|&i| !placed[i]).collect();
        if open.iter().all(|&i| !ops[i].is_completed()) {
            return true;
        }
        for &i in &open {
            let blocked = open
                .iter()
                .any(|&j| ops[j].ret.is_some_and(|ret| ret < ops[i].call));
            let next = match blocked {
                true => None,
                false => KvModel.step(state, &ops[i].op, &ops[i].output),
            };
            let Some(next) = next else { continue };
            placed[i] = true;
            let found = brute_force(ops, placed, &next);
            placed[i] = false;
            if found {
                return true;
            }
        }
        false
    }

    fn op() -> impl Strategy<Value = (Op, Output)> {
        let value = || prop_oneof![Just("a".to_string()), Just("b".to_string())];
        let read = prop_oneof![
            Just(None),
            Just(Some("a".to_string())),
            Just(Some("b".to_string())),
            Just(Some("ab".to_string())),
            Just(Some("ba".to_string())),
        ];
        prop_oneof![
            read.prop_map(|read| (Op::Get, Output::Value(read))),
            value().prop_map(|value| (Op::Put { value }, Output::Empty)),
            value().prop_map(|value| (Op::Append { value }, Output::Empty)),
            (value(), value(), any::<bool>()).prop_map(|(expected, value, swapped)| {
                (Op::Cas { expected, value }, Output::Swapped(swapped))
            }),
        ]
    }

    fn history() -> impl Strategy<Value = Vec<Operation>> {
        let one = (op(), 0..20u64, 0..8u64, 0..5u8);
        prop::collection::vec(one, 0..10).prop_map(|ops| {
            ops.into_iter()
                .enumerate()
                .map(|(i, ((op, output), call, length, pending))| {
                    let pending = pending == 0;
                    // A pending cas keeps its recorded output half the time.
                    let output = match (pending, &op) {
                        (true, Op::Cas { .. }) if call % 2 == 0 => output,
                        (true, _) => Output::Unknown,
                        _ => output,
                    };
                    Operation {
                        client: i as u64,
                        key: "k".to_string(),
                        op,
                        output,
                        call,
                        ret: (!pending).then_some(call + length),
                    }
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn same_verdict_as_brute_force(ops in history()) {
            let expected = brute_force(&ops, &mut vec![false; ops.len()], &None);
            let result = check_kv(&ops, Budget::default());
            let expected = if expected { Verdict::Linearizable } else { Verdict::NotLinearizable };
            prop_assert_eq!(result.verdict, expected, "{}", result);
            if let Some(explanation) = &result.explanation {
                assert_explains(explanation);
            }
        }
    }
}

/// Long histories, as long simulator runs write: thousands of operations per
/// key, split by the checker at quiescent points.
mod long_histories {
    use super::*;

    /// A deterministic stream of small numbers (no extra test dependency).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % below
        }
    }

    /// `count` operations on key "k" executed one after another on the model,
    /// each recorded with a small interval around its point in time, so that
    /// neighbours overlap and quiescent points come every few operations.
    fn sequential(count: usize, seed: u64) -> Vec<Operation> {
        let model = KvModel;
        let mut random = Lcg(seed);
        let mut state = model.init();
        let mut ops = Vec::with_capacity(count);
        for i in 0..count {
            let point = 100 + 10 * i as u64;
            let value = format!("v{}", random.next(4));
            let op = match random.next(4) {
                0 | 1 => Op::Get,
                2 => Op::Put { value },
                _ => Op::Cas {
                    expected: format!("v{}", random.next(4)),
                    value,
                },
            };
            let output = match &op {
                Op::Get => Output::Value(state.clone()),
                Op::Cas { expected, .. } => {
                    Output::Swapped(state.as_deref() == Some(expected.as_str()))
                }
                _ => Output::Empty,
            };
            state = model.step(&state, &op, &output).unwrap();
            ops.push(Operation {
                client: i as u64 % 5,
                key: "k".to_string(),
                op,
                output,
                call: point - random.next(12),
                ret: Some(point + random.next(12)),
            });
        }
        ops
    }

    fn put(client: u64, value: &str, call: u64, ret: Option<u64>) -> Operation {
        Operation {
            client,
            key: "k".to_string(),
            op: Op::Put {
                value: value.to_string(),
            },
            output: if ret.is_some() {
                Output::Empty
            } else {
                Output::Unknown
            },
            call,
            ret,
        }
    }

    fn get(client: u64, read: Option<&str>, call: u64, ret: u64) -> Operation {
        Operation {
            client,
            key: "k".to_string(),
            op: Op::Get,
            output: Output::Value(read.map(str::to_string)),
            call,
            ret: Some(ret),
        }
    }

    #[test]
    fn twenty_thousand_operations_on_one_key_are_decided() {
        let ops = sequential(20_000, 1);
        let result = check_kv(&ops, Budget::steps(2_000_000));
        assert_eq!(result.verdict, Verdict::Linearizable, "{result}");
        assert!(result.steps() < 500_000, "{} steps", result.steps());
    }

    /// Generated histories as the benchmark makes them (`bench_histories`: the same seeds).
    fn generated(ops: usize, keys: usize, clients: usize) -> Vec<Operation> {
        let seed = ((ops * 131 + keys) * 131 + clients) as u64;
        simulator::history::generate::linearizable(ops, keys, clients, seed)
    }

    #[test]
    fn sixteen_clients_on_one_key_are_decided_in_the_default_budget() {
        // Before the lookahead watched cas ops that swapped, 1,000 such operations took 1.5
        // million steps; 3,000 now take a fraction of the default.
        let result = check_kv(&generated(3_000, 1, 16), Budget::default());
        assert_eq!(result.verdict, Verdict::Linearizable, "{result}");
        let lie = simulator::history::generate::with_stale_read(generated(2_000, 4, 8));
        let result = check_kv(&lie, Budget::default());
        assert_eq!(result.verdict, Verdict::NotLinearizable, "{result}");
        assert_explains(result.explanation.as_ref().unwrap());
    }

    #[test]
    fn threads_give_the_same_result_even_when_the_steps_run_out() {
        use simulator::checker::linearizability::check_kv_jobs;
        let ops = generated(4_000, 6, 16);
        for steps in [0, 1, 700, 5_000, 20_000, 10_000_000] {
            let one = check_kv(&ops, Budget::steps(steps));
            for jobs in [2, 4] {
                let many = check_kv_jobs(&ops, Budget::steps(steps), jobs);
                // All but the memory peak (`check_operations_jobs` says why).
                assert_eq!(
                    (&many.keys, &many.explanation, many.budget_exhausted),
                    (&one.keys, &one.explanation, one.budget_exhausted),
                    "{steps} steps on {jobs} threads"
                );
                assert_eq!(many.to_string(), one.to_string());
            }
        }
    }

    /// Slow in a debug build: `cargo test --release -- --ignored`.
    #[test]
    #[ignore]
    fn a_hundred_thousand_operations_on_one_key_are_decided_in_the_default_budget() {
        let result = check_kv(&generated(100_000, 1, 10), Budget::default());
        assert_eq!(result.verdict, Verdict::Linearizable, "{result}");
    }

    #[test]
    fn a_late_violation_is_found_and_explained() {
        // Reads in a quiet gap after 19,000 operations that order two
        // concurrent puts both ways: every value read was written when read,
        // so only a search can refute them.
        let mut ops = sequential(20_000, 2);
        for op in &mut ops[19_000..] {
            op.call += 1_000;
            op.ret = op.ret.map(|ret| ret + 1_000);
        }
        let gap = 100 + 10 * 19_000;
        ops.push(put(98, "never", gap + 10, Some(gap + 20)));
        ops.push(put(99, "after", gap + 10, Some(gap + 20)));
        ops.push(get(99, Some("never"), gap + 30, gap + 32));
        ops.push(get(99, Some("after"), gap + 34, gap + 36));
        ops.push(get(99, Some("never"), gap + 38, gap + 40));
        let result = check_kv(&ops, Budget::steps(2_000_000));
        assert_eq!(result.verdict, Verdict::NotLinearizable, "{result}");
        let explanation = result.explanation.as_ref().unwrap();
        assert_explains(explanation);
        assert_eq!(explanation.key, "k");
        assert!(
            explanation.longest_prefix.len() > 18_900,
            "prefix of {}",
            explanation.longest_prefix.len()
        );
        assert!(explanation
            .cannot_place
            .iter()
            .any(|op| op.output == Output::Value(Some("after".to_string()))));
        // The same report every time.
        assert_eq!(check_kv(&ops, Budget::steps(2_000_000)), result);
    }

    /// `sequential(3_000, seed)` with a quiet gap after its first 2,000
    /// operations, filled by `insert(start of the gap, value there)`.
    fn with_gap(seed: u64, insert: impl Fn(u64, &str) -> Vec<Operation>) -> Vec<Operation> {
        let mut ops = sequential(3_000, seed);
        let model = KvModel;
        let mut state = model.init();
        for op in &ops[..2_000] {
            state = model.step(&state, &op.op, &op.output).unwrap();
        }
        for op in &mut ops[2_000..] {
            op.call += 1_000;
            op.ret = op.ret.map(|ret| ret + 1_000);
        }
        let gap = 100 + 10 * 2_000;
        ops.extend(insert(gap, state.as_deref().expect("written by then")));
        ops
    }

    #[test]
    fn an_early_pending_put_may_take_effect_late_or_never() {
        let took_effect_late = with_gap(3, |gap, value| {
            vec![
                put(98, "pending", 150, None),
                get(99, Some("pending"), gap + 20, gap + 22),
                put(99, "after", gap + 30, Some(gap + 32)),
                get(99, Some("after"), gap + 40, gap + 42),
                put(99, value, gap + 50, Some(gap + 52)),
            ]
        });
        let result = check_kv(&took_effect_late, Budget::steps(2_000_000));
        assert_eq!(result.verdict, Verdict::Linearizable, "{result}");

        let never = with_gap(3, |_, _| vec![put(98, "pending", 150, None)]);
        let result = check_kv(&never, Budget::steps(2_000_000));
        assert_eq!(result.verdict, Verdict::Linearizable, "{result}");

        let seen_before_its_call = with_gap(3, |gap, _| {
            vec![
                put(98, "pending", gap + 20, None),
                get(99, Some("pending"), 140, 145),
            ]
        });
        let result = check_kv(&seen_before_its_call, Budget::steps(2_000_000));
        assert_eq!(result.verdict, Verdict::NotLinearizable, "{result}");
        assert_explains(result.explanation.as_ref().unwrap());

        // Taking effect once cannot explain reads on both sides of another write.
        let seen_twice = with_gap(3, |gap, value| {
            vec![
                put(98, "pending", 150, None),
                get(99, Some("pending"), gap + 20, gap + 22),
                put(99, "after", gap + 30, Some(gap + 32)),
                get(99, Some("pending"), gap + 40, gap + 42),
                put(99, value, gap + 50, Some(gap + 52)),
            ]
        });
        let result = check_kv(&seen_twice, Budget::steps(2_000_000));
        assert_eq!(result.verdict, Verdict::NotLinearizable, "{result}");
        assert_explains(result.explanation.as_ref().unwrap());
    }

    #[test]
    fn every_state_a_segment_may_end_in_is_carried_on() {
        // Two concurrent puts, then (after a quiescent point) reads.
        let puts = [put(1, "a", 0, Some(10)), put(2, "b", 5, Some(15))];
        let read = |value, at| get(3, Some(value), at, at + 1);
        for value in ["a", "b"] {
            let mut ops = puts.to_vec();
            ops.push(read(value, 20));
            ops.push(read(value, 30));
            assert_eq!(
                check_kv(&ops, Budget::default()).verdict,
                Verdict::Linearizable
            );
        }
        let mut ops = puts.to_vec();
        ops.push(read("a", 20));
        ops.push(read("b", 30));
        let result = check_kv(&ops, Budget::default());
        assert_eq!(result.verdict, Verdict::NotLinearizable);
        let explanation = result.explanation.unwrap();
        assert_explains(&explanation);
        assert_eq!(explanation.longest_prefix.len(), 3);
    }

    #[test]
    fn a_segment_with_many_possible_end_states() {
        // Five concurrent appends can end in 120 orders: more states than the
        // checker carries from one segment to the next, so it searches uncut.
        let appends: Vec<Operation> = ["a", "b", "c", "d", "e"]
            .iter()
            .enumerate()
            .map(|(i, value)| Operation {
                client: i as u64,
                key: "k".to_string(),
                op: Op::Append {
                    value: value.to_string(),
                },
                output: Output::Empty,
                call: i as u64,
                ret: Some(10 + i as u64),
            })
            .collect();
        let with_reads = |reads: &[&str]| {
            let mut ops = appends.clone();
            for (i, read) in reads.iter().enumerate() {
                let at = 100 + 10 * i as u64;
                ops.push(get(9, Some(read), at, at + 1));
            }
            check_kv(&ops, Budget::default())
        };
        for reads in [&["edcba", "edcba"][..], &["abcde"], &["cadeb"]] {
            let result = with_reads(reads);
            assert_eq!(result.verdict, Verdict::Linearizable, "{result}");
        }
        for reads in [&["edcba", "abcde"][..], &["abcdd"]] {
            let result = with_reads(reads);
            assert_eq!(result.verdict, Verdict::NotLinearizable, "{result}");
            assert_explains(result.explanation.as_ref().unwrap());
        }
    }
}

/// Anomalies refuted before any search, the cases that look like them but must
/// not be refuted, and pending writes left out of the search.
mod shortcuts {
    use super::*;

    fn op(client: u64, op: Op, output: Output, call: u64, ret: Option<u64>) -> Operation {
        Operation {
            client,
            key: "k".to_string(),
            op,
            output,
            call,
            ret,
        }
    }

    fn put(value: &str, call: u64, ret: Option<u64>) -> Operation {
        let output = ret.map_or(Output::Unknown, |_| Output::Empty);
        let value = value.to_string();
        op(1, Op::Put { value }, output, call, ret)
    }

    fn append(value: &str, call: u64, ret: Option<u64>) -> Operation {
        let output = ret.map_or(Output::Unknown, |_| Output::Empty);
        let value = value.to_string();
        op(2, Op::Append { value }, output, call, ret)
    }

    fn get(read: Option<&str>, call: u64, ret: u64) -> Operation {
        let output = Output::Value(read.map(str::to_string));
        op(3, Op::Get, output, call, Some(ret))
    }

    fn cas(expected: &str, value: &str, output: Output, call: u64, ret: Option<u64>) -> Operation {
        let (expected, value) = (expected.to_string(), value.to_string());
        op(4, Op::Cas { expected, value }, output, call, ret)
    }

    /// Not linearizable, refuted without a search step, naming the operation.
    fn assert_refuted(ops: &[Operation], impossible: &Operation) {
        let result = check_kv(ops, Budget::default());
        assert_eq!(result.verdict, Verdict::NotLinearizable, "{result}");
        assert_eq!(result.steps(), 0, "{result}");
        let explanation = result.explanation.as_ref().unwrap();
        assert_explains(explanation);
        let anomaly = explanation.anomaly.as_ref().expect("an anomaly");
        assert_eq!(anomaly.ops.last(), Some(impossible), "{result}");
        let text = result.to_string();
        assert!(
            text.contains("no order of its operations can explain this"),
            "{text}"
        );
        assert!(text.contains(&impossible.to_string()), "{text}");
        let json = result.to_json();
        assert_eq!(
            json["anomaly"]["ops"].as_array().unwrap().len(),
            anomaly.ops.len()
        );
    }

    /// The verdict the search gives, with no anomaly claimed.
    fn assert_searched(ops: &[Operation], expected: Verdict) {
        let result = check_kv(ops, Budget::default());
        assert_eq!(result.verdict, expected, "{result}");
        if let Some(explanation) = &result.explanation {
            assert_eq!(explanation.anomaly, None, "{result}");
            assert_explains(explanation);
        }
    }

    #[test]
    fn a_read_of_a_value_nothing_wrote() {
        let read = get(Some("c"), 10, 11);
        assert_refuted(
            &[put("a", 0, Some(1)), append("b", 2, None), read.clone()],
            &read,
        );
        // Appends build only base + pieces: "ba" is not "a" then "b".
        let read = get(Some("ba"), 10, 11);
        assert_refuted(
            &[put("a", 0, Some(1)), append("b", 2, Some(3)), read.clone()],
            &read,
        );
        // The only write of the value was called after the read returned.
        let read = get(Some("a"), 0, 1);
        assert_refuted(&[read.clone(), put("a", 2, Some(3))], &read);
        // A cas told it did not swap wrote nothing.
        let read = get(Some("b"), 10, 11);
        let failed = cas("a", "b", Output::Swapped(false), 2, Some(3));
        assert_refuted(&[put("a", 0, Some(1)), failed, read.clone()], &read);
    }

    #[test]
    fn a_cas_that_swapped_from_a_value_nothing_wrote() {
        let swapped = cas("x", "y", Output::Swapped(true), 5, Some(6));
        assert_refuted(&[put("a", 0, Some(1)), swapped.clone()], &swapped);
        let swapped = cas("ab", "y", Output::Swapped(true), 0, Some(1));
        assert_refuted(
            &[swapped.clone(), put("a", 0, Some(1)), append("b", 2, None)],
            &swapped,
        );
    }

    #[test]
    fn a_read_of_absent_after_a_write_completed() {
        for write in [
            put("a", 0, Some(1)),
            append("", 0, Some(1)),
            cas("a", "b", Output::Swapped(true), 0, Some(1)),
        ] {
            let read = get(None, 2, 3);
            // A pending put makes the cas's expected value possible.
            let ops = [put("a", 0, None), write.clone(), read.clone()];
            let result = check_kv(&ops, Budget::default());
            assert_eq!(result.verdict, Verdict::NotLinearizable);
            let anomaly = result.explanation.unwrap().anomaly.unwrap();
            assert_eq!(anomaly.ops, [write, read]);
        }
    }

    #[test]
    fn what_looks_like_an_anomaly_but_is_not_one() {
        use Verdict::{Linearizable as Lin, NotLinearizable as NotLin};
        let ab = get(Some("ab"), 10, 11);
        assert_searched(
            &[put("a", 0, Some(1)), append("b", 2, Some(3)), ab.clone()],
            Lin,
        );
        // Appends to an absent key start from "", even an empty append.
        assert_searched(&[append("", 0, Some(1)), get(Some(""), 2, 3)], Lin);
        assert_searched(
            &[append("a", 0, None), append("b", 0, None), ab.clone()],
            Lin,
        );
        // A pending write, and a write called before the read returned, count.
        assert_searched(&[put("ab", 5, None), ab.clone()], Lin);
        assert_searched(&[put("ab", 11, Some(20)), ab.clone()], Lin);
        // A cas that may have swapped wrote its value.
        let unknown = cas("a", "ab", Output::Unknown, 2, None);
        assert_searched(&[put("a", 0, Some(1)), unknown, ab.clone()], Lin);
        // Swapped from a value appends built.
        let swapped = cas("ab", "c", Output::Swapped(true), 5, Some(6));
        let ops = [put("a", 0, Some(1)), append("b", 2, Some(3)), swapped];
        assert_searched(&ops, Lin);
        // A pending cas told it swapped may never have happened.
        let pending = cas("x", "y", Output::Swapped(true), 2, None);
        assert_searched(&[put("a", 0, Some(1)), pending, get(Some("a"), 5, 6)], Lin);
        // Absent while the first write is still in flight.
        assert_searched(&[put("a", 0, Some(5)), get(None, 2, 3)], Lin);
        // Each append counts once, which only the search knows: "bb" needs two.
        let bb = get(Some("bb"), 10, 11);
        assert_searched(&[append("b", 0, Some(1)), bb], NotLin);
        // Two concurrent puts, read in both orders: every value read was written by then.
        let both_ways = [
            put("a", 0, Some(5)),
            put("b", 0, Some(5)),
            get(Some("a"), 6, 7),
            get(Some("b"), 8, 9),
            get(Some("a"), 10, 11),
        ];
        assert_searched(&both_ways, NotLin);
        // An append read later without it, when a put of what was read may come between.
        let ops = [
            put("a", 0, Some(1)),
            append("b", 2, Some(3)),
            put("a", 2, Some(4)),
            get(Some("a"), 5, 6),
        ];
        assert_searched(&ops, Lin);
        // After a put, a write of the value read that may come between them.
        let again = put("a", 2, None);
        let ops = [
            put("a", 0, Some(1)),
            put("b", 2, Some(3)),
            again,
            get(Some("a"), 4, 5),
        ];
        assert_searched(&ops, Lin);
        let overlapping = put("a", 1, Some(2));
        let ops = [put("b", 2, Some(3)), overlapping, get(Some("a"), 4, 5)];
        assert_searched(&ops, Lin);
        // Or the appends that build it, none of them over before the put was called.
        let ops = [
            put("b", 2, Some(3)),
            put("a", 3, Some(4)),
            append("c", 1, Some(6)),
            get(Some("ac"), 5, 7),
        ];
        assert_searched(&ops, Lin);
    }

    #[test]
    fn a_read_that_misses_an_append_over_before_it_was_called() {
        let read = get(Some("a"), 4, 5);
        let ops = [put("a", 0, Some(1)), append("b", 2, Some(3)), read.clone()];
        assert_refuted(&ops, &read);
        let swapped = cas("ab", "d", Output::Swapped(true), 6, Some(7));
        let ops = [
            put("a", 0, Some(1)),
            append("b", 2, Some(3)),
            append("c", 4, Some(5)),
            swapped.clone(),
        ];
        assert_refuted(&ops, &swapped);
    }

    #[test]
    fn a_read_of_a_value_a_put_replaced_before_it_was_called() {
        let read = get(Some("a"), 4, 5);
        let ops = [put("a", 0, Some(1)), put("b", 2, Some(3)), read.clone()];
        assert_refuted(&ops, &read);
        // A cas told it swapped read its expected value; appends over before the put began
        // cannot rebuild it.
        let swapped = cas("ac", "d", Output::Swapped(true), 6, Some(7));
        let ops = [
            put("a", 0, Some(1)),
            append("c", 1, Some(2)),
            cas("ac", "b", Output::Swapped(true), 3, Some(4)),
            swapped.clone(),
        ];
        assert_refuted(&ops, &swapped);
    }

    #[test]
    fn a_pending_write_nothing_saw_is_left_out() {
        let mut ops = vec![put("a", 0, Some(1)), get(Some("a"), 100, 101)];
        for i in 0..40 {
            ops.push(put(&format!("p{i}"), 2 + i, None));
            ops.push(append(&format!("q{i}"), 2 + i, None));
        }
        let result = check_kv(&ops, Budget::default());
        assert_eq!(result.verdict, Verdict::Linearizable, "{result}");
        assert_eq!(
            result.keys[0].ops, 2,
            "only the completed operations are searched"
        );
        // One that a read saw stays.
        ops.push(get(Some("p7q3"), 50, 51));
        let result = check_kv(&ops, Budget::default());
        assert_eq!(result.verdict, Verdict::NotLinearizable, "{result}");
        assert_eq!(result.keys[0].ops, 5, "p7 and q3 are searched");
    }

    /// Leaving out an unseen pending write would be wrong here: a cas that
    /// failed may have failed only because the write took effect.
    #[test]
    fn a_failed_cas_may_have_seen_a_pending_write() {
        let ops = [
            put("a", 0, Some(1)),
            put("x", 2, None),
            cas("a", "b", Output::Swapped(false), 3, Some(4)),
        ];
        assert_searched(&ops, Verdict::Linearizable);
        assert_searched(
            &ops[..1]
                .iter()
                .chain(&ops[2..])
                .cloned()
                .collect::<Vec<_>>(),
            Verdict::NotLinearizable,
        );
        // Unless the cas expects a value the key can never hold: it fails anyway.
        let ops = [
            put("a", 0, Some(1)),
            put("x", 2, None),
            cas("z", "b", Output::Swapped(false), 3, Some(4)),
            get(Some("a"), 5, 6),
        ];
        let result = check_kv(&ops, Budget::default());
        assert_eq!(result.verdict, Verdict::Linearizable, "{result}");
        // Neither the write nor the cas is searched: a cas that can never swap
        // fits anywhere and changes nothing.
        assert_eq!(result.keys[0].ops, 2);
        // One that may swap is, and a read it contradicts refutes it.
        let ops = [
            put("a", 0, Some(1)),
            cas("a", "b", Output::Swapped(false), 3, Some(4)),
            get(Some("a"), 5, 6),
        ];
        assert_searched(&ops, Verdict::NotLinearizable);
    }

    /// A pending write nothing saw, kept because a cas that failed may need
    /// it, is tried only right before such a cas: its value poisons the key
    /// until the next put, so it is of use nowhere else.
    #[test]
    fn a_pending_write_nothing_saw_is_placed_only_where_a_cas_needs_it() {
        let mut ops = vec![put("a", 0, Some(1))];
        for i in 0..16 {
            ops.push(append(&format!(",p{i}"), 2 + i, None));
        }
        for i in 0..40 {
            let value = format!("v{i}");
            ops.push(put(&value, 100 + 10 * i, Some(101 + 10 * i)));
            ops.push(get(Some(&value), 102 + 10 * i, 103 + 10 * i));
        }
        // Fails on "v39" only if one of the appends took effect just before.
        ops.push(cas("v39", "z", Output::Swapped(false), 600, Some(601)));
        let result = check_kv(&ops, Budget::default());
        assert_eq!(result.verdict, Verdict::Linearizable, "{result}");
        assert_eq!(result.keys[0].ops, 98, "the appends are searched");
        assert!(result.steps() < 20_000, "{} steps", result.steps());
        // And where the value the cas expects is read after the cas, no write may come between.
        ops.push(get(Some("v39"), 602, 603));
        let result = check_kv(&ops, Budget::default());
        assert_eq!(result.verdict, Verdict::NotLinearizable, "{result}");
    }

    /// The segment a pending write is in starts in a state an earlier segment
    /// left: whether a cas there can fail only thanks to the write depends on
    /// it (a put of "b" in the segment before makes this one need the write).
    #[test]
    fn a_failed_cas_in_a_later_segment_may_need_a_pending_write() {
        let ops = [
            put("a", 0, Some(0)),
            put("b", 7, Some(7)),
            cas("b", "a", Output::Swapped(false), 15, Some(15)),
            put("a", 15, None),
        ];
        assert_searched(&ops, Verdict::Linearizable);
    }
}
