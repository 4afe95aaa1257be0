//! The HTTP side: one `ureq` agent, authentication, retries.
//!
//! Every registry request goes through [`Client::call`], which
//! - picks the scheme: plain HTTP only for loopback hosts and the hosts the
//!   caller listed as insecure, HTTPS otherwise, trusting the system's roots
//!   and the registry's own CAs and client certificate (the `tls` module:
//!   one agent per host that has any);
//! - probes `GET /v2/` once per registry to learn its challenge, so that a
//!   request with a large body is not sent first without credentials just
//!   to be refused;
//! - adds `Authorization`: Basic from the credentials, or a Bearer token
//!   fetched from the challenge's realm for the request's scopes and kept in
//!   a cache shared by all threads (the client is `Sync`);
//! - on 401 refreshes the token once, then reports [`Error::Unauthorized`];
//! - never retries a TLS failure, 401 or 403, and reports them as what they
//!   are ([`Error::Tls`] with the certificate and the places a CA was looked
//!   for; [`Error::Unauthorized`] with the credentials' source);
//! - retries connection failures, 5xx, 408 and 429 (honouring
//!   `Retry-After`) with exponential backoff, by `forge-retry`'s policy,
//!   when the request may be repeated as it is. Blob uploads are not repeated request by request,
//!   because an upload session may not survive a failure: `push` restarts
//!   the whole blob instead.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{Response, StatusCode};
use ureq::{Body, SendBody};

pub use forge_retry::RetryNotice;
use forge_retry::{
    is_transient_error, is_transient_status, retry_after, status_text, tls_error, Attempt, RetryPolicy,
};

use crate::auth::{Challenge, CredentialSource, Credentials};
use crate::error::{Error, RegistryErrors, Result};
use crate::reference::{is_loopback, normalise_registry, Reference};
use crate::tls::{authority, inspect_peer, registry_tls, system_roots, TlsOptions, TlsProblem};

/// How a [`Client`] behaves.
pub struct ClientOptions {
    /// Registries (`host[:port]`) spoken to over plain HTTP. Loopback hosts
    /// always are.
    pub insecure_registries: Vec<String>,
    /// Blobs larger than this are uploaded in chunks of this size (for
    /// proxies that limit request bodies); `u64::MAX` never chunks.
    pub chunk_size: u64,
    /// How many times a failed request (or blob upload) is tried again.
    pub retries: u32,
    /// The first backoff delay; it doubles with every retry (capped at 30 s).
    pub retry_delay: Duration,
    /// The longest `Retry-After` we are willing to wait.
    pub max_retry_after: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Where credentials come from.
    pub credentials: Box<dyn CredentialSource>,
    /// CAs and client certificates.
    pub tls: TlsOptions,
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("insecure_registries", &self.insecure_registries)
            .field("chunk_size", &self.chunk_size)
            .field("retries", &self.retries)
            .field("retry_delay", &self.retry_delay)
            .field("max_retry_after", &self.max_retry_after)
            .field("user_agent", &self.user_agent)
            .field("credentials", &self.credentials)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            insecure_registries: Vec::new(),
            chunk_size: u64::MAX,
            retries: 4,
            retry_delay: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(60),
            user_agent: concat!("plugin-forge/", env!("CARGO_PKG_VERSION")).to_owned(),
            credentials: Box::new(crate::auth::Anonymous),
            tls: TlsOptions::default(),
        }
    }
}

/// A registry client; cheap to share between threads by reference.
pub struct Client {
    /// For hosts with no CA or client certificate of their own.
    agent: ureq::Agent,
    /// Per `host[:port]`: the agent and the places a CA was looked for.
    hosts: Mutex<HashMap<String, (ureq::Agent, Vec<String>)>>,
    pub(crate) options: ClientOptions,
    /// Per API endpoint: what we learnt about its authentication.
    auth: Mutex<HashMap<String, HostAuth>>,
    /// One lock per blob digest being pushed: threads pushing images that
    /// share a layer upload it once; the others then find it or mount it.
    pub(crate) blob_locks: Mutex<HashMap<String, std::sync::Arc<Mutex<()>>>>,
    /// API endpoints that have no referrers API (see `referrers`).
    pub(crate) no_referrers_api: Mutex<std::collections::HashSet<String>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("options", &self.options).finish_non_exhaustive()
    }
}

