//! `pgxc gtm-ctl`: operate a GTM group (XC's `gtm_ctl status | promote`, plus Raft membership verbs).
//!
//! It speaks the GTM client protocol directly: one request per connection, following `NotLeader` hints to the
//! leader for the verbs that need it.

use anyhow::{anyhow, bail, Context, Result};
use pgxc_common::frame;
use pgxc_gtm::proto::{
    AdminRequest, ClientBatch, Hello, NodeStatus, Request, Response, ServerBatch,
};
use std::time::Duration;
use tokio::net::TcpStream;

/// How long one request may take before `gtm-ctl` gives up on that address.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Send one request to `addr` and return its response.
///
/// Errors: the address cannot be reached, the connection drops, or the reply is malformed.
pub async fn request_once(addr: &str, req: Request) -> Result<Response> {
    let fut = async {
        let mut s = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot reach GTM at {addr}"))?;
        frame::write_frame(&mut s, &Hello::Client).await?;
        frame::write_frame(
            &mut s,
            &ClientBatch {
                requests: vec![(1, req)],
            },
        )
        .await?;
        let reply: ServerBatch = frame::read_frame(&mut s)
            .await
            .with_context(|| format!("no reply from {addr}"))?;
        reply
            .responses
            .into_iter()
            .find(|(id, _)| *id == 1)
            .map(|(_, r)| r)
            .ok_or_else(|| anyhow!("reply from {addr} lacks the answer"))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow!("GTM at {addr} did not answer within {REQUEST_TIMEOUT:?}"))?
}

/// Send `req` to the leader: try each address, follow `NotLeader` hints (at most a few hops).
pub async fn request_leader(addrs: &[String], req: Request) -> Result<Response> {
    let mut tried = Vec::new();
    let mut queue: Vec<String> = addrs.to_vec();
    let mut hops = 0;
    while let Some(addr) = queue.first().cloned() {
        queue.remove(0);
        if tried.contains(&addr) {
            continue;
        }
        tried.push(addr.clone());
        match request_once(&addr, req.clone()).await {
            Ok(Response::NotLeader {
                leader: Some((_, l)),
            }) if hops < 5 => {
                hops += 1;
                queue.insert(0, l);
            }
            Ok(Response::NotLeader { .. }) => continue,
            Ok(r) => return Ok(r),
            Err(e) => eprintln!("warning: {e:#}"),
        }
    }
    bail!("no GTM leader answered (tried {})", tried.join(", "))
}

/// Print one node's status as `key: value` lines.
pub fn print_status(addr: &str, s: &NodeStatus) {
    println!("GTM node {} at {addr}", s.id);
    println!("  role:               {}", s.role);
    match &s.leader {
        Some((id, a)) => println!("  leader:             {id} ({a})"),
        None => println!("  leader:             unknown"),
    }
    println!("  term:               {}", s.term);
    println!("  last applied:       {}", s.last_applied);
    let members: Vec<String> = s
        .members
        .iter()
        .map(|(id, a)| format!("{id}={a}"))
        .collect();
    println!("  members:            {}", members.join(","));
    println!("  gxid reserved upto: {}", s.gxid_reserved_upto);
    if s.role == "leader" {
        println!("  next gxid:          {}", s.next_gxid);
        println!("  running:            {}", s.running);
        println!("  recovering:         {}", s.recovering);
    }
}

/// Run a `gtm-ctl` verb against `addrs`.
pub async fn run(addrs: &[String], verb: crate::GtmCtlVerb) -> Result<()> {
    use crate::GtmCtlVerb::*;
    match verb {
        Status => {
            let mut ok = 0;
            for addr in addrs {
                match request_once(addr, Request::Status).await {
                    Ok(Response::Status(s)) => {
                        print_status(addr, &s);
                        ok += 1;
                    }
                    Ok(other) => println!("GTM at {addr}: unexpected reply {other:?}"),
                    Err(e) => println!("GTM at {addr}: not running ({e:#})"),
                }
            }
            if ok == 0 {
                bail!("no GTM node answered");
            }
            Ok(())
        }
        Promote => {
            let addr = addrs
                .first()
                .ok_or_else(|| anyhow!("promote needs the address of the node to promote"))?;
            expect_ok(
                request_once(addr, Request::Admin(AdminRequest::Promote)).await?,
                "promote",
            )
        }
        TransferLeader { to } => expect_ok(
            request_leader(addrs, Request::Admin(AdminRequest::TransferLeader { to })).await?,
            "transfer-leader",
        ),
        AddMember { id, addr } => expect_ok(
            request_leader(addrs, Request::Admin(AdminRequest::AddMember { id, addr })).await?,
            "add-member",
        ),
        RemoveMember { id } => expect_ok(
            request_leader(addrs, Request::Admin(AdminRequest::RemoveMember { id })).await?,
            "remove-member",
        ),
    }
}

fn expect_ok(r: Response, what: &str) -> Result<()> {
    match r {
        Response::Ok => {
            println!("{what}: done");
            Ok(())
        }
        Response::Error(e) => bail!("{what} failed: {} (SQLSTATE {})", e.message, e.code.code()),
        other => bail!("{what}: unexpected reply {other:?}"),
    }
}
