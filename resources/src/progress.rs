//! How far a running task is: what its processor child, or a transfer, reports while it runs.

use serde::{Deserialize, Serialize};

/// What a task's progress counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Steps {
    /// PC1's SDR layers: `done` is the layer being labelled (1-based).
    Layers,
    /// Bytes moved of a transfer.
    Bytes,
}

/// `done` of `total` `steps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Progress {
    pub steps: Steps,
    pub done: u64,
    pub total: u64,
}

impl Progress {
    pub fn layer(at: u64, of: u64) -> Progress {
        Progress {
            steps: Steps::Layers,
            done: at,
            total: of,
        }
    }

    pub fn bytes(done: u64, total: u64) -> Progress {
        Progress {
            steps: Steps::Bytes,
            done,
            total,
        }
    }

    /// From 0 to 1 (a layer being labelled counts half).
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let done = match self.steps {
            Steps::Layers => self.done as f64 - 0.5,
            Steps::Bytes => self.done as f64,
        };
        (done / self.total as f64).clamp(0.0, 1.0)
    }
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.steps {
            Steps::Layers => write!(f, "layer {}/{}", self.done, self.total),
            Steps::Bytes => write!(
                f,
                "{} of {}",
                crate::human_bytes(self.done),
                crate::human_bytes(self.total)
            ),
        }
    }
}

/// SDR layers of a sector size (rust-fil-proofs' `LAYERS`: 2 below 32GiB, 11 from it).
pub fn sdr_layers(size: crate::SectorSize) -> u64 {
    if size.bytes() >= 32 << 30 {
        11
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_as_operators_read_it() {
        assert_eq!(Progress::layer(3, 11).to_string(), "layer 3/11");
        assert_eq!(
            Progress::bytes(512 << 20, 1 << 30).to_string(),
            "512 MiB of 1 GiB"
        );
        assert_eq!(Progress::layer(1, 2).fraction(), 0.25);
        assert_eq!(sdr_layers(crate::SectorSize::S32GiB), 11);
        assert_eq!(sdr_layers(crate::SectorSize::S2KiB), 2);
    }
}
