//! hookd: a self-hosted webhook service. See ARCHITECTURE.md for the map.

pub mod admin;
pub mod app;
pub mod auth;
pub mod catalogue;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod data_dir;
pub mod dialects;
pub mod dispatcher;
pub mod domain;
pub mod event_schemas;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod ops;
pub mod publish;
pub mod retention;
pub mod state;
pub mod store;
pub mod throttle;
