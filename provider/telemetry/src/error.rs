//! Why a push or a pushgateway setting failed. No variant ever carries a URL's credentials.

/// Failures of the metrics registry and of pushes.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("the pushgateway URL is not valid: {reason}")]
    InvalidUrl { reason: String },
    #[error("the pushgateway URL must start with http:// ({scheme}:// is not supported yet)")]
    UnsupportedScheme { scheme: String },
    #[error("invalid grouping label {name:?}: {reason}")]
    InvalidLabel { name: String, reason: String },
    #[error("cannot encode the metrics: {0}")]
    Encode(String),
    #[error("cannot reach the pushgateway at {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("the pushgateway at {target} did not answer within {millis} ms")]
    Timeout { target: String, millis: u128 },
    #[error("HTTP exchange with the pushgateway at {target} failed: {reason}")]
    Http { target: String, reason: String },
    #[error("the pushgateway at {target} refused the push with HTTP {status}: {body}")]
    Refused {
        target: String,
        status: u16,
        body: String,
    },
}
