//! The text format of arrays (`array_out`/`array_in`).

use super::{malformed, nest_flat, MAX_DIMS};
use crate::decode::DecodeError;
use std::borrow::Cow;

/// A text-format (`array_out`) array, validated: its dimensions and its elements flat, in
/// row-major order. An element is borrowed from the input unless it contained backslash
/// escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextArray<'a> {
    ndim: usize,
    dims: [usize; MAX_DIMS],
    elements: Vec<Option<Cow<'a, str>>>,
}

impl<'a> TextArray<'a> {
    /// The length of each dimension, outermost first; `[]` for an empty array. Every length is
    /// at least 1.
    pub fn dims(&self) -> &[usize] {
        self.dims.get(..self.ndim).unwrap_or(&[])
    }

    /// The elements in row-major order; `None` is NULL (the unquoted word `NULL`; a quoted
    /// `"NULL"` is the string).
    pub fn elements(&self) -> &[Option<Cow<'a, str>>] {
        &self.elements
    }

    pub fn into_elements(self) -> Vec<Option<Cow<'a, str>>> {
        self.elements
    }

    pub fn len(&self) -> usize {
        self.elements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Builds the nested structure, as [`super::BinaryArray::nest`] does.
    pub fn nest<T, E>(
        &self,
        leaf: impl FnMut(Option<&str>) -> Result<T, E>,
        group: impl FnMut(Vec<T>) -> Result<T, E>,
    ) -> Result<Vec<T>, E> {
        nest_flat(
            self.dims(),
            self.elements.len(),
            self.elements.iter().map(|e| e.as_deref()),
            leaf,
            group,
        )
    }
}

/// White space as `array_in` sees it (`scanner_isspace`); note `\v`, which
/// `u8::is_ascii_whitespace` leaves out.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

fn skip_space(b: &[u8], mut p: usize) -> usize {
    while b.get(p).copied().is_some_and(is_space) {
        p += 1;
    }
    p
}

/// What the text array parser has just read, so what may come next.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Just after `{`: an element, `{`, or (for the outermost level only) `}`.
    Open,
    /// After an element or a `}`: the delimiter or `}`.
    Item,
    /// After the delimiter: an element or `{`.
    Delim,
}

