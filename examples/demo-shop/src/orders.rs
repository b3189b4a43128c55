//! The orders service: `POST /orders {sku, qty, card_number}` reserves stock at inventory, then asks
//! payment; and `POST /test`, the service contract of the W3C Trace Context test harness.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use sessiontrace_sdk::TracedClient;

#[derive(Clone)]
struct Downstream {
    client: TracedClient,
    inventory: String,
    payment: String,
}

/// The orders service's routes.
pub fn router(topology: &crate::Topology) -> Router {
    let downstream = Downstream {
        client: TracedClient::new(reqwest::Client::new()),
        inventory: topology.url(crate::Service::Inventory),
        payment: topology.url(crate::Service::Payment),
    };
    Router::new()
        .route("/orders", post(create_order))
        .route("/test", post(harness))
        .with_state(downstream)
        .layer(sessiontrace_sdk::SessionTraceLayer::new())
        .merge(crate::health_routes())
}

#[derive(Deserialize)]
struct Order {
    sku: String,
    qty: i64,
    card_number: String,
}

/// Sends a JSON POST and reads the JSON answer (the client span ends when the body is read).
async fn post_json(client: &TracedClient, name: &str, url: &str, body: &Value) -> Result<(StatusCode, Value), String> {
    let response = client.send_named(name, client.post(url).json(body)).await.map_err(|error| error.to_string())?;
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let value = response.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, value))
}

async fn create_order(State(downstream): State<Downstream>, headers: HeaderMap, Json(order): Json<Order>) -> Response {
    let order_id = format!("ord-{:06x}", rand::rng().random::<u32>() & 0xff_ffff);
    let signed_in = headers.contains_key("authorization");
    tracing::info!(%order_id, sku = %order.sku, qty = order.qty, signed_in, "order received");
    let reservation = json!({"sku": order.sku, "qty": order.qty});
    let url = format!("{}/reserve", downstream.inventory);
    let (unit_price, left) = match post_json(&downstream.client, "POST /reserve", &url, &reservation).await {
        Ok((status, body)) if status.is_success() => (body["unit_price"].as_f64().unwrap_or(0.0), body["left"].clone()),
        Ok((status, body)) => {
            tracing::warn!(%order_id, %status, "reservation refused");
            return (status, Json(json!({"order_id": order_id, "error": body["error"]}))).into_response();
        }
        Err(error) => return crate::error_json(StatusCode::BAD_GATEWAY, &format!("inventory unreachable: {error}")),
    };
    let amount = unit_price * order.qty as f64;
    let payment = json!({"order_id": order_id, "amount": amount, "card_number": order.card_number});
    let url = format!("{}/pay", downstream.payment);
    match post_json(&downstream.client, "POST /pay", &url, &payment).await {
        Ok((status, body)) if status.is_success() => {
            tracing::info!(%order_id, amount, "order paid");
            let answer = json!({"order_id": order_id, "status": "paid", "amount": amount, "receipt": body["receipt"], "stock_left": left});
            (StatusCode::CREATED, Json(answer)).into_response()
        }
        Ok((status, body)) => {
            tracing::error!(%order_id, %status, reason = %body["error"], "payment failed");
            let answer = json!({"order_id": order_id, "status": "payment_failed", "error": body["error"]});
            (StatusCode::BAD_GATEWAY, Json(answer)).into_response()
        }
        Err(error) => crate::error_json(StatusCode::BAD_GATEWAY, &format!("payment unreachable: {error}")),
    }
}

#[derive(Deserialize)]
struct HarnessAction {
    url: String,
    arguments: Value,
}

/// The W3C Trace Context test harness's service contract: for each `{url, arguments}`, POST `arguments`
/// as JSON to `url`, propagating the incoming trace context as a participating service does (the outgoing
/// `traceparent` keeps the trace id and names this service's client span as the parent; `tracestate` is
/// passed on). A malformed incoming header starts a new trace, which is what the harness checks.
async fn harness(State(downstream): State<Downstream>, Json(actions): Json<Vec<HarnessAction>>) -> StatusCode {
    for action in actions {
        match downstream.client.send(downstream.client.post(&action.url).json(&action.arguments)).await {
            Ok(response) => {
                let _ = response.bytes().await;
            }
            Err(error) => tracing::warn!(url = %action.url, %error, "harness callback failed"),
        }
    }
    StatusCode::OK
}
