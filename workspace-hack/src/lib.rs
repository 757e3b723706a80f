//! `workspace-hack` owns no code: its dependencies' features make a normal build and a test
//! build of the workspace resolve shared crates alike (see its Cargo.toml).
