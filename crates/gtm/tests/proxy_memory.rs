//! The GTM proxy in front of an in-memory GTM: local sessions, one upstream session, orphan aborts.

use pgxc_common::SqlState;
use pgxc_gtm::client::{ClientOptions, GtmClient};
use pgxc_gtm::proxy::GtmProxy;
use pgxc_gtm::server::{GtmServer, Replication, ServerConfig};
use std::time::Duration;

#[tokio::test]
async fn proxy_multiplexes_and_aborts_orphans() {
    let srv = GtmServer::start(ServerConfig::new(1, "127.0.0.1:0"), Replication::Memory)
        .await
        .unwrap();
    let gtm = vec![srv.local_addr().to_string()];
    let proxy = GtmProxy::start("127.0.0.1:0", gtm.clone()).await.unwrap();
    let paddr = vec![proxy.local_addr().to_string()];
    let watcher = GtmClient::connect(gtm, ClientOptions::default())
        .await
        .unwrap();

    let c1 = GtmClient::connect(paddr.clone(), ClientOptions::default())
        .await
        .unwrap();
    let c2 = GtmClient::connect(paddr.clone(), ClientOptions::default())
        .await
        .unwrap();
    // Proxy-local sessions, distinct per downstream connection; one GTM session upstream.
    assert_ne!(c1.session(), c2.session());
    assert!(proxy.upstream().session().is_some());

    // Many concurrent downstream requests through the one upstream link.
    let mut hs = Vec::new();
    for i in 0..40 {
        let c = if i % 2 == 0 { c1.clone() } else { c2.clone() };
        hs.push(tokio::spawn(async move {
            let (g, s) = c.begin_snapshot().await.unwrap();
            assert!(s.is_running(g));
            c.commit(g).await.unwrap();
            g
        }));
    }
    let mut gs = Vec::new();
    for h in hs {
        gs.push(h.await.unwrap());
    }
    gs.sort();
    gs.dedup();
    assert_eq!(gs.len(), 40);

    // Sequences and errors pass through.
    c1.create_sequence("s", Default::default(), false)
        .await
        .unwrap();
    assert_eq!(c1.nextval("s").await.unwrap(), 1);
    assert_eq!(c2.nextval("s").await.unwrap(), 2);
    assert_eq!(
        c2.nextval("missing").await.unwrap_err().code,
        SqlState::UndefinedTable
    );

    // A downstream connection that closes with open transactions: the proxy aborts them upstream.
    let kept = c1.begin().await.unwrap();
    let orphan = c2.begin().await.unwrap();
    let (orphan2, _) = c2.begin_snapshot().await.unwrap();
    let s = watcher.snapshot(None).await.unwrap();
    assert!(s.is_running(kept) && s.is_running(orphan) && s.is_running(orphan2));
    drop(c2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let s = watcher.snapshot(None).await.unwrap();
        if !s.is_running(orphan) && !s.is_running(orphan2) {
            assert!(s.is_running(kept), "{s}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "orphans not aborted: {s}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c1.commit(kept).await.unwrap();
    assert!(watcher.snapshot(None).await.unwrap().xip.is_empty());
    proxy.shutdown().await;
    srv.shutdown().await;
}