/// Parses a text-format array as `array_out` writes it (and as `array_in` reads it).
///
/// `delim` is the element type's delimiter: `b','` for every built-in type but `box`
/// (`b';'`). It must be ASCII and not a brace, quote, backslash or white space.
///
/// Accepted: white space around the braces, delimiters and unquoted elements (trimmed);
/// quoted elements with backslash escapes; backslash escapes inside unquoted elements too;
/// the unquoted word `NULL` in any case as NULL; an optional dimension decoration such as
/// `[0:1]={1,2}` or `[2]={1,2}`, checked against the actual dimensions and then ignored.
///
/// Rejected: invalid UTF-8, unbalanced braces, anything but white space after the closing
/// brace, more than [`MAX_DIMS`] levels, ragged sub-arrays, elements and sub-arrays mixed at
/// one level, empty sub-arrays (`{{},{}}`: only the whole array may be empty), an
/// unterminated quote, a quote inside an unquoted element or text between a closing quote
/// and the next delimiter, and a decoration that disagrees with the contents.
pub fn parse_text_array(raw: &[u8], delim: u8) -> Result<TextArray<'_>, DecodeError> {
    if !delim.is_ascii() || is_space(delim) || matches!(delim, b'{' | b'}' | b'"' | b'\\') {
        return malformed(format!("unusable delimiter byte {delim:#04x}"));
    }
    let Ok(s) = std::str::from_utf8(raw) else {
        return malformed("invalid UTF-8");
    };
    let b = s.as_bytes();

    let mut p = skip_space(b, 0);
    let decoration = if b.get(p) == Some(&b'[') {
        let (dims, after) = parse_decoration(b, p)?;
        p = after;
        Some(dims)
    } else {
        None
    };
    if b.get(p) != Some(&b'{') {
        return malformed("array value must start with \"{\" or a dimension decoration");
    }

    let mut depth: usize = 0;
    // 0 until the first element fixes the number of dimensions.
    let mut ndim: usize = 0;
    // Lengths per level, 0 until the first sub-array of that level closes (sub-arrays are
    // never empty, so 0 is free to mean "unknown").
    let mut dims = [0usize; MAX_DIMS];
    // Children seen so far in the sub-array open at each level.
    let mut counts = [0usize; MAX_DIMS];
    let mut elements: Vec<Option<Cow<'_, str>>> = Vec::new();
    let mut next = Next::Open;
    let mut empty = false;

    // The opening brace.
    p += 1;
    depth += 1;

    while depth > 0 {
        p = skip_space(b, p);
        let Some(&c) = b.get(p) else {
            return malformed("unexpected end of input (unbalanced braces)");
        };
        match next {
            Next::Open | Next::Delim => {
                if c == b'{' {
                    if depth >= MAX_DIMS {
                        return malformed(format!("more than {MAX_DIMS} dimensions"));
                    }
                    if ndim != 0 && depth >= ndim {
                        return malformed("unexpected \"{\": sub-array where an element belongs");
                    }
                    if let Some(n) = counts.get_mut(depth - 1) {
                        *n += 1;
                    }
                    if let Some(n) = counts.get_mut(depth) {
                        *n = 0;
                    }
                    depth += 1;
                    p += 1;
                    next = Next::Open;
                } else if c == b'}' {
                    if next == Next::Open && depth == 1 {
                        // `{}`: the whole array is empty.
                        empty = true;
                        depth = 0;
                        p += 1;
                    } else if next == Next::Open {
                        return malformed("empty sub-array");
                    } else {
                        return malformed("unexpected \"}\" after a delimiter");
                    }
                } else if c == delim {
                    return malformed("unexpected delimiter: missing element");
                } else {
                    if ndim == 0 {
                        ndim = depth;
                    } else if depth != ndim {
                        return malformed("element where a sub-array belongs");
                    }
                    let (element, after) = if c == b'"' {
                        quoted_element(s, p, delim)?
                    } else {
                        unquoted_element(s, p, delim)?
                    };
                    elements.push(element);
                    if let Some(n) = counts.get_mut(depth - 1) {
                        *n += 1;
                    }
                    p = after;
                    next = Next::Item;
                }
            }
            Next::Item => {
                if c == delim {
                    p += 1;
                    next = Next::Delim;
                } else if c == b'}' {
                    let level = depth - 1;
                    let (Some(&n), Some(known)) = (counts.get(level), dims.get_mut(level)) else {
                        return malformed("too many dimensions");
                    };
                    if *known == 0 {
                        *known = n;
                    } else if *known != n {
                        return malformed(
                            "multidimensional arrays must have sub-arrays with matching dimensions",
                        );
                    }
                    depth -= 1;
                    p += 1;
                } else {
                    return malformed(format!(
                        "unexpected {:?}: expected {:?} or \"}}\"",
                        char::from(c),
                        char::from(delim)
                    ));
                }
            }
        }
    }

    if skip_space(b, p) != b.len() {
        return malformed("junk after the closing brace");
    }

    let (ndim, dims) = if empty {
        (0, [0; MAX_DIMS])
    } else {
        (ndim, dims)
    };
    if let Some((dec_ndim, dec_dims)) = decoration {
        let dec = dec_dims.get(..dec_ndim).unwrap_or(&[]);
        let ok = if empty {
            dec.contains(&0)
        } else {
            dec == dims.get(..ndim).unwrap_or(&[])
        };
        if !ok {
            return malformed("specified array dimensions do not match array contents");
        }
    }
    Ok(TextArray {
        ndim,
        dims,
        elements,
    })
}

