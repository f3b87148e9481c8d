//! The JS thread's own executor: queries and plain TCP connections' protocol loops run on
//! the thread that calls them, driven by Node's event loop (libuv), as Bun and node-postgres
//! do their socket I/O.
//!
//! On the tokio runtime, every query crossed threads twice: the JS thread woke the I/O thread
//! (a futex or an eventfd write), and the I/O thread woke the JS thread (the thread-safe
//! function's `uv_async_send`), each a system call and a context switch, and each side
//! slept in its own `epoll_wait`. Here a query is a task polled on the JS thread; its request
//! reaches the connection's loop (another task here) and is written to the socket before the
//! event loop next blocks, and the answer is read when libuv says the socket is readable,
//! and the promise settled in the same callback. Work that wants another thread still gets
//! one: the tokio runtime stays entered while a task is polled, so timers, connects, TLS
//! connections and the decoding of large results (`stream.rs`) run there and wake tasks
//! here with `uv_async_send`.
//!
//! When tasks run:
//! - a `prepare` handle runs the queue once per event-loop turn, just before libuv blocks:
//!   everything JS started in that turn goes out together (256 queries issued in one turn
//!   are one write per connection);
//! - a socket's `poll` handle runs it when the socket is ready;
//! - an `async` handle runs it when another thread woke a task.
//!
//! Settled promises are resolved inside a callback scope, whose end runs the microtasks (the
//! next sequential query is then written in the same callback).
//!
//! `HYPERION_IO=thread` turns this off: everything runs on the tokio runtime as before.

use napi::sys;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::os::raw::{c_int, c_void};
use std::pin::Pin;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

mod socket;
use socket::{Io, Runner};

// libuv, as Node exports it to addons. Handles are opaque blocks of `uv_handle_size` bytes
// whose first field is `void* data`.
extern "C" {
    fn uv_handle_size(kind: c_int) -> usize;
    fn uv_prepare_init(lp: *mut c_void, h: *mut c_void) -> c_int;
    fn uv_prepare_start(h: *mut c_void, cb: unsafe extern "C" fn(*mut c_void)) -> c_int;
    fn uv_idle_init(lp: *mut c_void, h: *mut c_void) -> c_int;
    fn uv_idle_start(h: *mut c_void, cb: unsafe extern "C" fn(*mut c_void)) -> c_int;
    fn uv_idle_stop(h: *mut c_void) -> c_int;
    fn uv_async_init(
        lp: *mut c_void,
        h: *mut c_void,
        cb: unsafe extern "C" fn(*mut c_void),
    ) -> c_int;
    fn uv_async_send(h: *mut c_void) -> c_int;
    fn uv_poll_init(lp: *mut c_void, h: *mut c_void, fd: c_int) -> c_int;
    fn uv_poll_start(
        h: *mut c_void,
        events: c_int,
        cb: unsafe extern "C" fn(*mut c_void, c_int, c_int),
    ) -> c_int;
    fn uv_poll_stop(h: *mut c_void) -> c_int;
    fn uv_close(h: *mut c_void, cb: unsafe extern "C" fn(*mut c_void));
    fn uv_unref(h: *mut c_void);
}

const UV_ASYNC: c_int = 1;
const UV_IDLE: c_int = 6;
const UV_POLL: c_int = 8;
const UV_PREPARE: c_int = 9;
const UV_READABLE: c_int = 1;
const UV_WRITABLE: c_int = 2;

/// Storage for one libuv handle (the largest we make, `uv_poll_t`, is 160 bytes on 64-bit
/// Linux; `init` checks `uv_handle_size`).
#[repr(C, align(16))]
struct HandleMem([u8; 256]);

fn new_handle(data: *mut c_void) -> *mut c_void {
    let h = Box::into_raw(Box::new(HandleMem([0; 256]))) as *mut c_void;
    // SAFETY: the first field of every libuv handle is `void* data`.
    unsafe { *(h as *mut *mut c_void) = data };
    h
}

unsafe fn handle_data(h: *mut c_void) -> *mut c_void {
    // SAFETY: as in `new_handle`.
    unsafe { *(h as *mut *mut c_void) }
}

