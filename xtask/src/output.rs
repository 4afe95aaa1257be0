//! Output helpers every command may use: aligned and Markdown tables, sizes, the root
//! as shown in messages, and errors with their causes on one line.

use std::path::{Path, PathBuf};

use forge_builder::Status;

/// Prints left-aligned columns with a header row on stdout.
pub(crate) fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let header = header.map(String::from);
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().chain(std::iter::once(&header)).map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
}

/// Prints a Markdown table on stdout (`|` in cells escaped).
pub(crate) fn markdown_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let cells = |row: &[String]| {
        let escaped: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        format!("| {} |", escaped.join(" | "))
    };
    println!("{}", cells(&header.map(String::from)));
    println!("|{}", "---|".repeat(N));
    for row in rows {
        println!("{}", cells(row));
    }
}

/// `1536` → `1.5 KiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// An error and its causes, joined by `: ` (what `{:#}` prints for an
/// `anyhow::Error`, and `main` for a failed command).
pub(crate) use forge_input::error_chain as chain;

/// How to show `root` in messages: relative to the working directory when
/// it is inside it, as given otherwise.
pub(crate) fn display_root(root: &Path) -> PathBuf {
    let (Ok(cwd), Ok(abs)) = (std::env::current_dir().and_then(|d| d.canonicalize()), root.canonicalize())
    else {
        return root.to_path_buf();
    };
    match abs.strip_prefix(&cwd) {
        Ok(rel) => rel.to_path_buf(),
        Err(_) => root.to_path_buf(),
    }
}

/// `built` or `cached`, as progress, tables and JSON say it.
pub(crate) fn status_word(status: Status) -> &'static str {
    match status {
        Status::Built => "built",
        Status::Cached => "cached",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(50 * 1024 * 1024), "50.0 MiB");
    }

    #[test]
    fn a_chain_reads_as_anyhow_prints_it() {
        let io = std::io::Error::other("disk full");
        let error = anyhow::Error::new(io).context("writing x").context("building y");
        assert_eq!(chain(error.as_ref()), format!("{error:#}"));
        assert_eq!(chain(error.as_ref()), "building y: writing x: disk full");
    }
}