#[derive(Default)]
struct HostAuth {
    probed: bool,
    challenge: Option<Challenge>,
    credentials: Option<Option<Credentials>>,
    /// Bearer tokens by scope set.
    tokens: HashMap<String, String>,
}

/// The body of a request: made anew for every attempt.
pub(crate) type BodyFn<'a> = &'a dyn Fn() -> Result<(Box<dyn Read + 'a>, u64)>;

/// One registry request.
pub(crate) struct Call<'a> {
    pub method: &'static str,
    /// A path (`/v2/...`) on the reference's endpoint, or a full URL (an
    /// upload location).
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<BodyFn<'a>>,
    /// `repository:NAME:ACTIONS` scopes for a bearer token.
    pub scopes: Vec<String>,
    /// Whether the request may be repeated as it is after a transient failure.
    pub retry: bool,
}

enum AttemptError {
    Http(ureq::Error),
    Local(Error),
}

impl Client {
    /// A client with these options.
    pub fn new(options: ClientOptions) -> Client {
        let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
        let agent = make_agent(&options, tls);
        Client {
            agent,
            hosts: Mutex::default(),
            options,
            auth: Mutex::new(HashMap::new()),
            blob_locks: Mutex::default(),
            no_referrers_api: Mutex::default(),
        }
    }

    /// The agent for `url`'s host: the shared one, or one trusting the
    /// host's own CAs and presenting its client certificate.
    fn agent(&self, url: &str) -> Result<ureq::Agent> {
        Ok(self.host_tls(url)?.0)
    }

    fn host_tls(&self, url: &str) -> Result<(ureq::Agent, Vec<String>)> {
        let authority = authority(url);
        if let Some(found) = self.hosts.lock().unwrap_or_else(|e| e.into_inner()).get(authority) {
            return Ok(found.clone());
        }
        let found = registry_tls(&self.options.tls, authority)?;
        let agent = if found.cas.is_empty() && found.client.is_none() {
            self.agent.clone()
        } else {
            let roots = if found.cas.is_empty() {
                ureq::tls::RootCerts::PlatformVerifier
            } else {
                let mut roots = system_roots()?;
                roots.extend(found.cas);
                ureq::tls::RootCerts::new_with_certs(&roots)
            };
            make_agent(
                &self.options,
                ureq::tls::TlsConfig::builder().root_certs(roots).client_cert(found.client).build(),
            )
        };
        let entry = (agent, found.looked);
        self.hosts.lock().unwrap_or_else(|e| e.into_inner()).insert(authority.to_owned(), entry.clone());
        Ok(entry)
    }

    /// Which credentials go to `reference`'s registry, from where.
    pub(crate) fn credentials_used(&self, reference: &Reference) -> String {
        self.options.credentials.describe(reference.registry())
    }

    /// The registry refused `action` (`"pull from"`, `"push to"`) on
    /// `reference`'s repository with a `403`: its reasons from `response`.
    pub(crate) fn denied(
        &self,
        reference: &Reference,
        action: &'static str,
        response: Response<Body>,
    ) -> Error {
        Error::Denied {
            host: reference.registry().to_owned(),
            source_used: self.credentials_used(reference),
            repository: reference.repository().to_owned(),
            action,
            errors: Box::new(error_body(response)),
        }
    }

    fn unauthorized(&self, reference: &Reference) -> Error {
        Error::Unauthorized {
            host: reference.registry().to_owned(),
            source_used: self.credentials_used(reference),
        }
    }

