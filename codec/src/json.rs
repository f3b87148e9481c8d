//! Flat JSON objects: the common json/jsonb value that is one object of scalar members.
//!
//! A large result's json column is normally joined into one JSON array and parsed at once
//! by the JS engine. When every value is an object of scalars (numbers, strings, booleans,
//! nulls), the members can instead travel like columns and the objects be built in JS from
//! one compiled literal, the way rows are: no JSON parsing on the JS thread at all.
//! [`flat_object`] recognises such a value and reads its members; anything else (nesting,
//! escapes, a text the JS parser would refuse) is left to the JSON parser, so the values a
//! user sees never depend on which way they came.

/// A member's value in a flat object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flat<'a> {
    /// The number `JSON.parse` gives for the member's text (round to nearest, like it).
    Number(f64),
    /// A string with no escape sequence: its text is its value.
    Str(&'a str),
    Bool(bool),
    Null,
}

/// Reads `text` as one JSON object whose member values are all scalars and whose keys and
/// strings hold no escape sequence, calling `member(index, key, value)` for each member in
/// order. Stops at the first member for which `member` returns false. Returns the number of
/// members, or `None` if the text is anything else, or `member` stopped it.
pub fn flat_object<'a>(
    text: &'a str,
    mut member: impl FnMut(usize, &'a str, Flat<'a>) -> bool,
) -> Option<usize> {
    let b = text.as_bytes();
    let mut p = skip_ws(b, 0);
    if b.get(p) != Some(&b'{') {
        return None;
    }
    p = skip_ws(b, p + 1);
    let mut n = 0;
    if b.get(p) == Some(&b'}') {
        return (skip_ws(b, p + 1) == b.len()).then_some(0);
    }
    loop {
        let (key, q) = string(text, p)?;
        p = skip_ws(b, q);
        if b.get(p) != Some(&b':') {
            return None;
        }
        p = skip_ws(b, p + 1);
        let (value, q) = scalar(text, p)?;
        if !member(n, key, value) {
            return None;
        }
        n += 1;
        p = skip_ws(b, q);
        match b.get(p) {
            Some(b',') => p = skip_ws(b, p + 1),
            Some(b'}') => return (skip_ws(b, p + 1) == b.len()).then_some(n),
            _ => return None,
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
            // A text of JSON's number grammar is one Rust's f64 parser reads, rounding to
            // nearest as JSON.parse does.
            let v: f64 = text[p..end].parse().ok()?;
            Some((Flat::Number(v), end))
        }
        _ => None,
    }
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

    fn members(text: &str) -> Option<Vec<(String, Flat<'_>)>> {
        let mut out = Vec::new();
        flat_object(text, |i, k, v| {
            assert_eq!(i, out.len());
            out.push((k.to_string(), v));
            true
        })
        .map(|n| {
            assert_eq!(n, out.len());
            out
        })
    }

    #[test]
    fn reads_flat_objects() {
        assert_eq!(members("{}"), Some(vec![]));
        assert_eq!(members(" { } "), Some(vec![]));
        assert_eq!(
            members(r#"{"id": 7, "tag": "k7", "ok": true, "no": false, "z": null}"#),
            Some(vec![
                ("id".into(), Flat::Number(7.0)),
                ("tag".into(), Flat::Str("k7")),
                ("ok".into(), Flat::Bool(true)),
                ("no".into(), Flat::Bool(false)),
                ("z".into(), Flat::Null),
            ])
        );
        assert_eq!(
            members("{\"é\":\"ü😀\"}"),
            Some(vec![("é".into(), Flat::Str("ü😀"))])
        );
    }

    #[test]
    fn numbers_follow_json_grammar_and_round_like_json_parse() {
        let num = |t: &str| match members(&format!("{{\"n\":{t}}}"))?.first()?.1 {
            Flat::Number(v) => Some(v),
            _ => None,
        };
        assert_eq!(num("0"), Some(0.0));
        assert!(num("-0").unwrap().is_sign_negative());
        assert_eq!(num("1.5e3"), Some(1500.0));
        assert_eq!(num("1E-2"), Some(0.01));
        assert_eq!(num("9007199254740993"), Some(9007199254740992.0));
        assert_eq!(num("1e400"), Some(f64::INFINITY));
        assert_eq!(num("0.1"), Some(0.1));
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
            "[]",
            "1",
            "\"s\"",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\":1 \"b\":2}",
            "{\"a\":1}x",
            "{\"a\":{\"b\":1}}",
            "{\"a\":[1]}",
            "{\"a\":\"x\\\"y\"}",
            "{\"a\\n\":1}",
            "{\"a\":\"tab\there\"}",
            "{\"a\":tru}",
            "{\"a\":nul}",
            "{a:1}",
        ] {
            assert_eq!(members(text), None, "{text:?}");
        }
    }

    #[test]
    fn the_callback_can_refuse_a_member() {
        assert_eq!(flat_object(r#"{"a":1,"b":2}"#, |i, _, _| i == 0), None);
    }
}
