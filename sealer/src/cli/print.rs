//! Output shaped like lotus-miner's.

use api::{FoundFile, JobRow, MinerInfo, SectorInfo, SectorState, StorageRow, WorkerRow};

pub use resources::human_bytes as size;

use std::io::{self, Write};

/// Runs `print` on standard output, buffered: a list of ten thousand rows is a few writes, not
/// one per line (a `println!` per row took half of `sectors list`'s time). A reader that stops
/// early (`| head`) ends the listing quietly.
pub fn buffered(print: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    match print(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        done => done,
    }
}

/// `[|||||     ]`: `used` of `total` over `width` cells.
pub fn bar(used: u64, total: u64, width: usize) -> String {
    let filled = if total == 0 {
        0
    } else {
        ((used as f64 / total as f64) * width as f64)
            .round()
            .min(width as f64) as usize
    };
    format!("[{}{}]", "|".repeat(filled), " ".repeat(width - filled))
}

fn pct(used: u64, total: u64) -> u64 {
    (used * 100).checked_div(total).unwrap_or(0)
}

fn duration(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}h{}m{}s", s / 3600, s / 60 % 60, s % 60)
    } else if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

fn time(ms: u64) -> String {
    let secs = ms / 1000;
    let (d, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (UTC).
    let z = d as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

pub fn info(i: &MinerInfo) {
    println!("Miner: {} ({} sectors)", i.actor, i.sector_size);
    if i.engine == "mock" {
        println!("Proof engine: mock -- NOT REAL PROOFS (tests and demos only)");
    } else {
        println!("Proof engine: {}", i.engine);
    }
    let network = i.funds.as_ref().map_or("", |f| f.network.as_str());
    println!(
        "Chain: {} node, network {network}, epoch {} (block delay {} ms)",
        i.chain_mode, i.head.height, i.head.block_delay_ms
    );
    for (part, calls) in &i.chain_calls {
        let total: u64 = calls.values().sum();
        let each: Vec<String> = calls
            .iter()
            .map(|(m, n)| format!("{} {n}", m.trim_start_matches("Filecoin.")))
            .collect();
        println!("Chain API calls, {part}: {total} ({})", each.join(", "));
    }
    println!(
        "Power: {} / {} ({} sectors)",
        size(i.power.raw_bytes),
        size(i.power.total_raw_bytes),
        i.power.sectors
    );
    if let Some(f) = &i.funds {
        println!();
        println!("Miner Balance:    {}", f.miner_balance);
        println!("      PreCommit:  {}", f.pre_commit);
        println!("      Pledge:     {}", f.pledge);
        println!("      Vesting:    {}", f.vesting);
        println!("      Available:  {}", f.available);
        println!(
            "Worker Balance:   {} ({}, {})",
            f.worker_balance, f.worker, f.worker_key
        );
        println!("Owner Balance:    {} ({})", f.owner_balance, f.owner);
        for (c, b) in &f.control {
            println!("Control Balance:  {b} ({c})");
        }
        println!();
    }
    println!("Workers: {}", i.workers);
    if let Some(sdr) = &i.sdr {
        println!("PC1 SDR (in-process worker): {sdr}");
    }
    let sealing: u64 = i
        .states
        .iter()
        .filter(|(s, _)| s.parse::<SectorState>().is_ok_and(|s| s.is_sealing()))
        .map(|(_, n)| n)
        .sum();
    let max = if i.max_sealing == 0 {
        "no limit".to_string()
    } else {
        i.max_sealing.to_string()
    };
    println!("Sealing: {sealing} (MaxSealingSectors: {max})");
    println!();
    println!("Sectors:");
    println!("\tTotal: {}", i.states.values().sum::<u64>());
    for (state, n) in &i.states {
        println!("\t{state}: {n}");
    }
}

/// An expiration epoch as lotus shows it: the epoch, and how far off (30 s epochs).
fn expiration(epoch: i64, head: i64) -> String {
    let days = (epoch - head) as f64 * 30.0 / 86_400.0;
    match days >= 0.0 {
        true => format!("{epoch} (in {days:.0} days)"),
        false => format!("{epoch} ({:.0} days ago)", -days),
    }
}

/// `sectors list`: `expirations` goes with `page.rows` (shown with `on_chain_info`).
pub fn sectors(
    out: &mut dyn Write,
    page: &api::SectorsPage,
    expirations: &[Option<i64>],
    head: i64,
    on_chain_info: bool,
) -> io::Result<()> {
    writeln!(
        out,
        "{:<6}  {:<22}  {:<7}  {:<6}  {:<28}  Deals",
        "ID", "State", "OnChain", "Active", "Expiration"
    )?;
    for (s, exp) in page.rows.iter().zip(expirations) {
        let on_chain = s.state.on_chain();
        let active = matches!(
            s.state,
            SectorState::FinalizeSector | SectorState::Proving | SectorState::FinalizeFailed
        );
        let yn = |b: bool| if b { "YES" } else { "NO" };
        let exp = match (exp, on_chain_info) {
            (Some(e), _) => expiration(*e, head),
            (None, true) => "-".into(),
            (None, false) => "(--fast)".into(),
        };
        writeln!(
            out,
            "{:<6}  {:<22}  {:<7}  {:<6}  {:<28}  {}",
            s.number,
            s.state.to_string(),
            yn(on_chain),
            yn(active),
            exp,
            if s.deals == 0 {
                "CC".to_string()
            } else {
                s.deals.to_string()
            }
        )?;
    }
    if page.rows.len() as u64 != page.total {
        writeln!(out, "({} of {} sectors)", page.rows.len(), page.total)?;
    }
    Ok(())
}

pub fn status(s: &SectorInfo, log: bool) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "<nil>".into());
    let epoch = |v: Option<i64>| v.map(|e| e.to_string()).unwrap_or_else(|| "0".into());
    println!("SectorID:\t{}", s.sector_id);
    println!("Status:\t\t{}", s.state);
    println!("CIDcommD:\t{}", opt(&s.comm_d));
    println!("CIDcommR:\t{}", opt(&s.comm_r));
    println!("Ticket:\t\t{}", opt(&s.ticket));
    println!("TicketH:\t{}", epoch(s.ticket_epoch));
    println!("Seed:\t\t{}", opt(&s.seed));
    println!("SeedH:\t\t{}", epoch(s.seed_epoch));
    println!("Precommit:\t{}", opt(&s.precommit_msg));
    println!("Commit:\t\t{}", opt(&s.commit_msg));
    println!("Proof:\t\t{} bytes", s.proof_len);
    println!("Deals:\t\t{:?}", s.deals);
    println!("Retries:\t{}", s.retries);
    if let Some(why) = &s.waiting {
        println!("Waiting:\t{why}");
    }
    if !s.last_error.is_empty() {
        match s.last_error_kind {
            Some(kind) => println!("Last Error:\t\t{} [{kind}]", s.last_error),
            None => println!("Last Error:\t\t{}", s.last_error),
        }
    }
    if let Some(oc) = &s.on_chain {
        println!();
        println!("Sector On Chain Info");
        println!("PreCommitEpoch:\t{}", epoch(oc.precommit_epoch));
        match oc.seal_proof {
            Some(p) => println!("SealProof:\t{p}"),
            None => println!("SealProof:\t<not active on chain>"),
        }
        println!("SealedCID:\t{}", opt(&oc.sealed_cid));
        println!("Activation:\t{}", epoch(oc.activation));
        println!("Expiration:\t{}", epoch(oc.expiration));
        if let (Some(d), Some(p)) = (oc.deadline, oc.partition) {
            println!("Deadline:\t{d}");
            println!("Partition:\t{p}");
        }
    }
    if log {
        println!();
        println!("Event Log:");
        for (i, l) in s.log.iter().enumerate() {
            println!(
                "{i}.\t{}:\t[{}]\t{}\t{}",
                time(l.timestamp_ms),
                l.kind,
                l.state,
                l.message
            );
        }
    }
}

