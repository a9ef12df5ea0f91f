//! Redis trouble: slow connection setup, a restart, a cluster master lost mid-test.
//! Tokens keep coming from L1 and Entra throughout; L2 is back within one probe.

use std::sync::Arc;
use std::time::Duration;

use super::servers::{Cluster, Redis, Relay};
use super::{Backend, keys, replica, replica_with};
use crate::common::{VAULT, World};
use azure_cross_tenant::{Cached, ClientSecret, RedisStore, SharedCache, TenantId};

/// Real time, for what a real server or socket takes (bounded by the callers' loops).
#[allow(clippy::disallowed_methods)]
async fn pause(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn consented(w: &World, name: &str) -> TenantId {
    let t = w.entra.add_tenant(name);
    w.entra.consent(&t, &w.app);
    t
}

/// Whether `reader` gets `tenant`'s token without asking Entra (so from L2).
async fn served_from_l2(w: &World, reader: &Cached<ClientSecret>, tenant: &TenantId) -> bool {
    let before = w.entra.token_requests();
    reader.get_token(tenant, &[VAULT]).await.unwrap();
    w.entra.token_requests() == before
}

/// Until it returns true or about `budget_ms` of real time has passed: `write` stores a
/// token for a new tenant through the replica under test, and a fresh reader must find
/// it in L2.
async fn l2_works_within(
    w: &World,
    budget_ms: u64,
    writer: &Cached<ClientSecret>,
    reader: &Cached<ClientSecret>,
) -> bool {
    for attempt in 0..budget_ms / 50 {
        let t = consented(w, &format!("probe{attempt}.example"));
        writer.get_token(&t, &[VAULT]).await.unwrap();
        if served_from_l2(w, reader, &t).await {
            return true;
        }
        pause(50).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
async fn l2_connects_when_connection_setup_is_slower_than_the_call_timeout() {
    let redis = Redis::start();
    let backend = Backend::Single(redis);
    let Backend::Single(server) = &backend else {
        unreachable!()
    };
    let slow = Relay::start(server.port, Duration::from_millis(80)).await;
    let w = World::new().await;
    // Every call has 50 ms; building the connection takes at least 80.
    let a = replica_with(
        &w,
        SharedCache::new(
            Arc::new(RedisStore::new(&slow.url()).unwrap()),
            keys("k1", 1),
        )
        .timeout(Duration::from_millis(50)),
    );
    let direct = replica(&w, &backend);
    assert!(
        l2_works_within(&w, 3_000, &a, &direct).await,
        "the replica behind the slow connection never stored a token in L2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
async fn a_redis_restart_costs_one_probe_interval_not_two_cooldowns() {
    let mut redis = Redis::start();
    let w = World::new().await;
    let probe_every = Duration::from_secs(2);
    let url = redis.url();
    let store = || Arc::new(RedisStore::new(&url).unwrap());
    let a = replica_with(
        &w,
        SharedCache::new(store(), keys("k1", 1))
            .timeout(Duration::from_millis(500))
            .circuit_breaker(2, probe_every),
    );
    a.get_token(&w.customer, &[VAULT]).await.unwrap();

    redis.stop();
    // L1 still answers; cold keys go to Entra; nothing fails; the breaker opens.
    a.get_token(&w.customer, &[VAULT]).await.unwrap();
    for i in 0..3 {
        a.get_token(&consented(&w, &format!("cold{i}.example")), &[VAULT])
            .await
            .unwrap();
    }
    assert!(a.stats().l2_errors >= 2, "{:?}", a.stats());
    // A real outage outlasts the client's own reconnect attempts.
    pause(1500).await;

    // Redis is back (empty). One probe interval later on A's clock, a probe in the
    // background reconnects and pings; A uses L2 again with no further clock movement.
    redis.restart();
    w.clock.advance(probe_every);
    let reader = replica_with(
        &w,
        SharedCache::new(store(), keys("k1", 1)).timeout(Duration::from_millis(500)),
    );
    assert!(
        l2_works_within(&w, 3_000, &a, &reader).await,
        "L2 was not back one probe interval after Redis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
async fn a_cluster_master_lost_mid_test_costs_nothing_but_misses_and_comes_back() {
    let mut backend = Backend::Cluster(Cluster::start());
    let w = World::new().await;
    let a = replica_with(&w, super::shared(&backend, keys("k1", 1)));
    // Thirty tenants: their keys spread over the three masters.
    let tenants: Vec<TenantId> = (0..30)
        .map(|i| consented(&w, &format!("c{i}.example")))
        .collect();
    for t in &tenants {
        a.get_token(t, &[VAULT]).await.unwrap();
    }

    let Backend::Cluster(cluster) = &mut backend else {
        unreachable!()
    };
    cluster.nodes[1].stop();
    // Every caller still gets the right token: from L1, from the masters still up, or
    // from Entra.
    let b = replica(&w, &backend);
    for t in &tenants {
        let from_a = a.get_token(t, &[VAULT]).await.unwrap();
        let from_b = b.get_token(t, &[VAULT]).await.unwrap();
        for token in [from_a, from_b] {
            let tid = azure_cross_tenant::insecure::decode_unverified(token.secret())
                .unwrap()
                .tid;
            assert_eq!(tid.as_deref(), Some(t.as_str()));
        }
    }
    eprintln!("one master down: {:?}", b.stats());

    // The master comes back with its slots; within a probe interval (on the clock) and a
    // bounded real wait for the cluster to settle, every slot serves again.
    let Backend::Cluster(cluster) = &mut backend else {
        unreachable!()
    };
    cluster.nodes[1].restart();
    cluster.wait_until_ok();
    let mut recovered = false;
    for round in 0..40 {
        w.clock.advance(Duration::from_secs(2));
        let fresh: Vec<TenantId> = (0..30)
            .map(|i| consented(&w, &format!("r{round}-{i}.example")))
            .collect();
        for t in &fresh {
            a.get_token(t, &[VAULT]).await.unwrap();
        }
        let reader = replica(&w, &backend);
        let mut all = true;
        for t in &fresh {
            all &= served_from_l2(&w, &reader, t).await;
        }
        if all {
            recovered = true;
            break;
        }
        pause(100).await;
    }
    assert!(
        recovered,
        "L2 did not serve every slot again after the master returned"
    );
}

/// One master of three lost (frozen: it accepts connections and answers nothing, as a hung
/// or partitioned host): tokens on the other two keep being shared during the outage
/// (its failures turn off only its own slots), and when it comes back with its data, the
/// tombstone of a tenant offboarded meanwhile reaches it before anyone reads it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
async fn a_lost_cluster_master_costs_only_its_own_slots() {
    let cluster = Cluster::start();
    let w = World::new().await;
    let backend = Backend::Cluster(cluster);
    let a = replica(&w, &backend);
    let Backend::Cluster(cluster) = &backend else {
        unreachable!()
    };
    // Where each tenant's token lands.
    let mut on: Vec<Vec<TenantId>> = vec![Vec::new(); cluster.nodes.len()];
    let mut tokens = std::collections::HashMap::new();
    for i in 0..40 {
        let t = consented(&w, &format!("m{i}.example"));
        let before: Vec<_> = cluster.nodes.iter().map(|n| n.keys("*:t:*")).collect();
        tokens.insert(t.clone(), a.get_token(&t, &[VAULT]).await.unwrap());
        let node = (0..cluster.nodes.len())
            .find(|&n| cluster.nodes[n].keys("*:t:*") != before[n])
            .expect("the token landed on a master");
        on[node].push(t);
    }
    // Not the master of the global tombstone: a replica that never read it cannot trust
    // any value (documented), which is not what this test is about.
    let global = cluster.owner_of("act:x");
    let victim = (0..cluster.nodes.len())
        .filter(|&n| n != global)
        .max_by_key(|&n| on[n].len())
        .unwrap();
    assert!(on[victim].len() >= 3, "{on:?}");
    let survivors: Vec<TenantId> = (0..cluster.nodes.len())
        .filter(|&n| n != victim)
        .flat_map(|n| on[n].clone())
        .collect();
    cluster.nodes[victim].freeze();

    // B meets the lost master first (misses), then asks for the others' tokens: all from L2.
    let b = replica(&w, &backend);
    for t in &on[victim][..3] {
        b.get_token(t, &[VAULT]).await.unwrap();
    }
    let asked = w.entra.token_requests();
    for t in &survivors {
        let token = b.get_token(t, &[VAULT]).await.unwrap();
        assert!(
            token.secret() == tokens[t].secret(),
            "{t} was not shared: {:?}",
            b.stats()
        );
    }
    assert_eq!(
        w.entra.token_requests(),
        asked,
        "tokens on the surviving masters were not shared during the outage: {:?}",
        b.stats()
    );

    // Offboarded during the outage: B cannot write the tombstone yet and keeps it.
    let offboarded = on[victim][0].clone();
    b.invalidate_tenant(&offboarded).await;
    cluster.nodes[victim].thaw();
    cluster.wait_until_ok();
    let tombstones = cluster.nodes[victim].keys("*}:x");
    let mut written = false;
    for round in 0..60 {
        w.clock.advance(Duration::from_secs(2));
        b.get_token(&consented(&w, &format!("n{round}.example")), &[VAULT])
            .await
            .unwrap();
        if cluster.nodes[victim].keys("*}:x") != tombstones {
            written = true;
            break;
        }
        pause(100).await;
    }
    assert!(written, "B never wrote the tombstone it kept");
    let c = replica(&w, &backend);
    for (who, r) in [("B", &b), ("C", &c)] {
        let token = r.get_token(&offboarded, &[VAULT]).await.unwrap();
        assert!(
            token.secret() != tokens[&offboarded].secret(),
            "{who} was served a token of a tenant offboarded during the outage"
        );
    }
}
