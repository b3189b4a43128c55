//! The inventory service: products in an in-memory SQLite database. `GET /stock` lists them,
//! `POST /reserve {sku, qty}` takes stock (409 when there is not enough), `GET /forecast` waits
//! [`FORECAST_DELAY`] and answers 503 (the slow failure behind the page's "Stock forecast" button). Each
//! query runs in a `client` span with the database semantic-convention attributes.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _};
use opentelemetry::{Context, KeyValue};
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{Value, json};

type Db = Arc<Mutex<Connection>>;

/// How long `GET /forecast` works before it fails.
pub const FORECAST_DELAY: std::time::Duration = std::time::Duration::from_millis(1_600);

const SCHEMA: &str = "
CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL, stock INTEGER NOT NULL);
INSERT INTO products VALUES ('tea', 'Green tea', 4.5, 40), ('mug', 'Blue mug', 9.0, 12), ('pot', 'Tea pot', 25.0, 3);
";

/// The inventory service's routes, with a fresh database.
pub fn router() -> anyhow::Result<Router> {
    let connection = Connection::open_in_memory()?;
    connection.execute_batch(SCHEMA)?;
    let db: Db = Arc::new(Mutex::new(connection));
    Ok(Router::new()
        .route("/stock", get(stock))
        .route("/reserve", post(reserve))
        .route("/forecast", get(forecast))
        .with_state(db)
        .layer(sessiontrace_sdk::SessionTraceLayer::new())
        .merge(crate::health_routes()))
}

/// Runs `query` in a `db` span, a child of the current span.
fn in_db_span<T>(operation: &str, sql: &str, query: impl FnOnce() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let tracer = crate::telemetry::tracer();
    let mut span = tracer
        .span_builder(format!("{operation} products"))
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new("db.system.name", "sqlite"),
            KeyValue::new("db.operation.name", operation.to_string()),
            KeyValue::new("db.collection.name", "products"),
            KeyValue::new("db.query.text", sql.to_string()),
        ])
        .start_with_context(&tracer, &Context::current());
    let result = query();
    if let Err(error) = &result {
        span.set_status(Status::error(error.to_string()));
    }
    span.end();
    result
}

async fn stock(State(db): State<Db>) -> Response {
    let sql = "SELECT sku, name, price, stock FROM products ORDER BY sku";
    let rows = in_db_span("SELECT", sql, || {
        let connection = db.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut statement = connection.prepare(sql)?;
        let rows = statement.query_map([], |row| {
            Ok(json!({"sku": row.get::<_, String>(0)?, "name": row.get::<_, String>(1)?,
                      "price": row.get::<_, f64>(2)?, "stock": row.get::<_, i64>(3)?}))
        })?;
        rows.collect::<rusqlite::Result<Vec<Value>>>()
    });
    match rows {
        Ok(products) => {
            tracing::info!(products = products.len(), "stock listed");
            Json(json!({"products": products})).into_response()
        }
        Err(error) => crate::error_json(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

#[derive(Deserialize)]
struct Reservation {
    sku: String,
    qty: i64,
}

async fn reserve(State(db): State<Db>, Json(reservation): Json<Reservation>) -> Response {
    let sql = "UPDATE products SET stock = stock - ?1 WHERE sku = ?2 AND stock >= ?1 RETURNING price, stock";
    let reserved = in_db_span("UPDATE", sql, || {
        let connection = db.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut statement = connection.prepare(sql)?;
        let mut rows = statement.query(rusqlite::params![reservation.qty, reservation.sku])?;
        match rows.next()? {
            Some(row) => Ok(Some((row.get::<_, f64>(0)?, row.get::<_, i64>(1)?))),
            None => Ok(None),
        }
    });
    match reserved {
        Ok(Some((price, left))) => {
            tracing::info!(sku = %reservation.sku, qty = reservation.qty, left, "stock reserved");
            Json(json!({"sku": reservation.sku, "qty": reservation.qty, "unit_price": price, "left": left}))
                .into_response()
        }
        Ok(None) => {
            tracing::warn!(sku = %reservation.sku, qty = reservation.qty, "not enough stock");
            crate::error_json(StatusCode::CONFLICT, "not enough stock")
        }
        Err(error) => crate::error_json(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

/// Always fails, slowly: the forecast model "times out" after [`FORECAST_DELAY`].
async fn forecast() -> Response {
    tokio::time::sleep(FORECAST_DELAY).await;
    tracing::error!(waited_ms = FORECAST_DELAY.as_millis() as u64, "stock forecast timed out");
    crate::error_json(StatusCode::SERVICE_UNAVAILABLE, "stock forecast timed out")
}
