//! Settling promises from the runtime's threads, many per wake-up of the JS thread.
//!
//! napi-rs's `Env::spawn_future` gives every promise its own thread-safe function: a libuv
//! handle opened and closed, an async resource, an environment cleanup hook, a second task
//! that watches the first for a panic, and a wake-up of the JS thread with its own microtask
//! checkpoint. A pool settles tens of thousands of promises a second, and that machinery
//! cost more of the JS thread than the query itself. Here one thread-safe function per pool
//! carries them all: a finished future queues its result, the first one queued wakes the JS
//! thread, and that wake-up settles everything queued by then.
//!
//! A future run by the JS thread's own executor (`uvloop.rs`, the default) needs no wake-up:
//! it finishes on the JS thread, and its promise is settled at the end of the executor's
//! round, with the same code (`call_js`) inside a callback scope.
//!
//! The thread-safe function keeps the event loop alive only while a promise is pending (it
//! is referenced on the JS thread when the first one starts and unreferenced when the last
//! one is settled), so an idle pool does not keep a process from exiting.

use crate::errors::Failure;
use napi::bindgen_prelude::ToNapiValue;
use napi::{sys, Env, JsObject, NapiRaw, NapiValue};
use std::future::Future;
use std::os::raw::c_void;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Makes a promise's settled value on the JS thread: the value, or the `Error` to reject with.
/// The second argument is the pool's `onNotice` hook (null without one).
type Settle =
    Box<dyn FnOnce(sys::napi_env, sys::napi_value) -> Result<sys::napi_value, Failure> + Send>;

/// What a spawned future resolves its promise with. A conversion can fail with an error of
/// ours (a column that cannot be decoded), so this is not napi-rs's `ToNapiValue`.
pub trait Settled: Send + 'static {
    /// On the JS thread, with its env.
    unsafe fn into_js(self, env: sys::napi_env) -> Result<sys::napi_value, Failure>;

    /// The notices the server sent while making this value, for the `onNotice` hook, which
    /// sees them just before the promise settles.
    fn take_notices(&mut self) -> Vec<hyperion_wire::backend::ErrorFields> {
        Vec::new()
    }
}

impl Settled for () {
    unsafe fn into_js(self, env: sys::napi_env) -> Result<sys::napi_value, Failure> {
        Ok(<()>::to_napi_value(env, ())?)
    }
}

struct Job {
    deferred: sys::napi_deferred,
    settle: Settle,
    /// The query a rejection belongs to (the error's `.query`).
    query: Option<Arc<str>>,
}

struct State {
    /// Null once Node has finalized the function (environment teardown, or released).
    tsfn: sys::napi_threadsafe_function,
    jobs: Vec<Job>,
    /// The pool's `onNotice` hook, or null; used and deleted on the JS thread only.
    notice_hook: sys::napi_ref,
}

// SAFETY: the raw N-API handles in `State` are only used on the JS thread (`deferred`, in
// `call_js`), or with the thread-safe calls N-API allows from any thread, under the mutex
// that `finalize` takes before Node frees the function.
unsafe impl Send for State {}

struct Shared {
    state: Mutex<State>,
    /// Promises created and not yet settled; changed on the JS thread only.
    pending: AtomicUsize,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a settled promise; the first job queued wakes the JS thread. Called from any
    /// thread. The mutex is held across the call, so Node cannot free the function under it.
    /// A task of the JS thread's executor settles at the end of its round instead
    /// (`uvloop`), without waking anything.
    fn push(self: &Arc<Self>, job: Job) {
        let mut s = self.state();
        if s.tsfn.is_null() {
            return; // the environment is gone, and the promise with it
        }
        let wake = s.jobs.is_empty();
        s.jobs.push(job);
        if !wake {
            return;
        }
        let me = self.clone();
        let settle_here = Box::new(move |env: sys::napi_env| {
            // SAFETY: on the JS thread with its env (`uvloop` runs this in a callback
            // scope); `me` keeps the context alive.
            unsafe {
                call_js(
                    env,
                    ptr::null_mut(),
                    Arc::as_ptr(&me) as *mut c_void,
                    ptr::null_mut(),
                )
            }
        });
        if crate::uvloop::after_poll(settle_here).is_err() {
            // SAFETY: `tsfn` is live (not finalized: checked under the mutex). Non-blocking
            // on an unbounded queue never waits.
            unsafe {
                sys::napi_call_threadsafe_function(
                    s.tsfn,
                    ptr::null_mut(),
                    sys::ThreadsafeFunctionCallMode::nonblocking,
                );
            }
        }
    }
}

