//! The helper's size as a reviewer has to read it: lines that hold code,
//! not counting blank lines, comments (doc comments included) and
//! `#[cfg(test)]` modules; and every `unsafe` keyword, tests included.

use crate::lex::{Lexed, Tok, lex};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileCount {
    pub path: PathBuf,
    /// Lines with code outside `#[cfg(test)]` modules: what the budget counts.
    pub code: usize,
    /// Lines with only comments (doc comments included).
    pub comment: usize,
    pub blank: usize,
    /// Lines of `#[cfg(test)]` modules, whatever they hold.
    pub test: usize,
    /// `unsafe` keywords anywhere in code, tests included.
    pub unsafe_count: usize,
    /// Lines where an `unsafe` keyword is.
    pub unsafe_lines: Vec<usize>,
}

/// Modules declared `#[cfg(test)] mod name;` point at files to skip.
#[derive(Debug, Default)]
struct TestModules {
    /// 1-based line ranges of inline test modules, attribute included.
    inline: Vec<(usize, usize)>,
    /// Names of out-of-line test modules.
    files: Vec<String>,
}

fn ident(lexed: &Lexed, i: usize) -> Option<&str> {
    match &lexed.tokens.get(i)?.tok {
        Tok::Ident(s) => Some(s),
        _ => None,
    }
}

fn punct(lexed: &Lexed, i: usize, c: char) -> bool {
    lexed.tokens.get(i).is_some_and(|t| t.tok == Tok::Punct(c))
}

/// Index after the token that closes the bracket opened at `open`.
fn skip_group(lexed: &Lexed, open: usize, o: char, c: char) -> Option<usize> {
    let mut depth = 0usize;
    for i in open..lexed.tokens.len() {
        if punct(lexed, i, o) {
            depth += 1;
        } else if punct(lexed, i, c) {
            depth -= 1;
            if depth == 0 {
                return Some(i + 1);
            }
        }
    }
    None
}

fn is_cfg_test(lexed: &Lexed, i: usize) -> bool {
    punct(lexed, i, '#')
        && punct(lexed, i + 1, '[')
        && ident(lexed, i + 2) == Some("cfg")
        && punct(lexed, i + 3, '(')
        && ident(lexed, i + 4) == Some("test")
        && punct(lexed, i + 5, ')')
        && punct(lexed, i + 6, ']')
}

fn test_modules(lexed: &Lexed) -> TestModules {
    let mut found = TestModules::default();
    let mut i = 0;
    while i < lexed.tokens.len() {
        if !is_cfg_test(lexed, i) {
            i += 1;
            continue;
        }
        let start_line = lexed.tokens[i].line;
        let mut j = i + 7;
        // Further attributes, then an optional visibility.
        while punct(lexed, j, '#') && punct(lexed, j + 1, '[') {
            j = skip_group(lexed, j + 1, '[', ']').unwrap_or(lexed.tokens.len());
        }
        if ident(lexed, j) == Some("pub") {
            j += 1;
            if punct(lexed, j, '(') {
                j = skip_group(lexed, j, '(', ')').unwrap_or(lexed.tokens.len());
            }
        }
        if ident(lexed, j) == Some("mod")
            && let Some(name) = ident(lexed, j + 1)
        {
            if punct(lexed, j + 2, '{') {
                if let Some(end) = skip_group(lexed, j + 2, '{', '}') {
                    found.inline.push((start_line, lexed.tokens[end - 1].line));
                    i = end;
                    continue;
                }
            } else if punct(lexed, j + 2, ';') {
                found.files.push(name.to_owned());
            }
        }
        i += 1;
    }
    found
}

pub fn count_source(path: &Path, src: &str) -> (FileCount, Vec<String>) {
    let lexed = lex(src);
    let tests = test_modules(&lexed);
    let in_test = |line: usize| tests.inline.iter().any(|&(a, b)| a <= line && line <= b);
    let mut count = FileCount {
        path: path.to_owned(),
        ..FileCount::default()
    };
    for (idx, kind) in lexed.lines.iter().enumerate() {
        let line = idx + 1;
        if in_test(line) {
            count.test += 1;
        } else if kind.code {
            count.code += 1;
        } else if kind.comment {
            count.comment += 1;
        } else {
            count.blank += 1;
        }
    }
    for token in &lexed.tokens {
        if token.tok == Tok::Ident("unsafe".to_owned()) {
            count.unsafe_count += 1;
            count.unsafe_lines.push(token.line);
        }
    }
    (count, tests.files)
}

/// Counts every `.rs` file under `dir`, skipping out-of-line test modules.
pub fn count_dir(dir: &Path) -> Result<Vec<FileCount>, String> {
    let mut files = BTreeSet::new();
    collect(dir, &mut files)?;
    let mut skipped = BTreeSet::new();
    let mut counts = Vec::new();
    for path in &files {
        let src = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let (count, test_files) = count_source(path, &src);
        let here = path.parent().unwrap_or(Path::new("."));
        let stem_dir = path.with_extension("");
        for name in test_files {
            for candidate in [
                here.join(format!("{name}.rs")),
                here.join(&name).join("mod.rs"),
                stem_dir.join(format!("{name}.rs")),
            ] {
                skipped.insert(candidate);
            }
        }
        counts.push(count);
    }
    for count in &mut counts {
        if skipped.contains(&count.path) {
            count.test += count.code + count.comment + count.blank;
            count.code = 0;
            count.comment = 0;
            count.blank = 0;
        }
    }
    Ok(counts)
}

fn collect(dir: &Path, out: &mut BTreeSet<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if kind.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.insert(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(src: &str) -> FileCount {
        count_source(Path::new("x.rs"), src).0
    }

    #[test]
    fn budget_lines_exclude_comments_blank_and_test_modules() {
        let src = "\
//! Module doc.

/// Item doc.
pub fn a() -> u8 {
    // inside
    1 // trailing
}

#[cfg(test)]
mod tests {
    #[test]
    fn t() {
        unsafe {}
    }
}
";
        let c = count(src);
        assert_eq!(c.code, 3);
        assert_eq!(c.comment, 3);
        assert_eq!(c.blank, 2);
        assert_eq!(c.test, 7);
        assert_eq!(c.unsafe_count, 1);
        assert_eq!(c.unsafe_lines, vec![13]);
    }

    #[test]
    fn unsafe_in_strings_and_comments_does_not_count() {
        let c = count("// unsafe\nconst S: &str = \"unsafe\";\n/* unsafe */\n");
        assert_eq!(c.unsafe_count, 0);
        assert_eq!(c.code, 1);
    }

    #[test]
    fn unsafe_blocks_fns_and_impls_count() {
        let c = count("fn f() { unsafe { g() } }\nunsafe fn g() {}\nunsafe impl Send for X {}\n");
        assert_eq!(c.unsafe_count, 3);
    }

    #[test]
    fn out_of_line_test_module_is_reported() {
        let (c, files) = count_source(Path::new("x.rs"), "#[cfg(test)]\nmod tests;\nfn a() {}\n");
        assert_eq!(files, vec!["tests".to_owned()]);
        assert_eq!(c.code, 3);
    }
}
