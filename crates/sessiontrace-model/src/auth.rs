//! The credential records a store keeps (shared/DESIGN.md section 8): projects, API keys, UI users and
//! their login sessions. Plain data only: secrets never appear here, only their hashes, and the hashing
//! (SHA-256 of a key, argon2id of a password) is done by the server before a record reaches a store.

use crate::project::Project;

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// `st_ing_…`: write-only (OTLP, session start/stop, replay upload); safe to ship in a web page.
    Ingest,
    /// `st_read_…`: the query API.
    Read,
    /// `st_admin_…`: keys, projects and users.
    Admin,
}

impl KeyKind {
    /// The lowercase name used in storage and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Ingest => "ingest",
            KeyKind::Read => "read",
            KeyKind::Admin => "admin",
        }
    }
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KeyKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ingest" => Ok(KeyKind::Ingest),
            "read" => Ok(KeyKind::Read),
            "admin" => Ok(KeyKind::Admin),
            other => Err(format!("unknown key kind {other:?}: expected ingest, read or admin")),
        }
    }
}

/// An API key as stored: never the secret, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Public id (e.g. `k_` + 12 hex), shown by `keys list` and used to revoke.
    pub id: String,
    pub project: Project,
    pub kind: KeyKind,
    pub name: Option<String>,
    /// SHA-256 of the secret, computed by the server.
    pub hash: [u8; 32],
    /// The first characters of the secret, for display.
    pub prefix: String,
    /// Origins a browser may send this key from (ingest keys); empty allows none.
    pub allowed_origins: Vec<String>,
    pub bytes_per_second: Option<u64>,
    pub requests_per_second: Option<u64>,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
}

impl ApiKey {
    /// Whether the key was revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked_at_ms.is_some()
    }
}

/// What a UI user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including keys, projects and users.
    Admin,
    /// Reads the data of every project.
    Member,
}

impl Role {
    /// The lowercase name used in storage and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(format!("unknown role {other:?}: expected admin or member")),
        }
    }
}

/// A named UI user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// PHC string (argon2id), computed by the server.
    pub password_hash: String,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    pub disabled: bool,
}

/// A server-side UI login session; the cookie holds the secret id, the store only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSession {
    pub id_hash: [u8; 32],
    /// The user's name.
    pub user: String,
    pub csrf_token: String,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    pub last_seen_ms: i64,
}

/// A project as listed by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectInfo {
    pub project: Project,
    /// Unix milliseconds.
    pub created_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_roles_read_back_from_their_names() {
        for kind in [KeyKind::Ingest, KeyKind::Read, KeyKind::Admin] {
            assert_eq!(kind.as_str().parse::<KeyKind>(), Ok(kind));
        }
        for role in [Role::Admin, Role::Member] {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
        }
        assert!("write".parse::<KeyKind>().unwrap_err().contains("ingest, read or admin"));
        assert!("owner".parse::<Role>().is_err());
    }
}
