//! Streams: per-stream order and history.
//!
//! *Order*: a publication is recorded and queued in its stream's slot under one lock, so the
//! queue is in offset order. One delivery of a stream runs at a time: the publisher that finds
//! none running starts one, which takes the queue in batches ([`Streams::next_batch`]: what
//! queued up while the previous batch was being fanned out, within the engine's
//! [`BatchSize`] limits, one sender per batch) until it is empty. Under a burst the
//! messages that waited go out together, one system call per socket for the whole batch,
//! instead of one call per message per socket.
//!
//! *History*: each stream keeps at most `historySize` messages no older than `historyTtlSecs`,
//! and all streams together at most `historyMaxBytes`, after which the oldest messages anywhere
//! go first. Offsets grow by one per message; eviction only moves the first offset still held.
//! A stream's state (epoch and last offset) lives while the stream is in use (a channel that
//! exists, a content-token channel with tokens, the broadcast stream), and `historyTtlSecs`
//! after that; created anew it gets a new epoch, so an old position reads as lost continuity,
//! never as a silent gap. With `historySize = 0` nothing is recorded and nothing is kept.
//!
//! Locks: the slot map, each slot's queue, the global budget and each slot's history are `std`
//! mutexes held for a few operations; where they nest the order is queue -> history,
//! queue -> budget -> history, map -> history.

use crate::engine::{BatchSize, Position, Publication, Stream};
use rustc_hash::FxHashMap;
use serde_json::value::RawValue;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Bookkeeping bytes counted per message on top of its text.
const ENTRY_OVERHEAD: usize = 64;

/// History limits, from the config.
#[derive(Debug, Clone, Copy)]
pub struct HistorySettings {
    /// Messages kept per stream; 0 turns history off.
    pub size: usize,
    pub ttl: Duration,
    pub max_bytes: usize,
}

struct Entry {
    offset: u64,
    at: Instant,
    message: Arc<RawValue>,
    bytes: usize,
}

/// What dropping entries freed, for the global counts.
#[derive(Debug, Default, Clone, Copy)]
struct Freed {
    bytes: usize,
    messages: usize,
}

impl Freed {
    fn add(&mut self, entry: Option<Entry>) {
        if let Some(e) = entry {
            self.bytes += e.bytes;
            self.messages += 1;
        }
    }
}

struct History {
    epoch: Arc<str>,
    last: u64,
    entries: VecDeque<Entry>,
    touched: Instant,
}

impl History {
    fn new(now: Instant) -> History {
        History {
            epoch: Arc::from(crate::ids::random_id(8)),
            last: 0,
            entries: VecDeque::new(),
            touched: now,
        }
    }

    /// Drops entries older than `ttl`.
    fn expire(&mut self, ttl: Duration, now: Instant) -> Freed {
        let mut freed = Freed::default();
        while self.entries.front().is_some_and(|e| e.at + ttl <= now) {
            freed.add(self.entries.pop_front());
        }
        freed
    }

    /// Drops entries up to `offset` (the global budget's eviction).
    fn evict_through(&mut self, offset: u64) -> Freed {
        let mut freed = Freed::default();
        while self.entries.front().is_some_and(|e| e.offset <= offset) {
            freed.add(self.entries.pop_front());
        }
        freed
    }

    fn top(&self) -> Position {
        Position { offset: self.last, epoch: self.epoch.clone() }
    }
}

/// A publication waiting for its stream's delivery, and who waits for its count.
pub(super) struct Waiting {
    pub publication: Publication,
    pub done: oneshot::Sender<usize>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// A delivery runs (and will take what is queued).
    delivering: bool,
}

/// One stream: its delivery queue and its history.
pub(super) struct Slot {
    queue: Mutex<Queue>,
    history: Mutex<History>,
}

impl Slot {
    fn history(&self) -> MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An appended message, in append order, for the global byte budget and age.
struct Record {
    slot: Arc<Slot>,
    offset: u64,
    at: Instant,
}

#[derive(Default)]
struct Budget {
    bytes: usize,
    messages: usize,
    order: VecDeque<Record>,
}

impl Budget {
    fn release(&mut self, freed: Freed) {
        self.bytes -= freed.bytes;
        self.messages -= freed.messages;
    }
}

/// What a reconnecting socket gets for one stream.
#[derive(Debug, Default)]
pub struct StreamRecovery {
    /// Where the stream is now (none when history is off).
    pub top: Option<Position>,
    /// Missed messages, in order, when the given position could be recovered.
    pub replay: Vec<(u64, Arc<RawValue>)>,
    /// Every missed message is in `replay`.
    pub recovered: bool,
}

pub(super) struct Streams {
    slots: Mutex<FxHashMap<Stream, Arc<Slot>>>,
    budget: Mutex<Budget>,
    settings: HistorySettings,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Streams {
    pub fn new(settings: HistorySettings) -> Streams {
        Streams { slots: Mutex::default(), budget: Mutex::default(), settings }
    }

    pub fn recording(&self) -> bool {
        self.settings.size > 0
    }

    /// The slot of `stream`, created (with a new epoch) on first use.
    pub fn slot(&self, stream: &Stream) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        if let Some(s) = slots.get(stream) {
            return s.clone();
        }
        let s = Arc::new(Slot { queue: Mutex::default(), history: Mutex::new(History::new(Instant::now())) });
        slots.insert(stream.clone(), s.clone());
        s
    }

