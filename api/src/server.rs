//! The JSON-RPC 2.0 endpoint both daemons serve at `POST /rpc/v0`. The HTTP side is ours: the
//! JWT check (401 without a valid token), the method's permission (403 without it, from its
//! definition), refusing what is not one request (-32700 unparsable, -32600 a batch or no
//! method, -32601 a method not served). Framing and dispatch are `jsonrpsee`'s: every method of
//! the daemon's [`Handlers`] is registered in an `RpcModule`, which reads the request and writes
//! the response.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonrpsee::core::server::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::Value;
use stores::{Permission, Secret};

use crate::contract::Handlers;
use crate::rpc::{
    RpcError, RpcResponse, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR, PERMISSION_DENIED,
};

fn reply(status: StatusCode, resp: RpcResponse) -> Response {
    (status, axum::Json(resp)).into_response()
}

impl From<RpcError> for ErrorObjectOwned {
    fn from(e: RpcError) -> Self {
        ErrorObjectOwned::owned(e.code as i32, e.message, e.data)
    }
}

/// What the HTTP side reads of a request: its method (for the permission check) and id.
#[derive(serde::Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    id: Value,
}

/// One daemon's JSON-RPC endpoint: its secret, each method's permission, and the module that
/// runs them against the daemon's state.
pub struct RpcServer {
    secret: Secret,
    perms: HashMap<&'static str, Permission>,
    module: RpcModule<()>,
    /// Tokens already verified, and what they allow: a thousand workers send the same few
    /// tokens with every heartbeat and result (the secret does not change while it serves).
    verified: std::sync::Mutex<HashMap<String, Vec<Permission>>>,
    /// Told each answered call's method and time taken (a daemon's metrics).
    timing: Option<Timing>,
}

/// What [`RpcServer::with_timing`] calls: the method, and the seconds its answer took.
pub type Timing = Arc<dyn Fn(&str, f64) + Send + Sync>;

/// The most verified tokens remembered (past it, the memory starts again).
const VERIFIED_MAX: usize = 4096;

impl RpcServer {
    /// Registers every method of `handlers`, each run with a clone of `state`.
    pub fn new<S: Clone + Send + Sync + 'static>(
        secret: Secret,
        handlers: Handlers<S>,
        state: S,
    ) -> RpcServer {
        let mut module = RpcModule::new(());
        let mut perms = HashMap::new();
        for (name, perm, handler) in handlers.into_parts() {
            perms.insert(name, perm);
            let handler = Arc::new(handler);
            let state = state.clone();
            module
                .register_async_method(name, move |params, _ctx, _ext| {
                    let (handler, state) = (handler.clone(), state.clone());
                    async move {
                        // Positional parameters, as lotus sends them; absent ones are null.
                        let raw = match params.as_str() {
                            None => Value::Null,
                            Some(s) => serde_json::from_str(s).map_err(|e| {
                                RpcError::new(PARSE_ERROR, format!("parse error: {e}"))
                            })?,
                        };
                        handler(state, raw).await.map_err(ErrorObjectOwned::from)
                    }
                })
                .expect("each method is registered once");
        }
        RpcServer {
            secret,
            perms,
            module,
            verified: Default::default(),
            timing: None,
        }
    }

    /// Calls `timing` with each answered call's method and how long it took, from the request
    /// read to the answer serialized.
    pub fn with_timing(mut self, timing: Timing) -> RpcServer {
        self.timing = Some(timing);
        self
    }

    /// What the `Authorization` header's token allows (verified once per token).
    fn permissions(&self, auth: Option<&str>) -> Result<Vec<Permission>, String> {
        let lock = || self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = auth.and_then(|a| lock().get(a).cloned()) {
            return Ok(p);
        }
        let p = stores::auth::permissions_from_header(&self.secret, auth)?;
        if let Some(a) = auth {
            let mut g = lock();
            if g.len() >= VERIFIED_MAX {
                g.clear();
            }
            g.insert(a.to_string(), p.clone());
        }
        Ok(p)
    }

    /// Answers one `POST /rpc/v0` body.
    pub async fn handle(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let have = match self.permissions(auth) {
            Ok(p) => p,
            Err(why) => {
                let e = RpcError::new(401, format!("unauthorized: {why}"));
                return reply(StatusCode::UNAUTHORIZED, RpcResponse::err(Value::Null, e));
            }
        };
        let refuse = |id: Value, code: i64, why: String| {
            reply(
                StatusCode::OK,
                RpcResponse::err(id, RpcError::new(code, why)),
            )
        };
        // Only the method and id are read here (the module reads the whole request).
        if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Err(e) => refuse(Value::Null, PARSE_ERROR, format!("parse error: {e}")),
                Ok(_) => {
                    let why = "batch requests are not supported".to_string();
                    refuse(Value::Null, INVALID_REQUEST, why)
                }
            };
        }
        let head: Head = match serde_json::from_slice(body) {
            Ok(h) => h,
            Err(e) if e.is_data() => {
                return refuse(
                    Value::Null,
                    INVALID_REQUEST,
                    format!("invalid request: {e}"),
                )
            }
            Err(e) => return refuse(Value::Null, PARSE_ERROR, format!("parse error: {e}")),
        };
        let id = head.id;
        let Some(method) = head.method.as_deref() else {
            let why = "invalid request: no method".to_string();
            return refuse(id, INVALID_REQUEST, why);
        };
        let Some(need) = self.perms.get(method).copied() else {
            return refuse(id, METHOD_NOT_FOUND, format!("method '{method}' not found"));
        };
        if !have.contains(&need) {
            let need = format!("{need:?}").to_lowercase();
            let why = format!("missing permission to invoke '{method}' (need '{need}')");
            let e = RpcError::new(PERMISSION_DENIED, why);
            return reply(StatusCode::FORBIDDEN, RpcResponse::err(id, e));
        }
        tracing::trace!(method, "rpc call");
        let text = std::str::from_utf8(body).expect("parsed as JSON, so UTF-8");
        let started = std::time::Instant::now();
        let answer = self.module.raw_json_request(text, 1).await;
        if let Some(t) = &self.timing {
            t(method, started.elapsed().as_secs_f64());
        }
        match answer {
            Ok((resp, _)) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                resp.get().to_string(),
            )
                .into_response(),
            // Not a JSON-RPC 2.0 request (say, `jsonrpc` is not "2.0").
            Err(e) => refuse(id, INVALID_REQUEST, format!("invalid request: {e}")),
        }
    }
}

