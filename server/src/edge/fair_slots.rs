//! The request slots of authentications and presence notices to Drupal, shared fairly between
//! client addresses: at most `backend.concurrency` requests run at once; a caller that finds
//! every slot busy waits in its *lane* (one per client [`address_key`], one for the notices),
//! and each slot that frees up goes to the next lane in turn (round robin), so a valid client
//! from one address is served after at most one request of each other waiting address, however
//! many sockets those keep queued.
//!
//! Bounds: authentications wait `backend.queueLength` at most in all, and one address at most
//! its share (`backend.queueSharePerAddress` of the queue); a caller over either bound is
//! refused at once ([`Refused`]; its client is closed with 4100 and backs off). Notices are not
//! bounded and not counted as queued authentications: they are bounded by the users online
//! (one per user at a time, see [`crate::drupal::notices`]).
//!
//! Why lanes rather than one queue: see ARCHITECTURE.md, Decisions.

use crate::edge::limits::address_key;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Who waits: a client address, or the presence notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    Address(IpAddr),
    Notices,
}

impl Lane {
    /// The lane of a client address (its [`address_key`]).
    pub fn of(client: IpAddr) -> Lane {
        Lane::Address(address_key(client))
    }
}

/// Why a caller was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `queue_length` authentications wait already.
    QueueFull,
    /// This address already has its share of the queue waiting.
    ShareFull,
}

pub struct FairSlots {
    state: Mutex<State>,
    queue_length: usize,
    share: usize,
}

#[derive(Default)]
struct State {
    free: usize,
    /// Waiters per lane, oldest first; a lane is here only while it has waiters.
    lanes: HashMap<Lane, VecDeque<oneshot::Sender<()>>>,
    /// The lanes with waiters, in the order they get the next slots.
    turns: VecDeque<Lane>,
    /// Authentications waiting (the notices' lane is not counted).
    queued: usize,
}

/// A request slot, given back when dropped.
pub struct Slot<'a>(&'a FairSlots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.release(&mut self.0.lock());
    }
}

