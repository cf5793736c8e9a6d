//! This process as the engine sees it ([`crate::engine::Node`]): deliveries become frames
//! pushed to the hub's local sockets, commands become hub changes, and Drupal notices go to
//! the backend client. The frames of server-originated messages are built here, once per
//! delivery, never in the hub.

use crate::conn::codec;
use crate::conn::outbox::{Batch, Part, Tag};
use crate::drupal::backend::BackendNotifier;
use crate::engine::{Changes, Event, Fut, LocalSocket, Node, Position, Publication, Stream};
use crate::hub::{Hub, fanout};
use crate::ops::metrics::Metrics;
use bytes::Bytes;
use drupal_push_protocol::backend::BackendMessage;
use drupal_push_protocol::{ServerFrame, drupal, frames};
use std::sync::Arc;

pub struct LocalNode {
    hub: Hub,
    notifier: Arc<dyn BackendNotifier>,
    metrics: Arc<Metrics>,
}

impl LocalNode {
    pub fn new(hub: Hub, notifier: Arc<dyn BackendNotifier>, metrics: Arc<Metrics>) -> LocalNode {
        LocalNode { hub, notifier, metrics }
    }
}

/// The frame of a publication (encoded once for all its recipients), tagged with its position
/// when the stream is recorded.
pub fn publication_frame(p: &Publication) -> Part {
    let stream = p.stream.envelope_key();
    let position = p.position.as_ref().map(|pos| (pos.offset, &*pos.epoch));
    let text = frames::encode_recorded(&p.message, p.stream.channel(), stream.as_deref(), position);
    let tag = p.position.as_ref().map(|pos| Tag { stream: Arc::from(p.stream.key()), offset: pos.offset });
    Part { frame: codec::text_frame(&text), tag }
}

/// The `joined` frame for a socket that entered a recorded stream after authenticating.
pub fn joined_frame(stream: &Stream, position: &Position) -> Bytes {
    let frame = ServerFrame::Joined {
        stream: stream.key(),
        offset: position.offset,
        epoch: position.epoch.to_string(),
    };
    codec::text_frame(&frame.encode())
}

impl Node for LocalNode {
    fn deliver<'a>(&'a self, batch: &'a [Publication]) -> Fut<'a, usize> {
        Box::pin(async move {
            let Some(first) = batch.first() else { return 0 };
            for p in batch {
                self.metrics.published(&p.stream);
            }
            let (Some(to), skip) = self.hub.snapshot(&first.stream, first.sender.as_deref()) else {
                return 0;
            };
            let parts = batch.iter().map(publication_frame).collect();
            fanout::fan_out(&to, &Batch::new(parts), skip.as_ref(), self.metrics.deliveries()).await
        })
    }

    fn apply(&self, event: &Event) -> Changes {
        match event {
            Event::Presence { uid, event, watchers } => {
                let frame = codec::text_frame(&frames::encode_message(&drupal::presence(*uid, *event), None));
                for outbox in self.hub.user_outboxes(watchers) {
                    outbox.push(frame.clone());
                }
                Changes::default()
            }
            Event::JoinChannel { who, channel, position } => {
                let (changes, joined) = self.hub.join_channel(who, channel);
                if let Some(position) = position {
                    let frame = joined_frame(&Stream::Channel(channel.clone()), position);
                    for outbox in joined {
                        outbox.push(frame.clone());
                    }
                }
                changes
            }
            other => self.hub.apply(other),
        }
    }

    fn notify_backend(&self, message: BackendMessage) {
        self.notifier.notify(message);
    }

    fn local_sockets(&self) -> Vec<LocalSocket> {
        self.hub.local_sockets()
    }

    fn local_channels(&self) -> Vec<Arc<str>> {
        self.hub.local_channels()
    }
}
