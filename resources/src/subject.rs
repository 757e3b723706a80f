//! What a task is about: one sector, or a PoSt over a proving deadline or an election epoch.
//! The scheduler, call records, job listings and logs name tasks by it; no PoSt poses as a
//! sector.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::proof::SectorRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Subject {
    /// A sealing step of one sector.
    Sector(SectorRef),
    /// WindowPoSt over one deadline's sectors; `check` for `proving check`, which only reads
    /// the challenged leaves.
    WindowPoSt {
        miner: u64,
        deadline: u64,
        check: bool,
    },
    /// WinningPoSt for the block the miner was elected to make at `epoch`.
    WinningPoSt { miner: u64, epoch: i64 },
}

impl Subject {
    /// The sector, for a sealing step.
    pub fn sector(&self) -> Option<SectorRef> {
        match self {
            Subject::Sector(s) => Some(*s),
            Subject::WindowPoSt { .. } | Subject::WinningPoSt { .. } => None,
        }
    }

    pub fn miner(&self) -> u64 {
        match self {
            Subject::Sector(s) => s.miner,
            Subject::WindowPoSt { miner, .. } | Subject::WinningPoSt { miner, .. } => *miner,
        }
    }

    /// The number the queue breaks ties by (lotus: the sector number): the sector's, the
    /// deadline's, the epoch's.
    pub fn number(&self) -> u64 {
        match self {
            Subject::Sector(s) => s.number,
            Subject::WindowPoSt { deadline, .. } => *deadline,
            Subject::WinningPoSt { epoch, .. } => (*epoch).max(0) as u64,
        }
    }

    /// A key for stores and maps, unique per subject and readable: `s/00000000000000000042`,
    /// `wdp/12`, `wdp-check/12`, `wnp/4051` (per miner for PoSt).
    pub fn key(&self) -> String {
        match self {
            Subject::Sector(s) => format!("s/{:020}", s.number),
            Subject::WindowPoSt {
                miner,
                deadline,
                check,
            } => {
                let kind = if *check { "wdp-check" } else { "wdp" };
                format!("{kind}/{miner}/{deadline}")
            }
            Subject::WinningPoSt { miner, epoch } => format!("wnp/{miner}/{epoch}"),
        }
    }
}

impl From<SectorRef> for Subject {
    fn from(s: SectorRef) -> Subject {
        Subject::Sector(s)
    }
}

/// As `sealing jobs` shows it: `12` for sector 12, `deadline 3`, `deadline 3 (check)`,
/// `epoch 4051`.
impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Sector(s) => write!(f, "{}", s.number),
            Subject::WindowPoSt {
                deadline, check, ..
            } => {
                write!(f, "deadline {deadline}")?;
                if *check {
                    f.write_str(" (check)")?;
                }
                Ok(())
            }
            Subject::WinningPoSt { epoch, .. } => write!(f, "epoch {epoch}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SealProof;

    #[test]
    fn subjects_read_as_an_operator_expects_and_keys_do_not_collide() {
        let s = Subject::Sector(SectorRef::new(1000, 42, SealProof::StackedDrg2KiBV1_1));
        let wdp = Subject::WindowPoSt {
            miner: 1000,
            deadline: 42,
            check: false,
        };
        let check = Subject::WindowPoSt {
            miner: 1000,
            deadline: 42,
            check: true,
        };
        let wnp = Subject::WinningPoSt {
            miner: 1000,
            epoch: 42,
        };
        assert_eq!(
            [s, wdp, check, wnp].map(|x| x.to_string()),
            ["42", "deadline 42", "deadline 42 (check)", "epoch 42"]
        );
        let keys: std::collections::HashSet<String> =
            [s, wdp, check, wnp].iter().map(|x| x.key()).collect();
        assert_eq!(keys.len(), 4);
        assert_eq!(s.sector().map(|x| x.number), Some(42));
        assert_eq!(wnp.sector(), None);
        let json = serde_json::to_string(&wdp).unwrap();
        assert_eq!(serde_json::from_str::<Subject>(&json).unwrap(), wdp);
    }
}
