//! The `RUN`s a native installer can take: `pip install` and `apt-get`
//! with their usual clean-ups, recognised from the shell text (or exec
//! form) of a `RUN` into an [`InstallRun`], each command with its position
//! in the Dockerfile. Nothing here executes or resolves anything: the plan
//! keeps the [`InstallRun`] as a step, and an [`Installer`] the caller
//! injects turns it into a layer at execute time.
//!
//! A `RUN` that is not entirely made of the commands below is refused with
//! the position of the first word that could not be taken, and why
//! ([`Unrecognized`]).
//!
//! [`recognize`] reads the shell form with [`forge_dockerfile::shell`] (the
//! `sh` subset, expanded with the stage's variables as the container's
//! shell would), then each command's options the way pip (optparse),
//! apt-get and GNU `rm` read them. What it accepts it accepts exactly: an
//! option that would change what is installed or where, and is not
//! modelled here, is refused rather than ignored.

use forge_dockerfile::shell::{parse_script, ShellOptions, SHELLS};
use forge_dockerfile::{Command, Flag, Position, RawWord};
/// A `RUN` made only of commands a native installer takes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallRun {
    /// The commands, in the order the shell would run them.
    pub ops: Vec<InstallOp>,
}

/// One command of an [`InstallRun`], with where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOp {
    /// Where the command's first word is in the Dockerfile.
    pub position: Position,
    /// The changes to the environment the command runs with, over the
    /// stage's `ENV` and `ARG`s, expanded, in order (a later one wins):
    /// earlier assignment-only commands of the `RUN` to a variable of the
    /// environment (`PATH=/opt/bin:$PATH && ...`), then the command's own
    /// `VAR=value` prefixes (`DEBIAN_FRONTEND=noninteractive apt-get ...`).
    pub assignments: Vec<(String, String)>,
    /// What it does.
    pub kind: InstallKind,
}

/// What an [`InstallOp`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallKind {
    /// `pip install ...` (any spelling of pip).
    Pip(PipInstall),
    /// `apt-get update` / `apt update`: the installer reads the indexes it
    /// needs anyway; the effect on the tree is none (the lists are not kept).
    AptUpdate,
    /// `apt-get install ...` / `apt install ...`.
    AptInstall(AptInstall),
    /// `apt-get clean`, `apt-get autoclean`, `apt-get autoremove`: nothing
    /// of apt's caches reaches our layers, so no effect on the tree.
    AptClean,
    /// `rm -rf PATH...` (`-r`, `-f`, `-rf`, `-fr`, `--recursive`,
    /// `--force`): the paths (absolute, or relative to the working
    /// directory, already joined; may hold `*`, `?` and `[...]` globs)
    /// are removed from what the step has installed and hidden (whiteouts)
    /// where the image below has them. Globs match as `sh` matches them:
    /// `*` and `?` never match a leading `.` of a name, and a glob that
    /// matches nothing stands for itself (which `rm -f` ignores). A path
    /// holds no other `\` or glob character (those are refused).
    Remove(Vec<String>),
}

/// `pip install`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PipInstall {
    /// The interpreter as named: `python3`, `/usr/bin/python3` for
    /// `python3 -m pip`, or `None` for a `pip`/`pip3`/`pip3.11` command
    /// (the `pip` program as named then is in `program`).
    pub python: Option<String>,
    /// The program word as written (`pip3`, `python3`, `/usr/bin/python3`).
    pub program: String,
    /// Requirement specifiers in order, as the shell gives them
    /// (`pillow<7`, `requests[socks]==2.31.0`, `pip`).
    pub requirements: Vec<String>,
    /// `-r FILE` / `--requirement FILE`, in order: absolute paths in the
    /// image (a relative path already joined with the working directory).
    pub requirement_files: Vec<String>,
    /// `-c FILE` / `--constraint FILE`, as `requirement_files`.
    pub constraint_files: Vec<String>,
    /// `-U` / `--upgrade`.
    pub upgrade: bool,
    /// `--no-deps`.
    pub no_deps: bool,
    /// `--pre`.
    pub pre: bool,
    /// `-i URL` / `--index-url URL`.
    pub index_url: Option<String>,
    /// `--extra-index-url URL`, in order.
    pub extra_index_urls: Vec<String>,
    /// `-f URL` / `--find-links URL`, in order.
    pub find_links: Vec<String>,
    /// `--no-index`.
    pub no_index: bool,
    /// `--compile`: write `.pyc` files (the default here, as for
    /// `--no-compile`, is to write none; see the README).
    pub compile: bool,
    /// `--break-system-packages` (or `PIP_BREAK_SYSTEM_PACKAGES`): install
    /// into an interpreter marked externally managed (PEP 668), as pip
    /// then does.
    pub break_system_packages: bool,
}

