//! PostgreSQL `numeric` in the binary wire format, to and from its decimal text.
//!
//! # The format (what `numeric_send` writes)
//!
//! ```text
//! u16 ndigits   number of base-10000 digits that follow
//! i16 weight    power of 10000 of the first digit
//! u16 sign      0x0000 positive, 0x4000 negative, 0xC000 NaN,
//!               0xD000 +Infinity, 0xF000 -Infinity (the last two: PostgreSQL 14+)
//! u16 dscale    display scale: decimal digits shown after the point (at most 0x3FFF)
//! ndigits × u16 digits, each in 0..=9999
//! ```
//!
//! All fields are big-endian. The value is `sum(digit[i] * 10000^(weight - i))`. The server
//! always sends a canonical form: no leading or trailing zero digits, and zero as no digits
//! with weight 0 and a positive sign. `ndigits` is read as unsigned, like `numeric_recv` does:
//! a value with 131,072 integer digits and 16,383 fraction digits needs 36,864 base-10000
//! digits, more than `i16::MAX`.
//!
//! # What the decoder prints
//!
//! [`numeric_to_string`] prints what the server's `numeric_out` prints for the value the bytes
//! denote once `numeric_recv` has accepted them. For anything the server sends that is simply
//! `numeric_out`'s text. For bytes the server would never send, the rules are:
//!
//! * digits beyond `dscale` are cut off (truncation toward zero, as `numeric_recv` does);
//! * leading zero digits are not printed (the integer part is at least `"0"`);
//! * a value that is zero once cut to `dscale` (including "negative zero", a negative sign
//!   with no digits) prints without a `-`, because PostgreSQL stores every zero as positive;
//! * NaN and the infinities ignore their digits and `dscale` (which must still be valid).
//!
//! The output length is bounded by the header alone: at most `4 * 32768` integer digits, a
//! point and `0x3FFF` fraction digits, whatever the input claims.

use crate::decode::{bad, DecodeError};

/// Name used in [`DecodeError`]s.
const TYPE_NAME: &str = "numeric";
/// Bytes before the digits: ndigits, weight, sign, dscale.
const HEADER_LEN: usize = 8;
/// The base of the digits.
const NBASE: u16 = 10_000;
/// Decimal digits per base-10000 digit.
const DEC_DIGITS: usize = 4;

const SIGN_POS: u16 = 0x0000;
const SIGN_NEG: u16 = 0x4000;
const SIGN_NAN: u16 = 0xC000;
const SIGN_PINF: u16 = 0xD000;
const SIGN_NINF: u16 = 0xF000;

/// Largest display scale the 14-bit `dscale` field can carry.
const DSCALE_MAX: u16 = 0x3FFF;

/// The sign word of a binary numeric, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sign {
    Positive,
    Negative,
    NaN,
    PosInfinity,
    NegInfinity,
}

impl Sign {
    fn from_wire(word: u16) -> Option<Sign> {
        match word {
            SIGN_POS => Some(Sign::Positive),
            SIGN_NEG => Some(Sign::Negative),
            SIGN_NAN => Some(Sign::NaN),
            SIGN_PINF => Some(Sign::PosInfinity),
            SIGN_NINF => Some(Sign::NegInfinity),
            _ => None,
        }
    }
}

/// A binary numeric whose header, length and digits have been checked.
struct Numeric<'a> {
    weight: i16,
    sign: Sign,
    dscale: u16,
    /// The digit array, still as big-endian byte pairs; every pair is in `0..=9999`.
    digits: &'a [u8],
}

impl Numeric<'_> {
    /// Number of base-10000 digits.
    fn ndigits(&self) -> usize {
        self.digits.len() / 2
    }

    /// Digit `k` (0 = first), or 0 for any position outside the array, which is what a
    /// position beyond the stored digits is worth.
    fn digit(&self, k: i64) -> u16 {
        let Ok(k) = usize::try_from(k) else {
            return 0;
        };
        let Some(start) = k.checked_mul(2) else {
            return 0;
        };
        match self.digits.get(start..start.saturating_add(2)) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            _ => 0,
        }
    }
}

/// Reads a big-endian `u16` at `at` from the header.
fn header_u16(header: &[u8; HEADER_LEN], at: usize) -> u16 {
    match header.get(at..at + 2) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => 0,
    }
}

