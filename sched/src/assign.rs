//! One scheduling pass: walk the queue in order and place each request in an open window of the
//! best worker that can take it now.
//!
//! Cost. Lotus asks every selector about every open window for every queued task
//! (O(queue x windows), PR #3166). Here each (task type, sector size, selector key) gets a pool:
//! a min-heap of the workers that could take such a task, keyed by the assigner's metric. A
//! worker leaves a pool for the rest of the pass as soon as it cannot take that kind of task
//! (resources only shrink during a pass), so a pool that is empty costs one hash lookup per
//! queued request. Heap keys are refreshed lazily: a worker's key only grows while a pass
//! assigns to it, so a stale entry is recomputed when it reaches the top.
//!
//! No head-of-line blocking: a request that fits nowhere is skipped and the pass goes on. But
//! no starvation either. Take the first such request of each task type and size, and the
//! workers where it lacks only what tasks behind it in the queue hold (it would fit beside its
//! own type and those ahead of it). Once a task behind it has been placed on one of those and
//! taken some of what it lacked there, it is *overtaken*. Overtaken in [`OVERTAKEN_HOLD`]
//! passes, it holds the least loaded such worker in each pass until it is placed: what it
//! lacks there (its memory, threads or GPU share, whichever is short) counts as taken for the
//! rest of the pass, so that a task behind it only starts there in what is left. Without it, a C2 waiting for the memory of PC1s sees each
//! PC1 that ends replaced by the next, for as long as sectors are pledged (found by
//! `sealer plan --pledge`); with a hold from the first refusal on, a C2 waiting for a GPU that
//! a PC2 holds would also keep PC1s off the machine for nothing.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use resources::{SectorSize, TaskType};

use crate::request::{RequestId, WorkerId};
use crate::scheduler::{Assigner, Scheduler, Stage};
use crate::worker::{Need, NoFit, Worker};

