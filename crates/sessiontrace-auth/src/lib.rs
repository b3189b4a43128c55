//! Who a request comes from and what it may do (shared/DESIGN.md section 8). No HTTP here: the server
//! finds the credential in a request (header, cookie, gRPC metadata) and asks an [`Authenticator`]:
//!
//! - **API keys** ([`secret`]): looked up by their SHA-256 in the store, cached for at most
//!   [`KEY_CACHE_TTL`] so a key revoked on any replica is refused within that time everywhere;
//!   last-used times are gathered in memory and written in batches.
//! - **UI users** ([`password`]: argon2id) and their server-side **login sessions**, whose token only
//!   the cookie holds (the store keeps its SHA-256), with idle and absolute expiry and a CSRF token.
//!   Login attempts are rate-limited per client address.
//! - **Rate limits** ([`limits`]) per key and per project.
//!
//! Authentication is on once a key or a user exists (or always, with [`AuthMode::Required`]); the
//! answer is refreshed every [`REFRESH_EVERY`], with the allowed origins of every ingest key (for CORS
//! preflights, which carry no credential).

pub mod limits;
pub mod password;
pub mod secret;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sessiontrace_model::auth::{ApiKey, KeyKind, LoginSession, User};
use sessiontrace_store::{Store, StoreError};

use limits::{Limits, OverLimit};

/// How long a key lookup (found, missing or revoked) is trusted.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(4);
/// How often whether authentication is on, and the ingest keys' origins, are read again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// When authentication applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// On as soon as one key or user exists; off (loopback only) before that.
    #[default]
    Auto,
    /// On even with no key and no user (nothing gets in until one is made).
    Required,
}

/// Login-session lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct LoginSettings {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after login, used or not.
    pub absolute: Duration,
}

impl Default for LoginSettings {
    fn default() -> Self {
        LoginSettings { idle: Duration::from_secs(12 * 3600), absolute: Duration::from_secs(7 * 86_400) }
    }
}

/// Why a request was refused. Each has an HTTP status class, a message for the body, and a reason
/// label for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credential where one is needed (401).
    Missing,
    /// Not a key we know (401).
    UnknownKey,
    /// A revoked key (403).
    Revoked,
    /// The key or user may not do this (403).
    WrongScope(String),
    /// A browser request from an origin the ingest key does not allow (403).
    OriginNotAllowed(String),
    /// Over a rate limit (429).
    OverLimit(OverLimit),
    /// Wrong user name or password (401).
    LoginFailed,
    /// Too many login attempts from one address (429).
    LoginThrottled(Duration),
    /// The login session ended or never existed (401).
    LoginExpired,
    /// A state-changing request from the UI without a valid CSRF token or from another origin (403).
    Csrf(String),
    /// The credential store cannot answer (503).
    Unavailable(String),
}

/// The HTTP family of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalClass {
    Unauthenticated,
    Forbidden,
    TooManyRequests,
    Unavailable,
}

impl Refusal {
    pub fn class(&self) -> RefusalClass {
        match self {
            Refusal::Missing | Refusal::UnknownKey | Refusal::LoginFailed | Refusal::LoginExpired => {
                RefusalClass::Unauthenticated
            }
            Refusal::Revoked | Refusal::WrongScope(_) | Refusal::OriginNotAllowed(_) | Refusal::Csrf(_) => {
                RefusalClass::Forbidden
            }
            Refusal::OverLimit(_) | Refusal::LoginThrottled(_) => RefusalClass::TooManyRequests,
            Refusal::Unavailable(_) => RefusalClass::Unavailable,
        }
    }

