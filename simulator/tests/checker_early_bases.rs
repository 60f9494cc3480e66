//! The late refutation of the key-value model (`Model::refute_late`,
//! `early_bases` in `checker/model/shortcuts.rs`): a read whose every possible
//! base returned before an operation the read's value shows came before that
//! base. Tried only on a search that has gone on long; never refutes a
//! linearizable history (the brute-force differential test,
//! `linearizability_differential.rs`, runs every check through it too, but
//! its small histories are decided before it is tried, so here it is asked
//! directly).

use simulator::checker::linearizability::{check_kv, Budget, Verdict, LATE_REFUTATION_STEPS};
use simulator::checker::model::{KvModel, Model};
use simulator::history::{generate, parse_history, Operation, Output};

fn history(lines: &[&str]) -> Vec<Operation> {
    parse_history(&lines.join("\n")).expect("a well-formed history")
}

fn refute_late(ops: &[Operation]) -> Option<simulator::checker::model::Anomaly> {
    let refs: Vec<&Operation> = ops.iter().collect();
    KvModel.refute_late(&refs)
}

/// A put of "p" concurrent with an append of "a"; a get sees "pa", so the
/// append came after the put; a later get sees "p" alone. The append returned
/// before that get was called, so something must have removed it, and only the
/// put writes a value that starts "p", but the put returned before the first
/// get (which it precedes) was called. `lost_appends` cannot tell (the put may
/// follow the append) nor can `stale_reads` (the put is the latest write).
const LOST_AFTER_A_READ: [&str; 4] = [
    r#"{"client":1,"op":"put","key":"k","value":"p","call":0,"return":10}"#,
    r#"{"client":2,"op":"append","key":"k","value":"a","call":5,"return":12}"#,
    r#"{"client":3,"op":"get","key":"k","output":"pa","call":13,"return":14}"#,
    r#"{"client":4,"op":"get","key":"k","output":"p","call":20,"return":21}"#,
];

#[test]
fn a_read_showing_the_lost_append_after_the_base_is_refuted() {
    let ops = history(&LOST_AFTER_A_READ);
    let anomaly = refute_late(&ops).expect("refuted");
    assert_eq!(anomaly.ops.last(), Some(&ops[3]));
    // Base and witness: the put, and the get it came before.
    assert_eq!(anomaly.ops[..2], [ops[0].clone(), ops[2].clone()]);
    // Small enough for the search, which decides first.
    let result = check_kv(&ops, Budget::default());
    assert_eq!(result.verdict, Verdict::NotLinearizable);
    assert!(result.explanation.unwrap().anomaly.is_none());
}

