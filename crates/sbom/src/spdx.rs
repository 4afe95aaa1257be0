//! SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>): one package
//! for the image (`primaryPackagePurpose` `CONTAINER`), one for the plugin
//! and one for the base image, and one per Debian package and Python
//! distribution, each with its package URL, the SHA-256 of its `.deb` or
//! wheel when the build recorded one, and its declared license; the image
//! `CONTAINS` every package and is a `DESCENDANT_OF` its base.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::license::License;
use crate::{deb_purl, oci_purl, pypi_purl, Digest, Download, Sbom, TOOL, TOOL_VERSION};

const NOASSERTION: &str = "NOASSERTION";

/// The SPDX document of `sbom`.
pub fn document(sbom: &Sbom) -> Value {
    let mut packages = Vec::new();
    let mut relationships = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image")];
    let mut references: BTreeMap<String, String> = BTreeMap::new();
    let subject = &sbom.subject;
    let (name, version) = crate::name_and_tag(&subject.name);
    let comment = format!("platform {}", subject.platform);
    packages.push(container("SPDXRef-Image", name, version, &subject.name, &subject.digest, &comment));
    if let Some(plugin) = &sbom.plugin {
        let download = match (&plugin.source, &plugin.revision) {
            (Some(source), Some(revision)) => format!("git+{source}@{revision}"),
            _ => NOASSERTION.to_owned(),
        };
        let mut package = json!({
            "SPDXID": "SPDXRef-Plugin",
            "name": plugin.name,
            "versionInfo": plugin.version,
            "summary": plugin.title,
            "downloadLocation": download,
            "filesAnalyzed": false,
            "primaryPackagePurpose": "APPLICATION",
            "comment": format!("the Supervisely plugin in {}", plugin.path),
        });
        if let Some(revision) = &plugin.revision {
            package["sourceInfo"] = json!(format!("git revision {revision}"));
        }
        packages.push(package);
        relationships.push(relationship("SPDXRef-Image", "CONTAINS", "SPDXRef-Plugin"));
    }
    if let Some(base) = &sbom.base {
        let (name, version) = (crate::strip_tag(&base.reference), base.digest.to_string());
        let comment = format!("the base image {}", base.reference);
        packages.push(container("SPDXRef-Base", name, &version, &base.reference, &base.digest, &comment));
        relationships.push(relationship("SPDXRef-Image", "DESCENDANT_OF", "SPDXRef-Base"));
    }
    for (i, deb) in sbom.contents.debian.iter().enumerate() {
        let id = format!("SPDXRef-deb-{i}-{}-{}", id_part(&deb.name), id_part(&deb.architecture));
        let download = deb.record.as_ref().map(|r| &r.download);
        let license = declared(deb.license.as_ref(), &mut references);
        let mut package = library(&id, &deb.name, &deb.version, download, &deb_purl(deb), &license);
        package["sourceInfo"] = json!(format!("built package from: {} {}", deb.source, deb.source_version));
        packages.push(package);
        relationships.push(relationship("SPDXRef-Image", "CONTAINS", &id));
    }
    for (i, dist) in sbom.contents.python.iter().enumerate() {
        let id = format!("SPDXRef-python-{i}-{}", id_part(&crate::record::normalize_name(&dist.name)));
        let download = dist.record.as_ref().map(|r| &r.download);
        let license = declared(dist.license.as_ref(), &mut references);
        let mut package = library(&id, &dist.name, &dist.version, download, &pypi_purl(dist), &license);
        package["comment"] = json!(format!("installed at {}", dist.path));
        if let Some(record) = &dist.record {
            package["packageFileName"] = json!(record.filename);
        }
        packages.push(package);
        relationships.push(relationship("SPDXRef-Image", "CONTAINS", &id));
    }
    let namespace =
        Digest::of(&crate::canonical(json!([subject.name, subject.digest.to_string(), packages])));
    let mut document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": subject.name,
        "documentNamespace": format!("https://spdx.org/spdxdocs/{TOOL}/{}", namespace.hex()),
        "creationInfo": {
            "created": forge_oci::image::rfc3339(sbom.epoch),
            "creators": [format!("Tool: {TOOL}-{TOOL_VERSION}")],
        },
        "documentDescribes": ["SPDXRef-Image"],
        "packages": packages,
        "relationships": relationships,
    });
    if !references.is_empty() {
        document["hasExtractedLicensingInfos"] = references
            .into_iter()
            .map(|(id, name)| {
                json!({
                    "licenseId": id,
                    "name": name,
                    "extractedText": format!("The license the package names `{name}` (not on the SPDX License List)."),
                })
            })
            .collect();
    }
    document
}

