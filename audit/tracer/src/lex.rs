//! A small lexer for Rust source: enough to tell code from comments and
//! literals line by line, and to see identifiers and punctuation, without a
//! parser crate. It knows line and nested block comments, doc comments,
//! strings (plain, byte, C, raw with any number of `#`), char and byte
//! literals versus lifetimes, raw identifiers and numbers.

/// What a token is; literals are not kept, only where they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Ident(String),
    Punct(char),
    Literal,
}

/// A token and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
}

/// What a source line holds: code (tokens, including any part of a
/// multi-line literal) and/or comment text.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LineKind {
    pub code: bool,
    pub comment: bool,
}

/// The tokens of a file and the kind of each of its lines (`lines[0]` is
/// line 1).
#[derive(Debug, Default)]
pub struct Lexed {
    pub tokens: Vec<Token>,
    pub lines: Vec<LineKind>,
}

struct Lexer {
    chars: Vec<char>,
    i: usize,
    line: usize,
    out: Lexed,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn kind(&mut self) -> &mut LineKind {
        let idx = self.line - 1;
        if self.out.lines.len() <= idx {
            self.out.lines.resize(idx + 1, LineKind::default());
        }
        &mut self.out.lines[idx]
    }

    fn mark_code(&mut self) {
        self.kind().code = true;
    }

    fn mark_comment(&mut self) {
        self.kind().comment = true;
    }

    /// Consumes one char; a newline moves to the next line, which inherits
    /// `code`/`comment` marking from the caller's loop.
    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.kind();
        }
        Some(c)
    }

    fn push(&mut self, tok: Tok, line: usize) {
        self.out.tokens.push(Token { tok, line });
    }

    fn line_comment(&mut self) {
        while let Some(c) = self.peek(0) {
            if c == '\n' {
                break;
            }
            if !c.is_whitespace() {
                self.mark_comment();
            }
            self.i += 1;
        }
    }

    fn block_comment(&mut self) {
        // At "/*".
        self.i += 2;
        self.mark_comment();
        let mut depth = 1;
        while depth > 0 {
            match (self.peek(0), self.peek(1)) {
                (None, _) => break,
                (Some('/'), Some('*')) => {
                    depth += 1;
                    self.i += 2;
                }
                (Some('*'), Some('/')) => {
                    depth -= 1;
                    self.i += 2;
                }
                (Some(c), _) => {
                    self.bump();
                    if !c.is_whitespace() {
                        self.mark_comment();
                    }
                }
            }
        }
    }

    /// A quoted literal with backslash escapes, from its opening quote.
    fn quoted(&mut self, quote: char) {
        self.bump();
        while let Some(c) = self.bump() {
            self.mark_code();
            if c == '\\' {
                self.bump();
                self.mark_code();
            } else if c == quote {
                break;
            }
        }
    }

    /// A raw string from its first `#` or `"`.
    fn raw_string(&mut self) {
        let mut hashes = 0;
        while self.peek(0) == Some('#') {
            hashes += 1;
            self.i += 1;
        }
        // The opening quote.
        self.bump();
        'outer: while let Some(c) = self.bump() {
            self.mark_code();
            if c == '"' {
                for k in 0..hashes {
                    if self.peek(k) != Some('#') {
                        continue 'outer;
                    }
                }
                self.i += hashes;
                break;
            }
        }
    }

    /// `'x'`, `'\n'`, `'\u{..}'` are literals; `'a` and `'static` are lifetimes.
    fn quote(&mut self) {
        let line = self.line;
        match (self.peek(1), self.peek(2)) {
            (Some('\\'), _) => {
                self.quoted('\'');
                self.push(Tok::Literal, line);
            }
            (Some(_), Some('\'')) => {
                self.i += 3;
                self.push(Tok::Literal, line);
            }
            _ => {
                self.i += 1;
                self.push(Tok::Punct('\''), line);
            }
        }
    }

    fn word(&mut self) -> String {
        let start = self.i;
        while self
            .peek(0)
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            self.i += 1;
        }
        self.chars[start..self.i].iter().collect()
    }

    fn ident_or_prefixed_literal(&mut self) {
        let line = self.line;
        let word = self.word();
        let next = self.peek(0);
        let after_hashes = {
            let mut k = 0;
            while self.peek(k) == Some('#') {
                k += 1;
            }
            self.peek(k)
        };
        match (word.as_str(), next) {
            ("r" | "br" | "cr", Some('"')) => {
                self.raw_string();
                self.push(Tok::Literal, line);
            }
            ("r" | "br" | "cr", Some('#')) if after_hashes == Some('"') => {
                self.raw_string();
                self.push(Tok::Literal, line);
            }
            ("r", Some('#')) => {
                // A raw identifier: r#type.
                self.i += 1;
                let raw = self.word();
                self.push(Tok::Ident(format!("r#{raw}")), line);
            }
            ("b" | "c", Some('"')) => {
                self.quoted('"');
                self.push(Tok::Literal, line);
            }
            ("b", Some('\'')) => {
                self.quoted('\'');
                self.push(Tok::Literal, line);
            }
            _ => self.push(Tok::Ident(word), line),
        }
    }

    fn number(&mut self) {
        let line = self.line;
        while let Some(c) = self.peek(0) {
            let fraction = c == '.' && self.peek(1).is_some_and(|d| d.is_ascii_digit());
            if c.is_alphanumeric() || c == '_' || fraction {
                self.i += 1;
            } else {
                break;
            }
        }
        self.push(Tok::Literal, line);
    }

    fn run(mut self) -> Lexed {
        self.kind();
        while let Some(c) = self.peek(0) {
            if c == '\n' || c.is_whitespace() {
                self.bump();
                continue;
            }
            if c == '/' && self.peek(1) == Some('/') {
                self.line_comment();
                continue;
            }
            if c == '/' && self.peek(1) == Some('*') {
                self.block_comment();
                continue;
            }
            self.mark_code();
            if c == '"' {
                let line = self.line;
                self.quoted('"');
                self.push(Tok::Literal, line);
            } else if c == '\'' {
                self.quote();
            } else if c.is_ascii_digit() {
                self.number();
            } else if c.is_alphabetic() || c == '_' {
                self.ident_or_prefixed_literal();
            } else {
                let line = self.line;
                self.i += 1;
                self.push(Tok::Punct(c), line);
            }
        }
        // A final newline does not start a line of its own.
        if self.chars.last() == Some(&'\n') {
            self.out.lines.pop();
        }
        self.out
    }
}

