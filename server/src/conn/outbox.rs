//! The write side of one connection: its socket, and the bounded queue of frames the socket
//! could not take yet.
//!
//! Whoever holds the outbox lock writes. A publisher pushing pre-encoded frames (a [`Batch`]:
//! the messages of a stream that waited for the same turn, so one system call carries them
//! all) writes them straight to the socket (`try_write`, never waiting) when nothing is queued; only when the
//! kernel refuses bytes does the frame (or its unwritten rest) wait in the queue, and the
//! connection task, woken through [`Outbox::wait`], writes the queue as the socket becomes
//! writable ([`Outbox::flush`], many frames per system call). Order is kept because a direct
//! write happens only into an empty queue, under the same lock the task writes under. Pushing
//! never waits: a queue over its frame or byte limit closes the outbox as a slow consumer, so a
//! client that does not read never slows a publisher nor holds memory. The limits count every
//! frame the socket is sent, the connection's own answers (pongs, error replies) included, and
//! each waiting frame's bookkeeping ([`FRAME_COST`]); only the final close frame goes past them.
//!
//! While the connection authenticates (and recovers what it missed) the outbox is *held*:
//! pushes are kept aside, tagged with their stream position, and [`Outbox::release`] writes
//! the handshake and replayed frames first, then the held frames the replay did not carry.
//!
//! Closing for a reason (kick, logout, shutdown, slow consumer) goes through the outbox too, so
//! it is seen however full the queue is; a frame already half written is completed first so the
//! close frame that follows is not torn.
//!
//! Every outbox adds the bytes it queues to, and takes the bytes it writes or drops from, the
//! node's `drupal_push_queued_bytes` gauge ([`crate::ops::metrics`]); a frame written at once never
//! touches it.

use crate::conn::socket::Socket;
use crate::ops::metrics::Metrics;
use bytes::Bytes;
use drupal_push_protocol::CloseCode;
use std::collections::VecDeque;
use std::io::{ErrorKind, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Queue limits, shared by all outboxes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_frames: usize,
    /// Bytes of queued and held frames plus [`FRAME_COST`] per queued or held frame.
    pub max_bytes: usize,
}

/// What one waiting frame costs besides its bytes (its queue slot, the queue's spare capacity,
/// the allocator's rounding), counted against `max_bytes` so that the limit bounds memory
/// whatever the frames' sizes: a million two-byte pongs would otherwise cost 60 MiB under a
/// 2 MiB limit.
pub const FRAME_COST: usize = 64;

/// Outcome of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Written to the socket, queued, or held for release.
    Queued,
    /// The outbox is closed (or just closed itself as a slow consumer): nothing was queued.
    Dropped,
}

/// Where a frame sits in its stream's history, so a release after recovery can drop frames
/// the replay already carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub stream: Arc<str>,
    pub offset: u64,
}

/// A frame pushed while the outbox was held.
#[derive(Debug)]
pub struct Held {
    pub frame: Bytes,
    pub tag: Option<Tag>,
}

/// One frame of a [`Batch`], with its stream position when it has one.
#[derive(Debug, Clone)]
pub struct Part {
    pub frame: Bytes,
    pub tag: Option<Tag>,
}

/// Frames pushed together, in order (the publications of one stream that waited for the same
/// turn): written with one system call when the socket takes them all.
#[derive(Debug, Clone)]
pub struct Batch {
    joined: Bytes,
    parts: Vec<Part>,
}

impl Batch {
    pub fn new(parts: Vec<Part>) -> Batch {
        let joined = match parts.as_slice() {
            [one] => one.frame.clone(),
            _ => {
                let mut joined = Vec::with_capacity(parts.iter().map(|p| p.frame.len()).sum());
                for p in &parts {
                    joined.extend_from_slice(&p.frame);
                }
                Bytes::from(joined)
            }
        };
        Batch { joined, parts }
    }

    /// How many frames.
    pub fn len(&self) -> usize {
        self.parts.len()
    }
}

/// What [`Outbox::flush`] left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// Everything queued is written.
    Done,
    /// The socket took less than was queued: wait until it is writable.
    Blocked,
    /// The socket failed: the peer is gone.
    Broken,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Bytes>,
    /// Bytes of the front frame already written.
    front_written: usize,
    /// Bytes queued and not yet written.
    bytes: usize,
    close: Option<CloseCode>,
    held: Option<Vec<Held>>,
    /// Bytes of the held frames: they count against `maxQueuedBytes` like queued ones.
    held_bytes: usize,
    broken: bool,
}

