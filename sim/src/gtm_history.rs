//! The GTM history a simulation records, and the checkers that judge it.
//!
//! Times are simulated nanoseconds since the scenario started. The checkers are pure and run in normal mode
//! too, so their own tests (below) show each one catches the violation it is for.

use pgxc_common::{Gxid, Snapshot};
use std::collections::{BTreeMap, BTreeSet};

/// One client-observed event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A Begin/BeginSnapshot request was sent at `sent` and answered at `at` with `gxid`.
    Begun {
        /// Client number.
        client: u32,
        /// Issued GXID.
        gxid: Gxid,
        /// Request send time.
        sent: u64,
        /// Reply time.
        at: u64,
    },
    /// A snapshot request sent at `sent` was answered at `at`.
    Snap {
        /// Client number.
        client: u32,
        /// The snapshot.
        snapshot: Snapshot,
        /// Request send time.
        sent: u64,
        /// Reply time.
        at: u64,
    },
    /// The client asked to end `gxid` at `sent` (Commit, or Forget after a commit decision) and the GTM
    /// acknowledged it. From `sent` on, the transaction's effects may be visible on datanodes.
    Ended {
        /// Client number.
        client: u32,
        /// The transaction.
        gxid: Gxid,
        /// When the end was requested.
        sent: u64,
    },
    /// A prepared transaction was acknowledged as prepared (durably) under `gid`.
    Prepared {
        /// Client number.
        client: u32,
        /// The transaction.
        gxid: Gxid,
        /// Its gid.
        gid: String,
    },
    /// `Forget(gid)` was sent at `sent` (whatever its outcome): from then on the prepared transaction may
    /// leave the running set.
    ForgetSent {
        /// The gid.
        gid: String,
        /// When it was sent.
        sent: u64,
    },
    /// A nextval value of sequence `seq`.
    Value {
        /// Sequence name.
        seq: String,
        /// The value.
        value: i64,
    },
    /// A barrier id.
    Barrier {
        /// The id.
        id: String,
    },
}

/// Every check a GTM history must pass. Returns the first violation found.
///
/// - GXIDs: no GXID issued twice; a Begin sent after another Begin's reply gets a larger GXID.
/// - Snapshots: each passes [`Snapshot::check`]; a snapshot whose request was sent after `T` began and whose
///   reply came before `T` was ended must list `T` as running (the snapshot invariant), unless `T >= xmax`.
/// - Sequences: no value of a (non-cycling) sequence handed out twice.
/// - Barriers: no barrier id issued twice.
pub fn check_history(events: &[Event]) -> Result<(), String> {
    check_gxids(events)?;
    check_snapshots(events)?;
    check_values(events)?;
    let mut seen = BTreeSet::new();
    for e in events {
        if let Event::Barrier { id } = e {
            if !seen.insert(id.clone()) {
                return Err(format!("barrier id {id} issued twice"));
            }
        }
    }
    Ok(())
}

fn check_gxids(events: &[Event]) -> Result<(), String> {
    let mut seen = BTreeMap::new();
    let mut begins: Vec<(u64, u64, Gxid, u32)> = Vec::new();
    for e in events {
        if let Event::Begun {
            client,
            gxid,
            sent,
            at,
        } = e
        {
            if !gxid.is_valid() {
                return Err(format!("client {client} got invalid GXID {gxid}"));
            }
            if let Some(other) = seen.insert(*gxid, *client) {
                return Err(format!(
                    "GXID {gxid} issued twice (clients {other} and {client})"
                ));
            }
            begins.push((*sent, *at, *gxid, *client));
        }
    }
    // Real-time order: walk requests by send time; every reply received before a request was sent must carry
    // a smaller GXID than that request's.
    let mut by_reply: Vec<(u64, Gxid)> = begins.iter().map(|b| (b.1, b.2)).collect();
    by_reply.sort();
    begins.sort();
    let mut max_before = Gxid::INVALID;
    let mut i = 0;
    for (sent, _at, gxid, client) in &begins {
        while i < by_reply.len() && by_reply[i].0 < *sent {
            max_before = max_before.max(by_reply[i].1);
            i += 1;
        }
        if *gxid <= max_before {
            return Err(format!(
                "GXID order: client {client} sent Begin at {sent} ns and got {gxid}, but {max_before} was already issued"
            ));
        }
    }
    Ok(())
}

