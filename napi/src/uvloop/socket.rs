//! The sockets of the JS thread's executor: a protocol loop's stream over a non-blocking fd,
//! woken by a libuv `poll` handle, and the [`LoopRunner`] that hands sockets and loops to the
//! executor (see the parent module for when things run).

use super::{
    free_handle, handle_data, local, new_handle, over_budget, run, uv_close, uv_poll_init,
    uv_poll_start, uv_poll_stop, uv_unref, Executor, Shared, UV_READABLE, UV_WRITABLE,
};
use hyperion_wire::runner::{LoopRunner, Pace};
use std::io;
use std::os::fd::AsRawFd;
use std::os::raw::{c_int, c_void};
use std::pin::Pin;
use std::ptr;
use std::sync::Weak;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub(super) struct Runner {
    pub(super) exec: Weak<Shared>,
}

impl LoopRunner for Runner {
    fn adopt(
        &self,
        socket: std::net::TcpStream,
        pace: Pace,
    ) -> io::Result<Box<dyn hyperion_wire::runner::LoopStream>> {
        socket.set_nonblocking(true)?;
        Ok(Box::new(UvStream {
            sock: Some(socket),
            pace,
            io: Box::into_raw(Box::new(Io {
                handle: ptr::null_mut(),
                read: None,
                write: None,
                events: 0,
                read_on: false,
                write_on: false,
                blocked: false,
                timer: ptr::null_mut(),
                timer_fd: -1,
                timer_armed: false,
                timer_woke: false,
            })),
        }))
    }

    fn spawn(&self, task: hyperion_wire::runner::LoopTask) {
        if let Some(shared) = self.exec.upgrade() {
            if shared.torn_down.load(std::sync::atomic::Ordering::Acquire) {
                // The environment is gone: the loop (never polled, so without handles) is
                // dropped here, on whatever thread, and its socket closes.
                return;
            }
            let task = Executor { shared }.task(task);
            task.exec
                .loops
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(&task);
            task.schedule();
        }
    }
}

/// The readiness state of one socket; JS thread only (its `poll` handle's `data`).
pub(super) struct Io {
    /// The `poll` handle, made on first need (on the JS thread: `adopt` may run elsewhere).
    pub(super) handle: *mut c_void,
    read: Option<Waker>,
    write: Option<Waker>,
    /// The events the handle is started for.
    pub(super) events: c_int,
    /// Readable interest stays on while the loop keeps reading (it reads to `EAGAIN` each
    /// time it is woken), so a steady stream costs no `epoll_ctl`; it is dropped when the
    /// socket turns readable with nobody waiting (a paused COPY TO), else level-triggered
    /// polling would spin.
    read_on: bool,
    write_on: bool,
    /// A read answered `EAGAIN` and libuv has not said readable since: with readable
    /// interest on, the next read waits for libuv instead of asking the kernel again (the
    /// loop polls its socket after every write, before any answer can have come; that was
    /// one wasted `read` per query).
    blocked: bool,
    /// What a paced read waits on ([`Pace`]: the loop is in a large answer): a timer (a
    /// timerfd and its `poll` handle, made on first need and left started: the fd is
    /// readable only once the timer expires) rather than the socket, so that the server's
    /// writes meanwhile wake nobody.
    timer: *mut c_void,
    timer_fd: c_int,
    timer_armed: bool,
    /// The reader's last wake-up was the timer's: if it then finds nothing, the answer has
    /// paused (or ended), and the next wait is on the socket again.
    timer_woke: bool,
}

/// How long a paced read waits before it reads again. Short enough that the end of a large
/// answer is seen soon after it comes; long enough that a read finds many of the server's
/// writes (`tools/w3-loop.js wide` on the system server, 2026-12-06: 100 µs, 300 µs and
/// 1 ms gave the same elapsed time, 100 µs more of the reader's CPU).
const PACED_WAIT_NS: i64 = 250_000;

