//! The worker's side of its link with the sealer: `WorkerConnect` at start, after the sealer
//! restarts (or gave the worker up) and whenever its paths or task types change, and between
//! them a `WorkerHeartbeat` every [`api::HEARTBEAT`]. Shared by `worker run` and the load tool's
//! simulated workers, so both keep the same link.

use std::future::Future;
use std::sync::Arc;

use api::methods as m;
use api::Client;

/// Keeps the worker at `url` (session `session`) registered. `announce` asks for a
/// `WorkerConnect` now (what it announces changed); `on_new` runs after each new registration
/// (the sealer may have restarted with an empty index: paths and files are declared again),
/// in a task of its own;
/// `on_beat` after each call the sealer answered; `health` gives the paths' health every
/// [`api::HEALTH_EVERY`] beats.
pub async fn keep_connected<F, Fut>(
    sealer: Arc<Client>,
    url: String,
    session: String,
    announce: Arc<tokio::sync::Notify>,
    on_new: F,
    on_beat: impl Fn(),
    health: impl Fn() -> Vec<stores::local::PathHealth>,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // Known to the sealer under this session; whether the last call got through.
    let (mut registered, mut reachable) = (false, false);
    let mut beats = 0u32;
    loop {
        let r = match registered {
            false => sealer
                .request::<m::WorkerConnect>((url.clone(),))
                .await
                .map(|v| {
                    if !reachable || v.new {
                        tracing::info!("connected to the sealer as {}", v.id);
                    }
                    Some(v.new)
                }),
            true => {
                beats = beats.wrapping_add(1);
                let paths = beats.is_multiple_of(api::HEALTH_EVERY).then(&health);
                sealer
                    .request::<m::WorkerHeartbeat>((url.clone(), session.clone(), paths))
                    .await
                    .map(|known| known.then_some(false))
            }
        };
        match r {
            Ok(state) => {
                on_beat();
                reachable = true;
                registered = state.is_some();
                if state == Some(true) {
                    // Aside: declaring a large store takes a while, and the beats go on
                    // meanwhile (a worker silent for the removal time would be given up).
                    tokio::spawn(on_new());
                }
                if state.is_none() {
                    tracing::info!("the sealer no longer knows this worker: connecting again");
                    continue;
                }
            }
            Err(e) => {
                if reachable {
                    tracing::warn!("sealer not reachable: {e}");
                }
                reachable = false;
            }
        }
        if tokio::time::timeout(api::HEARTBEAT, announce.notified())
            .await
            .is_ok()
        {
            registered = false;
        }
    }
}

/// The paths' health as the beats carry it: measured on a blocking thread every
/// [`api::HEALTH_EVERY`] beats' time, the beat taking the latest measure without waiting (a
/// hung mount or a long walk of a path's files must not silence the worker).
pub fn health_watch(store: stores::LocalStore) -> impl Fn() -> Vec<stores::local::PathHealth> {
    let latest = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = latest.clone();
    tokio::spawn(async move {
        loop {
            let s = store.clone();
            if let Ok(h) = tokio::task::spawn_blocking(move || s.health()).await {
                *kept.lock().unwrap_or_else(|e| e.into_inner()) = h;
            }
            tokio::time::sleep(api::HEARTBEAT * api::HEALTH_EVERY).await;
        }
    });
    move || latest.lock().unwrap_or_else(|e| e.into_inner()).clone()
}
