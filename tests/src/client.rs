//! A WebSocket client speaking the drupal-push protocol, for tests. Every receive has a timeout;
//! server pings are answered and skipped.

use drupal_push_protocol::frames::{
    Authenticate, ClientMessage, ClientRequest, Envelope, ErrorReply, JoinTokenChannel, Position, Publish,
};
use drupal_push_protocol::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::BTreeMap;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Last position seen per stream key.
pub type Positions = BTreeMap<String, Position>;

/// The recovery members of an `authenticated` frame.
#[derive(Debug, Clone)]
pub struct AuthAck {
    pub streams: Positions,
    pub recovered: BTreeMap<String, bool>,
    pub online: Option<Vec<drupal_push_protocol::Uid>>,
}

impl AuthAck {
    /// Start positions merged into what the client already held.
    pub fn update(&self, positions: &mut Positions) {
        positions.extend(self.streams.clone());
    }
}

/// Moves a stream's position to a received envelope's.
pub fn track(positions: &mut Positions, envelope: &Envelope) {
    if let (Some(stream), Some(offset), Some(epoch)) =
        (envelope.stream_key(), envelope.offset, &envelope.epoch)
    {
        positions.insert(stream.to_string(), Position { offset, epoch: epoch.clone() });
    }
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Ack { id: u64, result: Value },
    Error(ErrorReply),
}

impl Reply {
    /// The ack of request `id`, a publish that reached `n` sockets.
    pub fn sent(id: u64, n: u64) -> Reply {
        Reply::Ack { id, result: serde_json::json!({ "sent": n }) }
    }

    /// The id of the request it answers.
    pub fn id(&self) -> Option<u64> {
        match self {
            Reply::Ack { id, .. } => Some(*id),
            Reply::Error(e) => e.id,
        }
    }

    /// The refusal's code; panics on an ack.
    pub fn code(&self) -> drupal_push_protocol::ErrorCode {
        match self {
            Reply::Error(e) => e.code,
            Reply::Ack { .. } => panic!("expected an error, got {self:?}"),
        }
    }
}

/// What arrived instead of what a test waited for.
#[derive(Debug)]
pub enum Event {
    Frame(ServerFrame),
    Closed(Option<u16>),
}

/// Why [`TestClient::try_connect_from`] got no WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The handshake was answered with this HTTP status instead of 101.
    Http(u16),
    /// The WebSocket opened and was closed (with this code) before the hello.
    Closed(Option<u16>),
}

pub struct TestClient {
    ws: Ws,
    pub socket_id: String,
    pub heartbeat_ms: u64,
}

impl TestClient {
    /// Connects and reads the `hello` frame.
    pub async fn connect(ws_url: &str) -> TestClient {
        let (ws, _) = tokio::time::timeout(crate::WAIT, tokio_tungstenite::connect_async(ws_url))
            .await
            .expect("connect in time")
            .expect("websocket connect");
        Self::hello(ws).await.unwrap_or_else(|code| panic!("closed ({code:?}) instead of hello"))
    }

    /// Connects from the local address `source` (a loopback address such as 127.0.0.3, which
    /// the server sees as another client address), sending the extra handshake `headers`, and
    /// reads the `hello` frame.
    pub async fn connect_from(
        ws_url: &str,
        source: std::net::IpAddr,
        headers: &[(&str, &str)],
    ) -> TestClient {
        Self::try_connect_from(ws_url, source, headers)
            .await
            .unwrap_or_else(|refused| panic!("{refused:?} instead of hello"))
    }

