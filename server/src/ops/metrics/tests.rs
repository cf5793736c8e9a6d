//! Unit tests of the metrics' text: each count shows with its labels.

use super::*;
use std::sync::Arc;

fn text(m: &Metrics) -> String {
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry).unwrap();
    out
}

#[test]
fn counts_show_in_the_text_format_with_their_labels() {
    let m = Metrics::new();
    m.published(&Stream::Broadcast);
    m.published(&Stream::Channel(Arc::from("c")));
    m.published(&Stream::Channel(Arc::from("d")));
    m.deliveries().inc_by(30);
    m.authentication(AuthOutcome::Cached);
    m.closed(ClosedBy::Server, 4101);
    m.slow_consumer("queue_full");
    m.backend_request("authenticate", Duration::from_millis(30));
    m.queued_bytes.inc_by(500);
    let t = text(&m);
    for line in [
        "drupal_push_publications_total{stream=\"channel\"} 2",
        "drupal_push_publications_total{stream=\"broadcast\"} 1",
        "drupal_push_publications_total{stream=\"token\"} 0",
        "drupal_push_deliveries_total 30",
        "drupal_push_authentications_total{outcome=\"cached\"} 1",
        "drupal_push_closes_total{by=\"server\",code=\"4101\"} 1",
        "drupal_push_slow_consumer_closes_total{cause=\"queue_full\"} 1",
        "drupal_push_backend_request_duration_seconds_bucket{request=\"authenticate\",le=\"0.05\"} 1",
        "drupal_push_backend_request_duration_seconds_count{request=\"authenticate\"} 1",
        "drupal_push_queued_bytes 500",
        "# TYPE drupal_push_deliveries_total counter",
    ] {
        assert!(t.lines().any(|l| l == line), "missing {line:?} in\n{t}");
    }
    assert_eq!((m.publication_total(), m.delivery_total()), (3, 30));
}
