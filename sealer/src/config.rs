//! `config.toml`: lotus's section and key names where lotus has them. Unknown keys and bad values
//! are errors that name the key and the file.

use std::path::Path;
use std::time::Duration;

use resources::SectorSize;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Config {
    #[serde(rename = "API", default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub miner: MinerConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub sealing: SealingConfig,
    #[serde(default)]
    pub chain: ChainConfig,
    #[serde(default)]
    pub proofs: ProofsConfig,
    #[serde(default)]
    pub proving: ProvingConfig,
    #[serde(default)]
    pub fees: FeesConfig,
    #[serde(default)]
    pub addresses: AddressesConfig,
}

/// `[Fees]`, lotus-miner's names and defaults: the most each message's gas may cost (its
/// MaxFee), in FIL as lotus writes it ("0.025 FIL").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase", default)]
pub struct FeesConfig {
    pub max_pre_commit_gas_fee: String,
    pub max_commit_gas_fee: String,
    #[serde(rename = "MaxWindowPoStGasFee")]
    pub max_window_post_gas_fee: String,
    /// `[Fees.MaxPreCommitBatchGasFee]`: Base + PerSector × sectors in the batch.
    pub max_pre_commit_batch_gas_fee: BatchFeeConfig,
    pub max_commit_batch_gas_fee: BatchFeeConfig,
    pub max_terminate_gas_fee: String,
    /// A market setting (deals are not taken here): read and unused, as lotus-miner's config
    /// has it.
    pub max_publish_deals_fee: String,
}

impl Default for FeesConfig {
    fn default() -> Self {
        FeesConfig {
            max_pre_commit_gas_fee: "0.025 FIL".into(),
            max_commit_gas_fee: "0.05 FIL".into(),
            max_window_post_gas_fee: "5 FIL".into(),
            max_pre_commit_batch_gas_fee: BatchFeeConfig::new("0 FIL", "0.02 FIL"),
            max_commit_batch_gas_fee: BatchFeeConfig::new("0 FIL", "0.03 FIL"),
            max_terminate_gas_fee: "0.5 FIL".into(),
            max_publish_deals_fee: "0.05 FIL".into(),
        }
    }
}

