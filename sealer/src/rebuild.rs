//! Lost replicas: a step that needs files no healthy path holds gives way to `FilesLost`
//! instead of waiting for a dead address, and a committed-capacity sector's replica is made
//! again from its recorded ticket (PC1 of zeros, PC2), checked against the chain's commR.
//! Part of the pipeline (its steps for the Rebuild states), kept apart for reading.

use super::*;

use proofs::SealedCommitments;
use resources::SectorSize;
use stores::{PathKind, StorageId};

/// Losses are confirmed after this long: a restarted worker's paths are unhealthy for the
/// moment between its new session and its paths declared again.
const LOSS_GRACE: Duration = Duration::from_secs(2);

/// A path reporting errors counts as lost once it has failed this long (three storage
/// heartbeats): one failed statfs does not start a rebuild.
const FAILING_FOR: Duration = Duration::from_secs(30);

/// Whether the old files may still come back and end the rebuild: they were out of reach (not
/// known unreadable, nor replaced at an operator's request), and the rebuild has not written
/// its own yet.
fn may_come_back(r: &crate::fsm::Rebuild) -> bool {
    !(r.manual || r.unreadable || r.started)
}

/// What a rebuild waits for, to learn that the files it lacked came back.
fn needed_by(then: SectorState) -> FileTypes {
    match then {
        FinalizeSector => FileTypes::SEALED,
        _ => FileTypes::ALL,
    }
}

impl Pipeline {
    /// Runs `call`, whose inputs `need` must be on a path that is not failing. When none holds
    /// them (before the call is queued, or while it waits or runs), the step ends with
    /// `FilesLost` and the queued request is withdrawn.
    pub(super) async fn task_on_files(
        &self,
        call: TaskCall,
        need: FileTypes,
        to_event: impl FnOnce(TaskOutput) -> Option<Event>,
    ) -> (Option<Event>, Consumed) {
        let Some(sector) = call.sector() else {
            return self.task(call, to_event).await;
        };
        let mut losses = self.view.index.losses();
        if let Some(why) = self.lost_for_sure(&sector, need).await {
            return (Some(Event::FilesLost(why)), None);
        }
        let key = (call.subject(), call.task());
        tokio::select! {
            // A result that is ready is taken, whatever else happened.
            biased;
            r = self.task(call, to_event) => r,
            why = self.until_lost(&sector, need, &mut losses) => {
                (Some(Event::FilesLost(why)), Some(key))
            }
        }
    }

    async fn until_lost(
        &self,
        sector: &SectorRef,
        need: FileTypes,
        losses: &mut tokio::sync::watch::Receiver<u64>,
    ) -> String {
        loop {
            // A path that fails counts once it has failed for FAILING_FOR: looked at again.
            if let Ok(Err(_)) =
                tokio::time::timeout(Duration::from_secs(10), losses.changed()).await
            {
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            if let Some(why) = self.lost_for_sure(sector, need).await {
                return why;
            }
        }
    }

    /// `files_lost`, asked twice `LOSS_GRACE` apart.
    async fn lost_for_sure(&self, sector: &SectorRef, need: FileTypes) -> Option<String> {
        self.files_lost(sector, need)?;
        tokio::time::sleep(LOSS_GRACE).await;
        self.files_lost(sector, need)
    }

    /// Why some of `need` is on no storage path that works, if it is not: what the index
    /// knows of how it was lost (its machine lost, its path detached or failing).
    fn files_lost(&self, sector: &SectorRef, need: FileTypes) -> Option<String> {
        let index = &self.view.index;
        let holders = index.holders_now(sector.id());
        for t in need.iter() {
            let with: Vec<&StorageId> = holders
                .iter()
                .filter(|(_, types)| types.contains(t))
                .map(|(id, _)| id)
                .collect();
            let failing: Vec<String> = with
                .iter()
                .filter_map(|id| {
                    index
                        .path_failing(id, FAILING_FOR)
                        .map(|e| format!("{id}: {e}"))
                })
                .collect();
            if failing.len() < with.len() {
                continue;
            }
            return Some(match with.first() {
                Some(_) => format!(
                    "the storage paths with its {t} file fail ({})",
                    failing.join("; ")
                ),
                None => match index.lost_reason(sector.id()) {
                    Some(why) => why,
                    None => format!("its {t} file was on no storage path"),
                },
            });
        }
        None
    }

    /// RebuildWait: goes on once some worker can run PC1 and PC2 with room, and the rebuild is
    /// allowed; until then says why (once per reason).
    pub(super) async fn rebuild_wait(&self, s: &Sector) -> Option<Event> {
        let n = s.sector.number;
        let rebuild = s.rebuild.as_ref();
        if let Some(back) = self.files_back(s) {
            return Some(Event::FilesFound(back));
        }
        let why = if s.has_deals() {
            Some(format!(
                "sector {n} holds deals {:?}: its unsealed data must come back before it can be \
                 rebuilt (only a committed-capacity sector is made again from zeros)",
                s.deals
            ))
        } else if !self.auto_rebuild && !rebuild.is_some_and(|r| r.manual) {
            Some(format!(
                "the automatic rebuild is off ([Sealing] RebuildLostSectors = false): \
                 `sealer sectors rebuild {n}` starts it"
            ))
        } else {
            self.rebuild_blocker(s.sector.size())
        };
        match why {
            None => Some(Event::RebuildReady),
            Some(w) if rebuild.and_then(|r| r.waiting.as_deref()) == Some(w.as_str()) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                None
            }
            Some(w) => Some(Event::RebuildBlocked(w)),
        }
    }

