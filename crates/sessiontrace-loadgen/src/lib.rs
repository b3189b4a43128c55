//! Realistic OTLP traffic for benchmarks and load tests. [`workload`] builds request bodies that look like
//! what instrumented services send (several services, nested spans, 10–20 attributes, some events and
//! errors, a share of session traces), encoded once before the clock starts; [`drive`] sends them with N
//! concurrent connections, flat out or at a target rate, making every trace id unique by patching the
//! encoded bytes in place, and reports spans/s, latency percentiles and errors.

pub mod drive;
pub mod workload;
