//! The client library's session handling: expiry (lost transactions fail with 08006, a new session is opened)
//! and the commit fence (no Commit once the lease lapsed without re-registering).

use pgxc_common::frame::{read_frame, write_frame};
use pgxc_common::{Gxid, SqlState};
use pgxc_gtm::client::{ClientOptions, GtmClient};
use pgxc_gtm::core::CoreConfig;
use pgxc_gtm::proto::{ClientBatch, Hello, Request, Response, ServerBatch};
use pgxc_gtm::server::{GtmServer, Replication, ServerConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

#[tokio::test]
async fn expired_session_loses_open_transactions() {
    let mut cfg = ServerConfig::new(1, "127.0.0.1:0");
    cfg.core = CoreConfig {
        session_timeout_ms: 300,
        ..CoreConfig::default()
    };
    let srv = GtmServer::start(cfg, Replication::Memory).await.unwrap();
    let addrs = vec![srv.local_addr().to_string()];
    // Keepalives far apart and a long lease: the GTM times the session out while the client still holds it.
    let opts = ClientOptions {
        keepalive_ms: 5_000,
        lease_ms: 10_000,
        ..ClientOptions::default()
    };
    let c = GtmClient::connect(addrs.clone(), opts).await.unwrap();
    let watcher = GtmClient::connect(addrs, ClientOptions::default())
        .await
        .unwrap();
    let s1 = c.session().unwrap();
    let g1 = c.begin().await.unwrap();
    let g2 = c.begin().await.unwrap();
    assert!(watcher.snapshot(None).await.unwrap().is_running(g1));

    tokio::time::sleep(Duration::from_millis(700)).await;
    // The GTM closed the session: its transactions left the running set.
    let snap = watcher.snapshot(None).await.unwrap();
    assert!(!snap.is_running(g1) && !snap.is_running(g2), "{snap}");

    let e = c.snapshot(Some(g1)).await.unwrap_err();
    assert_eq!(e.code, SqlState::ConnectionFailure, "{e}");
    // The other lost transaction fails its next call too, without reaching the GTM.
    let e = c.commit(g2).await.unwrap_err();
    assert_eq!(e.code, SqlState::ConnectionFailure, "{e}");
    assert!(e.message.contains("lost"), "{e}");
    // A new session works.
    let g3 = c.begin().await.unwrap();
    assert!(g3 > g2);
    assert_ne!(c.session(), Some(s1));
    assert!(c.session().is_some());
    c.commit(g3).await.unwrap();
    srv.shutdown().await;
}

/// A fake GTM that answers Register and one Begin on its first connection only, and nothing else (a stalled or partitioned
/// leader whose TCP connection stays up).
async fn silent_gtm(answered: Arc<Mutex<Vec<Request>>>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let live = first;
            first = false;
            let answered = answered.clone();
            tokio::spawn(async move {
                let _: Hello = read_frame(&mut s).await.unwrap();
                let mut begun = false;
                while let Ok(b) = read_frame::<_, ClientBatch>(&mut s).await {
                    let mut out = Vec::new();
                    for (id, r) in b.requests {
                        answered.lock().unwrap().push(r.clone());
                        if !live {
                            continue;
                        }
                        match r {
                            Request::Register { .. } => {
                                out.push((id, Response::Registered { session: 7 }))
                            }
                            Request::Begin if !begun => {
                                begun = true;
                                out.push((id, Response::Gxid(Gxid(100))));
                            }
                            _ => {}
                        }
                    }
                    if !out.is_empty() {
                        write_frame(&mut s, &ServerBatch { responses: out })
                            .await
                            .unwrap();
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn connect_fails_when_no_leader_answers() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = silent_gtm(seen.clone()).await;
    let opts = ClientOptions {
        lease_ms: 300,
        keepalive_ms: 100,
        retry_deadline_ms: 1_000,
        ..ClientOptions::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    // connect() waits for its first KeepAlive answer, which the fake never gives: 08006 after the deadline.
    tokio::spawn(async move {
        let r = GtmClient::connect(vec![addr], opts).await;
        let _ = tx.send(r.map(|_| ()));
    });
    let r = rx.await.unwrap();
    assert_eq!(r.unwrap_err().code, SqlState::ConnectionFailure);
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|r| matches!(r, Request::Register { session: None, .. })));
}

#[tokio::test]
async fn commit_refused_once_lease_lapsed() {
    // A real in-memory GTM reached through a TCP relay that the test can freeze.
    let srv = GtmServer::start(ServerConfig::new(1, "127.0.0.1:0"), Replication::Memory)
        .await
        .unwrap();
    let upstream = srv.local_addr().to_string();
    let relay = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = relay.local_addr().unwrap().to_string();
    let frozen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fz = frozen.clone();
    tokio::spawn(async move {
        loop {
            let (down, _) = relay.accept().await.unwrap();
            let up = tokio::net::TcpStream::connect(upstream.as_str())
                .await
                .unwrap();
            let fz = fz.clone();
            tokio::spawn(async move {
                let (mut dr, mut dw) = tokio::io::split(down);
                let (mut ur, mut uw) = tokio::io::split(up);
                let a = tokio::io::copy(&mut dr, &mut uw);
                // Server→client bytes are dropped while frozen (the leader "answers nothing").
                let b = async {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 65536];
                    loop {
                        let n = ur.read(&mut buf).await?;
                        if n == 0 {
                            return Ok::<_, std::io::Error>(());
                        }
                        if !fz.load(std::sync::atomic::Ordering::SeqCst) {
                            dw.write_all(&buf[..n]).await?;
                            dw.flush().await?;
                        }
                    }
                };
                let _ = tokio::join!(a, b);
            });
        }
    });
    let opts = ClientOptions {
        lease_ms: 300,
        keepalive_ms: 50,
        ..ClientOptions::default()
    };
    let c = GtmClient::connect(vec![relay_addr], opts).await.unwrap();
    let watcher = GtmClient::connect(vec![srv.local_addr().to_string()], ClientOptions::default())
        .await
        .unwrap();
    let g = c.begin().await.unwrap();
    assert!(c.lease_ok());
    frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!c.lease_ok());
    let e = c.commit(g).await.unwrap_err();
    assert_eq!(e.code, SqlState::ConnectionFailure, "{e}");
    assert!(e.message.contains("cannot commit"), "{e}");
    // The refused commit never reached the GTM: g is still running there (until the client's best-effort
    // abort gets through after it re-registered).
    assert!(watcher.snapshot(None).await.unwrap().is_running(g));
    frozen.store(false, std::sync::atomic::Ordering::SeqCst);
    // Once re-registered (lease restored), new transactions commit; the fenced one was aborted.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(g2) = c.begin().await {
            c.commit(g2).await.unwrap();
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while watcher.snapshot(None).await.unwrap().is_running(g) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fenced transaction never aborted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    srv.shutdown().await;
}
