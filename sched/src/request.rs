//! Requests, their identifiers, and the global queue in lotus's order with O(log n) insert/remove.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use resources::{SectorRef, SectorSize, Subject, TaskType};
use serde::{Deserialize, Serialize};

use crate::selector::Selector;

/// Identifies one request for the whole of its life (it keeps its ID when requeued).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Identifies a worker known to the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkerId(pub u32);

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}", self.0)
    }
}

/// One placement of a request on a worker. Reports about a task carry it, so that a report
/// about an earlier placement (the task was requeued since) is recognised and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskHandle {
    pub id: RequestId,
    pub attempt: u32,
}

/// A piece of work to schedule.
#[derive(Clone)]
pub struct TaskRequest {
    /// The sector, or the PoSt deadline or epoch, the task is about.
    pub subject: Subject,
    /// The size of the sectors it works on: what it needs comes from the resource table by it.
    pub size: SectorSize,
    pub task: TaskType,
    /// Higher runs first within a tier; deal sectors use `DEAL_SECTOR_PRIORITY`.
    pub priority: i32,
    /// Which workers may take it, and which are preferred.
    pub selector: Arc<dyn Selector>,
}

impl TaskRequest {
    /// A sealing step of `sector`.
    pub fn for_sector(
        sector: SectorRef,
        task: TaskType,
        priority: i32,
        selector: Arc<dyn Selector>,
    ) -> TaskRequest {
        TaskRequest {
            subject: Subject::Sector(sector),
            size: sector.size(),
            task,
            priority,
            selector,
        }
    }
}

impl fmt::Debug for TaskRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRequest")
            .field("subject", &self.subject)
            .field("task", &self.task)
            .field("priority", &self.priority)
            .finish()
    }
}

/// Position in the queue: urgent tier, priority (high first), order number, sector number (a
/// PoSt's deadline or epoch), then
/// submission order. Sorting these keys is lotus's queue rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct QueueKey {
    normal_tier: bool,
    priority: Reverse<i32>,
    order: i32,
    number: u64,
    seq: u64,
}

impl QueueKey {
    pub(crate) fn new(req: &TaskRequest, seq: u64) -> Self {
        QueueKey {
            normal_tier: !req.task.is_urgent(),
            priority: Reverse(req.priority),
            order: req.task.order(),
            number: req.subject.number(),
            seq,
        }
    }
}

/// The global queue of requests waiting for a worker.
#[derive(Default)]
pub(crate) struct RequestQueue {
    map: BTreeMap<QueueKey, RequestId>,
}

impl RequestQueue {
    pub(crate) fn insert(&mut self, key: QueueKey, id: RequestId) {
        self.map.insert(key, id);
    }

    pub(crate) fn remove(&mut self, key: &QueueKey) -> bool {
        self.map.remove(key).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Requests in the order they are to be served.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&QueueKey, RequestId)> {
        self.map.iter().map(|(k, v)| (k, *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::TaskSelector;
    use resources::{queue_cmp, SealProof, DEAL_SECTOR_PRIORITY};

    fn req(task: TaskType, priority: i32, number: u64) -> TaskRequest {
        let sector = SectorRef::new(1000, number, SealProof::StackedDrg2KiBV1_1);
        TaskRequest::for_sector(sector, task, priority, Arc::new(TaskSelector))
    }

    #[test]
    fn keys_sort_like_the_queue_rule() {
        use TaskType::*;
        let reqs = [
            req(AddPiece, 0, 1),
            req(PreCommit1, DEAL_SECTOR_PRIORITY, 9),
            req(Finalize, 0, 3),
            req(WinningPoSt, 0, 0),
            req(PreCommit2, 0, 2),
            req(PreCommit1, 0, 1),
            req(PreCommit1, 0, 1),
            req(WindowPoSt, 0, 0),
        ];
        for (i, a) in reqs.iter().enumerate() {
            for (j, b) in reqs.iter().enumerate() {
                let by_key = QueueKey::new(a, i as u64).cmp(&QueueKey::new(b, j as u64));
                let by_rule = queue_cmp(
                    (a.task, a.priority, a.subject.number()),
                    (b.task, b.priority, b.subject.number()),
                )
                .then((i).cmp(&j));
                assert_eq!(by_key, by_rule, "{a:?} vs {b:?}");
            }
        }
        let mut q = RequestQueue::default();
        for (i, r) in reqs.iter().enumerate() {
            q.insert(QueueKey::new(r, i as u64), RequestId(i as u64));
        }
        let order: Vec<u64> = q.iter().map(|(_, id)| id.0).collect();
        assert_eq!(order, vec![3, 7, 2, 1, 4, 5, 6, 0]);
        assert!(q.remove(&QueueKey::new(&reqs[2], 2)));
        assert!(!q.remove(&QueueKey::new(&reqs[2], 2)));
        assert_eq!(q.len(), 7);
    }
}
