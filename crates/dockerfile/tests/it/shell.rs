//! The shell reader: each case is the text of a shell-form `RUN`, read with
//! the tests' fixed environment ([`lookup`]: `HOME=/root`, `PY=python3`,
//! `PKGS` = `numpy  pandas`, `SPACED` = ` a b `, `EMPTY=`, `STAR=*.txt`;
//! `UNSET` is not set), and the
//! dump of its commands (assignments, then words with their byte offsets,
//! `glob(pattern)` for a word with unquoted glob characters) or the error
//! with its offset and the text there.

use expect_test::{expect, Expect};
use forge_dockerfile::shell::{parse_script, ShellOptions};

use crate::lookup;

fn dump(script: &str, options: ShellOptions) -> String {
    match parse_script(script, options, &lookup) {
        Ok(commands) => commands
            .iter()
            .map(|c| {
                let mut line = format!("@{}", c.start);
                for a in &c.assignments {
                    line += &format!(" {}={:?}@{}", a.name, a.value, a.start);
                }
                line += " |";
                for w in &c.words {
                    match &w.glob {
                        Some(pattern) => line += &format!(" glob({pattern:?})@{}", w.start),
                        None => line += &format!(" {:?}@{}", w.text, w.start),
                    }
                }
                line + "\n"
            })
            .collect(),
        Err(e) => {
            let at: String = script[e.offset..].chars().take(8).collect();
            format!("error at {} `{at}`: {e}\n", e.offset)
        }
    }
}

fn check(script: &str, expect: Expect) {
    expect.assert_eq(&dump(script, ShellOptions::default()));
}

fn check_with(options: ShellOptions, script: &str, expect: Expect) {
    expect.assert_eq(&dump(script, options));
}

