//! A coordinator's connection to one datanode.

use pgxc_cluster::proto::{DnRequest, DnResponse, PROTOCOL_VERSION};
use pgxc_common::frame::{read_frame, write_frame, FrameError};
use pgxc_common::{PgError, SqlState};
use tokio::io::BufReader;
#[cfg(not(madsim))]
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

// madsim's TcpStream has no owned halves: split it with tokio's generic `split` there.
#[cfg(madsim)]
type OwnedReadHalf = tokio::io::ReadHalf<TcpStream>;
#[cfg(madsim)]
type OwnedWriteHalf = tokio::io::WriteHalf<TcpStream>;

/// One pooled connection to a datanode (one datanode session).
#[derive(Debug)]
pub struct DnConn {
    node: String,
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    broken: bool,
}

fn transport(node: &str, e: FrameError, after_send: bool) -> PgError {
    PgError::new(
        if after_send {
            // The request may have been applied: only its outcome is unknown.
            SqlState::TransactionResolutionUnknown
        } else {
            SqlState::ConnectionFailure
        },
        format!("connection to datanode \"{node}\" failed: {e}"),
    )
}

impl DnConn {
    /// Connect to the datanode `node` at `addr` and introduce coordinator `coordinator`, applying
    /// `settings` (`SET name = value` each). Errors: 08006 (cannot connect), the datanode's error.
    pub async fn connect(
        node: &str,
        addr: &str,
        coordinator: &str,
        settings: Vec<(String, String)>,
    ) -> Result<DnConn, PgError> {
        let stream = TcpStream::connect(addr).await.map_err(|e| {
            PgError::new(
                SqlState::ConnectionFailure,
                format!("could not connect to datanode \"{node}\" at {addr}: {e}"),
            )
        })?;
        let _ = stream.set_nodelay(true);
        #[cfg(not(madsim))]
        let (r, w) = stream.into_split();
        #[cfg(madsim)]
        let (r, w) = tokio::io::split(stream);
        let mut c = DnConn {
            node: node.to_string(),
            r: BufReader::new(r),
            w,
            broken: false,
        };
        match c
            .call(DnRequest::Hello {
                version: PROTOCOL_VERSION,
                coordinator: coordinator.to_string(),
                settings,
            })
            .await?
        {
            DnResponse::Ready { .. } => Ok(c),
            other => Err(PgError::new(
                SqlState::ProtocolViolation,
                format!("unexpected answer to Hello from \"{node}\": {other:?}"),
            )),
        }
    }

    /// The datanode's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether a transport error happened (the pool must drop this connection).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Send one request and wait for its answer. [`DnResponse::Error`] becomes `Err` (the
    /// datanode's SQLSTATE); a transport failure is 08006 before the request left and 08007 after.
    pub async fn call(&mut self, req: DnRequest) -> Result<DnResponse, PgError> {
        if self.broken {
            return Err(PgError::new(
                SqlState::ConnectionFailure,
                format!("connection to datanode \"{}\" is broken", self.node),
            ));
        }
        if let Err(e) = write_frame(&mut self.w, &req).await {
            self.broken = true;
            return Err(transport(&self.node, e, false));
        }
        match read_frame::<_, DnResponse>(&mut self.r).await {
            Ok(DnResponse::Error(e)) => Err(e),
            Ok(r) => Ok(r),
            Err(e) => {
                self.broken = true;
                Err(transport(&self.node, e, true))
            }
        }
    }
}
