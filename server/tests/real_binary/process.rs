//! A `drupal-push` process for the tests of this binary: started with a config file (written
//! here from TOML text, or one a test wrote itself), optionally under `ulimit -n`, read up to its
//! listening line, and killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running server; killed, and the folder of its config (when written here) removed, on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    dir: Option<PathBuf>,
}

impl Server {
    /// `http://host:port`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.dir {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}

/// Starts the binary with the config file `config`; with `max_files`, under `ulimit -n`.
pub fn start_file(config: &Path, max_files: Option<u32>) -> Server {
    let binary = env!("CARGO_BIN_EXE_drupal-push");
    let mut command = match max_files {
        Some(n) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!("ulimit -n {n} && exec \"$0\" \"$1\"")).arg(binary).arg(config);
            c
        }
        None => {
            let mut c = Command::new(binary);
            c.arg(config);
            c
        }
    };
    let mut child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn drupal-push");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line).expect("stdout");
    let base = line.trim().strip_prefix("drupal-push listening on http://").expect("the listening line");
    Server { addr: base.parse().expect("host:port"), child, dir: None }
}

/// Writes `toml` to a config file of its own (named after `name` and this process) and starts
/// the binary with it, as [`start_file`].
pub fn start_toml(name: &str, toml: &str, max_files: Option<u32>) -> Server {
    let dir = std::env::temp_dir().join(format!("drupal-push-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join("drupal-push.toml");
    std::fs::write(&path, toml).expect("write the config");
    let mut server = start_file(&path, max_files);
    server.dir = Some(dir);
    server
}
