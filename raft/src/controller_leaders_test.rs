use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use super::*;
use crate::image::BrokerRegistration;

const TOPIC: Uuid = Uuid::from_u128(7);

fn broker(id: i32, fenced: bool) -> BrokerRegistration {
    BrokerRegistration {
        id,
        epoch: 10 + i64::from(id),
        incarnation_id: Uuid::from_u128(id as u128),
        endpoints: Vec::new(),
        rack: None,
        fenced,
        in_controlled_shutdown: false,
    }
}

fn partition(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionImage {
    PartitionImage {
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        leader,
        leader_epoch: 3,
        partition_epoch: 5,
        ..Default::default()
    }
}

/// Brokers 1–3 (fenced as given) and topic "t" with the given partitions.
fn image(fenced: &[i32], partitions: Vec<PartitionImage>) -> MetadataImage {
    let mut img = MetadataImage::empty("c");
    for id in 1..=3 {
        img.brokers.insert(id, broker(id, fenced.contains(&id)));
    }
    let topic = TopicImage {
        name: "t".into(),
        id: TOPIC,
        partitions: partitions
            .into_iter()
            .enumerate()
            .map(|(i, p)| (i as i32, p))
            .collect(),
        configs: BTreeMap::new(),
    };
    img.topic_names_by_id.insert(TOPIC, "t".into());
    img.topics.insert("t".into(), Arc::new(topic));
    img
}

/// (partition, new leader or NO_LEADER_CHANGE, new ISR) of each change record.
fn changes(records: &[MetadataRecord]) -> Vec<(i32, i32, Option<Vec<i32>>)> {
    records
        .iter()
        .map(|r| match r {
            MetadataRecord::PartitionChange(c) => {
                assert_eq!(c.topic_id, TOPIC);
                (c.partition_id, c.leader, c.isr.clone())
            }
            other => panic!("unexpected record {other:?}"),
        })
        .collect()
}

#[test]
fn leadership_moves_to_the_first_active_isr_replica() {
    let img = image(
        &[],
        vec![
            partition(&[1, 2, 3], &[1, 2, 3], 1),
            partition(&[2, 3, 1], &[2, 1], 2),
            partition(&[3, 2], &[3, 2], 3),
        ],
    );
    let got = changes(&move_leadership_away(&img, 1));
    assert_eq!(
        got,
        vec![
            (0, 2, Some(vec![2, 3])),
            (1, NO_LEADER_CHANGE, Some(vec![2])),
        ]
    );
}

#[test]
fn fenced_or_shutting_down_replicas_are_skipped_and_the_last_isr_member_stays() {
    let mut img = image(
        &[2],
        vec![
            partition(&[1, 2, 3], &[1, 2, 3], 1),
            partition(&[1], &[1], 1),
        ],
    );
    let b3 = img.brokers.get_mut(&3).unwrap();
    b3.in_controlled_shutdown = true;
    let got = changes(&move_leadership_away(&img, 1));
    assert_eq!(got, vec![(0, -1, Some(vec![2, 3])), (1, -1, None)]);
}

#[test]
fn an_unfenced_isr_member_leads_leaderless_partitions_again() {
    let img = image(
        &[1],
        vec![
            partition(&[1], &[1], -1),
            partition(&[1, 2], &[2], -1),
            partition(&[2], &[2], 2),
        ],
    );
    assert_eq!(changes(&elect_leaderless(&img, 1)), vec![(0, 1, None)]);
}

#[test]
fn unclean_election_takes_any_replica_only_when_enabled() {
    let mut img = image(&[1, 2], vec![partition(&[1, 2], &[2], -1)]);
    assert!(elect_leaderless(&img, 1).is_empty());
    let t = Arc::make_mut(img.topics.get_mut("t").unwrap());
    t.configs
        .insert(UNCLEAN_LEADER_ELECTION.into(), "true".into());
    assert_eq!(
        changes(&elect_leaderless(&img, 1)),
        vec![(0, 1, Some(vec![1]))]
    );
    // The cluster-wide default applies to topics without an override.
    let t = Arc::make_mut(img.topics.get_mut("t").unwrap());
    t.configs.clear();
    img.broker_configs
        .entry(String::new())
        .or_default()
        .insert(UNCLEAN_LEADER_ELECTION.into(), "true".into());
    assert_eq!(changes(&elect_leaderless(&img, 1)).len(), 1);
    // An ISR member that can still lead wins over unclean election.
    img.brokers.get_mut(&2).unwrap().fenced = false;
    assert!(elect_leaderless(&img, 1).is_empty());
}

#[test]
fn preferred_election_moves_leadership_to_the_first_replica_when_it_can_lead() {
    let img = image(
        &[3],
        vec![
            partition(&[1, 2], &[1, 2], 2), // preferred 1 is in the ISR and live
            partition(&[1, 2], &[1, 2], 1), // already led by it
            partition(&[1, 2], &[2], 2),    // preferred out of the ISR
            partition(&[3, 2], &[3, 2], 2), // preferred fenced
        ],
    );
    let t = img.topic("t").unwrap();
    let kind = ElectionType::Preferred;
    let c = elect(&img, t, 0, kind).unwrap();
    assert_eq!((c.leader, c.isr), (1, None));
    assert_eq!(elect(&img, t, 1, kind), Err(ElectionError::NotNeeded));
    assert_eq!(
        elect(&img, t, 2, kind),
        Err(ElectionError::PreferredNotAvailable)
    );
    assert_eq!(
        elect(&img, t, 3, kind),
        Err(ElectionError::PreferredNotAvailable)
    );
    assert_eq!(
        elect(&img, t, 9, kind),
        Err(ElectionError::UnknownPartition)
    );
}

#[test]
fn unclean_election_prefers_the_isr_then_any_live_replica() {
    let img = image(
        &[1],
        vec![
            partition(&[1, 2, 3], &[1, 3], -1), // live ISR member 3
            partition(&[1, 2], &[1], -1),       // ISR gone: replica 2 alone
            partition(&[1], &[1], -1),          // nobody
            partition(&[2], &[2], 2),           // has a leader
        ],
    );
    let t = img.topic("t").unwrap();
    let kind = ElectionType::Unclean;
    let c = elect(&img, t, 0, kind).unwrap();
    assert_eq!((c.leader, c.isr), (3, None));
    let c = elect(&img, t, 1, kind).unwrap();
    assert_eq!((c.leader, c.isr), (2, Some(vec![2])));
    assert_eq!(
        elect(&img, t, 2, kind),
        Err(ElectionError::NoEligibleLeader)
    );
    assert_eq!(elect(&img, t, 3, kind), Err(ElectionError::NotNeeded));
}
