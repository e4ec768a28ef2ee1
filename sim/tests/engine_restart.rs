//! The SQL engine and its MVCC store on one task-driven runtime, with no thread: an engine in
//! `WaitMode::Restart` on a simulated disk, sessions on async tasks running statements through
//! `Session::execute_async`, conflicting row updates (a statement that meets a lock holder rolls
//! back to its start, awaits the holder's end and runs again), deadlocks (40P01), a REPEATABLE READ
//! write conflict (40001), then a power failure of the disk (unsynced writes lost, last write
//! possibly torn) and a reopen: every acknowledged commit must be there, nothing else.
//!
//! Under madsim (`cargo sim-test --test engine_restart`) this runs `PGXC_SIM_SEEDS` seeds (default
//! 20) through the seed harness; in a normal build the same scenario runs once per seed on a
//! current-thread tokio runtime (`cargo test -p pgxc-sim --test engine_restart`), which checks the
//! restart path without the simulator.

use pgxc_sql::engine::WaitMode;
use pgxc_sql::types::Value;
use pgxc_sql::Engine;
use pgxc_storage::{Disk, SimDisk};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const ACCOUNTS: i64 = 8;
const TASKS: u64 = 4;
const TRANSFERS: u64 = 12;

fn open(disk: &SimDisk) -> Result<Arc<Engine>, String> {
    Engine::open_with_mode(&Disk::sim(disk.clone()), "dn", None, WaitMode::Restart)
        .map_err(|e| format!("open: {e}"))
}

/// `SELECT id, bal FROM acc ORDER BY id` as pairs.
async fn balances(eng: &Arc<Engine>) -> Result<Vec<(i64, i64)>, String> {
    let mut s = eng.session();
    let mut r = s
        .execute_async("SELECT id, bal FROM acc ORDER BY id")
        .await
        .map_err(|e| format!("read balances: {e}"))?;
    let rows = r.pop().ok_or("no result")?.rows;
    rows.into_iter()
        .map(|row| match row.as_slice() {
            [Value::Int8(i), Value::Int8(b)] => Ok((*i, *b)),
            other => Err(format!("unexpected row {other:?}")),
        })
        .collect()
}

async fn yields(n: usize) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