    /// The `reason` label of `sessiontrace_auth_refused_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::UnknownKey => "unknown_key",
            Refusal::Revoked => "revoked",
            Refusal::WrongScope(_) => "scope",
            Refusal::OriginNotAllowed(_) => "origin",
            Refusal::OverLimit(_) => "rate_limit",
            Refusal::LoginFailed => "login_failed",
            Refusal::LoginThrottled(_) => "login_throttled",
            Refusal::LoginExpired => "login_expired",
            Refusal::Csrf(_) => "csrf",
            Refusal::Unavailable(_) => "unavailable",
        }
    }

    /// Every reason label, for a `/metrics` exposition with zeros.
    pub const REASONS: [&'static str; 11] = [
        "missing",
        "unknown_key",
        "revoked",
        "scope",
        "origin",
        "rate_limit",
        "login_failed",
        "login_throttled",
        "login_expired",
        "csrf",
        "unavailable",
    ];

    /// What the client is told (never the credential itself).
    pub fn message(&self) -> String {
        match self {
            Refusal::Missing => "authentication required: send an API key as `Authorization: Bearer <key>` (or \
                                 `x-api-key`), or log in"
                .into(),
            Refusal::UnknownKey => "unknown API key".into(),
            Refusal::Revoked => "this API key was revoked".into(),
            Refusal::WrongScope(message) => message.clone(),
            Refusal::OriginNotAllowed(origin) => format!("origin {origin} is not allowed for this ingest key"),
            Refusal::OverLimit(over) => {
                format!("rate limit exceeded ({}); retry after {} ms", over.what, over.retry_after.as_millis().max(1))
            }
            Refusal::LoginFailed => "wrong name or password".into(),
            Refusal::LoginThrottled(wait) => {
                format!("too many login attempts from this address; retry after {} s", wait.as_secs().max(1))
            }
            Refusal::LoginExpired => "not logged in, or the login expired".into(),
            Refusal::Csrf(message) => message.clone(),
            Refusal::Unavailable(message) => format!("credentials cannot be checked now: {message}"),
        }
    }

    /// How long to wait before retrying, for 429s.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Refusal::OverLimit(over) => Some(over.retry_after),
            Refusal::LoginThrottled(wait) => Some(*wait),
            Refusal::Unavailable(_) => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        Refusal::Unavailable(error.to_string())
    }
}

/// What a request may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// OTLP export, session start/stop/save, replay upload.
    Ingest,
    /// Every read surface.
    Read,
    /// Keys, projects and users.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    /// Whether a key of `kind` may reach this scope: ingest keys only ingest, read keys only read,
    /// admin keys everything of their project.
    pub fn allows_key(self, kind: KeyKind) -> bool {
        matches!((self, kind), (_, KeyKind::Admin) | (Scope::Ingest, KeyKind::Ingest) | (Scope::Read, KeyKind::Read))
    }
}

/// A logged-in user's session, as found from its cookie.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: User,
    pub session: LoginSession,
}

/// A key lookup and when it was made (a missing key is cached too).
type CachedKey = (Instant, Option<ApiKey>);

