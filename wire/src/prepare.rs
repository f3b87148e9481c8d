//! Prepared statements on one connection: the cache of named statements
//! (`statement_cache.rs` keeps the map and the eviction order), one preparation shared by
//! the callers that miss on the same SQL at once, Describe, installing a described
//! statement, and closing evicted ones on the server.

use crate::client::{Client, Request};
use crate::error::Error;
use crate::frontend::{self, Target};
use crate::result::{Described, Statement};
use crate::statement_cache::StatementCache;
use bytes::BytesMut;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use tokio::sync::{oneshot, watch};

/// The outcome of a preparation others wait on: `None` until it is over.
type Prepared = Option<Result<Arc<Statement>, Error>>;
/// What a caller that misses while the same SQL is being prepared waits on.
pub(crate) type Waiter = watch::Receiver<Prepared>;

/// The cached statement for a SQL text, or the duty to prepare it ([`Client::claim`]).
enum Claim {
    Cached(Arc<Statement>),
    Mine(Preparation),
}

/// The one preparation under way of a SQL text on a connection: [`Preparation::describe`]
/// then [`Preparation::install`]. Dropped before it installs (an error, or its caller gave
/// up), the callers waiting on it look again, and the statement it may have parsed is
/// closed with the connection's next access to its cache.
struct Preparation {
    client: Client,
    sql: Box<str>,
    /// Taken when the outcome is known (so the drop has nothing left to do).
    tx: Option<watch::Sender<Prepared>>,
    /// The statement's name once its Parse may have been written, until it is cached.
    name: Option<String>,
}

impl Preparation {
    /// Parses the SQL as a new named statement and describes it (one round trip).
    async fn describe(&mut self) -> Result<Described, Error> {
        let n = self
            .client
            .inner
            .next_statement
            .fetch_add(1, Ordering::Relaxed);
        let name = format!("h{n}");
        self.name = Some(name.clone());
        let d = self.client.describe_as(name, &self.sql).await;
        if d.is_err() {
            // Its Parse failed (or never ran): nothing to close.
            self.name = None;
        }
        d
    }

    /// Caches the described statement with the formats its results are requested in (one
    /// per column; missing entries mean text), and hands it to the callers waiting.
    fn install(mut self, d: Described, result_formats: Vec<i16>) -> Arc<Statement> {
        let stmt = named_statement(d, result_formats);
        let close = {
            let mut cache = self.client.cache();
            cache.finish(&self.sql);
            cache.insert(&self.sql, stmt.clone())
        };
        self.name = None;
        if let Some(tx) = self.tx.take() {
            tx.send_replace(Some(Ok(stmt.clone())));
        }
        self.client.close_statements(&close);
        stmt
    }

    /// The preparation failed with `e`: the callers waiting get the same error (the same
    /// SQL on the same connection would fail the same way).
    fn fail(mut self, e: &Error) {
        self.client.cache().finish(&self.sql);
        if let Some(tx) = self.tx.take() {
            tx.send_replace(Some(Err(e.clone())));
        }
    }
}

impl Drop for Preparation {
    fn drop(&mut self) {
        let name = self.name.take();
        if self.tx.is_none() && name.is_none() {
            return;
        }
        let mut cache = self.client.cache();
        if self.tx.is_some() {
            // Before the sender goes: a waiter that wakes to a closed channel must not find
            // this preparation still listed.
            cache.finish(&self.sql);
        }
        if let Some(name) = name {
            cache.orphan(name);
        }
    }
}

fn named_statement(d: Described, mut result_formats: Vec<i16>) -> Arc<Statement> {
    result_formats.resize(d.columns.len(), 0);
    Arc::new(Statement {
        name: d.name,
        param_types: d.param_types,
        columns: d.columns,
        result_formats: result_formats.into(),
        unnamed_sql: None,
    })
}

impl Client {
    /// Returns the cached statement for `sql`, preparing it on a miss with result formats
    /// from the connection's `result_format` ([`Client::prepare_with`]).
    pub async fn prepare(&self, sql: &str) -> Result<Arc<Statement>, Error> {
        let result_format = self.inner.result_format;
        self.prepare_with(sql, |d| async move {
            let formats = d
                .columns
                .iter()
                .map(|c| result_format(c.type_oid) as i16)
                .collect();
            Ok((d, formats))
        })
        .await
    }