    /// [`http_error`], with what we know of the host for a TLS failure: the
    /// certificate it presented and the places a CA was looked for.
    fn transport_error(&self, reference: &Reference, url: &str, e: ureq::Error) -> Error {
        let Some(rustls) = tls_error(&e) else { return http_error(reference, url, e) };
        let problem = TlsProblem::of(rustls);
        let authority = authority(url);
        let looked = self.host_tls(url).map(|(_, looked)| looked).unwrap_or_default();
        Error::Tls {
            host: reference.registry().to_owned(),
            url: url.to_owned(),
            problem,
            certificate: inspect_peer(authority, &self.options.tls.resolve).map(Box::new),
            looked,
            source: Box::new(e),
        }
    }

    /// Checks that the client's credentials for `registry` are accepted:
    /// `GET /v2/` with them, through the token server when the registry
    /// has one (what `docker login` does).
    pub fn check_login(&self, registry: &str, notify: &dyn Fn(RetryNotice)) -> Result<()> {
        let reference = Reference::parse(&format!("{registry}/login/check"))?;
        let call = Call {
            method: "GET",
            url: "/v2/".into(),
            headers: Vec::new(),
            body: None,
            scopes: Vec::new(),
            retry: true,
        };
        let response = self.call(&reference, &call, notify)?;
        let status = response.status().as_u16();
        match status {
            200..=299 => Ok(()),
            403 => Err(self.unauthorized(&reference)),
            _ => Err(Error::Status {
                method: "GET",
                url: self.absolute(&reference, "/v2/"),
                status,
                errors: error_body(response),
            }),
        }
    }

