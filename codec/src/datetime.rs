//! PostgreSQL `date`, `time`, `timestamp` and `timestamptz` in the binary wire format, printed
//! as ISO 8601 text.
//!
//! # The formats (servers with integer datetimes, the only kind since PostgreSQL 10)
//!
//! | type          | bytes | content                                               |
//! |---------------|-------|-------------------------------------------------------|
//! | `date`        | 4     | `i32` days since 2000-01-01                           |
//! | `time`        | 8     | `i64` microseconds since midnight, `0..=86_400_000_000` |
//! | `timestamp`   | 8     | `i64` microseconds since 2000-01-01 00:00:00          |
//! | `timestamptz` | 8     | the same, in UTC                                      |
//!
//! All big-endian. `i32::MAX` / `i64::MAX` mean `infinity`, `i32::MIN` / `i64::MIN`
//! `-infinity`, and are printed as those words.
//!
//! # The text
//!
//! The calendar is the proleptic Gregorian one with astronomical year numbering (year 0 is
//! 1 BC, year -1 is 2 BC). Years `0..=9999` are written with four digits (`0044`); any other
//! year with a sign and at least six digits (`+012345`, `-000044`, `+5874897`), the rule of
//! JavaScript's `Date.prototype.toISOString`, so `new Date(text)` reads it back.
//!
//! * date: `YYYY-MM-DD`
//! * time: `HH:MM:SS.ffffff` (`24:00:00.000000` is valid)
//! * timestamp: `YYYY-MM-DDTHH:MM:SS.ffffff`
//! * timestamptz: `YYYY-MM-DDTHH:MM:SS.ffffffZ`
//!
//! # Out-of-range values
//!
//! PostgreSQL only produces dates from 4714-11-24 BC to 5874897-12-31 and timestamps from
//! 4714-11-24 00:00:00 BC to 294276-12-31 23:59:59.999999. A date or timestamp outside those
//! limits is still formatted with the same calendar arithmetic (every `i32` and `i64` has
//! exactly one text; none is an error), so a misbehaving server cannot make decoding fail or
//! panic. A `time` outside `0..=86_400_000_000` has no meaningful text and is an error.

use crate::decode::{bad, DecodeError};

/// Microseconds in a day.
const USECS_PER_DAY: i64 = 86_400_000_000;
const USECS_PER_HOUR: u64 = 3_600_000_000;
const USECS_PER_MINUTE: u64 = 60_000_000;
const USECS_PER_SECOND: u64 = 1_000_000;

/// Days in a 400-year Gregorian cycle (97 leap years).
const DAYS_PER_400_YEARS: i64 = 146_097;
/// Days in a century of March-based years that does not end with a leap day (24 leap years).
const DAYS_PER_100_YEARS: i64 = 36_524;
/// Days in four March-based years that end with a leap day.
const DAYS_PER_4_YEARS: i64 = 1_461;
/// Days from 2000-01-01 to 2000-03-01.
const JAN_FEB_2000: i64 = 31 + 29;

/// Reads exactly `N` bytes, or reports the length mismatch.
fn exact<const N: usize>(raw: &[u8], type_name: &'static str) -> Result<[u8; N], DecodeError> {
    raw.try_into()
        .or_else(|_| bad(type_name, format!("expected {N} bytes, got {}", raw.len())))
}

/// Appends the ISO 8601 text of a binary `date`: `YYYY-MM-DD`, `infinity` or `-infinity`.
pub fn date_to_iso(raw: &[u8], out: &mut String) -> Result<(), DecodeError> {
    let days = i32::from_be_bytes(exact(raw, "date")?);
    match days {
        i32::MAX => out.push_str("infinity"),
        i32::MIN => out.push_str("-infinity"),
        _ => push_date(out, i64::from(days)),
    }
    Ok(())
}

/// Appends the text of a binary `time`: `HH:MM:SS.ffffff`. Values outside
/// `0..=86_400_000_000` microseconds are an error.
pub fn time_to_iso(raw: &[u8], out: &mut String) -> Result<(), DecodeError> {
    let usecs = i64::from_be_bytes(exact(raw, "time")?);
    match u64::try_from(usecs) {
        Ok(usecs) if usecs <= USECS_PER_DAY.unsigned_abs() => {
            push_time_of_day(out, usecs);
            Ok(())
        }
        _ => bad("time", format!("{usecs} microseconds is not a time of day")),
    }
}

