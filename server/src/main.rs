//! The `drupal-push` binary: reads the configuration, sets up logging, binds, prints the
//! listening line on stdout and serves until SIGINT/SIGTERM.

use anyhow::Context;
use clap::Parser;
use drupal_push_server::config::{self, Cli};
use std::process::ExitCode;
use std::sync::Arc;
use tracing_subscriber::{EnvFilter, reload};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (config, warnings) = match config::load(&cli, std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("drupal-push: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        println!(
            "configuration OK: listening on {}:{}, backend {}",
            config.host,
            config.port,
            config.backend_url()
        );
        return ExitCode::SUCCESS;
    }
    match serve(config, warnings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drupal-push: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn filter(debug: bool) -> EnvFilter {
    let default = if debug { "drupal_push_server=debug,info" } else { "info" };
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

fn serve(config: config::Config, warnings: Vec<String>) -> anyhow::Result<()> {
    use tracing_subscriber::prelude::*;
    let (layer, handle) = reload::Layer::new(filter(config.debug));
    tracing_subscriber::registry()
        .with(layer)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .init();
    for w in warnings {
        tracing::warn!("{w}");
    }
    let switch: drupal_push_server::DebugSwitch = Arc::new(move |on| {
        let _ = handle.reload(filter(on));
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let addr = config.bind_addr().map_err(anyhow::Error::msg)?;
        let listener = listen(addr).with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        let scheme = if config.scheme == config::Scheme::Https { "https" } else { "http" };
        println!("drupal-push listening on {scheme}://{local}");
        if config.demo {
            println!("demo page: {scheme}://{local}/   status: {scheme}://{local}/status");
            println!("demo service key (NodejsServiceKey header): {}", config.service_key);
        }
        drupal_push_server::run(listener, config, Some(switch), shutdown_signal()).await?;
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