/// `apt-get install` / `apt install`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AptInstall {
    /// The packages in order: name and, for `pkg=version`, the version.
    pub packages: Vec<(String, Option<String>)>,
    /// `--no-install-recommends` (otherwise apt's default: Recommends are
    /// installed too).
    pub no_install_recommends: bool,
}

impl AptInstall {
    /// The packages as apt's command line spells them (`jq`,
    /// `curl=7.88.1-10`), in the order given.
    pub fn spelled(&self) -> impl Iterator<Item = String> + '_ {
        self.packages.iter().map(|(name, version)| match version {
            Some(v) => format!("{name}={v}"),
            None => name.clone(),
        })
    }
}

/// Why a `RUN` cannot be taken natively: the first word we could not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecognized {
    /// Where that word is in the Dockerfile.
    pub position: Position,
    /// What it is and why it was not taken (``ls` is not a package
    /// installer command``, ``pip option `--user` is not supported``).
    pub message: String,
}

impl std::fmt::Display for Unrecognized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.position, self.message)
    }
}

impl std::error::Error for Unrecognized {}

/// Reads a `RUN` into the installer commands it is made of, or says where
/// and why it is not.
///
/// `shell` is the stage's `SHELL` (`["/bin/sh", "-c"]` by default; sh, bash
/// or dash with options ending in `-c` are read), `workdir` its absolute
/// working directory (relative paths are joined with it), and `lookup` the
/// variables of the environment the `RUN`'s shell starts with: the stage's
/// `ENV` and `ARG`s (and what Docker adds, such as `PATH` and `HOME`).
/// The exec form (`RUN ["pip", "install", "x"]`) is one command with no
/// expansion, or, for `["sh", "-c", "TEXT"]`, TEXT read as the shell form.
pub fn recognize(
    run: &forge_dockerfile::Run,
    shell: &[String],
    workdir: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<InstallRun, Unrecognized> {
    let workdir = if workdir.is_empty() { "/" } else { workdir };
    for flag in &run.flags {
        check_flag(flag, workdir)?;
    }
    let commands = match &run.command {
        Command::Shell(text) => read_script(text, shell, lookup)?,
        Command::Exec(argv) => exec_commands(argv, lookup)?,
    };
    let mut env: Vec<(String, String)> = Vec::new();
    let mut ops = Vec::new();
    for command in commands {
        let Some(program) = command.words.first() else {
            // Assignments alone: shell variables, and for a variable of the
            // environment, a change of what later commands run with.
            for (name, value) in command.assignments {
                if lookup(&name).is_some() || env.iter().any(|(n, _)| *n == name) {
                    env.push((name, value));
                }
            }
            continue;
        };
        let mut assignments = env.clone();
        assignments.extend(command.assignments.iter().cloned());
        let cx = Cx { workdir, env: &assignments, lookup };
        let args = &command.words[1..];
        let kind = match classify(program, args) {
            Program::Pip { python, skip } => InstallKind::Pip(cx.pip(python, program, &args[skip..])?),
            Program::Apt => cx.apt(program, args)?,
            Program::Rm => InstallKind::Remove(cx.rm(program, args)?),
            Program::Other(message) => return Err(refuse(program.position, message)),
        };
        ops.push(InstallOp { position: command.position, assignments, kind });
    }
    Ok(InstallRun { ops })
}

/// One command of the `RUN`, expanded, with file positions.
struct Cmd {
    position: Position,
    assignments: Vec<(String, String)>,
    words: Vec<Arg>,
}

/// One word of a [`Cmd`].
#[derive(Clone)]
struct Arg {
    text: String,
    /// The glob pattern when the word had unquoted glob characters.
    glob: Option<String>,
    position: Position,
}

fn refuse(position: Position, message: impl Into<String>) -> Unrecognized {
    Unrecognized { position, message: message.into() }
}

/// Where the installers write: a cache mount over (or above) one of these
/// would keep what they install out of the layer.
const INSTALLED_UNDER: [&str; 8] =
    ["/usr", "/etc", "/opt", "/bin", "/sbin", "/lib", "/var/lib/dpkg", "/var/lib/apt/extended_states"];

/// `--mount=type=cache,target=DIR` never changes the layer (unless `DIR`
/// is where packages are installed); every other flag is refused.
fn check_flag(flag: &Flag, workdir: &str) -> Result<(), Unrecognized> {
    if flag.name != "mount" {
        return Err(refuse(
            flag.position,
            format!("`RUN --{}` is not supported for a native install", flag.name),
        ));
    }
    let value = flag.value.as_ref().map_or("", RawWord::as_str);
    let field = |names: &[&str]| {
        value.split(',').find_map(|field| {
            let (key, value) = field.split_once('=')?;
            names.contains(&key.trim()).then(|| value.trim())
        })
    };
    let kind = field(&["type"]).unwrap_or("bind");
    if kind != "cache" {
        return Err(refuse(
            flag.position,
            format!("`RUN --mount=type={kind}` is not supported for a native install (only `type=cache` is, which never changes the layer)"),
        ));
    }
    let target =
        crate::context::resolve(workdir, field(&["target", "dst", "destination"]).unwrap_or_default());
    let over = |dir: &str| dir == target || dir.starts_with(&format!("{}/", target.trim_end_matches('/')));
    let under = |dir: &str| target.starts_with(&format!("{dir}/"));
    if INSTALLED_UNDER.iter().any(|dir| over(dir) || under(dir)) {
        return Err(refuse(
            flag.position,
            format!("a cache mount at `{target}` would keep what is installed there out of the layer, which a native install cannot do"),
        ));
    }
    Ok(())
}

/// The shell-form text `text` run by the shell `shell`.
fn read_script(
    text: &RawWord,
    shell: &[String],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Cmd>, Unrecognized> {
    let options = ShellOptions::from_shell(shell).map_err(|why| refuse(text.position, why.to_string()))?;
    let commands = parse_script(text.as_str(), options, lookup)
        .map_err(|e| refuse(text.position_at(e.offset), e.to_string()))?;
    Ok(commands
        .into_iter()
        .map(|c| Cmd {
            position: text.position_at(c.start),
            assignments: c.assignments.into_iter().map(|a| (a.name, a.value)).collect(),
            words: c
                .words
                .into_iter()
                .map(|w| Arg { position: text.position_at(w.start), text: w.text, glob: w.glob })
                .collect(),
        })
        .collect())
}

/// The exec form: one command as given, or a shell's `-c TEXT`.
fn exec_commands(
    argv: &[RawWord],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Cmd>, Unrecognized> {
    let Some(first) = argv.first() else {
        // forge-dockerfile refuses `RUN []`; nothing to run.
        return Ok(Vec::new());
    };
    if SHELLS.contains(&basename(first.as_str())) {
        let (text, options) = argv.split_last().unwrap_or((first, &[]));
        let options: Vec<String> = options.iter().map(|w| w.raw.clone()).collect();
        if argv.len() < 3 || ShellOptions::from_shell(&options).is_err() {
            return Err(refuse(
                first.position,
                format!(
                    "`{}` is run without `-c TEXT` as its last arguments, so its commands cannot be read",
                    first.raw
                ),
            ));
        }
        return read_script(text, &options, lookup);
    }
    let words = argv.iter().map(|w| Arg { text: w.raw.clone(), glob: None, position: w.position }).collect();
    Ok(vec![Cmd { position: first.position, assignments: Vec::new(), words }])
}

fn basename(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// What a command's first word runs.
enum Program {
    /// pip; for `python -m pip`, the interpreter, and the number of
    /// arguments (`-m pip`) before pip's own.
    Pip { python: Option<String>, skip: usize },
    /// `apt-get` or `apt`.
    Apt,
    /// `rm`.
    Rm,
    /// Not an installer command: why.
    Other(String),
}

fn classify(program: &Arg, args: &[Arg]) -> Program {
    let name = basename(&program.text);
    let versioned = |prefix: &str| {
        name.strip_prefix(prefix).is_some_and(|rest| {
            rest.is_empty()
                || rest == "3"
                || rest
                    .strip_prefix("3.")
                    .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    if program.glob.is_some() || name.is_empty() {
        return Program::Other(format!("`{}` is not a package installer command", program.text));
    }
    if versioned("pip") {
        return Program::Pip { python: None, skip: 0 };
    }
    if versioned("python") {
        let module: Vec<&str> = args.iter().take(2).map(|a| a.text.as_str()).collect();
        return match module.as_slice() {
            ["-m", "pip", ..] => Program::Pip { python: Some(program.text.clone()), skip: 2 },
            ["-mpip", ..] => Program::Pip { python: Some(program.text.clone()), skip: 1 },
            _ => Program::Other(format!(
                "`{}` is run for something other than `-m pip` (only `{} -m pip install` is a package installer command)",
                program.text, program.text
            )),
        };
    }
    match name {
        "apt-get" | "apt" => Program::Apt,
        "rm" => Program::Rm,
        _ => Program::Other(format!("`{}` is not a package installer command", program.text)),
    }
}

/// One piece of a command line, as getopt_long and optparse split it.
enum Opt<'a> {
    /// `-x`, `--name`, with its value (`--name=value`, `--name value`,
    /// `-xVALUE`, `-x VALUE`) when the option takes one: the next word, or
    /// for an attached value, its text with the position (and globbing)
    /// of the word it is in.
    Flag { name: String, value: Option<Arg>, arg: &'a Arg },
    /// A word that is not an option (everything after `--` too).
    Operand(&'a Arg),
}

/// Splits `args` into options and operands (interspersed, as pip, apt-get
/// and GNU tools take them), `takes_value` telling which options (`-r`,
/// `--requirement`) take a value; calls `each` on every piece in order.
fn walk<'a>(
    args: &'a [Arg],
    takes_value: impl Fn(&str) -> bool,
    mut each: impl FnMut(Opt<'a>) -> Result<(), Unrecognized>,
) -> Result<(), Unrecognized> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let text = arg.text.as_str();
        if text == "--" {
            for operand in args.by_ref() {
                each(Opt::Operand(operand))?;
            }
            break;
        }
        let mut value_of = |name: &str, attached: Option<&str>| -> Result<Option<Arg>, Unrecognized> {
            match attached {
                Some(value) => Ok(Some(Arg { text: value.to_string(), ..arg.clone() })),
                None if takes_value(name) => match args.next() {
                    Some(next) => Ok(Some(next.clone())),
                    None => Err(refuse(arg.position, format!("`{name}` needs a value after it"))),
                },
                None => Ok(None),
            }
        };
        if let Some(long) = text.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((name, value)) => (format!("--{name}"), Some(value)),
                None => (text.to_string(), None),
            };
            let value = value_of(&name, attached)?;
            each(Opt::Flag { name, value, arg })?;
        } else if text.len() > 1 && text.starts_with('-') {
            for (i, flag) in text.char_indices().skip(1) {
                let name = format!("-{flag}");
                if takes_value(&name) {
                    let rest = &text[i + flag.len_utf8()..];
                    let value = value_of(&name, (!rest.is_empty()).then_some(rest))?;
                    each(Opt::Flag { name, value, arg })?;
                    break;
                }
                each(Opt::Flag { name, value: None, arg })?;
            }
        } else {
            each(Opt::Operand(arg))?;
        }
    }
    Ok(())
}

/// What the command readers need besides the command.
struct Cx<'a> {
    workdir: &'a str,
    /// Changes to the environment over `lookup`, a later one winning.
    env: &'a [(String, String)],
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Cx<'_> {
    /// The variable `name` of the command's environment.
    fn var(&self, name: &str) -> Option<String> {
        self.env.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone()).or_else(|| (self.lookup)(name))
    }

    /// An absolute path for `arg`: taken literally (no glob) and joined
    /// with the working directory.
    fn file(&self, arg: &Arg, what: &str) -> Result<String, Unrecognized> {
        let value = arg.text.as_str();
        if value.is_empty() {
            return Err(refuse(arg.position, format!("{what} is empty")));
        }
        if arg.glob.is_some() && value.contains(['*', '?', '[']) {
            return Err(refuse(arg.position, format!("{what} `{value}` is a glob; write the file's name")));
        }
        Ok(crate::context::resolve(self.workdir, value))
    }
}

/// pip options that take a value, general or of `install`.
const PIP_VALUE_OPTIONS: &[&str] = &[
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--progress-bar",
    "--only-binary",
    "--no-binary",
    "--root-user-action",
    "--timeout",
    "--default-timeout",
    "--retries",
    "-t",
    "--target",
    "--prefix",
    "--root",
    "-e",
    "--editable",
    "--src",
    "--upgrade-strategy",
    "--platform",
    "--python-version",
    "--implementation",
    "--abi",
    "--log",
    "--cache-dir",
    "--proxy",
    "--trusted-host",
    "--cert",
    "--client-cert",
    "--exists-action",
    "--python",
    "--config-settings",
    "-C",
    "--global-option",
    "--report",
];

/// pip's general options (given before or after the subcommand) that
/// change nothing here.
const PIP_GENERAL_IGNORED: &[&str] = &[
    "-q",
    "--quiet",
    "-v",
    "--verbose",
    "--no-cache-dir",
    "--disable-pip-version-check",
    "--no-color",
    "--no-input",
    "--no-python-version-warning",
    "--timeout",
    "--default-timeout",
    "--retries",
];

/// `install` options that change nothing here (`--no-compile` is the
/// default; see [`PipInstall::compile`]).
const PIP_INSTALL_IGNORED: &[&str] = &[
    "--no-compile",
    "--no-warn-script-location",
    "--no-warn-conflicts",
    "--prefer-binary",
    "--root-user-action",
    "--progress-bar",
];

/// pip's environment variables that change where or what pip installs in a
/// way not modelled here.
const PIP_ENV_REFUSED: &[&str] = &[
    "PIP_USER",
    "PIP_TARGET",
    "PIP_PREFIX",
    "PIP_ROOT",
    "PIP_EDITABLE",
    "PIP_NO_BINARY",
    "PIP_IGNORE_INSTALLED",
    "PIP_FORCE_REINSTALL",
    "PIP_REQUIRE_VIRTUALENV",
    "PIP_REQUIRE_HASHES",
    "PIP_CONFIG_FILE",
    "PIP_ISOLATED",
    "PIP_UPGRADE_STRATEGY",
    "PIP_PYTHON",
    "PIP_REQUIREMENT",
];

/// Why a pip option that changes where or how pip installs is refused.
fn pip_refused(name: &str) -> Option<&'static str> {
    Some(match name {
        "--user" => "installs into the user's site-packages (`~/.local`) instead of the system's",
        "-t" | "--target" => {
            "installs into a directory of its own instead of the interpreter's site-packages"
        }
        "--prefix" | "--root" => "installs under another prefix or root than the interpreter's",
        "-e" | "--editable" => "builds the project from its sources and links to them (an editable install)",
        "--no-binary" => "builds from source distributions, which needs the image's compilers",
        "-I" | "--ignore-installed" | "--force-reinstall" => "reinstalls what the image already has",
        "--require-hashes" => "hash-checking mode needs every requirement pinned with `--hash`",
        _ => return None,
    })
}

/// pip's reading of a boolean environment variable (`strtobool`).
fn pip_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "y" | "yes" | "t" | "true" | "on" | "1" => Some(true),
        "n" | "no" | "f" | "false" | "off" | "0" | "" => Some(false),
        _ => None,
    }
}

