//! The registry side of a run: the client (Docker's credentials, plain
//! HTTP for loopback and insecure hosts, Docker's `certs.d` and
//! `--ca-cert` for trust), `login`/`logout`, and the base resolver that pulls
//! what neither the overrides nor the store have. It lives here rather than
//! in forge-builder so the builder never talks to the network: it is handed
//! a [`BaseResolver`] and does not know where images come from.

use forge_builder::{BaseImage, BaseResolver, BuildError, LocalResolver, Resolved};
use forge_oci::BlobStore;
use std::path::PathBuf;

use forge_registry::login::{docker_config_path, erase_login, store_login, Stored};
use forge_registry::{
    Client, ClientOptions, CredentialSource, Credentials, DockerConfig, Platform, Reference,
    StaticCredentials, TlsOptions,
};

use crate::Error;

/// A registry client: credentials from Docker's `config.json`, plain HTTP
/// for loopback hosts and `insecure_registries`, the CAs of `ca_certs` (and
/// of Docker's `certs.d`) trusted, blobs larger than `chunk_size` uploaded
/// in chunks (`u64::MAX`: never).
pub fn client(
    insecure_registries: &[String],
    ca_certs: &[PathBuf],
    chunk_size: u64,
) -> Result<Client, Error> {
    let credentials = DockerConfig::from_env().map_err(|source| Error::Credentials { source })?;
    Ok(client_with(insecure_registries, ca_certs, chunk_size, Box::new(credentials)))
}

/// The client of the `--cache` registries: as [`client`], but with one
/// quick retry, because a cache that fails is done without, not waited
/// for.
pub(crate) fn cache_client(insecure_registries: &[String], ca_certs: &[PathBuf]) -> Result<Client, Error> {
    let credentials = DockerConfig::from_env().map_err(|source| Error::Credentials { source })?;
    Ok(Client::new(ClientOptions {
        retries: 1,
        retry_delay: std::time::Duration::from_millis(200),
        max_retry_after: std::time::Duration::from_secs(2),
        ..options(insecure_registries, ca_certs, u64::MAX, Box::new(credentials))
    }))
}

fn client_with(
    insecure_registries: &[String],
    ca_certs: &[PathBuf],
    chunk_size: u64,
    credentials: Box<dyn CredentialSource>,
) -> Client {
    Client::new(options(insecure_registries, ca_certs, chunk_size, credentials))
}

fn options(
    insecure_registries: &[String],
    ca_certs: &[PathBuf],
    chunk_size: u64,
    credentials: Box<dyn CredentialSource>,
) -> ClientOptions {
    ClientOptions {
        insecure_registries: insecure_registries.to_vec(),
        chunk_size,
        credentials,
        tls: TlsOptions { ca_certs: ca_certs.to_vec(), ..TlsOptions::default() },
        ..ClientOptions::default()
    }
}

/// What `login` is given.
#[derive(Debug)]
pub struct LoginOptions<'a> {
    /// The registry, `host[:port]` (or `docker.io`).
    pub registry: &'a str,
    /// The user name.
    pub username: &'a str,
    /// The password or access token.
    pub password: &'a str,
    /// Registries spoken to over plain HTTP.
    pub insecure_registries: &'a [String],
    /// `--ca-cert` files.
    pub ca_certs: &'a [PathBuf],
}

/// Where [`login`] stored the credentials.
#[derive(Debug)]
pub struct LoggedIn {
    /// Docker's `config.json`.
    pub config: PathBuf,
    /// The file itself, or the credential helper it names.
    pub stored: Stored,
}

/// `docker login`: checks the credentials against the registry (`/v2/`,
/// through its token server if it has one), then stores them in Docker's
/// `config.json` or its credential helper. Nothing is stored when the
/// registry refuses them.
pub fn login(options: &LoginOptions<'_>) -> Result<LoggedIn, Error> {
    let config = config_path()?;
    let credentials = StaticCredentials::default().with(
        options.registry,
        Credentials::Basic { username: options.username.to_owned(), password: options.password.to_owned() },
    );
    let client = client_with(options.insecure_registries, options.ca_certs, u64::MAX, Box::new(credentials));
    client.check_login(options.registry, &|_| {})?;
    let stored = store_login(&config, options.registry, options.username, options.password)?;
    Ok(LoggedIn { config, stored })
}

/// `docker logout`: removes the credentials for `registry` from Docker's
/// `config.json` (and its credential helper). The config file, and whether
/// there were any.
pub fn logout(registry: &str) -> Result<(PathBuf, bool), Error> {
    let config = config_path()?;
    let erased = erase_login(&config, registry)?;
    Ok((config, erased))
}

fn config_path() -> Result<PathBuf, Error> {
    docker_config_path().ok_or_else(|| {
        Error::Registry(forge_registry::Error::Credentials {
            host: "any registry".into(),
            reason: "neither DOCKER_CONFIG nor HOME is set, so there is no config.json to use".into(),
        })
    })
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
    fn resolve(&self, reference: &str, platform: &Platform, store: &BlobStore) -> Resolved {
        let local_help = match self.local.resolve(reference, platform, store) {
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
        let pulled = match forge_registry::cached_image(store, &parsed, platform) {
            Ok(Some(image)) => image,
            _ => self.client.pull(&parsed, platform, store).map_err(unavailable)?,
        };
        // A tag that names one manifest (no index) is pulled whatever its platform.
        let found = Platform::of_config(&pulled.config);
        if !platform.accepts(&found) {
            return Err(BuildError::BaseNotFound {
                reference: reference.to_string(),
                help: format!(
                    "the registry has it only for {found}, and this build is for {platform}; use a base image published for {platform}"
                ),
            });
        }
        Ok(BaseImage::found(reference, pulled))
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
        let err = match resolver.resolve("Not A Reference!", &Platform::default(), &store) {
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
