//! The browser client, served by the server itself under `resource` (default `/socket.io`):
//!
//! * `{resource}/socket.io.js`: the `io` facade. A site that changes nothing but the module's
//!   server settings loads it from here (the module's own URL for socket.io's client), and the
//!   module's unmodified `nodejs.js` then talks to drupal-push through it. The server writes
//!   its `wsPath` into it.
//! * `{resource}/drupal-push.js`, `drupal_push_client.js`, `drupal_push_client_bg.wasm`: our
//!   shim, the wasm-bindgen glue and the wasm, which either script loads from beside itself;
//!   `drupal-push.d.ts`: the TypeScript declarations.
//!
//! Pages are usually served from another origin than the push server, so every file carries
//! `Access-Control-Allow-Origin: *` (module scripts and `WebAssembly.instantiateStreaming` need
//! CORS; the files are public and carry no credentials). They are revalidated on every load
//! (`Cache-Control: no-cache` with an `ETag`), so a server upgrade never mixes old and new
//! files.
//!
//! **Where the files come from.** `server/build.rs` embeds `drupal-js/dist/` at compile time
//! when `drupal-js/build.sh` has built it: the binary is then self-contained (`cargo install
//! --path server`, a copy on another host, a container) and always serves the client of its
//! own protocol version. Finding the files at run time instead would need a path setting on
//! every install that is not run from the repository. A binary built without them reads
//! `distDir`, else `drupal-js/dist` under the working directory, at start; with neither, those
//! paths answer 404 with a text that says how to build the client.

use crate::App;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/client_assets.rs"));
}

/// The files served under `resource`, with their content types.
const FILES: [(&str, &str); 5] = [
    ("socket.io.js", "text/javascript; charset=utf-8"),
    ("drupal-push.js", "text/javascript; charset=utf-8"),
    ("drupal_push_client.js", "text/javascript; charset=utf-8"),
    ("drupal_push_client_bg.wasm", "application/wasm"),
    ("drupal-push.d.ts", "text/plain; charset=utf-8"),
];

/// Placeholder in `socket.io.js` (in either quote style) that the server replaces with its
/// `wsPath` as a JSON string.
const WS_PATH_TOKEN: &str = "__DRUPAL_PUSH_WS_PATH__";

/// Where the served client came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Embedded,
    Directory(PathBuf),
    Missing,
}

/// One served file.
#[derive(Clone)]
struct Asset {
    bytes: Bytes,
    content_type: &'static str,
    etag: HeaderValue,
}

/// The client files, loaded once at start.
pub struct Assets {
    source: Source,
    files: Vec<(&'static str, Asset)>,
}

impl Assets {
    /// The embedded client, else the one in `distDir`, else in `./drupal-js/dist`.
    /// `ws_path` is written into `socket.io.js`.
    pub fn load(dist_dir: Option<&Path>, ws_path: &str) -> Assets {
        if !embedded::EMBEDDED.is_empty() {
            let files = embedded::EMBEDDED.iter().map(|(name, bytes)| (*name, Bytes::from_static(bytes)));
            return Assets::new(Source::Embedded, files.collect(), ws_path);
        }
        let dirs = [dist_dir.map(Path::to_path_buf), Some(PathBuf::from("drupal-js/dist"))];
        for dir in dirs.into_iter().flatten() {
            if let Some(files) = read_dir(&dir) {
                return Assets::new(Source::Directory(dir), files, ws_path);
            }
        }
        Assets { source: Source::Missing, files: Vec::new() }
    }