unsafe extern "C" fn free_handle(h: *mut c_void) {
    // SAFETY: made by `new_handle`; libuv is done with it (its close callback).
    drop(unsafe { Box::from_raw(h as *mut HandleMem) });
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What any thread may touch.
struct Shared {
    queue: Mutex<Queue>,
    /// The protocol loops' tasks, dropped at teardown: a loop waiting on its socket is kept
    /// alive only by its own wakers, and would otherwise keep its socket (and the server's
    /// session) open after a worker without `pool.end()` is gone.
    loops: Mutex<Loops>,
    /// The runtime entered while tasks are polled.
    rt: tokio::runtime::Handle,
    /// `queue` has tasks: a run looks at it (and takes its mutex) only then.
    remote: AtomicBool,
    /// Set at the end of teardown, once every `poll` handle is closed (and nulled in its
    /// `Io`): a task's future may then be dropped on any thread, its sockets just close.
    torn_down: AtomicBool,
}

/// Tasks woken on other threads (a timer, a decoded batch); the JS thread's own wake-ups go
/// to `Local::tasks`, without the mutex.
struct Queue {
    tasks: VecDeque<Arc<Task>>,
    /// The `async` handle; null once the environment is torn down.
    wake: *mut c_void,
}

// SAFETY: `wake` is only passed to `uv_async_send` (thread-safe) under the mutex, and closed
// on the JS thread after being nulled under it.
unsafe impl Send for Queue {}

#[derive(Default)]
struct Loops {
    tasks: Vec<std::sync::Weak<Task>>,
    /// Ended ones are swept out when the list reaches this length.
    sweep_at: usize,
}

impl Loops {
    fn add(&mut self, task: &Arc<Task>) {
        if self.tasks.len() >= self.sweep_at {
            self.tasks.retain(|t| t.strong_count() > 0);
            self.sweep_at = (self.tasks.len() * 2).max(16);
        }
        self.tasks.push(Arc::downgrade(task));
    }
}

struct Task {
    future: Mutex<Option<BoxFuture>>,
    queued: AtomicBool,
    exec: Arc<Shared>,
}

impl Task {
    fn schedule(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        // On the JS thread (most wake-ups: a query spawned, an answer read) the task goes
        // to the thread's own queue, which the `prepare` handle runs before the loop blocks.
        let here = with_local_of(&self.exec, |c| {
            if !c.closed.get() {
                c.tasks.borrow_mut().push_back(self.clone());
            } // else torn down: the task stays queued, never polled again
        });
        if here.is_some() {
            return;
        }
        let mut q = self.exec.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.wake.is_null() {
            return; // torn down: the task stays queued, never polled again
        }
        q.tasks.push_back(self.clone());
        self.exec.remote.store(true, Ordering::Release);
        // SAFETY: live handle (non-null under the mutex); thread-safe call. libuv
        // coalesces: only the first send before the callback writes to the eventfd.
        unsafe { uv_async_send(q.wake) };
    }

    /// On the JS thread.
    fn poll(self: Arc<Self>) {
        self.queued.store(false, Ordering::Release);
        let waker = Waker::from(self.clone());
        let mut slot = self.future.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = slot.as_mut() {
            // A panic must not unwind into libuv (an abort of the process): the task ends
            // there, and dropping it rejects its promise (`settle.rs`'s `Promised`), as a
            // panicking tokio task did.
            let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                f.as_mut().poll(&mut Context::from_waker(&waker))
            }));
            if !matches!(polled, Ok(Poll::Pending)) {
                *slot = None;
            }
        }
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.schedule();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.schedule();
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        let f = self
            .future
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(f) = f {
            if !on_js_thread(&self.exec) && !self.exec.torn_down.load(Ordering::Acquire) {
                // A task unfinished whose last waker went away on another thread: its
                // sockets' handles may only be touched on the JS thread. Never polled again.
                // (After teardown there are no handles left: the future is dropped, and the
                // sockets of a connection that was still being opened when a worker exited
                // close, rather than stay open to the server until the process ends.)
                std::mem::forget(f);
            }
        }
    }
}

/// Work for the end of a round of polling, on the JS thread with its env.
pub type AfterPoll = Box<dyn FnOnce(sys::napi_env)>;

/// What only the JS thread touches.
struct Local {
    shared: Arc<Shared>,
    env: sys::napi_env,
    uv_loop: *mut c_void,
    prepare: *mut c_void,
    /// Started when a run stops at its time budget: the rest runs in the next turn.
    idle: *mut c_void,
    async_context: sys::napi_async_context,
    resource: sys::napi_ref,
    /// A run is under way (no nesting: the callbacks that run come from libuv only).
    running: Cell<bool>,
    /// When the run under way is over its budget ([`RUN_BUDGET`] after it started): a
    /// deadline compared, not a start subtracted (`Instant` subtraction is 74 instructions,
    /// and a W1 query checks five times).
    run_deadline: Cell<Option<std::time::Instant>>,
    /// Torn down: nothing runs, sockets are left to the process.
    closed: Cell<bool>,
    /// Work for the end of this round of polling, in a callback scope (promises to settle).
    after: RefCell<Vec<AfterPoll>>,
    /// Tasks woken on this thread.
    tasks: RefCell<VecDeque<Arc<Task>>>,
    /// The emptied queues of the last round, swapped in for the next: a round that took
    /// `tasks` and `after` left fresh empty ones, which grew (allocated) again on every
    /// round, several times a query.
    spare_tasks: RefCell<VecDeque<Arc<Task>>>,
    spare_after: RefCell<Vec<AfterPoll>>,
    /// The sockets with a `poll` handle, closed at teardown: Node refuses to close a
    /// worker's loop with handles open.
    ios: RefCell<std::collections::HashSet<usize>>,
}

