//! Structural checks of a plugin's Dockerfile: it parses, it has a `FROM`,
//! its final stage copies the plugin to `/workdir` and sets `PYTHONPATH`.

use std::path::Path;

use forge_dockerfile::{parse_env, split_words, unquote, Instruction, Keyword};
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
    let finding = |message: String, at: forge_dockerfile::Position| {
        Finding::new(message).in_file(rel).at(Position { line: at.line, column: at.column }, src)
    };
    for err in &file.errors {
        let mut f = finding(err.kind.to_string(), err.position);
        f.help = err.kind.help();
        sink.report(rules::DOCKERFILE_SYNTAX, f);
    }

    let first_stage_start = file.instructions.iter().find(|i| i.keyword != Keyword::Arg);
    if let Some(first) = first_stage_start.filter(|i| i.keyword != Keyword::From) {
        sink.report(
            rules::DOCKERFILE_NO_FROM,
            finding(format!("{} comes before the first FROM", first.keyword), first.position)
                .help("start the build stage with `FROM <image>`; only ARG may come before it"),
        );
    }
    let Some(last_from) = file.instructions.iter().rposition(|i| i.keyword == Keyword::From) else {
        if first_stage_start.is_none_or(|i| i.keyword == Keyword::From) {
            sink.report(
                rules::DOCKERFILE_NO_FROM,
                finding("no FROM instruction".into(), forge_dockerfile::Position { line: 1, column: 1 })
                    .help(
                        "start the Dockerfile with `FROM ${REGISTRY}/base-py:${TAG}` or another base image",
                    ),
            );
        }
        return;
    };
    let from = &file.instructions[last_from];
    let stage = &file.instructions[last_from + 1..];

    let mut workdir = String::from("/");
    let mut module_path_declared = false;
    let mut code_copied = false;
    let mut whole_context: Option<&Instruction> = None;
    let mut pythonpath: Option<(String, &Instruction, usize)> = None;
    for ins in stage {
        match ins.keyword {
            Keyword::Arg => {
                module_path_declared |= split_words(&ins.args, file.escape)
                    .iter()
                    .any(|w| w.text.split('=').next() == Some("MODULE_PATH"));
            }
            Keyword::Workdir => workdir = resolve(&workdir, &unquote(&ins.args, file.escape)),
            Keyword::Env => match parse_env(&ins.args, file.escape) {
                Err((offset, message)) => sink.report(
                    rules::DOCKERFILE_SYNTAX,
                    finding(format!("malformed ENV: {message}"), ins.position_of(offset)),
                ),
                Ok(pairs) => {
                    for pair in pairs.into_iter().filter(|p| p.key == "PYTHONPATH") {
                        pythonpath = Some((pair.value, ins, pair.value_start));
                    }
                }
            },
            Keyword::Copy | Keyword::Add => {
                let Some(args) = copy_args(ins, file.escape) else { continue };
                let Some(((dest, _), sources)) = args.split_last() else { continue };
                if sources.is_empty() {
                    sink.report(
                        rules::DOCKERFILE_SYNTAX,
                        finding(format!("{} needs a source and a destination", ins.keyword), ins.position)
                            .help(format!("write `{} <source>... <destination>`", ins.keyword)),
                    );
                    continue;
                }
                let dest = resolve(&workdir, dest);
                for (source, offset) in sources {
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
                                    ins.position_of(*offset),
                                )
                                .help("add `ARG MODULE_PATH` after FROM: an ARG before FROM is only visible to FROM"),
                            );
                        }
                    } else if matches!(source, "." | "") && dest == "/workdir" {
                        whole_context = Some(ins);
                    }
                }
            }
            _ => {}
        }
    }

    if !code_copied {
        let f = match whole_context {
            Some(ins) => finding(
                "this copies the whole monorepo, not the plugin: the build context is the repository root"
                    .into(),
                ins.position,
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
        Some((value, ins, offset)) => {
            let entries: Vec<&str> = value.split(':').map(|e| e.trim_end_matches('/')).collect();
            let missing: Vec<&str> =
                PYTHONPATH_ENTRIES.iter().copied().filter(|e| !entries.contains(e)).collect();
            if !missing.is_empty() {
                sink.report(
                    rules::PYTHONPATH_INCOMPLETE,
                    finding(format!("PYTHONPATH lacks {}", missing.join(", ")), ins.position_of(offset))
                        .help(format!("set `PYTHONPATH={}`", PYTHONPATH_ENTRIES.join(":"))),
                );
            }
        }
    }
}

/// Sources and destination of `COPY`/`ADD` with their offsets in the
/// arguments, flags removed; `None` for `--from` copies (from another stage
/// or image, not from the context) and for malformed exec forms.
fn copy_args(ins: &Instruction, escape: char) -> Option<Vec<(String, usize)>> {
    let args = ins.args.trim_start();
    if args.starts_with('[') {
        let list: Vec<String> = serde_json::from_str(args).ok()?;
        return Some(list.into_iter().map(|a| (a, 0)).collect());
    }
    let words = split_words(&ins.args, escape);
    if words.iter().any(|w| w.text.starts_with("--from")) {
        return None;
    }
    Some(words.into_iter().filter(|w| !w.text.starts_with("--")).map(|w| (w.text, w.start)).collect())
}

/// `path` resolved against the working directory `cwd`, normalised
/// (`.`, `..`, repeated and trailing `/` removed).
fn resolve(cwd: &str, path: &str) -> String {
    let joined = if path.starts_with('/') { path.to_string() } else { format!("{cwd}/{path}") };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn paths_resolve_like_docker() {
        assert_eq!(resolve("/", "workdir/"), "/workdir");
        assert_eq!(resolve("/workdir/src", ".."), "/workdir");
        assert_eq!(resolve("/a", "/workdir//src/./"), "/workdir/src");
        assert_eq!(resolve("/workdir", "."), "/workdir");
    }
}
