//! Batching in-process against the devnet node: many sectors in few messages, a batch sent
//! early for a member whose ticket is about to expire, an operator's flush, a batch waiting for
//! funds, and lotus's base-fee threshold sending sectors alone.

use super::*;
use crate::batch::{BatchConfig, BatchKind, Batching};
use lotus::miner::{Method, PreCommitSectorBatchParams2, ProveCommitSectors3Params};

/// Both kinds on, batches of up to `max`, sent after `wait` or `slack` before a deadline,
/// whatever the base fee.
fn batching(max: usize, wait: Duration, slack: Duration) -> crate::funds::Policy {
    let on = |c: BatchConfig| BatchConfig {
        enabled: true,
        max,
        wait,
        slack,
        above_base_fee: Default::default(),
        ..c
    };
    let d = Batching::default();
    crate::funds::Policy {
        batching: Batching {
            precommit: on(d.precommit),
            commit: on(d.commit),
        },
        ..Default::default()
    }
}

/// The sectors each of the sealer's messages of `method` on chain carried.
fn batches_of(db: &Db, method: Method) -> Vec<Vec<u64>> {
    chain::devnet::stored_messages(db)
        .unwrap()
        .iter()
        .filter(|m| m.message.method_num == method.number())
        .map(|m| {
            let call = Call {
                method: m.message.method_num,
                params: m.message.params.clone(),
            };
            // Members in number order: they are in the order they joined the queue, which
            // concurrent sectors reach in either order.
            let mut members: Vec<u64> = match method {
                Method::PreCommitSectorBatch2 => call
                    .decode::<PreCommitSectorBatchParams2>()
                    .unwrap()
                    .sectors
                    .iter()
                    .map(|s| s.sector_number)
                    .collect(),
                _ => call
                    .decode::<ProveCommitSectors3Params>()
                    .unwrap()
                    .sector_activations
                    .iter()
                    .map(|a| a.sector_number)
                    .collect(),
            };
            members.sort_unstable();
            members
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_sectors_go_in_one_or_two_messages_of_each_kind() {
    let opts = Opts {
        policy: batching(8, Duration::from_secs(3), Duration::ZERO),
        ..Default::default()
    };
    let life = cluster_with(opts).await;
    let ns: Vec<u64> = (0..8).map(|_| life.pledge()).collect();
    for n in &ns {
        let s = life.wait_state(*n, SectorState::Proving).await;
        assert_eq!(s.retries, 0, "{:?}", s.log);
        assert_eq!(logged(&s, "SectorBatched").len(), 2, "{:?}", s.log);
        let states: Vec<SectorState> = s.log.iter().map(|l| l.state).collect();
        assert!(states.contains(&SectorState::SubmitPreCommitBatch));
        assert!(states.contains(&SectorState::SubmitCommitAggregate));
    }
    for method in [Method::PreCommitSectorBatch2, Method::ProveCommitSectors3] {
        let batches = batches_of(&life.db, method);
        assert!((1..=2).contains(&batches.len()), "{method:?}: {batches:?}");
        let mut all: Vec<u64> = batches.concat();
        all.sort();
        assert_eq!(all, ns, "{method:?}: each sector once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_goes_early_when_a_members_ticket_is_about_to_expire() {
    // Tickets may be 100 epochs old (50 ms epochs: 5 s); the batch would wait an hour, but is
    // sent 2 s (40 epochs) before the ticket expires.
    let opts = Opts {
        max_ticket_age: 100,
        block_delay: Duration::from_millis(50),
        policy: batching(8, Duration::from_secs(3600), Duration::from_secs(2)),
        ..Default::default()
    };
    let life = cluster_with(opts).await;
    let n = life.pledge();
    let s = life.wait_state(n, SectorState::SubmitPreCommitBatch).await;
    let (ticket, _) = s.ticket.unwrap();
    let queued = until("the sector in the queue", || {
        Some(life.pipeline.batch_pending(BatchKind::PreCommit)).filter(|q| !q.is_empty())
    })
    .await;
    assert_eq!((queued[0].sector, queued[0].deadline), (n, ticket + 100));
    let s = life.wait_state(n, SectorState::SubmitCommitAggregate).await;
    let landed = s.precommit_epoch.unwrap();
    assert!(
        landed > ticket + 55 && landed <= ticket + 100,
        "ticket epoch {ticket}, pre-commit landed at {landed}"
    );
    assert!(logged(&s, "SectorTicketExpired").is_empty(), "{:?}", s.log);
    assert_eq!(s.retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_flush_sends_the_queue_now() {
    let mut policy = batching(8, Duration::from_secs(3600), Duration::ZERO);
    policy.batching.commit.enabled = false;
    let life = cluster_with(Opts {
        policy,
        ..Default::default()
    })
    .await;
    let (a, b) = (life.pledge(), life.pledge());
    for n in [a, b] {
        life.wait_state(n, SectorState::SubmitPreCommitBatch).await;
    }
    let queued = until("both sectors in the queue", || {
        let q: Vec<u64> = life
            .pipeline
            .batch_pending(BatchKind::PreCommit)
            .iter()
            .map(|q| q.sector)
            .collect();
        (q.len() == 2).then_some(q)
    })
    .await;
    // In the order they joined, which the two reach in either order.
    let sorted = |mut v: Vec<u64>| {
        v.sort_unstable();
        v
    };
    assert_eq!(sorted(queued), vec![a, b]);
    let sent = life.pipeline.batch_flush(BatchKind::PreCommit).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sorted(sent[0].sectors.clone()), vec![a, b]);
    assert!(
        sent[0].reason.contains("flushed by the operator"),
        "{sent:?}"
    );
    let id = sent[0].message.clone().expect("sent");
    for n in [a, b] {
        let s = life.wait_state(n, SectorState::Proving).await;
        assert_eq!(s.precommit_msg.as_deref(), Some(id.as_str()));
    }
    // Commits went alone (AggregateCommits off); the queue is empty now.
    assert_eq!(batches_of(&life.db, Method::ProveCommitSectors3).len(), 2);
    assert!(life
        .pipeline
        .batch_flush(BatchKind::PreCommit)
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_short_of_funds_waits_without_spending_retries_and_goes_once_paid() {
    let fil = |s: &str| lotus::json::parse_fil(s).unwrap();
    let mut policy = batching(2, Duration::from_secs(3600), Duration::ZERO);
    policy.batching.precommit.fee_per_sector = fil("0.02");
    let life = cluster_with(Opts {
        worker_funds: Default::default(),
        policy,
        ..Default::default()
    })
    .await;
    let (a, b) = (life.pledge(), life.pledge());
    for n in [a, b] {
        let why = until("the batch to wait for funds", || {
            life.sectors.get(n).unwrap().waiting
        })
        .await;
        for part in [
            "the pre-commit batch of 2 sectors (1, 2) needs 0.08 FIL: 0.04 FIL of its 0.04 FIL \
             deposit",
            "0.04 FIL of gas (MaxPreCommitBatchGasFee); no sender has it: the worker t0100",
        ] {
            assert!(why.contains(part), "{part:?} not in {why:?}");
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    send_funds(&life, fil("1")).await;
    for n in [a, b] {
        let s = life.wait_state(n, SectorState::Proving).await;
        assert_eq!(s.retries, 0);
        assert!(logged(&s, "SectorFailed").is_empty(), "{:?}", s.log);
        assert_eq!(logged(&s, "SectorWaiting").len(), 1, "{:?}", s.log);
    }
    assert_eq!(
        batches_of(&life.db, Method::PreCommitSectorBatch2),
        vec![vec![a, b]]
    );
    assert_eq!(
        batches_of(&life.db, Method::ProveCommitSectors3),
        vec![vec![a, b]]
    );
    // Both deposits were released and both pledges locked.
    let node = FullNode::connect(&life._node.info, 1000).await.unwrap();
    let f = node.funds().await.unwrap();
    assert_eq!(
        (f.precommit_deposits, f.initial_pledge),
        (Default::default(), fil("0.1"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_lotuss_base_fee_threshold_sectors_are_sent_alone() {
    // The devnet's base fee is 100 attoFIL, under lotus's default 0.32 nanoFIL thresholds.
    let mut policy = batching(8, Duration::from_secs(3600), Duration::ZERO);
    for b in [&mut policy.batching.precommit, &mut policy.batching.commit] {
        b.above_base_fee = lotus::json::parse_fil("0.00000000032 FIL").unwrap();
    }
    let life = cluster_with(Opts {
        policy,
        ..Default::default()
    })
    .await;
    let (a, b) = (life.pledge(), life.pledge());
    for n in [a, b] {
        let s = life.wait_state(n, SectorState::Proving).await;
        assert!(logged(&s, "SectorBatched").is_empty(), "{:?}", s.log);
    }
    assert_eq!(batches_of(&life.db, Method::PreCommitSectorBatch2).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_cannot_be_sent_sends_each_sector_alone_without_a_retry_spent() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let paths = [("seal", true, None), ("store", false, None)];
    let mut policy = batching(2, Duration::from_secs(3600), Duration::ZERO);
    policy.batching.commit.enabled = false;
    let opts = Opts {
        policy,
        ..Default::default()
    };
    let wrap = |inner| -> Arc<dyn Chain> {
        Arc::new(LostAnswers {
            inner,
            lose: 0.into(),
            forge: Default::default(),
            refuse_batches: true,
        })
    };
    let life = Life::start_full(dir.path(), db, &paths, wrap, opts).await;
    life.add("local", Arc::new(life.local_worker()), true);
    let (a, b) = (life.pledge(), life.pledge());
    for n in [a, b] {
        let s = life.wait_state(n, SectorState::Proving).await;
        let alone = logged(&s, "SectorUnbatched");
        assert_eq!(alone.len(), 1, "{:?}", s.log);
        assert!(
            alone[0].contains("its batch of 2 sectors could not be sent")
                && alone[0].contains("the pool refused the batch"),
            "{alone:?}"
        );
        assert!(logged(&s, "SectorFailed").is_empty(), "{:?}", s.log);
        assert_eq!(s.retries, 0);
    }
    let mut sent = batches_of(&life.db, Method::PreCommitSectorBatch2);
    sent.sort();
    assert_eq!(sent, vec![vec![a], vec![b]]);
}
