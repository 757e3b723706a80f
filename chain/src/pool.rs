//! The miner's own messages waiting in the node's pool, indexed by the sectors they name: what
//! [`crate::Chain::pending`] answers. Every sector about to be pre-committed or prove-committed
//! asks (a message sent before a restart is followed, not sent twice); a large miner's 10,000
//! sectors asking `MpoolPending` each, and decoding every batch in it each time, cost the node and
//! the sealer more than the sealing did. One snapshot serves while the node's head is the
//! tipset it was taken at (messages leave the pool only into a new tipset, and come back only
//! with a reorg, which changes the head too), with what this sealer sends meanwhile added to
//! it; a send that failed may have reached the pool all the same, and drops the snapshot.

use std::collections::HashMap;

use lotus::miner::{
    Method, PreCommitSectorBatchParams2, ProveCommitSectors3Params, TerminateSectorsParams,
};
use lotus::{Address, BitField, Call, SignedMessage};

use crate::MinerAddresses;

/// The pool's messages from the miner's addresses to the miner, by what they do to which
/// sector.
#[derive(Debug, Default)]
pub struct PoolIndex {
    precommits: HashMap<u64, String>,
    commits: HashMap<u64, String>,
    /// Each TerminateSectors message and the sectors of each of its terminations.
    terminations: Vec<(String, Vec<BitField>)>,
}

impl PoolIndex {
    /// Indexes `pool`: only messages from one of `ours` to `miner` count (a message naming a
    /// sector twice is found by the first one).
    pub fn new(
        pool: impl IntoIterator<Item = SignedMessage>,
        ours: &MinerAddresses,
        miner: &Address,
    ) -> PoolIndex {
        let mut idx = PoolIndex::default();
        for m in pool {
            if ours.find(&m.message.from).is_some() && m.message.to == *miner {
                idx.add(&m);
            }
        }
        idx
    }

    /// Indexes one more message (one of the miner's, to the miner).
    pub fn add(&mut self, m: &SignedMessage) {
        let cid = m.cid().to_string();
        let num = m.message.method_num;
        let call = Call {
            method: num,
            params: m.message.params.clone(),
        };
        if num == Method::PreCommitSectorBatch2.number() {
            let p = call.decode::<PreCommitSectorBatchParams2>();
            for s in p.map_or(vec![], |p| p.sectors) {
                self.precommits
                    .entry(s.sector_number)
                    .or_insert_with(|| cid.clone());
            }
        } else if num == Method::ProveCommitSectors3.number() {
            let p = call.decode::<ProveCommitSectors3Params>();
            for a in p.map_or(vec![], |p| p.sector_activations) {
                self.commits
                    .entry(a.sector_number)
                    .or_insert_with(|| cid.clone());
            }
        } else if num == Method::TerminateSectors.number() {
            if let Some(p) = call.decode::<TerminateSectorsParams>() {
                let sets = p.terminations.into_iter().map(|d| d.sectors).collect();
                self.terminations.push((cid, sets));
            }
        }
    }

    /// The CID of a message in the pool calling `method` for `sector`.
    pub fn find(&self, method: Method, sector: u64) -> Option<String> {
        match method {
            Method::PreCommitSectorBatch2 => self.precommits.get(&sector).cloned(),
            Method::ProveCommitSectors3 => self.commits.get(&sector).cloned(),
            Method::TerminateSectors => self
                .terminations
                .iter()
                .find(|(_, sets)| sets.iter().any(|s| s.get(sector)))
                .map(|(cid, _)| cid.clone()),
            _ => None,
        }
    }
}

/// The last snapshot and the head (its tipset's block CIDs) it was taken at.
#[derive(Default)]
pub(crate) struct PoolCache {
    taken: Option<(Vec<String>, PoolIndex)>,
}

impl PoolCache {
    /// The snapshot, if it was taken at the tipset `head`.
    pub(crate) fn fresh(&self, head: &[String]) -> Option<&PoolIndex> {
        match &self.taken {
            Some((at, idx)) if at.as_slice() == head => Some(idx),
            _ => None,
        }
    }

    pub(crate) fn keep(&mut self, head: Vec<String>, idx: PoolIndex) {
        self.taken = Some((head, idx));
    }

    /// Drops the snapshot: the next question reads the pool again.
    pub(crate) fn forget(&mut self) {
        self.taken = None;
    }

