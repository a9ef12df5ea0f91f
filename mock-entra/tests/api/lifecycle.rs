//! MockEntra's own lifecycle, as users' tests meet it.

use std::time::Duration;

use mock_entra::MockEntra;

/// wiremock's server blocks on a tokio lock when dropped; in a task that spent its
/// cooperative budget (it awaited many ready things) that used to spin forever. The
/// scenario runs on its own thread so a regression fails this test instead of hanging.
#[test]
fn dropping_the_mock_after_a_busy_test_returns() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let entra = MockEntra::start().await;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            for i in 0..128 {
                tx.send(i).unwrap();
            }
            // Each ready recv spends one unit of the task's budget (128 per poll), so the
            // drop below happens with none left.
            tokio::task::yield_now().await;
            for _ in 0..128 {
                rx.recv().await.unwrap();
            }
            drop(entra);
        });
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("dropping MockEntra hung");
}

#[tokio::test]
async fn clones_share_one_server_that_lives_until_the_last_clone() {
    let entra = MockEntra::start().await;
    let tenant = entra.add_tenant("contoso.example");
    let clone = entra.clone();
    drop(entra);
    let url = format!(
        "{}{}/v2.0/.well-known/openid-configuration",
        clone.uri(),
        tenant
    );
    let status = reqwest::get(url).await.unwrap().status();
    assert_eq!(status, 200);
    assert_eq!(clone.metadata_requests(), 1);
}

#[tokio::test]
async fn the_mock_never_prints_its_secrets() {
    let entra = MockEntra::start().await;
    let home = entra.add_tenant("provider.example");
    let app = entra.register_app(&home, "saas");
    let secret = entra.add_secret(&app);
    let expired = entra.add_expired_secret(&app);
    let debug = format!("{entra:?}");
    assert!(
        !debug.contains(&secret) && !debug.contains(&expired),
        "{debug}"
    );
    assert!(debug.contains("<redacted>"));
}
