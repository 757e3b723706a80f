//! `storage attach`, shared by the sealer's and the worker's CLI: lotus's flags, the wire
//! params they become, and the store options a daemon applies.

use std::path::PathBuf;

use stores::AttachOptions;

use crate::AttachParams;

/// `storage attach [--init] [--seal] [--store] [--weight N] [--max-storage SIZE]
/// [--groups G,..] [--allow-to G,..] PATH`, as lotus-miner and lotus-worker take it.
#[derive(Debug, Clone, clap::Args)]
pub struct AttachArgs {
    pub path: PathBuf,
    /// Create sectorstore.json in an empty directory.
    #[arg(long)]
    pub init: bool,
    /// New sectors may be sealed here.
    #[arg(long)]
    pub seal: bool,
    /// Finished sectors may be stored here.
    #[arg(long)]
    pub store: bool,
    #[arg(long, default_value_t = 10)]
    pub weight: u64,
    /// e.g. 2TiB (0: no limit).
    #[arg(long)]
    pub max_storage: Option<String>,
    /// Groups this path belongs to (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub groups: Vec<String>,
    /// Groups whose paths may take sectors from this one (default: any).
    #[arg(long, value_delimiter = ',')]
    pub allow_to: Vec<String>,
}

impl AttachArgs {
    /// The wire params, with the path made absolute (the daemon runs elsewhere).
    pub fn params(self) -> Result<AttachParams, String> {
        let path =
            std::path::absolute(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        let max_storage = match &self.max_storage {
            Some(s) => resources::parse_bytes(s).map_err(|e| format!("--max-storage: {e}"))?,
            None => 0,
        };
        let clean = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|g| g.trim().to_string())
                .filter(|g| !g.is_empty())
                .collect()
        };
        Ok(AttachParams {
            path: path.display().to_string(),
            init: self.init,
            seal: self.seal,
            store: self.store,
            weight: self.weight,
            max_storage,
            groups: clean(self.groups),
            allow_to: clean(self.allow_to),
        })
    }
}

impl AttachParams {
    /// What the daemon's store is asked to do.
    pub fn options(&self) -> AttachOptions {
        AttachOptions {
            init: self.init,
            seal: self.seal,
            store: self.store,
            weight: (self.weight > 0).then_some(self.weight),
            max_storage: (self.max_storage > 0).then_some(self.max_storage),
            groups: self.groups.clone(),
            allow_to: self.allow_to.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        a: AttachArgs,
    }

    #[test]
    fn groups_as_lotus_takes_them() {
        let cli = Cli::try_parse_from([
            "x",
            "--init",
            "--store",
            "--groups",
            "g1,g2",
            "--groups",
            "g3",
            "--allow-to",
            "g1",
            "--max-storage",
            "2KiB",
            "/data/store",
        ])
        .unwrap();
        let p = cli.a.params().unwrap();
        assert_eq!(p.groups, ["g1", "g2", "g3"]);
        assert_eq!(p.allow_to, ["g1"]);
        assert_eq!(p.max_storage, 2048);
        let o = p.options();
        assert!(o.init && o.store && !o.seal);
        assert_eq!(o.groups, ["g1", "g2", "g3"]);
        assert_eq!(o.allow_to, ["g1"]);
        // Old clients send no groups.
        let old: AttachParams = serde_json::from_str(
            r#"{"Path":"/p","Init":true,"CanSeal":true,"CanStore":false,"Weight":10,"MaxStorage":0}"#,
        )
        .unwrap();
        assert!(old.groups.is_empty() && old.allow_to.is_empty());
    }

    #[test]
    fn bad_max_storage_names_the_flag() {
        let cli = Cli::try_parse_from(["x", "--max-storage", "lots", "/p"]).unwrap();
        let e = cli.a.params().unwrap_err();
        assert!(e.contains("--max-storage"), "{e}");
    }
}

/// `storage detach [--really-do-it] PATH`, on the sealer and on workers.
#[derive(Debug, Clone, clap::Args)]
pub struct DetachArgs {
    pub path: std::path::PathBuf,
    /// Confirms: sectors only this path holds become unreadable here (rebuilt elsewhere while
    /// `[Sealing] RebuildLostSectors` is on); the files stay on disk.
    #[arg(long)]
    pub really_do_it: bool,
}

impl DetachArgs {
    /// The path to send (absolute, as `storage attach` recorded it), once confirmed.
    pub fn path(&self) -> Result<String, String> {
        if !self.really_do_it {
            return Err(format!(
                "sectors only {} holds become unreadable here (and are rebuilt elsewhere while \
                 [Sealing] RebuildLostSectors is on); pass --really-do-it to confirm",
                self.path.display()
            ));
        }
        std::path::absolute(&self.path)
            .map(|p| p.display().to_string())
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}
