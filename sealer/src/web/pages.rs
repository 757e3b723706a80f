//! The dashboard's HTML: a page is the layout around a fragment, and the fragment (what
//! `/ui/frag/<page>` serves for the refresh) is rendered from the page's view. Charts are inline
//! SVG.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use stores::Permission;

use super::auth::Access;
use super::views::{self, Overview, SectorDetail, SectorRow, Tasks, WorkerView};
use super::PAGES;
use crate::daemon::Node;
use crate::fsm::now_ms;

fn respond(status: StatusCode, m: Markup) -> Response {
    let mut r = (status, Html(m.into_string())).into_response();
    super::secure_headers(r.headers_mut());
    r
}

/// A fragment as an answer.
pub fn html(m: Markup) -> Response {
    respond(StatusCode::OK, m)
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · sealer" }
            link rel="stylesheet" href="/ui/static/style.css";
            link rel="icon" href="data:,";
        }
    }
}

/// The login form (the answer to a page asked for without a valid token).
pub fn login(error: Option<&str>) -> Response {
    respond(
        StatusCode::OK,
        html! {
            (DOCTYPE)
            html lang="en" {
                (head("Log in"))
                body {
                    div.login {
                        h2 { "Sealer dashboard" }
                        p { "Paste an API token with read permission (admin to abort jobs or remove sectors). Make one with " code { "sealer auth create-token --perm read" } "." }
                        @if let Some(e) = error { p.bad #login-error { (e) } }
                        form method="post" action="/ui/login" {
                            input #token type="password" name="token" autocomplete="off" placeholder="eyJhbGciOi...";
                            button #login type="submit" { "Log in" }
                        }
                    }
                }
            }
        },
    )
}

pub async fn login_page() -> Response {
    login(None)
}

/// A whole page: navigation, the mock banner where the mock engine runs, and `body`, which
/// refreshes from `frag`.
pub fn page(node: &Arc<Node>, name: &str, frag: &str, above: Markup, body: Markup) -> Response {
    let title = PAGES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("Sealer", |(_, t)| t);
    let mock = node.engine.kind() == proofs::EngineKind::Mock;
    respond(
        StatusCode::OK,
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body {
                    header {
                        strong { "sealer " (crate::config::actor_name(node.settings.actor)) }
                        nav {
                            @for (n, t) in PAGES {
                                a.here[n == name] href={ "/ui/" (n) } { (t) } " "
                            }
                        }
                        span.who { span #refresh-status { "live" } " · " a href="/ui/logout" { "log out" } }
                    }
                    @if mock {
                        div.mock #mock-banner { "MOCK PROOF ENGINE: these sectors carry no real proofs (a demo or a test)" }
                    }
                    div.above { (above) }
                    main #live data-refresh=(frag) data-every="3" { (body) }
                    script src="/ui/static/ui.js" {}
                }
            }
        },
    )
}

/// What stays above the refreshed part of page `name` (a form being typed in).
pub fn above(name: &str, q: &str) -> Markup {
    html! {
        @if name == "sectors" {
            form.search method="get" action="/ui/sectors" {
                input #search type="text" name="q" value=(q) placeholder="sector number or state";
                " " button type="submit" { "Search" }
            }
        }
    }
}

/// The refreshable part of page `name`; `None` for no such page.
pub async fn fragment(node: &Arc<Node>, name: &str, access: &Access, q: &str) -> Option<Markup> {
    Some(match name {
        "overview" => overview(&views::overview(node).await),
        "workers" => workers(&views::workers(node)),
        "tasks" => tasks(&views::tasks(node), access),
        "sectors" => sectors(&views::sectors(node), q),
        "storage" => match views::storage(node).await {
            Ok(rows) => storage(&rows),
            Err(e) => html! { p.bad { "storage could not be listed: " (e.message) } },
        },
        "proving" => match views::proving(node).await {
            Ok(d) => proving(&d),
            Err(e) => html! { p.bad { "the chain could not be read: " (e.message) } },
        },
        _ => return None,
    })
}

