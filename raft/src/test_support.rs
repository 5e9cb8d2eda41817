//! Test helpers for controller tests: a single-voter controller on a temporary directory and
//! brokers that register and unfence.

use std::path::Path;

use shale_common::{ManualClock, SeededRng};
use uuid::Uuid;

use crate::broker_liveness::Heartbeat;
use crate::controller::{Controller, ControllerOptions, MetadataLogTuning};
use crate::controller_brokers::BrokerRegistrationRequest;
use crate::format::format_dirs;
use crate::image::Endpoint;

pub const CLUSTER: &str = "MkU3OEVBNTcwNTJENDM2Qg";
pub const T0: u64 = 1_700_000_000_000;
/// The controller's own node id (not one of the brokers the tests register).
const CONTROLLER_ID: i32 = 9;

/// A controller formatted and opened on `dir`, its clock at [`T0`].
pub fn open(dir: &Path) -> Controller {
    format_dirs(
        &[dir.to_path_buf()],
        CLUSTER,
        CONTROLLER_ID,
        &*SeededRng::new(9),
    )
    .unwrap();
    let opts = ControllerOptions {
        metadata_log_dir: dir.to_path_buf(),
        node_id: CONTROLLER_ID,
        endpoints: vec![],
        rack: None,
        default_num_partitions: 1,
        default_replication_factor: 1,
        snapshot_every_records: 0,
    };
    let clock = ManualClock::new(T0 as i64);
    Controller::open_with(opts, MetadataLogTuning::default(), clock, SeededRng::new(3)).unwrap()
}

/// Registers and unfences broker `id`; returns its epoch.
pub fn join(c: &Controller, id: i32) -> i64 {
    let req = BrokerRegistrationRequest {
        broker_id: id,
        cluster_id: CLUSTER.into(),
        incarnation_id: Uuid::from_u128(id as u128),
        endpoints: vec![Endpoint {
            name: "PLAINTEXT".into(),
            host: "localhost".into(),
            port: 9000 + id as u16,
            security_protocol: 0,
        }],
        rack: None,
    };
    let epoch = c.register_broker(req, T0).unwrap();
    c.broker_heartbeat(heartbeat(c, id, epoch), T0).unwrap();
    epoch
}

/// A heartbeat of broker `id` that has applied everything and wants to be unfenced.
pub fn heartbeat(c: &Controller, id: i32, epoch: i64) -> Heartbeat {
    Heartbeat {
        broker_id: id,
        broker_epoch: epoch,
        current_metadata_offset: c.log_end_offset(),
        want_fence: false,
        want_shutdown: false,
    }
}

/// Creates topic `name` with one partition on `replicas` (its first replica leads).
pub fn topic_on(c: &Controller, name: &str, replicas: &[i32]) {
    let spec = crate::controller::CreateTopicSpec {
        name: name.into(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: vec![(0, replicas.to_vec())],
        configs: vec![],
    };
    c.create_topic(spec, false).unwrap();
}
