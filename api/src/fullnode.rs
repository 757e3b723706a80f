//! The Lotus FullNode v1 methods the sealer calls on a chain node, as [`crate::contract`]
//! definitions with Lotus's names, positional parameters and permissions
//! (`documentation/en/api-methods-v1-stable.md`), in Lotus JSON ([`lotus::json`]). The devnet
//! node serves these and nothing else of the FullNode API; the sealer's chain client calls them
//! on the devnet and on a Lotus node alike. `Devnet.MinerTally` is the devnet's own (a Lotus
//! node answers it with -32601 and the client goes without).

use lotus::chain::{
    BlockMsg, BlockTemplate, Deadline, MiningBaseInfo, NetworkParams, SectorLocation, TipSet,
};
use lotus::json::wire::{Addr, Atto, Bytes, CidJson, List, TipSetKey};
use lotus::json::{MessageJson, SendSpec, SignatureJson, SignedMessageJson};
use lotus::state::{
    ActorState, DeadlineInfo, MinerInfo, MinerPower, MsgLookup, Partition, PreCommitInfo,
    SectorOnChainInfo, SectorPreCommitOnChainInfo, Version,
};
use serde::{Deserialize, Serialize};

use crate::contract::methods;

/// The path a FullNode v1 API is served at.
pub const PATH: &str = "/rpc/v1";

