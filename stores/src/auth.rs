//! API tokens: JWT (HS256) with lotus's permission list (`{"Allow":["read","write","sign","admin"]}`),
//! signed with a per-repo secret. The same tokens guard the JSON-RPC API and `/remote`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

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

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

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

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length")
    }

    /// A token allowing exactly `perms`.
    pub fn token(&self, perms: &[Permission]) -> String {
        let payload = serde_json::to_string(&Payload {
            allow: perms.to_vec(),
        })
        .expect("serializable");
        let signing = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = self.mac();
        mac.update(signing.as_bytes());
        let sig = mac.finalize().into_bytes();
        format!("{signing}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// A token for `perm` and everything below it, as `auth api-info --perm admin` makes.
    pub fn token_for(&self, perm: Permission) -> String {
        self.token(&perm.with_lower())
    }

    /// Checks a token and returns what it allows.
    pub fn verify(&self, token: &str) -> Result<Vec<Permission>, AuthError> {
        let mut parts = token.trim().split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| AuthError::Malformed)?;
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| AuthError::BadSignature)?;
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(h)
                .map_err(|_| AuthError::Malformed)?,
        )
        .map_err(|_| AuthError::Malformed)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(AuthError::Malformed);
        }
        let payload: Payload = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(p)
                .map_err(|_| AuthError::Malformed)?,
        )
        .map_err(|_| AuthError::Malformed)?;
        Ok(payload.allow)
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
}