/// Checks `raw` against the format: exact length, known sign, 14-bit dscale, digits below
/// 10000. Accepts exactly what the server's `numeric_recv` accepts.
fn parse(raw: &[u8]) -> Result<Numeric<'_>, DecodeError> {
    let Some((header, digits)) = raw.split_first_chunk::<HEADER_LEN>() else {
        return bad(
            TYPE_NAME,
            format!("expected at least {HEADER_LEN} bytes, got {}", raw.len()),
        );
    };
    let ndigits = usize::from(header_u16(header, 0));
    let weight = i16::from_be_bytes(header_u16(header, 2).to_be_bytes());
    let sign_word = header_u16(header, 4);
    let dscale = header_u16(header, 6);

    // ndigits <= 65535, so the expected length cannot overflow; compare before reading.
    if digits.len() != ndigits * 2 {
        return bad(
            TYPE_NAME,
            format!(
                "header announces {ndigits} digits ({} bytes) but {} bytes follow",
                ndigits * 2,
                digits.len()
            ),
        );
    }
    let Some(sign) = Sign::from_wire(sign_word) else {
        return bad(TYPE_NAME, format!("invalid sign word {sign_word:#06x}"));
    };
    if dscale > DSCALE_MAX {
        return bad(TYPE_NAME, format!("invalid display scale {dscale:#06x}"));
    }
    if let Some(d) = digits
        .chunks_exact(2)
        .map(|pair| match pair {
            &[hi, lo] => u16::from_be_bytes([hi, lo]),
            _ => 0,
        })
        .find(|&d| d >= NBASE)
    {
        return bad(TYPE_NAME, format!("invalid base-10000 digit {d}"));
    }
    Ok(Numeric {
        weight,
        sign,
        dscale,
        digits,
    })
}

/// Appends the text PostgreSQL's `numeric_out` prints for the binary numeric `raw`:
/// `NaN`, `Infinity`, `-Infinity`, or an optional `-`, the integer part without leading
/// zeros and, when `dscale > 0`, a point and exactly `dscale` fraction digits.
///
/// See the [module documentation](self) for how non-canonical input is printed. Nothing is
/// appended when an error is returned.
pub fn numeric_to_string(raw: &[u8], out: &mut String) -> Result<(), DecodeError> {
    let n = parse(raw)?;
    match n.sign {
        Sign::NaN => out.push_str("NaN"),
        Sign::PosInfinity => out.push_str("Infinity"),
        Sign::NegInfinity => out.push_str("-Infinity"),
        Sign::Positive | Sign::Negative => write_finite(&n, out),
    }
    Ok(())
}

/// Writes a finite value: sign, integer part, fraction.
fn write_finite(n: &Numeric<'_>, out: &mut String) {
    let weight = i64::from(n.weight);
    let dscale = usize::from(n.dscale);
    let int_len = usize::try_from(weight.saturating_add(1))
        .map_or(1, |groups| groups.saturating_mul(DEC_DIGITS));
    out.reserve(int_len.saturating_add(dscale).saturating_add(2));

    if n.sign == Sign::Negative && shows_nonzero(n) {
        out.push('-');
    }
    write_integer_part(n, out);
    if dscale > 0 {
        out.push('.');
        write_fraction(n, out);
    }
}

/// Whether any digit left of position `dscale` after the point is non-zero, i.e. whether
/// the value is non-zero once truncated to its display scale.
fn shows_nonzero(n: &Numeric<'_>) -> bool {
    let weight = i64::from(n.weight);
    let dscale = i64::from(n.dscale);
    for k in 0..n.ndigits() {
        let k = k as i64; // ndigits <= 65535
        let d = n.digit(k);
        if d == 0 {
            continue;
        }
        if k <= weight {
            return true; // an integer-part digit
        }
        // Fraction digit group `g` (0 = the first four digits after the point).
        let first_position = (k - weight - 1) * DEC_DIGITS as i64;
        let shown = (dscale - first_position).min(DEC_DIGITS as i64);
        if shown <= 0 {
            return false; // this and every later digit lies beyond dscale
        }
        if decimal4(d).iter().take(shown as usize).any(|&c| c != b'0') {
            return true;
        }
    }
    false
}

