//! Reading `strace -f -o FILE` output: one system call per line, optionally
//! prefixed by the pid, with `<unfinished ...>` / `<... resumed>` halves
//! when processes interleave, and `---`/`+++` lines for signals and exits.

/// One system call as strace printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// 1-based line in the trace file.
    pub line: usize,
    pub pid: Option<u32>,
    pub name: String,
    /// Top-level arguments, as printed (strings still quoted).
    pub args: Vec<String>,
    /// What follows `=`, e.g. `3`, `-1 ENOENT (No such file or directory)`, `?`.
    pub result: String,
}

/// A path a call resolved by name rather than through a descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathUse {
    pub syscall: String,
    /// Absolute as given, or `./rel` for a name relative to the cwd.
    pub path: String,
}

/// A parsed trace: the calls, in order, and lines that were not calls.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub calls: Vec<Call>,
    /// Signal deliveries, exits and anything unrecognized, kept for the report.
    pub other: Vec<String>,
}

pub fn parse(text: &str) -> Trace {
    let mut trace = Trace::default();
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let (pid, rest) = split_pid(raw);
        let rest = rest.trim_start();
        if rest.is_empty() {
            continue;
        }
        if rest.starts_with("<...") {
            // The second half of a call already recorded when it started.
            continue;
        }
        let Some(open) = rest.find('(') else {
            trace.other.push(raw.to_owned());
            continue;
        };
        let name = &rest[..open];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            trace.other.push(raw.to_owned());
            continue;
        }
        let body = &rest[open + 1..];
        let (args_text, tail) = match matching_close(body) {
            Some(close) => (&body[..close], &body[close + 1..]),
            // `<unfinished ...>`: keep what was printed.
            None => (body.split(" <unfinished").next().unwrap_or(body), ""),
        };
        let result = tail
            .rsplit_once(" = ")
            .map(|(_, r)| r.trim().to_owned())
            .or_else(|| tail.trim().strip_prefix("= ").map(str::to_owned))
            .unwrap_or_default();
        trace.calls.push(Call {
            line: line_no,
            pid,
            name: name.to_owned(),
            args: split_args(args_text),
            result,
        });
    }
    trace
}

fn split_pid(line: &str) -> (Option<u32>, &str) {
    let digits = line.chars().take_while(|c| c.is_ascii_digit()).count();
    if digits > 0 && line[digits..].starts_with(' ') {
        (line[..digits].parse().ok(), &line[digits + 1..])
    } else if let Some(rest) = line.strip_prefix("[pid ") {
        let end = rest.find(']').unwrap_or(0);
        (rest[..end].trim().parse().ok(), &rest[end + 1..])
    } else {
        (None, line)
    }
}

/// Index of the `)` closing the argument list, skipping nested brackets and
/// quoted strings.
fn matching_close(body: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if in_str {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' | '{' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Splits at top-level commas.
pub fn split_args(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    let mut in_str = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_str {
            cur.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                cur.push(c);
            }
            '(' | '[' | '{' => {
                depth += 1;
                cur.push(c);
            }
            ')' | ']' | '}' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => {
                args.push(cur.trim().to_owned());
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        args.push(cur.trim().to_owned());
    }
    args
}

/// The string value of a quoted strace argument (`"..."` possibly followed
/// by `...` when truncated); `None` for anything else (`NULL`, a pointer).
pub fn unquote(arg: &str) -> Option<String> {
    quoted(arg).map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned())
}

/// The bytes of a quoted strace argument, strace's escapes undone, and
/// whether strace cut the string (its `-s` size: `"..."...`).
pub fn quoted(arg: &str) -> Option<(Vec<u8>, bool)> {
    let inner = arg.strip_prefix('"')?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let rest: String = chars.collect();
                return Some((out, rest.starts_with("...")));
            }
            '\\' => match chars.next()? {
                'n' => out.push(b'\n'),
                't' => out.push(b'\t'),
                'r' => out.push(b'\r'),
                'v' => out.push(0x0b),
                'f' => out.push(0x0c),
                'x' => {
                    let hi = chars.next()?.to_digit(16)?;
                    let lo = chars.next()?.to_digit(16)?;
                    out.push(u8::try_from(hi * 16 + lo).ok()?);
                }
                d @ '0'..='7' => {
                    let mut v = d.to_digit(8)?;
                    for _ in 0..2 {
                        match chars.peek().and_then(|c| c.to_digit(8)) {
                            Some(n) => {
                                v = v * 8 + n;
                                chars.next();
                            }
                            None => break,
                        }
                    }
                    out.push(u8::try_from(v).ok()?);
                }
                other => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                }
            },
            other => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    None
}

