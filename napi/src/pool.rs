//! The `NativePool` class that `client.js` wraps.

use crate::dedicated::{Held, NativeConnection};
use crate::errors::Failure;
use crate::options::{config, process_env, PoolOptions};
use crate::params::{from_js, JsParams};
use crate::retry::{backoff_ms, RetrySettings};
use crate::settle::Settler;
use crate::stream;
use hyperion_codec::Int8;
use hyperion_pool::{Abort, Cancellation, HostEvent, Isolation, Pool, QueryOptions, TypeCache};
use napi::bindgen_prelude::{Array, External};
use napi::threadsafe_function::{
    ErrorStrategy, ThreadSafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi::{Env, JsFunction, JsObject, JsString, JsUnknown};
use napi_derive::napi;
use std::sync::Arc;
use std::time::Duration;

#[napi(object)]
pub struct PoolStatus {
    pub max_size: u32,
    pub size: u32,
    pub available: u32,
    pub in_use: u32,
    pub waiting: u32,
}

/// The most parameters a query can take: what `hyperion_wire::frontend::bind` can encode.
const MAX_PARAMS: u32 = i16::MAX as u32;

/// How many parameters [`query_rows`] takes as arguments besides the array.
const FIRST_PARAMS: usize = 4;

/// Reads a query's JS parameters on the JS thread, before the query is spawned; a bad one
/// throws with the query's text.
pub(crate) fn read_params(
    env: &Env,
    sql: &Arc<str>,
    params: Option<Array>,
    types: &Arc<TypeCache>,
) -> napi::Result<JsParams> {
    read_params_with(env, sql, params, None, types)
}

/// As [`read_params`]; `first`: the array's first [`FIRST_PARAMS`] elements as the caller
/// read them in JS (`params[0]` ...), which V8 does inline where `napi_get_element` takes its
/// generic lookup (about 60 ns an element).
pub(crate) fn read_params_with(
    env: &Env,
    sql: &Arc<str>,
    params: Option<Array>,
    first: Option<[JsUnknown; FIRST_PARAMS]>,
    types: &Arc<TypeCache>,
) -> napi::Result<JsParams> {
    // Read from the array as it is (napi-rs's `Vec<JsUnknown>` was a copy of it first).
    let mut values = Vec::new();
    if let Some(params) = &params {
        // More than the wire layer can send (its Bind writes the count as an int16): a longer
        // array (`new Array(2 ** 32 - 1)`) is refused before a single element is read or
        // any memory reserved for it.
        if params.len() > MAX_PARAMS {
            return Err(Failure::client(
                "INVALID_ARGUMENT",
                format!(
                    "a query takes at most {MAX_PARAMS} parameters; {} were given",
                    params.len()
                ),
            )
            .with_query(sql)
            .throw(env));
        }
        values.reserve_exact(params.len() as usize);
        let mut first = first.map(|f| f.into_iter());
        for i in 0..params.len() {
            let given = first.as_mut().and_then(|f| f.next());
            let value = match given {
                Some(v) => v,
                None => match params.get::<JsUnknown>(i)? {
                    Some(v) => v,
                    None => break,
                },
            };
            let value =
                from_js(env, i as usize, value).map_err(|f| f.with_query(sql).throw(env))?;
            values.push(value);
        }
    }
    Ok(JsParams {
        values,
        types: types.clone(),
    })
}

/// The native side of an `AbortSignal`: `client.js` makes one per query that takes a
/// signal and calls `abort()` from the signal's single listener.
#[napi]
pub struct AbortHandle {
    abort: Abort,
}

#[napi]
impl AbortHandle {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        AbortHandle {
            abort: Abort::new(),
        }
    }

    #[napi]
    pub fn abort(&self) {
        self.abort.abort();
    }
}

/// A pool query's options from its JS arguments.
fn query_options(
    retry: Option<bool>,
    prepare: Option<bool>,
    timeout_ms: Option<f64>,
    abort: Option<&AbortHandle>,
) -> Result<QueryOptions, Failure> {
    Ok(QueryOptions {
        retry,
        cancel: cancellation(timeout_ms, abort)?,
        prepare,
    })
}