impl Cx<'_> {
    /// `pip ARGS` (`args` after `-m pip` for `python -m pip`).
    fn pip(&self, python: Option<String>, program: &Arg, args: &[Arg]) -> Result<PipInstall, Unrecognized> {
        let mut pip = PipInstall { python, program: program.text.clone(), ..PipInstall::default() };
        self.pip_env(&mut pip, program)?;
        let mut subcommand: Option<&Arg> = None;
        let mut nothing = true;
        walk(
            args,
            |name| PIP_VALUE_OPTIONS.contains(&name),
            |opt| {
                let (name, value, arg) = match opt {
                    Opt::Operand(arg) if subcommand.is_none() => {
                        if arg.text != "install" {
                            return Err(refuse(
                                arg.position,
                                format!("`pip {}` is not taken natively (only `pip install` is)", arg.text),
                            ));
                        }
                        subcommand = Some(arg);
                        return Ok(());
                    }
                    Opt::Operand(arg) => {
                        pip.requirements.push(requirement(arg)?);
                        nothing = false;
                        return Ok(());
                    }
                    Opt::Flag { name, value, arg } => (name, value, arg),
                };
                if PIP_GENERAL_IGNORED.contains(&name.as_str()) {
                    return Ok(());
                }
                if subcommand.is_none() {
                    return Err(refuse(
                        arg.position,
                        format!("`{name}` before `install` is not one of pip's general options taken natively (`-q`, `-v`, `--no-cache-dir`, ...)"),
                    ));
                }
                if let Some(why) = pip_refused(&name) {
                    return Err(refuse(
                        arg.position,
                        format!("pip option `{name}` is not supported: it {why}"),
                    ));
                }
                let value_arg = value.unwrap_or_else(|| Arg { text: String::new(), ..arg.clone() });
                let value = value_arg.text.clone();
                match name.as_str() {
                    _ if PIP_INSTALL_IGNORED.contains(&name.as_str()) => {}
                    "-r" | "--requirement" => {
                        pip.requirement_files.push(self.file(&value_arg, "the requirements file")?);
                        nothing = false;
                    }
                    "-c" | "--constraint" => {
                        pip.constraint_files.push(self.file(&value_arg, "the constraints file")?)
                    }
                    "-U" | "--upgrade" => pip.upgrade = true,
                    "--no-deps" => pip.no_deps = true,
                    "--break-system-packages" => pip.break_system_packages = true,
                    "--pre" => pip.pre = true,
                    "--no-index" => pip.no_index = true,
                    "--compile" => pip.compile = true,
                    "-i" | "--index-url" => pip.index_url = Some(value),
                    "--extra-index-url" => pip.extra_index_urls.push(value),
                    "-f" | "--find-links" => pip.find_links.push(value),
                    "--only-binary" if value == ":all:" => {}
                    "--only-binary" => {
                        return Err(refuse(
                            arg.position,
                            format!("`--only-binary {value}`: only `--only-binary :all:` is supported (wheels are all that is installed)"),
                        ));
                    }
                    _ => {
                        return Err(refuse(
                            arg.position,
                            format!("pip option `{name}` is not supported natively"),
                        ));
                    }
                }
                // `--no-compile` after `--compile` wins, as in pip.
                if name == "--no-compile" {
                    pip.compile = false;
                }
                Ok(())
            },
        )?;
        let Some(install) = subcommand else {
            return Err(refuse(
                program.position,
                format!("`{}` without `install` installs nothing", program.text),
            ));
        };
        if nothing {
            return Err(refuse(
                install.position,
                "`pip install` names no requirement and no `-r` file (pip would stop with an error)",
            ));
        }
        Ok(pip)
    }

    /// The `PIP_<OPTION>` variables of the environment, which pip reads as
    /// the defaults of its options (the command line comes after them).
    /// Those not named here (`PIP_NO_CACHE_DIR`, `PIP_ROOT_USER_ACTION`,
    /// `PIP_DISABLE_PIP_VERSION_CHECK`, ...) change nothing here.
    fn pip_env(&self, pip: &mut PipInstall, program: &Arg) -> Result<(), Unrecognized> {
        for name in PIP_ENV_REFUSED {
            if let Some(value) = self.var(name) {
                return Err(refuse(
                    program.position,
                    format!("the environment sets `{name}={value}`, which changes how pip installs in a way not modelled natively"),
                ));
            }
        }
        let flag = |name: &str| -> Result<bool, Unrecognized> {
            match self.var(name) {
                None => Ok(false),
                Some(value) => pip_bool(&value).ok_or_else(|| {
                    refuse(
                        program.position,
                        format!(
                            "the environment sets `{name}={value}`, which pip does not read as a boolean"
                        ),
                    )
                }),
            }
        };
        pip.upgrade = flag("PIP_UPGRADE")?;
        pip.no_deps = flag("PIP_NO_DEPS")?;
        pip.break_system_packages = flag("PIP_BREAK_SYSTEM_PACKAGES")?;
        pip.pre = flag("PIP_PRE")?;
        pip.no_index = flag("PIP_NO_INDEX")?;
        pip.compile = flag("PIP_COMPILE")? && !flag("PIP_NO_COMPILE")?;
        pip.index_url = self.var("PIP_INDEX_URL").filter(|v| !v.is_empty());
        let list = |name: &str| -> Vec<String> {
            self.var(name).map(|v| v.split_whitespace().map(str::to_owned).collect()).unwrap_or_default()
        };
        pip.extra_index_urls = list("PIP_EXTRA_INDEX_URL");
        pip.find_links = list("PIP_FIND_LINKS");
        for name in list("PIP_CONSTRAINT") {
            let at = Arg { text: name.clone(), glob: None, position: program.position };
            pip.constraint_files.push(self.file(&at, "the constraints file of `PIP_CONSTRAINT`")?);
        }
        Ok(())
    }
}

