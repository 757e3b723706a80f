//! `sealer proving info|deadlines|faults|check`, as lotus-miner's `proving` commands show them.

use anyhow::Result;
use api::methods as m;
use api::Client;
use clap::Subcommand;

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

pub async fn run(c: &Client, cmd: ProvingCmd) -> Result<()> {
    if let ProvingCmd::Check { deadline } = cmd {
        let v = c.request::<m::CheckProvable>((deadline,)).await?;
        println!("deadline {deadline}: {} sectors", v.sectors.len());
        if v.unprovable.is_empty() {
            println!("all can be proven");
        }
        for b in v.unprovable {
            println!("sector {}: {}", b.sector, b.why);
        }
        return Ok(());
    }
    let v = c.request::<m::StateMinerDeadlines>(()).await?;
    match cmd {
        ProvingCmd::Info => {
            let cur = &v.current;
            let recovering: usize = v
                .deadlines
                .iter()
                .flat_map(|d| &d.partitions)
                .map(|p| p.recoveries.len())
                .sum();
            println!("Current Epoch:           {}", v.head);
            println!("Proving Period Start:    {}", cur.period_start);
            println!("Deadline Index:          {}", cur.index);
            println!("Deadline Open:           {}", cur.open);
            println!("Deadline Close:          {}", cur.close);
            println!("Deadline Challenge:      {}", cur.challenge);
            println!("Epochs per Deadline:     {}", v.window);
            println!(
                "Power:                   {} sectors ({} bytes)",
                v.power.sectors, v.power.raw_bytes
            );
            println!("Faulty Sectors:          {}", v.faults.len());
            println!("Recovering Sectors:      {recovering}");
            println!("Missed Partitions:       {}", v.missed);
            println!("Proofs Accepted:         {}", v.proofs_accepted);
            println!(
                "Blocks Won:              {} (elected {} times, {} WinningPoSts sent)",
                v.blocks_won, v.elections, v.winning_posts_sent
            );
        }
        ProvingCmd::Deadlines => {
            println!("Deadline  Open    Partitions  Sectors  Faults  Proven  Last opening");
            for d in &v.deadlines {
                let sectors: usize = d.partitions.iter().map(|p| p.sectors.len()).sum();
                let faults: usize = d.partitions.iter().map(|p| p.faults.len()).sum();
                let last = match &d.last_run {
                    None => String::new(),
                    Some(r) => format!("{} at {}", r.outcome, r.open),
                };
                println!(
                    "{:<9} {:<7} {:<11} {:<8} {:<7} {:<7} {last}",
                    d.index,
                    d.open,
                    d.partitions.len(),
                    sectors,
                    faults,
                    d.proven_partitions,
                );
            }
        }
        ProvingCmd::Faults => {
            println!("Deadline  Partition  Sector");
            for d in &v.deadlines {
                for (i, p) in d.partitions.iter().enumerate() {
                    for s in &p.faults {
                        println!("{:<9} {:<10} {}", d.index, i, s);
                    }
                }
            }
        }
        ProvingCmd::Check { .. } => unreachable!("handled above"),
    }
    Ok(())
}
