//! Byte plumbing for the proxy: a stream that replays bytes already read
//! (`Rewind`), a stream that counts bytes and notes activity (`Metered`), and
//! the tunnel relay bounded by idle and total timeouts.

use bytes::{Buf, Bytes};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Anything the proxy can serve or relay: TCP, Unix, TLS, upgraded streams.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

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

/// Copy bytes both ways between `client` and `upstream` until both sides
/// close or a limit ends it. Returns (bytes up, bytes down, how it ended).
pub async fn relay<A: Io, B: Io>(
    client: A,
    upstream: B,
    idle: Duration,
    total: Duration,
) -> (u64, u64, End) {
    let activity = Activity::new();
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
