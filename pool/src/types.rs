//! The pool's knowledge of user-defined types, and statement preparation that uses it.
//!
//! A statement whose parameters or columns use an OID the codec does not know yet (an enum,
//! a domain, an array of those, a type outside the type table) is described, then the
//! missing OIDs are looked up in `pg_type` on the same connection, and only then cached with
//! its result formats. The snapshot is shared by the whole pool (OIDs are the same on every
//! node of a streaming-replication cluster) and only grows; reading it is one atomic load.

use arc_swap::ArcSwap;
use hyperion_codec::{column_format, Types};
use hyperion_wire::word_hash::BuildWordHash;
use hyperion_wire::{Client, Described, Error, QueryResult, Statement, TransactionStatus};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A pool-wide, lock-free snapshot of [`Types`], and the descriptions of the statements run
/// unnamed (`prepare: false`).
#[derive(Debug, Default)]
pub struct TypeCache {
    types: ArcSwap<Types>,
    /// Unnamed statements by text: what Describe said of them, with the formats chosen.
    /// Pool-wide, as OIDs are the same on every node; emptied when full (so bounded, and
    /// keyed with the word hash, as the connections' statement caches are).
    unnamed: Mutex<HashMap<Box<str>, Arc<Statement>, BuildWordHash>>,
}

/// Descriptions of unnamed statements kept per pool; past it the cache starts over.
const MAX_UNNAMED: usize = 1024;

impl TypeCache {
    pub fn new() -> TypeCache {
        TypeCache::default()
    }

    /// The current snapshot, to keep.
    pub fn load(&self) -> Arc<Types> {
        self.types.load_full()
    }

    /// Runs `f` on the types `type_oid` needs (the per-parameter path of every query): for a
    /// built-in type or an array of one, which every snapshot knows, an empty one, with no
    /// load of the current snapshot (an `arc_swap` load, about 70 instructions, twice a
    /// parameter); for any other, the current snapshot, without taking a reference count.
    pub fn with_for<R>(&self, type_oid: u32, f: impl FnOnce(&Types) -> R) -> R {
        static BUILTINS_ONLY: OnceLock<Types> = OnceLock::new();
        if Types::is_builtin(type_oid) {
            f(BUILTINS_ONLY.get_or_init(Types::default))
        } else {
            f(&self.types.load())
        }
    }

    /// Looks up `oids` (and what they are built on) in `pg_type` through `client` and
    /// publishes a snapshot that knows them.
    pub async fn resolve(&self, client: &Client, oids: &[u32]) -> Result<(), Error> {
        let results = client
            .simple_query(&hyperion_codec::types::lookup_sql(oids))
            .await?;
        let rows = results.iter().flat_map(|r| r.rows.iter()).map(|row| {
            let mut cols = row.values();
            let mut next = || {
                cols.next()
                    .flatten()
                    .and_then(|v| std::str::from_utf8(v).ok())
            };
            [next(), next(), next(), next(), next()]
        });
        let learnt = self.types.load().learn(oids, rows);
        // Concurrent lookups each add what they learnt; nothing learnt is ever dropped.
        self.types.rcu(|cur| {
            let mut merged = (**cur).clone();
            merged.absorb(&learnt);
            merged
        });
        Ok(())
    }

    /// The cached statement for `sql` on `client`, or a new one: described, its unknown types
    /// resolved, its result formats chosen by the codec. Concurrent first runs of `sql` on
    /// one connection share one preparation (see `Client::prepare_with`).
    pub async fn prepare(&self, client: &Client, sql: &str) -> Result<Arc<Statement>, Error> {
        client
            .prepare_with(sql, |d| async move {
                let formats = self.formats(client, &d).await?;
                Ok((d, formats))
            })
            .await
    }

    /// [`TypeCache::statement`]'s answer when it needs no round trip.
    pub fn cached(&self, client: &Client, sql: &str, named: bool) -> Option<Arc<Statement>> {
        if named {
            client.cached(sql)
        } else {
            self.unnamed.lock().ok().and_then(|m| m.get(sql).cloned())
        }
    }

    /// `sql` prepared (cached on the connection, [`TypeCache::prepare`]) or, with `named`
    /// false, as an unnamed statement that every execution parses again: nothing stays
    /// prepared on the server (PgBouncer's transaction mode). Its description is kept here,
    /// so each execution is still one round trip.
    pub async fn statement(
        &self,
        client: &Client,
        sql: &str,
        named: bool,
    ) -> Result<Arc<Statement>, Error> {
        if named {
            return self.prepare(client, sql).await;
        }
        if let Some(s) = self.unnamed.lock().ok().and_then(|m| m.get(sql).cloned()) {
            return Ok(s);
        }
        let d = client.describe_unnamed(sql).await?;
        let formats = self.formats(client, &d).await?;
        let stmt = Client::unnamed(sql, d, formats);
        if let Ok(mut m) = self.unnamed.lock() {
            if m.len() >= MAX_UNNAMED {
                m.clear();
            }
            m.insert(sql.into(), stmt.clone());
        }
        Ok(stmt)
    }

