//! The build's checks of a finished image (the `PF4xx` rules): whether the
//! Supervisely agent's command can start it. The checks themselves are
//! [`forge_sandbox::agent::check_image`] over the image's file tree; this
//! module applies the rule's severity (`-A`/`-W` on the command line) and
//! remembers images that passed, by manifest digest, in the store's cache.

use std::io::IsTerminal;

use forge_builder::{Built, Workspace};
use forge_lint::{rules, Diagnostic, Level, LintConfig, Severity};
use forge_oci::RuntimeConfig;
use forge_sandbox::{agent, ImageTree};

/// The severity overrides of `-A`/`-W` flags (codes or names); `-A` wins.
pub(crate) fn config(allow: &[String], warn: &[String]) -> anyhow::Result<LintConfig> {
    let mut config = LintConfig::default();
    for (names, level) in [(warn, Level::Warn), (allow, Level::Allow)] {
        for name in names {
            let rule = rules::lookup(name).ok_or_else(|| {
                anyhow::anyhow!("unknown lint rule `{name}`; `cargo xtask lint --list-rules` lists them")
            })?;
            config.set(rule, level);
        }
    }
    Ok(config)
}

/// Checks `built` against the agent's command: an error diagnostic fails
/// the build with its message, warnings are printed on stderr.
pub(crate) fn check(workspace: &Workspace, built: &Built, config: &LintConfig) -> anyhow::Result<()> {
    if config.severity(rules::AGENT_START).is_none() {
        return Ok(());
    }
    let store = workspace.store();
    let key = format!("agent-start/v1/{}", built.stored.manifest_digest.hex());
    if store.cache_get(&key).as_deref() == Some("ok") {
        return Ok(());
    }
    let tree = ImageTree::read(store, &built.stored)?;
    let runtime = RuntimeConfig::from_config(&built.stored.config);
    let missing = agent::check_image(&tree, &runtime);
    if missing.is_empty() {
        store.cache_put(&key, "ok")?;
        return Ok(());
    }
    let dockerfile = built.plugin.join("Dockerfile");
    let diagnostics: Vec<Diagnostic> = missing
        .iter()
        .filter_map(|m| {
            let message = format!("{}: {}", built.image, m.message());
            let help = format!("{}; or allow with -A {}", m.help(), rules::AGENT_START.code);
            Diagnostic::outside_lint(
                config,
                rules::AGENT_START,
                message,
                Some(dockerfile.clone()),
                Some(help),
            )
        })
        .collect();
    let errors: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
    if errors.is_empty() {
        let root = crate::display_root(workspace.root());
        let options =
            forge_lint::render::HumanOptions { root: &root, color: std::io::stderr().is_terminal() };
        for d in &diagnostics {
            eprint!("{}", forge_lint::render::human(d, options));
        }
        return Ok(());
    }
    let lines: Vec<String> = errors
        .iter()
        .map(|d| {
            format!(
                "error[{}]: {}\n  --> {}\n  = help: {}",
                d.rule.code,
                d.message,
                dockerfile.display(),
                d.help.as_deref().unwrap_or_default()
            )
        })
        .collect();
    anyhow::bail!("the agent could not start this image:\n{}", lines.join("\n"))
}
