//! Tar archives and `.deb` files made in tests, as packages and hostile
//! archives would have them.

/// A tar archive of `entries`: (path, `None` for a directory, a symlink
/// target prefixed with `->`, or a file's content). Files get mode 0755,
/// directories 0755; a path with `..` is written as a hostile archive
/// would (the tar crate refuses such names).
pub fn tar(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        if path.contains("..") {
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(1);
            header.set_cksum();
            builder.append(&header, &b"x"[..]).expect("writing to memory");
            continue;
        }
        match content {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, path, std::io::empty()).expect("writing to memory");
            }
            Some(link) if link.starts_with("->") => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, path, &link[2..]).expect("writing to memory");
            }
            Some(text) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o755);
                header.set_size(text.len() as u64);
                builder.append_data(&mut header, path, text.as_bytes()).expect("writing to memory");
            }
        }
    }
    builder.into_inner().expect("writing to memory")
}

/// An `ar` archive of `members`, as `.deb` files are.
pub fn ar(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        out.extend_from_slice(
            format!("{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", 0, 0, 0, "100644", data.len()).as_bytes(),
        );
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// A `.deb` with uncompressed members: the control archive of `control`
/// (`./control`, `./md5sums`, ...) and the data archive of `data`, both
/// as [`tar`] takes them.
pub fn deb(control: &[(&str, Option<&str>)], data: &[(&str, Option<&str>)]) -> Vec<u8> {
    ar(&[("debian-binary", b"2.0\n".to_vec()), ("control.tar", tar(control)), ("data.tar", tar(data))])
}
