//! The auth cache and presence: online, offline after the grace, presence lists.

use super::*;

pub(crate) async fn auth_cache_expires_after_its_ttl(e: &dyn Engine, _node: &Recorder) {
    assert_eq!(e.cached_auth("t1").await, Ok(None));
    let r = record(1, &["c"], &[2]);
    e.cache_auth(Arc::from("t1"), r.clone()).await.unwrap();
    let cached_at = Instant::now();
    assert_eq!(e.cached_auth("t1").await.unwrap().as_deref(), Some(&*r), "fresh, as given");
    assert_eq!(counts(e).await.cached_auth_tokens, 1);
    let mut gone = false;
    while !gone {
        assert!(cached_at.elapsed() < LIMIT, "the cached answer never expired");
        gone = e.cached_auth("t1").await.unwrap().is_none();
        if !gone {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    assert!(cached_at.elapsed() >= AUTH_TTL.mul_f32(0.9), "expired early: {:?}", cached_at.elapsed());
    assert_eq!(counts(e).await.cached_auth_tokens, 0);
    e.add_channel("c").await.unwrap();
    assert_eq!(
        e.set_membership(Who::Session(Arc::from("t1")), "c", false).await,
        Err(EngineError::InvalidParameters),
        "an expired session without sockets is unknown"
    );
}

pub(crate) async fn presence_online_then_offline_after_the_grace(e: &dyn Engine, node: &Recorder) {
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

pub(crate) async fn presence_arrival_within_the_grace_cancels_offline(e: &dyn Engine, node: &Recorder) {
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

pub(crate) async fn presence_list_changes_who_watches(e: &dyn Engine, node: &Recorder) {
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
