//! Digests for `md5()`, `sha224()` .. `sha512()` (PostgreSQL's pgcrypto-free built-ins), from the
//! RustCrypto `md-5` and `sha2` crates.

use md5::{Digest, Md5};
use sha2::{Sha224, Sha256, Sha384, Sha512};

/// `md5(bytes)`: the 16-byte digest.
pub(crate) fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// `sha256(bytea)`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// `sha224(bytea)`.
pub(crate) fn sha224(data: &[u8]) -> [u8; 28] {
    Sha224::digest(data).into()
}

/// `sha384(bytea)` (`short`) or `sha512(bytea)`.
pub(crate) fn sha512_family(data: &[u8], short: bool) -> Vec<u8> {
    if short {
        Sha384::digest(data).to_vec()
    } else {
        Sha512::digest(data).to_vec()
    }
}

/// Lower-case hex of `b`.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(&md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha224(b"abc")),
            "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"
        );
        assert_eq!(
            hex(&sha512_family(b"abc", false)),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        assert_eq!(
            hex(&sha512_family(b"abc", true)),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        );
        let long = vec![b'a'; 1000];
        assert_eq!(hex(&md5(&long)), "cabe45dcc9ae5b66ba86600cca6b8ba8");
    }
}
