//! Data-driven tests of the Dockerfile front end. Here, the lexer: each case
//! of `test_data/lexer.txt` is a Dockerfile, and `lexer.expected` has the
//! dump of its directives, instructions (with the position of every
//! argument word) and errors (refresh with `UPDATE_EXPECT=1`). Typed
//! instructions and variable substitution have their own modules.

mod ast;
mod expand;
mod robustness;
mod shell;

use expect_test::{expect, Expect};
use forge_dockerfile::{parse, parse_env, split_words, Heredoc};

/// One heredoc: its word and where, what it ends with, its flags, where
/// the body starts and the body.
pub(crate) fn heredoc(h: &Heredoc) -> String {
    let flags = [(h.expand, " expand"), (h.strip_tabs, " strip-tabs")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect::<String>();
    format!("heredoc {}@{} name={:?}{flags} body@{} {:?}", h.word, h.position, h.name, h.body, h.content)
}

/// The fixed environment every expansion test reads (`UNSET` and any
/// other name are not set).
pub(crate) fn lookup(name: &str) -> Option<String> {
    let value = match name {
        "SET" => "value",
        "EMPTY" => "",
        "SPACE" => "a b",
        "SPACED" => " a b ",
        "FILE" => "archive.tar.gz",
        "PATHV" => "/usr/local/bin:/usr/bin",
        "NL" => "a\nb",
        "é" => "unicode",
        "HOME" => "/root",
        "PY" => "python3",
        "PKGS" => "numpy  pandas",
        "STAR" => "*.txt",
        _ => return None,
    };
    Some(value.to_string())
}

/// What the lexer reads of `src`: directives, instructions with the
/// position of every argument word (and their heredocs), errors.
fn dump_file(src: &str) -> String {
    let file = parse(src);
    let mut out = String::new();
    for d in &file.directives {
        out += &format!("directive {}={:?} @{}\n", d.name, d.value, d.position);
    }
    for i in &file.instructions {
        let words = split_words(&i.args, file.escape)
            .iter()
            .map(|w| format!("{:?}@{}", w.text, i.position_of(w.start)))
            .collect::<Vec<_>>()
            .join(" ");
        out += &format!("{} @{}: {}\n", i.keyword, i.position, words);
        for h in &i.heredocs {
            out += &format!("  {}\n", heredoc(h));
        }
    }
    for e in &file.errors {
        out += &format!("error {e}\n");
    }
    out
}

/// The cases of `test_data/lexer.txt` against `lexer.expected`.
#[test]
fn lexer() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data");
    forge_testkit::check_cases(&dir, "lexer", dump_file);
}

fn check_env(args: &str, expect: Expect) {
    let actual = match parse_env(args, '\\') {
        Ok(pairs) => pairs.iter().map(|p| format!("{}={:?}", p.key, p.value)).collect::<Vec<_>>().join(" "),
        Err((offset, msg)) => format!("error at {offset}: {msg}"),
    };
    expect.assert_eq(&actual);
}

#[test]
fn env_forms() {
    check_env(
        "PYTHONPATH /workdir:/workdir/src:$PYTHONPATH",
        expect![[r#"PYTHONPATH="/workdir:/workdir/src:$PYTHONPATH""#]],
    );
    check_env("A=1 B=\"two words\" C=a\\ b", expect![[r#"A="1" B="two words" C="a b""#]]);
    check_env("K  spaced   value", expect![[r#"K="spaced   value""#]]);
    check_env("A=1 oops", expect![["error at 4: `oops` is not of the form `NAME=value`"]]);
    check_env("ALONE", expect![["error at 0: `ALONE` has no value: write `ALONE=value`"]]);
    check_env("=1", expect![["error at 0: missing variable name before `=`"]]);
}