/// Writes the integer part: digits `0..=weight`, without leading zeros, at least `"0"`.
fn write_integer_part(n: &Numeric<'_>, out: &mut String) {
    let weight = i64::from(n.weight);
    // Only stored digits can be non-zero; positions past them are zero groups.
    let stored = (n.ndigits() as i64).min(weight.saturating_add(1));
    let Some(first) = (0..stored).find(|&k| n.digit(k) != 0) else {
        out.push('0');
        return;
    };
    push_unpadded(out, n.digit(first));
    for k in first + 1..=weight {
        push_digits(out, n.digit(k), DEC_DIGITS);
    }
}

/// Writes exactly `dscale` fraction digits: the groups after the integer part, zeros where
/// no digit is stored, the last group cut to fit.
fn write_fraction(n: &Numeric<'_>, out: &mut String) {
    let stored = n.ndigits() as i64;
    let mut remaining = usize::from(n.dscale);
    let mut k = i64::from(n.weight) + 1;
    while remaining > 0 {
        if k >= stored {
            // Past the last stored digit every position is zero.
            for _ in 0..remaining {
                out.push('0');
            }
            return;
        }
        let take = remaining.min(DEC_DIGITS);
        push_digits(out, n.digit(k), take);
        remaining -= take;
        k += 1;
    }
}

/// The four ASCII decimal digits of a base-10000 digit, most significant first.
fn decimal4(d: u16) -> [u8; 4] {
    let digit = |v: u16| b'0' + (v % 10) as u8;
    [digit(d / 1000), digit(d / 100), digit(d / 10), digit(d)]
}

/// Appends the first `count` (at most 4) decimal digits of the zero-padded `d`.
fn push_digits(out: &mut String, d: u16, count: usize) {
    for &c in decimal4(d).iter().take(count) {
        out.push(char::from(c));
    }
}

/// Appends `d` without leading zeros (`d` is non-zero here, but 0 prints `"0"`).
fn push_unpadded(out: &mut String, d: u16) {
    let len = match d {
        1000.. => 4,
        100.. => 3,
        10.. => 2,
        _ => 1,
    };
    for &c in decimal4(d).iter().skip(DEC_DIGITS - len) {
        out.push(char::from(c));
    }
}

/// Parses decimal text into the canonical binary numeric the server would send for it (what
/// `numeric_in` followed by `numeric_send` produces).
///
/// Accepted: `[+-]?digits[.digits]` (either side of the point may be empty, not both), and,
/// ignoring ASCII case, `NaN`, `Infinity`, `+Infinity`, `-Infinity`. Rejected (`None`):
/// anything else (exponents, spaces, `inf`), and values the format cannot carry: more than
/// 16,383 fraction digits (`dscale`) or a first non-zero digit beyond 10000^32767 (`weight`).
///
/// The result has no leading or trailing zero base-10000 digits, `dscale` equal to the
/// number of fraction digits written, and zero (of any sign) as no digits, weight 0, positive.
pub fn numeric_from_str(s: &str) -> Option<Vec<u8>> {
    if let Some(sign) = special_from_str(s) {
        return Some(encode(0, sign, 0, &[]));
    }
    let (negative, unsigned) = match s.as_bytes().split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s.as_bytes()),
    };
    let (int_part, frac_part) = match unsigned.iter().position(|&c| c == b'.') {
        Some(dot) => (unsigned.get(..dot)?, unsigned.get(dot + 1..)?),
        None => (unsigned, &[][..]),
    };
    let all_digits = |part: &[u8]| part.iter().all(u8::is_ascii_digit);
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return None;
    }
    let dscale = u16::try_from(frac_part.len())
        .ok()
        .filter(|&d| d <= DSCALE_MAX)?;

    let int_part = strip_leading_zeros(int_part);
    let (groups, int_groups) = to_base10000(int_part, frac_part);
    let Some(first) = groups.iter().position(|&g| g != 0) else {
        return Some(encode(0, SIGN_POS, dscale, &[]));
    };
    let last = groups.iter().rposition(|&g| g != 0)?;
    // Weight of the first non-zero group: integer groups count down from int_groups - 1.
    let weight = i64::try_from(int_groups).ok()? - 1 - i64::try_from(first).ok()?;
    let weight = i16::try_from(weight).ok()?;
    let sign = if negative { SIGN_NEG } else { SIGN_POS };
    Some(encode(weight, sign, dscale, groups.get(first..=last)?))
}

