//! Demo mode (`--demo`): the server plays its own Drupal so the demo page works with no site.
//!
//! * `POST /demo/nodejs/message` is a small Drupal message handler (spec 2.3): it accepts any
//!   auth token. `demo-<uid>-<anything>` authenticates as that uid, with channels
//!   `nodejs_user_<uid>`, `nodejs_ajax_broadcast` and `demo`, and presence list 1..9; a token
//!   starting with `bad` is rejected; any other token is anonymous (uid 0). The server's
//!   backend client calls it over real HTTP, exactly as it would call Drupal.
//! * `GET /demo/settings?uid=N` is what Drupal renders into `drupalSettings.nodejs` for a page:
//!   server and client address, a fresh auth token, and a content token for `demo_room`
//!   (registered as Drupal's `nodejs_send_content_channel_token()` would).
//! * `POST /demo/publish`, `/demo/kick/:uid`, `/demo/content-message` let the page act as
//!   Drupal without holding the service key. Like `/demo/settings` they answer only the demo
//!   page's own requests (loopback `Host`, own `Origin`, JSON bodies: [`crate::edge::open_guard`]),
//!   not other sites' pages in the developer's browser.

use crate::App;
use crate::api::{self, ApiError, JsonBody};
use crate::drupal::fake_drupal::{Answer, FakeDrupal};
use crate::edge::open_guard::{self, OpenGuard};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use drupal_push_protocol::Uid;
use serde::Deserialize;
use serde_json::{Map, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// The demo users' ids: every demo user watches the presence of every other.
const DEMO_UIDS: std::ops::RangeInclusive<u64> = 1..=9;

pub fn backend_url(local: SocketAddr) -> String {
    format!("http://{local}/demo/nodejs/message")
}

/// The demo routes; the fake Drupal expects the server's own `service_key`; `host` is the
/// `host` setting. The page's routes need no key, so they take only the demo page's own
/// requests ([`open_guard`]).
pub fn router(service_key: &str, host: &str) -> Router<Arc<App>> {
    const MESSAGE_PATH: &str = "/demo/nodejs/message";
    let drupal = FakeDrupal::new(service_key, Arc::new(demo_answer), false);
    let page = Router::new()
        .route("/demo/settings", get(settings))
        .route("/demo/publish", post(publish))
        .route("/demo/kick/{uid}", post(kick))
        .route("/demo/content-message", post(content_message))
        .layer(axum::middleware::from_fn_with_state(OpenGuard::new(host), open_guard::check));
    Router::new()
        .route_service(MESSAGE_PATH, drupal.router_at(MESSAGE_PATH))
        .merge(page)
        .layer(axum::middleware::map_response(api::json_errors))
}

/// What the demo Drupal answers for a token.
fn demo_answer(token: &str) -> Answer {
    if token.starts_with("bad") {
        return Answer::Invalid;
    }
    let uid = token
        .strip_prefix("demo-")
        .and_then(|rest| rest.split('-').next())
        .and_then(Uid::parse)
        .unwrap_or(Uid::ANONYMOUS);
    let mut channels = vec!["demo".to_string(), "nodejs_ajax_broadcast".to_string()];
    let mut presence = Vec::new();
    if !uid.is_anonymous() {
        channels.insert(0, format!("nodejs_user_{uid}"));
        presence = DEMO_UIDS.filter(|u| *u != uid.0).collect();
    }
    Answer::Valid { uid: uid.0, channels, presence_uids: presence }
}

#[derive(Deserialize)]
struct SettingsQuery {
    uid: Option<String>,
}

async fn settings(State(app): State<Arc<App>>, Query(q): Query<SettingsQuery>) -> Response {
    let uid = match q.uid.as_deref().map(Uid::parse) {
        Some(Some(u)) => u,
        Some(None) => {
            return (StatusCode::BAD_REQUEST, Json(json!({"error": "uid must be a number"}))).into_response();
        }
        None => Uid(rand::random_range(DEMO_UIDS)),
    };
    let token = format!("demo-{uid}-{}", crate::ids::random_id(12));
    let content_token = crate::ids::random_id(24);
    let mut record = Map::new();
    record.insert("token".into(), json!(content_token));
    record.insert("channel".into(), json!("demo_room"));
    record.insert("notifyOnDisconnect".into(), json!(true));
    record.insert("userData".into(), json!({"uid": uid, "name": format!("Demo user {uid}")}));
    if let Err(e) = app.engine.set_content_token("demo_room", &content_token, record).await {
        return ApiError::from(e).into_response();
    }
    let port = app.local.port();
    let host = "127.0.0.1";
    let address = json!({"scheme": "http", "host": host, "port": port});
    let mut client = address.clone();
    client["path"] = json!(app.settings.listen.ws_path);
    Json(json!({
        "uid": uid,
        "nodejs": {
            "nodejs": address,
            "client": client,
            "authToken": token,
            "contentTokens": {"demo_room": content_token},
        }
    }))
    .into_response()
}

async fn publish(state: State<Arc<App>>, body: JsonBody) -> Response {
    api::routes::publish(state, body).await.into_response()
}

async fn kick(state: State<Arc<App>>, uid: Path<String>) -> Response {
    api::routes::kick(state, uid).await.into_response()
}

async fn content_message(state: State<Arc<App>>, body: JsonBody) -> Response {
    api::routes::content_token_message(state, body).await.into_response()
}
