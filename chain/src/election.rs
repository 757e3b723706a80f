//! Leader election as Filecoin draws it: the miner's VRF (its worker's BLS signature of the
//! epoch's ElectionProofProduction randomness, `WalletSign`) is hashed, and the hash decides
//! how many blocks (wins) the miner makes at that epoch: a Poisson draw with mean 5 × the
//! miner's share of the network's power (5 leaders expected per epoch), at most 15. Lotus
//! computes the Poisson tail in Q.256 fixed point; this is the same rule in f64, so the two
//! can disagree only for a hash within about 2^-50 of a boundary. The miner computes it, and
//! the node recomputes it from the VRF in the block.

use lotus::Address;

/// Leaders expected per epoch (lotus's `BlocksPerEpoch`).
pub const EXPECTED_LEADERS: f64 = 5.0;
/// The most wins one election counts (3 × the expected leaders, as lotus caps it).
pub const MAX_WIN_COUNT: i64 = 15;

/// The number of wins the VRF proof `vrf` gives a miner with `mine` of `total` power.
pub fn win_count(vrf: &[u8], mine: u128, total: u128) -> i64 {
    if mine == 0 || total == 0 {
        return 0;
    }
    let h = lotus::rand::digest_of(vrf);
    // The hash as a fraction of 2^256 (its top 53 bits).
    let top = u64::from_be_bytes(h[..8].try_into().expect("8 bytes")) >> 11;
    let u = top as f64 / (1u64 << 53) as f64;
    let lambda = EXPECTED_LEADERS * mine as f64 / total as f64;
    // P(X = k) and P(X > k), from k = 0.
    let mut p = (-lambda).exp();
    let mut tail = 1.0 - p;
    let mut k = 0;
    while u < tail && k < MAX_WIN_COUNT {
        k += 1;
        p *= lambda / k as f64;
        tail -= p;
    }
    k
}

/// The miner's randomness of `kind` at `epoch`, drawn from a beacon entry's data as
/// lotus-miner draws a round's (DrawRandomnessFromBase, the miner's address as entropy).
pub fn from_beacon(beacon: &[u8], kind: crate::RandKind, epoch: i64, miner: &Address) -> [u8; 32] {
    lotus::rand::draw(
        &lotus::rand::digest_of(beacon),
        kind.tag(),
        epoch,
        &lotus::rand::miner_entropy(miner),
    )
}

/// Checks a VRF proof: the worker key's BLS signature of `input` (the epoch's
/// ElectionProofProduction randomness, drawn for the miner's address).
pub fn verify_vrf(worker: &Address, input: &[u8], vrf: &[u8]) -> Result<(), lotus::EncodingError> {
    let sig = lotus::fvm_shared::crypto::signature::Signature {
        sig_type: lotus::fvm_shared::crypto::signature::SignatureType::BLS,
        bytes: vrf.to_vec(),
    };
    lotus::wallet::verify_bytes(&sig, worker, input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wins_follow_a_poisson_draw_of_five_times_the_share() {
        let draws: Vec<i64> = (0u32..4000)
            .map(|i| win_count(&i.to_be_bytes(), 1, 20))
            .collect();
        // A quarter of a leader expected per epoch: P(0) = e^-0.25 = 0.78.
        let none = draws.iter().filter(|&&w| w == 0).count();
        assert!((2980..3250).contains(&none), "{none} of 4000 without a win");
        let mean = draws.iter().sum::<i64>() as f64 / 4000.0;
        assert!((0.21..0.29).contains(&mean), "mean {mean}");
        // All the power: nearly always at least one win, never more than 15.
        let all: Vec<i64> = (0u32..1000)
            .map(|i| win_count(&i.to_be_bytes(), 1, 1))
            .collect();
        assert!(all.iter().filter(|&&w| w == 0).count() < 20);
        assert!(all.iter().all(|&w| w <= MAX_WIN_COUNT));
        assert_eq!(win_count(&[0; 96], 0, 4), 0);
    }
}
