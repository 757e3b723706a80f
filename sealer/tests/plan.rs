//! `sealer plan` (#20) on seed 001's cluster file, as an operator runs it.

use std::process::Command;

fn plan(file: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sealer"))
        .args(["plan", "--cluster"])
        .arg(file)
        .output()
        .unwrap()
}

#[test]
fn seed_001s_cluster_is_planned_with_its_limits_the_bound_and_what_to_add() {
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/seed001-cluster.toml");
    let out = plan(&file);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The 6 TiB seal space holds 5 sectors' files (1.006 TiB each), not the seed's 6; lotus's
    // table on B's worker01 alone (1 TiB, 60 GiB used by the rest) would take 7 PC1s of 64GiB.
    assert!(
        text.contains("PC1      5 at once; the next: not enough seal space"),
        "{text}"
    );
    assert!(
        text.contains("the machine: 7 (not enough RAM+swap: needs 128 GiB"),
        "{text}"
    );
    // The share both workers seal on counts once.
    assert!(
        text.contains("Seal space: 6 TiB on 1 paths, 5 sectors' files"),
        "{text}"
    );
    // PC2 on the CPUs, as the seed has it: lotus #1475's 4h04m for 32GiB on 16 threads, for
    // 64GiB on A's 117 (lotus's table gives PC2 every core but the rest's share).
    let pc2_min = (4.0 * 60.0 + 4.0) * 2.0 * 16.0 / 117.0;
    assert!(
        text.contains("its own times: PC2 1h7m (on 117 CPU threads"),
        "{text}"
    );
    assert!(text.contains("full at the bound: seal space"), "{text}");
    assert!(text.contains("MaxSealingSectors = 5"), "{text}");
    assert!(text.contains("half as much seal space again"), "{text}");
    // A year at the bound (4,397 sectors): 92 a deadline, one partition, proven in 10 minutes
    // on A's sealer.
    assert!(
        text.contains("92 a deadline, 1 partitions of 2300, 1 messages"),
        "{text}"
    );
    assert!(
        text.contains("proven in 10m of the 30m window on A-sealer"),
        "{text}"
    );
    let bound = testkit::plan_bound(&text);
    // 5 sectors in flight for about 10 h each (AP 10m, PC1 7h, PC2 on A's CPUs, C1 2m, C2 20m,
    // FIN 4m, 75 min of waiting): 12.0 a day.
    let in_flight_h = (10.0 + 7.0 * 60.0 + pc2_min + 2.0 + 20.0 + 4.0 + 75.0) / 60.0;
    assert!((bound - 5.0 * 24.0 / in_flight_h).abs() < 0.1, "{bound}");

    // Pledging 20 a day, above the bound: the seal space's 5 in flight refuse the rest.
    let out = Command::new(env!("CARGO_BIN_EXE_sealer"))
        .args(["plan", "--pledge", "20", "--cluster"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Pledging 20 a day for 7 days: "), "{text}");
    assert!(
        text.contains("refused (MaxSealingSectors = 5, what the seal space holds); at most 5 sectors in flight"),
        "{text}"
    );
    assert!(text.contains("above the bound (12.0 a day)"), "{text}");

    // A mistake names the machine and what is wrong, and prints no plan.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "sector_size = \"64GiB\"\n[[machine]]\nname = \"X\"\ncpus = 8\nmemory = \"64GiB\"\ntasks = [\"PC9\"]\n",
    )
    .unwrap();
    let out = plan(&bad);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("machine X: tasks") && err.contains("PC9"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
