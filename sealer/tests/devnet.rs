//! The README's run command, with the mock engine: `sealer devnet` brings up a repo, paths and
//! the daemon, pledges sectors, and reports them Proving with the power the chain counted.

use testkit as common;

use std::process::Command;

#[test]
fn devnet_mock_brings_sectors_to_proving() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::bin())
        .args([
            "devnet",
            "--mock",
            "--sectors",
            "3",
            "--block-delay",
            "100ms",
            "--devnet-repo",
        ])
        .arg(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = common::stdout(&out);
    assert!(out.status.success(), "{text}{}", common::stderr(&out));
    assert!(text.contains("MOCK PROOF ENGINE"), "{text}");
    for n in 1..=3 {
        assert!(text.contains(&format!("Created CC sector: {n}")), "{text}");
        assert!(text.contains(&format!("sector {n}: Proving")), "{text}");
    }
    // Sectors activated in the same epoch all count.
    assert!(
        text.contains("all 3 sectors Proving")
            && text.contains("power 3 sectors (6144 bytes), mock proofs"),
        "{text}"
    );
    assert!(dir
        .path()
        .join("store")
        .join("sealed")
        .join("s-t01000-3")
        .exists());
}
