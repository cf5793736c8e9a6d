//! Graceful drain on shutdown: every WebSocket is closed with 1001 ("reconnect soon"), but
//! spread evenly over `drainWindowMs`, so that a node holding 19,000 browsers does not send them
//! all to the other nodes (and to Drupal, to authenticate again) in the same second. A second
//! signal (`hurry`) closes the rest at once.
//!
//! While draining, the HTTP API keeps answering (publishes still reach the sockets not closed
//! yet) and new WebSockets are refused with 503 by [`crate::edge::admission`].

use crate::hub::Hub;
use drupal_push_protocol::CloseCode;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// How often the drain closes the sockets that are due.
const TICK: Duration = Duration::from_millis(10);

/// Closes every connection of `hub` with 1001, spread over `window`; returns when all have
/// been told (at once when `hurry` completes first). Connections that arrive meanwhile are
/// closed at the end.
pub async fn drain(hub: &Hub, window: Duration, hurry: impl Future<Output = ()>) {
    let outboxes = hub.outboxes();
    let total = outboxes.len();
    tracing::info!(
        connections = total,
        window_ms = window.as_millis() as u64,
        "draining: closing connections with 1001"
    );
    let started = Instant::now();
    let mut closed = 0;
    tokio::pin!(hurry);
    while closed < total {
        let due = due_by(total, window, started.elapsed());
        for outbox in &outboxes[closed..due] {
            outbox.close(CloseCode::GOING_AWAY);
        }
        closed = due;
        if closed == total {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            () = &mut hurry => {
                tracing::info!(left = total - closed, "second signal: closing the remaining connections now");
                break;
            }
        }
    }
    hub.close_all(CloseCode::GOING_AWAY);
}

/// How many of `total` connections are due to be closed `elapsed` into a drain of `window`:
/// the first at once, the last at the end of the window.
fn due_by(total: usize, window: Duration, elapsed: Duration) -> usize {
    if elapsed >= window || total <= 1 {
        return total;
    }
    let share = elapsed.as_secs_f64() / window.as_secs_f64();
    (1 + ((total - 1) as f64 * share) as usize).min(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_are_spread_evenly_over_the_window() {
        let w = Duration::from_secs(10);
        assert_eq!(due_by(0, w, Duration::ZERO), 0);
        assert_eq!(due_by(1, w, Duration::ZERO), 1);
        assert_eq!(due_by(101, w, Duration::ZERO), 1, "the first at once");
        assert_eq!(due_by(101, w, Duration::from_secs(5)), 51);
        assert_eq!(due_by(101, w, Duration::from_millis(9_999)), 100);
        assert_eq!(due_by(101, w, w), 101, "the last at the end");
        assert_eq!(due_by(5, Duration::ZERO, Duration::ZERO), 5, "no window: all at once");
    }
}