/// The sign word for `NaN` / `Infinity` / `+Infinity` / `-Infinity` (any ASCII case).
fn special_from_str(s: &str) -> Option<u16> {
    [
        ("NaN", SIGN_NAN),
        ("Infinity", SIGN_PINF),
        ("+Infinity", SIGN_PINF),
        ("-Infinity", SIGN_NINF),
    ]
    .iter()
    .find(|(text, _)| s.eq_ignore_ascii_case(text))
    .map(|&(_, sign)| sign)
}

fn strip_leading_zeros(digits: &[u8]) -> &[u8] {
    let start = digits
        .iter()
        .position(|&c| c != b'0')
        .unwrap_or(digits.len());
    digits.get(start..).unwrap_or_default()
}

/// Groups the decimal digits `int_part . frac_part` into base-10000 digits aligned on the
/// point: the integer part is padded with zeros on the left and the fraction on the right
/// to multiples of four. Returns the groups and how many of them are integer groups.
fn to_base10000(int_part: &[u8], frac_part: &[u8]) -> (Vec<u16>, usize) {
    let lead_pad = (DEC_DIGITS - int_part.len() % DEC_DIGITS) % DEC_DIGITS;
    let int_groups = (int_part.len() + lead_pad) / DEC_DIGITS;
    let trail_pad = (DEC_DIGITS - frac_part.len() % DEC_DIGITS) % DEC_DIGITS;
    let padded_len = lead_pad + int_part.len() + frac_part.len() + trail_pad;

    // Each pad is at most three zeros.
    const ZEROS: &[u8] = b"000";
    let zeros = |n: usize| ZEROS.get(..n).unwrap_or_default().iter().copied();
    let decimal = zeros(lead_pad)
        .chain(int_part.iter().copied())
        .chain(frac_part.iter().copied())
        .chain(zeros(trail_pad));

    let mut groups = Vec::with_capacity(padded_len / DEC_DIGITS);
    let mut acc: u16 = 0;
    for (i, c) in decimal.enumerate() {
        acc = acc * 10 + u16::from(c - b'0');
        if i % DEC_DIGITS == DEC_DIGITS - 1 {
            groups.push(acc);
            acc = 0;
        }
    }
    (groups, int_groups)
}

