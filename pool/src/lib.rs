//! `hyperion-pool`: one pool over the N nodes of a PostgreSQL cluster.
//!
//! The pool owns connections (`hyperion-wire`) and every policy: which host a connection
//! goes to for the pool's mode ([`route`]), how many connections there are, how a query
//! waits, when a connection is evicted, and what is retried. Queries share connections
//! through pipelining: a query goes to an idle connection when there is one, opens a new one
//! while the pool is below `poolSize`, and otherwise rides in the pipeline of the least
//! loaded connection.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod cancel;
pub mod config;
pub mod connstr;
pub mod dedicated;
mod discovery;
pub mod error;
pub mod hosts;
pub mod inbox;
mod lease;
pub mod listen;
pub mod pool;
pub mod role;
pub mod route;
pub mod settings;
pub mod slots;
mod statement_text;
pub mod transaction;
pub mod types;

pub use cancel::{Abort, Cancellation, Stop, StopState, CANCEL_GRACE};
pub use config::{retryable_in_transaction, Connector, Mode, PoolConfig, RetryPolicy};
pub use dedicated::{Cursor, Dedicated, Session};
pub use error::Error;
pub use hosts::{EventSink, HostEvent, HostInfo, HostState};
pub use inbox::Inbox;
pub use listen::{GapSink, ListenGap, Listener, NotificationCallback};
pub use pool::{ConnectionInfo, Pool, QueryOptions, RowSink, Status, Streaming, MAX_POOL_SIZE};
pub use settings::{Pem, Settings};
pub use transaction::{Isolation, Transaction};
pub use types::TypeCache;
