//! What the pool reads of a statement's text before it runs it: whether it can only read
//! (a read may be retried; a write is never run twice), and whether it is one the pool's
//! shared connections must not run. Sans-IO: pure functions over the SQL text.

/// Whether `sql` can only read: it starts with SELECT, SHOW, VALUES or TABLE (a `WITH` may
/// hold a write, and a SELECT that calls a writing function cannot be told from one that
/// does not: it counts as a read, as in `pool::may_have_written`).
pub(crate) fn reads_only(sql: &str) -> bool {
    let word = first_word(sql);
    if word.eq_ignore_ascii_case("SELECT") {
        // SELECT ... INTO makes a table.
        return !has_keyword(sql, "INTO");
    }
    ["SHOW", "VALUES", "TABLE"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
}

/// Whether `keyword` is a word of `sql` outside its string constants, quoted identifiers
/// and comments (a reserved word, such as INTO, appears nowhere else as itself).
fn has_keyword(sql: &str, keyword: &str) -> bool {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' => {
                // A constant or a quoted identifier; a doubled quote stays inside, and so does
                // a backslash's next byte in an E'' constant (harmlessly in any other).
                let escapes = c == b'\'' && i > 0 && b[i - 1].eq_ignore_ascii_case(&b'e');
                i += 1;
                while i < b.len() {
                    if (escapes && b[i] == b'\\') || (b[i] == c && b.get(i + 1) == Some(&c)) {
                        i += 2;
                    } else if b[i] == c {
                        break;
                    } else {
                        i += 1;
                    }
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(b.len(), |n| i + n + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = b.len() - past_block_comment(&sql[i..]).len();
            }
            b'$' => {
                // A dollar-quoted constant: $tag$ ... $tag$ (a parameter, $1, is not one).
                let tag_end = sql[i + 1..]
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                    .map(|n| i + 1 + n);
                match tag_end {
                    Some(t) if b[t] == b'$' && !b[i + 1].is_ascii_digit() => {
                        let tag = &sql[i..=t];
                        i = sql[t + 1..]
                            .find(tag)
                            .map_or(b.len(), |n| t + 1 + n + tag.len());
                    }
                    _ => i += 1,
                }
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$')
                {
                    i += 1;
                }
                if sql[start..i].eq_ignore_ascii_case(keyword) {
                    return true;
                }
            }
            _ => i += 1,
        }
    }
    false
}

/// What the pool's own statements may not run, since other callers share their
/// connections: opening a transaction block, or changing the session's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// BEGIN, START TRANSACTION.
    Transaction,
    /// SET client_encoding, SET NAMES.
    Encoding,
}

/// Whether `sql` is one the pool's own statements refuse ([`Refused`]). Checked for every
/// statement, so most are told apart by their first bytes (`select` is neither `st` nor
/// `set `); the rest by their first word.
pub(crate) fn refused(sql: &str) -> Option<Refused> {
    let b = sql.as_bytes().trim_ascii_start();
    let maybe = match b.first().map(u8::to_ascii_lowercase) {
        Some(b'b' | b'-' | b'/' | b'(') => true,
        Some(b's') => {
            b.get(1).is_some_and(|c| c.eq_ignore_ascii_case(&b't'))
                || b.get(..4).is_some_and(|w| {
                    w[..3].eq_ignore_ascii_case(b"set") && w[3].is_ascii_whitespace()
                })
        }
        _ => false,
    };
    if !maybe {
        return None;
    }
    let word = first_word(sql);
    if word.eq_ignore_ascii_case("BEGIN") || word.eq_ignore_ascii_case("START") {
        return Some(Refused::Transaction);
    }
    (word.eq_ignore_ascii_case("SET")
        && (has_keyword(sql, "client_encoding") || has_keyword(sql, "NAMES")))
    .then_some(Refused::Encoding)
}

/// The first keyword of `sql`, past leading comments and parentheses.
fn first_word(sql: &str) -> &str {
    // (SQL's whitespace is ASCII.)
    let mut s = sql.trim_ascii_start();
    // Leading comments and parentheses.
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest
                .split_once('\n')
                .map_or("", |(_, r)| r)
                .trim_ascii_start();
        } else if s.starts_with("/*") {
            s = past_block_comment(s).trim_ascii_start();
        } else if let Some(rest) = s.strip_prefix('(') {
            s = rest.trim_ascii_start();
        } else {
            break;
        }
    }
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(s.len());
    &s[..end]
}

/// What follows the block comment `s` starts with. PostgreSQL's block comments nest, so
/// `/* a /* b */ c */` is one comment (a first `*/` ending it would make `c */ INSERT`'s
/// first word `c`, and `/* /* */ SELECT */ INSERT` a read).
fn past_block_comment(s: &str) -> &str {
    let b = s.as_bytes();
    let (mut depth, mut i) = (0usize, 0);
    while i + 1 < b.len() {
        match (b[i], b[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return &s[i..];
                }
            }
            _ => i += 1,
        }
    }
    "" // unterminated: the server refuses it
}

#[cfg(test)]
mod tests {
    use super::{reads_only, refused, Refused};

    fn opens_transaction(sql: &str) -> bool {
        refused(sql) == Some(Refused::Transaction)
    }

    fn sets_encoding(sql: &str) -> bool {
        refused(sql) == Some(Refused::Encoding)
    }

    #[test]
    fn the_first_keyword_is_read_past_comments_nested_ones_included() {
        assert!(reads_only("  select 1"));
        assert!(reads_only("-- note\n(SELECT 1)"));
        assert!(reads_only("/* a /* nested */ comment */ table t"));
        // A first `*/` does not end a nested comment: this is an INSERT.
        assert!(!reads_only("/* /* */ SELECT */ insert into t values (1)"));
        assert!(!reads_only(
            "with x as (insert into t values (1) returning 1) select * from x"
        ));
        assert!(!reads_only("/* unterminated select"));
        // SELECT ... INTO makes a table; INTO in a constant, an identifier or a comment does not.
        assert!(!reads_only("select * into t2 from t"));
        assert!(!reads_only("SELECT a\nINTO TEMP t2 FROM t"));
        assert!(reads_only("select 'into' as x, \"into\" from t -- into\n"));
        assert!(reads_only(
            "select $$ into $$, $q$ into $q$, $1 /* into */ from t"
        ));
        assert!(reads_only("select E'it''s \\' into' as x"));
        assert!(reads_only("select intox, x_into from t"));
        assert!(opens_transaction("BEGIN"));
        assert!(opens_transaction("begin isolation level serializable"));
        assert!(opens_transaction("/* c /* d */ */ start transaction"));
        assert!(!opens_transaction("commit"));
        assert!(!opens_transaction("do $$ begin perform 1; end $$"));
        assert!(!opens_transaction("select 'begin'"));
        assert!(sets_encoding("SET client_encoding TO 'LATIN1'"));
        assert!(sets_encoding("set session client_encoding = latin1"));
        assert!(sets_encoding("/* c */ SET NAMES 'LATIN1'"));
        assert!(!sets_encoding("set search_path = app"));
        assert!(!sets_encoding("select 'set client_encoding'"));
        assert!(!sets_encoding("set application_name = 'client_encoding'"));
    }
}
