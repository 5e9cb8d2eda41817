use super::state::{TxnState, TxnValue};
use super::*;

fn core() -> Transactions {
    let mut c = Transactions::new(TxnConfig {
        partitions: 4,
        ..TxnConfig::default()
    });
    for p in 0..4 {
        c.own(p, 7);
    }
    c
}

fn v(epoch: i16) -> TxnValue {
    let mut v = TxnValue::new(5, 1000, 0);
    v.producer_epoch = epoch;
    v
}

#[test]
fn one_write_in_flight_per_id() {
    let mut c = core();
    let t = c.begin("a", Some(v(0))).unwrap();
    assert_eq!(t.coordinator_epoch, 7);
    assert_eq!(c.begin("a", Some(v(1))), Err(E::ConcurrentTransactions));
    c.finish(&t, Ok(())).unwrap();
    assert_eq!(c.get("a").unwrap().value, v(0));
    let t2 = c.begin("a", Some(v(1))).unwrap();
    c.finish(&t2, Ok(())).unwrap();
    let e = c.get("a").unwrap();
    assert_eq!(
        (e.value.producer_epoch, e.last_epoch, e.pending),
        (1, 0, false)
    );
}

#[test]
fn a_failed_first_write_forgets_the_id() {
    let mut c = core();
    let t = c.begin("a", Some(v(0))).unwrap();
    assert_eq!(
        c.finish(&t, Err(E::NotEnoughReplicas)),
        Err(E::NotEnoughReplicas)
    );
    assert!(c.get("a").is_none());
}

#[test]
fn a_write_that_outlives_its_coordinator_epoch_is_not_applied() {
    let mut c = core();
    let t = c.begin("a", Some(v(0))).unwrap();
    let p = c.partition_for("a");
    c.unload(p);
    c.own(p, 8);
    assert_eq!(c.finish(&t, Ok(())), Err(E::NotCoordinator));
}

#[test]
fn locate_reports_loading_and_foreign_partitions() {
    let mut c = Transactions::new(TxnConfig {
        partitions: 2,
        ..TxnConfig::default()
    });
    let p = c.partition_for("a");
    assert_eq!(c.locate("a"), Err(E::NotCoordinator));
    c.start_loading(p);
    assert_eq!(c.locate("a"), Err(E::CoordinatorLoadInProgress));
    c.own(p, 3);
    assert_eq!(c.locate("a"), Ok((p, 3)));
}

#[test]
fn own_returns_prepared_transactions_to_complete() {
    let mut c = Transactions::new(TxnConfig {
        partitions: 1,
        ..TxnConfig::default()
    });
    let mut prepared = v(2);
    prepared.state = TxnState::PrepareCommit;
    prepared.partitions.insert("t".into(), vec![0]);
    c.start_loading(0);
    c.replay("x".into(), Some(prepared.clone()));
    c.replay("y".into(), Some(v(0)));
    c.replay("z".into(), Some(v(0)));
    c.replay("z".into(), None);
    let open = c.own(0, 4);
    assert_eq!(open, vec![("x".to_string(), prepared)]);
    assert!(c.get("z").is_none());
    assert_eq!(c.get("y").unwrap().value, v(0));
}

#[test]
fn tombstone_write_removes_the_id() {
    let mut c = core();
    let t = c.begin("a", Some(v(0))).unwrap();
    c.finish(&t, Ok(())).unwrap();
    let t = c.begin("a", None).unwrap();
    c.finish(&t, Ok(())).unwrap();
    assert!(c.get("a").is_none());
}