    /// `http` for loopback and insecure registries, `https` otherwise.
    pub fn scheme(&self, endpoint: &str) -> &'static str {
        let insecure = self
            .options
            .insecure_registries
            .iter()
            .any(|r| normalise_registry(r) == normalise_registry(endpoint) || r == endpoint);
        if insecure || is_loopback(endpoint) {
            "http"
        } else {
            "https"
        }
    }

    /// `scheme://endpoint`.
    pub(crate) fn base_url(&self, reference: &Reference) -> String {
        format!("{}://{}", self.scheme(reference.endpoint()), reference.endpoint())
    }

    /// A path or a `Location` header made absolute.
    pub(crate) fn absolute(&self, reference: &Reference, url: &str) -> String {
        if url.starts_with("http://") || url.starts_with("https://") {
            url.to_owned()
        } else if url.starts_with('/') {
            format!("{}{url}", self.base_url(reference))
        } else {
            format!("{}/{url}", self.base_url(reference))
        }
    }

    /// The retry policy of this client's options.
    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.options.retries,
            first_delay: self.options.retry_delay,
            max_retry_after: self.options.max_retry_after,
            ..RetryPolicy::default()
        }
    }

    /// Sends `call`, authenticating and retrying as the module docs say.
    /// Returns every response but 401 as it is, for the caller to judge.
    pub(crate) fn call(
        &self,
        reference: &Reference,
        call: &Call<'_>,
        notify: &dyn Fn(RetryNotice),
    ) -> Result<Response<Body>> {
        let endpoint = reference.endpoint();
        self.probe(reference, notify)?;
        let url = self.absolute(reference, &call.url);
        let agent = self.agent(&url)?;
        let mut refreshed = false;
        let mut scopes = call.scopes.clone();
        loop {
            let authorization = self.authorization(reference, &scopes, refreshed, notify)?;
            let response = self.with_retries(reference, call.method, &url, call.retry, notify, || {
                self.attempt(&agent, call, &url, authorization.as_deref())
            })?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            let challenge = header(&response, "www-authenticate").and_then(|h| Challenge::parse(&h));
            let has_credentials = self.credentials(reference)?.is_some();
            let mut auth = self.auth.lock().unwrap_or_else(|e| e.into_inner());
            let host = auth.entry(endpoint.to_owned()).or_default();
            let retry = match (&challenge, refreshed) {
                (_, true) => false,
                (Some(Challenge::Basic), _) => has_credentials && authorization.is_none(),
                (Some(Challenge::Bearer { scope, .. }), _) => {
                    if let Some(scope) = scope {
                        if !scopes.contains(scope) {
                            scopes.push(scope.clone());
                        }
                    }
                    host.tokens.clear();
                    true
                }
                (None, _) => false,
            };
            if let Some(challenge) = challenge {
                host.challenge = Some(challenge);
            }
            if !retry {
                return Err(self.unauthorized(reference));
            }
            refreshed = true;
        }
    }

    fn attempt(
        &self,
        agent: &ureq::Agent,
        call: &Call<'_>,
        url: &str,
        authorization: Option<&str>,
    ) -> std::result::Result<Response<Body>, AttemptError> {
        macro_rules! with_headers {
            ($builder:expr) => {{
                let mut builder = $builder;
                for (name, value) in &call.headers {
                    builder = builder.header(*name, value.as_str());
                }
                if let Some(authorization) = authorization {
                    builder = builder.header("Authorization", authorization);
                }
                builder
            }};
        }
        let sent = match call.method {
            "GET" => with_headers!(agent.get(url)).call(),
            "HEAD" => with_headers!(agent.head(url)).call(),
            "DELETE" => with_headers!(agent.delete(url)).call(),
            method => {
                let builder = match method {
                    "POST" => agent.post(url),
                    "PUT" => agent.put(url),
                    _ => agent.patch(url),
                };
                let builder = with_headers!(builder);
                match call.body {
                    Some(make) => {
                        let (mut reader, len) = make().map_err(AttemptError::Local)?;
                        builder.header("Content-Length", len).send(SendBody::from_reader(&mut reader))
                    }
                    None => builder.header("Content-Length", "0").send_empty(),
                }
            }
        };
        sent.map_err(AttemptError::Http)
    }

    /// Runs `attempt` until it gives a response that is not transient, or
    /// the retries are used up (or `retry` is false).
    fn with_retries(
        &self,
        reference: &Reference,
        method: &str,
        url: &str,
        retry: bool,
        notify: &dyn Fn(RetryNotice),
        mut attempt: impl FnMut() -> std::result::Result<Response<Body>, AttemptError>,
    ) -> Result<Response<Body>> {
        let policy =
            RetryPolicy { retries: if retry { self.options.retries } else { 0 }, ..self.retry_policy() };
        policy.run(
            || format!("{method} {url}"),
            notify,
            || match attempt() {
                Ok(response) if is_transient_status(response.status().as_u16()) => Attempt::Transient {
                    reason: status_text(response.status().as_u16()),
                    retry_after: retry_after(&response),
                    give_up: Ok(response),
                },
                Ok(response) => Attempt::Done(Ok(response)),
                Err(AttemptError::Local(e)) => Attempt::Done(Err(e)),
                Err(AttemptError::Http(e)) if is_transient_error(&e) => Attempt::Transient {
                    reason: e.to_string(),
                    retry_after: None,
                    give_up: Err(http_error(reference, url, e)),
                },
                Err(AttemptError::Http(e)) => Attempt::Done(Err(self.transport_error(reference, url, e))),
            },
        )
    }

    fn credentials(&self, reference: &Reference) -> Result<Option<Credentials>> {
        let mut auth = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        let host = auth.entry(reference.endpoint().to_owned()).or_default();
        if let Some(found) = &host.credentials {
            return Ok(found.clone());
        }
        let found = self.options.credentials.credentials(reference.registry())?;
        host.credentials = Some(found.clone());
        Ok(found)
    }

    /// Learns the registry's challenge with `GET /v2/`, once per endpoint.
    fn probe(&self, reference: &Reference, notify: &dyn Fn(RetryNotice)) -> Result<()> {
        let endpoint = reference.endpoint();
        {
            let auth = self.auth.lock().unwrap_or_else(|e| e.into_inner());
            if auth.get(endpoint).is_some_and(|h| h.probed) {
                return Ok(());
            }
        }
        let url = format!("{}/v2/", self.base_url(reference));
        let agent = self.agent(&url)?;
        let response = self.with_retries(reference, "GET", &url, true, notify, || {
            agent.get(&url).call().map_err(AttemptError::Http)
        })?;
        let challenge = if response.status() == StatusCode::UNAUTHORIZED {
            header(&response, "www-authenticate").and_then(|h| Challenge::parse(&h))
        } else {
            None
        };
        let mut auth = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        let host = auth.entry(endpoint.to_owned()).or_default();
        host.probed = true;
        host.challenge = challenge;
        Ok(())
    }

    /// The `Authorization` header for a request with `scopes`.
    fn authorization(
        &self,
        reference: &Reference,
        scopes: &[String],
        refresh: bool,
        notify: &dyn Fn(RetryNotice),
    ) -> Result<Option<String>> {
        let credentials = self.credentials(reference)?;
        let endpoint = reference.endpoint();
        let challenge = {
            let auth = self.auth.lock().unwrap_or_else(|e| e.into_inner());
            auth.get(endpoint).and_then(|h| h.challenge.clone())
        };
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(credentials.as_ref().and_then(Credentials::basic_header)),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let mut sorted = scopes.to_vec();
                sorted.sort();
                sorted.dedup();
                let key = sorted.join(" ");
                if !refresh {
                    let auth = self.auth.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(token) = auth.get(endpoint).and_then(|h| h.tokens.get(&key)) {
                        return Ok(Some(format!("Bearer {token}")));
                    }
                }
                let token = self.fetch_token(
                    reference,
                    &realm,
                    service.as_deref(),
                    &sorted,
                    credentials.as_ref(),
                    notify,
                )?;
                let mut auth = self.auth.lock().unwrap_or_else(|e| e.into_inner());
                auth.entry(endpoint.to_owned()).or_default().tokens.insert(key, token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// The token server exchange of the distribution spec: `GET realm` with
    /// `service` and `scope`s (Basic credentials if we have them), or the
    /// OAuth2 `POST` with a refresh token.
    fn fetch_token(
        &self,
        reference: &Reference,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credentials: Option<&Credentials>,
        notify: &dyn Fn(RetryNotice),
    ) -> Result<String> {
        let agent = self.agent(realm)?;
        let response = match credentials {
            Some(Credentials::IdentityToken(refresh)) => {
                let mut form: Vec<(&str, &str)> = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("client_id", "plugin-forge"),
                ];
                if let Some(service) = service {
                    form.push(("service", service));
                }
                let joined = scopes.join(" ");
                if !joined.is_empty() {
                    form.push(("scope", &joined));
                }
                self.with_retries(reference, "POST", realm, true, notify, || {
                    agent.post(realm).send_form(form.iter().copied()).map_err(AttemptError::Http)
                })?
            }
            _ => {
                let mut query = Vec::new();
                if let Some(service) = service {
                    query.push(format!("service={}", url_encode(service)));
                }
                query.extend(scopes.iter().map(|s| format!("scope={}", url_encode(s))));
                let separator = if realm.contains('?') { '&' } else { '?' };
                let url = if query.is_empty() {
                    realm.to_owned()
                } else {
                    format!("{realm}{separator}{}", query.join("&"))
                };
                let basic = credentials.and_then(Credentials::basic_header);
                self.with_retries(reference, "GET", &url, true, notify, || {
                    let mut request = agent.get(&url);
                    if let Some(basic) = &basic {
                        request = request.header("Authorization", basic.as_str());
                    }
                    request.call().map_err(AttemptError::Http)
                })?
            }
        };
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(self.unauthorized(reference));
        }
        let body = read_body(response, 1 << 20).map_err(|e| http_error(reference, realm, e))?;
        if !(200..300).contains(&status) {
            return Err(Error::Status {
                method: "GET",
                url: realm.to_owned(),
                status,
                errors: RegistryErrors::parse(&body),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| Error::Protocol {
            url: realm.to_owned(),
            reason: "the token server's answer is not the expected JSON".into(),
        })?;
        parsed.token.or(parsed.access_token).filter(|t| !t.is_empty()).ok_or_else(|| Error::Protocol {
            url: realm.to_owned(),
            reason: "the token server's answer holds no token".into(),
        })
    }
}

/// The value of a response header as text.
pub(crate) fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// A response body, at most `limit` bytes.
pub(crate) fn read_body(response: Response<Body>, limit: u64) -> std::result::Result<Vec<u8>, ureq::Error> {
    response.into_body().into_with_config().limit(limit).read_to_vec()
}

/// The registry's error body of a failed response (never fails: a body we
/// cannot read is no details).
pub(crate) fn error_body(response: Response<Body>) -> RegistryErrors {
    RegistryErrors::parse(&read_body(response, 1 << 20).unwrap_or_default())
}

pub(crate) fn http_error(reference: &Reference, url: &str, e: ureq::Error) -> Error {
    if let Some(rustls) = tls_error(&e) {
        return Error::Tls {
            host: reference.registry().to_owned(),
            url: url.to_owned(),
            problem: TlsProblem::of(rustls),
            certificate: None,
            looked: Vec::new(),
            source: Box::new(e),
        };
    }
    if is_transient_error(&e) {
        Error::Unreachable { host: reference.registry().to_owned(), url: url.to_owned(), source: Box::new(e) }
    } else {
        Error::Protocol { url: url.to_owned(), reason: e.to_string() }
    }
}

/// An agent with our timeouts and `tls`, resolving names as
/// [`TlsOptions::resolve`] says.
fn make_agent(options: &ClientOptions, tls: ureq::tls::TlsConfig) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(300)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .timeout_per_write(Some(Duration::from_secs(120)))
        // Blobs are hashed as served: no transparent decompression.
        .accept_encoding(ureq::config::AutoHeaderValue::None)
        .user_agent(options.user_agent.as_str())
        .build();
    if options.tls.resolve.is_empty() {
        return ureq::Agent::new_with_config(config);
    }
    let resolver = FixedResolver { names: options.tls.resolve.clone(), fallback: Default::default() };
    ureq::Agent::with_parts(config, ureq::unversioned::transport::DefaultConnector::new(), resolver)
}