/// Passes in which tasks behind a request took some of what it lacked, before it holds a
/// worker: fewer holds for requests that a worker's next free GPU or a faster machine takes
/// anyway (in `sched/tests/plan.rs`'s mixed-speed cluster, 1 loses a tenth of the sectors a
/// day, 10 nothing), while a request starved for good still gets one.
pub const OVERTAKEN_HOLD: u32 = 10;

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassStats {
    /// Requests looked at.
    pub considered: usize,
    /// Requests placed in windows.
    pub assigned: usize,
    /// Selector `ok` calls made.
    pub selector_calls: usize,
    pub elapsed: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct PoolKey {
    task: TaskType,
    size: SectorSize,
    selector: Option<u64>,
}

/// Heap entry: (metric, task types the worker supports, worker index, worker version).
/// Workers with fewer task types win ties, keeping versatile workers free.
type Slot = Reverse<(u64, u8, u32, u64)>;

struct Pool {
    heap: BinaryHeap<Slot>,
}

/// Lower is better. Utilization counts in steps of 0.1%: closer than that, two workers are
/// equally loaded and the one running fewer tasks wins.
fn metric(assigner: Assigner, w: &Worker) -> u64 {
    let tasks = w.usage.tasks() as u64;
    match assigner {
        Assigner::Utilization => {
            let permille = (w.usage.utilization(&w.spec.resources) * 1000.0).round() as u64;
            (permille << 32) | tasks
        }
        Assigner::Spread => tasks,
    }
}

/// Whether `w` could take a task of this type and size right now, resources only.
fn can_take(w: &Worker, task: TaskType, size: SectorSize) -> bool {
    w.open_window().is_some()
        && w.spec.tasks.contains(task)
        && w.usage.fits(&w.spec.resources, &w.need(task, size))
}

fn slot(assigner: Assigner, idx: usize, w: &Worker) -> Slot {
    Reverse((
        metric(assigner, w),
        w.spec.tasks.len() as u8,
        idx as u32,
        w.version,
    ))
}

/// Requests of one kind (task type and size) looked at in a pass for one that lacks only what
/// tasks behind it hold somewhere (a request no worker takes does not use up its kind's turn).
const WATCHED_PER_KIND: u32 = 4;

/// At most this many workers are looked at for one waiting request in a pass (a thousand
/// full workers would otherwise each be weighed for every kind of task waiting, every pass).
const LACKING_LOOKED_AT: usize = 32;

/// For a request that fits nowhere now: the workers that take its task type, are not held
/// already, and lack only what tasks behind it in the queue hold there (it would fit beside its
/// own type and those ahead of it), with what it lacks on each; those holding its files first,
/// then the least loaded, among the first [`LACKING_LOOKED_AT`] that take it and are short of
/// something (holders first).
/// The selector is asked only of the one it would hold.
fn lacking(
    workers: &[Option<Worker>],
    assigner: Assigner,
    req: &crate::request::TaskRequest,
    preferred: &[WorkerId],
    held: &[(usize, RequestId, Need)],
) -> Vec<(usize, Need)> {
    let (task, size) = (req.task, req.size);
    let near = preferred.iter().map(|w| w.0 as usize);
    let others = (0..workers.len()).filter(|i| !preferred.contains(&WorkerId(*i as u32)));
    let mut found: Vec<((bool, u64), usize, Need)> = near
        .chain(others)
        .filter_map(|i| workers.get(i)?.as_ref().map(|w| (i, w)))
        .filter(|(i, w)| {
            w.open_window().is_some()
                && w.spec.tasks.contains(task)
                && !held.iter().any(|h| h.0 == *i)
        })
        .filter_map(|(i, w)| {
            let need = w.need(task, size);
            match w.usage.why_not(&w.spec.resources, &need) {
                Some(NoFit::MaxConcurrent { .. } | NoFit::PoStRunning) | None => None,
                Some(_) => Some((i, w, need)),
            }
        })
        .take(LACKING_LOOKED_AT)
        .filter(|(_, w, need)| w.usage_ahead(task.order()).fits(&w.spec.resources, need))
        .map(|(i, w, need)| {
            let near = preferred.contains(&WorkerId(i as u32));
            let rank = (!near, metric(assigner, w));
            (rank, i, w.usage.short_of(&w.spec.resources, &need))
        })
        .collect();
    found.sort_unstable_by_key(|f| (f.0, f.1));
    found.into_iter().map(|f| (f.1, f.2)).collect()
}

/// Whether a task needing `need` takes some of `part` (memory, threads or GPU).
fn takes_some(need: &Need, part: &Need) -> bool {
    let memory = |n: &Need| n.max_memory > 0 || n.min_memory > 0;
    (memory(part) && memory(need))
        || (part.threads > 0 && need.threads > 0)
        || (part.gpu_milli > 0 && need.gpu_milli > 0)
}

impl Scheduler {
    /// Runs one scheduling pass. Placed requests wait in windows until `take_actions`.
    pub fn schedule(&mut self) -> PassStats {
        let start = Instant::now();
        let mut stats = PassStats::default();
        self.held.clear();
        if self.queue.is_empty()
            || !self
                .workers
                .iter()
                .flatten()
                .any(|w| w.open_window().is_some())
        {
            return stats;
        }
        let assigner = self.config.assigner;
        let mut pools: HashMap<PoolKey, Pool> = HashMap::new();
        let mut preferred: Vec<WorkerId> = Vec::new();
        let mut refused: Vec<Slot> = Vec::new();
        let mut placed: Vec<(RequestId, usize, usize)> = Vec::new();
        // The first request of each kind that fits nowhere, with the workers where it lacks
        // only what tasks behind it hold (and what); those it holds this pass; those a task
        // behind them took some of that from.
        let mut watched_kinds: HashMap<(TaskType, SectorSize), u32> = HashMap::new();
        let mut watched: Vec<(RequestId, Vec<(usize, Need)>)> = Vec::new();
        let mut held: Vec<(usize, RequestId, Need)> = Vec::new();
        let mut overtaken: Vec<RequestId> = Vec::new();

        let workers = &mut self.workers;
        for (_, id) in self.queue.iter() {
            stats.considered += 1;
            let entry = &self.entries[&id];
            let req = &entry.req;
            let (task, size) = (req.task, req.size);

            // Workers holding the sector's files come first.
            preferred.clear();
            let exclusive = req.selector.preferred(req, &mut preferred);
            let mut best: Option<(u64, usize)> = None;
            for w in &preferred {
                let idx = w.0 as usize;
                let Some(Some(wk)) = workers.get(idx) else {
                    continue;
                };
                if !can_take(wk, task, size) {
                    continue;
                }
                stats.selector_calls += 1;
                if !req.selector.ok(req, *w, &wk.spec) {
                    continue;
                }
                let m = metric(assigner, wk);
                if best.is_none_or(|(bm, bi)| (m, idx) < (bm, bi)) {
                    best = Some((m, idx));
                }
            }

            let mut from_pool = None;
            if best.is_none() && !exclusive {
                let key = PoolKey {
                    task,
                    size,
                    selector: req.selector.cache_key(req),
                };
                let pool = pools.entry(key).or_insert_with(|| Pool {
                    heap: workers
                        .iter()
                        .enumerate()
                        .filter_map(|(i, w)| w.as_ref().map(|w| (i, w)))
                        .filter(|(_, w)| can_take(w, task, size))
                        .map(|(i, w)| slot(assigner, i, w))
                        .collect(),
                });
                while let Some(Reverse((m, n, idx, version))) = pool.heap.pop() {
                    let wk = workers[idx as usize]
                        .as_ref()
                        .expect("pooled worker exists");
                    if version != wk.version {
                        if can_take(wk, task, size) {
                            pool.heap.push(slot(assigner, idx as usize, wk));
                        }
                        continue;
                    }
                    stats.selector_calls += 1;
                    if req.selector.ok(req, WorkerId(idx), &wk.spec) {
                        from_pool = Some((key, idx as usize));
                        break;
                    }
                    if key.selector.is_none() {
                        // The refusal may be about this request only: keep the worker.
                        refused.push(Reverse((m, n, idx, version)));
                    }
                }
                pool.heap.extend(refused.drain(..));
                if let Some((_, idx)) = from_pool {
                    best = Some((0, idx));
                }
            }

            let Some((_, idx)) = best else {
                let tries = watched_kinds.entry((task, size)).or_insert(0);
                if *tries < WATCHED_PER_KIND {
                    let lacks = lacking(workers, assigner, req, &preferred, &held);
                    // One that no task behind it keeps out leaves the kind to the next one.
                    *tries = if lacks.is_empty() {
                        *tries + 1
                    } else {
                        WATCHED_PER_KIND
                    };
                    let hold = (entry.overtaken >= OVERTAKEN_HOLD).then(|| {
                        lacks.iter().find(|(i, _)| {
                            let w = workers[*i].as_ref().expect("worker exists");
                            req.selector.ok(req, WorkerId(*i as u32), &w.spec)
                        })
                    });
                    if let Some(&(idx, part)) = hold.flatten() {
                        let wk = workers[idx].as_mut().expect("held worker exists");
                        wk.usage.add(&part);
                        wk.version += 1;
                        held.push((idx, id, part));
                    }
                    watched.push((id, lacks));
                }
                continue;
            };
            let wk = workers[idx].as_mut().expect("chosen worker exists");
            let window = wk.open_window().expect("chosen worker has an open window");
            let need = wk.need(task, size);
            // A request ahead of this one that lacked some of what this one takes there.
            for (ahead, lacks) in &watched {
                if let Some((_, part)) = lacks.iter().find(|(i, _)| *i == idx) {
                    if takes_some(&need, part) {
                        overtaken.push(*ahead);
                    }
                }
            }
            wk.usage.add(&need);
            wk.version += 1;
            wk.windows[window].push(id);
            wk.filling = Some(window);
            if let Some((key, idx)) = from_pool {
                if can_take(wk, task, size) {
                    pools
                        .get_mut(&key)
                        .expect("pool")
                        .heap
                        .push(slot(assigner, idx, wk));
                }
            }
            placed.push((id, idx, window));
            tracing::trace!(request = %id, %task, subject = %req.subject, worker = idx, "assigned");
        }

        for w in self.workers.iter_mut().flatten() {
            w.filling = None;
        }
        for (idx, id, part) in held {
            let w = self.workers[idx].as_mut().expect("held worker");
            w.usage.remove(&part);
            w.version += 1;
            self.held.insert(WorkerId(idx as u32), (id, part));
        }
        overtaken.sort_unstable();
        overtaken.dedup();
        for id in overtaken {
            if let Some(e) = self.entries.get_mut(&id) {
                e.overtaken += 1;
            }
        }
        for &(id, idx, window) in &placed {
            let e = self.entries.get_mut(&id).expect("entry");
            e.overtaken = 0;
            self.queue.remove(&e.key);
            let w = self.workers[idx].as_ref().expect("worker");
            e.stage = Stage::Assigned { window };
            e.placed = Some((WorkerId(idx as u32), w.need(e.req.task, e.req.size)));
            e.attempt += 1;
            e.since = Instant::now();
        }
        stats.assigned = placed.len();
        stats.elapsed = start.elapsed();
        if stats.assigned > 0 {
            tracing::debug!(
                assigned = stats.assigned,
                considered = stats.considered,
                queued = self.queue.len(),
                elapsed_us = stats.elapsed.as_micros() as u64,
                "scheduling pass"
            );
        }
        stats
    }
}
