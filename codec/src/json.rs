//! JSON documents of one fixed shape: the common json/jsonb value.
//!
//! A large result's json column is normally joined into one JSON array and parsed at once
//! by the JS engine. When every value has the same shape (objects with the same keys in the
//! same order, arrays of the same length, scalars of one kind at each place, any of them
//! possibly null), the scalars can instead travel like columns and the documents be built in
//! JS from one compiled literal, the way rows are: no JSON parsing on the JS thread at all.
//! [`Cursor`] reads such a value token by token; anything it does not read (escapes, a
//! text the JS parser would refuse) is left to the JSON parser, so the values a user sees
//! never depend on which way they came.

/// A scalar in a document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flat<'a> {
    /// The number `JSON.parse` gives for the member's text (round to nearest, like it).
    Number(f64),
    /// A string with no escape sequence: its text is its value.
    Str(&'a str),
    Bool(bool),
    Null,
}

/// The start of a value: a whole scalar, or the opening bracket of a container (whose
/// members [`Cursor::key`] and [`Cursor::item`] then read).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Token<'a> {
    Scalar(Flat<'a>),
    Object,
    Array,
}

/// Reads one JSON text token by token. Every method returns `None` on anything that is not
/// JSON (RFC 8259) or that the cursor leaves to a full parser: strings (keys included) with
/// an escape sequence. The caller keeps the nesting: after [`Token::Object`], call
/// [`Cursor::key`] until it gives `Some(None)`, reading each member's value in between;
/// after [`Token::Array`], the same with [`Cursor::item`].
pub struct Cursor<'a> {
    text: &'a str,
    p: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str) -> Cursor<'a> {
        Cursor { text, p: 0 }
    }

    /// The next value's start.
    pub fn value(&mut self) -> Option<Token<'a>> {
        let b = self.text.as_bytes();
        let p = skip_ws(b, self.p);
        let (token, q) = match *b.get(p)? {
            b'{' => (Token::Object, p + 1),
            b'[' => (Token::Array, p + 1),
            _ => scalar(self.text, p).map(|(v, q)| (Token::Scalar(v), q))?,
        };
        self.p = q;
        Some(token)
    }

    /// In an object, before its first member (`first`) or after a member's value: the next
    /// member's key (its colon read), or `Some(None)` at the closing brace.
    pub fn key(&mut self, first: bool) -> Option<Option<&'a str>> {
        if !self.next(first, b'}')? {
            return Some(None);
        }
        let b = self.text.as_bytes();
        let (key, q) = string(self.text, skip_ws(b, self.p))?;
        let q = skip_ws(b, q);
        if b.get(q) != Some(&b':') {
            return None;
        }
        self.p = q + 1;
        Some(Some(key))
    }

    /// In an array, before its first item (`first`) or after an item: whether another item
    /// follows (`false` at the closing bracket).
    pub fn item(&mut self, first: bool) -> Option<bool> {
        self.next(first, b']')
    }

    /// The next byte after any whitespace, not consumed: what kind of value comes (`{`,
    /// `[`, `"`, `t`, `f`, `n`, a digit or `-`), for a caller that knows the kind it expects
    /// and reads it with the method for that kind (and keys with [`Cursor::known_key`]),
    /// rather than taking [`Cursor::value`]'s token and matching on it. On W3-json's
    /// documents checked against their shape, 6–11% faster in three runs (`cargo bench -p
    /// benches --bench codec -- codec/jsonb/cursor`).
    pub fn peek(&mut self) -> Option<u8> {
        let b = self.text.as_bytes();
        self.p = skip_ws(b, self.p);
        b.get(self.p).copied()
    }

    /// The opening bracket `bracket` (`{` or `[`) of a container; its members or items
    /// then follow, as after [`Token::Object`] and [`Token::Array`].
    pub fn open(&mut self, bracket: u8) -> Option<()> {
        let b = self.text.as_bytes();
        let p = skip_ws(b, self.p);
        (matches!(bracket, b'{' | b'[') && b.get(p) == Some(&bracket)).then(|| self.p = p + 1)
    }

    /// A number, as [`Flat::Number`].
    pub fn number(&mut self) -> Option<f64> {
        let (x, q) = number(self.text, skip_ws(self.text.as_bytes(), self.p))?;
        self.p = q;
        Some(x)
    }

    /// A string, as [`Flat::Str`] (none with an escape sequence).
    pub fn string(&mut self) -> Option<&'a str> {
        let (s, q) = string(self.text, skip_ws(self.text.as_bytes(), self.p))?;
        self.p = q;
        Some(s)
    }

    /// `true` or `false`.
    pub fn boolean(&mut self) -> Option<bool> {
        let b = self.text.as_bytes();
        let p = skip_ws(b, self.p);
        let (v, len) = match b.get(p..) {
            Some([b't', b'r', b'u', b'e', ..]) => (true, 4),
            Some([b'f', b'a', b'l', b's', b'e', ..]) => (false, 5),
            _ => return None,
        };
        self.p = p + len;
        Some(v)
    }

    /// `null`.
    pub fn null(&mut self) -> Option<()> {
        let b = self.text.as_bytes();
        let p = skip_ws(b, self.p);
        matches!(b.get(p..), Some([b'n', b'u', b'l', b'l', ..])).then(|| self.p = p + 4)
    }

    /// As [`Cursor::key`] where the key is known: reads the next member's key and its
    /// colon if the key is `key`, by comparing the text in place. `None` otherwise: another
    /// key, the end of the object, text that is not JSON, or a `key` no string without
    /// escapes can spell (a quote, a backslash or a control character in it).
    pub fn known_key(&mut self, first: bool, key: &str) -> Option<()> {
        if !self.next(first, b'}')? {
            return None;
        }
        let b = self.text.as_bytes();
        let k = key.as_bytes();
        let p = skip_ws(b, self.p);
        let end = p + 1 + k.len();
        let spelled = b.get(p) == Some(&b'"')
            && b.get(p + 1..end)
                .is_some_and(|t| t.iter().zip(k).all(|(a, b)| a == b))
            && b.get(end) == Some(&b'"')
            && !k.iter().any(|&c| c == b'"' || c == b'\\' || c < 0x20);
        if !spelled {
            return None;
        }
        let q = skip_ws(b, end + 1);
        (b.get(q) == Some(&b':')).then(|| self.p = q + 1)
    }

    /// Whether only whitespace is left.
    pub fn at_end(&self) -> bool {
        skip_ws(self.text.as_bytes(), self.p) == self.text.len()
    }

    /// Reads the closing bracket `close` (then false) or, when not `first`, the comma before
    /// the next member (then true).
    fn next(&mut self, first: bool, close: u8) -> Option<bool> {
        let b = self.text.as_bytes();
        let p = skip_ws(b, self.p);
        match *b.get(p)? {
            c if c == close => {
                self.p = p + 1;
                Some(false)
            }
            b',' if !first => {
                self.p = p + 1;
                Some(true)
            }
            _ if first => Some(true),
            _ => None,
        }
    }
}