/// A requirement specifier operand of `pip install`, checked: a name,
/// extras, version specifiers, markers. Local paths, archives and URLs are
/// refused (not supported yet).
fn requirement(arg: &Arg) -> Result<String, Unrecognized> {
    let text = arg.text.as_str();
    let not_yet = |what: &str| refuse(arg.position, format!("`{text}` is {what}: not supported yet"));
    if text == "@" || text.contains(" @") || text.contains("://") || text.starts_with("git+") {
        return Err(not_yet("a direct URL requirement"));
    }
    let archive = [".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz"].iter().any(|ext| text.ends_with(ext));
    if text.starts_with(['.', '/', '~']) || text.contains('/') || archive {
        return Err(not_yet("a local path (a project directory or an archive)"));
    }
    if arg.glob.is_some() && text.contains(['*', '?']) {
        return Err(refuse(
            arg.position,
            format!("`{text}` is a glob, which the shell matches against files"),
        ));
    }
    let name_len = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(text.len());
    let name = &text[..name_len];
    let rest = text[name_len..].trim_start();
    let valid_name = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid_name || !(rest.is_empty() || rest.starts_with(['[', '(', '<', '>', '=', '!', '~', ';'])) {
        return Err(refuse(
            arg.position,
            format!("`{text}` is not a requirement specifier (`name`, `name[extra]==1.0`, `\"name<2\"`)"),
        ));
    }
    Ok(text.to_string())
}