/// `sealing jobs`: lotus's columns; a PoSt's Sector column names its deadline or epoch
/// (`WDP  deadline 12`).
pub fn jobs(out: &mut dyn Write, jobs: &[JobRow]) -> io::Result<()> {
    let width = jobs
        .iter()
        .map(|j| j.subject.to_string().len())
        .max()
        .unwrap_or(0)
        .max(6);
    writeln!(
        out,
        "{:<6}  {:<width$}  {:<8}  {:<16}  {:<5}  {:<12}  {:<8}  {:<22}  CPUs",
        "ID", "Sector", "Worker", "Hostname", "Task", "State", "Time", "Progress"
    )?;
    let mut jobs = jobs.to_vec();
    jobs.sort_by_key(|j| (j.run_wait, std::cmp::Reverse(j.elapsed_ms)));
    for j in jobs {
        writeln!(
            out,
            "{:<6}  {:<width$}  {:<8}  {:<16}  {:<5}  {:<12}  {:<8}  {:<22}  {}",
            j.id,
            j.subject.to_string(),
            j.worker,
            j.hostname,
            j.task.short(),
            j.state,
            duration(j.elapsed_ms),
            j.progress.map_or("-".to_string(), |p| p.to_string()),
            j.cpus.as_ref().map_or("-".to_string(), |c| c.to_string())
        )?;
    }
    Ok(())
}

