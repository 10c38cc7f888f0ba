//! KIP-848 server-side partition assignors.
//!
//! With the consumer rebalance protocol (KIP-848) the group coordinator, not a client leader,
//! computes each member's *target assignment*. Members name the assignor they want in
//! ConsumerGroupHeartbeat (`ServerAssignor`), and the broker offers those listed in
//! `group.consumer.assignors`, Kafka's default being `uniform,range`, the first being used when
//! a member names none. Gregor implements the same two, under the same names, so clients that
//! ask for one by name get what they would get from Kafka:
//!
//! - [`UniformAssignor`] (`uniform`) spreads partitions as evenly as subscriptions allow and
//!   keeps each member's current partitions where balance permits, so a rebalance moves as few
//!   partitions as possible.
//! - [`RangeAssignor`] (`range`) gives each member a contiguous range of every topic it
//!   subscribes to, with the same indices across topics, so that co-partitioned topics (joined
//!   by key) land on the same member.
//!
//! Both are pure functions of their input: the same members and topics always give the same
//! assignment, whatever the order they are listed in, so every replica of the coordinator (and
//! every replay of its log) agrees.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use uuid::Uuid;

/// What an assignor knows of one member of the group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberSpec {
    /// The member id; the key of the member's entry in the [`Assignment`].
    pub member_id: String,
    /// The static membership id, if any (not used by the assignors yet, kept for rack- and
    /// instance-aware ones).
    pub instance_id: Option<String>,
    /// The member's rack, if any (not used by the assignors yet).
    pub rack: Option<String>,
    /// The topics the member subscribes to, already resolved to ids; ids absent from the
    /// topic list are ignored.
    pub subscribed_topics: Vec<Uuid>,
    /// The member's current target assignment, which sticky assignors try to keep.
    pub current: BTreeMap<Uuid, Vec<i32>>,
}

/// What an assignor knows of one topic the group subscribes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic id, by which members subscribe and assignments name the topic.
    pub id: Uuid,
    /// The topic name (for logs and errors; assignments use the id).
    pub name: String,
    /// How many partitions the topic has; partitions are `0..partitions`.
    pub partitions: i32,
}

/// A target assignment: for each member id, the partitions it gets per topic id, sorted.
///
/// Every member given to the assignor has an entry, possibly empty; a topic appears in a
/// member's map only when the member gets at least one of its partitions.
pub type Assignment = BTreeMap<String, BTreeMap<Uuid, Vec<i32>>>;

/// A server-side assignor, looked up by the name members send in ConsumerGroupHeartbeat.
///
/// `Send + Sync` because one shared instance serves every group of the coordinator.
pub trait ServerAssignor: Send + Sync {
    /// The name members ask for (`uniform`, `range`), as in Kafka.
    fn name(&self) -> &'static str;

    /// Computes the target assignment of every partition of every subscribed topic.
    fn assign(&self, members: &[MemberSpec], topics: &[TopicSpec]) -> Assignment;
}

/// Kafka's `uniform` assignor: balanced and sticky.
///
/// Every partition of a subscribed topic goes to exactly one member subscribed to it. The
/// partition counts are as even as the subscriptions allow: with identical subscriptions they
/// differ by at most one, and otherwise no partition can be handed along a chain of
/// subscribers from a member to one holding two or more fewer. A member keeps the partitions
/// of its current assignment that it still subscribes to unless balance requires moving them,
/// and then only as many move as needed.
#[derive(Debug, Clone, Copy, Default)]
pub struct UniformAssignor;

/// Kafka's `range` assignor: per topic, contiguous ranges in member id order.
///
/// For each topic, the members subscribed to it are sorted by member id; with `p` partitions
/// and `n` such members, each gets `p / n` consecutive partitions and the first `p % n` get one
/// more. Members with the same subscriptions thus get the same partition indices of every
/// topic, which co-partitioned topics need. It does not try to be sticky.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

/// The assignor used when a member names none: Kafka's default `group.consumer.assignors` is
/// `uniform,range`, and the first is the default.
static DEFAULT_ASSIGNOR: UniformAssignor = UniformAssignor;
/// The `range` assignor instance handed out by [`assignor`].
static RANGE_ASSIGNOR: RangeAssignor = RangeAssignor;

