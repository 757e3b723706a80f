//! The devnet through its FullNode API, as the sealer reaches it: a node served on a loopback
//! port, the sealer's Lotus client against it, epochs mined by hand.
use super::*;
use crate::{Call, Chain, FullNode, Partitions, Receipt, TokenAmount};
use lotus::miner::{
    DeclareFaultsRecoveredParams, PoStPartition, SectorsDeclaration, SubmitWindowedPoStParams,
};
use proofs::{MockEngine, SealedCommitments};
use resources::SealProof;

const ACTOR: u64 = 1000;
/// The genesis miner's worker (and owner).
const WORKER: Address = Address::new_id(100);

/// Epochs mined by hand; the worker holds 10 FIL at genesis.
fn config(challenge_delay: i64, window: i64, other_power: u64) -> DevnetConfig {
    DevnetConfig {
        block_delay: Duration::from_secs(3600),
        challenge_delay,
        window,
        other_power,
        worker_funds: funds::fil(10),
        max_ticket_age: crate::MAX_PRECOMMIT_RANDOMNESS_LOOKBACK,
        ticket_lookback: 0,
        max_prove_commit_duration: crate::MAX_PROVE_COMMIT_DURATION,
    }
}

struct Net {
    devnet: Arc<Devnet>,
    client: FullNode,
    engine: Arc<dyn Engine>,
    served: node::Served,
    dir: tempfile::TempDir,
}

impl Net {
    async fn start(challenge_delay: i64, window: i64, other_power: u64) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db")).unwrap();
        Net::open(dir, db, challenge_delay, window, other_power).await
    }

    /// A miner with nothing in its actor, its worker holding `worker_funds`.
    async fn unfunded(worker_funds: TokenAmount) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db")).unwrap();
        let cfg = DevnetConfig {
            worker_funds,
            ..config(1, 10, 0)
        };
        Net::open_with(dir, db, cfg, None).await
    }

    /// The miner's own balance pays its deposits and pledge (the messages of these tests carry
    /// no value): 100 FIL from the faucet, landing with the first epoch mined.
    async fn open(
        dir: tempfile::TempDir,
        db: Db,
        challenge_delay: i64,
        window: i64,
        other_power: u64,
    ) -> Net {
        let cfg = config(challenge_delay, window, other_power);
        Net::open_with(dir, db, cfg, Some(funds::fil(100))).await
    }

    async fn open_with(
        dir: tempfile::TempDir,
        db: Db,
        cfg: DevnetConfig,
        prefund: Option<TokenAmount>,
    ) -> Net {
        let engine: Arc<dyn Engine> = Arc::new(MockEngine::new());
        let devnet = Devnet::open(db, engine.clone(), cfg, ACTOR, SectorSize::S2KiB).unwrap();
        if let Some(amount) = prefund {
            devnet.faucet_send(id_address(ACTOR), amount).await.unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let served = devnet.serve(listener).unwrap();
        let client = FullNode::connect(&served.info, ACTOR).await.unwrap();
        Net {
            devnet,
            client,
            engine,
            served,
            dir,
        }
    }

    /// Sends `call` and mines the epoch it lands in: its receipt, and why it failed.
    async fn land(&self, call: Call) -> (Receipt, String) {
        let id = self
            .client
            .send(WORKER, call, TokenAmount::default(), TokenAmount::default())
            .await
            .unwrap();
        assert_eq!(self.client.receipt(&id).await.unwrap(), None);
        self.devnet.advance().await.unwrap();
        let r = self.client.receipt(&id).await.unwrap().unwrap();
        let (_, stored) = self.devnet.message(&id.parse().unwrap()).unwrap().unwrap();
        (r, stored.unwrap().reason)
    }

    async fn head(&self) -> i64 {
        self.client.head().await.unwrap().height
    }

    async fn advance_to(&self, epoch: i64) {
        while self.head().await < epoch {
            self.devnet.advance().await.unwrap();
        }
    }

    /// Seals `n` with the mock engine, pre-commits and prove-commits it through the node.
    async fn activate(&self, n: u64) -> proofs::PoStSector {
        let sealed = self.seal(n).await;
        let (r, why) = self.land(sealed.spec.call()).await;
        assert_eq!(r.exit_code, 0, "{r:?} {why}");
        let proof = self.commit_proof(&sealed).await;
        let (r, why) = self.land(prove_commit(n, proof)).await;
        assert_eq!(r.exit_code, 0, "{r:?} {why}");
        sealed.post
    }

    /// Seals `n` with the mock engine on a ticket of the head.
    async fn seal(&self, n: u64) -> Sealed {
        let sector = SectorRef::new(ACTOR, n, SealProof::StackedDrg2KiBV1_1);
        let engine = &self.engine;
        let d = self.dir.path().join(n.to_string());
        std::fs::create_dir_all(&d).unwrap();
        let (u, s, c) = (d.join("unsealed"), d.join("sealed"), d.join("cache"));
        let paths = proofs::SealPaths {
            unsealed: &u,
            sealed: &s,
            cache: &c,
        };
        let cap = proofs::unpadded_capacity(&sector);
        let piece = engine
            .add_piece(&sector, &u, &proofs::PieceData::Zeros, cap, &[])
            .unwrap();
        let ticket_epoch = self.head().await;
        let ticket = self
            .client
            .randomness(RandKind::Ticket, ticket_epoch)
            .await
            .unwrap();
        let pc1 = engine
            .pre_commit1(&sector, paths, &ticket, &[piece])
            .unwrap();
        let comms = engine.pre_commit2(&sector, paths, &pc1).unwrap();
        Sealed {
            spec: crate::calls::PreCommitSpec {
                sector,
                comms,
                ticket_epoch,
                expiration: ticket_epoch + 1000,
            },
            ticket,
            piece,
            post: proofs::PoStSector {
                sector,
                comm_r: comms.comm_r,
                sealed: s,
                cache: c,
            },
            unsealed: u,
        }
    }

    /// Once its pre-commit landed: waits for the seed and makes the sector's proof.
    async fn commit_proof(&self, s: &Sealed) -> Vec<u8> {
        let sector = s.spec.sector;
        let pc = self.client.precommit(&sector).await.unwrap().unwrap();
        let seed_epoch = pc.precommit_epoch + self.client.precommit_challenge_delay();
        self.advance_to(seed_epoch).await;
        let seed = self
            .client
            .randomness(RandKind::Seed, seed_epoch)
            .await
            .unwrap();
        let paths = proofs::SealPaths {
            unsealed: &s.unsealed,
            sealed: &s.post.sealed,
            cache: &s.post.cache,
        };
        let c1 = self
            .engine
            .commit1(&sector, paths, &s.ticket, &seed, &s.spec.comms, &[s.piece])
            .unwrap();
        self.engine.commit2(&sector, &c1).unwrap()
    }

    /// Sends `call` with `value` and mines the epoch: the message as signed, and its receipt.
    async fn land_with(&self, value: TokenAmount, call: Call) -> (Message, StoredReceipt) {
        let id = self
            .client
            .send(WORKER, call, value, TokenAmount::from_whole(1))
            .await
            .unwrap();
        self.devnet.advance().await.unwrap();
        let (m, r) = self.devnet.message(&id.parse().unwrap()).unwrap().unwrap();
        (m.message, r.unwrap())
    }

    /// A SubmitWindowedPoSt of partition 0 of `deadline` with `proof`, committing to the
    /// deadline's challenge epoch.
    async fn window_post(&self, d: crate::DeadlineInfo, proof: Vec<u8>) -> Call {
        let commit = self
            .client
            .randomness(RandKind::ChainCommit, d.challenge)
            .await
            .unwrap();
        Call::of(&SubmitWindowedPoStParams {
            deadline: d.index,
            partitions: vec![PoStPartition {
                index: 0,
                skipped: Default::default(),
            }],
            proofs: vec![lotus::PoStProof {
                post_proof: lotus::RegisteredPoStProof::from(
                    SealProof::StackedDrg2KiBV1_1.window_post().number(),
                ),
                proof_bytes: proof,
            }],
            chain_commit_epoch: d.challenge,
            chain_commit_rand: lotus::Randomness(commit.to_vec()),
        })
        .unwrap()
    }

    /// Advances to the next opening of `deadline` and lands a WindowPoSt over `sectors`.
    async fn prove(&self, deadline: u64, sectors: &[proofs::PoStSector]) -> (Receipt, String) {
        let w = self.client.wpost_window();
        let d = crate::next_opening(deadline, self.head().await + 1, w);
        self.advance_to(d.open).await;
        let rand = self
            .client
            .randomness(RandKind::WindowPoSt, d.challenge)
            .await
            .unwrap();
        let proof = self
            .engine
            .generate_window_post(ACTOR, &rand, sectors)
            .unwrap();
        let call = self.window_post(d, proof).await;
        self.land(call).await
    }
}