impl FairSlots {
    /// `concurrency` slots, `queue_length` waiting authentications in all, `share` of them at
    /// most from one address (at least 1).
    pub fn new(concurrency: usize, queue_length: usize, share: usize) -> FairSlots {
        let state = State { free: concurrency, ..State::default() };
        FairSlots { state: Mutex::new(state), queue_length, share: share.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Authentications waiting now.
    pub fn queued(&self) -> usize {
        self.lock().queued
    }

    /// Slots free now.
    pub fn free(&self) -> usize {
        self.lock().free
    }

    /// A slot for `lane`, waiting for its turn when all are busy.
    pub async fn acquire(&self, lane: Lane) -> Result<Slot<'_>, Refused> {
        let rx = {
            let mut st = self.lock();
            if st.free > 0 {
                st.free -= 1;
                return Ok(Slot(self));
            }
            if lane != Lane::Notices {
                if st.queued >= self.queue_length {
                    return Err(Refused::QueueFull);
                }
                if st.lanes.get(&lane).map_or(0, VecDeque::len) >= self.share {
                    return Err(Refused::ShareFull);
                }
                st.queued += 1;
            }
            let (tx, rx) = oneshot::channel();
            let waiters = st.lanes.entry(lane).or_default();
            waiters.push_back(tx);
            if waiters.len() == 1 {
                st.turns.push_back(lane);
            }
            rx
        };
        let mut waiting = Waiting { slots: self, lane, rx: Some(rx) };
        let given = waiting.rx.as_mut().expect("set above").await;
        waiting.rx = None;
        // The sender is only dropped after a send, or with the slots themselves.
        given.map(|()| Slot(self)).map_err(|_| Refused::QueueFull)
    }

    /// Hands a freed slot to the next lane's oldest waiter, or keeps it free.
    fn release(&self, st: &mut State) {
        while let Some(lane) = st.turns.pop_front() {
            let Some(waiters) = st.lanes.get_mut(&lane) else { continue };
            let next = waiters.pop_front();
            if waiters.is_empty() {
                st.lanes.remove(&lane);
            } else {
                st.turns.push_back(lane);
            }
            let Some(next) = next else { continue };
            if lane != Lane::Notices {
                st.queued -= 1;
            }
            if next.send(()).is_ok() {
                return;
            }
        }
        st.free += 1;
    }
}

/// A caller waiting in its lane; if it is dropped first (its task ended), it leaves the lane,
/// or passes on a slot it was given meanwhile.
struct Waiting<'a> {
    slots: &'a FairSlots,
    lane: Lane,
    rx: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        rx.close();
        let mut st = self.slots.lock();
        if rx.try_recv().is_ok() {
            self.slots.release(&mut st);
            return;
        }
        let Some(waiters) = st.lanes.get_mut(&self.lane) else { return };
        let before = waiters.len();
        waiters.retain(|tx| !tx.is_closed());
        let left = before - waiters.len();
        if waiters.is_empty() {
            st.lanes.remove(&self.lane);
            let lane = self.lane;
            st.turns.retain(|l| *l != lane);
        }
        if self.lane != Lane::Notices {
            st.queued -= left;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn lane(n: u8) -> Lane {
        Lane::of(IpAddr::from([127, 0, 0, n]))
    }

    /// Spawns a waiter that records its name once it holds a slot, then holds it until told.
    fn waiter(
        slots: &Arc<FairSlots>,
        lane: Lane,
        name: &'static str,
        log: &Arc<Mutex<Vec<&'static str>>>,
    ) -> (tokio::task::JoinHandle<()>, oneshot::Sender<()>) {
        let (done, hold) = oneshot::channel::<()>();
        let (slots, log) = (slots.clone(), log.clone());
        let task = tokio::spawn(async move {
            let _slot = slots.acquire(lane).await.expect("queued");
            log.lock().unwrap().push(name);
            let _ = hold.await;
        });
        (task, done)
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    /// Security review finding 6: one FIFO queue let a few addresses keep everyone else waiting.
    #[tokio::test]
    async fn freed_slots_go_round_robin_over_the_addresses_waiting() {
        let slots = Arc::new(FairSlots::new(1, 100, 100));
        let log = Arc::new(Mutex::new(Vec::new()));
        let first = slots.acquire(lane(9)).await.unwrap();
        let mut tasks = Vec::new();
        for name in ["a1", "a2", "a3", "b1", "b2", "c1"] {
            let (task, done) = waiter(&slots, lane(name.as_bytes()[0]), name, &log);
            drop(done); // each gives its slot back as soon as it has it
            tasks.push(task);
            settle().await;
        }
        assert_eq!(slots.queued(), 6);
        drop(first);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*log.lock().unwrap(), ["a1", "b1", "c1", "a2", "b2", "a3"]);
        assert_eq!((slots.queued(), slots.free()), (0, 1));
    }

    #[tokio::test]
    async fn the_queue_and_each_address_share_are_bounded_notices_are_not() {
        let slots = Arc::new(FairSlots::new(1, 3, 2));
        let log = Arc::new(Mutex::new(Vec::new()));
        let _busy = slots.acquire(lane(1)).await.unwrap();
        let _a = [waiter(&slots, lane(1), "a1", &log), waiter(&slots, lane(1), "a2", &log)];
        settle().await;
        assert_eq!(slots.acquire(lane(1)).await.err(), Some(Refused::ShareFull), "its share is 2");
        let _b = waiter(&slots, lane(2), "b1", &log);
        settle().await;
        assert_eq!(slots.acquire(lane(3)).await.err(), Some(Refused::QueueFull), "3 wait in all");
        let _n = waiter(&slots, Lane::Notices, "n", &log);
        settle().await;
        assert_eq!(slots.queued(), 3, "notices are not queued authentications");
        let v6 = |s: &str| Lane::of(s.parse().unwrap());
        assert_eq!(v6("2001:db8::1"), v6("2001:db8::ffff:2"), "an IPv6 /64 is one lane");
    }

    #[tokio::test]
    async fn a_waiter_that_leaves_frees_its_place_and_never_takes_a_slot() {
        let slots = Arc::new(FairSlots::new(1, 10, 10));
        let log = Arc::new(Mutex::new(Vec::new()));
        let busy = slots.acquire(lane(1)).await.unwrap();
        let (gone, _) = waiter(&slots, lane(2), "gone", &log);
        let (_stays, done) = waiter(&slots, lane(3), "stays", &log);
        settle().await;
        gone.abort();
        settle().await;
        assert_eq!(slots.queued(), 1);
        drop(busy);
        settle().await;
        assert_eq!(*log.lock().unwrap(), ["stays"]);
        let _ = done.send(());
        settle().await;
        assert_eq!((slots.queued(), slots.free()), (0, 1), "no slot was lost");
    }
}
