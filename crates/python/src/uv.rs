//! uv, the resolver behind [`crate::resolve`], fetched by our own code on
//! first use so that a fresh machine needs no manual step.
//!
//! The version is pinned here ([`UV_VERSION`]), and so are the URL, size
//! and SHA-256 of its manylinux wheel on PyPI for each host architecture
//! we run on. The wheel is downloaded through [`crate::fetch`] (the retry
//! policy, verified before use), and the `uv` binary in its
//! `.data/scripts/` is written to `TOOL_CACHE/uv-VERSION/uv` through a
//! pid-named temporary and a rename, mode 0755; later calls find it there
//! and use no network. `PLUGIN_FORGE_UV=/path/to/uv` overrides all this
//! (another version may resolve differently; the lock records what it
//! chose either way).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::fetch::{self, Expected};
use crate::resolve_error::ResolveError;

/// The uv release we resolve with.
pub const UV_VERSION: &str = "0.13.9";

/// The environment variable naming a uv binary to use instead.
pub const UV_OVERRIDE_VAR: &str = "PLUGIN_FORGE_UV";

/// A pinned uv wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedWheel {
    /// `std::env::consts::ARCH` of the hosts it runs on.
    pub arch: &'static str,
    /// Its URL on PyPI.
    pub url: &'static str,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, as PyPI lists it.
    pub sha256: &'static str,
}

/// The wheels of [`UV_VERSION`] for our hosts, from
/// `https://pypi.org/simple/uv/` (PEP 691 JSON). For aarch64 the wheel
/// that is also `musllinux` holds a static binary, which runs on any
/// glibc.
pub const PINNED: [PinnedWheel; 2] = [
    PinnedWheel {
        arch: "x86_64",
        url: "https://files.pythonhosted.org/packages/3d/aa/26d64642d808de4a652579ef950d7cd2d37f080a8babf9c67c6b75fc4c3f/uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        size: 17_606_939,
        sha256: "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19",
    },
    PinnedWheel {
        arch: "aarch64",
        url: "https://files.pythonhosted.org/packages/57/15/94b6cd62ac3ff6550288328e8035288875197cbc183f51554b266a69877b/uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
        size: 18_026_789,
        sha256: "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
    },
];

/// A uv binary ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uv {
    path: PathBuf,
    pinned: bool,
}

impl Uv {
    /// The uv to resolve with: `PLUGIN_FORGE_UV` if set, else the pinned
    /// one in `tool_cache`, fetched and verified there on first use.
    pub fn ensure(tool_cache: &Path) -> Result<Uv, ResolveError> {
        match std::env::var_os(UV_OVERRIDE_VAR) {
            Some(path) if !path.is_empty() => Uv::at(PathBuf::from(path)),
            _ => Uv::pinned_for_host(tool_cache),
        }
    }

    /// The pinned uv in `tool_cache`, fetched and verified there on first
    /// use, whatever `PLUGIN_FORGE_UV` says.
    pub fn pinned_for_host(tool_cache: &Path) -> Result<Uv, ResolveError> {
        Uv::pinned(tool_cache, std::env::consts::ARCH)
    }

    /// The uv binary at `path` (not the pinned one).
    pub fn at(path: PathBuf) -> Result<Uv, ResolveError> {
        let executable =
            fs::metadata(&path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !executable {
            return Err(ResolveError::UvOverride { path });
        }
        Ok(Uv { path, pinned: false })
    }

    /// The pinned uv for a host of `arch`, from `tool_cache` or fetched.
    fn pinned(tool_cache: &Path, arch: &str) -> Result<Uv, ResolveError> {
        let wheel = PINNED
            .iter()
            .find(|w| w.arch == arch)
            .ok_or_else(|| ResolveError::UnsupportedHost { arch: arch.to_owned() })?;
        let dir = tool_cache.join(format!("uv-{UV_VERSION}"));
        let path = dir.join("uv");
        if !path.is_file() {
            let agent = fetch::agent();
            let expected = Expected { sha256: wheel.sha256, size: Some(wheel.size) };
            let downloaded = fetch::download_verified(&agent, wheel.url, &dir, expected)?;
            install_binary(downloaded.path(), &dir, &path)?;
        }
        Ok(Uv { path, pinned: true })
    }

    /// The binary.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is the pinned [`UV_VERSION`] (not an override).
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }
}

