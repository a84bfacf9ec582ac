//! [`ReconcileFields`]: the fields of the host's `reconcile` span, for test tracing layers that
//! record which plugin version ran which key.

/// `plugin`, `version` and `key` of a `reconcile` span, as their `Debug` text.
#[derive(Debug, Default, Clone)]
pub struct ReconcileFields {
    pub plugin: String,
    pub version: String,
    pub key: String,
}

impl ReconcileFields {
    /// The fields of the span `attrs` describes, when it is a `reconcile` span.
    pub fn of(attrs: &tracing::span::Attributes<'_>) -> Option<Self> {
        if attrs.metadata().name() != "reconcile" {
            return None;
        }
        let mut fields = Self::default();
        attrs.record(&mut fields);
        Some(fields)
    }
}

impl tracing::field::Visit for ReconcileFields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "plugin" => self.plugin = text,
            "version" => self.version = text,
            "key" => self.key = text,
            _ => {}
        }
    }
}
