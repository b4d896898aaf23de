//! Resuming an interrupted export: which parts of its multipart upload can stay.
//!
//! An export records every part the server has stored, as it learns of it, in a journal
//! next to its pending-upload record: the part's number and size, its ETag, and the
//! SHA-256 of the whole stream *up to the end of that part* (a clone of the running
//! hash, so no byte is hashed twice). The next run sends the same snapshot again with
//! the same settings (`zfs send` and zstd then give the same bytes), hashes it the same
//! way, and skips every recorded part whose prefix hash matches: equal prefix hashes
//! mean every byte up to that part's end is the same, so the stored part is exactly the
//! one the new stream has there. A skipped part is neither held in memory nor sent,
//! and a `--bwlimit` does not pace it. The first part whose hash differs stops the run
//! ([`ResumeMismatch`]): the export starts over and says why.
//!
//! Encrypted streams are never resumed: age encrypts each stream with a fresh random key.

use std::collections::BTreeMap;

/// A part the server stored, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub number: u32,
    pub size: u64,
    /// Lower-case hex SHA-256 of the stream from its first byte to this part's last.
    pub prefix_sha256: String,
    pub etag: Option<String>,
}

impl StoredPart {
    /// One journal line: `NUMBER SIZE PREFIX_SHA256 ETAG` (`-` for no ETag).
    pub fn to_line(&self) -> String {
        let etag = self.etag.as_deref().filter(|e| !e.is_empty() && !e.contains(char::is_whitespace)).unwrap_or("-");
        format!("{} {} {} {etag}\n", self.number, self.size, self.prefix_sha256)
    }

    fn from_line(line: &str) -> Option<Self> {
        let mut fields = line.split(' ');
        let number = fields.next()?.parse().ok().filter(|n| *n > 0)?;
        let size = fields.next()?.parse().ok()?;
        let prefix_sha256 = fields.next()?.to_string();
        if prefix_sha256.len() != 64 || !prefix_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let etag = match fields.next()? {
            "-" => None,
            etag => Some(etag.to_string()),
        };
        fields.next().is_none().then_some(Self { number, size, prefix_sha256, etag })
    }
}

/// The parts a journal records. A line cut short by a kill (the last one) or otherwise
/// unreadable is ignored: that part is simply sent again.
pub fn parse_journal(text: &str) -> BTreeMap<u32, StoredPart> {
    text.lines().filter_map(StoredPart::from_line).map(|part| (part.number, part)).collect()
}

/// A part as the server lists it (ListParts): its size, and its ETag where the server
/// gives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPart {
    pub size: u64,
    pub etag: Option<String>,
}

/// The recorded parts the server still has, with the same size (and the same ETag,
/// where both know one): the parts a resumed upload may skip. Pure.
pub fn usable_parts(
    journal: &BTreeMap<u32, StoredPart>,
    listed: &BTreeMap<u32, ListedPart>,
) -> BTreeMap<u32, StoredPart> {
    let same_etag = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => a.trim_matches('"') == b.trim_matches('"'),
        _ => true,
    };
    journal
        .iter()
        .filter(|(number, part)| {
            listed
                .get(number)
                .is_some_and(|on_server| on_server.size == part.size && same_etag(&on_server.etag, &part.etag))
        })
        .map(|(number, part)| (*number, part.clone()))
        .collect()
}

/// The re-sent stream differs from the one the interrupted run uploaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "part {part} of the re-sent stream differs from the part the interrupted export uploaded ({problem}): the stream is not the same, so the export starts over"
)]
pub struct ResumeMismatch {
    pub part: u32,
    pub problem: String,
}

impl ResumeMismatch {
    /// The mismatch inside an error chain (it travels through zstd as an `io::Error`).
    pub fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a ResumeMismatch> {
        let mut cause = Some(err);
        while let Some(error) = cause {
            let inner =
                error.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()?.downcast_ref::<ResumeMismatch>());
            if let Some(mismatch) = error.downcast_ref::<ResumeMismatch>().or(inner) {
                return Some(mismatch);
            }
            cause = error.source();
        }
        None
    }
}

