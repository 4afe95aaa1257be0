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

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

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

/// The newest commit of `head`'s history (`head` a commit id, relative
/// to `root`) that changed a file `touched` says is an input, as
/// `git log HEAD -- PATHS` finds it, `paths` being every path `touched`
/// takes (`""`: all of `root`); none outside a git checkout.
///
/// When `head`'s history is linear (no merge commit), `git log -- PATHS`
/// lists exactly the commits whose diff against their parent changes a
/// file under `paths`, with those files: the same as one `git log` of
/// every commit with every changed file, filtered by `touched`. That log
/// is read once per process and kept by `root` and `head` (a commit id
/// names its whole history), so a build-all asks git once, not once per
/// plugin. A history with merges is asked per plugin, as git's history
/// simplification decides which side of a merge changed a path.
pub(crate) fn last_change<'a>(
    root: &Path,
    head: &str,
    paths: impl IntoIterator<Item = &'a str>,
    touched: impl Fn(&str) -> bool,
) -> Option<String> {
    let first = |commits: &[(String, Vec<String>)]| {
        commits.iter().find(|(_, files)| files.iter().any(|f| touched(f))).map(|(commit, _)| commit.clone())
    };
    match linear_history(root, head).as_deref() {
        Some(history) => first(history),
        None => first(&log(root, head, paths)),
    }
}

/// The commits that changed any of `paths` (relative to `root`; `""` is
/// all of it) in `head`'s history, newest first, each with the files it
/// changed under them (relative to `root`); none outside a git checkout.
fn log<'a>(root: &Path, head: &str, paths: impl IntoIterator<Item = &'a str>) -> History {
    let mut args: Vec<String> =
        LOG_ARGS.iter().map(|a| a.to_string()).chain([head.to_owned(), "--".into()]).collect();
    args.extend(paths.into_iter().map(|p| if p.is_empty() { ".".into() } else { format!(":(literal){p}") }));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(out) = git(root, &args) else { return Vec::new() };
    parse_log(&out).into_iter().map(|(commit, _, files)| (commit, files)).collect()
}

/// `git log` with each commit as `\x01COMMIT PARENTS...` and the files
/// it changed, one a line, relative to the working directory.
const LOG_ARGS: [&str; 7] =
    ["-c", "core.quotePath=false", "log", "--format=%x01%H %P", "--name-only", "--no-renames", "--relative"];

/// A history: commits newest first, each with the files it changed.
type History = Vec<(String, Vec<String>)>;

/// Every commit of `head`'s history with every file it changed (relative
/// to `root`), newest first, when the history is linear (`None` when it
/// has a merge, or git could not say); kept per process by `root` and
/// `head`.
fn linear_history(root: &Path, head: &str) -> Arc<Option<History>> {
    type Kept = Arc<OnceLock<Arc<Option<History>>>>;
    static HISTORIES: Mutex<Vec<((PathBuf, String), Kept)>> = Mutex::new(Vec::new());
    let key = (root.to_path_buf(), head.to_owned());
    let kept: Kept = {
        let mut histories = HISTORIES.lock().unwrap_or_else(|e| e.into_inner());
        match histories.iter().find(|(k, _)| *k == key) {
            Some((_, kept)) => Arc::clone(kept),
            None => {
                let kept = Kept::default();
                histories.push((key, Arc::clone(&kept)));
                kept
            }
        }
    };
    Arc::clone(kept.get_or_init(|| {
        let args: Vec<&str> = LOG_ARGS.iter().copied().chain([head, "--"]).collect();
        let commits = git(root, &args).map(|out| parse_log(&out)).unwrap_or_default();
        let linear = !commits.is_empty() && commits.iter().all(|(_, parents, _)| *parents <= 1);
        Arc::new(linear.then(|| commits.into_iter().map(|(commit, _, files)| (commit, files)).collect()))
    }))
}

