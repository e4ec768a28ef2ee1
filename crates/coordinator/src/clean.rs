//! `pgxc clean`: Postgres-XC's pgxc_clean — find prepared transactions left in doubt and finish
//! them from the GTM's durable decision record.
//!
//! Unlike XC's tool, nothing is decided from what the datanodes hold ("prepared everywhere I
//! looked" is not a commit decision: a participant that crashed before its PREPARE is invisible).
//! A decided gid is finished everywhere; an undecided *implicit* gid (`_pgxc_T<gxid>`) is rolled
//! back — the operator runs this tool because its coordinator is gone (if it is in fact alive and
//! decides first, its decision stands). A user's `PREPARE TRANSACTION` gid is only reported.

use std::collections::BTreeMap;

use pgxc_cluster::proto::{DnRequest, DnResponse};
use pgxc_cluster::twophase::{self, NodeAccess, OrphanSource, Report};
use pgxc_common::{Gxid, PgError, SqlState};
use pgxc_datanode::client::DnConn;
use pgxc_gtm::client::GtmClient;

use crate::node::GtmLog;

/// Nodes reached by address: datanodes and the coordinators' internal endpoints.
pub struct AddrNodes {
    /// `name → host:port`.
    pub addrs: BTreeMap<String, String>,
}

impl NodeAccess for AddrNodes {
    async fn finish_prepared(&self, node: &str, gid: &str, commit: bool) -> Result<(), PgError> {
        let addr = self.addrs.get(node).ok_or_else(|| {
            PgError::new(
                SqlState::UndefinedObject,
                format!("node \"{node}\" is not among the given nodes"),
            )
        })?;
        let mut c = DnConn::connect(node, addr, "pgxc_clean", Vec::new()).await?;
        match c
            .call(DnRequest::FinishPrepared {
                gid: gid.to_string(),
                commit,
            })
            .await?
        {
            DnResponse::Done { .. } => Ok(()),
            other => Err(PgError::new(
                SqlState::ProtocolViolation,
                format!("unexpected answer from {node}: {other:?}"),
            )),
        }
    }
}

/// What the orphan sweep reads when run by `pgxc clean`: the GTM's snapshot and each node's
/// prepared transactions, over fresh connections by address.
struct CleanSource<'a> {
    gtm: &'a GtmClient,
    nodes: &'a AddrNodes,
}

impl OrphanSource for CleanSource<'_> {
    async fn gtm_snapshot(&self) -> Result<pgxc_common::Snapshot, PgError> {
        self.gtm.snapshot(None).await
    }
    async fn node_prepared(&self, node: &str) -> Result<Vec<(String, Gxid)>, PgError> {
        let addr = self.nodes.addrs.get(node).ok_or_else(|| {
            PgError::new(
                SqlState::UndefinedObject,
                format!("node \"{node}\" is not among the given nodes"),
            )
        })?;
        let mut c = DnConn::connect(node, addr, "pgxc_clean", Vec::new()).await?;
        match c.call(DnRequest::ListPrepared).await? {
            DnResponse::Prepared(v) => Ok(v),
            other => Err(PgError::new(
                SqlState::ProtocolViolation,
                format!("unexpected answer from {node}: {other:?}"),
            )),
        }
    }
}

/// What every node holds prepared (`--status`): `node → [(gid, gxid)]`, or the node's error.
pub async fn status(nodes: &AddrNodes) -> BTreeMap<String, Result<Vec<(String, u64)>, PgError>> {
    let mut out = BTreeMap::new();
    for (name, addr) in &nodes.addrs {
        let r = async {
            let mut c = DnConn::connect(name, addr, "pgxc_clean", Vec::new()).await?;
            match c.call(DnRequest::ListPrepared).await? {
                DnResponse::Prepared(v) => Ok(v.into_iter().map(|(g, x)| (g, x.0)).collect()),
                other => Err(PgError::new(
                    SqlState::ProtocolViolation,
                    format!("unexpected answer: {other:?}"),
                )),
            }
        }
        .await;
        out.insert(name.clone(), r);
    }
    out
}

/// One cleaning pass (`report_only`: `--no-clean`, change nothing): finish every gid the GTM
/// records (decided: as decided; undecided implicit: roll back), then the orphan sweep
/// (`twophase::roll_back_orphans`): implicit gids a node holds prepared that the GTM neither
/// records nor still runs are rolled back (reported under `rolled_back`).
pub async fn clean(
    gtm: &GtmClient,
    nodes: &AddrNodes,
    report_only: bool,
) -> Result<Report, PgError> {
    let mut report = twophase::resolve(
        &GtmLog(gtm),
        nodes,
        |p| p.gid.starts_with("_pgxc_T"),
        report_only,
    )
    .await?;
    let names: Vec<String> = nodes.addrs.keys().cloned().collect();
    let source = CleanSource { gtm, nodes };
    let orphans =
        twophase::roll_back_orphans(&GtmLog(gtm), nodes, &source, &names, report_only).await?;
    for gid in orphans.rolled_back {
        if !report.rolled_back.contains(&gid) {
            report.rolled_back.push(gid);
        }
    }
    report.left.extend(orphans.left);
    Ok(report)
}
