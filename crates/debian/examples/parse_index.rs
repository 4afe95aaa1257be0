//! Times parsing a (decompressed) `Packages` index: deb822 paragraphs, then
//! the resolver's index. Usage: `cargo run --release -p forge-debian
//! --example parse_index -- PATH [ARCH]`.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: parse_index PATH [ARCH]")?;
    let arch = args.next().unwrap_or_else(|| "amd64".to_owned());
    let text = std::fs::read_to_string(&path)?;
    let start = Instant::now();
    let paragraphs = forge_debian::deb822::parse(&text, &path)?;
    let parsed = start.elapsed();
    let start = Instant::now();
    let index = forge_debian::resolve::Index::parse(&text, &path, &arch)?;
    let indexed = start.elapsed();
    println!(
        "{} bytes: {} paragraphs in {parsed:?}; index of {} {arch}/all packages in {indexed:?}",
        text.len(),
        paragraphs.len(),
        index.packages().len()
    );
    Ok(())
}
