//! Client authentication: `trust` (the default for a local cluster) or SCRAM-SHA-256 (RFC 5802 /
//! RFC 7677), as PostgreSQL's `scram-sha-256` method does it.
//!
//! The exchange (PostgreSQL 15): AuthenticationSASL listing `SCRAM-SHA-256`; the client's
//! SASLInitialResponse with its client-first message (`n,,n=,r=<nonce>`; channel binding is not
//! offered, since the server has no TLS); AuthenticationSASLContinue with the server-first message
//! (`r=<nonce>,s=<salt>,i=<iterations>`); the client's SASLResponse (`c=biws,r=..,p=<proof>`);
//! AuthenticationSASLFinal (`v=<server signature>`) and AuthenticationOk. A wrong password, an
//! unknown user or a malformed message ends the connection with FATAL 28P01
//! `password authentication failed for user "u"` (08P01 for protocol errors), as PostgreSQL.
//!
//! Users come from a password file, one `user:secret` per line (`#` comments and blank lines
//! ignored). The secret is either a plain password (salted with a random salt when the file is
//! loaded, 4096 iterations) or PostgreSQL's stored form
//! `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>` (what
//! `pg_authid.rolpassword` holds), so the file need not contain clear-text passwords.

use std::collections::HashMap;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use pgxc_common::{PgError, SqlState};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::{read_message, Body, Msg, Reader, Writer};

/// Iterations used when salting a plain password from the password file (PostgreSQL's default
/// `scram_iterations`).
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// A user's SCRAM secret, as PostgreSQL stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramSecret {
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; 32],
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// RFC 5802's `Hi()`: PBKDF2-HMAC-SHA-256 with one output block.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &first);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        for (o, x) in out.iter_mut().zip(u) {
            *o ^= x;
        }
    }
    out
}

impl ScramSecret {
    /// The secret of `password` with `salt` and `iterations` (PostgreSQL does not SASLprep
    /// passwords that are not valid for it either; the bytes are used as given).
    pub fn new(password: &str, salt: &[u8], iterations: u32) -> ScramSecret {
        let salted = hi(password.as_bytes(), salt, iterations);
        ScramSecret {
            iterations,
            salt: salt.to_vec(),
            stored_key: sha256(&hmac(&salted, b"Client Key")),
            server_key: hmac(&salted, b"Server Key"),
        }
    }

    /// Parse PostgreSQL's stored form `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`.
    pub fn parse(s: &str) -> Option<ScramSecret> {
        let rest = s.strip_prefix("SCRAM-SHA-256$")?;
        let (iter_salt, keys) = rest.split_once('$')?;
        let (iter, salt) = iter_salt.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        Some(ScramSecret {
            iterations: iter.parse().ok().filter(|&i| i > 0)?,
            salt: B64.decode(salt).ok()?,
            stored_key: B64.decode(stored).ok()?.try_into().ok()?,
            server_key: B64.decode(server).ok()?.try_into().ok()?,
        })
    }

    /// PostgreSQL's stored form of this secret.
    pub fn to_stored(&self) -> String {
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

/// How clients authenticate.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    /// Everyone is let in (PostgreSQL's `trust`).
    #[default]
    Trust,
    /// SCRAM-SHA-256 against these users' secrets.
    Scram(HashMap<String, ScramSecret>),
}

impl Auth {
    /// SCRAM with the users of a password file (see the module docs for its format). Errors: the
    /// file cannot be read, a line has no `:`, or the file names no user.
    pub fn scram_from_file(path: &Path) -> std::io::Result<Auth> {
        let text = std::fs::read_to_string(path)?;
        Auth::scram_from_str(&text).map_err(|m| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {m}", path.display()),
            )
        })
    }

    /// SCRAM with the users of a password file's text. Errors: a malformed line, or no user.
    pub fn scram_from_str(text: &str) -> Result<Auth, String> {
        let mut users = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let Some((user, secret)) = line.split_once(':') else {
                return Err(format!("line {}: expected user:password", n + 1));
            };
            let s = if secret.starts_with("SCRAM-SHA-256$") {
                ScramSecret::parse(secret)
                    .ok_or_else(|| format!("line {}: malformed SCRAM-SHA-256 secret", n + 1))?
            } else {
                let salt: [u8; 16] = rand::random();
                ScramSecret::new(secret, &salt, DEFAULT_ITERATIONS)
            };
            users.insert(user.to_string(), s);
        }
        if users.is_empty() {
            return Err("no users".into());
        }
        Ok(Auth::Scram(users))
    }
}

