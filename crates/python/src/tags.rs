//! The wheel tags a target accepts, best first, as
//! `packaging.tags.sys_tags()` lists them for that interpreter; the
//! `--python-platform` uv takes for it; the PEP 508 marker environment.
//!
//! Where `packaging` asks the running interpreter, we answer from the
//! [`Target`]: the platform is the image's (the architecture of its config,
//! its C library), never the host's. Two things `packaging` reads at run
//! time are taken as their usual values: a `_manylinux` module overriding
//! compatibility (not consulted), and the ELF header check of `armv7l`
//! (hard-float assumed, as on Debian's `armhf`) and `i686`.

use std::collections::BTreeMap;

use crate::index::WheelName;
use crate::resolve::ResolveEnv;
use crate::target::{Libc, PythonVersion, Target};

/// glibc versions with a legacy manylinux alias.
const LEGACY_MANYLINUX: [((u32, u32), &str); 3] =
    [((2, 17), "manylinux2014"), ((2, 12), "manylinux2010"), ((2, 5), "manylinux1")];

/// The platform tags for `arch` over `libc`, best first
/// (`packaging.tags._linux_platforms`): manylinux from the image's glibc
/// down to the oldest supported (2.5 on x86, 2.17 elsewhere) with the
/// legacy aliases, or musllinux from the image's musl down to `1_0`, then
/// `linux_<arch>`.
pub fn platform_tags(arch: &str, libc: Libc) -> Vec<String> {
    let mut tags = Vec::new();
    match libc {
        Libc::Glibc { major, minor } => {
            // glibc 2 is the only major version there is; (major, 0) would
            // be the floor of any other.
            let oldest = if matches!(arch, "x86_64" | "i686") { 5 } else { 17 };
            if major == 2 {
                for glibc_minor in (oldest..=minor).rev() {
                    tags.push(format!("manylinux_2_{glibc_minor}_{arch}"));
                    if let Some((_, legacy)) = LEGACY_MANYLINUX.iter().find(|(v, _)| *v == (2, glibc_minor)) {
                        tags.push(format!("{legacy}_{arch}"));
                    }
                }
            }
        }
        Libc::Musl { major, minor } => {
            for musl_minor in (0..=minor).rev() {
                tags.push(format!("musllinux_{major}_{musl_minor}_{arch}"));
            }
        }
    }
    tags.push(format!("linux_{arch}"));
    tags
}

/// CPython's tags for `version` over `platforms`, best first
/// (`packaging.tags.sys_tags()`: `cpython_tags` then `compatible_tags`).
pub fn cpython_tags(version: PythonVersion, free_threaded: bool, platforms: &[String]) -> Vec<String> {
    let PythonVersion { major, minor } = version;
    let interpreter = format!("cp{major}{minor}");
    let abi = format!("{interpreter}{}", if free_threaded { "t" } else { "" });
    let mut tags = Vec::new();
    let over = |tags: &mut Vec<String>, python: &str, abi: &str| {
        tags.extend(platforms.iter().map(|platform| format!("{python}-{abi}-{platform}")));
    };
    over(&mut tags, &interpreter, &abi);
    // The stable ABI exists from 3.2 on, and not for free-threaded builds.
    let abi3 = major == 3 && minor >= 2 && !free_threaded;
    if abi3 {
        over(&mut tags, &interpreter, "abi3");
    }
    over(&mut tags, &interpreter, "none");
    if abi3 {
        for older in (2..minor).rev() {
            over(&mut tags, &format!("cp{major}{older}"), "abi3");
        }
    }
    // compatible_tags: pyXY, pyX, pyX(Y-1)...pyX0 on each platform, then
    // the interpreter's `none-any`, then the same range on `any`.
    let py_range: Vec<String> = std::iter::once(format!("py{major}{minor}"))
        .chain(std::iter::once(format!("py{major}")))
        .chain((0..minor).rev().map(|older| format!("py{major}{older}")))
        .collect();
    for python in &py_range {
        over(&mut tags, python, "none");
    }
    tags.push(format!("{interpreter}-none-any"));
    tags.extend(py_range.iter().map(|python| format!("{python}-none-any")));
    tags
}

/// The highest glibc minor version uv names a `--python-platform` after,
/// per architecture (uv 0.13: `manylinux_2_17`, `_2_28`, `_2_31` to `_2_40`).
const UV_MANYLINUX: [u32; 12] = [17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40];

impl Target {
    /// The wheel tags this target accepts, best first; see the
    /// [module docs](self).
    pub fn tags(&self) -> Vec<String> {
        cpython_tags(self.version, self.free_threaded, &platform_tags(&self.arch, self.libc))
    }

    /// How good a wheel of this file name is for the target: the position
    /// of its best tag in [`Target::tags`] (0 is best), or `None` when the
    /// target cannot use it (or the name is not a wheel's). Pick the
    /// wheel with the lowest priority, as pip does.
    pub fn wheel_priority(&self, filename: &str) -> Option<usize> {
        WheelName::parse(filename)?.rank(&self.tags())
    }

    /// What [`crate::resolve`] needs of this target: the version, uv's
    /// platform name and the tags; `None` where uv has no name for the
    /// platform (see [`Target::uv_python_platform`]).
    pub fn resolve_env(&self) -> Option<ResolveEnv> {
        Some(ResolveEnv {
            python_version: self.full_version.clone().unwrap_or_else(|| self.version.to_string()),
            python_platform: self.uv_python_platform()?,
            tags: self.tags(),
        })
    }

