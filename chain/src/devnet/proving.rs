//! A miner's proving state on the local chain, as the built-in miner actor keeps it: a proving
//! period of 48 deadlines of `window` epochs each; every active sector sits in one partition of
//! one deadline; each deadline must be proven once per period while it is open. A deadline that
//! closes without a proof for a partition makes that partition's sectors faulty (they lose their
//! power); faults can be declared ahead of time, and recoveries declared and then proven.
//!
//! Pure bookkeeping: no I/O, no proofs (the chain verifies proofs before calling in here).

use std::collections::BTreeSet;

use resources::SectorSize;
use serde::{Deserialize, Serialize};

use crate::deadline::{deadline_at, next_opening, DeadlineInfo, DEADLINES};
use crate::{Partition, Partitions};

/// Sectors per partition, by sector size (the built-in actors' WindowPoStPartitionSectors).
pub fn partition_sectors(size: SectorSize) -> usize {
    match size {
        SectorSize::S2KiB | SectorSize::S8MiB | SectorSize::S512MiB => 2,
        SectorSize::S32GiB => 2349,
        SectorSize::S64GiB => 2300,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub partitions: Vec<Partition>,
    /// Partitions proven in the deadline's current opening (by index).
    pub proven: BTreeSet<usize>,
    /// The opening `proven` is about (its open epoch).
    pub proven_open: i64,
}

/// What a deadline's close did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseOutcome {
    pub index: u64,
    /// Partitions proven in time.
    pub proven: usize,
    /// Sectors that lost power because their partition was not proven.
    pub newly_faulty: Vec<u64>,
}

/// One miner's deadlines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvingState {
    pub window: i64,
    pub partition_size: usize,
    pub deadlines: Vec<Deadline>,
    /// The last epoch whose deadline closes were processed.
    pub processed_to: i64,
    /// Partition-deadlines proven and missed since genesis.
    pub proofs_accepted: u64,
    pub missed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvingError {
    #[error(
        "deadline {index} is not open at epoch {epoch} (it opens at {open}, closes at {close})"
    )]
    NotOpen {
        index: u64,
        epoch: i64,
        open: i64,
        close: i64,
    },
    #[error("deadline {index} has no partition {partition}")]
    NoPartition { index: u64, partition: usize },
    #[error("sector {0} is not in deadline {1}")]
    NotInDeadline(u64, u64),
    #[error("deadline {index} is open or about to open: faults and recoveries for it must be declared before epoch {cutoff}")]
    TooLate { index: u64, cutoff: i64 },
    #[error("deadline {index} is open or about to open: its sectors can be terminated from epoch {from}")]
    Immutable { index: u64, from: i64 },
}

impl ProvingState {
    /// A miner's first sector activates at `epoch`: deadlines closed before it are not its own.
    pub fn new(window: i64, size: SectorSize, epoch: i64) -> ProvingState {
        ProvingState {
            window: window.max(1),
            partition_size: partition_sectors(size),
            deadlines: vec![Deadline::default(); DEADLINES as usize],
            processed_to: epoch,
            proofs_accepted: 0,
            missed: 0,
        }
    }

    /// Places a newly activated sector at `epoch`: in the deadline with the fewest sectors among
    /// those not open now or next (so its first proof is not due before the miner can know),
    /// the earliest after the current one on ties; in its last partition if that has room.
    pub fn assign(&mut self, sector: u64, epoch: i64) -> (u64, usize) {
        let cur = deadline_at(epoch, self.window).index;
        let candidates = (2..DEADLINES).map(|k| (cur + k) % DEADLINES);
        let index = candidates
            .min_by_key(|d| {
                let n: usize = self.deadlines[*d as usize]
                    .partitions
                    .iter()
                    .map(|p| p.sectors.len())
                    .sum();
                (n, (d + DEADLINES - cur) % DEADLINES)
            })
            .expect("48 deadlines");
        let dl = &mut self.deadlines[index as usize];
        let size = self.partition_size;
        let part = match dl.partitions.iter().position(|p| p.sectors.len() < size) {
            Some(i) => i,
            None => {
                dl.partitions.push(Partition::default());
                dl.partitions.len() - 1
            }
        };
        dl.partitions[part].sectors.insert(sector);
        (index, part)
    }

    /// Where `sector` is.
    pub fn locate(&self, sector: u64) -> Option<(u64, usize)> {
        self.deadlines.iter().enumerate().find_map(|(d, dl)| {
            dl.partitions
                .iter()
                .position(|p| p.sectors.contains(&sector))
                .map(|p| (d as u64, p))
        })
    }

    /// Sectors with power (active and not faulty).
    pub fn live_sectors(&self) -> usize {
        self.partitions()
            .map(|p| p.sectors.len() - p.faults.len())
            .sum()
    }

    pub fn faulty(&self) -> BTreeSet<u64> {
        self.deadlines
            .iter()
            .flat_map(|d| d.partitions.faults())
            .collect()
    }

