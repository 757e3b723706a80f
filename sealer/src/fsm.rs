//! The sector state machine for committed-capacity sectors: the sector record, the events that
//! move it, and the transition rules (lotus's states, failure states with retries). Pure: no I/O.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::tasks::{ErrorKind, TaskError};
use api::{SectorLog, SectorState};
use proofs::{PhaseOutput, PieceInfo, Randomness, SealedCommitments};
use resources::SectorRef;
use serde::{Deserialize, Serialize};

use SectorState::*;

/// A retry past MaxRetries (only a committed sector's FIN has one) waits twice the last
/// cool-down, up to 2^BACKOFF_DOUBLINGS times the configured one.
pub const BACKOFF_DOUBLINGS: u32 = 4;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sector {
    pub sector: SectorRef,
    pub state: SectorState,
    pub pieces: Vec<PieceInfo>,
    pub ticket: Option<(i64, Randomness)>,
    pub pc1: Option<PhaseOutput>,
    pub comms: Option<SealedCommitments>,
    pub precommit_msg: Option<String>,
    pub precommit_epoch: Option<i64>,
    pub seed: Option<(i64, Randomness)>,
    pub c1: Option<PhaseOutput>,
    #[serde(with = "proofs::bytes::opt", default)]
    pub proof: Option<Vec<u8>>,
    pub commit_msg: Option<String>,
    /// Consecutive failures of the current step.
    pub retries: u32,
    pub last_error: String,
    /// The state that failed (the retry goes back to it, or to its fallback).
    pub failed_from: Option<SectorState>,
    /// Why it failed: the retry policy follows the kind.
    #[serde(default)]
    pub failed_kind: ErrorKind,
    /// Proofs made in a row that did not verify (lotus's InvalidProofs): the second seals again.
    #[serde(default)]
    pub invalid_proofs: u32,
    /// When the sector last changed state (unix ms); failure cool-downs count from it.
    pub since_ms: u64,
    /// Events not yet stored: a record read back from the store holds none (its log is kept
    /// entry by entry beside it, see `sectors::Sectors::log`); `apply` appends here.
    #[serde(default, skip_serializing)]
    pub log: Vec<SectorLog>,
    /// How many log entries are stored for it (the next entry's number).
    #[serde(default)]
    pub logged: u64,
    /// Deal IDs of its pieces (lotus's SectorInfo.Deals); none for committed capacity, the only
    /// kind pledged here. A sector with deals is never rebuilt from zeros.
    #[serde(default)]
    pub deals: Vec<u64>,
    /// The rebuild under way, while the sector is in a Rebuild state.
    #[serde(default)]
    pub rebuild: Option<Rebuild>,
    /// Why its step cannot go on yet (a sender short of funds), until the state changes.
    #[serde(default)]
    pub waiting: Option<String>,
    /// Its TerminateSectors message (`sectors terminate`).
    #[serde(default)]
    pub terminate_msg: Option<String>,
    /// Its next pre-commit or prove-commit goes alone, not in a batch (its batch failed, or
    /// batching was turned off while it waited); until that message is sent.
    #[serde(default)]
    pub send_alone: bool,
}

/// Why a sector is being rebuilt, and where it goes once its replica is back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rebuild {
    /// What was lost, and how, written to follow "after" (e.g. "A was lost (no heartbeat for
    /// 10s)", "WindowPoSt could not read it (...)").
    pub lost: String,
    /// The state the sector goes back to: the step that needed the files, or FinalizeSector for
    /// a sector that was Proving (its new replica is finalized and moved to a store path).
    pub then: SectorState,
    /// Asked for with `sectors rebuild` (runs even with the automatic rebuild off).
    pub manual: bool,
    /// Why it waits, in RebuildWait.
    pub waiting: Option<String>,
    /// The old copies are known bad (WindowPoSt could not read them where they are declared,
    /// or an operator asked): they are removed. Otherwise they were out of reach (their machine
    /// or path lost) and may come back, which ends the rebuild before it starts.
    #[serde(default)]
    pub unreadable: bool,
    /// The rebuild's PC1 has written new files: files found from then on are its own.
    #[serde(default)]
    pub started: bool,
    /// Where the sector goes if its old files come back before the rebuild starts: Proving for
    /// a Proving sector (nothing to finalize again), else `then`.
    #[serde(default)]
    pub found_to: Option<SectorState>,
    /// Rebuilds that failed so far (past MaxRetries the sector stops in FailedUnrecoverable).
    #[serde(default)]
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    PieceAdded(PieceInfo),
    Ticket(i64, Randomness),
    PreCommit1Done(PhaseOutput),
    PreCommit2Done(SealedCommitments),
    PreCommitSent(String),
    PreCommitLanded(i64),
    Seed(i64, Randomness),
    Commit1Done(PhaseOutput),
    ProofReady(#[serde(with = "proofs::bytes")] Vec<u8>),
    CommitSent(String),
    CommitLanded(i64),
    Finalized,
    /// The sector joined its message's batch queue (PreCommitting to SubmitPreCommitBatch,
    /// SubmitCommit to SubmitCommitAggregate), and how the batch goes.
    Batched(String),
    /// The sector leaves its batch queue to be sent alone, and why (its batch failed, or
    /// batching is off).
    Unbatched(String),
    /// The current step failed.
    Failed(TaskError),
    /// The step cannot go on yet, and why (its sender lacks funds): no failure, no retry
    /// spent; the step is tried again as the chain moves.
    Waiting(String),
    /// The message the sector waits for was replaced in the pool by this one (same nonce, a
    /// higher fee, as `lotus mpool replace` makes): it is followed.
    MessageReplaced(String),
    /// The message the sector waits for is gone (a reorg took its epoch back and no pool holds
    /// it any more): it is sent again, no retry spent.
    MessageDropped(String),
    /// The sector's pre-commit is no longer on chain (a reorg took it back): it is sent again,
    /// and the seed drawn anew; no retry spent.
    PreCommitReverted(String),
    /// The sector's ticket is too old for its pre-commit to land (MaxPreCommitRandomnessLookback):
    /// it gets a fresh ticket and is sealed again (PC1, PC2), as lotus does; no retry spent.
    TicketExpired(String),
    /// The sector's pre-commit can no longer be proven (MaxProveCommitDuration passed; its
    /// deposit is burnt): its number cannot be pre-committed again, so it is removed, as lotus
    /// removes it.
    PreCommitExpired(String),
    /// The chain refused the message for want of funds (exit 19, insufficient funds): it is
    /// sent again, once its sender can pay, without spending a retry.
    NotEnoughFunds(String),
    /// WindowPoSt could not read the Proving sector's replica where the index has it (twice,
    /// some seconds apart): its copies are bad, and it is rebuilt.
    Unreadable(String),
    /// A failed sector's cool-down is over.
    Retry,
    /// The sealer restarted while a step that cannot resume was running (PC2 encodes the
    /// replica in place, so an interrupted PC2 restarts from PC1).
    Restarted(String),
    /// The CC sector's unsealed file is nowhere that can be reached (its machine was lost):
    /// it is packed again.
    Repack(String),
    /// The files the sector's next step needs are on no healthy path (their machine or path
    /// was lost, or they cannot be read): before its pre-commit that step's inputs are made
    /// again; after it, the replica is rebuilt from the recorded ticket.
    FilesLost(String),
    /// `sectors rebuild N`.
    RebuildRequested,
    /// The rebuild cannot start now, and why (shown in `sectors status` and `sched-diag`).
    RebuildBlocked(String),
    /// A worker can rebuild it now.
    RebuildReady,
    /// The files it lacked are on a working path again (their machine came back): no rebuild.
    FilesFound(String),
    /// PC2 of the rebuild gave the commR the chain holds: the message says where and why.
    Rebuilt(String),
    /// `sectors terminate`: the sector's commitment ends early (TerminateSectors).
    Terminate,
    TerminateSent(String),
    /// The termination landed at this epoch (or the sector was no longer active): its files
    /// go.
    TerminateLanded(i64),
    Remove,
    RemoveDone,
}

