//! This process as the engine sees it ([`crate::engine::Node`]): deliveries become frames
//! pushed to the hub's local sockets, commands become hub changes, and Drupal notices go to
//! the backend client. The frames of server-originated messages are built here, once per
//! delivery, never in the hub.

use crate::backend::BackendNotifier;
use crate::conn::codec;
use crate::engine::{Changes, Event, Fut, Node, Publication};
use crate::hub::{Hub, fanout};
use drupal_push_protocol::backend::BackendMessage;
use drupal_push_protocol::{drupal, frames};
use std::sync::Arc;

pub struct LocalNode {
    hub: Hub,
    notifier: Arc<dyn BackendNotifier>,
}

impl LocalNode {
    pub fn new(hub: Hub, notifier: Arc<dyn BackendNotifier>) -> LocalNode {
        LocalNode { hub, notifier }
    }
}

impl Node for LocalNode {
    fn deliver<'a>(&'a self, p: &'a Publication) -> Fut<'a, usize> {
        Box::pin(async move {
            let Some(to) = self.hub.snapshot(&p.stream) else { return 0 };
            let frame = codec::text_frame(&frames::encode_message(&p.message, p.stream.channel()));
            fanout::fan_out(&to, &frame).await
        })
    }

    fn apply(&self, event: &Event) -> Changes {
        if let Event::Presence { uid, event, watchers } = event {
            let frame = codec::text_frame(&frames::encode_message(&drupal::presence(*uid, *event), None));
            for outbox in self.hub.user_outboxes(watchers) {
                outbox.push(frame.clone());
            }
            return Changes::default();
        }
        self.hub.apply(event)
    }

    fn notify_backend(&self, message: BackendMessage) {
        self.notifier.notify(message);
    }
}
