//! Tests of the connection state machine, driven with explicit times.

use super::*;
use serde_json::{Value, json};

fn settings() -> Settings {
    Settings {
        url: "ws://h:1/ws".into(),
        auth_token: "tok".into(),
        content_tokens: [("chat".to_string(), "t1".to_string())].into_iter().collect(),
        connect_timeout_ms: 5000,
    }
}

/// A machine plus the actions of the last input, with helpers to walk it through a handshake.
struct Harness {
    m: Machine<Value>,
    now: u64,
}

impl Harness {
    fn new() -> Self {
        Harness { m: Machine::new(settings(), 7), now: 1_000 }
    }

    fn facade() -> Self {
        Harness { m: Machine::for_facade("ws://h:1/ws".into(), 5000, 7), now: 1_000 }
    }

    fn feed(&mut self, input: Input<Value>) -> Vec<Action<Value>> {
        self.m.handle(self.now, input)
    }

    fn at(&mut self, now: u64, input: Input<Value>) -> Vec<Action<Value>> {
        self.now = now;
        self.feed(input)
    }

    fn conn(&self) -> u32 {
        self.m.conn().expect("a connection is open")
    }

    /// Feeds a text frame, decoded with the protocol crate.
    fn text(&mut self, text: &str) -> Vec<Action<Value>> {
        let conn = self.conn();
        self.feed(Input::Frame { conn, frame: Incoming::decode(text) })
    }

    fn hello(&mut self) -> Vec<Action<Value>> {
        self.text(r#"{"type":"hello","socketId":"s1","heartbeatMs":25000,"protocol":1}"#)
    }

    fn authenticated(&mut self) -> Vec<Action<Value>> {
        self.text(r#"{"type":"authenticated","socketId":"s1","uid":5,"channels":["nodejs_user_5"]}"#)
    }

    fn connect(&mut self) {
        self.feed(Input::Start);
        self.hello();
        self.authenticated();
        assert_eq!(self.m.status().state, State::Connected);
    }

    fn close(&mut self, code: u16) -> Vec<Action<Value>> {
        let conn = self.conn();
        self.feed(Input::Closed { conn, code })
    }

    fn close_stopped(&mut self, code: u16) -> Vec<Action<Value>> {
        self.feed(Input::Start);
        if self.m.conn().is_none() {
            let t = self.retry_at();
            self.at(t, Input::Tick);
        }
        self.close(code)
    }

    fn retry_at(&self) -> u64 {
        match self.m.phase {
            Phase::Waiting { until, .. } => until,
            ref other => panic!("not waiting: {other:?}"),
        }
    }
}

fn sent(actions: &[Action<Value>]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { frame, .. } => Some(frame.driver_text()),
            _ => None,
        })
        .collect()
}

fn setups(actions: &[Action<Value>]) -> Vec<SetupEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Setup(e) => Some(*e),
            _ => None,
        })
        .collect()
}

fn opens(actions: &[Action<Value>]) -> usize {
    actions.iter().filter(|a| matches!(a, Action::Open { .. })).count()
}

