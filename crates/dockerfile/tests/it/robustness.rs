//! Nasty inputs: every layer (lexer, typed instructions, substitution of
//! every word) must return, not panic, whatever it is given.

use forge_dockerfile::{expand_word, parse, parse_instructions, split_words, Keyword};

fn nasty_inputs() -> Vec<String> {
    let mut inputs: Vec<String> = [
        "",
        "\\",
        "\n\n\\\n",
        "`",
        "# escape=`\n`",
        "# escape=`\nRUN a `",
        "FROM",
        "COPY [",
        "COPY [\"a\", \"b\"",
        "COPY [\"a\\",
        "CMD [\"a\", \"\\ud800\"]",
        "CMD [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        "SHELL [",
        "VOLUME [\"",
        "ENV ${",
        "ARG ${",
        "LABEL a=${",
        "EXPOSE ${",
        "COPY --chmod= a b",
        "COPY --= a b",
        "COPY -- --",
        "COPY --",
        "RUN --",
        "FROM --platform",
        "ONBUILD",
        "ONBUILD \\",
        "FROM \u{0}\u{7f}\u{fffd}\u{10ffff} AS \u{301}",
        "COPY é\u{301} \u{1F600}/ü",
        "ENV é=\u{fffd} ü \u{200b}",
        "EXPOSE ８０ 80-",
        "STOPSIGNAL SIGRTMIN+",
        "STOPSIGNAL 99999999999999999999",
        "COPY a\r\n b\r",
        "WORKDIR \t\u{a0}\u{3000}x",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    inputs.push(format!("RUN {}", "x".repeat(200_000)));
    inputs.push(format!("COPY {} /d", "${A:-".repeat(10_000)));
    inputs.push(format!("ENV A={}", "\\\n".repeat(1_000)));
    inputs.push("COPY a \\\n".repeat(1_000));
    inputs
}

#[test]
fn no_panics_on_nasty_input() {
    for input in nasty_inputs() {
        let file = parse(&input);
        let (instrs, _errors) = parse_instructions(&file);
        assert!(instrs.len() <= file.instructions.len());
        for ins in &file.instructions {
            for word in split_words(&ins.args, file.escape) {
                let _ = expand_word(&word.raw, file.escape, &|_| Some("v".into()));
                let _ = expand_word(&word.raw, file.escape, &|_| None);
                let _ = ins.position_of(word.start + word.raw.len() + 10);
            }
            let _ = expand_word(&ins.args, file.escape, &|_| None);
        }
        for instr in &instrs {
            assert!(Keyword::ALL.contains(&instr.node.keyword()));
        }
    }
}

#[test]
fn no_panics_on_nasty_words() {
    let words = [
        "",
        "$",
        "${",
        "${}",
        "${:",
        "${A",
        "${A:",
        "${A:-",
        "${A:-${",
        "${A#",
        "${A%%",
        "${A/",
        "${A#\\",
        "'",
        "\"",
        "\"\\",
        "\\",
        "${A:-'",
        "${A:-\"",
        "$\u{301}",
        "${\u{1F600}}",
        "${A#\u{fffd}*}",
    ];
    for word in words {
        for escape in ['\\', '`'] {
            let _ = expand_word(word, escape, &|_| Some("välue\n".into()));
            let _ = expand_word(word, escape, &|_| Some(String::new()));
            let _ = expand_word(word, escape, &|_| None);
        }
    }
}
