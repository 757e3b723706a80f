//! Encodings against vectors made elsewhere: the CID Lotus's own documentation gives for its
//! example message, and param bytes written out by hand from the CBOR and CID specifications in
//! builtin-actors v18's field order.

use lotus::json::{BitFieldJson, MessageJson, SignedMessageJson};
use lotus::message::message_cid;
use lotus::miner::{self, Params};
use lotus::{
    Address, BitField, Message, PoStProof, Randomness, RegisteredPoStProof, RegisteredSealProof,
    SignedMessage, TokenAmount,
};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The message that sends `params` from t0100 to miner t01000, with no value.
fn to_miner<P: Params>(params: &P) -> Message {
    params
        .message(
            Address::new_id(100),
            Address::new_id(1000),
            TokenAmount::default(),
        )
        .unwrap()
}

/// ChainGetMessage's example in lotus `documentation/en/api-methods-v1-stable.md`.
const DOCS_MESSAGE: &str = r#"{
  "Version": 42, "To": "f01234", "From": "f01234", "Nonce": 42, "Value": "0",
  "GasLimit": 9, "GasFeeCap": "0", "GasPremium": "0", "Method": 1,
  "Params": "Ynl0ZSBhcnJheQ==",
  "CID": {"/": "bafy2bzacebbpdegvr3i4cosewthysg5xkxpqfn2wfcz6mv2hmoktwbdxkax4s"}
}"#;

#[test]
fn the_lotus_docs_example_message_has_the_cid_the_docs_give() {
    let j: MessageJson = serde_json::from_str(DOCS_MESSAGE).unwrap();
    let docs_cid = j.cid.unwrap();
    let m = Message::from(j.clone());
    assert_eq!(m.params.bytes(), b"byte array");
    assert_eq!(message_cid(&m), docs_cid);
    assert_eq!(
        docs_cid.to_string(),
        "bafy2bzacebbpdegvr3i4cosewthysg5xkxpqfn2wfcz6mv2hmoktwbdxkax4s"
    );
    // Written back, it is the docs' JSON, CID included.
    let back = serde_json::to_value(MessageJson::from(&m)).unwrap();
    let docs: serde_json::Value = serde_json::from_str(DOCS_MESSAGE).unwrap();
    assert_eq!(back, docs);

    // Signed with BLS, the message keeps its CID (the docs' SignedMessage example).
    let signed = format!(
        r#"{{"Message": {DOCS_MESSAGE}, "Signature": {{"Type": 2, "Data": "Ynl0ZSBhcnJheQ=="}},
            "CID": {{"/": "{docs_cid}"}}}}"#
    );
    let sj: SignedMessageJson = serde_json::from_str(&signed).unwrap();
    let sm = SignedMessage::try_from(sj).unwrap();
    assert_eq!(sm.cid(), docs_cid);
    // With secp256k1, the signed message's own CBOR names it.
    let mut secp = sm.clone();
    secp.signature.sig_type = lotus::SignatureType::Secp256k1;
    assert_ne!(secp.cid(), docs_cid);
    assert_eq!(secp.cid(), lotus::cbor_cid(&secp).unwrap());
}