/// A sector sealed with the mock engine, not yet on chain.
struct Sealed {
    spec: crate::calls::PreCommitSpec,
    ticket: proofs::Randomness,
    piece: proofs::PieceInfo,
    post: proofs::PoStSector,
    unsealed: std::path::PathBuf,
}

fn precommit(sector: &SectorRef, comms: &SealedCommitments, ticket_epoch: i64) -> Call {
    crate::calls::PreCommitSpec {
        sector: *sector,
        comms: *comms,
        ticket_epoch,
        expiration: ticket_epoch + 1000,
    }
    .call()
}

fn prove_commit(n: u64, proof: Vec<u8>) -> Call {
    crate::calls::prove_commit(n, proof)
}

#[tokio::test]
async fn precommit_then_provecommit_activates_and_bad_proof_is_refused_with_the_actors_code() {
    let net = Net::start(2, 10, 0).await;
    net.client
        .ensure_miner(ACTOR, SectorSize::S2KiB)
        .await
        .unwrap();
    assert!(matches!(
        net.client.ensure_miner(ACTOR, SectorSize::S8MiB).await,
        Err(ChainError::SectorSizeMismatch { .. })
    ));
    let sector = SectorRef::new(ACTOR, 1, SealProof::StackedDrg2KiBV1_1);
    let comms = SealedCommitments {
        comm_d: [1; 32],
        comm_r: [2; 32],
    };
    net.devnet.advance().await.unwrap();
    let (r, why) = net.land(precommit(&sector, &comms, 1)).await;
    assert_eq!((r.exit_code, r.epoch), (0, 2), "{why}");
    let pc = net.client.precommit(&sector).await.unwrap().unwrap();
    assert_eq!(
        (pc.precommit_epoch, pc.comm_r, pc.comm_d),
        (2, [2; 32], Some([1; 32]))
    );
    // The same sector again: illegal argument.
    let (r, why) = net.land(precommit(&sector, &comms, 1)).await;
    assert_eq!(r.exit_code, 16, "{why}");
    assert!(why.contains("already pre-committed"), "{why}");
    // Too early for its seed: forbidden.
    let (r, why) = net.land(prove_commit(1, b"MOCK early".to_vec())).await;
    assert_eq!(r.exit_code, 18, "{why}");
    // A proof that does not verify: illegal argument, no power.
    net.advance_to(6).await;
    let (r, why) = net.land(prove_commit(1, b"MOCK garbage".to_vec())).await;
    assert_eq!(r.exit_code, 16, "{why}");
    assert!(r.error.contains("16 (illegal argument)"), "{r:?}");
    assert_eq!(net.client.power(ACTOR).await.unwrap().sectors, 0);
    // More than 256 sectors in one batch: illegal argument.
    let specs: Vec<_> = (100..357)
        .map(|n| crate::calls::PreCommitSpec {
            sector: SectorRef::new(ACTOR, n, SealProof::StackedDrg2KiBV1_1),
            comms,
            ticket_epoch: 1,
            expiration: 1001,
        })
        .collect();
    let (r, why) = net.land(crate::calls::precommit_batch(&specs)).await;
    assert_eq!(r.exit_code, 16, "{why}");
    assert!(
        why.contains("257 sectors in one pre-commit batch, at most 256"),
        "{why}"
    );
    // Params that do not decode: serialization; an unknown method: unhandled.
    let (r, _) = net
        .land(Call {
            method: 28,
            params: vec![0x81, 0x19].into(),
        })
        .await;
    assert_eq!(r.exit_code, 21);
    let (r, _) = net
        .land(Call {
            method: 99,
            params: Default::default(),
        })
        .await;
    assert_eq!(r.exit_code, 22);
    // Randomness is stable and refused for the future.
    let t = net.client.randomness(RandKind::Ticket, 1).await.unwrap();
    assert_eq!(t, net.client.randomness(RandKind::Ticket, 1).await.unwrap());
    assert_ne!(t, net.client.randomness(RandKind::Seed, 1).await.unwrap());
    assert!(net.client.randomness(RandKind::Seed, 100).await.is_err());
    // Restart: the head, the state and the node's token survive.
    let Net {
        devnet,
        served,
        dir,
        ..
    } = net;
    let head = devnet.head().unwrap().height;
    let token = served.info.token.clone();
    drop(served);
    drop(devnet);
    let db = Db::open(&dir.path().join("db"));
    // RocksDB's lock goes with the last handle: the aborted server task held one.
    let db = match db {
        Ok(db) => db,
        Err(_) => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Db::open(&dir.path().join("db")).unwrap()
        }
    };
    let net = Net::open(dir, db, 2, 10, 0).await;
    assert_eq!(net.head().await, head);
    assert_eq!(net.served.info.token, token);
    assert!(net.client.precommit(&sector).await.unwrap().is_some());
}

