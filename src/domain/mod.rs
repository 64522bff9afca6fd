//! Pure types and rules: validation, event-type matching, permissions,
//! durations, publish planning (`fanout`) and outcome folding (`tally`). Nothing here does I/O or reads the clock.

pub mod api_key;
pub mod control;
pub mod delivery;
pub mod duration;
pub mod event_schema;
pub mod event_type;
pub mod fanout;
pub mod filter;
pub mod operational;
pub mod receiver_auth;
pub mod retry;
pub mod tally;
pub mod tenant;
pub mod validation;
pub mod webhook;

pub use validation::{FieldError, ValidationErrors};