/// Check a re-sent part against the stored one (pure).
pub fn check_part(stored: &StoredPart, size: u64, prefix_sha256: &str) -> Result<(), ResumeMismatch> {
    if stored.size != size {
        return Err(ResumeMismatch {
            part: stored.number,
            problem: format!("{size} bytes, the stored part has {}", stored.size),
        });
    }
    if stored.prefix_sha256 != prefix_sha256 {
        return Err(ResumeMismatch {
            part: stored.number,
            problem: format!(
                "the stream up to its end hashes to {}, the stored one to {}",
                &prefix_sha256[..12.min(prefix_sha256.len())],
                &stored.prefix_sha256[..12.min(stored.prefix_sha256.len())]
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn part(number: u32, size: u64, etag: Option<&str>) -> StoredPart {
        StoredPart { number, size, prefix_sha256: format!("{number:064x}"), etag: etag.map(str::to_string) }
    }

    #[test]
    fn the_journal_round_trips_and_a_cut_line_is_ignored() {
        let parts = [part(1, 8 << 20, Some("\"abc\"")), part(2, 8 << 20, None), part(3, 1234, Some("x"))];
        let mut text: String = parts.iter().map(StoredPart::to_line).collect();
        assert_eq!(parse_journal(&text).into_values().collect::<Vec<_>>(), parts);
        // A kill while appending leaves half a line: that part is sent again.
        text.push_str("4 8388608 00ab");
        assert_eq!(parse_journal(&text).len(), 3);
        for bad in ["0 1 x -", "1 2", "a 1 b -", &format!("1 2 {} - extra", "0".repeat(64))] {
            assert!(parse_journal(bad).is_empty(), "{bad}");
        }
        // An ETag the server returned with a space cannot be written on one line: none.
        assert_eq!(part(5, 1, Some("a b")).to_line(), format!("5 1 {:064x} -\n", 5));
    }

    #[test]
    fn only_parts_the_server_still_has_with_the_same_size_and_etag_are_skipped() {
        let journal = parse_journal(
            &[part(1, 100, Some("\"e1\"")), part(2, 100, Some("e2")), part(3, 100, None), part(4, 100, Some("e4"))]
                .iter()
                .map(StoredPart::to_line)
                .collect::<String>(),
        );
        let listed: BTreeMap<u32, ListedPart> = [
            (1, ListedPart { size: 100, etag: Some("e1".into()) }), // quotes differ only
            (2, ListedPart { size: 100, etag: Some("other".into()) }),
            (3, ListedPart { size: 100, etag: Some("e3".into()) }), // no recorded ETag: size decides
            (5, ListedPart { size: 100, etag: None }),              // not in the journal
        ]
        .into();
        assert_eq!(usable_parts(&journal, &listed).keys().copied().collect::<Vec<_>>(), [1, 3]);
        let cut: BTreeMap<u32, ListedPart> = [(1, ListedPart { size: 99, etag: None })].into();
        assert!(usable_parts(&journal, &cut).is_empty(), "a part cut short on the server is sent again");
    }

    #[test]
    fn a_part_that_differs_is_named() {
        let stored = part(7, 100, None);
        assert_eq!(check_part(&stored, 100, &stored.prefix_sha256), Ok(()));
        let err = check_part(&stored, 99, &stored.prefix_sha256).unwrap_err();
        assert!(err.to_string().contains("part 7") && err.to_string().contains("starts over"), "{err}");
        let err = check_part(&stored, 100, &"f".repeat(64)).unwrap_err();
        assert!(err.problem.contains("hashes to ffffffffffff"), "{err}");
        let wrapped = anyhow::Error::new(std::io::Error::other(err.clone())).context("uploading");
        assert_eq!(ResumeMismatch::find(&*wrapped), Some(&err));
    }
}