#[tokio::test]
async fn window_post_keeps_power_a_missed_deadline_loses_it_and_a_recovery_brings_it_back() {
    let net = Net::start(1, 2, 0).await;
    net.devnet.advance().await.unwrap();
    let s1 = net.activate(1).await;
    let a = net.client.active_sector(&s1.sector).await.unwrap().unwrap();
    let head = net.head().await;
    let now = crate::deadline_at(head, 2).index;
    assert!(
        a.deadline != now && a.deadline != (now + 1) % 48,
        "{a:?} at {head}"
    );
    assert_eq!(net.client.power(ACTOR).await.unwrap().sectors, 1);
    // A proof before the deadline opens is refused; one in it is accepted, twice in a row.
    // (committing to the head: the deadline's challenge is not known yet)
    let mut d = crate::next_opening(a.deadline, head, 2);
    d.challenge = head;
    let early = net.window_post(d, b"MOCK".to_vec()).await;
    let (r, why) = net.land(early).await;
    assert_eq!(r.exit_code, 16, "{why}");
    for _ in 0..2 {
        let (r, why) = net.prove(a.deadline, std::slice::from_ref(&s1)).await;
        assert_eq!(r.exit_code, 0, "{why}");
        let dl = net.client.deadline(ACTOR, a.deadline).await.unwrap();
        assert!(dl.proven.contains(&0), "{dl:?}");
        let close = crate::deadline_at(r.epoch, 2).close;
        net.advance_to(close + 1).await;
        assert_eq!(net.client.power(ACTOR).await.unwrap().sectors, 1);
    }
    // A whole period without a proof: the sector is faulty and its power gone.
    for _ in 0..(48 * 2) {
        net.devnet.advance().await.unwrap();
    }
    assert_eq!(net.client.power(ACTOR).await.unwrap().sectors, 0);
    let dls = net.client.deadlines(ACTOR).await.unwrap();
    let tally = net.client.tally(ACTOR).await.unwrap().unwrap();
    assert!(
        dls[a.deadline as usize].partitions.faults().contains(&1) && tally.missed >= 1,
        "{dls:?} {tally:?}"
    );
    // Recovery declared (outside the deadline's open and next window), then proven.
    let head = net.head().await;
    let d = crate::next_opening(a.deadline, head + 6, 2);
    net.advance_to(d.open - 6).await;
    let mut sectors = lotus::BitField::new();
    sectors.set(1);
    let rec = DeclareFaultsRecoveredParams {
        recoveries: vec![SectorsDeclaration {
            deadline: a.deadline,
            partition: 0,
            sectors,
        }],
    };
    let (r, why) = net.land(Call::of(&rec).unwrap()).await;
    assert_eq!(r.exit_code, 0, "{why}");
    assert_eq!(net.client.power(ACTOR).await.unwrap().sectors, 0);
    let dl = net.client.deadline(ACTOR, a.deadline).await.unwrap();
    assert!(dl.partitions.recoveries().contains(&1), "{dl:?}");
    let (r, why) = net.prove(a.deadline, std::slice::from_ref(&s1)).await;
    assert_eq!(r.exit_code, 0, "{why}");
    assert_eq!(net.client.power(ACTOR).await.unwrap().sectors, 1);
}

