//! The lint rules: a stable code, a name, a default severity and an
//! explanation for each. Codes never change meaning once published; a rule
//! that goes away leaves its code unused.

use std::fmt;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth fixing; the plugin can still be built and run.
    Warning,
    /// The plugin cannot be built, registered or run as it is.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One rule.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// Stable code, `PF` and three digits.
    pub code: &'static str,
    /// Stable kebab-case name; accepted wherever a code is.
    pub name: &'static str,
    /// Severity unless the command line says otherwise.
    pub default: Severity,
    /// One paragraph: what the rule checks, why, and how to fix it.
    pub explanation: &'static str,
}

macro_rules! rules {
    ($($ident:ident = $code:literal, $name:literal, $sev:ident, $explanation:literal;)*) => {
        $(
            #[doc = $explanation]
            pub const $ident: &Rule = &Rule { code: $code, name: $name, default: Severity::$sev, explanation: $explanation };
        )*
        /// Every rule, in code order.
        pub const ALL: &[&Rule] = &[$($ident),*];
    };
}

rules! {
    PLUGIN_INFO_MISSING = "PF001", "plugin-info-missing", Error,
        "A directory under `plugins/` has a `Dockerfile` or a `VERSION` but no `plugin_info.json`. A directory is a plugin when it holds `plugin_info.json`, so this one is not built, and the web instance would have no title, description or type for it. Add a `plugin_info.json` with `title`, `description` and `type`, or move the files out of `plugins/`.";
    DUPLICATE_IMAGE = "PF002", "duplicate-image", Error,
        "Two plugins name the same image and tag in their `VERSION` files. Built and pushed, the second would overwrite the first in the registry. Give each plugin its own image name, or at least its own tag.";
    UNREADABLE = "PF003", "unreadable", Error,
        "A file or directory of a plugin exists but cannot be read (permissions, a broken disk, a dangling special file). Nothing else can be said about that file until it can be read; fix its permissions.";
    PLUGIN_INFO_INVALID = "PF101", "plugin-info-invalid", Error,
        "`plugin_info.json` must be valid JSON holding an object with non-empty string values for `title`, `description` and `type`. Other keys (for example `run_mode`) are allowed and kept. The web instance reads this file from the image's `INFO` label to show and run the plugin.";
    UNKNOWN_PLUGIN_TYPE = "PF102", "unknown-plugin-type", Warning,
        "The `type` in `plugin_info.json` is not one this tool knows (`import`, `architecture`, `dtl`, `custom`). The platform may know more types, so this is a warning; check the spelling. Entry points are then checked as for a plugin started through `src/main.py`.";
    VERSION_MISSING = "PF103", "version-missing", Error,
        "The plugin has no `VERSION` file. `VERSION` holds `<image>:<tag>` (without registry), from which the image is named `REGISTRY/<image>:<tag>`; without it the plugin cannot be built.";
    VERSION_INVALID = "PF104", "version-invalid", Error,
        "`VERSION` must be one line `<image>:<tag>`, optionally ending in a newline, with nothing else on it. The image name follows the Docker/OCI reference grammar: lowercase letters and digits in `/`-separated parts, joined inside a part by `.`, `_`, `__` or dashes; no registry host (it is given at build time) and no digest. The tag is letters, digits, `_`, `.` and `-`, not starting with `.` or `-`, at most 128 characters.";
    RUN_CONFIGS_INVALID = "PF105", "run-configs-invalid", Error,
        "`predefined_run_configs.json` is optional, but when present it must be valid JSON holding an array of objects, each with a string `title`, a string `type` and an object `config`. The web instance offers these as ready-made task configurations.";
    RUN_CONFIG_TYPE_MISMATCH = "PF106", "run-config-type-mismatch", Warning,
        "A predefined run config's `type` does not fit the plugin: it must be the plugin type itself (`import`, `dtl`, `custom`), or, for `architecture` plugins, a mode (`train`, `inference`, `deploy`, `deploy_smart`). The web instance would not offer such a config where it belongs.";
    SRC_MISSING = "PF201", "src-missing", Error,
        "The plugin has no `src/` directory. All sources live in `src/`, and the platform starts the entry points as `/workdir/src/<mode>.py` inside the image.";
    ENTRY_POINT_MISSING = "PF202", "entry-point-missing", Error,
        "A required entry point is missing: `src/main.py` for most plugins, `src/train.py` and `src/inference.py` for `architecture` plugins. The image's `MODES` label lists the entry points found, and the platform cannot start a mode that is not there.";
    DOCKERFILE_MISSING = "PF203", "dockerfile-missing", Error,
        "The plugin has no `Dockerfile`, so no image can be built for it. Plugins are built with the monorepo root as context and their own `Dockerfile`, which typically copies `${MODULE_PATH}` to `/workdir`.";
    README_MISSING = "PF204", "readme-missing", Warning,
        "The plugin has no `README.md`. The image's `README` label carries it to the plugin's page in the web instance, which would be empty.";
    LICENSE_MISSING = "PF205", "license-missing", Warning,
        "The plugin has no `LICENSE`. Every plugin should say under which terms it may be used; see https://choosealicense.com/.";
    FORBIDDEN_FILE = "PF206", "forbidden-file", Error,
        "A file that must never go into an image sits inside the plugin: an environment file (`.env`), a private key (`id_rsa`, `*.key`, a PEM private key), a credentials file (`.netrc`, `.pypirc`) or a `.git` directory. The Dockerfile copies the plugin directory into the image, and anyone who can pull the image could read it. Delete it or move it out of the plugin.";
    RESTRICTIVE_MODE = "PF207", "restrictive-mode", Warning,
        "A file the build copies into the image is not readable by group or others on disk (mode 0600, 0640, 0700...). Builds normalise modes to 0644 (0755 with any executable bit) so that the image is the same whatever the checkout's umask, so in the image that file becomes readable by every user, unlike `docker build`, which keeps the disk mode. Keep secrets out of the build context, set the mode you want with `COPY --chmod=0600`, or build with `--preserve-modes` for Docker's exact modes.";
    DOCKERFILE_SYNTAX = "PF301", "dockerfile-syntax", Error,
        "A line of the `Dockerfile` is not an instruction Docker knows (a typo, or a line that should continue the previous instruction with `\\`), an instruction has no arguments, `ENV` is malformed, or a parser directive (`# escape=`) is invalid. Docker refuses to build such a file.";
    DOCKERFILE_NO_FROM = "PF302", "dockerfile-no-from", Error,
        "A `Dockerfile` must start its first build stage with `FROM`; only `ARG` (and comments, blank lines, parser directives) may come before it.";
    CODE_NOT_IN_WORKDIR = "PF303", "code-not-in-workdir", Error,
        "The final stage must copy the plugin directory to `/workdir` (so that the entry points are `/workdir/src/<mode>.py`), with a source naming the plugin: `COPY ${MODULE_PATH} /workdir` after `ARG MODULE_PATH`, or the plugin's path relative to the monorepo root. The build context is the monorepo root, so `COPY . /workdir` copies the whole repository instead, and `${MODULE_PATH}` is empty unless declared with `ARG` after `FROM`.";
    PYTHONPATH_MISSING = "PF304", "pythonpath-missing", Error,
        "The final stage never sets `PYTHONPATH` with `ENV`, so the entry points cannot import their own modules or the shared SDK. Add `ENV PYTHONPATH=/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto`.";
    PYTHONPATH_INCOMPLETE = "PF305", "pythonpath-incomplete", Warning,
        "`PYTHONPATH` is set but lacks some of `/workdir`, `/workdir/src` and `/workdir/supervisely_lib/worker_proto`, which Supervisely plugins expect on the path.";
    ARG_WITHOUT_DEFAULT = "PF306", "arg-without-default", Warning,
        "An `ARG` without a default is used (`$NAME` or `${NAME}`) but nothing sets it unless the build is given `--build-arg NAME=VALUE`: as in Docker, it then expands to the empty string, which silently copies or sets the wrong thing. Give it a default (`ARG WORKER_PATH=/workdir/worker`), pass `--build-arg` to `build`, `build-all` and `publish`, or write `${NAME:-fallback}` where it is used. `MODULE_PATH`, `REGISTRY` and `TAG` are always set by plugin-forge.";
    DOCKERFILE_UNBUILDABLE = "PF307", "dockerfile-unbuildable", Error,
        "The build's own planning of the `Dockerfile` fails: lint runs it (without building, over an empty base) so that whatever would stop `build` is reported first, at the same position. Examples: a value that cannot be expanded (an unterminated quote in `ENV A=\"abc`, `${X:?message}` with `X` unset, an expansion bomb), what this builder does not support or Docker refuses (a duplicate stage name, a `COPY --from` of its own or a later stage, a `RUN` no native installer takes, `--chown` with user names), and `COPY`/`ADD` sources that are missing, excluded by `.dockerignore`, outside the context or special files.";
    AGENT_START = "PF401", "agent-start", Error,
        "The built image lacks something the Supervisely agent's command needs. The agent ignores `ENTRYPOINT` and `CMD` and starts every plugin as `sh -c \"python -u /workdir/src/<mode>.py\"`, so the image needs `sh` (`/bin/sh`) and `python` on its `PATH` (an image with only `python3` fails: install Debian's `python-is-python3`), and the entry point file of every mode its `MODES` label lists. Checked by `build`, `build-all` and `run` on the final image (its layers, whiteouts and symlinks), not by `lint`; allow it (`-A PF401`) for images that are never started by the agent.";
}

/// Whether `rule` is checked on a built image (the `PF4xx` rules, by
/// `build`), not on the sources by `lint`.
pub fn checked_on_image(rule: &Rule) -> bool {
    rule.code.starts_with("PF4")
}

/// The rule with this code or name (any case).
pub fn lookup(code_or_name: &str) -> Option<&'static Rule> {
    ALL.iter()
        .copied()
        .find(|r| r.code.eq_ignore_ascii_case(code_or_name) || r.name.eq_ignore_ascii_case(code_or_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_well_formed() {
        for (i, a) in ALL.iter().enumerate() {
            assert!(
                a.code.len() == 5
                    && a.code.starts_with("PF")
                    && a.code[2..].bytes().all(|b| b.is_ascii_digit())
            );
            assert!(a.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "{}", a.name);
            for b in &ALL[i + 1..] {
                assert!(a.code < b.code, "{} must come before {}", a.code, b.code);
                assert_ne!(a.name, b.name);
            }
        }
        assert_eq!(lookup("pf104"), Some(VERSION_INVALID));
        assert_eq!(lookup("Version-Invalid"), Some(VERSION_INVALID));
        assert_eq!(lookup("PF999"), None);
    }
}
