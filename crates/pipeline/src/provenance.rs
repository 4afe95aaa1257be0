//! What an image records about where and when it was made:
//! `SOURCE_DATE_EPOCH` (the timestamp of everything, parsed in this one
//! place, strictly) and the git revision and remote of the checkout, with
//! credentials stripped from the remote URL.
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
