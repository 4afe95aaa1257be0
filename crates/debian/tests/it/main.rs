//! Integration tests of forge-debian: the resolver over a fixture index,
//! .deb files built here, the fetcher against a loopback server, and one
//! test against Debian's real archive.

mod deb;
mod fetch;
mod network;
mod resolve;

use std::path::PathBuf;

pub fn test_data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test_data").join(name)
}
