//! What the sealer serves over HTTP besides JSON-RPC: Prometheus metrics (`GET /metrics`), the
//! dashboard (`/ui/...`: server-rendered pages, every asset in the binary, fragments refreshed
//! every few seconds) and the same data as JSON (`/api/v0/...`).
//!
//! Access is the API's JWT: a token with read permission, as `Authorization: Bearer` or as the
//! `sealer_token` cookie that the login form sets. Without one: 401 (the dashboard's 401 is its
//! login form). `/metrics` is open only with `[API] MetricsWithoutToken`. Actions (abort a job,
//! remove a sector) need admin.

mod assets;
mod auth;
mod metrics;
mod pages;
pub mod views;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use stores::Permission;

use crate::daemon::Node;
use crate::fsm::Event;
use auth::Access;

/// The proving figures (`StateMinerDeadlines`: several chain calls) as last read, refreshed in
/// the background every [`ProvingCache::EVERY`]: what `/metrics` and the overview show, so that
/// neither waits on the chain node.
#[derive(Default)]
pub struct ProvingCache(std::sync::Mutex<Option<Result<api::ProvingDeadlines, String>>>);

impl ProvingCache {
    pub const EVERY: std::time::Duration = std::time::Duration::from_secs(5);

    /// The last read (`Err`: why it failed); `None` before the first.
    pub fn get(&self) -> Option<Result<api::ProvingDeadlines, String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn spawn(node: Arc<Node>) {
        tokio::spawn(async move {
            loop {
                let r = crate::rpc::deadlines(&node).await.map_err(|e| e.message);
                *node.proving.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                tokio::time::sleep(Self::EVERY).await;
            }
        });
    }
}

/// The routes, to merge into the daemon's app.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/metrics", get(metrics::serve))
        .route("/ui", get(|| async { Redirect::to("/ui/overview") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/overview") }))
        .route("/ui/login", get(pages::login_page).post(login))
        .route("/ui/logout", get(logout))
        .route("/ui/static/{file}", get(assets::serve))
        .route("/ui/{page}", get(page))
        .route("/ui/sectors/{n}", get(sector_page))
        .route("/ui/frag/{page}", get(fragment))
        .route("/ui/frag/sectors/{n}", get(sector_fragment))
        .route("/ui/act/{what}/{n}", post(act))
        .route("/api/v0/{view}", get(json))
        .route("/api/v0/sectors/{n}", get(sector_json))
        .with_state(node)
}

/// A page's name in its URL and its title.
pub(crate) const PAGES: [(&str, &str); 6] = [
    ("overview", "Overview"),
    ("workers", "Workers"),
    ("tasks", "Tasks"),
    ("sectors", "Sectors"),
    ("storage", "Storage"),
    ("proving", "Proving"),
];

fn not_found(what: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("no {what} here\n")).into_response()
}

fn failed(e: api::rpc::RpcError) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", e.message)).into_response()
}

async fn json(State(node): State<Arc<Node>>, Path(view): Path<String>, access: Access) -> Response {
    if let Some(r) = access.refuse(Permission::Read, false) {
        return r;
    }
    match view.as_str() {
        "overview" => Json(views::overview(&node).await).into_response(),
        "workers" => Json(views::workers(&node)).into_response(),
        "tasks" => Json(views::tasks(&node)).into_response(),
        "sectors" => Json(views::sectors(&node)).into_response(),
        "storage" => match views::storage(&node).await {
            Ok(v) => Json(v).into_response(),
            Err(e) => failed(e),
        },
        "proving" => match views::proving(&node).await {
            Ok(v) => Json(v).into_response(),
            Err(e) => failed(e),
        },
        _ => not_found(&format!("view {view:?}")),
    }
}

async fn sector_json(
    State(node): State<Arc<Node>>,
    Path(n): Path<u64>,
    access: Access,
) -> Response {
    if let Some(r) = access.refuse(Permission::Read, false) {
        return r;
    }
    match views::sector(&node, n).await {
        Ok(v) => Json(v).into_response(),
        Err(_) => not_found(&format!("sector {n}")),
    }
}

/// The sectors page's search.
#[derive(serde::Deserialize, Default)]
struct Search {
    #[serde(default)]
    q: String,
}

/// `s` as a URL query value.
fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn page(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Query(s): Query<Search>,
    access: Access,
) -> Response {
    show(&node, &access, &name, &s.q, true).await
}

