//! Channels, memberships, kick and logout: what the engine commands every node to do.

use super::*;

pub(crate) async fn channels_added_opened_and_removed(e: &dyn Engine, node: &Recorder) {
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

pub(crate) async fn membership_of_a_user(e: &dyn Engine, node: &Recorder) {
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

pub(crate) async fn membership_of_a_session(e: &dyn Engine, node: &Recorder) {
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

pub(crate) async fn kick_and_logout(e: &dyn Engine, node: &Recorder) {
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