fn dur(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{secs:.1}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

fn ago(ms: u64) -> String {
    format!("{} ago", dur(now_ms().saturating_sub(ms) as f64 / 1000.0))
}

/// A horizontal bar: `used` of `total`, with its text.
fn bar(used: f64, total: f64, text: &str) -> Markup {
    let w = if total > 0.0 {
        (used / total).clamp(0.0, 1.0) * 120.0
    } else {
        0.0
    };
    html! {
        svg width="124" height="12" role="img" aria-label=(text) {
            rect x="1" y="1" width="122" height="10" fill="#eef1f6" stroke="#d9dee7" {}
            rect x="2" y="2" width=(format!("{w:.1}")) height="8" fill="#2f5bd3" {}
        }
        " " span.muted { (text) }
    }
}

/// A bar chart of counts (oldest first), labelled at its ends.
fn chart(values: &[u64], first: &str, last: &str, id: &str) -> Markup {
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let (w, h) = (14.0, 60.0);
    let width = values.len() as f64 * w + 40.0;
    html! {
        svg #(id) width=(width) height="84" role="img" {
            @for (i, v) in values.iter().enumerate() {
                @let bh = *v as f64 / max * h;
                rect x=(format!("{:.1}", i as f64 * w + 2.0)) y=(format!("{:.1}", h - bh + 4.0)) width="11" height=(format!("{bh:.1}")) fill="#2f5bd3" {
                    title { (v) }
                }
            }
            text x="2" y="80" { (first) }
            text x=(format!("{:.0}", values.len() as f64 * w - 20.0)) y="80" { (last) }
            text x=(format!("{:.0}", values.len() as f64 * w + 4.0)) y="12" { "max " (max as u64) }
        }
    }
}

fn overview(o: &Overview) -> Markup {
    html! {
        div.cards {
            div.card { "Miner " b { (o.actor) } br; (o.sector_size) " sectors, " (o.engine) " proofs" }
            div.card { "Sectors " b #sector-count { (o.sectors) } }
            div.card {
                "Power "
                @match (o.power_bytes, o.power_sectors) {
                    (Some(b), Some(n)) => { b { (resources::human_bytes(b)) } " (" (n) " sectors)" }
                    _ => { span.muted { "unknown" } }
                }
            }
            div.card {
                "Next WindowPoSt "
                @match o.next_post {
                    Some((dl, open, inn)) => { b { "deadline " (dl) } " opens at epoch " (open) " (in " (inn.max(0)) " epochs)" }
                    None => { span.muted { "no sectors to prove" } }
                }
                @if let Some(h) = o.head { br; span.muted { "chain head " (h) } }
            }
        }
        h2 { "Pipeline" }
        div.pipeline #pipeline {
            @for s in &o.states {
                div.stage.failed[s.failed] data-state=(s.state.to_string()) {
                    b { (s.count) } (s.state.to_string())
                }
            }
        }
        h2 { "Alerts" }
        @if o.alerts.is_empty() {
            p.ok #alerts { "none" }
        } @else {
            ul.alerts #alerts {
                @for a in &o.alerts {
                    li { span.bad { (a.kind) } ": " (a.text) " " a href=(a.link) { "→" } }
                }
            }
        }
        h2 { "Sectors reaching Proving" }
        div.cards {
            div.card { "per hour, last 24 h" br; (chart(&o.proving_per_hour, "-24h", "now", "per-hour")) }
            div.card { "per day, last 14 days" br; (chart(&o.proving_per_day, "-14d", "today", "per-day")) }
        }
    }
}

