//! `userOnline`/`userOffline` notices to Drupal, queued per user and sent in order.
//!
//! Drupal's module keeps a presence table that `userOnline` fills and `userOffline` empties; a
//! notice that overtakes the one before it for the same user (a slow Drupal answering the first
//! while the second finds a free connection) leaves a user online forever. So each user with
//! notices to send has one queue and one task that sends them one after another, each only
//! after Drupal answered (or failed) the one before. Users are independent of each other and
//! share the backend's request slots. The hub hands notices over in the order it decided them.
//!
//! At most [`MAX_PENDING`] notices wait at once (a Drupal that is down for long); beyond that a
//! notice is dropped with a warning rather than growing without bound. A notice Drupal fails to
//! take is logged and not retried: the next transition of the user sets its state right.

use crate::drupal::backend::Backend;
use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::BackendMessage;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Notices waiting to be sent at most, over all users (each is a few dozen bytes).
pub const MAX_PENDING: usize = 100_000;

/// The per-user queues.
#[derive(Default)]
pub struct NoticeQueues {
    queues: Mutex<HashMap<Uid, VecDeque<BackendMessage>>>,
    pending: AtomicUsize,
}

impl NoticeQueues {
    /// Notices queued or being sent.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Queues `message` behind the user's earlier notices; starts the user's sender when idle.
    pub fn push(&self, backend: &Backend, message: BackendMessage) {
        let uid = match &message {
            BackendMessage::UserOnline { uid } | BackendMessage::UserOffline { uid } => *uid,
            other => {
                tracing::warn!(message = ?other, "not a presence notice; not sent");
                return;
            }
        };
        if self.pending.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(
                ?message,
                "backend notice dropped: {MAX_PENDING} notices already wait for the backend"
            );
            return;
        }
        let mut queues = self.lock();
        match queues.get_mut(&uid) {
            Some(queue) => queue.push_back(message),
            None => {
                queues.insert(uid, VecDeque::from([message]));
                tokio::spawn(send_in_order(backend.clone(), uid));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uid, VecDeque<BackendMessage>>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The user's next notice, leaving it queued while it is sent.
    fn front(&self, uid: Uid) -> Option<BackendMessage> {
        self.lock().get(&uid).and_then(|q| q.front().cloned())
    }

    /// Removes the notice just sent; forgets the user (ending its sender) when none is left.
    fn sent(&self, uid: Uid) -> bool {
        let mut queues = self.lock();
        let more = match queues.get_mut(&uid) {
            Some(queue) => {
                queue.pop_front();
                !queue.is_empty()
            }
            None => false,
        };
        if !more {
            queues.remove(&uid);
        }
        self.pending.fetch_sub(1, Ordering::Relaxed);
        more
    }
}

/// The sender of one user: runs while the user has notices queued.
async fn send_in_order(backend: Backend, uid: Uid) {
    let queues = backend.notices();
    while let Some(message) = queues.front(uid) {
        if let Err(e) = backend.post_notice(&message).await {
            tracing::warn!(error = %e, ?message, "backend notice failed");
        }
        if !queues.sent(uid) {
            break;
        }
    }
}
