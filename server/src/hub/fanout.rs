//! The one fan-out path: channel publishes, broadcasts and content-token messages all push one
//! pre-encoded [`Batch`] (the frames of the stream's publications that waited for the same
//! turn, usually one) to a snapshot of outboxes, outside the hub lock.
//!
//! Each push is a non-blocking write (or a queue append), a few microseconds of kernel time; a
//! fan-out to 19,000 sockets is about a tenth of a second of work. So that it never stalls the
//! other tasks of its runtime worker (connects, pings, Drupal's REST calls), the loop yields
//! every [`CHUNK`] pushes. Callers keep the order of a stream by not starting its next fan-out
//! before this one returns (the engine's contract).
//!
//! Deliveries (frames times sockets) are counted here for `/metrics` with one atomic add of
//! the loop's total per fan-out, never one per socket.

use super::Snapshot;
use crate::conn::outbox::{Batch, Outbox, Pushed};
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;

/// Pushes between two yields: about 1-2 ms of work.
const CHUNK: usize = 256;

/// Pushes `batch` to every outbox of `to` but `skip` (the publishing socket's); returns how
/// many took it, and adds the frames delivered to `delivered`.
pub async fn fan_out(to: &Snapshot, batch: &Batch, skip: Option<&Arc<Outbox>>, delivered: &Counter) -> usize {
    let mut sent = 0;
    for (i, chunk) in to.chunks(CHUNK).enumerate() {
        if i > 0 {
            tokio::task::yield_now().await;
        }
        sent += chunk
            .iter()
            .filter(|o| !skip.is_some_and(|s| Arc::ptr_eq(s, o)))
            .filter(|o| o.push_batch(batch) == Pushed::Queued)
            .count();
    }
    delivered.inc_by((sent * batch.len()) as u64);
    sent
}
