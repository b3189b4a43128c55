//! Secrets: API keys (`st_ing_` / `st_read_` / `st_admin_` + 32 random bytes in hex), login-session
//! tokens and CSRF tokens. Keys and tokens are 256 random bits, so a fast hash (SHA-256) is enough to keep
//! them out of storage: nothing can be guessed from it. Passwords are not random and use argon2id
//! ([`crate::password`]).

use rand::RngCore;
use sessiontrace_model::auth::KeyKind;
use sha2::{Digest, Sha256};

/// A key as created: the secret (shown once) and what is stored of it.
pub struct NewKey {
    pub secret: String,
    pub hash: [u8; 32],
    /// The secret's first characters, for `keys list`.
    pub prefix: String,
}

/// The prefix that names a key's kind.
pub fn kind_prefix(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Ingest => "st_ing_",
        KeyKind::Read => "st_read_",
        KeyKind::Admin => "st_admin_",
    }
}

/// A new random key of `kind`.
pub fn generate_key(kind: KeyKind) -> NewKey {
    let secret = format!("{}{}", kind_prefix(kind), random_hex(32));
    let prefix = secret.chars().take(kind_prefix(kind).len() + 6).collect();
    NewKey { hash: sha256(&secret), prefix, secret }
}

/// `n` random bytes from the thread's CSPRNG (ChaCha seeded by the OS), in hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 of a secret: what stores keep of keys and login tokens.
pub fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether `text` has the shape of one of our keys (prefix and 64 hex digits).
pub fn looks_like_key(text: &str) -> bool {
    [KeyKind::Ingest, KeyKind::Read, KeyKind::Admin].iter().any(|kind| {
        text.strip_prefix(kind_prefix(*kind))
            .is_some_and(|rest| rest.len() == 64 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_typed_and_hashed() {
        let a = generate_key(KeyKind::Ingest);
        let b = generate_key(KeyKind::Ingest);
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with("st_ing_") && looks_like_key(&a.secret), "{}", a.secret);
        assert!(generate_key(KeyKind::Read).secret.starts_with("st_read_"));
        assert_eq!(a.hash, sha256(&a.secret));
        assert!(a.secret.starts_with(&a.prefix) && a.prefix.len() < 16);
        assert!(!looks_like_key("st_ing_123") && !looks_like_key("Bearer x"));
    }
}
