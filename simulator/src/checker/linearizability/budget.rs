//! How much searching a check may do before it answers `Unknown`.

use std::time::Instant;

/// A limit on search steps (one step = one event visited) shared by all the
/// partitions of a check, and optionally a deadline. The checker reads the
/// clock only when it is given a deadline, so a check without one is a pure
/// function of its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub steps: u64,
    pub deadline: Option<Instant>,
}

impl Budget {
    /// Ten times what the hardest reference history needs (about a million
    /// steps). A step costs 0.1-0.3 µs and, when it enters a new point of the
    /// search, some 60 bytes of memo cache: a search that uses the whole default
    /// takes a few seconds and may hold around 600 MB.
    pub const DEFAULT_STEPS: u64 = 10_000_000;

    pub fn steps(steps: u64) -> Self {
        Budget {
            steps,
            deadline: None,
        }
    }

    pub fn with_deadline(self, deadline: Instant) -> Self {
        Budget {
            deadline: Some(deadline),
            ..self
        }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::steps(Budget::DEFAULT_STEPS)
    }
}

/// Counts the steps taken against a budget.
pub(super) struct Meter {
    budget: Budget,
    pub(super) used: u64,
    exhausted: bool,
}

/// Reading the clock every step would cost more than the step itself.
const STEPS_PER_CLOCK_READ: u64 = 4096;

impl Meter {
    pub(super) fn new(budget: Budget) -> Self {
        Meter {
            budget,
            used: 0,
            exhausted: false,
        }
    }

    /// Takes one step; false (from then on) once the budget is spent.
    pub(super) fn tick(&mut self) -> bool {
        if self.exhausted || self.used >= self.budget.steps {
            self.exhausted = true;
            return false;
        }
        self.used += 1;
        if let Some(deadline) = self.budget.deadline {
            if self.used.is_multiple_of(STEPS_PER_CLOCK_READ) && Instant::now() >= deadline {
                self.exhausted = true;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_after_the_step_limit() {
        let mut meter = Meter::new(Budget::steps(3));
        assert!((0..3).all(|_| meter.tick()));
        assert!(!meter.tick());
        assert_eq!(meter.used, 3);
    }

    #[test]
    fn a_past_deadline_stops_at_the_next_clock_read() {
        let mut meter = Meter::new(Budget::steps(u64::MAX).with_deadline(Instant::now()));
        let taken = (0..10_000).take_while(|_| meter.tick()).count() as u64;
        assert_eq!(taken, STEPS_PER_CLOCK_READ);
    }
}