#[tokio::test]
async fn a_block_counts_only_with_the_workers_vrf_its_win_count_and_a_valid_proof_in_time() {
    // No other power on the network: five leaders expected per epoch, all this miner's.
    let net = Net::start(1, 60, 0).await;
    net.devnet.advance().await.unwrap();
    let h = net.head().await;
    assert_eq!(
        net.client.election(ACTOR, h + 1).await.unwrap(),
        None,
        "no power, no election"
    );
    let s1 = net.activate(1).await;
    // Each round is mined on the head before it, as lotus-miner mines.
    let (h, won) = loop {
        let h = net.head().await + 1;
        if let Some(won) = net.client.election(ACTOR, h).await.unwrap() {
            break (h, won);
        }
        net.devnet.advance().await.unwrap();
    };
    // The VRF is the worker's BLS signature (96 bytes), made by the node's wallet; the node
    // draws the same wins from it. The WinningPoSt's randomness comes from the round's beacon
    // entry, as the chain draws it once the round exists.
    assert_eq!(won.vrf.len(), 96);
    assert_eq!(won.win_count, net.devnet.wins_at(ACTOR, h).unwrap());
    let picked = net.client.winning_sectors(ACTOR, h).await.unwrap();
    assert!(!picked.is_empty() && picked.iter().all(|a| a.sector == s1.sector));
    let rand = won.post_randomness;
    let proof = net
        .engine
        .generate_winning_post(ACTOR, &rand, std::slice::from_ref(&s1))
        .unwrap();
    // A tampered VRF, another key's VRF, a win count the VRF does not draw, a tampered proof:
    // each refused, nothing counted.
    let mut tampered = won.clone();
    tampered.vrf[40] ^= 1;
    let input = net.devnet.rand_for(RandKind::Election, ACTOR, h);
    let stranger = crate::Election {
        vrf: lotus::wallet::BlsKey::generate()
            .unwrap()
            .sign_bytes(&input)
            .bytes,
        ..won.clone()
    };
    for bad in [tampered, stranger] {
        let e = net.client.submit_block(ACTOR, h, &bad, proof.clone()).await;
        assert!(format!("{e:?}").contains("VRF is not the worker"), "{e:?}");
    }
    // The ticket must be the worker's VRF of the ticket randomness, not another VRF.
    let wrong_ticket = crate::Election {
        ticket: won.vrf.clone(),
        ..won.clone()
    };
    let e = net
        .client
        .submit_block(ACTOR, h, &wrong_ticket, proof.clone())
        .await;
    assert!(
        format!("{e:?}").contains("ticket's VRF is not the worker"),
        "{e:?}"
    );
    let inflated = crate::Election {
        win_count: won.win_count + 1,
        ..won.clone()
    };
    let e = net
        .client
        .submit_block(ACTOR, h, &inflated, proof.clone())
        .await;
    assert!(format!("{e:?}").contains("its VRF draws"), "{e:?}");
    let mut bad_proof = proof.clone();
    let last = bad_proof.len() - 1;
    bad_proof[last] ^= 1;
    let e = net.client.submit_block(ACTOR, h, &won, bad_proof).await;
    assert!(format!("{e:?}").contains("WinningPoSt"), "{e:?}");
    assert_eq!(
        net.client.tally(ACTOR).await.unwrap().unwrap().blocks_won,
        0
    );
    net.client
        .submit_block(ACTOR, h, &won, proof.clone())
        .await
        .unwrap();
    assert_eq!(
        net.client.tally(ACTOR).await.unwrap().unwrap().blocks_won,
        1
    );
    // The WinningPoSt randomness is what the chain draws for the round once it is made; a
    // block for a round already made, or further ahead than the next: refused.
    net.devnet.advance().await.unwrap();
    assert_eq!(
        net.client
            .randomness(RandKind::WinningPoSt, h)
            .await
            .unwrap(),
        rand
    );
    let e = net.client.submit_block(ACTOR, h, &won, proof.clone()).await;
    assert!(format!("{e:?}").contains("only the next epoch"), "{e:?}");
    // Two rounds ahead: its parent is not made yet.
    let e = net.client.submit_block(ACTOR, h + 2, &won, proof).await;
    assert!(format!("{e:?}").contains("not known yet"), "{e:?}");
    assert_eq!(
        net.client.tally(ACTOR).await.unwrap().unwrap().blocks_won,
        1
    );
}

