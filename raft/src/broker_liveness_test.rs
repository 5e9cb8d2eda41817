//! Tests of the broker liveness table: Kafka's heartbeat state table, session expiry and
//! controlled shutdown.

use super::*;

const SESSION: u64 = 9_000;

fn hb(broker_id: i32, epoch: i64, offset: i64) -> Heartbeat {
    Heartbeat {
        broker_id,
        broker_epoch: epoch,
        current_metadata_offset: offset,
        want_fence: false,
        want_shutdown: false,
    }
}

fn next(l: &mut BrokerLiveness, h: Heartbeat, leads: bool, now: u64) -> BrokerState {
    l.heartbeat(&h, leads, now).unwrap().next
}

#[test]
fn a_fenced_broker_is_unfenced_once_caught_up_to_its_registration() {
    let mut l = BrokerLiveness::new(SESSION);
    l.registered(1, 40, true, 0);
    let behind = l.heartbeat(&hb(1, 40, 39), false, 100).unwrap();
    assert_eq!(
        (behind.next, behind.is_caught_up),
        (BrokerState::Fenced, false)
    );
    let wants_fence = Heartbeat {
        want_fence: true,
        ..hb(1, 40, 50)
    };
    assert_eq!(next(&mut l, wants_fence, false, 200), BrokerState::Fenced);
    let caught_up = l.heartbeat(&hb(1, 40, 40), false, 300).unwrap();
    assert_eq!(
        (caught_up.current, caught_up.next, caught_up.is_caught_up),
        (BrokerState::Fenced, BrokerState::Unfenced, true)
    );
    // Nothing changes until the unfence record is committed and reported.
    assert_eq!(l.state(1), Some(BrokerState::Fenced));
    l.unfenced(1);
    assert_eq!(
        next(&mut l, hb(1, 40, 41), false, 400),
        BrokerState::Unfenced
    );
}

#[test]
fn unknown_brokers_and_other_incarnations_are_refused() {
    let mut l = BrokerLiveness::new(SESSION);
    assert_eq!(
        l.heartbeat(&hb(7, 1, 1), false, 0),
        Err(HeartbeatError::NotRegistered(7))
    );
    l.registered(7, 10, true, 0);
    l.registered(7, 25, true, 5); // a new incarnation registers again
    let stale = l.heartbeat(&hb(7, 10, 30), false, 10);
    assert_eq!(
        stale,
        Err(HeartbeatError::StaleBrokerEpoch {
            broker_id: 7,
            sent: 10,
            registered: 25
        })
    );
}

#[test]
fn shutdown_requests_follow_kafkas_table() {
    let mut l = BrokerLiveness::new(SESSION);
    l.registered(1, 5, true, 0);
    let shut = Heartbeat {
        want_shutdown: true,
        ..hb(1, 5, 0)
    };
    assert_eq!(
        next(&mut l, shut, true, 1),
        BrokerState::ShutdownNow,
        "fenced"
    );
    l.unfenced(1);
    assert_eq!(
        next(&mut l, shut, false, 2),
        BrokerState::ShutdownNow,
        "leads nothing"
    );
    assert_eq!(next(&mut l, shut, true, 3), BrokerState::ControlledShutdown);
    let fence_and_shut = Heartbeat {
        want_fence: true,
        ..shut
    };
    assert_eq!(
        next(&mut l, fence_and_shut, true, 4),
        BrokerState::ShutdownNow
    );
    let fence = Heartbeat {
        want_fence: true,
        ..hb(1, 5, 0)
    };
    assert_eq!(next(&mut l, fence, true, 5), BrokerState::Fenced);
}

#[test]
fn controlled_shutdown_waits_for_leaders_to_move_and_active_brokers_to_apply() {
    let mut l = BrokerLiveness::new(SESSION);
    for id in [1, 2, 3] {
        l.registered(id, id as i64, false, 0);
        l.heartbeat(&hb(id, id as i64, 10), false, 0).unwrap();
    }
    let shut = Heartbeat {
        want_shutdown: true,
        ..hb(1, 1, 10)
    };
    assert_eq!(next(&mut l, shut, true, 1), BrokerState::ControlledShutdown);
    l.shutting_down(1, 20); // the leadership moves end at offset 20
    l.shutting_down(1, 99); // a later call keeps the first offset
    assert_eq!(l.state(1), Some(BrokerState::ControlledShutdown));
    assert_eq!(
        next(&mut l, shut, true, 2),
        BrokerState::ControlledShutdown,
        "still leads"
    );
    assert_eq!(
        next(&mut l, shut, false, 3),
        BrokerState::ControlledShutdown,
        "2 and 3 at 10"
    );
    l.heartbeat(&hb(2, 2, 20), false, 4).unwrap();
    assert_eq!(
        next(&mut l, shut, false, 5),
        BrokerState::ControlledShutdown,
        "3 at 10"
    );
    l.heartbeat(&hb(3, 3, 25), false, 6).unwrap();
    assert_eq!(next(&mut l, shut, false, 7), BrokerState::ShutdownNow);
    // Fencing ends a controlled shutdown.
    l.fenced(1);
    assert_eq!(l.state(1), Some(BrokerState::Fenced));
}

#[test]
fn one_expired_session_is_reported_at_a_time_and_fenced_brokers_never() {
    let mut l = BrokerLiveness::new(SESSION);
    for id in [3, 1, 2] {
        l.registered(id, 1, false, 0);
    }
    l.registered(4, 1, true, 0);
    assert_eq!(
        l.next_stale(SESSION),
        None,
        "exactly the timeout is not expired"
    );
    l.heartbeat(&hb(1, 1, 0), false, 5_000).unwrap();
    assert_eq!(l.next_stale(SESSION + 1), Some(2));
    l.fenced(2);
    assert_eq!(l.next_stale(SESSION + 1), Some(3));
    l.fenced(3);
    assert_eq!(
        l.next_stale(SESSION + 1),
        None,
        "1 heartbeated, 4 is fenced"
    );
    assert_eq!(l.next_stale(5_000 + SESSION + 1), Some(1));
    l.remove(1);
    assert_eq!(l.next_stale(u64::MAX), None);
}
