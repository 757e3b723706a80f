//! What `sealer init` checks of a chain node and a miner actor before a repo is made for them,
//! as `lotus-miner init --actor` does: the node speaks the Lotus FullNode v1 API (2.3.0), the
//! actor is a miner on its network, its worker key is BLS (the only kind the miner actor takes)
//! and in the node's wallet, the token may sign (the node signs every message), and the sector
//! size asked for is the actor's. Each refusal is a [`Refusal`] naming what is wrong.

use std::time::Duration;

use api::fullnode as f;
use api::{ApiInfo, Client, ClientError};
use lotus::json::wire::{Addr, TipSetKey};
use lotus::state::FULL_API_VERSION;
use lotus::Address;
use resources::SectorSize;

/// What the node and the chain say of the miner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub network: String,
    pub node_version: String,
    pub sector_size: SectorSize,
    pub owner: Address,
    pub worker: Address,
    pub worker_key: Address,
    pub control: Vec<Address>,
}

/// Why a node or miner cannot be sealed for.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("chain node at {url}: {source}")]
    Node {
        url: String,
        #[source]
        source: ClientError,
    },
    #[error(
        "the node at {url} speaks FullNode API {got}, not {want} (Lotus v1): use a Lotus node of \
         a matching release"
    )]
    ApiVersion {
        url: String,
        got: String,
        want: String,
    },
    #[error("actor {actor} not found on {network} ({url}): {reason}")]
    NoMiner {
        actor: Address,
        network: String,
        url: String,
        reason: String,
    },
    #[error(
        "the worker of {actor}, {worker}, has key {key}, which is not BLS: the miner actor takes \
         only BLS worker keys"
    )]
    WorkerNotBls {
        actor: Address,
        worker: Address,
        key: Address,
    },
    #[error(
        "the node's wallet does not hold the worker's key {key} (worker {worker} of {actor}): \
         import it there (`lotus wallet import`), since the node signs every message"
    )]
    WorkerKeyMissing {
        actor: Address,
        worker: Address,
        key: Address,
    },
    #[error(
        "the node's token grants {has:?}, not \"sign\": messages are signed by the node \
         (MpoolPushMessage); make one with `lotus auth create-token --perm sign`"
    )]
    TokenCannotSign { has: Vec<String> },
    #[error(
        "CreateMiner from {owner} (worker {worker}) failed on {network}: message {message}, exit \
         code {exit}"
    )]
    CreateMinerFailed {
        owner: Address,
        worker: Address,
        network: String,
        message: String,
        exit: String,
    },
    #[error("the CreateMiner message {message} returned {reason}")]
    CreateMinerReturn { message: String, reason: String },
    #[error("{actor} has {on_chain} sectors on {network}, not {asked} (--sector-size)")]
    SectorSize {
        actor: Address,
        network: String,
        on_chain: String,
        asked: SectorSize,
    },
}

fn version_text(v: u64) -> String {
    format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
}

/// A node checked to speak the FullNode v1 API: its client, URL, network and version.
struct Node {
    rpc: Client,
    url: String,
    network: String,
    version: String,
}

impl Node {
    fn error(&self, source: ClientError) -> Refusal {
        Refusal::Node {
            url: self.url.clone(),
            source,
        }
    }
}

/// Reaches the node of `info` and checks its API version; reads its network's name.
async fn reach(info: &ApiInfo, patience: Duration) -> Result<Node, Refusal> {
    let rpc = Client::new_at(info, f::PATH, patience);
    let url = rpc.url().to_string();
    let node = |source| Refusal::Node {
        url: url.clone(),
        source,
    };
    let v = rpc.request::<f::Version0>(()).await.map_err(node)?;
    if v.api_version != FULL_API_VERSION {
        return Err(Refusal::ApiVersion {
            url,
            got: version_text(v.api_version),
            want: version_text(FULL_API_VERSION),
        });
    }
    let network = rpc
        .request::<f::StateGetNetworkParams>(())
        .await
        .map_err(node)?
        .network_name;
    crate::client::use_network_prefix(&network);
    Ok(Node {
        rpc,
        url,
        network,
        version: v.version,
    })
}

