//! Money for a sector's messages, as lotus-miner finds it: the collateral a pre-commit
//! (deposit) or prove-commit (initial pledge less the released deposit) carries as its value,
//! less the miner actor's available balance where `[Sealing] CollateralFromMinerBalance` says
//! so (lotus's `collateralSendAmount`); and whether the sender can pay that value and the
//! message's MaxFee. Which address sends follows lotus's `[Addresses]` (`storage/ctladdr`):
//! the list for the message's use, then the worker, then the owner, each only if the node's
//! wallet holds its key; the first that can pay sends. When none can, a sealing message waits,
//! naming each address, its balance and what is needed (no failure, so no retry is spent; lotus
//! would send from the worker anyway and see the pool refuse it); a WindowPoSt is sent from the
//! best funded one, since a missed deadline costs more.

use chain::{Account, Address, Chain, ChainError, MinerAddresses, TokenAmount};
use lotus::json::fil_text;

/// What sealing messages pay, who sends them and how many sectors each carries: `[Fees]`,
/// `[Sealing]`'s collateral and batch keys, and `[Addresses]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub fees: crate::config::Fees,
    pub collateral: Collateral,
    pub senders: Senders,
    pub batching: crate::batch::Batching,
}

/// `[Addresses]`: which addresses send which messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Senders {
    pub pre_commit: Vec<Address>,
    pub commit: Vec<Address>,
    pub terminate: Vec<Address>,
    pub disable_owner_fallback: bool,
    pub disable_worker_fallback: bool,
}

/// What a message is for, which decides its senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    PreCommit,
    Commit,
    /// TerminateSectors: TerminateControl.
    Terminate,
    /// WindowPoSt proofs and fault and recovery declarations: the control addresses no list
    /// claims.
    PoSt,
}

/// An address that may send, and why it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub account: Account,
    /// "PreCommitControl", "CommitControl", "control", "worker", "owner".
    pub role: &'static str,
}