#[test]
fn start_opens_hello_authenticates_with_all_tokens() {
    let mut h = Harness::new();
    let a = h.feed(Input::Start);
    assert_eq!(a[0], Action::Open { conn: 1, url: "ws://h:1/ws".into() });
    assert_eq!(h.m.status().state, State::Connecting);
    assert!(matches!(a.last(), Some(Action::Status(s)) if s.state == State::Connecting));
    let a = h.hello();
    assert_eq!(sent(&a), [r#"{"type":"authenticate","authToken":"tok","contentTokens":{"chat":"t1"}}"#]);
    assert_eq!(h.m.socket_id(), Some("s1"));
    assert!(setups(&a).is_empty(), "connect handlers wait for authentication");
    let a = h.authenticated();
    assert_eq!(setups(&a), [SetupEvent::Connect]);
    let s = h.m.status();
    assert_eq!((s.state, s.uid, s.attempts), (State::Connected, Some(5), 1));
}

#[test]
fn messages_are_dispatched_verbatim_errors_warn_and_pings_are_answered() {
    let mut h = Harness::new();
    h.connect();
    let a = h.text(r#"{"type":"message","channel":"c","message":{"callback":"x","data":{"n":1}}}"#);
    let message = json!({"callback":"x","data":{"n":1}});
    assert_eq!(a, [Action::Dispatch { message, channel: Some("c".into()), recorded: None }]);
    let a = h.text(r#"{"type":"error","code":"invalid-content-token","message":"no"}"#);
    assert!(matches!(&a[..], [Action::Warn(w)] if w.contains("invalid-content-token") && w.contains("no")));
    assert_eq!(sent(&h.text(r#"{"type":"ping"}"#)), [r#"{"type":"pong"}"#]);
    assert!(h.text(r#"{"type":"pong"}"#).is_empty());
    assert!(matches!(&h.text("garbage")[..], [Action::Warn(_)]));
    let a = h.text(r#"{"type":"resume","from":3}"#);
    assert!(matches!(&a[..], [Action::Warn(_)]), "unknown frame types are tolerated");
}

#[test]
fn events_of_an_old_connection_are_ignored() {
    let mut h = Harness::new();
    h.connect();
    let old = h.conn();
    h.close(1006);
    let retry = h.retry_at();
    h.at(retry, Input::Tick);
    assert_ne!(h.conn(), old);
    assert!(h.feed(Input::Closed { conn: old, code: 4002 }).is_empty());
    let frame = Incoming::decode(r#"{"type":"message","message":{}}"#);
    assert!(h.feed(Input::Frame { conn: old, frame }).is_empty());
    assert_eq!(h.m.status().state, State::Connecting);
}

#[test]
fn drops_back_off_exponentially_with_jitter_and_reconnect() {
    let mut h = Harness::new();
    h.feed(Input::Start);
    let mut delays = Vec::new();
    for _ in 0..10 {
        let start = h.now;
        h.close(1006);
        let until = h.retry_at();
        delays.push(until - start);
        assert_eq!(
            h.m.next_deadline().map(|d| d.min(until)),
            Some(until.min(h.m.failure_check_at.unwrap_or(u64::MAX)))
        );
        assert_eq!(opens(&h.at(until, Input::Tick)), 1);
    }
    let ceilings = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000];
    for (d, c) in delays.iter().zip(ceilings) {
        assert!(*d < c, "delay {d} exceeds ceiling {c}: {delays:?}");
    }
    assert!(delays[6..].iter().any(|d| *d > 16000 / 4), "jittered, not all tiny: {delays:?}");
    assert_eq!(h.m.status().attempts, 11);
}

#[test]
fn a_stable_connection_resets_the_backoff_a_flapping_one_does_not() {
    let mut h = Harness::new();
    h.feed(Input::Start);
    for _ in 0..5 {
        h.close(1006);
        let t = h.retry_at();
        h.at(t, Input::Tick);
    }
    assert_eq!(h.m.backoff.attempt(), 5);
    h.hello();
    h.authenticated();
    h.now += 1000;
    h.close(1006);
    assert_eq!(h.m.backoff.attempt(), 6, "1 s up is not stable");
    let t = h.retry_at();
    h.at(t, Input::Tick);
    h.hello();
    h.authenticated();
    h.now += STABLE_MS;
    let a = h.close(1006);
    assert_eq!(setups(&a), [SetupEvent::Disconnect]);
    assert_eq!(h.m.backoff.attempt(), 1, "reset, then one attempt used");
    assert!(h.retry_at() - h.now < 500);
}

#[test]
fn stop_codes_stop_and_token_rejection_reports_failure_once() {
    for code in [4001, 4002, 4003, 4004, 4099] {
        let mut h = Harness::new();
        h.connect();
        let a = h.close(code);
        assert_eq!(h.m.status().state, State::Stopped, "code {code}");
        let expected: &[SetupEvent] = if code == 4001 {
            &[SetupEvent::Disconnect, SetupEvent::ConnectionFailure]
        } else {
            &[SetupEvent::Disconnect]
        };
        assert_eq!(setups(&a), expected, "code {code}");
        assert_eq!(h.m.next_deadline(), None, "nothing more to do after {code}");
        assert!(h.at(h.now + 600_000, Input::Tick).is_empty());
        assert!(h.feed(Input::Wake).is_empty(), "online/visible does not revive a stopped client");
        assert_eq!(h.m.status().last_close, Some(code));
    }
}

#[test]
fn bad_token_before_the_check_reports_failure_only_once() {
    let mut h = Harness::new();
    h.feed(Input::Start);
    h.hello();
    let a = h.close(4001);
    assert_eq!(setups(&a), [SetupEvent::ConnectionFailure], "never connected: no disconnect");
    assert!(setups(&h.at(7000, Input::Tick)).is_empty());
}

#[test]
fn connection_failure_runs_at_timeout_plus_250_when_not_connected() {
    let mut h = Harness::new();
    h.feed(Input::Start);
    h.close(1006);
    assert!(h.m.next_deadline().is_some_and(|d| d <= 1_000 + 5_250));
    let mut failures = 0;
    let mut now = h.now;
    while now < 60_000 {
        now = h.m.next_deadline().expect("a deadline");
        let a = h.at(now, Input::Tick);
        if setups(&a).contains(&SetupEvent::ConnectionFailure) {
            assert_eq!(now, 6_250);
            failures += 1;
        }
        if let Some(conn) = h.m.conn() {
            h.feed(Input::Closed { conn, code: 1006 });
        }
    }
    assert_eq!(failures, 1);

    let mut ok = Harness::new();
    ok.connect();
    assert!(setups(&ok.at(6_250, Input::Tick)).is_empty(), "connected in time");
}

#[test]
fn going_away_reconnects_soon_without_growing_the_backoff() {
    let mut h = Harness::new();
    h.connect();
    h.close(1001);
    let wait = h.retry_at() - h.now;
    assert!((100..=1000).contains(&wait), "{wait}");
    assert_eq!(h.m.backoff.attempt(), 0);
}

#[test]
fn wake_reconnects_promptly_only_while_waiting() {
    let mut h = Harness::new();
    h.connect();
    assert!(h.feed(Input::Wake).is_empty());
    for _ in 0..6 {
        h.close(1006);
        let t = h.retry_at();
        h.at(t, Input::Tick);
    }
    h.close(1006);
    assert!(h.retry_at() > h.now + 100, "a long wait is pending");
    assert_eq!(opens(&h.feed(Input::Wake)), 1);
    assert_eq!(h.m.status().state, State::Connecting);
}

#[test]
fn connect_timeout_gives_up_on_a_silent_socket() {
    let mut h = Harness::new();
    h.feed(Input::Start);
    assert_eq!(h.m.next_deadline(), Some(6_000));
    let a = h.at(6_000, Input::Tick);
    assert!(matches!(a[0], Action::Close { conn: 1, reason: "connect-timeout" }));
    assert_eq!(h.m.status().state, State::Waiting);
    assert_eq!(h.m.status().last_close, Some(LOST));
}

#[test]
fn heartbeat_pings_when_idle_and_gives_up_on_silence() {
    let mut h = Harness::new();
    h.connect();
    let t0 = h.now;
    assert_eq!(h.m.next_deadline(), Some(t0 + 25_000).min(Some(6_250)));
    h.at(6_250, Input::Tick);
    assert_eq!(h.m.next_deadline(), Some(t0 + 25_000));
    assert_eq!(sent(&h.at(t0 + 25_000, Input::Tick)), [r#"{"type":"ping"}"#]);
    assert_eq!(h.m.next_deadline(), Some(t0 + 50_000));
    h.at(t0 + 40_000, Input::Tick);
    h.text(r#"{"type":"pong"}"#);
    h.at(t0 + 50_000, Input::Tick);
    h.at(t0 + 75_000, Input::Tick);
    let dead = t0 + 40_000 + 60_000;
    assert_eq!(h.m.next_deadline(), Some(dead));
    let a = h.at(dead, Input::Tick);
    assert!(matches!(a[0], Action::Close { reason: "heartbeat-timeout", .. }));
    assert_eq!(setups(&a), [SetupEvent::Disconnect]);
    assert_eq!(h.m.status().state, State::Waiting);
}

#[test]
fn sending_anything_postpones_the_ping() {
    let mut h = Harness::new();
    h.connect();
    let t0 = h.now;
    h.at(t0 + 20_000, Input::Join { channel: "x".into(), token: "t".into() });
    h.at(t0 + 25_000, Input::Tick);
    assert_eq!(h.m.next_deadline(), Some(t0 + 45_000));
}

#[test]
fn joins_are_sent_deferred_or_saved_for_the_next_authenticate() {
    let mut h = Harness::new();
    let join = |c: &str, t: &str| Input::Join { channel: c.into(), token: t.into() };
    assert!(sent(&h.feed(join("early", "e"))).is_empty(), "not started: remembered");
    h.feed(Input::Start);
    h.hello();
    assert!(sent(&h.feed(join("pending", "p"))).is_empty(), "auth in flight: deferred");
    let a = h.authenticated();
    assert_eq!(sent(&a), [r#"{"type":"join-token-channel","channel":"pending","contentToken":"p"}"#]);
    let a = h.feed(join("live", "l"));
    assert_eq!(sent(&a), [r#"{"type":"join-token-channel","channel":"live","contentToken":"l"}"#]);
    h.close(1006);
    let t = h.retry_at();
    h.at(t, Input::Tick);
    h.m.refresh(Some("tok2".into()), [("ajax".to_string(), "a".to_string())].into_iter().collect());
    let a = h.hello();
    assert_eq!(
        sent(&a),
        [concat!(
            r#"{"type":"authenticate","authToken":"tok2","contentTokens":"#,
            r#"{"chat":"t1","early":"e","pending":"p","live":"l","ajax":"a"},"positions":{}}"#
        )],
        "every token in the order the page got them; a reconnect: positions (none known)"
    );
    assert!(sent(&h.authenticated()).is_empty(), "nothing deferred this time");
}

#[test]
fn send_auth_message_restarts_a_stopped_or_waiting_client() {
    let mut h = Harness::new();
    assert_eq!(opens(&h.feed(Input::Reauthenticate)), 1, "idle: starts");
    h.hello();
    assert!(h.feed(Input::Reauthenticate).is_empty(), "auth in flight: nothing to do");
    h.close(4001);
    assert_eq!(h.m.status().state, State::Stopped);
    assert_eq!(opens(&h.feed(Input::Reauthenticate)), 1, "stopped: tries again");
    h.close(1006);
    assert_eq!(opens(&h.feed(Input::Reauthenticate)), 1, "waiting: now");
    h.hello();
    h.authenticated();
    assert!(h.feed(Input::Reauthenticate).is_empty(), "connected: nothing to do");
}

#[test]
fn status_reports_only_changes() {
    let mut h = Harness::new();
    h.connect();
    let a = h.text(r#"{"type":"message","message":{}}"#);
    assert!(!a.iter().any(|a| matches!(a, Action::Status(_))));
    let a = h.close(1006);
    let Some(Action::Status(s)) = a.last() else { panic!("no status: {a:?}") };
    assert_eq!(s.state, State::Waiting);
    assert_eq!(s.last_close, Some(1006));
    assert!(s.retry_in_ms.is_some());
    assert_eq!(s.socket_id, None);
    assert_eq!(s.uid, None);
}

fn replies(actions: &[Action<Value>]) -> Vec<(u32, Result<Value, String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply { id, result } => Some((*id, result.clone().map_err(|r| r.code))),
            _ => None,
        })
        .collect()
}

fn io(actions: &[Action<Value>]) -> Vec<IoEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Io(e) => Some(*e),
            _ => None,
        })
        .collect()
}

fn message(id: Option<u32>) -> Input<Value> {
    Input::Request(Request { channel: None, message: json!({"type": "chat", "n": 1}), echo: false, id })
}

fn publish(id: Option<u32>) -> Input<Value> {
    let message = json!({"text": "hi"});
    Input::Request(Request { channel: Some("chat_1".into()), message, echo: true, id })
}

#[test]
fn requests_are_sent_when_connected_and_answered_once() {
    let mut h = Harness::new();
    h.connect();
    assert_eq!(
        sent(&h.feed(message(Some(7)))),
        [r#"{"type":"message","message":{"n":1,"type":"chat"},"id":7}"#]
    );
    assert_eq!(
        sent(&h.feed(publish(Some(8)))),
        [r#"{"type":"publish","channel":"chat_1","message":{"text":"hi"},"echo":true,"id":8}"#]
    );
    assert_eq!(sent(&h.feed(message(None))), [r#"{"type":"message","message":{"n":1,"type":"chat"}}"#]);
    let a = h.text(r#"{"type":"ack","id":7,"result":{"ok":true}}"#);
    assert_eq!(replies(&a), [(7, Ok(json!({"ok": true})))]);
    assert!(h.text(r#"{"type":"ack","id":7,"result":1}"#).is_empty(), "answered once");
    let a = h.text(r#"{"type":"error","code":"not-a-member","message":"no","id":8}"#);
    assert_eq!(replies(&a), [(8, Err("not-a-member".into()))]);
    let a = h.text(r#"{"type":"error","code":"rate-limited","message":"slow down"}"#);
    assert!(matches!(&a[..], [Action::Warn(w)] if w.contains("rate-limited")), "no id: a warning");
    let a = h.text(r#"{"type":"error","code":"rate-limited","message":"m","id":99}"#);
    assert!(matches!(&a[..], [Action::Warn(_)]), "an unknown id: a warning");
}

#[test]
fn requests_wait_for_the_connection_and_fail_when_it_is_lost_or_stopped() {
    let mut h = Harness::new();
    assert!(sent(&h.feed(message(Some(1)))).is_empty(), "idle: queued");
    h.feed(Input::Start);
    h.hello();
    assert!(sent(&h.feed(publish(Some(2)))).is_empty(), "authenticating: queued");
    let a = h.authenticated();
    assert_eq!(sent(&a).len(), 2, "sent once authenticated: {:?}", sent(&a));
    assert!(sent(&a)[0].contains(r#""id":1"#) && sent(&a)[1].contains(r#""id":2"#), "in order");
    let a = h.close(1006);
    assert_eq!(replies(&a), [(1, Err("connection-lost".into())), (2, Err("connection-lost".into()))]);
    for i in 0..QUEUE_MAX as u32 {
        assert!(h.feed(message(Some(100 + i))).is_empty());
    }
    assert_eq!(replies(&h.feed(message(Some(9)))), [(9, Err("not-connected".into()))], "queue full");
    let a = h.close_stopped(4002);
    assert_eq!(replies(&a).len(), QUEUE_MAX, "the queue is refused when the client stops");
    assert!(replies(&a).iter().all(|(_, r)| r == &Err("not-connected".into())));
    assert_eq!(replies(&h.feed(message(Some(10)))), [(10, Err("not-connected".into()))]);
}

#[test]
fn unanswered_requests_time_out() {
    let mut h = Harness::new();
    h.connect();
    let t0 = h.now;
    h.feed(message(Some(3)));
    assert!(h.m.next_deadline().is_some_and(|d| d <= t0 + REQUEST_TIMEOUT_MS));
    assert!(replies(&h.at(t0 + REQUEST_TIMEOUT_MS - 1, Input::Tick)).is_empty());
    assert_eq!(replies(&h.at(t0 + REQUEST_TIMEOUT_MS, Input::Tick)), [(3, Err("timeout".into()))]);
    assert!(h.text(r#"{"type":"ack","id":3,"result":1}"#).is_empty(), "too late");
}

#[test]
fn the_facade_fires_connect_at_hello_and_sends_the_pages_authenticate() {
    let mut h = Harness::facade();
    h.feed(Input::Start);
    let a = h.hello();
    assert_eq!(io(&a), [IoEvent::Connect]);
    assert!(sent(&a).is_empty(), "the page authenticates");
    assert!(setups(&a).is_empty(), "the module runs its own setup handlers");
    let auth = json!({"authToken": "page", "contentTokens": {"c": "t"}});
    let a = h.feed(Input::AuthenticateWith { data: auth.clone(), id: Some(4) });
    assert_eq!(sent(&a), [r#"{"type":"authenticate","authToken":"page","contentTokens":{"c":"t"}}"#]);
    assert!(sent(&h.feed(Input::ConnectHandled)).is_empty(), "already sent");
    assert!(sent(&h.feed(Input::AuthenticateWith { data: auth, id: None })).is_empty(), "one per connection");
    let a = h.authenticated();
    assert!(a.contains(&Action::AuthAck(4)));
    assert!(setups(&a).is_empty());
    assert_eq!(h.m.status().state, State::Connected);
}

#[test]
fn the_facade_reconnects_and_falls_back_to_the_last_authenticate() {
    let mut h = Harness::facade();
    // Drupal 7's attach emits authenticate right after io.connect, before any connection.
    let early = json!({"authToken": "d7"});
    assert!(h.feed(Input::AuthenticateWith { data: early, id: None }).is_empty());
    h.feed(Input::Start);
    h.hello();
    let a = h.feed(Input::ConnectHandled);
    assert_eq!(
        sent(&a),
        [r#"{"type":"authenticate","authToken":"d7"}"#],
        "no emit from connect: the last one"
    );
    h.authenticated();
    let a = h.close(1006);
    assert_eq!(io(&a), [IoEvent::Disconnect { by_server: false }]);
    let t = h.retry_at();
    let a = h.at(t, Input::Tick);
    assert!(io(&a).is_empty());
    let a = h.close(1006);
    assert_eq!(io(&a), [IoEvent::ConnectError], "failed before the socket was up");
    let t = h.retry_at();
    h.at(t, Input::Tick);
    assert_eq!(io(&h.hello()), [IoEvent::Connect, IoEvent::Reconnect]);
    h.feed(Input::AuthenticateWith { data: json!({"authToken": "again"}), id: None });
    h.authenticated();
    let a = h.close(4002);
    assert_eq!(io(&a), [IoEvent::Disconnect { by_server: true }]);
    assert_eq!(h.m.status().state, State::Stopped);
    assert!(setups(&a).is_empty());
}

#[test]
fn the_facade_defers_joins_until_authenticated_and_stop_closes() {
    let mut h = Harness::facade();
    h.feed(Input::Start);
    h.hello();
    let join = Input::Join { channel: "room".into(), token: "t".into() };
    assert!(sent(&h.feed(join)).is_empty());
    h.feed(Input::AuthenticateWith { data: json!({"authToken": "a"}), id: None });
    assert_eq!(
        sent(&h.authenticated()),
        [r#"{"type":"join-token-channel","channel":"room","contentToken":"t"}"#]
    );
    let a = h.feed(Input::Stop);
    assert!(matches!(a[0], Action::Close { .. }));
    assert_eq!(io(&a), [IoEvent::Disconnect { by_server: false }]);
    assert_eq!(h.m.status().state, State::Stopped);
    assert_eq!(h.m.next_deadline(), None);
    assert_eq!(opens(&h.feed(Input::Reauthenticate)), 1, "socket.connect() starts again");
}

#[path = "machine_recovery_tests.rs"]
mod recovery;
