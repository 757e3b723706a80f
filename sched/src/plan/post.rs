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
    let proving_s = proving_time(partitions, partition_s, provers);
    // The most partitions a deadline may hold and still be proven within the window.
    let mut fit = 0;
    if partition_s > 0.0 && provers > 0 {
        while proving_time(fit + 1, partition_s, provers) <= WINDOW_S {
            fit += 1;
        }
    }
    let max_sectors = if partition_s > 0.0 {
        fit * partition_sectors * DEADLINES
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

/// How long `partitions` take to prove: messages of 3 partitions (the last one holding the
/// rest) go out in rounds, one to each prover; a round lasts as long as its largest message.
fn proving_time(partitions: u64, partition_s: f64, provers: u32) -> f64 {
    if partitions == 0 {
        return 0.0;
    }
    if provers == 0 {
        return f64::INFINITY;
    }
    let messages = partitions.div_ceil(PARTITIONS_PER_MESSAGE);
    let rounds = messages.div_ceil(u64::from(provers));
    // Every round but the last holds only full messages; the last holds the partial one.
    let last_partial = partitions - (messages - 1) * PARTITIONS_PER_MESSAGE;
    let last_round = if messages > (rounds - 1) * u64::from(provers) + 1 {
        PARTITIONS_PER_MESSAGE
    } else {
        last_partial
    };
    ((rounds - 1) * PARTITIONS_PER_MESSAGE + last_round) as f64 * partition_s
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
        // Four partitions on one prover: a message of 3, then one of 1 (40 min).
        let h = headroom(4 * 2349 * 48, 2349, 600.0, 1);
        assert_eq!((h.partitions, h.messages, h.proving_s), (4, 2, 2400.0));
        // A partition longer than the window: none fits.
        assert_eq!(headroom(1000, 2349, 1900.0, 4).max_sectors, 0);
        // No prover: nothing can be proven.
        assert!(headroom(1000, 2349, 600.0, 0).proving_s.is_infinite());
        assert_eq!(headroom(0, 2349, 600.0, 0).proving_s, 0.0);
    }
}