/// Finds the assignor a member asked for: `None` gives the default (`uniform`), an unknown
/// name gives `None`, which the caller answers with `UNSUPPORTED_ASSIGNOR`.
pub fn assignor(name: Option<&str>) -> Option<&'static dyn ServerAssignor> {
    match name {
        None => Some(&DEFAULT_ASSIGNOR),
        Some(name) if name == DEFAULT_ASSIGNOR.name() => Some(&DEFAULT_ASSIGNOR),
        Some(name) if name == RANGE_ASSIGNOR.name() => Some(&RANGE_ASSIGNOR),
        Some(_) => None,
    }
}

/// The input normalised for both assignors: members sorted by id (first of duplicates kept),
/// topics sorted by id (first of duplicates kept), subscriptions as indices.
struct Problem<'a> {
    /// The members, sorted by member id.
    members: Vec<&'a MemberSpec>,
    /// Per topic index: its id and partition count (negative counts read as zero).
    topics: Vec<(Uuid, u32)>,
    /// Topic id to topic index.
    topic_index: BTreeMap<Uuid, usize>,
    /// Per topic index: the indices of its subscribers, ascending.
    subscribers: Vec<Vec<usize>>,
}

impl<'a> Problem<'a> {
    /// Normalises the assignor's input.
    fn new(members: &'a [MemberSpec], topics: &[TopicSpec]) -> Self {
        let mut members: Vec<&MemberSpec> = members.iter().collect();
        // Stable, so the first of several entries with one id is the one kept.
        members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        members.dedup_by(|later, first| later.member_id == first.member_id);

        let mut topic_list: Vec<(Uuid, u32)> = Vec::new();
        let mut seen = BTreeSet::new();
        for topic in topics {
            if seen.insert(topic.id) {
                topic_list.push((topic.id, u32::try_from(topic.partitions).unwrap_or(0)));
            }
        }
        topic_list.sort_by_key(|&(id, _)| id);
        let topic_index: BTreeMap<Uuid, usize> = topic_list
            .iter()
            .enumerate()
            .map(|(index, &(id, _))| (id, index))
            .collect();

        let mut subscribers = vec![Vec::new(); topic_list.len()];
        for (member, spec) in members.iter().enumerate() {
            let subscribed: BTreeSet<usize> = spec
                .subscribed_topics
                .iter()
                .filter_map(|id| topic_index.get(id).copied())
                .collect();
            for topic in subscribed {
                subscribers[topic].push(member);
            }
        }
        Self {
            members,
            topics: topic_list,
            topic_index,
            subscribers,
        }
    }

    /// Builds the result from per-member holdings (`held[member][topic]`, sorted sets).
    fn into_assignment(self, held: Vec<BTreeMap<usize, BTreeSet<u32>>>) -> Assignment {
        let topics = &self.topics;
        self.members
            .iter()
            .zip(held)
            .map(|(member, held)| {
                let map = held
                    .into_iter()
                    .filter(|(_, partitions)| !partitions.is_empty())
                    .map(|(topic, partitions)| {
                        let partitions = partitions
                            .into_iter()
                            .map(|p| i32::try_from(p).unwrap_or(i32::MAX))
                            .collect();
                        (topics[topic].0, partitions)
                    })
                    .collect();
                (member.member_id.clone(), map)
            })
            .collect()
    }
}

impl ServerAssignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(&self, members: &[MemberSpec], topics: &[TopicSpec]) -> Assignment {
        let problem = Problem::new(members, topics);
        let mut held: Vec<BTreeMap<usize, BTreeSet<u32>>> =
            vec![BTreeMap::new(); problem.members.len()];
        for (topic, subscribers) in problem.subscribers.iter().enumerate() {
            let Ok(n) = u32::try_from(subscribers.len()) else {
                continue;
            };
            if n == 0 {
                continue;
            }
            let partitions = problem.topics[topic].1;
            let (quota, extra) = (partitions / n, partitions % n);
            let mut start = 0;
            for (rank, &member) in (0u32..).zip(subscribers) {
                let len = quota + u32::from(rank < extra);
                held[member]
                    .entry(topic)
                    .or_default()
                    .extend(start..start + len);
                start += len;
            }
        }
        problem.into_assignment(held)
    }
}

