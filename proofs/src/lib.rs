//! `proofs` owns the proof engine: one operation per sealing and proving task over
//! filecoin-proofs-api 19 (CPU by default, the `cuda` feature for GPUs), the parameters those
//! proofs need, and a mock engine for fast tests that says "mock" wherever it is active.

pub mod bytes;
pub mod crash;
pub mod mock;
pub mod params;
pub mod real;
pub mod sdr;
pub mod sealed;
pub mod types;

pub use crash::Crash;
pub use mock::{MockEngine, MOCK_PREFIX};
pub use real::RealEngine;
pub use sdr::SdrMode;
pub use types::*;
