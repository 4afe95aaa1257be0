//! Credentials, where they come from, and the `WWW-Authenticate` challenge.
//!
//! Users already log in with `docker login`, so we read what it wrote:
//! Docker's `config.json` (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`) with its `auths` entries (base64 `user:pass`,
//! or `identitytoken`), and its `credHelpers` / `credsStore`, which name a
//! `docker-credential-NAME` program that prints the secret as JSON. Keys of
//! `auths` are written many ways for Docker Hub (`https://index.docker.io/v1/`
//! most of all), so every key is normalised as [`normalise_registry`] does.
//!
//! Secrets must never reach a log, an error or an image: [`Credentials`]
//! has a redacting `Debug` and no `Display`, and errors name the host only.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use forge_input::IoError;

use crate::error::{Error, Result};
use crate::reference::{normalise_registry, DOCKER_HUB};

/// A secret for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// User name and password (or personal access token).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in `config.json`), traded
    /// for access tokens at the token server.
    IdentityToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => {
                f.debug_struct("Basic").field("username", username).field("password", &"<redacted>").finish()
            }
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl Credentials {
    /// `Basic base64(user:pass)`, for an `Authorization` header.
    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            Credentials::IdentityToken(_) => None,
        }
    }
}

/// Where a [`crate::Client`] gets credentials from. `registry` is the
/// normalised registry name (`docker.io`, `localhost:5000`).
pub trait CredentialSource: fmt::Debug + Send + Sync {
    /// The credentials for `registry`, or `None` to go anonymous.
    fn credentials(&self, registry: &str) -> Result<Option<Credentials>>;

    /// Which credentials [`CredentialSource::credentials`] gives for
    /// `registry` and where they come from, for a 401 or 403 (`the
    /// credentials of the auths entry in /root/.docker/config.json`): never
    /// the secret.
    fn describe(&self, registry: &str) -> String;
}

/// No credentials at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anonymous;

impl CredentialSource for Anonymous {
    fn credentials(&self, _registry: &str) -> Result<Option<Credentials>> {
        Ok(None)
    }

    fn describe(&self, _registry: &str) -> String {
        "anonymous access (no credentials configured)".into()
    }
}

/// Fixed credentials per registry (from command-line flags, tests).
#[derive(Debug, Clone, Default)]
pub struct StaticCredentials {
    entries: HashMap<String, Credentials>,
}

impl StaticCredentials {
    /// Adds credentials for `registry` (any spelling).
    pub fn with(mut self, registry: &str, credentials: Credentials) -> StaticCredentials {
        self.entries.insert(normalise_registry(registry), credentials);
        self
    }
}

impl CredentialSource for StaticCredentials {
    fn credentials(&self, registry: &str) -> Result<Option<Credentials>> {
        Ok(self.entries.get(&normalise_registry(registry)).cloned())
    }

    fn describe(&self, registry: &str) -> String {
        match self.entries.get(&normalise_registry(registry)) {
            Some(Credentials::Basic { username, .. }) => {
                format!("the given credentials of user `{username}`")
            }
            Some(Credentials::IdentityToken(_)) => "the given identity token".into(),
            None => "anonymous access (no credentials given for it)".into(),
        }
    }
}

/// Docker's `config.json`, read once; see the module docs.
#[derive(Clone, Default)]
pub struct DockerConfig {
    path: Option<PathBuf>,
    auths: HashMap<String, AuthEntry>,
    creds_store: Option<String>,
    cred_helpers: HashMap<String, String>,
}

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut registries: Vec<&String> = self.auths.keys().collect();
        registries.sort();
        f.debug_struct("DockerConfig")
            .field("path", &self.path)
            .field("auths", &registries)
            .field("creds_store", &self.creds_store)
            .field("cred_helpers", &self.cred_helpers)
            .finish()
    }
}

#[derive(Clone, Default, serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(serde::Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