    /// Gives a slot back after a publication. Without history a slot nobody else holds is
    /// forgotten at once (clones are made only under the map's lock, so a count of two, the
    /// map's and ours, means nobody else has it); with history the sweep decides.
    pub fn release(&self, stream: &Stream, slot: Arc<Slot>) {
        if self.recording() {
            return;
        }
        let mut slots = lock(&self.slots);
        if Arc::strong_count(&slot) == 2 {
            slots.remove(stream);
        }
    }

    /// Records a message and queues it for delivery, in offset order. Returns the receiver of
    /// its delivery count, and whether the caller must start the delivery (none runs).
    pub fn enqueue(
        &self,
        slot: &Arc<Slot>,
        stream: Stream,
        message: Arc<RawValue>,
        sender: Option<Arc<str>>,
    ) -> (oneshot::Receiver<usize>, bool) {
        let (done, counted) = oneshot::channel();
        let mut queue = lock(&slot.queue);
        let position = self.append(slot, &message);
        let publication = Publication { stream, message, position, sender };
        queue.waiting.push_back(Waiting { publication, done });
        let start = !queue.delivering;
        queue.delivering = true;
        (counted, start)
    }

    /// The next batch for the running delivery: queued publications in order, all with the
    /// sender of the first, within the batch limits. None when the queue is empty, which ends
    /// the delivery (the next publisher starts a new one).
    pub fn next_batch(&self, slot: &Slot) -> Option<Vec<Waiting>> {
        let mut queue = lock(&slot.queue);
        let Some(first) = queue.waiting.pop_front() else {
            queue.delivering = false;
            return None;
        };
        let mut size = BatchSize::default();
        size.admit(None, &first.publication);
        let mut batch = vec![first];
        while let Some(next) = queue.waiting.front() {
            if !size.admit(Some(&batch[0].publication), &next.publication) {
                break;
            }
            batch.extend(queue.waiting.pop_front());
        }
        Some(batch)
    }

    /// Records a message in its stream; returns its position.
    fn append(&self, slot: &Arc<Slot>, message: &Arc<RawValue>) -> Option<Position> {
        if !self.recording() {
            return None;
        }
        let s = self.settings;
        let now = Instant::now();
        let bytes = message.get().len() + ENTRY_OVERHEAD;
        let (position, freed) = {
            let mut h = slot.history();
            h.last += 1;
            let offset = h.last;
            h.entries.push_back(Entry { offset, at: now, message: message.clone(), bytes });
            h.touched = now;
            let mut freed = h.expire(s.ttl, now);
            while h.entries.len() > s.size {
                freed.add(h.entries.pop_front());
            }
            (h.top(), freed)
        };
        let mut budget = lock(&self.budget);
        budget.bytes += bytes;
        budget.messages += 1;
        budget.release(freed);
        budget.order.push_back(Record { slot: slot.clone(), offset: position.offset, at: now });
        self.trim(&mut budget, now);
        Some(position)
    }

    /// Pops budget records: evicting while over the byte cap or past their age, and dropping
    /// records whose entry is already gone.
    fn trim(&self, budget: &mut Budget, now: Instant) {
        let s = self.settings;
        while let Some(front) = budget.order.front() {
            let over = budget.bytes > s.max_bytes || front.at + s.ttl <= now;
            let gone = || front.slot.history().entries.front().is_none_or(|e| e.offset > front.offset);
            if !over && !gone() {
                break;
            }
            let record = budget.order.pop_front().expect("front exists");
            if over {
                let freed = record.slot.history().evict_through(record.offset);
                budget.release(freed);
            }
        }
    }

    /// What a socket joining `stream` at `since` (its last position, if it had one) missed.
    pub fn recover(&self, stream: &Stream, since: Option<&Position>) -> StreamRecovery {
        if !self.recording() {
            return StreamRecovery::default();
        }
        let slot = self.slot(stream);
        let now = Instant::now();
        let mut h = slot.history();
        let freed = h.expire(self.settings.ttl, now);
        h.touched = now;
        let top = h.top();
        let mut recovery = StreamRecovery { top: Some(top.clone()), ..StreamRecovery::default() };
        if let Some(p) = since {
            let first = h.entries.front().map_or(h.last + 1, |e| e.offset);
            if *p.epoch == *top.epoch && p.offset <= top.offset && p.offset + 1 >= first {
                recovery.replay = h
                    .entries
                    .iter()
                    .filter(|e| e.offset > p.offset)
                    .map(|e| (e.offset, e.message.clone()))
                    .collect();
                recovery.recovered = true;
            }
        }
        drop(h);
        if freed.messages > 0 {
            lock(&self.budget).release(freed);
        }
        recovery
    }

