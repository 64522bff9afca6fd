//! hookd's integration tests: one crate (one link), a module per topic,
//! the harness once in `common`. Most tests run the real `hookd` binary;
//! the tests of time rules (`time_rules`) run it in-process with a clock
//! they move instead of sleeping (`ServerConfig::start_in_process`).
//!
//! Tests that need something outside the repository say so: the PostgreSQL
//! ones are `#[ignore]`d with the reason (plain `cargo test` lists them as
//! ignored); the browser tests and the Standard Webhooks cross-check fail,
//! naming what is missing. `scripts/test` installs what it can and runs
//! them all.

mod common;

mod admin_browser;
mod admin_browser_control;
mod admin_browser_usability;
mod admin_http;
mod api_auth;
mod api_event_schemas;
mod api_event_types;
mod api_hardening;
mod api_seed;
mod api_webhooks;
mod cli_keys;
mod cli_listen;
mod connections;
mod delivery_control;
mod delivery_crash;
mod delivery_engine;
mod delivery_outbound;
mod dialects;
mod generated_client;
mod multi_instance;
mod openapi;
mod persistence;
mod portal_browser;
mod postgres_restart;
mod query_plans;
mod receiver_auth;
mod signature_standard_webhooks;
mod store_conformance;
mod time_rules;