#[tokio::test]
async fn elections_follow_the_share_of_power() {
    // The rest of the network holds three times this miner's one sector: a quarter of the five
    // expected leaders, 1.25 wins per epoch on average, at least one in 1 - e^-1.25 = 71%.
    let net = Net::start(1, 1000, 3 * 2048).await;
    net.devnet.advance().await.unwrap();
    net.activate(1).await;
    for _ in 0..400 {
        net.devnet.advance().await.unwrap();
    }
    let head = net.head().await;
    let (mut elected, mut wins) = (0, 0);
    for e in head - 399..=head {
        let won = net.client.election(ACTOR, e).await.unwrap();
        let w = won.map_or(0, |w| w.win_count);
        assert_eq!(
            w,
            net.devnet.wins_at(ACTOR, e).unwrap(),
            "the miner and the node draw the same wins"
        );
        elected += (w > 0) as u32;
        wins += w;
    }
    assert!(
        (245..=325).contains(&elected),
        "elected {elected} times in 400 epochs"
    );
    assert!((420..=580).contains(&wins), "{wins} wins in 400 epochs");
}

#[tokio::test]
async fn the_node_checks_tokens_as_lotus_does_and_refuses_unknown_methods() {
    let net = Net::unfunded(funds::fil(10)).await;
    let secret = net.devnet.secret().unwrap();
    let as_perm = |p: stores::Permission| {
        let info = api::ApiInfo {
            token: secret.token(&p.with_lower()),
            addr: net.served.addr.to_string(),
        };
        api::Client::new_at(&info, api::fullnode::PATH, Duration::from_secs(10))
    };
    let read = as_perm(stores::Permission::Read);
    let head = read.request::<api::fullnode::ChainHead>(()).await.unwrap();
    assert_eq!(head.height, 0);
    assert_eq!(head.cids, vec![net.devnet.block_cid(0)]);
    // A message from the miner's worker, with a token that cannot sign: refused, nothing sent.
    let mi = read
        .request::<api::fullnode::StateMinerInfo>((
            lotus::json::wire::Addr(id_address(ACTOR)),
            Default::default(),
        ))
        .await
        .unwrap();
    let call = prove_commit(1, b"MOCK".to_vec());
    let m = call.message(mi.worker, id_address(ACTOR), lotus::TokenAmount::default());
    let e = read
        .request::<api::fullnode::MpoolPushMessage>((lotus::json::MessageJson::from(&m), None))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("missing permission to invoke 'Filecoin.MpoolPushMessage' (need 'sign')"),
        "{e}"
    );
    assert!(net.devnet.pending().unwrap().is_empty());
    let sign = as_perm(stores::Permission::Sign);
    let signed = sign
        .request::<api::fullnode::MpoolPushMessage>((lotus::json::MessageJson::from(&m), None))
        .await
        .unwrap();
    let signed: SignedMessage = signed.try_into().unwrap();
    lotus::wallet::verify(&signed).unwrap();
    assert_eq!(net.devnet.pending().unwrap(), vec![signed]);
    // A method the node does not serve: -32601; a sender whose key it lacks: an error.
    let e = read
        .request::<api::methods::PledgeSector>(())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, api::ClientError::Rpc(r) if r.code == api::rpc::METHOD_NOT_FOUND),
        "{e}"
    );
    let mut other = m.clone();
    other.from = lotus::wallet::SecpKey::generate().unwrap().address();
    let e = sign
        .request::<api::fullnode::MpoolPushMessage>((lotus::json::MessageJson::from(&other), None))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("wallet holds no key"), "{e}");
}

#[tokio::test]
async fn one_epoch_takes_a_sector_once() {
    let net = Net::start(1, 10, 0).await;
    net.devnet.advance().await.unwrap();
    let sector = SectorRef::new(ACTOR, 5, SealProof::StackedDrg2KiBV1_1);
    let comms = SealedCommitments {
        comm_d: [1; 32],
        comm_r: [2; 32],
    };
    // Two pre-commits of one sector landing in the same epoch: the second is refused.
    let a = net
        .client
        .send(
            WORKER,
            precommit(&sector, &comms, 1),
            TokenAmount::default(),
            TokenAmount::default(),
        )
        .await
        .unwrap();
    let b = net
        .client
        .send(
            WORKER,
            precommit(&sector, &comms, 1),
            TokenAmount::default(),
            TokenAmount::default(),
        )
        .await
        .unwrap();
    net.devnet.advance().await.unwrap();
    let codes = (
        net.client.receipt(&a).await.unwrap().unwrap().exit_code,
        net.client.receipt(&b).await.unwrap().unwrap().exit_code,
    );
    assert_eq!(codes, (0, 16));
    // One message naming a sector twice: refused whole, nothing pre-committed.
    let other = SectorRef::new(ACTOR, 6, SealProof::StackedDrg2KiBV1_1);
    let one = lotus::miner::precommit_cc(
        lotus::RegisteredSealProof::from(other.proof as i64),
        6,
        &comms.comm_r,
        1,
        1000,
    );
    let twice = lotus::miner::PreCommitSectorBatchParams2 {
        sectors: vec![one.clone(), one],
    };
    let (r, why) = net.land(Call::of(&twice).unwrap()).await;
    assert_eq!(r.exit_code, 16, "{why}");
    assert!(net.client.precommit(&other).await.unwrap().is_none());
}

