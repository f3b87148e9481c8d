//! `hyperion-wire`: one PostgreSQL connection, written from the protocol up.
//!
//! The crate has two halves:
//!
//! * a sans-IO message layer ([`frontend`], [`backend`], [`auth`]): plain functions over byte
//!   buffers that encode what we send and frame/decode what the server sends. No runtime, no
//!   socket, so every byte can be tested and fuzzed in isolation;
//! * a connection driver ([`connection`]) on top: it owns one socket and one protocol loop that
//!   reads and writes in the same poll, pipelines many requests on the socket, keeps the
//!   server's parameter statuses and an explicit read-only state, and caches prepared
//!   statements.
//!
//! Nothing here knows about JavaScript, pools or value codecs: `Bind` takes parameters through
//! the [`connection::Params`] trait, so encoding lives with the caller.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod auth;
pub mod backend;
pub mod config;
pub mod connection;
pub mod error;
pub mod frontend;
pub mod plan;
pub mod socket;
pub mod sqlstate;

pub use config::{Config, Host, Keepalive};
pub use connection::{
    connect, CancelToken, Client, ConnectionState, Described, Format, IsNull, Params, QueryResult,
    RowStream, Statement, TransactionStatus,
};
pub use error::{DbError, Error, ErrorKind};
