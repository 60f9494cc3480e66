//! Repair takes only what the chain vouches for: a backup missing the prepare of an op it
//! holds the header of accepts, for that op, only the prepare of that header (or one that links
//! into its proven hash chain), never another prepare of the same op, however well-formed.

use consensus::wire::{Command, Message};
use simulator::scenario::Scenario;
use std::cell::RefCell;
use std::rc::Rc;

#[test]
fn a_backup_repairing_an_op_refuses_another_prepare_of_that_op() {
    let mut s = Scenario::new(94, 3, 1);
    s.commit_more(3, 5_000).unwrap();
    // A view change first, so an older view exists: a prepare of it goes down the repair path.
    let p0 = s.primary().unwrap();
    s.crash(p0);
    s.run_until(10_000, |s| s.primary().is_some_and(|q| q != p0))
        .unwrap();
    s.restart(p0);
    s.commit_more(2, 10_000).unwrap();
    let p = s.primary().unwrap();
    let b = (p + 1) % 3;

    // The next op's prepare, as the primary sends it to B.
    let seen: Rc<RefCell<Option<Message>>> = Rc::default();
    let keep = seen.clone();
    s.drop_messages(move |from, to, m| {
        if from == p as usize && to == b as usize && matches!(m.header.command, Command::Prepare(_))
        {
            *keep.borrow_mut() = Some(m.clone());
        }
        false
    });
    s.commit_more(1, 5_000).unwrap();
    s.clear_drops();
    let real = seen.borrow().clone().expect("a prepare went to B");
    let op = real.header.prepare().op;
    // Ops above it, so B still holds its header (the chain above names it) when it loses it.
    s.commit_more(2, 5_000).unwrap();
    s.stop_clients();
    s.run_until(10_000, |s| s.settled()).unwrap();
    assert!(op < s.commit_max());

    // Another prepare of the same op: same parent, another timestamp, an older view; sealed.
    let mut header = real.header;
    header.view = 0;
    if let Command::Prepare(ref mut x) = header.command {
        x.timestamp += 1;
    }
    let other = Message::new(header, real.body.clone());
    assert_ne!(other.header.checksum, real.header.checksum);

    // B loses its copy of the op (a latent fault found at restart) and asks for it; only the
    // other prepare reaches it for a while.
    s.crash(b);
    assert!(s.corrupt_prepare(b, op));
    s.restart(b);
    let injected = other.header.checksum;
    s.drop_messages(move |_, to, m| {
        let prepare = matches!(m.header.command, Command::Prepare(_));
        to == b as usize && prepare && m.header.checksum != injected
    });
    for _ in 0..40 {
        s.inject(p as usize, b as usize, &other);
        s.run(25).unwrap();
    }
    assert!(
        s.replica(b).commit_min() < op,
        "B executed the op without the prepare the chain names"
    );
    // Then the real one may come: B repairs it and the cluster settles on it.
    s.clear_drops();
    s.run_until(20_000, |s| s.settled()).unwrap();
    let b_header = s.replica(b).header(op).map(|h| h.checksum);
    assert_eq!(b_header, Some(real.header.checksum));
}