#[test]
fn words_and_lists() {
    check(
        "apt-get update && apt-get install -y jq",
        expect![[r#"
        @0 | "apt-get"@0 "update"@8
        @18 | "apt-get"@18 "install"@26 "-y"@34 "jq"@37
    "#]],
    );
    check(
        "a ; b\nc;d&&e",
        expect![[r#"
        @0 | "a"@0
        @4 | "b"@4
        @6 | "c"@6
        @8 | "d"@8
        @11 | "e"@11
    "#]],
    );
    check(
        "  a   b  ;  ",
        expect![[r#"
        @2 | "a"@2 "b"@6
    "#]],
    );
    check(
        "a &&\n\n b",
        expect![[r#"
        @0 | "a"@0
        @7 | "b"@7
    "#]],
    );
    check(
        "a # a comment && b\nc",
        expect![[r#"
        @0 | "a"@0
        @19 | "c"@19
    "#]],
    );
    check("# only a comment", expect![[""]]);
    check(
        "a#b c",
        expect![[r#"
        @0 | "a#b"@0 "c"@4
    "#]],
    );
    check(
        "a \\\n b",
        expect![[r#"
        @0 | "a"@0 "b"@5
    "#]],
    );
    check(
        "grüße x",
        expect![[r#"
        @0 | "grüße"@0 "x"@8
    "#]],
    );
}

#[test]
fn quoting() {
    check(
        r#"pip install "pillow<7" 'numpy>=1.2' a\ b"#,
        expect![[r#"
        @0 | "pip"@0 "install"@4 "pillow<7"@12 "numpy>=1.2"@23 "a b"@36
    "#]],
    );
    check(
        r#"echo "a\"b\$c\\d\e" 'x\y' "" '' a""b"#,
        expect![[r#"
        @0 | "echo"@0 "a\"b$c\\d\\e"@5 "x\\y"@20 ""@26 ""@29 "ab"@32
    "#]],
    );
    check(
        r#"echo "it's" 'say "hi"'"#,
        expect![[r#"
        @0 | "echo"@0 "it's"@5 "say \"hi\""@12
    "#]],
    );
    check(
        "echo \"a\\\nb\" c\\\nd",
        expect![[r#"
        @0 | "echo"@0 "ab"@5 "cd"@12
    "#]],
    );
    check(
        r"echo \\ \$HOME \; \& \| \> \( \{ \#x",
        expect![[r##"
        @0 | "echo"@0 "\\"@5 "$HOME"@8 ";"@15 "&"@18 "|"@21 ">"@24 "("@27 "{"@30 "#x"@33
    "##]],
    );
    check(
        "echo 'unclosed",
        expect![[r#"
        error at 5 `'unclose`: shell syntax error: a single quote `'` is not closed
    "#]],
    );
    check(
        "echo \"unclosed",
        expect![[r#"
        error at 5 `"unclose`: shell syntax error: a double quote `"` is not closed
    "#]],
    );
    check(
        "echo trailing\\",
        expect![[r#"
        @0 | "echo"@0 "trailing\\"@5
    "#]],
    );
}

#[test]
fn expansion() {
    check(
        "$PY -m pip install $PKGS",
        expect![[r#"
        @0 | "python3"@0 "-m"@4 "pip"@7 "install"@11 "numpy"@19 "pandas"@19
    "#]],
    );
    check(
        r#"echo "$PKGS" x${PY}y "${HOME}/.cache""#,
        expect![[r#"
        @0 | "echo"@0 "numpy  pandas"@5 "xpython3y"@13 "/root/.cache"@21
    "#]],
    );
    check(
        "echo $EMPTY \"$EMPTY\" $UNSET a$SPACED$EMPTY z",
        expect![[r#"
        @0 | "echo"@0 ""@12 "a"@28 "a"@29 "b"@29 "z"@43
    "#]],
    );
    check(
        "echo ${UNSET:-def} ${EMPTY:-def} ${EMPTY-def} ${UNSET-def} ${HOME:-def}",
        expect![[r#"
        @0 | "echo"@0 "def"@5 "def"@19 "def"@46 "/root"@59
    "#]],
    );
    check(
        "echo ${HOME:+alt} ${EMPTY:+alt} ${EMPTY+alt} ${UNSET+alt}",
        expect![[r#"
        @0 | "echo"@0 "alt"@5 "alt"@32
    "#]],
    );
    check(
        r#"echo ${UNSET:-"a b"} ${UNSET:-a b} "${UNSET:-a b}" ${UNSET:-${PY}x}"#,
        expect![[r#"
        @0 | "echo"@0 "a b"@5 "a"@21 "b"@32 "a b"@35 "python3x"@51
    "#]],
    );
    check(
        r#"echo "${UNSET:-a\}b}" ${UNSET:-'}'} ${UNSET:-}"#,
        expect![[r#"
        @0 | "echo"@0 "a}b"@5 "}"@22
    "#]],
    );
    check(
        "echo $ a$ $/ \"$\" ${UNSET:-$}",
        expect![[r#"
        @0 | "echo"@0 "$"@5 "a$"@7 "$/"@10 "$"@13 "$"@17
    "#]],
    );
    check(
        "echo $-x",
        expect![[r#"
        error at 5 `$-x`: the special parameter `$-` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo ${",
        expect![[r#"
        error at 5 `${`: shell syntax error: `${` is not closed with `}`
    "#]],
    );
    check(
        "echo ${HOME",
        expect![[r#"
        error at 5 `${HOME`: shell syntax error: `${` is not closed with `}`
    "#]],
    );
    check(
        "echo ${HOME:-x",
        expect![[r#"
        error at 5 `${HOME:-`: shell syntax error: `${` is not closed with `}`
    "#]],
    );
    check(
        "echo ${}",
        expect![[r#"
        error at 5 `${}`: shell syntax error: bad substitution: `${` must be followed by a variable name
    "#]],
    );
    check(
        "echo ${HOME.x}",
        expect![[r#"
        error at 5 `${HOME.x`: shell syntax error: bad substitution: `${HOME` must be followed by `}` or an operator
    "#]],
    );
}

#[test]
fn globs() {
    check(
        r#"rm -rf /var/lib/apt/lists/* /tmp/?x "/a/*"b* c[1] "pkg[extra]" \*"#,
        expect![[r#"
        @0 | "rm"@0 "-rf"@3 glob("/var/lib/apt/lists/*")@7 glob("/tmp/?x")@28 glob("/a/\\*b*")@36 glob("c[1]")@45 "pkg[extra]"@50 "*"@63
    "#]],
    );
    check(
        "echo $STAR \"$STAR\"",
        expect![[r#"
        @0 | "echo"@0 glob("*.txt")@5 "*.txt"@11
    "#]],
    );
    check_with(
        ShellOptions { noglob: true, ..ShellOptions::default() },
        "rm -rf /tmp/*",
        expect![[r#"
        @0 | "rm"@0 "-rf"@3 "/tmp/*"@7
    "#]],
    );
    check(
        "set -f && rm /tmp/* && set +f && rm /tmp/*",
        expect![[r#"
        @10 | "rm"@10 "/tmp/*"@13
        @33 | "rm"@33 glob("/tmp/*")@36
    "#]],
    );
}

#[test]
fn assignments() {
    check(
        "DEBIAN_FRONTEND=noninteractive apt-get install -y jq",
        expect![[r#"
        @0 DEBIAN_FRONTEND="noninteractive"@0 | "apt-get"@31 "install"@39 "-y"@47 "jq"@50
    "#]],
    );
    check(
        "A=1 B=\"$A x\" C=$PKGS D= env",
        expect![[r#"
        @0 A="1"@0 B="1 x"@4 C="numpy  pandas"@13 D=""@21 | "env"@24
    "#]],
    );
    check(
        "X=1 && echo $X && Y=$X$X; echo $Y",
        expect![[r#"
        @0 X="1"@0 |
        @7 | "echo"@7 "1"@12
        @18 Y="11"@18 |
        @26 | "echo"@26 "11"@31
    "#]],
    );
    check(
        "X=1 echo $X",
        expect![[r#"
        @0 X="1"@0 | "echo"@4
    "#]],
    );
    check(
        "echo A=1",
        expect![[r#"
        @0 | "echo"@0 "A=1"@5
    "#]],
    );
    check(
        "1A=x '=y' A'=z'",
        expect![[r#"
        @0 | "1A=x"@0 "=y"@5 "A=z"@10
    "#]],
    );
    check(
        "A=~/x",
        expect![[r#"
        error at 2 `~/x`: tilde expansion `~` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "PATH=/x:~/bin",
        expect![[r#"
        error at 8 `~/bin`: tilde expansion `~` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo pkg~=1.4 a~b",
        expect![[r#"
        @0 | "echo"@0 "pkg~=1.4"@5 "a~b"@14
    "#]],
    );
    check(
        "IFS=: a",
        expect![[r#"
        error at 0 `IFS=: a`: setting `IFS` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
}

#[test]
fn builtins_that_change_only_the_shell() {
    check(
        "set -eux && set -o pipefail && true && : ignored && pip install x",
        expect![[r#"
        @52 | "pip"@52 "install"@56 "x"@64
    "#]],
    );
    check(
        "set -euo pipefail; set +eux; set; a",
        expect![[r#"
        @34 | "a"@34
    "#]],
    );
    check(
        "set -a",
        expect![[r#"
        error at 4 `-a`: the shell option `-a` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "set -o posix",
        expect![[r#"
        error at 7 `posix`: the shell option `-o posix` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "set -- a b",
        expect![[r#"
        error at 4 `-- a b`: `set --` (positional parameters) is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "set x",
        expect![[r#"
        error at 4 `x`: `set` with positional parameters is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "set -o",
        expect![[r#"
        error at 4 `-o`: `set -o` without an option name is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
}

#[test]
fn set_u_makes_an_unset_variable_an_error() {
    check(
        "set -u && echo $HOME ${UNSET:-ok} ${UNSET+x} && echo $UNSET",
        expect![[r#"
        error at 53 `$UNSET`: `$UNSET` is not set, and with `set -u` the shell stops there
    "#]],
    );
    check_with(
        ShellOptions { nounset: true, ..ShellOptions::default() },
        "echo ${UNSET}",
        expect![[r#"
        error at 5 `${UNSET}`: `$UNSET` is not set, and with `set -u` the shell stops there
    "#]],
    );
    check(
        "set -u; echo ${HOME:-$UNSET}",
        expect![[r#"
        @8 | "echo"@8 "/root"@13
    "#]],
    );
}

#[test]
fn operators_we_do_not_emulate() {
    check(
        "a | b",
        expect![[r#"
        error at 2 `| b`: a pipe `|` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "a || b",
        expect![[r#"
        error at 2 `|| b`: `||` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "a & b",
        expect![[r#"
        error at 2 `& b`: running a command in the background with `&` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "a > /dev/null",
        expect![[r#"
        error at 2 `> /dev/n`: a redirection is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "a>>log",
        expect![[r#"
        error at 1 `>>log`: a redirection is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "a 2>&1",
        expect![[r#"
        error at 3 `>&1`: a redirection is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "a < in",
        expect![[r#"
        error at 2 `< in`: a redirection is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "a <<EOF",
        expect![[r#"
        error at 2 `<<EOF`: a redirection is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "(cd x && make)",
        expect![[r#"
        error at 0 `(cd x &&`: a subshell `( )` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "a && (b)",
        expect![[r#"
        error at 5 `(b)`: a subshell `( )` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "{ a; }",
        expect![[r#"
        error at 0 `{ a; }`: `{` (a command group or brace expansion) is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo {a,b}",
        expect![[r#"
        error at 5 `{a,b}`: `{` (a command group or brace expansion) is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo a}",
        expect![[r#"
        error at 6 `}`: `}` (a command group or brace expansion) is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "case x in a) ;; esac",
        expect![[r#"
        error at 0 `case x i`: the shell keyword `case` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "a;;",
        expect![[r#"
        error at 1 `;;`: `;;` (a `case` branch) is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
}

#[test]
fn substitutions_we_do_not_emulate() {
    check(
        "echo $(uname -m)",
        expect![[r#"
        error at 5 `$(uname `: command substitution `$(...)` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo \"$(uname -m)\"",
        expect![[r#"
        error at 6 `$(uname `: command substitution `$(...)` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo `uname`",
        expect![[r#"
        error at 5 ``uname``: command substitution with backticks is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo \"`uname`\"",
        expect![[r#"
        error at 6 ``uname`"`: command substitution with backticks is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo $((1+2))",
        expect![[r#"
        error at 5 `$((1+2))`: arithmetic expansion `$((...))` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo $[1+2]",
        expect![[r#"
        error at 5 `$[1+2]`: arithmetic expansion `$[...]` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo $? $$",
        expect![[r#"
        error at 5 `$? $$`: the special parameter `$?` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo $1",
        expect![[r#"
        error at 5 `$1`: the special parameter `$1` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo \"$@\"",
        expect![[r#"
        error at 6 `$@"`: the special parameter `$@` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo ${#HOME}",
        expect![[r#"
        error at 5 `${#HOME}`: the length `${#...}` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo ${!HOME}",
        expect![[r#"
        error at 5 `${!HOME}`: indirect expansion `${!...}` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo ${HOME%/*}",
        expect![[r#"
        error at 5 `${HOME%/`: removing a prefix or suffix with `${VAR#...}`/`${VAR%...}` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo ${HOME#/}",
        expect![[r#"
        error at 5 `${HOME#/`: removing a prefix or suffix with `${VAR#...}`/`${VAR%...}` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo ${HOME/r/R}",
        expect![[r#"
        error at 5 `${HOME/r`: a bash `${VAR...}` operator is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo ${HOME:1}",
        expect![[r#"
        error at 5 `${HOME:1`: a substring `${VAR:offset}` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo ${X:=1}",
        expect![[r#"
        error at 5 `${X:=1}`: `${X:=...}` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo ${X?unset}",
        expect![[r#"
        error at 5 `${X?unse`: `${X?...}` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo ${1}",
        expect![[r#"
        error at 5 `${1}`: the special parameter `${1}` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo $'a\\n'",
        expect![[r#"
        error at 5 `$'a\n'`: `$'...'` or `$"..."` quoting is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo ${UNSET:-$(x)}",
        expect![[r#"
        error at 14 `$(x)}`: command substitution `$(...)` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo ${UNSET:-a|b}",
        expect![[r#"
        error at 15 `|b}`: `|` inside `${...}` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo \"${UNSET:-\"x\"}\"",
        expect![[r#"
        error at 15 `"x"}"`: a double quote inside `${...}` inside double quotes is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo ~ ~/x",
        expect![[r#"
        error at 5 `~ ~/x`: tilde expansion `~` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo ${UNSET:-~}",
        expect![[r#"
        error at 14 `~}`: tilde expansion `~` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
}

#[test]
fn compound_commands_we_do_not_emulate() {
    check(
        "if true; then a; fi",
        expect![[r#"
        error at 0 `if true;`: the shell keyword `if` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "for p in a b; do pip install $p; done",
        expect![[r#"
        error at 0 `for p in`: the shell keyword `for` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "while x; do y; done",
        expect![[r#"
        error at 0 `while x;`: the shell keyword `while` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "a && ! b",
        expect![[r#"
        error at 5 `! b`: the shell keyword `!` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "[[ -f x ]]",
        expect![[r#"
        error at 0 `[[ -f x `: the shell keyword `[[` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "time pip install x",
        expect![[r#"
        error at 0 `time pip`: the shell keyword `time` is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)
    "#]],
    );
    check(
        "echo if then fi",
        expect![[r#"
        @0 | "echo"@0 "if"@5 "then"@8 "fi"@13
    "#]],
    );
    check(
        "\"if\" x",
        expect![[r#"
        @0 | "if"@0 "x"@5
    "#]],
    );
}

#[test]
fn list_syntax_errors() {
    check(
        "&& a",
        expect![[r#"
        error at 0 `&& a`: shell syntax error: `&&` with no command before it
    "#]],
    );
    check(
        "a && && b",
        expect![[r#"
        error at 5 `&& b`: shell syntax error: `&&` with no command before it
    "#]],
    );
    check(
        "a &&",
        expect![[r#"
        error at 2 `&&`: shell syntax error: `&&` at the end, with no command after it
    "#]],
    );
    check(
        "a && # c",
        expect![[r#"
        error at 2 `&& # c`: shell syntax error: `&&` at the end, with no command after it
    "#]],
    );
    check(
        "; a",
        expect![[r#"
        error at 0 `; a`: shell syntax error: `;` with no command before it
    "#]],
    );
    check(
        "a\n; b",
        expect![[r#"
        error at 2 `; b`: shell syntax error: `;` with no command before it
    "#]],
    );
    check(
        "a ; ; b",
        expect![[r#"
        error at 4 `; b`: shell syntax error: `;` with no command before it
    "#]],
    );
}

#[test]
fn a_custom_ifs_is_refused() {
    let lookup = |name: &str| (name == "IFS").then(|| ":".to_string());
    let error = parse_script("a", ShellOptions::default(), &lookup).unwrap_err();
    expect!["a custom `IFS` in the environment is not supported (only simple commands joined by `&&`, `;` or newlines are read without running a shell)"].assert_eq(&error.to_string());
    let lookup = |name: &str| (name == "IFS").then(|| " \t\n".to_string());
    assert!(parse_script("a", ShellOptions::default(), &lookup).is_ok());
}

#[test]
fn shell_command_lines() {
    let check = |argv: &[&str], expect: Expect| {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        expect.assert_eq(&format!("{:?}", ShellOptions::from_shell(&argv)));
    };
    check(&["/bin/sh", "-c"], expect!["Ok(ShellOptions { nounset: false, noglob: false })"]);
    check(
        &["/bin/bash", "-o", "pipefail", "-c"],
        expect!["Ok(ShellOptions { nounset: false, noglob: false })"],
    );
    check(&["bash", "-euxo", "pipefail", "-c"], expect!["Ok(ShellOptions { nounset: true, noglob: false })"]);
    check(&["/usr/bin/dash", "-ec"], expect!["Ok(ShellOptions { nounset: false, noglob: false })"]);
    check(&["sh", "-c", "-u"], expect!["Ok(ShellOptions { nounset: true, noglob: false })"]);
    check(
        &["bash", "--noprofile", "--norc", "-f", "-c"],
        expect!["Ok(ShellOptions { nounset: false, noglob: true })"],
    );
    check(
        &["/bin/sh"],
        expect![[r#"Err("the shell `/bin/sh` is not given `-c`, so it would not run the RUN's text")"#]],
    );
    check(
        &["/bin/zsh", "-c"],
        expect![[
            r#"Err("the shell `/bin/zsh` is not sh, bash or dash, the shells whose command text can be read without running it")"#
        ]],
    );
    check(
        &["powershell", "-command"],
        expect![[
            r#"Err("the shell `powershell` is not sh, bash or dash, the shells whose command text can be read without running it")"#
        ]],
    );
    check(&["bash", "-l", "-c"], expect![[r#"Err("the shell option `-l` is not supported")"#]]);
    check(&["bash", "--login", "-c"], expect![[r#"Err("the shell option `--login` is not supported")"#]]);
    check(&["bash", "-o"], expect![[r#"Err("`-o` needs an option name after it")"#]]);
    check(
        &["bash", "-o", "posix", "-c"],
        expect![[r#"Err("the shell option `-o posix` is not supported")"#]],
    );
    check(
        &["sh", "-c", "x"],
        expect![[
            r#"Err("`x` in the SHELL is not an option: the SHELL must end with `-c`, Docker appends the RUN's text after it")"#
        ]],
    );
    check(&[], expect![[r#"Err("the SHELL is empty")"#]]);
}
