//! Length-prefixed frames for pgxc-internal links (GTM client protocol, proxy, Raft RPC).
//!
//! Shape on the wire: a 4-byte big-endian payload length, then the payload: a value encoded with postcard
//! (serde). Frames larger than [`MAX_FRAME`] are refused on both sides with [`FrameError::TooLarge`]; the caller
//! then drops that connection only. Writers must `flush` (madsim's TCP buffers until flushed): [`write_frame`]
//! does.

use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest accepted payload: 64 MiB (a Raft snapshot of the GTM state is far smaller).
pub const MAX_FRAME: usize = 64 << 20;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed or the peer closed mid-frame.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection cleanly between frames.
    #[error("connection closed")]
    Closed,
    /// The announced length is over [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// The payload does not decode as the expected message type.
    #[error("malformed frame: {0}")]
    Decode(postcard::Error),
}

impl From<FrameError> for crate::PgError {
    fn from(e: FrameError) -> Self {
        let code = match e {
            FrameError::TooLarge(_) | FrameError::Decode(_) => crate::SqlState::ProtocolViolation,
            FrameError::Io(_) | FrameError::Closed => crate::SqlState::ConnectionFailure,
        };
        crate::PgError::new(code, e.to_string())
    }
}

/// Encode `msg` into a complete frame (length prefix included).
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    // The body is serialised straight after a 4-byte placeholder for its length (one allocation, no copy).
    // postcard to a Vec cannot fail for our plain data types; a failure would be a bug in a Serialize impl.
    let mut buf =
        postcard::to_extend(msg, vec![0u8; 4]).expect("postcard encoding of an in-memory value");
    let len = (buf.len() - 4) as u32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf
}

/// Decode a payload (without its length prefix).
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    postcard::from_bytes(payload).map_err(FrameError::Decode)
}

/// Write one frame and flush.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> Result<(), FrameError> {
    let buf = encode(msg);
    if buf.len() - 4 > MAX_FRAME {
        return Err(FrameError::TooLarge(buf.len() - 4));
    }
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

/// Read one frame's payload bytes. Returns [`FrameError::Closed`] on a clean EOF before the length prefix.
pub async fn read_payload<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf).await?;
    Ok(())
}

/// Read and decode one frame.
pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
) -> Result<T, FrameError> {
    let mut buf = Vec::new();
    read_payload(r, &mut buf).await?;
    decode(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_limits() {
        let msg = (42u64, String::from("hello"), vec![1u8, 2, 3]);
        let buf = encode(&msg);
        assert_eq!(
            u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize,
            buf.len() - 4
        );
        let back: (u64, String, Vec<u8>) = decode(&buf[4..]).unwrap();
        assert_eq!(back, msg);
        assert!(decode::<(u64, String)>(&[0xff, 0xff]).is_err());
    }
}