    fn new(source: Source, files: Vec<(&'static str, Bytes)>, ws_path: &str) -> Assets {
        let files = files
            .into_iter()
            .filter_map(|(name, bytes)| {
                let (_, content_type) = FILES.iter().find(|(n, _)| *n == name)?;
                let bytes = if name == "socket.io.js" { with_ws_path(&bytes, ws_path) } else { bytes };
                let etag = HeaderValue::from_str(&format!("\"{:016x}\"", fnv1a(&bytes)))
                    .expect("hex digits are a valid header value");
                Some((name, Asset { bytes, content_type, etag }))
            })
            .collect();
        Assets { source, files }
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    fn get(&self, name: &str) -> Option<&Asset> {
        self.files.iter().find(|(n, _)| *n == name).map(|(_, a)| a)
    }
}

/// Reads the client files of `dir`; `None` unless all of them are there.
fn read_dir(dir: &Path) -> Option<Vec<(&'static str, Bytes)>> {
    FILES
        .iter()
        .map(|(name, _)| std::fs::read(dir.join(name)).ok().map(|b| (*name, Bytes::from(b))))
        .collect()
}

/// `socket.io.js` with the server's WebSocket path written in.
fn with_ws_path(script: &[u8], ws_path: &str) -> Bytes {
    let text = String::from_utf8_lossy(script);
    let literal = serde_json::to_string(ws_path).expect("a string always serializes");
    let text = text
        .replace(&format!("'{WS_PATH_TOKEN}'"), &literal)
        .replace(&format!("\"{WS_PATH_TOKEN}\""), &literal);
    Bytes::from(text)
}

/// FNV-1a, 64 bits: a stable content hash for the `ETag`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The routes `{resource}/<file>` for every client file (`resource`, `wsPath`, `distDir`).
pub fn router(resource: &str, ws_path: &str, dist_dir: Option<&Path>) -> Router<Arc<App>> {
    let assets = Arc::new(Assets::load(dist_dir, ws_path));
    match assets.source() {
        Source::Embedded => tracing::debug!("serving the embedded browser client"),
        Source::Directory(dir) => {
            tracing::info!(dir = %dir.display(), "serving the browser client from a directory")
        }
        Source::Missing => tracing::warn!(
            "no browser client to serve at {}/socket.io.js: run drupal-js/build.sh, then rebuild the server \
             (or set distDir)",
            resource
        ),
    }
    let mut router = Router::new();
    for (name, _) in FILES {
        let assets = assets.clone();
        let path = format!("{resource}/{name}");
        router = router.route(&path, get(move |headers: HeaderMap| serve(assets.clone(), name, headers)));
    }
    router
}

async fn serve(assets: Arc<Assets>, name: &'static str, request: HeaderMap) -> Response {
    let Some(asset) = assets.get(name) else {
        let text = "drupal-push: the browser client is not built into this server: run drupal-js/build.sh, \
                    then rebuild the server (or set distDir to the built drupal-js/dist)";
        return (StatusCode::NOT_FOUND, [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], text).into_response();
    };
    let fresh = request.get(header::IF_NONE_MATCH).is_some_and(|tag| tag == asset.etag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(asset.bytes.clone()));
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        r
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, asset.etag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ws_path_is_written_into_socket_io_js_in_either_quote_style() {
        let single = with_ws_path(b"var p = '__DRUPAL_PUSH_WS_PATH__'; p.charAt(0)", "/push/ws");
        assert_eq!(&single[..], br#"var p = "/push/ws"; p.charAt(0)"#);
        let double = with_ws_path(br#"let p="__DRUPAL_PUSH_WS_PATH__""#, "/a\"b");
        assert_eq!(&double[..], br#"let p="/a\"b""#);
    }

    #[test]
    fn assets_carry_types_and_content_etags() {
        let files =
            vec![("socket.io.js", Bytes::from_static(b"'__DRUPAL_PUSH_WS_PATH__'")), ("x.txt", Bytes::new())];
        let a = Assets::new(Source::Embedded, files, "/ws");
        assert_eq!(&a.get("socket.io.js").unwrap().bytes[..], br#""/ws""#);
        assert!(a.get("x.txt").is_none(), "only the client's files");
        let b = Assets::new(Source::Embedded, vec![("socket.io.js", Bytes::from_static(b"x"))], "/ws");
        assert_ne!(a.get("socket.io.js").unwrap().etag, b.get("socket.io.js").unwrap().etag);
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
