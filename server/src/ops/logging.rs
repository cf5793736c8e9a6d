//! Log output of the binary: `tracing` events to stderr as text or JSON lines (`logFormat`),
//! with a filter from `RUST_LOG` or `debug`, switchable at run time (`debug/toggle`).
//!
//! Text lines carry terminal colours only when stderr is a terminal and `NO_COLOR` is unset or
//! empty (no-color.org), so a file or journald never receives escape sequences.

use crate::DebugSwitch;
use crate::config::LogFormat;
use std::io::IsTerminal;
use std::sync::Arc;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, reload};

/// Installs the global logger; returns the switch for verbose logging.
pub fn init(format: LogFormat, debug: bool) -> DebugSwitch {
    let (filter_layer, handle) = reload::Layer::new(filter(debug));
    let (text, json) = match format {
        LogFormat::Text => (
            Some(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(use_colour())),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            ),
        ),
    };
    tracing_subscriber::registry().with(filter_layer).with(text).with(json).init();
    Arc::new(move |on| {
        let _ = handle.reload(filter(on));
    })
}

fn filter(debug: bool) -> EnvFilter {
    let default = if debug { "drupal_push_server=debug,info" } else { "info" };
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// Colour only for a terminal, and never when `NO_COLOR` is set to something.
fn use_colour() -> bool {
    colour_wanted(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR"))
}

fn colour_wanted(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour_wanted;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some("".into())), "an empty NO_COLOR does not count");
        assert!(!colour_wanted(true, Some("1".into())));
        assert!(!colour_wanted(false, None));
    }
}
