//! Deadline time math, as the miner actor defines it: a proving period of [`DEADLINES`]
//! deadlines of `window` epochs each (lotus's `dline.Info`). The devnet's periods start at
//! epoch 0; a Lotus node gives each miner's own period start.

use serde::{Deserialize, Serialize};

/// Deadlines per proving period (mainnet's WPoStPeriodDeadlines).
pub const DEADLINES: u64 = 48;

/// Where a deadline stands in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineInfo {
    /// The epoch the current proving period began.
    pub period_start: i64,
    pub index: u64,
    /// First epoch a proof for it is accepted.
    pub open: i64,
    /// First epoch it no longer is.
    pub close: i64,
    /// The epoch whose randomness challenges its proofs (known before it opens).
    pub challenge: i64,
}

/// The deadline open at `epoch`, with deadlines of `window` epochs.
pub fn deadline_at(epoch: i64, window: i64) -> DeadlineInfo {
    let window = window.max(1);
    let period = window * DEADLINES as i64;
    let period_start = epoch - epoch.rem_euclid(period);
    let index = ((epoch - period_start) / window) as u64;
    info(period_start, index, window)
}

/// Deadline `index` of the period starting at `period_start`.
pub fn info(period_start: i64, index: u64, window: i64) -> DeadlineInfo {
    let open = period_start + index as i64 * window;
    DeadlineInfo {
        period_start,
        index,
        open,
        close: open + window,
        challenge: (open - 1).max(0),
    }
}

/// The next opening of deadline `index` at or after `epoch`.
pub fn next_opening(index: u64, epoch: i64, window: i64) -> DeadlineInfo {
    let cur = deadline_at(epoch, window);
    let d = info(cur.period_start, index, window);
    if d.close > epoch {
        d
    } else {
        info(cur.period_start + window * DEADLINES as i64, index, window)
    }
}

/// The next opening of deadline `index` at or after `epoch`, for a miner whose current deadline
/// is `cur` (its proving period starts where the chain says, not at 0).
pub fn next_opening_from(cur: &DeadlineInfo, index: u64, epoch: i64, window: i64) -> DeadlineInfo {
    let window = window.max(1);
    let period = window * DEADLINES as i64;
    let mut start = cur.period_start;
    while start + period <= epoch {
        start += period;
    }
    let d = info(start, index, window);
    if d.close > epoch {
        d
    } else {
        info(start + period, index, window)
    }
}

/// Whether deadline `index` is busy at `epoch` (open then, or opening next), when the miner
/// actor refuses changes to its sectors (terminations), for a miner whose deadline open now
/// is `cur` (`epoch` at or after it opened): the epoch from which it takes them again.
pub fn busy_until(index: u64, cur: &DeadlineInfo, window: i64, epoch: i64) -> Option<i64> {
    let window = window.max(1);
    let k = (epoch - cur.open).max(0) / window;
    let (open, close) = ((cur.index + k as u64) % DEADLINES, cur.close + k * window);
    match index {
        i if i == open => Some(close),
        i if i == (open + 1) % DEADLINES => Some(close + window),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_math() {
        let d = deadline_at(0, 10);
        assert_eq!(
            (d.period_start, d.index, d.open, d.close, d.challenge),
            (0, 0, 0, 10, 0)
        );
        let d = deadline_at(479, 10);
        assert_eq!((d.index, d.open, d.close, d.challenge), (47, 470, 480, 469));
        let d = deadline_at(480, 10);
        assert_eq!((d.period_start, d.index), (480, 0));
        let n = next_opening(3, 45, 10);
        assert_eq!((n.open, n.close), (480 + 30, 480 + 40));
        let n = next_opening(4, 45, 10);
        assert_eq!(n.open, 40);
        // A miner whose period starts at epoch 7: its deadline 4 opens at 47, after 45.
        let cur = info(7, 3, 10);
        let n = next_opening_from(&cur, 4, 45, 10);
        assert_eq!((n.open, n.close), (47, 57));
        let n = next_opening_from(&cur, 3, 45, 10);
        assert_eq!(n.open, 37);
        assert_eq!(next_opening_from(&cur, 2, 45, 10).open, 7 + 480 + 20);
        // Where periods start at 0, the same as next_opening.
        let cur = deadline_at(45, 10);
        assert_eq!(next_opening_from(&cur, 4, 45, 10), next_opening(4, 45, 10));
    }

    #[test]
    fn a_deadline_is_busy_while_open_or_next() {
        // Deadline 3 of a period starting at 7 is open at 37..47.
        let cur = info(7, 3, 10);
        assert_eq!(busy_until(3, &cur, 10, 40), Some(47));
        assert_eq!(busy_until(4, &cur, 10, 40), Some(57));
        assert_eq!(busy_until(5, &cur, 10, 40), None);
        // At 48 deadline 4 is open: 3 is free, 5 is next.
        assert_eq!(busy_until(3, &cur, 10, 48), None);
        assert_eq!(busy_until(5, &cur, 10, 48), Some(67));
        // The last deadline's next is the first.
        assert_eq!(busy_until(0, &info(0, 47, 10), 10, 475), Some(490));
    }
}
