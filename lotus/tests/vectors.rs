//! `tests/vectors/messages.json`: one message of every kind the sealer sends, as this crate
//! builds it (Lotus JSON, CBOR, CID, the values its params were made from, and the message
//! signed with a fixed test key). The file is
//! checked in; this test fails when the code no longer produces it. `check.mjs` beside it
//! recomputes every CBOR, CID and params encoding from the JSON and the values with
//! iso-filecoin, @ipld/dag-cbor and multiformats, none of which anyone here wrote; the second
//! test runs it when `npm ci` has been run there (`./dev test` does, with Node 20 or later).
//!
//! After a deliberate change: `UPDATE_VECTORS=1 cargo test -p lotus --test vectors`, then
//! `node check.mjs messages.json` in that directory.

use std::path::PathBuf;

use lotus::json::{MessageJson, SignedMessageJson};
use lotus::miner::{self, Params};
use lotus::wallet::SecpKey;
use lotus::{
    Address, BitField, Message, PoStProof, Randomness, RegisteredPoStProof, RegisteredSealProof,
    TokenAmount,
};
use serde_json::{json, Value};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// In the checkout under test: cargo sets CARGO_MANIFEST_DIR when it runs a test, while the
/// path compiled in is that of whichever clone built this binary into a shared target dir.
fn dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("tests/vectors")
}

/// The sender's key: a fixed secp256k1 test key (written into the vectors, so that
/// iso-filecoin can sign the same messages and get the same bytes).
const TEST_KEY: [u8; 32] = [
    0x3b, 0x2e, 0x86, 0x1f, 0x5c, 0x07, 0x41, 0x9a, 0xd4, 0x60, 0x12, 0xee, 0x8b, 0x73, 0x0c, 0x55,
    0x9f, 0x21, 0xa6, 0x48, 0x37, 0xc1, 0x0e, 0x7d, 0x92, 0x5b, 0xe0, 0x14, 0x6a, 0x83, 0x29, 0xf7,
];

fn key() -> SecpKey {
    SecpKey::from_bytes(&TEST_KEY).unwrap()
}

fn vector(name: &str, kind: &str, values: Value, mut m: Message) -> Value {
    // As a node would fill them in.
    m.sequence = 7;
    m.gas_limit = 12_345_678;
    m.gas_fee_cap = TokenAmount::from_atto(100_123u64);
    m.gas_premium = TokenAmount::from_atto(99_000u64);
    let cbor = fvm_ipld_encoding::to_vec(&m).unwrap();
    let signed = key().sign(m.clone()).unwrap();
    lotus::wallet::verify(&signed).unwrap();
    json!({
        "name": name,
        "kind": kind,
        "values": values,
        "message": MessageJson::from(&m),
        "cbor": hex(&cbor),
        "cid": lotus::message::message_cid(&m).to_string(),
        "signed": SignedMessageJson::from(&signed),
        "test_private_key": hex(&TEST_KEY),
    })
}