methods! {
    Version0 = "Filecoin.Version", Read, () -> Version;
    ChainHead = "Filecoin.ChainHead", Read, () -> TipSet;
    /// Height, and the tipset to look back from (empty: the head).
    ChainGetTipSetByHeight = "Filecoin.ChainGetTipSetByHeight", Read, (i64, TipSetKey) -> TipSet;
    ChainGetMessage = "Filecoin.ChainGetMessage", Read, (CidJson,) -> MessageJson;
    /// Tag, epoch, entropy, tipset.
    StateGetRandomnessFromTickets = "Filecoin.StateGetRandomnessFromTickets", Read,
        (i64, i64, Bytes, TipSetKey) -> Bytes;
    StateGetRandomnessFromBeacon = "Filecoin.StateGetRandomnessFromBeacon", Read,
        (i64, i64, Bytes, TipSetKey) -> Bytes;
    StateNetworkVersion = "Filecoin.StateNetworkVersion", Read, (TipSetKey,) -> u64;
    StateGetNetworkParams = "Filecoin.StateGetNetworkParams", Read, () -> NetworkParams;
    StateMinerInfo = "Filecoin.StateMinerInfo", Read, (Addr, TipSetKey) -> MinerInfo;
    /// The key address of an account (an ID address resolved).
    StateAccountKey = "Filecoin.StateAccountKey", Read, (Addr, TipSetKey) -> Addr;
    StateMinerPower = "Filecoin.StateMinerPower", Read, (Addr, TipSetKey) -> MinerPower;
    StateMinerProvingDeadline = "Filecoin.StateMinerProvingDeadline", Read,
        (Addr, TipSetKey) -> DeadlineInfo;
    StateMinerDeadlines = "Filecoin.StateMinerDeadlines", Read, (Addr, TipSetKey) -> List<Deadline>;
    StateMinerPartitions = "Filecoin.StateMinerPartitions", Read,
        (Addr, u64, TipSetKey) -> List<Partition>;
    StateSectorPreCommitInfo = "Filecoin.StateSectorPreCommitInfo", Read,
        (Addr, u64, TipSetKey) -> Option<SectorPreCommitOnChainInfo>;
    StateSectorGetInfo = "Filecoin.StateSectorGetInfo", Read,
        (Addr, u64, TipSetKey) -> Option<SectorOnChainInfo>;
    /// The miner's proven sectors among a bitfield of numbers (`null`: all of them), in one call.
    StateMinerSectors = "Filecoin.StateMinerSectors", Read,
        (Addr, Option<lotus::json::wire::Bits>, TipSetKey) -> List<SectorOnChainInfo>;
    StateSectorPartition = "Filecoin.StateSectorPartition", Read,
        (Addr, u64, TipSetKey) -> SectorLocation;
    /// The message, and a send spec (the most its gas may cost).
    MpoolPushMessage = "Filecoin.MpoolPushMessage", Sign,
        (MessageJson, Option<SendSpec>) -> SignedMessageJson;
    /// The messages waiting in the pool.
    MpoolPending = "Filecoin.MpoolPending", Read, (TipSetKey,) -> List<SignedMessageJson>;
    /// Message, confidence, lookback limit, whether a replacement counts.
    StateWaitMsg = "Filecoin.StateWaitMsg", Read, (CidJson, u64, i64, bool) -> MsgLookup;
    /// From tipset, message, lookback limit, whether a replacement counts.
    StateSearchMsg = "Filecoin.StateSearchMsg", Read,
        (TipSetKey, CidJson, i64, bool) -> Option<MsgLookup>;
    /// The deposit a pre-commit of this sector locks.
    StateMinerPreCommitDepositForPower = "Filecoin.StateMinerPreCommitDepositForPower", Read,
        (Addr, PreCommitInfo, TipSetKey) -> Atto;
    /// The initial pledge of a sector: its duration in epochs, its size, its verified size.
    StateMinerInitialPledgeForSector = "Filecoin.StateMinerInitialPledgeForSector", Read,
        (i64, u64, u64, TipSetKey) -> Atto;
    /// The miner actor's balance less what is locked (deposits, pledge, vesting, fee debt).
    StateMinerAvailableBalance = "Filecoin.StateMinerAvailableBalance", Read,
        (Addr, TipSetKey) -> Atto;
    /// An actor's balance, code and state (a miner's deposits and pledge are in its state).
    StateReadState = "Filecoin.StateReadState", Read, (Addr, TipSetKey) -> ActorState;
    WalletBalance = "Filecoin.WalletBalance", Read, (Addr,) -> Atto;
    /// The wallet's default address (on the devnet: its genesis faucet).
    WalletDefaultAddress = "Filecoin.WalletDefaultAddress", Write, () -> Addr;
    /// A new key in the node's wallet: "bls" or "secp256k1".
    WalletNew = "Filecoin.WalletNew", Write, (String,) -> Addr;
    /// Whether the node's wallet holds the key of an address.
    WalletHas = "Filecoin.WalletHas", Write, (Addr,) -> bool;
    /// Removes a key from the node's wallet (`lotus wallet delete`).
    WalletDelete = "Filecoin.WalletDelete", Admin, (Addr,) -> ();
    /// The permissions a token grants.
    AuthVerify = "Filecoin.AuthVerify", Read, (String,) -> Vec<stores::Permission>;
    MinerGetBaseInfo = "Filecoin.MinerGetBaseInfo", Read,
        (Addr, i64, TipSetKey) -> Option<MiningBaseInfo>;
    SyncSubmitBlock = "Filecoin.SyncSubmitBlock", Write, (BlockMsg,) -> ();
    /// The node makes the block of a template and signs it with the miner's worker key.
    MinerCreateBlock = "Filecoin.MinerCreateBlock", Write, (BlockTemplate,) -> BlockMsg;
    /// The pool's messages for a block on this tipset, best first (the ticket's quality).
    MpoolSelect = "Filecoin.MpoolSelect", Read, (TipSetKey, f64) -> List<SignedMessageJson>;
    /// A signature of `data` by a key in the node's wallet (a VRF: the worker's BLS signature).
    WalletSign = "Filecoin.WalletSign", Sign, (Addr, Bytes) -> SignatureJson;
    /// The devnet's count of a miner's proofs and blocks (not a Lotus method).
    DevnetMinerTally = "Devnet.MinerTally", Read, (Addr,) -> MinerTally;
    /// A devnet test hook (not a Lotus method): takes the last N epochs back, as a reorg to a
    /// fork without them; their messages go back to the pool, or with `true` are dropped. The
    /// messages that had landed in them.
    DevnetRevert = "Devnet.Revert", Admin, (i64, bool) -> List<CidJson>;
    /// A devnet test hook (not a Lotus method): replaces a message in the pool by the same
    /// message with this fee cap and premium (`lotus mpool replace`); the replacement's CID.
    DevnetMpoolReplace = "Devnet.MpoolReplace", Admin, (CidJson, Atto, Atto) -> CidJson;
}

/// What the devnet counted for a miner since genesis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MinerTally {
    /// Partitions proven in time, and partitions whose deadline closed unproven.
    pub proofs_accepted: u64,
    pub missed: u64,
    pub blocks_won: u64,
}
