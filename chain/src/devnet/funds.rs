//! Money on the devnet, as a real network keeps it: account balances (the genesis allocation of
//! the miner's worker and of a faucet whose key the wallet holds), the funds the message pool
//! asks of a sender (value plus gas fee cap × gas limit, pending messages counted), gas charged
//! at the base fee plus premium whether or not the message succeeds, a message's value moved to
//! its receiver, and a miner's deposits and pledge locked in its actor.
//!
//! The devnet's prices are fixed: [`precommit_deposit`] and [`initial_pledge`] per sector,
//! whatever its size or lifetime (a real network's follow from its reward and power).

use std::collections::HashMap;

use db::Batch;
use lotus::wallet::SecpKey;
use lotus::{Address, ExitCode, Message, TokenAmount};
use resources::SectorSize;

use super::{account_key, wallet_key, Devnet, Fail, MinerState};
use crate::ChainError;

/// The faucet's key address, once made.
const FAUCET: &str = "chain/faucet";
/// The faucet's account (after the genesis worker's t0100).
const FAUCET_ID: u64 = 101;

fn balance_key(a: &Address) -> String {
    format!("chain/balance/{a}")
}

/// `n` FIL.
pub fn fil(n: u64) -> TokenAmount {
    TokenAmount::from_whole(n)
}

/// What the devnet asks as a pre-commit deposit, per sector: 0.02 FIL.
pub fn precommit_deposit(_size: SectorSize) -> TokenAmount {
    TokenAmount::from_nano(20_000_000)
}

/// What the devnet locks as initial pledge once a sector is proven, per sector: 0.05 FIL.
pub fn initial_pledge(_size: SectorSize) -> TokenAmount {
    TokenAmount::from_nano(50_000_000)
}

/// What the faucet holds at genesis.
pub fn faucet_funds() -> TokenAmount {
    fil(1_000_000)
}

/// The gas a message pays once included: its gas limit at the base fee plus its premium, the
/// two together no more than its fee cap.
pub fn gas_cost(m: &Message) -> TokenAmount {
    let base = super::base_fee();
    let price = std::cmp::min(m.gas_fee_cap.clone(), base + m.gas_premium.clone());
    price * m.gas_limit
}

/// The most a message can cost its sender: value plus fee cap × gas limit (lotus's
/// `RequiredFunds`).
pub fn required_funds(m: &Message) -> TokenAmount {
    m.value.clone() + m.gas_fee_cap.clone() * m.gas_limit
}

impl MinerState {
    /// The actor's balance less its deposits and pledge (`StateMinerAvailableBalance`).
    pub fn available(&self) -> TokenAmount {
        let locked = self.precommit_deposits.clone() + self.initial_pledge.clone();
        let a = self.balance.clone() - locked;
        if a.is_negative() {
            TokenAmount::default()
        } else {
            a
        }
    }
}

impl Devnet {
    /// The genesis allocation, made once (a devnet made before balances existed gets it on
    /// its first open since): a faucet account whose key the wallet holds, and `worker_funds`
    /// for the genesis miner's worker.
    pub(super) fn fund_genesis(
        &self,
        worker: &Address,
        worker_funds: &TokenAmount,
    ) -> Result<(), ChainError> {
        if self.db.get::<String>(FAUCET)?.is_some() {
            return Ok(());
        }
        let key = SecpKey::generate()?;
        let faucet = key.address();
        let mut b = Batch::default();
        b.put(&wallet_key(&faucet), &key.private_bytes());
        b.put(&account_key(FAUCET_ID), &faucet.to_string());
        b.put(&balance_key(&faucet), &faucet_funds().atto().to_string());
        b.put(&balance_key(worker), &worker_funds.atto().to_string());
        b.put(FAUCET, &faucet.to_string());
        self.db.write(b)?;
        Ok(())
    }

    /// The faucet's key address (`WalletDefaultAddress`).
    pub fn faucet(&self) -> Result<Address, ChainError> {
        let a: String = self
            .db
            .get(FAUCET)?
            .ok_or_else(|| ChainError::Other("the devnet has no faucet".into()))?;
        Ok(lotus::json::parse_address(&a)?)
    }

    /// Sends `amount` from the faucet to `to` (a plain send, method 0, as `lotus send`): it
    /// lands with the next epoch.
    pub async fn faucet_send(
        &self,
        to: Address,
        amount: TokenAmount,
    ) -> Result<lotus::SignedMessage, ChainError> {
        let m = lotus::Call::transfer().message(self.faucet()?, to, amount);
        self.push(m, None).await
    }