/// Paced reads need a timer finer than libuv's milliseconds: a timerfd, Linux only.
const PACING: bool = cfg!(target_os = "linux");

impl Io {
    /// Starts or stops the handle for the events wanted. On the JS thread.
    fn apply(&mut self, fd: c_int) -> io::Result<()> {
        let want = (if self.read_on { UV_READABLE } else { 0 })
            | (if self.write_on { UV_WRITABLE } else { 0 });
        if want == self.events {
            return Ok(());
        }
        if self.handle.is_null() {
            self.handle = self.poll_handle(fd)?;
        }
        // SAFETY: JS thread; `handle` is ours and live (closed only in `close_handles`).
        unsafe {
            let rc = if want == 0 {
                uv_poll_stop(self.handle)
            } else {
                uv_poll_start(self.handle, want, on_poll)
            };
            if rc != 0 {
                return Err(io::Error::other(format!("uv_poll_start failed ({rc})")));
            }
        }
        self.events = want;
        Ok(())
    }
}

impl Io {
    /// The socket answered `EAGAIN` for `event` (readable or writable): `waker` is woken
    /// when libuv says it is ready. After a read, no read is tried until then (`blocked`).
    fn wait<T>(&mut self, fd: c_int, event: c_int, waker: &Waker) -> Poll<io::Result<T>> {
        if event == UV_READABLE {
            self.read = Some(waker.clone());
            self.read_on = true;
            self.blocked = true;
            if self.timer_armed {
                if let Err(e) = self.set_timer(0) {
                    return Poll::Ready(Err(e));
                }
            }
        } else {
            self.write = Some(waker.clone());
            self.write_on = true;
        }
        match self.apply(fd) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl Io {
    /// A new, unreferenced `poll` handle on `fd` whose data is this `Io`, which joins the
    /// JS thread's list (`ios`) so that teardown closes it if the stream's drop does not.
    fn poll_handle(&mut self, fd: c_int) -> io::Result<*mut c_void> {
        let l = local().ok_or_else(|| io::Error::other("not on the JS thread"))?;
        if l.closed.get() {
            return Err(io::Error::other("the environment is shutting down"));
        }
        // SAFETY: JS thread; the handle is freed here on failure, else closed by
        // `close_handles`.
        unsafe {
            let h = new_handle(self as *mut Io as *mut c_void);
            let rc = uv_poll_init(l.uv_loop, h, fd);
            if rc != 0 {
                free_handle(h);
                return Err(io::Error::other(format!("uv_poll_init failed ({rc})")));
            }
            uv_unref(h);
            l.ios.borrow_mut().insert(self as *mut Io as usize);
            Ok(h)
        }
    }

    /// A paced read answered `EAGAIN`: `waker` is woken when the timer expires, not when
    /// the socket turns readable (readable interest is dropped meanwhile).
    /// A timer that cannot be had (no fd left, say) costs the pacing, not the connection:
    /// the read then waits on the socket.
    fn wait_timer<T>(&mut self, fd: c_int, waker: &Waker) -> Poll<io::Result<T>> {
        if self.set_timer(PACED_WAIT_NS).is_err() {
            return self.wait(fd, UV_READABLE, waker);
        }
        self.read = Some(waker.clone());
        self.read_on = false;
        self.blocked = false;
        match self.apply(fd) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Arms the timer to expire in `ns` nanoseconds (0: disarms it), making it first.
    fn set_timer(&mut self, ns: i64) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            if self.timer.is_null() {
                if ns == 0 {
                    return Ok(());
                }
                self.make_timer()?;
            }
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: ns as libc::c_long,
                },
            };
            // SAFETY: our live timerfd; `spec` is a valid itimerspec.
            if unsafe { libc::timerfd_settime(self.timer_fd, 0, &spec, ptr::null_mut()) } != 0 {
                return Err(io::Error::last_os_error());
            }
            self.timer_armed = ns != 0;
            Ok(())
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = ns;
            Err(io::Error::other("paced reads need Linux"))
        }
    }

    #[cfg(target_os = "linux")]
    fn make_timer(&mut self) -> io::Result<()> {
        // SAFETY: creates an fd we own: closed below on failure, else by `close_handles`
        // with its handle.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let started = self.poll_handle(fd).and_then(|h| {
            // SAFETY: JS thread; the live handle just made.
            match unsafe { uv_poll_start(h, UV_READABLE, on_timer) } {
                0 => Ok(h),
                rc => {
                    unsafe { uv_close(h, free_handle) };
                    Err(io::Error::other(format!("uv_poll_start failed ({rc})")))
                }
            }
        });
        match started {
            Ok(h) => {
                self.timer = h;
                self.timer_fd = fd;
                Ok(())
            }
            Err(e) => {
                // SAFETY: our fd, no longer watched.
                unsafe { libc::close(fd) };
                Err(e)
            }
        }
    }

    /// Closes the handles (and the timer's fd); libuv forgets their fds at once. On the JS
    /// thread, once.
    pub(super) unsafe fn close_handles(&mut self) {
        // SAFETY: JS thread; live handles, each closed once (nulled here).
        unsafe {
            if !self.handle.is_null() {
                uv_close(self.handle, free_handle);
                self.handle = ptr::null_mut();
            }
            if !self.timer.is_null() {
                uv_close(self.timer, free_handle);
                self.timer = ptr::null_mut();
                libc::close(self.timer_fd);
                self.timer_fd = -1;
                self.timer_armed = false;
            }
        }
        self.events = 0;
    }
}

