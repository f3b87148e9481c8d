//! A column of strings: a table of its distinct values and one index per value while they
//! repeat, else every value joined into one text with offsets.
//!
//! A JS string built per value is an allocation per row that a large result keeps alive
//! (24-32 bytes, copied by V8's young-generation collector); a repeated value from a table
//! is the same string every time, as `JSON.parse` shares short strings. A column starts as a
//! table and becomes text at its 257th distinct value (indices are `u8`), or as soon as its
//! first [`LOOKS_UNIQUE`] values are all different, so that a column of unique values (ids,
//! timestamps, free text) pays for only a few lookups per batch.

use super::js::{typed, Ctx};
use super::kind::Kind;
use hyperion_wire::word_hash::BuildWordHash;
use napi::sys;
use std::collections::HashMap;

/// The most room [`Joined::make_room`] makes ahead for the values still expected (a guess
/// from the mean so far: 64 MB of UTF-16 is a 32 M-unit text).
const ROOM_CAP: usize = 32 << 20;

/// The room [`Joined::push_written`] wants free before a value it cannot measure ahead (a
/// uuid is 36 characters, a timestamptz 32): a longer one still fits, by `String`'s own growth.
const WRITTEN_VALUE: usize = 64;

/// A table whose first this-many values are all distinct becomes text.
const LOOKS_UNIQUE: usize = 64;

/// The table's index hashes with a word hash, not SipHash: a lookup per value of a json
/// document's strings was a tenth of decoding one. Flooding it is harmless: the table holds
/// at most 256 values.
type Index = HashMap<Box<str>, u8, BuildWordHash>;

pub(super) enum Strings {
    Table {
        index: Index,
        strings: Vec<Box<str>>,
        ids: Vec<u8>,
        /// The values the column is expected to have in all (the batch's rows): the text it
        /// may become is sized for them.
        expected: usize,
    },
    Text(Joined),
}

impl Strings {
    /// A table with `rows` placeholders before the first value.
    pub(super) fn table(rows: usize) -> Strings {
        Strings::expecting(rows, rows)
    }

    /// A table with `rows` placeholders before the first value, expecting `values` in all
    /// (the batch's row count).
    pub(super) fn expecting(rows: usize, values: usize) -> Strings {
        let expected = values.max(rows);
        let mut ids = Vec::with_capacity(expected);
        ids.resize(rows, 0);
        Strings::Table {
            // Room for the values that decide (`LOOKS_UNIQUE`): growing to them rehashed five
            // times, 5% of the decoding thread on a result of distinct strings.
            index: Index::with_capacity_and_hasher(LOOKS_UNIQUE, Default::default()),
            strings: Vec::new(),
            ids,
            expected,
        }
    }

    /// Appends `s` (`None`: a placeholder for a NULL, which the caller's null map marks);
    /// false if the offsets would overflow. (Text past `MAX_COLUMN_STRING` is the caller's
    /// to see, through [`Strings::text_len`].)
    pub(super) fn push(&mut self, s: Option<&str>) -> bool {
        self.push_with(s, s.is_some_and(str::is_ascii))
    }

    /// [`Strings::push`] when the caller knows whether `s` is ASCII ([`text_value`]), so
    /// that text is not read again to find out.
    pub(super) fn push_with(&mut self, s: Option<&str>, ascii: bool) -> bool {
        match (&mut *self, s) {
            (Strings::Table { ids, .. }, None) => {
                ids.push(0);
                true
            }
            (
                Strings::Table {
                    index,
                    strings,
                    ids,
                    expected,
                },
                Some(s),
            ) => {
                if let Some(&id) = index.get(s) {
                    ids.push(id);
                    return true;
                }
                let unique = strings.len() == ids.len() && ids.len() >= LOOKS_UNIQUE;
                if let (false, Ok(id)) = (unique, u8::try_from(strings.len())) {
                    index.insert(s.into(), id);
                    strings.push(s.into());
                    ids.push(id);
                    return true;
                }
                match Strings::text_of(strings, ids, *expected) {
                    Some(text) => {
                        *self = Strings::Text(text);
                        self.push_with(Some(s), ascii)
                    }
                    None => false,
                }
            }
            (Strings::Text(text), None) => {
                text.push_null();
                true
            }
            (Strings::Text(text), Some(s)) => text.push(s, ascii),
        }
    }

