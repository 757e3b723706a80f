//! Who is asking: the token from `Authorization: Bearer` or from the dashboard's cookie.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use stores::Permission;

use crate::daemon::Node;

pub const COOKIE: &str = "sealer_token";

/// What the request's token allows (nothing without one, or with a bad one).
pub struct Access {
    pub perms: Vec<Permission>,
    /// Whether a token came at all (a bad one is 401 as well, but said so).
    pub bad_token: Option<String>,
}

impl Access {
    pub fn can(&self, p: Permission) -> bool {
        self.perms.contains(&p)
    }

    /// The answer to give when `p` is missing: 401 without a valid token (the login form for
    /// a page), 403 with one that lacks `p`; `None` when the token has `p`.
    pub fn refuse(&self, p: Permission, page: bool) -> Option<Response> {
        if self.can(p) {
            return None;
        }
        if self.perms.is_empty() {
            let why = self.bad_token.as_deref();
            let mut r = if page {
                super::pages::login(why).into_response()
            } else {
                let msg = why.unwrap_or("a token with read permission is needed (Authorization: Bearer, or log in at /ui/login)");
                msg.to_string().into_response()
            };
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("a valid header"),
            );
            return Some(r);
        }
        Some(
            (
                StatusCode::FORBIDDEN,
                format!("this token lacks {p:?} permission\n"),
            )
                .into_response(),
        )
    }
}

/// The token a request carries: the bearer header first, then the cookie.
pub fn token(parts: &Parts) -> Option<String> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    bearer.or_else(|| {
        parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .map(|(_, v)| v.to_string())
    })
}

impl FromRequestParts<Arc<Node>> for Access {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        node: &Arc<Node>,
    ) -> Result<Self, Self::Rejection> {
        Ok(match token(parts) {
            None => Access {
                perms: Vec::new(),
                bad_token: None,
            },
            Some(t) => match node.secret.verify(&t) {
                Ok(perms) => Access {
                    perms,
                    bad_token: None,
                },
                Err(e) => Access {
                    perms: Vec::new(),
                    bad_token: Some(format!("the token was not accepted: {e}")),
                },
            },
        })
    }
}

/// The login cookie: the token itself, for this site's requests only, not readable by scripts.
pub fn cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict")
}

pub fn cookie_cleared() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}
