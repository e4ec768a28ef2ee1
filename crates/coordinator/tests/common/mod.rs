//! What the coordinator's in-process cluster tests share: a cluster of datanodes and coordinators
//! over one in-memory GTM, and small statement helpers. Each test file uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;

use pgxc_common::SqlState;
use pgxc_coordinator::node::{Coordinator, CoordinatorConfig};
use pgxc_coordinator::session::CoordSession;
use pgxc_datanode::gtm_source::GtmTxnSource;
use pgxc_gtm::client::{ClientOptions, GtmClient};
use pgxc_gtm::server::{GtmServer, Replication, ServerConfig};
use pgxc_sql::types::Value;
use pgxc_sql::Engine;
use pgxc_storage::{Disk, SimDisk};
use tokio::net::TcpListener;

/// An in-process cluster: one in-memory GTM, datanodes `dn1..` and coordinators `cn1..` (each
/// also serving the coordinator protocol for its peers' DDL), all on loopback ports.
pub struct Cluster {
    pub gtm: GtmServer,
    pub coords: Vec<Arc<Coordinator>>,
}

/// A coordinator's catalog engine: the GTM's sequences are its sequences (global sequences).
pub async fn catalog_engine(gtm: &GtmClient, name: &str) -> Arc<Engine> {
    pgxc_coordinator::node::open_catalog_engine(Disk::sim(SimDisk::new()), name, gtm)
        .await
        .expect("catalog engine opens")
}

pub async fn engine(gtm: &GtmClient, name: &str) -> Arc<Engine> {
    let src = Arc::new(GtmTxnSource::new(gtm.clone()));
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        Engine::open_with(&Disk::sim(SimDisk::new()), &name, Some(src)).expect("engine opens")
    })
    .await
    .expect("join")
}

pub async fn gtm_client(gtm: &GtmServer) -> GtmClient {
    GtmClient::connect(vec![gtm.local_addr().to_string()], ClientOptions::default())
        .await
        .expect("gtm client")
}

/// Start a datanode serving the coordinator protocol; returns its address.
pub async fn datanode(gtm: &GtmServer, name: &str) -> String {
    let client = gtm_client(gtm).await;
    let eng = engine(&client, name).await;
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    tokio::spawn(pgxc_datanode::server::serve(l, eng, name.to_string()));
    addr
}

pub async fn cluster(datanodes: usize, coordinators: usize) -> Cluster {
    let gtm = GtmServer::start(ServerConfig::new(1, "127.0.0.1:0"), Replication::Memory)
        .await
        .expect("gtm starts");
    let mut dns = Vec::new();
    for i in 1..=datanodes {
        let name = format!("dn{i}");
        dns.push((name.clone(), datanode(&gtm, &name).await));
    }
    let mut cns = Vec::new();
    for i in 1..=coordinators {
        let client = gtm_client(&gtm).await;
        let name = format!("cn{i}");
        let eng =
            pgxc_coordinator::node::open_catalog_engine(Disk::sim(SimDisk::new()), &name, &client)
                .await
                .expect("catalog engine opens");
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        tokio::spawn(pgxc_datanode::server::serve(
            l,
            Arc::clone(&eng),
            name.clone(),
        ));
        cns.push((name, addr, eng, client));
    }
    let all: Vec<(String, String)> = cns
        .iter()
        .map(|(n, a, _, _)| (n.clone(), a.clone()))
        .collect();
    let mut coords = Vec::new();
    for (name, _, eng, client) in cns {
        let cfg = CoordinatorConfig {
            peers: all.iter().filter(|(n, _)| *n != name).cloned().collect(),
            name,
            datanodes: dns.clone(),
            preferred: None,
            max_pool_size: 8,
        };
        coords.push(
            Coordinator::start(cfg, eng, client)
                .await
                .expect("coordinator"),
        );
    }
    Cluster { gtm, coords }
}

pub async fn q(s: &mut CoordSession, sql: &str) -> Vec<Vec<Value>> {
    match s.execute(sql).await {
        Ok(mut r) => r.pop().map(|r| r.rows).unwrap_or_default(),
        Err(e) => panic!("{sql}: {e}"),
    }
}

pub async fn code(s: &mut CoordSession, sql: &str) -> SqlState {
    match s.execute(sql).await {
        Ok(r) => panic!("{sql} succeeded: {r:?}"),
        Err(e) => e.code,
    }
}

pub fn int(v: &Value) -> i64 {
    match v {
        Value::Int2(i) => *i as i64,
        Value::Int4(i) => *i as i64,
        Value::Int8(i) => *i,
        Value::Numeric(n) => n.to_text().parse().expect("integral numeric"),
        other => panic!("not an integer: {other:?}"),
    }
}
