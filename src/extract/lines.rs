//! Physical lines of a delimited text file, and the fields of one line.
//!
//! Owns two things the customers reader builds on: what a text editor calls
//! a line (`\n`, `\r\n` and a lone `\r` each end one, so line numbers match
//! what the user sees, and a line is bounded in length so one huge line
//! cannot exhaust memory), and splitting one line into fields with RFC 4180
//! quoting, saying when a quoted field is still open at the end of the line.
//! It knows nothing about customers: `customers` decides what a line means.
//!
//! Why not the `csv` crate's reader: it lets a quoted field run across lines,
//! so one stray quote silently swallows every row up to the next quote, and
//! its line numbers drift after CRLF and blank lines (issue 8). Splitting
//! lines first and parsing each line alone keeps every later row.

use std::io::{self, BufRead};
use std::ops::Range;

/// Longest line accepted, in bytes; a longer one is skipped without being
/// held in memory. Customer rows are far shorter: a 100 MB "line" is a
/// damaged or hostile file, not data.
pub const MAX_LINE: usize = 1 << 20;

const QUOTE: u8 = b'"';

/// One physical line, without its terminator.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Text(&'a [u8]),
    /// Longer than the limit; `len` bytes, `head` is its first bytes.
    TooLong {
        len: u64,
        head: &'a [u8],
    },
}

/// Reads physical lines from a buffered reader, numbering them from 1.
pub struct Lines<R> {
    inner: R,
    buf: Vec<u8>,
    number: u64,
    max: usize,
}

impl<R: BufRead> Lines<R> {
    pub fn new(inner: R, max: usize) -> Lines<R> {
        Lines {
            inner,
            buf: Vec::new(),
            number: 0,
            max,
        }
    }

    /// Number of the last line returned (0 before the first).
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The next line and its 1-based number; `None` at the end of input.
    /// A file ending with a terminator has no empty line after it, as in an
    /// editor's line count of the text.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        self.buf.clear();
        let mut len: u64 = 0;
        let mut any = false;
        loop {
            let avail = fill(&mut self.inner)?;
            if avail.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
            let stop = find_eol(avail);
            let end = stop.unwrap_or(avail.len());
            len += end as u64;
            let room = self.max.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&avail[..end.min(room)]);
            match stop {
                None => self.inner.consume(end),
                Some(i) => {
                    let cr = avail[i] == b'\r';
                    self.inner.consume(i + 1);
                    // `\r\n` is one line break, even across a buffer refill.
                    if cr && fill(&mut self.inner)?.first() == Some(&b'\n') {
                        self.inner.consume(1);
                    }
                    break;
                }
            }
        }
        self.number += 1;
        let line = if len > self.max as u64 {
            Line::TooLong {
                len,
                head: &self.buf,
            }
        } else {
            Line::Text(&self.buf)
        };
        Ok(Some((self.number, line)))
    }
}

/// Index of the first `\n` or `\r`, eight bytes at a time (the line scan
/// was a tenth of reading a million rows, byte by byte).
fn find_eol(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = s.chunks_exact(8);
    for (i, chunk) in chunks.by_ref().enumerate() {
        let w = u64::from_le_bytes(chunk.try_into().expect("chunks_exact gives 8 bytes"));
        let (a, b) = (w ^ (LO * u64::from(b'\n')), w ^ (LO * u64::from(b'\r')));
        // A zero byte in `a` or `b` is a `\n` or `\r` in `w`; the lowest flag
        // is exact (false flags only appear above a true one).
        let zero = ((a.wrapping_sub(LO) & !a) | (b.wrapping_sub(LO) & !b)) & HI;
        if zero != 0 {
            return Some(i * 8 + zero.trailing_zeros() as usize / 8);
        }
    }
    let tail = chunks.remainder();
    tail.iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map(|p| s.len() - tail.len() + p)
}

/// `fill_buf`, retried when a signal interrupts the read.
fn fill<R: BufRead>(r: &mut R) -> io::Result<&[u8]> {
    loop {
        match r.fill_buf() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    r.fill_buf()
}

/// Where the quoting stands while scanning a line (the `csv` crate's rules:
/// a quote opens a quoted field only at the start of a field, `""` inside
/// quotes is one quote, other text after a closing quote joins the field,
/// and a quote inside an unquoted field is a literal character).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    StartField,
    Unquoted,
    Quoted,
    /// Just saw a quote inside a quoted field: it closes the quotes unless
    /// another quote follows.
    QuoteInQuoted,
}

