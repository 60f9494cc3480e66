//! How much searching a check may do, and how much memory it may hold, before
//! it answers `Unknown`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A limit on search steps (one step = one event visited) and on the bytes the
/// search holds (memo caches, stacks with their states, and event lists: see
/// `Meter::charge`), shared by all the partitions of a check, and optionally a
/// deadline. The checker reads the clock only when it is given a deadline, so
/// a check without one is a pure function of its input: memory is counted, not
/// measured, so running out of it is as deterministic as running out of steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub steps: u64,
    pub memory_bytes: u64,
    pub deadline: Option<Instant>,
}

/// Which limit of a [`Budget`] a check reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Steps,
    Memory,
    Time,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Steps => "steps",
            Limit::Memory => "memory",
            Limit::Time => "time",
        }
    }
}

impl Budget {
    /// A hundred times what the hardest reference history needs (etcd_002,
    /// 0.13 million steps; kv_c50-ok needed 0.9 million before the lookahead).
    /// A step costs 0.05-0.3 µs and, when it enters a new point of the search,
    /// at most 43 bytes of memo cache (16-byte slots, a table at least three
    /// eighths full): a search that uses the whole default takes a few seconds
    /// and holds at most some 430 MB, under the default memory.
    pub const DEFAULT_STEPS: u64 = 10_000_000;

    /// What a check may hold unless told otherwise: 1 GiB.
    pub const DEFAULT_MEMORY_BYTES: u64 = 1 << 30;

    pub fn steps(steps: u64) -> Self {
        Budget {
            steps,
            memory_bytes: Budget::DEFAULT_MEMORY_BYTES,
            deadline: None,
        }
    }

    pub fn with_memory(self, memory_bytes: u64) -> Self {
        Budget {
            memory_bytes,
            ..self
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

/// Counts the steps taken and the bytes held against a budget.
pub(super) struct Meter {
    budget: Budget,
    pub(super) used: u64,
    /// Bytes charged and not yet released, and the most ever charged at once.
    memory: u64,
    memory_peak: u64,
    /// The limit reached; once set, every `tick` and `charge` fails.
    exhausted: Option<Limit>,
    /// When meters of several threads share the memory budget: the bytes all
    /// of them hold, which the budget's memory limits (`memory` then counts
    /// this meter's part only).
    shared: Option<Arc<AtomicU64>>,
}

/// Reading the clock every step would cost more than the step itself.
const STEPS_PER_CLOCK_READ: u64 = 4096;

impl Meter {
    pub(super) fn new(budget: Budget) -> Self {
        Meter {
            budget,
            used: 0,
            memory: 0,
            memory_peak: 0,
            exhausted: None,
            shared: None,
        }
    }

    /// A meter whose memory counts against `total` with other meters' (each
    /// thread of a check has one): the budget's memory limits their sum.
    pub(super) fn sharing(budget: Budget, total: Arc<AtomicU64>) -> Self {
        Meter {
            shared: Some(total),
            ..Meter::new(budget)
        }
    }

    /// Lets this meter take `steps` more steps from now on, whatever it took
    /// before (the caller accounts for the budget's steps across meters).
    pub(super) fn allow_steps(&mut self, steps: u64) {
        self.budget.steps = self.used.saturating_add(steps);
    }

    /// Starts counting the peak afresh from what this meter holds now.
    pub(super) fn reset_peak(&mut self) {
        self.memory_peak = self.memory;
    }

    /// Takes one step; false (from then on) once the budget is spent.
    pub(super) fn tick(&mut self) -> bool {
        if self.exhausted.is_some() {
            return false;
        }
        if self.used >= self.budget.steps {
            self.exhausted = Some(Limit::Steps);
            return false;
        }
        self.used += 1;
        if let Some(deadline) = self.budget.deadline {
            if self.used.is_multiple_of(STEPS_PER_CLOCK_READ) && Instant::now() >= deadline {
                self.exhausted = Some(Limit::Time);
            }
        }
        true
    }

    /// Asks to hold `bytes` more, before allocating them; false (and every
    /// `tick` from then on) when that would pass the memory budget.
    pub(super) fn charge(&mut self, bytes: u64) -> bool {
        if self.exhausted.is_some() {
            return false;
        }
        let memory = self.memory.saturating_add(bytes);
        let total = match &self.shared {
            // Reserve first, so that two threads can never both pass the limit.
            Some(shared) => shared
                .fetch_add(bytes, Ordering::Relaxed)
                .saturating_add(bytes),
            None => memory,
        };
        if total > self.budget.memory_bytes {
            if let Some(shared) = &self.shared {
                shared.fetch_sub(bytes, Ordering::Relaxed);
            }
            self.exhausted = Some(Limit::Memory);
            return false;
        }
        self.memory = memory;
        self.memory_peak = self.memory_peak.max(memory);
        true
    }

    /// Gives back bytes charged before (freed, or about to be).
    pub(super) fn release(&mut self, bytes: u64) {
        debug_assert!(bytes <= self.memory, "released more than charged");
        let bytes = bytes.min(self.memory);
        self.memory -= bytes;
        if let Some(shared) = &self.shared {
            shared.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    #[cfg(test)]
    pub(super) fn memory(&self) -> u64 {
        self.memory
    }

    /// Counts a peak held beside what this meter holds now (by a search on a
    /// meter of its own).
    pub(super) fn note_peak(&mut self, other_peak: u64) {
        self.memory_peak = self.memory_peak.max(self.memory + other_peak);
    }

    pub(super) fn memory_peak(&self) -> u64 {
        self.memory_peak
    }

    pub(super) fn exhausted(&self) -> Option<Limit> {
        self.exhausted
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
        assert_eq!(meter.exhausted(), Some(Limit::Steps));
    }

    #[test]
    fn memory_is_charged_released_and_capped() {
        let mut meter = Meter::new(Budget::steps(10).with_memory(100));
        assert!(meter.charge(60));
        meter.release(30);
        assert!(meter.charge(70));
        assert_eq!((meter.memory(), meter.memory_peak()), (100, 100));
        assert!(!meter.charge(1));
        assert_eq!(meter.exhausted(), Some(Limit::Memory));
        // Out of memory is out of budget: the search stops at its next step.
        assert!(!meter.tick());
    }

    #[test]
    fn shared_meters_share_the_memory_limit() {
        let total = Arc::new(AtomicU64::new(0));
        let budget = Budget::steps(10).with_memory(100);
        let mut a = Meter::sharing(budget, total.clone());
        let mut b = Meter::sharing(budget, total.clone());
        assert!(a.charge(60));
        assert!(!b.charge(50));
        assert_eq!(b.exhausted(), Some(Limit::Memory));
        a.release(60);
        assert_eq!(total.load(Ordering::Relaxed), 0);
        let mut c = Meter::sharing(budget, total.clone());
        assert!(c.charge(100));
        assert_eq!((c.memory(), c.memory_peak()), (100, 100));
    }

    #[test]
    fn a_past_deadline_stops_at_the_next_clock_read() {
        let mut meter = Meter::new(Budget::steps(u64::MAX).with_deadline(Instant::now()));
        let taken = (0..10_000).take_while(|_| meter.tick()).count() as u64;
        assert_eq!(taken, STEPS_PER_CLOCK_READ);
        assert_eq!(meter.exhausted(), Some(Limit::Time));
    }
}
