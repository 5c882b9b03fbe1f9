//! Placeholder: the PostgreSQL schema history arrives with the pgschema branch.

pub const MIGRATIONS: &[&str] = &[];
