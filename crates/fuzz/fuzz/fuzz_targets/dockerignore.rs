//! libFuzzer target `dockerignore`: forge-fuzz's `Target::Dockerignore`, coverage-guided.
#![no_main]

use std::cell::RefCell;

use forge_fuzz::{Harness, Target};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static HARNESS: RefCell<Harness> =
        RefCell::new(Harness::new(Target::Dockerignore).expect("the scratch directory of the fuzz target"));
}

fuzz_target!(|data: &[u8]| HARNESS.with(|h| h.borrow_mut().run(data)));