    /// Returns the cached statement for `sql`, or prepares it: parsed as a new named
    /// statement and described (one round trip), then `formats` chooses the format of each
    /// result column (it may look types up on this connection first), then it is cached.
    ///
    /// One preparation per SQL text at a time ([`Client::claim`]): a caller that misses while
    /// another prepares the same SQL waits for it and shares its outcome.
    pub async fn prepare_with<F, Fut>(&self, sql: &str, formats: F) -> Result<Arc<Statement>, Error>
    where
        F: FnOnce(Described) -> Fut,
        Fut: std::future::Future<Output = Result<(Described, Vec<i16>), Error>>,
    {
        let mut prep = match self.claim(sql).await? {
            Claim::Cached(s) => return Ok(s),
            Claim::Mine(p) => p,
        };
        let described = match prep.describe().await {
            Ok(d) => formats(d).await,
            Err(e) => Err(e),
        };
        match described {
            Ok((d, f)) => Ok(prep.install(d, f)),
            Err(e) => {
                prep.fail(&e);
                Err(e)
            }
        }
    }

    /// The cached statement for `sql`, without waiting: the common case of
    /// [`Client::prepare_with`], for callers that keep the preparation off their hot path.
    /// Statements due to be closed are queued first, as there.
    pub fn cached(&self, sql: &str) -> Option<Arc<Statement>> {
        let (hit, close) = {
            let mut cache = self.cache();
            let close = cache.settle();
            (cache.get(sql), close)
        };
        self.close_statements(&close);
        hit
    }

    /// The cached statement for `sql`, or the duty to prepare it. One preparation per SQL
    /// text at a time: concurrent first runs each parsing their own statement would leave
    /// all but one prepared on the server. A caller that misses while another prepares the
    /// same SQL waits for that preparation and shares its outcome (or, if it was given up,
    /// looks again).
    ///
    /// Statements due to be closed (evicted, replaced or stale, and no longer in use) are
    /// queued for Close here, ahead of the request the caller is about to send: its answer
    /// then comes after theirs, so when the caller gives the connection back nothing of the
    /// connection's own is still in flight.
    async fn claim(&self, sql: &str) -> Result<Claim, Error> {
        enum Found {
            Hit(Arc<Statement>),
            Wait(Waiter),
            Mine(watch::Sender<Prepared>),
        }
        loop {
            let (found, close) = {
                let mut cache = self.cache();
                let close = cache.settle();
                let found = if let Some(s) = cache.get(sql) {
                    Found::Hit(s)
                } else if let Some(rx) = cache.preparing(sql) {
                    Found::Wait(rx.clone())
                } else {
                    let (tx, rx) = watch::channel(None);
                    cache.start(sql, rx);
                    Found::Mine(tx)
                };
                (found, close)
            };
            self.close_statements(&close);
            match found {
                Found::Hit(s) => return Ok(Claim::Cached(s)),
                Found::Mine(tx) => {
                    return Ok(Claim::Mine(Preparation {
                        client: self.clone(),
                        sql: sql.into(),
                        tx: Some(tx),
                        name: None,
                    }))
                }
                Found::Wait(mut rx) => {
                    let outcome = rx
                        .wait_for(Option::is_some)
                        .await
                        .ok()
                        .and_then(|v| (*v).clone());
                    match outcome {
                        Some(Ok(s)) => return Ok(Claim::Cached(s)),
                        Some(Err(e)) => return Err(e),
                        // Given up without an outcome (its caller stopped): look again.
                        None => continue,
                    }
                }
            }
        }
    }

    /// Drops `stmt` from the cache when it is still what `sql` maps to: the server refused
    /// it as stale (its result type changed), and the next use prepares it again. It is
    /// closed once no query holds it, ahead of a later request.
    pub fn forget(&self, sql: &str, stmt: &Arc<Statement>) {
        self.cache().remove(sql, stmt);
    }

