//! Sector records in RocksDB (`sectors/<number>`) with the next sector number (`meta/next_sector`)
//! and each sector's event log, one key per entry (`sectorlog/<number>/<entry>`): a pledge
//! writes all three in one batch, every event writes the record and its one new log entry (and
//! drops the call it consumed) in one batch, so a crash never loses a state change or reuses a
//! number, and an event costs the same on the hundredth step as on the first. The records are
//! held in memory without their logs; a log is read when asked for (`sectors status`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use api::SectorState;
use resources::{SealProof, SectorRef};

use crate::fsm::{Event, Sector};
use db::{num_key, Batch, Db, DbError};

const PREFIX: &str = "sectors/";
const NEXT: &str = "meta/next_sector";
const LOG: &str = "sectorlog/";

/// The key of sector `n`'s log entry `i`.
fn log_key(n: u64, i: u64) -> String {
    format!("{}/{i:010}", num_key(LOG, n))
}

/// Moves `s`'s unstored log entries into `b` under their keys, and `s` itself (without them).
fn put(b: &mut Batch, s: &mut Sector) {
    let n = s.sector.number;
    for l in std::mem::take(&mut s.log) {
        b.put(&log_key(n, s.logged), &l);
        s.logged += 1;
    }
    b.put(&num_key(PREFIX, n), s);
}

#[derive(Debug, thiserror::Error)]
pub enum SectorError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("too many sectors sealing (curSealing: {cur}, max: {max})")]
    TooMany { cur: u64, max: u64 },
    #[error("sector {0} not found")]
    NotFound(u64),
    #[error("sector {0}: {1}")]
    Refused(u64, crate::fsm::Refused),
}

pub struct Sectors {
    db: Db,
    map: Mutex<Held>,
    /// One event at a time per sector (sector number modulo [`SHARDS`]): held across its
    /// synced write, which the map's lock is not, so that listing and reading sectors do not
    /// wait behind every sector's disk flush, and writes of different sectors share one
    /// flush (RocksDB commits concurrent writers together).
    applying: Vec<Mutex<()>>,
    /// Held by a pledge (or an import) across its synced write, so that numbers never repeat,
    /// while the map's lock is taken only to look and to insert: a list does not wait behind
    /// every new sector's disk flush.
    numbering: Mutex<()>,
    max_retries: u32,
}

/// How many sectors' events may be written at once.
const SHARDS: u64 = 64;

/// The records by number, and how many are in each state (kept as they change: a count is
/// not a pass over a large miner's hundreds of thousands of records).
#[derive(Default)]
struct Held {
    by_number: BTreeMap<u64, Sector>,
    states: std::collections::HashMap<SectorState, u64>,
}

impl Held {
    fn insert(&mut self, s: Sector) {
        *self.states.entry(s.state).or_insert(0) += 1;
        if let Some(old) = self.by_number.insert(s.sector.number, s) {
            if let Some(c) = self.states.get_mut(&old.state) {
                *c -= 1;
            }
        }
    }

    fn sealing(&self) -> u64 {
        self.states
            .iter()
            .filter(|(s, _)| s.is_sealing())
            .map(|(_, c)| c)
            .sum()
    }
}

