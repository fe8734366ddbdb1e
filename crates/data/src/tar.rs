//! Tar archives listed in place, as WebDataset shards are read: each member's name, offset and
//! size from its 512-byte header, nothing extracted, nothing but the headers read. POSIX ustar
//! (name with its `prefix`), GNU long names (`L` entries) and pax extended headers (`path`,
//! `size`) are understood, as Python's `tarfile` (which webdataset's `TarWriter` uses) writes them.
//!
//! Refused, with the archive and the member named: a header whose checksum does not match, a
//! member that runs past the end of the file (a truncated shard), an absolute name or one with a
//! `..` component, a name that is not UTF-8, links and device files, and compressed archives
//! (their members cannot be reached in place; decompress the shards first).
use darkmagic_base::error::{Error, Result};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const BLOCK: u64 = 512;
/// The largest GNU long name or pax header read (the names are kept in memory).
const MAX_EXTENDED_BYTES: u64 = 1 << 16;

/// One regular file of an archive.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub name: String,
    /// Where its bytes start in the archive.
    pub offset: u64,
    pub size: u64,
}

/// The regular files of the tar archive at `path`, in archive order (directories skipped).
pub fn members(path: &Path) -> Result<Vec<Member>> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut magic = [0u8; 3];
    if file.read(&mut magic).map_err(|e| Error::io(path, e))? >= 2 && (magic[..2] == [0x1f, 0x8b] || magic == *b"BZh") {
        return Err(Error::data(
            path,
            "is a compressed archive; expected a plain tar (darkmagic reads members in place: decompress the shards, e.g. `gunzip`)",
        ));
    }
    let mut out = Vec::new();
    let (mut pos, mut long_name, mut pax) = (0u64, None, Pax::default());
    loop {
        let header = read_block(&mut file, path, pos, len)?;
        let at = |what: String| Error::data(path, format!("header at byte {pos}: {what}"));
        if header.iter().all(|&b| b == 0) {
            if pax.path.is_some() || pax.size.is_some() || long_name.is_some() {
                return Err(at(
                    "end of archive after an extended header, before its member: the shard is truncated".into(),
                ));
            }
            break;
        }
        check_sum(&header).map_err(at)?;
        let size = pax
            .size
            .take()
            .map_or_else(|| number(&header[124..136]), Ok)
            .map_err(at)?;
        let offset = pos + BLOCK;
        if offset.checked_add(size).is_none_or(|end| end > len) {
            return Err(at(format!(
                "member of {size} bytes runs past the end of the archive ({len} bytes); the shard is truncated"
            )));
        }
        match header[156] {
            b'L' => long_name = Some(extended(&mut file, path, offset, size)?),
            b'x' => pax = Pax::parse(&extended(&mut file, path, offset, size)?).map_err(at)?,
            b'g' | b'5' => {}
            b'0' | 0 | b'7' => {
                let name = pax
                    .path
                    .take()
                    .or(long_name.take())
                    .map_or_else(|| header_name(&header), Ok);
                let name = name.and_then(checked_name).map_err(at)?;
                out.push(Member { name, offset, size });
            }
            t => {
                let name = String::from_utf8_lossy(&header_name(&header).unwrap_or_default()).into_owned();
                return Err(at(format!(
                    "member {name:?} is a {}; expected regular files only",
                    kind(t)
                )));
            }
        }
        pos = offset + size.div_ceil(BLOCK) * BLOCK;
    }
    Ok(out)
}

/// The 512-byte block at `pos`. An archive must end with tar's end-of-archive zero block: one
/// that stops before it, even at a member's boundary, was cut short (or is still being written),
/// and reading it to its end would silently lose the samples after the cut.
fn read_block(file: &mut std::fs::File, path: &Path, pos: u64, len: u64) -> Result<[u8; 512]> {
    if pos + BLOCK > len {
        let what = match pos >= len {
            true => format!("ends at byte {len} without tar's end-of-archive block"),
            false => format!("ends at byte {len}, inside the header at byte {pos}"),
        };
        return Err(Error::data(
            path,
            format!("{what}: the shard is truncated or still being written"),
        ));
    }
    let mut block = [0u8; 512];
    file.seek(SeekFrom::Start(pos)).map_err(|e| Error::io(path, e))?;
    file.read_exact(&mut block).map_err(|e| Error::io(path, e))?;
    Ok(block)
}

