//! Kafka's `RoundRobinAssignor`: every partition of every subscribed topic,
//! sorted by topic then partition, is dealt in turn to the members (in
//! member order), skipping members not subscribed to its topic.

use std::collections::BTreeMap;

use super::{Assignment, MemberSubscription};
use crate::types::TopicPartition;

pub(super) fn assign(partitions: &BTreeMap<String, u32>, members: &[&MemberSubscription], out: &mut Assignment) {
    if members.is_empty() {
        return;
    }
    let mut next = 0usize;
    for (topic, &count) in partitions {
        if !members.iter().any(|m| m.subscribes(topic)) {
            continue;
        }
        for partition in 0..count {
            while !members[next % members.len()].subscribes(topic) {
                next += 1;
            }
            let member = members[next % members.len()];
            next += 1;
            out.entry(member.member_id.clone()).or_default().push(TopicPartition::new(topic.clone(), partition));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Assignor;
    use super::super::test_support::*;

    #[test]
    fn partitions_are_dealt_in_turn_across_topics() {
        let members = vec![member("b", &["t1", "t2"]), member("a", &["t1", "t2"])];
        let assignment = Assignor::RoundRobin.assign(&topics(&[("t1", 3), ("t2", 2)]), &members);
        assert_eq!(assignment["a"], tps(&[("t1", 0), ("t1", 2), ("t2", 1)]));
        assert_eq!(assignment["b"], tps(&[("t1", 1), ("t2", 0)]));
    }

    #[test]
    fn members_not_subscribed_are_skipped() {
        let members = vec![member("a", &["t1"]), member("b", &["t1", "t2"]), member("c", &["t1"])];
        let assignment = Assignor::RoundRobin.assign(&topics(&[("t1", 3), ("t2", 2)]), &members);
        check_valid(&assignment, &members);
        assert_eq!(assignment["a"], tps(&[("t1", 0)]));
        assert_eq!(assignment["b"], tps(&[("t1", 1), ("t2", 0), ("t2", 1)]));
        assert_eq!(assignment["c"], tps(&[("t1", 2)]));
    }
}