/// The interval during which a transaction was certainly running: from its Begin reply to its end request.
struct Life {
    gxid: Gxid,
    client: u32,
    begun: u64,
    ended: u64,
}

fn check_snapshots(events: &[Event]) -> Result<(), String> {
    let mut begun: BTreeMap<Gxid, (u64, u32)> = BTreeMap::new();
    let mut ended: BTreeMap<Gxid, u64> = BTreeMap::new();
    for e in events {
        match e {
            Event::Begun {
                gxid, at, client, ..
            } => {
                begun.insert(*gxid, (*at, *client));
            }
            Event::Ended { gxid, sent, .. } => {
                let t = ended.entry(*gxid).or_insert(*sent);
                *t = (*t).min(*sent);
            }
            _ => {}
        }
    }
    // A prepared transaction (acknowledged) runs until the first Forget for its gid was sent, or forever.
    let mut forget_sent: BTreeMap<&str, u64> = BTreeMap::new();
    for e in events {
        if let Event::ForgetSent { gid, sent } = e {
            let t = forget_sent.entry(gid.as_str()).or_insert(*sent);
            *t = (*t).min(*sent);
        }
    }
    for e in events {
        if let Event::Prepared { gxid, gid, .. } = e {
            let until = forget_sent.get(gid.as_str()).copied().unwrap_or(u64::MAX);
            let t = ended.entry(*gxid).or_insert(until);
            *t = (*t).min(until);
        }
    }
    // Only transactions whose commit was acknowledged (or that are prepared) can make a stale snapshot
    // observable; others never committed (a fenced client cannot commit) and are skipped.
    let mut lives: Vec<Life> = ended
        .iter()
        .filter_map(|(g, e)| {
            begun.get(g).map(|(b, c)| Life {
                gxid: *g,
                client: *c,
                begun: *b,
                ended: *e,
            })
        })
        .collect();
    lives.sort_by_key(|l| l.begun);
    for e in events {
        if let Event::Snap {
            client,
            snapshot,
            sent,
            at,
        } = e
        {
            snapshot
                .check()
                .map_err(|m| format!("client {client}: malformed snapshot {snapshot}: {m}"))?;
            // Transactions begun before the request was sent...
            let upto = lives.partition_point(|l| l.begun < *sent);
            for l in &lives[..upto] {
                // ...and ended only after the reply arrived.
                if l.ended > *at && !snapshot.is_running(l.gxid) {
                    return Err(format!(
                        "snapshot invariant: client {client}'s snapshot {snapshot} (sent {sent} ns, received {at} ns) \
                         omits GXID {} (client {}) which ran from {} ns to {} ns",
                        l.gxid, l.client, l.begun, l.ended
                    ));
                }
            }
        }
    }
    Ok(())
}

