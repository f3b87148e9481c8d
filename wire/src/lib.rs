//! `hyperion-wire`: one PostgreSQL connection, written from the protocol up.
//!
//! The crate has two halves:
//!
//! * a sans-IO message layer ([`frontend`], [`backend`], [`auth`], [`plan`]): plain
//!   functions over byte buffers that encode what we send and frame/decode what the server
//!   sends. No runtime, no socket, so every byte can be tested and fuzzed in isolation; it
//!   builds without tokio (`--no-default-features`);
//! * a connection driver on top (the default `driver` feature): [`Client`] handles feed one
//!   protocol loop per socket that reads and writes in the same poll, pipelines many
//!   requests on the socket, keeps the server's parameter statuses and an explicit read-only
//!   state, and caches prepared statements. Its parts: `client` (the request API), `connect` (the socket, TLS, and where
//!   the loop runs),
//!   `startup` (startup and authentication), `driver` (the loop), `response` (one
//!   request's bookkeeping), `state`, `cancel`; [`connection`] re-exports them under one
//!   path.
//!
//! Nothing here knows about JavaScript, pools or value codecs: `Bind` takes parameters through
//! the [`Params`] trait, so encoding lives with the caller.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod auth;
pub mod backend;
pub mod config;
pub mod error;
pub mod frontend;
pub mod plan;
pub mod protocol_error;
pub mod result;
pub mod sql_text;
pub mod sqlstate;
pub mod ssl;
pub mod statement_cache;
pub mod word_hash;

#[cfg(feature = "driver")]
mod cancel;
#[cfg(feature = "driver")]
mod client;
#[cfg(feature = "driver")]
mod connect;
#[cfg(feature = "driver")]
pub mod connection;
#[cfg(feature = "driver")]
mod copy;
#[cfg(feature = "driver")]
mod driver;
#[cfg(feature = "driver")]
mod notification;
#[cfg(feature = "driver")]
mod prepare;
#[cfg(feature = "driver")]
mod queue;
#[cfg(feature = "driver")]
mod response;
#[cfg(feature = "driver")]
pub mod runner;
#[cfg(feature = "driver")]
pub mod socket;
// Lets `test_support` name this crate as its users do, so the same file also serves as the
// integration tests' `support` module.
#[cfg(feature = "test-support")]
extern crate self as hyperion_wire;
#[cfg(feature = "driver")]
mod startup;
#[cfg(feature = "driver")]
mod state;
#[cfg(feature = "test-support")]
pub mod test_support;
#[cfg(feature = "driver")]
mod tls;

pub use auth::policy::{AuthMethod, ChannelBindingMode, RequireAuth};
pub use config::{Config, Host, Keepalive, ProtocolVersion};
#[cfg(feature = "driver")]
pub use connection::{connect, CancelToken, Client, ConnectionState, CopyIn, Flow, RowStream};
pub use error::{DbError, Error, ErrorKind};
#[cfg(feature = "driver")]
pub use notification::{Notification, NotificationSink};
pub use result::{Described, Format, IsNull, Params, QueryResult, Statement, TransactionStatus};
pub use ssl::{SslConfig, SslMode, SslNegotiation};
#[cfg(feature = "driver")]
pub use tls::check as check_tls;