    /// The best platform tag (`manylinux_2_36_x86_64`).
    pub fn platform_tag(&self) -> String {
        platform_tags(&self.arch, self.libc).swap_remove(0)
    }

    /// uv's `--python-platform` for this target: the newest manylinux uv
    /// names that the image's glibc satisfies (`x86_64-manylinux_2_36`),
    /// or `<arch>-unknown-linux-musl`; `None` where uv has no name for the
    /// platform (an architecture other than x86_64 and aarch64, a glibc
    /// older than 2.17). uv names fewer manylinux levels than exist
    /// (nothing between 2.17 and 2.28): the name chosen never accepts a
    /// wheel the image cannot run, but may miss one it could; pick the
    /// files to install with [`Target::tags`].
    pub fn uv_python_platform(&self) -> Option<String> {
        if !matches!(self.arch.as_str(), "x86_64" | "aarch64") {
            return None;
        }
        match self.libc {
            Libc::Glibc { major: 2, minor } => {
                let level = UV_MANYLINUX.iter().rev().find(|&&level| level <= minor)?;
                Some(format!("{}-manylinux_2_{level}", self.arch))
            }
            Libc::Glibc { .. } => None,
            Libc::Musl { .. } => Some(format!("{}-unknown-linux-musl", self.arch)),
        }
    }

    /// The PEP 508 marker environment of this target. `platform_release`
    /// and `platform_version` (the kernel's, unknown at build time) are
    /// empty; `python_full_version` is `3.N.0` when the image does not
    /// record the patch level.
    pub fn marker_env(&self) -> BTreeMap<&'static str, String> {
        let full = self.full_version.clone().unwrap_or_else(|| format!("{}.0", self.version));
        BTreeMap::from([
            ("implementation_name", "cpython".to_owned()),
            ("implementation_version", full.clone()),
            ("os_name", "posix".to_owned()),
            ("platform_machine", self.arch.clone()),
            ("platform_python_implementation", "CPython".to_owned()),
            ("platform_release", String::new()),
            ("platform_system", "Linux".to_owned()),
            ("platform_version", String::new()),
            ("python_full_version", full),
            ("python_version", self.version.to_string()),
            ("sys_platform", "linux".to_owned()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(minor: u32) -> PythonVersion {
        PythonVersion { major: 3, minor }
    }

    #[test]
    fn manylinux_x86_64_goes_down_to_2_5_with_legacy_aliases() {
        let tags = platform_tags("x86_64", Libc::Glibc { major: 2, minor: 36 });
        assert_eq!(tags[0], "manylinux_2_36_x86_64");
        let at = |t: &str| tags.iter().position(|x| x == t).unwrap_or_else(|| panic!("{t} missing"));
        assert_eq!(at("manylinux2014_x86_64"), at("manylinux_2_17_x86_64") + 1);
        assert_eq!(at("manylinux2010_x86_64"), at("manylinux_2_12_x86_64") + 1);
        assert_eq!(at("manylinux1_x86_64"), at("manylinux_2_5_x86_64") + 1);
        assert_eq!(tags.last().map(String::as_str), Some("linux_x86_64"));
        // 32 manylinux_2_N (36..=5), 3 aliases, linux_x86_64.
        assert_eq!(tags.len(), 32 + 3 + 1);
    }

    #[test]
    fn manylinux_aarch64_stops_at_2_17() {
        let tags = platform_tags("aarch64", Libc::Glibc { major: 2, minor: 31 });
        assert_eq!(
            tags[tags.len() - 3..],
            ["manylinux_2_17_aarch64", "manylinux2014_aarch64", "linux_aarch64"].map(String::from)
        );
        assert_eq!(tags.len(), 15 + 1 + 1);
    }

    #[test]
    fn musllinux() {
        assert_eq!(
            platform_tags("x86_64", Libc::Musl { major: 1, minor: 2 }),
            ["musllinux_1_2_x86_64", "musllinux_1_1_x86_64", "musllinux_1_0_x86_64", "linux_x86_64"]
                .map(String::from)
        );
    }

    /// The order `packaging.tags.sys_tags()` gives on CPython 3.11 with a
    /// single platform (computed with packaging 23 for `linux_x86_64`).
    #[test]
    fn cpython_311_order() {
        let tags = cpython_tags(v(11), false, &["linux_x86_64".to_owned()]);
        let mut expected: Vec<String> =
            ["cp311-cp311-linux_x86_64", "cp311-abi3-linux_x86_64", "cp311-none-linux_x86_64"]
                .map(String::from)
                .into();
        expected.extend((2..=10).rev().map(|m| format!("cp3{m}-abi3-linux_x86_64")));
        expected.push("py311-none-linux_x86_64".into());
        expected.push("py3-none-linux_x86_64".into());
        expected.extend((0..=10).rev().map(|m| format!("py3{m}-none-linux_x86_64")));
        expected.push("cp311-none-any".into());
        expected.push("py311-none-any".into());
        expected.push("py3-none-any".into());
        expected.extend((0..=10).rev().map(|m| format!("py3{m}-none-any")));
        assert_eq!(tags, expected);
    }

    #[test]
    fn free_threaded_has_no_abi3() {
        let tags = cpython_tags(v(13), true, &["linux_x86_64".to_owned()]);
        assert_eq!(tags[0], "cp313-cp313t-linux_x86_64");
        assert!(!tags.iter().any(|t| t.contains("abi3")));
    }
}