impl ServerAssignor for UniformAssignor {
    fn name(&self) -> &'static str {
        "uniform"
    }

    fn assign(&self, members: &[MemberSpec], topics: &[TopicSpec]) -> Assignment {
        let problem = Problem::new(members, topics);
        let mut state = Uniform::new(&problem);
        state.keep_current(&problem);
        state.place_unassigned(&problem);
        state.balance(&problem);
        problem.into_assignment(state.held)
    }
}

/// The uniform assignor's working state.
struct Uniform {
    /// Per topic, per partition: the member holding it.
    owner: Vec<Vec<Option<usize>>>,
    /// Per member: the partitions it holds, per topic index.
    held: Vec<BTreeMap<usize, BTreeSet<u32>>>,
    /// Per member: how many partitions it holds.
    load: Vec<usize>,
    /// Per member: the partitions it kept from its current assignment, which moves avoid.
    kept: Vec<BTreeSet<(usize, u32)>>,
}

impl Uniform {
    /// Starts with nothing assigned.
    fn new(problem: &Problem<'_>) -> Self {
        let members = problem.members.len();
        Self {
            owner: problem
                .topics
                .iter()
                .map(|&(_, partitions)| vec![None; partitions as usize])
                .collect(),
            held: vec![BTreeMap::new(); members],
            load: vec![0; members],
            kept: vec![BTreeSet::new(); members],
        }
    }

    /// Gives `partition` of `topic` to `member`.
    fn give(&mut self, topic: usize, partition: u32, member: usize) {
        self.owner[topic][partition as usize] = Some(member);
        self.held[member]
            .entry(topic)
            .or_default()
            .insert(partition);
        self.load[member] += 1;
    }

    /// Takes `partition` of `topic` from `member`.
    fn take(&mut self, topic: usize, partition: u32, member: usize) {
        self.owner[topic][partition as usize] = None;
        if let Some(partitions) = self.held[member].get_mut(&topic) {
            partitions.remove(&partition);
            if partitions.is_empty() {
                self.held[member].remove(&topic);
            }
        }
        self.load[member] -= 1;
    }

    /// Stickiness: each member keeps the current partitions that still exist, that it still
    /// subscribes to and that no member earlier in id order already claimed.
    fn keep_current(&mut self, problem: &Problem<'_>) {
        for (member, spec) in problem.members.iter().enumerate() {
            for (topic_id, partitions) in &spec.current {
                let Some(&topic) = problem.topic_index.get(topic_id) else {
                    continue;
                };
                if problem.subscribers[topic].binary_search(&member).is_err() {
                    continue;
                }
                for &partition in partitions {
                    let Ok(partition) = u32::try_from(partition) else {
                        continue;
                    };
                    if partition < problem.topics[topic].1
                        && self.owner[topic][partition as usize].is_none()
                    {
                        self.give(topic, partition, member);
                        self.kept[member].insert((topic, partition));
                    }
                }
            }
        }
    }

    /// Gives every unowned partition to its least loaded subscriber (lowest index on ties),
    /// topics with the fewest subscribers first since they have the least choice.
    fn place_unassigned(&mut self, problem: &Problem<'_>) {
        let mut order: Vec<usize> = (0..problem.topics.len()).collect();
        order.sort_by_key(|&topic| (problem.subscribers[topic].len(), topic));
        for topic in order {
            let subscribers = &problem.subscribers[topic];
            if subscribers.is_empty() {
                continue;
            }
            for partition in 0..problem.topics[topic].1 {
                if self.owner[topic][partition as usize].is_some() {
                    continue;
                }
                let target = subscribers
                    .iter()
                    .copied()
                    .min_by_key(|&member| (self.load[member], member));
                if let Some(target) = target {
                    self.give(topic, partition, target);
                }
            }
        }
    }

