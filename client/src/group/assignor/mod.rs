//! Partition assignors (pure, deterministic, no I/O): the group leader
//! runs the one the coordinator chose over every member's subscription.
//!
//! | name                 | protocol    | shape                                              |
//! |----------------------|-------------|----------------------------------------------------|
//! | `range`              | eager       | per topic, contiguous ranges; first members +1     |
//! | `roundrobin`         | eager       | all partitions dealt in turn                       |
//! | `cooperative-sticky` | cooperative | keeps owned partitions, moves only the excess      |
//!
//! Members are ordered the way Kafka's `MemberInfo` orders them: static
//! members (with a `group.instance.id`) first by instance id, then dynamic
//! members by member id; for a group of dynamic members that is simply
//! "sorted by member id".
//!
//! The output maps every member id to its partitions (possibly none),
//! each list sorted, and no partition to two members.

mod range;
mod roundrobin;
mod sticky;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::types::TopicPartition;

/// How members give partitions up in a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// Every member revokes all its partitions before rejoining.
    Eager,
    /// Members keep their partitions while rejoining and revoke only those
    /// the new assignment takes away (then rejoin at once, so the next
    /// generation hands them on).
    Cooperative,
}

/// A partition assignment strategy; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Assignor {
    Range,
    RoundRobin,
    CooperativeSticky,
}

impl Assignor {
    /// The protocol name sent in JoinGroup.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }

    pub fn protocol(self) -> RebalanceProtocol {
        match self {
            Assignor::Range | Assignor::RoundRobin => RebalanceProtocol::Eager,
            Assignor::CooperativeSticky => RebalanceProtocol::Cooperative,
        }
    }

    /// Assigns the partitions of the subscribed topics (`partitions`: topic
    /// → partition count; topics missing from it are skipped) to `members`.
    pub fn assign(self, partitions: &BTreeMap<String, u32>, members: &[MemberSubscription]) -> Assignment {
        let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
        sorted.sort_by(|a, b| member_order(a, b));
        sorted.dedup_by(|a, b| a.member_id == b.member_id);
        let mut assignment: Assignment = sorted.iter().map(|m| (m.member_id.clone(), Vec::new())).collect();
        match self {
            Assignor::Range => range::assign(partitions, &sorted, &mut assignment),
            Assignor::RoundRobin => roundrobin::assign(partitions, &sorted, &mut assignment),
            Assignor::CooperativeSticky => sticky::assign(partitions, &sorted, &mut assignment),
        }
        for owned in assignment.values_mut() {
            owned.sort();
        }
        assignment
    }

    /// The rebalance protocol of a consumer configured with `assignors`:
    /// cooperative only if every one of them is (as Kafka decides it, so a
    /// group switching between protocols never has two owners).
    pub fn common_protocol(assignors: &[Assignor]) -> RebalanceProtocol {
        if !assignors.is_empty() && assignors.iter().all(|a| a.protocol() == RebalanceProtocol::Cooperative) {
            RebalanceProtocol::Cooperative
        } else {
            RebalanceProtocol::Eager
        }
    }
}

impl fmt::Display for Assignor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Assignor {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "range" => Ok(Assignor::Range),
            "roundrobin" | "round-robin" => Ok(Assignor::RoundRobin),
            "cooperative-sticky" => Ok(Assignor::CooperativeSticky),
            other => Err(format!("unknown assignor {other:?} (expected range, roundrobin or cooperative-sticky)")),
        }
    }
}

/// Member id → its partitions (sorted).
pub type Assignment = BTreeMap<String, Vec<TopicPartition>>;

/// One member as the leader sees it in the JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberSubscription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// Topics the member subscribes to.
    pub topics: Vec<String>,
    /// Partitions it owns now (cooperative members only).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation in which it got `owned_partitions` (-1: unknown).
    pub generation: i32,
}

impl MemberSubscription {
    fn subscribes(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| t == topic)
    }
}

