//! The UI login: `POST /api/auth/login` (name and password → an `HttpOnly; SameSite=Lax` cookie, `Secure`
//! over TLS, and a CSRF token), `GET /api/auth/me` (who is logged in, the CSRF token, the projects),
//! `POST /api/auth/logout`. With authentication off, `me` says so and lists the projects.

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use sessiontrace_auth::{Login, Refusal};

use crate::access::{LOGIN_COOKIE, check_csrf, client_address, cookie, is_secure, refusal_response};
use crate::endpoints::read_body;
use crate::error::ApiError;
use crate::state::AppState;

/// The login routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/auth/login", post(log_in))
        .route("/api/auth/me", get(me))
        .route("/api/auth/logout", post(log_out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    name: String,
    password: String,
}

async fn projects(state: &AppState) -> Result<Vec<String>, ApiError> {
    let mut names: Vec<String> =
        state.store.projects().await?.into_iter().map(|info| info.project.as_str().to_string()).collect();
    names.sort();
    Ok(names)
}

async fn me_body(state: &AppState, login: Option<&Login>) -> Result<Value, ApiError> {
    Ok(json!({
        "auth": if state.auth.enabled() { "on" } else { "off" },
        "user": login.map(|l| json!({"name": l.user.name, "role": l.user.role.as_str()})),
        "csrf_token": login.map(|l| l.session.csrf_token.clone()),
        "projects": projects(state).await?,
    }))
}

fn login_cookie(
    state: &AppState,
    request_headers: &axum::http::HeaderMap,
    value: &str,
    max_age: Option<u64>,
) -> HeaderValue {
    let secure = if is_secure(state, request_headers) { "; Secure" } else { "" };
    let age = max_age.map_or(String::new(), |seconds| format!("; Max-Age={seconds}"));
    HeaderValue::from_str(&format!("{LOGIN_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/{age}{secure}"))
        .expect("cookie is ASCII")
}

async fn log_in(State(state): State<AppState>, request: Request) -> Response {
    let socket = request.extensions().get::<ConnectInfo<crate::tls::ClientAddr>>().map(|info| info.0.0);
    let (parts, body) = request.into_parts();
    let address = client_address(&state, &parts.headers, socket);
    let body = match read_body(body, 64 * 1024, state.config.body_read_timeout()).await {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let credentials: Credentials = match serde_json::from_slice(&body) {
        Ok(credentials) => credentials,
        Err(error) => {
            return ApiError::BadRequest(format!("login needs {{\"name\": ..., \"password\": ...}}: {error}"))
                .into_response();
        }
    };
    match state.auth.log_in(&credentials.name, &credentials.password, address).await {
        Ok((token, login)) => match me_body(&state, Some(&login)).await {
            Ok(body) => {
                let max_age = state.config.login_max().as_secs();
                let cookie = login_cookie(&state, &parts.headers, &token, Some(max_age));
                (StatusCode::OK, [(header::SET_COOKIE, cookie)], Json(body)).into_response()
            }
            Err(error) => error.into_response(),
        },
        Err(refusal) => refusal_response(&state, &refusal),
    }
}

async fn me(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if !state.auth.enabled() {
        return match me_body(&state, None).await {
            Ok(body) => Json(body).into_response(),
            Err(error) => error.into_response(),
        };
    }
    let Some(token) = cookie(&headers, LOGIN_COOKIE) else {
        return refusal_response(&state, &Refusal::Missing);
    };
    match state.auth.login(&token).await {
        Ok(login) => match me_body(&state, Some(&login)).await {
            Ok(body) => Json(body).into_response(),
            Err(error) => error.into_response(),
        },
        Err(refusal) => refusal_response(&state, &refusal),
    }
}

async fn log_out(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let Some(token) = cookie(&headers, LOGIN_COOKIE) else {
        return refusal_response(&state, &Refusal::Missing);
    };
    let login = match state.auth.login(&token).await {
        Ok(login) => login,
        Err(refusal) => return refusal_response(&state, &refusal),
    };
    if let Err(refusal) = check_csrf(&state, &headers, &login) {
        return refusal_response(&state, &refusal);
    }
    if let Err(refusal) = state.auth.log_out(&token).await {
        return refusal_response(&state, &refusal);
    }
    tracing::info!(user = %login.user.name, "logged out");
    let cookie = login_cookie(&state, &headers, "", Some(0));
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}