#[tokio::test]
async fn a_message_costs_at_most_its_max_fee_and_waits_if_that_is_below_the_base_fee() {
    let net = Net::start(1, 10, 0).await;
    net.devnet.advance().await.unwrap();
    let sector = SectorRef::new(ACTOR, 9, SealProof::StackedDrg2KiBV1_1);
    let comms = SealedCommitments {
        comm_d: [1; 32],
        comm_r: [2; 32],
    };
    // A MaxFee above what the node's gas needs leaves its fee cap; one below lowers it.
    let roomy = TokenAmount::from_whole(1);
    let id = net
        .client
        .send(
            WORKER,
            precommit(&sector, &comms, 1),
            TokenAmount::default(),
            roomy.clone(),
        )
        .await
        .unwrap();
    let (m, _) = net.devnet.message(&id.parse().unwrap()).unwrap().unwrap();
    assert!(m.message.gas_fee_cap.atto() * m.message.gas_limit <= *roomy.atto());
    assert_eq!(m.message.gas_fee_cap, TokenAmount::from_atto(100_000));
    net.devnet.advance().await.unwrap();
    assert_eq!(net.client.receipt(&id).await.unwrap().unwrap().exit_code, 0);

    let other = SectorRef::new(ACTOR, 10, SealProof::StackedDrg2KiBV1_1);
    let tight = TokenAmount::from_atto(m.message.gas_limit * 50);
    let id = net
        .client
        .send(
            WORKER,
            precommit(&other, &comms, 2),
            TokenAmount::default(),
            tight.clone(),
        )
        .await
        .unwrap();
    let (m, _) = net.devnet.message(&id.parse().unwrap()).unwrap().unwrap();
    assert!(m.message.gas_fee_cap.atto() * m.message.gas_limit <= *tight.atto());
    assert_eq!(m.message.gas_fee_cap, TokenAmount::from_atto(50));
    assert!(m.message.gas_premium <= m.message.gas_fee_cap);
    // 50 per unit of gas is below the devnet's base fee (100): no epoch takes it.
    for _ in 0..3 {
        net.devnet.advance().await.unwrap();
    }
    assert_eq!(net.client.receipt(&id).await.unwrap(), None);
    assert_eq!(net.devnet.pending().unwrap(), vec![m]);
    assert_eq!(net.devnet.precommit(ACTOR, 10).unwrap(), None);
}

#[tokio::test]
async fn balances_pay_gas_value_deposits_and_pledge_as_on_a_real_network() {
    // The genesis allocation: the worker's, by its ID and by its key; the faucet's.
    let net = Net::unfunded(funds::fil(1)).await;
    let faucet = api::Client::new_at(
        &net.served.info,
        api::fullnode::PATH,
        Duration::from_secs(5),
    )
    .request::<api::fullnode::WalletDefaultAddress>(())
    .await
    .unwrap()
    .0;
    let a = net.client.addresses().await.unwrap();
    let (worker_id, worker_key) = (a.worker.id, a.worker.key);
    assert_eq!(worker_id, id_address(100));
    let one = funds::fil(1);
    assert_eq!(net.client.balance(&worker_id).await.unwrap(), one);
    assert_eq!(net.client.balance(&worker_key).await.unwrap(), one);
    assert_eq!(
        net.client.balance(&faucet).await.unwrap(),
        funds::faucet_funds()
    );
    assert_eq!(
        net.client.funds().await.unwrap(),
        crate::MinerFunds::default()
    );
    net.devnet.advance().await.unwrap();
    let sealed = net.seal(1).await;
    let deposit = net.client.precommit_deposit(&sealed.spec).await.unwrap();
    assert_eq!(deposit, funds::precommit_deposit(SectorSize::S2KiB));

    // Without value and nothing available: refused with the actor's code, gas paid anyway.
    let (m, r) = net
        .land_with(TokenAmount::default(), sealed.spec.call())
        .await;
    assert_eq!(r.exit_code, 19, "{r:?}");
    assert!(
        r.reason.contains("pre-commit deposit") && r.reason.contains("available 0 FIL"),
        "{}",
        r.reason
    );
    let mut spent = funds::gas_cost(&m);
    assert!(spent.is_positive());
    assert_eq!(
        net.client.balance(&worker_id).await.unwrap(),
        one.clone() - spent.clone()
    );
    assert_eq!(
        net.client.precommit(&sealed.spec.sector).await.unwrap(),
        None
    );

    // With the deposit as value: locked, and shown on the pre-commit.
    let (m, r) = net.land_with(deposit.clone(), sealed.spec.call()).await;
    assert_eq!(r.exit_code, 0, "{}", r.reason);
    spent += funds::gas_cost(&m) + deposit.clone();
    let f = net.client.funds().await.unwrap();
    assert_eq!(f.precommit_deposits, deposit);
    assert_eq!(
        (f.balance, f.available),
        (deposit.clone(), TokenAmount::default())
    );
    let pc = net
        .client
        .precommit(&sealed.spec.sector)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pc.deposit, deposit);
    assert_eq!(
        net.client.balance(&worker_id).await.unwrap(),
        one.clone() - spent.clone()
    );

    // The prove-commit releases the deposit and locks the pledge: what the deposit does not
    // cover must come as value; short of it, refused and nothing moves.
    let pledge = net.client.initial_pledge(1000).await.unwrap();
    assert_eq!(pledge, funds::initial_pledge(SectorSize::S2KiB));
    let proof = net.commit_proof(&sealed).await;
    let (m, r) = net
        .land_with(TokenAmount::default(), prove_commit(1, proof.clone()))
        .await;
    spent += funds::gas_cost(&m);
    assert_eq!(r.exit_code, 19, "{r:?}");
    assert!(
        r.reason.contains("initial pledge of sector 1"),
        "{}",
        r.reason
    );
    assert_eq!(
        net.client.funds().await.unwrap().precommit_deposits,
        deposit
    );
    let rest = pledge.clone() - deposit.clone();
    let (m, r) = net.land_with(rest.clone(), prove_commit(1, proof)).await;
    assert_eq!(r.exit_code, 0, "{}", r.reason);
    spent += funds::gas_cost(&m) + rest;
    let f = net.client.funds().await.unwrap();
    assert_eq!(
        (f.precommit_deposits, f.initial_pledge.clone(), f.balance),
        (TokenAmount::default(), pledge.clone(), pledge.clone())
    );
    let active = net
        .client
        .active_sector(&sealed.spec.sector)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.initial_pledge, pledge);

    // A sender that cannot pay is refused by the pool, naming it, what it has and needs.
    let e = net
        .client
        .send(
            WORKER,
            sealed.spec.call(),
            funds::fil(5),
            TokenAmount::from_whole(1),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not enough funds")
            && e.contains(&worker_key.to_string())
            && e.contains("has 0.9"),
        "{e}"
    );
    // The faucet pays, to the worker's ID address: it lands with the next epoch.
    net.devnet
        .faucet_send(worker_id, funds::fil(3))
        .await
        .unwrap();
    net.devnet.advance().await.unwrap();
    assert_eq!(
        net.client.balance(&worker_id).await.unwrap(),
        funds::fil(4) - spent
    );
}