#[test]
fn what_the_base_may_precede_is_no_witness() {
    // The first get sees "p": the append may have come first, then the put
    // (a, p, get, get) explains both gets.
    let mut lines = LOST_AFTER_A_READ;
    lines[2] = r#"{"client":3,"op":"get","key":"k","output":"p","call":13,"return":14}"#;
    let ops = history(&lines);
    assert!(refute_late(&ops).is_none());
    assert_eq!(
        check_kv(&ops, Budget::default()).verdict,
        Verdict::Linearizable
    );
    // Nor an append called before the put returned.
    let mut lines = LOST_AFTER_A_READ;
    lines[2] = r#"{"client":3,"op":"append","key":"k","value":"b","call":9,"return":14}"#;
    assert!(refute_late(&history(&lines)).is_none());
    // A pending put of the value read may come last.
    let mut lines = LOST_AFTER_A_READ.to_vec();
    lines.push(r#"{"client":5,"op":"put","key":"k","value":"p","call":15,"return":null}"#);
    assert!(refute_late(&history(&lines)).is_none());
}

/// The get that shows the append came after the put may be concurrent with
/// the last get: its value alone (only the put starts it, and only that
/// append ends it) orders them.
#[test]
fn a_concurrent_read_showing_the_append_after_the_base_is_refuted() {
    let mut lines = LOST_AFTER_A_READ.to_vec();
    lines[2] = r#"{"client":3,"op":"get","key":"k","output":"pa","call":11,"return":30}"#;
    let ops = history(&lines);
    let anomaly = refute_late(&ops).expect("refuted");
    assert_eq!(
        anomaly.ops,
        [&ops[0], &ops[1], &ops[2], &ops[3]].map(Clone::clone)
    );
    assert_eq!(
        check_kv(&ops, Budget::default()).verdict,
        Verdict::NotLinearizable
    );
    // Another append of "a" may have made that value instead: no refutation,
    // and rightly (the first append, the put, the last get, the other
    // append, the get of "pa").
    lines.push(r#"{"client":5,"op":"append","key":"k","value":"a","call":25,"return":null}"#);
    let ops = history(&lines);
    assert!(refute_late(&ops).is_none());
    assert_eq!(
        check_kv(&ops, Budget::default()).verdict,
        Verdict::Linearizable
    );
}

/// Generated linearizable histories of many shapes, crowded (many clients on
/// one key, so bases and appends overlap in time): none is refuted.
#[test]
fn never_refutes_a_linearizable_history() {
    for seed in 0..400 {
        let clients = 2 + (seed % 15) as usize;
        let ops = generate::linearizable(300, 1, clients, seed);
        assert!(refute_late(&ops).is_none(), "seed {seed}");
    }
    let ops = generate::linearizable(20_000, 1, 16, 7);
    assert!(refute_late(&ops).is_none());
}

/// The bench's lost append at sixteen clients on one key (`gen_10000ops_1k_16c_lost`), which
/// the search alone took some 90 million steps to decide: refuted by `refute_late`, and decided
/// within the steps after which that is tried (the search itself now decides it sooner, with the
/// precedences `Model::preceded_by` gives).
#[test]
fn refutes_a_lost_append_among_sixteen_clients() {
    let ops = generate::with_lost_append(generate::linearizable(10_000, 1, 16, 171_610_147));
    assert!(refute_late(&ops).is_some());
    let result = check_kv(&ops, Budget::default());
    assert_eq!(result.verdict, Verdict::NotLinearizable, "{result}");
    assert!(result.steps() < 4 * LATE_REFUTATION_STEPS, "{result}");
}

/// Small histories with one read told another read's value (or a prefix of
/// it, as a lost append would leave): whenever the refutation fires, the
/// search (exact on histories this small: `linearizability_differential.rs`)
/// finds no linearization either. Deterministic.
#[test]
fn refutes_only_what_the_search_refutes() {
    let mut fired = 0;
    for seed in 0..3_000u64 {
        let clients = 2 + (seed % 7) as usize;
        let mut ops = generate::linearizable(40, 1, clients, seed);
        let reads: Vec<usize> = (0..ops.len())
            .filter(|&i| matches!(ops[i].output, Output::Value(Some(_))))
            .collect();
        if reads.len() < 2 {
            continue;
        }
        let pick = |n: u64| reads[(seed.wrapping_mul(n) % reads.len() as u64) as usize];
        let (liar, source) = (pick(7_919), pick(104_729));
        let Output::Value(Some(told)) = ops[source].output.clone() else {
            unreachable!("a read of a value")
        };
        let cut = if seed % 2 == 0 {
            told.len()
        } else {
            told.rfind('.').unwrap_or(0)
        };
        ops[liar].output = Output::Value(Some(told[..cut].to_string()));
        if refute_late(&ops).is_some() {
            fired += 1;
            let result = check_kv(&ops, Budget::default());
            assert_eq!(result.verdict, Verdict::NotLinearizable, "seed {seed}");
        }
    }
    assert!(fired > 100, "fired {fired} times");
}

#[test]
fn a_failed_append_is_never_a_lost_one() {
    // The put fills the key to the limit, so the append fails (told "error"): it appended
    // nothing, and a later get of the put's value alone is no lost append.
    let full = "p".repeat(consensus::state_machine::VALUE_SIZE_MAX);
    let lines = [
        format!(r#"{{"client":1,"op":"put","key":"k","value":"{full}","call":0,"return":10}}"#),
        r#"{"client":2,"op":"append","key":"k","value":"a","output":"error","call":5,"return":12}"#
            .to_string(),
        format!(r#"{{"client":3,"op":"get","key":"k","output":"{full}","call":13,"return":14}}"#),
        format!(r#"{{"client":4,"op":"get","key":"k","output":"{full}","call":20,"return":21}}"#),
    ];
    let ops = parse_history(&lines.join("\n")).expect("a well-formed history");
    assert!(refute_late(&ops).is_none());
    let refs: Vec<&Operation> = ops.iter().collect();
    assert!(KvModel.preceded_by(&refs).iter().all(Option::is_none));
    assert_eq!(
        check_kv(&ops, Budget::default()).verdict,
        Verdict::Linearizable
    );
    // Told "ok" instead, and called after the put returned: it cannot have succeeded.
    let told_ok = lines[1]
        .replace(r#""output":"error","#, "")
        .replace(r#""call":5"#, r#""call":11"#);
    let lines = [
        lines[0].clone(),
        told_ok,
        lines[2].clone(),
        lines[3].clone(),
    ];
    let ops = parse_history(&lines.join("\n")).expect("a well-formed history");
    assert_eq!(
        check_kv(&ops, Budget::default()).verdict,
        Verdict::NotLinearizable
    );
}