/// Parses `[lb:ub]` / `[ub]` groups and the `=` after them, starting at the first `[`.
/// Returns the dimension lengths and the position of what follows `=` and white space.
fn parse_decoration(
    b: &[u8],
    mut p: usize,
) -> Result<((usize, [usize; MAX_DIMS]), usize), DecodeError> {
    let mut n = 0;
    let mut dims = [0usize; MAX_DIMS];
    loop {
        p = skip_space(b, p);
        if b.get(p) != Some(&b'[') {
            break;
        }
        p += 1;
        let (first, after) = parse_bound(b, p)?;
        p = after;
        let (lower, upper) = if b.get(p) == Some(&b':') {
            let (upper, after) = parse_bound(b, p + 1)?;
            p = after;
            (first, upper)
        } else {
            (1, first)
        };
        if b.get(p) != Some(&b']') {
            return malformed("missing \"]\" in array dimensions");
        }
        p += 1;
        // A length of 0 (upper = lower - 1) is allowed here; it only matches `{}`.
        let len = i64::from(upper) - i64::from(lower) + 1;
        let Ok(len) = usize::try_from(len) else {
            return malformed("upper bound cannot be less than lower bound");
        };
        let Some(slot) = dims.get_mut(n) else {
            return malformed(format!("more than {MAX_DIMS} dimensions"));
        };
        *slot = len;
        n += 1;
    }
    if b.get(p) != Some(&b'=') {
        return malformed("missing \"=\" after array dimensions");
    }
    Ok(((n, dims), skip_space(b, p + 1)))
}

/// An `i32` with optional white space and sign before it.
fn parse_bound(b: &[u8], p: usize) -> Result<(i32, usize), DecodeError> {
    let mut p = skip_space(b, p);
    let negative = match b.get(p) {
        Some(b'-') => {
            p += 1;
            true
        }
        Some(b'+') => {
            p += 1;
            false
        }
        _ => false,
    };
    let start = p;
    let mut value: i64 = 0;
    while let Some(&c) = b.get(p) {
        if !c.is_ascii_digit() {
            break;
        }
        value = value * 10 + i64::from(c - b'0');
        if value > i64::from(i32::MAX) + 1 {
            return malformed("array bound is out of integer range");
        }
        p += 1;
    }
    if p == start {
        return malformed("missing array dimension value");
    }
    let value = if negative { -value } else { value };
    match i32::try_from(value) {
        Ok(v) => Ok((v, p)),
        Err(_) => malformed("array bound is out of integer range"),
    }
}

/// Removes backslash escapes: a backslash means the character after it, literally.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A quoted element starting at the `"` at `start`. Returns it and the position of the
/// delimiter or `}` after it.
fn quoted_element<'a>(
    s: &'a str,
    start: usize,
    delim: u8,
) -> Result<(Option<Cow<'a, str>>, usize), DecodeError> {
    let b = s.as_bytes();
    let mut p = start + 1;
    let mut escaped = false;
    loop {
        match b.get(p) {
            None => return malformed("unterminated quoted element"),
            Some(b'"') => break,
            Some(b'\\') => {
                if p + 1 >= b.len() {
                    return malformed("unterminated quoted element");
                }
                escaped = true;
                // A multi-byte character after the backslash: its continuation bytes are
                // never `"` or `\`, so skipping only the lead byte is enough.
                p += 2;
            }
            Some(_) => p += 1,
        }
    }
    let Some(content) = s.get(start + 1..p) else {
        return malformed("invalid UTF-8 boundary in quoted element");
    };
    let after = skip_space(b, p + 1);
    match b.get(after) {
        Some(&c) if c == delim || c == b'}' => {}
        Some(_) => return malformed("incorrectly quoted array element"),
        None => return malformed("unexpected end of input after a quoted element"),
    }
    let value = if escaped {
        Cow::Owned(unescape(content))
    } else {
        Cow::Borrowed(content)
    };
    Ok((Some(value), after))
}

/// An unquoted element starting at `start` (not white space, a brace, a quote or the
/// delimiter). Returns it (trailing white space trimmed, `None` for `NULL`) and the position
/// of the delimiter or `}` after it.
fn unquoted_element<'a>(
    s: &'a str,
    start: usize,
    delim: u8,
) -> Result<(Option<Cow<'a, str>>, usize), DecodeError> {
    let b = s.as_bytes();
    let mut p = start;
    // End of the element without its trailing white space; an escaped space is kept.
    let mut end = start;
    let mut escaped = false;
    loop {
        let Some(&c) = b.get(p) else {
            return malformed("unexpected end of input inside an element");
        };
        if c == delim || c == b'}' {
            break;
        }
        match c {
            b'{' => return malformed("unexpected \"{\" inside an element"),
            b'"' => return malformed("incorrectly quoted array element"),
            b'\\' => {
                if p + 1 >= b.len() {
                    return malformed("unexpected end of input after a backslash");
                }
                escaped = true;
                p += 2;
                end = p;
            }
            c if is_space(c) => p += 1,
            _ => {
                p += 1;
                end = p;
            }
        }
    }
    let Some(text) = s.get(start..end) else {
        return malformed("invalid UTF-8 boundary in element");
    };
    let value = if escaped {
        Some(Cow::Owned(unescape(text)))
    } else if text.eq_ignore_ascii_case("NULL") {
        None
    } else {
        Some(Cow::Borrowed(text))
    };
    Ok((value, p))
}

