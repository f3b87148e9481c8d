//! PostgreSQL arrays: the binary format (`array_send`/`array_recv`) and the text format
//! (`array_out`/`array_in`).
//!
//! Both parsers validate the whole value up front, in one pass, and then hand out the
//! elements flat, in row-major order, together with the dimensions. Nothing is allocated in
//! proportion to a length read from the input before that length has been checked against
//! the size of the input.
//!
//! * [`BinaryArray::parse`] borrows: its elements are slices of the input, and walking them
//!   again with [`BinaryArray::elements`] cannot fail.
//! * [`parse_text_array`] borrows whenever it can: an element without backslash escapes is a
//!   slice of the input, only an element with escapes is copied.
//!
//! Lower bounds (`[0:2]={...}` in text, the lower-bound words in binary) are validated and
//! then dropped: the caller (JavaScript) indexes every dimension from 0.
//!
//! To build nested arrays from the flat elements, use `nest` ([`BinaryArray::nest`],
//! [`TextArray::nest`]): it walks the elements once, with an explicit stack of at most
//! [`MAX_DIMS`] levels (no recursion), and calls back for every element and every finished
//! sub-array. Doing it by hand is also simple: with dims `[d0, d1, .., dn]`, the flat index
//! of `[i0][i1]..[in]` is `((i0 * d1 + i1) * d2 + ..) * dn + in`.
//!
//! An empty array has no dimensions (`dims()` is `[]`), whichever way it was written: `{}`,
//! `ndim = 0`, or a binary header with a zero-length dimension (which `array_recv` also turns
//! into the empty array).

use crate::decode::{bad, DecodeError};
use std::borrow::Cow;

/// The most dimensions PostgreSQL allows in an array (`MAXDIM`).
pub const MAX_DIMS: usize = 6;

const TYPE_NAME: &str = "array";

fn malformed<T>(message: impl Into<String>) -> Result<T, DecodeError> {
    bad(TYPE_NAME, message)
}

// ---------------------------------------------------------------------------------------------
// Binary format
// ---------------------------------------------------------------------------------------------

/// A binary-format (`array_send`) array, validated, borrowing the input.
///
/// Layout (big-endian): `i32 ndim`, `i32 has_null` (0 or 1), `u32 element OID`, then `ndim`
/// pairs of `i32 length, i32 lower bound`, then every element in row-major order as an `i32`
/// byte length (-1 for NULL) followed by that many bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryArray<'a> {
    elem_oid: u32,
    ndim: usize,
    dims: [i32; MAX_DIMS],
    len: usize,
    has_null: bool,
    /// The element section: exactly `len` length-prefixed elements, nothing after them.
    data: &'a [u8],
}

fn read_i32(raw: &[u8]) -> Option<(i32, &[u8])> {
    let (head, rest) = raw.split_first_chunk::<4>()?;
    Some((i32::from_be_bytes(*head), rest))
}

fn read_u32(raw: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = raw.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head), rest))
}

fn truncated<T>(what: &str) -> Result<T, DecodeError> {
    malformed(format!("input ends inside the {what}"))
}

