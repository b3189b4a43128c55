//! Backend sessions started by the service itself (shared/DESIGN.md section 2, kind `backend`): POST
//! `/api/sessions` to a sessiontrace server, then make the session active in this process, so every new
//! root trace carries its prefix ([`crate::ids::set_active_session`]) until it is stopped.

use serde_json::{Value, json};

use crate::ids::{SessionKind, clear_active_session, set_active_session};

/// The fields of the server's Session answer the SDK uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedSession {
    /// Long id.
    pub id: String,
    /// 8 hex characters, inside every trace id of the session.
    pub short_id: String,
    /// `manual`, `continuous` or `backend`.
    pub kind: String,
    /// A `traceparent` of the session, sampled.
    pub traceparent: String,
}

/// Why a session could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the server answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the server's answer lacks {0}")]
    Missing(&'static str),
}

fn field(value: &Value, name: &'static str) -> Result<String, SessionError> {
    value.get(name).and_then(Value::as_str).map(str::to_string).ok_or(SessionError::Missing(name))
}

/// Starts a session on the server at `api` (`http://127.0.0.1:8080`) with `request` as the body
/// (`{"name": .., "kind": "backend", "capture": {..}}`), and makes it this process's active session.
pub async fn start(api: &str, request: Value) -> Result<StartedSession, SessionError> {
    let mut request = request;
    if request.get("kind").is_none()
        && let Some(object) = request.as_object_mut()
    {
        object.insert("kind".into(), json!("backend"));
    }
    let response = reqwest::Client::new()
        .post(format!("{}/api/sessions", api.trim_end_matches('/')))
        .json(&request)
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        return Err(SessionError::Status { status: status.as_u16(), body: text });
    }
    let value: Value = serde_json::from_str(&text).map_err(|_| SessionError::Missing("a JSON body"))?;
    let session = StartedSession {
        id: field(&value, "id")?,
        short_id: field(&value, "short_id")?,
        kind: field(&value, "kind")?,
        traceparent: field(&value, "traceparent")?,
    };
    let trace_kind = if session.kind == "continuous" { SessionKind::Continuous } else { SessionKind::Recorded };
    set_active_session(trace_kind, &session.short_id);
    Ok(session)
}

/// Stops the session on the server and clears the process's active session.
pub async fn stop(api: &str, id: &str) -> Result<(), SessionError> {
    clear_active_session();
    let response =
        reqwest::Client::new().post(format!("{}/api/sessions/{id}/stop", api.trim_end_matches('/'))).send().await?;
    if !response.status().is_success() {
        let status = response.status().as_u16();
        return Err(SessionError::Status { status, body: response.text().await.unwrap_or_default() });
    }
    Ok(())
}
