//! What an image records about where and when it was made:
//! `SOURCE_DATE_EPOCH` (the timestamp of everything, parsed in this one
//! place, strictly) and the git revision and remote of the checkout, with
//! credentials stripped from the remote URL; and the other questions we
//! ask git (the `git` program, through `xshell`): the last commit that
//! changed some paths (a plugin's revision), and the paths that differ
//! from a commit (`--changed-since`).
//!
//! **Architecture invariant:** credentials never reach images; the remote
//! URL goes through [`strip_credentials`] before it becomes an annotation.

use std::path::Path;

use xshell::{cmd, Shell};

use crate::Error;

/// `SOURCE_DATE_EPOCH`, or 0 when it is unset or empty: the same inputs
/// give the same bytes. Anything else than a whole number of seconds is an
/// error, for every command alike.
pub fn source_date_epoch() -> Result<u64, Error> {
    parse_epoch(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref())
}

fn parse_epoch(value: Option<&str>) -> Result<u64, Error> {
    match value {
        Some(v) if !v.trim().is_empty() => {
            v.trim().parse().map_err(|source| Error::SourceDateEpoch { value: v.to_string(), source })
        }
        _ => Ok(0),
    }
}

/// The commit checked out at `root`, when it is a git checkout.
pub(crate) fn revision(root: &Path) -> Option<String> {
    git(root, &["rev-parse", "HEAD"])
}

/// The URL of the `origin` remote of the checkout at `root`, without
/// credentials.
pub(crate) fn source(root: &Path) -> Option<String> {
    git(root, &["remote", "get-url", "origin"]).map(|url| strip_credentials(&url))
}

/// The commits that changed any of `paths` (relative to `root`; `""` is
/// all of it), newest first, each with the files it changed under them
/// (relative to `root`); none outside a git checkout.
pub(crate) fn log<'a>(root: &Path, paths: impl IntoIterator<Item = &'a str>) -> Vec<(String, Vec<String>)> {
    let mut args: Vec<String> = ["-c", "core.quotePath=false", "log", "--format=%x01%H", "--name-only"]
        .into_iter()
        .chain(["--no-renames", "--relative", "--"])
        .map(str::to_owned)
        .collect();
    args.extend(paths.into_iter().map(|p| if p.is_empty() { ".".into() } else { format!(":(literal){p}") }));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(out) = git(root, &args) else { return Vec::new() };
    out.split('\u{1}')
        .filter_map(|entry| {
            let mut lines = entry.lines().map(str::trim).filter(|l| !l.is_empty());
            let commit = lines.next()?.to_owned();
            Some((commit, lines.map(str::to_owned).collect()))
        })
        .collect()
}

/// The paths (relative to `root`) whose content differs between the
/// commit `gitref` and the working tree (tracked files, both names of a
/// rename), and the untracked files git does not ignore.
pub(crate) fn changed_since(root: &Path, gitref: &str) -> Result<Vec<String>, Error> {
    let sh = Shell::new().map_err(|e| git_error(root, "starting git", e))?;
    sh.change_dir(root);
    let commit = format!("{gitref}^{{commit}}");
    cmd!(sh, "git rev-parse --verify --quiet {commit}").quiet().ignore_stdout().run().map_err(|_| {
        Error::Git {
            root: root.to_path_buf(),
            what: format!("`{gitref}` is not a commit of this repository"),
            help: "fetch it (a shallow clone lacks older commits: fetch-depth: 0, GIT_DEPTH: 0)".into(),
        }
    })?;
    let diff = cmd!(sh, "git diff --name-only --no-renames --relative -z {gitref} --")
        .quiet()
        .read()
        .map_err(|e| git_error(root, "git diff", e))?;
    let untracked = cmd!(sh, "git ls-files --others --exclude-standard -z")
        .quiet()
        .read()
        .map_err(|e| git_error(root, "git ls-files", e))?;
    let mut paths: Vec<String> =
        diff.split('\0').chain(untracked.split('\0')).filter(|p| !p.is_empty()).map(str::to_owned).collect();
    paths.sort();
    paths.dedup();
    Ok(paths)
}

fn git_error(root: &Path, what: &str, e: xshell::Error) -> Error {
    Error::Git {
        root: root.to_path_buf(),
        what: format!("{what} failed: {e}"),
        help: "run it in a git checkout with git on PATH".into(),
    }
}

/// The output of `git ARGS` in `root`, when it is a git checkout.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let sh = Shell::new().ok()?;
    sh.change_dir(root);
    let out = cmd!(sh, "git {args...}").quiet().ignore_stderr().read().ok()?;
    let out = out.trim().to_string();
    (!out.is_empty()).then_some(out)
}

/// `https://user:token@host/repo` → `https://host/repo`: credentials never
/// go into an image.
pub fn strip_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((authority, path)) => {
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                format!("{scheme}://{host}/{path}")
            }
            None => format!("{scheme}://{}", rest.rsplit_once('@').map_or(rest, |(_, h)| h)),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_stripped() {
        for (url, stripped) in [
            ("https://u:t@github.com/a/b.git", "https://github.com/a/b.git"),
            ("https://token@github.com/a/b.git", "https://github.com/a/b.git"),
            ("git@github.com:a/b.git", "git@github.com:a/b.git"),
            ("https://host", "https://host"),
            ("https://u:t@host", "https://host"),
        ] {
            assert_eq!(strip_credentials(url), stripped, "{url}");
        }
    }

    #[test]
    fn epochs() {
        assert_eq!(parse_epoch(None).unwrap(), 0);
        assert_eq!(parse_epoch(Some("")).unwrap(), 0);
        assert_eq!(parse_epoch(Some(" 1700000000\n")).unwrap(), 1_700_000_000);
        for bad in ["yesterday", "-1", "1.5"] {
            let err = parse_epoch(Some(bad)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("SOURCE_DATE_EPOCH=`{bad}` is not a whole number of seconds")
            );
        }
    }

    #[test]
    fn a_checkout_without_git_has_no_provenance() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(revision(dir.path()), None);
        assert_eq!(source(dir.path()), None);
    }
}
