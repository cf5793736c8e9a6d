//! Recovery across reconnects: positions kept and sent, duplicates dropped, outcomes reported,
//! the presence picture brought up to date; on both paths.

use super::*;
use crate::recovery::Position;

fn pos(offset: u64, epoch: &str) -> Position {
    Position { offset, epoch: epoch.into() }
}

fn dispatched(actions: &[Action<Value>]) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Dispatch { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn outcome(actions: &[Action<Value>]) -> Option<Outcome> {
    actions.iter().find_map(|a| match a {
        Action::Recovery(o) => Some(o.clone()),
        _ => None,
    })
}

fn presence(actions: &[Action<Value>]) -> Vec<(u64, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Presence { uid, online } => Some((*uid, *online)),
            _ => None,
        })
        .collect()
}

fn recorded(channel: &str, stream: Option<&str>, offset: u64, epoch: &str, n: u64) -> String {
    let mut frame = json!({"type": "message", "channel": channel, "offset": offset, "epoch": epoch,
        "message": {"channel": channel, "n": n}});
    if let Some(stream) = stream {
        frame["stream"] = stream.into();
    }
    frame.to_string()
}

const FIRST_AUTH: &str = r#"{"type":"authenticated","socketId":"s1","uid":5,"channels":["nodejs_user_5","chat"],"streams":{"nodejs_user_5":{"offset":2,"epoch":"u"},"chat":{"offset":10,"epoch":"c"},"*":{"offset":0,"epoch":"b"}}}"#;

/// Connected with a first authentication that gave start positions.
fn connected(mut h: Harness) -> Harness {
    h.feed(Input::Start);
    h.hello();
    if h.m.is_facade() {
        h.feed(Input::AuthenticateWith { data: json!({"authToken": "page"}), id: None });
    }
    let a = h.text(FIRST_AUTH);
    assert_eq!(outcome(&a), None, "a first connection recovers nothing");
    assert!(presence(&a).is_empty());
    h
}

/// Drops the connection and waits for the next one to say hello.
fn reconnect(h: &mut Harness) -> Vec<Action<Value>> {
    h.close(1006);
    let t = h.retry_at();
    h.at(t, Input::Tick);
    let mut a = h.hello();
    if h.m.is_facade() {
        a.extend(h.feed(Input::AuthenticateWith { data: json!({"authToken": "page"}), id: None }));
    }
    a
}

