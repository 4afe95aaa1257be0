//! Typed instructions: each case is a Dockerfile and the dump of what
//! `parse_instructions` read (raw words with their positions) and the
//! errors it found, with their line:column.

use expect_test::{expect, Expect};
use forge_dockerfile::{parse, parse_instructions, Command, Copy, Instr, KeyValue, RawWord, RunScript};

fn w(word: &RawWord) -> String {
    format!("{:?}@{}", word.raw, word.position)
}

fn ws(words: &[RawWord]) -> String {
    words.iter().map(w).collect::<Vec<_>>().join(" ")
}

fn opt(name: &str, word: &Option<RawWord>) -> String {
    word.as_ref().map(|v| format!(" {name}={}", w(v))).unwrap_or_default()
}

fn command(c: &Command) -> String {
    match c {
        Command::Exec(args) => format!("exec {:?}", args.iter().map(RawWord::as_str).collect::<Vec<_>>()),
        Command::Shell(text) => format!("shell {:?}", text.as_str()),
    }
}

fn pairs(kvs: &[KeyValue]) -> String {
    kvs.iter().map(|kv| format!("{}={}", w(&kv.key), w(&kv.value))).collect::<Vec<_>>().join(" ")
}

fn dump_copy(c: &Copy) -> String {
    let mut out = String::new();
    out += &opt("chown", &c.chown);
    out += &opt("chmod", &c.chmod);
    out += &opt("from", &c.from);
    if c.link {
        out += " link";
    }
    if c.json {
        out += " json";
    }
    let heredocs: String = c.heredocs.iter().map(|h| format!(" <<{}={:?}", h.name, h.data())).collect();
    format!("{out} {}{heredocs} -> {}", ws(&c.sources), w(&c.dest))
}

fn dump(instr: &Instr) -> String {
    match instr {
        Instr::Arg(decls) => {
            decls.iter().map(|d| format!(" {}{}", w(&d.name), opt("default", &d.default))).collect()
        }
        Instr::From(f) => format!("{} {}{}", opt("platform", &f.platform), w(&f.image), opt("as", &f.stage)),
        Instr::Copy(c) | Instr::Add(c) => dump_copy(c),
        Instr::Env(kvs) | Instr::Label(kvs) => format!(" {}", pairs(kvs)),
        Instr::Workdir(x)
        | Instr::User(x)
        | Instr::Stopsignal(x)
        | Instr::Healthcheck(x)
        | Instr::Onbuild(x)
        | Instr::Maintainer(x) => format!(" {}", w(x)),
        Instr::Run(r) => {
            let flags: String = r
                .flags
                .iter()
                .map(|f| {
                    format!(
                        " --{}@{}{}",
                        f.name,
                        f.position,
                        f.value.as_ref().map(|v| format!("={}", w(v))).unwrap_or_default()
                    )
                })
                .collect();
            let script = match r.script() {
                None => String::new(),
                Some(RunScript::Shell(text)) => format!(" script shell {text:?}"),
                Some(RunScript::Executable { name, content }) => format!(" script file {name} {content:?}"),
            };
            format!("{flags} {}{script}", command(&r.command))
        }
        Instr::Cmd(c) | Instr::Entrypoint(c) => format!(" {}", command(c)),
        Instr::Expose(x) | Instr::Volume(x) => format!(" {}", ws(x)),
        Instr::Shell(args) => format!(" {args:?}"),
    }
}

fn check(src: &str, expect: Expect) {
    let file = parse(src);
    let (instrs, errors) = parse_instructions(&file);
    let mut out = String::new();
    for i in &instrs {
        out += &format!("{} {}{}\n", i.position, i.node.keyword(), dump(&i.node));
    }
    for e in file.errors.iter().chain(&errors) {
        out += &format!("error {e}\n");
        if let Some(help) = e.kind.help() {
            out += &format!("  help: {help}\n");
        }
    }
    expect.assert_eq(&out);
}