impl Sectors {
    /// `[Sealing] MaxRetries`.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    pub fn load(db: Db, max_retries: u32) -> Result<Sectors, SectorError> {
        let mut map = Held::default();
        // Records written before logs were kept apart carry their whole log: moved out once.
        let mut moved = Batch::default();
        for (_, mut s) in db.scan::<Sector>(PREFIX)? {
            if !s.log.is_empty() {
                put(&mut moved, &mut s);
            }
            map.insert(s);
        }
        if !moved.keys().is_empty() {
            db.write(moved)?;
        }
        Ok(Sectors {
            db,
            map: Mutex::new(map),
            applying: (0..SHARDS).map(|_| Mutex::new(())).collect(),
            numbering: Mutex::new(()),
            max_retries,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn sealing_count(&self) -> u64 {
        self.lock().sealing()
    }

    /// Creates a committed-capacity sector with the next number (`max` 0: no limit).
    pub fn pledge(&self, miner: u64, proof: SealProof, max: u64) -> Result<Sector, SectorError> {
        let _numbering = db::lock_held_across_io(&self.numbering);
        let last = {
            let map = self.lock();
            let cur = map.sealing();
            if max > 0 && cur >= max {
                return Err(SectorError::TooMany { cur, max });
            }
            map.by_number.keys().next_back().copied()
        };
        // Numbers start at 1 and never repeat, even after removals.
        let stored: u64 = self.db.get(NEXT)?.unwrap_or(1);
        let next = stored.max(last.map_or(1, |n| n + 1));
        let mut sector = Sector::new(SectorRef::new(miner, next, proof));
        let mut b = Batch::default();
        put(&mut b, &mut sector);
        b.put(NEXT, &(next + 1));
        self.db.write(b)?;
        self.lock().insert(sector.clone());
        Ok(sector)
    }

    /// Stores sectors made elsewhere (the load tool's 330,000): each record with its log, in
    /// batches of 10,000 (a write each); the next pledge takes a number above all of them.
    pub fn import(&self, sectors: Vec<Sector>) -> Result<(), SectorError> {
        let _numbering = db::lock_held_across_io(&self.numbering);
        let mut map = self.lock();
        let top = sectors.iter().map(|s| s.sector.number).max().unwrap_or(0);
        let stored: u64 = self.db.get(NEXT)?.unwrap_or(1);
        for chunk in sectors.chunks(10_000) {
            let mut b = Batch::default();
            let mut held = Vec::with_capacity(chunk.len());
            for s in chunk {
                let mut s = s.clone();
                put(&mut b, &mut s);
                held.push(s);
            }
            b.put(NEXT, &stored.max(top + 1));
            self.db.write(b)?;
            for s in held {
                map.insert(s);
            }
        }
        Ok(())
    }

    /// Sector `n`'s record, without its log.
    pub fn get(&self, n: u64) -> Option<Sector> {
        self.lock().by_number.get(&n).cloned()
    }

    /// Sector `n`'s event log, oldest first.
    pub fn log(&self, n: u64) -> Result<Vec<api::SectorLog>, SectorError> {
        let prefix = format!("{}/", num_key(LOG, n));
        Ok(self.db.scan(&prefix)?.into_iter().map(|(_, l)| l).collect())
    }

    /// Sector `n`'s record with its log.
    pub fn get_full(&self, n: u64) -> Result<Sector, SectorError> {
        let mut s = self.get(n).ok_or(SectorError::NotFound(n))?;
        s.log = self.log(n)?;
        Ok(s)
    }

    pub fn numbers(&self) -> Vec<u64> {
        self.lock().by_number.keys().copied().collect()
    }

    /// The records of the sectors whose state `keep` accepts, by number.
    pub fn matching(&self, keep: impl Fn(SectorState) -> bool) -> Vec<Sector> {
        self.lock()
            .by_number
            .values()
            .filter(|s| keep(s.state))
            .cloned()
            .collect()
    }

    /// Calls `f` with each record in turn, by number, under the lock (nothing copied).
    pub fn visit(&self, mut f: impl FnMut(&Sector)) {
        for s in self.lock().by_number.values() {
            f(s);
        }
    }

    /// The sectors in any of `states` (all with none), by number: `limit` of them (0: all)
    /// from `offset`, and how many match. Only the page's sectors are copied.
    pub fn page(&self, states: &[api::SectorState], offset: u64, limit: u64) -> api::SectorsPage {
        let map = self.lock();
        let matching = map
            .by_number
            .values()
            .filter(|s| states.is_empty() || states.contains(&s.state));
        let mut total = 0u64;
        let mut rows = Vec::new();
        for s in matching {
            if total >= offset && (limit == 0 || (rows.len() as u64) < limit) {
                rows.push(api::SectorListRow {
                    number: s.sector.number,
                    state: s.state,
                    since_ms: s.since_ms,
                    retries: s.retries,
                    last_error: s.last_error.clone(),
                    deals: s.deals.len() as u64,
                    expiration: None,
                });
            }
            total += 1;
        }
        api::SectorsPage {
            total,
            rows,
            head: None,
        }
    }

    pub fn count_by_state(&self) -> BTreeMap<String, u64> {
        self.lock()
            .states
            .iter()
            .filter(|(_, c)| **c > 0)
            .map(|(s, c)| (s.to_string(), *c))
            .collect()
    }

    /// Applies `event` to sector `n` and writes it, with `extra` writes in the same batch.
    pub fn apply(
        &self,
        n: u64,
        event: Event,
        extra: impl FnOnce(&mut Batch),
    ) -> Result<Sector, SectorError> {
        self.apply_noted(n, event, "", extra)
    }

    /// `apply`, with `note` (e.g. which worker ran the step) added to the log entry.
    pub fn apply_noted(
        &self,
        n: u64,
        event: Event,
        note: &str,
        extra: impl FnOnce(&mut Batch),
    ) -> Result<Sector, SectorError> {
        let _one = db::lock_held_across_io(&self.applying[(n % SHARDS) as usize]);
        let mut next = self
            .lock()
            .by_number
            .get(&n)
            .ok_or(SectorError::NotFound(n))?
            .clone();
        next.apply(event, self.max_retries)
            .map_err(|e| SectorError::Refused(n, e))?;
        if !note.is_empty() {
            if let Some(last) = next.log.last_mut() {
                last.message = if last.message.is_empty() {
                    note.to_string()
                } else {
                    format!("{} ({note})", last.message)
                };
            }
        }
        let mut b = Batch::default();
        let added = next.log.clone();
        put(&mut b, &mut next);
        extra(&mut b);
        self.db.write(b)?;
        self.lock().insert(next.clone());
        // What the caller sees: the record with the entries this event added.
        next.log = added;
        Ok(next)
    }

    pub fn state(&self, n: u64) -> Option<SectorState> {
        self.lock().by_number.get(&n).map(|s| s.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_never_repeat_and_the_limit_holds() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let s = Sectors::load(db.clone(), 3).unwrap();
        let p = SealProof::StackedDrg2KiBV1_1;
        assert_eq!(s.pledge(1000, p, 2).unwrap().sector.number, 1);
        assert_eq!(s.pledge(1000, p, 2).unwrap().sector.number, 2);
        let e = s.pledge(1000, p, 2).unwrap_err().to_string();
        assert_eq!(e, "too many sectors sealing (curSealing: 2, max: 2)");
        s.apply(2, Event::Remove, |_| {}).unwrap();
        s.apply(2, Event::RemoveDone, |_| {}).unwrap();
        drop(s);
        let s = Sectors::load(db, 3).unwrap();
        assert_eq!(s.pledge(1000, p, 2).unwrap().sector.number, 3);
        assert_eq!(s.state(2), Some(SectorState::Removed));
        assert!(s.apply(9, Event::Finalized, |_| {}).is_err());
        let kinds: Vec<String> = s.log(2).unwrap().into_iter().map(|l| l.kind).collect();
        assert_eq!(kinds, ["SectorStartCC", "SectorRemove", "SectorRemoved"]);
    }

    #[test]
    fn an_event_writes_the_record_and_one_log_entry_and_old_records_give_up_their_logs() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        // A record as written before the log was kept apart: the log inside it.
        let mut old = Sector::new(SectorRef::new(1000, 7, SealProof::StackedDrg2KiBV1_1));
        old.apply(Event::Remove, 3).unwrap();
        assert_eq!(old.log.len(), 2);
        let mut with_log = serde_json::to_value(&old).unwrap();
        with_log["log"] = serde_json::to_value(&old.log).unwrap();
        let mut b = Batch::default();
        b.put(&num_key(PREFIX, 7), &with_log);
        db.write(b).unwrap();

        let s = Sectors::load(db.clone(), 3).unwrap();
        assert!(s.get(7).unwrap().log.is_empty(), "held without its log");
        assert_eq!(s.log(7).unwrap(), old.log);
        let stored = |key: &str| db.get::<serde_json::Value>(key).unwrap();
        assert!(stored(&num_key(PREFIX, 7)).unwrap().get("log").is_none());
        // One event: the record, and the third entry alone.
        let after = s
            .apply_noted(7, Event::RemoveDone, "by hand", |_| {})
            .unwrap();
        assert_eq!(after.log.len(), 1, "the caller sees what the event added");
        assert_eq!(after.logged, 3);
        let third = stored(&log_key(7, 2)).unwrap();
        assert_eq!(third["Kind"], "SectorRemoved");
        assert!(third["Message"].as_str().unwrap().contains("by hand"));
        assert_eq!(s.get_full(7).unwrap().log.len(), 3);
        drop(s);
        let s = Sectors::load(db, 3).unwrap();
        assert_eq!(s.log(7).unwrap().len(), 3);
        assert_eq!(s.state(7), Some(SectorState::Removed));
    }
}