fn vectors() -> Value {
    let (from, miner) = (key().address(), Address::new_id(1000));
    let comm_r: [u8; 32] = std::array::from_fn(|i| (i * 7) as u8);
    let precommit = miner::PreCommitSectorBatchParams2 {
        sectors: vec![miner::precommit_cc(
            RegisteredSealProof::StackedDRG2KiBV1P1,
            3,
            &comm_r,
            1_234,
            1_555_200,
        )],
    };
    let deposit = TokenAmount::from_atto(59_000_000_000_000_000u64);
    let proof: Vec<u8> = (0..192).map(|i| (i * 3) as u8).collect();
    let prove = miner::prove_commit_cc(&[(3, proof.clone())]);
    let post = miner::SubmitWindowedPoStParams {
        deadline: 12,
        partitions: vec![miner::PoStPartition {
            index: 0,
            skipped: BitField::default(),
        }],
        proofs: vec![PoStProof {
            post_proof: RegisteredPoStProof::StackedDRGWindow2KiBV1P1,
            proof_bytes: proof[..64].to_vec(),
        }],
        chain_commit_epoch: 2_000,
        chain_commit_rand: Randomness(vec![0x5a; 32]),
    };
    let sectors = [1u64, 2, 3, 7];
    let decl = vec![miner::SectorsDeclaration {
        deadline: 14,
        partition: 0,
        sectors: BitField::try_from_bits(sectors).unwrap(),
    }];
    let zero = TokenAmount::default;
    let decl_values = json!({"declarations": [[14, 0, sectors]]});
    Value::Array(vec![
        vector(
            "a committed-capacity 2KiB sector's pre-commit, with its deposit",
            "PreCommitSectorBatch2",
            json!({"seal_proof": 5, "sector_number": 3, "comm_r": hex(&comm_r),
                   "seal_rand_epoch": 1234, "expiration": 1555200}),
            precommit.message(from, miner, deposit).unwrap(),
        ),
        vector(
            "its prove-commit (one 192-byte proof, no pieces)",
            "ProveCommitSectors3",
            json!({"sectors": [[3, hex(&proof)]]}),
            prove.message(from, miner, zero()).unwrap(),
        ),
        vector(
            "a WindowPoSt for deadline 12, partition 0",
            "SubmitWindowedPoSt",
            json!({"deadline": 12, "partitions": [0], "proof_type": 10,
                   "proof": hex(&proof[..64]), "chain_commit_epoch": 2000,
                   "chain_commit_rand": hex(&[0x5a; 32])}),
            post.message(from, miner, zero()).unwrap(),
        ),
        vector(
            "faults declared for deadline 14",
            "DeclareFaults",
            decl_values.clone(),
            miner::DeclareFaultsParams {
                faults: decl.clone(),
            }
            .message(from, miner, zero())
            .unwrap(),
        ),
        vector(
            "recoveries declared for deadline 14",
            "DeclareFaultsRecovered",
            decl_values.clone(),
            miner::DeclareFaultsRecoveredParams {
                recoveries: decl.clone(),
            }
            .message(from, miner, zero())
            .unwrap(),
        ),
        vector(
            "sectors terminated in deadline 14",
            "TerminateSectors",
            decl_values,
            miner::TerminateSectorsParams { terminations: decl }
                .message(from, miner, zero())
                .unwrap(),
        ),
    ])
}

#[test]
fn the_checked_in_vectors_are_what_this_code_encodes() {
    fvm_shared::address::set_current_network(fvm_shared::address::Network::Testnet);
    let built = vectors();
    let path = dir().join("messages.json");
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&built).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let checked_in: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        built,
        checked_in,
        "the encodings changed: if that was meant, run UPDATE_VECTORS=1 cargo test -p lotus \
         --test vectors, then check them with `node check.mjs messages.json` in {}",
        dir().display()
    );
}

#[test]
fn iso_filecoin_recomputes_every_vector() {
    let d = dir();
    if !d.join("node_modules/iso-filecoin").exists() {
        let why = format!(
            "the cross-check needs `npm ci` in {} (Node 20 or later); `./dev test` runs it",
            d.display()
        );
        assert!(
            std::env::var_os("LOTUS_VECTORS_REQUIRED").is_none(),
            "{why} (LOTUS_VECTORS_REQUIRED is set)"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let out = std::process::Command::new("node")
        .arg("check.mjs")
        .arg("messages.json")
        .current_dir(&d)
        .output()
        .expect("running node");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "check.mjs failed:\n{text}");
    // Every vector was checked, each in every part.
    let n = vectors().as_array().unwrap().len();
    assert_eq!(text.matches("ok ").count(), n, "{text}");
}

#[test]
fn a_signature_checks_only_for_its_sender_and_message() {
    let k = key();
    let m = miner::prove_commit_cc(&[(3, vec![1; 192])])
        .message(k.address(), Address::new_id(1000), TokenAmount::default())
        .unwrap();
    let signed = k.sign(m.clone()).unwrap();
    lotus::wallet::verify(&signed).unwrap();
    assert_eq!(signed.signature.bytes.len(), 65);
    // Deterministic: the same key and message sign the same.
    assert_eq!(k.sign(m.clone()).unwrap(), signed);
    // Another message, or another sender, does not check.
    let mut other = signed.clone();
    other.message.sequence += 1;
    let e = lotus::wallet::verify(&other).unwrap_err().to_string();
    assert!(e.contains("made by"), "{e}");
    let mut as_other = m;
    as_other.from = SecpKey::generate().unwrap().address();
    let forged = k.sign(as_other).unwrap();
    assert!(lotus::wallet::verify(&forged).is_err());
    let mut cut = signed;
    cut.signature.bytes.pop();
    assert!(lotus::wallet::verify(&cut).is_err());
}