/// Writes one element for `array_in`: always quoted, `"` and `\` escaped, so it reads back as
/// exactly `s` (never as NULL, never trimmed).
pub fn write_text_element(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut rest = s;
    while let Some(i) = rest.find(['"', '\\']) {
        let (plain, tail) = rest.split_at(i);
        out.push_str(plain);
        out.push('\\');
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
    out.push('"');
}

/// Writes a whole array literal: `{}` when there are no elements, else nested braces per
/// `dims`, every element quoted by [`write_text_element`] and NULL as the bare word `NULL`.
/// For tests and fuzzing: the caller keeps `elements.len()` equal to the product of `dims`
/// (all >= 1) and `delim` ASCII and not a letter of `NULL` (which would run into the bare
/// word), or the output will not parse. PostgreSQL's own delimiters are `,` and `;`.
pub fn write_text_array(dims: &[usize], elements: &[Option<&str>], delim: u8, out: &mut String) {
    if dims.is_empty() || elements.is_empty() {
        out.push_str("{}");
        return;
    }
    let delim = char::from(delim);
    // strides[k]: the number of elements in one sub-array at depth k.
    let mut strides = [1usize; MAX_DIMS];
    let mut acc = 1usize;
    for (stride, &d) in strides.iter_mut().zip(dims).rev() {
        acc = acc.saturating_mul(d.max(1));
        *stride = acc;
    }
    let strides = strides.get(..dims.len().min(MAX_DIMS)).unwrap_or(&[]);
    for _ in strides {
        out.push('{');
    }
    for (i, element) in elements.iter().enumerate() {
        if i > 0 {
            // Sub-arrays that end before element i, innermost first.
            let closed = strides.iter().rev().take_while(|&&st| i % st == 0).count();
            for _ in 0..closed {
                out.push('}');
            }
            out.push(delim);
            for _ in 0..closed {
                out.push('{');
            }
        }
        match element {
            None => out.push_str("NULL"),
            Some(s) => write_text_element(s, out),
        }
    }
    for _ in strides {
        out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::super::strategies::array_strategy;
    use super::*;
    use proptest::prelude::*;

    fn text(raw: &str) -> TextArray<'_> {
        parse_text_array(raw.as_bytes(), b',').unwrap()
    }

    fn elems<'a>(a: &'a TextArray<'_>) -> Vec<Option<&'a str>> {
        a.elements().iter().map(|e| e.as_deref()).collect()
    }

    fn rejects(raw: &str) {
        assert!(
            parse_text_array(raw.as_bytes(), b',').is_err(),
            "accepted {raw:?}"
        );
    }

    #[test]
    fn text_basics() {
        let a = text("{a,b,c}");
        assert_eq!(a.dims(), &[3]);
        assert_eq!(elems(&a), [Some("a"), Some("b"), Some("c")]);

        let a = text("{}");
        assert_eq!(a.dims(), &[] as &[usize]);
        assert!(a.is_empty());
        let a = text("  { }  ");
        assert_eq!(a.dims(), &[] as &[usize]);

        let a = text("{{1,2},{3,4}}");
        assert_eq!(a.dims(), &[2, 2]);
        assert_eq!(elems(&a), [Some("1"), Some("2"), Some("3"), Some("4")]);
    }

    #[test]
    fn text_quoting_and_null() {
        let a = text(r#"{"a\"b","c\\d",NULL,"NULL","",null,NuLl}"#);
        assert_eq!(a.dims(), &[7]);
        assert_eq!(
            elems(&a),
            [
                Some("a\"b"),
                Some("c\\d"),
                None,
                Some("NULL"),
                Some(""),
                None,
                None
            ]
        );
        // Escaped NULL is a string; escapes in unquoted elements; escaped trailing space kept.
        let a = text(r"{\NULL,a\,b,x\ , y }");
        assert_eq!(
            elems(&a),
            [Some("NULL"), Some("a,b"), Some("x "), Some("y")]
        );
        // Borrowed when there is nothing to unescape.
        let a = text(r#"{"plain",x,"e\\"}"#);
        assert!(matches!(a.elements()[0], Some(Cow::Borrowed("plain"))));
        assert!(matches!(a.elements()[1], Some(Cow::Borrowed("x"))));
        assert!(matches!(a.elements()[2], Some(Cow::Owned(_))));
        // Unicode, with an escaped multi-byte character.
        let a = text("{\"é\\ü\",ß x,\\€}");
        assert_eq!(elems(&a), [Some("éü"), Some("ß x"), Some("€")]);
    }

    #[test]
    fn text_whitespace() {
        let a = text("{ 1 , 2 }");
        assert_eq!(elems(&a), [Some("1"), Some("2")]);
        let a = text("\t{ { a b , \"c\" } ,\n{ d,e\x0b} }\r\n");
        assert_eq!(a.dims(), &[2, 2]);
        assert_eq!(elems(&a), [Some("a b"), Some("c"), Some("d"), Some("e")]);
    }

    #[test]
    fn text_multi_dim() {
        let a = text("{{1,2,3},{4,5,6}}");
        assert_eq!(a.dims(), &[2, 3]);
        assert_eq!(a.len(), 6);
        assert_eq!(elems(&a)[5], Some("6"));

        let a = text("{{{1,2},{3,4}},{{5,6},{7,NULL}}}");
        assert_eq!(a.dims(), &[2, 2, 2]);
        assert_eq!(elems(&a)[7], None);

        let six = "{{{{{{x}}}}}}";
        assert_eq!(text(six).dims(), &[1, 1, 1, 1, 1, 1]);
        rejects("{{{{{{{x}}}}}}}");
        rejects("{{{{{{{");
    }

    #[test]
    fn text_rejects() {
        rejects("{{1,2},{3}}");
        rejects("{{1},{2,3}}");
        rejects("{{1,2},3}");
        rejects("{1,{2,3}}");
        rejects("{{1},{{2}}}");
        rejects("{{},{}}");
        rejects("{{}}");
        rejects("{1,2");
        rejects("{1,2}}");
        rejects("{1,2} x");
        rejects("{1,,2}");
        rejects("{1,}");
        rejects("{,1}");
        rejects("{\"abc}");
        rejects("{\"abc\\\"}");
        rejects("{\"a\"b}");
        rejects("{a\"b\"}");
        rejects("{a{b}");
        rejects("{a\\");
        rejects("");
        rejects("1,2");
        rejects("}");
        assert!(parse_text_array(b"{\xff}", b',').is_err());
        assert!(parse_text_array(b"{a}", b'"').is_err());
        assert!(parse_text_array(b"{a}", 0xc3).is_err());
    }

    #[test]
    fn text_decoration() {
        let a = text("[0:2]={1,2,3}");
        assert_eq!(a.dims(), &[3]);
        assert_eq!(elems(&a), [Some("1"), Some("2"), Some("3")]);
        let a = text("[1:2][1:1]={{1},{2}}");
        assert_eq!(a.dims(), &[2, 1]);
        let a = text(" [-3:-2] = {x,y}");
        assert_eq!(a.dims(), &[2]);
        let a = text("[2]={x,y}");
        assert_eq!(a.dims(), &[2]);
        let a = text("[1:0]={}");
        assert!(a.is_empty());
        rejects("[0:1]={1,2,3}");
        rejects("[0:2]={{1},{2},{3}}");
        rejects("[1:2][1:1]={1,2}");
        rejects("[2:1]={1}");
        rejects("[0:2={1,2,3}");
        rejects("[0:2]{1,2,3}");
        rejects("[:2]={1,2,3}");
        rejects("[0:99999999999]={1}");
        rejects("[1:1][1:1][1:1][1:1][1:1][1:1][1:1]={{{{{{{1}}}}}}}");
    }

    #[test]
    fn text_box_delimiter() {
        let a = parse_text_array(b"{(1,1),(0,0);(3,3),(2,2)}", b';').unwrap();
        assert_eq!(a.dims(), &[2]);
        assert_eq!(elems(&a), [Some("(1,1),(0,0)"), Some("(3,3),(2,2)")]);
    }

    #[test]
    fn text_writer() {
        let mut out = String::new();
        write_text_element("a\"b\\c", &mut out);
        assert_eq!(out, r#""a\"b\\c""#);

        let mut out = String::new();
        write_text_array(
            &[2, 2],
            &[Some("1"), None, Some(""), Some("NULL")],
            b',',
            &mut out,
        );
        assert_eq!(out, r#"{{"1",NULL},{"","NULL"}}"#);

        let mut out = String::new();
        write_text_array(&[], &[], b',', &mut out);
        assert_eq!(out, "{}");
    }

    #[test]
    fn text_nest() {
        let a = text("{{1,2,3},{4,5,6}}");
        let nested: Vec<Vec<String>> = a
            .nest(
                |e| Ok::<_, ()>(vec![e.unwrap_or("null").to_owned()]),
                |children| Ok(vec![children.concat().join(" ")]),
            )
            .unwrap();
        assert_eq!(nested, [vec!["1 2 3".to_owned()], vec!["4 5 6".to_owned()]]);
    }

    // Mimics `array_out`: quotes only what needs quoting.
    fn pg_like_out(dims: &[usize], elements: &[Option<String>], delim: u8) -> String {
        if dims.is_empty() || elements.is_empty() {
            return "{}".to_owned();
        }
        let mut strides = vec![1usize; dims.len()];
        let mut acc = 1;
        for k in (0..dims.len()).rev() {
            acc *= dims[k];
            strides[k] = acc;
        }
        let mut s = String::new();
        s.push_str(&"{".repeat(dims.len()));
        for (i, e) in elements.iter().enumerate() {
            if i > 0 {
                let closed = strides.iter().rev().take_while(|&&st| i % st == 0).count();
                s.push_str(&"}".repeat(closed));
                s.push(char::from(delim));
                s.push_str(&"{".repeat(closed));
            }
            match e {
                None => s.push_str("NULL"),
                Some(v) => {
                    let needs = v.is_empty()
                        || v.eq_ignore_ascii_case("NULL")
                        || v.bytes().any(|c| {
                            matches!(c, b'"' | b'\\' | b'{' | b'}') || c == delim || is_space(c)
                        });
                    if needs {
                        write_text_element(v, &mut s);
                    } else {
                        s.push_str(v);
                    }
                }
            }
        }
        s.push_str(&"}".repeat(dims.len()));
        s
    }

    proptest! {
        #[test]
        fn text_round_trip((dims, elements) in array_strategy(), semi: bool) {
            let delim = if semi { b';' } else { b',' };
            let refs: Vec<Option<&str>> = elements.iter().map(|e| e.as_deref()).collect();
            let mut out = String::new();
            write_text_array(&dims, &refs, delim, &mut out);
            let parsed = parse_text_array(out.as_bytes(), delim).unwrap();
            prop_assert_eq!(parsed.dims(), &dims[..]);
            prop_assert_eq!(elems(&parsed), refs.clone());

            let pg = pg_like_out(&dims, &elements, delim);
            let parsed = parse_text_array(pg.as_bytes(), delim).unwrap();
            prop_assert_eq!(parsed.dims(), &dims[..]);
            prop_assert_eq!(elems(&parsed), refs);
        }

        #[test]
        fn text_parse_never_panics(bytes: Vec<u8>, semi: bool) {
            let delim = if semi { b';' } else { b',' };
            if let Ok(a) = parse_text_array(&bytes, delim) {
                prop_assert_eq!(a.len(), a.dims().iter().product::<usize>() * usize::from(!a.dims().is_empty()));
            }
        }

        #[test]
        fn text_near_miss_never_panics(s in "[\\[\\]{}\",;\\\\ :=0-9aNUL\t-]{0,40}") {
            if let Ok(a) = parse_text_array(s.as_bytes(), b',') {
                let expected = if a.dims().is_empty() { 0 } else { a.dims().iter().product::<usize>() };
                prop_assert_eq!(a.len(), expected);
                prop_assert!(a.dims().len() <= MAX_DIMS);
            }
        }
    }
}
