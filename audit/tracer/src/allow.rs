//! `audit/syscalls.allow`: which system calls, and which path-based
//! accesses, each traced operation may make. The format is described at the
//! top of that file; in short, one entry per line:
//!
//! ```text
//! <syscall> <ops> <justification>
//! path <syscall> <absolute path> <ops> <justification>
//! loader <path or directory/> <justification>
//! group <name> <ops> <justification>
//! ```
//!
//! `<ops>` is `*` or a comma-separated list of operation names (see
//! [`crate::OPS`]) and names of groups defined above it. Every entry needs
//! a justification.

use crate::OPS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ops {
    All,
    Only(Vec<String>),
}

impl Ops {
    pub fn contains(&self, op: &str) -> bool {
        match self {
            Ops::All => true,
            Ops::Only(ops) => ops.iter().any(|o| o == op),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallEntry {
    pub line: usize,
    pub name: String,
    pub ops: Ops,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathEntry {
    pub line: usize,
    pub syscall: String,
    pub path: String,
    pub ops: Ops,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderEntry {
    pub line: usize,
    /// Exact path, or a directory prefix when it ends with `/`.
    pub path: String,
    pub why: String,
}

impl LoaderEntry {
    pub fn matches(&self, path: &str) -> bool {
        if self.path.ends_with('/') {
            path.starts_with(&self.path)
        } else {
            path == self.path
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allow {
    pub syscalls: Vec<SyscallEntry>,
    pub paths: Vec<PathEntry>,
    pub loader: Vec<LoaderEntry>,
}

impl Allow {
    pub fn syscall_allowed(&self, name: &str, op: &str) -> bool {
        self.syscalls
            .iter()
            .any(|e| e.name == name && e.ops.contains(op))
    }

    pub fn path_allowed(&self, syscall: &str, path: &str, op: &str) -> bool {
        self.paths
            .iter()
            .any(|e| e.syscall == syscall && e.path == path && e.ops.contains(op))
    }

    pub fn loader_allowed(&self, path: &str) -> bool {
        self.loader.iter().any(|e| e.matches(path))
    }
}

fn parse_ops(word: &str, line: usize, groups: &[(String, Vec<String>)]) -> Result<Ops, String> {
    if word == "*" {
        return Ok(Ops::All);
    }
    let mut ops = Vec::new();
    for op in word.split(',') {
        if let Some((_, members)) = groups.iter().find(|(g, _)| g == op) {
            ops.extend(members.iter().cloned());
            continue;
        }
        if !OPS.iter().any(|(name, _)| *name == op) {
            let known: Vec<&str> = OPS.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "syscalls.allow:{line}: unknown operation '{op}' (known: *, {})",
                known.join(", ")
            ));
        }
        ops.push(op.to_owned());
    }
    Ok(Ops::Only(ops))
}

fn why(words: &[&str], line: usize) -> Result<String, String> {
    if words.is_empty() {
        return Err(format!(
            "syscalls.allow:{line}: every entry needs a justification after its fields"
        ));
    }
    Ok(words.join(" "))
}

pub fn parse(text: &str) -> Result<Allow, String> {
    let mut allow = Allow::default();
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = content.split_whitespace().collect();
        match words.as_slice() {
            ["path", syscall, path, ops, rest @ ..] => {
                if !path.starts_with('/') {
                    return Err(format!(
                        "syscalls.allow:{line}: a path entry names an absolute path"
                    ));
                }
                allow.paths.push(PathEntry {
                    line,
                    syscall: (*syscall).to_owned(),
                    path: (*path).to_owned(),
                    ops: parse_ops(ops, line, &groups)?,
                    why: why(rest, line)?,
                });
            }
            ["loader", path, rest @ ..] => {
                allow.loader.push(LoaderEntry {
                    line,
                    path: (*path).to_owned(),
                    why: why(rest, line)?,
                });
            }
            ["group", name, ops, rest @ ..] => {
                why(rest, line)?;
                if OPS.iter().any(|(op, _)| op == name) || *name == "*" {
                    return Err(format!(
                        "syscalls.allow:{line}: group '{name}' has an operation's name"
                    ));
                }
                let members = match parse_ops(ops, line, &groups)? {
                    Ops::All => OPS.iter().map(|(op, _)| (*op).to_owned()).collect(),
                    Ops::Only(members) => members,
                };
                groups.push(((*name).to_owned(), members));
            }
            ["path" | "loader" | "group", ..] => {
                return Err(format!("syscalls.allow:{line}: incomplete entry"));
            }
            [name, ops, rest @ ..] => {
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "syscalls.allow:{line}: '{name}' is not a system call name"
                    ));
                }
                allow.syscalls.push(SyscallEntry {
                    line,
                    name: (*name).to_owned(),
                    ops: parse_ops(ops, line, &groups)?,
                    why: why(rest, line)?,
                });
            }
            _ => return Err(format!("syscalls.allow:{line}: incomplete entry")),
        }
    }
    Ok(allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds() {
        let a = parse(
            "# comment\n\nread * reads stdin\nrenameat2 register,unregister publish and retire\n\
             path openat /etc/group * the group database\nloader /lib/ shared libraries\n",
        )
        .unwrap();
        assert!(a.syscall_allowed("read", "version"));
        assert!(a.syscall_allowed("renameat2", "register"));
        assert!(!a.syscall_allowed("renameat2", "start"));
        assert!(a.path_allowed("openat", "/etc/group", "stop"));
        assert!(!a.path_allowed("newfstatat", "/etc/group", "stop"));
        assert!(a.loader_allowed("/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(!a.loader_allowed("/etc/passwd"));
    }

    #[test]
    fn refuses_missing_justification_and_unknown_ops() {
        assert!(parse("read *\n").unwrap_err().contains("justification"));
        assert!(
            parse("read regster typo\n")
                .unwrap_err()
                .contains("unknown operation")
        );
        assert!(parse("path openat etc/group * x\n").is_err());
    }

    #[test]
    fn groups_expand() {
        let a =
            parse("group writers register,stop those that write\nfchmod writers modes\n").unwrap();
        assert!(a.syscall_allowed("fchmod", "stop"));
        assert!(!a.syscall_allowed("fchmod", "start"));
        assert!(parse("fchmod writers modes\n").is_err());
    }
}
