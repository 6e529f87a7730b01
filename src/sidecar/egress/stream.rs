//! Byte plumbing for the proxy: a stream that replays bytes already read
//! (`Rewind`), a stream that counts bytes and notes activity (`Metered`), and
//! the tunnel relay bounded by idle and total timeouts. Between two plain
//! sockets the relay moves bytes with splice(2) through a pipe, so tunnel
//! data never passes through user space; otherwise it copies.

use bytes::{Buf, Bytes};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// Anything the proxy can serve or relay: TCP, Unix, TLS, upgraded streams.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The plain socket this is, if it is one (for the zero-copy relay).
    fn socket(&self) -> Option<Socket<'_>> {
        None
    }
}

impl Io for TcpStream {
    fn socket(&self) -> Option<Socket<'_>> {
        Some(Socket::Tcp(self))
    }
}
impl Io for UnixStream {
    fn socket(&self) -> Option<Socket<'_>> {
        Some(Socket::Unix(self))
    }
}
impl<S: Io> Io for Rewind<S> {
    fn socket(&self) -> Option<Socket<'_>> {
        // Replayed bytes live in user space, so only an emptied Rewind is a socket.
        if self.prefix.is_empty() {
            self.inner.socket()
        } else {
            None
        }
    }
}
impl<S: Io> Io for Metered<S> {}
impl<S: Io> Io for tokio_rustls::server::TlsStream<S> {}
impl<S: Io> Io for tokio_rustls::client::TlsStream<S> {}
impl Io for hyper_util::rt::TokioIo<hyper::upgrade::Upgraded> {}

/// A borrowed plain socket.
#[derive(Clone, Copy)]
pub enum Socket<'a> {
    Tcp(&'a TcpStream),
    Unix(&'a UnixStream),
}

impl Socket<'_> {
    fn fd(&self) -> RawFd {
        match self {
            Socket::Tcp(s) => s.as_raw_fd(),
            Socket::Unix(s) => s.as_raw_fd(),
        }
    }

    async fn ready(&self, interest: Interest) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.ready(interest).await.map(drop),
            Socket::Unix(s) => s.ready(interest).await.map(drop),
        }
    }

    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        match self {
            Socket::Tcp(s) => s.try_io(interest, f),
            Socket::Unix(s) => s.try_io(interest, f),
        }
    }

    fn shutdown_write(&self) {
        // SAFETY: shutdown(2) on a descriptor the borrowed socket keeps open.
        unsafe {
            libc::shutdown(self.fd(), libc::SHUT_WR);
        }
    }
}

/// A stream whose first bytes were already read (while parsing a request
/// head) and are handed out again before the rest.
pub struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    pub fn new(prefix: Bytes, inner: S) -> Rewind<S> {
        Rewind { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A stream hyper serves while the proxy keeps a second handle: when hyper
/// gives up on a connection (a request head too slow) it drops its handle
/// without answering, and the proxy still writes its `408` on the stream.
/// The lock is only held for the length of one poll, so it is never
/// contended while hyper owns the connection.
pub struct Shared<S>(Arc<std::sync::Mutex<S>>);

impl<S> Shared<S> {
    pub fn new(inner: S) -> Shared<S> {
        Shared(Arc::new(std::sync::Mutex::new(inner)))
    }

    /// A second handle on the same stream.
    pub fn handle(&self) -> Shared<S> {
        Shared(self.0.clone())
    }

    /// The stream, once every other handle is gone.
    pub fn into_inner(self) -> Option<S> {
        Arc::try_unwrap(self.0)
            .ok()
            .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
    }

    fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Shared<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.with(|s| Pin::new(s).poll_read(cx, buf))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Shared<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|s| Pin::new(s).poll_write(cx, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| Pin::new(s).poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| Pin::new(s).poll_shutdown(cx))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.with(|s| Pin::new(s).poll_write_vectored(cx, bufs))
    }
    fn is_write_vectored(&self) -> bool {
        self.with(|s| s.is_write_vectored())
    }
}

impl<S: Io> Io for Shared<S> {}

/// When a tunnel last moved a byte, shared by both directions.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        })
    }
    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }
    fn idle_for(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Counts the bytes read from and written to a stream.
#[derive(Debug, Default)]
pub struct Counters {
    pub read: AtomicU64,
    pub written: AtomicU64,
}

/// A stream that counts its bytes and touches an [`Activity`].
pub struct Metered<S> {
    inner: S,
    pub counters: Arc<Counters>,
    activity: Arc<Activity>,
}

impl<S> Metered<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Metered<S> {
        Metered {
            inner,
            counters: Arc::default(),
            activity,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.counters.read.fetch_add(n as u64, Ordering::Relaxed);
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.counters.written.fetch_add(n as u64, Ordering::Relaxed);
            self.activity.touch();
        }
        polled
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.counters.written.fetch_add(n as u64, Ordering::Relaxed);
            self.activity.touch();
        }
        polled
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// How a bounded exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Done,
    Idle,
    Expired,
}

