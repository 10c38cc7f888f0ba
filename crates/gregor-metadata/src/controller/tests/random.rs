//! Invariants over a random walk of operations.

use super::*;

// ---------------------------------------------------------------- random operations

/// xorshift64*: a small deterministic generator for the random walk below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn invariants_hold_over_random_operations() {
    let (mut leader_changes, mut fences) = (0, 0);
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let brokers = 5;
        let mut c = Cluster::with_config(
            brokers,
            ControllerConfig {
                unclean_leader_election_enable: seed % 3 == 0,
                auto_leader_rebalance_enable: true,
                leader_imbalance_check_interval_ms: 5_000,
                ..config()
            },
        );
        let mut alive: BTreeSet<BrokerId> = (1..=brokers).collect();
        let mut topics = 0;
        for _ in 0..300 {
            let broker = rng.below(brokers as u64) as i32 + 1;
            match rng.below(10) {
                0 => {
                    let rf = rng.below(3) as i16 + 1;
                    let partitions = rng.below(4) as i32 + 1;
                    if c.create_topic(new_topic(&format!("t{topics}"), partitions, rf))
                        .is_ok()
                    {
                        topics += 1;
                    }
                }
                1 => {
                    // Crash (heartbeats stop) or return.
                    if !alive.remove(&broker) {
                        alive.insert(broker);
                        if rng.below(2) == 0 {
                            c.register(broker);
                        }
                    }
                }
                2 => {
                    if alive.contains(&broker) {
                        let _ = c.heartbeat_full(broker, c.image.offset, false, true);
                        alive.remove(&broker);
                    }
                }
                3 | 4 => {
                    // A leader changes its ISR to a random subset containing itself.
                    let all = c
                        .image
                        .topics
                        .values()
                        .flat_map(|t| {
                            t.partitions
                                .iter()
                                .map(|(i, p)| (t.name.clone(), *i, p.clone()))
                        })
                        .collect::<Vec<_>>();
                    if all.is_empty() {
                        continue;
                    }
                    let (name, index, p) = all[rng.below(all.len() as u64) as usize].clone();
                    if p.leader == NO_LEADER {
                        continue;
                    }
                    let mut isr: Vec<BrokerId> = p
                        .replicas
                        .iter()
                        .copied()
                        .filter(|r| *r == p.leader || rng.below(2) == 0)
                        .collect();
                    isr.sort_unstable();
                    let _ = c.alter_isr(p.leader, &name, index, isr);
                }
                5 => {
                    let kind = if rng.below(2) == 0 {
                        ElectionType::Preferred
                    } else {
                        ElectionType::Unclean
                    };
                    c.elect(kind, None);
                }
                6 => {
                    if topics > 0 {
                        let name = format!("t{}", rng.below(topics));
                        let target: Vec<BrokerId> =
                            (1..=brokers).filter(|_| rng.below(2) == 0).collect();
                        let target = (!target.is_empty()).then_some(target);
                        let _ = c.reassign(&name, 0, target);
                    }
                }
                7 => {
                    if topics > 0 && rng.below(4) == 0 {
                        let name = format!("t{}", rng.below(topics));
                        c.request(ControllerRequest::DeleteTopics { names: vec![name] });
                    }
                }
                _ => {
                    let ms = rng.below(4_000) as i64;
                    let alive: Vec<BrokerId> = alive.iter().copied().collect();
                    c.advance(ms.max(1), &alive);
                }
            }
            // Fenced brokers are never in an ISR of more than one member.
            for topic in c.image.topics.values() {
                for p in topic.partitions.values() {
                    if p.isr.len() > 1 {
                        assert!(
                            p.isr.iter().all(|r| !c.image.brokers[r].fenced),
                            "seed {seed}: fenced member in {p:?}"
                        );
                    }
                }
            }
        }
        leader_changes += c.leader_changes;
        fences += c.fences;
    }
    // The walk did exercise failover.
    assert!(
        leader_changes > 100 && fences > 50,
        "{leader_changes} {fences}"
    );
}
