//! The worker's side of its registration with the sealer: `WorkerConnect` at start, after the
//! sealer restarts and whenever its paths or task types change. Shared by `worker run` and the
//! load tool's simulated workers, so both keep the same link.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use api::methods as m;
use api::Client;

/// Announces the worker at `url` every few seconds (or at once when `announce` is notified).
/// `on_new` runs after each new registration (the sealer may have restarted with an empty
/// index: paths and files are declared again); `on_beat` after each answered announcement.
pub async fn keep_connected<F, Fut>(
    sealer: Arc<Client>,
    url: String,
    _session: String,
    announce: Arc<tokio::sync::Notify>,
    on_new: F,
    on_beat: impl Fn(),
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut connected = false;
    loop {
        match sealer.request::<m::WorkerConnect>((url.clone(),)).await {
            Ok(v) => {
                on_beat();
                if v.new {
                    on_new().await;
                }
                if !connected {
                    tracing::info!("connected to the sealer as {}", v.id);
                    connected = true;
                }
            }
            Err(e) => {
                if connected {
                    tracing::warn!("sealer not reachable: {e}");
                }
                connected = false;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), announce.notified()).await;
    }
}
