//! A minimal PostgreSQL simple-query client (protocol 3.0, trust authentication), enough for `pgxc ctl add`
//! and `remove` to run `CREATE NODE` / `DROP NODE` on every coordinator, as XC's pgxc_ctl does through psql.

use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A server error: SQLSTATE and message, as the coordinator sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// The five-character SQLSTATE (`C` field).
    pub code: String,
    /// The primary message (`M` field).
    pub message: String,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ERROR: {} (SQLSTATE {})", self.message, self.code)
    }
}

/// Connect to `addr` as user `postgres`, database `postgres`, run `sql` as one simple query, and return
/// its command tag (the last CommandComplete).
///
/// Errors: the outer `Err` when the server cannot be reached, asks for a password, or breaks the protocol
/// (10 s timeout per read); the inner `Err` when the statement failed (the server's error).
pub fn simple_query(addr: &str, sql: &str) -> Result<std::result::Result<String, ServerError>> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut body = Vec::new();
    body.extend_from_slice(&196_608i32.to_be_bytes());
    for kv in [
        "user",
        "postgres",
        "database",
        "postgres",
        "application_name",
        "pgxc_ctl",
    ] {
        body.extend_from_slice(kv.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    s.write_all(&msg)?;
    if let Some(e) = read_until_ready(&mut s, &mut String::new())? {
        bail!("{addr} refused the connection: {e}");
    }
    let mut q = vec![b'Q'];
    q.extend_from_slice(&((sql.len() + 5) as i32).to_be_bytes());
    q.extend_from_slice(sql.as_bytes());
    q.push(0);
    s.write_all(&q)?;
    let mut tag = String::new();
    let err = read_until_ready(&mut s, &mut tag)?;
    let _ = s.write_all(&[b'X', 0, 0, 0, 4]);
    Ok(match err {
        Some(e) => Err(e),
        None => Ok(tag),
    })
}

/// Read messages up to ReadyForQuery; returns the first ErrorResponse, and stores the last command tag.
fn read_until_ready(s: &mut TcpStream, tag: &mut String) -> Result<Option<ServerError>> {
    let mut err = None;
    loop {
        let mut head = [0u8; 5];
        s.read_exact(&mut head)
            .context("the server closed the connection")?;
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        if !(4..=64 * 1024 * 1024).contains(&len) {
            bail!("bad message length {len} from the server");
        }
        let mut body = vec![0u8; len as usize - 4];
        s.read_exact(&mut body)?;
        match head[0] {
            b'R' => {
                let kind = body
                    .get(..4)
                    .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                if kind != Some(0) {
                    bail!("the server asks for authentication (method {kind:?}); pgxc ctl supports trust only");
                }
            }
            b'E' => {
                let mut code = String::new();
                let mut message = String::new();
                for field in body.split(|b| *b == 0) {
                    if let Some((&t, v)) = field.split_first() {
                        let v = String::from_utf8_lossy(v).into_owned();
                        match t {
                            b'C' => code = v,
                            b'M' => message = v,
                            _ => {}
                        }
                    }
                }
                err.get_or_insert(ServerError { code, message });
            }
            b'C' => {
                *tag =
                    String::from_utf8_lossy(body.strip_suffix(&[0]).unwrap_or(&body)).into_owned();
            }
            b'Z' => return Ok(err),
            b'S' | b'K' | b'N' | b'T' | b'D' | b'I' => {}
            other => {
                return Err(anyhow!(
                    "unexpected message {:?} from the server",
                    other as char
                ))
            }
        }
    }
}