impl RpcServer {
    /// A router answering `POST` at each of `paths` with this server.
    pub fn router(self, paths: &[&str]) -> axum::Router {
        let server = Arc::new(self);
        let mut r = axum::Router::new();
        for p in paths {
            r = r.route(p, axum::routing::post(handle));
        }
        r.with_state(server)
    }
}

async fn handle(
    axum::extract::State(server): axum::extract::State<Arc<RpcServer>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    server.handle(&headers, &body).await
}

/// Serves `app` on `listener` until `stop` resolves, on a runtime of its own: accepting,
/// reading requests, running handlers and writing answers happen apart from the runtime that
/// calls this, whose own tasks (a sealer's ten thousand sectors' steps) cannot keep a call
/// waiting. Under that load a task on the shared runtime was woken up to half a second late while
/// a thread of its own was woken within 3 ms; the CLI's calls took as long (#19). Whatever a
/// handler spawns runs on the API's runtime unless it spawns through a handle of its own.
pub async fn serve_apart(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    /// Stops the API's runtime when serving ends, or when this future is dropped (a runtime
    /// may not be dropped from async code; shut down in the background, it may).
    struct Apart(Option<tokio::runtime::Runtime>);
    impl Drop for Apart {
        fn drop(&mut self) {
            if let Some(rt) = self.0.take() {
                rt.shutdown_background();
            }
        }
    }
    let rt = Apart(Some(
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("api")
            .enable_all()
            .build()?,
    ));
    // The listener registered again with the API's runtime: its accepts are woken there.
    let listener = listener.into_std()?;
    let served = rt.0.as_ref().expect("running").spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
    });
    served.await.map_err(std::io::Error::other)?
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::methods;
    use crate::tasks::{ErrorKind, TaskError};

    methods! {
        Add = "Test.Add", Read, (u64,) -> u64;
        Fail = "Test.Fail", Read, () -> u64;
        Secret0 = "Test.Secret", Admin, () -> String;
    }

    async fn post(s: &RpcServer, token: &str, body: &str) -> (u16, Value) {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        let r = s.handle(&h, body.as_bytes()).await;
        let status = r.status().as_u16();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    /// One HTTP/1.1 GET on a new connection; the answer's body, or why none came in 2 s.
    fn get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(addr)?;
        c.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )?;
        let mut answer = String::new();
        c.read_to_string(&mut answer)?;
        Ok(answer
            .rsplit("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .to_string())
    }

    #[test]
    fn an_api_served_apart_answers_while_the_callers_runtime_is_busy() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let stop = Arc::new(tokio::sync::Notify::new());
        let (tx, rx) = std::sync::mpsc::channel();
        let s = stop.clone();
        let served = rt.spawn(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
            serve_apart(listener, app, async move { s.notified().await }).await
        });
        let addr = rx.recv().unwrap();
        let t = std::time::Instant::now();
        while get(addr, "/ping").ok().as_deref() != Some("pong") {
            assert!(t.elapsed().as_secs() < 10, "the API never answered");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The caller's runtime's only thread taken by a task that does not yield (as ten
        // thousand sectors' steps keep a runtime's threads busy).
        let (busy, release) = (Arc::new(AtomicBool::new(true)), std::sync::mpsc::channel());
        let b = busy.clone();
        rt.spawn(async move {
            release.0.send(()).unwrap();
            while b.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        });
        release.1.recv().unwrap();
        // A new connection is accepted and answered meanwhile.
        let answer = get(addr, "/ping");
        busy.store(false, Ordering::SeqCst);
        assert_eq!(answer.unwrap(), "pong");
        stop.notify_one();
        rt.block_on(served).unwrap().unwrap();
        // Dropped while it serves (its task aborted): it stops serving, nothing panics.
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
        let served = rt.spawn(serve_apart(listener, app, std::future::pending()));
        let t = std::time::Instant::now();
        while get(addr, "/ping").ok().as_deref() != Some("pong") {
            assert!(t.elapsed().as_secs() < 10, "the API never answered");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        served.abort();
        assert!(rt.block_on(served).unwrap_err().is_cancelled());
        let t = std::time::Instant::now();
        while get(addr, "/ping").is_ok() {
            assert!(
                t.elapsed().as_secs() < 10,
                "still served after its task was aborted"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[tokio::test]
    async fn results_typed_errors_and_refusals_go_through_the_module() {
        let secret = Secret::generate();
        let handlers = Handlers::<u64>::default()
            .on::<Add, _, _>(|s, (n,)| async move { Ok(s + n) })
            .on::<Fail, _, _>(|_, ()| async {
                Err(RpcError::task(&TaskError::new(
                    ErrorKind::OutOfSpace,
                    "full",
                )))
            })
            .on::<Secret0, _, _>(|_, ()| async { Ok("s".to_string()) });
        let s = RpcServer::new(secret.clone(), handlers, 40);
        let read = secret.token_for(Permission::Read);
        let call =
            |m: &str, p: &str| format!(r#"{{"jsonrpc":"2.0","id":7,"method":"{m}","params":{p}}}"#);
        let (st, v) = post(&s, &read, &call("Test.Add", "[2]")).await;
        assert_eq!(
            (st, v["result"].clone(), v["id"].clone()),
            (200, 42.into(), 7.into())
        );
        // The task error's kind travels in `data`, as the client reads it.
        let (_, v) = post(&s, &read, &call("Test.Fail", "[]")).await;
        let e: RpcError = serde_json::from_value(v["error"].clone()).unwrap();
        assert_eq!(e.task_error().kind, ErrorKind::OutOfSpace, "{v}");
        let (st, v) = post(&s, &read, &call("Test.Secret", "[]")).await;
        assert_eq!(
            (st, v["error"]["code"].clone()),
            (403, PERMISSION_DENIED.into())
        );
        let (_, v) = post(&s, &read, &call("Test.Add", r#"["x"]"#)).await;
        assert_eq!(v["error"]["code"], crate::rpc::INVALID_PARAMS, "{v}");
        let (_, v) = post(&s, &read, &call("Test.Nope", "[]")).await;
        assert_eq!(v["error"]["code"], METHOD_NOT_FOUND, "{v}");
        let (_, v) = post(
            &s,
            &read,
            r#"{"jsonrpc":"1.0","id":1,"method":"Test.Add","params":[1]}"#,
        )
        .await;
        assert_eq!(v["error"]["code"], INVALID_REQUEST, "{v}");
        let (st, _) = post(&s, "nope", &call("Test.Add", "[1]")).await;
        assert_eq!(st, 401);
    }
}
