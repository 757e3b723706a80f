//! The typed RPC contract. Each method is one definition: its name (lotus's where lotus has
//! one), its positional parameters, its result and the permission it needs. The daemons'
//! dispatch tables ([`Handlers`]) and the client's calls ([`crate::Client::request`]) are both
//! made from these definitions, so a server and a client cannot disagree on a method.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use stores::Permission;

use crate::rpc::{RpcError, METHOD_NOT_FOUND};

/// One RPC method.
pub trait Method: 'static {
    const NAME: &'static str;
    const PERM: Permission;
    /// How many positional parameters it takes (missing trailing ones read as `null`).
    const ARITY: usize;
    /// The positional parameters, as a tuple (sent as a JSON array).
    type Params: Serialize + DeserializeOwned + Send + 'static;
    type Result: Serialize + DeserializeOwned + Send + 'static;
}

/// The parameters of `M` as a JSON array (lotus sends positional parameters).
pub fn params_value<M: Method>(p: &M::Params) -> Value {
    match serde_json::to_value(p).expect("parameters serialize") {
        Value::Null => Value::Array(Vec::new()),
        Value::Array(a) => Value::Array(a),
        other => Value::Array(vec![other]),
    }
}

/// Reads `M`'s parameters from what a caller sent: an array (short ones padded with `null`, so
/// optional trailing parameters may be left out), or for a one-parameter method the value.
pub fn parse_params<M: Method>(v: Value) -> Result<M::Params, RpcError> {
    let bad = |e: serde_json::Error| RpcError::params(M::NAME, e);
    let v = match v {
        Value::Array(a) if M::ARITY == 0 && a.is_empty() => Value::Null,
        Value::Array(mut a) => {
            if a.len() > M::ARITY {
                return Err(RpcError::params(
                    M::NAME,
                    format!("{} given, takes {}", a.len(), M::ARITY),
                ));
            }
            a.resize(M::ARITY, Value::Null);
            if M::ARITY == 0 {
                Value::Null
            } else {
                Value::Array(a)
            }
        }
        Value::Null if M::ARITY > 0 => Value::Array(vec![Value::Null; M::ARITY]),
        Value::Null => Value::Null,
        other if M::ARITY == 1 => Value::Array(vec![other]),
        other => {
            return Err(bad(serde::de::Error::custom(format!(
                "expected an array, got {other}"
            ))))
        }
    };
    serde_json::from_value(v).map_err(bad)
}

/// A handler's answer, serialized once, straight to JSON text (no `Value` tree between: a
/// `sectors list` of ten thousand rows is a megabyte).
type Reply = Pin<Box<dyn Future<Output = Result<Box<RawValue>, RpcError>> + Send>>;
pub(crate) type Handler<S> = Box<dyn Fn(S, Value) -> Reply + Send + Sync>;

/// A daemon's dispatch table: each method's handler and permission, from its definition.
pub struct Handlers<S> {
    table: HashMap<&'static str, (Permission, Handler<S>)>,
}

impl<S: Send + 'static> Default for Handlers<S> {
    fn default() -> Self {
        Handlers {
            table: HashMap::new(),
        }
    }
}

impl<S: Send + 'static> Handlers<S> {
    /// Serves `M` with `f`. Registering a method twice is a programming error.
    pub fn on<M, F, Fut>(mut self, f: F) -> Self
    where
        M: Method,
        F: Fn(S, M::Params) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<M::Result, RpcError>> + Send + 'static,
    {
        let h: Handler<S> = Box::new(move |state, raw| match parse_params::<M>(raw) {
            Ok(p) => {
                let fut = f(state, p);
                Box::pin(async move {
                    let r = fut.await?;
                    serde_json::value::to_raw_value(&r).map_err(RpcError::app)
                })
            }
            Err(e) => Box::pin(async move { Err(e) }),
        });
        let old = self.table.insert(M::NAME, (M::PERM, h));
        assert!(old.is_none(), "{} registered twice", M::NAME);
        self
    }

    /// Each method's name, permission and handler (what the server registers).
    pub(crate) fn into_parts(self) -> Vec<(&'static str, Permission, Handler<S>)> {
        self.table
            .into_iter()
            .map(|(name, (perm, h))| (name, perm, h))
            .collect()
    }

    /// The permission `method` needs, or `None` for a method not served here.
    pub fn permission(&self, method: &str) -> Option<Permission> {
        self.table.get(method).map(|(p, _)| *p)
    }

    /// Runs `method`'s handler.
    pub async fn dispatch(&self, state: S, method: &str, params: Value) -> Result<Value, RpcError> {
        match self.table.get(method) {
            Some((_, h)) => {
                let raw = h(state, params).await?;
                serde_json::from_str(raw.get()).map_err(RpcError::app)
            }
            None => Err(RpcError::new(
                METHOD_NOT_FOUND,
                format!("method '{method}' not found"),
            )),
        }
    }
}

/// Defines methods: `Type = "Filecoin.Name", Perm, (param types) -> result;`.
macro_rules! methods {
    ($( $(#[$doc:meta])* $ty:ident = $name:literal, $perm:ident, ($($p:ty),* $(,)?) -> $r:ty; )*) => {
        $(
            $(#[$doc])*
            pub struct $ty;
            impl $crate::contract::Method for $ty {
                const NAME: &'static str = $name;
                const PERM: stores::Permission = stores::Permission::$perm;
                const ARITY: usize = <[&str]>::len(&[$(stringify!($p)),*]);
                type Params = ($($p,)*);
                type Result = $r;
            }
        )*
    };
}
pub(crate) use methods;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::INVALID_PARAMS;

    methods! {
        Two = "Test.Two", Read, (u64, Option<bool>) -> u64;
        None0 = "Test.None", Admin, () -> String;
    }

    #[tokio::test]
    async fn params_are_positional_and_trailing_options_may_be_left_out() {
        assert_eq!(
            params_value::<Two>(&(3, Some(true))),
            serde_json::json!([3, true])
        );
        assert_eq!(params_value::<None0>(&()), serde_json::json!([]));
        assert_eq!(
            parse_params::<Two>(serde_json::json!([3])).unwrap(),
            (3, None)
        );
        assert!(parse_params::<Two>(serde_json::json!([3, true, 1])).is_err());
        let e = parse_params::<Two>(serde_json::json!(["x"])).unwrap_err();
        assert_eq!(e.code, INVALID_PARAMS);
        parse_params::<None0>(serde_json::json!([])).unwrap();

        let h = Handlers::<u64>::default()
            .on::<Two, _, _>(|s, (n, b)| async move { Ok(s + n + b.map_or(0, |b| b as u64)) })
            .on::<None0, _, _>(|_, ()| async { Ok("ok".to_string()) });
        assert_eq!(h.permission("Test.Two"), Some(Permission::Read));
        assert_eq!(h.permission("Test.None"), Some(Permission::Admin));
        let v = h
            .dispatch(10, "Test.Two", serde_json::json!([1, true]))
            .await
            .unwrap();
        assert_eq!(v, serde_json::json!(12));
        let e = h.dispatch(10, "Test.Nope", Value::Null).await.unwrap_err();
        assert_eq!(e.code, METHOD_NOT_FOUND);
    }
}
