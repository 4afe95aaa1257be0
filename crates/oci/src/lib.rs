//! OCI images without a daemon.
