//! The heartbeat watch's judgment, apart from what it does: from how long each worker has been
//! silent, who is disconnected, who is removed as lost, and when a silence shared by many
//! workers at once is more likely the sealer's own stall (its CPU, its network) than theirs.
//!
//! A sealer that falls behind reads every worker's beats late at the same time. Judging each
//! worker alone then disconnects and removes them all, fails what they run, and rebuilds what
//! they hold: load that makes the stall worse. So when at least [`MASS_SILENCE_MIN`] workers
//! and more than a tenth of all are silent in one round, nobody changes state, up to
//! [`HOLD_LIMIT`] of silence; a worker silent that long is removed even then. After a restart,
//! when every worker is away at once, the same limit bounds the wait for those still coming back.

use std::time::Duration;

use crate::cluster::{LOST_AFTER, SILENT_AFTER};

/// Fewer silent workers than this are always judged one by one (a two-machine cluster whose
/// both workers stop is two lost workers).
pub const MASS_SILENCE_MIN: usize = 4;

/// How long a mass silence holds a worker's removal at most.
pub const HOLD_LIMIT: Duration = Duration::from_secs(60);

/// What one round does with one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Beating: connected (again, if it was silent).
    Heard,
    /// Silent for `SILENT_AFTER`: disconnected.
    Silent,
    /// Silent for `LOST_AFTER` (or past `HOLD_LIMIT` in a mass silence): removed.
    Lost,
    /// Silent in a mass silence: left as it was.
    Held,
}

/// One round's verdicts, in the order of the silences given, and whether the round was a mass
/// silence.
#[derive(Debug, PartialEq, Eq)]
pub struct Round {
    pub verdicts: Vec<Verdict>,
    pub mass: bool,
}

/// Judges one round from each worker's time since its last beat.
pub fn judge(silences: &[Duration]) -> Round {
    let silent = silences.iter().filter(|s| **s >= SILENT_AFTER).count();
    let mass = silent >= MASS_SILENCE_MIN && silent * 10 > silences.len();
    let verdicts = silences
        .iter()
        .map(|s| match *s {
            s if s < SILENT_AFTER => Verdict::Heard,
            s if mass && s < HOLD_LIMIT => Verdict::Held,
            s if s >= LOST_AFTER => Verdict::Lost,
            _ => Verdict::Silent,
        })
        .collect();
    Round { verdicts, mass }
}

/// After a restart, whether a worker not back yet (one that ran a call, or held a file) is
/// still waited for: for `LOST_AFTER`, and beyond it while others keep coming back (one
/// registered within the last `LOST_AFTER`), up to `HOLD_LIMIT`. A thousand workers take half
/// a minute to come back: the last of them is not given up because the first came quickly.
pub fn still_coming_back(waited: Duration, since_last_back: Option<Duration>) -> bool {
    waited < LOST_AFTER || (waited < HOLD_LIMIT && since_last_back.is_some_and(|d| d < LOST_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::*;

    fn secs(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    #[test]
    fn a_few_silent_workers_are_judged_one_by_one() {
        let r = judge(&secs(&[0, 3, 4, 9, 10]));
        assert_eq!(r.verdicts, vec![Heard, Heard, Silent, Silent, Lost]);
        assert!(!r.mass);
        // Both workers of a two-machine cluster stop: both are lost.
        assert_eq!(judge(&secs(&[12, 12])).verdicts, vec![Lost, Lost]);
    }

    #[test]
    fn many_silent_at_once_hold_everyone_until_the_limit() {
        // 5 of 12 silent: more than a tenth, and at least MASS_SILENCE_MIN.
        let r = judge(&secs(&[0, 0, 0, 0, 0, 0, 0, 4, 11, 11, 30, 60]));
        assert!(r.mass);
        assert_eq!(
            r.verdicts,
            vec![Heard, Heard, Heard, Heard, Heard, Heard, Heard, Held, Held, Held, Held, Lost]
        );
    }

    #[test]
    fn a_tenth_or_fewer_silent_is_not_a_mass_silence() {
        // 4 of 40 silent: exactly a tenth, judged one by one.
        let mut s = secs(&[0; 36]);
        s.extend(secs(&[11, 11, 11, 11]));
        let r = judge(&s);
        assert!(!r.mass);
        assert_eq!(r.verdicts[36..], [Lost, Lost, Lost, Lost]);
        // 3 of 4 silent, under MASS_SILENCE_MIN: judged one by one.
        assert_eq!(
            judge(&secs(&[0, 11, 11, 11])).verdicts,
            vec![Heard, Lost, Lost, Lost]
        );
    }

    #[test]
    fn after_a_restart_a_worker_is_waited_for_while_others_keep_coming_back() {
        let s = Duration::from_secs;
        // Nobody came back: the removal time.
        assert!(still_coming_back(s(9), None));
        assert!(!still_coming_back(s(10), None));
        // Others still arriving: up to the hold limit.
        assert!(still_coming_back(s(30), Some(s(2))));
        assert!(!still_coming_back(s(30), Some(s(10))));
        assert!(!still_coming_back(HOLD_LIMIT, Some(s(0))));
    }
}
