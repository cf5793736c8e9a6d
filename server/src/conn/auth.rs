//! The authentication handshake of a connection (spec 3.3) and its content-token joins.
//!
//! `authenticate` starts a *lookup* (the engine's auth cache, else Drupal's `authenticate`
//! callback, whose answer is then cached) that the connection polls beside its other events; a
//! client leaving meanwhile just drops it. Once Drupal's record is known, *completion* runs to
//! its end: the outbox is held, the socket joins its channels here and is counted by the
//! engine (presence), its content tokens are joined, and the release sends `authenticated` and
//! `clientAuthenticated` before anything that was published to it meanwhile.

use super::{Connection, End};
use crate::App;
use crate::conn::codec;
use crate::engine::{AuthRecord, Member};
use crate::error::{BackendError, EngineError};
use crate::hub::ConnId;
use drupal_push_protocol::backend::AuthenticateRequest;
use drupal_push_protocol::drupal::{self, ClientAuthData};
use drupal_push_protocol::frames::Authenticate;
use drupal_push_protocol::{CloseCode, ErrorCode, ServerFrame, frames};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Longest auth token accepted (Drupal's are 32-character md5 hex strings).
const MAX_AUTH_TOKEN_LEN: usize = 512;

/// Why a lookup failed.
#[derive(Debug)]
pub(super) enum LookupError {
    Backend(BackendError),
    Engine(EngineError),
}

type Lookup = Pin<Box<dyn Future<Output = Result<Arc<AuthRecord>, LookupError>> + Send>>;

pub(super) enum Phase {
    AwaitingAuth,
    Authenticating { token: Arc<str>, content_tokens: BTreeMap<String, String>, lookup: Lookup },
    Authenticated,
}

/// The pending lookup's result (never resolves in other phases).
pub(super) async fn lookup(phase: &mut Phase) -> Result<Arc<AuthRecord>, LookupError> {
    match phase {
        Phase::Authenticating { lookup, .. } => lookup.await,
        _ => std::future::pending().await,
    }
}

impl Connection {
    pub(super) fn on_authenticate(&mut self, auth: Authenticate) -> Option<End> {
        match self.phase {
            Phase::Authenticating { .. } => {
                self.reply_error(ErrorCode::AuthPending, "authentication is already being checked");
                return None;
            }
            Phase::Authenticated => {
                self.reply_error(ErrorCode::AlreadyAuthenticated, "this socket is already authenticated");
                return None;
            }
            Phase::AwaitingAuth => {}
        }
        if auth.auth_token.is_empty() || auth.auth_token.len() > MAX_AUTH_TOKEN_LEN {
            tracing::info!("authentication refused: empty or oversized auth token");
            return Some(End::Close(CloseCode::AUTH_REJECTED));
        }
        let token: Arc<str> = Arc::from(auth.auth_token.as_str());
        let request = AuthenticateRequest::new(&auth, self.socket_id.clone());
        let (engine, backend, key) = (self.app.engine.clone(), self.app.backend.clone(), token.clone());
        let lookup: Lookup = Box::pin(async move {
            if let Some(record) = engine.cached_auth(&key).await.map_err(LookupError::Engine)? {
                return Ok(record);
            }
            let answer = backend.authenticate(request).await.map_err(LookupError::Backend)?;
            let record = Arc::new(AuthRecord::from(answer));
            engine.cache_auth(key, record.clone()).await.map_err(LookupError::Engine)?;
            Ok(record)
        });
        self.phase = Phase::Authenticating { token, content_tokens: auth.content_tokens, lookup };
        None
    }

    pub(super) async fn on_auth_lookup(
        &mut self,
        result: Result<Arc<AuthRecord>, LookupError>,
    ) -> Option<End> {
        let Phase::Authenticating { token, content_tokens, .. } =
            std::mem::replace(&mut self.phase, Phase::AwaitingAuth)
        else {
            return None;
        };
        match result {
            Ok(record) => self.complete(token, record, content_tokens).await,
            Err(LookupError::Backend(BackendError::InvalidToken)) => {
                tracing::info!(token = %crate::ids::redact(&token), "authentication refused by Drupal");
                Some(End::Close(CloseCode::AUTH_REJECTED))
            }
            Err(LookupError::Backend(e)) => {
                tracing::warn!(error = %e, backend = self.app.backend.url(), "authentication failed: backend trouble");
                Some(End::Close(e.close_code()))
            }
            Err(LookupError::Engine(e)) => {
                tracing::warn!(error = %e, "authentication failed: engine trouble");
                Some(End::Close(CloseCode::BACKEND_UNAVAILABLE))
            }
        }
    }

    async fn complete(
        &mut self,
        token: Arc<str>,
        record: Arc<AuthRecord>,
        content_tokens: BTreeMap<String, String>,
    ) -> Option<End> {
        let app = self.app.clone();
        let member = Member { uid: record.uid, token };
        self.outbox.hold();
        let Some(changes) = app.hub.attach(self.id, &member, &record.channels) else {
            return Some(End::Gone);
        };
        if !changes.is_empty() {
            app.engine.changed(changes).await;
        }
        if let Err(e) = app.engine.arrived(member.clone(), record.presence_uids.clone()).await {
            tracing::warn!(error = %e, "authentication failed: engine trouble");
            return Some(End::Close(CloseCode::BACKEND_UNAVAILABLE));
        }
        self.member = Some(member.clone());
        self.phase = Phase::Authenticated;
        let mut joined = BTreeMap::new();
        for (channel, content_token) in content_tokens {
            if join_token_channel(&app, self.id, &member, &channel, &content_token).await.is_ok() {
                joined.insert(channel, content_token);
            }
        }
        let ack = ServerFrame::Authenticated {
            socket_id: self.socket_id.clone(),
            uid: record.uid,
            channels: record.channels.clone(),
        };
        let data = ClientAuthData {
            uid: record.uid,
            auth_token: member.token.to_string(),
            nodejs_valid_auth_token: true,
            client_id: self.socket_id.clone(),
            channels: record.channels.clone(),
            presence_uids: record.presence_uids.clone(),
            content_tokens: joined,
        };
        let authenticated = frames::encode_message(&drupal::client_authenticated(&data), None);
        self.outbox.release(vec![codec::text_frame(&ack.encode()), codec::text_frame(&authenticated)]);
        tracing::debug!(uid = %record.uid, "authenticated");
        None
    }

    /// `join-token-channel` from the client.
    pub(super) async fn on_join_token_channel(&mut self, channel: &str, token: &str) {
        let Some(member) = self.member.clone() else {
            self.reply_error(ErrorCode::NotAuthenticated, "join-token-channel needs an authenticated socket");
            return;
        };
        let app = self.app.clone();
        if let Err(e) = join_token_channel(&app, self.id, &member, channel, token).await {
            self.reply_error(e.error_code(), format!("channel {channel:?}: {e}"));
        }
    }
}

/// Joins a content-token channel here, then in the engine (which publishes the join notice);
/// undoes the local join when the engine refuses.
async fn join_token_channel(
    app: &App,
    id: ConnId,
    member: &Member,
    channel: &str,
    token: &str,
) -> Result<(), EngineError> {
    if !app.hub.join_token_channel(id, channel, token) {
        return Ok(());
    }
    let joined = app.engine.join_token_channel(channel, token, member).await;
    if joined.is_err() {
        app.hub.leave_token_channel(id, channel);
    }
    joined
}
