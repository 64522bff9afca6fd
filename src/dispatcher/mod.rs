//! Delivery: claim → sign → send → record. So far, signing.

pub mod signing;