/// A batch message's fee cap, lotus's `[Fees.MaxPreCommitBatchGasFee]` table. A plain amount
/// (what this sealer's configs said before) is read as the Base with nothing per sector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchFeeConfig {
    Table(BatchFeeTable),
    Flat(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct BatchFeeTable {
    pub base: String,
    pub per_sector: String,
}

impl BatchFeeConfig {
    fn new(base: &str, per_sector: &str) -> Self {
        BatchFeeConfig::Table(BatchFeeTable {
            base: base.into(),
            per_sector: per_sector.into(),
        })
    }

    /// Base and per sector, or the key and why not.
    fn amounts(
        &self,
        key: &str,
    ) -> Result<(lotus::TokenAmount, lotus::TokenAmount), (String, String)> {
        let fil = |sub: &str, v: &str| {
            lotus::json::parse_fil(v).map_err(|e| (format!("Fees.{key}{sub}"), e.to_string()))
        };
        match self {
            BatchFeeConfig::Table(t) => {
                Ok((fil(".Base", &t.base)?, fil(".PerSector", &t.per_sector)?))
            }
            BatchFeeConfig::Flat(v) => Ok((fil("", v)?, lotus::TokenAmount::default())),
        }
    }
}

/// `[Addresses]`, lotus-miner's names: which control addresses send which messages, and
/// whether the worker and owner may stand in ([`crate::funds::Senders`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase", default)]
pub struct AddressesConfig {
    pub pre_commit_control: Vec<String>,
    pub commit_control: Vec<String>,
    pub terminate_control: Vec<String>,
    pub deal_publish_control: Vec<String>,
    pub disable_owner_fallback: bool,
    pub disable_worker_fallback: bool,
}

/// `[Fees]` as amounts.
#[derive(Debug, Clone, PartialEq)]
pub struct Fees {
    pub pre_commit: lotus::TokenAmount,
    pub commit: lotus::TokenAmount,
    pub window_post: lotus::TokenAmount,
    pub terminate: lotus::TokenAmount,
}

impl Default for Fees {
    fn default() -> Self {
        FeesConfig::default()
            .amounts()
            .expect("the defaults are amounts")
    }
}

impl FeesConfig {
    /// The amounts, or the key of the first that is not one.
    fn amounts(&self) -> Result<Fees, (String, String)> {
        let fil = |key: &str, v: &str| {
            lotus::json::parse_fil(v).map_err(|e| (format!("Fees.{key}"), e.to_string()))
        };
        self.max_pre_commit_batch_gas_fee
            .amounts("MaxPreCommitBatchGasFee")?;
        self.max_commit_batch_gas_fee
            .amounts("MaxCommitBatchGasFee")?;
        fil("MaxPublishDealsFee", &self.max_publish_deals_fee)?;
        Ok(Fees {
            pre_commit: fil("MaxPreCommitGasFee", &self.max_pre_commit_gas_fee)?,
            commit: fil("MaxCommitGasFee", &self.max_commit_gas_fee)?,
            window_post: fil("MaxWindowPoStGasFee", &self.max_window_post_gas_fee)?,
            terminate: fil("MaxTerminateGasFee", &self.max_terminate_gas_fee)?,
        })
    }
}

/// `[Proving]`, as lotus-miner's: who computes PoSts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase", default)]
pub struct ProvingConfig {
    /// The sealer's own worker never computes WindowPoSts; without a `--windowpost` worker
    /// that reaches the sectors, they wait (and deadlines are missed). Off (the default), it
    /// computes them only while no such worker is connected.
    #[serde(rename = "DisableBuiltinWindowPoSt")]
    pub disable_builtin_window_post: bool,
    /// The same for WinningPoSts and `--winningpost` workers.
    #[serde(rename = "DisableBuiltinWinningPoSt")]
    pub disable_builtin_winning_post: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase", default)]
pub struct ApiConfig {
    /// Where the JSON-RPC API listens (a multiaddr, as lotus writes it).
    pub listen_address: String,
    /// The address workers and other machines use to reach this daemon (host:port); empty: the
    /// listen address.
    pub remote_listen_address: String,
    /// How long a CLI call waits for an answer.
    pub timeout: String,
    /// Serve `GET /metrics` without a token (lotus serves its metrics open); the dashboard and
    /// the API always need one.
    pub metrics_without_token: bool,
    /// Count events for `/metrics` (false: nothing is counted and `/metrics` answers 404; the
    /// dispatch benchmark's baseline).
    pub metrics: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen_address: "/ip4/127.0.0.1/tcp/2345/http".into(),
            remote_listen_address: String::new(),
            timeout: "30s".into(),
            metrics_without_token: false,
            metrics: true,
        }
    }
}