/// apt's reading of a boolean configuration value.
fn apt_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" | "with" | "enable" => Some(true),
        "0" | "no" | "false" | "off" | "without" | "disable" => Some(false),
        _ => None,
    }
}

impl Cx<'_> {
    /// `apt-get ARGS` / `apt ARGS`.
    fn apt(&self, program: &Arg, args: &[Arg]) -> Result<InstallKind, Unrecognized> {
        let tool = basename(&program.text).to_string();
        let mut command: Option<&Arg> = None;
        let mut operands: Vec<&Arg> = Vec::new();
        let mut install = AptInstall::default();
        let mut purge: Option<&Arg> = None;
        walk(
            args,
            |name| matches!(name, "-o" | "--option" | "-c" | "--config-file" | "-t" | "--target-release"),
            |opt| {
                let (name, value, arg) = match opt {
                    Opt::Operand(arg) if command.is_none() => {
                        command = Some(arg);
                        return Ok(());
                    }
                    Opt::Operand(arg) => {
                        operands.push(arg);
                        return Ok(());
                    }
                    Opt::Flag { name, value, arg } => (name, value, arg),
                };
                match name.as_str() {
                    "-y" | "--yes" | "--assume-yes" | "-q" | "--quiet" | "--no-install-suggests" => {}
                    "--no-install-recommends" => install.no_install_recommends = true,
                    "--install-recommends" => install.no_install_recommends = false,
                    "--purge" => purge = Some(arg),
                    "-o" | "--option" => {
                        let value = value.map(|v| v.text).unwrap_or_default();
                        self.apt_option(arg, &value, &mut install)?;
                    }
                    _ => {
                        return Err(refuse(
                            arg.position,
                            format!("{tool} option `{name}` is not supported natively"),
                        ));
                    }
                }
                Ok(())
            },
        )?;
        let Some(command) = command else {
            return Err(refuse(
                program.position,
                format!("`{tool}` without a command does nothing to take natively"),
            ));
        };
        let what = command.text.as_str();
        let kind = match what {
            "update" => InstallKind::AptUpdate,
            "install" => {
                if operands.is_empty() {
                    return Err(refuse(command.position, format!("`{tool} install` names no package")));
                }
                for arg in operands.drain(..) {
                    install.packages.push(apt_package(arg)?);
                }
                InstallKind::AptInstall(install)
            }
            "clean" | "autoclean" | "auto-clean" | "autoremove" | "auto-remove" => InstallKind::AptClean,
            "upgrade" | "dist-upgrade" | "full-upgrade" => {
                return Err(refuse(
                    command.position,
                    format!("`{tool} {what}` upgrades the base image's packages to whatever the archive has that day, which is not supported: use a newer base image, or name the packages to `{tool} install`"),
                ));
            }
            "remove" | "purge" => {
                return Err(refuse(
                    command.position,
                    format!("`{tool} {what}` (removing packages) is not supported yet"),
                ));
            }
            _ => {
                return Err(refuse(
                    command.position,
                    format!("`{tool} {what}` is not taken natively (only update, install, clean, autoclean and autoremove are)"),
                ));
            }
        };
        if let Some(extra) = operands.first() {
            return Err(refuse(
                extra.position,
                format!("`{tool} {what}` takes no package names, found `{}`", extra.text),
            ));
        }
        if let Some(purge) = purge.filter(|_| !matches!(what, "autoremove" | "auto-remove")) {
            return Err(refuse(purge.position, format!("`--purge` is only taken with `{tool} autoremove`")));
        }
        Ok(kind)
    }

    /// `-o Name=value` of apt-get.
    fn apt_option(&self, arg: &Arg, value: &str, install: &mut AptInstall) -> Result<(), Unrecognized> {
        let Some((key, setting)) = value.split_once('=') else {
            return Err(refuse(arg.position, format!("`-o {value}` needs the form `Name=value`")));
        };
        let key = key.to_ascii_lowercase();
        let unsupported =
            || refuse(arg.position, format!("apt option `-o {value}` is not supported natively"));
        match key.as_str() {
            "apt::install-recommends" => {
                install.no_install_recommends = !apt_bool(setting).ok_or_else(unsupported)?;
            }
            "apt::install-suggests" if apt_bool(setting) == Some(false) => {}
            // How dpkg treats changed configuration files: none are, here.
            "dpkg::options::" | "dpkg::options" if setting.starts_with("--force-conf") => {}
            "apt::get::assume-yes"
            | "apt::get::yes"
            | "apt::quiet"
            | "quiet"
            | "dpkg::use-pty"
            | "apt::color" => {}
            // How files are fetched, never which.
            _ if key.starts_with("acquire::") => {}
            _ => return Err(unsupported()),
        }
        Ok(())
    }

    /// `rm ARGS`: the paths, absolute.
    fn rm(&self, program: &Arg, args: &[Arg]) -> Result<Vec<String>, Unrecognized> {
        let mut paths = Vec::new();
        walk(
            args,
            |_| false,
            |opt| match opt {
                Opt::Flag { name, .. }
                    if matches!(name.as_str(), "-r" | "-R" | "-f" | "--recursive" | "--force") =>
                {
                    Ok(())
                }
                Opt::Flag { name, arg, .. } => Err(refuse(
                    arg.position,
                    format!("`rm {name}` is not taken natively (only `rm -rf PATH...` is)"),
                )),
                Opt::Operand(arg) => {
                    paths.push(self.removed_path(arg)?);
                    Ok(())
                }
            },
        )?;
        if paths.is_empty() {
            return Err(refuse(program.position, "`rm` names nothing to remove"));
        }
        Ok(paths)
    }

    fn removed_path(&self, arg: &Arg) -> Result<String, Unrecognized> {
        let text = &arg.text;
        let path = match &arg.glob {
            Some(pattern) if pattern.contains('\\') => {
                return Err(refuse(
                    arg.position,
                    format!("`{text}` mixes quoted and unquoted glob characters"),
                ));
            }
            Some(pattern) if !pattern.starts_with('/') && self.workdir.contains(['*', '?', '[', '\\']) => {
                return Err(refuse(
                    arg.position,
                    format!(
                        "`{text}` is a glob relative to a working directory with glob characters in its name"
                    ),
                ));
            }
            Some(pattern) => pattern,
            None if text.contains(['*', '?', '[', '\\']) => {
                return Err(refuse(
                    arg.position,
                    format!("`{text}` has a quoted glob character or `\\`, which rm takes literally"),
                ));
            }
            None => text,
        };
        let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
        if path.is_empty() || last == "." || last == ".." {
            return Err(refuse(arg.position, format!("rm refuses to remove `{text}`")));
        }
        let path = crate::context::resolve(self.workdir, path);
        if path == "/" {
            return Err(refuse(arg.position, format!("rm refuses to remove `{text}`, the root directory")));
        }
        Ok(path)
    }
}