/// Kafka's `MemberInfo` order; see the module docs.
fn member_order(a: &MemberSubscription, b: &MemberSubscription) -> Ordering {
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y).then_with(|| a.member_id.cmp(&b.member_id)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub(crate) fn member(id: &str, topics: &[&str]) -> MemberSubscription {
        MemberSubscription {
            member_id: id.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            generation: -1,
            ..Default::default()
        }
    }

    pub(crate) fn owning(mut member: MemberSubscription, owned: &[(&str, u32)], generation: i32) -> MemberSubscription {
        member.owned_partitions = owned.iter().map(|&(t, p)| TopicPartition::new(t, p)).collect();
        member.generation = generation;
        member
    }

    pub(crate) fn topics(counts: &[(&str, u32)]) -> BTreeMap<String, u32> {
        counts.iter().map(|&(t, n)| (t.to_owned(), n)).collect()
    }

    pub(crate) fn tps(list: &[(&str, u32)]) -> Vec<TopicPartition> {
        list.iter().map(|&(t, p)| TopicPartition::new(t, p)).collect()
    }

    /// Every partition of a subscribed topic at most once, only to members
    /// subscribed to its topic.
    pub(crate) fn check_valid(assignment: &Assignment, members: &[MemberSubscription]) {
        let mut seen = std::collections::BTreeSet::new();
        for (member_id, owned) in assignment {
            let member = members.iter().find(|m| &m.member_id == member_id).expect("known member");
            for tp in owned {
                assert!(seen.insert(tp.clone()), "{tp} assigned twice");
                assert!(member.subscribes(&tp.topic), "{tp} to {member_id} which does not subscribe");
            }
        }
    }

    pub(crate) fn counts(assignment: &Assignment) -> Vec<usize> {
        assignment.values().map(Vec::len).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn names_round_trip() {
        for assignor in [Assignor::Range, Assignor::RoundRobin, Assignor::CooperativeSticky] {
            assert_eq!(assignor.name().parse::<Assignor>().unwrap(), assignor);
        }
        assert!("sticky".parse::<Assignor>().unwrap_err().contains("unknown assignor"));
    }

    #[test]
    fn protocol_is_cooperative_only_if_every_assignor_is() {
        use Assignor::*;
        assert_eq!(Assignor::common_protocol(&[CooperativeSticky]), RebalanceProtocol::Cooperative);
        assert_eq!(Assignor::common_protocol(&[CooperativeSticky, Range]), RebalanceProtocol::Eager);
        assert_eq!(Assignor::common_protocol(&[Range, CooperativeSticky]), RebalanceProtocol::Eager);
        assert_eq!(Assignor::common_protocol(&[]), RebalanceProtocol::Eager);
    }

    #[test]
    fn static_members_sort_first_by_instance_id() {
        let mut a = member("z-dynamic", &["t"]);
        let mut b = member("y", &["t"]);
        b.group_instance_id = Some("instance-2".into());
        let mut c = member("x", &["t"]);
        c.group_instance_id = Some("instance-1".into());
        let d = member("a-dynamic", &["t"]);
        let mut list = [a.clone(), b, c, d.clone()];
        list.sort_by(member_order);
        let ids: Vec<&str> = list.iter().map(|m| m.member_id.as_str()).collect();
        assert_eq!(ids, ["x", "y", "a-dynamic", "z-dynamic"]);
        a.group_instance_id = None;
        assert_eq!(member_order(&a, &d), Ordering::Greater);
    }

    #[test]
    fn every_assignor_is_valid_balanced_and_deterministic() {
        let partitions = topics(&[("a", 7), ("b", 3), ("c", 1)]);
        for assignor in [Assignor::Range, Assignor::RoundRobin, Assignor::CooperativeSticky] {
            for n in 1..=12 {
                let members: Vec<_> = (0..n).map(|i| member(&format!("m-{i:02}"), &["a", "b", "c"])).collect();
                let first = assignor.assign(&partitions, &members);
                check_valid(&first, &members);
                assert_eq!(first.len(), n, "{assignor}: every member has an entry");
                let total: usize = counts(&first).iter().sum();
                assert_eq!(total, 11, "{assignor}: every partition assigned");
                // Same input in another order: same output.
                let mut reversed = members.clone();
                reversed.reverse();
                assert_eq!(assignor.assign(&partitions, &reversed), first, "{assignor} with {n} members");
                if assignor != Assignor::Range {
                    // Range balances per topic, not overall.
                    let (min, max) = (counts(&first).into_iter().min(), counts(&first).into_iter().max());
                    assert!(max.unwrap() - min.unwrap() <= 1, "{assignor} with {n}: {first:?}");
                }
            }
        }
    }

    #[test]
    fn topics_without_metadata_or_subscribers_are_skipped() {
        let partitions = topics(&[("a", 2)]);
        let members = vec![member("m1", &["a", "missing"]), member("m2", &[])];
        for assignor in [Assignor::Range, Assignor::RoundRobin, Assignor::CooperativeSticky] {
            let assignment = assignor.assign(&partitions, &members);
            check_valid(&assignment, &members);
            assert_eq!(assignment["m1"], tps(&[("a", 0), ("a", 1)]), "{assignor}");
            assert!(assignment["m2"].is_empty());
        }
        assert!(Assignor::Range.assign(&partitions, &[]).is_empty());
    }
}
