//! The log lines of in-process servers ([`crate::TestServer`]), captured: [`capture`] installs,
//! once per test binary, a global `tracing` subscriber that formats events the way the binary's
//! text log does (`tracing_subscriber::fmt`, no colours, `info` and above) into memory.
//!
//! Every server of a test binary logs into the same capture (tests run in parallel), so a test
//! picks out its own lines by something only its server logs, such as the client address it
//! connects from ([`Captured::lines_with`]).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tracing_subscriber::fmt::MakeWriter;

/// The captured log of this test binary.
#[derive(Clone)]
pub struct Captured {
    bytes: Arc<Mutex<Vec<u8>>>,
}

/// Starts capturing (the first call) and returns the capture.
pub fn capture() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured { bytes: Arc::default() };
            let subscriber = tracing_subscriber::fmt()
                .with_writer(captured.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in this test binary");
            captured
        })
        .clone()
}

impl Captured {
    /// Every line captured so far.
    pub fn lines(&self) -> Vec<String> {
        let bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes).lines().map(str::to_owned).collect()
    }

    /// The lines that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.lines().into_iter().filter(|l| l.contains(needle)).collect()
    }
}

/// One event's formatted line (the fmt layer writes each event with one `write_all`).
pub struct Line(Arc<Mutex<Vec<u8>>>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(self.bytes.clone())
    }
}
