//! Criterion micro-benchmarks of authorization with 10,000 ACLs (1,000 principals with 10
//! bindings each: literal and prefixed topics, a group, a DENY): the per-request set-up
//! (`Authorizer::for_request`), one topic decision, a Produce to ten topics, Metadata's
//! visibility filter over 1,000 topics, and rebuilding the index after an ACL change.
//! Compiled in CI with `cargo bench -p shale-bench --no-run`; timed only by hand.

use criterion::{criterion_group, criterion_main, Criterion};
use shale_broker::acl::index::AclIndex;
use shale_broker::acl::Authorizer;
use shale_broker::config::authz::AuthzConfig;
use shale_raft::acl::{op, pattern, permission, resource};
use shale_raft::records::AccessControlEntryRecord;
use shale_raft::MetadataImage;
use std::hint::black_box;
use std::sync::Arc;

const PRINCIPALS: usize = 1_000;

fn binding(i: usize, rt: i8, name: String, pt: i8, o: i8, perm: i8) -> AccessControlEntryRecord {
    AccessControlEntryRecord {
        id: uuid::Uuid::from_u128(0),
        resource_type: rt,
        resource_name: name,
        pattern_type: pt,
        principal: format!("User:u{i}"),
        host: "*".into(),
        operation: o,
        permission_type: perm,
    }
}

/// 10 bindings for each of [`PRINCIPALS`] principals.
fn image_with_10k_acls() -> MetadataImage {
    let mut image = MetadataImage::default();
    let acls = Arc::make_mut(&mut image.acls);
    let (t, l, p) = (resource::TOPIC, pattern::LITERAL, pattern::PREFIXED);
    let (allow, deny) = (permission::ALLOW, permission::DENY);
    for i in 0..PRINCIPALS {
        let mut add = |mut b: AccessControlEntryRecord| {
            b.id = uuid::Uuid::from_u128(acls.len() as u128 + 1);
            acls.insert(b.id, b);
        };
        for k in 0..5 {
            add(binding(
                i,
                t,
                format!("orders-{}", (i + k) % 1000),
                l,
                op::WRITE,
                allow,
            ));
        }
        add(binding(i, t, format!("team{i}-"), p, op::ALL, allow));
        add(binding(
            i,
            t,
            format!("shared-{}", i % 10),
            p,
            op::READ,
            allow,
        ));
        add(binding(i, t, "shared-0-secret".into(), l, op::READ, deny));
        add(binding(
            i,
            resource::GROUP,
            format!("g{i}-"),
            p,
            op::READ,
            allow,
        ));
        add(binding(
            i,
            resource::TRANSACTIONAL_ID,
            format!("tx{i}"),
            l,
            op::WRITE,
            allow,
        ));
    }
    image
}

fn authorize(c: &mut Criterion) {
    let image = image_with_10k_acls();
    assert_eq!(image.acls.len(), 10 * PRINCIPALS);
    let authorizer = Authorizer::new(AuthzConfig {
        enabled: true,
        super_users: vec!["User:admin".into()],
        allow_if_no_acl: false,
    });
    authorizer.index(&image);
    let mut g = c.benchmark_group("authorize_10k_acls");
    g.bench_function("request_setup", |b| {
        b.iter(|| black_box(authorizer.for_request(&image, "u500", || "127.0.0.1".into())))
    });
    let authz = authorizer.for_request(&image, "u500", || "127.0.0.1".into());
    assert!(authz.topic(op::WRITE, "team500-events"));
    g.bench_function("one_topic_decision", |b| {
        b.iter(|| black_box(authz.topic(op::WRITE, black_box("team500-events"))))
    });
    let topics: Vec<String> = (0..10).map(|k| format!("orders-{}", 500 + k)).collect();
    g.bench_function("produce_to_10_topics", |b| {
        b.iter(|| {
            let allowed = topics.iter().filter(|t| authz.topic(op::WRITE, t)).count();
            black_box(allowed)
        })
    });
    let all: Vec<String> = (0..1000).map(|k| format!("orders-{k}")).collect();
    g.bench_function("metadata_filter_1000_topics", |b| {
        b.iter(|| black_box(all.iter().filter(|t| authz.topic(op::DESCRIBE, t)).count()))
    });
    g.sample_size(10);
    g.bench_function("index_build", |b| {
        b.iter(|| black_box(AclIndex::build(image.acls.values()).len()))
    });
    g.finish();
}

criterion_group!(benches, authorize);
criterion_main!(benches);
