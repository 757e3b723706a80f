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
    // lotus's table on B's worker01 (1 TiB, 60 GiB used by the rest): 7 PC1s of 64GiB.
    assert!(
        text.contains("PC1      7 at once; the next: not enough RAM+swap"),
        "{text}"
    );
    // The 6 TiB seal space holds 5 sectors' files (1.006 TiB each), not the seed's 6.
    assert!(
        text.contains("PC1      5 at once; the next: not enough seal space"),
        "{text}"
    );
    assert!(text.contains("full at the bound: seal space"), "{text}");
    assert!(text.contains("MaxSealingSectors = 5"), "{text}");
    assert!(text.contains("half as much seal space again"), "{text}");
    // A year at the bound (4,672 sectors): 98 a deadline, one partition, proven in 10 minutes
    // on A's sealer.
    assert!(
        text.contains("98 a deadline, 1 partitions of 2300, 1 messages"),
        "{text}"
    );
    assert!(
        text.contains("proven in 10m of the 30m window on A-sealer"),
        "{text}"
    );
    let bound: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Bound: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no bound: {text}"));
    // 5 sectors in flight for 9 h 21 min each (AP 10m, PC1 7h, PC2 30m, C1 2m, C2 20m, FIN 4m,
    // 75 min of waiting): 12.8 a day.
    assert!(
        (bound - 5.0 * 24.0 / (9.0 + 21.0 / 60.0)).abs() < 0.1,
        "{bound}"
    );

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
