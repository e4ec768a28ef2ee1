//! Arbitrary bytes decoded as GTM protocol frames must give an error, never a panic, and whatever decodes must
//! re-encode to something that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgxc_common::frame;
use pgxc_gtm::proto::{ClientBatch, Hello, ServerBatch};

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = frame::decode::<ClientBatch>(data) {
        let again = frame::encode(&b);
        assert_eq!(frame::decode::<ClientBatch>(&again[4..]).ok(), Some(b));
    }
    let _ = frame::decode::<ServerBatch>(data);
    let _ = frame::decode::<Hello>(data);
});
