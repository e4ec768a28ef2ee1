//! Arbitrary input (as lossy UTF-8) through parse → bind → plan must give a result or an error,
//! never panic: `EXPLAIN <input>` (plans without executing) and `<input>` itself, each in a
//! transaction block that is rolled back, on one in-memory engine with a small schema (see
//! `fuzz/harness/sql_plan.rs`, shared with the replay test `crates/sql/tests/fuzz_replay.rs`).
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;

#[path = "../harness/sql_plan.rs"]
mod harness;

thread_local! {
    /// Built on the first input, kept for the rest of the run (libFuzzer runs inputs on one thread).
    static HARNESS: RefCell<Option<harness::Harness>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    HARNESS.with(|h| {
        let mut h = h.borrow_mut();
        h.get_or_insert_with(harness::Harness::new).run(data);
    });
});