    /// Moves partitions until no member can pass one, directly or along a chain of members
    /// each handing one partition to a subscriber of its topic, to a member holding at least
    /// two fewer. Such an assignment is balanced as well as the subscriptions allow (it
    /// minimises the largest count and the sum of squared counts), and each move lowers that
    /// sum, so the loop ends.
    fn balance(&mut self, problem: &Problem<'_>) {
        loop {
            let (Some(&max), Some(&min)) = (self.load.iter().max(), self.load.iter().min()) else {
                return;
            };
            if max <= min + 1 {
                return;
            }
            let mut sources: Vec<usize> = (0..self.load.len()).collect();
            sources.sort_by_key(|&member| (std::cmp::Reverse(self.load[member]), member));
            let path = sources
                .into_iter()
                .take_while(|&source| self.load[source] >= min + 2)
                .find_map(|source| self.find_path(problem, source));
            let Some(path) = path else {
                return;
            };
            self.apply(path);
        }
    }

    /// Searches, breadth first, the chains along which `source` can shed one partition to a
    /// member holding two fewer or less; returns the hops `(from, to, topic)` of the chain to
    /// the least loaded such member (nearest, then lowest index, on ties).
    fn find_path(
        &self,
        problem: &Problem<'_>,
        source: usize,
    ) -> Option<Vec<(usize, usize, usize)>> {
        let members = self.load.len();
        // For each member reached: the member and topic it was reached from, and its depth.
        let mut parent: Vec<Option<(usize, usize)>> = vec![None; members];
        let mut depth = vec![usize::MAX; members];
        let mut topic_seen = vec![false; problem.topics.len()];
        let mut queue = VecDeque::from([source]);
        depth[source] = 0;
        let mut best: Option<(usize, usize, usize)> = None; // (load, depth, member)
        while let Some(from) = queue.pop_front() {
            for (&topic, partitions) in &self.held[from] {
                if partitions.is_empty() || topic_seen[topic] {
                    continue;
                }
                topic_seen[topic] = true;
                for &to in &problem.subscribers[topic] {
                    if depth[to] != usize::MAX {
                        continue;
                    }
                    depth[to] = depth[from] + 1;
                    parent[to] = Some((from, topic));
                    queue.push_back(to);
                    if self.load[to] + 2 <= self.load[source] {
                        let candidate = (self.load[to], depth[to], to);
                        if best.is_none_or(|best| candidate < best) {
                            best = Some(candidate);
                        }
                    }
                }
            }
        }
        let (_, _, target) = best?;
        let mut hops = Vec::new();
        let mut at = target;
        while let Some((from, topic)) = parent[at] {
            hops.push((from, at, topic));
            at = from;
        }
        Some(hops)
    }

