//! The memory engine against a recording node, on tokio's paused clock: grace periods and
//! expiries to the millisecond, without sockets or real waiting.

use super::*;
use crate::engine::Departure;
use std::sync::Mutex as StdMutex;

/// Records what the engine asks of the node.
#[derive(Default)]
struct Recorder {
    delivered: StdMutex<Vec<(Stream, String)>>,
    applied: StdMutex<Vec<Event>>,
    backend: StdMutex<Vec<BackendMessage>>,
}

impl Node for Recorder {
    fn deliver<'a>(&'a self, batch: &'a [Publication]) -> Fut<'a, usize> {
        Box::pin(async move {
            let mut delivered = self.delivered.lock().unwrap();
            delivered.extend(batch.iter().map(|p| (p.stream.clone(), p.message.get().to_string())));
            1
        })
    }

    fn apply(&self, event: &Event) -> Changes {
        self.applied.lock().unwrap().push(event.clone());
        Changes::default()
    }

    fn notify_backend(&self, message: BackendMessage) {
        self.backend.lock().unwrap().push(message);
    }

    fn local_sockets(&self) -> Vec<crate::engine::LocalSocket> {
        Vec::new()
    }

    fn local_channels(&self) -> Vec<Arc<str>> {
        Vec::new()
    }
}

impl Recorder {
    fn presence(&self) -> Vec<(u64, PresenceEvent)> {
        let applied = std::mem::take(&mut *self.applied.lock().unwrap());
        applied
            .into_iter()
            .filter_map(|e| match e {
                Event::Presence { uid, event, .. } => Some((uid.0, event)),
                _ => None,
            })
            .collect()
    }

    fn backend(&self) -> Vec<BackendMessage> {
        std::mem::take(&mut *self.backend.lock().unwrap())
    }
}

fn engine() -> (MemoryEngine, Arc<Recorder>) {
    engine_with_history(50)
}

fn engine_with_history(size: usize) -> (MemoryEngine, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let e = MemoryEngine::new(
        MemorySettings {
            history: HistorySettings { size, ttl: Duration::from_secs(300), max_bytes: 1 << 20 },
            presence_grace: Duration::from_millis(2000),
            auth_cache_ttl: Duration::from_secs(60),
            auth_cache_max: 3,
            content_token_ttl: Duration::from_secs(30),
        },
        rec.clone(),
    );
    (e, rec)
}

fn member(uid: u64, token: &str) -> Member {
    Member { uid: Uid(uid), token: Arc::from(token) }
}

fn departure(m: &Member, forced: bool) -> Changes {
    Changes {
        departures: vec![Departure { member: m.clone(), token_channels: Vec::new(), forced }],
        ..Changes::default()
    }
}

/// Lets spawned timer tasks run at the current (paused) instant.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn offline_exactly_after_the_grace_period() {
    let (e, rec) = engine();
    let u = member(5, "u");
    e.arrived(u.clone(), vec![Uid(7)]).await.unwrap();
    assert_eq!(rec.presence(), vec![(5, PresenceEvent::Online)]);
    assert_eq!(rec.backend(), vec![BackendMessage::UserOnline { uid: Uid(5) }]);
    e.changed(departure(&u, false)).await;
    tokio::time::advance(Duration::from_millis(1999)).await;
    settle().await;
    assert!(rec.presence().is_empty(), "offline before 2 s");
    tokio::time::advance(Duration::from_millis(2)).await;
    settle().await;
    assert_eq!(rec.presence(), vec![(5, PresenceEvent::Offline)]);
    assert_eq!(rec.backend(), vec![BackendMessage::UserOffline { uid: Uid(5) }]);
}

