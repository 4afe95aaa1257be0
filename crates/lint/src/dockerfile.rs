//! Structural checks of a plugin's Dockerfile: it parses, it has a `FROM`,
//! its final stage copies the plugin to `/workdir` and sets `PYTHONPATH`,
//! and no `ARG` without a default is used where it would be empty.

use std::path::Path;

use forge_dockerfile::{parse_instructions, unquote, Instr, Keyword, RawWord};
use forge_manifest::Position;

use crate::diagnostic::{Finding, Sink};
use crate::rules;

/// Entries Supervisely plugins expect on `PYTHONPATH`.
const PYTHONPATH_ENTRIES: [&str; 3] = ["/workdir", "/workdir/src", "/workdir/supervisely_lib/worker_proto"];
/// The build argument naming the plugin directory.
const MODULE_PATH_VARS: [&str; 2] = ["$MODULE_PATH", "${MODULE_PATH}"];

/// Checks the Dockerfile `rel` (text `src`) of the plugin `dir`.
pub(crate) fn check(dir: &Path, rel: &Path, src: &str, sink: &mut Sink<'_>) {
    let file = forge_dockerfile::parse(src);
    let (instrs, errors) = parse_instructions(&file);
    let finding = |message: String, at: Position| Finding::new(message).in_file(rel).at(at, src);
    let mut syntax: Vec<_> = file.errors.iter().chain(&errors).collect();
    syntax.sort_by_key(|e| e.position);
    for err in syntax {
        let mut f = finding(err.kind.to_string(), err.position);
        f.help = err.kind.help();
        sink.report(rules::DOCKERFILE_SYNTAX, f);
    }

    unset_args(&file, &instrs, &finding, sink);

    let first_stage_start = instrs.iter().find(|i| !matches!(i.node, Instr::Arg(_)));
    if let Some(first) = first_stage_start.filter(|i| !matches!(i.node, Instr::From(_))) {
        sink.report(
            rules::DOCKERFILE_NO_FROM,
            finding(format!("{} comes before the first FROM", first.node.keyword()), first.position)
                .help("start the build stage with `FROM <image>`; only ARG may come before it"),
        );
    }
    let Some(last_from) = instrs.iter().rposition(|i| matches!(i.node, Instr::From(_))) else {
        // A FROM that failed to parse was reported as a syntax error already.
        let from_keyword = file.instructions.iter().any(|i| i.keyword == Keyword::From);
        if !from_keyword && first_stage_start.is_none_or(|i| matches!(i.node, Instr::From(_))) {
            sink.report(
                rules::DOCKERFILE_NO_FROM,
                finding("no FROM instruction".into(), Position::START).help(
                    "start the Dockerfile with `FROM ${REGISTRY}/base-py:${TAG}` or another base image",
                ),
            );
        }
        return;
    };
    let from = &instrs[last_from];
    let stage = &instrs[last_from + 1..];
    let text = |word: &RawWord| unquote(&word.raw, file.escape);

    let mut workdir = String::from("/");
    let mut module_path_declared = false;
    let mut code_copied = false;
    let mut whole_context: Option<Position> = None;
    let mut pythonpath: Option<(String, Position)> = None;
    for ins in stage {
        match &ins.node {
            Instr::Arg(decls) => module_path_declared |= decls.iter().any(|d| d.name.raw == "MODULE_PATH"),
            Instr::Workdir(word) => workdir = resolve(&workdir, &text(word)),
            Instr::Env(pairs) => {
                for pair in pairs.iter().filter(|p| p.key.raw == "PYTHONPATH") {
                    pythonpath = Some((text(&pair.value), pair.value.position));
                }
            }
            Instr::Copy(copy) | Instr::Add(copy) if copy.from.is_none() => {
                let dest = resolve(&workdir, &text(&copy.dest));
                for word in &copy.sources {
                    let source = text(word);
                    let source = source.trim_start_matches("./").trim_end_matches('/');
                    let names_plugin = MODULE_PATH_VARS.contains(&source) || Path::new(source) == dir;
                    let names_src = MODULE_PATH_VARS.iter().any(|v| source == format!("{v}/src"))
                        || Path::new(source) == dir.join("src");
                    if (names_plugin && dest == "/workdir") || (names_src && dest == "/workdir/src") {
                        code_copied = true;
                        if source.contains("MODULE_PATH") && !module_path_declared {
                            sink.report(
                                rules::CODE_NOT_IN_WORKDIR,
                                finding(
                                    "`MODULE_PATH` is not declared in this stage, so it expands to nothing".into(),
                                    word.position,
                                )
                                .help("add `ARG MODULE_PATH` after FROM: an ARG before FROM is only visible to FROM"),
                            );
                        }
                    } else if matches!(source, "." | "") && dest == "/workdir" {
                        whole_context = Some(ins.position);
                    }
                }
            }
            _ => {}
        }
    }

    if !code_copied {
        let f = match whole_context {
            Some(at) => finding(
                "this copies the whole monorepo, not the plugin: the build context is the repository root"
                    .into(),
                at,
            ),
            None => finding("nothing copies the plugin to /workdir".into(), from.position),
        };
        sink.report(
            rules::CODE_NOT_IN_WORKDIR,
            f.help("add `ARG MODULE_PATH` and `COPY ${MODULE_PATH} /workdir` after FROM, so the entry points are /workdir/src/<mode>.py"),
        );
    }

    match pythonpath {
        None => sink.report(
            rules::PYTHONPATH_MISSING,
            finding("the final stage does not set PYTHONPATH".into(), from.position)
                .help(format!("add `ENV PYTHONPATH={}`", PYTHONPATH_ENTRIES.join(":"))),
        ),
        Some((value, at)) => {
            let entries: Vec<&str> = value.split(':').map(|e| e.trim_end_matches('/')).collect();
            let missing: Vec<&str> =
                PYTHONPATH_ENTRIES.iter().copied().filter(|e| !entries.contains(e)).collect();
            if !missing.is_empty() {
                sink.report(
                    rules::PYTHONPATH_INCOMPLETE,
                    finding(format!("PYTHONPATH lacks {}", missing.join(", ")), at)
                        .help(format!("set `PYTHONPATH={}`", PYTHONPATH_ENTRIES.join(":"))),
                );
            }
        }
    }
}

