//! A connection's prepared statements, bounded: the least recently used one is evicted (and
//! closed on the server) when a new one would exceed the capacity.
//!
//! Every distinct SQL text a connection runs becomes a named statement on the server, which
//! keeps its plan for the life of the session. Unbounded, a service that builds SQL with
//! inlined values (or an ORM with many shapes) grows both processes without limit. pgx bounds
//! its cache at 512; node-postgres and postgres.js do not bound theirs.

use crate::result::Statement;
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

/// SQL text -> prepared statement, at most `capacity` of them.
pub struct StatementCache {
    map: HashMap<Box<str>, Entry>,
    tick: u64,
    capacity: usize,
}

impl StatementCache {
    pub fn new(capacity: usize) -> StatementCache {
        StatementCache {
            map: HashMap::new(),
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

    /// Caches `statement` for `sql`; returns the names of the statements evicted to make room,
    /// for the caller to close on the server. A statement somebody still holds (a query about
    /// to bind it) is never evicted: closing it would fail that query; the cache stays over
    /// its capacity until such statements are released.
    pub fn insert(&mut self, sql: &str, statement: Arc<Statement>) -> Vec<String> {
        self.tick += 1;
        let replaced = self.map.insert(
            sql.into(),
            Entry {
                statement,
                used: self.tick,
            },
        );
        let mut evicted: Vec<String> = replaced
            .filter(|old| Arc::strong_count(&old.statement) == 1)
            .map(|old| old.statement.name().to_owned())
            .into_iter()
            .collect();
        while self.map.len() > self.capacity {
            let victim = self
                .map
                .iter()
                .filter(|(_, e)| Arc::strong_count(&e.statement) == 1)
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            let Some(key) = victim else { break };
            if let Some(e) = self.map.remove(&key) {
                evicted.push(e.statement.name().to_owned());
            }
        }
        evicted
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

    #[test]
    fn the_least_recently_used_goes_first() {
        let mut c = StatementCache::new(2);
        assert!(c.insert("a", stmt("s1")).is_empty());
        assert!(c.insert("b", stmt("s2")).is_empty());
        assert!(c.get("a").is_some()); // b is now the least recently used
        assert_eq!(c.insert("c", stmt("s3")), vec!["s2".to_string()]);
        assert!(c.get("b").is_none());
        assert!(c.get("a").is_some() && c.get("c").is_some());
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_statement_in_use_is_not_evicted() {
        // As `Client::install` does: the caller keeps a handle to what it inserts, to run it.
        let mut c = StatementCache::new(1);
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
            vec!["s1".to_string(), "s2".to_string()],
            "back to capacity, least recently used first"
        );
        assert_eq!(c.len(), 1);
        assert!(c.get("c").is_some());
    }

    #[test]
    fn re_preparing_the_same_sql_closes_the_old_statement() {
        let mut c = StatementCache::new(4);
        c.insert("a", stmt("s1"));
        assert_eq!(c.insert("a", stmt("s2")), vec!["s1".to_string()]);
        assert_eq!(c.get("a").unwrap().name(), "s2");
    }
}