impl Event {
    fn kind(&self) -> &'static str {
        match self {
            Event::PieceAdded(_) => "SectorPacked",
            Event::Ticket(..) => "SectorTicket",
            Event::PreCommit1Done(_) => "SectorPreCommit1",
            Event::PreCommit2Done(_) => "SectorPreCommit2",
            Event::PreCommitSent(_) => "SectorPreCommitted",
            Event::PreCommitLanded(_) => "SectorPreCommitLanded",
            Event::Seed(..) => "SectorSeedReady",
            Event::Commit1Done(_) => "SectorCommit1",
            Event::ProofReady(_) => "SectorCommitted",
            Event::CommitSent(_) => "SectorCommitSubmitted",
            Event::CommitLanded(_) => "SectorProving",
            Event::Finalized => "SectorFinalized",
            Event::Batched(_) => "SectorBatched",
            Event::Unbatched(_) => "SectorUnbatched",
            Event::Failed(_) => "SectorFailed",
            Event::Waiting(_) => "SectorWaiting",
            Event::NotEnoughFunds(_) => "SectorNotEnoughFunds",
            Event::TicketExpired(_) => "SectorTicketExpired",
            Event::PreCommitExpired(_) => "SectorPreCommitExpired",
            Event::MessageDropped(_) => "SectorMessageDropped",
            Event::MessageReplaced(_) => "SectorMessageReplaced",
            Event::PreCommitReverted(_) => "SectorPreCommitReverted",
            Event::Retry => "SectorRetry",
            Event::Restarted(_) => "SectorRestart",
            Event::Repack(_) => "SectorRepack",
            Event::FilesLost(_) => "SectorFilesLost",
            Event::Unreadable(_) => "SectorUnreadable",
            Event::RebuildRequested => "SectorRebuildRequested",
            Event::RebuildBlocked(_) => "SectorRebuildBlocked",
            Event::RebuildReady => "SectorRebuildReady",
            Event::FilesFound(_) => "SectorFilesFound",
            Event::Rebuilt(_) => "SectorRebuilt",
            Event::Terminate => "SectorTerminate",
            Event::TerminateSent(_) => "SectorTerminating",
            Event::TerminateLanded(_) => "SectorTerminated",
            Event::Remove => "SectorRemove",
            Event::RemoveDone => "SectorRemoved",
        }
    }
}

/// An event that does not fit the sector's state; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {event} does not apply in state {state}")]
pub struct Refused {
    pub event: &'static str,
    pub state: SectorState,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The failure state for a step.
pub fn failure_of(state: SectorState) -> SectorState {
    match state {
        Packing | GetTicket | PreCommit1 => SealPreCommit1Failed,
        PreCommit2 => SealPreCommit2Failed,
        PreCommitting | SubmitPreCommitBatch | PreCommitWait | WaitSeed => PreCommitFailed,
        Committing => ComputeProofFailed,
        SubmitCommit | SubmitCommitAggregate | CommitWait => CommitFailed,
        FinalizeSector => FinalizeFailed,
        RebuildPreCommit1 | RebuildPreCommit2 => RebuildFailed,
        Terminating | TerminateWait => TerminateFailed,
        other => other,
    }
}

impl Sector {
    pub fn new(sector: SectorRef) -> Sector {
        let now = now_ms();
        Sector {
            sector,
            state: Packing,
            pieces: Vec::new(),
            ticket: None,
            pc1: None,
            comms: None,
            precommit_msg: None,
            precommit_epoch: None,
            seed: None,
            c1: None,
            proof: None,
            commit_msg: None,
            retries: 0,
            last_error: String::new(),
            failed_from: None,
            failed_kind: ErrorKind::Temporary,
            invalid_proofs: 0,
            deals: Vec::new(),
            rebuild: None,
            waiting: None,
            terminate_msg: None,
            send_alone: false,
            since_ms: now,
            logged: 0,
            log: vec![SectorLog {
                timestamp_ms: now,
                kind: "SectorStartCC".into(),
                state: Packing,
                message: "committed-capacity sector pledged".into(),
            }],
        }
    }

