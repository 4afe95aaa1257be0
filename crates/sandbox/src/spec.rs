//! The process an image's config describes, worked out the way Docker does
//! it, so that `cargo xtask run` starts what `docker run` would.
//!
//! - argv: `Entrypoint` followed by the run's arguments if there are any,
//!   else by `Cmd` (arguments replace `Cmd`, never `Entrypoint`);
//! - environment: the config's `Env` in order (a repeated key keeps its
//!   first position and its last value), plus Docker's default `PATH` and a
//!   `HOME` from the image's passwd entry (or `/`) when the image sets none;
//! - working directory: `WorkingDir`, `/` if unset;
//! - user: `User` as `user[:group]`, each numeric or a name looked up in the
//!   image's own `/etc/passwd` and `/etc/group` (not the host's); without a
//!   group, the user's primary group, or 0 for a uid the image does not list.

use std::ffi::OsString;
use std::fs;
use std::path::Path;

use forge_oci::RuntimeConfig;

use crate::error::{Error, Result};
use crate::scope;

/// Docker's `PATH` for containers whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A process to start inside a root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// The program (looked up in the sandbox's `PATH` if not absolute) and
    /// its arguments.
    pub argv: Vec<String>,
    /// The whole environment, in order.
    pub env: Vec<(String, String)>,
    /// Absolute working directory inside the root filesystem.
    pub workdir: String,
    /// Numeric user.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
}

impl RunSpec {
    /// The process for `config` with the run's `args` (empty: use `Cmd`),
    /// user and group names resolved in `rootfs`.
    pub fn from_image(config: &RuntimeConfig, args: &[String], rootfs: &Path) -> Result<RunSpec> {
        let mut argv = config.entrypoint.clone().unwrap_or_default();
        if args.is_empty() {
            argv.extend(config.cmd.iter().flatten().cloned());
        } else {
            argv.extend(args.iter().cloned());
        }
        if argv.is_empty() {
            return Err(Error::NoCommand);
        }

        let user = resolve_user(config.user.as_deref().unwrap_or(""), rootfs)?;

        let mut env: Vec<(String, String)> = Vec::new();
        for entry in &config.env {
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            match env.iter_mut().find(|(k, _)| k == key) {
                Some(existing) => existing.1 = value.to_owned(),
                None => env.push((key.to_owned(), value.to_owned())),
            }
        }
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.insert(0, ("PATH".to_owned(), DEFAULT_PATH.to_owned()));
        }
        if !env.iter().any(|(k, _)| k == "HOME") {
            env.push(("HOME".to_owned(), user.home.unwrap_or_else(|| "/".to_owned())));
        }

        let workdir = match config.working_dir.as_deref() {
            None | Some("") => "/".to_owned(),
            Some(dir) if dir.starts_with('/') => dir.to_owned(),
            Some(dir) => format!("/{dir}"),
        };

        Ok(RunSpec { argv, env, workdir, uid: user.uid, gid: user.gid })
    }
}

impl RunSpec {
    /// Sets `key` to `value`, in place when the environment has it
    /// (`docker run -e` over the image's `ENV`).
    pub fn set_env(&mut self, key: &str, value: &str) {
        match self.env.iter_mut().find(|(k, _)| k == key) {
            Some(existing) => existing.1 = value.to_owned(),
            None => self.env.push((key.to_owned(), value.to_owned())),
        }
    }
}

struct User {
    uid: u32,
    gid: u32,
    home: Option<String>,
}

/// `user[:group]` as Docker resolves it against the image's own files.
fn resolve_user(spec: &str, rootfs: &Path) -> Result<User> {
    let invalid = |reason| Error::InvalidUser { user: spec.to_owned(), reason };
    let unknown = |kind, name: &str, file| Error::UnknownUser {
        kind,
        name: name.to_owned(),
        user: spec.to_owned(),
        file,
    };
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    if user.is_empty() && group.is_some() {
        return Err(invalid("the user part is empty"));
    }
    if group == Some("") {
        return Err(invalid("the group part is empty"));
    }

    let passwd = read_table(rootfs, "passwd")?;
    let user = if user.is_empty() { "0" } else { user };
    let entry = match user.parse::<u32>() {
        Ok(uid) => passwd.iter().find(|fields| fields.get(2).and_then(|f| f.parse().ok()) == Some(uid)),
        Err(_) => Some(
            passwd
                .iter()
                .find(|fields| fields[0] == user)
                .ok_or_else(|| unknown("user", user, "/etc/passwd"))?,
        ),
    };
    let uid = match user.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => entry
            .and_then(|fields| fields.get(2)?.parse().ok())
            .ok_or(invalid("its passwd entry has no valid uid"))?,
    };
    let primary_gid = entry.and_then(|fields| fields.get(3)?.parse::<u32>().ok());
    let home = entry.and_then(|fields| fields.get(5)).filter(|h| !h.is_empty()).cloned();

    let gid = match group {
        None => primary_gid.unwrap_or(0),
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => read_table(rootfs, "group")?
                .iter()
                .find(|fields| fields[0] == group)
                .ok_or_else(|| unknown("group", group, "/etc/group"))?
                .get(2)
                .and_then(|f| f.parse().ok())
                .ok_or(invalid("its group entry has no valid gid"))?,
        },
    };
    Ok(User { uid, gid, home })
}

/// The colon-separated lines of the image's `/etc/NAME` (empty when the
/// image has none), symlinks followed inside the root filesystem only.
fn read_table(rootfs: &Path, name: &str) -> Result<Vec<Vec<String>>> {
    let components = [OsString::from("etc"), OsString::from(name)];
    let path = match scope::resolve_existing(rootfs, &components) {
        Ok(Some(path)) => path,
        // A missing file, or a symlink loop or escape: nothing to look up.
        Ok(None) | Err(_) => return Ok(Vec::new()),
    };
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("reading", path, e)),
    };
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| line.split(':').map(str::to_owned).collect())
        .collect())
}