pub fn workers(out: &mut dyn Write, ws: &[WorkerRow]) -> io::Result<()> {
    for w in ws {
        let state = match (w.enabled, w.connected) {
            (_, false) => " (disconnected)",
            (false, _) => " (disabled)",
            _ => "",
        };
        writeln!(out, "Worker {}, host {}{state}", w.id, w.hostname)?;
        let counts: Vec<String> = w
            .task_counts
            .iter()
            .map(|(t, n)| format!("{t}({n})"))
            .collect();
        writeln!(
            out,
            "\tTASK: {}",
            if counts.is_empty() {
                "-".to_string()
            } else {
                counts.join(" ")
            }
        )?;
        writeln!(out, "\tTypes: {}", w.tasks)?;
        let r = &w.resources;
        let u = &w.usage;
        writeln!(
            out,
            "\tCPU:  {} {}/{} core(s) in use",
            bar(u.cpus, r.cpus, 40),
            u.cpus,
            r.cpus
        )?;
        if let Some(c) = &w.cpus {
            let held: Vec<String> = w
                .cpus_held
                .iter()
                .map(|h| {
                    let how = if h.exclusive { "" } else { " (shared)" };
                    let gpu = h.gpu.map(|g| format!(" GPU {g}")).unwrap_or_default();
                    format!("{} {} on {}{gpu}{how}", h.task.short(), h.subject, h.cpus)
                })
                .collect();
            writeln!(
                out,
                "\tCPUs: {c}{}{}",
                if held.is_empty() { "" } else { "; " },
                held.join("; ")
            )?;
        }
        let ram_used = r.mem_used + u.mem_min;
        writeln!(
            out,
            "\tRAM:  {} {}% {}/{}",
            bar(ram_used, r.mem_physical, 40),
            pct(ram_used, r.mem_physical),
            size(ram_used),
            size(r.mem_physical)
        )?;
        let vmem_total = r.mem_physical + r.mem_swap;
        let vmem_used = r.mem_used + r.mem_swap_used + u.mem_max;
        writeln!(
            out,
            "\tVMEM: {} {}% {}/{}",
            bar(vmem_used, vmem_total, 40),
            pct(vmem_used, vmem_total),
            size(vmem_used),
            size(vmem_total)
        )?;
        if r.gpus.is_empty() {
            writeln!(out, "\tGPU:  none")?;
        }
        for g in &r.gpus {
            writeln!(
                out,
                "\tGPU:  {} {:.0}% {g}",
                bar(u.gpu_milli as u64, 1000 * r.gpus.len() as u64, 40),
                u.gpu_milli as f64 / (10.0 * r.gpus.len() as f64)
            )?;
        }
    }
    Ok(())
}

