//! N-API bindings: the only crate that touches N-API.
//!
//! `client.js` (hand-written) wraps what this exports: `hello`, and the `NativePool` class.
//! Values cross the boundary in bulk: parameters are read once on the JS thread into
//! [`hyperion_codec::Param`]s; a query's result is decoded into columns off the JS thread and
//! becomes JS values in one pass per column ([`rows`]), in batches while a large result is
//! still arriving ([`stream`]).

mod alloc;
mod copy;
mod dedicated;
mod errors;
mod insert;
mod listen;
mod notices;
mod options;
mod params;
mod pool;
mod retry;

pub use options::{describe_config, ConfigDescription};
pub use pool::query_rows;
pub use retry::{retry_defaults, retryable_in_transaction};
pub use rows::{column_kinds, set_row_builders};
mod rows;
mod settle;
mod stream;
mod uvloop;

use napi::Env;

/// The addon's Rust allocations go to mimalloc rather than glibc's malloc: a query's buffers
/// are made on the I/O thread and freed on the JS thread, and glibc paid for that hand-over
/// in `_int_free`/`malloc_consolidate` on both (about a tenth of the JS thread's samples on
/// W2). mimalloc frees a block on its owning thread's page without a lock. Its v2 line: v3
/// matched it on W2 but was slower and more variable on W3's large results (interleaved
/// fresh processes, same server: W2 glibc 65-70k, v3 79-82k, v2 80-85k queries/s; W3 wide
/// glibc 823-951k, v3 738-934k, v2 945-1079k rows/s). Local-dynamic TLS, since Node loads
/// the addon with dlopen (initial-exec TLS in a dlopen'ed library can fail to load when
/// static TLS is full). Called through its plain entry points where they suffice
/// (`alloc.rs`).
#[global_allocator]
static ALLOCATOR: alloc::Mimalloc = alloc::Mimalloc;
use napi_derive::napi;

/// The runtime the pool's connections and queries run on: one I/O thread unless
/// `TOKIO_WORKER_THREADS` says otherwise. A Node process has one JS thread to feed; with more
/// workers than that, a query's wake-ups bounce between them (each one a futex or eventfd
/// system call, and the JS thread woken once per worker's batch of results instead of once
/// per batch): W4 on two workers made 4,101 event-loop wake-ups for 5,500 inserts, on one
/// worker 143.
static RUNTIME: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();

/// Runs `fut` on the runtime with nobody waiting for it, from anywhere, even a finalizer at
/// the environment's teardown (napi-rs's `spawn` panics once its runtime is gone; a handle's
/// spawn then just drops the task).
pub(crate) fn spawn_detached(fut: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Some(rt) = RUNTIME.get() {
        rt.spawn(fut);
    }
}

/// The I/O runtime, once the module is initialised.
pub(crate) fn runtime() -> Option<tokio::runtime::Handle> {
    RUNTIME.get().cloned()
}

#[napi::module_init]
fn init_runtime() {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        b.worker_threads(1);
    }
    if let Ok(rt) = b.thread_name("hyperiondb-io").enable_all().build() {
        let _ = RUNTIME.set(rt.handle().clone());
        napi::bindgen_prelude::create_custom_tokio_runtime(rt);
    }
    // Else napi-rs makes its default runtime on first use.
}

/// The statement `pool.insert` runs (see `insert.rs`).
#[napi]
pub fn insert_sql(
    env: Env,
    table: Vec<String>,
    columns: Vec<String>,
    conflict_target: Option<Vec<String>>,
) -> napi::Result<String> {
    insert::insert_sql(&table, &columns, conflict_target.as_deref())
        .map_err(|m| errors::Failure::client("INVALID_ARGUMENT", m).throw(&env))
}

/// Throws `INVALID_ARGUMENT` unless `sql` is one COPY statement (what `copyFrom` and
/// `copyTo` take), so that a pool's COPY is refused before it checks out a connection.
#[napi]
pub fn check_copy(env: Env, sql: String) -> napi::Result<()> {
    copy_text(&sql).map_err(|f| f.throw(&env))
}

/// `INVALID_ARGUMENT` unless `sql` is one COPY statement: the simple Query that runs it would
/// run anything else given.
pub(crate) fn copy_text(sql: &str) -> Result<(), errors::Failure> {
    hyperion_wire::sql_text::single_copy(sql).map_err(|why| {
        errors::Failure::client(
            "INVALID_ARGUMENT",
            format!("copyFrom and copyTo take one COPY statement: {why}"),
        )
    })
}

/// The smoke test of the build: `hello('world')`.
#[napi]
pub fn hello(name: String) -> String {
    format!("hello {name} from hyperiondb-client")
}
