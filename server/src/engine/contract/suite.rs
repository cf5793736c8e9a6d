//! The behaviours of the engine contract, each written once against `&dyn Engine` and a
//! [`Recorder`]; `mod.rs` runs every one on both engines.

use super::recorder::member;
use super::{GRACE, HISTORY, Recorder, eventually};
use crate::engine::{
    AuthRecord, Changes, Departure, Engine, EngineStats, Event, Member, Position, Publication, Stream,
    TokenChannelDetail, Who,
};
use crate::error::EngineError;
use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::BackendMessage;
use drupal_push_protocol::drupal::PresenceEvent;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;

fn msg(text: &str) -> Arc<RawValue> {
    Arc::from(RawValue::from_string(text.to_owned()).expect("JSON"))
}

fn channel(name: &str) -> Stream {
    Stream::Channel(Arc::from(name))
}

fn token_stream(name: &str) -> Stream {
    Stream::Token(Arc::from(name))
}

fn record(uid: u64, channels: &[&str], watchers: &[u64]) -> Arc<AuthRecord> {
    Arc::new(AuthRecord {
        uid: Uid(uid),
        channels: channels.iter().map(|c| c.to_string()).collect(),
        presence_uids: watchers.iter().map(|w| Uid(*w)).collect(),
    })
}