/// One seed: returns a hash of what happened (model balances, deadlock count), or what broke.
async fn scenario(seed: u64) -> Result<u64, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let disk = SimDisk::new();
    let eng = open(&disk)?;
    let mut s = eng.session();
    s.execute_async("CREATE TABLE acc (id bigint PRIMARY KEY, bal bigint)")
        .await
        .map_err(|e| format!("ddl: {e}"))?;
    let values: Vec<String> = (1..=ACCOUNTS).map(|i| format!("({i}, 100)")).collect();
    s.execute_async(&format!("INSERT INTO acc VALUES {}", values.join(", ")))
        .await
        .map_err(|e| format!("load: {e}"))?;
    let mut model: Vec<i64> = vec![100; ACCOUNTS as usize];

    // 1. A statement meets a row lock: it waits (as a pending future), then restarts and applies
    //    on top of the holder's committed update (READ COMMITTED).
    s.execute_async("BEGIN").await.map_err(|e| e.to_string())?;
    s.execute_async("UPDATE acc SET bal = bal - 5 WHERE id = 1")
        .await
        .map_err(|e| format!("holder update: {e}"))?;
    let done = Arc::new(AtomicBool::new(false));
    let waiter = {
        let eng = eng.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut b = eng.session();
            let r = b
                .execute_async("UPDATE acc SET bal = bal * 2 WHERE id = 1")
                .await;
            done.store(true, Ordering::SeqCst);
            r.map(|mut r| r.pop().map(|q| q.tag))
        })
    };
    yields(20).await;
    if done.load(Ordering::SeqCst) {
        return Err("an update of a locked row finished before the holder ended".into());
    }
    s.execute_async("COMMIT").await.map_err(|e| e.to_string())?;
    let tag = waiter
        .await
        .map_err(|e| format!("waiter task: {e}"))?
        .map_err(|e| format!("waiting update failed: {e}"))?;
    if tag.as_deref() != Some("UPDATE 1") {
        return Err(format!("waiting update answered {tag:?}"));
    }
    model[0] = (100 - 5) * 2;

    // 2. REPEATABLE READ: the waiter's snapshot predates the holder's commit: 40001 after the wait.
    s.execute_async("BEGIN").await.map_err(|e| e.to_string())?;
    s.execute_async("UPDATE acc SET bal = bal + 1 WHERE id = 2")
        .await
        .map_err(|e| e.to_string())?;
    let rr = {
        let eng = eng.clone();
        tokio::spawn(async move {
            let mut b = eng.session();
            b.execute_async("BEGIN ISOLATION LEVEL REPEATABLE READ")
                .await?;
            b.execute_async("SELECT bal FROM acc WHERE id = 2").await?;
            let r = b
                .execute_async("UPDATE acc SET bal = bal + 100 WHERE id = 2")
                .await;
            let _ = b.execute_async("ROLLBACK").await;
            r.map(|_| ())
        })
    };
    yields(20).await;
    s.execute_async("COMMIT").await.map_err(|e| e.to_string())?;
    match rr.await.map_err(|e| format!("rr task: {e}"))? {
        Err(e) if e.code == pgxc_common::SqlState::SerializationFailure => {}
        other => {
            return Err(format!(
                "REPEATABLE READ after a concurrent update: {other:?}"
            ))
        }
    }
    model[1] += 1;

    // 3. Concurrent transfers between random accounts; deadlocks are expected and rolled back.
    let committed = Arc::new(Mutex::new(Vec::<(usize, usize, i64)>::new()));
    let deadlocks = Arc::new(Mutex::new(0u64));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let eng = eng.clone();
        let committed = committed.clone();
        let deadlocks = deadlocks.clone();
        let task_seed: u64 = rng.gen();
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(task_seed);
            let mut s = eng.session();
            for _ in 0..TRANSFERS {
                let from = rng.gen_range(1..=ACCOUNTS);
                let mut to = rng.gen_range(1..=ACCOUNTS);
                if to == from {
                    to = from % ACCOUNTS + 1;
                }
                let amount = rng.gen_range(1..=20i64);
                let steps = [
                    "BEGIN".to_string(),
                    format!("UPDATE acc SET bal = bal - {amount} WHERE id = {from}"),
                    format!("UPDATE acc SET bal = bal + {amount} WHERE id = {to}"),
                    "COMMIT".to_string(),
                ];
                let mut failed = None;
                for step in &steps {
                    if let Err(e) = s.execute_async(step).await {
                        failed = Some(e);
                        break;
                    }
                    yields(rng.gen_range(0..4)).await;
                }
                match failed {
                    None => {
                        committed
                            .lock()
                            .unwrap()
                            .push((from as usize - 1, to as usize - 1, amount))
                    }
                    Some(e) if e.code == pgxc_common::SqlState::DeadlockDetected => {
                        *deadlocks.lock().unwrap() += 1;
                        s.execute_async("ROLLBACK")
                            .await
                            .map_err(|e| format!("rollback after deadlock: {e}"))?;
                    }
                    Some(e) => return Err(format!("transfer {from}->{to}: {e}")),
                }
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| format!("transfer task: {e}"))??;
    }
    let transfers = committed.lock().unwrap().clone();
    for (from, to, amount) in &transfers {
        model[*from] -= amount;
        model[*to] += amount;
    }
    let expected: Vec<(i64, i64)> = (1..=ACCOUNTS).zip(model.iter().copied()).collect();
    let got = balances(&eng).await?;
    if got != expected {
        return Err(format!(
            "after the transfers: balances {got:?}, model {expected:?}"
        ));
    }

    // 4. Power failure: unsynced writes are lost (a random prefix survives, possibly torn). Every
    //    acknowledged commit must survive the reopen.
    let report = disk.crash(&mut rng);
    drop(s);
    drop(eng);
    let eng = open(&disk)?;
    let after = balances(&eng).await?;
    if after != expected {
        return Err(format!(
            "after a crash ({report:?}): balances {after:?}, acknowledged {expected:?}"
        ));
    }
    let dl = *deadlocks.lock().unwrap();
    println!(
        "PGXC_SIM_SUMMARY {} transfers committed, {dl} deadlocks",
        transfers.len()
    );
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in model.iter().chain(std::iter::once(&(dl as i64))) {
        h ^= *v as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Ok(h)
}

#[cfg(madsim)]
#[test]
fn engine_restart() {
    pgxc_sim::harness::run_seeds(
        "engine_restart",
        20,
        2,
        std::time::Duration::from_secs(600),
        || async { scenario(pgxc_sim::harness::current_seed()).await },
    );
}

#[cfg(not(madsim))]
#[test]
fn engine_restart_on_tokio() {
    for seed in 1..=3u64 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        if let Err(e) = rt.block_on(scenario(seed)) {
            panic!("seed {seed}: {e}");
        }
    }
}
