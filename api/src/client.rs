//! The JSON-RPC client, and `MINER_API_INFO` (`<token>:/ip4/<ip>/tcp/<port>/http`).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::rpc::{RpcError, RpcRequest};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad API info {0:?}: {1}")]
    BadInfo(String, String),
    #[error("cannot reach the daemon at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// No connection could be made: the request did not reach the daemon (sending it again
    /// cannot do anything twice).
    #[error("cannot connect to the daemon at {url}: {reason}")]
    NotConnected { url: String, reason: String },
    #[error("{url}: HTTP {status}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{0}")]
    Rpc(#[from] RpcError),
    #[error("unreadable answer from {url}: {reason}")]
    BadAnswer { url: String, reason: String },
}

/// Where a daemon listens and the token to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiInfo {
    pub token: String,
    /// `host:port`.
    pub addr: String,
}

impl ApiInfo {
    /// Parses `<token>:<multiaddr>` (lotus's `MINER_API_INFO`).
    pub fn parse(s: &str) -> Result<ApiInfo, ClientError> {
        let bad = |why: &str| ClientError::BadInfo(s.to_string(), why.to_string());
        let (token, ma) = s
            .split_once(":/")
            .ok_or_else(|| bad("expected <token>:/ip4/<ip>/tcp/<port>/http"))?;
        let addr = multiaddr_to_addr(&format!("/{ma}")).map_err(|e| bad(&e))?;
        Ok(ApiInfo {
            token: token.to_string(),
            addr,
        })
    }

    pub fn url(&self) -> String {
        self.url_at("/rpc/v0")
    }

    /// The URL of the API served at `path` (`/rpc/v1` for a FullNode).
    pub fn url_at(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `<token>:<multiaddr>`, as lotus prints it.
    pub fn to_env(&self) -> String {
        let ma = host_port_to_multiaddr(&self.addr).unwrap_or_else(|| self.addr.clone());
        format!("{}:{ma}", self.token)
    }
}

/// `/ip4/127.0.0.1/tcp/2345/http` -> `127.0.0.1:2345` (also `/ip6/..`, `/dns/..`, `/dns4/..`).
pub fn multiaddr_to_addr(ma: &str) -> Result<String, String> {
    let parts: Vec<&str> = ma.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [proto, host, "tcp", port, rest @ ..]
            if matches!(*proto, "ip4" | "ip6" | "dns" | "dns4" | "dns6")
                && rest.iter().all(|r| *r == "http") =>
        {
            port.parse::<u16>()
                .map_err(|_| format!("bad port {port:?}"))?;
            Ok(if *proto == "ip6" {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            })
        }
        _ => Err(format!(
            "unsupported multiaddr {ma:?} (expected /ip4/<ip>/tcp/<port>/http)"
        )),
    }
}

/// `127.0.0.1:2345` -> `/ip4/127.0.0.1/tcp/2345/http`.
pub fn addr_to_multiaddr(addr: &std::net::SocketAddr) -> String {
    match addr {
        std::net::SocketAddr::V4(a) => format!("/ip4/{}/tcp/{}/http", a.ip(), a.port()),
        std::net::SocketAddr::V6(a) => format!("/ip6/{}/tcp/{}/http", a.ip(), a.port()),
    }
}

/// `host:port` as a multiaddr: `/ip4/..`, `/ip6/..`, or `/dns/<name>/..` for a host name.
pub fn host_port_to_multiaddr(hp: &str) -> Option<String> {
    if let Ok(a) = hp.parse::<std::net::SocketAddr>() {
        return Some(addr_to_multiaddr(&a));
    }
    let (host, port) = hp.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    (!host.is_empty()).then(|| format!("/dns/{host}/tcp/{port}/http"))
}

/// Idle connections a client keeps to each daemon: the sealer's one client for a thousand
/// workers keeps a few to each, not every connection a burst of calls opened.
pub const IDLE_PER_HOST: usize = 8;

pub struct Client {
    url: String,
    token: String,
    http: reqwest::Client,
    next_id: AtomicU64,
}

impl Client {
    pub fn new(info: &ApiInfo, timeout: std::time::Duration) -> Client {
        Client::new_at(info, "/rpc/v0", timeout)
    }

    /// A client of the API served at `path`.
    pub fn new_at(info: &ApiInfo, path: &str, timeout: std::time::Duration) -> Client {
        Client::pooled(info, path, timeout, IDLE_PER_HOST)
    }