impl Senders {
    /// The addresses that may send a message of `use_`, in the order they are tried (lotus's
    /// `AddressFor`): the configured list (for WindowPoSt, the control addresses no list
    /// claims); the worker, unless DisableWorkerFallback and the list gave one; the owner,
    /// unless DisableOwnerFallback. Configured addresses that are not the miner's control
    /// addresses are left out, with a warning.
    pub fn candidates(&self, use_: Use, mi: &MinerAddresses) -> Vec<Candidate> {
        let control = |a: &Address| {
            mi.control
                .iter()
                .find(|c| c.id == *a || c.key == *a)
                .copied()
        };
        let mut out: Vec<Candidate> = Vec::new();
        let listed = |list: &[Address], role: &'static str, out: &mut Vec<Candidate>| {
            for a in list {
                match control(a) {
                    Some(account) => out.push(Candidate { account, role }),
                    None => tracing::warn!(
                        "[Addresses] {role}: {a} is not a control address of the miner: not used                          (set it with `sealer actor control set`)"
                    ),
                }
            }
        };
        match use_ {
            Use::PreCommit => listed(&self.pre_commit, "PreCommitControl", &mut out),
            Use::Commit => listed(&self.commit, "CommitControl", &mut out),
            Use::Terminate => listed(&self.terminate, "TerminateControl", &mut out),
            Use::PoSt => {
                let claimed: Vec<Account> = [&self.pre_commit, &self.commit, &self.terminate]
                    .into_iter()
                    .flatten()
                    .filter_map(control)
                    .collect();
                for c in &mi.control {
                    if !claimed.contains(c) && *c != mi.owner && *c != mi.worker {
                        out.push(Candidate {
                            account: *c,
                            role: "control",
                        });
                    }
                }
            }
        }
        if out.is_empty() || !self.disable_worker_fallback {
            out.push(Candidate {
                account: mi.worker,
                role: "worker",
            });
        }
        if !self.disable_owner_fallback && mi.owner != mi.worker {
            out.push(Candidate {
                account: mi.owner,
                role: "owner",
            });
        }
        out
    }

    /// The first candidate whose key the node holds and whose balance covers `need`; or each
    /// candidate with its balance (`None`: the node holds no key for it).
    pub async fn pick(
        &self,
        chain: &dyn Chain,
        use_: Use,
        need: &TokenAmount,
    ) -> Result<Result<Account, Vec<(Candidate, Option<TokenAmount>)>>, ChainError> {
        let mi = chain.addresses().await?;
        let mut seen = Vec::new();
        for c in self.candidates(use_, &mi) {
            if !chain.wallet_has(&c.account.key).await? {
                seen.push((c, None));
                continue;
            }
            let has = chain.balance(&c.account.id).await?;
            if has >= *need {
                return Ok(Ok(c.account));
            }
            seen.push((c, Some(has)));
        }
        Ok(Err(seen))
    }

    /// The sender of a WindowPoSt message that may cost up to `max_fee`: the first that can pay
    /// it, else the best funded whose key the node holds, else the worker.
    pub async fn post_sender(
        &self,
        chain: &dyn Chain,
        max_fee: &TokenAmount,
    ) -> Result<Address, ChainError> {
        let seen = match self.pick(chain, Use::PoSt, max_fee).await? {
            Ok(a) => return Ok(a.id),
            Err(seen) => seen,
        };
        let best = seen
            .iter()
            .filter_map(|(c, b)| Some((c, b.clone()?)))
            .max_by(|a, b| a.1.cmp(&b.1));
        match best {
            Some((c, b)) => {
                tracing::warn!(
                    "no address has {} for a WindowPoSt message: sending from the {} {} ({})",
                    fil_text(max_fee),
                    c.role,
                    c.account.id,
                    fil_text(&b)
                );
                Ok(c.account.id)
            }
            None => Ok(chain.addresses().await?.worker.id),
        }
    }
}

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
                let available = chain.available_balance().await?;
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

    /// The address to send the message from, or why none can now (each candidate with its
    /// balance, or its key missing from the node's wallet).
    pub async fn sender(
        &self,
        chain: &dyn Chain,
        senders: &Senders,
        use_: Use,
    ) -> Result<Result<Address, String>, ChainError> {
        let need = self.value.clone() + self.max_fee.clone();
        let seen = match senders.pick(chain, use_, &need).await? {
            Ok(a) => return Ok(Ok(a.id)),
            Err(seen) => seen,
        };
        let covered = self.collateral.clone() - self.value.clone();
        let each: Vec<String> = seen
            .iter()
            .map(|(c, b)| {
                let a = c.account;
                match b {
                    Some(b) => format!("the {} {} ({}) has {}", c.role, a.id, a.key, fil_text(b)),
                    None => format!(
                        "the {} {} ({}) is not in the node's wallet",
                        c.role, a.id, a.key
                    ),
                }
            })
            .collect();
        let mut why = format!(
            "waiting for funds: the {} needs {}: {} of its {} {} (the miner's available balance \
             covers {}) and up to {} of gas ({}); no sender has it: {}",
            self.what,
            fil_text(&need),
            fil_text(&self.value),
            fil_text(&self.collateral),
            self.kind,
            fil_text(&covered),
            fil_text(&self.max_fee),
            self.fee_key,
            each.join("; "),
        );
        if !seen.iter().any(|(c, _)| c.role == "worker") {
            why.push_str(" (the worker is not tried: DisableWorkerFallback)");
        }
        why.push_str("; send FIL to one of them");
        Ok(Err(why))
    }
}

/// `actor control list`: the owner, the worker and each control address, what each sends
/// under `senders` (as a listed sender or a fallback), its balance, and whether the node holds
/// its key.
pub async fn control_rows(
    chain: &dyn Chain,
    senders: &Senders,
) -> Result<Vec<api::ControlRow>, ChainError> {
    let mi = chain.addresses().await?;
    let uses = [
        (Use::PreCommit, "precommit"),
        (Use::Commit, "commit"),
        (Use::PoSt, "post"),
    ];
    let named = [
        ("owner".to_string(), mi.owner),
        ("worker".to_string(), mi.worker),
    ]
    .into_iter()
    .chain(
        mi.control
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("control-{i}"), *c)),
    );
    let mut rows = Vec::new();
    for (name, a) in named {
        let used = uses
            .iter()
            .filter(|(u, _)| senders.candidates(*u, &mi).iter().any(|c| c.account == a))
            .map(|(_, n)| n.to_string())
            .collect();
        rows.push(api::ControlRow {
            name,
            id: a.id.to_string(),
            key: a.key.to_string(),
            uses: used,
            balance: fil_text(&chain.balance(&a.id).await?),
            in_wallet: chain.wallet_has(&a.key).await?,
        });
    }
    Ok(rows)
}

/// `actor control set`: ChangeWorkerAddress sent from the owner, the worker kept and `control`
/// the new control addresses; the message's CID.
pub async fn set_control(chain: &dyn Chain, control: Vec<Address>) -> Result<String, ChainError> {
    let mi = chain.addresses().await?;
    let call = lotus::Call::of(&lotus::miner::ChangeWorkerAddressParams {
        new_worker: mi.worker.id,
        new_control_addresses: control,
    })?;
    chain
        .send(
            mi.owner.id,
            call,
            TokenAmount::default(),
            TokenAmount::default(),
        )
        .await
}