fn skip_ws(b: &[u8], mut p: usize) -> usize {
    while matches!(b.get(p), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        p += 1;
    }
    p
}

/// A string starting at `p` (its opening quote) with no escapes or control characters; its
/// contents and the position after its closing quote.
fn string(text: &str, p: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    if b.get(p) != Some(&b'"') {
        return None;
    }
    let start = p + 1;
    let len = b
        .get(start..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    let end = start + len;
    // The quote, a backslash and control characters are ASCII: `end` is a char boundary.
    (b[end] == b'"').then(|| (&text[start..end], end + 1))
}

fn scalar(text: &str, p: usize) -> Option<(Flat<'_>, usize)> {
    let b = text.as_bytes();
    let word = |w: &[u8], v| {
        b.get(p..p + w.len())
            .filter(|s| *s == w)
            .map(|_| (v, p + w.len()))
    };
    match *b.get(p)? {
        b'"' => string(text, p).map(|(s, q)| (Flat::Str(s), q)),
        b't' => word(b"true", Flat::Bool(true)),
        b'f' => word(b"false", Flat::Bool(false)),
        b'n' => word(b"null", Flat::Null),
        b'-' | b'0'..=b'9' => number(text, p).map(|(x, q)| (Flat::Number(x), q)),
        _ => None,
    }
}

/// 10^0 to 10^15, each exact in an f64.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The JSON number starting at `start`, `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]?
/// [0-9]+)?`: its value, rounded to nearest as JSON.parse does, and the position after it.
/// One pass reads the grammar and the digits' value; the common numbers are then exact
/// without the general parser.
fn number(text: &str, start: usize) -> Option<(f64, usize)> {
    let b = text.as_bytes();
    let negative = b.get(start) == Some(&b'-');
    let int = start + usize::from(negative);
    // The digits' value, exact while there are at most 19 of them.
    let mut m = 0u64;
    let mut p = match b.get(int)? {
        b'0' => int + 1,
        b'1'..=b'9' => digits(b, int, &mut m),
        _ => return None,
    };
    let int_digits = p - int;
    let mut frac_digits = 0;
    if b.get(p) == Some(&b'.') {
        let q = digits(b, p + 1, &mut m);
        frac_digits = q - (p + 1);
        if frac_digits == 0 {
            return None;
        }
        p = q;
    }
    let exponent = matches!(b.get(p), Some(b'e' | b'E'));
    if exponent {
        p += 1;
        if matches!(b.get(p), Some(b'+' | b'-')) {
            p += 1;
        }
        let q = digits(b, p, &mut 0);
        if q == p {
            return None;
        }
        p = q;
    }
    let x = if !exponent && frac_digits == 0 && int_digits <= 18 {
        // An integer exact in the u64; `as f64` rounds it to nearest.
        m as f64
    } else if !exponent && int_digits + frac_digits <= 15 {
        // A decimal of up to 15 digits: they are exact in an f64, and so is 10^k, so one
        // division rounds the quotient to nearest, as the full parser would (Clinger's
        // fast path).
        m as f64 / POW10[frac_digits]
    } else {
        // Any other text of the grammar is one Rust's f64 parser reads.
        return Some((text[start..p].parse().ok()?, p));
    };
    Some((if negative { -x } else { x }, p))
}

/// Reads digits from `p` into `m` (wrapping past 19 of them); the position after them.
fn digits(b: &[u8], mut p: usize, m: &mut u64) -> usize {
    while let Some(&c) = b.get(p) {
        if !c.is_ascii_digit() {
            break;
        }
        *m = m.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        p += 1;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Clone)]
    enum Tree {
        Num(f64),
        Str(String),
        Bool(bool),
        Null,
        Obj(Vec<(String, Tree)>),
        Arr(Vec<Tree>),
    }

    fn read(c: &mut Cursor<'_>) -> Option<Tree> {
        Some(match c.value()? {
            Token::Scalar(Flat::Number(x)) => Tree::Num(x),
            Token::Scalar(Flat::Str(s)) => Tree::Str(s.into()),
            Token::Scalar(Flat::Bool(b)) => Tree::Bool(b),
            Token::Scalar(Flat::Null) => Tree::Null,
            Token::Object => {
                let mut members = Vec::new();
                while let Some(k) = c.key(members.is_empty())? {
                    members.push((k.to_string(), read(c)?));
                }
                Tree::Obj(members)
            }
            Token::Array => {
                let mut items = Vec::new();
                while c.item(items.is_empty())? {
                    items.push(read(c)?);
                }
                Tree::Arr(items)
            }
        })
    }

    fn doc(text: &str) -> Option<Tree> {
        let mut c = Cursor::new(text);
        let t = read(&mut c)?;
        c.at_end().then_some(t)
    }

    fn obj(members: &[(&str, Tree)]) -> Tree {
        Tree::Obj(
            members
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn reads_objects_arrays_and_scalars() {
        assert_eq!(doc("{}"), Some(obj(&[])));
        assert_eq!(doc(" { } "), Some(obj(&[])));
        assert_eq!(doc(" [ ] "), Some(Tree::Arr(vec![])));
        assert_eq!(doc("7"), Some(Tree::Num(7.0)));
        assert_eq!(doc(" null "), Some(Tree::Null));
        assert_eq!(
            doc(r#"{"id": 7, "tag": "k7", "ok": true, "no": false, "z": null}"#),
            Some(obj(&[
                ("id", Tree::Num(7.0)),
                ("tag", Tree::Str("k7".into())),
                ("ok", Tree::Bool(true)),
                ("no", Tree::Bool(false)),
                ("z", Tree::Null),
            ]))
        );
        assert_eq!(
            doc("{\"é\":\"ü😀\"}"),
            Some(obj(&[("é", Tree::Str("ü😀".into()))]))
        );
        assert_eq!(
            doc(r#"{"a": {"b": [1, [], {}, "x"]}, "c": [null, true]}"#),
            Some(obj(&[
                (
                    "a",
                    obj(&[(
                        "b",
                        Tree::Arr(vec![
                            Tree::Num(1.0),
                            Tree::Arr(vec![]),
                            obj(&[]),
                            Tree::Str("x".into())
                        ])
                    )])
                ),
                ("c", Tree::Arr(vec![Tree::Null, Tree::Bool(true)])),
            ]))
        );
    }

    #[test]
    fn numbers_follow_json_grammar_and_round_like_json_parse() {
        let num = |t: &str| match doc(t)? {
            Tree::Num(v) => Some(v),
            _ => None,
        };
        assert_eq!(num("0"), Some(0.0));
        assert!(num("-0").unwrap().is_sign_negative());
        assert_eq!(num("1.5e3"), Some(1500.0));
        assert_eq!(num("1E-2"), Some(0.01));
        assert_eq!(num("9007199254740993"), Some(9007199254740992.0));
        assert_eq!(num("1e400"), Some(f64::INFINITY));
        assert_eq!(num("0.1"), Some(0.1));
        // Integers: exact in an i64 up to 18 digits, then the general parser; both round
        // to nearest.
        assert_eq!(num("-123456789012345678"), Some(-123456789012345678.0));
        assert_eq!(num("999999999999999999"), Some(999999999999999999.0));
        assert_eq!(num("9999999999999999999"), Some(9999999999999999999.0));
        assert_eq!(num("18446744073709551617"), Some(18446744073709551616.0));
        for bad in [
            "01", "+1", "1.", ".5", "1e", "1e+", "-", "NaN", "Infinity", "0x10", "1.5.2",
        ] {
            assert_eq!(num(bad), None, "{bad}");
        }
    }

    #[test]
    fn decimals_of_up_to_15_digits_round_as_the_full_parser_does() {
        // The fast path (digits over a power of ten) against Rust's parser, which rounds
        // to nearest as JSON.parse does: every split of a spread of digit strings.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for len in 1..=17 {
            for _ in 0..400 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let digits: String = (0..len)
                    .map(|i| char::from(b'0' + ((seed >> (i * 3)) % 10) as u8))
                    .collect();
                for point in 1..len {
                    let (int, frac) = digits.split_at(point);
                    let int = int.trim_start_matches('0');
                    let int = if int.is_empty() { "0" } else { int };
                    for sign in ["", "-"] {
                        let t = format!("{sign}{int}.{frac}");
                        let want: f64 = t.parse().unwrap();
                        let got = number(&t, 0).map(|(x, end)| (x.to_bits(), end));
                        assert_eq!(got, Some((want.to_bits(), t.len())), "{t}");
                    }
                }
            }
        }
        assert_eq!(number("8.8", 0), Some((8.8, 3)));
        assert_eq!(
            number("12.100000000000001", 0),
            Some((12.100000000000001, 18))
        );
        assert!(number("-0.0", 0).unwrap().0.is_sign_negative());
    }

    #[test]
    fn reads_by_kind_and_known_key() {
        let text =
            r#" {"id": 7, "tag": "k7", "ok": true, "no": false, "z": null, "a": [1.5, -2]} "#;
        let mut c = Cursor::new(text);
        assert_eq!(c.peek(), Some(b'{'));
        assert_eq!(c.open(b'['), None, "not the bracket there");
        assert_eq!(c.open(b'{'), Some(()));
        assert_eq!(c.known_key(true, "id"), Some(()));
        assert_eq!(c.peek(), Some(b'7'));
        assert_eq!(c.number(), Some(7.0));
        assert_eq!(c.known_key(false, "tag"), Some(()));
        assert_eq!(c.string(), Some("k7"));
        assert_eq!(c.known_key(false, "ok"), Some(()));
        assert_eq!(c.boolean(), Some(true));
        assert_eq!(c.known_key(false, "no"), Some(()));
        assert_eq!(c.boolean(), Some(false));
        // Another key than the known one, or a prefix of it, is not read.
        let at = c.p;
        assert_eq!(c.known_key(false, "y"), None);
        c.p = at;
        assert_eq!(c.known_key(false, "zz"), None);
        c.p = at;
        assert_eq!(c.known_key(false, ""), None);
        c.p = at;
        assert_eq!(c.known_key(false, "z"), Some(()));
        assert_eq!(c.boolean(), None, "null is not a boolean");
        assert_eq!(c.null(), Some(()));
        assert_eq!(c.known_key(false, "a"), Some(()));
        assert_eq!(c.open(b'['), Some(()));
        assert_eq!(c.item(true), Some(true));
        assert_eq!(c.number(), Some(1.5));
        assert_eq!(c.item(false), Some(true));
        assert_eq!(c.number(), Some(-2.0));
        assert_eq!(c.item(false), Some(false));
        // The closing brace: no member more, known or not.
        let at = c.p;
        assert_eq!(c.known_key(false, "a"), None);
        c.p = at;
        assert_eq!(c.key(false), Some(None));
        assert!(c.at_end());

        // A key no escape-free string spells is never matched, whatever the text.
        for (text, key) in [
            (r#"{"a"b": 1}"#, "a\"b"),
            (r#"{"a\\": 1}"#, "a\\\\"),
            ("{\"a\tb\": 1}", "a\tb"),
        ] {
            let mut c = Cursor::new(text);
            c.open(b'{').unwrap();
            assert_eq!(c.known_key(true, key), None, "{text}");
        }
        for (text, ok) in [
            ("tru", None),
            ("fals", None),
            ("true", Some(true)),
            ("nul", None),
        ] {
            assert_eq!(Cursor::new(text).boolean(), ok, "{text}");
        }
        assert_eq!(Cursor::new("nul").null(), None);
        assert_eq!(
            Cursor::new("\"a\\nb\"").string(),
            None,
            "escapes are the parser's"
        );
    }

    #[test]
    fn leaves_everything_else_to_the_json_parser() {
        for text in [
            "",
            "{",
            "[",
            "[1,]",
            "[,1]",
            "[1 2]",
            "]",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{,\"a\":1}",
            "{\"a\":1 \"b\":2}",
            "{\"a\":1}x",
            "{\"a\":[1}",
            "{\"a\":\"x\\\"y\"}",
            "{\"a\\n\":1}",
            "{\"a\":\"tab\there\"}",
            "{\"a\":tru}",
            "{\"a\":nul}",
            "{a:1}",
            "[\"\\u0041\"]",
        ] {
            assert_eq!(doc(text), None, "{text:?}");
        }
    }
}
