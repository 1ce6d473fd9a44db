//! The kinds of failure a person or program sees, with their exit codes (docs/cli.md)
//! and HTTP statuses (docs/api.md): one table for the CLI and the API.

use spore_node::{ErrorKind, InvokeError, NodeError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Other,
    Usage,
    NotFound,
    GuestError,
    Trap,
    InvalidModule,
    Corrupt,
    Unavailable,
}

const ALL: [Kind; 8] = [
    Kind::Other,
    Kind::Usage,
    Kind::NotFound,
    Kind::GuestError,
    Kind::Trap,
    Kind::InvalidModule,
    Kind::Corrupt,
    Kind::Unavailable,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Other => "other",
            Kind::Usage => "usage",
            Kind::NotFound => "not_found",
            Kind::GuestError => "guest_error",
            Kind::Trap => "trap",
            Kind::InvalidModule => "invalid_module",
            Kind::Corrupt => "corrupt",
            Kind::Unavailable => "unavailable",
        }
    }

    pub fn from_name(name: &str) -> Kind {
        ALL.into_iter()
            .find(|kind| kind.name() == name)
            .unwrap_or(Kind::Other)
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Other => 1,
            Kind::Usage => 2,
            Kind::NotFound => 3,
            Kind::GuestError => 4,
            Kind::Trap => 5,
            Kind::InvalidModule => 6,
            Kind::Corrupt => 7,
            Kind::Unavailable => 8,
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Kind::Other => 500,
            Kind::Usage => 400,
            Kind::NotFound => 404,
            Kind::GuestError => 422,
            Kind::Trap => 422,
            Kind::InvalidModule => 422,
            Kind::Corrupt => 500,
            Kind::Unavailable => 503,
        }
    }

    pub fn of_node_error(error: &NodeError) -> Kind {
        match error.kind() {
            ErrorKind::Usage => Kind::Usage,
            ErrorKind::NotFound => Kind::NotFound,
            ErrorKind::Guest => Kind::GuestError,
            ErrorKind::Trap => Kind::Trap,
            ErrorKind::InvalidModule => Kind::InvalidModule,
            ErrorKind::Corrupt => Kind::Corrupt,
            ErrorKind::Unavailable => Kind::Unavailable,
            _ => Kind::Other,
        }
    }
}

/// The error value a function returned, when `error` is a guest error.
pub fn guest_value(error: &NodeError) -> Option<serde_json::Value> {
    match error {
        NodeError::Invoke(InvokeError::Guest { error, .. }) => {
            Some(spore_core::value::to_json(error))
        }
        _ => None,
    }
}