fn token_record(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

/// The counters both engines keep alike (history bytes and cluster sockets are each engine's
/// own: see [`EngineStats`]).
#[derive(Debug, PartialEq, Default)]
struct Counts {
    online_users: usize,
    channels: usize,
    token_channels: usize,
    cached_auth_tokens: usize,
    waiting_content_tokens: usize,
    sessions: usize,
    history_messages: usize,
    nodes: usize,
}

async fn counts(e: &dyn Engine) -> Counts {
    let s: EngineStats = e.stats().await.expect("stats");
    Counts {
        online_users: s.online_users,
        channels: s.channels,
        token_channels: s.token_channels,
        cached_auth_tokens: s.cached_auth_tokens,
        waiting_content_tokens: s.waiting_content_tokens,
        sessions: s.sessions,
        history_messages: s.history_messages,
        nodes: s.nodes,
    }
}

fn offsets(publications: &[Publication]) -> Vec<u64> {
    publications.iter().map(|p| p.position.as_ref().map_or(0, |p| p.offset)).collect()
}

fn texts(publications: &[Publication]) -> Vec<String> {
    publications.iter().map(|p| p.message.get().to_owned()).collect()
}

pub(super) async fn publish_offsets_and_epoch(e: &dyn Engine, node: &Recorder) {
    let c = channel("c");
    let fresh = e.recover(&c, None).await.unwrap();
    let top = fresh.top.expect("history is on: a position");
    assert_eq!(top.offset, 0, "a new stream starts at 0");
    assert!(!fresh.recovered && fresh.replay.is_empty(), "nothing asked, nothing recovered");
    for i in 1..=3 {
        assert_eq!(e.publish(c.clone(), msg(&i.to_string())).await, Ok(1), "reached the node's one socket");
    }
    let now = e.recover(&c, None).await.unwrap().top.unwrap();
    assert_eq!(now, Position { offset: 3, epoch: top.epoch.clone() }, "one per publication, same epoch");
    let got = node.delivered_on(&c);
    assert_eq!(texts(&got), ["1", "2", "3"]);
    assert_eq!(offsets(&got), [1, 2, 3]);
    assert!(got.iter().all(|p| p.position.as_ref().unwrap().epoch == top.epoch && p.sender.is_none()));
    for other in [channel("d"), Stream::Broadcast] {
        e.publish(other.clone(), msg("\"x\"")).await.unwrap();
        assert_eq!(offsets(&node.delivered_on(&other)), [1], "{other:?} counts on its own");
    }
}

pub(super) async fn concurrent_publishes_arrive_in_offset_order(e: &dyn Engine, node: &Recorder) {
    let (a, b) = (channel("a"), channel("b"));
    let publishes = (0..60).map(|i| {
        let stream = if i % 2 == 0 { a.clone() } else { b.clone() };
        e.publish(stream, msg(&i.to_string()))
    });
    for r in futures_util::future::join_all(publishes).await {
        assert_eq!(r, Ok(1));
    }
    for s in [&a, &b] {
        let got = node.delivered_on(s);
        assert_eq!(offsets(&got), (1..=30).collect::<Vec<u64>>(), "{s:?} in offset order, each once");
        let replay = e.recover(s, Some(got[24].position.as_ref().unwrap())).await.unwrap();
        assert!(replay.recovered);
        assert_eq!(texts(&replay.replay), texts(&got[25..]), "history holds what was delivered, in order");
    }
    for batch in node.batches() {
        let first = &batch[0];
        assert!(
            batch.iter().all(|p| p.stream == first.stream && p.sender == first.sender),
            "a batch is one stream and one sender"
        );
        let o = offsets(&batch);
        assert!(o.windows(2).all(|w| w[1] == w[0] + 1), "a batch is consecutive: {o:?}");
    }
    assert_eq!(node.overlaps(), 0, "never two deliveries of one stream in flight");
}

pub(super) async fn publish_from_carries_the_sender(e: &dyn Engine, node: &Recorder) {
    let c = channel("c");
    e.publish_from(c.clone(), msg("1"), Some(Arc::from("sock-a"))).await.unwrap();
    e.publish(c.clone(), msg("2")).await.unwrap();
    e.publish_from(c.clone(), msg("3"), Some(Arc::from("sock-b"))).await.unwrap();
    let senders: Vec<Option<String>> =
        node.delivered_on(&c).iter().map(|p| p.sender.as_deref().map(str::to_owned)).collect();
    assert_eq!(senders, [Some("sock-a".into()), None, Some("sock-b".into())]);
    let since = Position { offset: 0, ..e.recover(&c, None).await.unwrap().top.unwrap() };
    let replay = e.recover(&c, Some(&since)).await.unwrap();
    assert_eq!(texts(&replay.replay), ["1", "2", "3"], "recorded like any other");
    assert!(replay.replay.iter().all(|p| p.sender.is_none()), "a replay goes to a new socket");
}

pub(super) async fn publish_to_an_unknown_token_channel(e: &dyn Engine, node: &Recorder) {
    let room = token_stream("room");
    assert_eq!(e.publish(room.clone(), msg("1")).await, Err(EngineError::NoSuchTokenChannel));
    e.set_content_token("room", "tk", token_record(json!({"token": "tk"}))).await.unwrap();
    assert_eq!(e.publish(room.clone(), msg("2")).await, Ok(1));
    assert_eq!(texts(&node.delivered()), ["2"], "the refused one went nowhere");
    assert_eq!(e.publish(token_stream("other"), msg("3")).await, Err(EngineError::NoSuchTokenChannel));
}

pub(super) async fn recover_replays_exactly_what_was_missed(e: &dyn Engine, _node: &Recorder) {
    let c = channel("c");
    for i in 1..=4 {
        e.publish(c.clone(), msg(&i.to_string())).await.unwrap();
    }
    let top = e.recover(&c, None).await.unwrap().top.unwrap();
    let at = |offset| Position { offset, epoch: top.epoch.clone() };
    let r = e.recover(&c, Some(&at(1))).await.unwrap();
    assert!(r.recovered);
    assert_eq!(r.top, Some(at(4)));
    assert_eq!(texts(&r.replay), ["2", "3", "4"]);
    assert_eq!(
        r.replay.iter().map(|p| p.position.clone().unwrap()).collect::<Vec<_>>(),
        [at(2), at(3), at(4)]
    );
    assert!(r.replay.iter().all(|p| p.stream == c));
    let up_to_date = e.recover(&c, Some(&at(4))).await.unwrap();
    assert!(up_to_date.recovered && up_to_date.replay.is_empty(), "nothing missed");
    let other_epoch = Position { offset: 1, epoch: Arc::from("not-this-one") };
    let r = e.recover(&c, Some(&other_epoch)).await.unwrap();
    assert!(!r.recovered && r.replay.is_empty(), "a wrong epoch cannot be recovered");
    assert_eq!(r.top, Some(at(4)), "but says where the stream is");
    let r = e.recover(&c, Some(&at(9))).await.unwrap();
    assert!(!r.recovered && r.replay.is_empty(), "a position past the top");
    for i in 5..=8 {
        e.publish(c.clone(), msg(&i.to_string())).await.unwrap();
    }
    // History keeps 5: offsets 4..=8. From 3 nothing is missing; from 2, offset 3 is gone.
    let r = e.recover(&c, Some(&at(3))).await.unwrap();
    assert!(r.recovered);
    assert_eq!(texts(&r.replay), ["4", "5", "6", "7", "8"]);
    assert_eq!(HISTORY, 5);
    let r = e.recover(&c, Some(&at(2))).await.unwrap();
    assert!(!r.recovered && r.replay.is_empty(), "older than the history");
    e.settle().await.expect("settle after publications");
    e.settle().await.expect("settle when idle");
}

pub(super) async fn auth_cache_expires_after_its_ttl(e: &dyn Engine, _node: &Recorder) {
    assert_eq!(e.cached_auth("t1").await, Ok(None));
    let r = record(1, &["c"], &[2]);
    e.cache_auth(Arc::from("t1"), r.clone()).await.unwrap();
    let cached_at = Instant::now();
    assert_eq!(e.cached_auth("t1").await.unwrap().as_deref(), Some(&*r), "fresh, as given");
    assert_eq!(counts(e).await.cached_auth_tokens, 1);
    let mut gone = false;
    while !gone {
        assert!(cached_at.elapsed() < super::LIMIT, "the cached answer never expired");
        gone = e.cached_auth("t1").await.unwrap().is_none();
        if !gone {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    assert!(cached_at.elapsed() >= super::AUTH_TTL.mul_f32(0.9), "expired early: {:?}", cached_at.elapsed());
    assert_eq!(counts(e).await.cached_auth_tokens, 0);
    e.add_channel("c").await.unwrap();
    assert_eq!(
        e.set_membership(Who::Session(Arc::from("t1")), "c", false).await,
        Err(EngineError::InvalidParameters),
        "an expired session without sockets is unknown"
    );
}

pub(super) async fn presence_online_then_offline_after_the_grace(e: &dyn Engine, node: &Recorder) {
    node.connect(e, 5, "s5", &[7]).await;
    assert_eq!(node.backend(), [BackendMessage::UserOnline { uid: Uid(5) }], "told Drupal once");
    let online = node.presence_of(5);
    assert_eq!(online.len(), 1);
    assert_eq!((online[0].1, online[0].2.clone()), (PresenceEvent::Online, vec![Uid(7)]));
    assert_eq!(e.online_watched(Uid(7)).await.unwrap(), [Uid(5)]);
    assert!(e.online_watched(Uid(8)).await.unwrap().is_empty());
    node.connect(e, 5, "s5b", &[7]).await;
    assert_eq!(node.presence_of(5).len(), 1, "a second socket is no news");
    let c = counts(e).await;
    assert_eq!((c.online_users, c.sessions), (1, 2));
    node.disconnect(e, 5, "s5b").await;
    node.connect(e, 0, "anon", &[]).await;
    assert_eq!(counts(e).await.online_users, 1, "anonymous sockets are nobody's presence");
    let left = Instant::now();
    node.disconnect(e, 5, "s5").await;
    eventually("user 5 offline", || node.presence_of(5).len() == 2).await;
    let off = &node.presence_of(5)[1];
    assert_eq!((off.1, off.2.clone()), (PresenceEvent::Offline, vec![Uid(7)]));
    assert!(off.0 - left >= GRACE, "offline after the grace, not {:?}", off.0 - left);
    eventually("Drupal told", || node.backend().len() == 2).await;
    assert_eq!(node.backend()[1], BackendMessage::UserOffline { uid: Uid(5) });
    assert!(e.online_watched(Uid(7)).await.unwrap().is_empty());
    let c = counts(e).await;
    assert_eq!((c.online_users, c.sessions), (0, 1), "the anonymous session stays");
}

pub(super) async fn presence_arrival_within_the_grace_cancels_offline(e: &dyn Engine, node: &Recorder) {
    node.connect(e, 5, "s5", &[7]).await;
    node.connect(e, 6, "s6", &[7]).await;
    node.disconnect(e, 5, "s5").await;
    node.connect(e, 5, "s5", &[7]).await;
    // User 6 leaves after user 5 did: once 6 is offline, 5's grace has run out too.
    node.disconnect(e, 6, "s6").await;
    eventually("user 6 offline", || node.presence_of(6).len() == 2).await;
    assert_eq!(node.presence_of(5).len(), 1, "back inside the grace: neither offline nor online again");
    eventually("Drupal told of 6", || node.told(&BackendMessage::UserOffline { uid: Uid(6) }).is_some())
        .await;
    assert_eq!(
        node.backend()
            .iter()
            .filter(|m| matches!(m, BackendMessage::UserOffline { uid } if uid.0 == 5))
            .count(),
        0
    );
    assert_eq!(node.backend().len(), 3, "online 5, online 6, offline 6: {:?}", node.backend());
    assert_eq!(e.online_watched(Uid(7)).await.unwrap(), [Uid(5)]);
    assert_eq!(counts(e).await.online_users, 1);
}

pub(super) async fn presence_list_changes_who_watches(e: &dyn Engine, node: &Recorder) {
    e.cache_auth(Arc::from("s5"), record(5, &[], &[7])).await.unwrap();
    node.connect(e, 5, "s5", &[7]).await;
    e.set_presence_list(Uid(5), vec![Uid(8), Uid(9)]).await.unwrap();
    assert!(e.online_watched(Uid(7)).await.unwrap().is_empty(), "7 no longer watches 5");
    assert_eq!(e.online_watched(Uid(8)).await.unwrap(), [Uid(5)]);
    node.connect(e, 5, "s5b", &[8, 9]).await;
    node.disconnect(e, 5, "s5b").await;
    let cached = e.cached_auth("s5").await.unwrap().expect("still cached");
    assert_eq!(cached.presence_uids, [Uid(8), Uid(9)], "the next reconnect gets the new list");
    e.changed(Changes {
        departures: vec![Departure { member: member(5, "s5"), token_channels: vec![], forced: true }],
        ..Changes::default()
    })
    .await;
    let off = node.presence_of(5);
    assert_eq!(off.len(), 2, "a forced departure is offline at once");
    assert_eq!((off[1].1, off[1].2.clone()), (PresenceEvent::Offline, vec![Uid(8), Uid(9)]));
    e.set_presence_list(Uid(6), vec![Uid(8)]).await.expect("a user offline is fine too");
    assert!(e.online_watched(Uid(8)).await.unwrap().is_empty());
}

/// A join, reduced to whether it returned a notice.
async fn joined(e: &dyn Engine, channel: &str, token: &str, m: &Member) -> Result<bool, EngineError> {
    e.join_token_channel(channel, token, m).await.map(|notice| notice.is_some())
}

pub(super) async fn content_token_joins(e: &dyn Engine, _node: &Recorder) {
    let rec = token_record(json!({"channel": "room", "token": "tk", "notifyOnDisconnect": true, "x": 1}));
    e.set_content_token("room", "tk", rec).await.unwrap();
    let c = counts(e).await;
    assert_eq!((c.token_channels, c.waiting_content_tokens), (1, 1));
    let m5 = member(5, "s5");
    let notice = e.join_token_channel("room", "tk", &m5).await.unwrap().expect("a new member");
    let notice: Value = serde_json::from_str(notice.get()).unwrap();
    assert_eq!(notice["callback"], "clientJoinedTokenChannel");
    assert_eq!(notice["data"]["x"], 1);
    assert!(notice["data"].get("token").is_none(), "the secret is not published: {notice}");
    assert_eq!(counts(e).await.waiting_content_tokens, 0);
    assert_eq!(joined(e, "room", "tk", &m5).await, Ok(false), "the same session again: no notice");
    assert_eq!(joined(e, "room", "nope", &m5).await, Err(EngineError::UnknownContentToken));
    assert_eq!(joined(e, "hall", "tk", &m5).await, Err(EngineError::UnknownContentToken));
    assert_eq!(joined(e, "room", "tk", &member(6, "s6")).await, Err(EngineError::OtherSession));
    e.set_content_token("room", "tk-anon", token_record(json!({"token": "tk-anon"}))).await.unwrap();
    assert!(e.join_token_channel("room", "tk-anon", &member(0, "anon")).await.unwrap().is_some());
    let users = e.token_channel_users("room").await.unwrap();
    assert_eq!(users.uids, [Uid(5)]);
    assert_eq!(users.auth_tokens, ["anon"], "anonymous members by session");
    assert_eq!(e.token_channel_users("hall").await.unwrap(), Default::default());
    let details = e.token_channel_details().await.unwrap();
    assert_eq!(details, [TokenChannelDetail { channel: "room".into(), waiting: 0, sockets: 3 }]);
    let c = counts(e).await;
    assert_eq!((c.token_channels, c.waiting_content_tokens), (1, 0));
}

pub(super) async fn content_token_leave_notices(e: &dyn Engine, node: &Recorder) {
    let room = token_stream("room");
    for (tk, notify) in [("tk5", true), ("tk6", true), ("tk7", false)] {
        let rec = token_record(json!({"token": tk, "notifyOnDisconnect": notify}));
        e.set_content_token("room", tk, rec).await.unwrap();
    }
    for (uid, tk) in [(5, "tk5"), (5, "tk5"), (6, "tk6"), (7, "tk7")] {
        let session = format!("s{uid}");
        node.connect(e, uid, &session, &[]).await;
        e.join_token_channel("room", tk, &member(uid, &session)).await.unwrap();
        node.joined_token_channel(uid, &session, "room", tk);
    }
    assert_eq!(e.token_channel_users("room").await.unwrap().uids, [Uid(5), Uid(6), Uid(7)]);
    node.disconnect(e, 7, "s7").await;
    node.disconnect(e, 5, "s5").await;
    let left = Instant::now();
    node.disconnect(e, 5, "s5").await;
    eventually("the leave notice of 5", || !node.delivered_on(&room).is_empty()).await;
    let notices = node.delivered_on(&room);
    let notice: Value = serde_json::from_str(notices[0].message.get()).unwrap();
    assert_eq!(notice["data"], json!({"uid": 5, "type": "disconnect"}), "{notice}");
    assert_eq!(notice["channel"], "room");
    assert!(Instant::now() - left >= GRACE, "after the grace (a reload would have come back)");
    assert_eq!(e.token_channel_users("room").await.unwrap().uids, [Uid(6)]);
    let kicked = Instant::now();
    e.kick(Uid(6)).await.unwrap();
    eventually("the leave notice of 6", || node.delivered_on(&room).len() == 2).await;
    assert!(kicked.elapsed() < GRACE, "a kick does not wait for the grace");
    let all = texts(&node.delivered_on(&room));
    assert!(all[1].contains(r#""uid":6"#), "{all:?}");
    assert!(!all.iter().any(|t| t.contains(r#""uid":7"#)), "7 did not ask for notices: {all:?}");
    assert_eq!(counts(e).await.waiting_content_tokens, 3, "all three tokens idle again");
}

pub(super) async fn content_token_rejoin_within_the_grace(e: &dyn Engine, node: &Recorder) {
    let room = token_stream("room");
    for (uid, tk) in [(5, "tk5"), (6, "tk6")] {
        let session = format!("s{uid}");
        e.set_content_token("room", tk, token_record(json!({"token": tk, "notifyOnDisconnect": true})))
            .await
            .unwrap();
        node.connect(e, uid, &session, &[]).await;
        assert_eq!(joined(e, "room", tk, &member(uid, &session)).await, Ok(true));
        node.joined_token_channel(uid, &session, "room", tk);
    }
    node.disconnect(e, 5, "s5").await;
    node.connect(e, 5, "s5", &[]).await;
    assert_eq!(
        joined(e, "room", "tk5", &member(5, "s5")).await,
        Ok(false),
        "back inside the grace: no notice"
    );
    node.joined_token_channel(5, "s5", "room", "tk5");
    // 6 leaves after 5 did: once 6's notice is out, 5's grace has run out too.
    node.disconnect(e, 6, "s6").await;
    eventually("the leave notice of 6", || !node.delivered_on(&room).is_empty()).await;
    let notices = texts(&node.delivered_on(&room));
    assert_eq!(notices.len(), 1, "only 6 left: {notices:?}");
    assert!(notices[0].contains(r#""uid":6"#), "{notices:?}");
    assert_eq!(e.token_channel_users("room").await.unwrap().uids, [Uid(5)]);
}

pub(super) async fn unused_content_tokens_expire(e: &dyn Engine, node: &Recorder) {
    let set = Instant::now();
    for (ch, tk) in [("room", "old"), ("room", "used"), ("hall", "lone"), ("lobby", "solo")] {
        e.set_content_token(ch, tk, token_record(json!({"token": tk}))).await.unwrap();
    }
    node.connect(e, 5, "s5", &[]).await;
    assert_eq!(joined(e, "room", "used", &member(5, "s5")).await, Ok(true));
    node.joined_token_channel(5, "s5", "room", "used");
    let ttl = super::SHORT_TOKEN_TTL.content_token_ttl;
    // Expiry is wall clock in both engines: nothing to poll but the clock itself.
    eventually("the tokens' TTL to pass", || set.elapsed() > ttl + GRACE / 4).await;
    assert_eq!(
        e.publish(token_stream("lobby"), msg("0")).await,
        Err(EngineError::NoSuchTokenChannel),
        "its only token expired, untouched since: the channel is gone"
    );
    let m6 = member(6, "s6");
    assert_eq!(joined(e, "room", "old", &m6).await, Err(EngineError::UnknownContentToken), "expired unused");
    assert_eq!(joined(e, "hall", "lone", &m6).await, Err(EngineError::UnknownContentToken));
    assert_eq!(e.token_channel_users("room").await.unwrap().uids, [Uid(5)], "a token in use stays");
    let c = counts(e).await;
    assert_eq!((c.token_channels, c.waiting_content_tokens), (1, 0), "hall had only an expired token");
    assert_eq!(
        e.publish(token_stream("hall"), msg("1")).await,
        Err(EngineError::NoSuchTokenChannel),
        "its only token expired: the channel is gone"
    );
    assert_eq!(e.publish(token_stream("room"), msg("2")).await, Ok(1));
    node.disconnect(e, 5, "s5").await;
    let idle = Instant::now();
    assert_eq!(counts(e).await.waiting_content_tokens, 1, "unused again");
    eventually("the idle token's TTL to pass", || idle.elapsed() > ttl + GRACE / 4).await;
    assert_eq!(joined(e, "room", "used", &member(5, "s5")).await, Err(EngineError::UnknownContentToken));
    assert_eq!(e.publish(token_stream("room"), msg("3")).await, Err(EngineError::NoSuchTokenChannel));
    let c = counts(e).await;
    assert_eq!((c.token_channels, c.waiting_content_tokens), (0, 0));
}

pub(super) async fn channels_added_opened_and_removed(e: &dyn Engine, node: &Recorder) {
    assert!(!e.channel_exists("c").await.unwrap());
    e.add_channel("c").await.unwrap();
    assert_eq!(e.add_channel("c").await, Err(EngineError::ChannelExists("c".into())));
    assert!(e.channel_exists("c").await.unwrap());
    node.channel(e, "c", true).await;
    node.channel(e, "c", false).await;
    assert!(e.channel_exists("c").await.unwrap(), "made by channel/add: stays when empty");
    node.channel(e, "d", true).await;
    assert!(e.channel_exists("d").await.unwrap(), "a channel with a member exists");
    assert_eq!(e.add_channel("d").await, Err(EngineError::ChannelExists("d".into())));
    assert_eq!(counts(e).await.channels, 2);
    e.remove_channel("c").await.unwrap();
    assert!(!e.channel_exists("c").await.unwrap());
    assert_eq!(e.remove_channel("c").await, Err(EngineError::NoSuchChannel));
    node.channel(e, "x", true).await;
    node.channel(e, "x", false).await;
    assert!(!e.channel_exists("x").await.unwrap(), "an implicit channel goes with its last member");
    e.remove_channel("d").await.unwrap();
    let removed: Vec<String> = node
        .applied()
        .iter()
        .filter_map(|ev| match ev {
            Event::ChannelRemoved(c) => Some(c.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(removed, ["c", "d"], "each removal reached the node");
    assert!(!e.channel_exists("d").await.unwrap());
    assert_eq!(counts(e).await.channels, 0);
}

/// The last command applied, which must be a membership change.
fn last_membership(node: &Recorder) -> Event {
    node.applied()
        .into_iter()
        .rev()
        .find(|ev| matches!(ev, Event::JoinChannel { .. } | Event::LeaveChannel { .. }))
        .expect("a membership command")
}

pub(super) async fn membership_of_a_user(e: &dyn Engine, node: &Recorder) {
    let u = Who::User(Uid(5));
    assert_eq!(e.set_membership(u.clone(), "c", true).await, Err(EngineError::NoActiveSessions));
    assert_eq!(e.set_membership(u.clone(), "c", false).await, Err(EngineError::NoSuchChannel));
    e.cache_auth(Arc::from("s5"), record(5, &["a"], &[])).await.unwrap();
    node.connect(e, 5, "s5", &[]).await;
    e.publish(channel("c"), msg("1")).await.unwrap();
    e.publish(channel("c"), msg("2")).await.unwrap();
    e.set_membership(u.clone(), "c", true).await.unwrap();
    let top = e.recover(&channel("c"), None).await.unwrap().top;
    match last_membership(node) {
        Event::JoinChannel { who, channel, position } => {
            assert_eq!((who, &*channel), (u.clone(), "c"));
            assert_eq!(position, top, "joined at the stream's top");
            assert_eq!(position.map(|p| p.offset), Some(2));
        }
        other => panic!("not a join: {other:?}"),
    }
    let cached = e.cached_auth("s5").await.unwrap().unwrap();
    assert_eq!(cached.channels, ["a", "c"], "a reconnect rejoins it");
    node.channel(e, "c", true).await;
    e.set_membership(u.clone(), "c", false).await.unwrap();
    assert!(
        matches!(last_membership(node), Event::LeaveChannel { who, channel } if who == u && &*channel == "c")
    );
    assert_eq!(e.cached_auth("s5").await.unwrap().unwrap().channels, ["a"]);
    e.add_channel("e").await.unwrap();
    assert_eq!(e.set_membership(Who::User(Uid(9)), "e", false).await, Ok(()), "leaving needs no sockets");
}

pub(super) async fn membership_of_a_session(e: &dyn Engine, node: &Recorder) {
    let s = Who::Session(Arc::from("s5"));
    assert_eq!(e.set_membership(s.clone(), "c", true).await, Err(EngineError::InvalidParameters));
    e.add_channel("c").await.unwrap();
    assert_eq!(e.set_membership(s.clone(), "c", false).await, Err(EngineError::InvalidParameters), "unknown");
    e.cache_auth(Arc::from("s5"), record(5, &[], &[])).await.unwrap();
    assert_eq!(
        e.set_membership(s.clone(), "c", true).await,
        Err(EngineError::InvalidParameters),
        "cached but without sockets"
    );
    assert_eq!(e.set_membership(s.clone(), "c", false).await, Ok(()), "a known session may leave");
    assert_eq!(e.set_membership(s.clone(), "nope", false).await, Err(EngineError::InvalidParameters));
    node.connect(e, 5, "s5", &[]).await;
    e.set_membership(s.clone(), "d", true).await.unwrap();
    assert!(
        matches!(last_membership(node), Event::JoinChannel { who, channel, position: Some(_) } if who == s && &*channel == "d")
    );
    assert_eq!(e.cached_auth("s5").await.unwrap().unwrap().channels, ["d"]);
    e.set_membership(s.clone(), "c", false).await.unwrap();
    assert!(
        matches!(last_membership(node), Event::LeaveChannel { who, channel } if who == s && &*channel == "c")
    );
}

pub(super) async fn kick_and_logout(e: &dyn Engine, node: &Recorder) {
    for (uid, token) in [(5, "s5a"), (5, "s5b"), (6, "s6a"), (6, "s6b")] {
        e.cache_auth(Arc::from(token), record(uid, &[], &[7])).await.unwrap();
        node.connect(e, uid, token, &[7]).await;
    }
    e.cache_auth(Arc::from("s5c"), record(5, &[], &[7])).await.unwrap();
    assert_eq!(counts(e).await.sessions, 4);
    e.kick(Uid(5)).await.unwrap();
    assert_eq!(e.cached_auth("s5c").await, Ok(None), "a session without sockets too");
    assert!(node.applied().iter().any(|ev| matches!(ev, Event::Kick(Uid(5)))));
    assert_eq!(e.cached_auth("s5a").await, Ok(None), "kick forgets every session of the user");
    assert_eq!(e.cached_auth("s5b").await, Ok(None));
    let off = node.presence_of(5);
    assert_eq!(off.last().map(|p| p.1), Some(PresenceEvent::Offline), "offline at once");
    assert!(node.told(&BackendMessage::UserOffline { uid: Uid(5) }).is_some());
    e.logout("s6a").await.unwrap();
    assert!(node.applied().iter().any(|ev| matches!(ev, Event::Logout(t) if &**t == "s6a")));
    assert_eq!(e.cached_auth("s6a").await, Ok(None), "logout forgets its session");
    assert!(e.cached_auth("s6b").await.unwrap().is_some(), "and only its session");
    assert_eq!(node.presence_of(6).len(), 1, "6 keeps a session: still online");
    let c = counts(e).await;
    assert_eq!((c.online_users, c.sessions, c.cached_auth_tokens), (1, 1, 1));
    assert_eq!(e.online_watched(Uid(7)).await.unwrap(), [Uid(6)]);
}

pub(super) async fn stats_start_at_zero_and_count_history(e: &dyn Engine, _node: &Recorder) {
    assert_eq!(counts(e).await, Counts { nodes: 1, ..Counts::default() });
    let strangers = [(member(5, "s5"), true), (member(0, "anon"), false)].map(|(m, forced)| Departure {
        member: m,
        token_channels: vec![(Arc::from("room"), Arc::from("tk"))],
        forced,
    });
    e.changed(Changes { departures: strangers.to_vec(), closed: vec![Arc::from("c")], ..Changes::default() })
        .await;
    assert_eq!(counts(e).await, Counts { nodes: 1, ..Counts::default() }, "leaving what was never joined");
    for i in 0..3 {
        e.publish(channel("a"), msg(&i.to_string())).await.unwrap();
    }
    assert_eq!(counts(e).await.history_messages, 3);
    for i in 0..8 {
        e.publish(channel("b"), msg(&i.to_string())).await.unwrap();
    }
    assert_eq!(counts(e).await.history_messages, 3 + HISTORY, "each stream keeps its last {HISTORY}");
}

pub(super) async fn without_history_nothing_is_recorded(e: &dyn Engine, node: &Recorder) {
    let c = channel("c");
    for i in 1..=3 {
        assert_eq!(e.publish(c.clone(), msg(&i.to_string())).await, Ok(1));
    }
    let got = node.delivered_on(&c);
    assert_eq!(texts(&got), ["1", "2", "3"], "still delivered, in order");
    assert!(got.iter().all(|p| p.position.is_none()), "without positions");
    let since = Position { offset: 1, epoch: Arc::from("e") };
    let r = e.recover(&c, Some(&since)).await.unwrap();
    assert!(r.top.is_none() && r.replay.is_empty() && !r.recovered);
    node.connect(e, 5, "s5", &[]).await;
    e.set_membership(Who::User(Uid(5)), "c", true).await.unwrap();
    assert!(matches!(last_membership(node), Event::JoinChannel { position: None, .. }));
    assert_eq!(counts(e).await.history_messages, 0);
}