impl End {
    /// Why the proxy closed it, for the audit line.
    pub fn reason(self) -> Option<String> {
        match self {
            End::Done => None,
            End::Idle => Some("closed: idle timeout".into()),
            End::Expired => Some("closed: total time limit".into()),
        }
    }
}

/// Run `work` until it finishes, `activity` has been quiet for `idle`, or
/// `total` has passed.
pub async fn bounded<F: std::future::Future>(
    work: F,
    activity: &Activity,
    idle: Duration,
    total: Duration,
) -> End {
    let watch_idle = async {
        loop {
            let quiet = activity.idle_for();
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    };
    tokio::select! {
        _ = work => End::Done,
        _ = watch_idle => End::Idle,
        _ = tokio::time::sleep(total) => End::Expired,
    }
}

/// Buffer per direction for tunnels: large enough that bulk transfers make
/// few syscalls, small enough that a thousand tunnels fit in memory.
const RELAY_BUFFER: usize = 64 * 1024;

/// Carry bytes both ways between `client` and `upstream` until both sides
/// close or a limit ends it. Returns (bytes up, bytes down, how it ended).
pub async fn relay<A: Io, B: Io>(
    client: A,
    upstream: B,
    idle: Duration,
    total: Duration,
) -> (u64, u64, End) {
    let activity = Activity::new();
    if let (Some(c), Some(u)) = (client.socket(), upstream.socket()) {
        if let (Ok(up_pipe), Ok(down_pipe)) = (Pipe::new(), Pipe::new()) {
            let up = AtomicU64::new(0);
            let down = AtomicU64::new(0);
            let both = async {
                tokio::try_join!(
                    splice_one_way(c, u, &up_pipe, &up, &activity),
                    splice_one_way(u, c, &down_pipe, &down, &activity),
                )
            };
            let end = bounded(both, &activity, idle, total).await;
            return (
                up.load(Ordering::Relaxed),
                down.load(Ordering::Relaxed),
                end,
            );
        }
    }
    let mut client = Metered::new(client, activity.clone());
    let mut upstream = Metered::new(upstream, activity.clone());
    let up = client.counters.clone();
    let down = upstream.counters.clone();
    let end = bounded(
        tokio::io::copy_bidirectional_with_sizes(
            &mut client,
            &mut upstream,
            RELAY_BUFFER,
            RELAY_BUFFER,
        ),
        &activity,
        idle,
        total,
    )
    .await;
    (
        up.read.load(Ordering::Relaxed),
        down.read.load(Ordering::Relaxed),
        end,
    )
}

/// Most bytes one splice moves; also the pipe size asked for.
const SPLICE_CHUNK: usize = 1 << 20;

/// A non-blocking pipe, the kernel-side buffer of one relay direction.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 fills the two-element array it is given.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are fresh and owned here.
        let pipe = unsafe {
            Pipe {
                read: OwnedFd::from_raw_fd(fds[0]),
                write: OwnedFd::from_raw_fd(fds[1]),
            }
        };
        // A bigger pipe means fewer splices; the default (64 KiB) still works.
        // SAFETY: fcntl on a descriptor owned by `pipe`.
        unsafe {
            libc::fcntl(
                pipe.write.as_raw_fd(),
                libc::F_SETPIPE_SZ,
                SPLICE_CHUNK as libc::c_int,
            );
        }
        Ok(pipe)
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: splice(2) between descriptors kept open by their owners, with
    // no offsets (both ends are sockets or pipes).
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Move bytes from `from` to `to` through `pipe` until `from` ends, then
/// half-close `to`. The pipe is only filled when empty, so EAGAIN always
/// means the socket is not ready, which is what `try_io` needs to know.
async fn splice_one_way(
    from: Socket<'_>,
    to: Socket<'_>,
    pipe: &Pipe,
    count: &AtomicU64,
    activity: &Activity,
) -> io::Result<()> {
    loop {
        let mut in_pipe = loop {
            from.ready(Interest::READABLE).await?;
            match from.try_io(Interest::READABLE, || {
                splice(from.fd(), pipe.write.as_raw_fd(), SPLICE_CHUNK)
            }) {
                Ok(n) => break n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Err(err),
            }
        };
        if in_pipe == 0 {
            to.shutdown_write();
            return Ok(());
        }
        count.fetch_add(in_pipe as u64, Ordering::Relaxed);
        activity.touch();
        while in_pipe > 0 {
            to.ready(Interest::WRITABLE).await?;
            match to.try_io(Interest::WRITABLE, || {
                splice(pipe.read.as_raw_fd(), to.fd(), in_pipe)
            }) {
                Ok(n) => {
                    in_pipe -= n;
                    activity.touch();
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Err(err),
            }
        }
    }
}
