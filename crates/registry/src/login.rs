//! `login` and `logout`: Docker's `config.json` written as `docker login`
//! writes it.
//!
//! The secret goes to the credential helper the config names for the
//! registry (`credHelpers`, else `credsStore`), which leaves an empty
//! `auths` entry behind as Docker does; without a helper it is stored as
//! `auths.REGISTRY.auth` (base64 `user:password`). Every other entry and
//! key of the file is kept. The file is written to a temporary file in the
//! same directory with mode 0600 and renamed over the old one, so a reader
//! never sees half a file and other users never see the secret.
//!
//! Docker Hub is stored under `https://index.docker.io/v1/`, every other
//! registry under its `host[:port]`; entries spelt another way for the same
//! registry (`https://ghcr.io`) are replaced on login and removed on logout.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use forge_input::IoError;
use serde_json::{Map, Value};

use crate::auth::{credential_helper, helper_server};
use crate::error::{Error, Result};
use crate::reference::normalise_registry;

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir).join("config.json")),
        _ => std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker").join("config.json")),
    }
}

/// Where a login went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Into `config.json` itself.
    File(PathBuf),
    /// To `docker-credential-NAME`.
    Helper(String),
}

/// Stores `username`/`password` for `registry` in the config at `path`.
pub fn store_login(path: &Path, registry: &str, username: &str, password: &str) -> Result<Stored> {
    let registry = normalise_registry(registry);
    let mut config = read_config(path)?;
    let server = helper_server(&registry);
    let helper = helper_for(&config, &registry);
    let auths = auths(&mut config, path)?;
    auths.retain(|key, _| normalise_registry(key) != registry);
    let stored = match &helper {
        Some(helper) => {
            let input = serde_json::json!({"ServerURL": server, "Username": username, "Secret": password});
            credential_helper(helper, "store", &input.to_string(), &registry)?;
            auths.insert(server, Value::Object(Map::new()));
            Stored::Helper(helper.clone())
        }
        None => {
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            auths.insert(server, serde_json::json!({ "auth": auth }));
            Stored::File(path.to_owned())
        }
    };
    write_config(path, &config)?;
    Ok(stored)
}

/// Removes the credentials for `registry` (from its helper too); `false`
/// when there were none.
pub fn erase_login(path: &Path, registry: &str) -> Result<bool> {
    let registry = normalise_registry(registry);
    let mut config = read_config(path)?;
    let helper = helper_for(&config, &registry);
    let auths = auths(&mut config, path)?;
    let before = auths.len();
    auths.retain(|key, _| normalise_registry(key) != registry);
    let mut erased = auths.len() != before;
    if let Some(helper) = &helper {
        erased |= credential_helper(helper, "erase", &helper_server(&registry), &registry)?.is_some();
    }
    if erased {
        write_config(path, &config)?;
    }
    Ok(erased)
}

fn read_config(path: &Path) -> Result<Value> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Value::Object(Map::new())),
        Err(source) => return Err(IoError::new("reading", path, source).into()),
    };
    let bad = |reason: String| Error::Credentials { host: "any registry".into(), reason };
    // The position only: the text could hold a secret.
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        bad(format!("{} is not valid JSON (line {}, column {})", path.display(), e.line(), e.column()))
    })?;
    if !value.is_object() {
        return Err(bad(format!("{} does not hold a JSON object", path.display())));
    }
    Ok(value)
}

/// The helper configured for `registry`, if any.
fn helper_for(config: &Value, registry: &str) -> Option<String> {
    let per_host = config.get("credHelpers").and_then(Value::as_object).and_then(|helpers| {
        helpers.iter().find(|(key, _)| normalise_registry(key) == registry).and_then(|(_, v)| v.as_str())
    });
    per_host
        .or_else(|| config.get("credsStore").and_then(Value::as_str))
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
}

