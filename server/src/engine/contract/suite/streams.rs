//! Publishing, delivery order, recovery and history.

use super::*;

pub(crate) async fn publish_offsets_and_epoch(e: &dyn Engine, node: &Recorder) {
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

pub(crate) async fn concurrent_publishes_arrive_in_offset_order(e: &dyn Engine, node: &Recorder) {
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

pub(crate) async fn publish_from_carries_the_sender(e: &dyn Engine, node: &Recorder) {
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

pub(crate) async fn publish_to_an_unknown_token_channel(e: &dyn Engine, node: &Recorder) {
    let room = token_stream("room");
    assert_eq!(e.publish(room.clone(), msg("1")).await, Err(EngineError::NoSuchTokenChannel));
    e.set_content_token("room", "tk", token_record(json!({"token": "tk"}))).await.unwrap();
    assert_eq!(e.publish(room.clone(), msg("2")).await, Ok(1));
    assert_eq!(texts(&node.delivered()), ["2"], "the refused one went nowhere");
    assert_eq!(e.publish(token_stream("other"), msg("3")).await, Err(EngineError::NoSuchTokenChannel));
}

pub(crate) async fn recover_replays_exactly_what_was_missed(e: &dyn Engine, _node: &Recorder) {
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

pub(crate) async fn stats_start_at_zero_and_count_history(e: &dyn Engine, _node: &Recorder) {
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

pub(crate) async fn without_history_nothing_is_recorded(e: &dyn Engine, node: &Recorder) {
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