impl DockerConfig {
    /// The config Docker itself would read: `$DOCKER_CONFIG/config.json`,
    /// else `$HOME/.docker/config.json`. A missing file means no
    /// credentials; an unreadable or malformed one is an error.
    pub fn from_env() -> Result<DockerConfig> {
        let dir = match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => match std::env::var_os("HOME") {
                Some(home) => Path::new(&home).join(".docker"),
                None => return Ok(DockerConfig::default()),
            },
        };
        DockerConfig::load(&dir.join("config.json"))
    }

    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<DockerConfig> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DockerConfig::default()),
            Err(source) => return Err(IoError::new("reading", path, source).into()),
        };
        // serde_json's error could quote part of the file, which may hold a
        // secret: report the position only.
        let file: ConfigFile = serde_json::from_slice(&bytes).map_err(|e| Error::Credentials {
            host: "any registry".into(),
            reason: format!(
                "{} is not valid JSON (line {}, column {})",
                path.display(),
                e.line(),
                e.column()
            ),
        })?;
        Ok(DockerConfig {
            path: Some(path.to_owned()),
            auths: file.auths.into_iter().map(|(k, v)| (normalise_registry(&k), v)).collect(),
            creds_store: file.creds_store.filter(|s| !s.is_empty()),
            cred_helpers: file.cred_helpers.into_iter().map(|(k, v)| (normalise_registry(&k), v)).collect(),
        })
    }

    fn lookup_auths(&self, registry: &str) -> Result<Option<Credentials>> {
        let Some(entry) = self.auths.get(registry) else { return Ok(None) };
        if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::IdentityToken(token.clone())));
        }
        if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
            let bad = || Error::Credentials {
                host: registry.to_owned(),
                reason: "the `auth` entry in config.json is not base64 of `user:password`".into(),
            };
            let decoded = base64::engine::general_purpose::STANDARD.decode(auth.trim()).map_err(|_| bad())?;
            let text = String::from_utf8(decoded).map_err(|_| bad())?;
            let (username, password) = text.split_once(':').ok_or_else(bad)?;
            return Ok(Some(Credentials::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            }));
        }
        match (&entry.username, &entry.password) {
            (Some(username), Some(password)) => {
                Ok(Some(Credentials::Basic { username: username.clone(), password: password.clone() }))
            }
            // An entry without a secret: `docker login` with a credsStore
            // leaves these behind.
            _ => Ok(None),
        }
    }
}

impl CredentialSource for DockerConfig {
    fn credentials(&self, registry: &str) -> Result<Option<Credentials>> {
        let registry = normalise_registry(registry);
        if let Some(helper) = self.cred_helpers.get(&registry) {
            return run_helper(helper, &registry);
        }
        if let Some(found) = self.lookup_auths(&registry)? {
            return Ok(Some(found));
        }
        match &self.creds_store {
            Some(helper) => run_helper(helper, &registry),
            None => Ok(None),
        }
    }

    fn describe(&self, registry: &str) -> String {
        let registry = normalise_registry(registry);
        let file = match &self.path {
            Some(path) => path.display().to_string(),
            None => "Docker's config.json (there is none)".into(),
        };
        if let Some(helper) = self.cred_helpers.get(&registry) {
            return format!("the credentials of docker-credential-{helper} (credHelpers in {file})");
        }
        match self.lookup_auths(&registry) {
            Ok(Some(Credentials::Basic { username, .. })) => {
                return format!("the credentials of user `{username}` (auths in {file})")
            }
            Ok(Some(Credentials::IdentityToken(_))) => {
                return format!("the identity token of the auths entry in {file}")
            }
            Ok(None) | Err(_) => {}
        }
        match &self.creds_store {
            Some(helper) => format!("the credentials of docker-credential-{helper} (credsStore in {file})"),
            None => format!("anonymous access (no credentials for {registry} in {file})"),
        }
    }
}

