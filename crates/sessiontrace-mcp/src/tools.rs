//! The tools. Each calls the query API as the caller, answers markdown (or JSON with
//! `format: "json"`) within its stated budget, and reports a problem as a tool error of one sentence.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::render;
use crate::{Api, Caller};

/// Default token budget of every answer (≈ characters / 4).
pub const DEFAULT_MAX_TOKENS: usize = 8_000;

/// The read-only tools over one [`Api`].
#[derive(Clone)]
pub struct SessionTools {
    api: Arc<dyn Api>,
    tool_router: ToolRouter<Self>,
}

type ToolResult = Result<CallToolResult, ErrorData>;

/// A tool error: one clear sentence for the assistant.
fn refuse(sentence: impl Into<String>) -> ToolResult {
    Ok(CallToolResult::error(vec![ContentBlock::text(sentence.into())]))
}

fn answer(text: String) -> ToolResult {
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
}

fn wants_json(format: &Option<String>) -> Result<bool, String> {
    match format.as_deref() {
        None | Some("md") | Some("markdown") => Ok(false),
        Some("json") => Ok(true),
        Some(other) => Err(format!("format must be \"md\" or \"json\", not {other:?}.")),
    }
}

fn budget(max_tokens: Option<usize>) -> usize {
    max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).clamp(200, 100_000)
}

fn check_trace_id(text: &str) -> Result<String, String> {
    let lower = text.trim().to_ascii_lowercase();
    if lower.len() == 32 && lower.bytes().all(|b| b.is_ascii_hexdigit()) && lower.bytes().any(|b| b != b'0') {
        Ok(lower)
    } else {
        Err(format!("A trace id is 32 hexadecimal characters (not all zero), and {text:?} is not one."))
    }
}

fn check_path_part(what: &str, text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(format!("{what} {text:?} is not an id: use a session id or short id from list_sessions."));
    }
    Ok(text.to_string())
}

