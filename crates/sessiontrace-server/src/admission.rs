//! Admission control for the OTLP receivers: an in-flight bytes budget per receiver (OTLP/HTTP and
//! OTLP/gRPC, `max_in_flight_bytes` each). A request holds its decoded size from the moment its body is
//! read until it is answered, the durable write included, so however hard clients push, a receiver holds
//! at most its budget of request data (plus the bodies still being read, bounded by `max_connections`
//! and `max_body_bytes`). A request that does not fit now is refused at once with 503 + `Retry-After`
//! (HTTP) or `UNAVAILABLE` (gRPC), both of which OTLP exporters retry with back-off: waiting instead
//! would only move the queue into memory and the latency into timeouts. A request larger than the
//! whole budget is admitted when the budget is empty, so a valid request is never refused forever.
//! `/metrics` shows each budget's fill and refusals, and the store's write queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sessiontrace_pipeline::telemetry::ExpositionRow;
use sessiontrace_store::WriteQueue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Budget units are KiB: a semaphore counts permits in `u32` per acquisition.
const UNIT: usize = 1024;

/// Which receiver a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    OtlpHttp,
    OtlpGrpc,
}

impl Receiver {
    const ALL: [Receiver; 2] = [Receiver::OtlpHttp, Receiver::OtlpGrpc];

    fn label(self) -> &'static str {
        match self {
            Receiver::OtlpHttp => "otlp_http",
            Receiver::OtlpGrpc => "otlp_grpc",
        }
    }
}

struct Budget {
    units: Arc<Semaphore>,
    capacity_units: usize,
    admitted: AtomicU64,
    refused: AtomicU64,
}

/// The budgets of both receivers.
pub struct Admission {
    budgets: [Budget; 2],
}

/// A request's share of its receiver's budget, given back when dropped (the request was answered).
#[must_use = "the budget is given back when the permit is dropped"]
pub struct Admitted(#[allow(dead_code)] OwnedSemaphorePermit);

impl Admission {
    /// Budgets of `max_in_flight_bytes` per receiver.
    pub fn new(max_in_flight_bytes: usize) -> Self {
        let capacity_units = max_in_flight_bytes.div_ceil(UNIT).clamp(1, u32::MAX as usize);
        let budget = || Budget {
            units: Arc::new(Semaphore::new(capacity_units)),
            capacity_units,
            admitted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        };
        Admission { budgets: [budget(), budget()] }
    }

    fn budget(&self, receiver: Receiver) -> &Budget {
        &self.budgets[receiver as usize]
    }

    /// Takes `bytes` of `receiver`'s budget, or refuses with a retryable 503 / `UNAVAILABLE` when it is
    /// spent. Never waits.
    pub fn admit(&self, receiver: Receiver, bytes: usize) -> Result<Admitted, ApiError> {
        let budget = self.budget(receiver);
        let units = bytes.div_ceil(UNIT).clamp(1, budget.capacity_units) as u32;
        match budget.units.clone().try_acquire_many_owned(units) {
            Ok(permit) => {
                budget.admitted.fetch_add(1, Ordering::Relaxed);
                Ok(Admitted(permit))
            }
            Err(_) => Err(Self::refusal(budget)),
        }
    }

    /// Refuses at once when `receiver`'s budget is spent now, so that a body is not even read.
    pub fn check(&self, receiver: Receiver) -> Result<(), ApiError> {
        let budget = self.budget(receiver);
        if budget.units.available_permits() == 0 { Err(Self::refusal(budget)) } else { Ok(()) }
    }

    fn refusal(budget: &Budget) -> ApiError {
        budget.refused.fetch_add(1, Ordering::Relaxed);
        ApiError::Unavailable(format!(
            "the server is at capacity ({} KiB of requests in progress on this receiver); retry after a second",
            budget.capacity_units
        ))
    }

    /// Bytes of requests in progress on `receiver`.
    pub fn in_flight_bytes(&self, receiver: Receiver) -> u64 {
        let budget = self.budget(receiver);
        ((budget.capacity_units - budget.units.available_permits()) * UNIT) as u64
    }

    /// `/metrics` rows: each budget's size and fill, admitted and refused requests, the store's queue.
    pub fn rows(&self, queue: Option<WriteQueue>) -> Vec<ExpositionRow> {
        let mut rows = Vec::new();
        for receiver in Receiver::ALL {
            let budget = self.budget(receiver);
            let labels = format!("receiver=\"{}\"", receiver.label());
            rows.extend([
                (
                    "sessiontrace_admission_budget_bytes",
                    labels.clone(),
                    "In-flight bytes budget of a receiver (max_in_flight_bytes)",
                    "gauge",
                    (budget.capacity_units * UNIT) as u64,
                ),
                (
                    "sessiontrace_admission_in_flight_bytes",
                    labels.clone(),
                    "Bytes of requests a receiver holds now, from body read to answer",
                    "gauge",
                    self.in_flight_bytes(receiver),
                ),
                (
                    "sessiontrace_admission_admitted_total",
                    labels.clone(),
                    "Requests admitted by a receiver's budget",
                    "counter",
                    budget.admitted.load(Ordering::Relaxed),
                ),
                (
                    "sessiontrace_admission_refused_total",
                    labels,
                    "Requests refused with 503 / UNAVAILABLE because a receiver's budget was spent",
                    "counter",
                    budget.refused.load(Ordering::Relaxed),
                ),
            ]);
        }
        if let Some(queue) = queue {
            rows.push((
                "sessiontrace_store_write_queue",
                String::new(),
                "Writes waiting for or being done by the store's writer",
                "gauge",
                queue.queued,
            ));
            rows.push((
                "sessiontrace_store_write_queue_capacity",
                String::new(),
                "Most writes that may wait before one is refused with 503",
                "gauge",
                queue.capacity,
            ));
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_refuses_until_a_request_is_answered() {
        let admission = Admission::new(64 * 1024);
        let first = admission.admit(Receiver::OtlpHttp, 40 * 1024).unwrap();
        assert_eq!(admission.in_flight_bytes(Receiver::OtlpHttp), 40 * 1024);
        let refused = admission.admit(Receiver::OtlpHttp, 40 * 1024).err().expect("over the budget");
        assert_eq!(refused.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.grpc_status().code(), tonic::Code::Unavailable);
        // The other receiver has its own budget.
        let _grpc = admission.admit(Receiver::OtlpGrpc, 40 * 1024).unwrap();
        drop(first);
        assert_eq!(admission.in_flight_bytes(Receiver::OtlpHttp), 0);
        let _again = admission.admit(Receiver::OtlpHttp, 40 * 1024).unwrap();
        let text = format!("{:?}", admission.rows(None));
        assert!(text.contains("sessiontrace_admission_refused_total"), "{text}");
    }

    #[test]
    fn a_request_larger_than_the_budget_is_admitted_alone() {
        let admission = Admission::new(64 * 1024);
        let big = admission.admit(Receiver::OtlpGrpc, 10 * 1024 * 1024).unwrap();
        assert!(admission.check(Receiver::OtlpGrpc).is_err());
        assert!(admission.admit(Receiver::OtlpGrpc, 1).is_err());
        drop(big);
        assert!(admission.check(Receiver::OtlpGrpc).is_ok());
    }
}
