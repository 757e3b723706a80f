//! The child's progress reports: PC1's SDR layers, read from what rust-fil-proofs logs as it
//! starts each one ("generating layer: N" single-core, "Layer N" multicore; the mock engine
//! says "MOCK PC1: generating layer: N"), sent to the worker as `ToWorker::Progress`.

use std::sync::atomic::{AtomicU64, Ordering};

use resources::Progress;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// SDR layers of the PC1 this child runs (0: not a PC1).
static LAYERS: AtomicU64 = AtomicU64::new(0);

/// This child runs a PC1 of `layers` layers.
pub fn pc1(layers: u64) {
    LAYERS.store(layers, Ordering::Relaxed);
}

/// The layer a log message says is starting.
pub fn layer_of(message: &str) -> Option<u64> {
    if let Some(i) = message.find("generating layer: ") {
        return message[i + "generating layer: ".len()..]
            .trim()
            .parse()
            .ok();
    }
    message.strip_prefix("Layer ")?.trim().parse().ok()
}

/// Watches log events and sends a report for each layer started, through `send`.
pub struct Watch<F> {
    pub send: F,
}

struct Message(Option<String>);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_string());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S: Subscriber, F: Fn(Progress) + 'static> Layer<S> for Watch<F> {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let total = LAYERS.load(Ordering::Relaxed);
        if total == 0 {
            return;
        }
        let mut m = Message(None);
        event.record(&mut m);
        if let Some(at) = m.0.as_deref().and_then(layer_of) {
            (self.send)(Progress::layer(at.min(total), total));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proofs_layer_messages_are_read() {
        assert_eq!(layer_of("generating layer: 3"), Some(3));
        assert_eq!(layer_of("MOCK PC1: generating layer: 2"), Some(2));
        assert_eq!(layer_of("Layer 11"), Some(11));
        assert_eq!(layer_of("Layer of cake"), None);
        assert_eq!(layer_of("storing labels on disk"), None);
    }
}