#[tokio::test(start_paused = true)]
async fn a_flapping_user_is_announced_once_each_way() {
    let (e, rec) = engine();
    let u = member(5, "u");
    e.arrived(u.clone(), vec![Uid(7)]).await.unwrap();
    for _ in 0..5 {
        e.changed(departure(&u, false)).await;
        tokio::time::advance(Duration::from_millis(1000)).await;
        settle().await;
        e.arrived(u.clone(), vec![Uid(7)]).await.unwrap();
    }
    e.changed(departure(&u, false)).await;
    tokio::time::advance(Duration::from_millis(2001)).await;
    settle().await;
    assert_eq!(rec.presence(), vec![(5, PresenceEvent::Online), (5, PresenceEvent::Offline)]);
    assert_eq!(rec.backend().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn kick_is_offline_at_once_and_forgets_the_cache() {
    let (e, rec) = engine();
    let u = member(5, "u");
    let record = Arc::new(AuthRecord { uid: Uid(5), channels: vec![], presence_uids: vec![] });
    e.cache_auth(u.token.clone(), record).await.unwrap();
    e.arrived(u.clone(), vec![]).await.unwrap();
    e.kick(Uid(5)).await.unwrap();
    assert!(e.cached_auth("u").await.unwrap().is_none());
    assert!(matches!(rec.applied.lock().unwrap().last(), Some(Event::Kick(Uid(5)))));
    e.changed(departure(&u, true)).await;
    assert_eq!(rec.presence(), vec![(5, PresenceEvent::Online), (5, PresenceEvent::Offline)]);
    assert_eq!(e.stats().await.unwrap().online_users, 0);
}

#[tokio::test(start_paused = true)]
async fn auth_cache_expires_after_its_ttl_and_is_bounded() {
    let (e, _rec) = engine();
    let record = Arc::new(AuthRecord { uid: Uid(1), channels: vec![], presence_uids: vec![] });
    e.cache_auth(Arc::from("t1"), record.clone()).await.unwrap();
    assert!(e.cached_auth("t1").await.unwrap().is_some());
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(e.cached_auth("t1").await.unwrap().is_none());
    for t in ["a", "b", "c", "d"] {
        e.cache_auth(Arc::from(t), record.clone()).await.unwrap();
    }
    assert!(e.cached_auth("a").await.unwrap().is_none(), "at most 3 kept: the oldest went first");
    assert!(e.cached_auth("d").await.unwrap().is_some());
    assert_eq!(e.stats().await.unwrap().cached_auth_tokens, 3);
}

#[tokio::test(start_paused = true)]
async fn token_channel_notices_are_published_on_the_token_stream() {
    let (e, rec) = engine();
    let mut record = Map::new();
    record.insert("notifyOnDisconnect".into(), Value::Bool(true));
    record.insert("token".into(), Value::from("tk"));
    e.set_content_token("room", "tk", record).await.unwrap();
    let m = member(5, "s");
    let notice = e.join_token_channel("room", "tk", &m).await.unwrap().expect("a new member");
    assert!(notice.get().contains("clientJoinedTokenChannel") && !notice.get().contains("tk"));
    assert!(e.join_token_channel("room", "tk", &m).await.unwrap().is_none(), "a second tab");
    e.publish(Stream::Token(Arc::from("room")), notice).await.unwrap();
    assert_eq!(e.join_token_channel("room", "nope", &m).await.err(), Some(EngineError::UnknownContentToken));
    for _ in 0..2 {
        let leave = Changes {
            departures: vec![Departure {
                member: m.clone(),
                token_channels: vec![(Arc::from("room"), Arc::from("tk"))],
                forced: false,
            }],
            ..Changes::default()
        };
        e.changed(leave).await;
    }
    tokio::time::advance(Duration::from_millis(2001)).await;
    settle().await;
    let delivered = rec.delivered.lock().unwrap().clone();
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    assert_eq!(delivered[0].0, Stream::Token(Arc::from("room")));
    assert!(delivered[0].1.contains("clientJoinedTokenChannel") && !delivered[0].1.contains("tk"));
    assert!(delivered[1].1.contains(r#""type":"disconnect""#));
    assert_eq!(
        e.publish(Stream::Token(Arc::from("other")), Arc::from(RawValue::from_string("{}".into()).unwrap()))
            .await,
        Err(EngineError::NoSuchTokenChannel)
    );
}

#[tokio::test]
async fn memberships_need_sockets_or_an_existing_channel() {
    let (e, rec) = engine();
    assert_eq!(e.set_membership(Who::User(Uid(1)), "c", true).await, Err(EngineError::NoActiveSessions));
    assert_eq!(e.set_membership(Who::User(Uid(1)), "c", false).await, Err(EngineError::NoSuchChannel));
    assert_eq!(
        e.set_membership(Who::Session(Arc::from("x")), "c", true).await,
        Err(EngineError::InvalidParameters)
    );
    e.arrived(member(1, "a"), vec![]).await.unwrap();
    e.set_membership(Who::User(Uid(1)), "c", true).await.unwrap();
    assert!(matches!(rec.applied.lock().unwrap().last(), Some(Event::JoinChannel { .. })));
    e.add_channel("d").await.unwrap();
    assert_eq!(e.add_channel("d").await, Err(EngineError::ChannelExists("d".into())));
    assert!(e.channel_exists("d").await.unwrap());
    e.remove_channel("d").await.unwrap();
    assert!(!e.channel_exists("d").await.unwrap());
}

#[tokio::test]
async fn one_stream_delivers_in_order_and_without_history_streams_are_forgotten() {
    let (e, rec) = engine_with_history(0);
    let publishes = (0..50).map(|i| {
        let e = e.clone();
        let stream = Stream::Channel(Arc::from("c"));
        async move { e.publish(stream, Arc::from(RawValue::from_string(i.to_string()).unwrap())).await }
    });
    for r in futures_util::future::join_all(publishes).await {
        assert_eq!(r, Ok(1));
    }
    let got: Vec<String> = rec.delivered.lock().unwrap().iter().map(|(_, m)| m.clone()).collect();
    let want: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    assert_eq!(got, want, "fair turns keep the order publishers asked in");
    assert_eq!(e.inner.streams.len(), 0);
}
