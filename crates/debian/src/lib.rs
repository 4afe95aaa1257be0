//! Debian packages: signed indexes, dependency resolution, lock files,
//! verified downloads and .deb reading, without apt, dpkg or a chroot.
//!
//! The pipeline: a [`description::Description`] names a mirror, a suite and
//! the packages wanted; [`lock::Lock::resolve`] fetches the suite's signed
//! `InRelease` ([`release`]), the `Packages` index it vouches for, and
//! computes the dependency closure ([`resolve`]); the lock file pins every
//! `.deb` by size and SHA-256, and [`fetch::Fetcher`] downloads them into a
//! content-addressed cache; [`deb::DebFile`] reads their control data and
//! file trees for the image layers. [`status`] reads and writes dpkg's
//! status database, so that resolution can leave out what a system has
//! ([`resolve::resolve_request`]).

pub mod deb;
pub mod deb822;
pub mod description;
pub mod error;
pub mod fetch;
pub mod lock;
pub mod md5;
pub mod relation;
pub mod release;
pub mod resolve;
pub mod status;
pub mod version;

pub use error::{Error, Result};
