//! The authentication handshake of a connection (spec 3.3) and its content-token joins.
//!
//! `authenticate` starts a *lookup* (the engine's auth cache, else the tokens Drupal refused
//! lately, else Drupal's `authenticate` callback, whose answer is then cached) that the connection polls beside its other events; a
//! client leaving meanwhile just drops it. Once Drupal's record is known, *completion* runs to
//! its end: the outbox is held, the socket joins its channels here and is counted by the
//! engine (presence), its content tokens are joined, each of its streams is recovered from the
//! positions the client sent (or started at the stream's current position), and the release
//! sends `authenticated`, `clientAuthenticated` and the replayed messages before the frames
//! held meanwhile that the replay did not already carry: replay and live messages are merged
//! by offset on the server, so none is sent twice.

use super::{Connection, End};
use crate::App;
use crate::conn::codec;
use crate::engine::{AuthRecord, Member, Position, Publication, Recovery, Stream};
use crate::error::{BackendError, EngineError};
use crate::hub::ConnId;
use crate::hub::node;
use crate::ops::metrics::AuthOutcome;
use drupal_push_protocol::backend::AuthenticateRequest;
use drupal_push_protocol::drupal::{self, ClientAuthData};
use drupal_push_protocol::frames::{Authenticate, Position as WirePosition};
use drupal_push_protocol::{CloseCode, ErrorCode, ServerFrame, frames};
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap};
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
    /// `authRatePerAddress` exceeded.
    RateLimited,
}

/// Drupal's record for the token, and whether it came from the auth cache.
type Found = (Arc<AuthRecord>, bool);
type Lookup = Pin<Box<dyn Future<Output = Result<Found, LookupError>> + Send>>;

/// What the client asked for besides authentication.
pub(super) struct Request {
    content_tokens: BTreeMap<String, String>,
    /// Present after a reconnect: the last position seen per stream.
    positions: Option<BTreeMap<String, WirePosition>>,
}

pub(super) enum Phase {
    AwaitingAuth,
    Authenticating { token: Arc<str>, request: Box<Request>, lookup: Lookup },
    Authenticated,
}