    /// Marks a stream as just used (its last subscriber left): its state lives on for the TTL.
    pub fn touch(&self, stream: &Stream) {
        if let Some(slot) = lock(&self.slots).get(stream) {
            slot.history().touched = Instant::now();
        }
    }

    /// Forgets streams not `in_use` whose history is empty and that nobody touched for the TTL,
    /// and drops messages past their age.
    pub fn sweep(&self, in_use: impl Fn(&Stream) -> bool) {
        let now = Instant::now();
        self.trim(&mut lock(&self.budget), now);
        let ttl = self.settings.ttl;
        let mut freed = Freed::default();
        lock(&self.slots).retain(|stream, slot| {
            let mut h = slot.history();
            let f = h.expire(ttl, now);
            freed.bytes += f.bytes;
            freed.messages += f.messages;
            Arc::strong_count(slot) > 1 || in_use(stream) || !h.entries.is_empty() || h.touched + ttl > now
        });
        if freed.messages > 0 {
            lock(&self.budget).release(freed);
        }
    }

    /// Bytes of history held.
    pub fn bytes(&self) -> usize {
        lock(&self.budget).bytes
    }

    /// Messages of history held.
    pub fn messages(&self) -> usize {
        lock(&self.budget).messages
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.slots).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams(size: usize, max_bytes: usize) -> Streams {
        Streams::new(HistorySettings { size, ttl: Duration::from_secs(300), max_bytes })
    }

    fn msg(n: u64) -> Arc<RawValue> {
        Arc::from(RawValue::from_string(format!("{{\"n\":{n}}}")).unwrap())
    }

    fn chat() -> Stream {
        Stream::Channel(Arc::from("chat"))
    }

    fn publish(s: &Streams, stream: &Stream, n: u64) -> Position {
        let slot = s.slot(stream);
        let p = s.append(&slot, &msg(n)).unwrap();
        s.release(stream, slot);
        p
    }