    /// The table's values one by one, as text, with room for the offsets of `expected` values
    /// in all (from which `Joined::make_room` sizes the text); `None` if the offsets would
    /// overflow.
    fn text_of(strings: &[Box<str>], ids: &[u8], expected: usize) -> Option<Joined> {
        let mut text = Joined::with_capacity(expected.max(ids.len()) + 1);
        for &id in ids {
            let s = strings.get(usize::from(id)).map_or("", |s| &**s);
            if !text.push(s, s.is_ascii()) {
                return None;
            }
        }
        Some(text)
    }

    pub(super) fn kind(&self) -> Kind {
        match self {
            Strings::Table { .. } => Kind::Table,
            Strings::Text { .. } => Kind::Text,
        }
    }

    pub(super) fn text_len(&self) -> usize {
        match self {
            Strings::Table { .. } => 0,
            Strings::Text(text) => text.text_len(),
        }
    }

    /// `[strings, Uint8Array]` for a table, `[text, Uint32Array of UTF-16 offsets]` for text.
    pub(super) unsafe fn finish(self, ctx: &Ctx) -> crate::errors::JsResult<sys::napi_value> {
        match self {
            Strings::Table { strings, ids, .. } => {
                let pair = ctx.array(2)?;
                let table = ctx.array(strings.len())?;
                for (j, s) in strings.iter().enumerate() {
                    ctx.set(table, j, ctx.string(s)?)?;
                }
                ctx.set(pair, 0, table)?;
                ctx.set(
                    pair,
                    1,
                    typed(ctx.env, sys::TypedarrayType::uint8_array, &ids, 1)?,
                )?;
                Ok(pair)
            }
            Strings::Text(text) => text.finish(ctx),
        }
    }
}

/// A column's values joined into one text, with the UTF-16 offset after each: how a column
/// of distinct strings crosses to JS, as `[text, Uint32Array of offsets]`. While the values
/// are ASCII the text is kept as it came (V8 takes it as Latin-1); from the first that is
/// not, as UTF-16, made here, off the JS thread. V8's UTF-8 decoder, which made the JS string
/// of such a text on the JS thread, was 6% of that thread's time on a result of distinct
/// strings with one non-ASCII column, and a large UTF-16 text becomes an external string
/// as a large ASCII one does (`Ctx::owned_utf16`), which the young-generation collector
/// does not copy.
pub(super) struct Joined {
    /// The values while they are all ASCII.
    ascii: String,
    /// The values as UTF-16, from the first one that is not ASCII on (`ascii` is then empty).
    wide: Option<Vec<u16>>,
    /// 0, then the UTF-16 offset after each value (a NULL's is the one before it).
    offsets: Vec<u32>,
}

impl Joined {
    /// Room for the offsets of `values` values.
    pub(super) fn with_capacity(values: usize) -> Joined {
        let mut offsets = Vec::with_capacity(values + 1);
        offsets.push(0);
        Joined {
            ascii: String::new(),
            wide: None,
            offsets,
        }
    }

    /// Appends `s` (`ascii`: whether it is); false if the offsets would overflow.
    pub(super) fn push(&mut self, s: &str, ascii: bool) -> bool {
        self.make_room(s.len());
        match &mut self.wide {
            None if ascii => self.ascii.push_str(s),
            None => {
                let wide = self.wide.insert(widened(&self.ascii));
                self.ascii.clear();
                push_utf16(wide, s);
            }
            Some(wide) => push_utf16(wide, s),
        }
        self.end_value()
    }

    /// Appends the value `write` appends to a `String`; `Ok(false)` if the offsets would
    /// overflow. The value is written after the text while that is ASCII, and stays there if
    /// it is ASCII too; else it moves to the UTF-16 text, and `ascii` (empty once the text is
    /// UTF-16) is the next value's scratch.
    pub(super) fn push_written<E>(
        &mut self,
        write: impl FnOnce(&mut String) -> Result<(), E>,
    ) -> Result<bool, E> {
        self.make_room(WRITTEN_VALUE);
        let start = self.ascii.len();
        write(&mut self.ascii)?;
        if self.wide.is_some() || !self.ascii.as_bytes()[start..].is_ascii() {
            let (before, value) = self.ascii.split_at(start);
            let wide = self.wide.get_or_insert_with(|| widened(before));
            push_utf16(wide, value);
            self.ascii.clear();
        }
        Ok(self.end_value())
    }

