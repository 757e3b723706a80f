//! Real proofs, 2KiB: two sectors sealed and activated, then their deadlines proven with real
//! WindowPoSts that the local chain verifies, three times in a row, with no miss. Needs the 2KiB
//! parameters (`.ci/run` makes them).

use testkit as common;

use std::time::{Duration, Instant};

use common::Repo;

fn number(info: &str, field: &str) -> u64 {
    common::field(info, field)
        .split_whitespace()
        .next()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0)
}

#[test]
fn two_real_sectors_are_proven_at_three_deadlines_in_a_row() {
    let repo = Repo::init(true, |c| {
        c.chain.block_delay = "250ms".into();
        // 8 s deadlines, a 384 s proving period: a sector's first deadline can open while the
        // other sector's C2 still holds both cores, and a WindowPoSt beside a C2 took up to
        // ~4 s on 2 cores (with 4 s deadlines its message landed after the close, a miss).
        c.chain.wpost_challenge_window = 32;
    });
    let d = repo.start();
    repo.attach_paths();
    repo.ok(&["sectors", "pledge"]);
    repo.ok(&["sectors", "pledge"]);
    repo.wait_states(&[1, 2], Duration::from_secs(900), |s| {
        assert!(
            !s.iter().any(|x| x.contains("Failed")),
            "{}",
            repo.ok(&["sectors", "status", "1", "--log"])
        );
        s.iter().all(|x| x == "Proving")
    });
    let start = Instant::now();
    loop {
        let info = repo.ok(&["proving", "info"]);
        assert_eq!(
            number(&info, "Missed Partitions:"),
            0,
            "{info}\n{}",
            d.log()
        );
        if number(&info, "Proofs Accepted:") >= 3 {
            assert_eq!(number(&info, "Power:"), 2, "{info}");
            eprintln!(
                "three real WindowPoSts verified {:.0} s after both sectors reached Proving",
                start.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(840),
            "{info}\n{}",
            repo.ok(&["proving", "deadlines"])
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        d.log().contains("WindowPoSt: deadline proven"),
        "{}",
        d.log()
    );
    drop(d);
}
