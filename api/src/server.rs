//! The JSON-RPC 2.0 endpoint both daemons serve at `POST /rpc/v0`: JWT check (401 without a valid
//! token, 403 without the method's permission), framing errors as JSON-RPC errors, then the
//! daemon's own dispatch.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use stores::Secret;

use crate::contract::Handlers;

use crate::rpc::{
    RpcError, RpcRequest, RpcResponse, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR,
    PERMISSION_DENIED,
};

fn reply(status: StatusCode, resp: RpcResponse) -> Response {
    (status, axum::Json(resp)).into_response()
}

/// Handles one `POST /rpc/v0` body: checks the token against `secret` and the method's
/// permission (from its definition in `handlers`), parses the request, and answers with what
/// the method's handler returns for `state`.
pub async fn handle<S: Send + 'static>(
    secret: &Secret,
    handlers: &Handlers<S>,
    state: S,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let perms = match stores::auth::permissions_from_header(secret, auth) {
        Ok(p) => p,
        Err(why) => {
            return reply(
                StatusCode::UNAUTHORIZED,
                RpcResponse::err(
                    Value::Null,
                    RpcError::new(401, format!("unauthorized: {why}")),
                ),
            )
        }
    };
    let req: RpcRequest = match serde_json::from_slice::<Value>(body) {
        Err(e) => {
            return reply(
                StatusCode::OK,
                RpcResponse::err(
                    Value::Null,
                    RpcError::new(PARSE_ERROR, format!("parse error: {e}")),
                ),
            )
        }
        Ok(Value::Array(_)) => {
            return reply(
                StatusCode::OK,
                RpcResponse::err(
                    Value::Null,
                    RpcError::new(INVALID_REQUEST, "batch requests are not supported"),
                ),
            )
        }
        Ok(v) => match serde_json::from_value(v) {
            Ok(r) => r,
            Err(e) => {
                return reply(
                    StatusCode::OK,
                    RpcResponse::err(
                        Value::Null,
                        RpcError::new(INVALID_REQUEST, format!("invalid request: {e}")),
                    ),
                )
            }
        },
    };
    let id = req.id.clone();
    if req.jsonrpc != "2.0" {
        return reply(
            StatusCode::OK,
            RpcResponse::err(
                id,
                RpcError::new(INVALID_REQUEST, "jsonrpc must be \"2.0\""),
            ),
        );
    }
    let Some(need) = handlers.permission(&req.method) else {
        return reply(
            StatusCode::OK,
            RpcResponse::err(
                id,
                RpcError::new(
                    METHOD_NOT_FOUND,
                    format!("method '{}' not found", req.method),
                ),
            ),
        );
    };
    if !perms.contains(&need) {
        let need = format!("{need:?}").to_lowercase();
        return reply(
            StatusCode::FORBIDDEN,
            RpcResponse::err(
                id,
                RpcError::new(
                    PERMISSION_DENIED,
                    format!(
                        "missing permission to invoke '{}' (need '{need}')",
                        req.method
                    ),
                ),
            ),
        );
    }
    tracing::trace!(method = %req.method, "rpc call");
    match handlers.dispatch(state, &req.method, req.params).await {
        Ok(v) => reply(StatusCode::OK, RpcResponse::ok(id, v)),
        Err(e) => reply(StatusCode::OK, RpcResponse::err(id, e)),
    }
}

/// Resolves on Ctrl-C, SIGTERM or `shutdown` (the `Shutdown` method): a daemon's graceful stop.
pub async fn until_stopped(shutdown: &tokio::sync::Notify) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = shutdown.notified() => {}
    }
}