/// Appends the ISO 8601 text of a binary `timestamp`: `YYYY-MM-DDTHH:MM:SS.ffffff`,
/// `infinity` or `-infinity`.
pub fn timestamp_to_iso(raw: &[u8], out: &mut String) -> Result<(), DecodeError> {
    let usecs = i64::from_be_bytes(exact(raw, "timestamp")?);
    push_timestamp(out, usecs, "");
    Ok(())
}

/// Appends the ISO 8601 text of a binary `timestamptz`, always in UTC:
/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, `infinity` or `-infinity`.
pub fn timestamptz_to_iso(raw: &[u8], out: &mut String) -> Result<(), DecodeError> {
    let usecs = i64::from_be_bytes(exact(raw, "timestamptz")?);
    push_timestamp(out, usecs, "Z");
    Ok(())
}

/// Writes microseconds since 2000-01-01 as date `T` time, then `suffix`; the infinities
/// as words without the suffix.
fn push_timestamp(out: &mut String, usecs: i64, suffix: &str) {
    match usecs {
        i64::MAX => out.push_str("infinity"),
        i64::MIN => out.push_str("-infinity"),
        _ => {
            // Euclidean division: the time of day is never negative, so one microsecond
            // before 2000 is the last microsecond of 1999-12-31.
            let days = usecs.div_euclid(USECS_PER_DAY);
            let time_of_day = usecs.rem_euclid(USECS_PER_DAY).unsigned_abs();
            push_date(out, days);
            out.push('T');
            push_time_of_day(out, time_of_day);
            out.push_str(suffix);
        }
    }
}

/// Writes `YYYY-MM-DD` for a day number (0 = 2000-01-01).
fn push_date(out: &mut String, days: i64) {
    let (year, month, day) = days_to_civil(days);
    push_year(out, year);
    out.push('-');
    push_2(out, u64::from(month));
    out.push('-');
    push_2(out, u64::from(day));
}

/// Writes `HH:MM:SS.ffffff` for microseconds since midnight (at most one day).
fn push_time_of_day(out: &mut String, usecs: u64) {
    push_2(out, usecs / USECS_PER_HOUR);
    out.push(':');
    push_2(out, usecs % USECS_PER_HOUR / USECS_PER_MINUTE);
    out.push(':');
    push_2(out, usecs % USECS_PER_MINUTE / USECS_PER_SECOND);
    out.push('.');
    push_padded(out, usecs % USECS_PER_SECOND, 6);
}

/// Writes a year the way `toISOString` does: four digits for `0..=9999`, otherwise a sign
/// and at least six digits.
fn push_year(out: &mut String, year: i64) {
    if (0..=9999).contains(&year) {
        push_padded(out, year.unsigned_abs(), 4);
    } else {
        out.push(if year < 0 { '-' } else { '+' });
        push_padded(out, year.unsigned_abs(), 6);
    }
}

/// The ASCII digit for `v % 10`.
fn digit_char(v: u64) -> char {
    char::from(b'0' + (v % 10) as u8)
}

/// Writes the last two decimal digits of `v`, zero padded.
fn push_2(out: &mut String, v: u64) {
    out.push(digit_char(v / 10));
    out.push(digit_char(v));
}

/// Writes `v` in decimal, zero padded on the left to at least `width` digits.
fn push_padded(out: &mut String, v: u64, width: u32) {
    let len = v.checked_ilog10().map_or(1, |log| log + 1);
    for _ in len..width {
        out.push('0');
    }
    // len <= 20, so 10^(len - 1) <= 10^19 fits u64.
    let mut divisor = 10u64.checked_pow(len - 1).unwrap_or(1);
    while divisor > 0 {
        out.push(digit_char(v / divisor));
        divisor /= 10;
    }
}

