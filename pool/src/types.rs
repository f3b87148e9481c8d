//! The pool's knowledge of user-defined types, and statement preparation that uses it.
//!
//! A statement whose parameters or columns use an OID the codec does not know yet (an enum,
//! a domain, an array of those, a type outside the type table) is described, then the
//! missing OIDs are looked up in `pg_type` on the same connection, and only then cached with
//! its result formats. The snapshot is shared by the whole pool (OIDs are the same on every
//! node of a streaming-replication cluster) and only grows; reading it is one atomic load.

use arc_swap::ArcSwap;
use hyperion_codec::{column_format, Types};
use hyperion_wire::{Client, Error, Statement};
use std::sync::Arc;

/// A pool-wide, lock-free snapshot of [`Types`].
#[derive(Debug, Default)]
pub struct TypeCache {
    types: ArcSwap<Types>,
}

impl TypeCache {
    pub fn new() -> TypeCache {
        TypeCache::default()
    }

    /// The current snapshot, to keep.
    pub fn load(&self) -> Arc<Types> {
        self.types.load_full()
    }

    /// Runs `f` on the current snapshot without taking a reference count (the per-parameter
    /// path of every query).
    pub fn with<R>(&self, f: impl FnOnce(&Types) -> R) -> R {
        f(&self.types.load())
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
    /// resolved, its result formats chosen by the codec.
    pub async fn prepare(&self, client: &Client, sql: &str) -> Result<Arc<Statement>, Error> {
        if let Some(s) = client.cached(sql) {
            return Ok(s);
        }
        let d = client.describe(sql).await?;
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
        Ok(client.install(sql, d, formats))
    }
}