/// The data of a GNU long-name or pax member, bounded.
fn extended(file: &mut std::fs::File, path: &Path, offset: u64, size: u64) -> Result<Vec<u8>> {
    if size > MAX_EXTENDED_BYTES {
        return Err(Error::data(
            path,
            format!("extended header at byte {offset} holds {size} bytes; expected at most {MAX_EXTENDED_BYTES}"),
        ));
    }
    let mut data = vec![0u8; size as usize];
    file.seek(SeekFrom::Start(offset)).map_err(|e| Error::io(path, e))?;
    file.read_exact(&mut data).map_err(|e| Error::io(path, e))?;
    Ok(data)
}

/// The header checksum: the sum of its bytes with the checksum field read as spaces (POSIX;
/// `tarfile` also accepts the signed sum some old tars wrote).
fn check_sum(h: &[u8; 512]) -> std::result::Result<(), String> {
    let field = |i: usize| if (148..156).contains(&i) { b' ' } else { h[i] };
    let unsigned: u64 = (0..512).map(|i| field(i) as u64).sum();
    let signed: i64 = (0..512).map(|i| field(i) as i8 as i64).sum();
    let stored = number(&h[148..156])?;
    if stored == unsigned || stored as i64 == signed {
        Ok(())
    } else {
        Err(format!(
            "checksum {stored} but the header sums to {unsigned}: not a tar header (corrupt or not a tar file)"
        ))
    }
}

/// A numeric header field: octal digits (space or NUL padded), or GNU's base-256 form (high bit set).
fn number(field: &[u8]) -> std::result::Result<u64, String> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = (field[0] & 0x7f) as u64;
        for &b in &field[1..] {
            v = v.checked_mul(256).ok_or("base-256 number too large")? | b as u64;
        }
        return Ok(v);
    }
    let text: Vec<u8> = field.iter().copied().filter(|&b| b != 0 && b != b' ').collect();
    if text.is_empty() {
        return Ok(0);
    }
    let s = std::str::from_utf8(&text).map_err(|_| "numeric field is not octal digits".to_string())?;
    u64::from_str_radix(s, 8).map_err(|_| format!("numeric field {s:?} is not octal digits"))
}

/// The name of a ustar header: `prefix/name` when the prefix is set.
fn header_name(h: &[u8; 512]) -> std::result::Result<Vec<u8>, String> {
    let field = |r: std::ops::Range<usize>| {
        let f = &h[r];
        f[..f.iter().position(|&b| b == 0).unwrap_or(f.len())].to_vec()
    };
    let name = field(0..100);
    let prefix = if &h[257..262] == b"ustar" {
        field(345..500)
    } else {
        Vec::new()
    };
    Ok(if prefix.is_empty() {
        name
    } else {
        [prefix, b"/".to_vec(), name].concat()
    })
}

/// A member name as UTF-8, relative and without `..` (names become sample keys).
fn checked_name(raw: Vec<u8>) -> std::result::Result<String, String> {
    let raw = raw.strip_suffix(b"\0").map(<[u8]>::to_vec).unwrap_or(raw);
    let name = String::from_utf8(raw)
        .map_err(|e| format!("member name {:?} is not UTF-8", String::from_utf8_lossy(e.as_bytes())))?;
    if name.is_empty() || name.starts_with('/') || name.split('/').any(|c| c == "..") {
        return Err(format!("member name {name:?}; expected a relative name without `..`"));
    }
    Ok(name)
}

/// What a pax extended header sets for the next member.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    size: Option<u64>,
}

impl Pax {
    /// Parses pax records, each `LEN key=value\n` with LEN the record's own length in bytes.
    fn parse(mut data: &[u8]) -> std::result::Result<Pax, String> {
        let mut pax = Pax::default();
        while !data.is_empty() && data[0] != 0 {
            let space = data
                .iter()
                .position(|&b| b == b' ')
                .ok_or("pax record without a length")?;
            let n: usize = std::str::from_utf8(&data[..space])
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|&n| n > space + 1 && n <= data.len())
                .ok_or("pax record length out of range")?;
            let record = &data[space + 1..n - 1];
            let eq = record.iter().position(|&b| b == b'=').ok_or("pax record without `=`")?;
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            match key {
                b"path" => pax.path = Some(value.to_vec()),
                b"size" => {
                    let v = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok());
                    pax.size = Some(v.ok_or("pax size is not a number")?);
                }
                _ => {}
            }
            data = &data[n..];
        }
        Ok(pax)
    }
}

