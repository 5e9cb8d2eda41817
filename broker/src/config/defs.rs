//! The table of broker keys Shale reads ([`BROKER_CONFIGS`]) and docs/configuration.md, which is
//! generated from it.

use shale_local_log::TOPIC_CONFIGS;

/// How a value is checked and shown in DescribeConfigs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `true` / `false`.
    Bool,
    /// 32-bit signed integer.
    Int,
    /// 64-bit signed integer.
    Long,
    /// Free text.
    Str,
    /// Comma-separated list.
    List,
    /// A secret: never logged, and DescribeConfigs returns it as null and sensitive.
    Password,
}

/// One broker configuration key.
#[derive(Debug)]
pub struct ConfigDef {
    /// Kafka's key.
    pub name: &'static str,
    /// Default as text; `None` means "no default" (null).
    pub default: Option<&'static str>,
    /// Value type.
    pub kind: Kind,
    /// One-line meaning, used by docs/configuration.md.
    pub doc: &'static str,
}

/// Every broker key Shale reads (topic defaults included). Order is the docs' order.
pub static BROKER_CONFIGS: &[ConfigDef] = &[
    def!("node.id", Some("1"), Int, "This node's id in the cluster."),
    def!(
        "process.roles",
        Some("broker,controller"),
        List,
        "Roles of this process: broker,controller (a combined node, the single-node default), controller (a member of a multi-voter metadata quorum) or broker (a broker of a cluster whose controllers are other nodes); see docs/cluster.md."
    ),
    def!(
        "controller.quorum.voters",
        None,
        List,
        "Static voter set ({id}@{host}:{port}). A controller-only node must be one of the voters, on the port of its controller listener; a combined node naming other voters is one node of a multi-node cluster and must be a voter too."
    ),
    def!(
        "controller.quorum.bootstrap.servers",
        None,
        List,
        "Quorum bootstrap addresses (host:port) of a dynamic (KIP-853) quorum, used instead of controller.quorum.voters. A node asks the addresses other than its own for the leader; naming only this node is a quorum of one (Kafka 4's quickstart). Set together with controller.quorum.voters naming other nodes, start-up stops."
    ),
    def!(
        "listeners",
        Some("PLAINTEXT://127.0.0.1:9092"),
        List,
        "Addresses the broker listens on."
    ),
    def!(
        "advertised.listeners",
        None,
        List,
        "Addresses given to clients; defaults to listeners. Controller listeners are never given to clients."
    ),
    def!(
        "listener.security.protocol.map",
        Some("PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"),
        Str,
        "Listener name to security protocol. Unset, controller listener names map to PLAINTEXT (as in Kafka). PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL are served (SASL on client listeners only)."
    ),
    def!(
        "broker.heartbeat.interval.ms",
        Some("2000"),
        Int,
        "How often a broker of a multi-node cluster heartbeats to the active controller."
    ),
    def!(
        "broker.rack",
        None,
        Str,
        "The broker's rack, registered with the controller and shown to clients in Metadata."
    ),
    def!(
        "broker.session.timeout.ms",
        Some("9000"),
        Int,
        "How long the active controller waits for a registered broker's heartbeat before it fences the broker."
    ),
    def!(
        "controller.listener.names",
        None,
        List,
        "Listeners of the controller; each must be in listeners. They are bound and served like the others but not advertised."
    ),
    def!(
        "inter.broker.listener.name",
        None,
        Str,
        "The broker listener followers fetch from (a PLAINTEXT one); by default the first broker listener."
    ),
    def!(
        "log.dirs",
        Some("./shale-data"),
        List,
        "Directories holding partition logs; the first also holds __cluster_metadata-0."
    ),
    def!(
        "log.dir",
        None,
        Str,
        "Single log directory, used when log.dirs is not set."
    ),
    def!(
        "metadata.log.dir",
        None,
        Str,
        "Directory of the metadata log; defaults to the first of log.dirs."
    ),
    def!(
        "metadata.log.max.record.bytes.between.snapshots",
        Some("20971520"),
        Int,
        "A node of a multi-node cluster snapshots its metadata image once this many bytes of metadata records were applied since its last snapshot, and drops the log prefix the snapshot covers (a lagging or wiped node then catches up with FetchSnapshot)."
    ),
    def!(
        "metadata.log.max.snapshot.interval.ms",
        Some("3600000"),
        Int,
        "A node of a multi-node cluster also snapshots once this long has passed since its last snapshot and any record was applied; 0 turns the time rule off."
    ),
    def!(
        "auto.leader.rebalance.enable",
        Some("true"),
        Bool,
        "The active controller of a multi-node cluster moves leadership back to preferred replicas (the first replica), checking every leader.imbalance.check.interval.seconds, as Kafka's KRaft controller does (leader.imbalance.per.broker.percentage was ZooKeeper-only and is gone from Kafka 4)."
    ),
    def!(
        "leader.imbalance.check.interval.seconds",
        Some("300"),
        Int,
        "How often the active controller checks leader imbalance."
    ),
    def!(
        "num.partitions",
        Some("1"),
        Int,
        "Partition count of auto-created topics and of CreateTopics with -1."
    ),
    def!(
        "default.replication.factor",
        Some("1"),
        Int,
        "Replication factor of auto-created topics."
    ),
    def!(
        "auto.create.topics.enable",
        Some("true"),
        Bool,
        "Create unknown topics on Metadata/Produce requests."
    ),
    def!(
        "delete.topic.enable",
        Some("true"),
        Bool,
        "Allow DeleteTopics."
    ),
    def!(
        "message.max.bytes",
        Some("1048588"),
        Int,
        "Largest record batch accepted (topic: max.message.bytes)."
    ),
    def!(
        "socket.request.max.bytes",
        Some("104857600"),
        Int,
        "Largest request frame; larger ones close the connection."
    ),
    def!(
        "queued.max.requests",
        Some("500"),
        Int,
        "Requests read ahead per connection before reading pauses."
    ),
    def!(
        "max.connections",
        Some("2147483647"),
        Int,
        "Open connections across all listeners. At the limit the listeners stop accepting (new connections wait in the kernel backlog) until one closes; established clients are unaffected."
    ),
    def!(
        "max.connections.per.ip",
        Some("2147483647"),
        Int,
        "Open connections from one IP address; a new connection over the limit is closed at once. 0 only with overrides."
    ),
    def!(
        "max.connections.per.ip.overrides",
        Some(""),
        Str,
        "Per-host limits overriding max.connections.per.ip, e.g. `hostName:100,127.0.0.1:200`; hosts are resolved at start-up."
    ),
    def!(
        "connections.max.idle.ms",
        Some("600000"),
        Long,
        "A connection with no bytes read, no request in progress and no bytes written for this long is closed; -1 never closes."
    ),
    def!(
        "log.segment.bytes",
        Some("1073741824"),
        Int,
        "Segment size before a roll (topic: segment.bytes)."
    ),
    def!(
        "log.roll.ms",
        None,
        Long,
        "Time before a roll (topic: segment.ms)."
    ),
    def!(
        "log.roll.hours",
        Some("168"),
        Int,
        "Time before a roll in hours, if log.roll.ms is unset."
    ),
    def!(
        "log.roll.jitter.ms",
        None,
        Long,
        "Roll jitter (topic: segment.jitter.ms)."
    ),
    def!(
        "log.roll.jitter.hours",
        Some("0"),
        Int,
        "Roll jitter in hours, if log.roll.jitter.ms is unset."
    ),
    def!(
        "log.retention.ms",
        None,
        Long,
        "Retention time (topic: retention.ms); -1 keeps forever."
    ),
    def!(
        "log.retention.minutes",
        None,
        Int,
        "Retention time in minutes, if log.retention.ms is unset."
    ),
    def!(
        "log.retention.hours",
        Some("168"),
        Int,
        "Retention time in hours, if the two above are unset."
    ),
    def!(
        "log.retention.bytes",
        Some("-1"),
        Long,
        "Retention size per partition (topic: retention.bytes)."
    ),
    def!(
        "log.retention.check.interval.ms",
        Some("300000"),
        Long,
        "How often retention is enforced."
    ),
    def!(
        "log.index.interval.bytes",
        Some("4096"),
        Int,
        "Bytes between offset-index entries."
    ),
    def!(
        "log.index.size.max.bytes",
        Some("10485760"),
        Int,
        "Maximum index file size (topic: segment.index.bytes)."
    ),
    def!(
        "log.flush.interval.messages",
        Some("9223372036854775807"),
        Long,
        "Records between forced fsyncs (topic: flush.messages)."
    ),
    def!(
        "log.flush.interval.ms",
        None,
        Long,
        "Time between forced fsyncs (topic: flush.ms)."
    ),
    def!(
        "log.flush.offset.checkpoint.interval.ms",
        Some("60000"),
        Int,
        "How often the recovery-point checkpoint is written."
    ),
    def!(
        "log.flush.start.offset.checkpoint.interval.ms",
        Some("60000"),
        Int,
        "How often the log-start-offset checkpoint is written."
    ),
    def!(
        "replica.lag.time.max.ms",
        Some("30000"),
        Long,
        "A follower that has not caught up with the leader's log end for this long leaves the ISR."
    ),
    def!(
        "replica.fetch.max.bytes",
        Some("1048576"),
        Int,
        "Bytes a follower asks for per partition in one fetch (at least one batch is returned)."
    ),
    def!(
        "replica.fetch.response.max.bytes",
        Some("10485760"),
        Int,
        "Bytes a follower asks for in one whole fetch response."
    ),
    def!(
        "replica.fetch.wait.max.ms",
        Some("500"),
        Int,
        "How long a follower's fetch waits at the leader for data; at most replica.lag.time.max.ms."
    ),
    def!(
        "replica.fetch.min.bytes",
        Some("1"),
        Int,
        "Bytes a follower's fetch waits for before the leader answers."
    ),
    def!(
        "replica.fetch.backoff.ms",
        Some("1000"),
        Int,
        "How long a follower waits after a failed fetch before fetching that partition again."
    ),
    def!(
        "replica.socket.timeout.ms",
        Some("30000"),
        Int,
        "How long a follower waits for a fetch response before it reconnects."
    ),
    def!(
        "num.replica.fetchers",
        Some("1"),
        Int,
        "Fetcher tasks per source broker; a partition always uses the same one."
    ),
    def!(
        "replica.selector.class",
        None,
        Str,
        "org.apache.kafka.common.replica.RackAwareReplicaSelector lets consumers with client.rack read from an in-sync replica in their rack (KIP-392); unset, consumers read from leaders."
    ),
    def!(
        "replica.high.watermark.checkpoint.interval.ms",
        Some("5000"),
        Long,
        "How often replication-offset-checkpoint (the high watermarks) is written; all offset checkpoints are written together, at the shorter of this and log.flush.offset.checkpoint.interval.ms."
    ),
    def!(
        "log.cleanup.policy",
        Some("delete"),
        List,
        "Default cleanup policy (topic: cleanup.policy)."
    ),
    def!(
        "log.segment.delete.delay.ms",
        Some("60000"),
        Long,
        "Delay before a .deleted segment is removed (topic: file.delete.delay.ms)."
    ),
    def!(
        "log.message.timestamp.type",
        Some("CreateTime"),
        Str,
        "CreateTime or LogAppendTime (topic: message.timestamp.type)."
    ),
    def!(
        "log.message.timestamp.before.max.ms",
        Some("9223372036854775807"),
        Long,
        "How far in the past a record timestamp may be."
    ),
    def!(
        "log.message.timestamp.after.max.ms",
        Some("9223372036854775807"),
        Long,
        "How far in the future a record timestamp may be."
    ),
    def!(
        "compression.type",
        Some("producer"),
        Str,
        "Topic compression (topic: compression.type)."
    ),
    def!(
        "compression.gzip.level",
        Some("-1"),
        Int,
        "Default gzip level when recompressing (topic: compression.gzip.level)."
    ),
    def!(
        "compression.lz4.level",
        Some("9"),
        Int,
        "Default lz4 level (topic: compression.lz4.level; accepted, not applied)."
    ),
    def!(
        "compression.zstd.level",
        Some("3"),
        Int,
        "Default zstd level when recompressing (topic: compression.zstd.level)."
    ),
    def!(
        "min.insync.replicas",
        Some("1"),
        Int,
        "Minimum ISR for acks=all (topic: min.insync.replicas)."
    ),
    def!(
        "num.io.threads",
        Some("8"),
        Int,
        "Accepted for compatibility; Shale sizes its runtime itself."
    ),
    def!(
        "num.network.threads",
        Some("3"),
        Int,
        "Accepted for compatibility; Shale sizes its runtime itself."
    ),
    def!(
        "max.incremental.fetch.session.cache.slots",
        Some("1000"),
        Int,
        "Maximum number of incremental fetch sessions (KIP-227)."
    ),
    def!(
        "producer.id.expiration.ms",
        Some("86400000"),
        Int,
        "Idle time after which producer state expires."
    ),
    def!(
        "remote.log.storage.system.enable",
        Some("true"),
        Bool,
        "Tiered storage master switch. Shale defaults to on for a single node (Kafka: off), whose remote tier is a local directory when no S3 is configured; a node of a cluster tiers only when it is set explicitly."
    ),
    def!(
        "remote.log.storage.manager.impl.prefix",
        Some("rsm.config."),
        Str,
        "Prefix of the remote storage settings (see docs/tiered-storage.md)."
    ),
    def!(
        "remote.log.metadata.manager.impl.prefix",
        Some("rlmm.config."),
        Str,
        "Prefix of the remote log metadata settings."
    ),
    def!(
        "remote.log.manager.task.interval.ms",
        Some("30000"),
        Long,
        "Interval of the per-partition copy and expiration tasks."
    ),
    def!(
        "remote.log.manager.copier.thread.pool.size",
        Some("10"),
        Int,
        "Partitions whose segments are copied to the remote tier at the same time."
    ),
    def!(
        "remote.log.manager.expiration.thread.pool.size",
        Some("10"),
        Int,
        "Partitions whose remote segments are expired at the same time."
    ),
    def!(
        "remote.fetch.max.wait.ms",
        Some("500"),
        Int,
        "How long a fetch waits for remote data before answering without it (the read goes on and fills the cache)."
    ),
    def!(
        "remote.log.reader.threads",
        Some("10"),
        Int,
        "Accepted for compatibility; remote reads are asynchronous."
    ),
    def!(
        "remote.log.reader.max.pending.tasks",
        Some("100"),
        Int,
        "Remote reads in flight before further ones are refused."
    ),
    def!(
        "remote.log.manager.copy.max.bytes.per.second",
        Some("9223372036854775807"),
        Long,
        "Broker-wide upload rate limit."
    ),
    def!(
        "remote.log.manager.fetch.max.bytes.per.second",
        Some("9223372036854775807"),
        Long,
        "Broker-wide remote read rate limit."
    ),
    def!(
        "remote.log.metadata.custom.metadata.max.bytes",
        Some("128"),
        Int,
        "Largest custom metadata a segment upload may return."
    ),
    def!(
        "log.local.retention.ms",
        Some("-2"),
        Long,
        "Default local retention time of tiered topics (topic: local.retention.ms); -2 = log.retention.ms."
    ),
    def!(
        "log.local.retention.bytes",
        Some("-2"),
        Long,
        "Default local retention size of tiered topics (topic: local.retention.bytes); -2 = log.retention.bytes."
    ),
    def!(
        "shale.metrics.address",
        Some("127.0.0.1:9308"),
        Str,
        "Address of the Prometheus /metrics endpoint; empty disables it."
    ),
    def!(
        "shale.metrics.topic.labels.max",
        Some("1000"),
        Int,
        "Most topics with their own per-topic series (topic label) at once; further topics count in the all-topics values only (shale_metrics_topics_unlabelled). Only topics this broker hosts are labelled, never names taken from requests."
    ),
    def!(
        "shale.log.level",
        Some("info"),
        Str,
        "Log filter (tracing syntax); RUST_LOG overrides it."
    ),
    def!(
        "shale.debug.crash.file",
        None,
        Str,
        "Testing only: a file naming a crash point. The first process that reaches that point removes the file and aborts (as kill -9 would), so one crash happens even when several nodes share the file. Points, in a transaction the process ends itself: txn.prepared (the commit or abort is decided and replicated, no marker written), txn.between-markers (the first partition's marker written, others not), txn.markers-written (every marker written, no Complete record), txn.marker-received (a partition leader appended the markers of a WriteTxnMarkers and has not answered)."
    ),
    def!(
        "shale.log.open.files.max",
        None,
        Int,
        "Budget of file descriptors for partition logs; unset = 75% of the soft RLIMIT_NOFILE (ulimit -n) at start-up. Each partition's active segment holds one; older segments' files are opened on demand and closed least recently used first; CreateTopics/CreatePartitions beyond what the budget can hold (minus 1/16 headroom, at most 1024) fail with POLICY_VIOLATION."
    ),
    def!(
        "transaction.state.log.num.partitions",
        Some("50"),
        Int,
        "Partitions of __transaction_state when it is created."
    ),
    def!(
        "transaction.state.log.replication.factor",
        Some("3"),
        Int,
        "Replication factor of __transaction_state (one on a single node; in a cluster it is created once that many brokers are registered)."
    ),
    def!(
        "transaction.state.log.min.isr",
        Some("2"),
        Int,
        "min.insync.replicas of __transaction_state (capped at its replication factor)."
    ),
    def!(
        "transaction.state.log.segment.bytes",
        Some("104857600"),
        Int,
        "segment.bytes of __transaction_state."
    ),
    def!(
        "transaction.partition.verification.enable",
        Some("true"),
        Bool,
        "KIP-890 part 1: before a producer's first transactional batch of a transaction is appended to a partition (Produce v3-11), its leader asks the coordinator whether the partition is in that transaction (refused with INVALID_TXN_STATE when not), so a late or stray batch cannot open a transaction nobody will end. Transaction version 2's partition adds (Produce v12+) happen regardless."
    ),
    def!(
        "transaction.max.timeout.ms",
        Some("900000"),
        Int,
        "Largest transaction.timeout.ms a producer may ask for (InitProducerId answers INVALID_TRANSACTION_TIMEOUT above it)."
    ),
    def!(
        "transactional.id.expiration.ms",
        Some("604800000"),
        Int,
        "A transactional id without a transaction for this long is forgotten (a tombstone in __transaction_state)."
    ),
    def!(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Some("10000"),
        Int,
        "How often the coordinator aborts transactions open longer than their timeout (their producer is fenced)."
    ),
    def!(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        Some("3600000"),
        Int,
        "How often the coordinator looks for expired transactional ids."
    ),
    def!(
        "offsets.topic.num.partitions",
        Some("50"),
        Int,
        "Partitions of __consumer_offsets when it is created."
    ),
    def!(
        "offsets.topic.replication.factor",
        Some("3"),
        Int,
        "Replication factor of __consumer_offsets (one on a single node; in a cluster it is created once that many brokers are registered)."
    ),
    def!(
        "offsets.commit.timeout.ms",
        Some("5000"),
        Int,
        "How long a group coordinator write (a commit, a join, a sync) waits for the ISR of its __consumer_offsets partition before COORDINATOR_NOT_AVAILABLE."
    ),
    def!(
        "offsets.topic.segment.bytes",
        Some("104857600"),
        Int,
        "segment.bytes of __consumer_offsets."
    ),
    def!(
        "offsets.retention.minutes",
        Some("10080"),
        Int,
        "How long committed offsets of an empty group (or a simple consumer) are kept."
    ),
    def!(
        "offsets.retention.check.interval.ms",
        Some("600000"),
        Long,
        "How often expired offsets are looked for."
    ),
    def!(
        "offset.metadata.max.bytes",
        Some("4096"),
        Int,
        "Largest metadata string an offset commit may carry."
    ),
    def!(
        "group.initial.rebalance.delay.ms",
        Some("3000"),
        Int,
        "How long the first rebalance of an empty group waits for more members."
    ),
    def!(
        "group.min.session.timeout.ms",
        Some("6000"),
        Int,
        "Smallest session timeout a member may ask for."
    ),
    def!(
        "group.max.session.timeout.ms",
        Some("1800000"),
        Int,
        "Largest session timeout a member may ask for."
    ),
    def!(
        "group.max.size",
        Some("2147483647"),
        Int,
        "Largest number of members in one consumer group."
    ),
    def!(
        "quota.window.num",
        Some("11"),
        Int,
        "Number of samples a client quota's rate is measured over."
    ),
    def!(
        "quota.window.size.seconds",
        Some("1"),
        Int,
        "Length of one client-quota sample, in seconds."
    ),
    def!(
        "controller.quota.window.num",
        Some("11"),
        Int,
        "Number of samples controller_mutation_rate's token bucket spans: its burst is the quota times this span."
    ),
    def!(
        "controller.quota.window.size.seconds",
        Some("1"),
        Int,
        "Length of one controller_mutation_rate sample, in seconds."
    ),
];

