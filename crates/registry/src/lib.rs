//! An OCI distribution client: pull base images, push plugin images.
//!
//! Builds run without a daemon, so they need their own way to a registry.
//! This crate speaks the OCI distribution API over HTTPS with the system's
//! trust roots (plain HTTP only for loopback hosts and registries the
//! caller marks insecure), authenticates like `docker` does (anonymous,
//! basic, bearer tokens; credentials from Docker's `config.json` and its
//! credential helpers), and moves blobs between a registry and a
//! [`forge_oci::BlobStore`] with every digest verified.
//!
//! - [`reference`]: `host[:port]/repo[:tag|@digest]` with Docker Hub's
//!   normalisation.
//! - [`auth`]: credentials, their sources, the `WWW-Authenticate`
//!   challenge and the token scopes.
//! - [`client`]: the HTTP client, token cache and retries.
//! - [`tls`](mod@tls): CAs and client certificates per registry (Docker's
//!   `certs.d`, `--ca-cert`), and what a failed handshake is reported as.
//! - [`login`]: `login`/`logout` into Docker's `config.json` (or its
//!   credential helper), as `docker login` writes it.
//! - [`pull`](mod@pull): manifests, indexes (platform choice) and blobs into the store.
//! - [`push`](mod@push): blobs (skip, mount, upload), then manifest, then tag.
//! - [`cache`]: a layer cache in a repository (`--cache`): entries tagged
//!   by the layer's content key, verified when read.
//! - `mounts`: which repositories are known to hold a blob (noted by pulls
//!   and pushes, used by pushes to mount instead of upload).
//!
//! **Invariant:** a push never leaves a tag pointing at missing blobs: the
//! tag is written last, after the manifest, after every blob.
//!
//! **Invariant:** credentials and tokens are never printed, logged, put in
//! an error or written anywhere.

#![deny(missing_docs)]

pub mod auth;
pub mod cache;
pub mod client;
mod error;
pub mod login;
mod mounts;
pub mod pull;
pub mod push;
pub mod referrers;
pub mod tls;
pub use forge_reference as reference;

pub use auth::{Anonymous, CredentialSource, Credentials, DockerConfig, StaticCredentials};
pub use client::{Client, ClientOptions, RetryNotice};
pub use error::{Error, RegistryError, RegistryErrors, Result};
pub use forge_oci::Platform;
pub use pull::cached_image;
pub use push::{BlobOutcome, PushEvent, PushReport, PushTo};
pub use reference::{Reference, Target};
pub use referrers::{fallback_tag, Referred};
pub use tls::{PeerCertificate, TlsOptions, TlsProblem};
