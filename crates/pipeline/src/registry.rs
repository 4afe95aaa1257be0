//! The registry side of a run: the client (Docker's credentials, plain
//! HTTP for loopback and insecure hosts) and the base resolver that pulls
//! what neither the overrides nor the store have. It lives here rather than
//! in forge-builder so the builder never talks to the network: it is handed
//! a [`BaseResolver`] and does not know where images come from.

use forge_builder::{BaseImage, BaseResolver, BuildError, LocalResolver};
use forge_oci::BlobStore;
use forge_registry::{Client, ClientOptions, DockerConfig, Platform, Reference};

use crate::Error;

/// A registry client: credentials from Docker's `config.json`, plain HTTP
/// for loopback hosts and `insecure_registries`, blobs larger than
/// `chunk_size` uploaded in chunks (`u64::MAX`: never).
pub fn client(insecure_registries: &[String], chunk_size: u64) -> Result<Client, Error> {
    let credentials = DockerConfig::from_env().map_err(|source| Error::Credentials { source })?;
    Ok(Client::new(ClientOptions {
        insecure_registries: insecure_registries.to_vec(),
        chunk_size,
        credentials: Box::new(credentials),
        ..ClientOptions::default()
    }))
}

/// Local first (overrides, then the store), then the registry the
/// reference names: a pulled image is verified into the store and found
/// there from then on, offline.
#[derive(Debug)]
pub struct PullingResolver {
    local: LocalResolver,
    client: Client,
}

impl PullingResolver {
    /// Falls back to pulling with `client` when `local` finds nothing.
    pub fn new(local: LocalResolver, client: Client) -> PullingResolver {
        PullingResolver { local, client }
    }
}

impl BaseResolver for PullingResolver {
    fn resolve(&self, reference: &str, store: &BlobStore) -> Result<BaseImage, BuildError> {
        let local_help = match self.local.resolve(reference, store) {
            Ok(found) => return Ok(found),
            Err(BuildError::BaseNotFound { help, .. }) => help,
            Err(other) => return Err(other),
        };
        let unavailable = |source: forge_registry::Error| BuildError::BaseUnavailable {
            reference: reference.to_string(),
            why: format!("is not in the local store and could not be pulled; {local_help}"),
            source: Box::new(source),
        };
        let parsed = Reference::parse(reference).map_err(|e| unavailable(e.into()))?;
        let pulled = match forge_registry::cached_image(store, &parsed) {
            Ok(Some(image)) => image,
            _ => self.client.pull(&parsed, &Platform::default(), store).map_err(unavailable)?,
        };
        Ok(BaseImage { reference: reference.to_string(), image: Some(pulled) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference no registry can serve fails with the local help and the
    /// cause, once each.
    #[test]
    fn a_base_found_nowhere_says_how_to_provide_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_or_create(dir.path()).unwrap();
        let resolver = PullingResolver::new(LocalResolver::default(), Client::new(ClientOptions::default()));
        let err = match resolver.resolve("Not A Reference!", &store) {
            Err(err) => err,
            Ok(found) => panic!("resolved to {found:?}"),
        };
        let shown = err.to_string();
        assert!(
            shown.starts_with(
                "base image `Not A Reference!` is not in the local store and could not be pulled; \
                 import it with `cargo xtask image import SOURCE Not A Reference!`"
            ),
            "{shown}"
        );
        assert!(std::error::Error::source(&err).is_some(), "the parse error is the cause");
    }
}