/// Splits lines into fields, reusing its buffers across lines.
#[derive(Debug, Default)]
pub struct Splitter {
    text: Vec<u8>,
    bounds: Vec<Range<usize>>,
}

impl Splitter {
    /// The fields of `line` and whether a quoted field was still open at its
    /// end (the quoting swallows the line break). An open field holds the
    /// rest of the line.
    pub fn split<'s>(&'s mut self, line: &'s str, delim: u8) -> (Vec<&'s str>, bool) {
        let bytes = line.as_bytes();
        // One pass that the compiler vectorizes (no early exit): how many
        // fields, and is there a quote at all.
        let (mut delims, mut quotes) = (0, 0);
        for &b in bytes {
            delims += usize::from(b == delim);
            quotes += usize::from(b == QUOTE);
        }
        // Fast path: without a quote every delimiter separates fields; one
        // allocation of the exact size (this runs once per row).
        if quotes == 0 {
            let mut fields = Vec::with_capacity(delims + 1);
            let mut start = 0;
            for (i, &b) in bytes.iter().enumerate() {
                if b == delim {
                    fields.push(&line[start..i]);
                    start = i + 1;
                }
            }
            fields.push(&line[start..]);
            return (fields, false);
        }
        self.text.clear();
        self.bounds.clear();
        let mut start = 0;
        let mut state = State::StartField;
        for &b in bytes {
            state = match (state, b) {
                (State::StartField, QUOTE) => State::Quoted,
                (State::Quoted, QUOTE) => State::QuoteInQuoted,
                (State::QuoteInQuoted, QUOTE) => {
                    self.text.push(QUOTE);
                    State::Quoted
                }
                (State::Quoted, _) => {
                    self.text.push(b);
                    State::Quoted
                }
                (State::StartField | State::Unquoted | State::QuoteInQuoted, _) if b == delim => {
                    self.bounds.push(start..self.text.len());
                    start = self.text.len();
                    State::StartField
                }
                (_, _) => {
                    self.text.push(b);
                    State::Unquoted
                }
            };
        }
        self.bounds.push(start..self.text.len());
        // Only ASCII quotes and delimiters were dropped from valid UTF-8, at
        // character boundaries, so the text is still valid UTF-8.
        let text = std::str::from_utf8(&self.text).expect("dropping ASCII bytes keeps UTF-8 valid");
        let mut fields = Vec::with_capacity(self.bounds.len());
        fields.extend(self.bounds.iter().map(|r| &text[r.clone()]));
        (fields, state == State::Quoted)
    }
}