/// Serializes a numeric in the wire format. `digits.len()` fits `u16` for every caller
/// (at most 32,768 integer plus 4,096 fraction groups).
fn encode(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
    let ndigits = u16::try_from(digits.len()).unwrap_or(u16::MAX);
    let mut buf = Vec::with_capacity(HEADER_LEN + 2 * digits.len());
    buf.extend_from_slice(&ndigits.to_be_bytes());
    buf.extend_from_slice(&weight.to_be_bytes());
    buf.extend_from_slice(&sign.to_be_bytes());
    buf.extend_from_slice(&dscale.to_be_bytes());
    for d in digits.iter().take(usize::from(ndigits)) {
        buf.extend_from_slice(&d.to_be_bytes());
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds wire bytes from header fields and digits, with no validation.
    fn wire(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut buf = Vec::new();
        buf.extend_from_slice(&(digits.len() as u16).to_be_bytes());
        buf.extend_from_slice(&weight.to_be_bytes());
        buf.extend_from_slice(&sign.to_be_bytes());
        buf.extend_from_slice(&dscale.to_be_bytes());
        for d in digits {
            buf.extend_from_slice(&d.to_be_bytes());
        }
        buf
    }

    fn text(raw: &[u8]) -> String {
        let mut s = String::new();
        numeric_to_string(raw, &mut s).unwrap();
        s
    }

    fn err(raw: &[u8]) -> DecodeError {
        let mut s = String::from("keep");
        let e = numeric_to_string(raw, &mut s).unwrap_err();
        assert_eq!(s, "keep", "nothing appended on error");
        assert_eq!(e.type_name, "numeric");
        e
    }

    /// What `numeric_out` prints for the value a plain decimal string denotes.
    fn canonical(s: &str) -> String {
        let (neg, rest) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
        let int = int.trim_start_matches('0');
        let int = if int.is_empty() { "0" } else { int };
        let zero = int == "0" && frac.bytes().all(|c| c == b'0');
        let mut out = String::new();
        if neg && !zero {
            out.push('-');
        }
        out.push_str(int);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        out
    }

    #[test]
    fn known_answers() {
        assert_eq!(text(&wire(0, SIGN_POS, 0, &[])), "0");
        assert_eq!(text(&wire(0, SIGN_POS, 2, &[])), "0.00");
        assert_eq!(text(&wire(0, SIGN_NEG, 1, &[1, 5000])), "-1.5");
        assert_eq!(text(&wire(1, SIGN_POS, 4, &[1, 2345, 6789])), "12345.6789");
        assert_eq!(text(&wire(-1, SIGN_POS, 4, &[1])), "0.0001");
        assert_eq!(text(&wire(2, SIGN_POS, 0, &[1])), "100000000");
        assert_eq!(
            text(&wire(-5, SIGN_POS, 20, &[1])),
            "0.00000000000000000001"
        );
        assert_eq!(text(&wire(0, SIGN_POS, 0, &[9999])), "9999");
        assert_eq!(text(&wire(1, SIGN_NEG, 0, &[1, 0])), "-10000");
        assert_eq!(text(&wire(0, SIGN_POS, 3, &[1])), "1.000");
        assert_eq!(text(&wire(3, SIGN_POS, 2, &[7])), "7000000000000.00");
    }

    #[test]
    fn specials() {
        assert_eq!(text(&wire(0, SIGN_NAN, 0, &[])), "NaN");
        assert_eq!(text(&wire(0, SIGN_PINF, 0, &[])), "Infinity");
        assert_eq!(text(&wire(0, SIGN_NINF, 0, &[])), "-Infinity");
        // Digits, weight and dscale of a special value are ignored (digits still validated).
        assert_eq!(text(&wire(7, SIGN_NAN, 5, &[1, 2])), "NaN");
        err(&wire(0, SIGN_NAN, 0, &[10_000]));
        assert_eq!(numeric_from_str("NaN").unwrap(), wire(0, SIGN_NAN, 0, &[]));
        assert_eq!(numeric_from_str("nan").unwrap(), wire(0, SIGN_NAN, 0, &[]));
        assert_eq!(
            numeric_from_str("Infinity").unwrap(),
            wire(0, SIGN_PINF, 0, &[])
        );
        assert_eq!(
            numeric_from_str("+Infinity").unwrap(),
            wire(0, SIGN_PINF, 0, &[])
        );
        assert_eq!(
            numeric_from_str("-Infinity").unwrap(),
            wire(0, SIGN_NINF, 0, &[])
        );
    }

    #[test]
    fn digits_beyond_dscale_are_truncated() {
        assert_eq!(text(&wire(0, SIGN_POS, 2, &[1, 2345])), "1.23");
        assert_eq!(text(&wire(0, SIGN_POS, 0, &[1, 9999])), "1");
        assert_eq!(text(&wire(0, SIGN_NEG, 5, &[1, 2345, 6789])), "-1.23456");
        assert_eq!(text(&wire(-1, SIGN_NEG, 4, &[5])), "-0.0005");
        // Truncated to zero: no minus sign, like the server after numeric_recv.
        assert_eq!(text(&wire(-1, SIGN_NEG, 3, &[5])), "0.000");
        assert_eq!(text(&wire(-1, SIGN_NEG, 0, &[5])), "0");
        assert_eq!(text(&wire(-2, SIGN_NEG, 4, &[5])), "0.0000");
    }

    #[test]
    fn non_canonical_input() {
        // Negative zero prints as zero.
        assert_eq!(text(&wire(0, SIGN_NEG, 0, &[])), "0");
        assert_eq!(text(&wire(0, SIGN_NEG, 2, &[])), "0.00");
        assert_eq!(text(&wire(3, SIGN_NEG, 0, &[0, 0])), "0");
        // Leading zero digits are not printed.
        assert_eq!(text(&wire(1, SIGN_POS, 0, &[0, 5])), "5");
        assert_eq!(text(&wire(2, SIGN_NEG, 1, &[0, 0, 12, 3000])), "-12.3");
        // Trailing zero digits are harmless.
        assert_eq!(text(&wire(0, SIGN_POS, 1, &[4, 0, 0])), "4.0");
        // Extreme weights stay bounded by the header.
        let huge = text(&wire(i16::MAX, SIGN_POS, 0, &[1]));
        assert_eq!(huge.len(), 1 + 4 * 32767);
        assert!(huge.starts_with('1') && huge[1..].bytes().all(|c| c == b'0'));
        let tiny = text(&wire(i16::MIN, SIGN_POS, DSCALE_MAX, &[1]));
        assert_eq!(tiny.len(), 2 + usize::from(DSCALE_MAX));
        assert!(tiny[2..].bytes().all(|c| c == b'0'));
    }

    #[test]
    fn errors() {
        err(&[]);
        err(&[0; 7]);
        err(&[0; 9]);
        err(&[0, 1, 0, 0, 0, 0, 0, 0]); // one digit announced, none present
        err(&[0, 1, 0, 0, 0, 0, 0, 0, 0]); // one digit announced, half present
        let mut long = wire(0, SIGN_POS, 0, &[1]);
        long.push(0);
        err(&long);
        let e = err(&wire(0, SIGN_POS, 0, &[10_000]));
        assert!(e.message.contains("10000"), "{}", e.message);
        err(&wire(0, SIGN_POS, 0, &[0xFFFF])); // -1 as i16
        err(&wire(0, 0x8000, 0, &[1]));
        err(&wire(0, 0xE000, 0, &[]));
        err(&wire(0, SIGN_POS, 0x4000, &[1]));
        err(&wire(0, SIGN_NAN, 0x4000, &[]));
    }

    #[test]
    fn from_str_is_canonical() {
        assert_eq!(numeric_from_str("0").unwrap(), wire(0, SIGN_POS, 0, &[]));
        assert_eq!(numeric_from_str("-0").unwrap(), wire(0, SIGN_POS, 0, &[]));
        assert_eq!(numeric_from_str("000").unwrap(), wire(0, SIGN_POS, 0, &[]));
        assert_eq!(numeric_from_str("0.00").unwrap(), wire(0, SIGN_POS, 2, &[]));
        assert_eq!(
            numeric_from_str("-0.00").unwrap(),
            wire(0, SIGN_POS, 2, &[])
        );
        assert_eq!(
            numeric_from_str("-1.5").unwrap(),
            wire(0, SIGN_NEG, 1, &[1, 5000])
        );
        assert_eq!(
            numeric_from_str("12345.6789").unwrap(),
            wire(1, SIGN_POS, 4, &[1, 2345, 6789])
        );
        assert_eq!(
            numeric_from_str("0.0001").unwrap(),
            wire(-1, SIGN_POS, 4, &[1])
        );
        assert_eq!(
            numeric_from_str("100000000").unwrap(),
            wire(2, SIGN_POS, 0, &[1])
        );
        assert_eq!(
            numeric_from_str("0.00000000000000000001").unwrap(),
            wire(-5, SIGN_POS, 20, &[1])
        );
        assert_eq!(
            numeric_from_str("+00012.3400").unwrap(),
            wire(0, SIGN_POS, 4, &[12, 3400])
        );
        assert_eq!(
            numeric_from_str(".5").unwrap(),
            wire(-1, SIGN_POS, 1, &[5000])
        );
        assert_eq!(numeric_from_str("5.").unwrap(), wire(0, SIGN_POS, 0, &[5]));
    }

    #[test]
    fn from_str_rejects() {
        for s in [
            "", "-", "+", ".", "-.", "1e5", "1E5", "1.2.3", " 1", "1 ", "abc", "--1", "+-1",
            "0x10", "inf", "١", "1_000", "1,5",
        ] {
            assert_eq!(numeric_from_str(s), None, "{s:?}");
        }
    }

    #[test]
    fn from_str_format_limits() {
        // 131072 integer digits: 10^131071 = 1000 * 10000^32767, the largest weight.
        let max_int = format!("1{}", "0".repeat(131_071));
        let raw = numeric_from_str(&max_int).unwrap();
        assert_eq!(raw, wire(i16::MAX, SIGN_POS, 0, &[1000]));
        assert_eq!(text(&raw), max_int);
        // One more digit overflows the weight, even with leading zeros before it.
        assert_eq!(numeric_from_str(&format!("{max_int}0")), None);
        assert!(numeric_from_str(&format!("000{max_int}")).is_some());
        // 16383 fraction digits: the largest dscale.
        let max_frac = format!("0.{}1", "0".repeat(16_382));
        let raw = numeric_from_str(&max_frac).unwrap();
        assert_eq!(text(&raw), max_frac);
        assert_eq!(numeric_from_str(&format!("{max_frac}0")), None);
        // Both at once: 36,864 digits, more than i16::MAX.
        let widest = format!("{}.{}", "9".repeat(131_072), "9".repeat(16_383));
        let raw = numeric_from_str(&widest).unwrap();
        assert_eq!(u16::from_be_bytes([raw[0], raw[1]]), 36_864);
        assert_eq!(text(&raw), widest);
    }

    #[test]
    fn thousand_digit_values() {
        let digits: String = (0..1000)
            .map(|i| char::from(b'1' + (i % 9) as u8))
            .collect();
        for s in [
            digits.clone(),
            format!("-{digits}"),
            format!("0.{digits}"),
            format!("{}.{}", &digits[..500], &digits[500..]),
            format!("-{}.{}", &digits[..3], &digits[3..]),
        ] {
            let raw = numeric_from_str(&s).unwrap();
            assert_eq!(text(&raw), s);
        }
    }

    #[test]
    fn appends_to_existing_text() {
        let mut s = String::from("x=");
        numeric_to_string(&wire(0, SIGN_NEG, 1, &[1, 5000]), &mut s).unwrap();
        assert_eq!(s, "x=-1.5");
    }

    proptest! {
        #[test]
        fn decimal_strings_round_trip(s in "[+-]?[0-9]{1,60}(\\.[0-9]{1,60})?") {
            let raw = numeric_from_str(&s).unwrap();
            prop_assert_eq!(text(&raw), canonical(&s));
        }

        #[test]
        fn long_decimal_strings_round_trip(s in "-?[0-9]{1,400}(\\.[0-9]{1,400})?") {
            let raw = numeric_from_str(&s).unwrap();
            prop_assert_eq!(text(&raw), canonical(&s));
        }

        #[test]
        fn from_str_output_is_canonical(s in "-?[0-9]{1,40}(\\.[0-9]{1,40})?") {
            let raw = numeric_from_str(&s).unwrap();
            let ndigits = usize::from(u16::from_be_bytes([raw[0], raw[1]]));
            prop_assert_eq!(raw.len(), HEADER_LEN + 2 * ndigits);
            if ndigits == 0 {
                prop_assert_eq!(&raw[2..6], &[0, 0, 0, 0]);
            } else {
                let first = u16::from_be_bytes([raw[8], raw[9]]);
                let last = u16::from_be_bytes([raw[raw.len() - 2], raw[raw.len() - 1]]);
                prop_assert!(first != 0 && last != 0);
            }
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut s = String::new();
            let _ = numeric_to_string(&raw, &mut s);
        }

        /// Any well-formed header decodes, prints in numeric_out's shape, and reads back
        /// (through numeric_from_str) to the same text.
        #[test]
        fn well_formed_input_prints_consistently(
            weight in any::<i16>(),
            sign in prop_oneof![Just(SIGN_POS), Just(SIGN_NEG)],
            dscale in prop_oneof![0u16..=40, 0u16..=DSCALE_MAX],
            digits in proptest::collection::vec(0u16..NBASE, 0..8),
        ) {
            let s = text(&wire(weight, sign, dscale, &digits));
            let body = s.strip_prefix('-').unwrap_or(&s);
            let (int, frac) = body.split_once('.').unwrap_or((body, ""));
            prop_assert_eq!(frac.len(), usize::from(dscale));
            prop_assert!(int == "0" || !int.starts_with('0'), "{}", int);
            prop_assert!(int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()));
            if s.starts_with('-') {
                prop_assert!(sign == SIGN_NEG && canonical(&s) == s);
            }
            prop_assert_eq!(text(&numeric_from_str(&s).unwrap()), s);
        }
    }
}