    /// As [`Client::new_at`], keeping up to `idle_per_host` idle connections to each daemon
    /// (a process standing in for many workers, all calling one sealer, keeps more).
    pub fn pooled(
        info: &ApiInfo,
        path: &str,
        timeout: std::time::Duration,
        idle_per_host: usize,
    ) -> Client {
        // reqwest is built without a default TLS provider (see the workspace manifest).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(idle_per_host)
            // A connection that died without a word (a machine gone) is found by TCP, not
            // only by a long call's limit.
            .tcp_keepalive(std::time::Duration::from_secs(30))
            .build()
            .expect("HTTP client builds");
        Client {
            url: info.url_at(path),
            token: info.token.clone(),
            http,
            next_id: AtomicU64::new(1),
        }
    }

    /// A client of another daemon (`info`), at the same path with the same timeout, sharing
    /// this one's HTTP client: building one loads the system's certificates, which a sealer
    /// taking a thousand workers back after a restart would do a thousand times.
    pub fn for_other(&self, info: &ApiInfo) -> Client {
        let path = self.url.splitn(4, '/').nth(3).unwrap_or("rpc/v0");
        Client {
            url: info.url_at(&format!("/{path}")),
            token: info.token.clone(),
            http: self.http.clone(),
            next_id: AtomicU64::new(1),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls method `M` with its typed parameters; returns its typed result.
    pub async fn request<M: crate::contract::Method>(
        &self,
        params: M::Params,
    ) -> Result<M::Result, ClientError> {
        self.call(M::NAME, crate::contract::params_value::<M>(&params), None)
            .await
    }

    /// As [`Client::request`], with `limit` in place of the client's timeout: for a call that
    /// holds until long work is done (a worker's `WorkerFetch` of a 32GiB sector's files).
    pub async fn request_within<M: crate::contract::Method>(
        &self,
        params: M::Params,
        limit: std::time::Duration,
    ) -> Result<M::Result, ClientError> {
        self.call(
            M::NAME,
            crate::contract::params_value::<M>(&params),
            Some(limit),
        )
        .await
    }

    /// Calls `method` with positional `params` (a JSON array, as lotus sends them).
    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
        limit: Option<std::time::Duration>,
    ) -> Result<T, ClientError> {
        let req = RpcRequest {
            jsonrpc: "2.0".into(),
            method: method.to_string(),
            params,
            id: Value::from(self.next_id.fetch_add(1, Ordering::Relaxed)),
        };
        let mut post = self.http.post(&self.url);
        if let Some(limit) = limit {
            post = post.timeout(limit);
        }
        let resp = post
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&req).expect("requests serialize"))
            .send()
            .await
            .map_err(|e| {
                let (url, reason) = (self.url.clone(), proofs::params::with_causes(&e));
                if e.is_connect() {
                    ClientError::NotConnected { url, reason }
                } else {
                    ClientError::Unreachable { url, reason }
                }
            })?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| ClientError::BadAnswer {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        // The result read straight into its type (no `Value` tree between).
        let parsed: Result<Answer, _> = serde_json::from_str(&body);
        match parsed {
            Ok(Answer {
                error: Some(err), ..
            }) => Err(ClientError::Rpc(err)),
            Ok(Answer { result, .. }) if status == 200 => {
                serde_json::from_str(result.map_or("null", |r| r.get())).map_err(|e| {
                    ClientError::BadAnswer {
                        url: self.url.clone(),
                        reason: format!("{method}: {e}"),
                    }
                })
            }
            _ => Err(ClientError::Http {
                url: self.url.clone(),
                status,
                body: body.trim().to_string(),
            }),
        }
    }
}

/// A JSON-RPC response as the client reads it: the result left as text until its type is known.
#[derive(serde::Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default)]
    result: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    error: Option<RpcError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_info() {
        let i = ApiInfo::parse("abc.def.ghi:/ip4/127.0.0.1/tcp/2345/http").unwrap();
        assert_eq!(i.token, "abc.def.ghi");
        assert_eq!(i.url(), "http://127.0.0.1:2345/rpc/v0");
        assert!(ApiInfo::parse("tok:/ip4/127.0.0.1/udp/1").is_err());
        assert!(ApiInfo::parse("no-multiaddr").is_err());
        let a: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(addr_to_multiaddr(&a), "/ip4/127.0.0.1/tcp/9/http");
    }
}
