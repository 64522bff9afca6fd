//! The other seeds' webhook APIs (SPEC §10): each document's examples sent
//! verbatim, its routes and filters, its auth and error shapes; and one
//! webhook seen, edited and delivered through every surface.

mod one_webhook;
mod seed_002;
mod seed_003;
mod seed_004;