#[test]
fn lotus_json_reads_what_lotus_writes() {
    // Either network's prefix is read; a wrong checksum or prefix is refused by name.
    let t = lotus::json::parse_address("t01000").unwrap();
    assert_eq!(t, Address::new_id(1000));
    assert_eq!(lotus::json::parse_address("f01000").unwrap(), t);
    let e = lotus::json::parse_address("x01000")
        .unwrap_err()
        .to_string();
    assert!(e.contains("x01000"), "{e}");
    // Empty params as Go writes a nil slice, and as some clients send them.
    for params in ["null", r#""""#] {
        let j = DOCS_MESSAGE.replace(r#""Ynl0ZSBhcnJheQ==""#, params);
        let m = Message::from(serde_json::from_str::<MessageJson>(&j).unwrap());
        assert!(m.params.bytes().is_empty());
        let back = serde_json::to_value(MessageJson::from(&m)).unwrap();
        assert_eq!(back["Params"], serde_json::Value::Null);
    }
    // Big amounts stay exact.
    let j = DOCS_MESSAGE.replace(
        r#""Value": "0""#,
        r#""Value": "123456789012345678901234567890""#,
    );
    let m = Message::from(serde_json::from_str::<MessageJson>(&j).unwrap());
    assert_eq!(
        m.value,
        TokenAmount::from_atto("123456789012345678901234567890".parse::<u128>().unwrap())
    );
    // Bitfields as RLE runs from zeros: {1,2,3,7} is 1 zero, 3 ones, 3 zeros, 1 one.
    let bf = BitField::try_from_bits([1u64, 2, 3, 7]).unwrap();
    assert_eq!(
        serde_json::to_string(&BitFieldJson(bf.clone())).unwrap(),
        "[1,3,3,1]"
    );
    let back: BitFieldJson = serde_json::from_str("[1,3,3,1]").unwrap();
    assert_eq!(back.0, bf);
    // In CBOR, RLE+ bits least significant first: version 00, first bit 0, a run of 1 (1),
    // of 3 (01 then 3 in 4 bits), of 3, of 1: 0001 0111 | 0001 1100 | 1.
    assert_eq!(hex(&fvm_ipld_encoding::to_vec(&bf).unwrap()), "43e83801");
}

/// The CID bytes of a CommR: CIDv1, codec fil-commitment-sealed (0xf102, varint 82 e2 03),
/// multihash poseidon-bls12_381-a2-fc1 (0xb401, varint 81 e8 02), 32 bytes.
fn sealed_cid_bytes(comm_r: &[u8; 32]) -> String {
    format!("0182e20381e80220{}", hex(comm_r))
}

#[test]
fn pre_commit_params_are_the_bytes_builtin_actors_decodes() {
    let comm_r = [0xaa; 32];
    let info = miner::precommit_cc(
        RegisteredSealProof::StackedDRG2KiBV1P1,
        1,
        &comm_r,
        100,
        600_000,
    );
    assert_eq!(hex(&info.sealed_cid.to_bytes()), sealed_cid_bytes(&comm_r));
    let params = miner::PreCommitSectorBatchParams2 {
        sectors: vec![info],
    };
    let m = to_miner(&params);
    assert_eq!(m.method_num, 28);
    // [[ [5, 1, tag42(bytes(41): 00 ‖ cid), 100, [], 600000, null] ]]
    let expected = format!(
        "8181870501d82a582900{}186480{}f6",
        sealed_cid_bytes(&comm_r),
        "1a000927c0"
    );
    assert_eq!(hex(m.params.bytes()), expected);
    let back: miner::PreCommitSectorBatchParams2 = m.params.deserialize().unwrap();
    assert_eq!(back, params);
}

#[test]
fn prove_commit_params_are_the_bytes_builtin_actors_decodes() {
    let params = miner::prove_commit_cc(&[(1, vec![1, 2, 3])]);
    let m = to_miner(&params);
    assert_eq!(m.method_num, 34);
    // [[[1, []]], [h'010203'], h'', null, false, false]
    assert_eq!(hex(m.params.bytes()), "8681820180814301020340f6f4f4");
}

#[test]
fn window_post_and_declaration_params_are_the_bytes_builtin_actors_decodes() {
    let params = miner::SubmitWindowedPoStParams {
        deadline: 3,
        partitions: vec![miner::PoStPartition {
            index: 0,
            skipped: BitField::default(),
        }],
        proofs: vec![PoStProof {
            post_proof: RegisteredPoStProof::StackedDRGWindow2KiBV1P1,
            proof_bytes: vec![1, 2],
        }],
        chain_commit_epoch: 1000,
        chain_commit_rand: Randomness(vec![7; 32]),
    };
    let m = to_miner(&params);
    assert_eq!(m.method_num, 5);
    // [3, [[0, h'']], [[10, h'0102']], 1000, h'07…07']
    assert_eq!(
        hex(m.params.bytes()),
        format!("8503818200408182 0a420102 1903e8 5820{}", "07".repeat(32)).replace(' ', "")
    );
    let back: miner::SubmitWindowedPoStParams = m.params.deserialize().unwrap();
    assert_eq!(back, params);

    // Faults, recoveries and terminations: [[[deadline, partition, sectors]]].
    let decl = vec![miner::SectorsDeclaration {
        deadline: 2,
        partition: 0,
        sectors: BitField::default(),
    }];
    for (method, m) in [
        (
            10,
            to_miner(&miner::DeclareFaultsParams {
                faults: decl.clone(),
            }),
        ),
        (
            11,
            to_miner(&miner::DeclareFaultsRecoveredParams {
                recoveries: decl.clone(),
            }),
        ),
        (
            9,
            to_miner(&miner::TerminateSectorsParams {
                terminations: decl.clone(),
            }),
        ),
    ] {
        assert_eq!(m.method_num, method);
        assert_eq!(hex(m.params.bytes()), "8181830200 40".replace(" ", ""));
    }

    // Extensions: [[[deadline, partition, sectors, sectors_with_claims, new_expiration]]].
    let ext = miner::ExtendSectorExpiration2Params {
        extensions: vec![miner::ExpirationExtension2 {
            deadline: 2,
            partition: 0,
            sectors: BitField::default(),
            sectors_with_claims: Vec::new(),
            new_expiration: 1000,
        }],
    };
    let m = to_miner(&ext);
    assert_eq!(m.method_num, 32);
    assert_eq!(
        hex(m.params.bytes()),
        "8181850200 40 80 1903e8".replace(' ', "")
    );
    let back: miner::ExtendSectorExpiration2Params = m.params.deserialize().unwrap();
    assert_eq!(back, ext);
}

#[test]
fn randomness_is_drawn_as_the_chain_draws_it() {
    use lotus::rand::{digest_of, draw, miner_entropy, DomainSeparationTag as Tag};
    // The expected values come from Python's hashlib, not this code:
    //   blake2b(pack('>q', tag) + digest + pack('>q', epoch) + entropy, digest_size=32)
    let entropy = miner_entropy(&Address::new_id(1000));
    assert_eq!(hex(&entropy), "4300e807");
    let digest: [u8; 32] = std::array::from_fn(|i| i as u8);
    assert_eq!(
        hex(&draw(&digest, Tag::SealRandomness, 1100, &entropy)),
        "884a39295fbb6bc26331bdbc9aa9e972e715189b6036e5000fc4bdaa98e8e081"
    );
    // From a beacon's (or a ticket's) bytes: their digest first.
    assert_eq!(
        hex(&draw(
            &digest_of(b"vrf proof"),
            Tag::WindowedPoStChallengeSeed,
            1234,
            &entropy
        )),
        "05e49b99d575f5390929247167304445b06422058f77060bded222ed08c14d47"
    );
}
