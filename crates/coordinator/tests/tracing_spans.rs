//! Tracing: every event of a statement carries the session id and the global transaction's GXID.
//!
//! In a test binary of its own: `tracing` caches each callsite's interest process-wide, and a
//! callsite first hit by a concurrently running test (with no subscriber in scope) could be cached
//! as "never" just as this test's scoped subscriber is installed (the test failed that way, rarely,
//! while it shared a binary with the other cluster tests).
#![cfg(not(madsim))]

mod common;
use common::*;

use pgxc_coordinator::session::CoordSession;

/// Tracing: every event of a statement carries the session id and the global transaction's GXID.
#[tokio::test(flavor = "current_thread")]
async fn tracing_spans_carry_session_and_gxid() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("pgxc_coordinator=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let c = cluster(2, 1).await;
    let mut s = CoordSession::new(&c.coords[0]).expect("session");
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        q(&mut s, "CREATE TABLE traced (a int)").await;
    }
    let out = String::from_utf8(buf.0.lock().expect("buffer").clone()).expect("utf8");
    let line = out
        .lines()
        .find(|l| l.contains("global transaction begins"))
        .unwrap_or_else(|| panic!("no event:\n{out}"));
    assert!(
        line.contains("session{id=") && line.contains("gxid="),
        "{line}"
    );
}