    #[tokio::test(start_paused = true)]
    async fn offsets_grow_and_a_recent_position_recovers_exactly_what_was_missed() {
        let s = streams(50, 1 << 20);
        let p1 = publish(&s, &chat(), 1);
        assert_eq!(p1.offset, 1);
        for n in 2..=5 {
            publish(&s, &chat(), n);
        }
        let r = s.recover(&chat(), Some(&p1));
        assert!(r.recovered);
        assert_eq!(r.replay.iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
        assert_eq!(r.top.unwrap().offset, 5);
        let at_top = s.recover(&chat(), Some(&Position { offset: 5, epoch: p1.epoch.clone() }));
        assert!(at_top.recovered && at_top.replay.is_empty());
        let other_epoch = s.recover(&chat(), Some(&Position { offset: 1, epoch: Arc::from("nope") }));
        assert!(!other_epoch.recovered && other_epoch.replay.is_empty());
        let future = s.recover(&chat(), Some(&Position { offset: 9, epoch: p1.epoch }));
        assert!(!future.recovered);
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_beyond_the_size_or_the_age_is_not_recovered() {
        let s = streams(3, 1 << 20);
        let p1 = publish(&s, &chat(), 1);
        for n in 2..=5 {
            publish(&s, &chat(), n);
        }
        assert!(!s.recover(&chat(), Some(&p1)).recovered, "2 was evicted by size");
        assert_eq!(s.messages(), 3);
        let p3 = Position { offset: 3, epoch: p1.epoch.clone() };
        assert!(s.recover(&chat(), Some(&p3)).recovered, "4 and 5 are held");
        tokio::time::advance(Duration::from_secs(301)).await;
        let p4 = Position { offset: 4, epoch: p1.epoch.clone() };
        assert!(!s.recover(&chat(), Some(&p4)).recovered, "5 expired");
        let p5 = Position { offset: 5, epoch: p1.epoch };
        assert!(s.recover(&chat(), Some(&p5)).recovered, "nothing missed, nothing lost");
    }

    #[tokio::test(start_paused = true)]
    async fn the_byte_cap_evicts_the_oldest_messages_anywhere() {
        let one = msg(1).get().len() + ENTRY_OVERHEAD;
        let s = streams(50, one * 10);
        let first = publish(&s, &Stream::Channel(Arc::from("c0")), 0);
        for i in 1..100u64 {
            publish(&s, &Stream::Channel(Arc::from(format!("c{i}"))), i % 10);
            assert!(s.bytes() <= one * 10, "over the cap after {i}: {}", s.bytes());
        }
        assert_eq!(s.bytes(), one * 10);
        assert_eq!(s.messages(), 10);
        let lost =
            s.recover(&Stream::Channel(Arc::from("c0")), Some(&Position { offset: 0, epoch: first.epoch }));
        assert!(!lost.recovered, "the oldest stream's message went first");
        let last = s.recover(
            &Stream::Channel(Arc::from("c99")),
            Some(&Position { offset: 0, epoch: Arc::from("x") }),
        );
        assert_eq!(last.top.unwrap().offset, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_streams_are_forgotten_after_the_ttl_unless_in_use() {
        let s = streams(50, 1 << 20);
        let p = publish(&s, &chat(), 1);
        publish(&s, &Stream::Broadcast, 1);
        tokio::time::advance(Duration::from_secs(200)).await;
        s.sweep(|_| false);
        assert_eq!(s.len(), 2, "history still held");
        tokio::time::advance(Duration::from_secs(101)).await;
        s.sweep(|st| *st == Stream::Broadcast);
        assert_eq!(s.len(), 1, "chat is gone, broadcast is in use");
        assert_eq!((s.bytes(), s.messages()), (0, 0));
        let r = s.recover(&chat(), Some(&p));
        assert!(!r.recovered, "a new epoch");
        assert_ne!(r.top.unwrap().epoch, p.epoch);
    }

    #[tokio::test]
    async fn what_queues_during_a_delivery_goes_out_as_batches_in_order() {
        let s = streams(50, 1 << 20);
        let slot = s.slot(&chat());
        let (_first, start) = s.enqueue(&slot, chat(), msg(1), None);
        assert!(start, "the first publisher starts the delivery");
        let batch = s.next_batch(&slot).unwrap();
        assert_eq!(batch.len(), 1);
        // While batch 1 is being delivered, more queue up: no second delivery is started.
        let mut counts = Vec::new();
        for (n, sender) in [(2, None), (3, None), (4, Some("s")), (5, Some("s")), (6, None)] {
            let (counted, start) = s.enqueue(&slot, chat(), msg(n), sender.map(Arc::from));
            assert!(!start);
            counts.push(counted);
        }
        let offsets = |b: &[Waiting]| {
            b.iter().map(|w| w.publication.position.as_ref().unwrap().offset).collect::<Vec<_>>()
        };
        let second = s.next_batch(&slot).unwrap();
        assert_eq!(offsets(&second), [2, 3], "one sender per batch");
        let third = s.next_batch(&slot).unwrap();
        assert_eq!(offsets(&third), [4, 5]);
        let fourth = s.next_batch(&slot).unwrap();
        assert_eq!(offsets(&fourth), [6]);
        for (i, w) in second.into_iter().chain(third).chain(fourth).enumerate() {
            w.done.send(i).unwrap();
        }
        for (i, counted) in counts.into_iter().enumerate() {
            assert_eq!(counted.await.unwrap(), i);
        }
        assert!(s.next_batch(&slot).is_none(), "empty: the delivery ends");
        let (_, start) = s.enqueue(&slot, chat(), msg(7), None);
        assert!(start, "and the next publisher starts a new one");
    }

    #[test]
    fn a_batch_keeps_to_its_limits() {
        use crate::engine::{BATCH_BYTES, BATCH_MESSAGES};
        let s = streams(0, 1 << 20);
        let slot = s.slot(&chat());
        for n in 0..(BATCH_MESSAGES as u64 + 3) {
            s.enqueue(&slot, chat(), msg(n), None);
        }
        assert_eq!(s.next_batch(&slot).unwrap().len(), BATCH_MESSAGES);
        assert_eq!(s.next_batch(&slot).unwrap().len(), 3);
        let big = Arc::<RawValue>::from(
            RawValue::from_string(format!("\"{}\"", "x".repeat(BATCH_BYTES / 2))).unwrap(),
        );
        for _ in 0..3 {
            s.enqueue(&slot, chat(), big.clone(), None);
        }
        assert_eq!(s.next_batch(&slot).unwrap().len(), 1, "two would pass {BATCH_BYTES} bytes");
    }

    #[test]
    fn history_off_records_nothing_and_keeps_no_streams() {
        let s = streams(0, 1 << 20);
        let slot = s.slot(&chat());
        assert!(s.append(&slot, &msg(1)).is_none());
        s.release(&chat(), slot);
        assert_eq!(s.len(), 0);
        let r = s.recover(&chat(), Some(&Position { offset: 1, epoch: Arc::from("e") }));
        assert!(!r.recovered && r.top.is_none());
    }
}