unsafe extern "C" fn on_timer(h: *mut c_void, _status: c_int, _events: c_int) {
    // SAFETY: the handle's data is its live `Io` (as in `on_poll`).
    let io = unsafe { &mut *(handle_data(h) as *mut Io) };
    // Read the expiry count, so that the fd is no longer readable. An error (none is
    // expected) wakes the reader all the same: its read tells what is wrong, if anything.
    let mut count = [0u8; 8];
    // SAFETY: our timerfd, into an 8-byte buffer.
    unsafe { libc::read(io.timer_fd, count.as_mut_ptr() as *mut c_void, 8) };
    io.timer_armed = false;
    if let Some(w) = io.read.take() {
        io.timer_woke = true;
        w.wake();
    }
    // `io` may be freed by this run (its loop ends): not touched after.
    run(false);
}

/// A system call on the non-blocking socket, made again while a signal interrupts it.
fn retry(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

unsafe extern "C" fn on_poll(h: *mut c_void, status: c_int, events: c_int) {
    // SAFETY: the handle's data is its live `Io` (freed only after the handle is closed,
    // after which libuv calls nothing but the close callback).
    let io = unsafe { &mut *(handle_data(h) as *mut Io) };
    let fd = {
        let mut fd: c_int = -1;
        // SAFETY: a live poll handle.
        unsafe { uv_fileno(h, &mut fd) };
        fd
    };
    if status < 0 {
        // An error on the socket: libuv has stopped the handle, and both sides find the
        // error when they try (a read or write that still answers EAGAIN starts it again).
        io.events = 0;
        io.read_on = false;
        io.write_on = false;
        io.blocked = false;
        for w in [io.read.take(), io.write.take()].into_iter().flatten() {
            w.wake();
        }
    } else {
        if events & UV_READABLE != 0 {
            io.blocked = false;
            match io.read.take() {
                Some(w) => w.wake(),
                None => io.read_on = false,
            }
        }
        if events & UV_WRITABLE != 0 {
            io.write_on = false;
            if let Some(w) = io.write.take() {
                w.wake();
            }
        }
        let _ = io.apply(fd);
    }
    // `io` may be freed by this run (its loop ends): not touched after.
    run(false);
}

extern "C" {
    fn uv_fileno(h: *mut c_void, fd: *mut c_int) -> c_int;
}

/// A non-blocking TCP socket read and written on the JS thread, woken by libuv.
struct UvStream {
    sock: Option<std::net::TcpStream>,
    /// Set by the protocol loop while a large answer arrives: reads are then paced.
    pace: Pace,
    io: *mut Io,
}

// SAFETY: `io` is only touched on the JS thread: the executor polls (and drops) the protocol
// loop that owns this stream there only (`Task::drop` forgets a future left elsewhere).
unsafe impl Send for UvStream {}

impl UvStream {
    fn fd(&self) -> c_int {
        self.sock.as_ref().map_or(-1, |s| s.as_raw_fd())
    }

    fn io(&mut self) -> &mut Io {
        // SAFETY: ours until drop; JS thread only (see `Send`).
        unsafe { &mut *self.io }
    }
}

impl AsyncRead for UvStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let fd = this.fd();
        let paced = PACING && this.pace.get();
        let io = this.io();
        if io.blocked && io.read_on {
            io.read = Some(cx.waker().clone());
            return Poll::Pending;
        }
        // After the check above: a read that waits for libuv anyway needs no clock.
        if over_budget() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        // SAFETY: the kernel only writes into the buffer's unfilled part, never
        // de-initialising it; `n` bytes are then initialised.
        let dst = unsafe { buf.unfilled_mut() };
        let room = dst.len();
        let read = retry(|| unsafe { libc::read(fd, dst.as_mut_ptr() as *mut c_void, dst.len()) });
        match read {
            Ok(n) => {
                // SAFETY: the kernel wrote `n` bytes.
                unsafe { buf.assume_init(n) };
                buf.advance(n);
                io.timer_woke = false;
                if n > 0 && n < room && io.read_on {
                    // A short read emptied the socket's queue: the next read waits for libuv
                    // (level-triggered, so bytes that came since still wake it) rather than
                    // asking the kernel for an `EAGAIN`, one system call per answer.
                    io.blocked = true;
                }
                Poll::Ready(Ok(()))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let io = this.io();
                // A timer that found nothing: the answer paused or ended; wait on the socket.
                let stalled = std::mem::take(&mut io.timer_woke);
                if paced && !stalled {
                    io.wait_timer(fd, cx.waker())
                } else {
                    io.wait(fd, UV_READABLE, cx.waker())
                }
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for UvStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let fd = this.fd();
        // SAFETY: writes from a live slice. MSG_NOSIGNAL: a closed peer is an EPIPE error,
        // not a SIGPIPE.
        let sent = retry(|| unsafe {
            libc::send(
                fd,
                data.as_ptr() as *const c_void,
                data.len(),
                libc::MSG_NOSIGNAL,
            )
        });
        match sent {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                this.io().wait(fd, UV_WRITABLE, cx.waker())
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = match &self.sock {
            Some(s) => s.shutdown(std::net::Shutdown::Write),
            None => Ok(()),
        };
        Poll::Ready(r.or_else(|e| {
            if e.kind() == io::ErrorKind::NotConnected {
                Ok(())
            } else {
                Err(e)
            }
        }))
    }
}

impl Drop for UvStream {
    fn drop(&mut self) {
        // SAFETY: ours; JS thread (see `Send`).
        let mut io = unsafe { Box::from_raw(self.io) };
        match local() {
            Some(l) => {
                // Out of the list whatever it holds (a handle made and closed again on a
                // failure leaves the `Io` listed): teardown must not reach a freed `Io`.
                l.ios.borrow_mut().remove(&(self.io as usize));
                // SAFETY: JS thread, our live handles (none: nothing to do, the socket just
                // closes), closed once; libuv forgets their fds at once (before the socket
                // is closed, below) and calls nothing more but `free_handle`.
                unsafe { io.close_handles() };
            }
            // Never polled, or closed at teardown: the socket just closes.
            None if io.handle.is_null() && io.timer.is_null() => {}
            // Not the JS thread (cannot happen: see `Send`): leave the handle and its fd.
            None => {
                std::mem::forget(self.sock.take());
                std::mem::forget(io);
            }
        }
    }
}
