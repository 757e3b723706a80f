//! API tokens: JWT (HS256, made and checked by `jsonwebtoken`) with lotus's permission list
//! (`{"Allow":["read","write","sign","admin"]}`), signed with a per-repo secret. The same tokens
//! guard the JSON-RPC API and `/remote`; tokens lotus makes the same way are accepted.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// A permission, in lotus's order: each includes the ones before it when tokens are created with
/// `Secret::token_for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    Read,
    Write,
    Sign,
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 4] = [
        Permission::Read,
        Permission::Write,
        Permission::Sign,
        Permission::Admin,
    ];

    /// This permission and every lower one (what `auth create-token --perm X` grants).
    pub fn with_lower(self) -> Vec<Permission> {
        Permission::ALL.into_iter().filter(|p| *p <= self).collect()
    }
}

impl std::str::FromStr for Permission {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        match s {
            "read" => Ok(Permission::Read),
            "write" => Ok(Permission::Write),
            "sign" => Ok(Permission::Sign),
            "admin" => Ok(Permission::Admin),
            other => Err(AuthError::BadPermission(other.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("malformed token")]
    Malformed,
    #[error("token signature does not match this repo's secret")]
    BadSignature,
    #[error("unknown permission {0:?} (expected read, write, sign or admin)")]
    BadPermission(String),
    #[error("the secret must be at least 32 bytes, got {0}")]
    ShortSecret(usize),
}

#[derive(Serialize, Deserialize)]
struct Payload {
    #[serde(rename = "Allow")]
    allow: Vec<Permission>,
}

/// The HMAC secret that signs and checks tokens.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A fresh random 32-byte secret.
    pub fn generate() -> Secret {
        let mut b = vec![0u8; 32];
        getrandom::fill(&mut b).expect("the OS random source works");
        Secret(b)
    }

    pub fn from_bytes(b: Vec<u8>) -> Result<Secret, AuthError> {
        if b.len() < 32 {
            return Err(AuthError::ShortSecret(b.len()));
        }
        Ok(Secret(b))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A token allowing exactly `perms`.
    pub fn token(&self, perms: &[Permission]) -> String {
        let key = EncodingKey::from_secret(&self.0).expect("an HMAC key takes any length");
        let payload = Payload {
            allow: perms.to_vec(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &payload, &key)
            .expect("an HS256 token over a permission list encodes")
    }

    /// A token for `perm` and everything below it, as `auth api-info --perm admin` makes.
    pub fn token_for(&self, perm: Permission) -> String {
        self.token(&perm.with_lower())
    }

    /// Checks a token and returns what it allows. Lotus's tokens carry no expiry or other
    /// registered claims, so none is required; only HS256 is accepted.
    pub fn verify(&self, token: &str) -> Result<Vec<Permission>, AuthError> {
        let key = DecodingKey::from_secret(&self.0).map_err(|_| AuthError::Malformed)?;
        let mut v = Validation::new(Algorithm::HS256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        v.validate_aud = false;
        match jsonwebtoken::decode::<Payload>(token.trim(), &key, &v) {
            Ok(t) => Ok(t.claims.allow),
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => Err(AuthError::BadSignature),
                _ => Err(AuthError::Malformed),
            },
        }
    }
}

/// What a request's `Authorization` header allows: `Err(401 reason)` when it proves nothing.
pub fn permissions_from_header(
    secret: &Secret,
    header: Option<&str>,
) -> Result<Vec<Permission>, String> {
    let value = header.ok_or("missing Authorization header (want: Bearer <token>)")?;
    let token = value
        .strip_prefix("Bearer ")
        .ok_or("Authorization header is not a Bearer token")?;
    secret.verify(token).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let s = Secret::generate();
        let t = s.token_for(Permission::Write);
        assert_eq!(
            s.verify(&t).unwrap(),
            vec![Permission::Read, Permission::Write]
        );
        let other = Secret::generate();
        assert_eq!(other.verify(&t), Err(AuthError::BadSignature));
        // Swap in an admin payload with the old signature.
        let admin = s.token_for(Permission::Admin);
        let forged: Vec<&str> = t.split('.').collect();
        let admin_parts: Vec<&str> = admin.split('.').collect();
        let forged = format!("{}.{}.{}", forged[0], admin_parts[1], forged[2]);
        assert_eq!(s.verify(&forged), Err(AuthError::BadSignature));
        assert_eq!(s.verify("abc"), Err(AuthError::Malformed));
        assert!(Secret::from_bytes(vec![1; 8]).is_err());
        assert_eq!(
            permissions_from_header(&s, Some(&format!("Bearer {admin}"))).unwrap(),
            Permission::ALL.to_vec()
        );
        assert!(permissions_from_header(&s, None).is_err());
        assert!(permissions_from_header(&s, Some(&admin)).is_err());
    }

    /// A token as lotus (go-jwt) and this project's earlier hand-written HS256 wrote it (header
    /// `{"alg":"HS256","typ":"JWT"}`, payload `{"Allow":["read","write"]}`, secret 0..=31,
    /// signed independently with Python's hmac): repos' existing token files keep working.
    #[test]
    fn a_token_made_elsewhere_verifies_and_an_other_algorithm_is_refused() {
        let s = Secret::from_bytes((0u8..32).collect()).unwrap();
        let lotus = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJBbGxvdyI6WyJyZWFkIiwid3JpdGUiXX0.\
                     a2dV0UrA0kX6qMxjUfdyJZUwmw8W-rDDjES_OWZDB94";
        assert_eq!(
            s.verify(lotus).unwrap(),
            vec![Permission::Read, Permission::Write]
        );
        // `{"alg":"none"}` with the same payload and no signature.
        let none = "eyJhbGciOiJub25lIn0.eyJBbGxvdyI6WyJyZWFkIiwid3JpdGUiXX0.";
        assert_eq!(s.verify(none), Err(AuthError::Malformed));
        // Signed with the right secret, but a permission lotus does not have.
        let key = EncodingKey::from_secret(s.as_bytes()).unwrap();
        let claims = serde_json::json!({ "Allow": ["read", "root"] });
        let odd = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        assert_eq!(s.verify(&odd), Err(AuthError::Malformed));
    }
}
