//! The lookahead's supply check (`checker/linearizability/supply.rs`,
//! `shortcuts::can_lead_to`): a read due soon needs the appends not yet
//! linearized to supply the rest of its value, after the state or after a
//! reset still to come, and a cas reset needs its own expected value reachable.

use simulator::checker::linearizability::{check_kv, Budget, Verdict};
use simulator::history::generate::{self, Shape};
use simulator::history::{parse_history, Output};

/// Colliding histories with cas ops that guess (`Shape::guessing_cas`): each
/// took the search before the supply check from 1.1M to over 10M steps (the
/// last one answered `unknown` on the default budget); with it, each is decided
/// in under 130k. A budget of 1M steps fails if the check is lost, or if a
/// change makes it refuse less (say, supply no longer shrinking as appends
/// are linearized, or cas resets taken as possible without their expected
/// value).
#[test]
fn colliding_histories_with_guessing_cas_are_decided_on_a_tight_budget() {
    let budget = Budget {
        steps: 1_000_000,
        ..Budget::default()
    };
    for (values, seed) in [
        (5, 126),
        (5, 74),
        (5, 99),
        (50, 46),
        (50, 113),
        (50, 131),
        (50, 193),
    ] {
        let shape = Shape {
            values: Some(values),
            pending_in_100: 20,
            guessing_cas: true,
        };
        let ops = generate::shaped(300, 1, 10, seed, shape);
        let result = check_kv(&ops, budget);
        assert_eq!(
            result.verdict,
            Verdict::Linearizable,
            "v{values} seed {seed}: {} steps: {result}",
            result.steps()
        );
    }
}

/// A cas with no reply may have swapped, so it is a reset a read may start
/// from: here the cas from "" to "a" (no output) must have swapped for the cas
/// told it swapped from "a" to read "a". Following it as a reset needs its own
/// resets; a lookahead that took it as impossible refused the only order
/// (found by the differential test).
#[test]
fn a_cas_told_nothing_is_followed_as_a_reset() {
    let history = r#"
{"client":3,"op":"put","key":"k0","value":"","call":8,"return":null}
{"client":2,"op":"cas","key":"k0","expected":"","value":"a","output":false,"call":4,"return":13}
{"client":4,"op":"append","key":"k0","value":"","call":9,"return":12}
{"client":0,"op":"append","key":"k0","value":"b","call":5,"return":7}
{"client":6,"op":"cas","key":"k0","expected":"a","value":"","output":true,"call":11,"return":13}
{"client":1,"op":"put","key":"k0","value":"","call":4,"return":5}
"#;
    let mut ops = parse_history(history).expect("the history parses");
    // Completed, but its output unknown (a file cannot say so; the checker's
    // own callers can).
    ops[1].output = Output::Unknown;
    let result = check_kv(&ops, Budget::default());
    assert_eq!(result.verdict, Verdict::Linearizable, "{result}");
}

/// The supply check refuses early but never wrongly: a read whose value the
/// appends left cannot spell is still refuted (here the one append of "9" is
/// needed twice), and the report still names an operation that cannot go.
#[test]
fn a_value_the_appends_cannot_spell_is_still_refuted() {
    let history = r#"
{"client":0,"op":"put","key":"x","value":"3","call":0,"return":2}
{"client":1,"op":"append","key":"x","value":"9","call":1,"return":5}
{"client":2,"op":"append","key":"x","value":"1","call":1,"return":5}
{"client":3,"op":"get","key":"x","output":"3919","call":3,"return":8}
"#;
    let ops = parse_history(history).expect("the history parses");
    let result = check_kv(&ops, Budget::default());
    assert_eq!(result.verdict, Verdict::NotLinearizable, "{result}");
}
