//! Money for a sector's messages, as lotus-miner finds it: the collateral a pre-commit
//! (deposit) or prove-commit (initial pledge less the released deposit) carries as its value,
//! less the miner actor's available balance where `[Sealing] CollateralFromMinerBalance` says
//! so (lotus's `collateralSendAmount`); and whether the sender can pay that value and the
//! message's MaxFee. A sender that cannot is a reason to wait, naming the address, its balance
//! and what is needed: no failure, so no retry is spent.

use chain::{Chain, ChainError, TokenAmount};
use lotus::json::fil_text;

/// `[Sealing] CollateralFromMinerBalance`, `AvailableBalanceBuffer`,
/// `DisableCollateralFallback`.
#[derive(Debug, Clone, PartialEq)]
pub struct Collateral {
    pub from_miner_balance: bool,
    pub buffer: TokenAmount,
    pub no_fallback: bool,
}

impl Default for Collateral {
    fn default() -> Self {
        Collateral {
            from_miner_balance: true,
            buffer: TokenAmount::default(),
            no_fallback: false,
        }
    }
}

fn floor_zero(t: TokenAmount) -> TokenAmount {
    if t.is_negative() {
        TokenAmount::default()
    } else {
        t
    }
}

/// What one message pays: its collateral, the part of it sent as value, and the most its gas
/// may cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    /// "pre-commit of sector 3", "prove-commit of sector 3".
    pub what: String,
    /// "deposit", "pledge".
    pub kind: &'static str,
    pub collateral: TokenAmount,
    pub value: TokenAmount,
    pub max_fee: TokenAmount,
    /// The `[Fees]` key of `max_fee`.
    pub fee_key: &'static str,
}

impl Payment {
    /// The value `collateral` needs under `policy`: all of it, or what the miner's available
    /// balance (less the buffer) does not cover.
    pub async fn plan(
        chain: &dyn Chain,
        policy: &Collateral,
        what: String,
        kind: &'static str,
        collateral: TokenAmount,
        (max_fee, fee_key): (TokenAmount, &'static str),
    ) -> Result<Payment, ChainError> {
        let value = match (policy.from_miner_balance, policy.no_fallback) {
            (false, _) => collateral.clone(),
            (true, true) => TokenAmount::default(),
            (true, false) => {
                let available = chain.funds().await?.available;
                let usable = floor_zero(available - policy.buffer.clone());
                floor_zero(collateral.clone() - usable)
            }
        };
        Ok(Payment {
            what,
            kind,
            collateral,
            value,
            max_fee,
            fee_key,
        })
    }

    /// Why the sender cannot pay for the message now (its balance below value + MaxFee), or
    /// `None` when it can.
    pub async fn shortfall(&self, chain: &dyn Chain) -> Result<Option<String>, ChainError> {
        let a = chain.addresses();
        let (id, key) = (a.worker, a.worker_key);
        let has = chain.balance(&id).await?;
        let need = self.value.clone() + self.max_fee.clone();
        if has >= need {
            return Ok(None);
        }
        let covered = self.collateral.clone() - self.value.clone();
        Ok(Some(format!(
            "waiting for funds: the worker {id} ({key}) has {}; the {} needs {}: {} of its {} {} \
             (the miner's available balance covers {}) and up to {} of gas ({}); send FIL to {id}",
            fil_text(&has),
            self.what,
            fil_text(&need),
            fil_text(&self.value),
            fil_text(&self.collateral),
            self.kind,
            fil_text(&covered),
            fil_text(&self.max_fee),
            self.fee_key,
        )))
    }
}
