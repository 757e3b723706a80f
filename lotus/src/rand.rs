//! Randomness as the chain draws it for actors (Lotus `chain/rand`): blake2b-256 over the
//! domain separation tag (i64, big-endian), a 32-byte digest of the chain at the epoch (of the
//! ticket's VRF proof, or of the beacon entry), the epoch (i64, big-endian) and the entropy (for
//! a miner's draws, its address in CBOR). The tags are builtin-actors'
//! (`runtime/src/runtime/randomness.rs`).

use fvm_shared::address::Address;
use fvm_shared::clock::ChainEpoch;

/// What a draw is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub enum DomainSeparationTag {
    TicketProduction = 1,
    ElectionProofProduction = 2,
    WinningPoStChallengeSeed = 3,
    WindowedPoStChallengeSeed = 4,
    SealRandomness = 5,
    InteractiveSealChallengeSeed = 6,
    WindowPoStDeadlineAssignment = 7,
    MarketDealCronSeed = 8,
    PoStChainCommit = 9,
    EvmPrevRandao = 10,
}

impl DomainSeparationTag {
    /// The tag numbered `n` (as `StateGetRandomnessFrom*` take it), if there is one.
    pub fn from_number(n: i64) -> Option<DomainSeparationTag> {
        use DomainSeparationTag as T;
        [
            T::TicketProduction,
            T::ElectionProofProduction,
            T::WinningPoStChallengeSeed,
            T::WindowedPoStChallengeSeed,
            T::SealRandomness,
            T::InteractiveSealChallengeSeed,
            T::WindowPoStDeadlineAssignment,
            T::MarketDealCronSeed,
            T::PoStChainCommit,
            T::EvmPrevRandao,
        ]
        .into_iter()
        .find(|t| *t as i64 == n)
    }
}

/// blake2b-256 of `base`: the digest a draw starts from (of a ticket's VRF proof or a beacon's
/// data), and what a secp256k1 key signs (of a message's CID).
pub fn digest_of(base: &[u8]) -> [u8; 32] {
    let h = blake2b_simd::Params::new().hash_length(32).hash(base);
    h.as_bytes().try_into().expect("32 bytes asked for")
}

/// Draws the randomness for `tag` at `epoch` from the chain's `digest` at that epoch.
pub fn draw(
    digest: &[u8; 32],
    tag: DomainSeparationTag,
    epoch: ChainEpoch,
    entropy: &[u8],
) -> [u8; 32] {
    let mut h = blake2b_simd::Params::new().hash_length(32).to_state();
    h.update(&(tag as i64).to_be_bytes());
    h.update(digest);
    h.update(&epoch.to_be_bytes());
    h.update(entropy);
    h.finalize()
        .as_bytes()
        .try_into()
        .expect("32 bytes asked for")
}

/// A miner's entropy for its draws: its address in CBOR (t01000: `43 00 e8 07`).
pub fn miner_entropy(miner: &Address) -> Vec<u8> {
    fvm_ipld_encoding::to_vec(miner).expect("an address always encodes")
}