/// A query's stop conditions from its JS options (`client.js` checked them already).
pub(crate) fn cancellation(
    timeout_ms: Option<f64>,
    abort: Option<&AbortHandle>,
) -> Result<Cancellation, Failure> {
    let timeout = match timeout_ms {
        None => None,
        Some(ms) if ms.is_finite() && ms > 0.0 && ms <= MAX_TIMEOUT_MS => {
            Some(Duration::from_secs_f64(ms / 1000.0))
        }
        Some(_) => {
            return Err(Failure::client(
                "INVALID_ARGUMENT",
                "timeoutMs must be a number greater than 0 and at most 2147483647",
            ))
        }
    };
    Ok(Cancellation {
        timeout,
        abort: abort.map(|a| a.abort.clone()),
        // Read only when something counts from it (a query with neither runs without).
        called: (timeout.is_some() || abort.is_some()).then(std::time::Instant::now),
    })
}

/// The largest `timeoutMs`, as for `setTimeout`.
const MAX_TIMEOUT_MS: f64 = 2_147_483_647.0;

#[napi(object)]
pub struct ConnectionStatus {
    pub host: String,
    pub process_id: i32,
    pub server_version_num: u32,
    pub in_flight: u32,
    pub read_only: bool,
    pub in_hot_standby: bool,
    pub default_transaction_read_only: bool,
    pub saw_read_only_error: bool,
}

/// What `pool.hosts()` reports of one host.
#[napi(object)]
pub struct HostStatus {
    pub host: String,
    /// `primary`, `standby`, `fenced`, `unreachable` or `unknown`.
    pub state: String,
    /// When the state was last confirmed (ms since the epoch), if ever.
    pub confirmed_at: Option<f64>,
    /// Since when the host has been unreachable (ms since the epoch), if it is.
    pub down_since: Option<f64>,
}

/// One failover event as the `onEvent` hook receives it.
fn event_object(env: &Env, e: &HostEvent) -> napi::Result<JsObject> {
    let mut o = env.create_object()?;
    o.set_named_property("type", env.create_string(e.kind)?)?;
    if !e.host.is_empty() {
        o.set_named_property("host", env.create_string(&e.host)?)?;
    }
    if let Some(by) = &e.by {
        o.set_named_property("by", env.create_string(by)?)?;
    }
    if let Some(n) = e.count {
        o.set_named_property("count", env.create_double(n as f64)?)?;
    }
    o.set_named_property("at", env.create_double(e.at_ms as f64)?)?;
    Ok(o)
}

#[napi]
pub struct NativePool {
    // Read by `listen.rs`'s methods too.
    pub(crate) pool: Pool,
    /// How int8 values reach JS (`types.int8`).
    int8: Int8,
    pub(crate) settler: Settler,
    warnings: Vec<String>,
}

#[napi]
impl NativePool {
    #[napi(constructor)]
    pub fn new(env: Env, options: PoolOptions) -> napi::Result<Self> {
        let int8 = match options.int8.as_deref() {
            None => Int8::default(),
            Some(s) => Int8::parse(s).ok_or_else(|| {
                Failure::client(
                    "INVALID_CONFIG",
                    format!("types.int8 must be 'bigint', 'number' or 'string', not {s:?}"),
                )
                .throw(&env)
            })?,
        };
        let (mut cfg, warnings) = config(options, &process_env)
            .map_err(|m| Failure::client("INVALID_CONFIG", m).throw(&env))?;
        let settler = Settler::new(&env).map_err(|f| f.throw(&env))?;
        cfg.runner = settler.runner();
        let pool = Pool::new(cfg).map_err(|e| Failure::from(e).throw(&env))?;
        Ok(NativePool {
            pool,
            int8,
            settler,
            warnings,
        })
    }

    /// What the configuration warned about (a password file ignored for its permissions);
    /// `client.js` emits them as process warnings.
    #[napi]
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    /// Resolves to the result in columns (`client.js` assembles the rows; see rows.rs).
    /// `columns`: always in columns (`rowMode: 'array'`, whose rows `rows.js` builds).
    #[napi(ts_return_type = "Promise<NativeResult>")]
    #[allow(clippy::too_many_arguments)]
    pub fn query(
        &self,
        env: Env,
        sql: String,
        params: Option<Array>,
        retry: Option<bool>,
        timeout_ms: Option<f64>,
        abort: Option<&AbortHandle>,
        columns: Option<bool>,
        prepare: Option<bool>,
        trace: Option<bool>,
    ) -> napi::Result<JsObject> {
        let sql: Arc<str> = sql.into();
        let opts = query_options(retry, prepare, timeout_ms, abort)
            .map_err(|f| f.with_query(&sql).throw(&env))?;
        let form = stream::Form {
            columns: columns.unwrap_or(false),
            trace: trace.unwrap_or(false),
            finish: false,
        };
        self.spawn_query(env, sql, params, opts, form)
    }