pub fn lex(src: &str) -> Lexed {
    Lexer {
        chars: src.chars().collect(),
        i: 0,
        line: 1,
        out: Lexed::default(),
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(bool, bool)> {
        lex(src).lines.iter().map(|k| (k.code, k.comment)).collect()
    }

    fn idents(src: &str) -> Vec<String> {
        lex(src)
            .tokens
            .into_iter()
            .filter_map(|t| match t.tok {
                Tok::Ident(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn comments_and_code() {
        let src = "//! doc\n\nfn a() {} // trailing\n/* block\n   still */ let x = 1;\n/// doc\n";
        assert_eq!(
            kinds(src),
            vec![
                (false, true),
                (false, false),
                (true, true),
                (false, true),
                (true, true),
                (false, true)
            ]
        );
    }

    #[test]
    fn nested_block_comments() {
        let src = "/* a /* b */ still comment */ x\n";
        assert_eq!(idents(src), vec!["x"]);
    }

    #[test]
    fn strings_hide_comment_markers_and_keywords() {
        let src = "let a = \"// not a comment unsafe\";\nlet b = r#\"unsafe \" /* \"#;\nlet c = b\"\\\"unsafe\";\n";
        assert_eq!(kinds(src), vec![(true, false); 3]);
        assert!(!idents(src).contains(&"unsafe".to_owned()));
    }

    #[test]
    fn multi_line_string_lines_are_code() {
        let src = "let s = \"a\n\n// b\nc\";\n";
        assert_eq!(kinds(src), vec![(true, false); 4]);
    }

    #[test]
    fn chars_and_lifetimes() {
        let src = "fn f<'a>(x: &'a str) -> char { let q = '\"'; let e = '\\''; 'x' }\nunsafe {}\n";
        let ids = idents(src);
        assert!(ids.contains(&"unsafe".to_owned()), "{ids:?}");
        assert_eq!(kinds(src), vec![(true, false); 2]);
    }

    #[test]
    fn raw_identifiers_and_numbers() {
        let src = "let r#unsafe = 1.5e3; let y = 0..2;";
        let ids = idents(src);
        assert_eq!(ids, vec!["let", "r#unsafe", "let", "y"]);
    }
}
