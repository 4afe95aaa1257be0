//! Build provenance: an in-toto statement (v1) about the image manifest
//! with a SLSA provenance v1 predicate: the builder, the Dockerfile and
//! its digest, the build args, the platform, the resolved base image, the
//! lock files' digests, the source revision and `SOURCE_DATE_EPOCH`. No
//! other time is in it (no `startedOn`/`finishedOn`): the same inputs
//! give the same bytes.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::{Base, Subject, TOOL, TOOL_VERSION};

/// The in-toto statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The SLSA provenance predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// The `buildType` of our builds: a plugin's Dockerfile built by
/// plugin-forge with the monorepo root as context.
pub const BUILD_TYPE: &str = "urn:plugin-forge:build-type:dockerfile:v1";

/// A file the build read, by its path relative to the monorepo root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    /// `plugins/x/Dockerfile`, `base-images/base-py.lock`.
    pub path: String,
    /// The SHA-256 of its bytes.
    pub digest: forge_digest::Digest,
}

/// What a build's provenance says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The image built.
    pub subject: Subject,
    /// The Dockerfile.
    pub dockerfile: Material,
    /// Every build arg, ours (`MODULE_PATH`, `REGISTRY`, `TAG`) included.
    pub build_args: BTreeMap<String, String>,
    /// The `--label`s.
    pub labels: BTreeMap<String, String>,
    /// The base image as resolved, unless `FROM scratch`.
    pub base: Option<Base>,
    /// The lock files the build installed from.
    pub locks: Vec<Material>,
    /// The repository URL (without credentials), when known.
    pub source: Option<String>,
    /// The git commit, when known.
    pub revision: Option<String>,
    /// `SOURCE_DATE_EPOCH`.
    pub epoch: u64,
}

impl Provenance {
    /// The statement as canonical JSON.
    pub fn render(&self) -> Vec<u8> {
        crate::canonical(self.statement())
    }

    /// The statement.
    pub fn statement(&self) -> Value {
        let subject = &self.subject;
        let mut dependencies = Vec::new();
        if let (Some(source), Some(revision)) = (&self.source, &self.revision) {
            dependencies.push(json!({
                "uri": format!("git+{source}@{revision}"),
                "digest": {"gitCommit": revision},
            }));
        }
        dependencies.push(material("Dockerfile", &self.dockerfile));
        if let Some(base) = &self.base {
            dependencies.push(json!({
                "name": "base image",
                "uri": format!("oci://{}", base.reference),
                "digest": {"sha256": base.digest.hex()},
            }));
        }
        for lock in &self.locks {
            dependencies.push(material("lock file", lock));
        }
        let mut external = json!({
            "dockerfile": self.dockerfile.path,
            "buildArgs": self.build_args,
            "platform": subject.platform,
        });
        if !self.labels.is_empty() {
            external["labels"] = json!(self.labels);
        }
        if let Some(source) = &self.source {
            external["source"] = json!(source);
        }
        if let Some(revision) = &self.revision {
            external["revision"] = json!(revision);
        }
        json!({
            "_type": STATEMENT_TYPE,
            "subject": [{"name": subject.name, "digest": {"sha256": subject.digest.hex()}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": external,
                    "internalParameters": {"SOURCE_DATE_EPOCH": self.epoch.to_string()},
                    "resolvedDependencies": dependencies,
                },
                "runDetails": {
                    "builder": {
                        "id": format!("urn:{TOOL}:builder"),
                        "version": {TOOL: TOOL_VERSION},
                    },
                    "metadata": {"invocationId": format!("{}@{}", subject.name, subject.digest)},
                },
            },
        })
    }
}

fn material(name: &str, material: &Material) -> Value {
    json!({
        "name": name,
        "uri": format!("file:{}", material.path),
        "digest": {"sha256": material.digest.hex()},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use forge_digest::Digest;

    #[test]
    fn a_statement_about_the_manifest_with_its_inputs() {
        let sbom = crate::tests::sample();
        let provenance = Provenance {
            subject: sbom.subject.clone(),
            dockerfile: Material {
                path: "plugins/tools/class-catalog/Dockerfile".into(),
                digest: Digest::of(b"df"),
            },
            build_args: BTreeMap::from([("TAG".into(), "0.4.0".into())]),
            labels: BTreeMap::new(),
            base: sbom.base.clone(),
            locks: vec![Material { path: "base-images/base-py.lock".into(), digest: Digest::of(b"lock") }],
            source: None,
            revision: Some("abc".into()),
            epoch: 7,
        };
        let statement = provenance.statement();
        assert_eq!(statement["subject"][0]["digest"]["sha256"], sbom.subject.digest.hex());
        let definition = &statement["predicate"]["buildDefinition"];
        assert_eq!(definition["internalParameters"]["SOURCE_DATE_EPOCH"], "7");
        assert_eq!(definition["externalParameters"]["buildArgs"]["TAG"], "0.4.0");
        let uris: Vec<&str> = definition["resolvedDependencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["uri"].as_str().unwrap())
            .collect();
        assert_eq!(
            uris,
            [
                "file:plugins/tools/class-catalog/Dockerfile",
                "oci://localhost:5000/base-py:0.4.0",
                "file:base-images/base-py.lock"
            ]
        );
        assert!(!String::from_utf8(provenance.render()).unwrap().contains("startedOn"));
    }
}