    /// A message this sealer just sent: in the pool now. It is what its sectors follow, even
    /// where the snapshot names another message for them.
    pub(crate) fn sent(&mut self, m: &SignedMessage) {
        if let Some((_, idx)) = &mut self.taken {
            let mut one = PoolIndex::default();
            one.add(m);
            idx.precommits.extend(one.precommits);
            idx.commits.extend(one.commits);
            // Found first.
            for t in one.terminations {
                idx.terminations.insert(0, t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Account;
    use lotus::miner::{precommit_cc, prove_commit_cc, sectors_bitfield, SectorsDeclaration};
    use lotus::{Message, RegisteredSealProof, Signature, TokenAmount};

    fn account(id: u64, key: u64) -> Account {
        Account {
            id: Address::new_id(id),
            key: Address::new_id(key),
        }
    }

    fn msg(from: Address, to: Address, method: Method, params: Call, nonce: u64) -> SignedMessage {
        SignedMessage {
            message: Message {
                version: 0,
                from,
                to,
                sequence: nonce,
                value: TokenAmount::default(),
                method_num: method.number(),
                params: params.params,
                gas_limit: 1,
                gas_fee_cap: TokenAmount::default(),
                gas_premium: TokenAmount::default(),
            },
            signature: Signature::new_bls(vec![0; 96]),
        }
    }

    fn pc_batch(numbers: &[u64]) -> Call {
        let pc = |n: u64| {
            precommit_cc(
                RegisteredSealProof::StackedDRG2KiBV1P1,
                n,
                &[1; 32],
                10,
                1000,
            )
        };
        Call::of(&PreCommitSectorBatchParams2 {
            sectors: numbers.iter().map(|n| pc(*n)).collect(),
        })
        .unwrap()
    }

    #[test]
    fn the_pool_is_indexed_by_what_each_of_our_messages_does_to_which_sector() {
        let miner = Address::new_id(1000);
        let ours = MinerAddresses {
            owner: account(100, 200),
            worker: account(101, 201),
            control: vec![account(102, 202)],
        };
        let batch = pc_batch(&[1, 2]);
        let commit = Call::of(&prove_commit_cc(&[(3, vec![7; 4])])).unwrap();
        let terminate = Call::of(&TerminateSectorsParams {
            terminations: vec![SectorsDeclaration {
                deadline: 0,
                partition: 0,
                sectors: sectors_bitfield([4, 5]),
            }],
        })
        .unwrap();
        // From the worker's key, a control's ID; then a stranger's and one to another miner.
        let pool = vec![
            msg(
                Address::new_id(201),
                miner,
                Method::PreCommitSectorBatch2,
                batch.clone(),
                0,
            ),
            msg(
                Address::new_id(102),
                miner,
                Method::ProveCommitSectors3,
                commit,
                1,
            ),
            msg(
                Address::new_id(201),
                miner,
                Method::TerminateSectors,
                terminate,
                2,
            ),
            msg(
                Address::new_id(999),
                miner,
                Method::PreCommitSectorBatch2,
                pc_batch(&[9]),
                0,
            ),
            msg(
                Address::new_id(201),
                Address::new_id(7),
                Method::PreCommitSectorBatch2,
                pc_batch(&[8]),
                3,
            ),
        ];
        let cids: Vec<String> = pool.iter().map(|m| m.cid().to_string()).collect();
        let idx = PoolIndex::new(pool, &ours, &miner);

        let pre = Method::PreCommitSectorBatch2;
        assert_eq!(idx.find(pre, 1).as_ref(), Some(&cids[0]));
        assert_eq!(idx.find(pre, 2).as_ref(), Some(&cids[0]));
        assert_eq!(
            idx.find(Method::ProveCommitSectors3, 3).as_ref(),
            Some(&cids[1])
        );
        assert_eq!(
            idx.find(Method::TerminateSectors, 5).as_ref(),
            Some(&cids[2])
        );
        // Each message answers only for its own method and sectors.
        assert_eq!(idx.find(Method::ProveCommitSectors3, 1), None);
        assert_eq!(idx.find(pre, 3), None);
        assert_eq!(idx.find(Method::TerminateSectors, 6), None);
        assert_eq!((idx.find(pre, 9), idx.find(pre, 8)), (None, None));
    }

    #[test]
    fn a_snapshot_serves_its_tipset_learns_what_is_sent_and_is_dropped_after_a_failed_send() {
        let mut c = PoolCache::default();
        let (t5, t5b) = (vec!["bafy5".to_string()], vec!["bafy5b".to_string()]);
        assert!(c.fresh(&t5).is_none());
        let miner = Address::new_id(1000);
        let from = Address::new_id(201);
        let old = msg(
            from,
            miner,
            Method::PreCommitSectorBatch2,
            pc_batch(&[4]),
            0,
        );
        let mut idx = PoolIndex::default();
        idx.add(&old);
        c.keep(t5.clone(), idx);
        assert!(c.fresh(&t5).is_some());
        // Another tipset (the next epoch, or a reorg at the same height): read again.
        assert!(c.fresh(&t5b).is_none());
        // What is sent is found in it, before what the snapshot had for the same sector.
        let new = msg(
            from,
            miner,
            Method::PreCommitSectorBatch2,
            pc_batch(&[4, 5]),
            1,
        );
        c.sent(&new);
        let idx = c.fresh(&t5).unwrap();
        for n in [4, 5] {
            let found = idx.find(Method::PreCommitSectorBatch2, n);
            assert_eq!(found, Some(new.cid().to_string()));
        }
        c.forget();
        assert!(c.fresh(&t5).is_none());
    }
}
