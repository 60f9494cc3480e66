//! Replicas that executed the same ops hold the same state: the oracle compares state digests
//! after every step that executed ops, not only at every 32nd op, so a divergence that no
//! reply shows is caught at the next op both replicas execute.

use consensus::KvOp;
use simulator::scenario::Scenario;

#[test]
fn a_state_divergence_no_reply_shows_is_caught_at_the_next_op() {
    let mut s = Scenario::new(21, 3, 2);
    s.commit_more(3, 5_000).unwrap();
    // Away from a multiple of 32, so only a comparison at every op can see it.
    while s.commit_max().is_multiple_of(32) || s.commit_max() % 32 > 24 {
        s.commit_more(1, 5_000).unwrap();
    }
    let p = s.primary().unwrap();
    let b = (p + 1) % 3;
    s.run_until(5_000, |s| s.settled()).unwrap();
    // A key no client reads: the replies stay right, the state does not.
    let planted = KvOp::Put {
        key: "planted".into(),
        value: "x".into(),
    };
    s.sim
        .cluster
        .replica_mut(b)
        .unwrap()
        .state_machine_mut_for_tests()
        .apply(&planted);
    let before = s.commit_max();
    let err = s.commit_more(4, 5_000).unwrap_err();
    assert!(err.starts_with("state_divergence"), "{err}");
    // The failure report lists every replica as it stood, the one the violation names first.
    let named = s
        .sim
        .violation
        .as_ref()
        .and_then(|v| v.replica)
        .expect("names a replica");
    let states = simulator::run::replicas_at_violation(&s.sim);
    assert_eq!(states.len(), 3);
    assert!(states[0].starts_with(&format!("r{named}: ")), "{states:?}");
    assert!(s.commit_max() <= before + 4, "caught within the ops run");
    assert_eq!(
        s.commit_max() / 32,
        before / 32,
        "no multiple of 32 was crossed"
    );
}
