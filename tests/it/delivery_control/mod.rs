//! Delivery control (SPEC §12): payload filters, fifo ordering, pause and
//! resume, operational events. Every test runs on SQLite, and again on
//! PostgreSQL with `HOOKD_TEST_BACKEND=postgres`; the two-instance
//! ordering test is PostgreSQL's alone (`#[ignore]`d otherwise).

mod backlog;
mod filters;
mod operational;
mod ordering;
mod pause;