/// The commits of [`LOG_ARGS`]' output: id, number of parents, files.
fn parse_log(out: &str) -> Vec<(String, usize, Vec<String>)> {
    out.split('\u{1}')
        .filter_map(|entry| {
            let mut lines = entry.lines().map(str::trim).filter(|l| !l.is_empty());
            let mut ids = lines.next()?.split(' ');
            let commit = ids.next()?.to_owned();
            Some((commit, ids.count(), lines.map(str::to_owned).collect()))
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
    use forge_testkit::git;

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

    /// Writes `files` (path, content) under `repo` and commits them.
    fn commit(repo: &Path, files: &[(&str, &str)]) -> String {
        for (path, content) in files {
            let path = repo.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        git(repo, &["add", "-A"]);
        git(repo, &["commit", "-q", "--allow-empty", "-m", "c"]);
        git(repo, &["rev-parse", "HEAD"])
    }

    /// What `git log -- PATHS` for the paths alone finds (the per-plugin way).
    fn per_paths(root: &Path, head: &str, paths: &[&str], touched: &dyn Fn(&str) -> bool) -> Option<String> {
        log(root, head, paths.iter().copied())
            .into_iter()
            .find(|(_, f)| f.iter().any(|f| touched(f)))
            .map(|(c, _)| c)
    }

    #[test]
    fn one_log_of_a_linear_history_finds_what_a_log_per_plugin_finds() {
        let repo = tempfile::tempdir().unwrap();
        let repo = repo.path();
        git(repo, &["init", "-q", "-b", "main"]);
        // The monorepo is a subdirectory of the checkout: paths are relative to it.
        let root = repo.join("mono");
        let c0 = commit(
            repo,
            &[("mono/plugins/a/x", "0"), ("mono/plugins/b/y", "0"), ("mono/sdk/f", "0"), ("outside/z", "0")],
        );
        let c1 = commit(repo, &[("mono/plugins/a/x", "1")]);
        commit(repo, &[("outside/z", "2")]);
        commit(repo, &[]);
        let c4 = commit(repo, &[("mono/sdk/f", "4"), ("mono/sdk/skip.log", "4")]);
        let c5 = commit(repo, &[("mono/plugins/b/y", "5"), ("mono/plugins/bb/q", "5")]);
        let c6 = commit(repo, &[("mono/sdk/skip.log", "6")]);
        let head = git(repo, &["rev-parse", "HEAD"]);
        assert!(linear_history(&root, &head).is_some());
        let cases: [(&[&str], Option<&String>); 7] = [
            (&["plugins/a"], Some(&c1)),
            (&["plugins/b"], Some(&c5)),
            (&["sdk"], Some(&c4)),
            (&[""], Some(&c5)),
            (&["plugins/bb", "sdk/f"], Some(&c5)),
            (&["plugins/a/x", "outside"], Some(&c1)),
            (&["nothing"], None),
        ];
        for (paths, expected) in cases {
            // An input is under one of the paths, and not a `.log` (as `.dockerignore` leaves files out).
            let touched = |f: &str| {
                !f.ends_with(".log")
                    && paths.iter().any(|p| p.is_empty() || f == *p || f.starts_with(&format!("{p}/")))
            };
            let found = last_change(&root, &head, paths.iter().copied(), touched);
            assert_eq!(found.as_ref(), expected, "{paths:?}");
            assert_eq!(found, per_paths(&root, &head, paths, &touched), "{paths:?}");
        }
        assert_eq!(per_paths(&root, &c0, &["plugins/a"], &|_| true), Some(c0.clone()));

        // A merge: git's history simplification decides, per plugin.
        git(repo, &["checkout", "-q", "-b", "side"]);
        let side = commit(repo, &[("mono/plugins/a/x", "side")]);
        git(repo, &["checkout", "-q", "main"]);
        let main = commit(repo, &[("mono/plugins/b/y", "main")]);
        git(repo, &["merge", "-q", "--no-ff", "-m", "m", "side"]);
        let merged = git(repo, &["rev-parse", "HEAD"]);
        assert!(linear_history(&root, &merged).is_none());
        let all = |_: &str| true;
        assert_eq!(last_change(&root, &merged, ["plugins/a"], all), Some(side));
        assert_eq!(last_change(&root, &merged, ["plugins/b"], all), Some(main));
        assert_eq!(last_change(&root, &merged, ["sdk"], all), Some(c6));
    }

    #[test]
    fn a_checkout_without_git_has_no_provenance() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(revision(dir.path()), None);
        assert_eq!(source(dir.path()), None);
    }
}
