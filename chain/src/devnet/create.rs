//! New keys and new miners on the devnet: `WalletNew` makes a key in the node's wallet and, a
//! devnet shortcut, its account at once (on a real chain an account appears with the first
//! funds sent to the key); the power actor's CreateMiner (what `lotus-miner init` sends, and
//! `sealer init --owner --worker`) makes a miner actor whose owner and worker are accounts and
//! whose worker key is BLS, as builtin-actors requires, with the next actor ID.

use std::collections::HashMap;

use db::Batch;
use lotus::power::{CreateMinerParams, CreateMinerReturn};
use lotus::wallet::{BlsKey, Key, SecpKey};
use lotus::{Address, ExitCode, Message};
use resources::SectorSize;

use super::{account_key, id_address, wallet_key, Devnet, Fail, MinerState, MINERS};
use crate::ChainError;

/// The next account ID to give (after the genesis worker's 100 and the faucet's 101).
const NEXT_ACCOUNT: &str = "chain/next-account";
const FIRST_ACCOUNT: u64 = 102;

impl Devnet {
    /// `WalletNew`: a new key of `kind` ("bls" or "secp256k1", as Lotus names them) in the
    /// wallet, with its account; its key address.
    pub fn wallet_new(&self, kind: &str) -> Result<Address, ChainError> {
        let key = match kind {
            "bls" => Key::Bls(BlsKey::generate()?),
            "secp256k1" => Key::Secp(SecpKey::generate()?),
            other => {
                return Err(ChainError::Other(format!(
                    "unknown key type {other:?} (bls or secp256k1)"
                )))
            }
        };
        let a = key.address();
        let id: u64 = self.db.get(NEXT_ACCOUNT)?.unwrap_or(FIRST_ACCOUNT);
        let mut b = Batch::default();
        b.put(&wallet_key(&a), &key.private_bytes());
        b.put(&account_key(id), &a.to_string());
        b.put(NEXT_ACCOUNT, &(id + 1));
        self.db.write(b)?;
        Ok(a)
    }

    /// The account ID of `a`: an ID address that names an account, or a key address with one.
    pub(super) fn account_id(&self, a: &Address) -> Result<Option<u64>, ChainError> {
        if let Ok(id) = a.id() {
            return Ok(self.db.get::<String>(&account_key(id))?.map(|_| id));
        }
        let text = a.to_string();
        Ok(self
            .db
            .scan::<String>("chain/account/")?
            .into_iter()
            .find(|(_, k)| *k == text)
            .and_then(|(key, _)| key.rsplit('/').next()?.parse().ok()))
    }

    /// CreateMiner, sent to the power actor: a new miner with the next actor ID.
    pub(super) fn create_miner(
        &self,
        m: &Message,
        p: CreateMinerParams,
        miners: &mut HashMap<u64, MinerState>,
    ) -> Result<CreateMinerReturn, Fail> {
        let account = |role: &str, a: &Address| -> Result<u64, Fail> {
            self.account_id(a)
                .map_err(Fail::state)?
                .ok_or_else(|| Fail::arg(format!("{role} {a} is not an account on the devnet")))
        };
        let owner = account("owner", &p.owner)?;
        let worker = account("worker", &p.worker)?;
        let key = self.account_key(&id_address(worker)).map_err(Fail::state)?;
        if key.protocol() != lotus::fvm_shared::address::Protocol::BLS {
            return Err(Fail::arg(format!(
                "worker key {key} must be a BLS key (resolve_worker_address)"
            )));
        }
        let proof = i64::from(p.window_post_proof_type);
        let size = SectorSize::ALL
            .into_iter()
            .find(|s| s.seal_proof().window_post().number() == proof)
            .ok_or_else(|| Fail::arg(format!("unsupported WindowPoSt proof type {proof}")))?;
        let taken = self
            .db
            .scan::<MinerState>(MINERS)
            .map_err(Fail::state)?
            .into_iter()
            .filter_map(|(k, _)| k.trim_start_matches(MINERS).parse::<u64>().ok())
            .chain(miners.keys().copied())
            .max()
            .unwrap_or(999);
        let actor = taken + 1;
        if self.miner(actor).map_err(Fail::state)?.is_some() {
            return Err(Fail::new(ExitCode::USR_ILLEGAL_STATE, "actor ID taken"));
        }
        miners.insert(
            actor,
            MinerState {
                sector_size: size,
                power: Default::default(),
                proving: None,
                wins: 0,
                last_win: None,
                worker: key.to_string(),
                worker_id: worker,
                balance: m.value.clone(),
                precommit_deposits: Default::default(),
                initial_pledge: Default::default(),
                owner_id: Some(owner),
                control: Vec::new(),
            },
        );
        // The reorg-safe address names the message that made the actor.
        let robust = Address::new_actor(&lotus::message::message_cid(m).to_bytes());
        tracing::info!(
            "devnet: created miner t0{actor} ({size} sectors, owner t0{owner}, worker t0{worker})"
        );
        Ok(CreateMinerReturn {
            id_address: id_address(actor),
            robust_address: robust,
        })
    }
}
