//! The `drupal-push` binary: reads the configuration, sets up logging, binds, prints the
//! listening line on stdout and serves until SIGINT/SIGTERM (a second one cuts the drain short).

use anyhow::Context;
use clap::Parser;
use drupal_push_server::config::{self, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (settings, warnings) = match config::load(&cli, std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("drupal-push: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        for w in &warnings {
            eprintln!("drupal-push: warning: {w}");
        }
        println!(
            "configuration OK: listening on {}:{}, backend {}",
            settings.listen.host, settings.listen.port, settings.backend.url
        );
        return ExitCode::SUCCESS;
    }
    match serve(settings, warnings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drupal-push: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: config::Settings, warnings: Vec<String>) -> anyhow::Result<()> {
    let switch = drupal_push_server::logging::init(settings.ops.log_format, settings.ops.debug);
    for w in warnings {
        tracing::warn!("{w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let addr = settings.listen.addr;
        let listener = listen(addr).with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        let scheme = if settings.listen.scheme == config::Scheme::Https { "https" } else { "http" };
        println!("drupal-push listening on {scheme}://{local}");
        if settings.ops.demo {
            println!("demo page: {scheme}://{local}/   status: {scheme}://{local}/status");
            println!("demo service key (NodejsServiceKey header): {}", settings.api.service_key);
        }
        let (first, second) = signals()?;
        drupal_push_server::run_until(listener, settings, Some(switch), first, second).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Binds with a deep accept queue: tokio's `TcpListener::bind` asks for 128, and a reconnect
/// storm overflowing it costs clients a 1 s SYN retransmit (measured in tests/bench/PROFILE.md).
/// The kernel caps the backlog at `net.core.somaxconn`.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket =
        if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// The first SIGTERM or SIGINT starts the drain; a second one closes the rest at once.
fn signals() -> std::io::Result<(impl Future<Output = ()>, impl Future<Output = ()>)> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let (second_tx, second_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        next_signal(&mut term, &mut int).await;
        tracing::info!("signal received: draining (send it again to close every connection at once)");
        let _ = first_tx.send(());
        next_signal(&mut term, &mut int).await;
        let _ = second_tx.send(());
    });
    let wait = |rx: tokio::sync::oneshot::Receiver<()>| async move {
        if rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    Ok((wait(first_rx), wait(second_rx)))
}

async fn next_signal(term: &mut tokio::signal::unix::Signal, int: &mut tokio::signal::unix::Signal) {
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