/// A package operand of `apt-get install`: `name` or `name=version`.
fn apt_package(arg: &Arg) -> Result<(String, Option<String>), Unrecognized> {
    let text = arg.text.as_str();
    let (name, version) = match text.split_once('=') {
        Some((name, version)) => (name, Some(version)),
        None => (text, None),
    };
    let refused = |why: &str| refuse(arg.position, format!("`{text}`: {why}"));
    if name.contains('/') {
        return Err(refused("choosing a release with `package/release` is not supported yet"));
    }
    if name.contains(':') {
        return Err(refused("a package of another architecture (`package:arch`) is not supported yet"));
    }
    if name.contains(['*', '?', '[', '^', '$', '~']) {
        return Err(refused(
            "apt would read this as a pattern over package names, which is not supported; name the packages",
        ));
    }
    if name.len() > 1 && name.ends_with('-') {
        return Err(refused("a trailing `-` asks apt to remove the package, which is not supported yet"));
    }
    let valid_name = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'));
    if !valid_name {
        return Err(refused("not a Debian package name (lowercase letters, digits, `+`, `-` and `.`)"));
    }
    if let Some(version) = version {
        let valid = !version.is_empty()
            && version.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~' | ':' | '-'));
        if !valid {
            return Err(refused("not a Debian version after `=`"));
        }
    }
    Ok((name.to_string(), version.map(str::to_string)))
}