/// The shared checker of a server.
pub struct Authenticator {
    store: Arc<dyn Store>,
    mode: AuthMode,
    login: LoginSettings,
    enabled: AtomicBool,
    keys: Mutex<HashMap<[u8; 32], CachedKey>>,
    last_used: Mutex<HashMap<String, i64>>,
    origins: RwLock<HashSet<String>>,
    login_attempts: DefaultKeyedRateLimiter<IpAddr>,
    pub limits: Limits,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Authenticator {
    /// An authenticator that has not read the store yet: authentication is off (unless required) until
    /// [`Authenticator::refresh`] has run once.
    pub fn new(store: Arc<dyn Store>, mode: AuthMode, login: LoginSettings, limits: Limits) -> Self {
        // Ten login attempts at once per address, then one every six seconds.
        let attempts =
            Quota::per_minute(NonZeroU32::new(10).expect("10")).allow_burst(NonZeroU32::new(10).expect("10"));
        Authenticator {
            store,
            mode,
            login,
            enabled: AtomicBool::new(mode == AuthMode::Required),
            keys: Mutex::new(HashMap::new()),
            last_used: Mutex::new(HashMap::new()),
            origins: RwLock::new(HashSet::new()),
            login_attempts: RateLimiter::keyed(attempts),
            limits,
        }
    }

    /// Refreshes the cached state and writes gathered last-used times now, then every
    /// [`REFRESH_EVERY`] until the authenticator is dropped.
    pub fn start_refresh(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(authenticator) = weak.upgrade() else { return };
                if let Err(error) = authenticator.refresh().await {
                    tracing::warn!(%error, "refreshing credentials failed; keeping the previous state");
                }
                drop(authenticator);
                tokio::time::sleep(REFRESH_EVERY).await;
            }
        });
    }

    /// Whether requests need a credential now.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Whether some ingest key allows this browser origin (CORS preflights carry no credential).
    pub fn origin_allowed_by_some_key(&self, origin: &str) -> bool {
        self.origins.read().expect("origins lock").contains(origin)
    }

    /// Reads whether authentication is on and the ingest keys' origins; writes gathered last-used times.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let has = self.store.has_credentials().await?;
        self.enabled.store(self.mode == AuthMode::Required || has, Ordering::Relaxed);
        let keys = self.store.keys(None).await?;
        let origins: HashSet<String> = keys
            .iter()
            .filter(|key| !key.is_revoked() && key.kind == KeyKind::Ingest)
            .flat_map(|key| key.allowed_origins.iter().cloned())
            .collect();
        *self.origins.write().expect("origins lock") = origins;
        let used: Vec<(String, i64)> =
            std::mem::take(&mut *self.last_used.lock().expect("last-used lock")).into_iter().collect();
        if !used.is_empty() {
            self.store.touch_keys(&used).await?;
        }
        Ok(())
    }

    /// The key behind a secret, if it is known and not revoked.
    pub async fn key(&self, secret: &str) -> Result<ApiKey, Refusal> {
        let hash = secret::sha256(secret);
        let cached = self
            .keys
            .lock()
            .expect("key cache lock")
            .get(&hash)
            .filter(|(at, _)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(_, key)| key.clone());
        let key = match cached {
            Some(key) => key,
            None => {
                let key = self.store.key_by_hash(&hash).await?;
                let mut cache = self.keys.lock().expect("key cache lock");
                if cache.len() > 10_000 {
                    cache.retain(|_, (at, _)| at.elapsed() < KEY_CACHE_TTL);
                }
                cache.insert(hash, (Instant::now(), key.clone()));
                key
            }
        };
        let key = key.ok_or(Refusal::UnknownKey)?;
        if key.is_revoked() {
            return Err(Refusal::Revoked);
        }
        self.last_used.lock().expect("last-used lock").insert(key.id.clone(), now_ms());
        Ok(key)
    }

    /// Checks a name and password and opens a login session; returns the cookie's token with it.
    pub async fn log_in(&self, name: &str, password: &str, address: IpAddr) -> Result<(String, Login), Refusal> {
        if let Err(until) = self.login_attempts.check_key(&address) {
            let wait = until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            return Err(Refusal::LoginThrottled(wait));
        }
        let user = self.store.user(name).await?;
        let password = password.to_string();
        let (user, ok) = tokio::task::spawn_blocking(move || match user {
            Some(user) if !user.disabled => {
                let ok = password::verify_password(&password, &user.password_hash);
                (Some(user), ok)
            }
            _ => {
                password::verify_nothing(&password);
                (None, false)
            }
        })
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))?;
        let Some(user) = user.filter(|_| ok) else {
            tracing::info!(%address, "login failed");
            return Err(Refusal::LoginFailed);
        };
        let token = secret::random_hex(32);
        let now = now_ms();
        let session = LoginSession {
            id_hash: secret::sha256(&token),
            user: user.name.clone(),
            csrf_token: secret::random_hex(16),
            created_at_ms: now,
            last_seen_ms: now,
        };
        self.store.put_login_session(&session).await?;
        tracing::info!(user = %user.name, "logged in");
        Ok((token, Login { user, session }))
    }

    /// The login behind a cookie token, if it has not expired (and its user still exists, enabled).
    pub async fn login(&self, token: &str) -> Result<Login, Refusal> {
        let hash = secret::sha256(token);
        let session = self.store.login_session(&hash).await?.ok_or(Refusal::LoginExpired)?;
        let now = now_ms();
        let idle = now - session.last_seen_ms > self.login.idle.as_millis() as i64;
        let old = now - session.created_at_ms > self.login.absolute.as_millis() as i64;
        if idle || old {
            self.store.delete_login_session(&hash).await?;
            return Err(Refusal::LoginExpired);
        }
        let user = self.store.user(&session.user).await?.filter(|user| !user.disabled).ok_or(Refusal::LoginExpired)?;
        if now - session.last_seen_ms > 60_000 {
            self.store.touch_login_session(&hash, now).await?;
        }
        Ok(Login { user, session })
    }

    /// Ends a login session.
    pub async fn log_out(&self, token: &str) -> Result<(), Refusal> {
        self.store.delete_login_session(&secret::sha256(token)).await?;
        Ok(())
    }

    /// Takes one request from the rate limits of a key (if any) and its project.
    pub fn take_request(
        &self,
        key: Option<&ApiKey>,
        project: &sessiontrace_model::project::Project,
    ) -> Result<(), Refusal> {
        self.limits.take_request(key, project).map_err(Refusal::OverLimit)
    }

    /// Takes a body's bytes from the rate limits of a key (if any) and its project.
    pub fn take_bytes(
        &self,
        key: Option<&ApiKey>,
        project: &sessiontrace_model::project::Project,
        bytes: u64,
    ) -> Result<(), Refusal> {
        self.limits.take_bytes(key, project, bytes).map_err(Refusal::OverLimit)
    }
}
