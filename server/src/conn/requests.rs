//! The requests of an authenticated browser (PROTOCOL.md, "Client requests"): a `message` for
//! Drupal, a `publish` to a client-writable channel. What is allowed is
//! [`crate::conn::client_requests`]'s; this file carries requests out and answers them.
//!
//! Every request is checked in the same order, each refusal an `error` frame carrying the
//! request's `id` (the connection stays open): authenticated, enabled, within the socket's rate
//! and size limits, then the checks of its kind. A `message` goes to Drupal from a task of its
//! own, so a slow Drupal never stops the connection from reading: the answer (an `ack` with
//! Drupal's JSON, or `backend-unavailable`) is pushed to the outbox when it comes, if the
//! socket is still there. A `publish` is checked for what its message may carry
//! ([`crate::conn::client_requests::Policy::check_publish`]), then goes through the engine like
//! Drupal's publishes (recorded in history, delivered on every node) and is awaited here, so
//! one socket's publishes keep their order and a socket that publishes faster than the engine
//! takes them is read no faster.

use super::Connection;
use crate::conn::client_requests::Refusal;
use crate::conn::codec;
use crate::engine::{Member, Stream};
use crate::error::BackendError;
use drupal_push_protocol::backend::ForwardedMessage;
use drupal_push_protocol::frames::{ClientRequest, ErrorReply, Publish, SENDER_SOCKET_ID, SENDER_UID};
use drupal_push_protocol::{ErrorCode, ServerFrame};
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::{Arc, Weak};

impl Connection {
    /// Answers a refused request.
    pub(super) fn refuse(&self, id: Option<u64>, (code, message): Refusal) {
        self.outbox.push(codec::text_frame(&ErrorReply { code, message, id }.encode()));
    }

    /// Carries out one request; `len` is the size of its frame.
    pub(super) async fn on_request(&mut self, request: ClientRequest, len: usize) {
        let id = request.id();
        let Some(member) = self.member.clone() else {
            let what = "requests need an authenticated socket: send authenticate first";
            return self.refuse(id, (ErrorCode::NotAuthenticated, what.into()));
        };
        let app = self.app.clone();
        if matches!(request, ClientRequest::Message(_)) && !app.settings.conn.requests.messages_enabled() {
            let what = "this server forwards no messages to Drupal (clientMessages)";
            return self.refuse(id, (ErrorCode::ClientMessagesDisabled, what.into()));
        }
        let now = tokio::time::Instant::now().into_std();
        if let Err(refusal) = app.settings.conn.requests.admit(&mut self.allowance, len, now) {
            return self.refuse(id, refusal);
        }
        let done = match request {
            ClientRequest::Message(m) => self.forward(&member, m.message, id),
            ClientRequest::Publish(p) => self.publish(&member, p).await,
        };
        if let Err(refusal) = done {
            self.refuse(id, refusal);
        }
    }

    /// Sends a browser's message to Drupal; the answer follows from the task.
    fn forward(&self, member: &Member, message: Value, id: Option<u64>) -> Result<(), Refusal> {
        let bad = |e: drupal_push_protocol::backend::ForwardError| (ErrorCode::BadFrame, e.to_string());
        self.app
            .settings
            .conn
            .requests
            .check_message_type(ForwardedMessage::type_of(&message).map_err(bad)?)?;
        let message =
            ForwardedMessage::new(message, member.uid, &member.token, self.socket_id.clone()).map_err(bad)?;
        let (backend, outbox) = (self.app.backend.clone(), Arc::downgrade(&self.outbox));
        let message_type = message.message_type.clone();
        // Tracked, so that a shutdown lets the call to Drupal finish rather than cut it.
        self.app.tracker.spawn(async move {
            let result = backend.forward(message).await;
            answer(&outbox, id, result, &message_type);
        });
        Ok(())
    }

    /// Publishes a browser's message to the other members of a client-writable channel.
    async fn publish(&mut self, member: &Member, p: Publish) -> Result<(), Refusal> {
        let app = self.app.clone();
        if !app.settings.conn.requests.is_writable(&p.channel) {
            let what = format!("channel {:?} is not client-writable (clientWritableChannels)", p.channel);
            return Err((ErrorCode::ChannelNotWritable, what));
        }
        if !app.hub.is_member(self.id, &p.channel) {
            return Err((
                ErrorCode::NotAMember,
                format!("this socket is not a member of channel {:?}", p.channel),
            ));
        }
        let Value::Object(mut message) = p.message else {
            return Err((ErrorCode::BadFrame, "the message must be a JSON object".into()));
        };
        app.settings.conn.requests.check_publish(&mut message)?;
        message.insert(SENDER_UID.into(), serde_json::to_value(member.uid).unwrap_or(Value::Null));
        message.insert(SENDER_SOCKET_ID.into(), Value::from(self.socket_id.as_str()));
        let raw = serde_json::to_string(&message).ok().and_then(|t| RawValue::from_string(t).ok());
        let Some(raw) = raw else {
            return Err((ErrorCode::BadFrame, "the message cannot be encoded".into()));
        };
        let sender = if p.echo {
            None
        } else {
            if !self.sender && app.hub.register_sender(self.id, self.socket_id.as_str()) {
                self.sender = true;
            }
            Some(Arc::from(self.socket_id.as_str()))
        };
        let stream = Stream::Channel(Arc::from(p.channel.as_str()));
        match app.engine.publish_from(stream, Arc::from(raw), sender).await {
            Ok(sent) => {
                if let Some(id) = p.id {
                    self.send(&ServerFrame::Ack { id, result: serde_json::json!({ "sent": sent }) });
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "a browser's publish failed: engine trouble");
                Err((ErrorCode::BackendUnavailable, "the message could not be published".into()))
            }
        }
    }
}

/// Pushes Drupal's answer to a forwarded message (or the failure) to the socket, if it is
/// still there.
fn answer(
    outbox: &Weak<crate::conn::outbox::Outbox>,
    id: Option<u64>,
    result: Result<Value, BackendError>,
    kind: &str,
) {
    let frame = match result {
        Ok(result) => match id {
            Some(id) => ServerFrame::Ack { id, result }.encode(),
            None => return,
        },
        Err(e) => {
            match &e {
                BackendError::MessagesBusy => tracing::debug!(error = %e, "browser message refused"),
                _ => {
                    tracing::warn!(error = %e, message_type = kind, "browser message not delivered to Drupal")
                }
            }
            let code = ErrorCode::BackendUnavailable;
            ErrorReply { code, message: client_text(&e), id }.encode()
        }
    };
    if let Some(outbox) = outbox.upgrade() {
        outbox.push(codec::text_frame(&frame));
    }
}

/// What the browser is told about a failed call to Drupal (not the backend's address).
fn client_text(e: &BackendError) -> String {
    match e {
        BackendError::Unreachable(_) => "Drupal could not be reached".into(),
        BackendError::Timeout => "Drupal did not answer in time".into(),
        BackendError::Busy | BackendError::AddressBusy | BackendError::MessagesBusy => {
            "too many messages wait for Drupal".into()
        }
        BackendError::Redirect { status, .. } | BackendError::Status(status) => {
            format!("Drupal answered HTTP {status}")
        }
        BackendError::NotJson(_) => "Drupal's answer was not JSON".into(),
        BackendError::Drupal(text) => format!("Drupal answered with an error: {text}"),
        BackendError::InvalidToken => "Drupal rejected the session".into(),
    }
}