/// The miner actor this repo seals for (lotus keeps it in its metadata store; here it is
/// written by `sealer init`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase", default)]
pub struct MinerConfig {
    pub actor: String,
    pub sector_size: String,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            actor: "t01000".into(),
            sector_size: "2KiB".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase", default)]
pub struct StorageConfig {
    pub parallel_fetch_limit: u64,
    pub allow_add_piece: bool,
    pub allow_pre_commit1: bool,
    pub allow_pre_commit2: bool,
    pub allow_commit: bool,
    pub allow_unseal: bool,
    /// `utilization` (lotus's default) or `spread`.
    pub assigner: String,
    /// Count a task's memory as the highest peak RSS its processors reached on that worker (type
    /// and size) plus a tenth, once one was seen, instead of the resource table. Off: lotus's
    /// table.
    pub measured_memory: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            parallel_fetch_limit: 10,
            allow_add_piece: true,
            allow_pre_commit1: true,
            allow_pre_commit2: true,
            allow_commit: true,
            allow_unseal: true,
            assigner: "utilization".into(),
            measured_memory: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase", default)]
pub struct SealingConfig {
    /// Sectors sealing at once (pledges beyond are refused); 0 = no limit.
    pub max_sealing_sectors: u64,
    /// How long a failed sector waits before it is retried (lotus: 1 minute).
    pub retry_cooldown: String,
    /// Retries of one step before the sector falls back (PC2 -> PC1) or stops (FailedUnrecoverable).
    pub max_retries: u32,
    /// Rebuild a committed-capacity sector's lost replica by itself (PC1 of zeros and PC2 with
    /// the recorded ticket): before its prove-commit when no healthy path holds its files any
    /// more, and after Proving when WindowPoSt finds it unreadable. Off: a pre-committed sector
    /// waits in RebuildWait, a Proving one stays faulty; `sectors rebuild N` starts either.
    pub rebuild_lost_sectors: bool,
    /// How long a committed-capacity sector is committed for, from its ticket (lotus's key
    /// and default, 540 days; 180 to 1278 days, as the miner actor allows).
    pub committed_capacity_sector_lifetime: String,
    /// Pay pre-commit deposits and initial pledge from the miner actor's available balance
    /// first, sending only what it lacks as the message's value (lotus's key; its default is
    /// false, which sends the whole collateral every time).
    pub collateral_from_miner_balance: bool,
    /// With CollateralFromMinerBalance: what of the actor's available balance is left alone.
    pub available_balance_buffer: String,
    /// With CollateralFromMinerBalance: send no value at all, ever (the actor must hold it).
    pub disable_collateral_fallback: bool,
    /// Pre-commit in batches (PreCommitSectorBatch2 with many sectors): a sector waits in
    /// SubmitPreCommitBatch until the batch goes (lotus's keys and defaults).
    pub batch_pre_commits: bool,
    /// Sent at once when this many wait (the miner actor takes at most 256).
    pub max_pre_commit_batch: u64,
    /// The longest a sector waits for its pre-commit batch.
    pub pre_commit_batch_wait: String,
    /// Sent this long before a member's ticket expires.
    pub pre_commit_batch_slack: String,
    /// Below this network base fee, pre-commits go one by one (batching would cost more).
    pub batch_pre_commit_above_base_fee: String,
    /// Prove-commit in batches (ProveCommitSectors3 with many sectors), one proof per sector:
    /// SnarkPack aggregation is not done (it needs the v28-fil-inner-product-v1.srs file).
    pub aggregate_commits: bool,
    /// The fewest sectors lotus aggregates; read, and unused without aggregation.
    pub min_commit_batch: u64,
    /// Sent at once when this many wait (819 at most).
    pub max_commit_batch: u64,
    /// The longest a sector waits for its prove-commit batch.
    pub commit_batch_wait: String,
    /// Sent this long before a member's prove-commit window closes.
    pub commit_batch_slack: String,
    /// Below this network base fee, prove-commits go one by one.
    pub aggregate_above_base_fee: String,
}

impl Default for SealingConfig {
    fn default() -> Self {
        SealingConfig {
            max_sealing_sectors: 0,
            retry_cooldown: "1m".into(),
            max_retries: 3,
            rebuild_lost_sectors: true,
            committed_capacity_sector_lifetime: "12960h0m0s".into(),
            collateral_from_miner_balance: true,
            available_balance_buffer: "0 FIL".into(),
            disable_collateral_fallback: false,
            batch_pre_commits: true,
            max_pre_commit_batch: 256,
            pre_commit_batch_wait: "24h0m0s".into(),
            pre_commit_batch_slack: "3h0m0s".into(),
            batch_pre_commit_above_base_fee: "0.00000000032 FIL".into(),
            aggregate_commits: true,
            min_commit_batch: 4,
            max_commit_batch: 819,
            commit_batch_wait: "24h0m0s".into(),
            commit_batch_slack: "1h0m0s".into(),
            aggregate_above_base_fee: "0.00000000032 FIL".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase", default)]
pub struct ChainConfig {
    /// `devnet`: the embedded devnet, served as a Lotus FullNode on DevnetListenAddress (the
    /// sealer reaches it through its Lotus client like any node). `lotus`: the Lotus node of
    /// `FULLNODE_API_INFO` (or ApiInfo). `local` is read as `devnet`.
    pub mode: String,
    /// Lotus mode: `<token>:/ip4/<host>/tcp/<port>/http`, lotus-miner's FULLNODE_API_INFO
    /// (the environment variable wins).
    pub api_info: String,
    /// Devnet mode: where the devnet node serves its FullNode API (port 0: any free port; the
    /// daemon logs the FULLNODE_API_INFO and writes it to `<repo>/fullnode_api`).
    pub devnet_listen_address: String,
    /// Time between epochs.
    pub block_delay: String,
    /// Epochs between a pre-commit landing and its seed (mainnet 150; local default 10).
    pub pre_commit_challenge_delay: u64,
    /// Epochs per WindowPoSt deadline; a proving period is 48 of them (mainnet 60).
    #[serde(rename = "WPoStChallengeWindow")]
    pub wpost_challenge_window: u64,
    /// Raw power of the rest of the devnet network: the miner is elected to make an epoch's
    /// block with probability its power / (its power + this). "0": every epoch it has power.
    /// The default (5 MiB) elects a devnet miner with a few 2KiB sectors now and then (five
    /// leaders expected per epoch: a share of 1/2561 wins about one epoch in 500).
    pub other_network_power: String,
    /// What the devnet's genesis gives the miner's worker (it pays deposits, pledge and gas).
    pub devnet_worker_funds: String,
    /// Epochs on top of a pre-commit or prove-commit before the sector moves on (lotus's
    /// MessageConfidence, 5): a reorg shallower than this sends the message again.
    pub message_confidence: u64,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            mode: "devnet".into(),
            api_info: String::new(),
            devnet_listen_address: "127.0.0.1:0".into(),
            block_delay: "4s".into(),
            pre_commit_challenge_delay: 10,
            wpost_challenge_window: 60,
            other_network_power: "5MiB".into(),
            devnet_worker_funds: "100 FIL".into(),
            message_confidence: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase", default)]
pub struct ProofsConfig {
    /// `real` (filecoin-proofs) or `mock` (instant, NOT real proofs: tests and demos only).
    pub engine: String,
    /// Where Groth16 parameters live; empty: FIL_PROOFS_PARAMETER_CACHE or
    /// /var/tmp/filecoin-proof-parameters.
    pub parameter_cache: String,
    /// Mock engine only: how long tasks take, e.g. `"PC1=1s,PC2=2s,C2=500ms"` (empty: instant).
    pub mock_delays: String,
    /// Mock engine only (fault injection for tests): the first this many C2 proofs the sealer's
    /// own worker makes are corrupt.
    pub mock_corrupt_proofs: u32,
}

impl Default for ProofsConfig {
    fn default() -> Self {
        ProofsConfig {
            engine: "real".into(),
            parameter_cache: String::new(),
            mock_delays: String::new(),
            mock_corrupt_proofs: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {reason}")]
    Read { file: String, reason: String },
    #[error("{file}: {key}: {reason}")]
    Key {
        file: String,
        key: String,
        reason: String,
    },
}

/// Which chain the sealer works with.
#[derive(Debug, Clone)]
pub enum ChainMode {
    /// The embedded devnet, served on `listen`.
    Devnet { listen: std::net::SocketAddr },
    /// A Lotus node.
    Lotus { info: api::ApiInfo },
}

/// The checked values of a config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: std::net::SocketAddr,
    pub timeout: Duration,
    pub actor: u64,
    pub sector_size: SectorSize,
    pub assigner: sched::Assigner,
    pub retry_cooldown: Duration,
    pub chain: ChainMode,
    pub block_delay: Duration,
    pub other_network_power: u64,
    pub mock: bool,
    pub mock_delays: Vec<(resources::TaskType, Duration)>,
    pub fees: Fees,
    /// `[Sealing] CommittedCapacitySectorLifetime`, in 30 s epochs.
    pub cc_lifetime_epochs: i64,
    /// `[Sealing] CollateralFromMinerBalance` and its companions.
    pub collateral: crate::funds::Collateral,
    /// `[Chain] DevnetWorkerFunds`.
    pub devnet_worker_funds: lotus::TokenAmount,
    /// `[Addresses]`.
    pub senders: crate::funds::Senders,
    /// `[Chain] MessageConfidence`.
    pub message_confidence: i64,
    /// `[Sealing]`'s batch keys and `[Fees]`' batch fees.
    pub batching: crate::batch::Batching,
}

impl Config {
    /// Reads and checks `file`.
    pub fn load(file: &Path) -> Result<(Config, Settings), ConfigError> {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Read {
            file: name.clone(),
            reason: e.to_string(),
        })?;
        Config::parse(&text, &name)
    }

    pub fn parse(text: &str, file: &str) -> Result<(Config, Settings), ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Read {
            file: file.to_string(),
            reason: e.to_string(),
        })?;
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let reason = e.into_inner().message().to_string();
            ConfigError::Key {
                file: file.to_string(),
                key,
                reason,
            }
        })?;
        let settings = cfg.check(file)?;
        Ok((cfg, settings))
    }

