//! The optional environment payload of `register` (design §4, I10): a JSON
//! object of string -> string read from stdin, bounded in size and time.
//!
//! A small strict parser instead of serde_json: the language is one flat
//! object of strings, duplicate keys must be refused (a map would silently
//! keep the last), and it keeps five crates out of a setuid binary. It is
//! fuzzed (audit/fuzz). Every buffer that may hold a value is allocated once
//! at its final capacity and zeroized on drop: no reallocation leaves a copy
//! of a secret behind.

use crate::exit::{escape, Failure, DATA};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::SFlag;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

pub const MAX_BYTES: usize = 64 * 1024;
pub const MAX_KEYS: usize = 64;

/// Variables the gateway, the loader or an interpreter treat specially:
/// refused even though values are applied only after the drop to hermes.
const REFUSED_KEYS: &str = "HOME PATH HERMES_S6_SUPERVISED_CHILD HERMES_SUPERVISED_CHILD GCONV_PATH GLIBC_TUNABLES \
                            LOCPATH NLSPATH HOSTALIASES RES_OPTIONS LOCALDOMAIN TZDIR ENV IFS CDPATH SHELLOPTS PS4";
const REFUSED_PREFIXES: &str = "LD_ MALLOC_ BASH_ PYTHON PERL RUBY NODE_";

pub type Secret = Zeroizing<Vec<u8>>;

#[derive(Debug)]
pub struct Var {
    pub key: String,
    pub value: Secret,
}

fn bad(reason: &str) -> Failure {
    Failure::new(DATA, format!("invalid environment payload: {reason}"))
}

/// Reads stdin when it may carry a payload: open for reading, not a
/// character device (a terminal, /dev/null, or the /dev/full glibc puts on a
/// closed fd 0 of a setuid program), not empty. All within 2 s.
pub fn read_stdin() -> Result<Option<Secret>, Failure> {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let char_device = nix::sys::stat::fstat(fd).map_or(true, |st| crate::fsx::is_type(&st, SFlag::S_IFCHR));
    let flags = fcntl(fd, FcntlArg::F_GETFL).map(OFlag::from_bits_truncate).unwrap_or(OFlag::O_WRONLY);
    if char_device || flags & OFlag::O_ACCMODE == OFlag::O_WRONLY {
        return Ok(None);
    }
    // Non-blocking, so that a second reader draining the pipe between poll
    // and read cannot hold the helper past its deadline.
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map_err(|e| bad(&format!("stdin: {e}")))?;
    let mut buf = Zeroizing::new(vec![0u8; MAX_BYTES + 1]);
    let mut len = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if !readable_before(fd, deadline)? {
            return Err(bad("not complete within 2 s (stdin never closed)"));
        }
        // Straight into the zeroized buffer: std's Stdin keeps its own copy.
        match nix::unistd::read(fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(nix::errno::Errno::EAGAIN) => continue,
            Err(e) => return Err(bad(&format!("cannot read stdin: {e}"))),
        }
        if len > MAX_BYTES {
            return Err(bad("larger than 64 KiB"));
        }
    }
    buf.truncate(len);
    Ok(Some(buf).filter(|b| !b.is_empty()))
}

fn readable_before(fd: BorrowedFd<'_>, deadline: Instant) -> Result<bool, Failure> {
    let wait = PollTimeout::try_from(deadline.saturating_duration_since(Instant::now())).unwrap_or(PollTimeout::ZERO);
    let ready = poll(&mut [PollFd::new(fd, PollFlags::POLLIN)], wait).map_err(|e| bad(&format!("poll: {e}")))?;
    Ok(ready > 0)
}

/// Parses and validates a whole payload before anything is written.
pub fn parse(input: &[u8]) -> Result<Vec<Var>, Failure> {
    let mut p = Parser { s: input, i: 0 };
    let mut vars: Vec<Var> = Vec::new();
    p.expect(b'{')?;
    let mut end = p.skip_ws() == Some(b'}');
    while !end {
        let key = check_key(&p.string()?)?;
        p.expect(b':')?;
        let value = p.string()?;
        if value.iter().any(|&b| b == 0 || b == b'\n') {
            return Err(bad(&format!("value of {key} contains a NUL or newline")));
        } else if vars.iter().any(|v| v.key == key) {
            return Err(bad(&format!("duplicate key {key}")));
        } else if vars.len() == MAX_KEYS {
            return Err(bad("more than 64 keys"));
        }
        vars.push(Var { key, value });
        end = p.skip_ws() == Some(b'}');
        if !end {
            p.expect(b',')?;
        }
    }
    p.expect(b'}')?;
    if p.skip_ws().is_some() {
        return Err(bad("trailing data after the object"));
    }
    Ok(vars)
}

