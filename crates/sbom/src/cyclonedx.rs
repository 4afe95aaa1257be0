//! CycloneDX 1.6 JSON (<https://cyclonedx.org/docs/1.6/json/>): the image
//! is `metadata.component` (type `container`); the plugin (`application`),
//! the base image (`container`), every Debian package and Python
//! distribution (`library`) are components with their package URL, the
//! SHA-256 of their `.deb` or wheel when recorded, and their declared
//! license as an SPDX expression; `dependencies` says the image is made
//! of them all.

use serde_json::{json, Value};

use crate::license::License;
use crate::{deb_purl, oci_purl, pypi_purl, Download, Sbom, TOOL, TOOL_VERSION};

/// The CycloneDX document of `sbom`.
pub fn document(sbom: &Sbom) -> Value {
    let subject = &sbom.subject;
    let mut components = Vec::new();
    if let Some(plugin) = &sbom.plugin {
        let mut properties = vec![property("plugin-forge:plugin:path", &plugin.path)];
        if let Some(revision) = &plugin.revision {
            properties.push(property("plugin-forge:plugin:revision", revision));
        }
        let mut component = json!({
            "type": "application",
            "bom-ref": "plugin",
            "name": plugin.name,
            "version": plugin.version,
            "description": plugin.title,
            "properties": properties,
        });
        if let Some(source) = &plugin.source {
            component["externalReferences"] = json!([{"type": "vcs", "url": source}]);
        }
        components.push(component);
    }
    if let Some(base) = &sbom.base {
        components.push(json!({
            "type": "container",
            "bom-ref": "base",
            "name": crate::strip_tag(&base.reference),
            "version": base.digest.to_string(),
            "purl": oci_purl(&base.reference, &base.digest),
            "hashes": [hash(base.digest.hex())],
            "properties": [property("plugin-forge:base:reference", &base.reference)],
        }));
    }
    for deb in &sbom.contents.debian {
        let purl = deb_purl(deb);
        let mut component = json!({
            "type": "library",
            "bom-ref": purl,
            "name": deb.name,
            "version": deb.version,
            "purl": purl,
            "properties": [
                property("plugin-forge:debian:architecture", &deb.architecture),
                property("plugin-forge:debian:source", &format!("{} {}", deb.source, deb.source_version)),
            ],
        });
        package_facts(&mut component, deb.record.as_ref().map(|r| &r.download), deb.license.as_ref());
        components.push(component);
    }
    for dist in &sbom.contents.python {
        let purl = pypi_purl(dist);
        let mut properties = vec![property("plugin-forge:python:dist-info", &dist.path)];
        if let Some(record) = &dist.record {
            properties.push(property("plugin-forge:python:wheel", &record.filename));
        }
        let mut component = json!({
            "type": "library",
            "bom-ref": format!("{purl}#{}", dist.path),
            "name": dist.name,
            "version": dist.version,
            "purl": purl,
            "properties": properties,
        });
        package_facts(&mut component, dist.record.as_ref().map(|r| &r.download), dist.license.as_ref());
        components.push(component);
    }
    let refs: Vec<Value> = components.iter().map(|c| c["bom-ref"].clone()).collect();
    let serial =
        crate::Digest::of(&crate::canonical(json!([subject.name, subject.digest.to_string(), components])));
    let (name, version) = crate::name_and_tag(&subject.name);
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid(serial.hex())),
        "version": 1,
        "metadata": {
            "timestamp": forge_oci::image::rfc3339(sbom.epoch),
            "tools": {"components": [{"type": "application", "name": TOOL, "version": TOOL_VERSION}]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": name,
                "version": version,
                "purl": oci_purl(&subject.name, &subject.digest),
                "hashes": [hash(subject.digest.hex())],
                "properties": [property("plugin-forge:image:platform", &subject.platform)],
            },
        },
        "components": components,
        "dependencies": [{"ref": "image", "dependsOn": refs}],
    })
}

/// What a package component says of its recorded download (hash, URL)
/// and its declared license.
fn package_facts(component: &mut Value, download: Option<&Download>, license: Option<&License>) {
    if let Some(download) = download {
        component["hashes"] = json!([hash(&download.sha256)]);
        if let Some(url) = &download.url {
            component["externalReferences"] = json!([{"type": "distribution", "url": url}]);
        }
    }
    if let Some(license) = license {
        component["licenses"] = json!([{"expression": license.expression}]);
    }
}

fn hash(hex: &str) -> Value {
    json!({"alg": "SHA-256", "content": hex})
}

fn property(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

/// A version-8 (custom) UUID of the first 128 bits of a digest: the same
/// document always has the same serial number.
fn uuid(hex: &str) -> String {
    let mut digits: Vec<char> = hex.chars().take(32).collect();
    digits.resize(32, '0');
    digits[12] = '8';
    digits[16] = match digits[16].to_digit(16).unwrap_or(0) & 0x3 {
        0 => '8',
        1 => '9',
        2 => 'a',
        _ => 'b',
    };
    let text: String = digits.into_iter().collect();
    format!("{}-{}-{}-{}-{}", &text[0..8], &text[8..12], &text[12..16], &text[16..20], &text[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_components_and_their_facts() {
        let sbom = crate::tests::sample();
        let doc = document(&sbom);
        assert_eq!(doc["specVersion"], "1.6");
        assert_eq!(doc["metadata"]["component"]["name"], "localhost:5000/supervisely/class-catalog");
        let components = doc["components"].as_array().unwrap();
        let kinds: Vec<&str> = components.iter().map(|c| c["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["application", "container", "library", "library"]);
        assert_eq!(components[2]["hashes"][0]["content"], "ab".repeat(32));
        assert_eq!(components[3]["licenses"][0]["expression"], "MIT");
        assert_eq!(doc["dependencies"][0]["dependsOn"].as_array().unwrap().len(), 4);
        let serial = doc["serialNumber"].as_str().unwrap();
        assert!(serial.starts_with("urn:uuid:") && serial.len() == 45, "{serial}");
        assert_eq!(&serial[23..24], "8");
    }
}
