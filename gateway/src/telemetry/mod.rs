//! Logs and metrics. Every observable thing the gateway does is a typed event in
//! [`events`] whose `emit()` writes the log line and moves the metric together, so the
//! two never disagree (the pattern Vector uses for its internal events).

pub mod events;
pub mod metrics;
pub mod sampler;

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber. `RUST_LOG` wins over the configured level.
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder.with_target(false).try_init(),
    };
    // A second init (tests) keeps the first subscriber; nothing to report.
    drop(result);
}