/// Converts a day number (0 = 2000-01-01) to a proleptic Gregorian `(year, month, day)`,
/// with astronomical year numbering (year 0 = 1 BC). Defined for every `i64`.
///
/// The calendar repeats every 400 years (146,097 days). Counting years from March 1st puts
/// the leap day at the very end of a year, so within a 400-year cycle that starts on a
/// March 1st of a year divisible by 400 (here 2000-03-01) the lengths are regular: four
/// centuries of 36,524 days except the last, of 36,525; within a century, blocks of four
/// years of 1,461 days except the last block of the first three centuries (1,460); within
/// a block, years of 365 days except the last (366 when it has the leap day).
pub fn days_to_civil(days: i64) -> (i64, u32, u32) {
    // Split into whole cycles since 2000-03-01 and the day within the cycle, without
    // computing `days - JAN_FEB_2000` (which could overflow near i64::MIN).
    let mut cycle = days.div_euclid(DAYS_PER_400_YEARS);
    let mut day_of_cycle = days.rem_euclid(DAYS_PER_400_YEARS) - JAN_FEB_2000;
    if day_of_cycle < 0 {
        day_of_cycle += DAYS_PER_400_YEARS;
        cycle -= 1; // cannot overflow: |cycle| <= i64::MAX / 146097
    }

    let century = (day_of_cycle / DAYS_PER_100_YEARS).min(3);
    let day_of_century = day_of_cycle - century * DAYS_PER_100_YEARS;
    let block = day_of_century / DAYS_PER_4_YEARS;
    let day_of_block = day_of_century - block * DAYS_PER_4_YEARS;
    let year_of_block = (day_of_block / 365).min(3);
    let day_of_year = day_of_block - year_of_block * 365; // 0 = March 1st

    let (month, day) = month_day_from_march(day_of_year);
    // |cycle * 400| <= 400 * (i64::MAX / 146097): far from overflow.
    let march_year = 2000 + cycle * 400 + century * 100 + block * 4 + year_of_block;
    let year = if month <= 2 {
        march_year + 1
    } else {
        march_year
    };
    (year, month, day)
}