/// What holds the thread-safe function open: the pool, its transactions and result streams,
/// and every promise in flight. The last one dropped releases it.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let s = self.shared.state();
        if !s.tsfn.is_null() {
            // SAFETY: live function (checked under the mutex); release is allowed from any
            // thread. Node then closes it on the JS thread and calls `finalize`.
            unsafe {
                sys::napi_release_threadsafe_function(
                    s.tsfn,
                    sys::ThreadsafeFunctionReleaseMode::release,
                );
            }
        }
    }
}

/// Spawns futures on the runtime and settles their promises in batches (module comment).
#[derive(Clone)]
pub struct Settler {
    handle: Arc<Handle>,
    /// The JS thread's executor (`uvloop`); `None`: futures run on the tokio runtime.
    executor: Option<crate::uvloop::Executor>,
}

impl Settler {
    /// One per pool, made on the JS thread.
    pub fn new(env: &Env) -> Result<Settler, Failure> {
        let raw = env.raw();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                tsfn: ptr::null_mut(),
                jobs: Vec::new(),
                notice_hook: ptr::null_mut(),
            }),
            pending: AtomicUsize::new(0),
        });
        let name = env.create_string("hyperiondb-client")?;
        let context = Arc::into_raw(shared.clone()) as *mut c_void;
        let mut tsfn = ptr::null_mut();
        // SAFETY: on the JS thread with a live env. The function owns one reference to
        // `shared` (`context`), given back in `finalize`.
        let status = unsafe {
            sys::napi_create_threadsafe_function(
                raw,
                ptr::null_mut(),
                ptr::null_mut(),
                name.raw(),
                0,
                1,
                ptr::null_mut(),
                Some(finalize),
                context,
                Some(call_js),
                &mut tsfn,
            )
        };
        if status != sys::Status::napi_ok {
            // SAFETY: the function was not made, so the reference was not handed over.
            drop(unsafe { Arc::from_raw(context as *const Shared) });
            return Err(Failure::client(
                "INTERNAL",
                "cannot create the pool's thread-safe function",
            ));
        }
        // SAFETY: JS thread, live function. Idle: do not keep the event loop alive.
        unsafe { sys::napi_unref_threadsafe_function(raw, tsfn) };
        shared.state().tsfn = tsfn;
        Ok(Settler {
            handle: Arc::new(Handle { shared }),
            executor: crate::uvloop::executor(raw),
        })
    }

    /// Where a pool's plain TCP connections run their protocol loops: the JS thread's
    /// executor when there is one.
    pub fn runner(&self) -> Option<hyperion_wire::runner::Runner> {
        self.executor.as_ref().map(|e| e.runner())
    }

    /// Calls `hook(notice)` for every notice of a value this settler settles (`Settled::
    /// take_notices`), just before its promise settles. On the JS thread only.
    pub fn set_notice_hook(&self, env: &Env, hook: napi::JsFunction) -> Result<(), Failure> {
        let mut r = ptr::null_mut();
        // SAFETY: JS thread, live env and function.
        let status = unsafe { sys::napi_create_reference(env.raw(), hook.raw(), 1, &mut r) };
        if status != sys::Status::napi_ok {
            return Err(Failure::client("INTERNAL", "cannot keep the onNotice hook"));
        }
        let old = std::mem::replace(&mut self.handle.shared.state().notice_hook, r);
        if !old.is_null() {
            // SAFETY: JS thread; a reference of this env.
            unsafe { sys::napi_delete_reference(env.raw(), old) };
        }
        Ok(())
    }

    /// Runs `fut` on the runtime; the promise returned settles with its outcome. An error
    /// (the future's, or its value's conversion) carries `query` when given. On the JS thread
    /// only.
    pub fn spawn<T, F>(&self, env: &Env, query: Option<Arc<str>>, fut: F) -> napi::Result<JsObject>
    where
        T: Settled,
        F: Future<Output = Result<T, Failure>> + Send + 'static,
    {
        let raw = env.raw();
        let mut deferred = ptr::null_mut();
        let mut promise = ptr::null_mut();
        // SAFETY: JS thread, live env.
        let status = unsafe { sys::napi_create_promise(raw, &mut deferred, &mut promise) };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::new(
                napi::Status::from(status),
                "cannot create a promise",
            ));
        }
        let shared = &self.handle.shared;
        if shared.pending.fetch_add(1, Ordering::Relaxed) == 0 {
            let s = shared.state();
            if !s.tsfn.is_null() {
                // SAFETY: JS thread, live function: a promise is pending, keep the loop alive.
                unsafe { sys::napi_ref_threadsafe_function(raw, s.tsfn) };
            }
        }
        let mut promised = Promised {
            handle: Some(self.handle.clone()),
            deferred,
            query,
        };
        let task = async move {
            let outcome = fut.await;
            promised.settle(Box::new(move |env, hook| {
                // SAFETY: called on the JS thread by `call_js` with its env.
                match outcome {
                    Ok(mut v) => unsafe {
                        crate::notices::deliver(env, hook, v.take_notices());
                        v.into_js(env)
                    },
                    Err(f) => {
                        // A failed statement's notices (a RAISE NOTICE before its error).
                        unsafe { crate::notices::deliver(env, hook, f.notices()) };
                        Err(f)
                    }
                }
            }));
        };
        match &self.executor {
            Some(e) => e.spawn(task),
            None => {
                napi::bindgen_prelude::spawn(task);
            }
        }
        // SAFETY: `promise` was just created on this env.
        Ok(unsafe { JsObject::from_raw_unchecked(raw, promise) })
    }
}