    /// [`TestClient::connect_from`]; `Err` when the server refuses the handshake with an HTTP
    /// status (a rate limit: 429) or closes the new WebSocket instead of saying hello (a
    /// connection limit).
    pub async fn try_connect_from(
        ws_url: &str,
        source: std::net::IpAddr,
        headers: &[(&str, &str)],
    ) -> Result<TestClient, Refused> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = ws_url.into_client_request().expect("a ws:// URL");
        for (name, value) in headers {
            let name = http::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
            request.headers_mut().append(name, value.parse().expect("a header value"));
        }
        let uri = request.uri();
        let server = format!("{}:{}", uri.host().expect("a host"), uri.port_u16().expect("a port"));
        let server: std::net::SocketAddr = server.parse().expect("an address");
        let socket = match source {
            std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .expect("a socket");
        socket.bind(std::net::SocketAddr::new(source, 0)).expect("bind the source address");
        let handshake = async {
            let tcp = socket.connect(server).await.expect("tcp connect");
            tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp)).await
        };
        match tokio::time::timeout(crate::WAIT, handshake).await.expect("connect in time") {
            Ok((ws, _)) => Self::hello(ws).await.map_err(Refused::Closed),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(Refused::Http(response.status().as_u16()))
            }
            Err(e) => panic!("websocket connect: {e}"),
        }
    }

    async fn hello(ws: Ws) -> Result<TestClient, Option<u16>> {
        let mut c = TestClient { ws, socket_id: String::new(), heartbeat_ms: 0 };
        match c.next_event().await {
            Event::Frame(ServerFrame::Hello { socket_id, heartbeat_ms, protocol }) => {
                assert_eq!(protocol, drupal_push_protocol::PROTOCOL_VERSION);
                c.socket_id = socket_id.0;
                c.heartbeat_ms = heartbeat_ms;
            }
            Event::Closed(code) => return Err(code),
            other => panic!("expected hello, got {other:?}"),
        }
        Ok(c)
    }

    /// Connects and authenticates; returns after `authenticated` and `clientAuthenticated`.
    pub async fn connect_auth(ws_url: &str, token: &str) -> TestClient {
        Self::connect_auth_with(ws_url, token, &[]).await.0
    }

    /// Connects and authenticates with content tokens; returns the client and the
    /// `clientAuthenticated` data.
    pub async fn connect_auth_with(
        ws_url: &str,
        token: &str,
        content_tokens: &[(&str, &str)],
    ) -> (TestClient, Value) {
        let mut c = Self::connect(ws_url).await;
        c.authenticate(token, content_tokens).await;
        match c.next_event().await {
            Event::Frame(ServerFrame::Authenticated { socket_id, .. }) => {
                assert_eq!(socket_id.0, c.socket_id)
            }
            other => panic!("expected authenticated, got {other:?}"),
        }
        let m = c.next_message().await;
        assert_eq!(m["callback"], "clientAuthenticated", "{m}");
        (c, m["data"].clone())
    }

    pub async fn authenticate(&mut self, token: &str, content_tokens: &[(&str, &str)]) {
        self.authenticate_at(token, content_tokens, None).await;
    }

    /// `authenticate` with the positions of a reconnect.
    pub async fn authenticate_at(
        &mut self,
        token: &str,
        content_tokens: &[(&str, &str)],
        positions: Option<&Positions>,
    ) {
        let tokens: BTreeMap<String, String> =
            content_tokens.iter().map(|(c, t)| (c.to_string(), t.to_string())).collect();
        self.send(&ClientFrame::Authenticate(Authenticate {
            auth_token: token.into(),
            content_tokens: tokens,
            positions: positions.cloned(),
            extra: Default::default(),
        }))
        .await;
    }

    /// Connects and authenticates, with `positions` after a reconnect; returns the client and
    /// the `authenticated` frame, after `clientAuthenticated`.
    pub async fn connect_at(
        ws_url: &str,
        token: &str,
        content_tokens: &[(&str, &str)],
        positions: Option<&Positions>,
    ) -> (TestClient, AuthAck) {
        let mut c = Self::connect(ws_url).await;
        c.authenticate_at(token, content_tokens, positions).await;
        let ack = match c.next_frame().await {
            ServerFrame::Authenticated { streams, recovered, online, .. } => {
                AuthAck { streams, recovered, online }
            }
            other => panic!("expected authenticated, got {other:?}"),
        };
        let m = c.next_message().await;
        assert_eq!(m["callback"], "clientAuthenticated", "{m}");
        (c, ack)
    }

    /// Drops the connection without a close frame (a network cut, as the server sees it).
    pub fn cut(self) {
        drop(self);
    }

    /// Waits up to `limit` for `authenticated` and `clientAuthenticated` after
    /// [`TestClient::authenticate`]; `Err(close code)` when the server closed instead.
    pub async fn await_auth(&mut self, limit: std::time::Duration) -> Result<(), Option<u16>> {
        match self.next_event_within(limit).await {
            Event::Frame(ServerFrame::Authenticated { .. }) => {}
            Event::Closed(code) => return Err(code),
            Event::Frame(other) => panic!("expected authenticated, got {other:?}"),
        }
        let m = self.next_message().await;
        assert_eq!(m["callback"], "clientAuthenticated", "{m}");
        Ok(())
    }

    pub async fn join_token_channel(&mut self, channel: &str, token: &str) {
        self.send(&ClientFrame::JoinTokenChannel(JoinTokenChannel {
            channel: channel.into(),
            content_token: token.into(),
        }))
        .await;
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        self.send_raw(Message::text(frame.encode())).await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        tokio::time::timeout(crate::WAIT, self.ws.send(message)).await.expect("send in time").expect("send");
    }

    /// Sends a `message` request (for Drupal).
    pub async fn send_message(&mut self, message: Value, id: Option<u64>) {
        let request = ClientRequest::Message(ClientMessage { message, id });
        self.send_raw(Message::text(request.encode())).await;
    }

    /// What members receive for `message` published by this client (user `uid`): the
    /// server adds who sent it, and `callback: []` when the message names no callback.
    pub fn sent_by_me(&self, message: Value, uid: u64) -> Value {
        let mut m = message;
        if m.get("callback").is_none_or(Value::is_null) {
            m["callback"] = serde_json::json!([]);
        }
        m["senderUid"] = serde_json::json!(uid);
        m["senderSocketId"] = serde_json::json!(self.socket_id);
        m
    }

    /// Sends a `publish` request.
    pub async fn publish(&mut self, channel: &str, message: Value, echo: bool, id: Option<u64>) {
        let request = ClientRequest::Publish(Publish { channel: channel.into(), message, echo, id });
        self.send_raw(Message::text(request.encode())).await;
    }

    /// The next frame, which must be a request's answer (`ack` or `error`, with its `id`).
    pub async fn next_reply(&mut self) -> Reply {
        let text = self.next_text().await;
        match ServerFrame::decode(&text) {
            Ok(ServerFrame::Ack { id, result }) => Reply::Ack { id, result },
            Ok(ServerFrame::Error { .. }) => {
                Reply::Error(ErrorReply::decode(&text).expect("error frames decode"))
            }
            _ => panic!("expected an ack or an error, got {text}"),
        }
    }

    /// The text of the next frame that is not a ping, exactly as the server sent it.
    pub async fn next_text(&mut self) -> String {
        loop {
            let next =
                tokio::time::timeout(crate::WAIT, self.ws.next()).await.expect("a frame arrives in time");
            match next {
                Some(Ok(Message::Text(t))) if ServerFrame::decode(&t).ok() == Some(ServerFrame::Ping) => {
                    self.send(&ClientFrame::Pong).await;
                }
                Some(Ok(Message::Text(t))) => return t.to_string(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next frame or close, answering and skipping server pings.
    pub async fn next_event(&mut self) -> Event {
        self.next_event_within(crate::WAIT).await
    }

    /// [`TestClient::next_event`], failing after `limit` instead of [`crate::WAIT`].
    pub async fn next_event_within(&mut self, limit: std::time::Duration) -> Event {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let next =
                tokio::time::timeout_at(deadline, self.ws.next()).await.expect("a frame arrives in time");
            match next {
                Some(Ok(Message::Text(t))) => {
                    let frame = ServerFrame::decode(&t).expect("server frames decode");
                    if frame == ServerFrame::Ping {
                        self.send(&ClientFrame::Pong).await;
                        continue;
                    }
                    return Event::Frame(frame);
                }
                Some(Ok(Message::Close(c))) => {
                    return Event::Closed(c.map(|c: CloseFrame| u16::from(c.code)));
                }
                Some(Ok(Message::Binary(_))) => panic!("server sent a binary frame"),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Event::Closed(None),
            }
        }
    }

    /// The next frame; panics on a close.
    pub async fn next_frame(&mut self) -> ServerFrame {
        match self.next_event().await {
            Event::Frame(f) => f,
            Event::Closed(code) => panic!("connection closed ({code:?}) while waiting for a frame"),
        }
    }

    /// The envelope of the next Drupal message (skipping `joined` notices, which tests that
    /// care about read with [`TestClient::next_frame`]).
    pub async fn next_envelope(&mut self) -> Envelope {
        loop {
            match self.next_frame().await {
                ServerFrame::Message(env) => return env,
                ServerFrame::Joined { .. } => continue,
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// The next Drupal message (the envelope's `message`).
    pub async fn next_message(&mut self) -> Value {
        self.next_envelope().await.message
    }

    /// Waits for the server's close and returns its code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.next_event().await {
                Event::Closed(code) => return code,
                Event::Frame(_) => continue,
            }
        }
    }

    /// Closes from the client side and waits for the server's reply.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(crate::WAIT, async { while let Some(Ok(_)) = self.ws.next().await {} })
            .await;
    }
}