    /// An account's balance as stored (a key address; zero for one never funded).
    fn stored_balance(&self, a: &Address) -> Result<TokenAmount, ChainError> {
        let Some(s) = self.db.get::<String>(&balance_key(a))? else {
            return Ok(TokenAmount::default());
        };
        s.parse::<lotus::fvm_shared::bigint::BigInt>()
            .map(TokenAmount::from_atto)
            .map_err(|e| ChainError::Other(format!("stored balance of {a} {s:?}: {e}")))
    }

    /// The balance of an address (`WalletBalance`): an account by its key or ID address, or a
    /// miner actor's balance.
    pub fn balance(&self, a: &Address) -> Result<TokenAmount, ChainError> {
        if let Ok(id) = a.id() {
            if let Some(m) = self.miner(id)? {
                return Ok(m.balance);
            }
        }
        self.stored_balance(&self.account_key(a)?)
    }

    /// Refuses a message its sender cannot pay for, counting what its messages already in the
    /// pool may cost (lotus's mpool: "not enough funds").
    pub(super) fn check_funds(&self, m: &Message) -> Result<(), ChainError> {
        let mut need = required_funds(m);
        for p in self.pending()? {
            if p.message.from == m.from {
                need += required_funds(&p.message);
            }
        }
        let have = self.stored_balance(&m.from)?;
        if have < need {
            return Err(ChainError::Other(format!(
                "not enough funds: {} has {}, needs {} (value {} plus gas fee cap × limit, with \
                 its messages already in the pool)",
                m.from,
                lotus::json::fil_text(&have),
                lotus::json::fil_text(&need),
                lotus::json::fil_text(&m.value),
            )));
        }
        Ok(())
    }
}

/// The balances an epoch changes, read through to the store and written with its batch; a
/// message's value moves on a copy, kept only if the message succeeds.
#[derive(Clone, Default)]
pub(super) struct Balances(HashMap<Address, TokenAmount>);

impl Balances {
    fn get(&mut self, d: &Devnet, a: &Address) -> Result<&mut TokenAmount, Fail> {
        if !self.0.contains_key(a) {
            let b = d.stored_balance(a).map_err(Fail::state)?;
            self.0.insert(*a, b);
        }
        Ok(self.0.get_mut(a).expect("inserted"))
    }

    /// Charges the sender its gas (paid even if the message then fails); a sender that cannot
    /// pay gas and value is refused with the system's exit code, and pays nothing.
    pub fn charge_gas(&mut self, d: &Devnet, m: &Message) -> Result<(), Fail> {
        let gas = gas_cost(m);
        let have = self.get(d, &m.from)?;
        if *have < gas.clone() + m.value.clone() {
            return Err(Fail::new(
                ExitCode::SYS_INSUFFICIENT_FUNDS,
                format!(
                    "{} has {}, the message needs {} (value {} plus gas {})",
                    m.from,
                    lotus::json::fil_text(have),
                    lotus::json::fil_text(&(gas.clone() + m.value.clone())),
                    lotus::json::fil_text(&m.value),
                    lotus::json::fil_text(&gas),
                ),
            ));
        }
        *have -= gas;
        Ok(())
    }

    /// Moves the message's value from its sender to its receiver: a miner actor's balance, or
    /// an account's (named by key or by ID).
    pub fn transfer(
        &mut self,
        d: &Devnet,
        m: &Message,
        miners: &mut HashMap<u64, MinerState>,
    ) -> Result<(), Fail> {
        if m.value.is_zero() {
            return Ok(());
        }
        *self.get(d, &m.from)? -= m.value.clone();
        if let Some(actor) =
            m.to.id()
                .ok()
                .filter(|a| d.miner(*a).ok().flatten().is_some())
        {
            d.miner_mut(miners, actor)?.balance += m.value.clone();
            return Ok(());
        }
        let to = d
            .account_key(&m.to)
            .map_err(|e| Fail::new(ExitCode::SYS_INVALID_RECEIVER, format!("{}: {e}", m.to)))?;
        *self.get(d, &to)? += m.value.clone();
        Ok(())
    }

    pub fn write(&self, batch: &mut Batch) {
        for (a, b) in &self.0 {
            batch.put(&balance_key(a), &b.atto().to_string());
        }
    }
}

/// Checks a miner can lock `amount` from its available balance, then locks it with `lock`.
pub(super) fn lock(
    m: &mut MinerState,
    amount: &TokenAmount,
    what: impl std::fmt::Display,
    lock: impl FnOnce(&mut MinerState),
) -> Result<(), Fail> {
    let available = m.available();
    if available < *amount {
        return Err(Fail::new(
            ExitCode::USR_INSUFFICIENT_FUNDS,
            format!(
                "insufficient funds for {what}: available {}, needed {}",
                lotus::json::fil_text(&available),
                lotus::json::fil_text(amount)
            ),
        ));
    }
    lock(m);
    Ok(())
}
