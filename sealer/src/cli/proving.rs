//! `sealer proving info|deadlines|faults|check`, as lotus-miner's `proving` commands show them.

use anyhow::Result;
use api::methods as m;
use api::Client;
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum ProvingCmd {
    /// Power, the current deadline, faults.
    Info,
    /// Every deadline: partitions, sectors, faults, what happened at its last opening.
    Deadlines,
    /// Faulty sectors with their deadline and partition.
    Faults,
    /// Reads the challenged leaves of a deadline's sectors and names those that cannot be proven.
    Check { deadline: u64 },
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn count(v: &Value) -> usize {
    v.as_array().map(Vec::len).unwrap_or(0)
}

pub async fn run(c: &Client, cmd: ProvingCmd) -> Result<()> {
    if let ProvingCmd::Check { deadline } = cmd {
        let v: Value = c.call(m::CHECK_PROVABLE, json!([deadline])).await?;
        let bad = v["Unprovable"].as_array().cloned().unwrap_or_default();
        println!("deadline {deadline}: {} sectors", count(&v["Sectors"]));
        if bad.is_empty() {
            println!("all can be proven");
        }
        for b in bad {
            println!(
                "sector {}: {}",
                n(&b["Sector"]),
                b["Why"].as_str().unwrap_or("")
            );
        }
        return Ok(());
    }
    let v: Value = c.call(m::STATE_MINER_DEADLINES, json!([])).await?;
    match cmd {
        ProvingCmd::Info => {
            let cur = &v["Current"];
            let p = &v["Power"];
            let recovering: usize = v["Deadlines"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|d| d["Partitions"].as_array().cloned().unwrap_or_default())
                .map(|p| count(&p["Recoveries"]))
                .sum();
            println!("Current Epoch:           {}", n(&v["Head"]));
            println!("Proving Period Start:    {}", cur["period_start"]);
            println!("Deadline Index:          {}", cur["index"]);
            println!("Deadline Open:           {}", cur["open"]);
            println!("Deadline Close:          {}", cur["close"]);
            println!("Deadline Challenge:      {}", cur["challenge"]);
            println!("Epochs per Deadline:     {}", n(&v["Window"]));
            println!(
                "Power:                   {} sectors ({} bytes)",
                n(&p["Sectors"]),
                n(&p["RawBytePower"])
            );
            println!("Faulty Sectors:          {}", count(&v["Faults"]));
            println!("Recovering Sectors:      {recovering}");
            println!("Missed Partitions:       {}", n(&v["Missed"]));
            println!("Proofs Accepted:         {}", n(&v["ProofsAccepted"]));
            println!(
                "Blocks Won:              {} (elected {} times, {} WinningPoSts sent)",
                n(&v["BlocksWon"]),
                n(&v["Elections"]),
                n(&v["WinningPoStsSent"])
            );
        }
        ProvingCmd::Deadlines => {
            println!("Deadline  Open    Partitions  Sectors  Faults  Proven  Last opening");
            for d in v["Deadlines"].as_array().into_iter().flatten() {
                let parts = d["Partitions"].as_array().cloned().unwrap_or_default();
                let sectors: usize = parts.iter().map(|p| count(&p["Sectors"])).sum();
                let faults: usize = parts.iter().map(|p| count(&p["Faults"])).sum();
                let last = match &d["LastRun"] {
                    Value::Null => String::new(),
                    r => format!("{} at {}", r["outcome"].as_str().unwrap_or(""), r["open"]),
                };
                println!(
                    "{:<9} {:<7} {:<11} {:<8} {:<7} {:<7} {last}",
                    n(&d["Index"]),
                    d["Open"],
                    parts.len(),
                    sectors,
                    faults,
                    n(&d["ProvenPartitions"]),
                );
            }
        }
        ProvingCmd::Faults => {
            println!("Deadline  Partition  Sector");
            for d in v["Deadlines"].as_array().into_iter().flatten() {
                for (i, p) in d["Partitions"].as_array().into_iter().flatten().enumerate() {
                    for s in p["Faults"].as_array().into_iter().flatten() {
                        println!("{:<9} {:<10} {}", n(&d["Index"]), i, n(s));
                    }
                }
            }
        }
        ProvingCmd::Check { .. } => unreachable!("handled above"),
    }
    Ok(())
}