/// Runs `docker-credential-HELPER get` with the server URL on stdin, as
/// Docker does. "credentials not found" is no credentials, not an error.
fn run_helper(helper: &str, registry: &str) -> Result<Option<Credentials>> {
    let Some(stdout) = credential_helper(helper, "get", &helper_server(registry), registry)? else {
        return Ok(None);
    };
    #[derive(serde::Deserialize)]
    struct HelperOutput {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let parsed: HelperOutput = serde_json::from_slice(&stdout).map_err(|_| Error::Credentials {
        host: registry.to_owned(),
        reason: format!("docker-credential-{helper} get did not print the expected JSON"),
    })?;
    if parsed.username == "<token>" {
        Ok(Some(Credentials::IdentityToken(parsed.secret)))
    } else {
        Ok(Some(Credentials::Basic { username: parsed.username, password: parsed.secret }))
    }
}

/// The server URL a credential helper files `registry` under: Docker Hub's
/// credentials are stored under its v1 URL.
pub(crate) fn helper_server(registry: &str) -> String {
    if registry == DOCKER_HUB {
        "https://index.docker.io/v1/".to_owned()
    } else {
        registry.to_owned()
    }
}

/// `docker-credential-HELPER ACTION` (`get`, `store`, `erase`) with `input`
/// on stdin, as Docker runs it: its stdout on success, `None` when it says
/// "credentials not found", an error naming the program otherwise.
pub(crate) fn credential_helper(
    helper: &str,
    action: &str,
    input: &str,
    registry: &str,
) -> Result<Option<Vec<u8>>> {
    let program = format!("docker-credential-{helper}");
    let fail = |reason: String| Error::Credentials { host: registry.to_owned(), reason };
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading gives a broken pipe; its exit
        // status says what matters.
        let _ = stdin.write_all(input.as_bytes());
    }
    let output = child.wait_with_output().map_err(|e| fail(format!("running {program}: {e}")))?;
    if output.status.success() {
        return Ok(Some(output.stdout));
    }
    let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if said.contains("credentials not found") {
        return Ok(None);
    }
    // What a helper prints on failure is its own message, not the secret
    // we sent it on stdin.
    Err(fail(format!("{program} {action} failed with {}: {said}", output.status)))
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=...`.
    Basic,
    /// `Bearer realm=...,service=...,scope=...`.
    Bearer {
        /// The token server's URL.
        realm: String,
        /// The `service` parameter to pass back.
        service: Option<String>,
        /// The scope the registry asked for, if it said.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses the header value; `None` for schemes we do not speak.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(rest);
        let realm = params.get("realm")?.clone();
        Some(Challenge::Bearer {
            realm,
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    }
}

/// `key="value", key=value` pairs; quoted values may hold commas.
fn parse_params(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ',')));
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    out
}

/// `repository:NAME:pull`.
pub(crate) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// `repository:NAME:pull,push`.
pub(crate) fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `config.json` with `json` in a new directory.
    fn config_file(json: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).unwrap();
        (dir, path)
    }

    #[test]
    fn debug_redacts_secrets() {
        let basic = Credentials::Basic { username: "user".into(), password: "hunter2".into() };
        let text = format!("{basic:?}");
        assert!(text.contains("user") && !text.contains("hunter2"), "{text}");
        let token = format!("{:?}", Credentials::IdentityToken("s3cr3t".into()));
        assert!(!token.contains("s3cr3t"), "{token}");
        let (_dir, path) = config_file(r#"{"auths":{"r.example":{"auth":"dXNlcjpodW50ZXIy"}}}"#);
        let config = DockerConfig::load(&path).unwrap();
        assert!(!format!("{config:?}").contains("dXNlcjpodW50ZXIy"));
    }

    #[test]
    fn docker_hub_variants_and_entry_forms() {
        let (dir, path) = config_file(
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"aHViOnB3"},
                "https://ghcr.io":{"username":"g","password":"p"},
                "localhost:5000":{"identitytoken":"tok"},
                "empty.example":{}
            }}"#,
        );
        let config = DockerConfig::load(&path).unwrap();
        let hub = Some(Credentials::Basic { username: "hub".into(), password: "pw".into() });
        for name in ["docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"] {
            assert_eq!(config.credentials(name).unwrap(), hub, "{name}");
        }
        assert_eq!(
            config.credentials("ghcr.io").unwrap(),
            Some(Credentials::Basic { username: "g".into(), password: "p".into() })
        );
        assert_eq!(
            config.credentials("localhost:5000").unwrap(),
            Some(Credentials::IdentityToken("tok".into()))
        );
        assert_eq!(config.credentials("empty.example").unwrap(), None);
        assert_eq!(config.credentials("other.example").unwrap(), None);
        assert!(DockerConfig::load(&dir.path().join("missing.json")).unwrap().auths.is_empty());
    }

    #[test]
    fn malformed_config_does_not_quote_its_content() {
        let (_dir, path) = config_file(r#"{"auths":{"x":{"auth":"c2VjcmV0OnNlY3JldA=="}} oops"#);
        let err = DockerConfig::load(&path).unwrap_err().to_string();
        assert!(!err.contains("c2VjcmV0"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn credential_helpers_are_run() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-forgetest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\nif [ \"$server\" = https://index.docker.io/v1/ ]; then\n  \
             printf '{\"ServerURL\":\"%s\",\"Username\":\"hubuser\",\"Secret\":\"hubpw\"}' \"$server\"\n\
             else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path_var = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
        // Only this test's child processes see the changed PATH.
        let config = DockerConfig { creds_store: Some("forgetest".into()), ..DockerConfig::default() };
        let found = with_path(&path_var, || config.credentials("index.docker.io"));
        assert_eq!(
            found.unwrap(),
            Some(Credentials::Basic { username: "hubuser".into(), password: "hubpw".into() })
        );
        let missing = with_path(&path_var, || config.credentials("ghcr.io"));
        assert_eq!(missing.unwrap(), None);
        let mut per_host = DockerConfig::default();
        per_host.cred_helpers.insert("ghcr.io".into(), "no-such-helper-xyz".into());
        let err = per_host.credentials("ghcr.io").unwrap_err().to_string();
        assert!(err.contains("docker-credential-no-such-helper-xyz"), "{err}");
    }

    /// Runs `f` with `PATH` set to `path`, one test at a time.
    pub(crate) fn with_path<T>(path: &str, f: impl FnOnce() -> T) -> T {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let old = std::env::var_os("PATH");
        // Tests that change PATH hold LOCK; no other unit test spawns programs.
        std::env::set_var("PATH", path);
        let out = f();
        match old {
            Some(old) => std::env::set_var("PATH", old),
            None => std::env::remove_var("PATH"),
        }
        out
    }

    #[test]
    fn challenges() {
        assert_eq!(Challenge::parse(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/python:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse("bearer realm=http://127.0.0.1:1/t"),
            Some(Challenge::Bearer { realm: "http://127.0.0.1:1/t".into(), service: None, scope: None })
        );
        assert_eq!(Challenge::parse("Negotiate abc"), None);
    }
}