/// Month and day for a day of a March-based year (0 = March 1st, 365 = February 29th).
///
/// From March, month lengths follow the pattern 31 30 31 30 31 repeated (153 days per five
/// months), so `(5 * day + 2) / 153` is the number of whole months since March.
fn month_day_from_march(day_of_year: i64) -> (u32, u32) {
    let months_since_march = (5 * day_of_year + 2) / 153; // 0..=11
    let month_start = (153 * months_since_march + 2) / 5;
    let day = day_of_year - month_start + 1; // 1..=31
    let month = if months_since_march < 10 {
        months_since_march + 3
    } else {
        months_since_march - 9
    };
    (
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// Converts a proleptic Gregorian date (astronomical years, month 1..=12, day 1..=31) to a
/// day number (0 = 2000-01-01); the inverse of [`days_to_civil`].
///
/// Days past the end of their month roll over into the next (February 30th is March 1st or
/// 2nd). Months outside 1..=12 give an unspecified day number, and results beyond the `i64`
/// range saturate; neither panics.
pub fn civil_to_days(y: i64, m: u32, d: u32) -> i64 {
    let (march_year, months_since_march) = if m <= 2 {
        (i128::from(y) - 1, i128::from(m) + 9)
    } else {
        (i128::from(y), i128::from(m) - 3)
    };
    let day_of_year = (153 * months_since_march + 2) / 5 + i128::from(d) - 1;
    let years = march_year - 2000;
    let cycle = years.div_euclid(400);
    let year_of_cycle = years.rem_euclid(400);
    // Leap days before March-year `year_of_cycle` of the cycle: those ending years
    // 2000 + 1..=year_of_cycle, every fourth except the century years.
    let day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 - year_of_cycle / 100 + day_of_year;
    let days = cycle * i128::from(DAYS_PER_400_YEARS) + day_of_cycle + i128::from(JAN_FEB_2000);
    i64::try_from(days).unwrap_or(if days < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Decode = fn(&[u8], &mut String) -> Result<(), DecodeError>;

    fn run(f: Decode, raw: &[u8]) -> String {
        let mut s = String::new();
        f(raw, &mut s).unwrap();
        s
    }

    fn date(days: i32) -> String {
        run(date_to_iso, &days.to_be_bytes())
    }
    fn time(usecs: i64) -> String {
        run(time_to_iso, &usecs.to_be_bytes())
    }
    fn ts(usecs: i64) -> String {
        run(timestamp_to_iso, &usecs.to_be_bytes())
    }
    fn tstz(usecs: i64) -> String {
        run(timestamptz_to_iso, &usecs.to_be_bytes())
    }

    /// PostgreSQL limits, from its Julian-day constants: day 0 of the Julian calendar
    /// (4714-11-24 BC) is the first date; Julian day 2147483494 (5874898-01-01) the first
    /// date past the end; Julian day 109203528 (294277-01-01) the first timestamp past the
    /// end. 2000-01-01 is Julian day 2451545.
    const PG_EPOCH_JDATE: i64 = 2_451_545;
    const MIN_DAY: i64 = -PG_EPOCH_JDATE;
    const DATE_END_DAY: i64 = 2_147_483_494 - PG_EPOCH_JDATE;
    const TIMESTAMP_END_DAY: i64 = 109_203_528 - PG_EPOCH_JDATE;

    #[test]
    fn postgres_limits_in_our_calendar() {
        assert_eq!(civil_to_days(2000, 1, 1), 0);
        assert_eq!(civil_to_days(-4713, 11, 24), MIN_DAY);
        assert_eq!(civil_to_days(5_874_898, 1, 1), DATE_END_DAY);
        assert_eq!(civil_to_days(5_874_897, 12, 31), DATE_END_DAY - 1);
        assert_eq!(DATE_END_DAY - 1, 2_145_031_948);
        assert_eq!(civil_to_days(294_277, 1, 1), TIMESTAMP_END_DAY);
        // The server's MIN_TIMESTAMP and END_TIMESTAMP constants.
        assert_eq!(MIN_DAY * USECS_PER_DAY, -211_813_488_000_000_000);
        assert_eq!(TIMESTAMP_END_DAY * USECS_PER_DAY, 9_223_371_331_200_000_000);
        // Unix epoch, Julian day 2440588.
        assert_eq!(civil_to_days(1970, 1, 1), 2_440_588 - PG_EPOCH_JDATE);
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "2000-01-01");
        assert_eq!(date(-1), "1999-12-31");
        assert_eq!(date(59), "2000-02-29");
        assert_eq!(date(60), "2000-03-01");
        assert_eq!(date(civil_to_days(1900, 2, 28) as i32 + 1), "1900-03-01");
        assert_eq!(date(civil_to_days(2024, 12, 31) as i32), "2024-12-31");
        assert_eq!(date(civil_to_days(44, 3, 15) as i32), "0044-03-15");
        assert_eq!(date(civil_to_days(0, 1, 1) as i32), "0000-01-01");
        assert_eq!(date(civil_to_days(-1, 12, 31) as i32), "-000001-12-31");
        assert_eq!(date(MIN_DAY as i32), "-004713-11-24");
        assert_eq!(date((DATE_END_DAY - 1) as i32), "+5874897-12-31");
        assert_eq!(date(civil_to_days(9999, 12, 31) as i32), "9999-12-31");
        assert_eq!(date(civil_to_days(10_000, 1, 1) as i32), "+010000-01-01");
        assert_eq!(date(i32::MAX), "infinity");
        assert_eq!(date(i32::MIN), "-infinity");
        // Beyond PostgreSQL's range, still formatted.
        assert_eq!(date(i32::MAX - 1), "+5881610-07-10");
        assert_eq!(date(i32::MIN + 1), "-5877611-06-23");
    }

    #[test]
    fn times() {
        assert_eq!(time(0), "00:00:00.000000");
        assert_eq!(time(86_400_000_000), "24:00:00.000000");
        assert_eq!(time(86_399_999_999), "23:59:59.999999");
        assert_eq!(
            time(((12 * 60 + 34) * 60 + 56) * 1_000_000 + 789),
            "12:34:56.000789"
        );
        let mut s = String::new();
        assert!(time_to_iso(&(-1i64).to_be_bytes(), &mut s).is_err());
        assert!(time_to_iso(&86_400_000_001i64.to_be_bytes(), &mut s).is_err());
        assert!(time_to_iso(&i64::MAX.to_be_bytes(), &mut s).is_err());
        assert!(time_to_iso(&i64::MIN.to_be_bytes(), &mut s).is_err());
        assert_eq!(s, "");
    }

    #[test]
    fn timestamps() {
        assert_eq!(ts(0), "2000-01-01T00:00:00.000000");
        assert_eq!(tstz(0), "2000-01-01T00:00:00.000000Z");
        assert_eq!(ts(-1), "1999-12-31T23:59:59.999999");
        assert_eq!(tstz(-1), "1999-12-31T23:59:59.999999Z");
        assert_eq!(ts(-USECS_PER_DAY), "1999-12-31T00:00:00.000000");
        assert_eq!(ts(1_234_567), "2000-01-01T00:00:01.234567");
        // 2021-06-15 08:09:10.5 UTC.
        let usecs = civil_to_days(2021, 6, 15) * USECS_PER_DAY + 29_350_500_000;
        assert_eq!(tstz(usecs), "2021-06-15T08:09:10.500000Z");
        // PostgreSQL's minimum and maximum.
        assert_eq!(ts(MIN_DAY * USECS_PER_DAY), "-004713-11-24T00:00:00.000000");
        assert_eq!(
            tstz(TIMESTAMP_END_DAY * USECS_PER_DAY - 1),
            "+294276-12-31T23:59:59.999999Z"
        );
        assert_eq!(ts(i64::MAX), "infinity");
        assert_eq!(ts(i64::MIN), "-infinity");
        assert_eq!(tstz(i64::MAX), "infinity");
        assert_eq!(tstz(i64::MIN), "-infinity");
        // Beyond PostgreSQL's range, still formatted.
        assert_eq!(ts(i64::MAX - 1), "+294277-01-09T04:00:54.775806");
        assert_eq!(ts(i64::MIN + 1), "-290278-12-22T19:59:05.224193");
    }

    #[test]
    fn wrong_lengths() {
        let decoders: [(Decode, usize, &str); 4] = [
            (date_to_iso, 4, "date"),
            (time_to_iso, 8, "time"),
            (timestamp_to_iso, 8, "timestamp"),
            (timestamptz_to_iso, 8, "timestamptz"),
        ];
        for (f, len, name) in decoders {
            for bad_len in [0, 1, len - 1, len + 1, 16] {
                let mut s = String::new();
                let e = f(&vec![0; bad_len], &mut s).unwrap_err();
                assert_eq!(e.type_name, name);
                assert!(e.message.contains(&len.to_string()), "{}", e.message);
                assert_eq!(s, "");
            }
        }
    }

    #[test]
    fn appends_to_existing_text() {
        let mut s = String::from("at ");
        date_to_iso(&0i32.to_be_bytes(), &mut s).unwrap();
        assert_eq!(s, "at 2000-01-01");
    }

    #[test]
    fn civil_extremes_do_not_panic() {
        for days in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
            let (y, m, d) = days_to_civil(days);
            assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            assert_eq!(civil_to_days(y, m, d), days);
        }
        assert_eq!(civil_to_days(i64::MAX, 12, 31), i64::MAX);
        assert_eq!(civil_to_days(i64::MIN, 1, 1), i64::MIN);
        let _ = civil_to_days(0, 0, 0);
        let _ = civil_to_days(0, u32::MAX, u32::MAX);
        assert_eq!(civil_to_days(2001, 2, 29), civil_to_days(2001, 3, 1));
    }

    /// A straightforward reference: is `y` a leap year, and how long is month `m`.
    fn days_in_month(y: i64, m: u32) -> u32 {
        let leap = y.rem_euclid(4) == 0 && (y.rem_euclid(100) != 0 || y.rem_euclid(400) == 0);
        match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    #[test]
    fn consecutive_days_walk_the_calendar() {
        // Day by day over more than one 400-year cycle around the epoch and around year 0.
        for start in [civil_to_days(1799, 1, 1), civil_to_days(-401, 1, 1)] {
            let (mut y, mut m, mut d) = days_to_civil(start);
            assert_eq!((m, d), (1, 1));
            for days in start..start + 150_000 {
                assert_eq!(days_to_civil(days), (y, m, d), "day {days}");
                d += 1;
                if d > days_in_month(y, m) {
                    d = 1;
                    m += 1;
                    if m > 12 {
                        m = 1;
                        y += 1;
                    }
                }
            }
        }
    }

    /// Parses our own output back into microseconds since 2000-01-01.
    fn parse_timestamp(s: &str) -> i64 {
        let (date, time) = s.split_once('T').unwrap();
        let (sign, date) = match date.as_bytes()[0] {
            b'-' => (-1, &date[1..]),
            b'+' => (1, &date[1..]),
            _ => {
                assert_eq!(date.find('-'), Some(4), "4-digit year in {s}");
                (1, date)
            }
        };
        let mut parts = date.split('-');
        let year_text = parts.next().unwrap();
        if sign == -1 || s.starts_with('+') {
            assert!(year_text.len() >= 6, "{s}");
        }
        let y: i64 = sign * year_text.parse::<i64>().unwrap();
        let m: u32 = parts.next().unwrap().parse().unwrap();
        let d: u32 = parts.next().unwrap().parse().unwrap();
        assert!(
            (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m),
            "{s}"
        );
        assert_eq!(time.len(), 15, "{s}");
        let h: i64 = time[0..2].parse().unwrap();
        let min: i64 = time[3..5].parse().unwrap();
        let sec: i64 = time[6..8].parse().unwrap();
        let us: i64 = time[9..15].parse().unwrap();
        assert!(h < 24 && min < 60 && sec < 60, "{s}");
        civil_to_days(y, m, d) * USECS_PER_DAY + ((h * 60 + min) * 60 + sec) * 1_000_000 + us
    }

    proptest! {
        #[test]
        fn civil_round_trip_from_days(days in -1_000_000_000_000i64..1_000_000_000_000) {
            let (y, m, d) = days_to_civil(days);
            prop_assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            prop_assert_eq!(civil_to_days(y, m, d), days);
        }

        #[test]
        fn civil_round_trip_from_dates(
            y in -3_000_000_000i64..3_000_000_000,
            m in 1u32..=12,
            d in 1u32..=31,
        ) {
            let d = d.min(days_in_month(y, m));
            prop_assert_eq!(days_to_civil(civil_to_days(y, m, d)), (y, m, d));
        }

        #[test]
        fn next_day_is_one_later(days in -1_000_000_000_000i64..1_000_000_000_000) {
            let (y, m, d) = days_to_civil(days);
            let next = if d < days_in_month(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            prop_assert_eq!(days_to_civil(days + 1), next);
        }

        #[test]
        fn any_date_formats(days in any::<i32>()) {
            let s = date(days);
            if days != i32::MAX && days != i32::MIN {
                let (y, m, d) = days_to_civil(i64::from(days));
                let (sign, rest) = match s.as_bytes()[0] {
                    b'-' | b'+' => (if s.starts_with('-') { -1 } else { 1 }, &s[1..]),
                    _ => (1, &s[..]),
                };
                let fields: Vec<&str> = rest.split('-').collect();
                prop_assert_eq!(fields.len(), 3);
                prop_assert_eq!(sign * fields[0].parse::<i64>().unwrap(), y);
                prop_assert_eq!(fields[1].parse::<u32>().unwrap(), m);
                prop_assert_eq!(fields[2].parse::<u32>().unwrap(), d);
                prop_assert_eq!(civil_to_days(y, m, d), i64::from(days));
            }
        }

        #[test]
        fn any_timestamp_formats_and_parses_back(usecs in any::<i64>()) {
            let s = ts(usecs);
            let z = tstz(usecs);
            if usecs == i64::MAX || usecs == i64::MIN {
                prop_assert!(s.ends_with("infinity") && s == z);
            } else {
                prop_assert_eq!(format!("{s}Z"), z);
                prop_assert_eq!(parse_timestamp(&s), usecs);
            }
        }

        #[test]
        fn postgres_range_timestamps_parse_back(
            usecs in (MIN_DAY * USECS_PER_DAY)..(TIMESTAMP_END_DAY * USECS_PER_DAY),
        ) {
            prop_assert_eq!(parse_timestamp(&ts(usecs)), usecs);
        }

        #[test]
        fn any_time_bits_never_panic(usecs in any::<i64>()) {
            let mut s = String::new();
            let ok = time_to_iso(&usecs.to_be_bytes(), &mut s).is_ok();
            prop_assert_eq!(ok, (0..=USECS_PER_DAY).contains(&usecs));
            if ok {
                prop_assert_eq!(s.len(), 15);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..12)) {
            let mut s = String::new();
            let _ = date_to_iso(&raw, &mut s);
            let _ = time_to_iso(&raw, &mut s);
            let _ = timestamp_to_iso(&raw, &mut s);
            let _ = timestamptz_to_iso(&raw, &mut s);
        }
    }
}
