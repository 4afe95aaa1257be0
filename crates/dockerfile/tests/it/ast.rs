//! Typed instructions, data-driven: each `test_data/ast/<group>.txt` holds
//! cases (`//- name` then a Dockerfile), and `<group>.expected` the dump of
//! what `parse_instructions` read of each (raw words with their positions)
//! and the errors it found, with their line:column (refresh with
//! `UPDATE_EXPECT=1`).

use std::path::Path;

use expect_test::expect;
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

/// What `parse_instructions` reads of `src`: each instruction with its
/// raw words and their positions, then the errors, each with its help.
fn dump_file(src: &str) -> String {
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
    out
}

/// The cases of `test_data/ast/GROUP.txt` against `GROUP.expected`.
fn check(group: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/ast");
    forge_testkit::check_cases(&dir, group, dump_file);
}

#[test]
fn plugin() {
    check("plugin");
}

#[test]
fn arg() {
    check("arg");
}

#[test]
fn from() {
    check("from");
}

#[test]
fn copy() {
    check("copy");
}

#[test]
fn env() {
    check("env");
}

#[test]
fn workdir() {
    check("workdir");
}

#[test]
fn run() {
    check("run");
}

#[test]
fn expose() {
    check("expose");
}

#[test]
fn shell() {
    check("shell");
}

#[test]
fn raw() {
    check("raw");
}

#[test]
fn positions() {
    check("positions");
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