/// Creates a miner actor as `lotus-miner init` does without `--actor`: CreateMiner sent to the
/// power actor from `owner` (a key the node's wallet holds), `worker` a BLS key's account, for
/// sectors of `size`; waits for `confidence` epochs on top of it. The new actor's ID.
pub async fn create_miner(
    info: &ApiInfo,
    owner: Address,
    worker: Address,
    size: SectorSize,
    confidence: u64,
) -> Result<u64, Refusal> {
    let n = reach(info, Duration::from_secs(600)).await?;
    let params = lotus::power::CreateMinerParams {
        owner,
        worker,
        window_post_proof_type: lotus::RegisteredPoStProof::from(
            size.seal_proof().window_post().number(),
        ),
        peer: Vec::new(),
        multiaddrs: Vec::new(),
    };
    let m = params
        .message(owner)
        .map_err(|e| n.error(ClientError::Rpc(api::RpcError::app(e))))?;
    let signed = n
        .rpc
        .request::<f::MpoolPushMessage>((lotus::json::MessageJson::from(&m), None))
        .await
        .map_err(|e| n.error(e))?;
    let signed: lotus::SignedMessage = signed
        .try_into()
        .map_err(|e: lotus::EncodingError| n.error(ClientError::Rpc(api::RpcError::app(e))))?;
    let cid = signed.cid();
    let l = n
        .rpc
        .request::<f::StateWaitMsg>((lotus::json::wire::CidJson(cid), confidence, -1, true))
        .await
        .map_err(|e| n.error(e))?;
    if l.receipt.exit_code != 0 {
        return Err(Refusal::CreateMinerFailed {
            owner,
            worker,
            network: n.network,
            message: l.message.to_string(),
            exit: lotus::exit_code_text(l.receipt.exit_code),
        });
    }
    let ret: lotus::power::CreateMinerReturn =
        lotus::fvm_ipld_encoding::from_slice(l.receipt.r#return.bytes()).map_err(|e| {
            Refusal::CreateMinerReturn {
                message: l.message.to_string(),
                reason: e.to_string(),
            }
        })?;
    ret.id_address.id().map_err(|_| Refusal::CreateMinerReturn {
        message: l.message.to_string(),
        reason: format!("{} is not an ID address", ret.id_address),
    })
}

/// Checks the node of `info` and miner `actor` (and, if given, that its sectors are `size`).
pub async fn check(
    info: &ApiInfo,
    actor: u64,
    size: Option<SectorSize>,
) -> Result<NodeFacts, Refusal> {
    let n = reach(info, Duration::from_secs(30)).await?;
    let (rpc, url, network) = (&n.rpc, n.url.clone(), n.network.clone());
    let node = |source| Refusal::Node {
        url: url.clone(),
        source,
    };
    let head = TipSetKey::default;
    let miner = Address::new_id(actor);
    let mi = match rpc
        .request::<f::StateMinerInfo>((Addr(miner), head()))
        .await
    {
        Ok(mi) => mi,
        Err(ClientError::Rpc(e)) => {
            return Err(Refusal::NoMiner {
                actor: miner,
                network,
                url,
                reason: e.message,
            })
        }
        Err(e) => return Err(node(e)),
    };
    let sector_size = match SectorSize::from_bytes(mi.sector_size) {
        Some(s) if size.is_none_or(|asked| asked == s) => s,
        _ => {
            return Err(Refusal::SectorSize {
                actor: miner,
                network,
                on_chain: SectorSize::from_bytes(mi.sector_size)
                    .map_or_else(|| format!("{} byte", mi.sector_size), |s| s.to_string()),
                asked: size.unwrap_or(SectorSize::S2KiB),
            })
        }
    };
    let key = rpc
        .request::<f::StateAccountKey>((Addr(mi.worker), head()))
        .await
        .map_err(node)?
        .0;
    if key.protocol() != lotus::fvm_shared::address::Protocol::BLS {
        return Err(Refusal::WorkerNotBls {
            actor: miner,
            worker: mi.worker,
            key,
        });
    }
    let perms = rpc
        .request::<f::AuthVerify>((info.token.clone(),))
        .await
        .map_err(node)?;
    if !perms.contains(&stores::Permission::Sign) {
        let has = perms
            .iter()
            .map(|p| format!("{p:?}").to_lowercase())
            .collect();
        return Err(Refusal::TokenCannotSign { has });
    }
    if !rpc
        .request::<f::WalletHas>((Addr(key),))
        .await
        .map_err(node)?
    {
        return Err(Refusal::WorkerKeyMissing {
            actor: miner,
            worker: mi.worker,
            key,
        });
    }
    Ok(NodeFacts {
        network,
        node_version: n.version,
        sector_size,
        owner: mi.owner,
        worker: mi.worker,
        worker_key: key,
        control: mi.control_addresses,
    })
}