    /// Moves one partition along each hop. Each hop's topic differs from the one its giver
    /// was reached by, so a member never passes on the partition it just received.
    fn apply(&mut self, hops: Vec<(usize, usize, usize)>) {
        for (from, to, topic) in hops {
            let Some(partitions) = self.held[from].get(&topic) else {
                continue;
            };
            // Prefer a partition the giver did not have before this assignment (moving it
            // costs no revocation), then the highest numbered one.
            let partition = partitions
                .iter()
                .rev()
                .copied()
                .find(|&p| !self.kept[from].contains(&(topic, p)))
                .or_else(|| partitions.iter().next_back().copied());
            if let Some(partition) = partition {
                self.take(topic, partition, from);
                self.give(topic, partition, to);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u128, partitions: i32) -> TopicSpec {
        TopicSpec {
            id: Uuid::from_u128(n),
            name: format!("t{n}"),
            partitions,
        }
    }

    fn member(id: &str, topics: &[u128]) -> MemberSpec {
        MemberSpec {
            member_id: id.into(),
            subscribed_topics: topics.iter().map(|&n| Uuid::from_u128(n)).collect(),
            ..MemberSpec::default()
        }
    }

    fn count(assignment: &Assignment, member: &str) -> usize {
        assignment[member].values().map(Vec::len).sum()
    }

    /// Checks that every partition of every topic with a subscriber is assigned exactly once,
    /// to a subscriber, that nothing else is assigned, and that partition lists are sorted.
    fn check_complete(members: &[MemberSpec], topics: &[TopicSpec], assignment: &Assignment) {
        for m in members {
            assert!(
                assignment.contains_key(&m.member_id),
                "{} missing",
                m.member_id
            );
        }
        let mut owners: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
        for (member_id, topics_of) in assignment {
            let spec = members.iter().find(|m| &m.member_id == member_id).unwrap();
            for (topic_id, partitions) in topics_of {
                assert!(!partitions.is_empty());
                assert!(partitions.windows(2).all(|w| w[0] < w[1]), "{partitions:?}");
                assert!(spec.subscribed_topics.contains(topic_id));
                for &p in partitions {
                    assert!(owners.insert((*topic_id, p), member_id).is_none());
                }
            }
        }
        for t in topics {
            let subscribed = members.iter().any(|m| m.subscribed_topics.contains(&t.id));
            for p in 0..t.partitions {
                assert_eq!(
                    owners.contains_key(&(t.id, p)),
                    subscribed,
                    "{} {p}",
                    t.name
                );
            }
        }
        let total: usize = topics
            .iter()
            .filter(|t| members.iter().any(|m| m.subscribed_topics.contains(&t.id)))
            .map(|t| t.partitions.max(0) as usize)
            .sum();
        assert_eq!(owners.len(), total);
    }

    /// A small deterministic generator, so randomised tests need no extra dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_case(rng: &mut Rng, identical: bool) -> (Vec<MemberSpec>, Vec<TopicSpec>) {
        let topics: Vec<TopicSpec> = (0..1 + rng.below(4))
            .map(|n| topic(u128::from(n) + 1, rng.below(13) as i32))
            .collect();
        let all: Vec<u128> = (1..=topics.len() as u128).collect();
        let members = (0..1 + rng.below(8))
            .map(|n| {
                let subscribed: Vec<u128> = if identical {
                    all.clone()
                } else {
                    // Ids past the topic list name topics that do not exist.
                    (1..=5u128).filter(|_| rng.below(2) == 0).collect()
                };
                let mut spec = member(&format!("m{n}"), &subscribed);
                // Random current assignment, possibly stale or overlapping other members.
                for _ in 0..rng.below(6) {
                    let t = Uuid::from_u128(u128::from(1 + rng.below(5)));
                    let p = rng.below(15) as i32 - 1;
                    spec.current.entry(t).or_default().push(p);
                }
                spec
            })
            .collect();
        (members, topics)
    }

    #[test]
    fn uniform_is_complete_and_balanced_with_identical_subscriptions() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for _ in 0..500 {
            let (members, topics) = random_case(&mut rng, true);
            let assignment = UniformAssignor.assign(&members, &topics);
            check_complete(&members, &topics, &assignment);
            let counts: Vec<usize> = members
                .iter()
                .map(|m| count(&assignment, &m.member_id))
                .collect();
            let (max, min) = (counts.iter().max().unwrap(), counts.iter().min().unwrap());
            assert!(max - min <= 1, "{counts:?}");
        }
    }

    /// The least sum of squared counts over every valid assignment, by brute force.
    fn best_sum_of_squares(members: &[MemberSpec], topics: &[TopicSpec]) -> usize {
        let mut choices: Vec<Vec<usize>> = Vec::new();
        for t in topics {
            let subs: Vec<usize> = (0..members.len())
                .filter(|&m| members[m].subscribed_topics.contains(&t.id))
                .collect();
            if !subs.is_empty() {
                for _ in 0..t.partitions {
                    choices.push(subs.clone());
                }
            }
        }
        fn search(choices: &[Vec<usize>], loads: &mut Vec<usize>, best: &mut usize) {
            match choices.split_first() {
                None => *best = (*best).min(loads.iter().map(|l| l * l).sum()),
                Some((first, rest)) => {
                    for &m in first {
                        loads[m] += 1;
                        search(rest, loads, best);
                        loads[m] -= 1;
                    }
                }
            }
        }
        let mut best = usize::MAX;
        search(&choices, &mut vec![0; members.len()], &mut best);
        best
    }