fn check_key(raw: &[u8]) -> Result<String, Failure> {
    let shape_ok = matches!(raw.first(), Some(b'A'..=b'Z' | b'_'))
        && raw.len() <= 128
        && raw.iter().all(|b| matches!(b, b'A'..=b'Z' | b'0'..=b'9' | b'_'));
    if !shape_ok {
        return Err(bad(&format!("key '{}' must match [A-Z_][A-Z0-9_]{{0,127}}", escape(raw))));
    }
    let key = String::from_utf8_lossy(raw).into_owned();
    if REFUSED_KEYS.split_whitespace().any(|k| k == key) || REFUSED_PREFIXES.split(' ').any(|p| key.starts_with(p)) {
        return Err(bad(&format!("key {key} is reserved (loader, interpreter or gateway control variable)")));
    }
    Ok(key)
}

/// JSON's two-character escapes and what they stand for.
#[rustfmt::skip]
const ESCAPES: [(u8, char); 8] =
    [(b'"', '"'), (b'\\', '\\'), (b'/', '/'), (b'b', '\u{8}'), (b'f', '\u{c}'), (b'n', '\n'), (b'r', '\r'), (b't', '\t')];

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    /// Skips whitespace; returns the byte that follows, if any.
    fn skip_ws(&mut self) -> Option<u8> {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
        self.s.get(self.i).copied()
    }

    /// The next byte, as is (inside strings whitespace is content).
    fn byte(&mut self) -> Result<u8, Failure> {
        let b = self.s.get(self.i).copied().ok_or_else(|| bad("unexpected end"))?;
        self.i += 1;
        Ok(b)
    }

    fn expect(&mut self, want: u8) -> Result<(), Failure> {
        self.skip_ws();
        match self.byte()? {
            b if b == want => Ok(()),
            _ => Err(bad(&format!("expected '{}' at byte {}", char::from(want), self.i))),
        }
    }

    /// A JSON string, decoded; never longer than the input, so its buffer
    /// never reallocates.
    fn string(&mut self) -> Result<Secret, Failure> {
        self.expect(b'"')?;
        let mut out = Zeroizing::new(Vec::with_capacity(self.s.len()));
        loop {
            match self.byte()? {
                b'"' => break,
                b'\\' => {
                    let e = self.byte()?;
                    let c = match ESCAPES.iter().find(|(k, _)| *k == e) {
                        Some(&(_, c)) => c,
                        None if e == b'u' => self.unicode_escape()?,
                        None => return Err(bad("unknown escape")),
                    };
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                b if b < 0x20 => return Err(bad("raw control character in a string")),
                b => out.push(b),
            }
        }
        std::str::from_utf8(&out).map_err(|_| bad("string is not valid UTF-8"))?;
        Ok(out)
    }

    fn hex4(&mut self) -> Result<u32, Failure> {
        let digits = self.s.get(self.i..self.i + 4).filter(|d| d.iter().all(u8::is_ascii_hexdigit));
        let digits = digits.ok_or_else(|| bad("bad \\u escape"))?;
        self.i += 4;
        Ok(digits.iter().fold(0, |acc, &d| acc * 16 + char::from(d).to_digit(16).unwrap_or(0)))
    }

    /// `\uXXXX`, a surrogate pair joined into one character.
    fn unicode_escape(&mut self) -> Result<char, Failure> {
        let high = self.hex4()?;
        let mut code = Some(high).filter(|c| !(0xD800..0xE000).contains(c));
        if (0xD800..0xDC00).contains(&high) && (self.byte()?, self.byte()?) == (b'\\', b'u') {
            let low = self.hex4()?;
            code = (0xDC00..0xE000).contains(&low).then(|| 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00));
        }
        code.and_then(char::from_u32).ok_or_else(|| bad("lone surrogate in a \\u escape"))
    }
}