thread_local! {
    /// Behind an `Rc`, so a run holds it while what it calls looks it up again.
    static LOCAL: RefCell<Option<Rc<Local>>> = const { RefCell::new(None) };
}

fn local() -> Option<Rc<Local>> {
    // `try_with`: a task dropped while a thread's locals are being destroyed (a runtime
    // thread at exit) must not panic in a destructor.
    LOCAL.try_with(|l| l.borrow().clone()).ok().flatten()
}

/// `f` on this thread's [`Local`] if this is the JS thread of `shared`'s executor.
fn with_local_of<R>(shared: &Arc<Shared>, f: impl FnOnce(&Local) -> R) -> Option<R> {
    LOCAL
        .try_with(|l| match l.borrow().as_deref() {
            Some(c) if Arc::ptr_eq(&c.shared, shared) => Some(f(c)),
            _ => None,
        })
        .ok()
        .flatten()
}

fn on_js_thread(shared: &Arc<Shared>) -> bool {
    with_local_of(shared, |_| ()).is_some()
}

/// Whether this executor is on (unless `HYPERION_IO=thread`).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("HYPERION_IO").map_or(true, |v| v != "thread"))
}

/// The JS thread's executor; made on first use. `None`: this platform or Node cannot give
/// one (the caller then uses the runtime).
pub fn executor(env: sys::napi_env) -> Option<Executor> {
    if !enabled() {
        return None;
    }
    if let Some(l) = local() {
        return (!l.closed.get()).then(|| Executor {
            shared: l.shared.clone(),
        });
    }
    // SAFETY: on the JS thread with a live env (callers are napi methods).
    let made = unsafe { init(env) };
    made.map(|shared| Executor { shared })
}

unsafe fn init(env: sys::napi_env) -> Option<Arc<Shared>> {
    // The runtime napi-rs has entered for this call (a constructor): napi-rs replaces the
    // runtime it was given once every environment that used it is gone (a first worker that
    // exited), and a handle kept from module init would then point at a dead one.
    let rt = tokio::runtime::Handle::try_current()
        .ok()
        .or_else(crate::runtime)?;
    // SAFETY (whole function): JS thread, live env; handles made here are closed in
    // `teardown`.
    unsafe {
        for kind in [UV_ASYNC, UV_IDLE, UV_POLL, UV_PREPARE] {
            if uv_handle_size(kind) > std::mem::size_of::<HandleMem>() {
                return None;
            }
        }
        let mut uv_loop = ptr::null_mut();
        if sys::napi_get_uv_event_loop(env, &mut uv_loop) != sys::Status::napi_ok
            || uv_loop.is_null()
        {
            return None;
        }
        let uv_loop = uv_loop as *mut c_void;
        let mut name = ptr::null_mut();
        sys::napi_create_string_utf8(env, c"hyperiondb-client".as_ptr(), 17, &mut name);
        let mut resource = ptr::null_mut();
        sys::napi_create_object(env, &mut resource);
        let mut resource_ref = ptr::null_mut();
        sys::napi_create_reference(env, resource, 1, &mut resource_ref);
        let mut async_context = ptr::null_mut();
        if sys::napi_async_init(env, resource, name, &mut async_context) != sys::Status::napi_ok {
            return None;
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                tasks: VecDeque::new(),
                wake: ptr::null_mut(),
            }),
            loops: Mutex::new(Loops::default()),
            rt,
            remote: AtomicBool::new(false),
            torn_down: AtomicBool::new(false),
        });
        let wake = new_handle(ptr::null_mut());
        uv_async_init(uv_loop, wake, on_async);
        uv_unref(wake);
        let prepare = new_handle(ptr::null_mut());
        uv_prepare_init(uv_loop, prepare);
        uv_prepare_start(prepare, on_prepare);
        uv_unref(prepare);
        let idle = new_handle(ptr::null_mut());
        uv_idle_init(uv_loop, idle);
        shared.queue.lock().unwrap_or_else(|e| e.into_inner()).wake = wake;
        let cell = Rc::new(Local {
            shared: shared.clone(),
            env,
            uv_loop,
            prepare,
            idle,
            async_context,
            resource: resource_ref,
            running: Cell::new(false),
            run_deadline: Cell::new(None),
            closed: Cell::new(false),
            after: RefCell::new(Vec::new()),
            tasks: RefCell::new(VecDeque::new()),
            spare_tasks: RefCell::new(VecDeque::new()),
            spare_after: RefCell::new(Vec::new()),
            ios: RefCell::new(std::collections::HashSet::new()),
        });
        LOCAL.with(|l| *l.borrow_mut() = Some(cell));
        sys::napi_add_env_cleanup_hook(env, Some(teardown), ptr::null_mut());
        Some(shared)
    }
}

