//! What the run did, summed over nodes, groups and incarnations (the JSON summary reads it).

use super::*;

impl Simulation {
    /// Replica counters of group `g` (every group when None), over every replica and
    /// incarnation.
    pub fn replica_totals(&self, g: Option<usize>) -> ReplicaTotals {
        let groups = match g {
            Some(g) => g..g + 1,
            None => 0..self.options.group_count as usize,
        };
        let mut totals = ReplicaTotals::default();
        for g in groups {
            totals.merge(&self.counters.crashed_stats[g]);
            for (_, x) in self.cluster.up_in(g) {
                totals.add(&x.stats());
            }
        }
        totals
    }

    /// Messages of a wrong namespace that nodes (their routers and their replicas) dropped,
    /// crashed incarnations included.
    pub fn messages_dropped_namespace(&self) -> u64 {
        let up: u64 = (0..self.options.replica_count)
            .filter_map(|r| self.cluster.node(r))
            .map(|node| node.messages_dropped_namespace())
            .sum();
        up + self.counters.dropped_namespace_crashed
    }

    /// Requests committed in every group.
    pub fn requests_committed(&self) -> u64 {
        self.oracles.iter().map(|o| o.requests_committed).sum()
    }

    /// Ops committed in every group.
    pub fn ops_committed(&self) -> u64 {
        self.oracles.iter().map(|o| o.commit_max()).sum()
    }
}