impl<'a> BinaryArray<'a> {
    /// Parses and validates the header and walks every element once (each length is -1 or
    /// in bounds, the element count is the product of the dimensions, no bytes are left
    /// over), so that iterating afterwards cannot fail.
    ///
    /// Accepted: `ndim` from 0 to [`MAX_DIMS`]; dimension lengths >= 0 (a zero length makes
    /// the whole array empty, reported with no dimensions); lower bounds whose upper bound
    /// fits an `i32`; a NULL element even when the header's `has_null` flag is 0 (PostgreSQL's
    /// own `array_recv` accepts that too; the flag only has to be 0 or 1). The element OID is
    /// reported, not checked.
    pub fn parse(raw: &'a [u8]) -> Result<Self, DecodeError> {
        let Some((ndim, rest)) = read_i32(raw) else {
            return truncated("header");
        };
        let Some((flags, rest)) = read_i32(rest) else {
            return truncated("header");
        };
        let Some((elem_oid, mut rest)) = read_u32(rest) else {
            return truncated("header");
        };
        let ndim = match usize::try_from(ndim) {
            Ok(n) if n <= MAX_DIMS => n,
            _ => {
                return malformed(format!(
                    "number of dimensions {ndim} is not between 0 and {MAX_DIMS}"
                ))
            }
        };
        if flags != 0 && flags != 1 {
            return malformed(format!("invalid array flags {flags}"));
        }

        let mut dims = [0i32; MAX_DIMS];
        for slot in dims.iter_mut().take(ndim) {
            let Some((len, r)) = read_i32(rest) else {
                return truncated("dimensions");
            };
            let Some((lower, r)) = read_i32(r) else {
                return truncated("dimensions");
            };
            rest = r;
            if len < 0 {
                return malformed(format!("negative dimension length {len}"));
            }
            if len > 0 && lower.checked_add(len - 1).is_none() {
                return malformed(format!(
                    "upper bound of a dimension with lower bound {lower} and length {len} \
                     is out of range"
                ));
            }
            *slot = len;
        }
        let dims_read = dims.get(..ndim).unwrap_or(&[]);

        // The element count, checked as it grows: every element costs at least its 4-byte
        // length word, so a count above `rest.len() / 4` cannot be satisfied by this input.
        let mut count: usize = 0;
        if !dims_read.is_empty() && !dims_read.contains(&0) {
            count = 1;
            for &len in dims_read {
                count = match usize::try_from(len).ok().and_then(|l| count.checked_mul(l)) {
                    Some(c) if c <= rest.len() / 4 => c,
                    _ => {
                        return malformed(format!(
                            "dimensions {dims_read:?} need more elements than the {} bytes \
                             of input can hold",
                            raw.len()
                        ))
                    }
                };
            }
        }

        if count == 0 {
            if !rest.is_empty() {
                return malformed(format!(
                    "{} bytes after the end of an empty array",
                    rest.len()
                ));
            }
            return Ok(BinaryArray {
                elem_oid,
                ndim: 0,
                dims: [0; MAX_DIMS],
                len: 0,
                has_null: false,
                data: rest,
            });
        }

        let data = rest;
        let mut has_null = false;
        for index in 0..count {
            let Some((len, r)) = read_i32(rest) else {
                return malformed(format!("input ends before element {index} of {count}"));
            };
            if len == -1 {
                has_null = true;
                rest = r;
                continue;
            }
            let Ok(n) = usize::try_from(len) else {
                return malformed(format!("element {index} has invalid length {len}"));
            };
            let Some(r) = r.get(n..) else {
                return malformed(format!(
                    "element {index} has length {n} but only {} bytes remain",
                    r.len()
                ));
            };
            rest = r;
        }
        if !rest.is_empty() {
            return malformed(format!(
                "{} bytes after the last of {count} elements",
                rest.len()
            ));
        }

        Ok(BinaryArray {
            elem_oid,
            ndim,
            dims,
            len: count,
            has_null,
            data,
        })
    }

    /// The element type OID from the header (not checked here: compare it with the column's
    /// element type).
    pub fn element_oid(&self) -> u32 {
        self.elem_oid
    }

    /// The length of each dimension, outermost first; `[]` for an empty array. Every length is
    /// at least 1.
    pub fn dims(&self) -> &[i32] {
        self.dims.get(..self.ndim).unwrap_or(&[])
    }

    /// The total number of elements (the product of [`dims`](Self::dims)).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether any element is NULL (what the elements say, not the header flag).
    pub fn has_null(&self) -> bool {
        self.has_null
    }