/// Every broker key: [`BROKER_CONFIGS`], then the TLS, SASL and authorization keys.
pub fn all_broker_configs() -> impl Iterator<Item = &'static ConfigDef> {
    BROKER_CONFIGS
        .iter()
        .chain(super::ssl::SSL_CONFIGS.iter())
        .chain(super::sasl::SASL_CONFIGS.iter())
        .chain(super::authz::AUTHZ_CONFIGS.iter())
}

/// The broker key named `name`.
pub fn broker_def(name: &str) -> Option<&'static ConfigDef> {
    all_broker_configs().find(|d| d.name == name)
}

/// The text of `docs/configuration.md`, generated from [`BROKER_CONFIGS`] and the topic configs,
/// so the document cannot drift from the code (a test compares them).
pub fn configuration_markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from broker/src/config/ and local-log's TOPIC_CONFIGS; run\n\
         `SHALE_WRITE_DOCS=1 cargo test -p shale-broker --test docs` after changing either. -->\n\n\
         Shale reads Kafka's `server.properties` format: `shale --config FILE` plus any number of\n\
         `--override key=value`. Unknown keys are logged and ignored, as Kafka does, unless they ask\n\
         for a feature Shale does not implement (see [Settings that stop start-up](#settings-that-stop-start-up));\n\
         an invalid value stops start-up with a message naming the key. With no configuration at all\n\
         Shale runs a single node on `127.0.0.1:9092` with its data under `./shale-data`, formatted\n\
         on first start.\n\n\
         ## Broker\n\n| key | default | meaning |\n|---|---|---|\n",
    );
    for d in all_broker_configs() {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            d.name,
            match d.default {
                None => "(none)".to_string(),
                Some("") => "(empty)".to_string(),
                Some(v) => format!("`{v}`"),
            },
            d.doc
        ));
    }
    out.push_str(CONNECTIONS_DOC);
    out.push_str(FAIL_CLOSED_DOC);
    for r in super::unsupported::UNSUPPORTED {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            r.pattern.display(),
            r.harmless.display(),
            r.feature
        ));
    }
    out.push_str(
        "\n## Topic\n\nSet per topic with CreateTopics configs, `kafka-configs.sh --alter` or\n\
         IncrementalAlterConfigs. A topic without its own value takes the broker key listed as its\n\
         synonym (a dynamic cluster-wide broker default first, then `server.properties`), else\n\
         Kafka's default.\n\n| key | default | broker synonyms | meaning |\n|---|---|---|---|\n",
    );
    for d in TOPIC_CONFIGS {
        let syn: Vec<String> = d.broker_synonyms.iter().map(|s| format!("`{s}`")).collect();
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            d.name,
            d.default,
            if syn.is_empty() {
                "—".into()
            } else {
                syn.join(", ")
            },
            d.doc.replace('\n', " ").replace('|', "\\|")
        ));
    }
    out
}