    /// Sectors with power, in number order.
    pub fn live(&self) -> Vec<u64> {
        let mut live: Vec<u64> = self
            .partitions()
            .flat_map(|p| p.sectors.difference(&p.faults).copied())
            .collect();
        live.sort_unstable();
        live
    }

    fn partitions(&self) -> impl Iterator<Item = &Partition> {
        self.deadlines.iter().flat_map(|d| d.partitions.iter())
    }

    /// A proof for `partitions` of deadline `index` arrived at `epoch` and was verified over
    /// each partition's `to_prove()` sectors less `skipped` (sectors the prover could not read:
    /// they become faulty): the partitions are proven for this opening, and proven recoveries
    /// regain power. Returns the sectors whose power came back and those that lost it.
    pub fn record_proof(
        &mut self,
        index: u64,
        partitions: &[usize],
        skipped: &[u64],
        epoch: i64,
    ) -> Result<(Vec<u64>, Vec<u64>), ProvingError> {
        let d = self.open_deadline(index, epoch)?;
        let dl = &mut self.deadlines[index as usize];
        for p in partitions {
            if *p >= dl.partitions.len() {
                return Err(ProvingError::NoPartition {
                    index,
                    partition: *p,
                });
            }
        }
        if dl.proven_open != d.open {
            dl.proven.clear();
            dl.proven_open = d.open;
        }
        let mut recovered = Vec::new();
        let mut lost = Vec::new();
        for p in partitions {
            let part = &mut dl.partitions[*p];
            for s in skipped.iter().filter(|s| part.sectors.contains(s)) {
                part.recoveries.remove(s);
                if part.faults.insert(*s) {
                    lost.push(*s);
                }
            }
            for s in std::mem::take(&mut part.recoveries) {
                part.faults.remove(&s);
                recovered.push(s);
            }
            if dl.proven.insert(*p) {
                self.proofs_accepted += 1;
            }
        }
        Ok((recovered, lost))
    }

    /// The deadline `index` if it is open at `epoch`.
    pub fn open_deadline(&self, index: u64, epoch: i64) -> Result<DeadlineInfo, ProvingError> {
        let d = deadline_at(epoch, self.window);
        if d.index != index {
            let n = next_opening(index, epoch, self.window);
            return Err(ProvingError::NotOpen {
                index,
                epoch,
                open: n.open,
                close: n.close,
            });
        }
        Ok(d)
    }

    /// Faults (`recovered` false) or recoveries declared at `epoch` for sectors of deadline
    /// `index`. As on mainnet, not for the deadline open now or opening next. Returns the sectors
    /// whose power changes: newly faulty ones (faults); none for recoveries (they count once
    /// proven).
    pub fn declare(
        &mut self,
        index: u64,
        sectors: &[u64],
        recovered: bool,
        epoch: i64,
    ) -> Result<Vec<u64>, ProvingError> {
        let cur = deadline_at(epoch, self.window);
        if index == cur.index || index == (cur.index + 1) % DEADLINES {
            let next = next_opening(index, cur.close + self.window, self.window);
            return Err(ProvingError::TooLate {
                index,
                cutoff: next.open - self.window,
            });
        }
        let dl = self.deadline_of(index, sectors)?;
        let mut changed = Vec::new();
        for part in dl.partitions.iter_mut() {
            for s in sectors.iter().filter(|s| part.sectors.contains(s)) {
                if recovered {
                    if part.faults.contains(s) {
                        part.recoveries.insert(*s);
                    }
                } else {
                    part.recoveries.remove(s);
                    if part.faults.insert(*s) {
                        changed.push(*s);
                    }
                }
            }
        }
        Ok(changed)
    }

    /// Deadline `index`, which must hold every one of `sectors`.
    fn deadline_of(&mut self, index: u64, sectors: &[u64]) -> Result<&mut Deadline, ProvingError> {
        let dl = &mut self.deadlines[index as usize];
        match sectors
            .iter()
            .find(|s| !dl.partitions.iter().any(|p| p.sectors.contains(s)))
        {
            Some(s) => Err(ProvingError::NotInDeadline(*s, index)),
            None => Ok(dl),
        }
    }

    /// Sectors of deadline `index` terminated at `epoch`: they leave their partitions, not in
    /// the deadline open now or opening next. Returns those that still had power (not faulty).
    pub fn terminate(
        &mut self,
        index: u64,
        sectors: &[u64],
        epoch: i64,
    ) -> Result<Vec<u64>, ProvingError> {
        let cur = deadline_at(epoch, self.window);
        if let Some(from) = crate::deadline::busy_until(index, &cur, self.window, epoch) {
            return Err(ProvingError::Immutable { index, from });
        }
        let dl = self.deadline_of(index, sectors)?;
        let mut powered = Vec::new();
        for part in dl.partitions.iter_mut() {
            for s in sectors {
                if part.sectors.remove(s) {
                    part.recoveries.remove(s);
                    if !part.faults.remove(s) {
                        powered.push(*s);
                    }
                }
            }
        }
        Ok(powered)
    }

