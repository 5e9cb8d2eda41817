use bytes::Bytes;
use shale_raft::kraft::{Entry, LeaderChange, Record};
use shale_raft::records::TopicRecord;
use uuid::Uuid;

use super::*;

fn data(epoch: i32, record: MetadataRecord) -> Entry {
    Entry {
        epoch,
        record: Record::Data(record.encode()),
    }
}

fn leader_change(epoch: i32, leader_id: i32) -> Entry {
    Entry {
        epoch,
        record: Record::LeaderChange(LeaderChange {
            leader_id,
            voters: vec![1, 2, 3],
            granting_voters: vec![leader_id],
        }),
    }
}

fn topic(name: &str) -> MetadataRecord {
    MetadataRecord::Topic(TopicRecord {
        name: name.into(),
        topic_id: Uuid::from_u128(name.len() as u128 + 1),
    })
}

#[test]
fn applies_data_entries_and_leader_changes_advance_the_offset() {
    let (mut machine, applied) = MetadataApplier::new("c");
    machine.apply(
        0,
        &[
            leader_change(1, 1),
            data(1, topic("a")),
            data(1, topic("bb")),
        ],
    );
    let image = applied.image();
    assert_eq!((image.last_offset, image.epoch), (2, 1));
    assert!(image.topic("a").is_some() && image.topic("bb").is_some());
    machine.apply(3, &[leader_change(2, 2)]);
    let image = applied.image();
    assert_eq!((image.last_offset, image.epoch), (3, 2));
    assert_eq!(applied.applied_offset(), 3);
    let state = applied.lock();
    assert_eq!(state.epoch_of(2), Some(1));
    assert_eq!(state.epoch_of(3), Some(2));
    assert_eq!(state.epoch_of(-1), None);
}

#[test]
fn a_transaction_is_published_only_at_its_end() {
    let (mut machine, applied) = MetadataApplier::new("c");
    machine.apply(
        0,
        &[
            data(1, MetadataRecord::BeginTransaction { name: None }),
            data(1, topic("a")),
        ],
    );
    assert!(applied.image().topic("a").is_none());
    assert!(applied.lock().loader.in_transaction());
    machine.apply(2, &[data(1, MetadataRecord::EndTransaction)]);
    let image = applied.image();
    assert!(image.topic("a").is_some());
    assert_eq!(image.last_offset, 2);
}

#[test]
fn an_undecodable_entry_is_a_fault() {
    let (mut machine, applied) = MetadataApplier::new("c");
    let bad = Entry {
        epoch: 1,
        record: Record::Data(Bytes::from_static(&[0xff, 0xff, 0xff])),
    };
    machine.apply(0, &[bad, data(1, topic("a"))]);
    let state = applied.lock();
    assert!(state.fault.is_some());
    assert_eq!(state.offset, 1);
}