/// What a tar type flag that is not a regular file or folder stands for.
fn kind(t: u8) -> &'static str {
    match t {
        b'1' => "hard link",
        b'2' => "symbolic link",
        b'3' | b'4' => "device file",
        b'6' => "FIFO",
        _ => "member of an unknown type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header for `name` of `size` bytes with type `t` and a correct checksum.
    fn header(name: &str, size: u64, t: u8) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = t;
        h[257..263].copy_from_slice(b"ustar\0");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| b as u64).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    fn padded(data: &[u8]) -> Vec<u8> {
        let mut v = data.to_vec();
        v.resize(data.len().div_ceil(512) * 512, 0);
        v
    }

    fn archive(name: &str, parts: &[Vec<u8>]) -> std::path::PathBuf {
        let path = darkmagic_base::testutil::tempdir(name).join("a.tar");
        let mut bytes = parts.concat();
        bytes.extend([0u8; 1024]);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn members_are_listed_with_offsets_long_names_and_pax_paths() {
        let long = format!("{}/k.cls", "d".repeat(120));
        let pax = b"20 path=pax/key.png\n";
        let path = archive(
            "tar-members",
            &[
                header("dir/", 0, b'5'),
                header("k0.png", 3, b'0'),
                padded(b"abc"),
                header("././@LongLink", long.len() as u64 + 1, b'L'),
                padded(format!("{long}\0").as_bytes()),
                header("ignored", 1, b'0'),
                padded(b"7"),
                header("PaxHeaders/x", pax.len() as u64, b'x'),
                padded(pax),
                header("short", 2, b'0'),
                padded(b"hi"),
            ],
        );
        let m = members(&path).unwrap();
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["k0.png", long.as_str(), "pax/key.png"]);
        assert_eq!((m[0].offset, m[0].size), (1024, 3));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[m[2].offset as usize..][..2], b"hi");
    }

    #[test]
    fn hostile_archives_are_refused_naming_the_header() {
        let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
            (
                "absolute",
                vec![header("/etc/passwd", 1, b'0'), padded(b"x")],
                "without `..`",
            ),
            (
                "dotdot",
                vec![header("a/../../b.png", 1, b'0'), padded(b"x")],
                "without `..`",
            ),
            ("symlink", vec![header("l.png", 0, b'2')], "symbolic link"),
            ("fifo", vec![header("f.png", 0, b'6')], "FIFO"),
            ("truncated", vec![header("big.png", 1 << 32, b'0')], "runs past the end"),
        ];
        for (name, parts, expected) in cases {
            let e = members(&archive(name, &parts)).unwrap_err().to_string();
            assert!(
                e.contains("a.tar") && e.contains("header at byte 0") && e.contains(expected),
                "{name}: {e}"
            );
        }
        let mut bad = header("k.png", 1, b'0');
        bad[0] = b'j';
        let e = members(&archive("checksum", &[bad, padded(b"x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("checksum"), "{e}");
        // Cut at a member's boundary, without the end-of-archive block: truncated, not short.
        let cut = archive("cut", &[header("k.png", 1, b'0'), padded(b"x")]);
        let bytes = std::fs::read(&cut).unwrap();
        std::fs::write(&cut, &bytes[..1024]).unwrap();
        let e = members(&cut).unwrap_err().to_string();
        assert!(
            e.contains("ends at byte 1024 without tar's end-of-archive block"),
            "{e}"
        );
        let gz = darkmagic_base::testutil::tempdir("tar-gz").join("a.tar.gz");
        std::fs::write(&gz, [0x1f, 0x8b, 8, 0]).unwrap();
        assert!(members(&gz).unwrap_err().to_string().contains("compressed archive"));
    }

    #[test]
    fn numbers_are_octal_or_base_256() {
        assert_eq!(number(b"0000000017 \0"), Ok(15));
        assert_eq!(number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]), Ok(256));
        assert!(number(b"12a\0").is_err());
    }
}