    /// Processes every deadline that closed after `processed_to` and up to `epoch`: partitions
    /// without a proof in that opening lose their remaining power (recoveries lapse).
    pub fn close_through(&mut self, epoch: i64) -> Vec<CloseOutcome> {
        let w = self.window;
        let mut out = Vec::new();
        // Deadlines close at multiples of the window; the one closing at `c` opened at `c - w`.
        let mut c = (self.processed_to.max(0) / w + 1) * w;
        while c <= epoch {
            out.push(self.close_one(deadline_at(c - 1, w)));
            c += w;
        }
        self.processed_to = self.processed_to.max(epoch);
        out
    }

    fn close_one(&mut self, d: DeadlineInfo) -> CloseOutcome {
        let dl = &mut self.deadlines[d.index as usize];
        let proven_now = dl.proven_open == d.open;
        let mut outcome = CloseOutcome {
            index: d.index,
            ..Default::default()
        };
        for (i, part) in dl.partitions.iter_mut().enumerate() {
            if proven_now && dl.proven.contains(&i) {
                outcome.proven += 1;
                continue;
            }
            let due = !part.to_prove().is_empty();
            part.recoveries.clear();
            for s in &part.sectors {
                if part.faults.insert(*s) {
                    outcome.newly_faulty.push(*s);
                }
            }
            if due {
                self.missed += 1;
            }
        }
        dl.proven.clear();
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sectors_go_to_deadlines_not_open_now_or_next_and_fill_partitions() {
        let mut p = ProvingState::new(10, SectorSize::S2KiB, 0);
        assert_eq!(p.assign(1, 5), (2, 0));
        assert_eq!(p.assign(2, 5), (3, 0));
        let mut seen = BTreeSet::new();
        for s in 3..=46 {
            seen.insert(p.assign(s, 5).0);
        }
        // 46 sectors over the 46 deadlines other than 0 and 1, then the emptiest again.
        assert!(!seen.contains(&0) && !seen.contains(&1));
        assert_eq!(p.assign(47, 5), (2, 0));
        assert_eq!(p.assign(48, 5), (3, 0));
        assert_eq!(p.locate(47), Some((2, 0)));
        assert_eq!(p.deadlines[2].partitions[0].sectors.len(), 2);
        p.assign(100, 5);
        // Partitions hold 2 sectors for 2KiB: deadline 4 now has two.
        assert_eq!(p.live_sectors(), 49);
    }

    #[test]
    fn a_missed_deadline_faults_its_sectors_and_a_proven_recovery_restores_them() {
        let mut p = ProvingState::new(10, SectorSize::S2KiB, 0);
        p.assign(1, 0); // deadline 2: open 20..30
        p.assign(2, 0); // deadline 3: open 30..40
                        // Deadline 2 proven in time; deadline 3 not.
        assert!(matches!(
            p.record_proof(2, &[0], &[], 15),
            Err(ProvingError::NotOpen { open: 20, .. })
        ));
        assert_eq!(p.record_proof(2, &[0], &[], 25).unwrap(), (vec![], vec![]));
        let closed = p.close_through(45);
        assert_eq!(closed.len(), 4, "{closed:?}"); // deadlines 0..=3 closed at 10, 20, 30, 40
        assert_eq!(closed[2].proven, 1);
        assert_eq!(closed[3].newly_faulty, vec![2]);
        assert_eq!(p.live_sectors(), 1);
        assert_eq!(p.missed, 1);
        // Recovery: declared outside the deadline's open/next window, proven at its next opening.
        assert!(matches!(
            p.declare(3, &[2], true, 25),
            Err(ProvingError::TooLate { .. })
        ));
        p.declare(3, &[2], true, 100).unwrap();
        assert_eq!(p.live_sectors(), 1);
        let next = next_opening(3, 100, 10);
        assert_eq!(p.deadlines[3].partitions[0].to_prove(), vec![2]);
        assert_eq!(
            p.record_proof(3, &[0], &[], next.open + 1).unwrap(),
            (vec![2], vec![])
        );
        assert_eq!(p.live_sectors(), 2);
        // A declared fault takes power at once and is left out of the next proof.
        p.declare(2, &[1], false, 100).unwrap();
        assert_eq!(p.live_sectors(), 1);
        assert!(p.deadlines[2].partitions[0].to_prove().is_empty());
        assert!(matches!(
            p.declare(2, &[9], false, 100),
            Err(ProvingError::NotInDeadline(9, 2))
        ));
    }

    #[test]
    fn close_through_counts_each_close_once_across_calls() {
        let mut p = ProvingState::new(10, SectorSize::S2KiB, 0);
        p.assign(1, 0);
        assert!(p
            .close_through(25)
            .iter()
            .all(|c| c.newly_faulty.is_empty()));
        let c = p.close_through(31);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].index, 2);
        assert_eq!(c[0].newly_faulty, vec![1]);
        assert!(p.close_through(31).is_empty());
        assert_eq!(p.missed, 1);
    }
}