unsafe extern "C" fn teardown(_arg: *mut c_void) {
    let Some(l) = local() else { return };
    l.closed.set(true);
    let (mut tasks, wake) = {
        let mut q = l.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        (
            std::mem::take(&mut q.tasks),
            std::mem::replace(&mut q.wake, ptr::null_mut()),
        )
    };
    tasks.append(&mut l.tasks.borrow_mut());
    // SAFETY: JS thread; the handles are live and closed once (a socket's is nulled, so its
    // stream's drop leaves it alone).
    unsafe {
        uv_close(wake, free_handle);
        uv_close(l.prepare, free_handle);
        uv_close(l.idle, free_handle);
        for io in l.ios.borrow_mut().drain() {
            (*(io as *mut Io)).close_handles();
        }
    }
    // Queued tasks are dropped here, on the JS thread, and so is every protocol loop: their
    // sockets close (their handles were closed above).
    drop(tasks);
    let loops = std::mem::take(
        &mut l
            .shared
            .loops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tasks,
    );
    for task in loops.iter().filter_map(std::sync::Weak::upgrade) {
        let future = match task.future.try_lock() {
            Ok(mut f) => f.take(),
            Err(_) => None, // being polled (cannot happen: teardown is not called from a poll)
        };
        drop(future);
    }
    // Every handle is closed: what is still alive elsewhere (a connect that finishes on the
    // runtime, its loop handed to `Runner::spawn`) is dropped where it ends.
    l.shared.torn_down.store(true, Ordering::Release);
}

unsafe extern "C" fn on_prepare(_h: *mut c_void) {
    run(false);
}

unsafe extern "C" fn on_async(_h: *mut c_void) {
    // Takes the mutex whatever `remote` reads: a sender's store of the flag and libuv's
    // unlocked read of its own pending flag in `uv_async_send` can pass each other (store
    // buffering), and this run must then still find the task the send was for.
    run(true);
}

unsafe extern "C" fn on_idle(h: *mut c_void) {
    // SAFETY: our live idle handle, on the JS thread.
    unsafe { uv_idle_stop(h) };
    run(false);
}

/// How long one run may keep the event loop before it lets timers and other I/O have a
/// turn (as `rows.js` does between the chunks of a large result). A burst of ten thousand
/// queries started in one turn is then not one long block.
const RUN_BUDGET: std::time::Duration = std::time::Duration::from_millis(4);

/// An emptied queue is kept for the next round (`spare_tasks`, `spare_after`) only up to
/// this much room: a burst (ten thousand queries started in one turn) does not keep its
/// peak for the life of the thread.
const SPARE_KEEP: usize = 1024;