    /// Before a value of about `next` units: when the text has no room for it, room for it
    /// and, at the mean length so far, for every value still expected (the offsets' room,
    /// sized for the batch's rows). A batch's text then grows once or twice instead of a
    /// dozen doublings, each a copy of the text so far (`mi_realloc`: a tenth of the
    /// decoding thread on W3 strings, 2026-12-07). A value with room costs one comparison.
    fn make_room(&mut self, next: usize) {
        let free = match &self.wide {
            None => self.ascii.capacity() - self.ascii.len(),
            Some(wide) => wide.capacity() - wide.len(),
        };
        if free >= next {
            return;
        }
        let values = self.offsets.len() - 1;
        let mean = self.text_len().checked_div(values).map_or(0, |m| m + 1);
        let rest = self
            .offsets
            .capacity()
            .saturating_sub(self.offsets.len() + 1);
        let want = next.saturating_add(mean.saturating_mul(rest).min(ROOM_CAP));
        match &mut self.wide {
            None => self.ascii.reserve(want),
            Some(wide) => wide.reserve(want),
        }
    }

    /// A NULL's placeholder: an empty value.
    pub(super) fn push_null(&mut self) {
        let last = self.offsets.last().copied().unwrap_or(0);
        self.offsets.push(last);
    }

    /// The text so far in UTF-16 units (what a JS string's length counts).
    pub(super) fn text_len(&self) -> usize {
        self.wide.as_ref().map_or(self.ascii.len(), Vec::len)
    }

    fn end_value(&mut self) -> bool {
        match u32::try_from(self.text_len()) {
            Ok(units) => {
                self.offsets.push(units);
                true
            }
            Err(_) => false,
        }
    }

    /// `[text, Uint32Array of UTF-16 offsets]`.
    pub(super) unsafe fn finish(self, ctx: &Ctx) -> crate::errors::JsResult<sys::napi_value> {
        let pair = ctx.array(2)?;
        let text = match self.wide {
            Some(wide) => ctx.owned_utf16(wide)?,
            None => ctx.owned_string(self.ascii, true)?,
        };
        ctx.set(pair, 0, text)?;
        ctx.set(
            pair,
            1,
            typed(ctx.env, sys::TypedarrayType::uint32_array, &self.offsets, 4)?,
        )?;
        Ok(pair)
    }

    /// The values, as `rows.js` reads them back (tests).
    #[cfg(test)]
    pub(super) fn values(&self) -> Vec<String> {
        let units: Vec<u16> = match &self.wide {
            Some(wide) => wide.clone(),
            None => self.ascii.encode_utf16().collect(),
        };
        self.offsets
            .windows(2)
            .map(|w| String::from_utf16(&units[w[0] as usize..w[1] as usize]).unwrap())
            .collect()
    }
}

/// ASCII text as UTF-16, with room for about as much again.
fn widened(ascii: &str) -> Vec<u16> {
    let mut wide = Vec::with_capacity(ascii.len() + ascii.len() / 2 + 16);
    wide.extend(ascii.bytes().map(u16::from));
    wide
}

/// Appends `s` as UTF-16. Room for it is made once (a string takes no more UTF-16 units
/// than UTF-8 bytes) and filled in place: `Vec::extend` over `encode_utf16` grew the vector
/// a unit at a time, 5% of the decoding thread on a result with one non-ASCII column of five.
fn push_utf16(wide: &mut Vec<u16>, s: &str) {
    wide.reserve(s.len());
    let start = wide.len();
    let spare = &mut wide.spare_capacity_mut()[..s.len()];
    let mut n = 0;
    for (slot, unit) in spare.iter_mut().zip(s.encode_utf16()) {
        slot.write(unit);
        n += 1;
    }
    // SAFETY: the first `n` spare slots were written just above.
    unsafe { wide.set_len(start + n) };
}