fn workers(ws: &[WorkerView]) -> Markup {
    html! {
        table #workers {
            thead { tr { th { "Worker" } th { "State" } th { "Heartbeat" } th { "Task types" } th { "CPU" } th { "RAM (min)" } th { "GPU" } th { "Running now" } } }
            tbody {
                @for w in ws {
                    @let r = &w.row;
                    tr data-worker=(r.hostname) {
                        td { b { (r.hostname) } br; span.muted { "id " (r.id) } }
                        td {
                            @if !r.connected { span.bad { "down" } }
                            @else if !r.enabled { span.warn { "disabled" } }
                            @else { span.ok { "up" } }
                        }
                        td.num { (dur(w.heartbeat_age_s)) }
                        td { (r.tasks.iter().map(|t| t.short()).collect::<Vec<_>>().join(" ")) }
                        td { (bar(r.usage.cpus as f64, r.resources.cpus as f64, &format!("{} / {} threads", r.usage.cpus, r.resources.cpus))) }
                        td { (bar(r.usage.mem_min as f64, r.resources.mem_physical as f64, &format!("{} / {}", resources::human_bytes(r.usage.mem_min), resources::human_bytes(r.resources.mem_physical)))) }
                        td {
                            @if r.resources.gpus.is_empty() { span.muted { "none" } }
                            @else { (bar(r.usage.gpu_milli as f64, r.resources.gpus.len() as f64 * 1000.0, &format!("{:.2} / {}", r.usage.gpu_milli as f64 / 1000.0, r.resources.gpus.len()))) }
                        }
                        td {
                            @if w.running.is_empty() { span.muted { "idle" } }
                            @for t in &w.running {
                                div.running {
                                    b { (t.job.task.short()) } " " (t.job.subject.to_string()) " " span.muted { (t.job.state) } " "
                                    (elapsed(t))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Elapsed against the usual duration: a bar once a usual duration is known.
fn elapsed(t: &views::RunningTask) -> Markup {
    let secs = t.job.elapsed_ms as f64 / 1000.0;
    if let Some(p) = t.job.progress {
        return html! {
            (bar(p.fraction(), 1.0, &p.to_string()))
            " " span.muted { (dur(secs)) @if let Some(u) = t.usual_s { " of usually " (dur(u)) } }
        };
    }
    match t.usual_s {
        Some(u) if u > 0.0 => html! {
            (bar(secs, u, &format!("{} of usually {}", dur(secs), dur(u))))
            @if secs > 2.0 * u && secs > 60.0 { " " span.warn { "slow" } }
        },
        _ => html! { span.muted { (dur(secs)) } },
    }
}

fn tasks(t: &Tasks, access: &Access) -> Markup {
    let admin = access.can(Permission::Admin);
    html! {
        h2 { "Placed on workers (" (t.placed.len()) ")" }
        table #placed {
            thead { tr { th { "Job" } th { "Task" } th { "Subject" } th { "Worker" } th { "State" } th { "Time" } @if admin { th {} } } }
            tbody {
                @for r in &t.placed {
                    tr data-job=(r.job.id) {
                        td.num { (r.job.id) }
                        td { (r.job.task.short()) }
                        td { (r.job.subject.to_string()) }
                        td { (r.job.hostname) }
                        td { (r.job.state) @if r.job.state == "preparing" { span.muted { " (fetching its files)" } } }
                        td { (elapsed(r)) }
                        @if admin { td { form.inline method="post" action={ "/ui/act/abort/" (r.job.id) } data-confirm={ "Abort job " (r.job.id) "?" } { button.danger type="submit" { "abort" } } } }
                    }
                }
            }
        }
        h2 { "Queued (" (t.queued.len()) ")" }
        table #queued {
            thead { tr { th { "Job" } th { "Task" } th { "Subject" } th { "Why it is not running" } @if admin { th {} } } }
            tbody {
                @for q in &t.queued {
                    tr data-job=(q.id) data-reason=(q.reason.as_deref().unwrap_or("")) {
                        td.num { (q.id) }
                        td { (q.task) }
                        td { (q.subject) }
                        td {
                            b { (q.why.as_deref().unwrap_or("not explained yet (only the first 200 queued tasks are, once a second)")) }
                            @if !q.workers.is_empty() {
                                ul.why {
                                    @for w in &q.workers { li { (w.host) " (" (w.worker) "): " (w.why) } }
                                }
                            }
                        }
                        @if admin { td { form.inline method="post" action={ "/ui/act/abort/" (q.id) } data-confirm={ "Abort job " (q.id) "?" } { button.danger type="submit" { "abort" } } } }
                    }
                }
            }
        }
        @if !t.sectors_waiting.is_empty() {
            h2 { "Sectors waiting before any task" }
            table #sectors-waiting {
                thead { tr { th { "Sector" } th { "State" } th { "Why" } } }
                tbody { @for w in &t.sectors_waiting { tr { td { a href={ "/ui/sectors/" (w.sector) } { (w.sector) } } td { (w.state.to_string()) } td { (w.why) } } } }
            }
        }
        p.muted { (t.passes) " scheduling passes" }
    }
}

fn sector_rows(rows: &[&SectorRow], id: &str) -> Markup {
    html! {
        table id=(id) {
            thead { tr { th { "Sector" } th { "State" } th { "Since" } th { "Retries" } th { "Last error / waiting" } } }
            tbody {
                @for s in rows {
                    tr data-sector=(s.number) {
                        td { a href={ "/ui/sectors/" (s.number) } { (s.number) } }
                        td.bad[s.failed] { (s.state.to_string()) @if s.stuck { " " span.warn { "stuck" } } }
                        td { (ago(s.since_ms)) }
                        td.num { (s.retries) }
                        td { (s.waiting.as_deref().unwrap_or(&s.last_error)) }
                    }
                }
            }
        }
    }
}

fn sectors(all: &[SectorRow], q: &str) -> Markup {
    let q = q.trim().to_lowercase();
    let shown: Vec<&SectorRow> = all
        .iter()
        // A number is a sector number; anything else a part of a state's name.
        .filter(|s| match q.parse::<u64>() {
            _ if q.is_empty() => true,
            Ok(n) => s.number == n,
            Err(_) => s.state.to_string().to_lowercase().contains(&q),
        })
        .collect();
    let bad: Vec<&SectorRow> = all.iter().filter(|s| s.failed || s.stuck).collect();
    html! {
        @if !bad.is_empty() {
            h2 { "Failed and stuck (" (bad.len()) ")" }
            (sector_rows(&bad, "failed-sectors"))
        }
        h2 { "Sectors (" (shown.len()) " of " (all.len()) ")" }
        (sector_rows(&shown, "sectors"))
    }
}

pub fn sector(d: &SectorDetail, access: &Access) -> Markup {
    let i = &d.info;
    html! {
        h2 { "Sector " (i.sector_id) ": " span.bad[i.state.is_failed()] #sector-state { (i.state.to_string()) } }
        @if let Some(w) = &i.waiting { p.warn { "waiting: " (w) } }
        @if !i.last_error.is_empty() { p.bad { "last error (" (i.retries) " retries): " (i.last_error) } }
        @if access.can(Permission::Admin) && i.state != api::SectorState::Removed {
            form.inline method="post" action={ "/ui/act/remove/" (i.sector_id) } data-confirm={ "Remove sector " (i.sector_id) " and its files?" } { button.danger #remove type="submit" { "remove sector" } }
        }
        h2 { "Timeline" }
        table #timeline {
            thead { tr { th { "When" } th { "State" } th { "Event" } th { "Took" } th { "What happened" } } }
            tbody {
                @for s in &d.steps {
                    tr.bad[s.error] {
                        td { (ago(s.at_ms)) }
                        td { (s.state.to_string()) }
                        td { (s.kind) }
                        td.num { (dur(s.took_ms as f64 / 1000.0)) }
                        td { (s.message) }
                    }
                }
            }
        }
        h2 { "Files" }
        table #files {
            thead { tr { th { "File" } th { "Storage" } th { "Path / URL" } th { "Seal / store" } } }
            tbody {
                @for f in &d.files {
                    tr { td { (f.file_type) } td { (f.storage) } td { (f.local_path.clone().unwrap_or_else(|| f.urls.join(" "))) } td { (f.can_seal) " / " (f.can_store) } }
                }
            }
        }
        h2 { "On chain" }
        @match (&i.on_chain, &d.chain_error) {
            (_, Some(e)) => { p.bad { "the chain could not be read: " (e) } }
            (Some(c), None) => {
                table #on-chain { tbody {
                    tr { th { "Pre-commit epoch" } td { (opt(c.precommit_epoch)) } }
                    tr { th { "Activation" } td { (opt(c.activation)) } }
                    tr { th { "Expiration" } td { (opt(c.expiration)) } }
                    tr { th { "Deadline / partition" } td { (opt(c.deadline)) " / " (opt(c.partition)) } }
                    tr { th { "Sealed CID" } td { (c.sealed_cid.clone().unwrap_or_default()) } }
                } }
            }
            (None, None) => { p.muted { "nothing" } }
        }
        table { tbody {
            tr { th { "CommR" } td { (i.comm_r.clone().unwrap_or_default()) } }
            tr { th { "Ticket / seed epoch" } td { (opt(i.ticket_epoch)) " / " (opt(i.seed_epoch)) } }
            tr { th { "Pre-commit / commit message" } td { (i.precommit_msg.clone().unwrap_or_default()) br; (i.commit_msg.clone().unwrap_or_default()) } }
        } }
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn storage(rows: &[api::StorageRow]) -> Markup {
    html! {
        table #storage {
            thead { tr { th { "Path" } th { "ID" } th { "Seal / store" } th { "Used" } th { "Available" } th { "Reserved" } th { "Sectors held" } th { "Health" } } }
            tbody {
                @for p in rows {
                    @let st = p.stat.unwrap_or_default();
                    tr {
                        td { (p.local_path.clone().unwrap_or_else(|| p.info.urls.join(" "))) }
                        td { (p.info.id.0) }
                        td { (p.info.can_seal) " / " (p.info.can_store) }
                        td { (bar(st.capacity.saturating_sub(st.fs_available) as f64, st.capacity as f64, &format!("{} of {}", resources::human_bytes(st.capacity.saturating_sub(st.fs_available)), resources::human_bytes(st.capacity)))) }
                        td.num { (resources::human_bytes(st.available)) }
                        td.num { (resources::human_bytes(st.reserved)) }
                        td { (p.counts.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")) }
                        td {
                            @match &p.error { Some(e) => { span.bad { (e) } } None => { span.ok { "healthy" } } }
                            @if let Some(a) = views::path_alert(&p.info.id.0, p.local_path.as_deref(), p.stat.as_ref(), p.error.as_deref()) { br; span.warn { (a.kind) } }
                        }
                    }
                }
            }
        }
    }
}

fn proving(d: &api::ProvingDeadlines) -> Markup {
    html! {
        div.cards {
            div.card { "Chain head " b { (d.head) } br; "current deadline " (d.current.index) " (epochs " (d.current.open) "–" (d.current.close) ")" }
            div.card { "WindowPoSt: " b { (d.proofs_accepted) } " proofs accepted, " b.bad[d.missed > 0] { (d.missed) } " deadlines missed, " (d.faults.len()) " faulty sectors" }
            div.card { "WinningPoSt: " (d.elections) " elections, " (d.winning_posts_sent) " proofs made, " b { (d.blocks_won) } " blocks won" }
        }
        h2 { "Deadlines" }
        div.deadlines #deadlines {
            @for r in &d.deadlines {
                @let sectors: usize = r.partitions.iter().map(|p| p.sectors.len()).sum();
                @let faults: usize = r.partitions.iter().map(|p| p.faults.len()).sum();
                @let recov: usize = r.partitions.iter().map(|p| p.recoveries.len()).sum();
                div.dl.current[r.index == d.current.index].faulty[faults > 0].empty[sectors == 0] data-deadline=(r.index) {
                    b { "#" (r.index) } br;
                    (r.partitions.len()) " part, " (sectors) " sect" br;
                    @if faults > 0 { span.bad { (faults) " faulty" } br; }
                    @if recov > 0 { span.warn { (recov) " recovering" } br; }
                    @if let Some(run) = &r.last_run { span.muted title=(run.message.clone().unwrap_or_default()) { (run.outcome) " @" (run.open) @if let Some(ms) = run.proof_ms { " in " (dur(ms as f64 / 1000.0)) } } }
                }
            }
        }
        p.muted { "Each box: partitions and sectors, faults, recoveries, and the last opening's outcome (hover for its message)." }
    }
}
