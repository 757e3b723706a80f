//! The devnet's election: a miner makes the block of an epoch with probability its share of
//! the network's raw power. Lotus draws a VRF (the worker's BLS signature over the epoch's
//! ElectionProofProduction randomness) and counts wins from its hash; the devnet stands the
//! randomness itself in for the VRF output, so the miner and the node compute the same answer
//! from `StateGetRandomnessFromBeacon` and `MinerGetBaseInfo`'s powers.

/// Whether `vrf` (the epoch's election randomness for the miner) wins with `mine` of `total`
/// raw power.
pub fn wins(vrf: &[u8; 32], mine: u128, total: u128) -> bool {
    if mine == 0 || total == 0 {
        return false;
    }
    let h = lotus::rand::digest_of(vrf);
    let draw = u64::from_be_bytes(h[..8].try_into().expect("8 bytes")) as f64 / u64::MAX as f64;
    draw < mine as f64 / total as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn share_of_power_wins_about_that_share() {
        let won = (0u32..2000)
            .filter(|i| {
                let v = lotus::rand::digest_of(&i.to_be_bytes());
                super::wins(&v, 1, 4)
            })
            .count();
        assert!((400..600).contains(&won), "{won} of 2000 at 1/4");
        assert!(!super::wins(&[0; 32], 0, 4));
    }
}