    /// The elements in row-major order, `None` for NULL, as slices of the input.
    pub fn elements(&self) -> BinaryElements<'a> {
        BinaryElements {
            data: self.data,
            remaining: self.len,
        }
    }

    /// Builds the nested structure: `leaf` maps each element (row-major), `group` turns the
    /// children of one finished sub-array (in order) into a value of its parent. Returns the
    /// outermost level's children (`dims()[0]` of them; empty for an empty array). No
    /// recursion; at most [`MAX_DIMS`] levels are open at once.
    pub fn nest<T, E>(
        &self,
        leaf: impl FnMut(Option<&'a [u8]>) -> Result<T, E>,
        group: impl FnMut(Vec<T>) -> Result<T, E>,
    ) -> Result<Vec<T>, E> {
        let mut dims = [0usize; MAX_DIMS];
        for (d, &n) in dims.iter_mut().zip(self.dims()) {
            *d = usize::try_from(n).unwrap_or(0);
        }
        nest_flat(
            dims.get(..self.ndim).unwrap_or(&[]),
            self.len,
            self.elements(),
            leaf,
            group,
        )
    }
}

/// The elements of a [`BinaryArray`], row-major; `None` is NULL.
#[derive(Debug, Clone)]
pub struct BinaryElements<'a> {
    data: &'a [u8],
    remaining: usize,
}

