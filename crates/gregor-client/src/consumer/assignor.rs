//! The partition assignors a group leader runs, under the protocol names the Java client and
//! librdkafka use ("range", "roundrobin", "cooperative-sticky"), so that Gregor consumers and
//! theirs can share one group whoever is the leader.
//!
//! * range: per topic, members (by instance id, else member id) get contiguous runs; the first
//!   `partitions % members` get one more.
//! * roundrobin: all partitions (by topic, partition) dealt in turn to the members subscribed.
//! * cooperative-sticky: members keep what they own as far as balance allows; what moves is
//!   withheld from its new owner this round, so the old owner revokes it first and a follow-up
//!   rebalance hands it over (KIP-429's incremental protocol).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::TopicPartition;

/// One member's subscription, as the leader reads it from JoinGroup.
#[derive(Debug, Clone, Default)]
pub struct MemberSubscription {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`, for static members.
    pub instance_id: Option<String>,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Partitions the member owns (subscription v1+; cooperative members only).
    pub owned: Vec<TopicPartition>,
    /// The generation those were owned in (subscription v2+; -1 unknown).
    pub generation: i32,
}

impl MemberSubscription {
    fn sort_key(&self) -> (&str, &str) {
        (
            self.instance_id.as_deref().unwrap_or(&self.member_id),
            &self.member_id,
        )
    }
}

/// Runs assignor `name` over `members`; `partitions` gives each topic's partition count
/// (topics missing from it get nothing). Every member appears in the result.
pub fn assign(
    name: &str,
    members: &[MemberSubscription],
    partitions: &HashMap<String, i32>,
) -> HashMap<String, Vec<TopicPartition>> {
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut out: HashMap<String, Vec<TopicPartition>> = members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect();
    match name {
        "roundrobin" => round_robin(&sorted, partitions, &mut out),
        "cooperative-sticky" => cooperative_sticky(&sorted, partitions, &mut out),
        _ => range(&sorted, partitions, &mut out),
    }
    for assigned in out.values_mut() {
        assigned.sort();
    }
    out
}

fn range(
    members: &[&MemberSubscription],
    partitions: &HashMap<String, i32>,
    out: &mut HashMap<String, Vec<TopicPartition>>,
) {
    let topics: BTreeSet<&String> = members.iter().flat_map(|m| &m.topics).collect();
    for topic in topics {
        let Some(&count) = partitions.get(topic) else {
            continue;
        };
        let subscribed: Vec<&&MemberSubscription> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .collect();
        let n = subscribed.len() as i32;
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, m) in subscribed.iter().enumerate() {
            let take = each + i32::from((i as i32) < extra);
            let assigned = out.get_mut(&m.member_id).expect("every member");
            assigned.extend((next..next + take).map(|p| (topic.clone(), p)));
            next += take;
        }
    }
}

fn all_partitions(
    members: &[&MemberSubscription],
    partitions: &HashMap<String, i32>,
) -> Vec<TopicPartition> {
    let topics: BTreeSet<&String> = members.iter().flat_map(|m| &m.topics).collect();
    topics
        .into_iter()
        .filter_map(|t| partitions.get(t).map(|&n| (t, n)))
        .flat_map(|(t, n)| (0..n).map(move |p| (t.clone(), p)))
        .collect()
}

fn round_robin(
    members: &[&MemberSubscription],
    partitions: &HashMap<String, i32>,
    out: &mut HashMap<String, Vec<TopicPartition>>,
) {
    let mut turn = 0;
    for tp in all_partitions(members, partitions) {
        for _ in 0..members.len() {
            let m = members[turn % members.len()];
            turn += 1;
            if m.topics.contains(&tp.0) {
                out.get_mut(&m.member_id).expect("every member").push(tp);
                break;
            }
        }
    }
}

fn cooperative_sticky(
    members: &[&MemberSubscription],
    partitions: &HashMap<String, i32>,
    out: &mut HashMap<String, Vec<TopicPartition>>,
) {
    let all = all_partitions(members, partitions);
    let exists: BTreeSet<&TopicPartition> = all.iter().collect();
    // Previous owner of each partition: the claim from the highest generation wins.
    let mut owner: BTreeMap<TopicPartition, (i32, usize)> = BTreeMap::new();
    for (i, m) in members.iter().enumerate() {
        for tp in &m.owned {
            if !exists.contains(tp) || !m.topics.contains(&tp.0) {
                continue;
            }
            match owner.get(tp) {
                Some((generation, _)) if *generation >= m.generation => {}
                _ => {
                    owner.insert(tp.clone(), (m.generation, i));
                }
            }
        }
    }
    let eligible = |i: usize, tp: &TopicPartition| members[i].topics.contains(&tp.0);
    let mut assigned: Vec<BTreeSet<TopicPartition>> = vec![BTreeSet::new(); members.len()];
    for (tp, (_, i)) in &owner {
        assigned[*i].insert(tp.clone());
    }
    // Nobody keeps more than an even share of what it can consume.
    let mut unassigned: Vec<TopicPartition> = all
        .iter()
        .filter(|tp| !owner.contains_key(*tp))
        .cloned()
        .collect();
    let share = all.len().div_ceil(members.len().max(1));
    for set in assigned.iter_mut() {
        while set.len() > share {
            let tp = set.iter().next_back().cloned().expect("non-empty");
            set.remove(&tp);
            unassigned.push(tp);
        }
    }
    unassigned.sort();
    for tp in unassigned {
        if let Some(i) = (0..members.len())
            .filter(|&i| eligible(i, &tp))
            .min_by_key(|&i| assigned[i].len())
        {
            assigned[i].insert(tp);
        }
    }
    // Even out: move from the fullest to an emptier eligible member while it helps.
    for _ in 0..all.len() * 2 {
        let mut moved = false;
        'outer: for from in 0..members.len() {
            for to in 0..members.len() {
                if assigned[from].len() <= assigned[to].len() + 1 {
                    continue;
                }
                let candidate = assigned[from]
                    .iter()
                    .rev()
                    .find(|tp| eligible(to, tp))
                    .cloned();
                if let Some(tp) = candidate {
                    assigned[from].remove(&tp);
                    assigned[to].insert(tp);
                    moved = true;
                    break 'outer;
                }
            }
        }
        if !moved {
            break;
        }
    }
    // Incremental: a partition changing owner is withheld until its owner has revoked it.
    for (i, set) in assigned.into_iter().enumerate() {
        let keep = set
            .into_iter()
            .filter(|tp| owner.get(tp).is_none_or(|(_, o)| *o == i));
        out.get_mut(&members[i].member_id)
            .expect("every member")
            .extend(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str], owned: &[(&str, i32)]) -> MemberSubscription {
        MemberSubscription {
            member_id: id.into(),
            instance_id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned: owned.iter().map(|(t, p)| (t.to_string(), *p)).collect(),
            generation: 1,
        }
    }

    fn counts(partitions: &[(&str, i32)]) -> HashMap<String, i32> {
        partitions
            .iter()
            .map(|(t, n)| (t.to_string(), *n))
            .collect()
    }

    fn tps(list: &[(&str, i32)]) -> Vec<TopicPartition> {
        list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn range_gives_contiguous_runs_per_topic() {
        let members = [member("b", &["t"], &[]), member("a", &["t", "u"], &[])];
        let out = assign("range", &members, &counts(&[("t", 5), ("u", 2)]));
        assert_eq!(
            out["a"],
            tps(&[("t", 0), ("t", 1), ("t", 2), ("u", 0), ("u", 1)])
        );
        assert_eq!(out["b"], tps(&[("t", 3), ("t", 4)]));
    }

    #[test]
    fn roundrobin_deals_in_turn() {
        let members = [member("a", &["t"], &[]), member("b", &["t"], &[])];
        let out = assign("roundrobin", &members, &counts(&[("t", 3)]));
        assert_eq!(out["a"], tps(&[("t", 0), ("t", 2)]));
        assert_eq!(out["b"], tps(&[("t", 1)]));
    }

    #[test]
    fn cooperative_sticky_keeps_owned_and_withholds_moves() {
        // a owned everything; b joins: a keeps 2, b gets nothing this round (what moves is
        // withheld until a revokes it), then everything is balanced.
        let members = [
            member("a", &["t"], &[("t", 0), ("t", 1), ("t", 2), ("t", 3)]),
            member("b", &["t"], &[]),
        ];
        let out = assign("cooperative-sticky", &members, &counts(&[("t", 4)]));
        assert_eq!(out["a"].len(), 2);
        assert!(out["b"].is_empty());
        let kept = out["a"].clone();
        let members = [member("a", &["t"], &[]), member("b", &["t"], &[])];
        let mut members = members;
        members[0].owned = kept.clone();
        let out = assign("cooperative-sticky", &members, &counts(&[("t", 4)]));
        assert_eq!(out["a"], kept);
        assert_eq!(out["b"].len(), 2);
        // From scratch it simply balances.
        let members = [member("a", &["t"], &[]), member("b", &["t"], &[])];
        let out = assign("cooperative-sticky", &members, &counts(&[("t", 5)]));
        assert_eq!(out["a"].len() + out["b"].len(), 5);
        assert!(out["a"].len().abs_diff(out["b"].len()) <= 1);
    }
}
