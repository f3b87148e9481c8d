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
        b'-' | b'0'..=b'9' => {
            let end = number_end(b, p)?;
            Some((Flat::Number(number(&text[p..end])?), end))
        }
        _ => None,
    }
}

/// The value of a text of JSON's number grammar, rounded to nearest as JSON.parse does.
fn number(t: &str) -> Option<f64> {
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    // An integer of up to 18 digits is exact in an i64, and `as f64` rounds it to nearest:
    // the common case, without the general parser.
    if digits.len() <= 18 && digits.bytes().all(|c| c.is_ascii_digit()) {
        let n = digits
            .bytes()
            .fold(0i64, |n, c| n * 10 + i64::from(c - b'0'));
        let x = n as f64;
        return Some(if negative { -x } else { x });
    }
    // Any other text of the grammar is one Rust's f64 parser reads.
    t.parse().ok()
}

/// The end of the JSON number starting at `p`:
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn number_end(b: &[u8], mut p: usize) -> Option<usize> {
    let digits = |mut p: usize| {
        let s = p;
        while b.get(p).is_some_and(u8::is_ascii_digit) {
            p += 1;
        }
        (p > s).then_some(p)
    };
    if b.get(p) == Some(&b'-') {
        p += 1;
    }
    p = match b.get(p)? {
        b'0' => p + 1,
        b'1'..=b'9' => digits(p)?,
        _ => return None,
    };
    if b.get(p) == Some(&b'.') {
        p = digits(p + 1)?;
    }
    if matches!(b.get(p), Some(b'e' | b'E')) {
        p += 1;
        if matches!(b.get(p), Some(b'+' | b'-')) {
            p += 1;
        }
        p = digits(p)?;
    }
    Some(p)
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
