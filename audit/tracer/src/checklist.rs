//! Keeps `audit/CHECKLIST.md` true to the code. Each location in it is
//! written as
//!
//! ```text
//! `helper/src/process.rs:135` (anchor `pub fn sanitize()`)
//! ```
//!
//! The anchor is a piece of text that occurs exactly once in that file; the
//! line number is where it is. A check re-resolves every anchor and fails
//! when one is gone, ambiguous, or its recorded line is stale; an update
//! rewrites the line numbers (never the anchors).

use std::path::Path;

const ANCHOR_OPEN: &str = "` (anchor `";
const ANCHOR_CLOSE: &str = "`)";

/// One location of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// 1-based line of the checklist where it is written.
    pub checklist_line: usize,
    pub file: String,
    pub recorded: usize,
    pub anchor: String,
    /// Byte range of the recorded number in the checklist text.
    number_span: (usize, usize),
}

/// What resolving a location found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Ok,
    Moved { now: usize },
    Missing,
    Ambiguous { lines: Vec<usize> },
    NoFile(String),
}

/// Finds every `` `file:line` (anchor `text`) `` in the checklist.
pub fn locations(text: &str) -> Result<Vec<Location>, String> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(rel) = text[from..].find(ANCHOR_OPEN) {
        let at = from + rel;
        let checklist_line = text[..at].matches('\n').count() + 1;
        let loc_start = text[..at]
            .rfind('`')
            .map(|i| i + 1)
            .ok_or_else(|| format!("CHECKLIST.md:{checklist_line}: anchor without a location"))?;
        let location = &text[loc_start..at];
        let (file, number) = location.rsplit_once(':').ok_or_else(|| {
            format!("CHECKLIST.md:{checklist_line}: location `{location}` is not file:line")
        })?;
        let recorded = number.parse().map_err(|_| {
            format!("CHECKLIST.md:{checklist_line}: location `{location}` is not file:line")
        })?;
        let anchor_start = at + ANCHOR_OPEN.len();
        let anchor_len = text[anchor_start..]
            .find(ANCHOR_CLOSE)
            .ok_or_else(|| format!("CHECKLIST.md:{checklist_line}: anchor not closed with `)"))?;
        let anchor = &text[anchor_start..anchor_start + anchor_len];
        if anchor.is_empty() || anchor.contains('\n') {
            return Err(format!(
                "CHECKLIST.md:{checklist_line}: an anchor is one non-empty line"
            ));
        }
        found.push(Location {
            checklist_line,
            file: file.to_owned(),
            recorded,
            anchor: anchor.to_owned(),
            number_span: (at - number.len(), at),
        });
        from = anchor_start + anchor_len;
    }
    Ok(found)
}

/// Where the anchor is in `src`, by lines containing it.
pub fn resolve(src: &str, loc: &Location) -> Resolution {
    let total = src.matches(loc.anchor.as_str()).count();
    let lines: Vec<usize> = src
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(loc.anchor.as_str()))
        .map(|(i, _)| i + 1)
        .collect();
    match (total, lines.as_slice()) {
        (0, _) => Resolution::Missing,
        (1, [line]) if *line == loc.recorded => Resolution::Ok,
        (1, [line]) => Resolution::Moved { now: *line },
        _ => Resolution::Ambiguous { lines },
    }
}