/// A text value's bytes as a string, and whether it is ASCII. ASCII (most text) is checked
/// once, word by word; only other text is validated as UTF-8. (Validating every value and
/// then counting its UTF-16 units were two passes, and validation goes byte by byte over a
/// short string: together over half the decoding thread's time on a result of distinct
/// short strings.)
pub(super) fn text_value(raw: &[u8]) -> Result<(&str, bool), hyperion_codec::DecodeError> {
    if raw.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        return Ok((unsafe { std::str::from_utf8_unchecked(raw) }, true));
    }
    Ok((hyperion_codec::decode::text(raw)?, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values a column hands to JS, read back as `rows.js` reads them (`None`: the
    /// placeholder of a NULL).
    fn read(s: &Strings, nulls: &[bool]) -> Vec<Option<String>> {
        let all: Vec<String> = match s {
            Strings::Table { strings, ids, .. } => ids
                .iter()
                .map(|&i| strings[usize::from(i)].to_string())
                .collect(),
            Strings::Text(text) => text.values(),
        };
        all.into_iter()
            .zip(nulls)
            .map(|(v, &null)| (!null).then_some(v))
            .collect()
    }

    /// Columns drawn from `distinct` values (some non-ASCII, one empty) with NULLs between:
    /// whatever the table does, the values read back are the values pushed.
    #[test]
    fn values_read_back_whole_as_table_or_text() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for (rows, distinct) in [
            (50, 3),
            (1000, 5),
            (1000, 256),
            (1000, 257),
            (2000, 600),
            (300, 10_000),
        ] {
            let mut col = Strings::table(0);
            let mut want = Vec::new();
            let mut nulls = Vec::new();
            for _ in 0..rows {
                let v = match next(distinct) {
                    0 => String::new(),
                    1 => "é☺😀".to_string(),
                    k => format!("v{k}"),
                };
                let null = next(7) == 0;
                assert!(col.push((!null).then_some(v.as_str())));
                want.push((!null).then_some(v));
                nulls.push(null);
            }
            assert_eq!(read(&col, &nulls), want, "{rows} rows of {distinct} values");
            if distinct <= 5 || distinct >= 600 {
                assert_eq!(matches!(col, Strings::Table { .. }), distinct <= 5);
            }
        }
    }

    /// `text_value` says which values are ASCII and refuses what is not UTF-8, ASCII or
    /// not; values pushed with what it says read back whole.
    #[test]
    fn text_value_tells_ascii_and_refuses_invalid_utf8() {
        for (raw, ascii) in [
            (&b""[..], true),
            (b"plain ascii, longer than one word", true),
            ("città — ñ".as_bytes(), false),
            ("😀x".as_bytes(), false),
            ("ascii then é".as_bytes(), false),
        ] {
            let (s, is) = text_value(raw).unwrap();
            assert_eq!((s.as_bytes(), is), (raw, ascii));
        }
        for bad in [&b"ascii \xff"[..], b"\xc3", b"ok\xed\xa0\x80", b"\x80abc"] {
            assert!(text_value(bad).is_err(), "{bad:?}");
        }
        let values = ["x", "città", "😀😀", "", "long ascii value number five"];
        let mut col = Strings::table(0);
        for k in 0..(LOOKS_UNIQUE + 10) {
            let v = format!("{}{k}", values[k % values.len()]);
            let (s, ascii) = text_value(v.as_bytes()).unwrap();
            assert!(col.push_with(Some(s), ascii));
        }
        let back = read(&col, &[false; LOOKS_UNIQUE + 10]);
        for (k, v) in back.into_iter().enumerate() {
            assert_eq!(v.unwrap(), format!("{}{k}", values[k % values.len()]));
        }
        assert_eq!(col.kind(), Kind::Text);
    }

    fn written(value: &str) -> impl FnOnce(&mut String) -> Result<(), &'static str> + '_ {
        move |out| {
            out.push_str(value);
            Ok(())
        }
    }

    /// Joined text stays as it came while it is ASCII and turns to UTF-16 at its first value
    /// that is not, by either way in; the offsets count UTF-16 units (two for a character
    /// past U+FFFF), NULLs take none, and every value reads back whole.
    #[test]
    fn joined_text_widens_at_its_first_non_ascii_value() {
        let mut text = Joined::with_capacity(0);
        assert!(text.push("abc", true));
        text.push_null();
        assert!(text.wide.is_none());
        assert_eq!(text.push_written(written("é")), Ok(true));
        assert!(text.wide.is_some() && text.ascii.is_empty());
        assert!(text.push("😀", false));
        assert!(text.push("ascii again", true));
        assert_eq!(text.push_written(written("x—y")), Ok(true));
        assert_eq!(text.offsets, [0, 3, 3, 4, 6, 17, 20]);
        assert_eq!(text.text_len(), 20);
        assert_eq!(text.values(), ["abc", "", "é", "😀", "ascii again", "x—y"]);

        let mut ascii = Joined::with_capacity(2);
        assert!(ascii.push("one", true));
        assert_eq!(ascii.push_written(written("2024-01-01")), Ok(true));
        assert!(ascii.wide.is_none());
        assert_eq!(ascii.values(), ["one", "2024-01-01"]);
        let failed = ascii.push_written(|out| {
            out.push_str("partial");
            Err("bad value")
        });
        assert_eq!(failed, Err("bad value"));
    }

    #[test]
    fn a_table_holds_256_values_and_a_column_that_looks_unique_becomes_text() {
        let is_table = |s: &Strings| matches!(s, Strings::Table { .. });
        let mut col = Strings::table(0);
        for k in 0..256 {
            assert!(col.push(Some(&format!("v{k}"))) && col.push(Some(&format!("v{k}"))));
        }
        assert!(is_table(&col));
        assert!(col.push(Some("v256")));
        assert!(!is_table(&col));

        let mut col = Strings::table(0);
        for k in 0..LOOKS_UNIQUE {
            assert!(col.push(Some(&format!("u{k}"))));
        }
        assert!(is_table(&col));
        let mut unique = Strings::table(0);
        for k in 0..=LOOKS_UNIQUE {
            assert!(unique.push(Some(&format!("u{k}"))));
        }
        assert!(!is_table(&unique));
        assert_eq!(unique.kind(), Kind::Text);
    }

    /// How many times the text's buffer was made anew while `values` values of `value(k)`
    /// went into a column expecting them all, and the values read back.
    fn growths(values: usize, value: impl Fn(usize) -> String) -> (usize, Vec<String>) {
        let mut col = Strings::expecting(0, values);
        let mut grown = 0;
        let mut last = 0;
        for k in 0..values {
            assert!(col.push(Some(&value(k))));
            if let Strings::Text(text) = &col {
                let room = text
                    .wide
                    .as_ref()
                    .map_or(text.ascii.capacity(), Vec::capacity);
                grown += usize::from(room != last);
                last = room;
            }
        }
        let Strings::Text(text) = &col else {
            panic!("distinct values stay a table")
        };
        (grown, text.values())
    }

    #[test]
    fn a_text_expecting_its_values_grows_once_or_twice_not_by_doubling() {
        // Distinct ASCII values of varying length: the text is sized once it leaves the
        // table (at the mean so far), and grows at most twice more as the mean moves.
        let ascii = |k: usize| format!("user{k}@example.com{}", "x".repeat(k % 7));
        let (grown, values) = growths(5000, ascii);
        assert!(grown <= 3, "the ASCII text was made anew {grown} times");
        assert_eq!(values, (0..5000).map(ascii).collect::<Vec<_>>());
        // UTF-16 from a value on: sized for the rest too.
        let wide = |k: usize| {
            if k < 100 {
                format!("name {k}")
            } else {
                format!("Zoë {k}")
            }
        };
        let (grown, values) = growths(5000, wide);
        assert!(grown <= 4, "the text was made anew {grown} times");
        assert_eq!(values, (0..5000).map(wide).collect::<Vec<_>>());
        // Without a count (`Strings::table`) it still reads back whole.
        let mut col = Strings::table(0);
        for k in 0..300 {
            assert!(col.push(Some(&ascii(k))));
        }
        let Strings::Text(text) = &col else { panic!() };
        assert_eq!(text.values(), (0..300).map(ascii).collect::<Vec<_>>());
    }
}