/// A query string from pairs, values percent-encoded.
fn query(pairs: &[(&str, String)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
}

/// The caller's credential headers from the HTTP request that carried the MCP message (none over stdio).
fn caller(context: &RequestContext<RoleServer>) -> Caller {
    context.extensions.get::<http::request::Parts>().map(Caller::from_request).unwrap_or_default()
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ListSessionsParams {
    /// Text in the name, id, short id, user, tags or attributes.
    pub query: Option<String>,
    /// Text in the user field.
    pub user: Option<String>,
    /// Only sessions with a trace that touched this service.
    pub service: Option<String>,
    /// true: only sessions with errors; false: only sessions without.
    pub has_errors: Option<bool>,
    /// Only sessions with a frustration signal of this kind: rage, dead or error (clicks).
    pub signal: Option<String>,
    /// Sessions that overlap this window: start (RFC 3339 or Unix milliseconds).
    pub since: Option<String>,
    /// End of the window (RFC 3339 or Unix milliseconds).
    pub until: Option<String>,
    /// How many sessions (default 20, at most 100).
    pub limit: Option<u32>,
    /// The `cursor` a previous answer gave for the next page.
    pub cursor: Option<String>,
    /// "md" (default) or "json".
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct GetSessionParams {
    /// Session id or short id (8 hex characters).
    pub session: String,
    /// Sections to keep: summary, steps, signals, timeline, requests, traces, logs (default: all).
    pub sections: Option<Vec<String>>,
    /// Token budget of the answer (default 8000).
    pub max_tokens: Option<usize>,
    /// Cap of each captured body in bytes (default 2048).
    pub max_body: Option<usize>,
    /// "md" (default) or "json" (schema sessiontrace.export/v1).
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct GetTraceParams {
    /// Trace id (32 hex characters).
    pub trace_id: String,
    /// Only this span and what is under it.
    pub span_id: Option<String>,
    /// Only spans with an error status (and their ancestors).
    pub errors_only: Option<bool>,
    /// How many spans at most (default 100), chosen errors first, then longest.
    pub max_spans: Option<usize>,
    /// Token budget of the answer (default 8000).
    pub max_tokens: Option<usize>,
    /// "md" (default) or "json".
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct GetSpanParams {
    /// Trace id (32 hex characters).
    pub trace_id: String,
    /// Span id (16 hex characters).
    pub span_id: String,
    /// Cap of each captured body in bytes (default 8192).
    pub max_body: Option<usize>,
    /// Token budget of the answer (default 8000).
    pub max_tokens: Option<usize>,
    /// "md" (default) or "json".
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchLogsParams {
    /// Logs of this session (id or short id).
    pub session: Option<String>,
    /// Logs of this trace (32 hex characters).
    pub trace_id: Option<String>,
    /// Logs of this service.
    pub service: Option<String>,
    /// Lowest severity: trace, debug, info, warn, error, fatal.
    pub min_severity: Option<String>,
    /// Text in the log body.
    pub text: Option<String>,
    /// How many records (default 50, at most 500).
    pub limit: Option<usize>,
    /// The `cursor` a previous answer gave for the next page.
    pub cursor: Option<String>,
    /// Token budget of the answer (default 8000).
    pub max_tokens: Option<usize>,
    /// "md" (default) or "json".
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct GetUserActionsParams {
    /// Session id or short id.
    pub session: String,
    /// From this many seconds after the session start.
    pub from_s: Option<f64>,
    /// Up to this many seconds after the session start.
    pub to_s: Option<f64>,
    /// Also the requests, console errors and page errors between the actions (default true).
    pub include_requests: Option<bool>,
    /// Token budget of the answer (default 8000).
    pub max_tokens: Option<usize>,
    /// "md" (default) or "json".
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct FindSessionsByTraceParams {
    /// Trace id (32 hex characters), e.g. from an x-trace-id response header or a log line.
    pub trace_id: String,
    /// "md" (default) or "json".
    pub format: Option<String>,
}

impl SessionTools {
    /// GET as the caller; the JSON answer, or the sentence to refuse with.
    async fn get_json(&self, caller: &Caller, path: &str) -> Result<Value, String> {
        let text = self.get_text(caller, path).await?;
        serde_json::from_str(&text).map_err(|e| format!("The server answered with JSON that does not parse: {e}."))
    }

    async fn get_text(&self, caller: &Caller, path: &str) -> Result<String, String> {
        let answer = self.api.get(caller, path).await?;
        if (200..300).contains(&answer.status) {
            return Ok(answer.body);
        }
        let message = serde_json::from_str::<Value>(&answer.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("status {}", answer.status));
        Err(sentence(answer.status, &message))
    }
}

/// One sentence from an API error.
fn sentence(status: u16, message: &str) -> String {
    let mut text = match status {
        401 => format!("The sessiontrace server needs a read key ({message})"),
        403 => format!("The sessiontrace server refused this read ({message})"),
        404 => {
            let mut chars = message.chars();
            chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
                + " in this project"
        }
        429 => format!("The sessiontrace server is rate limiting this key; retry shortly ({message})"),
        _ => format!("The sessiontrace server answered {status}: {message}"),
    };
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

macro_rules! try_sentence {
    ($value:expr) => {
        match $value {
            Ok(value) => value,
            Err(sentence) => return refuse(sentence),
        }
    };
}

#[tool_router]
impl SessionTools {
    pub fn new(api: Arc<dyn Api>) -> Self {
        SessionTools { api, tool_router: Self::tool_router() }
    }

    #[tool(description = "List recorded sessions, newest first, with counts of traces, spans, errors and frustration \
                       signals (rage/dead/error clicks) and the services they touched. Use it to find the session a \
                       user reported (by user, text, time window, has_errors or signal); then call get_session with \
                       its short id. Pages with `cursor`.")]
    async fn list_sessions(
        &self,
        Parameters(params): Parameters<ListSessionsParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let json_out = try_sentence!(wants_json(&params.format));
        let limit = params.limit.unwrap_or(20).clamp(1, 100);
        let offset: usize = match params.cursor.as_deref() {
            None => 0,
            Some(cursor) => try_sentence!(
                cursor.parse().map_err(|_| format!("The cursor {cursor:?} is not one this tool gave out."))
            ),
        };
        let mut pairs = vec![("limit", limit.to_string()), ("offset", offset.to_string())];
        for (key, value) in
            [("q", params.query), ("user", params.user), ("service", params.service), ("signal", params.signal)]
        {
            if let Some(value) = value {
                pairs.push((key, value));
            }
        }
        if let Some(has_errors) = params.has_errors {
            pairs.push(("has_error", has_errors.to_string()));
        }
        if let Some(since) = params.since {
            pairs.push(("from", since));
        }
        if let Some(until) = params.until {
            pairs.push(("to", until));
        }
        let page = try_sentence!(self.get_json(&caller(&context), &format!("/api/sessions?{}", query(&pairs))).await);
        if json_out {
            let shown = page["sessions"].as_array().map_or(0, Vec::len);
            let total = page["total"].as_u64().unwrap_or(0) as usize;
            let next = (offset + shown < total).then(|| (offset + shown).to_string());
            let text = serde_json::to_string_pretty(
                &json!({"sessions": page["sessions"], "total": total, "next_cursor": next}),
            )
            .unwrap_or_default();
            return answer(render::fit(text, DEFAULT_MAX_TOKENS, "ask for fewer with `limit`"));
        }
        answer(render::fit(render::sessions(&page, offset), DEFAULT_MAX_TOKENS, "ask for fewer with `limit`"))
    }

    #[tool(
        description = "The whole session as text for debugging: header, summary, steps to reproduce (clicks, inputs with \
                       masked values, navigations), frustration signals (rage/dead/error clicks with the request, trace \
                       and span behind each and a link to that moment), a merged timeline (+seconds), failing requests with masked headers \
                       and bodies, trace trees of failing and slow requests, warn/error logs. Start here once you know \
                       the session; it states what it left out and which call gets the rest. Secrets stay masked."
    )]
    async fn get_session(
        &self,
        Parameters(params): Parameters<GetSessionParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let json_out = try_sentence!(wants_json(&params.format));
        let session = try_sentence!(check_path_part("The session", &params.session));
        let max_tokens = budget(params.max_tokens);
        let pairs = [
            ("format", if json_out { "json" } else { "md" }.to_string()),
            ("max_tokens", max_tokens.to_string()),
            ("max_body", params.max_body.unwrap_or(2_048).min(65_536).to_string()),
        ];
        let path = format!("/api/sessions/{session}/export?{}", query(&pairs));
        let text = try_sentence!(self.get_text(&caller(&context), &path).await);
        let sections = params.sections.unwrap_or_default();
        const KNOWN: &[&str] = &["summary", "steps", "signals", "timeline", "requests", "traces", "logs"];
        if let Some(unknown) = sections.iter().find(|s| !KNOWN.contains(&s.as_str())) {
            return refuse(format!(
                "Unknown section {unknown:?}: use summary, steps, signals, timeline, requests, traces or logs."
            ));
        }
        if sections.is_empty() {
            return answer(text);
        }
        if json_out {
            let mut value: Value =
                try_sentence!(serde_json::from_str(&text).map_err(|e| format!("The export did not parse: {e}.")));
            let keep = |key: &str| match key {
                "schema" | "session" | "limits" | "truncated" | "ui_path" => true,
                "summary" => sections.iter().any(|s| s == "summary"),
                "steps" | "steps_source" => sections.iter().any(|s| s == "steps"),
                "traces" | "other_traces" => sections.iter().any(|s| s == "traces"),
                other => sections.iter().any(|s| s == other),
            };
            if let Some(object) = value.as_object_mut() {
                object.retain(|key, _| keep(key));
            }
            return answer(serde_json::to_string_pretty(&value).unwrap_or_default());
        }
        answer(markdown_sections(&text, &sections))
    }

    #[tool(
        description = "The spans of one trace as a tree (service, name, kind, duration, HTTP status, errors), chosen \
                       errors first then longest when there are more than max_spans. Use it for a trace id from \
                       get_session, a log or a failing request; narrow it with span_id or errors_only."
    )]
    async fn get_trace(
        &self,
        Parameters(params): Parameters<GetTraceParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let json_out = try_sentence!(wants_json(&params.format));
        let trace_id = try_sentence!(check_trace_id(&params.trace_id));
        let max_tokens = budget(params.max_tokens);
        let trace = try_sentence!(self.get_json(&caller(&context), &format!("/api/traces/{trace_id}")).await);
        let spans = trace["spans"].as_array().cloned().unwrap_or_default();
        let under = params.span_id.as_deref().map(|s| s.trim().to_ascii_lowercase());
        if let Some(span_id) = &under
            && !spans.iter().any(|s| s["span_id"] == span_id.as_str())
        {
            return refuse(format!("Trace {trace_id} has no span {span_id}."));
        }
        let max_spans = params.max_spans.unwrap_or(100).clamp(1, 5_000);
        let (chosen, eligible) =
            render::choose(&spans, under.as_deref(), params.errors_only.unwrap_or(false), max_spans);
        let more = "ask get_trace with a larger max_spans or max_tokens, or narrow it with span_id";
        if json_out {
            let rules = sessiontrace_model::masking::MaskingRules::default();
            let shown: Vec<Value> = chosen
                .iter()
                .map(|&i| {
                    let mut span = spans[i].clone();
                    let attributes = span["attributes"].as_object().cloned().unwrap_or_default();
                    span["attributes"] =
                        Value::Object(sessiontrace_export::mask_attributes(&rules, &attributes, 2_048));
                    span
                })
                .collect();
            let text = serde_json::to_string_pretty(&json!({"trace_id": trace_id, "session_id": trace["session_id"],
                "spans_total": spans.len(), "spans_eligible": eligible, "spans_shown": shown.len(), "spans": shown}))
            .unwrap_or_default();
            return answer(render::fit(text, max_tokens, more));
        }
        let errors = spans.iter().filter(|s| s["status"]["code"] == "error").count();
        let mut text = format!(
            "# Trace `{trace_id}`\n\nsession: {}; {} spans, {errors} with errors\n\n",
            trace["session_id"].as_str().unwrap_or("none"),
            spans.len()
        );
        text.push_str(&render::tree(&spans, &chosen));
        if chosen.len() < spans.len() {
            text.push_str(&format!(
                "\n_showing {} of {} spans ({eligible} matched; errors, then longest, with their parents); {more}_\n",
                chosen.len(),
                spans.len()
            ));
        }
        answer(render::fit(text, max_tokens, more))
    }

    #[tool(
        description = "Everything about one span: every attribute, event and link, captured request/response headers \
                       and bodies (masked, capped at max_body). Use it after get_trace or get_session points at the \
                       span that failed."
    )]
    async fn get_span(
        &self,
        Parameters(params): Parameters<GetSpanParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let json_out = try_sentence!(wants_json(&params.format));
        let trace_id = try_sentence!(check_trace_id(&params.trace_id));
        let span_id = params.span_id.trim().to_ascii_lowercase();
        let max_body = params.max_body.unwrap_or(8_192).min(262_144);
        let max_tokens = budget(params.max_tokens);
        let trace = try_sentence!(self.get_json(&caller(&context), &format!("/api/traces/{trace_id}")).await);
        let Some(span) =
            trace["spans"].as_array().and_then(|spans| spans.iter().find(|s| s["span_id"] == span_id.as_str()))
        else {
            return refuse(format!("Trace {trace_id} has no span {span_id:?}."));
        };
        let more = "ask with a smaller max_body, or a larger max_tokens";
        if json_out {
            let rules = sessiontrace_model::masking::MaskingRules::default();
            let mut span = span.clone();
            let attributes = span["attributes"].as_object().cloned().unwrap_or_default();
            span["attributes"] = Value::Object(sessiontrace_export::mask_attributes(&rules, &attributes, max_body));
            return answer(render::fit(serde_json::to_string_pretty(&span).unwrap_or_default(), max_tokens, more));
        }
        answer(render::fit(render::span(span, max_body), max_tokens, more))
    }

    #[tool(
        description = "Search log records by session, trace, service, lowest severity and text, oldest first. Use it \
                       to read what the backend logged around a failure. Pages with `cursor`."
    )]
    async fn search_logs(
        &self,
        Parameters(params): Parameters<SearchLogsParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let json_out = try_sentence!(wants_json(&params.format));
        let limit = params.limit.unwrap_or(50).clamp(1, 500);
        let offset: usize = match params.cursor.as_deref() {
            None => 0,
            Some(cursor) => try_sentence!(
                cursor.parse().map_err(|_| format!("The cursor {cursor:?} is not one this tool gave out."))
            ),
        };
        let min_severity = match params.min_severity.as_deref() {
            None => None,
            Some(level) => Some(try_sentence!(render::severity_number(level).ok_or_else(|| format!(
                "min_severity must be trace, debug, info, warn, error or fatal, not {level:?}."
            )))),
        };
        let caller = caller(&context);
        let trace_id = match &params.trace_id {
            Some(trace_id) => Some(try_sentence!(check_trace_id(trace_id))),
            None => None,
        };
        let mut start_ms = None;
        let path = match &params.session {
            Some(session) => {
                let session = try_sentence!(check_path_part("The session", session));
                let found = try_sentence!(self.get_json(&caller, &format!("/api/sessions/{session}")).await);
                start_ms = found["started_at_ms"].as_f64();
                format!("/api/sessions/{session}/logs")
            }
            None => {
                let mut pairs = vec![("limit", "10000".to_string())];
                if let Some(trace_id) = &trace_id {
                    pairs.push(("trace_id", trace_id.clone()));
                }
                if let Some(service) = &params.service {
                    pairs.push(("service", service.clone()));
                }
                if let Some(text) = &params.text {
                    pairs.push(("q", text.clone()));
                }
                format!("/api/logs?{}", query(&pairs))
            }
        };
        let found = try_sentence!(self.get_json(&caller, &path).await);
        let text_filter = params.text.as_deref().map(str::to_lowercase);
        let matching: Vec<&Value> = found["logs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|log| trace_id.as_deref().is_none_or(|t| log["trace_id"] == t))
            .filter(|log| params.service.as_deref().is_none_or(|s| log["service"] == s))
            .filter(|log| min_severity.is_none_or(|min| log["severity_number"].as_i64().unwrap_or(0) >= min))
            .filter(|log| {
                text_filter
                    .as_deref()
                    .is_none_or(|t| log["body"].as_str().unwrap_or_default().to_lowercase().contains(t))
            })
            .collect();
        let page: Vec<&Value> = matching.iter().skip(offset).take(limit).copied().collect();
        let next = (offset + page.len() < matching.len()).then(|| (offset + page.len()).to_string());
        let max_tokens = budget(params.max_tokens);
        let more = "ask for fewer with `limit`, or page with `cursor`";
        if json_out {
            let text =
                serde_json::to_string_pretty(&json!({"logs": page, "total": matching.len(), "next_cursor": next}))
                    .unwrap_or_default();
            return answer(render::fit(text, max_tokens, more));
        }
        let mut text = render::logs(&page, start_ms);
        if page.is_empty() {
            text = "No log records match.\n".into();
        }
        text.push_str(&format!("\nshowing {} of {} matching log records", page.len(), matching.len()));
        if let Some(next) = next {
            text.push_str(&format!("; next page: `cursor: \"{next}\"`"));
        }
        text.push('\n');
        answer(render::fit(text, max_tokens, more))
    }

    #[tool(
        description = "What the user did in a session, in order: navigations, clicks, inputs (values masked), and by \
                       default the requests and errors in between, with seconds from the session start. Use it to \
                       write steps to reproduce. Never returns raw DOM snapshots."
    )]
    async fn get_user_actions(
        &self,
        Parameters(params): Parameters<GetUserActionsParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let json_out = try_sentence!(wants_json(&params.format));
        let session = try_sentence!(check_path_part("The session", &params.session));
        let timeline =
            try_sentence!(self.get_json(&caller(&context), &format!("/api/sessions/{session}/timeline")).await);
        let start = timeline["session"]["started_at_ms"].as_f64().unwrap_or(0.0);
        let with_requests = params.include_requests.unwrap_or(true);
        let actions: Vec<Value> = timeline["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|item| {
                let kind = item["kind"].as_str().unwrap_or_default();
                matches!(kind, "click" | "input" | "navigation")
                    || (with_requests
                        && (kind == "network" || kind == "error" || (kind == "console" && item["status"] == "error")))
            })
            .filter(|item| {
                let seconds = (item["time_ms"].as_f64().unwrap_or(start) - start) / 1000.0;
                params.from_s.is_none_or(|from| seconds >= from) && params.to_s.is_none_or(|to| seconds <= to)
            })
            .map(|item| {
                let kind = item["kind"].as_str().unwrap_or_default();
                let label = item["label"].as_str().unwrap_or_default();
                let label = if kind == "input" {
                    format!("{label} (value {})", sessiontrace_model::masking::MASKED)
                } else {
                    label.to_string()
                };
                json!({"offset_s": ((item["time_ms"].as_f64().unwrap_or(start) - start) / 100.0).round() / 10.0,
                    "kind": kind, "label": label, "status": item["status"], "trace_id": item["trace_id"]})
            })
            .collect();
        let max_tokens = budget(params.max_tokens);
        let more = "narrow it with from_s / to_s, or include_requests: false";
        if json_out {
            let text =
                serde_json::to_string_pretty(&json!({"session_id": timeline["session"]["id"], "actions": actions}))
                    .unwrap_or_default();
            return answer(render::fit(text, max_tokens, more));
        }
        let mut text =
            format!("# User actions of session {}\n\n", timeline["session"]["short_id"].as_str().unwrap_or(&session));
        if actions.is_empty() {
            text.push_str(
                "No recorded user actions in this window (a session without the browser recorder has none).\n",
            );
        }
        for (index, action) in actions.iter().enumerate() {
            let error = if action["status"] == "error" { " ERROR" } else { "" };
            let trace = action["trace_id"].as_str().map(|t| format!(" trace `{t}`")).unwrap_or_default();
            text.push_str(&format!(
                "{}. +{:.1}s [{}] {}{error}{trace}\n",
                index + 1,
                action["offset_s"].as_f64().unwrap_or(0.0),
                action["kind"].as_str().unwrap_or_default(),
                action["label"].as_str().unwrap_or_default()
            ));
        }
        answer(render::fit(text, max_tokens, more))
    }

    #[tool(
        description = "Which recorded session a trace belongs to, from a trace id (an x-trace-id header, a log line, an \
                       APM link). Answers the session's short id, name, user and counts, or that the trace is in none."
    )]
    async fn find_sessions_by_trace(
        &self,
        Parameters(params): Parameters<FindSessionsByTraceParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let json_out = try_sentence!(wants_json(&params.format));
        let trace_id = try_sentence!(check_trace_id(&params.trace_id));
        let caller = caller(&context);
        let trace = try_sentence!(self.get_json(&caller, &format!("/api/traces/{trace_id}")).await);
        let Some(session_id) = trace["session_id"].as_str() else {
            if json_out {
                return answer(json!({"trace_id": trace_id, "sessions": []}).to_string());
            }
            return answer(format!("Trace {trace_id} belongs to no recorded session.\n"));
        };
        let session = try_sentence!(self.get_json(&caller, &format!("/api/sessions/{session_id}")).await);
        if json_out {
            return answer(
                serde_json::to_string_pretty(&json!({"trace_id": trace_id, "sessions": [session]})).unwrap_or_default(),
            );
        }
        let page = json!({"sessions": [session], "total": 1});
        answer(format!(
            "Trace `{trace_id}` belongs to session {}; read it with get_session.\n\n{}",
            session["short_id"].as_str().unwrap_or(session_id),
            render::sessions(&page, 0)
        ))
    }
}

