//! The pip part of a plugin's lock file: what one `RUN pip install`
//! resolved to, as a PEP 751 `pylock.toml` document (so the usual tools
//! can read it), one wheel per package.
//!
//! ```toml
//! lock-version = "1.0"
//! created-by = "plugin-forge"
//! requires-python = "==3.11.*"
//!
//! [tool.plugin-forge]
//! python-version = "3.11"
//! python-platform = "x86_64-manylinux_2_36"
//!
//! [[packages]]
//! name = "pyyaml"
//! version = "6.0.4"
//! tool.plugin-forge.requested = true
//!
//! [[packages.wheels]]
//! name = "pyyaml-6.0.4-cp311-cp311-manylinux_2_17_x86_64.whl"
//! url = "https://files.pythonhosted.org/packages/.../pyyaml-6.0.4-....whl"
//! size = 828016
//! hashes = { sha256 = "622aa875..." }
//! ```
//!
//! The coordinator embeds this document, as a TOML value, in the one lock
//! file beside a Dockerfile, keyed by the `RUN` instruction it came from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::index::WheelName;
use crate::resolve::{LockedWheel, ResolveEnv};
use crate::resolve_error::ResolveError;

/// The `created-by` we write.
const CREATED_BY: &str = "plugin-forge";
/// Our key in `[tool]` tables.
const TOOL: &str = "plugin-forge";

/// What one `pip install` resolved to, and for which target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipLock {
    /// The target's Python version (`3.11`).
    pub python_version: String,
    /// The target's platform, as uv's `--python-platform` (`x86_64-manylinux_2_36`).
    pub python_platform: String,
    /// The wheels, sorted by name.
    pub packages: Vec<LockedWheel>,
}

impl PipLock {
    /// The lock of a resolution for `env`.
    pub fn new(env: &ResolveEnv, mut packages: Vec<LockedWheel>) -> PipLock {
        packages.sort();
        PipLock {
            python_version: env.python_version.clone(),
            python_platform: env.python_platform.clone(),
            packages,
        }
    }

    /// Whether the lock was made for `env`'s interpreter.
    pub fn is_for(&self, env: &ResolveEnv) -> bool {
        self.python_version == env.python_version && self.python_platform == env.python_platform
    }

    /// The lock as a TOML table.
    pub fn to_toml_value(&self) -> toml::Value {
        let document = Document::from(self);
        // Our own plain structs always serialise.
        toml::Value::try_from(&document).unwrap_or_else(|_| toml::Value::Table(toml::Table::new()))
    }

    /// The lock as a `pylock.toml` document.
    pub fn to_toml_string(&self) -> String {
        toml::to_string(&Document::from(self)).unwrap_or_default()
    }

    /// A lock from a TOML table, checked (one wheel per package, SHA-256
    /// and file names well formed, no package twice).
    pub fn from_toml_value(value: &toml::Value) -> Result<PipLock, ResolveError> {
        let document: Document = value
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| ResolveError::Lock { problem: e.to_string() })?;
        document.into_lock()
    }

    /// A lock from a `pylock.toml` document, checked as [`PipLock::from_toml_value`].
    pub fn parse(text: &str) -> Result<PipLock, ResolveError> {
        let document: Document =
            toml::from_str(text).map_err(|e| ResolveError::Lock { problem: e.to_string() })?;
        document.into_lock()
    }
}