#[tokio::test]
async fn init_checks_refuse_what_lotus_miner_init_would_naming_what_is_wrong() {
    use crate::init::{check, Refusal};
    let net = Net::unfunded(funds::fil(1)).await;
    let info = &net.served.info;
    let facts = check(info, ACTOR, None).await.unwrap();
    assert_eq!(facts.network, "sealer-devnet");
    assert_eq!(facts.sector_size, SectorSize::S2KiB);
    assert_eq!(
        (facts.worker, facts.owner),
        (id_address(100), id_address(100))
    );
    assert_eq!(
        facts.worker_key.protocol(),
        lotus::fvm_shared::address::Protocol::BLS
    );
    check(info, ACTOR, Some(SectorSize::S2KiB)).await.unwrap();

    let e = check(info, 9999, None).await.unwrap_err();
    assert!(matches!(e, Refusal::NoMiner { .. }), "{e}");
    assert!(
        e.to_string().contains("t09999") && e.to_string().contains("sealer-devnet"),
        "{e}"
    );
    let e = check(info, ACTOR, Some(SectorSize::S8MiB))
        .await
        .unwrap_err();
    assert!(matches!(e, Refusal::SectorSize { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("t01000") && text.contains("2KiB") && text.contains("8MiB"),
        "{text}"
    );

    // A token that cannot sign.
    let write = api::ApiInfo {
        token: net
            .devnet
            .secret()
            .unwrap()
            .token(&stores::Permission::Write.with_lower()),
        addr: info.addr.clone(),
    };
    let e = check(&write, ACTOR, None).await.unwrap_err();
    assert!(matches!(e, Refusal::TokenCannotSign { .. }), "{e}");
    assert!(
        e.to_string().contains(r#"["read", "write"], not "sign""#),
        "{e}"
    );

    // The worker's key gone from the node's wallet (`lotus wallet delete`).
    let admin = api::Client::new_at(info, api::fullnode::PATH, Duration::from_secs(5));
    admin
        .request::<api::fullnode::WalletDelete>((lotus::json::wire::Addr(facts.worker_key),))
        .await
        .unwrap();
    let e = check(info, ACTOR, None).await.unwrap_err();
    assert!(matches!(e, Refusal::WorkerKeyMissing { .. }), "{e}");
    assert!(e.to_string().contains(&facts.worker_key.to_string()), "{e}");

    // A secp256k1 worker (as on a devnet made before BLS workers): refused.
    let secp = lotus::wallet::SecpKey::generate().unwrap();
    let mut m = net.devnet.miner(ACTOR).unwrap().unwrap();
    m.worker = secp.address().to_string();
    let mut b = Batch::default();
    b.put(&miner_key(ACTOR), &m);
    b.put(&account_key(100), &secp.address().to_string());
    b.put(&wallet_key(&secp.address()), &secp.private_bytes());
    net.devnet.db.write(b).unwrap();
    let e = check(info, ACTOR, None).await.unwrap_err();
    assert!(matches!(e, Refusal::WorkerNotBls { .. }), "{e}");
    assert!(e.to_string().contains(&secp.address().to_string()), "{e}");
}

#[tokio::test]
async fn a_pre_commit_not_proven_in_time_is_refused_then_removed_and_its_deposit_burnt() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let cfg = DevnetConfig {
        max_prove_commit_duration: 5,
        ..config(1, 10, 0)
    };
    let net = Net::open_with(dir, db, cfg, Some(funds::fil(100))).await;
    assert_eq!(net.client.max_prove_commit_duration(), 5);
    net.devnet.advance().await.unwrap();
    let sector = SectorRef::new(ACTOR, 1, SealProof::StackedDrg2KiBV1_1);
    let comms = SealedCommitments {
        comm_d: [1; 32],
        comm_r: [2; 32],
    };
    let (r, why) = net.land(precommit(&sector, &comms, 1)).await;
    assert_eq!((r.exit_code, r.epoch), (0, 2), "{why}");
    let before = net.client.funds().await.unwrap();
    assert_eq!(
        before.precommit_deposits,
        funds::precommit_deposit(SectorSize::S2KiB)
    );
    // Provable until epoch 7: at 8 it is too late, and the pre-commit is gone.
    net.advance_to(7).await;
    let (r, why) = net.land(prove_commit(1, b"MOCK late".to_vec())).await;
    assert_eq!((r.exit_code, r.epoch), (16, 8), "{why}");
    assert!(
        why.contains("too late") && why.contains("until epoch 7"),
        "{why}"
    );
    assert_eq!(net.client.precommit(&sector).await.unwrap(), None);
    let after = net.client.funds().await.unwrap();
    assert_eq!(after.precommit_deposits, TokenAmount::default());
    assert_eq!(
        before.balance - after.balance,
        funds::precommit_deposit(SectorSize::S2KiB),
        "the deposit is burnt"
    );
    // The number is never allocated again.
    let (r, why) = net.land(precommit(&sector, &comms, 8)).await;
    assert_eq!(r.exit_code, 16, "{why}");
    assert!(
        why.contains("sector number 1 was allocated already"),
        "{why}"
    );
}

#[tokio::test]
async fn a_pre_commit_whose_ticket_is_too_old_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let cfg = DevnetConfig {
        max_ticket_age: 5,
        ..config(1, 10, 0)
    };
    let net = Net::open_with(dir, db, cfg, Some(funds::fil(100))).await;
    assert_eq!(net.client.max_ticket_age(), 5);
    net.advance_to(10).await;
    let sector = SectorRef::new(ACTOR, 1, SealProof::StackedDrg2KiBV1_1);
    let comms = SealedCommitments {
        comm_d: [1; 32],
        comm_r: [2; 32],
    };
    // Landing at epoch 11: the earliest ticket taken is epoch 6.
    let (r, why) = net.land(precommit(&sector, &comms, 5)).await;
    assert_eq!(r.exit_code, 16, "{why}");
    assert!(
        why.contains("ticket epoch 5 is too old (the earliest at epoch 11 is 6)"),
        "{why}"
    );
    let (r, why) = net.land(precommit(&sector, &comms, 7)).await;
    assert_eq!(r.exit_code, 0, "{why}");
}

#[tokio::test]
async fn a_sector_is_extended_within_the_actors_limits_and_terminated_outside_its_busy_deadlines() {
    use lotus::miner::{
        ExpirationExtension2, ExtendSectorExpiration2Params, TerminateSectorsParams,
    };
    let net = Net::start(1, 4, 0).await;
    net.devnet.advance().await.unwrap();
    let s1 = net.activate(1).await;
    let a = net.client.active_sector(&s1.sector).await.unwrap().unwrap();
    let extend = |to: i64| {
        Call::of(&ExtendSectorExpiration2Params {
            extensions: vec![ExpirationExtension2 {
                deadline: a.deadline,
                partition: a.partition as u64,
                sectors: lotus::miner::sectors_bitfield([1]),
                sectors_with_claims: Vec::new(),
                new_expiration: to,
            }],
        })
        .unwrap()
    };
    // Later: taken. Earlier, or past 1278 days from now: refused, naming the limit.
    let (r, why) = net.land(extend(a.expiration + 1000)).await;
    assert_eq!(r.exit_code, 0, "{why}");
    let now = net.client.active_sector(&s1.sector).await.unwrap().unwrap();
    assert_eq!(now.expiration, a.expiration + 1000);
    let (r, why) = net.land(extend(a.expiration)).await;
    assert_eq!(r.exit_code, 16, "{why}");
    assert!(why.contains("cannot be brought forward"), "{why}");
    let (r, why) = net.land(extend(1278 * 2880 + 10_000)).await;
    assert_eq!(r.exit_code, 16, "{why}");
    assert!(why.contains("MaxSectorExpirationExtension"), "{why}");

    // Terminated: not while its deadline is open or next; then its power goes and its pledge
    // is released.
    let terminate = Call::of(&TerminateSectorsParams {
        terminations: vec![lotus::miner::SectorsDeclaration {
            deadline: a.deadline,
            partition: a.partition as u64,
            sectors: lotus::miner::sectors_bitfield([1]),
        }],
    })
    .unwrap();
    let window = 4;
    loop {
        let d = net.client.proving_deadline(ACTOR).await.unwrap();
        if (d.index + 1) % crate::DEADLINES == a.deadline {
            break;
        }
        net.devnet.advance().await.unwrap();
    }
    let (r, why) = net.land(terminate.clone()).await;
    assert_eq!(r.exit_code, 16, "{why}");
    assert!(why.contains("can be terminated from epoch"), "{why}");
    let pledged = net.client.funds().await.unwrap().initial_pledge;
    assert!(pledged > TokenAmount::default());
    net.advance_to(net.head().await + 2 * window).await;
    let (r, why) = net.land(terminate).await;
    assert_eq!(r.exit_code, 0, "{why}");
    assert_eq!(net.client.active_sector(&s1.sector).await.unwrap(), None);
    assert_eq!(net.client.power(ACTOR).await.unwrap().sectors, 0);
    assert_eq!(
        net.client.funds().await.unwrap().initial_pledge,
        TokenAmount::default()
    );
    let dl = net.client.deadline(ACTOR, a.deadline).await.unwrap();
    assert!(dl.partitions.sectors().is_empty(), "{dl:?}");
}