    /// What [`query_rows`] needs of this pool.
    #[napi(ts_return_type = "ExternalObject<QueryHandle>")]
    pub fn query_handle(&self) -> External<QueryHandle> {
        External::new(QueryHandle {
            pool: self.pool.clone(),
            int8: self.int8,
            settler: self.settler.clone(),
        })
    }

    fn spawn_query(
        &self,
        env: Env,
        sql: Arc<str>,
        params: Option<Array>,
        opts: QueryOptions,
        form: stream::Form,
    ) -> napi::Result<JsObject> {
        let params = read_params(&env, &sql, params, self.pool.types())?;
        spawn_on(
            &env,
            &self.pool,
            &self.settler,
            self.int8,
            sql,
            params,
            opts,
            form,
        )
    }

    /// Sends every notice of the pool's queries and transactions to `callback`, on the JS
    /// thread, just before the query settles (`notices.rs`).
    #[napi]
    pub fn on_notice(&self, env: Env, callback: JsFunction) -> napi::Result<()> {
        self.settler
            .set_notice_hook(&env, callback)
            .map_err(|f| f.throw(&env))
    }

    /// Resolves to a `NativeConnection` holding a dedicated connection after BEGIN.
    #[napi(ts_return_type = "Promise<NativeConnection>")]
    pub fn begin(&self, env: Env, isolation: Option<String>) -> napi::Result<JsObject> {
        let isolation = isolation
            .map(|s| Isolation::parse(&s))
            .transpose()
            .map_err(|m| {
                Failure::client("INVALID_ARGUMENT", m)
                    .with_query(&Arc::from("BEGIN"))
                    .throw(&env)
            })?;
        let pool = self.pool.clone();
        let settler = self.settler.clone();
        let int8 = self.int8;
        self.settler
            .spawn(&env, Some(Arc::from("BEGIN")), async move {
                let tx = pool.begin(isolation).await?;
                Ok(NativeConnection::new(
                    Held::Tx(tx),
                    pool.types().clone(),
                    int8,
                    settler,
                ))
            })
    }

    /// Resolves to a `NativeConnection` checked out for the caller alone; with `timeout_ms`
    /// or `abort` (a call that checks one out for itself), a stop while it waits rejects as
    /// not sent.
    #[napi(ts_return_type = "Promise<NativeConnection>")]
    pub fn connect(
        &self,
        env: Env,
        timeout_ms: Option<f64>,
        abort: Option<&AbortHandle>,
    ) -> napi::Result<JsObject> {
        let cancel = cancellation(timeout_ms, abort).map_err(|f| f.throw(&env))?;
        let pool = self.pool.clone();
        let settler = self.settler.clone();
        let int8 = self.int8;
        self.settler.spawn(&env, None, async move {
            let session = pool.connect_within(&cancel).await?;
            Ok(NativeConnection::new(
                Held::Session(session),
                pool.types().clone(),
                int8,
                settler,
            ))
        })
    }

    /// The retry policy in effect: the options given, the defaults for the rest.
    #[napi]
    pub fn retry_policy(&self) -> RetrySettings {
        RetrySettings::from(&self.pool.config().retry)
    }

    /// How long to wait before the next attempt after attempt `attempt` (1-based) of a
    /// transaction failed: the pool's backoff, with jitter.
    #[napi]
    pub fn backoff_ms(&self, attempt: u32) -> f64 {
        backoff_ms(&self.pool.config().retry, attempt)
    }

    #[napi]
    pub fn status(&self) -> PoolStatus {
        let s = self.pool.status();
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        PoolStatus {
            max_size: n(s.max_size),
            size: n(s.size),
            available: n(s.available),
            in_use: n(s.in_use),
            waiting: n(s.waiting),
        }
    }

    #[napi]
    pub fn connections(&self) -> Vec<ConnectionStatus> {
        self.pool
            .connections()
            .into_iter()
            .map(|c| ConnectionStatus {
                host: c.host,
                process_id: c.process_id,
                server_version_num: c.server_version_num,
                in_flight: c.in_flight,
                read_only: c.read_only,
                in_hot_standby: c.in_hot_standby,
                default_transaction_read_only: c.default_transaction_read_only,
                saw_read_only_error: c.saw_read_only_error,
            })
            .collect()
    }