/// The pending lookup's result (never resolves in other phases).
pub(super) async fn lookup(phase: &mut Phase) -> Result<Found, LookupError> {
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
            self.app.metrics.authentication(AuthOutcome::Rejected);
            return Some(End::Close(CloseCode::AUTH_REJECTED));
        }
        let token: Arc<str> = Arc::from(auth.auth_token.as_str());
        let request = AuthenticateRequest::new(&auth, self.socket_id.clone());
        let (engine, backend, key) = (self.app.engine.clone(), self.app.backend.clone(), token.clone());
        let (app, client) = (self.app.clone(), self.client);
        let lookup: Lookup = Box::pin(async move {
            if let Some(record) = engine.cached_auth(&key).await.map_err(LookupError::Engine)? {
                return Ok((record, true));
            }
            // Drupal refused this token moments ago: the same answer, without asking again.
            if backend.recently_rejected(&key) {
                return Err(LookupError::Backend(BackendError::InvalidToken));
            }
            // Only authentications that reach Drupal count against the per-address rate.
            if !app.admission.allow_auth(client) {
                return Err(LookupError::RateLimited);
            }
            let answer = backend.authenticate(request, client).await.map_err(LookupError::Backend)?;
            let record = Arc::new(AuthRecord::from(answer));
            engine.cache_auth(key, record.clone()).await.map_err(LookupError::Engine)?;
            Ok((record, false))
        });
        let request = Box::new(Request { content_tokens: auth.content_tokens, positions: auth.positions });
        self.phase = Phase::Authenticating { token, request, lookup };
        None
    }

    pub(super) async fn on_auth_lookup(&mut self, result: Result<Found, LookupError>) -> Option<End> {
        let Phase::Authenticating { token, request, .. } =
            std::mem::replace(&mut self.phase, Phase::AwaitingAuth)
        else {
            return None;
        };
        self.app.metrics.authentication(outcome(&result));
        match result {
            Ok((record, _)) => self.complete(token, record, *request).await,
            Err(LookupError::Backend(BackendError::InvalidToken)) => {
                tracing::info!(token = %crate::ids::redact(&token), "authentication refused by Drupal");
                Some(End::Close(CloseCode::AUTH_REJECTED))
            }
            Err(LookupError::RateLimited) => Some(End::Close(CloseCode::RATE_LIMITED)),
            Err(LookupError::Backend(e @ (BackendError::Busy | BackendError::AddressBusy))) => {
                // The backend client logs a full queue once; one line per refused client would flood.
                tracing::debug!(error = %e, "authentication refused: backend queue full");
                Some(End::Close(e.close_code()))
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

    async fn complete(&mut self, token: Arc<str>, record: Arc<AuthRecord>, request: Request) -> Option<End> {
        let app = self.app.clone();
        let member = Member { uid: record.uid, token };
        self.outbox.hold();
        let Some(changes) = app.hub.attach(self.id, &member, &record.channels, &record.presence_uids) else {
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
        let mut notices = Vec::new();
        let mut over_budget = 0usize;
        for (channel, content_token) in request.content_tokens {
            if !self.take_join() {
                over_budget += 1;
                continue;
            }
            if let Ok(notice) = join_token_channel(&app, self.id, &member, &channel, &content_token).await {
                notices.extend(notice.map(|n| (Stream::Token(Arc::from(channel.as_str())), n)));
                joined.insert(channel, content_token);
            }
        }
        if over_budget > 0 {
            tracing::info!(
                left_out = over_budget,
                "authenticate: contentTokens over tokenJoinBurstPerSocket were not joined"
            );
        }
        let mut streams: Vec<Stream> = Vec::new();
        for c in &record.channels {
            let s = Stream::Channel(Arc::from(c.as_str()));
            if !streams.contains(&s) {
                streams.push(s);
            }
        }
        streams.extend(joined.keys().map(|c| Stream::Token(Arc::from(c.as_str()))));
        streams.push(Stream::Broadcast);
        let recovered = async {
            let r = recover(&app, &streams, request.positions.as_ref()).await?;
            // Publications recorded before the positions were read reach this node (and so the
            // held outbox, where the merge drops what the replay carries) before the release.
            app.engine.settle().await?;
            Ok::<_, EngineError>(r)
        };
        let recovery = match recovered.await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "authentication failed: engine trouble");
                return Some(End::Close(CloseCode::BACKEND_UNAVAILABLE));
            }
        };
        let online = match (&request.positions, record.uid.is_anonymous()) {
            (Some(_), false) => app.engine.online_watched(record.uid).await.ok(),
            _ => None,
        };
        let ack = ServerFrame::Authenticated {
            socket_id: self.socket_id.clone(),
            uid: record.uid,
            channels: record.channels.clone(),
            streams: recovery.positions,
            recovered: recovery.recovered,
            online,
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
        let mut first = vec![codec::text_frame(&ack.encode()), codec::text_frame(&authenticated)];
        first.extend(recovery.replay.iter().map(|p| node::publication_frame(p).frame));
        let tops = recovery.tops;
        // Join notices go out after the start positions are set, so the joiner gets its own.
        for (stream, notice) in notices {
            if let Err(e) = app.engine.publish(stream, notice).await {
                tracing::warn!(error = %e, "could not publish a join notice");
            }
        }
        self.outbox.release(first, |held| match &held.tag {
            Some(tag) => tops.get(&*tag.stream).is_none_or(|top| tag.offset > *top),
            None => true,
        });
        tracing::debug!(uid = %record.uid, replayed = recovery.replay.len(), "authenticated");
        None
    }

    /// Takes one content-token join from the socket's budget; false when it is spent.
    fn take_join(&mut self) -> bool {
        let cfg = &self.app.settings.conn;
        let (rate, burst) = (cfg.token_join_rate, f64::from(cfg.token_join_burst));
        crate::edge::limits::take_per_socket(&mut self.joins, rate, burst, std::time::Instant::now())
    }

    /// `join-token-channel` from the client.
    pub(super) async fn on_join_token_channel(&mut self, channel: &str, token: &str) {
        let Some(member) = self.member.clone() else {
            self.reply_error(ErrorCode::NotAuthenticated, "join-token-channel needs an authenticated socket");
            return;
        };
        if !self.take_join() {
            let cfg = &self.app.settings.conn;
            self.reply_error(
                ErrorCode::RateLimited,
                format!(
                    "channel {channel:?}: more than {} content-token channel joins per second (bursts of {}): \
                     this one was dropped",
                    cfg.token_join_rate, cfg.token_join_burst
                ),
            );
            return;
        }
        let app = self.app.clone();
        let notice = match join_token_channel(&app, self.id, &member, channel, token).await {
            Ok(notice) => notice,
            Err(e) => {
                self.reply_error(e.error_code(), format!("channel {channel:?}: {e}"));
                return;
            }
        };
        let stream = Stream::Token(Arc::from(channel));
        if let Ok(Recovery { top: Some(top), .. }) = app.engine.recover(&stream, None).await {
            self.outbox.push(node::joined_frame(&stream, &top));
        }
        if let Some(notice) = notice {
            if let Err(e) = app.engine.publish(stream, notice).await {
                tracing::warn!(error = %e, "could not publish a join notice");
            }
        }
    }
}

/// How a lookup ended, for `drupal_push_authentications_total`.
fn outcome(result: &Result<Found, LookupError>) -> AuthOutcome {
    match result {
        Ok((_, true)) => AuthOutcome::Cached,
        Ok((_, false)) => AuthOutcome::Ok,
        Err(LookupError::Backend(BackendError::InvalidToken)) => AuthOutcome::Rejected,
        Err(LookupError::Backend(BackendError::Busy | BackendError::AddressBusy)) => AuthOutcome::BackendBusy,
        Err(LookupError::Backend(_)) => AuthOutcome::BackendError,
        Err(LookupError::RateLimited) => AuthOutcome::RateLimited,
        Err(LookupError::Engine(_)) => AuthOutcome::EngineError,
    }
}

/// Checks the token with the engine (which counts the member in), then adds the socket to the
/// channel here: a socket is in the local group only with a token the engine accepted, so a
/// refused join never sees a message of the channel. Returns the join notice to publish when
/// the member is new to the channel. Only this connection's task changes its token channels
/// (the hub's detach runs in it too), so the socket cannot leave or join between the check and
/// the local join.
async fn join_token_channel(
    app: &App,
    id: ConnId,
    member: &Member,
    channel: &str,
    token: &str,
) -> Result<Option<Arc<RawValue>>, EngineError> {
    if app.hub.in_token_channel(id, channel) != Some(false) {
        return Ok(None);
    }
    let notice = app.engine.join_token_channel(channel, token, member).await?;
    if !app.hub.join_token_channel(id, channel, token) {
        tracing::error!(channel, "a socket left between its token check and its local join");
    }
    Ok(notice)
}

/// What a (re)authenticating socket gets across its streams.
struct Recovered {
    /// Start positions of the streams not recovered.
    positions: BTreeMap<String, WirePosition>,
    /// Outcome per stream the client sent a position for.
    recovered: BTreeMap<String, bool>,
    /// Missed messages of the recovered streams, each stream in order.
    replay: Vec<Publication>,
    /// Per stream, the offset up to which the replay or the start position covers: frames
    /// held meanwhile at or below it are not sent again.
    tops: HashMap<String, u64>,
}

async fn recover(
    app: &App,
    streams: &[Stream],
    positions: Option<&BTreeMap<String, WirePosition>>,
) -> Result<Recovered, EngineError> {
    let mut out = Recovered {
        positions: BTreeMap::new(),
        recovered: BTreeMap::new(),
        replay: Vec::new(),
        tops: HashMap::new(),
    };
    for stream in streams {
        let key = stream.key();
        let since = positions.and_then(|p| p.get(&key)).map(Position::from);
        let r = app.engine.recover(stream, since.as_ref()).await?;
        if since.is_some() {
            out.recovered.insert(key.clone(), r.recovered);
        }
        let Some(top) = r.top else { continue };
        out.tops.insert(key.clone(), top.offset);
        if r.recovered {
            out.replay.extend(r.replay);
        } else {
            out.positions.insert(key, top.into());
        }
    }
    Ok(out)
}
