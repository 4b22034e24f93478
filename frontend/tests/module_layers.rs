//! The library's top-level modules depend on each other in one direction
//! only: every `crate::<module>` path in `src/` is an edge from the module
//! the file belongs to, and the edges must not form a cycle. A cycle is
//! reported with the path that closes it and where each step is written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Code without comments and without the contents of string and character
/// literals (a path written in a message is not a dependency).
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
            }
            'r' if (next == Some('"') || next == Some('#'))
                && !chars
                    .get(i.wrapping_sub(1))
                    .is_some_and(|p| p.is_alphanumeric() || *p == '_') =>
            {
                // A raw string: r"…", r#"…"#, …
                let mut j = i + 1;
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if chars.get(j) != Some(&'"') {
                    out.push(c);
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    match chars.get(j) {
                        None => break,
                        Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                            j += 1 + hashes;
                            break;
                        }
                        Some(_) => j += 1,
                    }
                }
                out.push_str("\"\"");
                i = j;
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push_str("\"\"");
            }
            '\'' if next == Some('\\') => {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            }
            '\'' if chars.get(i + 2) == Some(&'\'') => {
                i += 3;
                out.push_str("' '");
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn identifier_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first path segment of every `crate::…` path in `code`, with
/// `crate::{a::x, b}` counting for `a` and `b`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group, up to its closing brace.
            let mut depth = 0;
            let mut item_start = true;
            for (index, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start && depth == 0 => {
                        item_start = false;
                        let name = identifier_at(&group[index..]);
                        if !name.is_empty() {
                            found.push(name.to_owned());
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = identifier_at(rest);
            if !name.is_empty() {
                found.push(name.to_owned());
            }
        }
    }
    found
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to; `None` for the crate
/// roots.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(stem) => Some(stem.to_owned()),
        None => Some(first.to_owned()),
    }
}

/// Edge `from → to`, with one place that writes it.
type Edges = BTreeMap<String, BTreeMap<String, PathBuf>>;

fn module_edges(src: &Path) -> Edges {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(src, f)).collect();
    let mut edges = Edges::new();
    for file in &files {
        let Some(from) = top_module(src, file) else {
            continue;
        };
        let code = code_only(&std::fs::read_to_string(file).unwrap());
        for to in crate_paths(&code) {
            if to != from && modules.contains(&to) {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| file.strip_prefix(src).unwrap().to_path_buf());
            }
        }
    }
    edges
}

/// A cycle through the graph, as the list of modules on it (first one
/// repeated at the end), if there is any.
fn find_cycle(edges: &Edges) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        edges: &Edges,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_owned(), Mark::Open);
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flat_map(BTreeMap::keys) {
            match marks.get(next.as_str()) {
                Some(Mark::Open) => {
                    let start = path.iter().position(|m| m == next).unwrap();
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(cycle) = visit(next, edges, marks, path) {
                        return Some(cycle);
                    }
                }
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in edges.keys() {
        if !marks.contains_key(node.as_str())
            && let Some(cycle) = visit(node, edges, &mut marks, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

fn describe(cycle: &[String], edges: &Edges) -> String {
    let steps: Vec<String> = cycle
        .windows(2)
        .map(|pair| {
            format!(
                "  {} -> {} (in src/{})",
                pair[0],
                pair[1],
                edges[&pair[0]][&pair[1]].display()
            )
        })
        .collect();
    format!(
        "import cycle among the top-level modules: {}\n{}",
        cycle.join(" -> "),
        steps.join("\n")
    )
}

#[test]
fn top_level_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = module_edges(&src);
    assert!(
        edges.contains_key("cli") && edges.contains_key("error"),
        "no dependencies found in {}: the scan is broken",
        src.display()
    );
    if let Some(cycle) = find_cycle(&edges) {
        panic!("{}", describe(&cycle, &edges));
    }
}

#[test]
fn the_scan_reads_paths_and_groups_and_skips_the_rest() {
    let code = code_only(
        r#"
        use crate::error::Error;
        use crate::{config::Config, profile::{self, ProfileName}, time};
        // use crate::commented;
        /* crate::blocked */
        let s = "crate::quoted";
        let r = r"crate::raw";
        let c = '"';
        let x = crate::s6::supervise::up_pid(slot);
        pub(crate) fn f() {}
        $crate::macro_path!();
        "#,
    );
    assert_eq!(
        crate_paths(&code),
        ["error", "config", "profile", "time", "s6"]
    );
}

#[test]
fn a_cycle_is_found_and_named() {
    fn edge(edges: &mut Edges, from: &str, to: &str) {
        edges
            .entry(from.to_owned())
            .or_default()
            .insert(to.to_owned(), PathBuf::from(format!("{from}.rs")));
    }
    let mut edges = Edges::new();
    edge(&mut edges, "cli", "manager");
    edge(&mut edges, "manager", "status");
    edge(&mut edges, "status", "error");
    assert_eq!(find_cycle(&edges), None);
    edge(&mut edges, "error", "manager");
    let cycle = find_cycle(&edges).unwrap();
    assert_eq!(cycle, ["manager", "status", "error", "manager"]);
    assert!(describe(&cycle, &edges).contains("error -> manager (in src/error.rs)"));
}