#[test]
fn real_plugin_dockerfile() {
    check(
        r#"ARG REGISTRY
ARG TAG
FROM ${REGISTRY}/base-py:${TAG}
ARG MODULE_PATH
COPY supervisely_lib /workdir/supervisely_lib
COPY $MODULE_PATH /workdir
ENV PYTHONPATH /workdir:/workdir/src:/workdir/supervisely_lib/worker_proto:$PYTHONPATH
WORKDIR /workdir/src
ENTRYPOINT ["python", "-u", "/workdir/src/main.py"]
"#,
        expect![[r#"
            1:1 ARG "REGISTRY"@1:5
            2:1 ARG "TAG"@2:5
            3:1 FROM "${REGISTRY}/base-py:${TAG}"@3:6
            4:1 ARG "MODULE_PATH"@4:5
            5:1 COPY "supervisely_lib"@5:6 -> "/workdir/supervisely_lib"@5:22
            6:1 COPY "$MODULE_PATH"@6:6 -> "/workdir"@6:19
            7:1 ENV "PYTHONPATH"@7:5="/workdir:/workdir/src:/workdir/supervisely_lib/worker_proto:$PYTHONPATH"@7:16
            8:1 WORKDIR "/workdir/src"@8:9
            9:1 ENTRYPOINT exec ["python", "-u", "/workdir/src/main.py"]
        "#]],
    );
}

// ARG

#[test]
fn arg() {
    check(
        "ARG A",
        expect![[r#"
            1:1 ARG "A"@1:5
        "#]],
    );
    check(
        "ARG A=1 B C=\"x y\" D=",
        expect![[r#"
            1:1 ARG "A"@1:5 default="1"@1:7 "B"@1:9 "C"@1:11 default="\"x y\""@1:13 "D"@1:19 default=""@1:21
        "#]],
    );
    check(
        "ARG A=${B:-1}",
        expect![[r#"
            1:1 ARG "A"@1:5 default="${B:-1}"@1:7
        "#]],
    );
    check(
        "ARG =1",
        expect![[r#"
            error 1:5: malformed ARG: `=1` has no name before `=`
              help: write `ARG <name>[=<default>]`
        "#]],
    );
    check(
        "ARG A =1",
        expect![[r#"
            1:1 ARG "A"@1:5
            error 1:7: malformed ARG: `=1` has no name before `=`
              help: write `ARG <name>[=<default>]`
        "#]],
    );
    check(
        "ARG --x A",
        expect![[r#"
            1:1 ARG "A"@1:9
            error 1:5: ARG does not take the flag `--x`
              help: ARG takes no flags
        "#]],
    );
}

// FROM

#[test]
fn from() {
    check(
        "FROM python:3.8",
        expect![[r#"
            1:1 FROM "python:3.8"@1:6
        "#]],
    );
    check(
        "FROM ${REGISTRY}/base-py:${TAG} AS build",
        expect![[r#"
            1:1 FROM "${REGISTRY}/base-py:${TAG}"@1:6 as="build"@1:36
        "#]],
    );
    check(
        "FROM img as Build.2",
        expect![[r#"
            1:1 FROM "img"@1:6 as="Build.2"@1:13
        "#]],
    );
    check(
        "FROM --platform=linux/amd64 img",
        expect![[r#"
            1:1 FROM platform="linux/amd64"@1:17 "img"@1:29
        "#]],
    );
    check(
        "FROM --platform=$BUILDPLATFORM img AS b",
        expect![[r#"
            1:1 FROM platform="$BUILDPLATFORM"@1:17 "img"@1:32 as="b"@1:39
        "#]],
    );
}

#[test]
fn from_malformed() {
    check(
        "FROM img AS",
        expect![[r#"
            error 1:10: malformed FROM: `AS` needs a stage name after it
              help: write `FROM [--platform=<platform>] <image> [AS <name>]`
        "#]],
    );
    check(
        "FROM img build",
        expect![[r#"
            error 1:10: malformed FROM: expected `AS <name>` after the image, found `build`
              help: write `FROM [--platform=<platform>] <image> [AS <name>]`
        "#]],
    );
    check(
        "FROM img AS a b",
        expect![[r#"
            error 1:15: malformed FROM: unexpected `b` after the stage name
              help: write `FROM [--platform=<platform>] <image> [AS <name>]`
        "#]],
    );
    check(
        "FROM img AS 1st",
        expect![[r#"
            1:1 FROM "img"@1:6 as="1st"@1:13
            error 1:13: malformed FROM: invalid stage name `1st`: start with a letter, then letters, digits, `-`, `_` or `.`
              help: write `FROM [--platform=<platform>] <image> [AS <name>]`
        "#]],
    );
    check(
        "FROM img AS $NAME",
        expect![[r#"
            1:1 FROM "img"@1:6 as="$NAME"@1:13
        "#]],
    );
    check(
        "FROM --platform img",
        expect![[r#"
            1:1 FROM "img"@1:17
            error 1:6: `--platform` needs a value: write `--platform=<value>`
        "#]],
    );
    check(
        "FROM --platform= img",
        expect![[r#"
            1:1 FROM "img"@1:18
            error 1:17: invalid value `` for `--platform`: the value is empty
        "#]],
    );
    check(
        "FROM --chown=1 img",
        expect![[r#"
            1:1 FROM "img"@1:16
            error 1:6: FROM does not take the flag `--chown`
              help: FROM takes `--platform`
        "#]],
    );
    check(
        "FROM --platform=a --platform=b img",
        expect![[r#"
            1:1 FROM platform="a"@1:17 "img"@1:32
            error 1:19: `--platform` is given twice
        "#]],
    );
}

// COPY and ADD

#[test]
fn copy() {
    check(
        "COPY a b",
        expect![[r#"
            1:1 COPY "a"@1:6 -> "b"@1:8
        "#]],
    );
    check(
        "COPY a b c /dest/",
        expect![[r#"
            1:1 COPY "a"@1:6 "b"@1:8 "c"@1:10 -> "/dest/"@1:12
        "#]],
    );
    check(
        "COPY --chown=1000:1000 --chmod=0644 a b",
        expect![[r#"
            1:1 COPY chown="1000:1000"@1:14 chmod="0644"@1:32 "a"@1:37 -> "b"@1:39
        "#]],
    );
    check(
        "COPY --from=build /out /app",
        expect![[r#"
            1:1 COPY from="build"@1:13 "/out"@1:19 -> "/app"@1:24
        "#]],
    );
    check(
        "COPY --link a b",
        expect![[r#"
            1:1 COPY link "a"@1:13 -> "b"@1:15
        "#]],
    );
    check(
        "COPY --link=false a b",
        expect![[r#"
            1:1 COPY "a"@1:19 -> "b"@1:21
        "#]],
    );
    check(
        "COPY -- --weird b",
        expect![[r#"
            1:1 COPY "--weird"@1:9 -> "b"@1:17
        "#]],
    );
    check(
        "copy 'a b' \"c d\"",
        expect![[r#"
            1:1 COPY "'a b'"@1:6 -> "\"c d\""@1:12
        "#]],
    );
}

#[test]
fn copy_json_form() {
    check(
        r#"COPY ["a", "b c", "/dest"]"#,
        expect![[r#"
            1:1 COPY json "a"@1:7 "b c"@1:12 -> "/dest"@1:19
        "#]],
    );
    check(
        r#"COPY --chown=x ["src", "/d"]"#,
        expect![[r#"
            1:1 COPY chown="x"@1:14 json "src"@1:17 -> "/d"@1:24
        "#]],
    );
    check(
        r#"COPY ["a\"b", "\u00e9", "d"]"#,
        expect![[r#"
            1:1 COPY json "a\"b"@1:7 "é"@1:15 -> "d"@1:25
        "#]],
    );
    check(
        "COPY [\"a\", \\\n  \"b\"]",
        expect![[r#"
            1:1 COPY json "a"@1:7 -> "b"@2:3
        "#]],
    );
    check(
        "COPY [a b] c",
        expect![[r#"
            1:1 COPY "[a"@1:6 "b]"@1:9 -> "c"@1:12
        "#]],
    );
    check(
        r#"COPY ["a", 1]"#,
        expect![[r#"
            error 1:6: COPY: a JSON array must hold only strings
              help: write `COPY ["word", "word"]` with every word a JSON string
        "#]],
    );
    check(
        r#"COPY ["a", "b"] c"#,
        expect![[r#"
            1:1 COPY json "a"@1:7 -> "b"@1:12
            error 1:17: COPY: text after the JSON array is ignored
              help: write `COPY ["word", "word"]` with every word a JSON string
        "#]],
    );
    check(
        r#"COPY ["only"]"#,
        expect![[r#"
            error 1:7: malformed COPY: needs a source and a destination, only `only` is given
              help: write `COPY [--from=<stage>] [--chown=<user>:<group>] [--chmod=<mode>] <src>... <dest>`
        "#]],
    );
    check(
        r#"COPY []"#,
        expect![[r#"
            error 1:6: malformed COPY: needs a source and a destination
              help: write `COPY [--from=<stage>] [--chown=<user>:<group>] [--chmod=<mode>] <src>... <dest>`
        "#]],
    );
}

#[test]
fn copy_chmod() {
    check(
        "COPY --chmod=755 a b",
        expect![[r#"
            1:1 COPY chmod="755"@1:14 "a"@1:18 -> "b"@1:20
        "#]],
    );
    check(
        "COPY --chmod=7777 a b",
        expect![[r#"
            1:1 COPY chmod="7777"@1:14 "a"@1:19 -> "b"@1:21
        "#]],
    );
    check(
        "COPY --chmod=rwx a b",
        expect![[r#"
            1:1 COPY chmod="rwx"@1:14 "a"@1:18 -> "b"@1:20
            error 1:14: invalid value `rwx` for `--chmod`: expected an octal mode such as 755 or 0644, found `rwx`
        "#]],
    );
    check(
        "COPY --chmod=0888 a b",
        expect![[r#"
            1:1 COPY chmod="0888"@1:14 "a"@1:19 -> "b"@1:21
            error 1:14: invalid value `0888` for `--chmod`: expected an octal mode such as 755 or 0644, found `0888`
        "#]],
    );
    check(
        "COPY --chmod=17777 a b",
        expect![[r#"
            1:1 COPY chmod="17777"@1:14 "a"@1:20 -> "b"@1:22
            error 1:14: invalid value `17777` for `--chmod`: `17777` is larger than the largest mode, 7777
        "#]],
    );
    check(
        "COPY --chmod=$MODE a b",
        expect![[r#"
            1:1 COPY chmod="$MODE"@1:14 "a"@1:20 -> "b"@1:22
        "#]],
    );
    check(
        "COPY  --link  --chmod=9 a b",
        expect![[r#"
            1:1 COPY chmod="9"@1:23 link "a"@1:25 -> "b"@1:27
            error 1:23: invalid value `9` for `--chmod`: expected an octal mode such as 755 or 0644, found `9`
        "#]],
    );
}

#[test]
fn copy_malformed() {
    check(
        "COPY onlyone",
        expect![[r#"
            error 1:6: malformed COPY: needs a source and a destination, only `onlyone` is given
              help: write `COPY [--from=<stage>] [--chown=<user>:<group>] [--chmod=<mode>] <src>... <dest>`
        "#]],
    );
    check(
        "COPY --chown=x",
        expect![[r#"
            error 1:15: malformed COPY: nothing after the flags
              help: write `COPY [--from=<stage>] [--chown=<user>:<group>] [--chmod=<mode>] <src>... <dest>`
        "#]],
    );
    check(
        "COPY --chown a b",
        expect![[r#"
            1:1 COPY "a"@1:14 -> "b"@1:16
            error 1:6: `--chown` needs a value: write `--chown=<value>`
        "#]],
    );
    check(
        "COPY --parents a b",
        expect![[r#"
            1:1 COPY "a"@1:16 -> "b"@1:18
            error 1:6: COPY does not take the flag `--parents`
              help: COPY takes `--chown`, `--chmod`, `--from`, `--link`
        "#]],
    );
    check(
        "COPY --link=maybe a b",
        expect![[r#"
            1:1 COPY "a"@1:19 -> "b"@1:21
            error 1:13: invalid value `maybe` for `--link`: use `true` or `false`
        "#]],
    );
    check(
        "COPY --from=a --from=b x y",
        expect![[r#"
            1:1 COPY from="a"@1:13 "x"@1:24 -> "y"@1:26
            error 1:15: `--from` is given twice
        "#]],
    );
    check(
        "ADD --from=build a b",
        expect![[r#"
            1:1 ADD "a"@1:18 -> "b"@1:20
            error 1:5: ADD does not take the flag `--from`
              help: ADD cannot copy from another stage or image: use `COPY --from=<stage>`
        "#]],
    );
    check(
        "ADD --checksum=sha256:abc https://x/y /z",
        expect![[r#"
            1:1 ADD "https://x/y"@1:27 -> "/z"@1:39
            error 1:5: ADD does not take the flag `--checksum`
              help: ADD takes `--chown`, `--chmod`, `--link`
        "#]],
    );
}

#[test]
fn add() {
    check(
        "ADD https://example.com/f.tgz /opt/",
        expect![[r#"
            1:1 ADD "https://example.com/f.tgz"@1:5 -> "/opt/"@1:31
        "#]],
    );
    check(
        "ADD --chown=app --chmod=600 --link a b",
        expect![[r#"
            1:1 ADD chown="app"@1:13 chmod="600"@1:25 link "a"@1:36 -> "b"@1:38
        "#]],
    );
}

// ENV and LABEL

#[test]
fn env() {
    check(
        "ENV A=1 B=\"two words\" C=a\\ b",
        expect![[r#"
            1:1 ENV "A"@1:5="1"@1:7 "B"@1:9="\"two words\""@1:11 "C"@1:23="a\\ b"@1:25
        "#]],
    );
    check(
        "ENV PYTHONPATH /workdir:$PYTHONPATH",
        expect![[r#"
            1:1 ENV "PYTHONPATH"@1:5="/workdir:$PYTHONPATH"@1:16
        "#]],
    );
    check(
        "ENV K  spaced   'value'",
        expect![[r#"
            1:1 ENV "K"@1:5="spaced   'value'"@1:8
        "#]],
    );
    check(
        "ENV A=",
        expect![[r#"
            1:1 ENV "A"@1:5=""@1:7
        "#]],
    );
    check(
        "ENV A=1 \\\n    B=$A",
        expect![[r#"
            1:1 ENV "A"@1:5="1"@1:7 "B"@2:5="$A"@2:7
        "#]],
    );
}

#[test]
fn env_malformed() {
    check(
        "ENV ALONE",
        expect![[r#"
            error 1:5: malformed ENV: `ALONE` has no value: write `ALONE=<value>`
              help: write `ENV <key>=<value> ...`
        "#]],
    );
    check(
        "ENV A=1 oops",
        expect![[r#"
            1:1 ENV "A"@1:5="1"@1:7
            error 1:9: malformed ENV: `oops` is not of the form `<key>=<value>`
              help: write `ENV <key>=<value> ...`
        "#]],
    );
    check(
        "ENV =1",
        expect![[r#"
            error 1:5: malformed ENV: missing variable name before `=`
              help: write `ENV <key>=<value> ...`
        "#]],
    );
}

#[test]
fn label() {
    check(
        r#"LABEL a=1 "b c"=d e="f g""#,
        expect![[r#"
            1:1 LABEL "a"@1:7="1"@1:9 "\"b c\""@1:11="d"@1:17 "e"@1:19="\"f g\""@1:21
        "#]],
    );
    check(
        "LABEL maintainer someone@example.com",
        expect![[r#"
            1:1 LABEL "maintainer"@1:7="someone@example.com"@1:18
        "#]],
    );
    check(
        "LABEL =x",
        expect![[r#"
            error 1:7: malformed LABEL: missing label key before `=`
              help: write `LABEL <key>=<value> ...`
        "#]],
    );
}

// WORKDIR, USER, STOPSIGNAL

#[test]
fn workdir_user_stopsignal() {
    check(
        "WORKDIR /workdir/src",
        expect![[r#"
            1:1 WORKDIR "/workdir/src"@1:9
        "#]],
    );
    check(
        "WORKDIR /a b",
        expect![[r#"
            1:1 WORKDIR "/a b"@1:9
        "#]],
    );
    check(
        "USER app:app",
        expect![[r#"
            1:1 USER "app:app"@1:6
        "#]],
    );
    check(
        "USER ${UID}",
        expect![[r#"
            1:1 USER "${UID}"@1:6
        "#]],
    );
    check(
        "STOPSIGNAL SIGTERM",
        expect![[r#"
            1:1 STOPSIGNAL "SIGTERM"@1:12
        "#]],
    );
    check(
        "STOPSIGNAL 9",
        expect![[r#"
            1:1 STOPSIGNAL "9"@1:12
        "#]],
    );
    check(
        "STOPSIGNAL sigrtmin+3",
        expect![[r#"
            1:1 STOPSIGNAL "sigrtmin+3"@1:12
        "#]],
    );
    check(
        "STOPSIGNAL SIGFOO",
        expect![[r#"
            1:1 STOPSIGNAL "SIGFOO"@1:12
            error 1:12: malformed STOPSIGNAL: unknown signal `SIGFOO`: use a name such as SIGTERM or a number
              help: write `STOPSIGNAL <signal>`
        "#]],
    );
    check(
        "STOPSIGNAL 99",
        expect![[r#"
            1:1 STOPSIGNAL "99"@1:12
            error 1:12: malformed STOPSIGNAL: signal number 99 is out of range 1-64
              help: write `STOPSIGNAL <signal>`
        "#]],
    );
    check(
        "STOPSIGNAL $SIG",
        expect![[r#"
            1:1 STOPSIGNAL "$SIG"@1:12
        "#]],
    );
}

// RUN, CMD, ENTRYPOINT

#[test]
fn commands() {
    check(
        r#"CMD ["python", "-u", "main.py"]"#,
        expect![[r#"
            1:1 CMD exec ["python", "-u", "main.py"]
        "#]],
    );
    check(
        "CMD python -u main.py",
        expect![[r#"
            1:1 CMD shell "python -u main.py"
        "#]],
    );
    check(
        r#"ENTRYPOINT ["python", "-u", "/workdir/src/main.py"]"#,
        expect![[r#"
            1:1 ENTRYPOINT exec ["python", "-u", "/workdir/src/main.py"]
        "#]],
    );
    check(
        r#"ENTRYPOINT []"#,
        expect![[r#"
            1:1 ENTRYPOINT exec []
        "#]],
    );
    check(
        "RUN pip install numpy==1.19 && \\\n    echo done",
        expect![[r#"
            1:1 RUN shell "pip install numpy==1.19 &&     echo done"
        "#]],
    );
    check(
        r#"RUN ["/bin/sh", "-c", "echo $HOME"]"#,
        expect![[r#"
            1:1 RUN exec ["/bin/sh", "-c", "echo $HOME"]
        "#]],
    );
    // `CMD []` clears the command; `RUN []` has nothing to run.
    check(
        "RUN []",
        expect![[r#"
        error 1:5: malformed RUN: the JSON array is empty: it names no program to run
          help: write `RUN command` or `RUN ["executable", "arg"...]`
    "#]],
    );
}

#[test]
fn invalid_json_falls_back_to_shell_form() {
    check(
        r#"CMD ["python", "main.py""#,
        expect![[r#"
            1:1 CMD shell "[\"python\", \"main.py\""
        "#]],
    );
    check(
        r#"CMD ['python', 'main.py']"#,
        expect![[r#"
            1:1 CMD shell "['python', 'main.py']"
        "#]],
    );
    check(
        r#"CMD [python]"#,
        expect![[r#"
            1:1 CMD shell "[python]"
        "#]],
    );
    check(
        r#"CMD ["a",]"#,
        expect![[r#"
            1:1 CMD shell "[\"a\",]"
        "#]],
    );
}

#[test]
fn json_that_docker_rejects() {
    check(
        r#"CMD ["python", 1]"#,
        expect![[r#"
            error 1:5: CMD: a JSON array must hold only strings
              help: write `CMD ["word", "word"]` with every word a JSON string
        "#]],
    );
    check(
        r#"ENTRYPOINT [{"a": "b"}]"#,
        expect![[r#"
            error 1:12: ENTRYPOINT: a JSON array must hold only strings
              help: write `ENTRYPOINT ["word", "word"]` with every word a JSON string
        "#]],
    );
    check(
        r#"CMD ["python"] main.py"#,
        expect![[r#"
            1:1 CMD exec ["python"]
            error 1:16: CMD: text after the JSON array is ignored
              help: write `CMD ["word", "word"]` with every word a JSON string
        "#]],
    );
}

#[test]
fn run_flags() {
    check(
        "RUN --mount=type=cache,target=/root/.cache pip install x",
        expect![[r#"
            1:1 RUN --mount@1:5="type=cache,target=/root/.cache"@1:13 shell "pip install x"
        "#]],
    );
    check(
        "RUN --mount=type=cache,target=/a --mount=type=cache,target=/b --network=none --network=host x",
        expect![[r#"
            1:1 RUN --mount@1:5="type=cache,target=/a"@1:13 --mount@1:34="type=cache,target=/b"@1:42 --network@1:63="none"@1:73 shell "x"
            error 1:78: `--network` is given twice
        "#]],
    );
    check(
        "RUN --network=none --security=insecure make",
        expect![[r#"
            1:1 RUN --network@1:5="none"@1:15 --security@1:20="insecure"@1:31 shell "make"
        "#]],
    );
    check(
        "RUN --privileged make",
        expect![[r#"
            1:1 RUN shell "make"
            error 1:5: RUN does not take the flag `--privileged`
              help: RUN takes `--mount`, `--network`, `--security`
        "#]],
    );
    check(
        "RUN --mount=type=cache",
        expect![[r#"
            error 1:23: malformed RUN: nothing after the flags
              help: write `RUN command` or `RUN ["executable", "arg"...]`
        "#]],
    );
    check(
        "CMD --help",
        expect![[r#"
            error 1:5: CMD does not take the flag `--help`
              help: CMD takes no flags
        "#]],
    );
}

#[test]
fn run_heredocs() {
    // A lone heredoc is the script; `<<-` strips tabs from it; with a
    // shebang, BuildKit runs the body as a file.
    check(
        "RUN <<EOF\napt-get update\necho \"$HOME\"\nEOF\nRUN <<-EOF\n\techo a\n\tEOF\nRUN <<'PY'\n#!/usr/bin/env python3\nprint('hi')\nPY\n",
        expect![[r##"
            1:1 RUN shell "<<EOF" script shell "apt-get update\necho \"$HOME\"\n"
            5:1 RUN shell "<<-EOF" script shell "echo a\n"
            8:1 RUN shell "<<'PY'" script file PY "#!/usr/bin/env python3\nprint('hi')\n"
        "##]],
    );
    // Anything else: the shell reads the heredocs itself, bodies as written.
    check(
        "RUN --network=none <<EOF bash\nset -e\nEOF\nRUN python3 - <<-END > /out\n\tprint(1)\n\tEND\nRUN cat <<A <<B\na\nA\nb\nB\n",
        expect![[r##"
            1:1 RUN --network@1:5="none"@1:15 shell "<<EOF bash" script shell "<<EOF bash\nset -e\nEOF"
            4:1 RUN shell "python3 - <<-END > /out" script shell "python3 - <<-END > /out\n\tprint(1)\nEND"
            7:1 RUN shell "cat <<A <<B" script shell "cat <<A <<B\na\nA\nb\nB"
        "##]],
    );
    // Exec form has no heredocs.
    check(
        "RUN [\"cat\", \"<<EOF\"]\nRUN true\n",
        expect![[r##"
            1:1 RUN exec ["cat", "<<EOF"]
            2:1 RUN shell "true"
        "##]],
    );
}

#[test]
fn copy_heredocs() {
    check(
        "COPY --chmod=755 <<EOF /usr/local/bin/hello\n#!/bin/sh\necho $GREETING\nEOF\nCOPY a <<\"one\" b <<-two /dst/\n1 $x\none\n\t2\n\ttwo\nADD <<EOF /f\nEOF\n",
        expect![[r##"
            1:1 COPY chmod="755"@1:14  <<EOF="#!/bin/sh\necho $GREETING\n" -> "/usr/local/bin/hello"@1:24
            5:1 COPY "a"@5:6 "b"@5:16 <<one="1 $x\n" <<two="2\n" -> "/dst/"@5:25
            10:1 ADD  <<EOF="" -> "/f"@10:11
        "##]],
    );
    check(
        "COPY src <<EOF\nx\nEOF\nCOPY <<EOF\nx\nEOF\n",
        expect![[r#"
            error 1:10: malformed COPY: a heredoc (`<<EOF`) cannot be the destination
              help: write `COPY [--from=<stage>] [--chown=<user>:<group>] [--chmod=<mode>] <src>... <dest>`
            error 4:6: malformed COPY: needs a source and a destination, only `<<EOF` is given
              help: write `COPY [--from=<stage>] [--chown=<user>:<group>] [--chmod=<mode>] <src>... <dest>`
        "#]],
    );
}

// EXPOSE

#[test]
fn expose() {
    check(
        "EXPOSE 80 80/tcp 53/udp 8000-8010/tcp 9/SCTP",
        expect![[r#"
            1:1 EXPOSE "80"@1:8 "80/tcp"@1:11 "53/udp"@1:18 "8000-8010/tcp"@1:25 "9/SCTP"@1:39
        "#]],
    );
    check(
        "EXPOSE $PORT ${P:-80}/udp",
        expect![[r#"
            1:1 EXPOSE "$PORT"@1:8 "${P:-80}/udp"@1:14
        "#]],
    );
    check(
        "EXPOSE 80/http",
        expect![[r#"
            1:1 EXPOSE "80/http"@1:8
            error 1:8: malformed EXPOSE: invalid port `80/http`: unknown protocol `http`: use tcp, udp or sctp
              help: write `EXPOSE <port>[/<protocol>] ...`
        "#]],
    );
    check(
        "EXPOSE 0",
        expect![[r#"
            1:1 EXPOSE "0"@1:8
            error 1:8: malformed EXPOSE: invalid port `0`: expected a port from 1 to 65535 or a range such as 8000-8010, found `0`
              help: write `EXPOSE <port>[/<protocol>] ...`
        "#]],
    );
    check(
        "EXPOSE 65536",
        expect![[r#"
            1:1 EXPOSE "65536"@1:8
            error 1:8: malformed EXPOSE: invalid port `65536`: expected a port from 1 to 65535 or a range such as 8000-8010, found `65536`
              help: write `EXPOSE <port>[/<protocol>] ...`
        "#]],
    );
    check(
        "EXPOSE 8010-8000",
        expect![[r#"
            1:1 EXPOSE "8010-8000"@1:8
            error 1:8: malformed EXPOSE: invalid port `8010-8000`: the range 8010-8000 ends before it starts
              help: write `EXPOSE <port>[/<protocol>] ...`
        "#]],
    );
    check(
        "EXPOSE 8080:80",
        expect![[r#"
            1:1 EXPOSE "8080:80"@1:8
            error 1:8: malformed EXPOSE: invalid port `8080:80`: EXPOSE takes container ports; publishing to the host is done with `docker run -p`
              help: write `EXPOSE <port>[/<protocol>] ...`
        "#]],
    );
    check(
        "EXPOSE 80 http",
        expect![[r#"
            1:1 EXPOSE "80"@1:8 "http"@1:11
            error 1:11: malformed EXPOSE: invalid port `http`: expected a port from 1 to 65535 or a range such as 8000-8010, found `http`
              help: write `EXPOSE <port>[/<protocol>] ...`
        "#]],
    );
    check(
        "EXPOSE -80",
        expect![[r#"
            1:1 EXPOSE "-80"@1:8
            error 1:8: malformed EXPOSE: invalid port `-80`: expected a port from 1 to 65535 or a range such as 8000-8010, found `-80`
              help: write `EXPOSE <port>[/<protocol>] ...`
        "#]],
    );
}

// SHELL, VOLUME

#[test]
fn shell() {
    check(
        r#"SHELL ["/bin/bash", "-o", "pipefail", "-c"]"#,
        expect![[r#"
            1:1 SHELL ["/bin/bash", "-o", "pipefail", "-c"]
        "#]],
    );
    check(
        "SHELL /bin/bash -c",
        expect![[r#"
            error 1:7: malformed SHELL: needs a JSON array such as ["/bin/sh", "-c"]
              help: write `SHELL ["executable", "parameters"]`
        "#]],
    );
    check(
        "SHELL []",
        expect![[r#"
            error 1:7: malformed SHELL: the JSON array is empty
              help: write `SHELL ["executable", "parameters"]`
        "#]],
    );
    check(
        r#"SHELL ["/bin/bash", 2]"#,
        expect![[r#"
            error 1:7: SHELL: a JSON array must hold only strings
              help: write `SHELL ["word", "word"]` with every word a JSON string
        "#]],
    );
}

#[test]
fn volume() {
    check(
        "VOLUME /data /cache",
        expect![[r#"
            1:1 VOLUME "/data"@1:8 "/cache"@1:14
        "#]],
    );
    check(
        r#"VOLUME ["/data", "/other dir"]"#,
        expect![[r#"
            1:1 VOLUME "/data"@1:9 "/other dir"@1:18
        "#]],
    );
    check(
        r#"VOLUME [""]"#,
        expect![[r#"
            1:1 VOLUME ""@1:9
            error 1:9: malformed VOLUME: a volume path is empty
              help: write `VOLUME <path> ...` or `VOLUME ["<path>", ...]`
        "#]],
    );
    check(
        "VOLUME []",
        expect![[r#"
            error 1:8: malformed VOLUME: needs at least one path
              help: write `VOLUME <path> ...` or `VOLUME ["<path>", ...]`
        "#]],
    );
}

// Kept raw.

#[test]
fn raw_instructions() {
    check(
        "HEALTHCHECK --interval=5s CMD curl -f http://localhost/",
        expect![[r#"
            1:1 HEALTHCHECK "--interval=5s CMD curl -f http://localhost/"@1:13
        "#]],
    );
    check(
        "HEALTHCHECK NONE",
        expect![[r#"
            1:1 HEALTHCHECK "NONE"@1:13
        "#]],
    );
    check(
        "MAINTAINER Jane <jane@example.com>",
        expect![[r#"
            1:1 MAINTAINER "Jane <jane@example.com>"@1:12
        "#]],
    );
    check(
        "ONBUILD COPY . /app",
        expect![[r#"
            1:1 ONBUILD "COPY . /app"@1:9
        "#]],
    );
    check(
        "ONBUILD ONBUILD RUN x",
        expect![[r#"
            error 1:9: malformed ONBUILD: ONBUILD is not allowed after ONBUILD
              help: write `ONBUILD <instruction>`
        "#]],
    );
    check(
        "ONBUILD FROM x",
        expect![[r#"
            error 1:9: malformed ONBUILD: FROM is not allowed after ONBUILD
              help: write `ONBUILD <instruction>`
        "#]],
    );
    check(
        "ONBUILD COPPY a b",
        expect![[r#"
            error 1:9: malformed ONBUILD: unknown instruction `COPPY` after ONBUILD
              help: write `ONBUILD <instruction>`
        "#]],
    );
    check(
        "ONBUILD RUN",
        expect![[r#"
            error 1:9: malformed ONBUILD: RUN needs arguments
              help: write `ONBUILD <instruction>`
        "#]],
    );
}

// Positions.

#[test]
fn positions_across_continuations() {
    check(
        "COPY --chown=a \\\n  src \\\n    /dest",
        expect![[r#"
            1:1 COPY chown="a"@1:14 "src"@2:3 -> "/dest"@3:5
        "#]],
    );
    check(
        "COPY --chmod=99 \\\n  a b",
        expect![[r#"
            1:1 COPY chmod="99"@1:14 "a"@2:3 -> "b"@2:5
            error 1:14: invalid value `99` for `--chmod`: expected an octal mode such as 755 or 0644, found `99`
        "#]],
    );
    check(
        "  EXPOSE \\\n 80 \\\n  bad/proto",
        expect![[r#"
            1:3 EXPOSE "80"@2:2 "bad/proto"@3:3
            error 3:3: malformed EXPOSE: invalid port `bad/proto`: unknown protocol `proto`: use tcp, udp or sctp
              help: write `EXPOSE <port>[/<protocol>] ...`
        "#]],
    );
    check(
        "ENV A=\"é\" B=x Ü=1 C=\\\n2",
        expect![[r#"
            1:1 ENV "A"@1:5="\"é\""@1:7 "B"@1:11="x"@1:13 "Ü"@1:15="1"@1:17 "C"@1:19="2"@2:1
        "#]],
    );
}

#[test]
fn raw_word_position_at() {
    let file = parse("COPY ab\\\ncd /x");
    let (instrs, _) = parse_instructions(&file);
    let Instr::Copy(c) = &instrs[0].node else { panic!("not COPY") };
    let src = &c.sources[0];
    let at: Vec<String> = (0..=src.raw.len()).map(|o| src.position_at(o).to_string()).collect();
    expect![[r#""abcd" 1:6 1:7 2:1 2:2 2:3"#]].assert_eq(&format!("{:?} {}", src.raw, at.join(" ")));

    let file = parse("COPY [\"ab\", \"c\\\"d\", \"/x\"]");
    let (instrs, _) = parse_instructions(&file);
    let Instr::Copy(c) = &instrs[0].node else { panic!("not COPY") };
    let at: Vec<String> = c.sources.iter().map(|s| format!("{:?}: {}", s.raw, s.position_at(1))).collect();
    expect![[r#""ab": 1:9, "c\"d": 1:15"#]].assert_eq(&at.join(", "));
}

#[test]
fn many_errors_in_one_file() {
    check(
        "FROM img AS\nCOPY x\nEXPOSE 80/foo\nSHELL sh\nENV =1\nRUN --foo=1 x\nWORKDIR /ok\n",
        expect![[r#"
            3:1 EXPOSE "80/foo"@3:8
            6:1 RUN shell "x"
            7:1 WORKDIR "/ok"@7:9
            error 1:10: malformed FROM: `AS` needs a stage name after it
              help: write `FROM [--platform=<platform>] <image> [AS <name>]`
            error 2:6: malformed COPY: needs a source and a destination, only `x` is given
              help: write `COPY [--from=<stage>] [--chown=<user>:<group>] [--chmod=<mode>] <src>... <dest>`
            error 3:8: malformed EXPOSE: invalid port `80/foo`: unknown protocol `foo`: use tcp, udp or sctp
              help: write `EXPOSE <port>[/<protocol>] ...`
            error 4:7: malformed SHELL: needs a JSON array such as ["/bin/sh", "-c"]
              help: write `SHELL ["executable", "parameters"]`
            error 5:5: malformed ENV: missing variable name before `=`
              help: write `ENV <key>=<value> ...`
            error 6:5: RUN does not take the flag `--foo`
              help: RUN takes `--mount`, `--network`, `--security`
        "#]],
    );
}
