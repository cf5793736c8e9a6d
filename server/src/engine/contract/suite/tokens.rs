//! Content tokens: joins, leave notices, expiry.

use super::*;

/// A join, reduced to whether it returned a notice.
async fn joined(e: &dyn Engine, channel: &str, token: &str, m: &Member) -> Result<bool, EngineError> {
    e.join_token_channel(channel, token, m).await.map(|notice| notice.is_some())
}

pub(crate) async fn content_token_joins(e: &dyn Engine, _node: &Recorder) {
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

pub(crate) async fn content_token_leave_notices(e: &dyn Engine, node: &Recorder) {
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

pub(crate) async fn content_token_rejoin_within_the_grace(e: &dyn Engine, node: &Recorder) {
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

pub(crate) async fn unused_content_tokens_expire(e: &dyn Engine, node: &Recorder) {
    let set = Instant::now();
    for (ch, tk) in [("room", "old"), ("room", "used"), ("hall", "lone"), ("lobby", "solo")] {
        e.set_content_token(ch, tk, token_record(json!({"token": tk}))).await.unwrap();
    }
    node.connect(e, 5, "s5", &[]).await;
    assert_eq!(joined(e, "room", "used", &member(5, "s5")).await, Ok(true));
    node.joined_token_channel(5, "s5", "room", "used");
    let ttl = SHORT_TOKEN_TTL.content_token_ttl;
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