/// A promise whose future is running. Settled exactly once: with the future's outcome, or,
/// if the future is dropped before it finished (a panic, or the runtime shutting down),
/// rejected rather than left pending forever.
struct Promised {
    handle: Option<Arc<Handle>>,
    deferred: sys::napi_deferred,
    query: Option<Arc<str>>,
}

// SAFETY: `deferred` is only used on the JS thread, by `call_js`.
unsafe impl Send for Promised {}

impl Promised {
    fn settle(&mut self, settle: Settle) {
        if let Some(handle) = self.handle.take() {
            Shared::push(
                &handle.shared,
                Job {
                    deferred: self.deferred,
                    settle,
                    query: self.query.take(),
                },
            );
        }
    }
}

impl Drop for Promised {
    fn drop(&mut self) {
        self.settle(Box::new(|_, _| {
            Err(Failure::client(
                "INTERNAL",
                "the query's task ended without a result",
            ))
        }));
    }
}

/// The most room an emptied queue of jobs keeps for the next call.
const SPARE_KEEP: usize = 1024;

thread_local! {
    /// The queue `call_js` emptied last, swapped in for the one it takes next: taking the
    /// queue left an empty vector whose first push allocated again (a sequential query
    /// settles alone, so once a query). Kept on the JS thread, where `call_js` runs, so that
    /// putting it back takes no second lock of the settler's mutex.
    static SPARE_JOBS: std::cell::Cell<Vec<Job>> = const { std::cell::Cell::new(Vec::new()) };
}