const CONNECTIONS_DOC: &str = "
## Listeners and connections

Every listener in `listeners` is bound, or start-up fails naming the one that could not be. Each
listener's security protocol is looked up by its name in `listener.security.protocol.map`;
all four protocols are served (TLS settings: the `ssl.*` keys above, each also settable for one
listener as `listener.name.<listener>.ssl.*`; SASL: `sasl.enabled.mechanisms` and the PLAIN users
of `listener.name.<listener>.plain.sasl.jaas.config`; see docs/security.md). On a single node, a controller listener (named in
`controller.listener.names`, as Kafka's single-node KRaft configuration has it) is bound and
answers the same Kafka API as the others — its quorum of one runs in-process — but it is never
given to clients in Metadata, DescribeCluster or FindCoordinator responses. Those responses give
the endpoints of the listener the request came in on, as Kafka does; a request on a controller
listener gets those of the first broker listener of `advertised.listeners` (else `listeners`). In
a cluster the controller listener carries only the controllers' protocol (the quorum's RPCs,
broker registration and heartbeats, producer-id blocks, forwarded admin requests); a broker-only
node does not bind it, and names it in `controller.listener.names` only to know its name.

Connection limits follow Kafka's SocketServer:

- `max.connections.per.ip` (and its overrides): a new connection from an address already at its
  limit is accepted and closed at once, without a response; it is counted in
  `shale_connections_rejected_total`. The per-address table only holds addresses with open
  connections.
