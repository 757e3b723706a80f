//! Task types with lotus's short names, wire names and order numbers.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Deal sectors are scheduled with this priority (lotus's `DealSectorPriority`).
pub const DEAL_SECTOR_PRIORITY: i32 = 1024;

/// One kind of work the scheduler hands to a worker.
///
/// The serde form is lotus's wire name (`seal/v0/precommit/1`), so JSON from lotus tooling reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TaskType {
    #[serde(rename = "seal/v0/addpiece")]
    AddPiece,
    #[serde(rename = "seal/v0/precommit/1")]
    PreCommit1,
    #[serde(rename = "seal/v0/precommit/2")]
    PreCommit2,
    #[serde(rename = "seal/v0/commit/1")]
    Commit1,
    #[serde(rename = "seal/v0/commit/2")]
    Commit2,
    #[serde(rename = "seal/v0/unseal")]
    Unseal,
    #[serde(rename = "seal/v0/unsealread")]
    ReadUnsealed,
    #[serde(rename = "seal/v0/fetch")]
    Fetch,
    #[serde(rename = "seal/v0/finalize")]
    Finalize,
    #[serde(rename = "post/v0/windowproof")]
    WindowPoSt,
    #[serde(rename = "post/v0/winningproof")]
    WinningPoSt,
}

/// Number of task types; `TaskType::index()` is below this.
pub const TASK_TYPE_COUNT: usize = 11;

impl TaskType {
    /// Every task type, in the order of `index()`.
    pub const ALL: [TaskType; TASK_TYPE_COUNT] = [
        TaskType::AddPiece,
        TaskType::PreCommit1,
        TaskType::PreCommit2,
        TaskType::Commit1,
        TaskType::Commit2,
        TaskType::Unseal,
        TaskType::ReadUnsealed,
        TaskType::Fetch,
        TaskType::Finalize,
        TaskType::WindowPoSt,
        TaskType::WinningPoSt,
    ];

    /// The steps every sector goes through once, in order (AP to FIN).
    pub const STEPS: [TaskType; 6] = [
        TaskType::AddPiece,
        TaskType::PreCommit1,
        TaskType::PreCommit2,
        TaskType::Commit1,
        TaskType::Commit2,
        TaskType::Finalize,
    ];

    /// The sealing tasks a worker takes by default (lotus-worker's `--addpiece --precommit1 ...`),
    /// plus the fetch and finalize tasks every sealing worker runs.
    pub const SEALING: [TaskType; 9] = [
        TaskType::AddPiece,
        TaskType::PreCommit1,
        TaskType::PreCommit2,
        TaskType::Commit1,
        TaskType::Commit2,
        TaskType::Unseal,
        TaskType::ReadUnsealed,
        TaskType::Fetch,
        TaskType::Finalize,
    ];

    /// Dense index, for per-task-type arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Lotus's short name (`AP`, `PC1`, ...), used in job listings and env overrides.
    pub const fn short(self) -> &'static str {
        match self {
            TaskType::AddPiece => "AP",
            TaskType::PreCommit1 => "PC1",
            TaskType::PreCommit2 => "PC2",
            TaskType::Commit1 => "C1",
            TaskType::Commit2 => "C2",
            TaskType::Unseal => "UNS",
            TaskType::ReadUnsealed => "RD",
            TaskType::Fetch => "GET",
            TaskType::Finalize => "FIN",
            TaskType::WindowPoSt => "WDP",
            TaskType::WinningPoSt => "WNP",
        }
    }

    /// Lotus's wire name (`seal/v0/addpiece`).
    pub const fn wire_name(self) -> &'static str {
        match self {
            TaskType::AddPiece => "seal/v0/addpiece",
            TaskType::PreCommit1 => "seal/v0/precommit/1",
            TaskType::PreCommit2 => "seal/v0/precommit/2",
            TaskType::Commit1 => "seal/v0/commit/1",
            TaskType::Commit2 => "seal/v0/commit/2",
            TaskType::Unseal => "seal/v0/unseal",
            TaskType::ReadUnsealed => "seal/v0/unsealread",
            TaskType::Fetch => "seal/v0/fetch",
            TaskType::Finalize => "seal/v0/finalize",
            TaskType::WindowPoSt => "post/v0/windowproof",
            TaskType::WinningPoSt => "post/v0/winningproof",
        }
    }

    /// Lotus's order number: lower runs first; negative numbers form the urgent tier.
    pub const fn order(self) -> i32 {
        match self {
            TaskType::AddPiece => 9,
            TaskType::PreCommit1 => 5,
            TaskType::PreCommit2 => 4,
            TaskType::Commit2 => 3,
            TaskType::Commit1 => 2,
            TaskType::Unseal => 1,
            TaskType::ReadUnsealed => -1,
            TaskType::Fetch => -1,
            TaskType::Finalize => -3,
            TaskType::WindowPoSt => -5,
            TaskType::WinningPoSt => -6,
        }
    }

    /// Whether this task is in the urgent tier (negative order), which beats any priority.
    pub const fn is_urgent(self) -> bool {
        self.order() < 0
    }

    /// Proving tasks (WDP, WNP) rather than sealing tasks.
    pub const fn is_post(self) -> bool {
        matches!(self, TaskType::WindowPoSt | TaskType::WinningPoSt)
    }
}

