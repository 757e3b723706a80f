//! The sector state machine for committed-capacity sectors: the sector record, the events that
//! move it, and the transition rules (lotus's states, failure states with retries). Pure: no I/O.

use std::time::{SystemTime, UNIX_EPOCH};

use api::{SectorLog, SectorState};
use proofs::{PhaseOutput, PieceInfo, Randomness, SealedCommitments};
use resources::SectorRef;
use serde::{Deserialize, Serialize};

use SectorState::*;

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
    /// When the sector last changed state (unix ms); failure cool-downs count from it.
    pub since_ms: u64,
    pub log: Vec<SectorLog>,
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
    /// The current step failed.
    Failed(String),
    /// A failed sector's cool-down is over.
    Retry,
    /// The sealer restarted while a step that cannot resume was running (PC2 encodes the
    /// replica in place, so an interrupted PC2 restarts from PC1).
    Restarted(String),
    /// The CC sector's unsealed file is nowhere that can be reached (its machine was lost):
    /// it is packed again.
    Repack(String),
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
            Event::Failed(_) => "SectorFailed",
            Event::Retry => "SectorRetry",
            Event::Restarted(_) => "SectorRestart",
            Event::Repack(_) => "SectorRepack",
            Event::Remove => "SectorRemove",
            Event::RemoveDone => "SectorRemoved",
        }
    }
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
        PreCommitting | PreCommitWait | WaitSeed => PreCommitFailed,
        Committing => ComputeProofFailed,
        SubmitCommit | CommitWait => CommitFailed,
        FinalizeSector => FinalizeFailed,
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
            since_ms: now,
            log: vec![SectorLog {
                timestamp_ms: now,
                kind: "SectorStartCC".into(),
                state: Packing,
                message: "committed-capacity sector pledged".into(),
            }],
        }
    }

    /// Where a failed sector goes when its cool-down is over.
    fn retry_target(&self, max_retries: u32) -> SectorState {
        let from = self.failed_from.unwrap_or(Packing);
        let over = self.retries >= max_retries;
        match (self.state, over) {
            // PC2 keeps failing: its PC1 output may be bad; redo PC1 (lotus does the same).
            (SealPreCommit2Failed, true) => PreCommit1,
            (_, true) => FailedUnrecoverable,
            // A proof the chain rejected is recomputed, not resent.
            (CommitFailed, false) if from == CommitWait => Committing,
            (_, false) => from,
        }
    }

    /// Applies `event`, appending it to the log. An event that does not fit the current state is
    /// refused and changes nothing.
    pub fn apply(&mut self, event: Event, max_retries: u32) -> Result<(), String> {
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
                message = format!("commR {}", crate::chain::hex(&c.comm_r));
                PreCommitting
            }
            (Event::PreCommitSent(id), PreCommitting) => {
                self.precommit_msg = Some(id.clone());
                message = format!("message {id}");
                PreCommitWait
            }
            (Event::PreCommitLanded(epoch), PreCommitWait) => {
                self.precommit_epoch = Some(*epoch);
                message = format!("landed at epoch {epoch}");
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
            (Event::CommitSent(id), SubmitCommit) => {
                self.commit_msg = Some(id.clone());
                message = format!("message {id}");
                CommitWait
            }
            (Event::CommitLanded(epoch), CommitWait) => {
                message = format!("activated at epoch {epoch}");
                FinalizeSector
            }
            (Event::Finalized, FinalizeSector) => Proving,
            (Event::Failed(err), s) if failure_of(s) != s => {
                self.last_error = err.clone();
                self.failed_from = Some(s);
                message = err.clone();
                failure_of(s)
            }
            (Event::Retry, s) if s.is_failed() && s != FailedUnrecoverable => {
                let to = self.retry_target(max_retries);
                if to == FailedUnrecoverable || to != self.failed_from.unwrap_or(to) {
                    self.retries = 0;
                } else {
                    self.retries += 1;
                }
                message = format!("retry {} after: {}", self.retries, self.last_error);
                match to {
                    PreCommit1 => {
                        self.pc1 = None;
                    }
                    Committing => {
                        self.c1 = None;
                        self.proof = None;
                    }
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
            (Event::Remove, s) if s != Removed => Removing,
            (Event::RemoveDone, Removing) => Removed,
            (e, s) => return Err(format!("event {} does not apply in state {s}", e.kind())),
        };
        if next != before && !next.is_failed() && !before.is_failed() {
            self.retries = 0;
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
            s.apply(Event::Failed("boom".into()), 3).unwrap();
            assert_eq!(s.state, SealPreCommit2Failed);
            s.apply(Event::Retry, 3).unwrap();
            assert_eq!(s.state, PreCommit2, "round {round}");
        }
        s.apply(Event::Failed("boom".into()), 3).unwrap();
        s.apply(Event::Retry, 3).unwrap();
        assert_eq!(s.state, PreCommit1, "PC2 failing past the limit redoes PC1");
        assert_eq!(s.retries, 0);

        // A proof the chain rejected is recomputed.
        s.state = CommitWait;
        s.apply(Event::Failed("invalid seal proof".into()), 3)
            .unwrap();
        assert_eq!(s.state, CommitFailed);
        s.apply(Event::Retry, 3).unwrap();
        assert_eq!(s.state, Committing);

        s.state = FinalizeSector;
        s.retries = 0;
        for _ in 0..3 {
            s.apply(Event::Failed("disk".into()), 3).unwrap();
            s.apply(Event::Retry, 3).unwrap();
            assert_eq!(s.state, FinalizeSector);
        }
        s.apply(Event::Failed("disk".into()), 3).unwrap();
        s.apply(Event::Retry, 3).unwrap();
        assert_eq!(s.state, FailedUnrecoverable);
        assert!(s.log.iter().any(|l| l.message.contains("disk")));
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
