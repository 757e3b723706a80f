//! Chain-state answers read from, and written back as, the examples in lotus's
//! `documentation/en/api-methods-v1-stable.md`.

use lotus::state::{
    DeadlineInfo, MinerInfo, MinerPower, MsgLookup, Partition, SectorOnChainInfo,
    SectorPreCommitOnChainInfo, Version, FULL_API_VERSION,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Reads `json` as `T` and writes it back: the same JSON.
fn round_trip<T: DeserializeOwned + Serialize>(json: &str) -> T {
    let v: T = serde_json::from_str(json).unwrap();
    let want: Value = serde_json::from_str(json).unwrap();
    assert_eq!(serde_json::to_value(&v).unwrap(), want);
    v
}

#[test]
fn version() {
    let v: Version = round_trip(
        r#"{"Version": "string value", "APIVersion": 131840, "BlockDelay": 42,
            "Agent": "string value"}"#,
    );
    assert_eq!(v.api_version, FULL_API_VERSION);
}

#[test]
fn proving_deadline() {
    let d: DeadlineInfo = round_trip(
        r#"{"CurrentEpoch": 10101, "PeriodStart": 10101, "Index": 42, "Open": 10101,
            "Close": 10101, "Challenge": 10101, "FaultCutoff": 10101,
            "WPoStPeriodDeadlines": 42, "WPoStProvingPeriod": 10101,
            "WPoStChallengeWindow": 10101, "WPoStChallengeLookback": 10101,
            "FaultDeclarationCutoff": 10101}"#,
    );
    assert_eq!((d.index, d.wpost_period_deadlines), (42, 42));
}

#[test]
fn partitions() {
    let runs = "[5, 1]";
    let json = format!(
        r#"[{{"AllSectors": {runs}, "FaultySectors": {runs}, "RecoveringSectors": {runs},
              "LiveSectors": {runs}, "ActiveSectors": {runs}}}]"#
    );
    let p: Vec<Partition> = round_trip(&json);
    // Runs from zeros: five unset, one set.
    assert_eq!(p[0].live_sectors.iter().collect::<Vec<_>>(), vec![5]);
    // A partition with nothing faulty, as a node may write it.
    let empty: Partition = serde_json::from_str(
        r#"{"AllSectors": [0, 2], "FaultySectors": null, "RecoveringSectors": [0],
            "LiveSectors": [0, 2], "ActiveSectors": [0, 2]}"#,
    )
    .unwrap();
    assert!(empty.faulty_sectors.is_empty() && empty.recovering_sectors.is_empty());
    assert_eq!(empty.all_sectors.len(), 2);
}

#[test]
fn pre_commit_on_chain() {
    let cid = "bafy2bzacea3wsdh6y3a36tb3skempjoxqpuyompjbmfeyf34fi3uy6uue42v4";
    let pc: SectorPreCommitOnChainInfo = round_trip(&format!(
        r#"{{"Info": {{"SealProof": 8, "SectorNumber": 9, "SealedCID": {{"/": "{cid}"}},
              "SealRandEpoch": 10101, "DealIDs": [5432], "Expiration": 10101,
              "UnsealedCid": {{"/": "{cid}"}}}},
            "PreCommitDeposit": "0", "PreCommitEpoch": 10101}}"#
    ));
    assert_eq!(pc.info.sector_number, 9);
    assert_eq!(
        pc.info.seal_proof,
        lotus::RegisteredSealProof::StackedDRG32GiBV1P1
    );
    assert_eq!(pc.info.sealed_cid.to_string(), cid);
    // A committed-capacity sector's: no deals, no unsealed CID.
    let cc: SectorPreCommitOnChainInfo = round_trip(&format!(
        r#"{{"Info": {{"SealProof": 5, "SectorNumber": 1, "SealedCID": {{"/": "{cid}"}},
              "SealRandEpoch": 100, "DealIDs": null, "Expiration": 600000,
              "UnsealedCid": null}},
            "PreCommitDeposit": "59000000000000000", "PreCommitEpoch": 120}}"#
    ));
    assert_eq!(cc.info.unsealed_cid, None);
}

