//! A node's router: a node hosts several consensus groups (a metadata group and partition
//! groups, as in Apache Iggy), one replica each, and hands every message to the group its
//! header's namespace names. A message for a namespace the node does not host is dropped and
//! counted, never acted on: a misrouted message must not reach a group it does not belong to
//! (each replica also drops another namespace's message, so a router bug is caught twice).

use crate::wire::Header;

/// Most consensus groups one node hosts (bounded like everything else).
pub const GROUPS_MAX: usize = 8;

/// Namespace -> group index, for the groups one node hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    /// The hosted namespaces; a group's index is its position.
    namespaces: Vec<u64>,
    /// Messages whose namespace names no hosted group.
    pub messages_dropped_namespace: u64,
}

impl Router {
    /// A router for groups `namespaces` (distinct, at most `GROUPS_MAX`).
    pub fn new(namespaces: Vec<u64>) -> Router {
        assert!((1..=GROUPS_MAX).contains(&namespaces.len()));
        let mut sorted = namespaces.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            namespaces.len(),
            "namespaces must be distinct"
        );
        Router {
            namespaces,
            messages_dropped_namespace: 0,
        }
    }

    pub fn namespaces(&self) -> &[u64] {
        &self.namespaces
    }

    /// The group that takes a message with `header`, or None (dropped and counted).
    pub fn route(&mut self, header: &Header) -> Option<usize> {
        let group = self.namespaces.iter().position(|&n| n == header.namespace);
        if group.is_none() {
            self.messages_dropped_namespace += 1;
        }
        group
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Command;

    #[test]
    fn routes_by_namespace_and_counts_the_rest() {
        let mut router = Router::new(vec![0, 5, 9]);
        let header = |ns| Header::new(1, 0, 0, Command::StartViewChange).in_namespace(ns);
        assert_eq!(router.route(&header(5)), Some(1));
        assert_eq!(router.route(&header(0)), Some(0));
        assert_eq!(router.route(&header(7)), None);
        assert_eq!(router.messages_dropped_namespace, 1);
    }

    #[test]
    #[should_panic(expected = "distinct")]
    fn namespaces_are_distinct() {
        Router::new(vec![1, 1]);
    }
}
