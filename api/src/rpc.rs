//! JSON-RPC 2.0 framing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Standard JSON-RPC error codes, and the code for an application error.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const APP_ERROR: i64 = 1;
/// The caller's token lacks the permission the method needs.
pub const PERMISSION_DENIED: i64 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RpcRequest {
    pub jsonrpc: String,
    pub method: String,
    #[serde(default)]
    pub params: Value,
    #[serde(default)]
    pub id: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    /// JSON-RPC 2.0's optional `data`: here, a failed task's typed error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }
    /// An application error that carries a task's typed error, so the caller keeps its kind.
    pub fn task(e: &crate::tasks::TaskError) -> Self {
        RpcError {
            data: serde_json::to_value(e).ok(),
            ..RpcError::app(&e.message)
        }
    }
    /// The task error this error carries; one without is `Temporary`.
    pub fn task_error(&self) -> crate::tasks::TaskError {
        self.data
            .as_ref()
            .and_then(|d| serde_json::from_value(d.clone()).ok())
            .unwrap_or_else(|| crate::tasks::TaskError::temporary(&self.message))
    }
    pub fn app(message: impl std::fmt::Display) -> Self {
        RpcError::new(APP_ERROR, message.to_string())
    }
    pub fn params(method: &str, e: impl std::fmt::Display) -> Self {
        RpcError::new(INVALID_PARAMS, format!("{method}: invalid params: {e}"))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RpcResponse {
    pub jsonrpc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
    pub id: Value,
}

impl RpcResponse {
    pub fn ok(id: Value, result: Value) -> Self {
        RpcResponse {
            jsonrpc: "2.0".into(),
            result: Some(result),
            error: None,
            id,
        }
    }
    pub fn err(id: Value, error: RpcError) -> Self {
        RpcResponse {
            jsonrpc: "2.0".into(),
            result: None,
            error: Some(error),
            id,
        }
    }
}
