//! What can be told of a statement's text without the server: enough to refuse, before
//! anything is sent, a "COPY" that the simple Query protocol would run as something else.
//!
//! A COPY goes out as a simple Query, which runs whatever the text holds: `copyFrom('delete
//! from t')` would delete and only then learn that no COPY started, and a second statement
//! after the COPY would run after it. The scanner knows PostgreSQL's lexical structure as far
//! as that needs: quoted strings (`'..'` with `''`, `E'..'` with backslash escapes),
//! quoted identifiers, dollar quoting and both kinds of comment (block comments nest).

/// Why `sql` is not a single COPY statement, or `Ok` when it is one.
pub fn single_copy(sql: &str) -> Result<(), &'static str> {
    let b = sql.as_bytes();
    let start = skip_blank(b, 0);
    let word_end = b[start..]
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c >= 0x80))
        .map_or(b.len(), |n| start + n);
    if !b[start..word_end].eq_ignore_ascii_case(b"copy") {
        return Err("the statement is not a COPY");
    }
    match top_level_semicolon(b, word_end) {
        Some(at) if skip_blank(b, at + 1) < b.len() => {
            Err("the text holds more than the COPY statement: run one COPY at a time")
        }
        _ => Ok(()),
    }
}

/// The first index at or after `i` that is neither whitespace nor inside a comment.
fn skip_blank(b: &[u8], mut i: usize) -> usize {
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        match comment_end(b, i) {
            Some(end) => i = end,
            None => return i,
        }
    }
}

/// Where the comment starting at `i` ends (past it), if one starts there.
fn comment_end(b: &[u8], i: usize) -> Option<usize> {
    if b[i..].starts_with(b"--") {
        return Some(
            b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |n| i + n + 1),
        );
    }
    if !b[i..].starts_with(b"/*") {
        return None;
    }
    let (mut depth, mut j) = (0usize, i);
    while j < b.len() {
        if b[j..].starts_with(b"/*") {
            depth += 1;
            j += 2;
        } else if b[j..].starts_with(b"*/") {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return Some(j);
            }
        } else {
            j += 1;
        }
    }
    Some(b.len())
}

/// The index of the first `;` from `i` on that is not quoted or in a comment.
fn top_level_semicolon(b: &[u8], mut i: usize) -> Option<usize> {
    while i < b.len() {
        if let Some(end) = comment_end(b, i) {
            i = end;
            continue;
        }
        let c = b[i];
        i = match c {
            b';' => return Some(i),
            b'\'' => {
                let escapes =
                    i > 0 && b[i - 1].eq_ignore_ascii_case(&b'e') && !ident_byte(b, i - 1);
                quoted_end(b, i + 1, b'\'', escapes)
            }
            b'"' => quoted_end(b, i + 1, b'"', false),
            b'$' => dollar_end(b, i).unwrap_or(i + 1),
            _ => i + 1,
        };
    }
    None
}

/// Whether the byte before `at` continues an identifier (so an `e` at `at` is not a prefix).
fn ident_byte(b: &[u8], at: usize) -> bool {
    at > 0 && {
        let c = b[at - 1];
        c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
    }
}

/// Past the closing `quote` of a string whose body starts at `i` (a doubled quote is one
/// character; with `escapes`, a backslash escapes the next byte).
fn quoted_end(b: &[u8], mut i: usize, quote: u8, escapes: bool) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' if escapes => i += 2,
            c if c == quote => {
                if b.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    b.len()
}

/// Past the end of the dollar-quoted string starting at `i`, if `$tag$` starts one (`$1`,
/// a parameter, does not).
fn dollar_end(b: &[u8], i: usize) -> Option<usize> {
    if ident_byte(b, i) {
        return None; // inside an identifier such as a$b
    }
    let tag_len = b[i + 1..]
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c >= 0x80))?;
    if b.get(i + 1).is_some_and(u8::is_ascii_digit) || b.get(i + 1 + tag_len) != Some(&b'$') {
        return None;
    }
    let tag = &b[i..i + tag_len + 2];
    let body = i + tag.len();
    Some(
        b[body..]
            .windows(tag.len())
            .position(|w| w == tag)
            .map_or(b.len(), |n| body + n + tag.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::single_copy;

    #[test]
    fn copies_pass_whatever_their_quoting() {
        for sql in [
            "COPY t FROM STDIN",
            "  copy t (a, b) to stdout with (format csv);",
            "-- load\n/* a /* nested */ comment */ Copy t FROM STDIN;  -- done\n",
            "copy t from stdin with (delimiter ';')",
            "copy t from stdin with (delimiter E'\\';', null 'x')",
            "copy (select ';' as \"a;b\", $q$ ; $q$, $$;$$) to stdout",
            "copy (select $1) to stdout",
            "copy t to stdout; /* trailing */ -- comment",
        ] {
            assert_eq!(single_copy(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn other_statements_and_second_statements_are_refused() {
        for sql in [
            "delete from t",
            "insert into t select 1",
            "copyx t from stdin",
            "",
            "/* copy */ select 1",
            "with x as (select 1) copy t to stdout",
        ] {
            assert_eq!(
                single_copy(sql),
                Err("the statement is not a COPY"),
                "{sql}"
            );
        }
        for sql in [
            "copy t from stdin; delete from t",
            "copy t to stdout;select 1",
            "copy (select 'a'';') to stdout; drop table t",
            "copy (select $$x$$) to stdout; select 1",
        ] {
            assert!(
                single_copy(sql).unwrap_err().contains("more than the COPY"),
                "{sql}"
            );
        }
    }

    #[test]
    fn unterminated_text_is_not_a_panic() {
        for sql in [
            "copy t to stdout '",
            "copy $a$ never",
            "copy /* open",
            "copy \"x",
            "copy $",
        ] {
            let _ = single_copy(sql);
        }
        for n in 0..64 {
            let s: String = "copy ';\"$a$/*-".chars().cycle().take(n).collect();
            let _ = single_copy(&s);
        }
    }
}