/// Checks (or with `update`, rewrites) the checklist; returns the report
/// lines and whether everything resolved.
pub fn run(checklist: &Path, root: &Path, update: bool) -> Result<(Vec<String>, bool), String> {
    let text = std::fs::read_to_string(checklist)
        .map_err(|e| format!("cannot read {}: {e}", checklist.display()))?;
    let locs = locations(&text)?;
    if locs.is_empty() {
        return Err(format!(
            "{}: no anchored locations found",
            checklist.display()
        ));
    }
    let mut report = Vec::new();
    let mut ok = true;
    let mut rewrites: Vec<((usize, usize), usize)> = Vec::new();
    for loc in &locs {
        let path = root.join(&loc.file);
        let resolution = match std::fs::read_to_string(&path) {
            Ok(src) => resolve(&src, loc),
            Err(e) => Resolution::NoFile(e.to_string()),
        };
        let at = format!("CHECKLIST.md:{}", loc.checklist_line);
        match resolution {
            Resolution::Ok => {}
            Resolution::Moved { now } if update => {
                report.push(format!(
                    "updated {}:{} -> {}:{now} (anchor `{}`)",
                    loc.file, loc.recorded, loc.file, loc.anchor
                ));
                rewrites.push((loc.number_span, now));
            }
            Resolution::Moved { now } => {
                ok = false;
                report.push(format!(
                    "FAIL {at}: `{}:{}` is stale: anchor `{}` is now on line {now} (run audit/run --update-checklist)",
                    loc.file, loc.recorded, loc.anchor
                ));
            }
            Resolution::Missing => {
                ok = false;
                report.push(format!(
                    "FAIL {at}: anchor `{}` no longer occurs in {} (the checklist item needs review)",
                    loc.anchor, loc.file
                ));
            }
            Resolution::Ambiguous { lines } => {
                ok = false;
                report.push(format!(
                    "FAIL {at}: anchor `{}` occurs more than once in {} (lines {lines:?}); make it unique",
                    loc.anchor, loc.file
                ));
            }
            Resolution::NoFile(e) => {
                ok = false;
                report.push(format!("FAIL {at}: cannot read {}: {e}", loc.file));
            }
        }
    }
    if !rewrites.is_empty() {
        let mut new = text.clone();
        // Back to front, so earlier spans stay valid.
        rewrites.sort_by_key(|(span, _)| std::cmp::Reverse(span.0));
        for ((a, b), now) in rewrites {
            new.replace_range(a..b, &now.to_string());
        }
        std::fs::write(checklist, new)
            .map_err(|e| format!("cannot write {}: {e}", checklist.display()))?;
    }
    report.push(format!(
        "{} anchored locations in {}",
        locs.len(),
        checklist.display()
    ));
    Ok((report, ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "fn a() {}\n\npub fn sanitize() {\n}\nfn twice() {} fn twice() {}\n";

    fn one(text: &str) -> Location {
        let mut l = locations(text).unwrap();
        assert_eq!(l.len(), 1);
        l.remove(0)
    }

    #[test]
    fn parses_locations() {
        let l =
            one("1. **Sanitize** `helper/src/process.rs:3` (anchor `pub fn sanitize()`): ask.\n");
        assert_eq!(l.file, "helper/src/process.rs");
        assert_eq!(l.recorded, 3);
        assert_eq!(l.anchor, "pub fn sanitize()");
        assert_eq!(l.checklist_line, 1);
    }

    #[test]
    fn resolves_and_detects_stale_missing_and_ambiguous() {
        assert_eq!(
            resolve(SRC, &one("`f.rs:3` (anchor `pub fn sanitize()`)")),
            Resolution::Ok
        );
        assert_eq!(
            resolve(SRC, &one("`f.rs:9` (anchor `pub fn sanitize()`)")),
            Resolution::Moved { now: 3 }
        );
        assert_eq!(
            resolve(SRC, &one("`f.rs:1` (anchor `fn gone()`)")),
            Resolution::Missing
        );
        assert_eq!(
            resolve(SRC, &one("`f.rs:5` (anchor `fn twice()`)")),
            Resolution::Ambiguous { lines: vec![5] }
        );
    }

    #[test]
    fn update_rewrites_only_numbers() {
        let dir = std::env::temp_dir().join(format!("audit-checklist-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/f.rs"), SRC).unwrap();
        let list = dir.join("CHECKLIST.md");
        std::fs::write(
            &list,
            "a `src/f.rs:1` (anchor `fn a()`)\nb `src/f.rs:40` (anchor `pub fn sanitize()`) end\n",
        )
        .unwrap();
        let (_, ok) = run(&list, &dir, false).unwrap();
        assert!(!ok);
        let (_, ok) = run(&list, &dir, true).unwrap();
        assert!(ok);
        assert_eq!(
            std::fs::read_to_string(&list).unwrap(),
            "a `src/f.rs:1` (anchor `fn a()`)\nb `src/f.rs:3` (anchor `pub fn sanitize()`) end\n"
        );
        let (_, ok) = run(&list, &dir, false).unwrap();
        assert!(ok);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
