//! WindowPoSt headroom: with a number of proving sectors, how long one deadline's proofs take on
//! the machines allowed to run them, against its 30-minute window. A proving period has 48
//! deadlines; the sectors spread over them, each deadline's into partitions of the actor's
//! WindowPoStPartitionSectors; a message proves at most 3 partitions (one proof task each, as
//! the sealer sends them), and a prover runs one WindowPoSt at a time.

/// Deadlines in a proving period.
pub const DEADLINES: u64 = 48;
/// Partitions one SubmitWindowedPoSt proves at most.
pub const PARTITIONS_PER_MESSAGE: u64 = 3;
/// A deadline's window: 60 epochs of 30 s.
pub const WINDOW_S: f64 = 60.0 * 30.0;

/// One deadline's proving, at a number of sectors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Headroom {
    /// Sectors in the fullest deadline.
    pub deadline_sectors: u64,
    pub partitions: u64,
    pub messages: u64,
    /// From the deadline's opening to the last message's proof, all provers working at once.
    pub proving_s: f64,
    /// The most sectors whose deadlines are still proven within the window.
    pub max_sectors: u64,
}

/// The headroom for `sectors` proving sectors, partitions of `partition_sectors`, a partition's
/// proof taking `partition_s` seconds, `provers` machines proving at once.
pub fn headroom(sectors: u64, partition_sectors: u64, partition_s: f64, provers: u32) -> Headroom {
    let partition_sectors = partition_sectors.max(1);
    let deadline_sectors = sectors.div_ceil(DEADLINES);
    let partitions = deadline_sectors.div_ceil(partition_sectors);
    let messages = partitions.div_ceil(PARTITIONS_PER_MESSAGE);
    let provers = u64::from(provers);
    let proving_s = if provers == 0 {
        if partitions == 0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        // Messages go to the provers in rounds; a full message proves 3 partitions.
        let per_message = partitions.min(PARTITIONS_PER_MESSAGE) as f64;
        messages.div_ceil(provers) as f64 * per_message * partition_s
    };
    // Full messages per prover within the window, each 3 partitions.
    let max_sectors = if partition_s > 0.0 {
        let per_prover = (WINDOW_S / (PARTITIONS_PER_MESSAGE as f64 * partition_s)).floor() as u64;
        per_prover * provers * PARTITIONS_PER_MESSAGE * partition_sectors * DEADLINES
    } else {
        u64::MAX
    };
    Headroom {
        deadline_sectors,
        partitions,
        messages,
        proving_s,
        max_sectors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_miners_deadline_against_its_window() {
        // 10 PiB of 32GiB sectors (327,680): 6,827 a deadline, 3 partitions of 2,349, one
        // message. At 10 min a partition on one prover: 30 min, the whole window.
        let h = headroom(327_680, 2349, 600.0, 1);
        assert_eq!((h.deadline_sectors, h.partitions, h.messages), (6827, 3, 1));
        assert_eq!(h.proving_s, 1800.0);
        assert_eq!(h.max_sectors, 3 * 2349 * 48);
        // Twice the sectors: 6 partitions, 2 messages; two provers take one each.
        let h = headroom(2 * 327_680, 2349, 600.0, 2);
        assert_eq!((h.partitions, h.messages, h.proving_s), (6, 2, 1800.0));
        let h = headroom(2 * 327_680, 2349, 600.0, 1);
        assert_eq!(
            h.proving_s, 3600.0,
            "one prover: two rounds, over the window"
        );
        // No prover: nothing can be proven.
        assert!(headroom(1000, 2349, 600.0, 0).proving_s.is_infinite());
        assert_eq!(headroom(0, 2349, 600.0, 0).proving_s, 0.0);
    }
}