    /// In a wait for a message (PreCommitWait, CommitWait): the record of that message, and
    /// the state that sends it again.
    fn awaited(&mut self, wait: SectorState) -> (&mut Option<String>, SectorState) {
        match wait {
            PreCommitWait => (&mut self.precommit_msg, PreCommitting),
            TerminateWait => (&mut self.terminate_msg, Terminating),
            _ => (&mut self.commit_msg, SubmitCommit),
        }
    }

    /// Why the sector waits, if it does: for a rebuild (no worker can rebuild it, or the
    /// rebuild is off), or for funds.
    pub fn waiting_reason(&self) -> Option<String> {
        match self.state {
            RebuildWait => self.rebuild.as_ref().and_then(|r| r.waiting.clone()),
            _ => self.waiting.clone(),
        }
    }

    /// Whether the retry of this failure waits out the cool-down. A lost worker's step runs
    /// again at once (on another worker).
    fn retry_waits(&self) -> bool {
        self.failed_kind != ErrorKind::WorkerLost
    }

    /// How long this failure waits before its retry: none for a lost worker, else the
    /// cool-down, doubled for each retry past `max_retries` (a committed sector's FIN, which is
    /// never given up) at most [`BACKOFF_DOUBLINGS`] times.
    pub fn retry_cooldown(&self, cooldown: Duration, max_retries: u32) -> Duration {
        if !self.retry_waits() {
            return Duration::ZERO;
        }
        let past = self.retries.saturating_sub(max_retries);
        cooldown * (1 << past.min(BACKOFF_DOUBLINGS))
    }

    /// Where a sector goes once its replica has been rebuilt, or `None` when it has no replica
    /// to rebuild (not pre-committed yet: its step's inputs are simply made again) or no longer
    /// needs one.
    pub fn rebuild_return(&self) -> Option<SectorState> {
        let st = match self.state {
            s if s.is_failed() && s != FailedUnrecoverable => self.failed_from?,
            s => s,
        };
        match st {
            PreCommitting | PreCommitWait | WaitSeed | Committing | SubmitCommit | CommitWait => {
                Some(st)
            }
            // Out of the queue: the step that queued it runs again.
            SubmitPreCommitBatch => Some(PreCommitting),
            SubmitCommitAggregate => Some(SubmitCommit),
            FinalizeSector | Proving => Some(FinalizeSector),
            RebuildWait | RebuildPreCommit1 | RebuildPreCommit2 => {
                self.rebuild.as_ref().map(|r| r.then)
            }
            // A rebuild that gave up can be asked for again.
            FailedUnrecoverable => self.rebuild.as_ref().map(|r| r.then),
            _ => None,
        }
    }

    /// Whether an operator's `sectors rebuild` applies now: the sector has a replica to rebuild
    /// and no step of it runs on a worker (its result would come back to a sector moved on).
    pub fn can_rebuild_now(&self) -> bool {
        self.rebuild_return().is_some()
            && !matches!(
                self.state,
                PreCommitting
                    | SubmitPreCommitBatch
                    | PreCommitWait
                    | WaitSeed
                    | Committing
                    | SubmitCommit
                    | SubmitCommitAggregate
                    | CommitWait
                    | FinalizeSector
                    | RebuildPreCommit1
                    | RebuildPreCommit2
            )
    }

    /// Forgets everything made from its ticket (the replica's outputs, its messages, its
    /// seed), to be sealed again on a fresh one.
    fn fresh_ticket(&mut self) {
        self.ticket = None;
        self.pc1 = None;
        self.comms = None;
        self.precommit_msg = None;
        self.precommit_epoch = None;
        self.seed = None;
        self.c1 = None;
        self.proof = None;
        self.commit_msg = None;
    }

    /// Whether the sector holds data other than the committed-capacity zeros.
    pub fn has_deals(&self) -> bool {
        !self.deals.is_empty()
    }

    /// Enters RebuildWait for `lost`; the caller checked `rebuild_return`. A rebuild under way
    /// keeps what it knew (an operator's request starts its count over).
    fn start_rebuild(&mut self, lost: String, manual: bool, unreadable: bool) -> SectorState {
        let then = self.rebuild_return().expect("checked by the caller");
        let old = self.rebuild.take().unwrap_or(Rebuild {
            lost: String::new(),
            then,
            manual: false,
            waiting: None,
            unreadable: false,
            started: false,
            found_to: None,
            attempts: 0,
        });
        let waiting = match self.state {
            // The step under way (a wait, a cool-down) returns first.
            s if s.is_failed() && s != FailedUnrecoverable => {
                Some("requested: starts once the current step's wait ends".into())
            }
            _ => None,
        };
        self.pc1 = None;
        self.rebuild = Some(Rebuild {
            lost,
            then,
            manual: manual || old.manual,
            waiting,
            unreadable: unreadable || manual || old.unreadable,
            started: old.started,
            found_to: old.found_to.or((self.state == Proving).then_some(Proving)),
            attempts: if manual { 0 } else { old.attempts },
        });
        RebuildWait
    }