/// The on-disk shape (PEP 751 names).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Document {
    lock_version: String,
    created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    requires_python: Option<String>,
    tool: BTreeMap<String, Target>,
    #[serde(default)]
    packages: Vec<Package>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Target {
    python_version: String,
    python_platform: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Package {
    name: String,
    version: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    tool: BTreeMap<String, PackageTool>,
    #[serde(default)]
    wheels: Vec<Wheel>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PackageTool {
    #[serde(default)]
    requested: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Wheel {
    name: String,
    url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    hashes: BTreeMap<String, String>,
}

impl From<&PipLock> for Document {
    fn from(lock: &PipLock) -> Document {
        let minor = lock.python_version.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
        let target = Target {
            python_version: lock.python_version.clone(),
            python_platform: lock.python_platform.clone(),
        };
        Document {
            lock_version: "1.0".into(),
            created_by: CREATED_BY.into(),
            requires_python: Some(format!("=={minor}.*")),
            tool: BTreeMap::from([(TOOL.to_owned(), target)]),
            packages: lock.packages.iter().map(Package::from).collect(),
        }
    }
}

impl From<&LockedWheel> for Package {
    fn from(wheel: &LockedWheel) -> Package {
        let tool = match wheel.requested {
            true => BTreeMap::from([(TOOL.to_owned(), PackageTool { requested: true })]),
            false => BTreeMap::new(),
        };
        Package {
            name: wheel.name.clone(),
            version: wheel.version.clone(),
            tool,
            wheels: vec![Wheel {
                name: wheel.filename.clone(),
                url: wheel.url.clone(),
                size: wheel.size,
                hashes: BTreeMap::from([("sha256".to_owned(), wheel.sha256.clone())]),
            }],
        }
    }
}

impl Document {
    fn into_lock(self) -> Result<PipLock, ResolveError> {
        let problem = |problem: String| ResolveError::Lock { problem };
        if self.lock_version.split('.').next() != Some("1") {
            return Err(problem(format!("lock-version {:?}: only 1.x is read", self.lock_version)));
        }
        let target =
            self.tool.get(TOOL).ok_or_else(|| problem(format!("no [tool.{TOOL}] table (the target)")))?;
        let mut packages = Vec::with_capacity(self.packages.len());
        for (i, package) in self.packages.into_iter().enumerate() {
            let at = format!("packages[{i}] ({})", package.name);
            let [wheel] = &package.wheels[..] else {
                return Err(problem(format!(
                    "{at}: {} wheels; a locked package names exactly one",
                    package.wheels.len()
                )));
            };
            let sha256 =
                wheel.hashes.get("sha256").ok_or_else(|| problem(format!("{at}: no hashes.sha256")))?;
            if !forge_digest::is_sha256_hex(sha256) {
                return Err(problem(format!("{at}: {sha256:?} is not a SHA-256")));
            }
            if WheelName::parse(&wheel.name).is_none() || wheel.name.contains('/') {
                return Err(problem(format!("{at}: {:?} is not a wheel file name", wheel.name)));
            }
            if package.name.is_empty() || package.version.is_empty() || wheel.url.is_empty() {
                return Err(problem(format!("{at}: empty name, version or url")));
            }
            packages.push(LockedWheel {
                requested: package.tool.get(TOOL).is_some_and(|t| t.requested),
                name: package.name,
                version: package.version,
                filename: wheel.name.clone(),
                url: wheel.url.clone(),
                sha256: sha256.clone(),
                size: wheel.size,
            });
        }
        packages.sort();
        if let Some(pair) = packages.windows(2).find(|p| p[0].name == p[1].name) {
            return Err(problem(format!("package {} is locked twice", pair[0].name)));
        }
        Ok(PipLock {
            python_version: target.python_version.clone(),
            python_platform: target.python_platform.clone(),
            packages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PipLock {
        let env = ResolveEnv {
            python_version: "3.11".into(),
            python_platform: "x86_64-manylinux_2_36".into(),
            tags: vec!["cp311-cp311-manylinux_2_36_x86_64".into()],
        };
        PipLock::new(
            &env,
            vec![
                LockedWheel {
                    name: "text-unidecode".into(),
                    version: "1.3".into(),
                    filename: "text_unidecode-1.3-py2.py3-none-any.whl".into(),
                    url: "https://files.example/text_unidecode-1.3-py2.py3-none-any.whl".into(),
                    sha256: "1311f10e8b895935241623731c2ba64f4c455287888b18189350b67134a822e8".into(),
                    size: Some(78154),
                    requested: false,
                },
                LockedWheel {
                    name: "python-slugify".into(),
                    version: "9.2.0".into(),
                    filename: "python_slugify-9.2.0-py3-none-any.whl".into(),
                    url: "https://files.example/python_slugify-9.2.0-py3-none-any.whl".into(),
                    sha256: "7298dcfc65e9ccdf834b3c398f163af0d09a9a8fc1ee6a7b2dffd8d38bfb756e".into(),
                    size: None,
                    requested: true,
                },
            ],
        )
    }

    #[test]
    fn a_lock_round_trips_as_text_and_as_a_value() {
        let lock = sample();
        assert_eq!(lock.packages[0].name, "python-slugify", "sorted by name");
        let text = lock.to_toml_string();
        expect_test::expect![[r#"
            lock-version = "1.0"
            created-by = "plugin-forge"
            requires-python = "==3.11.*"

            [tool.plugin-forge]
            python-version = "3.11"
            python-platform = "x86_64-manylinux_2_36"

            [[packages]]
            name = "python-slugify"
            version = "9.2.0"

            [packages.tool.plugin-forge]
            requested = true

            [[packages.wheels]]
            name = "python_slugify-9.2.0-py3-none-any.whl"
            url = "https://files.example/python_slugify-9.2.0-py3-none-any.whl"

            [packages.wheels.hashes]
            sha256 = "7298dcfc65e9ccdf834b3c398f163af0d09a9a8fc1ee6a7b2dffd8d38bfb756e"

            [[packages]]
            name = "text-unidecode"
            version = "1.3"

            [[packages.wheels]]
            name = "text_unidecode-1.3-py2.py3-none-any.whl"
            url = "https://files.example/text_unidecode-1.3-py2.py3-none-any.whl"
            size = 78154

            [packages.wheels.hashes]
            sha256 = "1311f10e8b895935241623731c2ba64f4c455287888b18189350b67134a822e8"
        "#]]
        .assert_eq(&text);
        assert_eq!(PipLock::parse(&text).unwrap(), lock);
        assert_eq!(PipLock::from_toml_value(&lock.to_toml_value()).unwrap(), lock);
        // Embedded in a bigger document, keyed by the RUN it came from.
        let mut outer = toml::Table::new();
        outer.insert("RUN pip install python-slugify".into(), lock.to_toml_value());
        let reread: toml::Table = toml::from_str(&toml::to_string(&outer).unwrap()).unwrap();
        assert_eq!(PipLock::from_toml_value(&reread["RUN pip install python-slugify"]).unwrap(), lock);
        let env = ResolveEnv {
            python_version: "3.11".into(),
            python_platform: "x86_64-manylinux_2_36".into(),
            tags: Vec::new(),
        };
        assert!(lock.is_for(&env));
        assert!(!lock.is_for(&ResolveEnv { python_platform: "aarch64-manylinux_2_36".into(), ..env }));
    }

    #[test]
    fn malformed_locks_are_refused_with_the_place() {
        let text = sample().to_toml_string();
        let cases = [
            (text.replacen("lock-version = \"1.0\"", "lock-version = \"2.0\"", 1), "lock-version"),
            (text.replacen("[tool.plugin-forge]", "[tool.other]", 1), "[tool.plugin-forge]"),
            (text.replacen("sha256 = \"7298", "sha256 = \"X298", 1), "packages[0] (python-slugify)"),
            (text.replacen("name = \"python_slugify-9.2.0-py3-none-any.whl\"", "name = \"x.tar.gz\"", 1), "wheel file name"),
            (text.replacen("name = \"text-unidecode\"", "name = \"python-slugify\"", 1), "locked twice"),
            (
                format!(
                    "{text}\n[[packages]]\nname = \"two\"\nversion = \"1\"\n[[packages.wheels]]\nname = \"a-1-py3-none-any.whl\"\nurl = \"u\"\nhashes = {{ sha256 = \"{0}\" }}\n[[packages.wheels]]\nname = \"a-1-py2-none-any.whl\"\nurl = \"u\"\nhashes = {{ sha256 = \"{0}\" }}\n",
                    "a".repeat(64)
                ),
                "exactly one",
            ),
            ("packages = 3".to_owned(), "pip lock"),
        ];
        for (text, wanted) in cases {
            let err = PipLock::parse(&text).unwrap_err().to_string();
            assert!(err.contains(wanted), "{wanted:?} not in {err:?}");
        }
    }
}
