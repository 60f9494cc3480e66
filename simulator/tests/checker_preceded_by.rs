//! The precedences the key-value model gives the search's lookahead
//! (`Model::preceded_by`, `shortcuts::preceded_by`): an append that a read
//! shows came after the only put (or cas) its value can start with is placed
//! only after it. A false precedence would prune a linearization: the search
//! would find a violation the plain search (`confirm`) then contradicts, which
//! a debug build asserts against; a release build still answers right, so
//! run these in a debug build too (`cargo test -p simulator --test
//! checker_preceded_by`) to check the precedences themselves.

use simulator::checker::linearizability::{check_kv, Budget, Verdict};
use simulator::checker::model::{KvModel, Model};
use simulator::history::{generate, parse_history, Operation};

fn history(lines: &[&str]) -> Vec<Operation> {
    parse_history(&lines.join("\n")).expect("a well-formed history")
}

fn preceded_by(ops: &[Operation]) -> Vec<Option<Vec<usize>>> {
    let refs: Vec<&Operation> = ops.iter().collect();
    KvModel.preceded_by(&refs)
}

/// A put and an append at once; a later get of "pa" shows the order.
const PUT_THEN_APPEND: [&str; 3] = [
    r#"{"client":1,"op":"put","key":"k","value":"p","call":0,"return":10}"#,
    r#"{"client":2,"op":"append","key":"k","value":"a","call":0,"return":10}"#,
    r#"{"client":3,"op":"get","key":"k","output":"pa","call":11,"return":12}"#,
];

#[test]
fn a_read_orders_an_append_after_its_base() {
    let ops = history(&PUT_THEN_APPEND);
    assert_eq!(preceded_by(&ops), [None, Some(vec![0]), None]);
    assert_eq!(
        check_kv(&ops, Budget::default()).verdict,
        Verdict::Linearizable
    );
}

#[test]
fn no_precedence_where_the_read_does_not_force_one() {
    // Another append of "a" could be the one the get saw.
    let mut lines = PUT_THEN_APPEND.to_vec();
    lines.push(r#"{"client":4,"op":"append","key":"k","value":"a","call":0,"return":null}"#);
    assert!(preceded_by(&history(&lines)).iter().all(Option::is_none));
    // Another write of "p" could be the get's base.
    let mut lines = PUT_THEN_APPEND.to_vec();
    lines.push(r#"{"client":4,"op":"put","key":"k","value":"p","call":5,"return":null}"#);
    assert!(preceded_by(&history(&lines)).iter().all(Option::is_none));
    // Pieces that build what follows "p" in other ways: "ab" is "a" then
    // "b", or "ab" alone, so no append is needed.
    let mut lines = PUT_THEN_APPEND.to_vec();
    lines[2] = r#"{"client":3,"op":"get","key":"k","output":"pab","call":11,"return":12}"#;
    lines.push(r#"{"client":4,"op":"append","key":"k","value":"ab","call":0,"return":10}"#);
    lines.push(r#"{"client":5,"op":"append","key":"k","value":"b","call":0,"return":10}"#);
    assert!(preceded_by(&history(&lines)).iter().all(Option::is_none));
    // Without the append of "ab", both "a" and "b" are needed.
    lines.remove(3);
    let ops = history(&lines);
    assert_eq!(
        preceded_by(&ops),
        [None, Some(vec![0]), None, Some(vec![0])]
    );
    // No setter returned before the get: it may have read appends alone.
    let mut lines = PUT_THEN_APPEND.to_vec();
    lines[0] = r#"{"client":1,"op":"put","key":"k","value":"p","call":0,"return":20}"#;
    assert!(preceded_by(&history(&lines)).iter().all(Option::is_none));
}

/// Crowded linearizable histories (many clients on one key, where the
/// precedences are most of what prunes the search): all decided
/// linearizable, in debug builds with no wrong pruning.
#[test]
fn linearizable_histories_stay_linearizable() {
    for seed in 0..200 {
        let clients = 2 + (seed % 15) as usize;
        let ops = generate::linearizable(400, 1, clients, seed);
        let result = check_kv(&ops, Budget::default());
        assert_eq!(result.verdict, Verdict::Linearizable, "seed {seed}");
    }
}

/// One put, then a long run of appends, each read back: the values grow past
/// what precedences are read from (`SHOWN_REST_MAX`), and the check still
/// decides, linearizable.
#[test]
fn long_values_are_decided() {
    let mut lines =
        vec![r#"{"client":1,"op":"put","key":"k","value":"p","call":0,"return":1}"#.to_string()];
    let mut value = "p".to_string();
    for i in 0..1_500u64 {
        let piece = format!("{i},");
        value.push_str(&piece);
        let t = 10 + 4 * i;
        lines.push(format!(
            r#"{{"client":2,"op":"append","key":"k","value":"{piece}","call":{t},"return":{}}}"#,
            t + 2
        ));
        lines.push(format!(
            r#"{{"client":3,"op":"get","key":"k","output":"{value}","call":{},"return":{}}}"#,
            t + 1,
            t + 3
        ));
    }
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let ops = history(&lines);
    let appends_ordered = preceded_by(&ops).iter().flatten().count();
    assert!(appends_ordered > 100, "{appends_ordered}");
    assert_eq!(
        check_kv(&ops, Budget::default()).verdict,
        Verdict::Linearizable
    );
}
