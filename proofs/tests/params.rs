//! Parameter download against a local HTTP server: a good digest lands, a bad one is refused and
//! leaves nothing under the final name. (Generation is never run by tests: `.ci/run` does it once.)

use std::io::{Read, Write};
use std::net::TcpListener;

use proofs::params::{self, ParamEntry};
use resources::SectorSize;

/// Serves `body` to every request on 127.0.0.1 and returns the gateway URL.
fn serve(body: Vec<u8>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { break };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(head.as_bytes());
            let _ = c.write_all(&body);
        }
    });
    format!("http://{addr}/ipfs/")
}

#[test]
fn downloads_are_checked_against_the_manifest_digest() {
    let body = b"pretend groth16 parameters".repeat(1000);
    let digest = params::digest_of(body.as_slice()).unwrap();
    assert_eq!(digest.len(), 32);
    let gw = serve(body.clone());
    let dir = tempfile::tempdir().unwrap();

    let good = ParamEntry {
        cid: "QmGood".into(),
        digest: digest.clone(),
        sector_size: 2048,
    };
    params::download(&gw, dir.path(), "v28-test.params", &good).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("v28-test.params")).unwrap(),
        body
    );

    let bad = ParamEntry {
        cid: "QmBad".into(),
        digest: "00".repeat(16),
        sector_size: 2048,
    };
    let err = params::download(&gw, dir.path(), "v28-bad.params", &bad)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("v28-bad.params") && err.contains("digest mismatch"),
        "{err}"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["v28-test.params".to_string()],
        "nothing else, not even a partial file"
    );
}

#[test]
fn the_manifest_lists_porep_and_post_files_per_size() {
    let m = params::official_manifest();
    for size in [
        SectorSize::S2KiB,
        SectorSize::S8MiB,
        SectorSize::S512MiB,
        SectorSize::S32GiB,
    ] {
        let needed = params::needed(&m, size);
        assert_eq!(
            needed.len(),
            6,
            "{size}: PoRep, WinningPoSt, WindowPoSt x (.params, .vk)"
        );
        assert!(needed
            .iter()
            .all(|(n, _)| !n.contains("empty-sector-update")));
    }
    let dir = tempfile::tempdir().unwrap();
    let st = params::status(dir.path(), &m, SectorSize::S2KiB);
    assert!(st.iter().all(|(_, present)| !present));
}