    /// The statement cache; a panic elsewhere while it was locked leaves nothing
    /// inconsistent in it (each operation completes under the lock), so poisoning is
    /// ignored.
    fn cache(&self) -> MutexGuard<'_, StatementCache<Waiter>> {
        self.inner
            .statements
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Parses `sql` as a new named statement and describes it (one round trip), without
    /// caching it: for callers that must look at the types before choosing result formats
    /// (then [`Client::install`]).
    pub async fn describe(&self, sql: &str) -> Result<Described, Error> {
        let n = self.inner.next_statement.fetch_add(1, Ordering::Relaxed);
        self.describe_as(format!("h{n}"), sql).await
    }

    /// Describes `sql` as the unnamed statement, which the next Parse replaces: nothing
    /// stays prepared on the server (see [`Client::unnamed`]).
    pub async fn describe_unnamed(&self, sql: &str) -> Result<Described, Error> {
        self.describe_as(String::new(), sql).await
    }

    async fn describe_as(&self, name: String, sql: &str) -> Result<Described, Error> {
        let mut buf = BytesMut::with_capacity(sql.len() + 32);
        frontend::parse(&name, sql, &[], &mut buf)?;
        frontend::describe(Target::Statement, &name, &mut buf)?;
        frontend::sync(&mut buf);
        let resp = self.send(buf.freeze(), 1, None).await?.ok()?;
        Ok(Described {
            name,
            param_types: resp.param_types.unwrap_or_default(),
            columns: resp.row_description.unwrap_or_default().into(),
        })
    }

    /// Caches a described statement with the formats its results are requested in (one per
    /// column; missing entries mean text). Prefer [`Client::claim`], which also keeps
    /// concurrent callers from preparing the same SQL twice; a statement this replaces is
    /// closed once nobody holds it.
    pub fn install(&self, sql: &str, d: Described, result_formats: Vec<i16>) -> Arc<Statement> {
        let stmt = named_statement(d, result_formats);
        let close = self.cache().insert(sql, stmt.clone());
        self.close_statements(&close);
        stmt
    }

    /// A described statement that each execution parses again as the unnamed statement, in
    /// the same write as its Bind, Describe and Execute: one round trip, nothing kept on the
    /// server, so it works behind a pooler that moves sessions between server connections
    /// (PgBouncer's transaction mode). Not cached here: the caller keeps it.
    pub fn unnamed(sql: &str, d: Described, mut result_formats: Vec<i16>) -> Arc<Statement> {
        result_formats.resize(d.columns.len(), 0);
        Arc::new(Statement {
            name: String::new(),
            param_types: d.param_types,
            columns: d.columns,
            result_formats: result_formats.into(),
            unnamed_sql: Some(sql.into()),
        })
    }

    /// How many statements this connection holds prepared.
    pub fn cached_statements(&self) -> usize {
        self.cache().len()
    }

    /// Closes evicted statements on the server, in a request of their own that nobody waits
    /// for (Close + Sync; an error there only means the statement is gone already).
    fn close_statements(&self, names: &[String]) {
        if names.is_empty() {
            return;
        }
        let mut buf = BytesMut::new();
        for name in names {
            if frontend::close(Target::Statement, name, &mut buf).is_err() {
                return;
            }
        }
        frontend::sync(&mut buf);
        // Queued now, ahead of the request of the caller that evicted them: its response
        // then comes after the Close's, so when that caller gives the connection back nothing
        // of the connection's own is still in flight (a spawned send could land later, and
        // the connection would become idle with no lease coming back to say so).
        let (sink, rx) = oneshot::channel();
        let req = Request::Batch {
            bytes: buf.freeze(),
            syncs: 1,
            sink,
            stream: None,
            copy: None,
        };
        let queued = match self.inner.tx.try_send(req) {
            Ok(()) => None,
            Err(crate::queue::TrySendError::Full(req)) => Some(req),
            Err(crate::queue::TrySendError::Closed(_)) => return,
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let tx = self.inner.tx.clone();
        rt.spawn(async move {
            // A full pipeline: the Close waits its turn (nobody waits for its answer).
            if let Some(req) = queued {
                let _ = tx.send(req).await;
            }
            // The loop skips a request whose receiver is gone: hold it until answered.
            let _ = rx.await;
        });
    }
}