pub fn storage(rows: &[StorageRow]) {
    for r in rows {
        println!("{}:", r.info.id);
        if let Some(st) = &r.stat {
            let used = st.capacity.saturating_sub(st.fs_available);
            println!(
                "\t{} {}/{} {}%",
                bar(used, st.capacity, 50),
                size(used),
                size(st.capacity),
                pct(used, st.capacity)
            );
            println!(
                "\tAvailable: {}; Reserved: {}; Sector files: {}{}",
                size(st.available),
                size(st.reserved),
                size(st.used),
                if st.max > 0 {
                    format!("; Max: {}", size(st.max))
                } else {
                    String::new()
                }
            );
        }
        let count = |t: &str| r.counts.get(t).copied().unwrap_or(0);
        println!(
            "\tUnsealed: {}; Sealed: {}; Caches: {}",
            count("unsealed"),
            count("sealed"),
            count("cache")
        );
        println!(
            "\tWeight: {}; Use: {}{}",
            r.info.weight,
            if r.info.can_seal { "Seal " } else { "" },
            if r.info.can_store { "Store" } else { "" }
        );
        if let Some(p) = &r.local_path {
            println!("\tLocal: {p}");
        }
        for u in &r.info.urls {
            println!("\tURL: {u}");
        }
        if let Some(e) = &r.error {
            println!("\tError: {e}");
        }
    }
}

pub fn find(id: u64, found: &[FoundFile]) {
    if found.is_empty() {
        println!("sector {id}: no files found");
        return;
    }
    for f in found {
        println!("In {} ({})", f.storage, f.file_type);
        println!("\tSeal: {}; Store: {}", f.can_seal, f.can_store);
        if let Some(p) = &f.local_path {
            println!("\tLocal ({p})");
        }
        for u in &f.urls {
            println!("\tURL: {u}");
        }
    }
}

/// `actor control list`, as lotus-miner prints it.
pub fn control(rows: &[api::ControlRow]) {
    println!(
        "{:<10}  {:<8}  {:<12}  {:<22}  {:<24}  Wallet",
        "name", "ID", "key", "use", "balance"
    );
    for r in rows {
        let key = if r.key.len() > 12 {
            format!("{}...", &r.key[..9])
        } else {
            r.key.clone()
        };
        println!(
            "{:<10}  {:<8}  {:<12}  {:<22}  {:<24}  {}",
            r.name,
            r.id,
            key,
            r.uses.join(" "),
            r.balance,
            if r.in_wallet {
                "yes"
            } else {
                "NOT IN THE NODE'S WALLET"
            }
        );
    }
}

/// `sectors batching precommit|commit`: the queue, nearest deadline first.
pub fn batch_queue(rows: &[api::BatchQueued]) {
    if rows.is_empty() {
        println!("No sectors queued to be batched");
        return;
    }
    println!("{:<8}  {:<14}  Waiting", "Sector", "Deadline");
    for r in rows {
        println!("{:<8}  {:<14}  {}s", r.sector, r.deadline, r.waited_s);
    }
}

/// `sectors batching ... --publish-now`: what went.
pub fn batches(kind: crate::batch::BatchKind, sent: &[api::BatchSent]) {
    if sent.is_empty() {
        println!("No sectors queued to be batched");
    }
    for b in sent {
        println!("{}", crate::batch::describe(kind, b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(size(2048), "2 KiB");
        assert_eq!(size(1536), "1.500 KiB");
        assert_eq!(bar(1, 4, 8), "[||      ]");
        assert_eq!(bar(9, 4, 4), "[||||]");
        assert_eq!(time(0), "1970-01-01 00:00:00.000");
        assert_eq!(time(1_700_000_000_123), "2023-11-14 22:13:20.123");
        assert_eq!(duration(61_000), "1m1s");
    }
}