/// A start-up failure sent as FATAL before the connection closes: SQLSTATE and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthError {
    /// The SQLSTATE: [`SqlState::InvalidPassword`] (28P01) for a failed password or an unknown
    /// user, [`SqlState::ProtocolViolation`] (08P01) for a malformed exchange.
    pub code: SqlState,
    /// The message.
    pub message: String,
}

impl From<PgError> for AuthError {
    fn from(e: PgError) -> AuthError {
        AuthError {
            code: e.code,
            message: e.message,
        }
    }
}

fn auth_failed(user: &str) -> AuthError {
    AuthError {
        code: SqlState::InvalidPassword,
        message: format!("password authentication failed for user \"{user}\""),
    }
}

fn violation(msg: &str) -> AuthError {
    PgError::new(SqlState::ProtocolViolation, msg).into()
}

/// The attribute `key=` of a SCRAM message.
fn attr(msg: &str, key: char) -> Option<&str> {
    msg.split(',')
        .find_map(|p| p.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// Verify the client's final message against `secret`: returns the server signature for
/// AuthenticationSASLFinal, or `None` when the proof is wrong or the nonce was changed.
pub fn verify_client_final(
    secret: &ScramSecret,
    client_first_bare: &str,
    server_first: &str,
    client_final: &str,
    nonce: &str,
) -> Option<[u8; 32]> {
    let (without_proof, proof) = client_final.rsplit_once(",p=")?;
    if attr(without_proof, 'r')? != nonce {
        return None;
    }
    let proof: [u8; 32] = B64.decode(proof).ok()?.try_into().ok()?;
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hmac(&secret.stored_key, auth_message.as_bytes());
    let mut client_key = [0u8; 32];
    for i in 0..32 {
        client_key[i] = proof[i] ^ signature[i];
    }
    // Constant-time comparison of the derived StoredKey.
    let diff = sha256(&client_key)
        .iter()
        .zip(secret.stored_key.iter())
        .fold(0u8, |d, (a, b)| d | (a ^ b));
    if diff != 0 {
        return None;
    }
    Some(hmac(&secret.server_key, auth_message.as_bytes()))
}

/// Run the authentication exchange for `user` (AuthenticationOk is sent by the caller). The outer
/// error is an I/O failure; the inner one is the FATAL error to send before closing.
pub(crate) async fn authenticate(
    auth: &Auth,
    user: &str,
    r: &mut Reader,
    w: &mut Writer,
) -> std::io::Result<Result<(), AuthError>> {
    let users = match auth {
        Auth::Trust => return Ok(Ok(())),
        Auth::Scram(u) => u,
    };
    let mut out = Vec::new();
    Msg::new(b'R')
        .i32(10)
        .cstr("SCRAM-SHA-256")
        .u8(0)
        .finish(&mut out);
    w.write_all(&out).await?;
    w.flush().await?;
    // SASLInitialResponse.
    let Some((b'p', body)) = read_message(r).await? else {
        return Ok(Err(violation("expected SASL response")));
    };
    let mut b = Body::new(&body);
    let first = (|| {
        let mech = b.cstr()?;
        let len = b.i32()?;
        let data = b.take(len.max(0) as usize)?;
        Ok::<_, PgError>((mech, String::from_utf8_lossy(data).into_owned()))
    })();
    let (mech, client_first) = match first {
        Ok(v) => v,
        Err(e) => return Ok(Err(e.into())),
    };
    if mech != "SCRAM-SHA-256" {
        return Ok(Err(violation(
            "client selected an invalid SASL authentication mechanism",
        )));
    }
    // gs2 header: "n,," or "y,," (no channel binding), then the bare message.
    let bare = match client_first
        .strip_prefix("n,,")
        .or_else(|| client_first.strip_prefix("y,,"))
    {
        Some(b) => b.to_string(),
        None => {
            return Ok(Err(violation(
                "malformed SCRAM message (unsupported channel binding)",
            )))
        }
    };
    let Some(client_nonce) = attr(&bare, 'r').filter(|n| !n.is_empty()) else {
        return Ok(Err(violation("malformed SCRAM message (no nonce)")));
    };
    // An unknown user gets a made-up secret, so the exchange looks the same (PostgreSQL does the
    // same) and fails at the proof.
    let secret = users.get(user).cloned().unwrap_or_else(|| {
        let salt: [u8; 16] = rand::random();
        let pw: [u8; 16] = rand::random();
        ScramSecret::new(&B64.encode(pw), &salt, DEFAULT_ITERATIONS)
    });
    let server_nonce: [u8; 18] = rand::random();
    let nonce = format!("{client_nonce}{}", B64.encode(server_nonce));
    let server_first = format!(
        "r={nonce},s={},i={}",
        B64.encode(&secret.salt),
        secret.iterations
    );
    let mut out = Vec::new();
    Msg::new(b'R')
        .i32(11)
        .bytes(server_first.as_bytes())
        .finish(&mut out);
    w.write_all(&out).await?;
    w.flush().await?;
    let Some((b'p', body)) = read_message(r).await? else {
        return Ok(Err(violation("expected SASL response")));
    };
    let client_final = String::from_utf8_lossy(&body).into_owned();
    let Some(sig) = verify_client_final(&secret, &bare, &server_first, &client_final, &nonce)
        .filter(|_| users.contains_key(user))
    else {
        return Ok(Err(auth_failed(user)));
    };
    let mut out = Vec::new();
    Msg::new(b'R')
        .i32(12)
        .bytes(format!("v={}", B64.encode(sig)).as_bytes())
        .finish(&mut out);
    w.write_all(&out).await?;
    Ok(Ok(()))
}

/// Send a FATAL error during start-up (best effort).
pub(crate) async fn fatal(w: &mut Writer, e: &AuthError) {
    let mut out = Vec::new();
    Msg::new(b'E')
        .u8(b'S')
        .cstr("FATAL")
        .u8(b'V')
        .cstr("FATAL")
        .u8(b'C')
        .cstr(e.code.code())
        .u8(b'M')
        .cstr(&e.message)
        .u8(0)
        .finish(&mut out);
    let _ = w.write_all(&out).await;
    let _ = w.flush().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example exchange (user "user", password "pencil").
    #[test]
    fn rfc7677_example_verifies() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let secret = ScramSecret::new("pencil", &salt, 4096);
        let bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_first = format!("r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        let client_final =
            format!("c=biws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        let sig = verify_client_final(&secret, bare, &server_first, &client_final, nonce)
            .expect("the RFC's proof verifies");
        assert_eq!(
            B64.encode(sig),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        // A different password fails.
        let wrong = ScramSecret::new("pencil2", &salt, 4096);
        assert!(verify_client_final(&wrong, bare, &server_first, &client_final, nonce).is_none());
        // The stored form round-trips.
        assert_eq!(ScramSecret::parse(&secret.to_stored()), Some(secret));
    }

    #[test]
    fn password_file_parses() {
        let a = Auth::scram_from_str("# users\nalice:secret\n\nbob:SCRAM-SHA-256$4096:AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
            .unwrap();
        let Auth::Scram(u) = a else { panic!("scram") };
        assert_eq!(u.len(), 2);
        assert_eq!(u["bob"].iterations, 4096);
        assert!(Auth::scram_from_str("nocolon\n").is_err());
        assert!(Auth::scram_from_str("# empty\n").is_err());
    }

    #[test]
    fn a_failed_password_is_28p01() {
        let e = auth_failed("alice");
        assert_eq!(e.code, SqlState::InvalidPassword);
        assert_eq!(e.code.code(), "28P01");
        assert_eq!(
            e.message,
            "password authentication failed for user \"alice\""
        );
        assert_eq!(violation("x").code.code(), "08P01");
    }
}