/// Continue a record whose quoted field was open at the end of the previous
/// line through `line`: is a quoted field still open at the end of it? This
/// is how a standard CSV reader would see the lines after an open quote.
pub fn still_quoted_after(line: &[u8], delim: u8) -> bool {
    let mut state = State::Quoted;
    for &b in line {
        state = match (state, b) {
            (State::StartField, QUOTE) => State::Quoted,
            (State::Quoted, QUOTE) => State::QuoteInQuoted,
            (State::QuoteInQuoted, QUOTE) | (State::Quoted, _) => State::Quoted,
            (State::StartField | State::Unquoted | State::QuoteInQuoted, _) if b == delim => {
                State::StartField
            }
            (State::Unquoted, _) => State::Unquoted,
            (State::StartField | State::QuoteInQuoted, _) => State::Unquoted,
        };
    }
    state == State::Quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], cap: usize, max: usize) -> Vec<(u64, String)> {
        let mut lines = Lines::new(io::BufReader::with_capacity(cap, input), max);
        let mut out = Vec::new();
        while let Some((n, line)) = lines.next_line().expect("in-memory read") {
            out.push((
                n,
                match line {
                    Line::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    Line::TooLong { len, head } => format!("too long {len} {}", head.len()),
                },
            ));
        }
        out
    }

    #[test]
    fn line_numbers_count_as_an_editor_does() {
        let input = b"h\r\na\r\n\r\nb\n\nc\rd\r\r\ne";
        let want: Vec<(u64, String)> = [
            (1, "h"),
            (2, "a"),
            (3, ""),
            (4, "b"),
            (5, ""),
            (6, "c"),
            (7, "d"),
            (8, ""),
            (9, "e"),
        ]
        .iter()
        .map(|(n, s)| (*n, (*s).to_owned()))
        .collect();
        // Every buffer size, so `\r\n` split across a refill is still one break.
        for cap in 1..=input.len() + 1 {
            assert_eq!(read_all(input, cap, 100), want, "capacity {cap}");
        }
        assert_eq!(read_all(b"a\n", 8, 100), [(1, "a".to_owned())]);
        assert_eq!(read_all(b"", 8, 100), []);
        assert_eq!(read_all(b"\n", 8, 100), [(1, String::new())]);
    }

    #[test]
    fn find_eol_agrees_with_a_byte_scan() {
        // Bytes one bit away from `\n`/`\r` too, where a SWAR slip would show.
        let bytes = [b'a', 0x8a, 0x8d, 0x0b, 0x0e, 0x0c, 0xff, 0x00];
        let mut state = 0u64;
        for len in 0..70 {
            for _ in 0..50 {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        state += 1;
                        // Line breaks rare, so later chunks get searched too.
                        match crate::rng::mix(state) % 64 {
                            0 => b'\n',
                            1 => b'\r',
                            r => bytes[r as usize % 8],
                        }
                    })
                    .collect();
                let want = s.iter().position(|&b| b == b'\n' || b == b'\r');
                assert_eq!(find_eol(&s), want, "{s:?}");
            }
        }
    }

    #[test]
    fn a_long_line_is_bounded_and_the_next_line_still_read() {
        let mut input = vec![b'x'; 1000];
        input.extend_from_slice(b"\r\nok\n");
        assert_eq!(
            read_all(&input, 64, 100),
            [(1, "too long 1000 100".to_owned()), (2, "ok".to_owned())]
        );
        // Exactly the limit is fine.
        assert_eq!(read_all(b"12345\n", 4, 5), [(1, "12345".to_owned())]);
    }

    fn split(line: &str, delim: u8) -> (Vec<String>, bool) {
        let mut s = Splitter::default();
        let (f, open) = s.split(line, delim);
        (f.into_iter().map(str::to_owned).collect(), open)
    }

    #[test]
    fn fields_follow_the_csv_crates_quoting() {
        let cases: [(&str, &[&str], bool); 11] = [
            ("a,b,,c", &["a", "b", "", "c"], false),
            ("a,", &["a", ""], false),
            ("", &[""], false),
            (r#"1,"Quoted, Name",x"#, &["1", "Quoted, Name", "x"], false),
            (r#""say ""hi""",2"#, &[r#"say "hi""#, "2"], false),
            (r#"O"Brien,2"#, &[r#"O"Brien"#, "2"], false),
            (r#""ab"c,d"#, &["abc", "d"], false),
            (r#"a,"",b"#, &["a", "", "b"], false),
            (r#"a,"open, still"#, &["a", "open, still"], true),
            (r#"a,"x"","#, &["a", r#"x","#], true),
            ("é,\"ü, ß\"", &["é", "ü, ß"], false),
        ];
        for (line, want, open) in cases {
            assert_eq!(
                split(line, b','),
                (want.iter().map(|s| (*s).to_owned()).collect(), open),
                "{line}"
            );
            // The parser agrees with the csv crate on every closed line.
            if !open {
                let mut r = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(line.as_bytes());
                if let Some(rec) = r.records().next() {
                    let rec = rec.expect("csv parses it");
                    assert_eq!(rec.iter().collect::<Vec<_>>(), *want, "{line}");
                }
            }
        }
        assert_eq!(
            split("a;\"b;c\";d", b';'),
            (vec!["a".into(), "b;c".into(), "d".into()], false)
        );
        assert_eq!(split("a\tb", b'\t'), (vec!["a".into(), "b".into()], false));
    }

    #[test]
    fn an_open_quote_continues_until_a_line_leaves_it_closed() {
        assert!(still_quoted_after(b"no quote here, at all", b','));
        assert!(!still_quoted_after(b"closes\",1,2", b','));
        // `""` is an escaped quote, not a close.
        assert!(still_quoted_after(b"esc \"\" aped", b','));
        // Closes, then a later field opens a new quote.
        assert!(still_quoted_after(b"x\",1,\"again", b','));
        // Closes, then a quote inside an unquoted field is literal.
        assert!(!still_quoted_after(b"x\",a\"b", b','));
        assert!(still_quoted_after(b"", b','));
    }
}