    /// Validates values, naming the key of the first bad one.
    pub fn check(&self, file: &str) -> Result<Settings, ConfigError> {
        let bad = |key: &str, reason: String| ConfigError::Key {
            file: file.to_string(),
            key: key.to_string(),
            reason,
        };
        let listen = api::client::multiaddr_to_addr(&self.api.listen_address)
            .and_then(|a| {
                a.parse::<std::net::SocketAddr>()
                    .map_err(|_| format!("{a:?} is not an IP address and port"))
            })
            .map_err(|e| bad("API.ListenAddress", e))?;
        let remote = self.api.remote_listen_address.trim();
        if remote.is_empty() {
            if listen.ip().is_unspecified() {
                return Err(bad(
                    "API.RemoteListenAddress",
                    format!(
                        "is empty while API.ListenAddress listens on every interface ({}): workers \
                         would be told to reach this sealer at {listen}; set RemoteListenAddress \
                         to the host:port other machines reach it at (e.g. \"10.0.0.5:{}\")",
                        self.api.listen_address,
                        listen.port()
                    ),
                ));
            }
        } else {
            check_host_port(remote).map_err(|e| bad("API.RemoteListenAddress", e))?;
        }
        let timeout = parse_duration(&self.api.timeout).map_err(|e| bad("API.Timeout", e))?;
        let actor = parse_actor(&self.miner.actor).map_err(|e| bad("Miner.Actor", e))?;
        let sector_size: SectorSize = self.miner.sector_size.parse().map_err(|_| {
            bad(
                "Miner.SectorSize",
                format!(
                    "unknown sector size {:?} (expected one of 2KiB, 8MiB, 512MiB, 32GiB, 64GiB)",
                    self.miner.sector_size
                ),
            )
        })?;
        if self.storage.parallel_fetch_limit == 0 {
            return Err(bad(
                "Storage.ParallelFetchLimit",
                "must be at least 1".into(),
            ));
        }
        let assigner = self
            .storage
            .assigner
            .parse()
            .map_err(|e: sched::SchedError| bad("Storage.Assigner", e.to_string()))?;
        let retry_cooldown = parse_duration(&self.sealing.retry_cooldown)
            .map_err(|e| bad("Sealing.RetryCooldown", e))?;
        let chain = match self.chain.mode.as_str() {
            "devnet" | "local" => {
                let listen = self
                    .chain
                    .devnet_listen_address
                    .parse()
                    .map_err(|e| bad("Chain.DevnetListenAddress", format!("{e}")))?;
                ChainMode::Devnet { listen }
            }
            "lotus" => {
                let text = std::env::var("FULLNODE_API_INFO")
                    .ok()
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| self.chain.api_info.clone());
                if text.is_empty() {
                    return Err(bad(
                        "Chain.ApiInfo",
                        "lotus mode needs FULLNODE_API_INFO or Chain.ApiInfo (<token>:/ip4/<host>/tcp/<port>/http)".into(),
                    ));
                }
                let info =
                    api::ApiInfo::parse(&text).map_err(|e| bad("Chain.ApiInfo", e.to_string()))?;
                ChainMode::Lotus { info }
            }
            other => {
                return Err(bad(
                    "Chain.Mode",
                    format!("unknown chain mode {other:?} (\"devnet\" or \"lotus\")"),
                ))
            }
        };
        let block_delay =
            parse_duration(&self.chain.block_delay).map_err(|e| bad("Chain.BlockDelay", e))?;
        if block_delay < Duration::from_millis(10) {
            return Err(bad(
                "Chain.BlockDelay",
                format!("{:?} is below the 10ms minimum", self.chain.block_delay),
            ));
        }
        let other_network_power = resources::parse_bytes(&self.chain.other_network_power)
            .map_err(|e| bad("Chain.OtherNetworkPower", e))?;
        let mock = match self.proofs.engine.as_str() {
            "real" => false,
            "mock" => true,
            other => {
                return Err(bad(
                    "Proofs.Engine",
                    format!("unknown engine {other:?} (expected \"real\" or \"mock\")"),
                ))
            }
        };
        let mut mock_delays = Vec::new();
        for part in self
            .proofs
            .mock_delays
            .split(',')
            .filter(|p| !p.trim().is_empty())
        {
            let (t, d) = part.split_once('=').ok_or_else(|| {
                bad(
                    "Proofs.MockDelays",
                    format!("{part:?} is not TASK=DURATION (e.g. PC2=2s)"),
                )
            })?;
            let t = t
                .trim()
                .parse()
                .map_err(|e: resources::task::UnknownTaskType| {
                    bad("Proofs.MockDelays", e.to_string())
                })?;
            let d = parse_duration(d).map_err(|e| bad("Proofs.MockDelays", e))?;
            mock_delays.push((t, d));
        }
        let fees = self
            .fees
            .amounts()
            .map_err(|(key, reason)| bad(&key, reason))?;
        let a = &self.addresses;
        let list = |key: &str, list: &[String]| {
            list.iter()
                .map(|s| {
                    lotus::json::parse_address(s)
                        .map_err(|e| bad(&format!("Addresses.{key}"), format!("{s:?}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        list("DealPublishControl", &a.deal_publish_control)?;
        let senders = crate::funds::Senders {
            pre_commit: list("PreCommitControl", &a.pre_commit_control)?,
            commit: list("CommitControl", &a.commit_control)?,
            terminate: list("TerminateControl", &a.terminate_control)?,
            disable_owner_fallback: a.disable_owner_fallback,
            disable_worker_fallback: a.disable_worker_fallback,
        };
        let lifetime = parse_duration(&self.sealing.committed_capacity_sector_lifetime)
            .map_err(|e| bad("Sealing.CommittedCapacitySectorLifetime", e))?;
        let cc_lifetime_epochs = (lifetime.as_secs() / EPOCH_SECS) as i64;
        let days = lifetime.as_secs_f64() / 86_400.0;
        if !(MIN_LIFETIME_DAYS as f64..=MAX_LIFETIME_DAYS as f64).contains(&days) {
            return Err(bad(
                "Sealing.CommittedCapacitySectorLifetime",
                format!(
                    "{:?} is {days:.1} days; the miner actor takes {MIN_LIFETIME_DAYS} to \
                     {MAX_LIFETIME_DAYS} days",
                    self.sealing.committed_capacity_sector_lifetime
                ),
            ));
        }
        let fil =
            |key: &str, v: &str| lotus::json::parse_fil(v).map_err(|e| bad(key, e.to_string()));
        let collateral = crate::funds::Collateral {
            from_miner_balance: self.sealing.collateral_from_miner_balance,
            buffer: fil(
                "Sealing.AvailableBalanceBuffer",
                &self.sealing.available_balance_buffer,
            )?,
            no_fallback: self.sealing.disable_collateral_fallback,
        };
        let devnet_worker_funds = fil("Chain.DevnetWorkerFunds", &self.chain.devnet_worker_funds)?;
        let batching = self.batching(file)?;
        Ok(Settings {
            batching,
            fees,
            cc_lifetime_epochs,
            collateral,
            devnet_worker_funds,
            senders,
            message_confidence: self.chain.message_confidence as i64,
            listen,
            timeout,
            actor,
            sector_size,
            assigner,
            retry_cooldown,
            chain,
            block_delay,
            other_network_power,
            mock,
            mock_delays,
        })
    }

    /// `[Sealing]`'s batch keys, checked against the miner actor's limits.
    fn batching(&self, file: &str) -> Result<crate::batch::Batching, ConfigError> {
        use crate::batch::{BatchConfig, BatchKind, Batching};
        let bad = |key: &str, reason: String| ConfigError::Key {
            file: file.to_string(),
            key: format!("Sealing.{key}"),
            reason,
        };
        let c = &self.sealing;
        let dur = |key: &str, v: &str| parse_duration(v).map_err(|e| bad(key, e));
        let fil =
            |key: &str, v: &str| lotus::json::parse_fil(v).map_err(|e| bad(key, e.to_string()));
        let count = |key: &str, n: u64, most: u64| match n {
            1.. if n <= most => Ok(n as usize),
            _ => Err(bad(
                key,
                format!("{n} is not from 1 to {most} (the miner actor's limit)"),
            )),
        };
        let fee = |f: &BatchFeeConfig, key: &str| {
            f.amounts(key).map_err(|(key, reason)| ConfigError::Key {
                file: file.to_string(),
                key,
                reason,
            })
        };
        let (pre_base, pre_per) = fee(
            &self.fees.max_pre_commit_batch_gas_fee,
            "MaxPreCommitBatchGasFee",
        )?;
        let (com_base, com_per) = fee(&self.fees.max_commit_batch_gas_fee, "MaxCommitBatchGasFee")?;
        Ok(Batching {
            precommit: BatchConfig {
                kind: BatchKind::PreCommit,
                enabled: c.batch_pre_commits,
                max: count("MaxPreCommitBatch", c.max_pre_commit_batch, 256)?,
                min: 1,
                wait: dur("PreCommitBatchWait", &c.pre_commit_batch_wait)?,
                slack: dur("PreCommitBatchSlack", &c.pre_commit_batch_slack)?,
                above_base_fee: fil(
                    "BatchPreCommitAboveBaseFee",
                    &c.batch_pre_commit_above_base_fee,
                )?,
                fee_base: pre_base,
                fee_per_sector: pre_per,
            },
            commit: BatchConfig {
                kind: BatchKind::Commit,
                enabled: c.aggregate_commits,
                max: count("MaxCommitBatch", c.max_commit_batch, 819)?,
                min: count("MinCommitBatch", c.min_commit_batch, 819)?,
                wait: dur("CommitBatchWait", &c.commit_batch_wait)?,
                slack: dur("CommitBatchSlack", &c.commit_batch_slack)?,
                above_base_fee: fil("AggregateAboveBaseFee", &c.aggregate_above_base_fee)?,
                fee_base: com_base,
                fee_per_sector: com_per,
            },
        })
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes")
    }
}

/// Seconds per epoch on Filecoin's networks (what a sector's lifetime is counted in).
const EPOCH_SECS: u64 = 30;
/// The miner actor's bounds on a new sector's lifetime (MinSectorExpiration, 180 days;
/// MaxSectorExpirationExtension, 1278 days).
const MIN_LIFETIME_DAYS: u64 = 180;
const MAX_LIFETIME_DAYS: u64 = 1278;

/// `t01000` / `f01000` -> 1000.
pub fn parse_actor(s: &str) -> Result<u64, String> {
    s.strip_prefix("t0")
        .or_else(|| s.strip_prefix("f0"))
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| format!("{s:?} is not an ID address (expected t0<number>, e.g. t01000)"))
}

pub fn actor_name(id: u64) -> String {
    format!("t0{id}")
}

/// `500ms`, `4s`, `1m`, `2h`, `1m30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("bad duration {s:?} (expected e.g. 500ms, 4s, 1m, 1h)");
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::from_secs_f64(value * scale);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// `host:port` that another machine can dial: a name or an IP that is not 0.0.0.0 / `::`.
fn check_host_port(s: &str) -> Result<(), String> {
    if s.contains("://") || s.starts_with('/') {
        return Err(format!(
            "{s:?} is not host:port (write e.g. \"10.0.0.5:2345\", no scheme or multiaddr)"
        ));
    }
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not host:port (no port)"))?;
    port.parse::<u16>()
        .map_err(|_| format!("{s:?}: port {port:?} is not a number from 0 to 65535"))?;
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty()
        || ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
    {
        return Err(format!(
            "{s:?} is not an address other machines can reach (no host, or 0.0.0.0 / ::)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip() {
        let text = Config::default().to_toml();
        let (cfg, s) = Config::parse(&text, "config.toml").unwrap();
        assert_eq!(cfg, Config::default());
        assert_eq!(s.actor, 1000);
        assert_eq!(s.listen.port(), 2345);
        assert!(!s.mock);
        assert!(text.contains("[API]") && text.contains("AllowPreCommit1"));
    }

    #[test]
    fn errors_name_key_and_file() {
        let e = Config::parse("[Sealing]\nMaxSealingSector = 3\n", "/r/config.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/r/config.toml") && e.contains("MaxSealingSector"),
            "{e}"
        );
        let e = Config::parse("[Sealing]\nMaxSealingSectors = \"x\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Sealing.MaxSealingSectors"), "{e}");
        let e = Config::parse("[Miner]\nSectorSize = \"3KiB\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Miner.SectorSize") && e.contains("3KiB"), "{e}");
        let e = Config::parse("[Chain]\nBlockDelay = \"fast\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Chain.BlockDelay"), "{e}");
    }

    #[test]
    fn every_interface_needs_an_advertised_address() {
        let any = "[API]\nListenAddress = \"/ip4/0.0.0.0/tcp/2345/http\"\n";
        let e = Config::parse(any, "/r/config.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/r/config.toml")
                && e.contains("API.RemoteListenAddress")
                && e.contains("0.0.0.0:2345"),
            "{e}"
        );
        let ok = format!("{any}RemoteListenAddress = \"10.0.0.5:2345\"\n");
        assert!(Config::parse(&ok, "c.toml").is_ok());
        for bad in [
            "0.0.0.0:2345",
            "10.0.0.5",
            "http://10.0.0.5:2345",
            ":2345",
            "h:x",
        ] {
            let text = format!("[API]\nRemoteListenAddress = \"{bad}\"\n");
            let e = Config::parse(&text, "c.toml").unwrap_err().to_string();
            assert!(e.contains("API.RemoteListenAddress"), "{bad}: {e}");
        }
        let named = "[API]\nRemoteListenAddress = \"sealer.lan:2345\"\n";
        assert!(Config::parse(named, "c.toml").is_ok());
    }

    #[test]
    fn the_example_config_is_the_defaults() {
        let text = include_str!("../../config.example.toml");
        let (cfg, _) = Config::parse(text, "config.example.toml").unwrap();
        assert_eq!(cfg, Config::default());
    }

    #[test]
    fn durations_and_actors() {
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5").is_err());
        assert_eq!(parse_actor("t01000").unwrap(), 1000);
        assert!(parse_actor("t1abc").is_err());
        assert_eq!(actor_name(1000), "t01000");
    }

    #[test]
    fn lotus_fees_addresses_and_lifetime_sections() {
        // Seed 001's [Addresses] section, pasted as is.
        let seed = "[Addresses]\n  PreCommitControl = [] # P2\n  CommitControl = [] # C2\n  \
                    DisableOwnerFallback = true\n  DisableWorkerFallback = false\n";
        let (cfg, s) = Config::parse(seed, "c.toml").unwrap();
        assert!(cfg.addresses.disable_owner_fallback);
        assert_eq!(s.fees, Fees::default());
        assert_eq!(s.fees.pre_commit.atto().to_string(), "25000000000000000");
        assert_eq!(s.cc_lifetime_epochs, 540 * 2880);

        let e = Config::parse("[Addresses]\nCommitControl = [\"t3abc\"]\n", "/r/c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/r/c.toml") && e.contains("Addresses.CommitControl") && e.contains("t3abc"),
            "{e}"
        );
        let (_, s) = Config::parse(
            "[Addresses]\nCommitControl = [\"t01002\"]\nDisableWorkerFallback = true\n",
            "c.toml",
        )
        .unwrap();
        assert_eq!(s.senders.commit, vec![lotus::Address::new_id(1002)]);
        assert!(s.senders.disable_worker_fallback && s.senders.pre_commit.is_empty());
        let e = Config::parse("[Fees]\nMaxCommitGasFee = \"0.05 BTC\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Fees.MaxCommitGasFee") && e.contains("0.05 BTC"),
            "{e}"
        );
        let (_, s) = Config::parse("[Fees]\nMaxWindowPoStGasFee = \"1.5\"\n", "c.toml").unwrap();
        assert_eq!(s.fees.window_post.atto().to_string(), "1500000000000000000");

