//! Variable substitution: each case is a raw word, expanded against the
//! tests' fixed environment ([`lookup`]: `SET=value`, `EMPTY=`, `SPACE=a b`,
//! `FILE=archive.tar.gz`, `PATHV=/usr/local/bin:/usr/bin`, `NL` with a
//! newline; `UNSET` is not set), and the result or the error with its byte
//! offset in the word.

use expect_test::{expect, Expect};
use forge_dockerfile::{
    expand_heredoc, expand_word, expand_words, expands, parse, parse_instructions, Instr, Keyword,
};

use crate::lookup;

fn render(result: Result<String, forge_dockerfile::ExpandError>) -> String {
    match result {
        Ok(value) => format!("{value:?}"),
        Err(e) => format!("error at {}: {e}", e.offset),
    }
}

fn check(raw: &str, expect: Expect) {
    expect.assert_eq(&render(expand_word(raw, '\\', &lookup)));
}

fn check_backtick(raw: &str, expect: Expect) {
    expect.assert_eq(&render(expand_word(raw, '`', &lookup)));
}

#[test]
fn plain_words() {
    check("", expect![[r#""""#]]);
    check("abc", expect![[r#""abc""#]]);
    check("/workdir/src", expect![[r#""/workdir/src""#]]);
    check("a b", expect![[r#""a b""#]]);
}

#[test]
fn simple_variables() {
    check("$SET", expect![[r#""value""#]]);
    check("${SET}", expect![[r#""value""#]]);
    check("$SET/x", expect![[r#""value/x""#]]);
    check("${SET}x", expect![[r#""valuex""#]]);
    check("$SETx", expect![[r#""""#]]);
    check("$UNSET", expect![[r#""""#]]);
    check("${UNSET}", expect![[r#""""#]]);
    check("$EMPTY", expect![[r#""""#]]);
    check("$SET$SET", expect![[r#""valuevalue""#]]);
    check("${REGISTRY}/base-py:${TAG}", expect![[r#""/base-py:""#]]);
    check("/workdir:$PATHV", expect![[r#""/workdir:/usr/local/bin:/usr/bin""#]]);
    check("$é", expect![[r#""unicode""#]]);
}

#[test]
fn dollar_without_a_name_is_literal() {
    check("$", expect![[r#""$""#]]);
    check("a$", expect![[r#""a$""#]]);
    check("$/x", expect![[r#""$/x""#]]);
    check("$ x", expect![[r#""$ x""#]]);
    check("$.", expect![[r#""$.""#]]);
}

#[test]
fn special_parameters_expand_to_nothing() {
    check("$1", expect![[r#""""#]]);
    check("$12x", expect![[r#""x""#]]);
    check("$$", expect![[r#""""#]]);
    check("$@", expect![[r#""""#]]);
    check("${#}", expect![[r#""""#]]);
}

#[test]
fn default_values() {
    check("${SET:-d}", expect![[r#""value""#]]);
    check("${EMPTY:-d}", expect![[r#""d""#]]);
    check("${UNSET:-d}", expect![[r#""d""#]]);
    check("${SET-d}", expect![[r#""value""#]]);
    check("${EMPTY-d}", expect![[r#""""#]]);
    check("${UNSET-d}", expect![[r#""d""#]]);
    check("${UNSET:-}", expect![[r#""""#]]);
    check("${UNSET:-a b}", expect![[r#""a b""#]]);
}

#[test]
fn alternative_values() {
    check("${SET:+alt}", expect![[r#""alt""#]]);
    check("${EMPTY:+alt}", expect![[r#""""#]]);
    check("${UNSET:+alt}", expect![[r#""""#]]);
    check("${SET+alt}", expect![[r#""alt""#]]);
    check("${EMPTY+alt}", expect![[r#""alt""#]]);
    check("${UNSET+alt}", expect![[r#""""#]]);
}

#[test]
fn nested_words() {
    check("${UNSET:-$SET}", expect![[r#""value""#]]);
    check("${UNSET:-${SET}/x}", expect![[r#""value/x""#]]);
    check("${UNSET:-${ALSO_UNSET:-deep}}", expect![[r#""deep""#]]);
    check("${SET:+[${SET}]}", expect![[r#""[value]""#]]);
    check("${UNSET:-'$SET'}", expect![[r#""$SET""#]]);
    check("${UNSET:-\"$SET\"}", expect![[r#""value""#]]);
    check("${UNSET:-a\\}b}", expect![[r#""a}b""#]]);
    check("${UNSET:-}}", expect![[r#""}""#]]);
}

#[test]
fn required_values() {
    check("${SET?}", expect![[r#""value""#]]);
    check("${EMPTY?}", expect![[r#""""#]]);
    check("${UNSET?}", expect!["error at 0: UNSET: is not allowed to be unset"]);
    check("${UNSET?set it with --build-arg}", expect!["error at 0: UNSET: set it with --build-arg"]);
    check("${SET:?}", expect![[r#""value""#]]);
    check("${EMPTY:?}", expect!["error at 0: EMPTY: is not allowed to be empty"]);
    check("${UNSET:?}", expect!["error at 0: UNSET: is not allowed to be unset"]);
    check("x${EMPTY:?must not be empty}", expect!["error at 1: EMPTY: must not be empty"]);
}

#[test]
fn prefix_and_suffix_removal() {
    check("${FILE#*.}", expect![[r#""tar.gz""#]]);
    check("${FILE##*.}", expect![[r#""gz""#]]);
    check("${FILE%.*}", expect![[r#""archive.tar""#]]);
    check("${FILE%%.*}", expect![[r#""archive""#]]);
    check("${FILE#archive}", expect![[r#"".tar.gz""#]]);
    check("${FILE#nomatch}", expect![[r#""archive.tar.gz""#]]);
    check("${FILE%.gz}", expect![[r#""archive.tar""#]]);
    check("${FILE#?}", expect![[r#""rchive.tar.gz""#]]);
    check("${FILE%??}", expect![[r#""archive.tar.""#]]);
    check("${FILE#*}", expect![[r#""archive.tar.gz""#]]);
    check("${FILE##*}", expect![[r#""""#]]);
    check("${PATHV#*:}", expect![[r#""/usr/bin""#]]);
    check("${PATHV%:*}", expect![[r#""/usr/local/bin""#]]);
    check("${UNSET#x}", expect![[r#""""#]]);
    check("${FILE#$UNSET}", expect![[r#""archive.tar.gz""#]]);
    check("${FILE#\\*}", expect![[r#""archive.tar.gz""#]]);
    check("${NL#*}", expect![[r#""a\nb""#]]);
    check("${NL##a?}", expect![[r#""a\nb""#]]);
    check("${FILE#\\q}", expect![[r#"error at 6: invalid pattern `\q`: invalid escape `\q`"#]]);
}

#[test]
fn single_quotes() {
    check("'$SET'", expect![[r#""$SET""#]]);
    check("'a b'", expect![[r#""a b""#]]);
    check("'a\\b'", expect![[r#""a\\b""#]]);
    check("x'${'y", expect![[r#""x${y""#]]);
    check("'it''s'", expect![[r#""its""#]]);
}

#[test]
fn double_quotes() {
    check("\"$SET\"", expect![[r#""value""#]]);
    check("\"a b\"", expect![[r#""a b""#]]);
    check("\"'$SET'\"", expect![[r#""'value'""#]]);
    check("\"\\$SET\"", expect![[r#""$SET""#]]);
    check("\"a\\\"b\"", expect![[r#""a\"b""#]]);
    check("\"a\\\\b\"", expect![[r#""a\\b""#]]);
    check("\"a\\nb\"", expect![[r#""a\\nb""#]]);
    check("\"${UNSET:-a b}\"", expect![[r#""a b""#]]);
    check("\"\"", expect![[r#""""#]]);
}

#[test]
fn escapes() {
    check("\\$SET", expect![[r#""$SET""#]]);
    check("\\${SET}", expect![[r#""${SET}""#]]);
    check("a\\ b", expect![[r#""a b""#]]);
    check("a\\\\b", expect![[r#""a\\b""#]]);
    check("\\'$SET\\'", expect![[r#""'value'""#]]);
    check("trailing\\", expect![[r#""trailing""#]]);
    check("c:\\dir", expect![[r#""c:dir""#]]);
    check_backtick("c:\\dir\\$SET", expect![[r#""c:\\dir\\value""#]]);
    check_backtick("`$SET", expect![[r#""$SET""#]]);
    check_backtick("\"a`\"b\"", expect![[r#""a\"b""#]]);
}

#[test]
fn malformed() {
    check("${", expect!["error at 0: missing `}` to close `${`"]);
    check("a${SET", expect!["error at 1: missing `}` to close `${`"]);
    check("${SET:-x", expect!["error at 0: missing `}` to close `${`"]);
    check("${UNSET:-${SET}", expect!["error at 0: missing `}` to close `${`"]);
    check("${}", expect!["error at 2: bad substitution: `${` must be followed by a variable name"]);
    check("${:-x}", expect!["error at 2: bad substitution: `${` must be followed by a variable name"]);
    check("${{SET}}", expect!["error at 2: bad substitution: `${` must be followed by a variable name"]);
    check("${SET:}", expect!["error at 5: bad substitution: `:` must be followed by `-`, `+` or `?`"]);
    check("${ SET}", expect!["error at 2: invalid variable name in `${...}`: unexpected ` `"]);
    check("${1A}", expect!["error at 2: invalid variable name in `${...}`: a name cannot start with `1`"]);
    check("${SET x}", expect!["error at 5: unsupported modifier ` ` in substitution"]);
    check("${SET.x}", expect!["error at 5: unsupported modifier `.` in substitution"]);
    check("'abc", expect!["error at 0: unterminated single-quoted string"]);
    check("x\"abc", expect!["error at 1: unterminated double-quoted string"]);
    check("\"abc\\\"", expect!["error at 0: unterminated double-quoted string"]);
    check("${UNSET:-'x}", expect!["error at 9: unterminated single-quoted string"]);
}

#[test]
fn unsupported_modifiers() {
    check("${SET/a/b}", expect!["error at 5: unsupported modifier `/` in substitution"]);
    check("${SET//a/b}", expect!["error at 5: unsupported modifier `//` in substitution"]);
    check("${SET:=x}", expect!["error at 5: unsupported modifier `:=` in substitution"]);
    check("${SET:#x}", expect![[r#""value""#]]);
    check("${SET^^}", expect!["error at 5: unsupported modifier `^` in substitution"]);
    check("${SET!}", expect!["error at 5: unsupported modifier `!` in substitution"]);
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("{}x{}", "${UNSET:-".repeat(100), "}".repeat(100));
    check(&deep, expect!["error at 576: substitutions nested more than 64 deep"]);
    let ok = format!("{}x{}", "${UNSET:-".repeat(20), "}".repeat(20));
    check(&ok, expect![[r#""x""#]]);
}

#[test]
fn which_instructions_expand() {
    let (yes, no): (Vec<Keyword>, Vec<Keyword>) = Keyword::ALL.into_iter().partition(|k| expands(*k));
    let names = |ks: Vec<Keyword>| ks.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" ");
    expect![[r#"
        expanded: ADD ARG COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR
        not expanded: CMD ENTRYPOINT HEALTHCHECK MAINTAINER ONBUILD RUN SHELL"#]]
    .assert_eq(&format!("expanded: {}\nnot expanded: {}", names(yes), names(no)));
}

/// Expands the words of a one-instruction Dockerfile.
fn check_words(src: &str, expect: Expect) {
    let file = parse(src);
    let (instrs, errors) = parse_instructions(&file);
    assert!(errors.is_empty() && file.errors.is_empty(), "{errors:?} {:?}", file.errors);
    let words: Vec<&forge_dockerfile::RawWord> = match &instrs[0].node {
        Instr::Copy(c) | Instr::Add(c) => c.sources.iter().chain([&c.dest]).collect(),
        Instr::Expose(ws) | Instr::Volume(ws) => ws.iter().collect(),
        Instr::Env(kvs) | Instr::Label(kvs) => kvs.iter().flat_map(|kv| [&kv.key, &kv.value]).collect(),
        Instr::Workdir(w) | Instr::User(w) | Instr::Stopsignal(w) => vec![w],
        Instr::From(f) => vec![&f.image],
        Instr::Arg(decls) => decls.iter().filter_map(|d| d.default.as_ref()).collect(),
        other => panic!("not a word instruction: {other:?}"),
    };
    let out = match expand_words(words, file.escape, &lookup) {
        Ok(values) => format!("{values:?}"),
        Err(e) => format!("error {e}"),
    };
    expect.assert_eq(&out);
}

#[test]
fn instruction_words() {
    check_words(
        "COPY $SET/src \"${UNSET:-a b}\" /workdir/$SET",
        expect![[r#"["value/src", "a b", "/workdir/value"]"#]],
    );
    check_words(r#"COPY ["$SET", "/d"]"#, expect![[r#"["value", "/d"]"#]]);
    check_words(
        "ENV PYTHONPATH /workdir:$PATHV",
        expect![[r#"["PYTHONPATH", "/workdir:/usr/local/bin:/usr/bin"]"#]],
    );
    check_words("ENV A=$SET 'B'=\"$SPACE\"", expect![[r#"["A", "value", "B", "a b"]"#]]);
    check_words("LABEL \"k $SET\"=v", expect![[r#"["k value", "v"]"#]]);
    check_words("EXPOSE ${PORT:-80}/tcp $UNSET", expect![[r#"["80/tcp", ""]"#]]);
    check_words("WORKDIR /workdir/${SET}", expect![[r#"["/workdir/value"]"#]]);
    check_words(
        "FROM ${REGISTRY:-docker.io}/base-py:${TAG:-latest}",
        expect![[r#"["docker.io/base-py:latest"]"#]],
    );
    check_words("ARG A=${SET}x B", expect![[r#"["valuex"]"#]]);
    check_words("VOLUME /data/$SET", expect![[r#"["/data/value"]"#]]);
}

#[test]
fn instruction_word_errors_have_file_positions() {
    check_words("COPY a ${SET b", expect!["error 1:8: missing `}` to close `${`"]);
    check_words("COPY a \\\n   x${UNSET?needed} /d", expect!["error 2:5: UNSET: needed"]);
    check_words("ENV A=1 B=${SET/x/y}", expect!["error 1:16: unsupported modifier `/` in substitution"]);
    check_words("WORKDIR /é/${", expect!["error 1:12: missing `}` to close `${`"]);
    check_words(r#"COPY ["${", "/d"]"#, expect!["error 1:8: missing `}` to close `${`"]);
}

#[test]
fn expanded_values_are_bounded() {
    let big = "x".repeat(forge_dockerfile::MAX_EXPANDED / 2 + 1);
    let lookup = |name: &str| (name == "BIG").then(|| big.clone());
    let err = expand_word("$BIG-$BIG", '\\', &lookup).unwrap_err();
    assert_eq!((err.offset, err.kind), (5, forge_dockerfile::ExpandErrorKind::TooLong));
    let err = expand_word("\"${BIG}${BIG}\"", '\\', &lookup).unwrap_err();
    assert_eq!(err.kind, forge_dockerfile::ExpandErrorKind::TooLong);
    assert_eq!(expand_word("$BIG", '\\', &lookup).unwrap().len(), big.len());
}

#[test]
fn heredoc_bodies_keep_their_quotes() {
    let check = |body: &str, expect: Expect| expect.assert_eq(&render(expand_heredoc(body, &lookup)));
    check("echo \"$SET\" '$SET'\n", expect![[r#""echo \"value\" 'value'\n""#]]);
    check("${UNSET:-\"x\"} \\$SET a\\b\n", expect![[r#""\"x\" $SET ab\n""#]]);
    check("<?xml version=\"1.0\"?>\n", expect![[r#""<?xml version=\"1.0\"?>\n""#]]);
    check("${SET:?}${UNSET:?gone}", expect!["error at 8: UNSET: gone"]);
}
