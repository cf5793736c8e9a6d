//! The recording [`Node`] of the contract suite: it keeps every batch, command and Drupal
//! notice the engine hands it (with when it came), and plays a node's part for its own
//! "sockets": a kick or logout closes the matching ones (forced departures, as the hub
//! reports them), a removed channel is closed here.

use crate::engine::{Changes, Departure, Engine, Event, Fut, LocalSocket, Member, Node, Publication, Stream};
use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::BackendMessage;
use drupal_push_protocol::drupal::PresenceEvent;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// One socket this node pretends to hold.
#[derive(Clone)]
struct Socket {
    member: Member,
    watchers: Arc<[Uid]>,
    /// Content-token channels joined, with the token used.
    token_channels: Vec<(Arc<str>, Arc<str>)>,
}

#[derive(Default)]
struct Log {
    batches: Vec<Vec<Publication>>,
    applied: Vec<(Instant, Event)>,
    backend: Vec<(Instant, BackendMessage)>,
    /// Streams with a delivery in flight, and deliveries that overlapped one of their stream.
    in_flight: HashSet<Stream>,
    overlaps: usize,
    sockets: Vec<Socket>,
    channels: HashSet<Arc<str>>,
}

#[derive(Default)]
pub(crate) struct Recorder {
    log: Mutex<Log>,
}

fn lock(m: &Mutex<Log>) -> MutexGuard<'_, Log> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn member(uid: u64, token: &str) -> Member {
    Member { uid: Uid(uid), token: Arc::from(token) }
}

impl Node for Recorder {
    fn deliver<'a>(&'a self, batch: &'a [Publication]) -> Fut<'a, usize> {
        Box::pin(async move {
            let Some(first) = batch.first() else { return 0 };
            {
                let mut log = lock(&self.log);
                if !log.in_flight.insert(first.stream.clone()) {
                    log.overlaps += 1;
                }
                log.batches.push(batch.to_vec());
            }
            // Gives a second delivery of the same stream the chance to overlap this one.
            tokio::task::yield_now().await;
            lock(&self.log).in_flight.remove(&first.stream);
            1
        })
    }

    fn apply(&self, event: &Event) -> Changes {
        let mut log = lock(&self.log);
        log.applied.push((Instant::now(), event.clone()));
        let closing = |s: &Socket| match event {
            Event::Kick(uid) => s.member.uid == *uid,
            Event::Logout(token) => s.member.token == *token,
            _ => false,
        };
        let (closed, kept): (Vec<Socket>, Vec<Socket>) = log.sockets.drain(..).partition(|s| closing(s));
        log.sockets = kept;
        let mut changes = Changes {
            departures: closed
                .into_iter()
                .map(|s| Departure { member: s.member, token_channels: s.token_channels, forced: true })
                .collect(),
            ..Changes::default()
        };
        if let Event::ChannelRemoved(channel) = event {
            if log.channels.remove(channel) {
                changes.closed.push(channel.clone());
            }
        }
        changes
    }

    fn notify_backend(&self, message: BackendMessage) {
        lock(&self.log).backend.push((Instant::now(), message));
    }

    fn local_sockets(&self) -> Vec<LocalSocket> {
        let log = lock(&self.log);
        log.sockets
            .iter()
            .map(|s| LocalSocket { member: s.member.clone(), watchers: s.watchers.clone() })
            .collect()
    }

    fn local_channels(&self) -> Vec<Arc<str>> {
        lock(&self.log).channels.iter().cloned().collect()
    }
}

impl Recorder {
    /// A socket of `uid` in session `token` authenticates here.
    pub async fn connect(&self, e: &dyn Engine, uid: u64, token: &str, watchers: &[u64]) {
        let m = member(uid, token);
        let watchers: Arc<[Uid]> = watchers.iter().map(|w| Uid(*w)).collect();
        lock(&self.log).sockets.push(Socket {
            member: m.clone(),
            watchers: watchers.clone(),
            token_channels: Vec::new(),
        });
        e.arrived(m, watchers.to_vec()).await.expect("arrived");
    }

    /// The first socket of `uid` in `token` also joined `channel` with the content token `ct`.
    pub fn joined_token_channel(&self, uid: u64, token: &str, channel: &str, ct: &str) {
        let mut log = lock(&self.log);
        let m = member(uid, token);
        if let Some(s) = log.sockets.iter_mut().find(|s| s.member == m) {
            s.token_channels.push((Arc::from(channel), Arc::from(ct)));
        }
    }

    /// One socket of `uid` in `token` goes away (a reload, a closed tab: not forced).
    pub async fn disconnect(&self, e: &dyn Engine, uid: u64, token: &str) {
        let m = member(uid, token);
        let socket = {
            let mut log = lock(&self.log);
            let i = log.sockets.iter().position(|s| s.member == m).expect("a socket to close");
            log.sockets.remove(i)
        };
        let departure = Departure { member: m, token_channels: socket.token_channels, forced: false };
        e.changed(Changes { departures: vec![departure], ..Changes::default() }).await;
    }

    /// A first local socket joined `channel` (`open`), or the last one left it.
    pub async fn channel(&self, e: &dyn Engine, channel: &str, open: bool) {
        let name: Arc<str> = Arc::from(channel);
        let mut changes = Changes::default();
        if open {
            lock(&self.log).channels.insert(name.clone());
            changes.opened.push(name);
        } else {
            lock(&self.log).channels.remove(&name);
            changes.closed.push(name);
        }
        e.changed(changes).await;
    }

    /// Every publication delivered, in delivery order.
    pub fn delivered(&self) -> Vec<Publication> {
        lock(&self.log).batches.iter().flatten().cloned().collect()
    }

    /// The publications delivered on `stream`, in delivery order.
    pub fn delivered_on(&self, stream: &Stream) -> Vec<Publication> {
        self.delivered().into_iter().filter(|p| p.stream == *stream).collect()
    }

    pub fn batches(&self) -> Vec<Vec<Publication>> {
        lock(&self.log).batches.clone()
    }

    /// Deliveries that started while another of the same stream was in flight.
    pub fn overlaps(&self) -> usize {
        lock(&self.log).overlaps
    }

    /// Every command applied, in order.
    pub fn applied(&self) -> Vec<Event> {
        lock(&self.log).applied.iter().map(|(_, e)| e.clone()).collect()
    }

    /// The presence announcements applied for `uid`: when, what, to whom.
    pub fn presence_of(&self, uid: u64) -> Vec<(Instant, PresenceEvent, Vec<Uid>)> {
        let log = lock(&self.log);
        log.applied
            .iter()
            .filter_map(|(at, e)| match e {
                Event::Presence { uid: u, event, watchers } if u.0 == uid => {
                    Some((*at, *event, watchers.to_vec()))
                }
                _ => None,
            })
            .collect()
    }

    /// Drupal notices, in order.
    pub fn backend(&self) -> Vec<BackendMessage> {
        lock(&self.log).backend.iter().map(|(_, m)| m.clone()).collect()
    }

    /// When Drupal was told `message`, if it was.
    pub fn told(&self, message: &BackendMessage) -> Option<Instant> {
        lock(&self.log).backend.iter().find(|(_, m)| m == message).map(|(at, _)| *at)
    }
}
