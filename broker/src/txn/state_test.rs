use super::*;

fn value(state: TxnState, epoch: i16) -> TxnValue {
    let mut v = TxnValue::new(10, 60_000, 0);
    v.producer_epoch = epoch;
    v.state = state;
    if state != TxnState::Empty {
        v.partitions.insert("t".into(), vec![0]);
        v.start_ts = 0;
    }
    v
}

fn tp(t: &str, p: i32) -> (String, i32) {
    (t.to_string(), p)
}

#[test]
fn init_bumps_the_epoch_of_an_idle_id() {
    for s in [
        TxnState::Empty,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
    ] {
        let cur = value(s, 3);
        let InitStep::Write(next) = init(&cur, 2, 5000, None, -1, 9).unwrap() else {
            panic!("no write for {s:?}");
        };
        assert_eq!((next.producer_id, next.producer_epoch), (10, 4));
        assert_eq!(next.state, TxnState::Empty);
        assert!(next.partitions.is_empty());
        assert_eq!(
            (next.timeout_ms, next.start_ts, next.update_ts),
            (5000, -1, 9)
        );
    }
}

#[test]
fn init_takes_a_new_id_when_the_epoch_is_exhausted() {
    let cur = value(TxnState::Empty, i16::MAX - 1);
    assert!(needs_new_id(Some(&cur)));
    assert!(needs_new_id(None));
    assert!(!needs_new_id(Some(&value(TxnState::Empty, 0))));
    let InitStep::Write(next) = init(&cur, 0, 5000, None, 77, 1).unwrap() else {
        panic!()
    };
    assert_eq!((next.producer_id, next.producer_epoch), (77, 0));
}

#[test]
fn init_fences_an_ongoing_transaction_by_aborting_it_with_a_bumped_epoch() {
    let cur = value(TxnState::Ongoing, 3);
    let InitStep::FenceAndAbort(next) = init(&cur, 2, 5000, None, -1, 9).unwrap() else {
        panic!()
    };
    assert_eq!(next.state, TxnState::PrepareAbort);
    assert_eq!(next.producer_epoch, 4);
    assert_eq!(next.partitions, cur.partitions);
}

#[test]
fn init_while_ending_is_concurrent() {
    for s in [TxnState::PrepareCommit, TxnState::PrepareAbort] {
        assert_eq!(
            init(&value(s, 1), 0, 5000, None, -1, 0),
            Err(E::ConcurrentTransactions)
        );
    }
}

#[test]
fn kip_360_expected_epoch() {
    let cur = value(TxnState::Empty, 3);
    assert!(matches!(
        init(&cur, 2, 5000, Some((10, 3)), -1, 0),
        Ok(InitStep::Write(_))
    ));
    assert_eq!(
        init(&cur, 2, 5000, Some((10, 2)), -1, 0),
        Ok(InitStep::Current)
    );
    assert_eq!(
        init(&cur, 2, 5000, Some((10, 1)), -1, 0),
        Err(E::ProducerFenced)
    );
    assert_eq!(
        init(&cur, 2, 5000, Some((11, 3)), -1, 0),
        Err(E::ProducerFenced)
    );
}

#[test]
fn add_partitions_starts_and_extends_a_transaction() {
    let cur = value(TxnState::Empty, 0);
    let next = add_partitions(&cur, 10, 0, &[tp("a", 1), tp("a", 0)], 0, 50)
        .unwrap()
        .unwrap();
    assert_eq!(next.state, TxnState::Ongoing);
    assert_eq!(next.partitions["a"], vec![0, 1]);
    assert_eq!(next.start_ts, 50);
    assert_eq!(add_partitions(&next, 10, 0, &[tp("a", 1)], 0, 60), Ok(None));
    let more = add_partitions(&next, 10, 0, &[tp("b", 0)], 0, 60)
        .unwrap()
        .unwrap();
    assert_eq!(more.start_ts, 50);
    assert_eq!(more.partition_list().len(), 3);
}

#[test]
fn add_partitions_checks_the_producer_and_state() {
    let cur = value(TxnState::Ongoing, 2);
    assert_eq!(
        add_partitions(&cur, 11, 2, &[tp("a", 0)], 0, 0),
        Err(E::InvalidProducerIdMapping)
    );
    assert_eq!(
        add_partitions(&cur, 10, 1, &[tp("a", 0)], 0, 0),
        Err(E::ProducerFenced)
    );
    assert_eq!(
        add_partitions(
            &value(TxnState::PrepareCommit, 2),
            10,
            2,
            &[tp("a", 0)],
            0,
            0
        ),
        Err(E::ConcurrentTransactions)
    );
}

#[test]
fn end_prepares_then_completes() {
    let cur = value(TxnState::Ongoing, 1);
    let EndStep::Prepare(p) = end(&cur, 10, 1, true, false, -1, 7).unwrap() else {
        panic!()
    };
    assert_eq!(p.state, TxnState::PrepareCommit);
    let done = complete(&p, 8);
    assert_eq!(done.state, TxnState::CompleteCommit);
    assert!(done.partitions.is_empty());
    assert_eq!(
        end(&done, 10, 1, true, false, -1, 9),
        Ok(EndStep::AlreadyDone)
    );
    assert_eq!(
        end(&done, 10, 1, false, false, -1, 9),
        Err(E::InvalidTxnState)
    );
    let EndStep::Prepare(a) = end(&cur, 10, 1, false, false, -1, 7).unwrap() else {
        panic!()
    };
    assert_eq!(complete(&a, 8).state, TxnState::CompleteAbort);
}

