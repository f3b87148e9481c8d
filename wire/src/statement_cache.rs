//! A connection's prepared statements, bounded: the least recently used one is evicted (and
//! closed on the server) when a new one would exceed the capacity.
//!
//! Every distinct SQL text a connection runs becomes a named statement on the server, which
//! keeps its plan for the life of the session. Unbounded, a service that builds SQL with
//! inlined values (or an ORM with many shapes) grows both processes without limit. pgx bounds
//! its cache at 512; node-postgres and postgres.js do not bound theirs.
//!
//! What the server holds is bounded by what this cache knows of: every statement the
//! connection prepared is either cached, being prepared (at most one per SQL text: callers
//! that miss while a preparation is under way wait for it, see `Client::claim`), or listed
//! here to be closed ([`StatementCache::settle`]). A statement leaves the cache (evicted,
//! replaced, or dropped as stale) while a query may still be about to bind it; closing it
//! then would fail that query, so it is closed once nobody holds it. Plain data, no I/O: the
//! driver sends the Closes.

use crate::result::Statement;
use crate::word_hash::BuildWordHash;
use std::collections::HashMap;
use std::sync::Arc;

/// The default capacity: pgx's. A statement costs the server its plan (a few KB to tens of KB)
/// and us its descriptions; 512 per connection covers the distinct statements of most
/// services many times over.
pub const DEFAULT_STATEMENT_CACHE_SIZE: usize = 512;

struct Entry {
    statement: Arc<Statement>,
    /// When it was last used (a tick of the cache's own clock).
    used: u64,
}

/// SQL text -> prepared statement, at most `capacity` of them (more only while the extra
/// ones are in use). `W` is what a caller waits on while another prepares the same SQL (the
/// driver's channel; the cache only keeps it).
///
/// Keyed with the word hash (every query looks its SQL up here; SipHash took 348 of the
/// addon's 14,300 instructions a W2 point query, counted with callgrind): the map is
/// bounded, so texts made to collide cost a scan of at most the capacity.
pub struct StatementCache<W = ()> {
    map: HashMap<Box<str>, Entry, BuildWordHash>,
    /// Out of the cache but still held by a query: closed once the cache's is the last
    /// reference.
    retired: Vec<Arc<Statement>>,
    /// Statement names that may exist on the server and were never cached (a preparation
    /// given up after its Parse was written): closed with the next access. Closing a name
    /// the server does not have is not an error.
    orphans: Vec<String>,
    /// SQL texts being prepared now.
    preparing: HashMap<Box<str>, W, BuildWordHash>,
    tick: u64,
    capacity: usize,
}

impl<W> StatementCache<W> {
    pub fn new(capacity: usize) -> StatementCache<W> {
        StatementCache {
            map: HashMap::default(),
            retired: Vec::new(),
            orphans: Vec::new(),
            preparing: HashMap::default(),
            tick: 0,
            capacity: capacity.max(1),
        }
    }

    pub fn get(&mut self, sql: &str) -> Option<Arc<Statement>> {
        self.tick += 1;
        let e = self.map.get_mut(sql)?;
        e.used = self.tick;
        Some(e.statement.clone())
    }

    /// Caches `statement` for `sql`; returns the names of the statements to close on the
    /// server now (see [`StatementCache::settle`]). A statement somebody still holds (a
    /// query about to bind it) is never closed: closing it would fail that query; the cache
    /// stays over its capacity until such statements are released.
    pub fn insert(&mut self, sql: &str, statement: Arc<Statement>) -> Vec<String> {
        self.tick += 1;
        let replaced = self.map.insert(
            sql.into(),
            Entry {
                statement,
                used: self.tick,
            },
        );
        if let Some(old) = replaced {
            self.retired.push(old.statement);
        }
        self.settle()
    }

    /// Drops `statement` from the cache if it is what `sql` maps to (the server refused it
    /// as stale: the next use prepares it again). It is closed by a later
    /// [`StatementCache::settle`], once nobody holds it.
    pub fn remove(&mut self, sql: &str, statement: &Arc<Statement>) {
        if !self
            .map
            .get(sql)
            .is_some_and(|e| Arc::ptr_eq(&e.statement, statement))
        {
            return;
        }
        if let Some(e) = self.map.remove(sql) {
            self.retired.push(e.statement);
        }
    }

    /// The names of the statements to close on the server now: those out of the cache that
    /// nobody holds any more, orphans, and the least recently used ones while over capacity.
    /// The caller sends the Closes ahead of its own request (so nothing of the connection's
    /// own is in flight after that request's answer).
    pub fn settle(&mut self) -> Vec<String> {
        if self.retired.is_empty() && self.orphans.is_empty() && self.map.len() <= self.capacity {
            return Vec::new();
        }
        let mut closed = std::mem::take(&mut self.orphans);
        self.retired.retain(|s| {
            let free = Arc::strong_count(s) == 1;
            if free {
                closed.push(s.name().to_owned());
            }
            !free
        });
        while self.map.len() > self.capacity {
            let victim = self
                .map
                .iter()
                .filter(|(_, e)| Arc::strong_count(&e.statement) == 1)
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            let Some(key) = victim else { break };
            if let Some(e) = self.map.remove(&key) {
                closed.push(e.statement.name().to_owned());
            }
        }
        closed
    }

