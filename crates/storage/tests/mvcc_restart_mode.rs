//! The store's restart mode (what the SQL engine uses where no thread may block, e.g. under
//! madsim): a transaction with `Txn::set_report_waits(true)` gets the "would block" error naming
//! the holder instead of waiting; `Store::wait_until_ended` is the wait, with deadlock detection;
//! `Store::set_inline_commits` makes commits complete in their first poll.
#![cfg(not(madsim))]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use pgxc_common::SqlState;
use pgxc_storage::mvcc::{
    would_block, Isolation, LocalGtm, Outcome, RelId, Store, StoreConfig, Tid,
};
use pgxc_storage::{Disk, SimDisk};

/// Poll `f` once with a no-op waker, as the engine's restart mode does.
fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
    let mut f = pin!(f);
    f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

async fn setup() -> (Store, LocalGtm, RelId, Vec<Tid>) {
    let store = Store::open(
        &Disk::sim(SimDisk::new()),
        "dn.redb",
        StoreConfig::default(),
    )
    .expect("open");
    let mut gtm = LocalGtm::default();
    let x = gtm.begin();
    let mut t = store
        .begin(x, Isolation::ReadCommitted, gtm.snapshot())
        .expect("begin");
    let table = t.create_table("t").await.expect("create");
    let mut tids = Vec::new();
    for i in 0..2i64 {
        tids.push(
            t.insert(table, format!("{i}").as_bytes(), &[])
                .await
                .expect("insert"),
        );
    }
    t.commit().await.expect("commit");
    gtm.end(x);
    (store, gtm, table, tids)
}

#[tokio::test]
async fn a_reported_wait_names_the_holder_and_restarts_after_it_ends() {
    let (store, mut gtm, table, tids) = setup().await;
    store.set_inline_commits(true);
    let (h, w) = (gtm.begin(), gtm.begin());
    let mut holder = store
        .begin(h, Isolation::ReadCommitted, gtm.snapshot())
        .expect("begin holder");
    let mut waiter = store
        .begin(w, Isolation::ReadCommitted, gtm.snapshot())
        .expect("begin waiter");
    waiter.set_report_waits(true);
    assert!(matches!(
        holder
            .update(table, tids[0], b"h", &[])
            .await
            .expect("holder update"),
        Outcome::Done(_)
    ));
    // The waiter's update comes back at once (first poll) with the holder's GXID.
    let e = match poll_once(waiter.update(table, tids[0], b"w", &[])) {
        Poll::Ready(Err(e)) => e,
        other => panic!(
            "expected the would-block error at once, got {:?}",
            other.map(|r| r.is_ok())
        ),
    };
    assert_eq!(e.code, SqlState::LockNotAvailable);
    assert_eq!(would_block(&e), Some(h));
    assert_eq!(store.waiting_for(w), None, "no wait stays registered");
    // Other errors are not "would block".
    assert_eq!(
        would_block(&pgxc_common::PgError::new(
            SqlState::LockNotAvailable,
            "lock timeout"
        )),
        None
    );

    // The wait: pending while the holder runs; the holder's inline commit completes in its first
    // poll and wakes it.
    let wait = store.wait_until_ended(Some(w), h, None);
    let mut wait = pin!(wait);
    assert!(poll_once(wait.as_mut()).is_pending());
    assert_eq!(store.waiting_for(w), Some(h));
    match poll_once(holder.commit()) {
        Poll::Ready(Ok(Some(_))) => {}
        _ => panic!("an inline commit completes in its first poll"),
    }
    gtm.end(h);
    wait.await.expect("the wait ends with the holder");
    assert_eq!(store.waiting_for(w), None);
    // Restarted, the update finds the holder's committed version (READ COMMITTED: Changed).
    match waiter
        .update(table, tids[0], b"w", &[])
        .await
        .expect("retry")
    {
        Outcome::Changed(_) | Outcome::Done(_) => {}
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn waiting_in_a_cycle_is_a_deadlock_and_an_ended_holder_needs_no_wait() {
    let (store, mut gtm, table, tids) = setup().await;
    let (a, b) = (gtm.begin(), gtm.begin());
    let mut ta = store
        .begin(a, Isolation::ReadCommitted, gtm.snapshot())
        .expect("a");
    let mut tb = store
        .begin(b, Isolation::ReadCommitted, gtm.snapshot())
        .expect("b");
    ta.set_report_waits(true);
    tb.set_report_waits(true);
    ta.update(table, tids[0], b"a", &[])
        .await
        .expect("a locks row 0");
    tb.update(table, tids[1], b"b", &[])
        .await
        .expect("b locks row 1");
    let e = ta
        .update(table, tids[1], b"a", &[])
        .await
        .expect_err("a meets b");
    assert_eq!(would_block(&e), Some(b));
    // a waits for b ...
    let wait_a = store.wait_until_ended(Some(a), b, None);
    let mut wait_a = pin!(wait_a);
    assert!(poll_once(wait_a.as_mut()).is_pending());
    // ... so b meeting a closes a cycle: 40P01 at once (the check runs before reporting a wait),
    // and so does b asking to wait for a.
    let e = tb
        .update(table, tids[0], b"b", &[])
        .await
        .expect_err("b meets a");
    assert_eq!(e.code, SqlState::DeadlockDetected);
    assert_eq!(would_block(&e), None);
    let e = store
        .wait_until_ended(Some(b), a, None)
        .await
        .expect_err("deadlock");
    assert_eq!(e.code, SqlState::DeadlockDetected);
    // b gives up; a's wait ends.
    tb.rollback();
    wait_a.await.expect("a's wait ends when b rolls back");
    // Waiting for a transaction that already ended returns at once.
    store
        .wait_until_ended(None, b, None)
        .await
        .expect("no wait");
}
