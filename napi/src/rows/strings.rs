//! A column of strings: a table of its distinct values and one index per value while they
//! repeat, else every value joined into one text with offsets.
//!
//! A JS string built per value is an allocation per row that a large result keeps alive
//! (24-32 bytes, copied by V8's young-generation collector); a repeated value from a table
//! is the same string every time, as `JSON.parse` shares short strings. A column starts as a
//! table and becomes text at its 257th distinct value (indices are `u8`), or as soon as its
//! first [`LOOKS_UNIQUE`] values are all different, so that a column of unique values (ids,
//! timestamps, free text) pays for only a few lookups per batch.

use super::columns::utf16_len;
use super::js::{typed, Ctx};
use super::kind::Kind;
use napi::sys;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A table whose first this-many values are all distinct becomes text.
const LOOKS_UNIQUE: usize = 64;

/// The table's index hashes with a multiply-rotate word hash, not SipHash: a lookup per
/// value of a json document's strings was a tenth of decoding one. Flooding it is harmless:
/// the table holds at most 256 values.
type Index = HashMap<Box<str>, u8, BuildHasherDefault<WordHash>>;

#[derive(Default)]
pub(super) struct WordHash(u64);

impl Hasher for WordHash {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.add(u64::from_le_bytes(tail) ^ bytes.len() as u64);
    }

    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl WordHash {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(super) enum Strings {
    Table {
        index: Index,
        strings: Vec<Box<str>>,
        ids: Vec<u8>,
    },
    Text {
        text: String,
        offsets: Vec<u32>,
        units: u32,
    },
}

impl Strings {
    /// A table with `rows` placeholders before the first value.
    pub(super) fn table(rows: usize) -> Strings {
        Strings::Table {
            index: Index::default(),
            strings: Vec::new(),
            ids: vec![0; rows],
        }
    }

    /// Appends `s` (`None`: a placeholder for a NULL, which the caller's null map marks);
    /// false if the offsets would overflow. (Text past `MAX_COLUMN_STRING` is the caller's
    /// to see, through [`Strings::text_len`].)
    pub(super) fn push(&mut self, s: Option<&str>) -> bool {
        self.push_with(s, None)
    }

    /// [`Strings::push`] with the value's length in UTF-16 units when the caller knows it
    /// ([`text_units`]), so that text is not read again to count them.
    pub(super) fn push_with(&mut self, s: Option<&str>, len: Option<usize>) -> bool {
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
                match Strings::text_of(strings, ids) {
                    Some(text) => {
                        *self = text;
                        self.push_with(Some(s), len)
                    }
                    None => false,
                }
            }
            (Strings::Text { offsets, units, .. }, None) => {
                offsets.push(*units);
                true
            }
            (
                Strings::Text {
                    text,
                    offsets,
                    units,
                },
                Some(s),
            ) => {
                text.push_str(s);
                let ok = match len {
                    Some(n) => add_len(units, n),
                    None => add_units(units, s),
                };
                offsets.push(*units);
                ok
            }
        }
    }

    /// The table's values one by one, as text; `None` if the offsets would overflow.
    fn text_of(strings: &[Box<str>], ids: &[u8]) -> Option<Strings> {
        let mut text = String::new();
        let mut offsets = Vec::with_capacity(ids.len() + 2);
        offsets.push(0);
        let mut units = 0u32;
        for &id in ids {
            let s = strings.get(usize::from(id)).map_or("", |s| &**s);
            text.push_str(s);
            if !add_units(&mut units, s) {
                return None;
            }
            offsets.push(units);
        }
        Some(Strings::Text {
            text,
            offsets,
            units,
        })
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
            Strings::Text { text, .. } => text.len(),
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
            Strings::Text {
                text,
                offsets,
                units,
            } => text_pair(ctx, text, &offsets, units),
        }
    }
}

/// `[text, Uint32Array of UTF-16 offsets]`: a column's values joined, `units` UTF-16 units
/// in all.
pub(super) unsafe fn text_pair(
    ctx: &Ctx,
    text: String,
    offsets: &[u32],
    units: u32,
) -> crate::errors::JsResult<sys::napi_value> {
    // Every non-ASCII character takes fewer UTF-16 units than UTF-8 bytes.
    let ascii = units as usize == text.len();
    let pair = ctx.array(2)?;
    ctx.set(pair, 0, ctx.owned_string(text, ascii)?)?;
    ctx.set(
        pair,
        1,
        typed(ctx.env, sys::TypedarrayType::uint32_array, offsets, 4)?,
    )?;
    Ok(pair)
}

/// Adds the UTF-16 length of `s` to `units`; false if the offsets would overflow.
pub(super) fn add_units(units: &mut u32, s: &str) -> bool {
    add_len(units, utf16_len(s))
}

/// Adds `len` UTF-16 units to `units`; false if the offsets would overflow.
fn add_len(units: &mut u32, len: usize) -> bool {
    match u32::try_from(len).ok().and_then(|n| units.checked_add(n)) {
        Some(u) => {
            *units = u;
            true
        }
        None => false,
    }
}

/// A text value's bytes as a string, with its length in UTF-16 units. ASCII (most text) is
/// checked once, word by word, and is a unit a byte; only other text is validated as UTF-8
/// and counted. (Validating every value and then counting its units were two passes, and
/// validation goes byte by byte over a short string: together over half the decoding
/// thread's time on a result of distinct short strings.)
pub(super) fn text_units(raw: &[u8]) -> Result<(&str, usize), hyperion_codec::DecodeError> {
    if raw.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        return Ok((unsafe { std::str::from_utf8_unchecked(raw) }, raw.len()));
    }
    let s = hyperion_codec::decode::text(raw)?;
    Ok((s, utf16_len(s)))
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
            Strings::Text { text, offsets, .. } => {
                let units: Vec<u16> = text.encode_utf16().collect();
                offsets
                    .windows(2)
                    .map(|w| String::from_utf16(&units[w[0] as usize..w[1] as usize]).unwrap())
                    .collect()
            }
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

    /// `text_units` counts what JS counts (a UTF-16 unit per ASCII byte, two for a character
    /// past U+FFFF) and refuses what is not UTF-8, ASCII or not; values pushed with its
    /// count read back whole.
    #[test]
    fn text_units_counts_utf16_units_and_refuses_invalid_utf8() {
        for (raw, units) in [
            (&b""[..], 0),
            (b"plain ascii, longer than one word", 33),
            ("città — ñ".as_bytes(), 9),
            ("😀x".as_bytes(), 3),
            ("ascii then é".as_bytes(), 12),
        ] {
            let (s, n) = text_units(raw).unwrap();
            assert_eq!((s.as_bytes(), n), (raw, units));
            assert_eq!(n, s.encode_utf16().count());
        }
        for bad in [&b"ascii \xff"[..], b"\xc3", b"ok\xed\xa0\x80", b"\x80abc"] {
            assert!(text_units(bad).is_err(), "{bad:?}");
        }
        let values = ["x", "città", "😀😀", "", "long ascii value number five"];
        let mut col = Strings::table(0);
        for k in 0..(LOOKS_UNIQUE + 10) {
            let v = format!("{}{k}", values[k % values.len()]);
            let (s, n) = text_units(v.as_bytes()).unwrap();
            assert!(col.push_with(Some(s), Some(n)));
        }
        let back = read(&col, &[false; LOOKS_UNIQUE + 10]);
        for (k, v) in back.into_iter().enumerate() {
            assert_eq!(v.unwrap(), format!("{}{k}", values[k % values.len()]));
        }
        assert_eq!(col.kind(), Kind::Text);
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
}