    #[napi]
    pub fn hosts(&self) -> Vec<HostStatus> {
        self.pool
            .hosts()
            .into_iter()
            .map(|h| HostStatus {
                host: h.host,
                state: h.state.as_str().to_owned(),
                confirmed_at: h.confirmed_at_ms.map(|v| v as f64),
                down_since: h.down_since_ms.map(|v| v as f64),
            })
            .collect()
    }

    /// Sends the pool's failover events to `callback` (`client.js` wraps it so that what it
    /// throws is ignored). The function does not keep the process alive.
    #[napi]
    pub fn on_event(&self, env: Env, callback: JsFunction) -> napi::Result<()> {
        let mut tsfn: ThreadsafeFunction<HostEvent, ErrorStrategy::Fatal> = callback
            .create_threadsafe_function(0, |ctx: ThreadSafeCallContext<HostEvent>| {
                Ok(vec![event_object(&ctx.env, &ctx.value)?])
            })?;
        tsfn.unref(&env)?;
        self.pool.host_view().set_sink(Arc::new(move |e| {
            tsfn.call(e, ThreadsafeFunctionCallMode::NonBlocking);
        }));
        Ok(())
    }

    /// Ends the pool; with `timeout_ms`, what is still in flight after it is abandoned.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn end(&self, env: Env, timeout_ms: Option<f64>) -> napi::Result<JsObject> {
        let grace = match timeout_ms {
            None => None,
            Some(ms) if ms.is_finite() && (0.0..=MAX_TIMEOUT_MS).contains(&ms) => {
                Some(Duration::from_secs_f64(ms / 1000.0))
            }
            Some(_) => {
                return Err(Failure::client(
                    "INVALID_ARGUMENT",
                    "end's timeoutMs must be a number from 0 to 2147483647",
                )
                .throw(&env))
            }
        };
        let pool = self.pool.clone();
        self.settler.spawn(&env, None, async move {
            pool.end(grace).await;
            Ok(())
        })
    }
}

/// A pool's query path as an `External`, for [`query_rows`]: reading it is a pointer load,
/// where a method's `this` costs a `napi_unwrap` per call (a private-symbol lookup in V8,
/// about 1% of a point query's CPU).
pub struct QueryHandle {
    pool: Pool,
    int8: Int8,
    settler: Settler,
}

/// A query with every option at its default, resolving to the finished rows (with
/// `command`, `rowCount` and `fields`): `client.js` returns this promise as it is. The first
/// [`FIRST_PARAMS`] parameters come as arguments too (`params[0]` ..., `undefined` past the
/// end: the array's length decides how many are read).
#[napi(ts_return_type = "Promise<Record<string, unknown>[]>")]
#[allow(clippy::too_many_arguments)]
pub fn query_rows(
    env: Env,
    handle: External<QueryHandle>,
    sql: JsString,
    params: Option<Array>,
    p0: JsUnknown,
    p1: JsUnknown,
    p2: JsUnknown,
    p3: JsUnknown,
) -> napi::Result<JsObject> {
    let h = &*handle;
    let sql = crate::params::read_sql(&env, &sql)?;
    let opts = query_options(None, None, None, None).map_err(|f| f.with_query(&sql).throw(&env))?;
    let params = read_params_with(&env, &sql, params, Some([p0, p1, p2, p3]), h.pool.types())?;
    spawn_on(
        &env,
        &h.pool,
        &h.settler,
        h.int8,
        sql,
        params,
        opts,
        stream::Form::ROWS,
    )
}

/// Spawns a query on `pool`, its promise settled through `settler`.
#[allow(clippy::too_many_arguments)]
fn spawn_on(
    env: &Env,
    pool: &Pool,
    settler: &Settler,
    int8: Int8,
    sql: Arc<str>,
    params: JsParams,
    opts: QueryOptions,
    form: stream::Form,
) -> napi::Result<JsObject> {
    let pool = pool.clone();
    let types = pool.types().clone();
    stream::spawn(
        env,
        settler,
        (types, int8),
        sql.clone(),
        form,
        move |streaming| {
            Box::pin(async move { Ok(pool.query(&sql, &params, opts, Some(&streaming)).await?) })
        },
    )
}