impl Inner {
    /// Whether `frames` more frames of `bytes` bytes would exceed the limits.
    fn over(&self, limits: Limits, frames: usize, bytes: usize) -> bool {
        let queued = self.queue.len() + self.held.as_ref().map_or(0, Vec::len) + frames;
        queued > limits.max_frames
            || self.bytes + self.held_bytes + bytes + queued * FRAME_COST > limits.max_bytes
    }

    /// Queues `frame`, of which `written` bytes are already written.
    fn enqueue(&mut self, frame: Bytes, written: usize, metrics: &Metrics) {
        let n = frame.len() - written;
        self.bytes += n;
        metrics.queued_bytes.inc_by(n as i64);
        if self.queue.is_empty() {
            self.front_written = written;
        }
        self.queue.push_back(frame);
    }

    /// Drops what is queued, except the rest of a half-written frame.
    fn discard(&mut self, metrics: &Metrics) {
        let before = self.bytes;
        if self.front_written > 0 {
            self.queue.truncate(1);
            self.bytes = self.queue.front().map_or(0, |f| f.len() - self.front_written);
        } else {
            self.queue = VecDeque::new();
            self.bytes = 0;
        }
        metrics.queued_bytes.dec_by((before - self.bytes) as i64);
        self.held = None;
        self.held_bytes = 0;
    }
}

pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    limits: Limits,
    socket: Socket,
    metrics: Arc<Metrics>,
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let left = self.inner.get_mut().map_or_else(|p| p.into_inner().bytes, |i| i.bytes);
        self.metrics.queued_bytes.dec_by(left as i64);
    }
}