    /// An unnamed statement whose result's columns changed since it was described (the
    /// schema changed) is described again next time.
    pub fn check_unnamed(&self, sql: &str, stmt: &Statement, result: &QueryResult) {
        let Some(cols) = result.columns.as_ref().filter(|_| stmt.is_unnamed()) else {
            return;
        };
        let same = cols.len() == stmt.columns().len()
            && cols
                .iter()
                .zip(stmt.columns().iter())
                .all(|(a, b)| a.type_oid == b.type_oid);
        if !same {
            self.forget_unnamed(sql, stmt);
        }
    }

    /// After `stmt` failed with `e` on `client`: when the server refused it because our
    /// description of it is stale (the schema, or the session's `search_path`, changed since
    /// it was described), the description is dropped, so the next run describes or prepares
    /// it again. Returns whether running it again now is safe: the refusal came before
    /// anything ran, and no transaction block was open (`idle_before`: none was when the
    /// statement was sent), which the error would have aborted.
    ///
    /// A named statement the session no longer has (26000, after a DISCARD ALL or
    /// DEALLOCATE ALL) is dropped and prepared again the same way.
    ///
    /// PostgreSQL refuses a stale prepared statement with 0A000 "cached plan must not change
    /// result type" at every Bind, for the life of the statement: pgx drops it the same way.
    /// A stale unnamed description fails its Bind with 08P01 when the column count changed
    /// ("bind message has 2 result formats but query has 3 columns"). Some errors that may
    /// also come from a stale description are not recognised as such here (a parameter type
    /// that no longer fits fails at Parse, with no sign of the phase): for them, an unnamed
    /// statement's description is dropped on any error of class 42 (undefined column, type
    /// mismatch), without a retry.
    pub fn stale(
        &self,
        client: &Client,
        sql: &str,
        stmt: &Arc<Statement>,
        e: &Error,
        idle_before: bool,
    ) -> bool {
        let Some(db) = e.as_db() else { return false };
        let refused = if stmt.is_unnamed() {
            db.code == "08P01"
                && match db.routine.as_deref() {
                    // Bind's own checks, and its result formats' (PortalSetResultFormat).
                    Some(r) => matches!(r, "exec_bind_message" | "PortalSetResultFormat"),
                    None => db.message.starts_with("bind message"),
                }
        } else {
            let changed = db.code == "0A000"
                && db.where_.is_none()
                && (db.routine.as_deref() == Some("RevalidateCachedQuery")
                    || db
                        .message
                        .contains("cached plan must not change result type"));
            // Gone from the session: a DISCARD ALL or DEALLOCATE ALL run on the connection (a
            // reset before giving it back, say) dropped it, and Bind refused it. Nothing ran;
            // prepared again, it runs.
            // The name, not the message's words: the message is translated under
            // lc_messages (and its quotes with it: »h3« in German).
            let gone = db.code == "26000" && names(&db.message, stmt.name());
            changed || gone
        };
        if stmt.is_unnamed() && (refused || db.code.starts_with("42")) {
            self.forget_unnamed(sql, stmt);
        } else if refused {
            client.forget(sql, stmt);
        }
        refused && idle_before && client.state().transaction_status() == TransactionStatus::Idle
    }

    /// Drops the description kept for the unnamed `sql`, if it is still `stmt`.
    fn forget_unnamed(&self, sql: &str, stmt: &Statement) {
        if let Ok(mut m) = self.unnamed.lock() {
            if m.get(sql).is_some_and(|s| std::ptr::eq(&**s, stmt)) {
                m.remove(sql);
            }
        }
    }

    /// The result formats for a described statement, once its types are all known.
    async fn formats(&self, client: &Client, d: &Described) -> Result<Vec<i16>, Error> {
        let used = d
            .param_types
            .iter()
            .copied()
            .chain(d.columns.iter().map(|c| c.type_oid));
        let missing = self.types.load().missing(used);
        if !missing.is_empty() {
            self.resolve(client, &missing).await?;
        }
        let types = self.types.load();
        let formats = d
            .columns
            .iter()
            .map(|c| column_format(c.type_oid, &types).code())
            .collect();
        Ok(formats)
    }
}

/// Whether `message` names `name` as a word of its own (`h3` in `»h3«`, not in `h31`).
fn names(message: &str, name: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    message.match_indices(name).any(|(i, _)| {
        !word(message[..i].chars().next_back()) && !word(message[i + name.len()..].chars().next())
    })
}

#[cfg(test)]
mod names_tests {
    use super::names;

    #[test]
    fn a_statement_name_is_found_in_any_language_and_only_whole() {
        assert!(names("prepared statement \"h3\" does not exist", "h3"));
        assert!(names("vorbereitete Anweisung »h3« existiert nicht", "h3"));
        assert!(!names("prepared statement \"h31\" does not exist", "h3"));
        assert!(!names("prepared statement \"xh3\" does not exist", "h3"));
    }
}
