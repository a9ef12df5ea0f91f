//! Invalidation reaches L2 before it returns, and through tombstones it reaches every
//! replica's L2 reads, whatever that replica knows. What it cannot reach is another
//! replica's memory: that replica keeps its token until it refreshes or it expires.

use std::time::Duration;

use super::servers::{Redis, Relay};
use super::{Backend, keys, on_both, replica, replica_with};
use crate::common::{VAULT, World};
use azure_cross_tenant::{L2Store, RedisStore, SharedCache};

on_both!(
    a_tenant_invalidation_reaches_replicas_that_never_saw_the_tenant,
    invalidate_all_reaches_every_replicas_l2_reads,
    a_token_fetched_while_its_tenant_was_invalidated_is_not_served_from_l2,
    a_refused_token_leaves_l2_only_while_l2_still_holds_it,
    a_token_fetched_while_its_entry_was_invalidated_is_not_served_from_l2,
    a_tombstone_written_late_never_replaces_a_later_one,
);
on_both!(current_thread: invalidate_removes_the_token_from_l2_before_it_returns);

/// One thread, so nothing runs between `invalidate` returning and the next call unless
/// `invalidate` itself waited for it: a delete left to a background task would reach
/// Redis after the next lookup.
async fn invalidate_removes_the_token_from_l2_before_it_returns(backend: Backend) {
    let w = World::new().await;
    let a = replica(&w, &backend);
    let old = a.get_token(&w.customer, &[VAULT]).await.unwrap();
    a.invalidate(&w.customer, &[VAULT]).await;
    let again = a.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_ne!(
        again.secret(),
        old.secret(),
        "the invalidated token came back from L2"
    );
    assert_eq!(w.entra.token_requests(), 2);
}

async fn a_tenant_invalidation_reaches_replicas_that_never_saw_the_tenant(backend: Backend) {
    let w = World::new().await;
    let a = replica(&w, &backend);
    let old = a.get_token(&w.customer, &[VAULT]).await.unwrap();
    // B never asked for this tenant: it knows none of its keys.
    let b = replica(&w, &backend);
    b.invalidate_tenant(&w.customer).await;

    let c = replica(&w, &backend);
    let fresh = c.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_ne!(
        fresh.secret(),
        old.secret(),
        "C was served the invalidated token from L2"
    );
    assert_eq!(w.entra.token_requests(), 2);
    // What a tombstone cannot do: A's memory keeps its token until refresh or expiry.
    assert!(
        a.get_token(&w.customer, &[VAULT])
            .await
            .unwrap()
            .ptr_eq(&old)
    );

    // Tokens fetched after the invalidation are shared again.
    w.clock.advance(Duration::from_millis(1));
    let d = replica(&w, &backend);
    c.invalidate(&w.customer, &[VAULT]).await;
    w.clock.advance(Duration::from_millis(1));
    let newest = c.get_token(&w.customer, &[VAULT]).await.unwrap();
    let read = d.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(
        read.secret(),
        newest.secret(),
        "values stored after the tombstone are served"
    );
}

async fn invalidate_all_reaches_every_replicas_l2_reads(backend: Backend) {
    let w = World::new().await;
    let stranger = w.stranger.clone();
    w.entra.consent(&stranger, &w.app);
    let a = replica(&w, &backend);
    let old_customer = a.get_token(&w.customer, &[VAULT]).await.unwrap();
    let old_stranger = a.get_token(&stranger, &[VAULT]).await.unwrap();
    let b = replica(&w, &backend);
    b.invalidate_all().await;

    let c = replica(&w, &backend);
    let customer = c.get_token(&w.customer, &[VAULT]).await.unwrap();
    let other = c.get_token(&stranger, &[VAULT]).await.unwrap();
    assert_ne!(customer.secret(), old_customer.secret());
    assert_ne!(other.secret(), old_stranger.secret());
    assert_eq!(w.entra.token_requests(), 4);
}

