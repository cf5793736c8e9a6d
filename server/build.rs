//! Embeds the built browser client (`drupal-js/dist/`, made by `drupal-js/build.sh`) into the
//! server binary when it exists, so that the binary serves `{resource}/socket.io.js` and the
//! rest of the client with no configuration and no files beside it (`cargo install --path
//! server` included). Without a built client the binary embeds nothing and looks for the files
//! at run time (see `src/http/client_assets.rs`).

use std::path::{Path, PathBuf};

/// The files of `drupal-js/dist/` the server serves.
const FILES: [&str; 5] = [
    "socket.io.js",
    "drupal-push.js",
    "drupal_push_client.js",
    "drupal_push_client_bg.wasm",
    "drupal-push.d.ts",
];

fn main() {
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let drupal_js = manifest.join("..").join("drupal-js");
    let dist = drupal_js.join("dist");
    let complete = FILES.iter().all(|f| dist.join(f).is_file());
    if complete {
        for file in FILES {
            println!("cargo:rerun-if-changed={}", dist.join(file).display());
        }
    } else {
        // Watching missing files would rerun this script on every build; the directory
        // changes when build.sh creates dist/.
        println!("cargo:rerun-if-changed={}", drupal_js.display());
    }
    let mut code = String::from("/// The built client, embedded at compile time (empty: none was built).\n");
    code.push_str("pub const EMBEDDED: &[(&str, &[u8])] = &[\n");
    if complete {
        for file in FILES {
            let path = canonical(&dist.join(file));
            code.push_str(&format!("    ({file:?}, include_bytes!({:?})),\n", path.display().to_string()));
        }
    } else {
        println!(
            "cargo:warning=drupal-js/dist is not built: the server will look for the browser client at run time (run drupal-js/build.sh before building to embed it)"
        );
    }
    code.push_str("];\n");
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("client_assets.rs");
    std::fs::write(&out, code).expect("write the embedded asset list");
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}
