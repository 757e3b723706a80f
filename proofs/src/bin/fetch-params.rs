//! `fetch-params [--generate] SIZE`: like `lotus fetch-params`. Lists which parameter files a
//! sector size needs and which are in `FIL_PROOFS_PARAMETER_CACHE`, then downloads the missing
//! official ones from `IPFS_GATEWAY` (digest checked), or with `--generate` creates local devnet
//! parameters (2KiB, 8MiB, 512MiB only; never the network's trusted setup).

use std::process::ExitCode;

use proofs::params;
use resources::SectorSize;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let generate = args.iter().any(|a| a == "--generate");
    let sizes: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    if sizes.len() != 1
        || args
            .iter()
            .any(|a| a.starts_with("--") && a != "--generate")
    {
        eprintln!("usage: fetch-params [--generate] <2KiB|8MiB|512MiB|32GiB|64GiB>");
        return ExitCode::from(2);
    }
    let size: SectorSize = match sizes[0].parse() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fetch-params: {e}");
            return ExitCode::from(2);
        }
    };
    let dir = params::cache_dir();
    let manifest = params::official_manifest();
    println!("parameter cache: {}", dir.display());
    for (name, present) in params::status(&dir, &manifest, size) {
        println!("  {} {name}", if present { "present" } else { "missing" });
    }
    let result = if generate {
        // A line a minute while a long setup runs, so the operator sees it is alive.
        let start = std::time::Instant::now();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let ticker = std::thread::spawn(move || {
            use std::sync::mpsc::RecvTimeoutError::Timeout;
            while let Err(Timeout) = stopped.recv_timeout(std::time::Duration::from_secs(60)) {
                println!(
                    "  ... still generating, {} s elapsed",
                    start.elapsed().as_secs()
                );
            }
        });
        let r = params::generate(size, &mut |line| println!("{line}"));
        let _ = stop.send(());
        let _ = ticker.join();
        r
    } else {
        params::fetch_missing(&params::gateway(), &dir, &manifest, size).map(|got| {
            for name in got {
                println!("downloaded {name}");
            }
        })
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fetch-params: {e}");
            ExitCode::FAILURE
        }
    }
}
