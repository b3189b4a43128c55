//! The gateway: serves the shop's page and its public API. `POST /api/login` checks a password sent in a
//! JSON body (stored masked by the SDK and by the server), `GET /api/products` asks inventory,
//! `POST /api/checkout` hands the order to orders with the caller's `Authorization` header,
//! `GET /api/forecast` asks inventory for a stock forecast that fails slowly.
//! HTML responses get `<meta name="traceparent">` so the page's browser spans join the server's trace.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sessiontrace_sdk::TracedClient;

#[derive(Clone)]
struct Gateway {
    client: TracedClient,
    orders: String,
    inventory: String,
    page: String,
}

/// The gateway's routes.
pub fn router(topology: &crate::Topology) -> Router {
    let gateway = Gateway {
        client: TracedClient::new(reqwest::Client::new()),
        orders: topology.url(crate::Service::Orders),
        inventory: topology.url(crate::Service::Inventory),
        page: crate::page::render(&topology.sessiontrace_api),
    };
    Router::new()
        .route("/", get(page))
        .route("/api/login", post(login))
        .route("/api/products", get(products))
        .route("/api/checkout", post(checkout))
        .route("/api/forecast", get(forecast))
        .with_state(gateway)
        .layer(sessiontrace_sdk::SessionTraceLayer::new().with_html_meta(true))
        .merge(crate::health_routes())
        .merge(uninstrumented())
}

/// `GET /api/recommendations`, deliberately outside the tracing layer: the call a service makes that was
/// never instrumented, so a recorded session shows a browser call without backend spans (completeness).
fn uninstrumented() -> Router {
    Router::new().route(
        "/api/recommendations",
        get(|| async { axum::Json(serde_json::json!({"recommended": ["green tea", "teapot"]})) }),
    )
}

async fn page(State(gateway): State<Gateway>) -> Html<String> {
    Html(gateway.page.clone())
}

#[derive(Deserialize)]
struct Login {
    user: String,
    password: String,
}

async fn login(Json(login): Json<Login>) -> Response {
    if login.password.len() < 4 {
        tracing::warn!(user = %login.user, "login refused");
        return crate::error_json(StatusCode::UNAUTHORIZED, "wrong user or password");
    }
    tracing::info!(user = %login.user, "user signed in");
    let token = format!("demo-{}", login.user.chars().rev().collect::<String>());
    Json(json!({"user": login.user, "token": token})).into_response()
}

/// Relays a downstream answer: status and JSON body.
async fn relay(result: reqwest::Result<reqwest::Response>, what: &str) -> Response {
    match result {
        Ok(response) => {
            let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let body = response.json::<Value>().await.unwrap_or(Value::Null);
            (status, Json(body)).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "{what} unreachable");
            crate::error_json(StatusCode::BAD_GATEWAY, &format!("{what} unreachable"))
        }
    }
}

async fn products(State(gateway): State<Gateway>) -> Response {
    let url = format!("{}/stock", gateway.inventory);
    relay(gateway.client.send_named("GET /stock", gateway.client.get(url)).await, "inventory").await
}

async fn checkout(State(gateway): State<Gateway>, headers: HeaderMap, Json(order): Json<Value>) -> Response {
    tracing::info!(sku = %order["sku"], "checkout started");
    let mut request = gateway.client.post(format!("{}/orders", gateway.orders)).json(&order);
    if let Some(authorization) = headers.get("authorization") {
        request = request.header("authorization", authorization.clone());
    }
    relay(gateway.client.send_named("POST /orders", request).await, "orders").await
}

async fn forecast(State(gateway): State<Gateway>) -> Response {
    let url = format!("{}/forecast", gateway.inventory);
    relay(gateway.client.send_named("GET /forecast", gateway.client.get(url)).await, "inventory").await
}
