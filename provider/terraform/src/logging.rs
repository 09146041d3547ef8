//! Logs as Terraform reads them: one hclog JSON object per line on stderr.
//!
//! go-plugin parses each JSON line the plugin writes to stderr and re-logs it through Terraform's
//! own logger at the line's `@level`, so `TF_LOG=DEBUG terraform plan` (or `TF_LOG_PROVIDER`)
//! shows our spans and events beside Terraform's. The level we emit follows the same variables,
//! so a quiet run costs nothing.
//!
//! The crash hook lives here too: a handler that crashes must be reported as a log line and an
//! error diagnostic, never as the default Rust crash text, which Terraform 1.0 mistakes for a
//! provider crash and then stops the whole run.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The level Terraform asked for through `TF_LOG_PROVIDER` (preferred) or `TF_LOG`;
/// `None` means off.
pub fn level_from_env() -> Option<Level> {
    let raw = std::env::var("TF_LOG_PROVIDER")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var("TF_LOG").ok())
        .unwrap_or_default();
    parse_level(&raw)
}

fn parse_level(raw: &str) -> Option<Level> {
    match raw.trim().to_ascii_uppercase().as_str() {
        "TRACE" | "JSON" => Some(Level::TRACE),
        "DEBUG" => Some(Level::DEBUG),
        "INFO" => Some(Level::INFO),
        "WARN" => Some(Level::WARN),
        "ERROR" => Some(Level::ERROR),
        "" => Some(Level::WARN),
        _ => Some(Level::WARN),
    }
}

/// Installs the hclog JSON layer as the global subscriber (once per process).
pub fn init() {
    let max = level_from_env().unwrap_or(Level::WARN);
    let subscriber = tracing_subscriber::registry().with(HclogLayer { max });
    // Ignore the error: a second init (tests) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber);
    install_crash_hook();
}

/// Formats events as hclog JSON lines, with the fields of the enclosing spans (e.g. the RPC and
/// resource type) merged in.
pub struct HclogLayer {
    max: Level,
}

#[derive(Default)]
struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            serde_json::Value::String(format!("{value:?}")),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(
            field.name().to_string(),
            serde_json::Value::String(value.to_string()),
        );
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), value.into());
    }
}

struct SpanFields(serde_json::Map<String, serde_json::Value>);

impl<S> Layer<S> for HclogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        *metadata.level() <= self.max
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = JsonFields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.0));
        }
    }

    /// Fields recorded after the span began (the placement, once decided) join its others.
    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
                let mut recorded = JsonFields(std::mem::take(fields));
                values.record(&mut recorded);
                *fields = recorded.0;
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let mut line = serde_json::Map::new();
        line.insert(
            "@level".into(),
            hclog_level(event.metadata().level()).into(),
        );
        let message = fields
            .0
            .remove("message")
            .and_then(|m| m.as_str().map(str::to_string))
            .unwrap_or_default();
        line.insert("@message".into(), message.into());
        line.insert("@module".into(), "provider.hybrid".into());
        line.insert("@timestamp".into(), timestamp_now().into());
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(span_fields) = span.extensions().get::<SpanFields>() {
                    for (k, v) in &span_fields.0 {
                        line.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        for (k, v) in fields.0 {
            line.insert(k, v);
        }
        let text = serde_json::Value::Object(line).to_string();
        let stderr = std::io::stderr();
        let mut lock = stderr.lock();
        let _ = writeln!(lock, "{text}");
    }
}

fn hclog_level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// `2026-11-25T16:55:01.123456Z`, hclog's layout, without pulling in a date crate.
fn timestamp_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_timestamp(now.as_secs() as i64, now.subsec_micros())
}

fn format_timestamp(secs: i64, micros: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(27);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    out
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's method).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Replaces the default crash printer: it would write text Terraform 1.0 treats as a provider
/// crash. The handler wrapper turns the crash into an error diagnostic; this hook only logs
/// where it happened.
fn install_crash_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = crash_message(info.payload());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(location = %location, "internal error in provider handler: {payload}");
    }));
}

/// The text of a crash payload (a `&str` or `String`, else a placeholder).
pub fn crash_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown internal error".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_use_hclog_layout() {
        assert_eq!(format_timestamp(0, 0), "1970-01-01T00:00:00.000000Z");
        // 2026-11-25T16:34:20Z
        assert_eq!(
            format_timestamp(1_795_624_460, 42),
            "2026-11-25T16:34:20.000042Z"
        );
        assert_eq!(
            format_timestamp(951_782_400, 0),
            "2000-02-29T00:00:00.000000Z"
        );
    }

    #[test]
    fn levels_follow_terraform_names() {
        assert_eq!(parse_level("debug"), Some(Level::DEBUG));
        assert_eq!(parse_level("JSON"), Some(Level::TRACE));
        assert_eq!(parse_level(""), Some(Level::WARN));
    }
}