/// Polls every queued task until none is left, settling promises after each round; past
/// [`RUN_BUDGET`] the rest waits for the next turn of the event loop. `remote`: look at the
/// other threads' queue in the first round even if its flag says it is empty.
fn run(mut remote: bool) {
    let Some(l) = local() else { return };
    let l = &*l;
    if l.running.get() || l.closed.get() {
        return;
    }
    // Nothing to run (the `prepare` handle's call in most turns of the event loop): no
    // runtime to enter, no clock to read.
    if !remote
        && !l.shared.remote.load(Ordering::Acquire)
        && l.tasks.borrow().is_empty()
        && l.after.borrow().is_empty()
    {
        return;
    }
    l.running.set(true);
    let _rt = l.shared.rt.enter();
    let deadline = std::time::Instant::now() + RUN_BUDGET;
    l.run_deadline.set(Some(deadline));
    let mut over = false;
    loop {
        let mut batch = l.tasks.replace(l.spare_tasks.take());
        if std::mem::take(&mut remote) || l.shared.remote.load(Ordering::Acquire) {
            let mut q = l.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            l.shared.remote.store(false, Ordering::Relaxed);
            batch.append(&mut q.tasks);
        }
        if batch.is_empty() && l.after.borrow().is_empty() {
            // The emptied queue is the next run's spare (a review found it dropped here,
            // so the first round of every run grew a new one).
            if batch.capacity() <= SPARE_KEEP {
                l.spare_tasks.replace(batch);
            }
            // Everything this run started is written: the time until the answers come is
            // the server's, and the blank rows arrays of the next results are made in it.
            // SAFETY: JS thread, live env, outside any JS frame (a libuv callback).
            // (A panic there is not unwound into libuv either.)
            let env = l.env;
            let _ = std::panic::catch_unwind(|| unsafe { crate::rows::restock(env) });
            break;
        }
        let mut polled = 0u32;
        while let Some(task) = batch.pop_front() {
            task.poll();
            polled += 1;
            if polled % 64 == 0 && std::time::Instant::now() > deadline {
                over = true;
                break;
            }
        }
        if !batch.is_empty() {
            // Back at the front, in order, ahead of whatever this round woke.
            let mut tasks = l.tasks.borrow_mut();
            batch.append(&mut tasks);
            std::mem::swap(&mut *tasks, &mut batch);
        }
        if batch.capacity() <= SPARE_KEEP {
            l.spare_tasks.replace(batch);
        }
        let mut after = l.after.replace(l.spare_after.take());
        if !after.is_empty() {
            // SAFETY: JS thread, live env, outside any JS frame (a libuv callback). The
            // callback scope's close runs the microtasks (`await`s resumed by these
            // settlements), which may start more tasks: the loop polls them next.
            unsafe { in_callback_scope(l, &mut after) };
        }
        if after.capacity() <= SPARE_KEEP {
            l.spare_after.replace(after);
        }
        if over || std::time::Instant::now() > deadline {
            // SAFETY: JS thread, our live handle (not closed: `closed` is false).
            unsafe { uv_idle_start(l.idle, on_idle) };
            break;
        }
    }
    l.running.set(false);
    l.run_deadline.set(None);
}

/// The run under way has used its time: a socket that keeps data coming stops reading for
/// this run (a protocol loop reads as long as there is data, and a server that never
/// stops sending would otherwise hold the event loop; on tokio its task budget did this).
fn over_budget() -> bool {
    local()
        .and_then(|l| l.run_deadline.get())
        .is_some_and(|d| std::time::Instant::now() > d)
}

unsafe fn in_callback_scope(l: &Local, work: &mut Vec<AfterPoll>) {
    let env = l.env;
    // SAFETY: as `run` says.
    unsafe {
        let mut hs = ptr::null_mut();
        sys::napi_open_handle_scope(env, &mut hs);
        let mut resource = ptr::null_mut();
        sys::napi_get_reference_value(env, l.resource, &mut resource);
        let mut scope = ptr::null_mut();
        let opened = sys::napi_open_callback_scope(env, resource, l.async_context, &mut scope)
            == sys::Status::napi_ok;
        for w in work.drain(..) {
            // Not unwound into libuv (an abort of the process), and the scope still closes.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w(env)));
        }
        if opened {
            sys::napi_close_callback_scope(env, scope);
        }
        sys::napi_close_handle_scope(env, hs);
    }
}

/// Runs `f` at the end of this round of polling, inside a callback scope; `Err(f)` when not
/// called from a task being polled on this thread's executor.
pub fn after_poll(f: Box<dyn FnOnce(sys::napi_env)>) -> Result<(), Box<dyn FnOnce(sys::napi_env)>> {
    match local() {
        Some(l) if l.running.get() => {
            l.after.borrow_mut().push(f);
            Ok(())
        }
        _ => Err(f),
    }
}

/// A handle to the JS thread's executor, usable from any thread.
#[derive(Clone)]
pub struct Executor {
    shared: Arc<Shared>,
}

impl Executor {
    /// Runs `fut` on the JS thread.
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.task(Box::pin(fut)).schedule();
    }

    fn task(&self, future: BoxFuture) -> Arc<Task> {
        Arc::new(Task {
            future: Mutex::new(Some(future)),
            queued: AtomicBool::new(false),
            exec: self.shared.clone(),
        })
    }

    /// The protocol-loop runner for a pool's configuration.
    pub fn runner(&self) -> hyperion_wire::runner::Runner {
        hyperion_wire::runner::Runner(Arc::new(Runner {
            exec: Arc::downgrade(&self.shared),
        }))
    }
}