/// `host:port` names answered from a fixed table, the others by the system.
#[derive(Debug)]
struct FixedResolver {
    names: Vec<(String, std::net::SocketAddr)>,
    fallback: ureq::unversioned::resolver::DefaultResolver,
}

impl ureq::unversioned::resolver::Resolver for FixedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> std::result::Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        match self.names.iter().find(|(name, _)| name == authority) {
            Some((_, address)) => {
                let mut addresses = self.empty();
                addresses.push(*address);
                Ok(addresses)
            }
            None => self.fallback.resolve(uri, config, timeout),
        }
    }
}

/// Percent-encodes everything but unreserved characters.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        let client = Client::new(ClientOptions {
            insecure_registries: vec!["registry.lan:5000".into()],
            ..ClientOptions::default()
        });
        assert_eq!(client.scheme("localhost:5000"), "http");
        assert_eq!(client.scheme("127.0.0.1:41234"), "http");
        assert_eq!(client.scheme("[::1]:5000"), "http");
        assert_eq!(client.scheme("registry.lan:5000"), "http");
        assert_eq!(client.scheme("registry.lan:5001"), "https");
        assert_eq!(client.scheme("registry-1.docker.io"), "https");
    }

    #[test]
    fn the_options_make_the_retry_policy() {
        let client = Client::new(ClientOptions {
            retries: 2,
            retry_delay: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(5),
            ..ClientOptions::default()
        });
        let policy = client.retry_policy();
        assert_eq!((policy.retries, policy.max_retry_after), (2, Duration::from_secs(5)));
        assert_eq!(policy.backoff(3), Duration::from_millis(400));
    }

    #[test]
    fn client_is_sync_and_send() {
        fn check<T: Send + Sync>() {}
        check::<Client>();
    }

    #[test]
    fn encoding() {
        assert_eq!(url_encode("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
    }
}