impl Outbox {
    pub fn new(socket: Socket, limits: Limits, metrics: Arc<Metrics>) -> Self {
        Outbox { inner: Mutex::new(Inner::default()), notify: Notify::new(), limits, socket, metrics }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// Sends a frame without waiting: written now if the socket takes it, else queued.
    pub fn push(&self, frame: Bytes) -> Pushed {
        let part = Part { frame, tag: None };
        self.push_parts(&part.frame, std::slice::from_ref(&part))
    }

    /// Sends the frames of a batch without waiting, in order: when nothing is queued, all of
    /// them with one system call; the rest, if the socket takes less, queued frame by frame.
    pub fn push_batch(&self, batch: &Batch) -> Pushed {
        self.push_parts(&batch.joined, &batch.parts)
    }

    /// `parts` in order, `joined` being their bytes end to end.
    fn push_parts(&self, joined: &Bytes, parts: &[Part]) -> Pushed {
        let mut inner = self.lock();
        if inner.close.is_some() || inner.broken {
            return Pushed::Dropped;
        }
        if inner.over(self.limits, parts.len(), joined.len()) {
            return self.overflow(inner);
        }
        if let Some(held) = inner.held.as_mut() {
            held.extend(parts.iter().map(|p| Held { frame: p.frame.clone(), tag: p.tag.clone() }));
            inner.held_bytes += joined.len();
            return Pushed::Queued;
        }
        if !inner.queue.is_empty() {
            for p in parts {
                inner.enqueue(p.frame.clone(), 0, &self.metrics);
            }
            return Pushed::Queued;
        }
        let mut written = match self.socket.try_write(joined) {
            Ok(n) if n == joined.len() => return Pushed::Queued,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
            Err(_) => {
                inner.broken = true;
                drop(inner);
                self.notify.notify_one();
                return Pushed::Dropped;
            }
        };
        for p in parts {
            let done = written.min(p.frame.len());
            written -= done;
            if done < p.frame.len() {
                inner.enqueue(p.frame.clone(), done, &self.metrics);
            }
        }
        drop(inner);
        self.notify.notify_one();
        Pushed::Queued
    }

    /// Asks the connection to close with `code`; frames not yet written are dropped. The first
    /// reason given wins.
    pub fn close(&self, code: CloseCode) {
        let mut inner = self.lock();
        if inner.close.is_none() {
            inner.close = Some(code);
            inner.discard(&self.metrics);
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// The close asked for, if any.
    pub fn closing(&self) -> Option<CloseCode> {
        self.lock().close
    }

    /// Keeps pushed frames aside until [`Outbox::release`].
    pub fn hold(&self) {
        let mut inner = self.lock();
        if inner.held.is_none() {
            inner.held = Some(Vec::new());
        }
    }

    /// Ends a hold: sends `first`, then the held frames `keep` accepts, in order.
    pub fn release(&self, first: Vec<Bytes>, keep: impl Fn(&Held) -> bool) {
        let mut inner = self.lock();
        let held = inner.held.take().unwrap_or_default();
        inner.held_bytes = 0;
        if inner.close.is_some() || inner.broken {
            return;
        }
        for frame in first.into_iter().chain(held.into_iter().filter(|h| keep(h)).map(|h| h.frame)) {
            inner.enqueue(frame, 0, &self.metrics);
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// Closes the outbox as a slow consumer: its queue went over the limits.
    fn overflow(&self, mut inner: MutexGuard<'_, Inner>) -> Pushed {
        inner.close = Some(CloseCode::SLOW_CONSUMER);
        inner.discard(&self.metrics);
        drop(inner);
        self.metrics.slow_consumer("queue_full");
        self.notify.notify_one();
        Pushed::Dropped
    }

    /// Queues a pong answering the client's ping, even while held (it is no message, and must
    /// not wait for the authentication), but within the same limits as every other frame: a
    /// client that pings and never reads is a slow consumer like one that never reads its
    /// messages, and cannot make the queue grow (security review, finding 2).
    pub fn push_pong(&self, frame: Bytes) -> Pushed {
        let mut inner = self.lock();
        if inner.close.is_some() || inner.broken {
            return Pushed::Dropped;
        }
        if inner.over(self.limits, 1, frame.len()) {
            return self.overflow(inner);
        }
        inner.enqueue(frame, 0, &self.metrics);
        drop(inner);
        self.notify.notify_one();
        Pushed::Queued
    }

    /// Queues the connection's last frame, its close frame, even while closing and past the
    /// limits: one frame, after which nothing more is pushed.
    pub fn push_close(&self, frame: Bytes) {
        let mut inner = self.lock();
        if inner.broken {
            return;
        }
        inner.enqueue(frame, 0, &self.metrics);
        drop(inner);
        self.notify.notify_one();
    }

    /// Waits until something was queued for the connection task or a close was asked for.
    /// Cancel-safe: a wake-up not consumed is kept by the `Notify` permit.
    pub async fn wait(&self) {
        self.notify.notified().await
    }

    /// Whether frames wait for the socket.
    pub fn pending(&self) -> bool {
        !self.lock().queue.is_empty()
    }

    /// Writes as much of the queue as the socket takes now (connection task).
    pub fn flush(&self) -> Flush {
        const BATCH: usize = 64;
        let mut inner = self.lock();
        while !inner.queue.is_empty() {
            if inner.broken {
                return Flush::Broken;
            }
            let result = {
                let mut slices: [IoSlice<'_>; BATCH] = [IoSlice::new(&[]); BATCH];
                let mut n = 0;
                for (i, f) in inner.queue.iter().take(BATCH).enumerate() {
                    slices[i] = IoSlice::new(if i == 0 { &f[inner.front_written..] } else { f });
                    n += 1;
                }
                self.socket.try_write_vectored(&slices[..n])
            };
            match result {
                Ok(0) => {
                    inner.broken = true;
                    return Flush::Broken;
                }
                Ok(written) => {
                    advance(&mut inner, written);
                    self.metrics.queued_bytes.dec_by(written as i64);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Flush::Blocked,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    inner.broken = true;
                    return Flush::Broken;
                }
            }
        }
        if inner.broken { Flush::Broken } else { Flush::Done }
    }
}

/// Takes `written` bytes off the front of the queue.
fn advance(inner: &mut Inner, mut written: usize) {
    inner.bytes -= written;
    while written > 0 {
        let front_left = inner.queue.front().map_or(0, |f| f.len()) - inner.front_written;
        if written >= front_left {
            written -= front_left;
            inner.queue.pop_front();
            inner.front_written = 0;
        } else {
            inner.front_written += written;
            written = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// An outbox over one end of a Unix socket pair, and the other end to read what it wrote.
    fn outbox(max_frames: usize, max_bytes: usize) -> (Outbox, UnixEnd) {
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let metrics = Arc::new(Metrics::new());
        (Outbox::new(Socket::Unix(a), Limits { max_frames, max_bytes }, metrics), UnixEnd(b))
    }

    struct UnixEnd(tokio::net::UnixStream);

    impl UnixEnd {
        async fn read_exactly(&mut self, n: usize) -> Vec<u8> {
            let mut buf = vec![0; n];
            tokio::time::timeout(std::time::Duration::from_secs(5), self.0.read_exact(&mut buf))
                .await
                .unwrap()
                .unwrap();
            buf
        }
    }

    #[tokio::test]
    async fn writes_directly_when_nothing_is_queued() {
        let (o, mut peer) = outbox(10, 1000);
        assert_eq!(o.push(Bytes::from_static(b"ab")), Pushed::Queued);
        assert!(!o.pending());
        assert_eq!(o.push(Bytes::from_static(b"cd")), Pushed::Queued);
        assert_eq!(peer.read_exactly(4).await, b"abcd");
    }

    #[tokio::test]
    async fn a_batch_is_one_write_or_queued_frame_by_frame() {
        let (o, mut peer) = outbox(100_000, 1 << 30);
        let batch = Batch::new(vec![
            Part { frame: Bytes::from_static(b"one"), tag: None },
            Part { frame: Bytes::from_static(b"two"), tag: None },
        ]);
        assert_eq!(batch.len(), 2);
        assert_eq!(o.push_batch(&batch), Pushed::Queued);
        assert!(!o.pending());
        assert_eq!(peer.read_exactly(6).await, b"onetwo");
        // Fill the socket, then a big batch is refused part way and queued from the cut on.
        let chunk = Bytes::from(vec![7u8; 48 * 1024]);
        let mut pushed = 0;
        while !o.pending() {
            let batch = Batch::new(vec![
                Part { frame: chunk.clone(), tag: None },
                Part { frame: Bytes::from_static(b"|"), tag: None },
            ]);
            o.push_batch(&batch);
            pushed += chunk.len() + 1;
        }
        let queued = o.lock().queue.len();
        assert!((1..=2).contains(&queued), "only the unwritten parts are queued: {queued}");
        let reader = tokio::spawn(async move { peer.read_exactly(pushed).await });
        while o.flush() != Flush::Done {
            o.socket().writable().await.unwrap();
        }
        let got = reader.await.unwrap();
        for piece in got.chunks(chunk.len() + 1) {
            assert_eq!(piece.len(), chunk.len() + 1);
            assert!(piece[..chunk.len()].iter().all(|b| *b == 7));
            assert_eq!(piece[chunk.len()], b'|');
        }
    }

    #[tokio::test]
    async fn a_batch_over_the_frame_limit_is_a_slow_consumer() {
        let (o, _peer) = outbox(3, 1 << 30);
        o.hold();
        o.push(Bytes::from_static(b"a"));
        let two = |x: &'static [u8]| Part { frame: Bytes::from_static(x), tag: None };
        assert_eq!(o.push_batch(&Batch::new(vec![two(b"b"), two(b"c")])), Pushed::Queued);
        assert_eq!(o.push_batch(&Batch::new(vec![two(b"d"), two(b"e")])), Pushed::Dropped);
        assert_eq!(o.closing(), Some(CloseCode::SLOW_CONSUMER));
    }

    #[tokio::test]
    async fn queues_what_the_socket_refuses_and_keeps_order() {
        let (o, mut peer) = outbox(100_000, 1 << 30);
        let chunk = Bytes::from(vec![7u8; 64 * 1024]);
        let mut pushed = 0;
        while !o.pending() {
            o.push(chunk.clone());
            pushed += chunk.len();
        }
        o.push(Bytes::from_static(b"end"));
        assert_eq!(o.flush(), Flush::Blocked);
        let reader = tokio::spawn(async move { peer.read_exactly(pushed + 3).await });
        loop {
            match o.flush() {
                Flush::Done => break,
                Flush::Blocked => o.socket().writable().await.unwrap(),
                Flush::Broken => panic!("broken"),
            }
        }
        let got = reader.await.unwrap();
        assert!(got[..pushed].iter().all(|b| *b == 7));
        assert_eq!(&got[pushed..], b"end");
    }

    #[tokio::test]
    async fn queued_bytes_are_counted_until_written_or_dropped() {
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let metrics = Arc::new(Metrics::new());
        let o =
            Outbox::new(Socket::Unix(a), Limits { max_frames: 100_000, max_bytes: 1 << 30 }, metrics.clone());
        let mut peer = UnixEnd(b);
        o.push(Bytes::from_static(b"now"));
        assert_eq!(metrics.queued_bytes.get(), 0, "a frame written at once is never counted");
        let chunk = Bytes::from(vec![1u8; 64 * 1024]);
        let mut pushed = 3;
        while !o.pending() {
            o.push(chunk.clone());
            pushed += chunk.len();
        }
        o.push(chunk.clone());
        pushed += chunk.len();
        let queued = metrics.queued_bytes.get();
        assert!(queued > chunk.len() as i64, "{queued}");
        let reader = tokio::spawn(async move { peer.read_exactly(pushed).await });
        while o.flush() != Flush::Done {
            o.socket().writable().await.unwrap();
        }
        assert_eq!(metrics.queued_bytes.get(), 0, "written");
        reader.await.unwrap();
        o.hold();
        o.release(vec![Bytes::from_static(b"queued, never written")], |_| true);
        assert_eq!(metrics.queued_bytes.get(), 21);
        drop(o);
        assert_eq!(metrics.queued_bytes.get(), 0, "dropped with its outbox");
    }

    #[tokio::test]
    async fn overflow_closes_as_slow_consumer() {
        let (o, _peer) = outbox(2, 1 << 30);
        o.hold();
        o.push(Bytes::from_static(b"a"));
        o.push(Bytes::from_static(b"b"));
        assert_eq!(o.push(Bytes::from_static(b"c")), Pushed::Dropped);
        assert_eq!(o.closing(), Some(CloseCode::SLOW_CONSUMER));
        assert_eq!(o.push(Bytes::from_static(b"d")), Pushed::Dropped);
    }

    /// Held frames counted one [`FRAME_COST`] each whatever their size, so frames pushed during
    /// an authentication's recovery could hold `maxQueuedMessages` large frames at once.
    #[tokio::test]
    async fn held_frames_count_their_bytes() {
        let (o, _peer) = outbox(1000, 3 * FRAME_COST + 1000);
        o.hold();
        assert_eq!(o.push(Bytes::from(vec![b'x'; 600])), Pushed::Queued);
        assert_eq!(o.push(Bytes::from(vec![b'y'; 600])), Pushed::Dropped, "1,200 bytes held are over 1,000");
        assert_eq!(o.closing(), Some(CloseCode::SLOW_CONSUMER));
        let (o, _peer) = outbox(1000, 3 * FRAME_COST + 1000);
        o.hold();
        assert_eq!(o.push(Bytes::from(vec![b'x'; 600])), Pushed::Queued);
        o.release(Vec::new(), |_| false);
        assert_eq!(o.push(Bytes::from(vec![b'y'; 600])), Pushed::Queued, "released frames no longer count");
    }

    /// Security review, finding 2: pongs were queued without limit, so a client sending pings
    /// and never reading grew the server's memory until the write timeout.
    #[tokio::test]
    async fn pongs_count_against_the_limits() {
        let (o, _peer) = outbox(3, 1 << 30);
        o.hold();
        o.push(Bytes::from_static(b"held"));
        assert_eq!(o.push_pong(Bytes::from_static(b"p1")), Pushed::Queued);
        assert!(o.pending(), "a pong does not wait for the release");
        assert_eq!(o.push_pong(Bytes::from_static(b"p2")), Pushed::Queued);
        assert_eq!(o.push_pong(Bytes::from_static(b"p3")), Pushed::Dropped);
        assert_eq!(o.closing(), Some(CloseCode::SLOW_CONSUMER));
        assert_eq!(o.push_pong(Bytes::from_static(b"p4")), Pushed::Dropped);
        let (o, _peer) = outbox(1000, 2 * FRAME_COST + 10);
        o.hold();
        assert_eq!(o.push_pong(Bytes::from_static(b"12345")), Pushed::Queued);
        assert_eq!(o.push_pong(Bytes::from_static(b"12345")), Pushed::Queued);
        assert_eq!(o.push_pong(Bytes::from_static(b"1")), Pushed::Dropped, "over the byte limit");
        o.push_close(Bytes::from_static(b"close"));
        assert!(o.pending(), "the close frame is queued whatever the limits");
    }

    #[tokio::test]
    async fn hold_and_release_send_the_handshake_first() {
        let (o, mut peer) = outbox(10, 1000);
        o.hold();
        let tag = Tag { stream: Arc::from("c"), offset: 3 };
        let next = Tag { stream: Arc::from("c"), offset: 4 };
        o.push_batch(&Batch::new(vec![
            Part { frame: Bytes::from_static(b"3"), tag: Some(tag) },
            Part { frame: Bytes::from_static(b"4"), tag: Some(next) },
        ]));
        o.push(Bytes::from_static(b"x"));
        assert!(!o.pending());
        o.release(vec![Bytes::from_static(b"ack")], |h| h.tag.as_ref().is_none_or(|t| t.offset > 3));
        assert_eq!(o.flush(), Flush::Done);
        assert_eq!(peer.read_exactly(5).await, b"ack4x", "the batch is held frame by frame");
    }

    #[tokio::test]
    async fn first_close_reason_wins_and_wakes_the_task() {
        let (o, _peer) = outbox(10, 100);
        let o = Arc::new(o);
        let waiter = {
            let o = o.clone();
            tokio::spawn(async move { o.wait().await })
        };
        tokio::task::yield_now().await;
        o.close(CloseCode::KICKED);
        o.close(CloseCode::GOING_AWAY);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert_eq!(o.closing(), Some(CloseCode::KICKED));
        assert_eq!(o.push(Bytes::from_static(b"late")), Pushed::Dropped);
    }
}