- `max.connections`: while the broker holds that many connections, the listeners stop accepting,
  as Kafka's acceptor blocks; new connections wait in the kernel's accept backlog (clients see a
  connection that does not answer, then time out and retry) and are taken, oldest first, as
  connections close. Established clients keep being served throughout. It counts every listener;
  Shale has no inter-broker listener to exempt.
- `connections.max.idle.ms`: a connection is idle while no bytes arrive, no request is queued or
  being handled and no response is being written; idle that long, it is closed
  (`shale_connections_idle_closed_total`). A long-polling Fetch is not idle. Clients reconnect when
  they next need the broker (the Java client closes its own idle connections after 9 minutes,
  before the broker's 10). A negative value never closes idle connections.
";

const FAIL_CLOSED_DOC: &str = "
## Settings that stop start-up

Shale refuses to start, listing every offending setting, rather than run without a feature the
configuration asks for:

- a SASL mechanism other than PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER on a SASL
  listener (Kafka's default `sasl.enabled.mechanisms` is GSSAPI), and a SASL listener named by
  `inter.broker.listener.name` or `controller.listener.names`;
- a TLS listener whose key or trust store is JKS (`ssl.keystore.type`, `ssl.truststore.type`
  default to Kafka's JKS: set PEM or PKCS12), or a PKCS12 key store whose `ssl.key.password`
  differs from its `ssl.keystore.password`;
- `controller.quorum.bootstrap.servers` naming another node (an address that is not one of this
  node's listeners: another port, or a host that is not this machine) together with
  `controller.quorum.voters`: a static and a dynamic (KIP-853) quorum at once;
- any key matching a rule below with a value other than the harmless ones (an empty value always
  is). Such keys set to a harmless value are logged as ignored.

| keys | harmless values | why |
|---|---|---|
";
