//! The payment service: `POST /pay {order_id, amount, card_number}`. Cards ending in `0002` are declined
//! (402); otherwise a payment fails at random with the configured rate (503, "provider timeout"), so
//! the demo shows error traces.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct Payment {
    order_id: String,
    amount: f64,
    card_number: String,
}

/// The payment service's routes.
pub fn router(failure_rate: f64) -> Router {
    let failure_rate = failure_rate.clamp(0.0, 1.0);
    Router::new()
        .route("/pay", post(move |body: Json<Payment>| pay(body, failure_rate)))
        .layer(sessiontrace_sdk::SessionTraceLayer::new())
        .merge(crate::health_routes())
}

async fn pay(Json(payment): Json<Payment>, failure_rate: f64) -> Response {
    if payment.card_number.ends_with("0002") {
        tracing::warn!(order_id = %payment.order_id, amount = payment.amount, "card declined");
        return crate::error_json(StatusCode::PAYMENT_REQUIRED, "card declined");
    }
    if rand::rng().random_bool(failure_rate) {
        tracing::error!(order_id = %payment.order_id, "payment provider timed out");
        return crate::error_json(StatusCode::SERVICE_UNAVAILABLE, "payment provider timeout");
    }
    tracing::info!(order_id = %payment.order_id, amount = payment.amount, "payment captured");
    let receipt = format!("rcpt-{:08x}", rand::rng().random::<u32>());
    (StatusCode::OK, Json(json!({"order_id": payment.order_id, "receipt": receipt, "status": "paid"}))).into_response()
}