/// The build args plugin-forge always sets.
const SET_BY_BUILD: [&str; 3] = ["MODULE_PATH", "REGISTRY", "TAG"];

/// Rule PF306: an `ARG` without default (here, or before `FROM` for a
/// stage's `ARG NAME`) that a later instruction of its scope uses as
/// `$NAME` or `${NAME}`, which is empty unless `--build-arg` sets it.
fn unset_args(
    file: &forge_dockerfile::Dockerfile,
    instrs: &[forge_dockerfile::Spanned<Instr>],
    finding: &dyn Fn(String, Position) -> Finding,
    sink: &mut Sink<'_>,
) {
    use std::collections::BTreeMap;
    let text_at: BTreeMap<_, _> = file.instructions.iter().map(|i| (i.position, i.args.as_str())).collect();
    // Global args (before the first FROM) with whether they have a default.
    let mut global: BTreeMap<String, bool> = BTreeMap::new();
    // Args of the current scope without a value: name → where declared.
    let mut unset: BTreeMap<String, Position> = BTreeMap::new();
    let mut reported: Vec<(String, Position)> = Vec::new();
    let mut in_stage = false;
    for ins in instrs {
        let text = text_at.get(&ins.position).copied().unwrap_or_default();
        if !matches!(ins.node, Instr::Arg(_)) {
            for (name, declared) in &unset {
                if uses(text, name) && !reported.contains(&(name.clone(), *declared)) {
                    reported.push((name.clone(), *declared));
                    sink.report(
                        rules::ARG_WITHOUT_DEFAULT,
                        finding(
                            format!(
                                "`ARG {name}` has no default: `${{{name}}}` on line {} is empty unless the build is given `--build-arg {name}=...`",
                                ins.position.line
                            ),
                            *declared,
                        )
                        .help(format!("give it a default (`ARG {name}=...`) or pass `--build-arg {name}=VALUE`")),
                    );
                }
            }
        }
        match &ins.node {
            Instr::Arg(decls) => {
                for decl in decls.iter().filter(|d| !SET_BY_BUILD.contains(&d.name.raw.as_str())) {
                    let name = decl.name.raw.clone();
                    let has_value = decl.default.is_some() || (in_stage && global.get(&name) == Some(&true));
                    if !in_stage {
                        global.insert(name.clone(), decl.default.is_some());
                    }
                    if has_value {
                        unset.remove(&name);
                    } else {
                        unset.insert(name, ins.position);
                    }
                }
            }
            Instr::From(_) => {
                in_stage = true;
                unset.clear();
            }
            _ => {}
        }
    }
}

/// Whether `text` uses the variable `name` as `$name` or `${name}` (not
/// after the escape `\$`; forms with a fallback such as `${name:-x}` are
/// deliberate and not counted).
fn uses(text: &str, name: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(found) = text[i..].find('$') {
        let at = i + found;
        i = at + 1;
        if at > 0 && bytes[at - 1] == b'\\' {
            continue;
        }
        let rest = &text[at + 1..];
        if let Some(inner) = rest.strip_prefix('{') {
            if inner.strip_prefix(name).is_some_and(|after| after.starts_with('}')) {
                return true;
            }
        } else if let Some(after) = rest.strip_prefix(name) {
            if !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                return true;
            }
        }
    }
    false
}

/// `path` resolved against the working directory `cwd`, normalised
/// (`.`, `..`, repeated and trailing `/` removed).
fn resolve(cwd: &str, path: &str) -> String {
    let joined = if path.starts_with('/') { path.to_string() } else { format!("{cwd}/{path}") };
    forge_oci::files::clean(&format!("/{joined}"))
}

#[cfg(test)]
mod tests {
    use super::{resolve, uses};

    #[test]
    fn variable_uses() {
        assert!(uses("${WORKER_PATH} /workdir/worker", "WORKER_PATH"));
        assert!(uses("X=$WORKER_PATH/bin", "WORKER_PATH"));
        assert!(!uses("X=$WORKER_PATHS", "WORKER_PATH"));
        assert!(!uses("X=${WORKER_PATH:-/w}", "WORKER_PATH"));
        assert!(!uses("X=\\$WORKER_PATH", "WORKER_PATH"));
        assert!(!uses("X=WORKER_PATH", "WORKER_PATH"));
    }

    #[test]
    fn paths_resolve_like_docker() {
        assert_eq!(resolve("/", "workdir/"), "/workdir");
        assert_eq!(resolve("/workdir/src", ".."), "/workdir");
        assert_eq!(resolve("/a", "/workdir//src/./"), "/workdir/src");
        assert_eq!(resolve("/workdir", "."), "/workdir");
    }
}