/// Lotus's queue rule for two tasks: `Less` means `a` runs first.
///
/// Exactly one urgent task wins outright; otherwise higher priority first, then lower order
/// number, then lower sector number.
pub fn queue_cmp(a: (TaskType, i32, u64), b: (TaskType, i32, u64)) -> Ordering {
    let (ta, pa, sa) = a;
    let (tb, pb, sb) = b;
    tb.is_urgent()
        .cmp(&ta.is_urgent())
        .then(pb.cmp(&pa))
        .then(ta.order().cmp(&tb.order()))
        .then(sa.cmp(&sb))
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

/// Error for a task name that is neither a short name nor a wire name.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown task type {0:?} (expected one of AP, PC1, PC2, C1, C2, UNS, RD, GET, FIN, WDP, WNP)"
)]
pub struct UnknownTaskType(pub String);

impl FromStr for TaskType {
    type Err = UnknownTaskType;

    /// Accepts the short name in any case (`pc1`) or the wire name (`seal/v0/precommit/1`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskType::ALL
            .into_iter()
            .find(|t| t.short().eq_ignore_ascii_case(s) || t.wire_name() == s)
            .ok_or_else(|| UnknownTaskType(s.to_string()))
    }
}

/// A set of task types as a bit set (what a worker accepts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TaskSet(u16);

impl TaskSet {
    pub const fn empty() -> Self {
        TaskSet(0)
    }

    pub fn all() -> Self {
        TaskType::ALL.into_iter().collect()
    }

    pub fn contains(self, t: TaskType) -> bool {
        self.0 & (1 << t.index()) != 0
    }

    pub fn insert(&mut self, t: TaskType) {
        self.0 |= 1 << t.index();
    }

    pub fn remove(&mut self, t: TaskType) {
        self.0 &= !(1 << t.index());
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = TaskType> {
        TaskType::ALL.into_iter().filter(move |t| self.contains(*t))
    }
}

impl FromIterator<TaskType> for TaskSet {
    fn from_iter<I: IntoIterator<Item = TaskType>>(iter: I) -> Self {
        let mut s = TaskSet::empty();
        for t in iter {
            s.insert(t);
        }
        s
    }
}

impl fmt::Display for TaskSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(TaskType::short).collect();
        f.write_str(&names.join(" "))
    }
}

impl Serialize for TaskSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for TaskSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v: Vec<TaskType> = Vec::deserialize(d)?;
        Ok(v.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_numbers_match_lotus() {
        let want = [
            ("AP", 9),
            ("PC1", 5),
            ("PC2", 4),
            ("C2", 3),
            ("C1", 2),
            ("UNS", 1),
            ("GET", -1),
            ("FIN", -3),
            ("WDP", -5),
            ("WNP", -6),
        ];
        for (short, order) in want {
            let t: TaskType = short.parse().unwrap();
            assert_eq!(t.order(), order, "{short}");
            assert_eq!(t.short(), short);
        }
        assert_eq!(TaskType::ALL.len(), TASK_TYPE_COUNT);
        for (i, t) in TaskType::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
        }
    }

    #[test]
    fn two_tier_rule() {
        use TaskType::*;
        let cases = [
            // An urgent task beats any priority.
            ((Finalize, 0, 9), (PreCommit1, 5000, 1), Ordering::Less),
            // Among urgent tasks priority counts, then order.
            ((WindowPoSt, 0, 1), (WinningPoSt, 0, 1), Ordering::Greater),
            ((Fetch, 10, 1), (WinningPoSt, 0, 1), Ordering::Less),
            // Normal tier: priority, then order, then sector number.
            (
                (AddPiece, DEAL_SECTOR_PRIORITY, 9),
                (Commit1, 0, 1),
                Ordering::Less,
            ),
            ((PreCommit2, 0, 9), (PreCommit1, 0, 1), Ordering::Less),
            ((PreCommit1, 0, 1), (PreCommit1, 0, 2), Ordering::Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(queue_cmp(a, b), want, "{a:?} vs {b:?}");
            assert_eq!(queue_cmp(b, a), want.reverse(), "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn parse_and_wire_names() {
        assert_eq!("pc2".parse::<TaskType>().unwrap(), TaskType::PreCommit2);
        assert_eq!(
            "seal/v0/commit/2".parse::<TaskType>().unwrap(),
            TaskType::Commit2
        );
        let err = "PC3".parse::<TaskType>().unwrap_err().to_string();
        assert!(err.contains("PC3"), "{err}");
        let json = serde_json::to_string(&TaskType::Finalize).unwrap();
        assert_eq!(json, "\"seal/v0/finalize\"");
        let set: TaskSet = [TaskType::AddPiece, TaskType::Commit2]
            .into_iter()
            .collect();
        assert_eq!(set.to_string(), "AP C2");
        let back: TaskSet = serde_json::from_str(&serde_json::to_string(&set).unwrap()).unwrap();
        assert_eq!(back, set);
    }
}
