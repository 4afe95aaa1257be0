//! Files that must never go into an image: secrets and repository metadata.

use std::io::Read;
use std::path::Path;

use walkdir::WalkDir;

use crate::diagnostic::{Finding, Sink};
use crate::rules;

/// Names of private keys as ssh-keygen writes them.
const KEY_NAMES: [&str; 4] = ["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"];
/// Credential files of common tools.
const CREDENTIAL_NAMES: [&str; 2] = [".netrc", ".pypirc"];
/// Extensions of key stores.
const KEY_EXTENSIONS: [&str; 3] = ["key", "p12", "pfx"];
/// `.env.<suffix>` files that are templates, not secrets.
const ENV_TEMPLATES: [&str; 4] = ["example", "sample", "template", "dist"];
/// How much of a file is read to recognise a PEM private key.
const HEAD: u64 = 128;

/// Reports every forbidden file inside the plugin `root/dir`.
pub(crate) fn check(root: &Path, dir: &Path, sink: &mut Sink<'_>) {
    let mut walk = WalkDir::new(root.join(dir)).follow_links(false).sort_by_file_name().into_iter();
    while let Some(entry) = walk.next() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                let path = err.path().map(|p| p.strip_prefix(root).unwrap_or(p).to_path_buf());
                let mut finding = Finding::new(format!("cannot read: {err}")).help("fix its permissions");
                finding.file = path;
                sink.report(rules::UNREADABLE, finding);
                continue;
            }
        };
        let name = entry.file_name().to_string_lossy();
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let what = if name == ".git" {
            if entry.file_type().is_dir() {
                walk.skip_current_dir();
            }
            Some("a git repository's metadata (`.git`)")
        } else if !entry.file_type().is_file() {
            None
        } else if name == ".env" || name.strip_prefix(".env.").is_some_and(|s| !ENV_TEMPLATES.contains(&s)) {
            Some("an environment file, which usually holds secrets")
        } else if KEY_NAMES.contains(&&*name) {
            Some("an SSH private key")
        } else if CREDENTIAL_NAMES.contains(&&*name) {
            Some("a credentials file")
        } else if rel.extension().is_some_and(|e| KEY_EXTENSIONS.iter().any(|k| e.eq_ignore_ascii_case(k))) {
            Some("a private key or key store")
        } else if is_pem_private_key(entry.path()) {
            Some("a PEM private key")
        } else {
            None
        };
        if let Some(what) = what {
            sink.report(
                rules::FORBIDDEN_FILE,
                Finding::new(format!("{} is {what}; it must never go into an image", name))
                    .in_file(rel)
                    .help("delete it, or move it out of the plugin directory"),
            );
        }
    }
}

fn is_pem_private_key(path: &Path) -> bool {
    let mut head = Vec::with_capacity(HEAD as usize);
    let read = std::fs::File::open(path).and_then(|f| f.take(HEAD).read_to_end(&mut head));
    if read.is_err() {
        return false;
    }
    let head = String::from_utf8_lossy(&head);
    let head = head.trim_start();
    head.starts_with("-----BEGIN ") && head.lines().next().is_some_and(|l| l.ends_with("PRIVATE KEY-----"))
}