    /// Notes a statement name that may exist on the server without being cached.
    pub fn orphan(&mut self, name: String) {
        self.orphans.push(name);
    }

    /// What to wait on if `sql` is being prepared.
    pub fn preparing(&self, sql: &str) -> Option<&W> {
        self.preparing.get(sql)
    }

    /// `sql` is being prepared; others wait on `waiter`.
    pub fn start(&mut self, sql: &str, waiter: W) {
        self.preparing.insert(sql.into(), waiter);
    }

    /// The preparation of `sql` is over (installed or given up).
    pub fn finish(&mut self, sql: &str) {
        self.preparing.remove(sql);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(name: &str) -> Arc<Statement> {
        Arc::new(Statement {
            name: name.into(),
            param_types: vec![],
            columns: Arc::from(Vec::new()),
            result_formats: Arc::from(Vec::new()),
            unnamed_sql: None,
        })
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_least_recently_used_goes_first() {
        let mut c = StatementCache::<()>::new(2);
        assert!(c.insert("a", stmt("s1")).is_empty());
        assert!(c.insert("b", stmt("s2")).is_empty());
        assert!(c.get("a").is_some()); // b is now the least recently used
        assert_eq!(c.insert("c", stmt("s3")), names(&["s2"]));
        assert!(c.get("b").is_none());
        assert!(c.get("a").is_some() && c.get("c").is_some());
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_statement_in_use_is_not_evicted() {
        // As `Client::install` does: the caller keeps a handle to what it inserts, to run it.
        let mut c = StatementCache::<()>::new(1);
        let s1 = stmt("s1");
        c.insert("a", s1.clone());
        let s2 = stmt("s2");
        assert!(
            c.insert("b", s2.clone()).is_empty(),
            "both in use: kept over capacity, nothing closed"
        );
        assert_eq!(c.len(), 2);
        drop((s1, s2));
        let s3 = stmt("s3");
        assert_eq!(
            c.insert("c", s3.clone()),
            names(&["s1", "s2"]),
            "back to capacity, least recently used first"
        );
        assert_eq!(c.len(), 1);
        assert!(c.get("c").is_some());
    }

    #[test]
    fn over_capacity_shrinks_at_the_next_access_once_released() {
        // No new statement needed: releasing is enough for the next settle to close.
        let mut c = StatementCache::<()>::new(1);
        let (s1, s2) = (stmt("s1"), stmt("s2"));
        c.insert("a", s1.clone());
        assert!(c.insert("b", s2.clone()).is_empty());
        drop((s1, s2));
        assert_eq!(c.settle(), names(&["s1"]));
        assert_eq!(c.len(), 1);
        assert!(c.settle().is_empty());
    }

    #[test]
    fn re_preparing_the_same_sql_closes_the_old_statement() {
        let mut c = StatementCache::<()>::new(4);
        c.insert("a", stmt("s1"));
        assert_eq!(c.insert("a", stmt("s2")), names(&["s1"]));
        assert_eq!(c.get("a").unwrap().name(), "s2");
    }

    #[test]
    fn a_replaced_statement_still_held_is_closed_once_released() {
        // The leak this cache once had: the replaced statement was in use, skipped, and then
        // forgotten, so it stayed prepared on the server for the life of the session.
        let mut c = StatementCache::<()>::new(4);
        let s1 = stmt("s1");
        c.insert("a", s1.clone());
        let s2 = stmt("s2");
        assert!(c.insert("a", s2.clone()).is_empty(), "s1 is in use");
        assert!(c.settle().is_empty(), "still in use");
        drop(s1);
        assert_eq!(c.settle(), names(&["s1"]));
        assert!(c.settle().is_empty(), "closed once");
        assert_eq!(c.get("a").unwrap().name(), "s2");
    }

    #[test]
    fn a_removed_statement_is_closed_once_released_and_only_if_current() {
        let mut c = StatementCache::<()>::new(4);
        let s1 = stmt("s1");
        c.insert("a", s1.clone());
        c.remove("a", &stmt("other"));
        assert!(c.get("a").is_some(), "another statement: the entry stays");
        c.remove("a", &s1);
        assert!(c.get("a").is_none());
        assert!(c.settle().is_empty(), "s1 is still held");
        drop(s1);
        assert_eq!(c.settle(), names(&["s1"]));
    }

    #[test]
    fn orphans_are_closed_at_the_next_settle() {
        let mut c = StatementCache::<()>::new(4);
        c.orphan("h7".into());
        assert_eq!(c.settle(), names(&["h7"]));
        assert!(c.settle().is_empty());
    }

    #[test]
    fn one_preparation_per_sql() {
        let mut c = StatementCache::<u8>::new(4);
        assert!(c.preparing("a").is_none());
        c.start("a", 7);
        assert_eq!(c.preparing("a"), Some(&7));
        c.finish("a");
        assert!(c.preparing("a").is_none());
    }
}
