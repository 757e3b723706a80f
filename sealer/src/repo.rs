//! The sealer's repo (`$SEALER_PATH`, default `~/.sealer`): `config.toml`, the JWT secret
//! (`keystore/jwt`), the admin `token`, the `api` address of the running daemon, `storage.json`
//! and the RocksDB `datastore/`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use stores::{Permission, Secret};

use crate::config::Config;

pub struct Repo {
    pub path: PathBuf,
}

impl Repo {
    /// `--repo`, else `$SEALER_PATH`, else `~/.sealer`.
    pub fn locate(flag: Option<PathBuf>) -> Repo {
        let path = flag
            .or_else(|| std::env::var_os("SEALER_PATH").map(PathBuf::from))
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
                Path::new(&home).join(".sealer")
            });
        Repo { path }
    }

    pub fn config_file(&self) -> PathBuf {
        self.path.join("config.toml")
    }
    pub fn datastore(&self) -> PathBuf {
        self.path.join("datastore")
    }
    pub fn storage_file(&self) -> PathBuf {
        self.path.join("storage.json")
    }
    fn secret_file(&self) -> PathBuf {
        self.path.join("keystore").join("jwt")
    }
    fn token_file(&self) -> PathBuf {
        self.path.join("token")
    }
    fn api_file(&self) -> PathBuf {
        self.path.join("api")
    }

    pub fn exists(&self) -> bool {
        self.config_file().exists()
    }

    /// `sealer init`: writes `config.toml` from defaults with `edit` applied, a new secret, an
    /// admin token and an empty `storage.json`. Refuses an initialized repo.
    pub fn init(&self, edit: impl FnOnce(&mut Config)) -> Result<Config> {
        if self.exists() {
            bail!(
                "{} is already initialized (config.toml exists); remove it or use another --repo",
                self.path.display()
            );
        }
        let mut cfg = Config::default();
        edit(&mut cfg);
        let file = self.config_file();
        cfg.check(&file.display().to_string())?;
        std::fs::create_dir_all(self.path.join("keystore"))
            .with_context(|| format!("creating {}", self.path.display()))?;
        let secret = Secret::generate();
        write_private(&self.secret_file(), secret.as_bytes())?;
        write_private(
            &self.token_file(),
            secret.token_for(Permission::Admin).as_bytes(),
        )?;
        stores::meta::StorageConfig::default()
            .save(&self.storage_file())
            .context("writing storage.json")?;
        // The config goes last: its presence marks the repo as initialized.
        stores::fsutil::write_atomic(&file, cfg.to_toml().as_bytes())
            .with_context(|| format!("writing {}", file.display()))?;
        Ok(cfg)
    }

    pub fn secret(&self) -> Result<Secret> {
        let f = self.secret_file();
        let b = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
        Secret::from_bytes(b).with_context(|| format!("{}", f.display()))
    }

    /// Records where the daemon listens (`api`: a multiaddr), as lotus does.
    pub fn write_api(&self, multiaddr: &str) -> Result<()> {
        stores::fsutil::write_atomic(&self.api_file(), multiaddr.as_bytes())
            .with_context(|| format!("writing {}", self.api_file().display()))
    }

    /// Where the devnet node the daemon runs listens, with a token of every permission:
    /// `<token>:<multiaddr>` (lotus's FULLNODE_API_INFO), private to the repo's owner.
    pub fn write_fullnode_api(&self, info: &str) -> Result<()> {
        write_private_file(&self.fullnode_api_file(), info.as_bytes())
    }

    pub fn fullnode_api_file(&self) -> PathBuf {
        self.path.join("fullnode_api")
    }

    pub fn remove_api(&self) {
        let _ = std::fs::remove_file(self.api_file());
    }

    /// `<token>:<multiaddr>` of the running daemon, from the repo.
    pub fn api_info(&self) -> Result<String> {
        let ma = std::fs::read_to_string(self.api_file()).with_context(|| {
            format!(
                "no daemon address in {} (is `sealer run` running with this repo? or set MINER_API_INFO)",
                self.api_file().display()
            )
        })?;
        let token = std::fs::read_to_string(self.token_file())
            .with_context(|| format!("reading {}", self.token_file().display()))?;
        Ok(format!("{}:{}", token.trim(), ma.trim()))
    }
}

/// Writes `data` to `path` (replacing it), readable by its owner only.
pub fn write_private_file(path: &Path, data: &[u8]) -> Result<()> {
    let _ = std::fs::remove_file(path);
    write_private(path, data)
}

fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}
