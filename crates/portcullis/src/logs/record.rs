//! One log line as a structured record: the event's own fields plus the fields of every span it
//! happened in, so a line written while answering a request carries that request's id, tenant
//! and user (recorded on the request span by the web layer) without each call site repeating
//! them.

use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;
use time::OffsetDateTime;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// A finished log line, shared by every output it goes to.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub at: OffsetDateTime,
    pub level: Level,
    pub target: String,
    pub message: String,
    /// Span fields (outermost first, inner spans winning) then the event's fields.
    pub fields: Map<String, Value>,
}

impl LogRecord {
    /// The record as one JSON object: `timestamp`, `level`, `target`, `message`, then the fields
    /// at the top level so collectors index `request_id`, `tenant_id` and `user_id` directly.
    pub fn to_json(&self) -> String {
        let mut obj = Map::with_capacity(self.fields.len() + 4);
        obj.insert("timestamp".into(), Value::String(rfc3339(self.at)));
        obj.insert("level".into(), Value::String(self.level.as_str().into()));
        obj.insert("target".into(), Value::String(self.target.clone()));
        obj.insert("message".into(), Value::String(self.message.clone()));
        for (k, v) in &self.fields {
            obj.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(obj).to_string()
    }
}

/// RFC 3339 with microseconds in UTC, the form both syslog (RFC 5424) and JSON consumers take.
pub fn rfc3339(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

/// Where finished records go.
pub trait RecordSink: Send + Sync + 'static {
    fn accept(&self, record: &Arc<LogRecord>);
}

/// A `tracing` layer that turns events into [`LogRecord`]s and hands each to every sink.
pub struct RecordLayer {
    sinks: Vec<Arc<dyn RecordSink>>,
}

impl RecordLayer {
    pub fn new(sinks: Vec<Arc<dyn RecordSink>>) -> Self {
        Self { sinks }
    }
}

/// The fields recorded on a span so far, kept in the span's extensions.
struct SpanFields(Map<String, Value>);

impl<S> tracing_subscriber::Layer<S> for RecordLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut v = JsonVisitor::default();
        attrs.record(&mut v);
        remember(id, v.fields, &ctx);
    }

    fn on_record(&self, id: &Id, values: &SpanRecord<'_>, ctx: Context<'_, S>) {
        let mut v = JsonVisitor::default();
        values.record(&mut v);
        remember(id, v.fields, &ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if self.sinks.is_empty() {
            return;
        }
        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    fields.extend(f.0.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut v = JsonVisitor::default();
        event.record(&mut v);
        fields.extend(v.fields);
        let message = v.message.unwrap_or_default();
        let meta = event.metadata();
        #[expect(clippy::disallowed_methods, reason = "a log line is stamped with the real time, never a test's clock")]
        let at = OffsetDateTime::now_utc();
        let record =
            Arc::new(LogRecord { at, level: *meta.level(), target: meta.target().to_string(), message, fields });
        for sink in &self.sinks {
            sink.accept(&record);
        }
    }
}

/// Add fields to a span's record. Two of these layers (standard error and shipping) may share a
/// span, so the record is created by whichever comes first and merged into by the other.
fn remember<S>(id: &Id, fields: Map<String, Value>, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = ctx.span(id) else { return };
    let mut ext = span.extensions_mut();
    match ext.get_mut::<SpanFields>() {
        Some(existing) => existing.0.extend(fields),
        None => ext.insert(SpanFields(fields)),
    }
}

/// Collects fields as JSON values; `message` is kept apart.
#[derive(Default)]
struct JsonVisitor {
    fields: Map<String, Value>,
    message: Option<String>,
}

impl JsonVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.insert(field.name().to_string(), value);
        }
    }
}

impl Visit for JsonVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Default)]
    struct Collect(Mutex<Vec<Arc<LogRecord>>>);
    impl RecordSink for Collect {
        fn accept(&self, record: &Arc<LogRecord>) {
            self.0.lock().expect("test lock").push(record.clone());
        }
    }

    /// A line inside a request span carries the span's ids, including ones recorded later.
    #[test]
    fn events_carry_the_fields_of_their_spans() {
        let sink = Arc::new(Collect::default());
        let subscriber = tracing_subscriber::registry().with(RecordLayer::new(vec![sink.clone()]));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = "r-1", tenant_id = tracing::field::Empty);
            let _g = span.enter();
            span.record("tenant_id", "t-9");
            tracing::warn!(count = 3, "something \"odd\"");
        });
        let got = sink.0.lock().unwrap();
        assert_eq!(got.len(), 1);
        let v: Value = serde_json::from_str(&got[0].to_json()).unwrap();
        assert_eq!(v["request_id"], "r-1");
        assert_eq!(v["tenant_id"], "t-9");
        assert_eq!(v["count"], 3);
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["message"], "something \"odd\"");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
