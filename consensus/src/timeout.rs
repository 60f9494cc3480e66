//! Tick-driven timeouts with deterministic jitter and exponential backoff.

use crate::prng::Prng;

/// A timeout that fires `after` ticks (plus jitter) once started.
#[derive(Debug, Clone)]
pub struct Timeout {
    pub name: &'static str,
    after: u64,
    ticks_left: u64,
    attempts: u32,
    ticking: bool,
}

impl Timeout {
    pub fn new(name: &'static str, after: u64) -> Timeout {
        assert!(after > 0);
        Timeout {
            name,
            after,
            ticks_left: 0,
            attempts: 0,
            ticking: false,
        }
    }

    /// (Re)starts from zero with no backoff.
    pub fn start(&mut self, prng: &mut Prng) {
        self.attempts = 0;
        self.arm(prng);
    }

    pub fn stop(&mut self) {
        self.ticking = false;
        self.attempts = 0;
    }

    pub fn is_ticking(&self) -> bool {
        self.ticking
    }

    /// Restarts with exponential backoff (capped) and jitter, after firing.
    pub fn backoff(&mut self, prng: &mut Prng) {
        self.attempts = (self.attempts + 1).min(3);
        self.arm(prng);
    }

    fn arm(&mut self, prng: &mut Prng) {
        let base = self.after << self.attempts;
        // Jitter up to a quarter of the base breaks symmetric duels (two replicas timing out
        // in lockstep forever).
        self.ticks_left = base + prng.below(base / 4 + 1);
        self.ticking = true;
    }

    /// Advances one tick; true when the timeout fires (it then stays fired until restarted).
    pub fn tick(&mut self) -> bool {
        if !self.ticking {
            return false;
        }
        self.ticks_left = self.ticks_left.saturating_sub(1);
        if self.ticks_left == 0 {
            self.ticking = false;
            return true;
        }
        false
    }
}
