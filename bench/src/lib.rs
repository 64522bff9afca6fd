//! hookd-bench's library: what the benchmark shares with hookd's tests.

pub mod history;
