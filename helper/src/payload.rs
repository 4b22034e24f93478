//! The optional environment payload of `register` (design §4, I10): a JSON
//! object of string -> string read from stdin, bounded in size and time.
//!
//! A small strict parser instead of serde_json: the accepted language is tiny
//! (one flat object of strings), duplicate keys must be refused (a map type
//! would silently keep the last one), and it keeps five crates out of a
//! setuid binary. It is fuzzed (audit/fuzz). Every buffer that may hold a
//! value is allocated once at its final capacity and zeroized on drop, so no
//! reallocation leaves a copy of a secret behind.

use crate::exit::{Failure, DATA};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::{fstat, SFlag};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

pub const MAX_BYTES: usize = 64 * 1024;
pub const MAX_KEYS: usize = 64;
const MAX_KEY_LEN: usize = 128;
const READ_DEADLINE: Duration = Duration::from_secs(2);

/// Variables the gateway or the loader treat specially: refused even though
/// the values are applied only after the drop to the hermes user.
const REFUSED_KEYS: &[&str] = &[
    "HOME",
    "PATH",
    "HERMES_S6_SUPERVISED_CHILD",
    "HERMES_SUPERVISED_CHILD",
    "GCONV_PATH",
    "GLIBC_TUNABLES",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "RES_OPTIONS",
    "LOCALDOMAIN",
    "TZDIR",
    "ENV",
    "IFS",
    "CDPATH",
    "SHELLOPTS",
    "PS4",
];
const REFUSED_PREFIXES: &[&str] = &["LD_", "MALLOC_", "BASH_", "PYTHON", "PERL", "RUBY", "NODE_"];

pub type Secret = Zeroizing<Vec<u8>>;

#[derive(Debug)]
pub struct Var {
    pub key: String,
    pub value: Secret,
}

/// Reads stdin when it may carry a payload: open for reading, not a
/// character device (a terminal, /dev/null, or the /dev/full that glibc puts
/// on a closed fd 0 of a setuid program), not empty. The whole read must
/// finish within `READ_DEADLINE`.
pub fn read_stdin() -> Result<Option<Secret>, Failure> {
    let fd = std::io::stdin();
    let fd = fd.as_fd();
    if !may_carry_payload(fd) {
        return Ok(None);
    }
    let mut buf = Zeroizing::new(vec![0u8; MAX_BYTES + 1]);
    let mut len = 0;
    let deadline = Instant::now() + READ_DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = PollTimeout::try_from(left).unwrap_or(PollTimeout::ZERO);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        let ready = poll(&mut fds, wait).map_err(|e| bad(&format!("cannot read stdin: {e}")))?;
        if ready == 0 {
            return Err(bad("payload not complete within 2 s (stdin never closed)"));
        }
        // Straight into the zeroized buffer: std's Stdin would keep a copy in
        // its own internal buffer.
        match nix::unistd::read(fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(nix::errno::Errno::EAGAIN) => continue,
            Err(e) => return Err(bad(&format!("cannot read stdin: {e}"))),
        }
        if len > MAX_BYTES {
            return Err(bad("payload larger than 64 KiB"));
        }
    }
    buf.truncate(len);
    Ok(if len == 0 { None } else { Some(buf) })
}

fn may_carry_payload(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    let readable = match fcntl(fd, FcntlArg::F_GETFL) {
        Ok(flags) => OFlag::from_bits_truncate(flags) & OFlag::O_ACCMODE != OFlag::O_WRONLY,
        Err(_) => false,
    };
    let char_device = match fstat(fd) {
        Ok(st) => st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFCHR.bits(),
        Err(_) => true,
    };
    readable && !char_device
}

fn bad(reason: &str) -> Failure {
    Failure::new(DATA, format!("invalid environment payload: {reason}"))
}