/// Where a call's path arguments are: (index of the directory fd argument,
/// if any; index of the path argument).
fn path_args(name: &str) -> &'static [(Option<usize>, usize)] {
    match name {
        "open" | "creat" | "stat" | "lstat" | "stat64" | "lstat64" | "access" | "readlink"
        | "chdir" | "chroot" | "mkdir" | "rmdir" | "unlink" | "truncate" | "statfs" | "chmod"
        | "chown" | "lchown" | "utime" | "utimes" | "mknod" | "execve" | "uselib" | "swapon"
        | "swapoff" | "acct" | "getxattr" | "lgetxattr" | "setxattr" | "lsetxattr"
        | "listxattr" | "llistxattr" | "removexattr" | "lremovexattr" | "umount2" | "umount"
        | "quotactl" => &[(None, 0)],
        "link" | "rename" | "pivot_root" => &[(None, 0), (None, 1)],
        "symlink" => &[(None, 1)],
        "mount" => &[(None, 1)],
        "inotify_add_watch" | "fanotify_mark" => &[(None, 1)],
        "openat" | "openat2" | "newfstatat" | "fstatat64" | "statx" | "faccessat"
        | "faccessat2" | "readlinkat" | "mkdirat" | "mknodat" | "unlinkat" | "fchownat"
        | "fchmodat" | "fchmodat2" | "utimensat" | "futimesat" | "execveat"
        | "name_to_handle_at" | "open_tree" | "fspick" | "mount_setattr" | "getxattrat"
        | "setxattrat" | "listxattrat" | "removexattrat" => &[(Some(0), 1)],
        "renameat" | "renameat2" | "linkat" => &[(Some(0), 1), (Some(2), 3)],
        "symlinkat" => &[(Some(1), 2)],
        _ => &[],
    }
}

/// Every name this call resolves from the root or the working directory
/// instead of from a verified descriptor: an absolute path anywhere, a
/// relative one with no directory fd or with `AT_FDCWD`, and Unix socket
/// addresses given by path.
pub fn path_uses(call: &Call) -> Vec<PathUse> {
    let mut uses = Vec::new();
    for &(dirfd, idx) in path_args(&call.name) {
        let Some(path) = call.args.get(idx).and_then(|a| unquote(a)) else {
            continue;
        };
        if path.is_empty() {
            // AT_EMPTY_PATH: the descriptor itself.
            continue;
        }
        let from_cwd = match dirfd {
            None => true,
            Some(i) => call.args.get(i).is_some_and(|a| a == "AT_FDCWD"),
        };
        if path.starts_with('/') {
            uses.push(PathUse {
                syscall: call.name.clone(),
                path,
            });
        } else if from_cwd {
            uses.push(PathUse {
                syscall: call.name.clone(),
                path: format!("./{path}"),
            });
        }
    }
    for arg in &call.args {
        let mut rest = arg.as_str();
        while let Some(at) = rest.find("sun_path=") {
            rest = &rest[at + "sun_path=".len()..];
            if let Some(path) = unquote(rest) {
                let path = path.trim_start_matches('@').to_owned();
                uses.push(PathUse {
                    syscall: call.name.clone(),
                    path,
                });
            }
        }
    }
    uses
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"100 execve("/usr/libexec/hermes-s6-helper", ["/usr/libexec/hermes-s6-helper", "--version"], 0x7ffd /* 4 vars */) = 0
100 openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3
100 newfstatat(3, "", {st_mode=S_IFREG|0644, st_size=1}, AT_EMPTY_PATH) = 0
100 openat(4, "gateway-a", O_RDONLY|O_NOFOLLOW|O_CLOEXEC|O_DIRECTORY) = 5
100 renameat2(4, ".gateway-a.new", 4, "gateway-a", RENAME_NOREPLACE) = 0
100 chdir("/")                        = 0
100 sendto(3, "<86>x: caller_uid=1, op=(x)", 27, MSG_NOSIGNAL, {sa_family=AF_UNIX, sun_path="/dev/log"}, 11) = 27
100 read(0, "{\"A\": \"b, )\"}", 65537) = 13
100 wait4(-1,  <unfinished ...>
101 +++ exited with 0 +++
100 <... wait4 resumed>NULL, 0, NULL) = 101
100 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED} ---
100 openat(AT_FDCWD, "rel\101tive", O_RDONLY) = -1 ENOENT (No such file or directory)
100 exit_group(0)                     = ?
"#;

    #[test]
    fn parses_calls_and_skips_the_rest() {
        let t = parse(SAMPLE);
        let names: Vec<&str> = t.calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "execve",
                "openat",
                "newfstatat",
                "openat",
                "renameat2",
                "chdir",
                "sendto",
                "read",
                "wait4",
                "openat",
                "exit_group"
            ]
        );
        assert_eq!(t.other.len(), 2);
        assert_eq!(t.calls[1].result, "3");
        assert_eq!(t.calls[1].pid, Some(100));
        assert_eq!(t.calls[7].args.len(), 3, "{:?}", t.calls[7].args);
        assert_eq!(t.calls[9].result, "-1 ENOENT (No such file or directory)");
        assert_eq!(t.calls[10].result, "?");
    }

    #[test]
    fn finds_path_based_uses_only() {
        let t = parse(SAMPLE);
        let uses: Vec<(String, String)> = t
            .calls
            .iter()
            .flat_map(path_uses)
            .map(|u| (u.syscall, u.path))
            .collect();
        assert_eq!(
            uses,
            vec![
                (
                    "execve".to_owned(),
                    "/usr/libexec/hermes-s6-helper".to_owned()
                ),
                ("openat".to_owned(), "/etc/ld.so.cache".to_owned()),
                ("chdir".to_owned(), "/".to_owned()),
                ("sendto".to_owned(), "/dev/log".to_owned()),
                ("openat".to_owned(), "./relAtive".to_owned()),
            ]
        );
    }

    #[test]
    fn unquotes_escapes() {
        assert_eq!(unquote(r#""a\nb\x41\101\"""#).as_deref(), Some("a\nbAA\""));
        assert_eq!(unquote(r#""abc"..."#).as_deref(), Some("abc"));
        assert_eq!(unquote("NULL"), None);
        assert_eq!(quoted(r#""a\\n""#), Some((b"a\\n".to_vec(), false)));
        assert_eq!(quoted(r#""ab"..."#), Some((b"ab".to_vec(), true)));
    }
}