#[test]
fn positions_follow_messages_and_go_back_after_a_reconnect_only() {
    let mut h = Harness::new();
    h.feed(Input::Start);
    let first = h.hello();
    assert!(!sent(&first)[0].contains("positions"), "not on the first connection");
    h.text(FIRST_AUTH);
    assert_eq!(h.m.positions().get("chat"), Some(&pos(10, "c")));
    h.text(&recorded("chat", None, 11, "c", 1));
    h.text(&recorded("room", Some("token:room"), 4, "r", 2));
    h.text(r#"{"type":"joined","stream":"token:other","offset":7,"epoch":"o"}"#);
    h.text(r#"{"type":"message","stream":"*","offset":1,"epoch":"b","message":{"broadcast":true}}"#);
    let a = reconnect(&mut h);
    let frame: Value = serde_json::from_str(&sent(&a)[0]).unwrap();
    assert_eq!(
        frame["positions"],
        json!({"nodejs_user_5": {"offset": 2, "epoch": "u"}, "chat": {"offset": 11, "epoch": "c"},
               "*": {"offset": 1, "epoch": "b"}, "token:room": {"offset": 4, "epoch": "r"},
               "token:other": {"offset": 7, "epoch": "o"}})
    );
}

#[test]
fn duplicates_are_dropped_and_another_epoch_starts_anew() {
    let mut h = connected(Harness::new());
    let a = h.text(&recorded("chat", None, 11, "c", 1));
    assert_eq!(dispatched(&a), [json!({"channel": "chat", "n": 1})]);
    assert!(dispatched(&h.text(&recorded("chat", None, 11, "c", 1))).is_empty(), "the same offset");
    assert!(dispatched(&h.text(&recorded("chat", None, 10, "c", 0))).is_empty(), "the start position");
    assert_eq!(dispatched(&h.text(&recorded("chat", None, 13, "c", 3))).len(), 1, "a gap is delivered");
    assert_eq!(dispatched(&h.text(&recorded("chat", None, 1, "new", 4))).len(), 1, "another epoch");
    assert!(dispatched(&h.text(&recorded("chat", None, 1, "new", 4))).is_empty());
    let plain = h.text(r#"{"type":"message","channel":"chat","message":{"n":5}}"#);
    assert_eq!(dispatched(&plain).len(), 1, "unrecorded messages are never duplicates");
    let a = h.text(&recorded("chat", None, 2, "new", 6));
    let Some(Action::Dispatch { recorded, channel, .. }) = a.first() else { panic!("{a:?}") };
    assert_eq!(recorded, &Some(("chat".into(), pos(2, "new"))), "meta carries the position");
    assert_eq!(channel.as_deref(), Some("chat"));
}

#[test]
fn the_outcome_names_the_channels_not_recovered() {
    let mut h = connected(Harness::new());
    h.text(&recorded("room", Some("token:room"), 4, "r", 1));
    reconnect(&mut h);
    let a = h.text(
        r#"{"type":"authenticated","socketId":"s2","uid":5,"channels":["nodejs_user_5","chat"],"streams":{"token:room":{"offset":0,"epoch":"r2"},"*":{"offset":0,"epoch":"b2"}},"recovered":{"nodejs_user_5":true,"chat":true,"token:room":false,"*":false},"online":[]}"#,
    );
    let o = outcome(&a).expect("an outcome after a reconnect");
    assert_eq!(o.recovered, ["chat", "nodejs_user_5"]);
    assert_eq!(o.failed, ["*", "room"], "token channels by name, the broadcast as *");
    assert_eq!(setups(&a), [SetupEvent::Connect], "connect handlers run as on every connection");
    let connect = a.iter().position(|x| matches!(x, Action::Setup(_))).unwrap();
    let recovery = a.iter().position(|x| matches!(x, Action::Recovery(_))).unwrap();
    assert!(connect < recovery, "connect first, then the outcome");
    assert!(matches!(a.last(), Some(Action::Status(s)) if s.state == State::Connected));
    assert_eq!(h.m.positions().get("token:room"), Some(&pos(0, "r2")), "the new start");
    assert_eq!(h.m.positions().get("chat"), Some(&pos(10, "c")), "the replay follows from here");
    let replay = h.text(&recorded("chat", None, 11, "c", 9));
    assert_eq!(dispatched(&replay).len(), 1);
}

#[test]
fn a_server_restart_fails_every_stream() {
    let mut h = connected(Harness::new());
    reconnect(&mut h);
    let a = h.text(
        r#"{"type":"authenticated","socketId":"s2","uid":5,"channels":["nodejs_user_5","chat"],"streams":{"nodejs_user_5":{"offset":0,"epoch":"x"},"chat":{"offset":0,"epoch":"y"},"*":{"offset":0,"epoch":"z"}},"recovered":{"nodejs_user_5":false,"chat":false,"*":false},"online":[]}"#,
    );
    let o = outcome(&a).unwrap();
    assert!(o.recovered.is_empty());
    assert_eq!(o.failed, ["*", "chat", "nodejs_user_5"]);
}

#[test]
fn presence_after_a_reconnect_is_the_difference_with_what_the_page_was_told() {
    let mut h = connected(Harness::new());
    for (uid, event) in [(7, "online"), (8, "online"), (9, "online"), (9, "offline")] {
        let m = json!({"type": "message", "message": {"presenceNotification": {"uid": uid, "event": event}}});
        assert_eq!(dispatched(&h.text(&m.to_string())).len(), 1);
    }
    reconnect(&mut h);
    let a = h.text(
        r#"{"type":"authenticated","socketId":"s2","uid":5,"channels":[],"recovered":{"chat":true},"online":[8,12]}"#,
    );
    assert_eq!(presence(&a), [(7, false), (12, true)]);
    assert_eq!(h.m.presence().online(), [8, 12]);
    reconnect(&mut h);
    let a = h.text(r#"{"type":"authenticated","socketId":"s3","uid":0,"channels":[]}"#);
    assert!(presence(&a).is_empty(), "no online list (anonymous): the picture stays");
    assert_eq!(outcome(&a), Some(Outcome::default()));
}

#[test]
fn the_facade_sends_positions_and_reports_the_outcome_itself() {
    let mut h = connected(Harness::facade());
    h.text(&recorded("chat", None, 12, "c", 1));
    let a = reconnect(&mut h);
    assert_eq!(io(&a), [IoEvent::Connect, IoEvent::Reconnect]);
    let frame: Value = serde_json::from_str(&sent(&a)[0]).unwrap();
    assert_eq!(frame["authToken"], "page", "the page's own members");
    assert_eq!(frame["positions"]["chat"], json!({"offset": 12, "epoch": "c"}));
    let a = h.text(
        r#"{"type":"authenticated","socketId":"s2","uid":5,"channels":["chat"],"recovered":{"chat":false,"nodejs_user_5":true,"*":true},"streams":{"chat":{"offset":20,"epoch":"c2"}},"online":[3]}"#,
    );
    assert!(setups(&a).is_empty(), "the module runs its own connect handlers");
    assert_eq!(outcome(&a).unwrap().failed, ["chat"]);
    assert_eq!(presence(&a), [(3, true)]);
    let late = h.feed(Input::AuthenticateWith { data: json!({"authToken": "page"}), id: None });
    assert!(sent(&late).is_empty(), "one authenticate per connection");
}

#[test]
fn the_facade_falls_back_to_the_last_emit_with_positions() {
    let mut h = connected(Harness::facade());
    h.close(1006);
    let t = h.retry_at();
    h.at(t, Input::Tick);
    h.hello();
    let a = h.feed(Input::ConnectHandled);
    let frame: Value = serde_json::from_str(&sent(&a)[0]).unwrap();
    assert_eq!(frame["positions"]["nodejs_user_5"], json!({"offset": 2, "epoch": "u"}));
}