    /// When files that were out of reach (not a Proving sector's unreadable copies, nor an
    /// operator's request) are on working paths again: where they are.
    fn files_back(&self, s: &Sector) -> Option<String> {
        let r = s.rebuild.as_ref().filter(|r| may_come_back(r))?;
        let need = needed_by(r.then);
        if self.files_lost(&s.sector, need).is_some() {
            return None;
        }
        let paths: Vec<String> = self
            .view
            .index
            .holders_now(s.sector.id())
            .into_iter()
            .map(|(id, t)| format!("{id} ({t})"))
            .collect();
        Some(format!(
            "its files are back on {}: not rebuilt",
            paths.join(", ")
        ))
    }

    /// Why no worker can rebuild a sector of `size` now, if none can.
    fn rebuild_blocker(&self, size: SectorSize) -> Option<String> {
        let workers = self.manager.usable_workers();
        let list = |ws: &[&(sched::WorkerId, String, resources::TaskSet)]| -> String {
            ws.iter()
                .map(|(_, name, tasks)| format!("{name}: {tasks}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let all: Vec<_> = workers.iter().collect();
        if all.is_empty() {
            return Some("no worker is connected and enabled to rebuild it".into());
        }
        let pc1: Vec<_> = all
            .iter()
            .copied()
            .filter(|w| w.2.contains(TaskType::PreCommit1))
            .collect();
        if pc1.is_empty() {
            return Some(format!(
                "no connected, enabled worker runs PC1 to rebuild it ({})",
                list(&all)
            ));
        }
        if !all.iter().any(|w| w.2.contains(TaskType::PreCommit2)) {
            return Some(format!(
                "no connected, enabled worker runs PC2 to rebuild it ({})",
                list(&all)
            ));
        }
        let room = |w: &&(sched::WorkerId, String, resources::TaskSet)| {
            self.view
                .has_room(w.0, PathKind::Sealing, FileTypes::ALL, size)
        };
        if !pc1.iter().any(room) {
            let need = FileTypes::ALL.overhead(size, PathKind::Sealing);
            let names: Vec<&str> = pc1.iter().map(|w| w.1.as_str()).collect();
            return Some(format!(
                "no worker that runs PC1 ({}) has a healthy seal path with {need} bytes \
                 available for a {size} sector",
                names.join(", ")
            ));
        }
        None
    }

    /// RebuildPreCommit1: copies left anywhere make way, then PC1 writes the zeros and the
    /// replica's layers with the recorded ticket on a worker with room.
    pub(super) async fn rebuild_pc1(&self, s: &Sector) -> (Option<Event>, Consumed) {
        let sector = s.sector;
        let Some((_, ticket)) = s.ticket else {
            let e =
                TaskError::bad_input(format!("sector {} has no recorded ticket", sector.number));
            return (Some(Event::Failed(e)), None);
        };
        // A call recorded before a restart owns the files it writes: they are not touched.
        if !self.pc1_recorded(&sector) {
            // A step dropped when its files were lost may still run on its worker.
            tracing::debug!(
                sector = sector.number,
                "rebuild: waiting for its running tasks to end"
            );
            self.manager.sector_idle(sector.number).await;
            // A worker back from an outage registers before it declares its files again: it
            // is given a moment.
            if s.rebuild.as_ref().is_some_and(may_come_back) {
                if self.files_back(s).is_none() {
                    tokio::time::sleep(LOSS_GRACE).await;
                }
                if let Some(back) = self.files_back(s) {
                    return (Some(Event::FilesFound(back)), None);
                }
            }
            // Copies known unreadable (a Proving sector's, or an operator's rebuild) go; those
            // merely out of reach are only forgotten, on disk until their machine is back.
            let known_bad = s.rebuild.as_ref().is_none_or(|r| r.manual || r.unreadable);
            if known_bad {
                if let Err(e) = self
                    .remote
                    .remove_everywhere(sector.id(), FileTypes::ALL)
                    .await
                {
                    tracing::warn!(sector = sector.number, "removing old copies: {e}");
                }
            }
            let stale = self.view.index.forget_sector(sector.id(), FileTypes::ALL);
            if !stale.is_empty() {
                tracing::info!(sector = sector.number, paths = ?stale, "forgot copies out of reach");
            }
        }
        let call = TaskCall::PreCommit1 {
            sector,
            ticket,
            pieces: s.pieces.clone(),
            rebuild: true,
        };
        let key = (call.subject(), call.task());
        // Queued while the workers that could take it went away: back to RebuildWait, which
        // says why.
        tokio::select! {
            biased;
            r = self.task(call, |o| match o {
                TaskOutput::PreCommit1(out) => Some(Event::PreCommit1Done(out)),
                _ => None,
            }) => r,
            why = self.until_blocked(&sector) => (Some(Event::RebuildBlocked(why)), Some(key)),
        }
    }

    /// Resolves, with the reason, once no worker can rebuild `sector` while its PC1 has not
    /// started.
    async fn until_blocked(&self, sector: &SectorRef) -> String {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if self.pc1_recorded(sector) {
                return std::future::pending().await;
            }
            if let Some(why) = self.rebuild_blocker(sector.size()) {
                return why;
            }
        }
    }

    /// Whether a PC1 call of `sector` is recorded (started on a worker, perhaps before a
    /// restart).
    fn pc1_recorded(&self, sector: &SectorRef) -> bool {
        self.calls()
            .find(&Subject::Sector(*sector), TaskType::PreCommit1)
            .ok()
            .flatten()
            .is_some()
    }

    /// RebuildPreCommit2: PC2 where the new layers are, then its commR against the chain's.
    pub(super) async fn rebuild_pc2(&self, s: &Sector) -> (Option<Event>, Consumed) {
        let Some(pc1) = s.pc1.clone() else {
            let e = TaskError::bad_input("no PC1 output to rebuild from");
            return (Some(Event::Failed(e)), None);
        };
        let call = TaskCall::PreCommit2 {
            sector: s.sector,
            pc1,
        };
        let (ev, key) = self
            .task_on_files(call, FileTypes::ALL, |o| match o {
                TaskOutput::PreCommit2(c) => Some(Event::PreCommit2Done(c)),
                _ => None,
            })
            .await;
        let Some(Event::PreCommit2Done(comms)) = ev else {
            return (ev, key);
        };
        let worker = key
            .as_ref()
            .and_then(|(subject, task)| self.calls().find(subject, *task).ok().flatten())
            .map_or_else(|| "a worker".to_string(), |r| r.worker);
        (Some(self.check_rebuilt(s, &comms, &worker).await), key)
    }

    /// The rebuilt replica's commR must be the chain's (the pre-commit's, or the active
    /// sector's once Proving), and the one recorded here.
    async fn check_rebuilt(&self, s: &Sector, comms: &SealedCommitments, worker: &str) -> Event {
        let sector = s.sector;
        let Some(rebuild) = &s.rebuild else {
            return Event::Failed(TaskError::temporary("no rebuild under way"));
        };
        let (what, on_chain) = match rebuild.then {
            FinalizeSector => (
                "its active sector on chain",
                self.chain
                    .active_sector(&sector)
                    .await
                    .map(|a| a.map(|a| a.comm_r)),
            ),
            _ => (
                "its pre-commit on chain",
                self.chain
                    .precommit(&sector)
                    .await
                    .map(|p| p.map(|p| p.comm_r)),
            ),
        };
        let (what, want) = match on_chain {
            Ok(Some(c)) => (what, c),
            Ok(None) => match s.comms {
                // Not landed yet (PreCommitWait): the commitments sent are the reference.
                Some(c) => ("the pre-commit sent", c.comm_r),
                None => {
                    return Event::Failed(TaskError::bad_input(format!(
                        "sector {} has no commR on chain or here to check the rebuilt replica \
                         against",
                        sector.number
                    )))
                }
            },
            Err(e) => {
                return Event::Failed(TaskError::temporary(format!(
                    "reading the chain's commR of sector {} to check the rebuilt replica: {e}",
                    sector.number
                )))
            }
        };
        let mismatch = |theirs: &str, c: &[u8; 32]| {
            Event::Failed(TaskError::bad_input(format!(
                "the rebuilt replica of sector {} has commR {}, {theirs} has {}",
                sector.number,
                chain::hex(&comms.comm_r),
                chain::hex(c)
            )))
        };
        if comms.comm_r != want {
            return mismatch(what, &want);
        }
        if let Some(c) = s.comms.filter(|c| c.comm_r != comms.comm_r) {
            return mismatch("the sealer's record of its first sealing", &c.comm_r);
        }
        Event::Rebuilt(format!(
            "rebuilt on {worker} after {}: commR {}, as {what}",
            rebuild.lost,
            chain::hex(&comms.comm_r)
        ))
    }

    /// `sectors rebuild N`.
    pub fn rebuild(self: &Arc<Self>, n: u64) -> Result<(), RebuildRefused> {
        let s = self.sectors.get(n).ok_or(RebuildRefused::NotFound(n))?;
        if !s.can_rebuild_now() {
            return Err(RebuildRefused::State(n, s.state));
        }
        self.sectors.apply(n, Event::RebuildRequested, |_| {})?;
        tracing::info!(sector = n, "rebuild requested");
        self.start(n);
        Ok(())
    }
}

/// Why `sectors rebuild N` was refused.
#[derive(Debug, thiserror::Error)]
pub enum RebuildRefused {
    #[error("sector {0} not found")]
    NotFound(u64),
    #[error(
        "sector {0} is {1}: a rebuild needs a sector whose replica was made (PreCommitting to \
         CommitWait, their failures, RebuildWait, Proving) and no step of it running on a worker \
         (wait for Committing or FinalizeSector to end, or `sealing abort` its job)"
    )]
    State(u64, SectorState),
    #[error(transparent)]
    Sector(#[from] crate::sectors::SectorError),
}

impl crate::wdpost::ProvingSectors for Arc<Pipeline> {
    fn busy(&self, n: u64) -> bool {
        self.sectors.state(n).is_some_and(|s| {
            matches!(
                s,
                FinalizeSector
                    | RebuildWait
                    | RebuildPreCommit1
                    | RebuildPreCommit2
                    | RebuildFailed
            )
        })
    }

    fn unprovable(&self, n: u64, why: &str) {
        if self.sectors.state(n) != Some(Proving) {
            return;
        }
        if !self.auto_rebuild {
            tracing::warn!(
                sector = n,
                "cannot be proven ({why}); the automatic rebuild is off ([Sealing] \
                 RebuildLostSectors): `sealer sectors rebuild {n}` starts it"
            );
            return;
        }
        let Some(s) = self.sectors.get(n) else { return };
        // Declared nowhere that works: out of reach (its copies may come back). Declared on a
        // working path and still unreadable there: known bad.
        let event = match self.files_lost(&s.sector, FileTypes::SEALED) {
            Some(reach) => {
                Event::FilesLost(format!("WindowPoSt could not read it ({why}); {reach}"))
            }
            None => Event::Unreadable(format!("WindowPoSt could not read it ({why})")),
        };
        match self.sectors.apply(n, event, |_| {}) {
            Ok(_) => {
                tracing::warn!(
                    sector = n,
                    "cannot be proven ({why}): rebuilding its replica"
                );
                self.start(n);
            }
            Err(e) => tracing::debug!(sector = n, "{e}"),
        }
    }
}