    /// Where a failed sector goes when its cool-down is over, and whether the retry counts
    /// against MaxRetries.
    fn retry_target(&self, max_retries: u32) -> (SectorState, bool) {
        let from = self.failed_from.unwrap_or(Packing);
        // A rebuild's PC1 and PC2 reset each other's retries: its own count stops it (a lost
        // worker or a full disk spend nothing, as elsewhere).
        let free = matches!(
            self.failed_kind,
            ErrorKind::WorkerLost | ErrorKind::OutOfSpace
        );
        if self.state == RebuildFailed
            && !free
            && self
                .rebuild
                .as_ref()
                .is_some_and(|r| r.attempts >= max_retries)
        {
            return (FailedUnrecoverable, true);
        }
        match self.failed_kind {
            // Nothing is wrong with the sector: its step runs again, however often it takes.
            ErrorKind::WorkerLost | ErrorKind::OutOfSpace => return (from, false),
            // The previous step's output is unusable: that step runs again.
            ErrorKind::BadInput => match self.state {
                SealPreCommit1Failed => return (Packing, true),
                SealPreCommit2Failed => return (PreCommit1, true),
                RebuildFailed if from == RebuildPreCommit2 => return (RebuildPreCommit1, true),
                ComputeProofFailed if self.c1.is_some() => return (Committing, true),
                ComputeProofFailed => return (PreCommit1, true),
                _ => {}
            },
            // lotus: a proof that does not verify is computed again (C1 and C2); the second
            // in a row seals again from PC1.
            ErrorKind::ProofInvalid if self.invalid_proofs > 1 => return (PreCommit1, true),
            ErrorKind::ProofInvalid => return (Committing, true),
            ErrorKind::Temporary | ErrorKind::Aborted => {}
        }
        let over = self.retries >= max_retries;
        let to = match (self.state, over) {
            // PC2 keeps failing: its PC1 output may be bad; redo PC1 (lotus does the same).
            (SealPreCommit2Failed, true) => PreCommit1,
            // The sector is on chain: giving it up would lose its power. Its FIN is retried
            // for as long as it fails, ever more slowly (lotus retries it forever too).
            (FinalizeFailed, true) => FinalizeSector,
            (_, true) => FailedUnrecoverable,
            // A proof the chain rejected is recomputed, not resent.
            (CommitFailed, false) if from == CommitWait => Committing,
            (_, false) => from,
        };
        (to, true)
    }