fn auths<'a>(config: &'a mut Value, path: &Path) -> Result<&'a mut Map<String, Value>> {
    let object = config.as_object_mut().expect("read_config checked it is an object");
    let auths = object.entry("auths").or_insert_with(|| Value::Object(Map::new()));
    auths.as_object_mut().ok_or_else(|| Error::Credentials {
        host: "any registry".into(),
        reason: format!("`auths` in {} is not a JSON object", path.display()),
    })
}

/// Writes `config` as Docker does (tab-indented), atomically, mode 0600.
fn write_config(path: &Path, config: &Value) -> Result<()> {
    fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
        move |source| IoError::new(op, path, source).into()
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io("creating the directory", dir))?;
    let mut text = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut text, formatter);
    serde::Serialize::serialize(config, &mut serializer).map_err(|e| Error::Credentials {
        host: "any registry".into(),
        reason: format!("cannot serialise {}: {e}", path.display()),
    })?;
    text.push(b'\n');
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(&text)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.map_err(io("writing", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{CredentialSource as _, Credentials};
    use crate::DockerConfig;

    #[test]
    fn login_keeps_other_entries_and_writes_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker").join("config.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            r#"{"auths":{"other.example":{"auth":"b3RoZXI6cHc="},"https://r.example:5000":{"auth":"b2xkOm9sZA=="}},"proxies":{"default":{"httpProxy":"http://p:3128"}}}"#,
        )
        .unwrap();
        let stored = store_login(&path, "r.example:5000", "robot", "s3cret").unwrap();
        assert_eq!(stored, Stored::File(path.clone()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["proxies"]["default"]["httpProxy"], "http://p:3128");
        assert_eq!(value["auths"]["other.example"]["auth"], "b3RoZXI6cHc=");
        assert!(value["auths"].get("https://r.example:5000").is_none(), "{text}");
        let config = DockerConfig::load(&path).unwrap();
        assert_eq!(
            config.credentials("r.example:5000").unwrap(),
            Some(Credentials::Basic { username: "robot".into(), password: "s3cret".into() })
        );
        assert!(std::fs::read_dir(path.parent().unwrap()).unwrap().count() == 1, "no temporary file is left");

        store_login(&path, "docker.io", "hub", "pw").unwrap();
        let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(value["auths"]["https://index.docker.io/v1/"]["auth"].is_string());

        assert!(erase_login(&path, "r.example:5000").unwrap());
        assert!(!erase_login(&path, "r.example:5000").unwrap());
        let config = DockerConfig::load(&path).unwrap();
        assert_eq!(config.credentials("r.example:5000").unwrap(), None);
        assert!(config.credentials("other.example").unwrap().is_some());
    }

    #[test]
    fn a_config_that_is_not_an_object_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "[1]").unwrap();
        let err = store_login(&path, "r.example", "u", "p").unwrap_err().to_string();
        assert!(err.contains("JSON object"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[1]");
    }

    #[test]
    fn helpers_get_the_secret_and_the_file_an_empty_entry() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("helper.log");
        let helper = dir.path().join("docker-credential-forgelogin");
        std::fs::write(&helper, format!("#!/bin/sh\necho \"$1 $(cat)\" >> {}\n", log.display())).unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credHelpers":{"r.example":"forgelogin"},"credsStore":"none-such"}"#)
            .unwrap();
        let path_var = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
        let stored =
            crate::auth::tests::with_path(&path_var, || store_login(&path, "r.example", "robot", "pw"));
        assert_eq!(stored.unwrap(), Stored::Helper("forgelogin".into()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("pw") && !text.contains("cm9ib3Q6cHc"), "{text}");
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["auths"]["r.example"], serde_json::json!({}));
        let erased = crate::auth::tests::with_path(&path_var, || erase_login(&path, "r.example"));
        assert!(erased.unwrap());
        let calls = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            calls,
            "store {\"Secret\":\"pw\",\"ServerURL\":\"r.example\",\"Username\":\"robot\"}\nerase r.example\n"
        );
    }
}