fn check_values(events: &[Event]) -> Result<(), String> {
    let mut seen: BTreeSet<(&str, i64)> = BTreeSet::new();
    for e in events {
        if let Event::Value { seq, value } = e {
            if !seen.insert((seq.as_str(), *value)) {
                return Err(format!("sequence {seq} handed out {value} twice"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn begun(client: u32, g: u64, sent: u64, at: u64) -> Event {
        Event::Begun {
            client,
            gxid: Gxid(g),
            sent,
            at,
        }
    }

    #[test]
    fn accepts_a_good_history() {
        let ev = vec![
            begun(1, 10, 0, 5),
            begun(2, 11, 6, 8),
            Event::Snap {
                client: 2,
                snapshot: Snapshot::new(Gxid(12), vec![Gxid(10), Gxid(11)]),
                sent: 9,
                at: 10,
            },
            Event::Ended {
                client: 1,
                gxid: Gxid(10),
                sent: 20,
            },
            Event::Ended {
                client: 2,
                gxid: Gxid(11),
                sent: 21,
            },
            Event::Value {
                seq: "s".into(),
                value: 1,
            },
            Event::Value {
                seq: "s".into(),
                value: 2,
            },
        ];
        check_history(&ev).unwrap();
    }

    #[test]
    fn catches_duplicate_and_out_of_order_gxids() {
        let dup = vec![begun(1, 10, 0, 5), begun(2, 10, 1, 6)];
        assert!(check_history(&dup).unwrap_err().contains("issued twice"));
        let order = vec![begun(1, 10, 0, 5), begun(2, 9, 6, 7)];
        assert!(check_history(&order).unwrap_err().contains("GXID order"));
        // Concurrent requests may be answered in any order.
        let concurrent = vec![begun(1, 10, 0, 5), begun(2, 9, 1, 6)];
        check_history(&concurrent).unwrap();
    }

    #[test]
    fn catches_a_snapshot_that_omits_a_running_transaction() {
        let ev = vec![
            begun(1, 10, 0, 5),
            Event::Snap {
                client: 2,
                snapshot: Snapshot::new(Gxid(12), vec![]),
                sent: 6,
                at: 7,
            },
            Event::Ended {
                client: 1,
                gxid: Gxid(10),
                sent: 8,
            },
        ];
        assert!(check_history(&ev)
            .unwrap_err()
            .contains("snapshot invariant"));
        // The same snapshot is fine if the transaction ended before the snapshot was answered...
        let ev2 = vec![
            begun(1, 10, 0, 5),
            Event::Ended {
                client: 1,
                gxid: Gxid(10),
                sent: 6,
            },
            Event::Snap {
                client: 2,
                snapshot: Snapshot::new(Gxid(12), vec![]),
                sent: 6,
                at: 7,
            },
        ];
        check_history(&ev2).unwrap();
        // ...or if xmax does not cover it (treated as running).
        let ev3 = vec![
            begun(1, 10, 0, 5),
            Event::Snap {
                client: 2,
                snapshot: Snapshot::new(Gxid(10), vec![]),
                sent: 6,
                at: 7,
            },
            Event::Ended {
                client: 1,
                gxid: Gxid(10),
                sent: 8,
            },
        ];
        check_history(&ev3).unwrap();
    }

    #[test]
    fn catches_reissued_sequence_values_and_barriers() {
        let ev = vec![
            Event::Value {
                seq: "s".into(),
                value: 3,
            },
            Event::Value {
                seq: "s".into(),
                value: 3,
            },
        ];
        assert!(check_history(&ev).unwrap_err().contains("twice"));
        let ev = vec![
            Event::Barrier { id: "b".into() },
            Event::Barrier { id: "b".into() },
        ];
        assert!(check_history(&ev).unwrap_err().contains("barrier"));
    }

    #[test]
    fn a_prepared_transaction_runs_until_forgotten() {
        let prepared = |client| Event::Prepared {
            client,
            gxid: Gxid(10),
            gid: "g".into(),
        };
        let late_snap = Event::Snap {
            client: 2,
            snapshot: Snapshot::new(Gxid(20), vec![]),
            sent: 50,
            at: 51,
        };
        let ev = vec![begun(1, 10, 0, 5), prepared(1), late_snap.clone()];
        assert!(check_history(&ev).unwrap_err().contains("omits GXID 10"));
        let ev = vec![
            begun(1, 10, 0, 5),
            prepared(1),
            Event::ForgetSent {
                gid: "g".into(),
                sent: 40,
            },
            late_snap,
        ];
        check_history(&ev).unwrap();
    }
}
