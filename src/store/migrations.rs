//! Migrations embedded in the binary (no `sqlx::migrate!`, which needs the
//! `macros` feature and doubles the build), run at start and by `hookd migrate`.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

/// (version, description, SQL) of each SQLite migration, in order.
pub(super) const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "management",
        include_str!("../../migrations/sqlite/0001_management.sql"),
    ),
    (
        2,
        "delivery",
        include_str!("../../migrations/sqlite/0002_delivery.sql"),
    ),
    (
        3,
        "admin",
        include_str!("../../migrations/sqlite/0003_admin.sql"),
    ),
    (
        4,
        "receiver_auth",
        include_str!("../../migrations/sqlite/0004_receiver_auth.sql"),
    ),
    (
        5,
        "portal",
        include_str!("../../migrations/sqlite/0005_portal.sql"),
    ),
    (
        6,
        "delivery_control",
        include_str!("../../migrations/sqlite/0006_delivery_control.sql"),
    ),
    (
        7,
        "parked_deliveries",
        include_str!("../../migrations/sqlite/0007_parked_deliveries.sql"),
    ),
    (
        8,
        "list_indexes",
        include_str!("../../migrations/sqlite/0008_list_indexes.sql"),
    ),
];

/// (version, description, SQL) of each PostgreSQL migration, in order.
pub(super) const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "management",
        include_str!("../../migrations/postgres/0001_management.sql"),
    ),
    (
        2,
        "delivery",
        include_str!("../../migrations/postgres/0002_delivery.sql"),
    ),
    (
        3,
        "instances",
        include_str!("../../migrations/postgres/0003_instances.sql"),
    ),
    (
        4,
        "admin",
        include_str!("../../migrations/postgres/0004_admin.sql"),
    ),
    (
        5,
        "receiver_auth",
        include_str!("../../migrations/postgres/0005_receiver_auth.sql"),
    ),
    (
        6,
        "portal",
        include_str!("../../migrations/postgres/0006_portal.sql"),
    ),
    (
        7,
        "delivery_control",
        include_str!("../../migrations/postgres/0007_delivery_control.sql"),
    ),
    (
        8,
        "parked_deliveries",
        include_str!("../../migrations/postgres/0008_parked_deliveries.sql"),
    ),
    (
        9,
        "list_indexes",
        include_str!("../../migrations/postgres/0009_list_indexes.sql"),
    ),
    (
        10,
        "audience_generation",
        include_str!("../../migrations/postgres/0010_audience_generation.sql"),
    ),
];

pub(super) fn migrator(migrations: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    Migrator {
        migrations: Cow::Owned(
            migrations
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect(),
        ),
        ..Migrator::DEFAULT
    }
}