/// The package of an image (the one described, or its base): a container
/// known by its digest, `name` and `version` as SPDX shows them.
fn container(id: &str, name: &str, version: &str, reference: &str, digest: &Digest, comment: &str) -> Value {
    json!({
        "SPDXID": id,
        "name": name,
        "versionInfo": version,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [checksum(digest.hex())],
        "externalRefs": [purl(&oci_purl(reference, digest))],
        "comment": comment,
    })
}

/// The package of a Debian package or Python distribution: its package
/// URL, declared `license`, and the download the build recorded (where
/// from, its checksum), if any.
fn library(
    id: &str,
    name: &str,
    version: &str,
    download: Option<&Download>,
    locator: &str,
    license: &str,
) -> Value {
    let mut package = json!({
        "SPDXID": id,
        "name": name,
        "versionInfo": version,
        "downloadLocation": download.and_then(|d| d.url.clone()).unwrap_or_else(|| NOASSERTION.to_owned()),
        "filesAnalyzed": false,
        "primaryPackagePurpose": "LIBRARY",
        "externalRefs": [purl(locator)],
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": license,
        "copyrightText": NOASSERTION,
    });
    if let Some(download) = download {
        package["checksums"] = json!([checksum(&download.sha256)]);
    }
    package
}

fn checksum(hex: &str) -> Value {
    json!({"algorithm": "SHA256", "checksumValue": hex})
}

fn purl(locator: &str) -> Value {
    json!({"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": locator})
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({"spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to})
}

/// The declared license, its `LicenseRef-`s remembered for the document.
fn declared(license: Option<&License>, references: &mut BTreeMap<String, String>) -> String {
    match license {
        Some(license) => {
            for r in &license.references {
                references.entry(r.id.clone()).or_insert_with(|| r.name.clone());
            }
            license.expression.clone()
        }
        None => NOASSERTION.to_owned(),
    }
}

/// SPDX identifiers allow letters, digits, `.` and `-`.
fn id_part(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_every_package_once_with_its_facts() {
        let sbom = crate::tests::sample();
        let doc = document(&sbom);
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
        let packages = doc["packages"].as_array().unwrap();
        let ids: Vec<&str> = packages.iter().map(|p| p["SPDXID"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "SPDXRef-Image",
                "SPDXRef-Plugin",
                "SPDXRef-Base",
                "SPDXRef-deb-0-libstdc--6-amd64",
                "SPDXRef-python-0-pyyaml"
            ]
        );
        assert_eq!(packages[3]["checksums"][0]["checksumValue"], "ab".repeat(32));
        assert_eq!(packages[3]["licenseDeclared"], "GPL-3.0-or-later AND LicenseRef-GCC-exception");
        assert_eq!(packages[4]["packageFileName"], "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.whl");
        assert_eq!(
            packages[1]["downloadLocation"],
            "git+https://example.com/plugins.git@0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(doc["hasExtractedLicensingInfos"][0]["licenseId"], "LicenseRef-GCC-exception");
        assert_eq!(doc["relationships"].as_array().unwrap().len(), 5);
        // Same input, same bytes.
        assert_eq!(sbom.render(crate::Format::Spdx), sbom.render(crate::Format::Spdx));
    }
}