/// Writes the `uv` binary of the wheel at `wheel` to `dest` (in `dir`)
/// through a pid-named temporary of `dir`, mode 0755.
fn install_binary(wheel: &Path, dir: &Path, dest: &Path) -> Result<(), ResolveError> {
    let bad = |problem: String| ResolveError::UvWheel { wheel: wheel.to_path_buf(), problem };
    let file = fs::File::open(wheel).map_err(|e| ResolveError::io("opening", wheel, e))?;
    let mut archive = zip::ZipArchive::new(io::BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
    let member = format!("uv-{UV_VERSION}.data/scripts/uv");
    let mut entry = archive.by_name(&member).map_err(|e| bad(format!("{member}: {e}")))?;
    let mut tmp = fetch::temp_file_in(dir)?;
    let tmp_path = tmp.path().to_owned();
    // A failed write would be ours, not the wheel's; both are rare enough
    // that one message naming the member does.
    io::copy(&mut entry, &mut tmp)
        .map_err(|e| bad(format!("extracting {member} to {}: {e}", tmp_path.display())))?;
    tmp.as_file().sync_all().map_err(|e| ResolveError::io("writing", &tmp_path, e))?;
    fs::set_permissions(&tmp_path, fs::Permissions::from_mode(0o755))
        .map_err(|e| ResolveError::io("making executable", &tmp_path, e))?;
    tmp.persist(dest).map_err(|e| ResolveError::io("storing", dest, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = io::Cursor::new(Vec::new());
        let mut writer = zip::ZipWriter::new(&mut out);
        let options =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            writer.start_file(*name, options).unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap();
        out.into_inner()
    }

    #[test]
    fn the_binary_is_taken_from_the_wheels_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("uv.whl");
        let member = format!("uv-{UV_VERSION}.data/scripts/uv");
        fs::write(&wheel, zip_with(&[("uv/__init__.py", b""), (&member, b"\x7fELF binary")])).unwrap();
        let dest = dir.path().join("uv");
        install_binary(&wheel, dir.path(), &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"\x7fELF binary");
        assert_eq!(fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o755);
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "no temporary left: {names:?}");

        // A wheel without the binary, and a file that is no zip.
        fs::write(&wheel, zip_with(&[("uv/__init__.py", b"")])).unwrap();
        let err = install_binary(&wheel, dir.path(), &dir.path().join("uv2")).unwrap_err();
        assert!(err.to_string().contains(&member), "{err}");
        fs::write(&wheel, b"not a zip").unwrap();
        assert!(matches!(install_binary(&wheel, dir.path(), &dest), Err(ResolveError::UvWheel { .. })));
    }

    #[test]
    fn a_cached_binary_is_used_without_network_and_other_hosts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cached = dir.path().join(format!("uv-{UV_VERSION}/uv"));
        fs::create_dir_all(cached.parent().unwrap()).unwrap();
        fs::write(&cached, b"#!/bin/sh\n").unwrap();
        for arch in ["x86_64", "aarch64"] {
            let uv = Uv::pinned(dir.path(), arch).unwrap();
            assert_eq!((uv.path(), uv.is_pinned()), (cached.as_path(), true));
        }
        let err = Uv::pinned(dir.path(), "riscv64").unwrap_err();
        assert!(err.to_string().contains("PLUGIN_FORGE_UV"), "{err}");
    }

    #[test]
    fn an_override_must_be_an_executable_file() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("uv");
        fs::write(&script, b"#!/bin/sh\n").unwrap();
        assert!(matches!(Uv::at(script.clone()), Err(ResolveError::UvOverride { .. })));
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!Uv::at(script).unwrap().is_pinned());
        assert!(Uv::at(dir.path().to_path_buf()).is_err());
    }

    #[test]
    fn the_pins_are_well_formed() {
        for wheel in PINNED {
            assert!(forge_digest::is_sha256_hex(wheel.sha256), "{}", wheel.arch);
            let name = wheel.url.rsplit('/').next().unwrap();
            assert!(name.starts_with(&format!("uv-{UV_VERSION}-py3-none-manylinux")), "{name}");
            assert!(name.ends_with(&format!("_{}.whl", wheel.arch)), "{name}");
        }
    }
}
