//! Kafka's `RangeAssignor`: for each topic, its partitions in order are
//! cut into contiguous ranges, one per subscribed member in member order;
//! the first `partitions % members` members get one extra.

use std::collections::BTreeMap;

use super::{Assignment, MemberSubscription};
use crate::types::TopicPartition;

pub(super) fn assign(partitions: &BTreeMap<String, u32>, members: &[&MemberSubscription], out: &mut Assignment) {
    for (topic, &count) in partitions {
        let subscribers: Vec<&MemberSubscription> = members.iter().copied().filter(|m| m.subscribes(topic)).collect();
        if subscribers.is_empty() {
            continue;
        }
        let per_member = count / subscribers.len() as u32;
        let extra = count % subscribers.len() as u32;
        for (index, member) in subscribers.iter().enumerate() {
            let index = index as u32;
            let start = per_member * index + index.min(extra);
            let length = per_member + u32::from(index < extra);
            let owned = out.entry(member.member_id.clone()).or_default();
            owned.extend((start..start + length).map(|p| TopicPartition::new(topic.clone(), p)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Assignor;
    use super::super::test_support::*;

    #[test]
    fn first_members_get_the_extra_partition_per_topic() {
        let members = vec![member("c", &["t1", "t2"]), member("a", &["t1", "t2"]), member("b", &["t1", "t2"])];
        let assignment = Assignor::Range.assign(&topics(&[("t1", 4), ("t2", 3)]), &members);
        assert_eq!(assignment["a"], tps(&[("t1", 0), ("t1", 1), ("t2", 0)]));
        assert_eq!(assignment["b"], tps(&[("t1", 2), ("t2", 1)]));
        assert_eq!(assignment["c"], tps(&[("t1", 3), ("t2", 2)]));
    }

    #[test]
    fn six_partitions_three_members_two_each() {
        let members = vec![member("m1", &["t"]), member("m2", &["t"]), member("m3", &["t"])];
        let assignment = Assignor::Range.assign(&topics(&[("t", 6)]), &members);
        assert_eq!(assignment["m1"], tps(&[("t", 0), ("t", 1)]));
        assert_eq!(assignment["m2"], tps(&[("t", 2), ("t", 3)]));
        assert_eq!(assignment["m3"], tps(&[("t", 4), ("t", 5)]));
    }

    #[test]
    fn only_subscribers_of_a_topic_share_it() {
        let members = vec![member("a", &["t1"]), member("b", &["t1", "t2"])];
        let assignment = Assignor::Range.assign(&topics(&[("t1", 2), ("t2", 2)]), &members);
        check_valid(&assignment, &members);
        assert_eq!(assignment["a"], tps(&[("t1", 0)]));
        assert_eq!(assignment["b"], tps(&[("t1", 1), ("t2", 0), ("t2", 1)]));
    }

    #[test]
    fn more_members_than_partitions_leaves_some_idle() {
        let members: Vec<_> = ["a", "b", "c"].iter().map(|id| member(id, &["t"])).collect();
        let assignment = Assignor::Range.assign(&topics(&[("t", 2)]), &members);
        assert_eq!(counts(&assignment), [1, 1, 0]);
    }
}