#[test]
fn end_refuses_what_kafka_refuses() {
    assert_eq!(
        end(&value(TxnState::Empty, 1), 10, 1, true, false, -1, 0),
        Err(E::InvalidTxnState)
    );
    assert_eq!(
        end(
            &value(TxnState::PrepareCommit, 1),
            10,
            1,
            true,
            false,
            -1,
            0
        ),
        Err(E::ConcurrentTransactions)
    );
    assert_eq!(
        end(
            &value(TxnState::PrepareCommit, 1),
            10,
            1,
            false,
            false,
            -1,
            0
        ),
        Err(E::InvalidTxnState)
    );
    assert_eq!(
        end(&value(TxnState::Ongoing, 1), 10, 0, true, false, -1, 0),
        Err(E::ProducerFenced)
    );
}

#[test]
fn tv2_end_bumps_the_epoch_and_recognises_its_retry() {
    let cur = add_partitions(
        &value(TxnState::CompleteCommit, 4),
        10,
        4,
        &[tp("a", 0)],
        TV2,
        5,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        (cur.state, cur.client_version, cur.start_ts),
        (TxnState::Ongoing, TV2, 5)
    );
    let EndStep::Prepare(p) = end(&cur, 10, 4, true, true, -1, 7).unwrap() else {
        panic!()
    };
    assert_eq!(
        (p.state, p.producer_epoch, p.next_producer_id),
        (TxnState::PrepareCommit, 5, -1)
    );
    assert_eq!(client_ids(&p), (10, 5));
    // A retry while the markers are written waits; the bumped epoch is not a retry.
    assert_eq!(
        end(&p, 10, 4, true, true, -1, 8),
        Err(E::ConcurrentTransactions)
    );
    assert_eq!(end(&p, 10, 5, true, true, -1, 8), Err(E::ProducerFenced));
    let done = complete(&p, 9);
    assert_eq!(
        (done.producer_id, done.producer_epoch, done.prev_producer_id),
        (10, 5, 10)
    );
    assert_eq!(
        end(&done, 10, 4, true, true, -1, 9),
        Ok(EndStep::AlreadyDone)
    );
    assert_eq!(
        end(&done, 10, 4, false, true, -1, 9),
        Err(E::InvalidTxnState)
    );
    // An older epoch than the retry's is a zombie.
    assert_eq!(end(&done, 10, 3, true, true, -1, 9), Err(E::ProducerFenced));
    // The next transaction runs at the bumped epoch.
    let next = add_partitions(&done, 10, 5, &[tp("a", 0)], TV2, 10)
        .unwrap()
        .unwrap();
    assert_eq!(next.state, TxnState::Ongoing);
    assert_eq!(
        add_partitions(&done, 10, 4, &[tp("a", 0)], TV2, 10),
        Err(E::ProducerFenced)
    );
}

#[test]
fn tv2_end_at_an_exhausted_epoch_moves_to_the_next_producer_id() {
    let mut cur = value(TxnState::Ongoing, i16::MAX - 1);
    cur.client_version = TV2;
    let EndStep::Prepare(p) = end(&cur, 10, i16::MAX - 1, false, true, 77, 7).unwrap() else {
        panic!()
    };
    assert_eq!(
        (p.producer_id, p.producer_epoch, p.next_producer_id),
        (10, i16::MAX, 77)
    );
    assert_eq!(client_ids(&p), (77, 0));
    // The client's next transaction with the new id waits for the markers.
    assert_eq!(
        add_partitions(&p, 77, 0, &[tp("a", 0)], TV2, 8),
        Err(E::ConcurrentTransactions)
    );
    let done = complete(&p, 9);
    assert_eq!(
        (
            done.producer_id,
            done.producer_epoch,
            done.prev_producer_id,
            done.next_producer_id
        ),
        (77, 0, 10, -1)
    );
    assert_eq!(done.state, TxnState::CompleteAbort);
    // A retry with the old id and epoch is answered with the new ones.
    assert_eq!(
        end(&done, 10, i16::MAX - 1, false, true, -1, 9),
        Ok(EndStep::AlreadyDone)
    );
    assert_eq!(client_ids(&done), (77, 0));
    assert!(add_partitions(&done, 77, 0, &[tp("a", 0)], TV2, 10)
        .unwrap()
        .is_some());
}

#[test]
fn a_fenced_abort_of_a_tv2_transaction_accepts_no_retry_of_the_old_epoch() {
    let mut cur = value(TxnState::Ongoing, 4);
    cur.client_version = TV2;
    let fenced = abort_fenced(&cur, 5);
    assert_eq!((fenced.producer_epoch, fenced.client_version), (5, 0));
    let done = complete(&fenced, 6);
    assert_eq!((done.producer_id, done.producer_epoch), (10, 5));
    assert_eq!(
        end(&done, 10, 4, false, true, -1, 7),
        Err(E::ProducerFenced)
    );
}

#[test]
fn tv1_end_keeps_the_epoch() {
    let cur = value(TxnState::Ongoing, 4);
    let EndStep::Prepare(p) = end(&cur, 10, 4, true, false, -1, 7).unwrap() else {
        panic!()
    };
    assert_eq!((p.producer_epoch, p.client_version), (4, 0));
    assert_eq!(client_ids(&complete(&p, 8)), (10, 4));
}