        // lotus's batch keys and its [Fees.MaxPreCommitBatchGasFee] table; a plain amount (our
        // configs before) is the Base.
        let lotus = "[Sealing]\nBatchPreCommits = true\nMaxPreCommitBatch = 16\n\
                     PreCommitBatchWait = \"1h\"\nAggregateCommits = false\n\
                     [Fees.MaxPreCommitBatchGasFee]\nBase = \"0.1 FIL\"\nPerSector = \"0.01 FIL\"\n\
                     [Fees]\nMaxCommitBatchGasFee = \"0.2 FIL\"\n";
        let (_, s) = Config::parse(lotus, "c.toml").unwrap();
        let (pre, com) = (&s.batching.precommit, &s.batching.commit);
        assert!(pre.enabled && !com.enabled);
        assert_eq!((pre.max, pre.wait), (16, Duration::from_secs(3600)));
        assert_eq!(pre.max_fee(10).atto().to_string(), "200000000000000000");
        assert_eq!(com.max_fee(10).atto().to_string(), "200000000000000000");
        // Lotus's defaults: sent alone under a base fee of 0.32 nanoFIL.
        let d = Config::parse("", "c.toml").unwrap().1.batching;
        assert!(d.precommit.enabled && d.commit.enabled);
        assert!(!d
            .precommit
            .batches_at(Some(&lotus::TokenAmount::from_atto(100))));
        assert_eq!((d.precommit.max, d.commit.max), (256, 819));
        for (bad, key) in [
            ("MaxPreCommitBatch = 257", "Sealing.MaxPreCommitBatch"),
            ("MaxCommitBatch = 0", "Sealing.MaxCommitBatch"),
            ("CommitBatchSlack = \"soon\"", "Sealing.CommitBatchSlack"),
        ] {
            let e = Config::parse(&format!("[Sealing]\n{bad}\n"), "c.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{e}");
        }

        let (_, s) = Config::parse(
            "[Sealing]\nCommittedCapacitySectorLifetime = \"4320h\"\n",
            "c.toml",
        )
        .unwrap();
        assert_eq!(s.cc_lifetime_epochs, 180 * 2880);
        for short_or_long in ["4000h", "31000h"] {
            let text =
                format!("[Sealing]\nCommittedCapacitySectorLifetime = \"{short_or_long}\"\n");
            let e = Config::parse(&text, "c.toml").unwrap_err().to_string();
            assert!(
                e.contains("Sealing.CommittedCapacitySectorLifetime")
                    && e.contains("180 to 1278 days"),
                "{e}"
            );
        }
    }
}
