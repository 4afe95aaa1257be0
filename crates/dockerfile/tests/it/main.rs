//! Data-driven tests of the Dockerfile front end. Here, the lexer: each case
//! is a Dockerfile and the expected dump of directives, instructions (with
//! the position of every argument word) and errors. Typed instructions and
//! variable substitution have their own modules.

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
        for h in &i.heredocs {
            out += &format!("  {}\n", heredoc(h));
        }
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
fn heredoc_bodies_are_read_and_never_taken_for_instructions() {
    check(
        "FROM scratch\nRUN <<EOF\nhello\nFROM x\nEOF\nCOPY <<-\"END\" /x\n\tbody\n\tEND\nRUN echo a<<b\nENV A=1\n",
        expect![[r#"
            FROM @1:1: "scratch"@1:6
            RUN @2:1: "<<EOF"@2:5
              heredoc <<EOF@2:5 name="EOF" expand body@3:1 "hello\nFROM x\n"
            COPY @6:1: "<<-END"@6:6 "/x"@6:15
              heredoc <<-"END"@6:6 name="END" strip-tabs body@7:1 "\tbody\n"
            RUN @9:1: "echo"@9:5 "a<<b"@9:10
            ENV @10:1: "A=1"@10:5
        "#]],
    );
}

#[test]
fn several_heredocs_follow_each_other_in_order() {
    check(
        "COPY <<one <<two /dst/\nfirst\none\nsecond\n\ttwo\ntwo\nRUN 2<<'A' cat <<B\n$x\nA\nB\n",
        expect![[r#"
            COPY @1:1: "<<one"@1:6 "<<two"@1:12 "/dst/"@1:18
              heredoc <<one@1:6 name="one" expand body@2:1 "first\n"
              heredoc <<two@1:12 name="two" expand body@4:1 "second\n\ttwo\n"
            RUN @7:1: "2<<A"@7:5 "cat"@7:12 "<<B"@7:16
              heredoc 2<<'A'@7:5 name="A" body@8:1 "$x\n"
              heredoc <<B@7:16 name="B" expand body@10:1 ""
        "#]],
    );
}

#[test]
fn what_is_not_a_heredoc() {
    // Quoted as a whole, inside a word, a bare `<<`, `<<<`, exec form,
    // an instruction that takes none: all plain words, no body read.
    check(
        "RUN echo \"<<EOF\" a<<b << <<<x\nRUN [\"sh\", \"<<EOF\"]\nENV A=<<EOF\nCMD cat <<EOF\nEOF\n",
        expect![[r#"
            RUN @1:1: "echo"@1:5 "<<EOF"@1:10 "a<<b"@1:18 "<<"@1:23 "<<<x"@1:26
            RUN @2:1: "[sh,"@2:5 "<<EOF]"@2:12
            ENV @3:1: "A=<<EOF"@3:5
            CMD @4:1: "cat"@4:5 "<<EOF"@4:9
            error 5:1: unknown instruction `EOF`
        "#]],
    );
}

#[test]
fn a_heredoc_after_continuation_lines_and_with_crlf() {
    check(
        "RUN --mount=type=cache,target=/c \\\n  <<EOF\r\nline one\r\nEOF\r\nWORKDIR /w\r\n",
        expect![[r#"
            RUN @1:1: "--mount=type=cache,target=/c"@1:5 "<<EOF"@2:3
              heredoc <<EOF@2:3 name="EOF" expand body@3:1 "line one\r\n"
            WORKDIR @5:1: "/w"@5:9
        "#]],
    );
}

#[test]
fn unterminated_heredocs_and_onbuild_ones_are_refused() {
    check(
        "FROM x\nONBUILD RUN <<EOF\nFROM y\nEOF\nCOPY <<EOF /x\nnever ends\n  EOF\n",
        expect![[r#"
            FROM @1:1: "x"@1:6
            error 2:13: ONBUILD RUN with a heredoc (`<<EOF`) is not supported
            error 5:6: unterminated heredoc: no line `EOF` ends it
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
