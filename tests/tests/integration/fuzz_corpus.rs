//! Replays the committed fuzz corpus (`server/fuzz/corpus/<target>/`) and the inputs of crashes
//! found by fuzzing (`server/fuzz/regressions/<target>/`) through the functions the fuzz targets
//! call, so CI checks them under plain `cargo test` with no nightly toolchain.

use drupal_push_tests::fuzz;
use std::path::{Path, PathBuf};

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/fuzz").join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.map(|e| e.expect("corpus entry").path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Runs every input of `target`; a failure names the file. The corpus must not be empty.
fn replay(target: &str, run: fn(&[u8])) {
    let corpus = inputs("corpus", target);
    assert!(corpus.len() >= 5, "server/fuzz/corpus/{target} has {} inputs", corpus.len());
    for path in corpus.iter().chain(inputs("regressions", target).iter()) {
        let data = std::fs::read(path).expect("read corpus file");
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("fuzz input {} fails (replay it: see server/fuzz/README.md)", path.display());
        }
    }
}

#[test]
fn frames_corpus() {
    replay("frames", fuzz::frames);
}

#[test]
fn rest_corpus() {
    replay("rest", fuzz::rest);
}

#[test]
fn config_js_corpus() {
    replay("config_js", fuzz::config_js);
}

#[test]
fn config_toml_corpus() {
    replay("config_toml", fuzz::config_toml);
}

#[test]
fn ws_codec_corpus() {
    replay("ws_codec", fuzz::ws_codec);
}
