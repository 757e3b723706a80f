//! Active sectors' expirations as `sectors list` shows them, kept between calls: a list of a
//! large miner's sectors every second asked the chain node for every one of them each time
//! (10,000 `SectorOnChainInfo`s, megabytes of JSON). A sector's expiration changes only when it
//! is extended (or terminated, which takes it out of Proving), so each is read again only after
//! [`REREAD_AFTER`], once the head reaches it, or while an extension this sealer sent may be
//! landing ([`LANDS_WITHIN`] epochs).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a read expiration is shown without asking again (60 epochs on mainnet): an
/// extension sent by another program shows within that. In time, not epochs: a devnet's
/// fast blocks would have every list read every sector again every few seconds.
pub const REREAD_AFTER: Duration = Duration::from_secs(30 * 60);

/// Epochs within which an extension this sealer sent has surely landed.
pub const LANDS_WITHIN: i64 = 60;

#[derive(Default)]
pub struct Expirations {
    inner: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    /// Sector -> (its expiration, when it was read).
    read: HashMap<u64, (i64, Instant)>,
    /// Sectors an extension was sent for: read at every call until this epoch.
    changing: HashMap<u64, i64>,
    /// Sealing sectors' pre-committed expirations and when they were read from the chain (at
    /// the seed): what each keeps once active, so a sector that just became active is not
    /// asked of the chain. Counted as read then: [`REREAD_AFTER`] runs from the seed.
    precommitted: HashMap<u64, (i64, Instant)>,
}

/// Past this many pre-committed expirations kept, those older than [`REREAD_AFTER`] (of no use
/// any more: the chain would be asked) are dropped.
const PRECOMMITTED_KEPT: usize = 65_536;

impl Expirations {
    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What of `sectors` (active ones) the chain must be asked about at `head` and `now`; the
    /// rest is known (a sector new to the list with its pre-committed expiration, as read now).
    pub fn to_read(&self, sectors: &[u64], head: i64, now: Instant) -> Vec<u64> {
        let mut k = self.lock();
        k.changing.retain(|_, until| *until >= head);
        for n in sectors {
            if let Some(seen) = k.precommitted.remove(n) {
                k.read.entry(*n).or_insert(seen);
            }
        }
        sectors
            .iter()
            .copied()
            .filter(|n| {
                k.changing.contains_key(n)
                    || !k
                        .read
                        .get(n)
                        .is_some_and(|(exp, at)| head < *exp && now < *at + REREAD_AFTER)
            })
            .collect()
    }

    /// What the chain said at `at` of the sectors `asked` (`found`: those active, with their
    /// expiration; the others are not kept).
    pub fn learn(&self, asked: &[u64], found: &HashMap<u64, i64>, at: Instant) {
        let mut k = self.lock();
        for n in asked {
            match found.get(n) {
                Some(exp) => k.read.insert(*n, (*exp, at)),
                None => k.read.remove(n),
            };
        }
    }

    /// Sector `n`'s pre-commit, read from the chain, expires at `expiration`: the sector's
    /// expiration once active (the actor keeps the pre-commit's).
    pub fn precommitted(&self, n: u64, expiration: i64) {
        let mut k = self.lock();
        let now = Instant::now();
        if k.precommitted.len() >= PRECOMMITTED_KEPT {
            k.precommitted.retain(|_, (_, at)| now < *at + REREAD_AFTER);
        }
        k.precommitted.insert(n, (expiration, now));
    }

    pub fn get(&self, sector: u64) -> Option<i64> {
        self.lock().read.get(&sector).map(|(exp, _)| *exp)
    }

    /// An extension of `sectors` was sent at `head`: they are read again at every call until
    /// it has surely landed.
    pub fn extending(&self, sectors: impl IntoIterator<Item = u64>, head: i64) {
        let mut k = self.lock();
        for n in sectors {
            // What the pre-commit said no longer holds.
            k.precommitted.remove(&n);
            k.changing.insert(n, head + LANDS_WITHIN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiration_is_read_again_after_a_while_when_reached_and_while_an_extension_lands() {
        let e = Expirations::default();
        let t0 = Instant::now();
        let later = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(e.to_read(&[1, 2, 3], 100, t0), vec![1, 2, 3]);
        let found = HashMap::from([(1, 5000), (2, 150)]);
        e.learn(&[1, 2, 3], &found, t0);
        // 3 is not active (not kept); 1 and 2 are known, however many epochs pass.
        assert_eq!(e.to_read(&[1, 2, 3], 101, later(1)), vec![3]);
        assert!(e.to_read(&[1], 140, later(60)).is_empty());
        assert_eq!((e.get(1), e.get(3)), (Some(5000), None));
        // 2 expires at 150: asked again from then; everything after REREAD_AFTER.
        assert_eq!(e.to_read(&[1, 2], 150, later(2)), vec![2]);
        assert_eq!(e.to_read(&[1, 2], 101, t0 + REREAD_AFTER), vec![1, 2]);
        // An extension of 1 sent at 120: asked at every call until it surely landed.
        e.learn(&[1], &found, later(3));
        e.extending([1], 120);
        assert_eq!(e.to_read(&[1], 121, later(4)), vec![1]);
        e.learn(&[1], &HashMap::from([(1, 9000)]), later(5));
        assert_eq!(e.to_read(&[1], 126, later(6)), vec![1]);
        assert_eq!(e.get(1), Some(9000));
        assert!(e.to_read(&[1], 121 + LANDS_WITHIN, later(7)).is_empty());
    }

    #[test]
    fn a_sector_just_active_shows_its_precommitted_expiration_without_asking_the_chain() {
        let e = Expirations::default();
        e.precommitted(7, 5000);
        // Counted as read at the seed: REREAD_AFTER runs from then.
        let t0 = Instant::now();
        assert!(e.to_read(&[7], 100, t0).is_empty());
        assert_eq!(e.get(7), Some(5000));
        // Read again from the chain like any other, after REREAD_AFTER.
        assert_eq!(e.to_read(&[7], 101, t0 + REREAD_AFTER), vec![7]);
        // A sector whose pre-commit was not seen by this process (started since) is asked.
        assert_eq!(e.to_read(&[8], 100, t0), vec![8]);
        // Extended before any list showed it: its pre-commit's expiration is not taken.
        e.precommitted(9, 5000);
        e.extending([9], 100);
        assert_eq!(e.to_read(&[9], 100 + LANDS_WITHIN + 1, t0), vec![9]);
    }
}