/// Keeps the header and the asked `## ` sections of an export's markdown.
fn markdown_sections(text: &str, sections: &[String]) -> String {
    let heading_of = |line: &str| -> Option<&'static str> {
        let title = line.strip_prefix("## ")?;
        Some(if title.starts_with("Steps") {
            "steps"
        } else if title.starts_with("Frustration") {
            "signals"
        } else if title.starts_with("Timeline") {
            "timeline"
        } else if title.starts_with("Failing") {
            "requests"
        } else if title.starts_with("Traces") {
            "traces"
        } else if title.contains("logs") {
            "logs"
        } else {
            "other"
        })
    };
    let mut out = String::new();
    let mut keep = true;
    for line in text.split_inclusive('\n') {
        if let Some(section) = heading_of(line) {
            keep = sections.iter().any(|s| s == section);
        } else if line.starts_with("**Summary:**") {
            if sections.iter().any(|s| s == "summary") {
                out.push_str(line);
            }
            continue;
        } else if line.starts_with("---") {
            keep = true;
        }
        if keep {
            out.push_str(line);
        }
    }
    out
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SessionTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("sessiontrace", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "sessiontrace records full-stack sessions: what a user did in the browser and every backend span, \
                 log and request of it. To debug a reported problem: list_sessions (by user, text, has_errors) → \
                 get_session (steps, failing requests, trace trees, logs) → get_trace / get_span for detail. \
                 find_sessions_by_trace maps a trace id to its session. Read-only; secrets are masked.",
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_and_ids() {
        assert_eq!(sentence(404, "no session \"abc\""), "No session \"abc\" in this project.");
        assert!(check_trace_id("xyz").unwrap_err().starts_with("A trace id is 32 hexadecimal"));
        assert_eq!(check_trace_id("DEBDEB0102030405AAAAAAAAAAAAAAAA").unwrap(), "debdeb0102030405aaaaaaaaaaaaaaaa");
        assert!(check_path_part("The session", "../x").is_err());
        assert_eq!(query(&[("q", "a b&c".into())]), "q=a%20b%26c");
    }

    #[test]
    fn keeps_asked_sections() {
        let text = "# Session x\n\n- id\n\n**Summary:** 1 error.\n\n## Steps to reproduce\n\n1. a\n\n## Timeline\n\n+0.0s x\n\n---\n_export_\n";
        let kept = markdown_sections(text, &["steps".into()]);
        assert!(kept.contains("1. a"));
        assert!(!kept.contains("+0.0s"));
        assert!(!kept.contains("Summary"));
        assert!(kept.contains("_export_"));
        let text =
            text.replace("## Timeline", "## Frustration signals\n\n- +1.0s **dead click** on `b`\n\n## Timeline");
        let kept = markdown_sections(&text, &["signals".into()]);
        assert!(kept.contains("**dead click**") && !kept.contains("1. a") && !kept.contains("+0.0s"), "{kept}");
    }
}