async fn fragment(
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    Query(s): Query<Search>,
    access: Access,
) -> Response {
    show(&node, &access, &name, &s.q, false).await
}

/// Page `name` (searched for `q`): `whole`, in its layout (a 401 is then the login form), or
/// only the part that refreshes.
async fn show(node: &Arc<Node>, access: &Access, name: &str, q: &str, whole: bool) -> Response {
    if let Some(r) = access.refuse(Permission::Read, whole) {
        return r;
    }
    let Some(body) = pages::fragment(node, name, access, q).await else {
        return not_found(&format!("page {name:?}"));
    };
    match whole {
        true => {
            let frag = format!("/ui/frag/{name}?q={}", query_value(q));
            pages::page(node, name, &frag, pages::above(name, q), body)
        }
        false => pages::html(body),
    }
}

async fn sector_page(
    State(node): State<Arc<Node>>,
    Path(n): Path<u64>,
    access: Access,
) -> Response {
    show_sector(&node, &access, n, true).await
}

async fn sector_fragment(
    State(node): State<Arc<Node>>,
    Path(n): Path<u64>,
    access: Access,
) -> Response {
    show_sector(&node, &access, n, false).await
}

/// Sector `n`'s page, `whole` or only the part that refreshes (see [`show`]).
async fn show_sector(node: &Arc<Node>, access: &Access, n: u64, whole: bool) -> Response {
    if let Some(r) = access.refuse(Permission::Read, whole) {
        return r;
    }
    let Ok(d) = views::sector(node, n).await else {
        return not_found(&format!("sector {n}"));
    };
    let body = pages::sector(&d, access);
    match whole {
        true => {
            let frag = format!("/ui/frag/sectors/{n}");
            pages::page(node, "sectors", &frag, maud::html! {}, body)
        }
        false => pages::html(body),
    }
}

#[derive(serde::Deserialize)]
struct Login {
    token: String,
}

async fn login(State(node): State<Arc<Node>>, Form(f): Form<Login>) -> Response {
    match node.secret.verify(&f.token) {
        Ok(perms) if perms.contains(&Permission::Read) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/ui/overview".to_string()),
                (header::SET_COOKIE, auth::cookie(f.token.trim())),
            ],
        )
            .into_response(),
        Ok(_) => pages::login(Some("this token has no read permission")).into_response(),
        Err(e) => pages::login(Some(&format!("this token is not accepted: {e}"))).into_response(),
    }
}

async fn logout() -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/ui/login".to_string()),
            (header::SET_COOKIE, auth::cookie_cleared()),
        ],
    )
        .into_response()
}

/// A form posted from another site (its `Origin` is not this host): refused, whatever cookie
/// came with it.
fn cross_site(headers: &HeaderMap) -> Option<Response> {
    let origin = headers.get(header::ORIGIN)?.to_str().unwrap_or("");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let same = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o == host);
    (!same).then(|| {
        (
            StatusCode::FORBIDDEN,
            format!(
                "an action posted from {origin:?}, not from this dashboard ({host})
"
            ),
        )
            .into_response()
    })
}

/// The CLI's actions from the dashboard, admin only and from the dashboard's own pages:
/// `abort/<job>` (`sealing abort`), `remove/<sector>` (`sectors remove`). Done, it goes back
/// to the page that shows the result.
async fn act(
    State(node): State<Arc<Node>>,
    Path((what, n)): Path<(String, u64)>,
    headers: HeaderMap,
    access: Access,
) -> Response {
    if let Some(r) = access
        .refuse(Permission::Admin, false)
        .or_else(|| cross_site(&headers))
    {
        return r;
    }
    let done = match what.as_str() {
        "abort" => node
            .manager
            .abort(n)
            .map(|()| "/ui/tasks".to_string())
            .map_err(|e| e.to_string()),
        "remove" => node
            .sectors
            .apply(n, Event::Remove, |_| {})
            .map(|_| {
                node.pipeline.start(n);
                format!("/ui/sectors/{n}")
            })
            .map_err(|e| e.to_string()),
        _ => return not_found(&format!("action {what:?}")),
    };
    match done {
        Ok(to) => back(&to),
        Err(e) => (StatusCode::CONFLICT, format!("{e}\n")).into_response(),
    }
}

fn back(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// Every dashboard response forbids loading anything from elsewhere.
pub(crate) fn secure_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'"
            .parse()
            .expect("a valid header"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        "nosniff".parse().expect("a valid header"),
    );
    h.insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("a valid header"),
    );
}
