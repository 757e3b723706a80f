//! Which SDR labelling PC1 (and unseal) runs: rust-fil-proofs' own settings, as its labelling code
//! reads them (`FIL_PROOFS_USE_MULTICORE_SDR`, `FIL_PROOFS_MULTICORE_SDR_PRODUCERS`, ... or
//! `./rust-fil-proofs.config.toml`), so what a daemon reports is what PC1 does.

use serde::{Deserialize, Serialize};

/// The SDR mode of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdrMode {
    /// Multicore SDR: producer threads fill the parents' labels ahead of the hashing core.
    #[serde(rename = "Multicore")]
    pub multicore: bool,
    /// Producer threads (multicore only).
    #[serde(rename = "Producers")]
    pub producers: usize,
    /// Nodes a producer works on at a time (multicore only).
    #[serde(rename = "ProducerStride")]
    pub producer_stride: u64,
    /// Nodes the producers run ahead (multicore only).
    #[serde(rename = "Lookahead")]
    pub lookahead: usize,
}

impl SdrMode {
    /// Read once from rust-fil-proofs' settings (which panic on a value they cannot parse: the
    /// worker's resource table has already refused such a value with its name by then).
    pub fn current() -> SdrMode {
        let s = &*storage_proofs_core::settings::SETTINGS;
        SdrMode {
            multicore: s.use_multicore_sdr,
            producers: s.multicore_sdr_producers,
            producer_stride: s.multicore_sdr_producer_stride,
            lookahead: s.multicore_sdr_lookahead,
        }
    }

    /// The mode an engine's PC1 runs in: none for the mock engine, which labels nothing.
    pub fn of(engine: crate::EngineKind) -> Option<SdrMode> {
        (engine == crate::EngineKind::Real).then(SdrMode::current)
    }

    /// `mode` as the CLIs and start-up logs print it.
    pub fn describe(mode: Option<SdrMode>) -> String {
        mode.map_or_else(|| "none (mock engine)".into(), |m| m.to_string())
    }
}

impl std::fmt::Display for SdrMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.multicore {
            write!(
                f,
                "multicore ({} producer thread{} + 1, stride {}, lookahead {})",
                self.producers,
                if self.producers == 1 { "" } else { "s" },
                self.producer_stride,
                self.lookahead
            )
        } else {
            write!(f, "single-core (FIL_PROOFS_USE_MULTICORE_SDR not set)")
        }
    }
}
