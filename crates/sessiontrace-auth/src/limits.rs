//! Rate limits per key and per project: requests per second, and bytes per second with a burst of at
//! least the largest body a request may carry (so one legal request always fits an idle bucket). GCRA
//! buckets from the `governor` crate; one set per key id and per project, made on first use. Over a
//! limit the caller learns how long to wait (HTTP `Retry-After`, gRPC `RetryInfo`).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sessiontrace_model::auth::ApiKey;
use sessiontrace_model::project::Project;

/// Requests and bytes per second; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    pub requests_per_second: Option<u64>,
    pub bytes_per_second: Option<u64>,
}

/// Which limit refused, and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    pub what: &'static str,
    pub retry_after: Duration,
}

struct Buckets {
    requests: Option<DefaultDirectRateLimiter>,
    bytes: Option<DefaultDirectRateLimiter>,
}

/// Every bucket of a server.
pub struct Limits {
    project_rates: Rates,
    /// The byte buckets' smallest burst: the request body limit.
    min_byte_burst: u64,
    keys: Mutex<HashMap<String, Arc<Buckets>>>,
    projects: Mutex<HashMap<Project, Arc<Buckets>>>,
}

fn quota(per_second: u64, burst: u64) -> Quota {
    let clamp = |n: u64| NonZeroU32::new(n.clamp(1, u64::from(u32::MAX)) as u32).expect("at least 1");
    Quota::per_second(clamp(per_second)).allow_burst(clamp(burst.max(per_second)))
}

impl Buckets {
    fn new(rates: Rates, min_byte_burst: u64) -> Self {
        Buckets {
            requests: rates.requests_per_second.map(|n| RateLimiter::direct(quota(n, n))),
            bytes: rates.bytes_per_second.map(|n| RateLimiter::direct(quota(n, min_byte_burst))),
        }
    }

    fn take_request(&self, scope: &'static str) -> Result<(), OverLimit> {
        if let Some(requests) = &self.requests
            && let Err(until) = requests.check()
        {
            let retry_after = until.wait_time_from(DefaultClock::default().now());
            return Err(OverLimit { what: scope_requests(scope), retry_after });
        }
        Ok(())
    }
}

fn scope_requests(scope: &'static str) -> &'static str {
    if scope == "key" { "key requests per second" } else { "project requests per second" }
}

fn scope_bytes(scope: &'static str) -> &'static str {
    if scope == "key" { "key bytes per second" } else { "project bytes per second" }
}

impl Limits {
    /// `project_rates` apply to every project; keys carry their own. `max_body_bytes` is the smallest
    /// burst of a byte bucket.
    pub fn new(project_rates: Rates, max_body_bytes: u64) -> Self {
        Limits {
            project_rates,
            min_byte_burst: max_body_bytes,
            keys: Mutex::new(HashMap::new()),
            projects: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the key's and the project's request buckets.
    pub fn take_request(&self, key: Option<&ApiKey>, project: &Project) -> Result<(), OverLimit> {
        if let Some(buckets) = self.key_buckets(key) {
            buckets.take_request("key")?;
        }
        if let Some(buckets) = self.project_buckets(project) {
            buckets.take_request("project")?;
        }
        Ok(())
    }

    /// Takes a body's bytes from the key's and the project's byte buckets.
    pub fn take_bytes(&self, key: Option<&ApiKey>, project: &Project, bytes: u64) -> Result<(), OverLimit> {
        if bytes == 0 {
            return Ok(());
        }
        if let Some(limiter) = self.key_buckets(key).as_ref().and_then(|b| b.bytes.as_ref()) {
            take_n(limiter, bytes, "key")?;
        }
        if let Some(limiter) = self.project_buckets(project).as_ref().and_then(|b| b.bytes.as_ref()) {
            take_n(limiter, bytes, "project")?;
        }
        Ok(())
    }

    fn key_buckets(&self, key: Option<&ApiKey>) -> Option<Arc<Buckets>> {
        let key = key?;
        let rates = Rates { requests_per_second: key.requests_per_second, bytes_per_second: key.bytes_per_second };
        if rates == Rates::default() {
            return None;
        }
        let mut keys = self.keys.lock().expect("limits lock");
        Some(keys.entry(key.id.clone()).or_insert_with(|| Arc::new(Buckets::new(rates, self.min_byte_burst))).clone())
    }

    fn project_buckets(&self, project: &Project) -> Option<Arc<Buckets>> {
        if self.project_rates == Rates::default() {
            return None;
        }
        let mut projects = self.projects.lock().expect("limits lock");
        Some(
            projects
                .entry(project.clone())
                .or_insert_with(|| Arc::new(Buckets::new(self.project_rates, self.min_byte_burst)))
                .clone(),
        )
    }
}

fn take_n(limiter: &DefaultDirectRateLimiter, bytes: u64, scope: &'static str) -> Result<(), OverLimit> {
    let n = NonZeroU32::new(bytes.min(u64::from(u32::MAX)) as u32).expect("bytes > 0");
    match limiter.check_n(n) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(until)) => Err(OverLimit {
            what: scope_bytes(scope),
            retry_after: until.wait_time_from(DefaultClock::default().now()),
        }),
        Err(_) => Err(OverLimit { what: scope_bytes(scope), retry_after: Duration::from_secs(1) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(requests: Option<u64>, bytes: Option<u64>) -> ApiKey {
        ApiKey {
            id: "k_1".into(),
            project: Project::default(),
            kind: sessiontrace_model::auth::KeyKind::Ingest,
            name: None,
            hash: [0; 32],
            prefix: "st_ing_".into(),
            allowed_origins: vec![],
            bytes_per_second: bytes,
            requests_per_second: requests,
            created_at_ms: 0,
            revoked_at_ms: None,
            last_used_ms: None,
        }
    }

    #[test]
    fn requests_over_the_key_rate_are_refused_with_a_wait() {
        let limits = Limits::new(Rates::default(), 1000);
        let key = key(Some(2), None);
        let project = Project::default();
        assert!(limits.take_request(Some(&key), &project).is_ok());
        assert!(limits.take_request(Some(&key), &project).is_ok());
        let over = limits.take_request(Some(&key), &project).unwrap_err();
        assert_eq!(over.what, "key requests per second");
        assert!(over.retry_after > Duration::ZERO && over.retry_after <= Duration::from_secs(1), "{over:?}");
        // Another key, and no key at all, are not affected.
        assert!(limits.take_request(None, &project).is_ok());
    }

    #[test]
    fn the_byte_burst_takes_one_largest_body() {
        let limits = Limits::new(Rates { requests_per_second: None, bytes_per_second: Some(100) }, 10_000);
        let project = Project::default();
        assert!(limits.take_bytes(None, &project, 10_000).is_ok(), "one body of the limit fits an idle bucket");
        let over = limits.take_bytes(None, &project, 5_000).unwrap_err();
        assert_eq!(over.what, "project bytes per second");
        assert!(limits.take_bytes(None, &Project::new("other").unwrap(), 5_000).is_ok(), "per project");
    }
}