impl<'a> Iterator for BinaryElements<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        // `parse` has checked every length, so none of these early returns is taken.
        let (len, rest) = read_i32(self.data)?;
        self.remaining -= 1;
        match usize::try_from(len) {
            Ok(n) => {
                let element = rest.get(..n)?;
                self.data = rest.get(n..)?;
                Some(Some(element))
            }
            Err(_) => {
                self.data = rest;
                Some(None)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for BinaryElements<'_> {}

impl std::iter::FusedIterator for BinaryElements<'_> {}

/// Writes an array in the binary format: `dims` as given (lower bounds 1), the has-null flag
/// set when an element is `None`. For tests, fuzzing and benchmarks: the caller keeps
/// `elements.len()` equal to the product of `dims`, `dims.len() <= MAX_DIMS` and every
/// element shorter than 2 GiB, or the output will not parse.
pub fn encode_binary_array(
    elem_oid: u32,
    dims: &[i32],
    elements: &[Option<&[u8]>],
    out: &mut Vec<u8>,
) {
    let ndim = i32::try_from(dims.len()).unwrap_or(i32::MAX);
    let has_null = elements.iter().any(Option::is_none);
    out.extend_from_slice(&ndim.to_be_bytes());
    out.extend_from_slice(&i32::from(has_null).to_be_bytes());
    out.extend_from_slice(&elem_oid.to_be_bytes());
    for &d in dims {
        out.extend_from_slice(&d.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
    }
    for element in elements {
        match element {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(bytes) => {
                let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(bytes);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Nesting
// ---------------------------------------------------------------------------------------------

/// `dims` (all >= 1, product `total`) describe `elements`, as they do for parsed arrays.
fn nest_flat<X, T, E>(
    dims: &[usize],
    total: usize,
    elements: impl Iterator<Item = X>,
    mut leaf: impl FnMut(X) -> Result<T, E>,
    mut group: impl FnMut(Vec<T>) -> Result<T, E>,
) -> Result<Vec<T>, E> {
    if dims.is_empty() || total == 0 {
        return Ok(Vec::new());
    }
    // levels[k] collects the children of the sub-array currently open at depth k. Each
    // dimension length is at most `total`, itself bounded by the input size.
    let mut levels: [Vec<T>; MAX_DIMS] = Default::default();
    for (level, &d) in levels.iter_mut().zip(dims) {
        level.reserve(d.min(total));
    }
    let innermost = dims.len() - 1;
    for x in elements {
        let value = leaf(x)?;
        let Some(level) = levels.get_mut(innermost) else {
            break;
        };
        level.push(value);
        // Close every sub-array that this element completed, innermost first.
        let mut k = innermost;
        while k > 0 {
            let (outer, inner) = levels.split_at_mut(k);
            let (Some(parent), Some(child), Some(&len)) =
                (outer.last_mut(), inner.first_mut(), dims.get(k))
            else {
                break;
            };
            if child.len() < len {
                break;
            }
            let full = std::mem::replace(child, Vec::with_capacity(len));
            parent.push(group(full)?);
            k -= 1;
        }
    }
    let [top, ..] = levels;
    Ok(top)
}

// ---------------------------------------------------------------------------------------------
// Text format
// ---------------------------------------------------------------------------------------------

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

    /// Builds the nested structure, as [`BinaryArray::nest`] does.
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

    fn encoded(oid: u32, dims: &[i32], elements: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_binary_array(oid, dims, elements, &mut out);
        out
    }

    fn header(ndim: i32, flags: i32, oid: u32, dims: &[(i32, i32)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&ndim.to_be_bytes());
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&oid.to_be_bytes());
        for (len, lb) in dims {
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&lb.to_be_bytes());
        }
        out
    }

    #[test]
    fn binary_empty() {
        let raw = encoded(23, &[], &[]);
        assert_eq!(raw.len(), 12);
        let a = BinaryArray::parse(&raw).unwrap();
        assert_eq!(a.element_oid(), 23);
        assert!(a.is_empty());
        assert_eq!(a.dims(), &[] as &[i32]);
        assert_eq!(a.elements().count(), 0);
        // A zero-length dimension is the empty array too.
        let raw = header(2, 0, 25, &[(3, 1), (0, 1)]);
        let a = BinaryArray::parse(&raw).unwrap();
        assert!(a.is_empty());
        assert_eq!(a.dims(), &[] as &[i32]);
        let mut trailing = raw.clone();
        trailing.push(0);
        assert!(BinaryArray::parse(&trailing).is_err());
    }

    #[test]
    fn binary_one_dim_with_null() {
        let raw = encoded(25, &[3], &[Some(b"ab"), None, Some(b"")]);
        let a = BinaryArray::parse(&raw).unwrap();
        assert_eq!(a.dims(), &[3]);
        assert_eq!(a.len(), 3);
        assert!(a.has_null());
        let got: Vec<_> = a.elements().collect();
        assert_eq!(got, [Some(&b"ab"[..]), None, Some(&b""[..])]);
        assert_eq!(a.elements().len(), 3);
    }

    #[test]
    fn binary_null_without_flag_is_accepted() {
        let mut raw = encoded(25, &[1], &[None]);
        raw[7] = 0;
        let a = BinaryArray::parse(&raw).unwrap();
        assert!(a.has_null());
        raw[7] = 2;
        assert!(BinaryArray::parse(&raw).is_err());
    }

    #[test]
    fn binary_two_by_two() {
        let one = 1i32.to_be_bytes();
        let two = 2i32.to_be_bytes();
        let raw = encoded(23, &[2, 2], &[Some(&one), Some(&two), None, Some(&one)]);
        let a = BinaryArray::parse(&raw).unwrap();
        assert_eq!(a.dims(), &[2, 2]);
        assert_eq!(a.len(), 4);
        let nested: Vec<Vec<Option<i32>>> = a
            .nest(
                |e| Ok::<_, ()>(vec![e.map(|b| i32::from_be_bytes(b.try_into().unwrap()))]),
                |children| Ok(children.concat()),
            )
            .unwrap();
        assert_eq!(nested, [vec![Some(1), Some(2)], vec![None, Some(1)]]);
    }

    #[test]
    fn binary_lower_bounds() {
        let mut raw = header(1, 0, 23, &[(2, -5)]);
        raw.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(BinaryArray::parse(&raw).unwrap().dims(), &[2]);
        let mut raw = header(1, 0, 23, &[(2, i32::MAX)]);
        raw.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(BinaryArray::parse(&raw).is_err());
    }

    #[test]
    fn binary_rejects() {
        // Lengths beyond the input.
        let mut raw = header(1, 0, 25, &[(1, 1)]);
        raw.extend_from_slice(&5i32.to_be_bytes());
        raw.extend_from_slice(b"abcd");
        assert!(BinaryArray::parse(&raw).is_err());
        // Length below -1.
        let mut raw = header(1, 0, 25, &[(1, 1)]);
        raw.extend_from_slice(&(-2i32).to_be_bytes());
        assert!(BinaryArray::parse(&raw).is_err());
        // Trailing bytes.
        let mut raw = encoded(25, &[1], &[Some(b"x")]);
        raw.push(0);
        assert!(BinaryArray::parse(&raw).is_err());
        // Too few elements for the dims.
        let raw = encoded(25, &[3], &[Some(b"x"), Some(b"y")]);
        assert!(BinaryArray::parse(&raw).is_err());
        // ndim 7, negative ndim, negative dim, truncated header.
        let raw = header(7, 0, 25, &[(1, 1); 7]);
        assert!(BinaryArray::parse(&raw).is_err());
        assert!(BinaryArray::parse(&header(-1, 0, 25, &[])).is_err());
        assert!(BinaryArray::parse(&header(1, 0, 25, &[(-1, 1)])).is_err());
        assert!(BinaryArray::parse(&[0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(BinaryArray::parse(&header(2, 0, 25, &[(1, 1)])).is_err());
    }

    #[test]
    fn binary_huge_dims_rejected_without_allocating() {
        let raw = header(2, 0, 25, &[(i32::MAX, 1), (i32::MAX, 1)]);
        assert!(BinaryArray::parse(&raw[..20]).is_err());
        let mut raw = raw;
        raw.extend_from_slice(&[0; 16]);
        let err = BinaryArray::parse(&raw).unwrap_err();
        assert!(err.message.contains("need more elements"), "{err}");
        let raw = header(6, 0, 25, &[(i32::MAX, 1); 6]);
        assert!(BinaryArray::parse(&raw).is_err());
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

    fn element_strategy() -> impl Strategy<Value = Option<String>> {
        prop::option::weighted(
            0.85,
            prop_oneof![
                any::<String>(),
                "[ a\"\\\\{},;NUL\t\n\x0bé€]{0,8}",
                Just("NULL".to_owned()),
                Just("null".to_owned()),
                Just(String::new()),
            ],
        )
    }

    fn array_strategy() -> impl Strategy<Value = (Vec<usize>, Vec<Option<String>>)> {
        prop::collection::vec(1usize..=3, 1..=4).prop_flat_map(|dims| {
            let n = dims.iter().product::<usize>();
            (Just(dims), prop::collection::vec(element_strategy(), n..=n))
        })
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
        fn binary_round_trip(
            dims in prop::collection::vec(0i32..=3, 0..=4),
            pool in prop::collection::vec(prop::option::of(prop::collection::vec(any::<u8>(), 0..6)), 81),
            oid: u32,
        ) {
            let n = if dims.is_empty() { 0 } else { dims.iter().product::<i32>() as usize };
            let elements: Vec<Option<&[u8]>> = pool[..n].iter().map(|e| e.as_deref()).collect();
            let raw = encoded(oid, &dims, &elements);
            let a = BinaryArray::parse(&raw).unwrap();
            prop_assert_eq!(a.element_oid(), oid);
            prop_assert_eq!(a.len(), n);
            if n == 0 {
                prop_assert_eq!(a.dims(), &[] as &[i32]);
            } else {
                prop_assert_eq!(a.dims(), &dims[..]);
            }
            prop_assert_eq!(a.has_null(), elements.contains(&None));
            prop_assert_eq!(a.elements().collect::<Vec<_>>(), elements);
            let flat: Vec<Option<&[u8]>> = a
                .nest(|e| Ok::<_, ()>(vec![e]), |c| Ok(c.concat()))
                .unwrap()
                .concat();
            prop_assert_eq!(flat.len(), n);
        }

        #[test]
        fn binary_parse_never_panics(bytes: Vec<u8>) {
            if let Ok(a) = BinaryArray::parse(&bytes) {
                prop_assert_eq!(a.elements().count(), a.len());
            }
        }

        #[test]
        fn binary_mutations_never_panic(
            (dims, elements) in array_strategy(),
            at: usize,
            byte: u8,
            cut: usize,
        ) {
            let els: Vec<Option<&[u8]>> = elements.iter().map(|e| e.as_deref().map(str::as_bytes)).collect();
            let dims: Vec<i32> = dims.iter().map(|&d| d as i32).collect();
            let mut raw = encoded(25, &dims, &els);
            let i = at % raw.len();
            raw[i] = byte;
            raw.truncate(raw.len() - cut % 4);
            if let Ok(a) = BinaryArray::parse(&raw) {
                prop_assert_eq!(a.elements().count(), a.len());
            }
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