/// Offboarding while a replica's token request is in flight: the token it brings back
/// was asked for before the invalidation, so no other replica gets it from L2.
async fn a_token_fetched_while_its_tenant_was_invalidated_is_not_served_from_l2(backend: Backend) {
    let w = World::new().await;
    w.entra.set_latency(Duration::from_millis(300));
    let a = replica(&w, &backend);
    let in_flight = {
        let (a, customer) = (a.clone(), w.customer.clone());
        tokio::spawn(async move { a.get_token(&customer, &[VAULT]).await.unwrap() })
    };
    for _ in 0..200 {
        if w.entra.token_requests() == 1 {
            break;
        }
        tokio::task::yield_now().await;
        // Waiting for A's request to reach the mock: real time, bounded.
        #[allow(clippy::disallowed_methods)]
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(w.entra.token_requests(), 1, "A's request is in flight");
    replica(&w, &backend).invalidate_tenant(&w.customer).await;
    assert!(!in_flight.is_finished(), "the request was still in flight");
    let stale = in_flight.await.unwrap();

    w.entra.set_latency(Duration::ZERO);
    let c = replica(&w, &backend);
    let token = c.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_ne!(
        token.secret(),
        stale.secret(),
        "C was served a token asked for before the invalidation"
    );
}

/// `invalidate` of one entry while a token request for it is in flight, on another
/// replica or on the one that invalidates: the token it brings back was asked for before
/// the invalidation, so no replica gets it from L2 afterwards (the other replica's own
/// memory is out of reach, as for a tenant invalidation).
async fn a_token_fetched_while_its_entry_was_invalidated_is_not_served_from_l2(backend: Backend) {
    let w = World::new().await;
    let (a, b, c) = (
        replica(&w, &backend),
        replica(&w, &backend),
        replica(&w, &backend),
    );
    for (fetching, invalidating) in [(&b, &a), (&a, &a)] {
        w.entra.set_latency(Duration::from_millis(300));
        let asked = w.entra.token_requests();
        let in_flight = {
            let (r, customer) = (fetching.clone(), w.customer.clone());
            tokio::spawn(async move { r.get_token(&customer, &[VAULT]).await.unwrap() })
        };
        for _ in 0..200 {
            if w.entra.token_requests() > asked {
                break;
            }
            // Waiting for the request to reach the mock: real time, bounded.
            #[allow(clippy::disallowed_methods)]
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            w.entra.token_requests(),
            asked + 1,
            "a request is in flight"
        );
        invalidating.invalidate(&w.customer, &[VAULT]).await;
        assert!(!in_flight.is_finished(), "the request was still in flight");
        let stale = in_flight.await.unwrap();

        w.entra.set_latency(Duration::ZERO);
        w.clock.advance(Duration::from_millis(1));
        for (who, r) in [("the invalidating replica", invalidating), ("C", &c)] {
            let token = r.get_token(&w.customer, &[VAULT]).await.unwrap();
            assert_ne!(
                token.secret(),
                stale.secret(),
                "{who} was served a token asked for before the invalidation"
            );
        }
        for r in [&a, &b, &c] {
            r.invalidate(&w.customer, &[VAULT]).await;
        }
        w.clock.advance(Duration::from_millis(1));
    }
}

/// After a resource refused a token: the replica that saw the 401 drops it from L2, but
/// a newer token another replica stored meanwhile stays (one refetch, not one per 401).
async fn a_refused_token_leaves_l2_only_while_l2_still_holds_it(backend: Backend) {
    let w = World::new().await;
    let a = replica(&w, &backend);
    let b = replica(&w, &backend);
    let first = a.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(
        b.get_token(&w.customer, &[VAULT]).await.unwrap().secret(),
        first.secret()
    );

    b.invalidate_if_current(&w.customer, &[VAULT], &first).await;
    let second = b.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_ne!(second.secret(), first.secret());
    assert_eq!(w.entra.token_requests(), 2);

    // A's 401 for the same old token: A drops its copy, L2 keeps B's newer one.
    a.invalidate_if_current(&w.customer, &[VAULT], &first).await;
    let from_l2 = a.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_eq!(from_l2.secret(), second.secret());
    assert_eq!(
        w.entra.token_requests(),
        2,
        "the newer token in L2 survived"
    );
}

/// An invalidation that cannot reach Redis is written when Redis is reachable again, and
/// the replica that made it stays off L2 until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
async fn an_invalidation_l2_missed_is_written_when_l2_is_back() {
    let redis = Redis::start();
    let relay = Relay::start(redis.port, Duration::ZERO).await;
    let backend = Backend::Single(redis);
    let w = World::new().await;
    let a = replica(&w, &backend);
    let old = a.get_token(&w.customer, &[VAULT]).await.unwrap();
    // B reaches Redis only through the relay.
    let b = replica_with(
        &w,
        SharedCache::new(
            std::sync::Arc::new(RedisStore::new(&relay.url()).unwrap()),
            keys("k1", 1),
        )
        .timeout(Duration::from_millis(500)),
    );
    assert_eq!(
        b.get_token(&w.customer, &[VAULT]).await.unwrap().secret(),
        old.secret()
    );

    relay.cut();
    b.invalidate_tenant(&w.customer).await;
    // B does not read L2 meanwhile: it would find the token it just invalidated.
    let from_b = b.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert_ne!(from_b.secret(), old.secret());

    relay.restore().await;
    let mut written = false;
    for attempt in 0..60 {
        w.clock.advance(Duration::from_secs(2));
        let t = w.entra.add_tenant(&format!("nudge{attempt}.example"));
        w.entra.consent(&t, &w.app);
        b.get_token(&t, &[VAULT]).await.unwrap();
        let c = replica(&w, &backend);
        if c.get_token(&w.customer, &[VAULT]).await.unwrap().secret() != old.secret() {
            written = true;
            break;
        }
        // Waiting for B's background probe over real sockets: bounded.
        #[allow(clippy::disallowed_methods)]
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(written, "the tombstone never reached Redis");
}

/// Pending invalidations are written even if the probe writing them runs out of time
/// mid-flush: Redis answers `PING` but holds every write (`CLIENT PAUSE WRITE`), so each
/// pending tombstone's write times out in turn until the probe's own deadline fires; the
/// held writes are then dropped with their connections. Every tombstone must still reach
/// Redis before B (or anyone) is served an offboarded tenant's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
async fn pending_invalidations_survive_a_probe_that_ran_out_of_time_writing_them() {
    let redis = Redis::start();
    let backend = Backend::Single(redis);
    let Backend::Single(server) = &backend else {
        unreachable!()
    };
    let w = World::new().await;
    w.entra.consent(&w.stranger, &w.app);
    let a = replica(&w, &backend);
    let mut offboarded = vec![w.customer.clone()];
    for i in 0..4 {
        let t = w.entra.add_tenant(&format!("leaving{i}.example"));
        w.entra.consent(&t, &w.app);
        offboarded.push(t);
    }
    let mut old = Vec::new();
    for t in &offboarded {
        old.push(a.get_token(t, &[VAULT]).await.unwrap());
    }
    let b = replica(&w, &backend);

    server.cli(&["CLIENT", "PAUSE", "120000", "WRITE"]);
    // Each tombstone write hangs past B's call timeout: B keeps them pending.
    for t in &offboarded {
        b.invalidate_tenant(t).await;
    }
    // B's next call starts a probe: PING is answered, then each write hangs in turn.
    b.get_token(&w.stranger, &[VAULT]).await.unwrap();
    // Longer than the probe's deadline (real time: the server holds the writes).
    #[allow(clippy::disallowed_methods)]
    tokio::time::sleep(Duration::from_secs(13)).await;
    // The held writes go with their connections; writes are served again.
    server.cli(&["CLIENT", "KILL", "TYPE", "normal"]);
    server.cli(&["CLIENT", "UNPAUSE"]);

    let mut back = false;
    for attempt in 0..60 {
        w.clock.advance(Duration::from_secs(2));
        let t = w.entra.add_tenant(&format!("after{attempt}.example"));
        w.entra.consent(&t, &w.app);
        let from_b = b.get_token(&t, &[VAULT]).await.unwrap();
        let reader = replica(&w, &backend);
        if reader.get_token(&t, &[VAULT]).await.unwrap().secret() == from_b.secret() {
            back = true;
            break;
        }
        // Waiting for B's background probe over real sockets: bounded.
        #[allow(clippy::disallowed_methods)]
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "B never used L2 again");
    let c = replica(&w, &backend);
    for (who, r) in [("B", &b), ("C", &c)] {
        for (t, old) in offboarded.iter().zip(&old) {
            let token = r.get_token(t, &[VAULT]).await.unwrap();
            assert!(
                token.secret() != old.secret(),
                "{who} was served the token of {t}, offboarded before"
            );
        }
    }
}

/// A replica that writes an invalidation late (it had postponed it while Redis was out of
/// reach) must not undo a later one another replica wrote meanwhile: the values fetched
/// between the two would be served again. Of tombstones written in any order, even at
/// once from many connections, the latest stands; junk at the key is replaced.
async fn a_tombstone_written_late_never_replaces_a_later_one(backend: Backend) {
    let ttl = Duration::from_secs(60);
    let mut raw = backend.raw().await;
    let late = backend.store();
    late.put_tombstone("{act-test}t", 2_000, ttl).await.unwrap();
    late.put_tombstone("{act-test}t", 1_000, ttl).await.unwrap();
    assert_eq!(raw.get("{act-test}t").await.as_deref(), Some(&b"2000"[..]));

    let stores: Vec<_> = (0..8)
        .map(|_| std::sync::Arc::new(backend.store()))
        .collect();
    let mut writers = tokio::task::JoinSet::new();
    for (i, store) in stores.iter().enumerate() {
        let store = store.clone();
        writers.spawn(async move {
            for round in 0..25_u64 {
                // Times from every writer interleave; the latest is 1_700_000_000_000 + 199.
                let at = 1_700_000_000_000 + (round * 8 + i as u64) % 200;
                store
                    .put_tombstone("{act-test}race", at, ttl)
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    assert_eq!(
        raw.get("{act-test}race").await.as_deref(),
        Some(&b"1700000000199"[..])
    );

    raw.set("{act-test}junk", b"not a time").await;
    late.put_tombstone("{act-test}junk", 5, ttl).await.unwrap();
    assert_eq!(raw.get("{act-test}junk").await.as_deref(), Some(&b"5"[..]));
}