#[test]
fn message_lookup() {
    let a = "bafy2bzacea3wsdh6y3a36tb3skempjoxqpuyompjbmfeyf34fi3uy6uue42v4";
    let b = "bafy2bzacebp3shtrn43k7g3unredz7fxn4gj533d3o43tqn2p2ipxxhrvchve";
    let l: MsgLookup = round_trip(&format!(
        r#"{{"Message": {{"/": "{a}"}},
            "Receipt": {{"ExitCode": 0, "Return": "Ynl0ZSBhcnJheQ==", "GasUsed": 9,
                         "EventsRoot": {{"/": "{a}"}}}},
            "ReturnDec": {{}}, "TipSet": [{{"/": "{a}"}}, {{"/": "{b}"}}], "Height": 10101}}"#
    ));
    assert_eq!(l.receipt.r#return.bytes(), b"byte array");
    assert_eq!(l.tipset.len(), 2);
    // A failed message: its exit code, no return, no events.
    let failed: MsgLookup = serde_json::from_str(&format!(
        r#"{{"Message": {{"/": "{a}"}},
            "Receipt": {{"ExitCode": 16, "Return": null, "GasUsed": 9, "EventsRoot": null}},
            "ReturnDec": null, "TipSet": [{{"/": "{b}"}}], "Height": 10102}}"#
    ))
    .unwrap();
    assert_eq!(failed.receipt.exit_code, 16);
    assert!(failed.receipt.r#return.bytes().is_empty());
}

#[test]
fn miner_info_and_power() {
    let info: MinerInfo = round_trip(
        r#"{"Owner": "f01234", "Worker": "f01234", "NewWorker": "f01234",
            "ControlAddresses": ["f01234"], "WorkerChangeEpoch": 10101,
            "PeerId": "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf",
            "Multiaddrs": ["Ynl0ZSBhcnJheQ=="], "WindowPoStProofType": 8,
            "SectorSize": 34359738368, "WindowPoStPartitionSectors": 42,
            "ConsensusFaultElapsed": 10101, "PendingOwnerAddress": "f01234",
            "Beneficiary": "f01234",
            "BeneficiaryTerm": {"Quota": "0", "UsedQuota": "0", "Expiration": 10101},
            "PendingBeneficiaryTerm": {"NewBeneficiary": "f01234", "NewQuota": "0",
              "NewExpiration": 10101, "ApprovedByBeneficiary": true,
              "ApprovedByNominee": true}}"#,
    );
    assert_eq!(info.worker, lotus::Address::new_id(1234));
    assert_eq!(info.sector_size, 32 << 30);
    // The docs' 8 is the retired V1 window proof (kept as read); a 2KiB devnet miner's is 10.
    let json = serde_json::to_string(&info)
        .unwrap()
        .replace(r#""WindowPoStProofType":8"#, r#""WindowPoStProofType":10"#);
    let devnet: MinerInfo = serde_json::from_str(&json).unwrap();
    assert_eq!(
        devnet.window_po_st_proof_type,
        lotus::RegisteredPoStProof::StackedDRGWindow2KiBV1P1
    );
    let p: MinerPower = round_trip(
        r#"{"MinerPower": {"RawBytePower": "0", "QualityAdjPower": "0"},
            "TotalPower": {"RawBytePower": "123456789012345678901234567890",
                           "QualityAdjPower": "0"},
            "HasMinPower": true}"#,
    );
    assert_eq!(
        p.total_power.raw_byte_power.to_string(),
        "123456789012345678901234567890"
    );
}

#[test]
fn sector_on_chain() {
    let cid = "bafy2bzacea3wsdh6y3a36tb3skempjoxqpuyompjbmfeyf34fi3uy6uue42v4";
    let s: SectorOnChainInfo = round_trip(&format!(
        r#"{{"SectorNumber": 9, "SealProof": 8, "SealedCID": {{"/": "{cid}"}},
            "Activation": 10101, "Expiration": 10101, "DealWeight": "0",
            "VerifiedDealWeight": "0", "InitialPledge": "0", "ExpectedDayReward": "0",
            "ExpectedStoragePledge": "0", "PowerBaseEpoch": 10101, "ReplacedDayReward": "0",
            "SectorKeyCID": {{"/": "{cid}"}}, "Flags": 0, "DailyFee": "0"}}"#
    ));
    assert_eq!((s.sector_number, s.activation), (9, 10101));
    assert!(s.sector_key_cid.is_some());
}
