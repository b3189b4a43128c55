//! The ClickHouse HTTP interface: one `reqwest` client, statements in the POST body, inserts as
//! `INSERT ... FORMAT RowBinary` with the rows as the body. Errors become [`StoreError`]: a server that
//! cannot be reached, times out or says it is overloaded is `Unavailable` (the caller retries), anything
//! else is `Internal`.

use std::time::Duration;

use sessiontrace_store::StoreError;

/// ClickHouse error codes that mean "try again later" rather than "this is wrong".
const RETRYABLE_CODES: &[u32] = &[
    159, // TIMEOUT_EXCEEDED
    164, // READONLY (a replica in read-only mode while Keeper is away)
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    203, // NO_FREE_CONNECTION
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    241, // MEMORY_LIMIT_EXCEEDED
    252, // TOO_MANY_PARTS
    279, // ALL_CONNECTION_TRIES_FAILED
    285, // TOO_FEW_LIVE_REPLICAS
    319, // UNKNOWN_STATUS_OF_INSERT
];

/// A connection to one ClickHouse server (or a load balancer in front of several).
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    url: String,
    database: String,
}

/// The server's `version()`, e.g. 18.16.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl ServerVersion {
    /// Parses `major.minor[.patch[.build]]`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('.').map(|part| part.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next()??;
        let patch = parts.next().flatten().unwrap_or(0);
        Some(ServerVersion { major, minor, patch })
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Client {
    pub(crate) fn new(url: &str, database: &str, timeout: Duration) -> Result<Self, StoreError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot build the http client: {e}")))?;
        Ok(Client { http, url: url.trim_end_matches('/').to_string(), database: database.to_string() })
    }

    pub(crate) fn database(&self) -> &str {
        &self.database
    }

    /// Runs one statement outside the store's database (`CREATE DATABASE`, `version()`).
    pub(crate) async fn execute_global(&self, sql: &str) -> Result<Vec<u8>, StoreError> {
        self.send(self.http.post(format!("{}/", self.url)).body(sql.to_string()), sql).await
    }

    /// Runs one statement in the store's database and returns the answer's bytes.
    pub(crate) async fn execute(&self, sql: &str) -> Result<Vec<u8>, StoreError> {
        let request = self
            .http
            .post(format!("{}/", self.url))
            .query(&[("database", self.database.as_str())])
            .body(sql.to_string());
        self.send(request, sql).await
    }

    /// Inserts RowBinary-encoded rows into `table` (columns in `columns` order). With a Distributed
    /// table the insert returns only once every shard has the rows (`insert_distributed_sync`).
    pub(crate) async fn insert(&self, table: &str, columns: &str, rows: Vec<u8>) -> Result<(), StoreError> {
        let sql = format!("INSERT INTO {table} ({columns}) FORMAT RowBinary");
        let request = self
            .http
            .post(format!("{}/", self.url))
            .query(&[("database", self.database.as_str()), ("query", sql.as_str()), ("insert_distributed_sync", "1")])
            .body(rows);
        self.send(request, &sql).await.map(|_| ())
    }

    async fn send(&self, request: reqwest::RequestBuilder, sql: &str) -> Result<Vec<u8>, StoreError> {
        let response = request.send().await.map_err(|error| {
            let kind = if error.is_timeout() { "timed out" } else { "is unreachable" };
            StoreError::Unavailable(format!("clickhouse at {} {kind}: {error}", self.url))
        })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| StoreError::Unavailable(format!("clickhouse at {}: answer cut: {error}", self.url)))?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        let message = String::from_utf8_lossy(&body).trim().to_string();
        let code = error_code(&message);
        let statement: String = sql.chars().take(200).collect();
        if status.as_u16() == 503 || code.is_some_and(|code| RETRYABLE_CODES.contains(&code)) {
            return Err(StoreError::Unavailable(format!("clickhouse at {}: {message}", self.url)));
        }
        Err(StoreError::Internal(format!("clickhouse at {} refused `{statement}`: {message}", self.url)))
    }
}

/// The `Code: N` at the start of a ClickHouse error message.
fn error_code(message: &str) -> Option<u32> {
    let rest = message.strip_prefix("Code: ")?;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_error_codes_are_read() {
        assert_eq!(ServerVersion::parse("18.16.1"), Some(ServerVersion { major: 18, minor: 16, patch: 1 }));
        assert_eq!(ServerVersion::parse("24.3.2.23\n").map(|v| (v.major, v.minor)), Some((24, 3)));
        assert_eq!(ServerVersion::parse("garbage"), None);
        assert!(ServerVersion::parse("19.1").unwrap() > ServerVersion::parse("18.16.1").unwrap());
        assert_eq!(error_code("Code: 252, e.displayText() = DB::Exception: Too many parts"), Some(252));
        assert_eq!(error_code("something else"), None);
    }
}