    /// Applies `event`, appending it to the log. An event that does not fit the current state is
    /// refused and changes nothing.
    pub fn apply(&mut self, event: Event, max_retries: u32) -> Result<(), Refused> {
        let before = self.state;
        let mut message = String::new();
        let next = match (&event, self.state) {
            (Event::PieceAdded(p), Packing) => {
                self.pieces = vec![*p];
                GetTicket
            }
            (Event::Ticket(epoch, t), GetTicket) => {
                self.ticket = Some((*epoch, *t));
                message = format!("ticket epoch {epoch}");
                PreCommit1
            }
            (Event::PreCommit1Done(out), PreCommit1) => {
                self.pc1 = Some(out.clone());
                PreCommit2
            }
            (Event::PreCommit2Done(c), PreCommit2) => {
                self.comms = Some(*c);
                self.pc1 = None;
                message = format!("commR {}", chain::hex(&c.comm_r));
                PreCommitting
            }
            (Event::Batched(how), PreCommitting) => {
                message = how.clone();
                SubmitPreCommitBatch
            }
            (Event::Batched(how), SubmitCommit) => {
                message = how.clone();
                SubmitCommitAggregate
            }
            (Event::Unbatched(why), SubmitPreCommitBatch) => {
                self.send_alone = true;
                message = why.clone();
                PreCommitting
            }
            (Event::Unbatched(why), SubmitCommitAggregate) => {
                self.send_alone = true;
                message = why.clone();
                SubmitCommit
            }
            (Event::PreCommitSent(id), PreCommitting | SubmitPreCommitBatch) => {
                self.send_alone = false;
                self.precommit_msg = Some(id.clone());
                message = format!("message {id}");
                PreCommitWait
            }
            (Event::PreCommitLanded(epoch), PreCommitWait) => {
                self.precommit_epoch = Some(*epoch);
                message = format!("landed at epoch {epoch}");
                WaitSeed
            }
            // Sealed again after the pre-commit landed: found on chain, not sent twice.
            (Event::PreCommitLanded(epoch), PreCommitting | SubmitPreCommitBatch) => {
                self.precommit_epoch = Some(*epoch);
                message = format!("already on chain (landed at epoch {epoch}): not sent again");
                WaitSeed
            }
            (Event::Seed(epoch, s), WaitSeed) => {
                self.seed = Some((*epoch, *s));
                message = format!("seed epoch {epoch}");
                Committing
            }
            (Event::Commit1Done(out), Committing) => {
                self.c1 = Some(out.clone());
                message = "C1 done".into();
                Committing
            }
            (Event::ProofReady(p), Committing) => {
                self.proof = Some(p.clone());
                self.c1 = None;
                message = format!("proof of {} bytes", p.len());
                SubmitCommit
            }
            (Event::CommitSent(id), SubmitCommit | SubmitCommitAggregate) => {
                self.send_alone = false;
                self.commit_msg = Some(id.clone());
                message = format!("message {id}");
                CommitWait
            }
            (Event::CommitLanded(epoch), CommitWait) => {
                self.invalid_proofs = 0;
                message = format!("activated at epoch {epoch}");
                FinalizeSector
            }
            // Prove-committed before a restart: found active on chain, not sent twice.
            (Event::CommitLanded(epoch), SubmitCommit | SubmitCommitAggregate) => {
                self.invalid_proofs = 0;
                message = format!("already active on chain (epoch {epoch}): not sent again");
                FinalizeSector
            }
            (Event::Finalized, FinalizeSector) => Proving,
            (
                Event::Waiting(why),
                st @ (PreCommitting
                | SubmitPreCommitBatch
                | SubmitCommit
                | SubmitCommitAggregate
                | Terminating),
            ) => {
                self.waiting = Some(why.clone());
                message = why.clone();
                st
            }
            (Event::MessageReplaced(new), st @ (PreCommitWait | CommitWait | TerminateWait)) => {
                let old = self.awaited(st).0.replace(new.clone());
                message = format!(
                    "message {} was replaced in the pool by {new} (same nonce): following it",
                    old.unwrap_or_default()
                );
                st
            }
            (Event::MessageDropped(why), st @ (PreCommitWait | CommitWait | TerminateWait)) => {
                let (msg, send) = self.awaited(st);
                *msg = None;
                message = why.clone();
                send
            }
            (
                Event::PreCommitReverted(why),
                WaitSeed | Committing | SubmitCommit | SubmitCommitAggregate,
            ) => {
                self.precommit_msg = None;
                self.precommit_epoch = None;
                self.seed = None;
                self.c1 = None;
                self.proof = None;
                message = why.clone();
                PreCommitting
            }
            // Landed again at another epoch after a reorg: the seed follows the new epoch.
            (Event::PreCommitLanded(epoch), WaitSeed) => {
                message = format!(
                    "on chain at epoch {epoch} now, not {} (a reorg): the seed follows",
                    self.precommit_epoch.unwrap_or_default()
                );
                self.precommit_epoch = Some(*epoch);
                WaitSeed
            }
            (Event::TicketExpired(why), PreCommitting | SubmitPreCommitBatch) => {
                self.fresh_ticket();
                message = why.clone();
                GetTicket
            }
            // The miner actor never allocates a sector number twice: the sector cannot be
            // pre-committed again, and goes (lotus removes it too).
            (
                Event::PreCommitExpired(why),
                WaitSeed | Committing | SubmitCommit | SubmitCommitAggregate,
            ) => {
                message = format!(
                    "{why}: its number cannot be pre-committed again (the miner actor never \
                     reuses one): removed; pledge another sector"
                );
                Removing
            }
            (Event::NotEnoughFunds(why), st @ (PreCommitWait | CommitWait | TerminateWait)) => {
                message = format!("{why}: sent again once its sender can pay");
                self.waiting = Some(message.clone());
                let (msg, send) = self.awaited(st);
                *msg = None;
                send
            }
            (Event::Failed(err), s) if failure_of(s) != s => {
                self.last_error = err.message.clone();
                // A batch's failure retries the step that queued the sector (its checks first);
                // a termination that failed on chain is sent again.
                self.failed_from = Some(match s {
                    SubmitPreCommitBatch => PreCommitting,
                    SubmitCommitAggregate => SubmitCommit,
                    TerminateWait => Terminating,
                    s => s,
                });
                self.failed_kind = err.kind;
                if err.kind == ErrorKind::ProofInvalid {
                    self.invalid_proofs += 1;
                }
                message = format!("{} [{}]", err.message, err.kind);
                failure_of(s)
            }
            (Event::Retry, s) if s.is_failed() && s != FailedUnrecoverable => {
                let (to, counts) = self.retry_target(max_retries);
                if let Some(r) = self
                    .rebuild
                    .as_mut()
                    .filter(|_| s == RebuildFailed && counts)
                {
                    r.attempts += 1;
                }
                if !counts {
                    // Retries stay as they were.
                } else if to == FailedUnrecoverable || to != self.failed_from.unwrap_or(to) {
                    self.retries = 0;
                } else {
                    self.retries += 1;
                }
                message = match counts {
                    true => format!("retry {} after: {}", self.retries, self.last_error),
                    false => format!(
                        "again ({}, no retry spent) after: {}",
                        self.failed_kind, self.last_error
                    ),
                };
                match to {
                    Packing => {
                        self.pieces.clear();
                        self.ticket = None;
                        self.pc1 = None;
                    }
                    PreCommit1 => {
                        self.pc1 = None;
                        self.c1 = None;
                        self.proof = None;
                        self.invalid_proofs = 0;
                    }
                    Committing => {
                        self.c1 = None;
                        self.proof = None;
                    }
                    RebuildPreCommit1 => self.pc1 = None,
                    _ => {}
                }
                to
            }
            (Event::Restarted(why), PreCommit2 | SealPreCommit2Failed) => {
                self.pc1 = None;
                message = why.clone();
                PreCommit1
            }
            (Event::Repack(why), PreCommit1 | SealPreCommit1Failed) => {
                self.pieces.clear();
                self.ticket = None;
                self.pc1 = None;
                message = why.clone();
                Packing
            }
            // Before the pre-commit nothing is at stake: the step's inputs are made again (PC1,
            // or AP first when the unsealed file went too).
            (Event::FilesLost(why), PreCommit2 | SealPreCommit2Failed) => {
                self.pc1 = None;
                message = format!("{why}: PC1 runs again");
                PreCommit1
            }
            (Event::FilesLost(why), _) if self.rebuild_return().is_some() => {
                message = format!("{why}: the replica is rebuilt from the recorded ticket");
                self.start_rebuild(why.clone(), false, false)
            }
            (Event::Unreadable(why), Proving) => {
                message = format!("{why}: the replica is rebuilt from the recorded ticket");
                self.start_rebuild(why.clone(), false, true)
            }
            (Event::RebuildRequested, _) if self.can_rebuild_now() => {
                message = "requested by the operator (sectors rebuild)".into();
                let lost = match &self.rebuild {
                    Some(r) => r.lost.clone(),
                    None => "the operator asked for it".into(),
                };
                self.start_rebuild(lost, true, true)
            }
            (Event::RebuildBlocked(why), RebuildWait | RebuildPreCommit1) => {
                if let Some(r) = self.rebuild.as_mut() {
                    r.waiting = Some(why.clone());
                }
                message = why.clone();
                RebuildWait
            }
            (Event::RebuildReady, RebuildWait) => {
                if let Some(r) = self.rebuild.as_mut() {
                    r.waiting = None;
                }
                RebuildPreCommit1
            }
            (Event::FilesFound(why), RebuildWait | RebuildPreCommit1) => {
                message = why.clone();
                match self.rebuild.take() {
                    Some(r) => r.found_to.unwrap_or(r.then),
                    None => FinalizeSector,
                }
            }
            (Event::PreCommit1Done(out), RebuildPreCommit1) => {
                self.pc1 = Some(out.clone());
                if let Some(r) = self.rebuild.as_mut() {
                    r.started = true;
                }
                RebuildPreCommit2
            }
            (Event::Rebuilt(why), RebuildPreCommit2) => {
                self.pc1 = None;
                message = why.clone();
                match self.rebuild.take() {
                    Some(r) => r.then,
                    None => FinalizeSector,
                }
            }
            (Event::Restarted(why), RebuildPreCommit2 | RebuildFailed)
                if self.state == RebuildPreCommit2
                    || self.failed_from == Some(RebuildPreCommit2) =>
            {
                self.pc1 = None;
                message = why.clone();
                RebuildPreCommit1
            }
            (Event::Terminate, Proving) => {
                message = "requested by the operator (sectors terminate)".into();
                Terminating
            }
            (Event::TerminateSent(id), Terminating) => {
                self.terminate_msg = Some(id.clone());
                message = format!("message {id}");
                TerminateWait
            }
            (Event::TerminateLanded(epoch), Terminating | TerminateWait) => {
                message = format!("terminated at epoch {epoch}: its files are removed");
                Removing
            }
            (Event::Remove, s) if s != Removed => Removing,
            (Event::RemoveDone, Removing) => Removed,
            (e, state) => {
                return Err(Refused {
                    event: e.kind(),
                    state,
                })
            }
        };
        // A step's retries count until it is done: not reset by joining or leaving a batch
        // queue (the same step, waiting for company).
        let queue = matches!(event, Event::Batched(_) | Event::Unbatched(_));
        if next != before && !next.is_failed() && !before.is_failed() && !queue {
            self.retries = 0;
        }
        if next != before && !matches!(event, Event::NotEnoughFunds(_)) {
            self.waiting = None;
        }
        self.state = next;
        self.since_ms = now_ms();
        self.log.push(SectorLog {
            timestamp_ms: self.since_ms,
            kind: event.kind().into(),
            state: next,
            message,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resources::SealProof;

    fn sector() -> Sector {
        Sector::new(SectorRef::new(1000, 1, SealProof::StackedDrg2KiBV1_1))
    }

    fn out() -> PhaseOutput {
        PhaseOutput {
            engine: proofs::EngineKind::Mock,
            data: vec![1],
        }
    }

    #[test]
    fn happy_path_reaches_proving_with_a_full_log() {
        let mut s = sector();
        let comms = SealedCommitments {
            comm_d: [0; 32],
            comm_r: [1; 32],
        };
        let piece = PieceInfo {
            size: 2032,
            commitment: [0; 32],
        };
        for e in [
            Event::PieceAdded(piece),
            Event::Ticket(1, [0; 32]),
            Event::PreCommit1Done(out()),
            Event::PreCommit2Done(comms),
            Event::PreCommitSent("m1".into()),
            Event::PreCommitLanded(3),
            Event::Seed(13, [2; 32]),
            Event::Commit1Done(out()),
            Event::ProofReady(vec![1, 2]),
            Event::CommitSent("m2".into()),
            Event::CommitLanded(15),
            Event::Finalized,
        ] {
            s.apply(e, 3).unwrap();
        }
        assert_eq!(s.state, Proving);
        let states: Vec<SectorState> = s.log.iter().map(|l| l.state).collect();
        assert_eq!(
            states,
            vec![
                Packing,
                GetTicket,
                PreCommit1,
                PreCommit2,
                PreCommitting,
                PreCommitWait,
                WaitSeed,
                Committing,
                Committing,
                SubmitCommit,
                CommitWait,
                FinalizeSector,
                Proving
            ]
        );
        assert!(s.apply(Event::Finalized, 3).is_err());
    }

    #[test]
    fn failures_retry_then_fall_back_or_stop() {
        let mut s = sector();
        s.state = PreCommit2;
        for round in 0..3 {
            s.apply(Event::Failed(TaskError::temporary("boom")), 3)
                .unwrap();
            assert_eq!(s.state, SealPreCommit2Failed);
            s.apply(Event::Retry, 3).unwrap();
            assert_eq!(s.state, PreCommit2, "round {round}");
        }
        s.apply(Event::Failed(TaskError::temporary("boom")), 3)
            .unwrap();
        s.apply(Event::Retry, 3).unwrap();
        assert_eq!(s.state, PreCommit1, "PC2 failing past the limit redoes PC1");
        assert_eq!(s.retries, 0);

        // A proof the chain rejected is recomputed.
        s.state = CommitWait;
        s.apply(Event::Failed(TaskError::temporary("invalid seal proof")), 3)
            .unwrap();
        assert_eq!(s.state, CommitFailed);
        s.apply(Event::Retry, 3).unwrap();
        assert_eq!(s.state, Committing);

        s.state = FinalizeSector;
        s.retries = 0;
        for _ in 0..3 {
            s.apply(Event::Failed(TaskError::temporary("disk")), 3)
                .unwrap();
            s.apply(Event::Retry, 3).unwrap();
            assert_eq!(s.state, FinalizeSector);
        }
        // Past MaxRetries a committed sector is not given up: its FIN is retried, each
        // cool-down twice the last, up to 16 times the configured one.
        let minute = Duration::from_secs(60);
        let mut waits = Vec::new();
        for _ in 0..8 {
            s.apply(Event::Failed(TaskError::temporary("disk")), 3)
                .unwrap();
            waits.push(s.retry_cooldown(minute, 3).as_secs() / 60);
            s.apply(Event::Retry, 3).unwrap();
            assert_eq!(s.state, FinalizeSector);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 16, 16, 16]);
        assert_eq!(s.retries, 11);
        assert!(s.log.iter().any(|l| l.message.contains("disk")));
        // A lost worker's step runs again at once.
        s.apply(
            Event::Failed(TaskError::new(ErrorKind::WorkerLost, "gone")),
            3,
        )
        .unwrap();
        assert_eq!(s.retry_cooldown(minute, 3), Duration::ZERO);
    }

    fn fail_and_retry(s: &mut Sector, kind: ErrorKind) {
        s.apply(Event::Failed(TaskError::new(kind, "it failed")), 3)
            .unwrap();
        s.apply(Event::Retry, 3).unwrap();
    }

    #[test]
    fn a_lost_worker_or_a_full_disk_costs_no_retry() {
        for kind in [ErrorKind::WorkerLost, ErrorKind::OutOfSpace] {
            let mut s = sector();
            s.state = PreCommit1;
            for _ in 0..10 {
                s.apply(Event::Failed(TaskError::new(kind, "gone")), 3)
                    .unwrap();
                assert_eq!(s.retry_waits(), kind != ErrorKind::WorkerLost);
                s.apply(Event::Retry, 3).unwrap();
                assert_eq!(s.state, PreCommit1, "{kind}");
                assert_eq!(s.retries, 0, "{kind}");
            }
            assert!(s.log.last().unwrap().message.contains("no retry spent"));
        }
        // A temporary failure counts, and past MaxRetries the sector stops.
        let mut s = sector();
        s.state = PreCommit1;
        for _ in 0..4 {
            fail_and_retry(&mut s, ErrorKind::Temporary);
        }
        assert_eq!(s.state, FailedUnrecoverable);
    }

    #[test]
    fn bad_input_reruns_the_step_that_made_it() {
        let mut s = sector();
        s.state = PreCommit2;
        s.pc1 = Some(out());
        fail_and_retry(&mut s, ErrorKind::BadInput);
        assert_eq!(s.state, PreCommit1);
        assert!(s.pc1.is_none());

        // A C1 output C2 cannot use: C1 again.
        s.state = Committing;
        s.c1 = Some(out());
        fail_and_retry(&mut s, ErrorKind::BadInput);
        assert_eq!((s.state, s.c1.is_none()), (Committing, true));
        // Sealed files C1 cannot read: sealed again.
        fail_and_retry(&mut s, ErrorKind::BadInput);
        assert_eq!(s.state, PreCommit1);

        // An unsealed file PC1 cannot read: packed again.
        s.ticket = Some((1, [0; 32]));
        fail_and_retry(&mut s, ErrorKind::BadInput);
        assert_eq!(s.state, Packing);
        assert!(s.ticket.is_none() && s.pieces.is_empty());
    }

    #[test]
    fn an_invalid_proof_is_recomputed_then_sealed_again_like_lotus() {
        let mut s = sector();
        s.state = Committing;
        s.c1 = Some(out());
        fail_and_retry(&mut s, ErrorKind::ProofInvalid);
        assert_eq!((s.state, s.c1.is_none()), (Committing, true));
        assert_eq!(s.invalid_proofs, 1);
        s.c1 = Some(out());
        fail_and_retry(&mut s, ErrorKind::ProofInvalid);
        assert_eq!(
            s.state, PreCommit1,
            "the second invalid proof in a row seals again"
        );
        assert_eq!(s.invalid_proofs, 0);
    }

    #[test]
    fn records_written_before_kinds_read_as_temporary_failures() {
        let mut v = serde_json::to_value(sector()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("failed_kind");
        o.remove("invalid_proofs");
        let s: Sector = serde_json::from_value(v).unwrap();
        assert_eq!((s.failed_kind, s.invalid_proofs), (ErrorKind::Temporary, 0));
    }

    /// A sector pre-committed and waiting for C1, with its commitments recorded.
    fn committing() -> Sector {
        let mut s = sector();
        s.state = Committing;
        s.ticket = Some((1, [0; 32]));
        s.comms = Some(SealedCommitments {
            comm_d: [0; 32],
            comm_r: [1; 32],
        });
        s
    }

    #[test]
    fn a_lost_replica_is_rebuilt_and_the_sector_goes_back_to_its_step_without_a_retry() {
        let mut s = committing();
        s.apply(Event::FilesLost("A was lost".into()), 3).unwrap();
        assert_eq!(s.state, RebuildWait);
        assert_eq!(s.rebuild.as_ref().unwrap().then, Committing);
        s.apply(Event::RebuildBlocked("no PC1 worker".into()), 3)
            .unwrap();
        assert_eq!(
            s.rebuild.as_ref().unwrap().waiting.as_deref(),
            Some("no PC1 worker")
        );
        s.apply(Event::RebuildReady, 3).unwrap();
        assert_eq!(s.state, RebuildPreCommit1);
        assert_eq!(s.rebuild.as_ref().unwrap().waiting, None);
        // Its workers went away while PC1 was queued: it waits again, saying why.
        s.apply(Event::RebuildBlocked("gone".into()), 3).unwrap();
        assert_eq!(s.state, RebuildWait);
        s.apply(Event::RebuildReady, 3).unwrap();
        s.apply(Event::PreCommit1Done(out()), 3).unwrap();
        assert_eq!((s.state, s.pc1.is_some()), (RebuildPreCommit2, true));
        // PC2 failing is retried as PC2, then redone from PC1 when its input is bad.
        s.apply(Event::Failed(TaskError::temporary("disk")), 3)
            .unwrap();
        assert_eq!(s.state, RebuildFailed);
        s.apply(Event::Retry, 3).unwrap();
        assert_eq!((s.state, s.retries), (RebuildPreCommit2, 1));
        fail_and_retry(&mut s, ErrorKind::BadInput);
        assert_eq!((s.state, s.pc1.is_none()), (RebuildPreCommit1, true));
        s.apply(Event::PreCommit1Done(out()), 3).unwrap();
        s.apply(Event::Rebuilt("rebuilt on B1 after A was lost".into()), 3)
            .unwrap();
        assert_eq!(s.state, Committing);
        assert!(s.rebuild.is_none() && s.pc1.is_none());
        assert_eq!(s.ticket, Some((1, [0; 32])), "the recorded ticket is kept");
        // The loss itself spent nothing: retries start over with the step it went back to.
        assert_eq!(s.retries, 0);
        assert!(s.log.iter().any(|l| l.kind == "SectorRebuilt"));
    }

    #[test]
    fn a_proving_sector_is_rebuilt_then_finalized_and_moved_again() {
        let mut s = committing();
        s.state = Proving;
        s.apply(Event::FilesLost("unreadable".into()), 3).unwrap();
        assert_eq!(s.rebuild.as_ref().unwrap().then, FinalizeSector);
        s.apply(Event::RebuildReady, 3).unwrap();
        s.apply(Event::PreCommit1Done(out()), 3).unwrap();
        s.apply(Event::Rebuilt("ok".into()), 3).unwrap();
        assert_eq!(s.state, FinalizeSector);
        s.apply(Event::Finalized, 3).unwrap();
        assert_eq!(s.state, Proving);
        // An operator's rebuild of a healthy Proving sector goes the same way.
        s.apply(Event::RebuildRequested, 3).unwrap();
        assert!(s.rebuild.as_ref().unwrap().manual);
        assert_eq!(s.state, RebuildWait);
    }

    #[test]
    fn only_a_replica_that_exists_can_be_rebuilt() {
        // Before the pre-commit nothing is rebuilt: a lost PC2 input makes PC1 run again.
        let mut s = sector();
        s.state = PreCommit2;
        s.pc1 = Some(out());
        s.apply(Event::FilesLost("gone".into()), 3).unwrap();
        assert_eq!(
            (s.state, s.pc1.is_none(), s.rebuild.is_none()),
            (PreCommit1, true, true)
        );
        for state in [
            Packing,
            GetTicket,
            PreCommit1,
            Removing,
            FailedUnrecoverable,
        ] {
            let mut s = sector();
            s.state = state;
            assert!(s.apply(Event::RebuildRequested, 3).is_err(), "{state}");
            assert!(s.apply(Event::FilesLost("x".into()), 3).is_err(), "{state}");
        }
        // A failure on its way to a pre-committed step counts as that step.
        let mut s = committing();
        s.apply(Event::Failed(TaskError::temporary("x")), 3)
            .unwrap();
        assert_eq!(s.state, ComputeProofFailed);
        s.apply(Event::FilesLost("gone".into()), 3).unwrap();
        assert_eq!(s.rebuild.unwrap().then, Committing);
        let mut s = committing();
        s.deals = vec![7];
        assert!(s.has_deals() && !committing().has_deals());
    }

    #[test]
    fn a_rebuild_that_keeps_failing_stops_and_files_that_come_back_end_it() {
        let mut s = committing();
        s.apply(Event::FilesLost("A was lost".into()), 3).unwrap();
        s.apply(Event::RebuildReady, 3).unwrap();
        for round in 0..3 {
            s.apply(Event::PreCommit1Done(out()), 3).unwrap();
            fail_and_retry(&mut s, ErrorKind::BadInput);
            assert_eq!(s.state, RebuildPreCommit1, "round {round}");
        }
        s.apply(Event::PreCommit1Done(out()), 3).unwrap();
        fail_and_retry(&mut s, ErrorKind::BadInput);
        assert_eq!(
            s.state, FailedUnrecoverable,
            "a commR that never matches stops"
        );
        // Asked for again by hand, it starts over.
        s.apply(Event::RebuildRequested, 3).unwrap();
        let r = s.rebuild.as_ref().unwrap();
        assert_eq!((s.state, r.attempts, r.manual), (RebuildWait, 0, true));
        assert_eq!((r.unreadable, r.then), (true, Committing));

        // Its machine came back before the rebuild ran: the step goes on with those files.
        let mut s = committing();
        s.apply(Event::FilesLost("A was lost".into()), 3).unwrap();
        s.apply(Event::FilesFound("back on p1".into()), 3).unwrap();
        assert_eq!((s.state, s.rebuild.is_none()), (Committing, true));
        // A step under way is not interrupted by an operator's request; a failed one is.
        let mut s = committing();
        for state in [Committing, WaitSeed, CommitWait] {
            s.state = state;
            assert!(s.apply(Event::RebuildRequested, 3).is_err(), "{state}");
        }
        s.state = Committing;
        s.apply(Event::Failed(TaskError::temporary("x")), 3)
            .unwrap();
        s.apply(Event::RebuildRequested, 3).unwrap();
        let r = s.rebuild.as_ref().unwrap();
        assert_eq!(r.then, Committing);
        assert!(r
            .waiting
            .as_deref()
            .unwrap()
            .contains("once the current step"));

        // Files found once the rebuild's own PC1 wrote them do not end it; a lost worker or a
        // full disk spend none of its attempts.
        let mut s = committing();
        s.apply(Event::FilesLost("A was lost".into()), 3).unwrap();
        s.apply(Event::RebuildReady, 3).unwrap();
        s.apply(Event::PreCommit1Done(out()), 3).unwrap();
        s.apply(Event::FilesLost("B1 was lost".into()), 3).unwrap();
        assert!(s.rebuild.as_ref().unwrap().started);
        s.apply(Event::RebuildReady, 3).unwrap();
        for _ in 0..5 {
            fail_and_retry(&mut s, ErrorKind::OutOfSpace);
            assert_eq!(s.state, RebuildPreCommit1);
        }
        assert_eq!(s.rebuild.as_ref().unwrap().attempts, 0);
        // A Proving sector out of reach whose files come back is Proving again.
        let mut s = committing();
        s.state = Proving;
        s.apply(Event::FilesLost("its machine was lost".into()), 3)
            .unwrap();
        assert!(!s.rebuild.as_ref().unwrap().unreadable);
        s.apply(Event::FilesFound("back".into()), 3).unwrap();
        assert_eq!(s.state, Proving);
        // WindowPoSt's unreadable copies are known bad.
        let mut s = committing();
        s.state = Proving;
        s.apply(Event::Unreadable("bad leaves".into()), 3).unwrap();
        assert!(s.rebuild.as_ref().unwrap().unreadable);
        assert!(committing()
            .apply(Event::Unreadable("x".into()), 3)
            .is_err());
    }

    #[test]
    fn records_written_before_rebuilds_read_as_cc_sectors_without_one() {
        let mut v = serde_json::to_value(sector()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("deals");
        o.remove("rebuild");
        let s: Sector = serde_json::from_value(v).unwrap();
        assert_eq!((s.deals.len(), s.rebuild), (0, None));
    }

    #[test]
    fn interrupted_pc2_restarts_from_pc1() {
        let mut s = sector();
        s.state = PreCommit2;
        s.pc1 = Some(out());
        s.apply(Event::Restarted("sealer restarted during PC2".into()), 3)
            .unwrap();
        assert_eq!(s.state, PreCommit1);
        assert!(s.pc1.is_none());
    }
}