/// On the JS thread, woken by `push`: settles every queued promise.
unsafe extern "C" fn call_js(
    env: sys::napi_env,
    _js_callback: sys::napi_value,
    context: *mut c_void,
    _data: *mut c_void,
) {
    if env.is_null() {
        return; // Node is emptying the queue of a function being freed
    }
    // SAFETY: `context` is the reference `Settler::new` handed to the function, which
    // outlives this call.
    let shared = unsafe { &*(context as *const Shared) };
    let spare = SPARE_JOBS.with(std::cell::Cell::take);
    let (mut jobs, tsfn, hook_ref) = {
        let mut s = shared.state();
        (std::mem::replace(&mut s.jobs, spare), s.tsfn, s.notice_hook)
    };
    let mut hook = ptr::null_mut();
    if !hook_ref.is_null() {
        // SAFETY: JS thread; the reference lives until `finalize` (or a replacing hook, also
        // set on this thread).
        unsafe { sys::napi_get_reference_value(env, hook_ref, &mut hook) };
    }
    let n = jobs.len();
    // Each job's values live in a handle scope of their own, but for a lone job the handle
    // scope it runs in does that already (the one `uvloop`'s `in_callback_scope` opens, or
    // the one Node opens around a thread-safe function's call; `hook` above is made in it):
    // two N-API calls fewer, 255 instructions of a sequential query. The lone job's values
    // then live until that scope closes, after the round's microtasks: one job's per pool and
    // round (a pool's settler queues one closure a round).
    let own_scope = n > 1;
    for job in jobs.drain(..) {
        let mut scope = ptr::null_mut();
        // SAFETY: JS thread, live env, inside a handle scope (see `own_scope`).
        unsafe {
            if own_scope {
                sys::napi_open_handle_scope(env, &mut scope);
            }
            // A panic in a conversion must not unwind into Node (through libuv or the
            // thread-safe function's callback: an abort of the process): its promise is
            // rejected, and the rest of the batch settles.
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.settle)(env, hook)))
                    .unwrap_or_else(|_| {
                        Err(Failure::client(
                            "INTERNAL",
                            "the client failed while building the result (a bug: please report it)",
                        ))
                    });
            let settled = match outcome {
                Ok(value) => sys::napi_resolve_deferred(env, job.deferred, value),
                Err(f) => {
                    let f = match &job.query {
                        Some(q) => f.with_query(q),
                        None => f,
                    };
                    let error = f
                        .into_js(env)
                        .unwrap_or_else(|e| napi::JsError::from(e).into_value(env));
                    sys::napi_reject_deferred(env, job.deferred, error)
                }
            };
            if settled == sys::Status::napi_pending_exception {
                // A JS exception left pending (by a conversion) refuses this call before it
                // touches the deferred, and would refuse every later one in the batch: clear
                // it and reject this promise with it. (Any other failure has freed the
                // deferred already.)
                let mut exception = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env, &mut exception);
                if exception.is_null() {
                    sys::napi_get_undefined(env, &mut exception);
                }
                sys::napi_reject_deferred(env, job.deferred, exception);
            }
            if own_scope {
                sys::napi_close_handle_scope(env, scope);
            }
        }
    }
    // A burst's queue is not kept for the life of the thread.
    if jobs.capacity() <= SPARE_KEEP {
        SPARE_JOBS.with(|c| c.set(jobs));
    }
    if n > 0 && shared.pending.fetch_sub(n, Ordering::Relaxed) == n && !tsfn.is_null() {
        // SAFETY: JS thread, live function (we are in its callback). Nothing pending.
        unsafe { sys::napi_unref_threadsafe_function(env, tsfn) };
    }
}

/// Node is freeing the function (released, or the environment is torn down).
unsafe extern "C" fn finalize(env: sys::napi_env, _data: *mut c_void, context: *mut c_void) {
    // SAFETY: the reference `Settler::new` handed over, returned exactly once.
    let shared = unsafe { Arc::from_raw(context as *const Shared) };
    let (jobs, hook) = {
        let mut s = shared.state();
        s.tsfn = ptr::null_mut();
        (
            std::mem::take(&mut s.jobs),
            std::mem::replace(&mut s.notice_hook, ptr::null_mut()),
        )
    };
    if !hook.is_null() && !env.is_null() {
        // SAFETY: on the JS thread (Node finalizes there), a reference of this env.
        unsafe { sys::napi_delete_reference(env, hook) };
    }
    // Dropped outside the lock: a job may hold the last `Settler` (a transaction, a result
    // stream), whose `Handle::drop` takes it again.
    drop(jobs);
}
