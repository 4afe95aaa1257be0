//! Data-driven tests of the Dockerfile front end. Here, the lexer: each case
//! is a Dockerfile and the expected dump of directives, instructions (with
//! the position of every argument word) and errors. Typed instructions and
//! variable substitution have their own modules.

mod ast;
mod expand;
mod robustness;
mod shell;

use expect_test::{expect, Expect};
use forge_dockerfile::{parse, parse_env, split_words};

fn check(src: &str, expect: Expect) {
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
    }
    for e in &file.errors {
        out += &format!("error {e}\n");
    }
    expect.assert_eq(&out);
}

#[test]
fn instructions_and_positions() {
    check(
        "ARG REGISTRY\nFROM ${REGISTRY}/base-py:${TAG}\n  copy  src /workdir\n",
        expect![[r#"
            ARG @1:1: "REGISTRY"@1:5
            FROM @2:1: "${REGISTRY}/base-py:${TAG}"@2:6
            COPY @3:3: "src"@3:9 "/workdir"@3:13
        "#]],
    );
}

#[test]
fn continuations_skip_comments_and_blank_lines() {
    check(
        "ENV A=1 \\\n# a comment\n\n    B=2 \\\n  C=3\nWORKDIR /w",
        expect![[r#"
            ENV @1:1: "A=1"@1:5 "B=2"@4:5 "C=3"@5:3
            WORKDIR @6:1: "/w"@6:9
        "#]],
    );
}

#[test]
fn continuation_right_after_keyword() {
    check(
        "COPY \\\n  a \\\n  b",
        expect![[r#"
            COPY @1:1: "a"@2:3 "b"@3:3
        "#]],
    );
}

#[test]
fn escape_directive_changes_the_continuation_character() {
    check(
        "# escape=`\n# syntax=docker/dockerfile:1\nFROM x\nCOPY a `\n  c:\\dir\\\n",
        expect![[r#"
            directive escape="`" @1:1
            directive syntax="docker/dockerfile:1" @2:1
            FROM @3:1: "x"@3:6
            COPY @4:1: "a"@4:6 "c:\\dir\\"@5:3
        "#]],
    );
}

#[test]
fn directives_only_at_the_top() {
    check(
        "FROM x\n# escape=`\nCOPY a \\\n b",
        expect![[r#"
            FROM @1:1: "x"@1:6
            COPY @3:1: "a"@3:6 "b"@4:2
        "#]],
    );
    check(
        "# escape=%\n# escape=`\nFROM x",
        expect![[r#"
            directive escape="%" @1:1
            directive escape="`" @2:1
            FROM @3:1: "x"@3:6
            error 1:1: invalid escape character `%`: use `\` or `` ` ``
            error 2:1: the `escape` directive is given twice
        "#]],
    );
}

#[test]
fn stray_lines_are_reported_and_parsing_goes_on() {
    check(
        "FROM x\nCOPPY a b\npip install numpy\nRUN\nWORKDIR /w\n",
        expect![[r#"
            FROM @1:1: "x"@1:6
            WORKDIR @5:1: "/w"@5:9
            error 2:1: unknown instruction `COPPY`
            error 3:1: unknown instruction `pip`
            error 4:1: RUN needs arguments
        "#]],
    );
}

#[test]
fn quotes_and_crlf() {
    check(
        "LABEL a=\"x y\" 'b c'=d\r\nENV K \"v 1\"\r\n",
        expect![[r#"
            LABEL @1:1: "a=x y"@1:7 "b c=d"@1:15
            ENV @2:1: "K"@2:5 "v 1"@2:7
        "#]],
    );
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

#[test]
fn heredocs_are_refused_at_their_start_and_their_body_skipped() {
    check(
        "FROM scratch\nRUN <<EOF\nhello\nEOF\nCOPY <<-\"END\" /x\n\tbody\n\tEND\nRUN echo a<<b\nENV A=1\n",
        expect![[r#"
            FROM @1:1: "scratch"@1:6
            RUN @8:1: "echo"@8:5 "a<<b"@8:10
            ENV @9:1: "A=1"@9:5
            error 2:5: RUN with a heredoc (`<<EOF`) is not supported
            error 5:6: COPY with a heredoc (`<<END`) is not supported
        "#]],
    );
}

#[test]
fn a_nul_character_is_refused_where_it_is() {
    check(
        "FROM scratch\nENV A=a\0b\n",
        expect![[r#"
            FROM @1:1: "scratch"@1:6
            ENV @2:1: "A=a\0b"@2:5
            error 2:8: a NUL character is not allowed in a Dockerfile
        "#]],
    );
}