    #[test]
    fn uniform_is_optimally_balanced_with_mixed_subscriptions() {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        let mut checked = 0;
        while checked < 300 {
            let (members, mut topics) = random_case(&mut rng, false);
            for t in &mut topics {
                t.partitions %= 4;
            }
            let assignment = UniformAssignor.assign(&members, &topics);
            check_complete(&members, &topics, &assignment);
            let partitions: i32 = topics.iter().map(|t| t.partitions).sum();
            if partitions > 8 || members.len() > 4 {
                continue; // too big to brute force
            }
            let ours: usize = members
                .iter()
                .map(|m| count(&assignment, &m.member_id).pow(2))
                .sum();
            assert_eq!(ours, best_sum_of_squares(&members, &topics), "{members:?}");
            checked += 1;
        }
    }

    #[test]
    fn uniform_balances_through_chains() {
        // a only takes t1, c only t2, b takes both: a's surplus must go to c through b.
        let topics = [topic(1, 6), topic(2, 0)];
        let mut a = member("a", &[1]);
        a.current.insert(Uuid::from_u128(1), vec![0, 1, 2, 3]);
        let mut b = member("b", &[1, 2]);
        b.current.insert(Uuid::from_u128(1), vec![4, 5]);
        let c = member("c", &[2]);
        let assignment = UniformAssignor.assign(&[a.clone(), b.clone(), c.clone()], &topics);
        // t2 has no partitions, so c can get nothing: 3/3/0 is the best.
        assert_eq!(
            [
                count(&assignment, "a"),
                count(&assignment, "b"),
                count(&assignment, "c")
            ],
            [3, 3, 0]
        );
        let topics = [topic(1, 6), topic(2, 3)];
        b.current.insert(Uuid::from_u128(2), vec![0, 1, 2]);
        let assignment = UniformAssignor.assign(&[a, b, c], &topics);
        assert_eq!(
            [
                count(&assignment, "a"),
                count(&assignment, "b"),
                count(&assignment, "c")
            ],
            [3, 3, 3]
        );
    }

    fn moved(before: &Assignment, after: &Assignment) -> usize {
        let owner = |a: &Assignment| -> BTreeMap<(Uuid, i32), String> {
            a.iter()
                .flat_map(|(m, topics)| {
                    topics
                        .iter()
                        .flat_map(move |(t, ps)| ps.iter().map(move |&p| ((*t, p), m.clone())))
                })
                .collect()
        };
        let (b, a) = (owner(before), owner(after));
        a.iter()
            .filter(|(k, m)| b.get(k).is_some_and(|old| old != *m))
            .count()
    }

    fn with_current(spec: &MemberSpec, assignment: &Assignment) -> MemberSpec {
        MemberSpec {
            current: assignment.get(&spec.member_id).cloned().unwrap_or_default(),
            ..spec.clone()
        }
    }

    #[test]
    fn uniform_is_sticky_when_a_member_joins() {
        let topics = [topic(1, 7), topic(2, 5)];
        let a = member("a", &[1, 2]);
        let b = member("b", &[1, 2]);
        let first = UniformAssignor.assign(&[a.clone(), b.clone()], &topics);
        assert_eq!((count(&first, "a"), count(&first, "b")), (6, 6));
        let members = [
            with_current(&a, &first),
            with_current(&b, &first),
            member("c", &[1, 2]),
        ];
        let second = UniformAssignor.assign(&members, &topics);
        check_complete(&members, &topics, &second);
        // 12 over 3 is 4 each: a and b each hand over exactly 2, nothing else moves.
        assert_eq!(moved(&first, &second), 4);
        for m in ["a", "b"] {
            assert_eq!(count(&second, m), 4);
            for (t, ps) in &second[m] {
                assert!(ps.iter().all(|p| first[m][t].contains(p)));
            }
        }
        assert_eq!(count(&second, "c"), 4);
    }

