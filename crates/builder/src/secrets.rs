//! Files that must never go into an image: secrets and repository
//! metadata. [`classify`] is the one list, used by the build on every path
//! it actually puts into an image (every `COPY`/`ADD` source, `.dockerignore`
//! applied, wherever in the context it is) and by the linter's `PF206` on
//! plugin directories.
//!
//! Names are compared without regard to case (`.ENV`, `.GIT` are caught:
//! case-insensitive file systems and careless renames make them the same
//! file to the tools that read them).

use std::path::Path;

use forge_oci::{FileSource, NodeKind, Tree};

/// Names of private keys as ssh-keygen writes them.
const KEY_NAMES: [&str; 4] = ["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"];
/// Credential files of common tools, by name.
const CREDENTIAL_NAMES: [&str; 5] = [".netrc", ".pypirc", ".npmrc", ".git-credentials", ".pgpass"];
/// Credential files of common tools, by their last two path components.
const CREDENTIAL_PATHS: [(&str, &str); 3] =
    [(".aws", "credentials"), (".docker", "config.json"), (".kube", "config")];
/// Extensions of key stores.
const KEY_EXTENSIONS: [&str; 3] = ["key", "p12", "pfx"];
/// `.env.<suffix>` files that are templates, not secrets.
const ENV_TEMPLATES: [&str; 4] = ["example", "sample", "template", "dist"];
/// How much of a file is read to recognise a PEM private key.
const HEAD: u64 = 128;

/// What the file or directory at the `/`-separated relative `path` is, when
/// it must never go into an image; `content` is the file on disk to sniff
/// for a PEM private key (a regular file), if any.
pub fn classify(path: &str, content: Option<&Path>) -> Option<&'static str> {
    let components: Vec<String> =
        path.split('/').filter(|c| !c.is_empty()).map(str::to_ascii_lowercase).collect();
    if components.iter().any(|c| c == ".git") {
        return Some("a git repository's metadata (`.git`)");
    }
    let name = components.last()?.as_str();
    if name == ".env" || name.strip_prefix(".env.").is_some_and(|s| !ENV_TEMPLATES.contains(&s)) {
        return Some("an environment file, which usually holds secrets");
    }
    if KEY_NAMES.contains(&name) {
        return Some("an SSH private key");
    }
    let parent = components.len().checked_sub(2).map(|i| components[i].as_str());
    if CREDENTIAL_NAMES.contains(&name)
        || CREDENTIAL_PATHS.iter().any(|(dir, file)| parent == Some(*dir) && name == *file)
    {
        return Some("a credentials file");
    }
    if name.rsplit_once('.').is_some_and(|(stem, ext)| !stem.is_empty() && KEY_EXTENSIONS.contains(&ext)) {
        return Some("a private key or key store");
    }
    if content.is_some_and(is_pem_private_key) {
        return Some(PEM);
    }
    None
}

/// The first node of `tree` that must never go into an image: the path it
/// comes from (relative to `root` when it is a file of the context, else its
/// path in the layer) and what it is.
pub(crate) fn find(tree: &Tree, root: &Path) -> Option<(String, &'static str)> {
    for (layer_path, node) in tree.iter() {
        let source = match &node.kind {
            NodeKind::File { source: FileSource::Path(path), .. } => Some(path),
            _ => None,
        };
        let context_rel = source.and_then(|p| p.strip_prefix(root).ok()).and_then(Path::to_str);
        let content = match &node.kind {
            NodeKind::File { source, .. } => source.path(),
            _ => None,
        };
        // The file's head is read once, for the first name that is not a
        // secret by itself (as `classify` of each name would, in order).
        let pem = || content.is_some_and(is_pem_private_key).then_some(PEM);
        if let Some(rel) = context_rel {
            if let Some(what) = classify(rel, None).or_else(pem) {
                return Some((rel.to_owned(), what));
            }
        }
        let by_name = classify(layer_path, None);
        if let Some(what) = by_name.or_else(|| if context_rel.is_none() { pem() } else { None }) {
            return Some((context_rel.unwrap_or(layer_path).to_owned(), what));
        }
    }
    None
}

const PEM: &str = "a PEM private key";

/// Whether the file at `path` starts as a PEM private key. The answer for
/// a regular file is kept for the process by its stat fingerprint (path,
/// inode, size, mtime, ctime), found again with one `lstat`: lint and the
/// build plan every plugin, and every plugin copies the same SDK.
fn is_pem_private_key(path: &Path) -> bool {
    type Stamp = (std::path::PathBuf, forge_input::StatStamp);
    static SNIFFED: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<Stamp, bool>>> =
        std::sync::LazyLock::new(Default::default);
    let stamp = std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_file())
        .map(|m| (path.to_path_buf(), forge_input::StatStamp::of(&m)));
    if let Some(known) = stamp.as_ref().and_then(|s| SNIFFED.lock().ok()?.get(s).copied()) {
        return known;
    }
    let pem = sniff_pem(path);
    if let (Some(stamp), Ok(mut sniffed)) = (stamp, SNIFFED.lock()) {
        sniffed.insert(stamp, pem);
    }
    pem
}

fn sniff_pem(path: &Path) -> bool {
    let Ok(head) = forge_input::read_head(path, HEAD) else { return false };
    let head = String::from_utf8_lossy(&head);
    let head = head.trim_start();
    head.starts_with("-----BEGIN ") && head.lines().next().is_some_and(|l| l.ends_with("PRIVATE KEY-----"))
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn names_in_any_case() {
        for (path, secret) in [
            (".env", true),
            ("a/.ENV", true),
            ("a/.env.production", true),
            ("a/.env.example", false),
            ("a/.GIT/config", true),
            ("a/.gitignore", false),
            ("a/.npmrc", true),
            ("home/.aws/credentials", true),
            ("credentials", false),
            ("home/.docker/config.json", true),
            ("config.json", false),
            ("tls/server.KEY", true),
            ("monkey", false),
            ("ssh/id_RSA", true),
            ("id_rsa.pub", false),
        ] {
            assert_eq!(classify(path, None).is_some(), secret, "{path}");
        }
    }
}
