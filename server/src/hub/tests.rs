//! Hub tests on tokio's paused clock: grace periods and expiries to the millisecond, without
//! sockets or real waiting.

use super::*;
use crate::outbox::Limits;
use std::sync::Mutex as StdMutex;

#[derive(Default)]
struct Recorder(StdMutex<Vec<BackendMessage>>);

impl BackendNotifier for Recorder {
    fn notify(&self, message: BackendMessage) {
        self.0.lock().unwrap().push(message);
    }
}

fn hub() -> (Hub, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let settings = HubSettings {
        outbox: Limits { max_frames: 100, max_bytes: 1 << 20 },
        presence_grace: Duration::from_millis(2000),
        auth_cache_ttl: Duration::from_secs(60),
        auth_cache_max: 3,
        content_token_ttl: Duration::from_secs(30),
        max_connections: 0,
        max_connections_per_address: 0,
        heartbeat_interval: Duration::from_secs(25),
    };
    (Hub::new(settings, rec.clone()), rec)
}

fn record(uid: u64, watchers: &[u64]) -> Arc<AuthRecord> {
    Arc::new(AuthRecord {
        uid: Uid(uid),
        channels: vec![format!("nodejs_user_{uid}")],
        presence_uids: watchers.iter().copied().map(Uid).collect(),
    })
}

fn connect(hub: &Hub, token: &str, rec: Arc<AuthRecord>) -> Registered {
    let r = hub.register(IpAddr::from([127, 0, 0, 1])).unwrap();
    assert!(hub.authenticate(r.id, token, rec, &BTreeMap::new(), true));
    r.outbox.drain();
    r
}

/// The Drupal messages queued in `outbox`.
fn messages(outbox: &Outbox) -> Vec<serde_json::Value> {
    outbox
        .drain()
        .iter()
        .filter_map(|f| match ServerFrame::decode(f).unwrap() {
            ServerFrame::Message(env) => Some(env.message),
            _ => None,
        })
        .collect()
}

fn presence(uid: u64, event: &str) -> serde_json::Value {
    serde_json::json!({"presenceNotification": {"uid": uid, "event": event}})
}

/// Lets spawned timer tasks run at the current (paused) instant.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn offline_exactly_after_the_grace_period() {
    let (hub, rec) = hub();
    let w = connect(&hub, "w", record(7, &[]));
    let u = connect(&hub, "u", record(5, &[7]));
    assert_eq!(messages(&w.outbox), vec![presence(5, "online")]);
    hub.disconnect(u.id);
    tokio::time::advance(Duration::from_millis(1999)).await;
    settle().await;
    assert!(messages(&w.outbox).is_empty(), "offline before 2 s");
    tokio::time::advance(Duration::from_millis(2)).await;
    settle().await;
    assert_eq!(messages(&w.outbox), vec![presence(5, "offline")]);
    let sent = rec.0.lock().unwrap().clone();
    assert!(sent.contains(&BackendMessage::UserOnline { uid: Uid(5) }));
    assert!(sent.contains(&BackendMessage::UserOffline { uid: Uid(5) }));
}

#[tokio::test(start_paused = true)]
async fn reconnect_inside_the_grace_period_is_invisible() {
    let (hub, rec) = hub();
    let w = connect(&hub, "w", record(7, &[]));
    let u = connect(&hub, "u", record(5, &[7]));
    messages(&w.outbox);
    hub.disconnect(u.id);
    tokio::time::advance(Duration::from_millis(1500)).await;
    let _back = connect(&hub, "u", record(5, &[7]));
    tokio::time::advance(Duration::from_secs(10)).await;
    settle().await;
    assert!(messages(&w.outbox).is_empty(), "no offline and no second online");
    let about_5 = rec
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|m| !matches!(m, BackendMessage::UserOnline { uid } if uid.0 == 7))
        .count();
    assert_eq!(about_5, 1, "only the first userOnline for 5");
}

#[tokio::test(start_paused = true)]
async fn a_flapping_user_gets_one_offline_after_the_last_disconnect() {
    let (hub, _rec) = hub();
    let w = connect(&hub, "w", record(7, &[]));
    let mut u = connect(&hub, "u", record(5, &[7]));
    messages(&w.outbox);
    for _ in 0..5 {
        hub.disconnect(u.id);
        tokio::time::advance(Duration::from_millis(1000)).await;
        settle().await;
        u = connect(&hub, "u", record(5, &[7]));
    }
    hub.disconnect(u.id);
    tokio::time::advance(Duration::from_millis(2001)).await;
    settle().await;
    assert_eq!(messages(&w.outbox), vec![presence(5, "offline")]);
}

#[tokio::test(start_paused = true)]
async fn auth_cache_expires_after_its_ttl_and_is_bounded() {
    let (hub, _rec) = hub();
    let c = connect(&hub, "t1", record(1, &[]));
    hub.disconnect(c.id);
    assert!(hub.cached_auth("t1").is_some());
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(hub.cached_auth("t1").is_none());
    // At most 3 answers are kept: the oldest goes first.
    for t in ["a", "b", "c", "d"] {
        let c = connect(&hub, t, record(2, &[]));
        hub.disconnect(c.id);
    }
    assert!(hub.cached_auth("a").is_none());
    assert!(hub.cached_auth("d").is_some());
    assert_eq!(hub.stats().cached_auth_tokens, 3);
}

#[tokio::test(start_paused = true)]
async fn content_tokens_expire_only_when_unused() {
    let (hub, _rec) = hub();
    let mut rec_map = serde_json::Map::new();
    rec_map.insert("token".into(), "tk".into());
    hub.set_content_token("room", "tk", rec_map.clone());
    hub.set_content_token("room", "unused", rec_map);
    let r = hub.register(IpAddr::from([127, 0, 0, 1])).unwrap();
    let tokens = BTreeMap::from([("room".to_string(), "tk".to_string())]);
    assert!(hub.authenticate(r.id, "s", record(1, &[]), &tokens, true));
    tokio::time::advance(Duration::from_secs(31)).await;
    let s = hub.stats();
    assert_eq!(s.content_tokens["room"].tokens, 0, "the unused token expired");
    assert_eq!(s.content_tokens["room"].sockets, 1, "the used one stays while in use");
    hub.disconnect(r.id);
    tokio::time::advance(Duration::from_secs(29)).await;
    settle().await;
    assert_eq!(hub.stats().token_channels, 1, "still inside its TTL after the member left");
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(hub.stats().token_channels, 0);
}

#[tokio::test]
async fn indexes_agree_after_every_kind_of_departure() {
    let (hub, _rec) = hub();
    let a = connect(&hub, "a", record(1, &[]));
    let b = connect(&hub, "b", record(2, &[]));
    hub.add_user_to_channel("shared", Uid(1)).unwrap();
    hub.add_user_to_channel("shared", Uid(2)).unwrap();
    hub.kick_user(Uid(1));
    assert!(a.outbox.is_closed());
    assert_eq!(hub.publish(&RawValue::from_string("{}".into()).unwrap(), Target::Channel("shared")), 1);
    hub.logout("b");
    assert!(b.outbox.is_closed());
    hub.disconnect(a.id);
    hub.disconnect(b.id);
    let s = hub.stats();
    assert_eq!((s.sockets, s.pre_auth_sockets, s.channels, s.authenticated_clients), (0, 0, 0, 0));
}
