//! [`SessionTraceLayer`]: the tower `Layer` that wraps an HTTP service in [`SessionTrace`], with its
//! settings (capture, HTML meta injection, the tracer to use).

use std::sync::Arc;

use opentelemetry::global::BoxedTracer;
use tower::Layer;

use super::SessionTrace;
use crate::capture::CaptureConfig;
use crate::propagation::SessionPropagator;

/// Settings shared by every request of a [`SessionTrace`] service.
#[derive(Clone)]
pub(crate) struct LayerConfig {
    pub capture: CaptureConfig,
    pub html_meta: bool,
    pub propagator: SessionPropagator,
    /// `None`: the global tracer provider, looked up per request (so the layer may be built before
    /// `init`).
    pub tracer: Option<Arc<BoxedTracer>>,
}

/// Traces every request of an HTTP service (axum, hyper, any tower stack); see [`SessionTrace`].
///
/// ```no_run
/// let app: axum::Router = axum::Router::new()
///     .route("/", axum::routing::get(|| async { "hi" }))
///     .layer(sessiontrace_sdk::SessionTraceLayer::new());
/// ```
#[derive(Clone)]
pub struct SessionTraceLayer {
    config: Arc<LayerConfig>,
}

impl Default for SessionTraceLayer {
    fn default() -> Self {
        SessionTraceLayer::new()
    }
}

impl SessionTraceLayer {
    /// Default settings: capture of headers and bodies on session traces, no HTML meta, global tracer.
    pub fn new() -> Self {
        SessionTraceLayer {
            config: Arc::new(LayerConfig {
                capture: CaptureConfig::default(),
                html_meta: false,
                propagator: SessionPropagator::default(),
                tracer: None,
            }),
        }
    }

    fn edit(mut self, change: impl FnOnce(&mut LayerConfig)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self
    }

    /// What may be captured on session traces, the size limit and the masking rules.
    pub fn with_capture(self, capture: CaptureConfig) -> Self {
        self.edit(|config| config.capture = capture)
    }

    /// Insert `<meta name="traceparent" content="...">` after `<head>` in HTML responses, so the page's
    /// browser spans join the server's trace. This changes HTML bodies (and drops their
    /// `content-length`), hence off by default.
    pub fn with_html_meta(self, enabled: bool) -> Self {
        self.edit(|config| config.html_meta = enabled)
    }

    /// Use this tracer instead of the global tracer provider's.
    pub fn with_tracer(self, tracer: BoxedTracer) -> Self {
        self.edit(|config| config.tracer = Some(Arc::new(tracer)))
    }
}

impl<S> Layer<S> for SessionTraceLayer {
    type Service = SessionTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionTrace { inner, config: self.config.clone() }
    }
}