/// Parses and validates a payload. Nothing is written anywhere until the
/// whole payload has passed.
pub fn parse(input: &[u8]) -> Result<Vec<Var>, Failure> {
    let mut p = Parser { s: input, i: 0 };
    let mut vars: Vec<Var> = Vec::new();
    p.skip_ws();
    p.expect(b'{')?;
    p.skip_ws();
    if p.peek() == Some(b'}') {
        p.i += 1;
    } else {
        loop {
            p.skip_ws();
            let key = p.string()?;
            p.skip_ws();
            p.expect(b':')?;
            p.skip_ws();
            let value = p.string()?;
            let key = check_key(&key)?;
            if value.iter().any(|&b| b == 0 || b == b'\n') {
                return Err(bad(&format!("value of {key} contains a NUL or newline")));
            }
            if vars.iter().any(|v| v.key == key) {
                return Err(bad(&format!("duplicate key {key}")));
            }
            if vars.len() == MAX_KEYS {
                return Err(bad("more than 64 keys"));
            }
            vars.push(Var { key, value });
            p.skip_ws();
            match p.next() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => return Err(bad("expected ',' or '}'")),
            }
        }
    }
    p.skip_ws();
    if p.i != input.len() {
        return Err(bad("trailing data after the object"));
    }
    Ok(vars)
}

fn check_key(raw: &[u8]) -> Result<String, Failure> {
    let shape_ok = matches!(raw.first(), Some(b'A'..=b'Z' | b'_'))
        && raw.len() <= MAX_KEY_LEN
        && raw
            .iter()
            .all(|b| matches!(b, b'A'..=b'Z' | b'0'..=b'9' | b'_'));
    if !shape_ok {
        return Err(bad(&format!(
            "key '{}' must match [A-Z_][A-Z0-9_]{{0,127}}",
            crate::exit::escape(raw)
        )));
    }
    let key = String::from_utf8_lossy(raw).into_owned();
    if REFUSED_KEYS.contains(&key.as_str()) || REFUSED_PREFIXES.iter().any(|p| key.starts_with(p)) {
        return Err(bad(&format!(
            "key {key} is reserved (loader, interpreter or gateway control variable)"
        )));
    }
    Ok(key)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek();
        self.i += usize::from(b.is_some());
        b
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, want: u8) -> Result<(), Failure> {
        match self.next() {
            Some(b) if b == want => Ok(()),
            _ => Err(bad(&format!(
                "expected '{}' at byte {}",
                char::from(want),
                self.i
            ))),
        }
    }

    /// A JSON string, decoded. Its length never exceeds the input's, so the
    /// buffer never reallocates.
    fn string(&mut self) -> Result<Secret, Failure> {
        self.expect(b'"')?;
        let mut out = Zeroizing::new(Vec::with_capacity(self.s.len()));
        loop {
            match self.next().ok_or_else(|| bad("unterminated string"))? {
                b'"' => break,
                b'\\' => {
                    let c = match self.next().ok_or_else(|| bad("unterminated escape"))? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(bad("unknown escape")),
                    };
                    let mut utf8 = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                }
                b if b < 0x20 => return Err(bad("raw control character in string")),
                b => out.push(b),
            }
        }
        if std::str::from_utf8(&out).is_err() {
            return Err(bad("string is not valid UTF-8"));
        }
        Ok(out)
    }

    fn hex4(&mut self) -> Result<u32, Failure> {
        let digits = self
            .s
            .get(self.i..self.i + 4)
            .ok_or_else(|| bad("short \\u escape"))?;
        self.i += 4;
        digits.iter().try_fold(0u32, |acc, &d| {
            let v = char::from(d)
                .to_digit(16)
                .ok_or_else(|| bad("bad \\u escape"))?;
            Ok(acc * 16 + v)
        })
    }

    fn unicode_escape(&mut self) -> Result<char, Failure> {
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            if self.next() != Some(b'\\') || self.next() != Some(b'u') {
                return Err(bad("lone surrogate in \\u escape"));
            }
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(bad("lone surrogate in \\u escape"));
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| bad("lone surrogate in \\u escape"))
    }
}