    #[test]
    fn uniform_is_sticky_when_a_member_leaves() {
        let topics = [topic(1, 9)];
        let specs = [member("a", &[1]), member("b", &[1]), member("c", &[1])];
        let first = UniformAssignor.assign(&specs, &topics);
        let survivors = [
            with_current(&specs[0], &first),
            with_current(&specs[2], &first),
        ];
        let second = UniformAssignor.assign(&survivors, &topics);
        check_complete(&survivors, &topics, &second);
        // Only b's three partitions change hands.
        assert_eq!(moved(&first, &second), 3);
        for m in ["a", "c"] {
            let t = Uuid::from_u128(1);
            assert!(first[m][&t].iter().all(|p| second[m][&t].contains(p)));
        }
        assert_eq!(count(&second, "a") + count(&second, "c"), 9);
        assert!(count(&second, "a").abs_diff(count(&second, "c")) <= 1);
    }

    #[test]
    fn uniform_ignores_unknown_topics_and_keeps_every_member() {
        let topics = [topic(1, 2)];
        let members = [member("a", &[1, 42]), member("b", &[42]), member("c", &[])];
        let assignment = UniformAssignor.assign(&members, &topics);
        check_complete(&members, &topics, &assignment);
        assert_eq!(assignment["a"][&Uuid::from_u128(1)], vec![0, 1]);
        assert!(assignment["b"].is_empty());
        assert!(assignment["c"].is_empty());
        assert!(UniformAssignor.assign(&[], &topics).is_empty());
    }

    #[test]
    fn assignors_are_deterministic_and_order_independent() {
        let mut rng = Rng(42);
        for _ in 0..100 {
            let (members, topics) = random_case(&mut rng, false);
            let mut reversed_members = members.clone();
            reversed_members.reverse();
            let mut reversed_topics = topics.clone();
            reversed_topics.reverse();
            for assignor in [&UniformAssignor as &dyn ServerAssignor, &RangeAssignor] {
                let once = assignor.assign(&members, &topics);
                assert_eq!(once, assignor.assign(&members, &topics));
                assert_eq!(once, assignor.assign(&reversed_members, &reversed_topics));
            }
        }
    }

    #[test]
    fn range_lays_out_contiguous_ranges() {
        let members = [member("c", &[1]), member("a", &[1]), member("b", &[1])];
        let six = RangeAssignor.assign(&members, &[topic(1, 6)]);
        let t = Uuid::from_u128(1);
        assert_eq!(six["a"][&t], vec![0, 1]);
        assert_eq!(six["b"][&t], vec![2, 3]);
        assert_eq!(six["c"][&t], vec![4, 5]);
        let seven = RangeAssignor.assign(&members, &[topic(1, 7)]);
        assert_eq!(seven["a"][&t], vec![0, 1, 2]);
        assert_eq!(seven["b"][&t], vec![3, 4]);
        assert_eq!(seven["c"][&t], vec![5, 6]);
        let two = RangeAssignor.assign(&members, &[topic(1, 2)]);
        assert_eq!(two["a"][&t], vec![0]);
        assert_eq!(two["b"][&t], vec![1]);
        assert!(two["c"].is_empty());
    }

    #[test]
    fn range_co_partitions_and_handles_mixed_subscriptions() {
        let members = [
            member("a", &[1, 2]),
            member("b", &[1, 2]),
            member("c", &[2, 7]),
        ];
        let topics = [topic(1, 4), topic(2, 4)];
        let assignment = RangeAssignor.assign(&members, &topics);
        check_complete(&members, &topics, &assignment);
        let (t1, t2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(assignment["a"][&t1], vec![0, 1]);
        assert_eq!(assignment["b"][&t1], vec![2, 3]);
        assert_eq!(assignment["a"][&t2], vec![0, 1]);
        assert_eq!(assignment["b"][&t2], vec![2]);
        assert_eq!(assignment["c"][&t2], vec![3]);
        let mut rng = Rng(7);
        for _ in 0..200 {
            let (members, topics) = random_case(&mut rng, false);
            check_complete(&members, &topics, &RangeAssignor.assign(&members, &topics));
        }
    }

    #[test]
    fn assignors_are_found_by_name() {
        assert_eq!(assignor(None).map(|a| a.name()), Some("uniform"));
        assert_eq!(assignor(Some("uniform")).map(|a| a.name()), Some("uniform"));
        assert_eq!(assignor(Some("range")).map(|a| a.name()), Some("range"));
        assert!(assignor(Some("sticky")).is_none());
        assert!(assignor(Some("")).is_none());
    }
}
