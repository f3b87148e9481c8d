//! The connection as one module path, kept for callers that name
//! `hyperion_wire::connection::...`: the work itself is split by job, as tokio-postgres splits
//! it: `client` (the request API and statement cache), `startup` (startup
//! and authentication), `driver` (the protocol loop), `response` (what
//! one request in flight collects), `state` (what the pool reads),
//! `cancel` and [`crate::result`] (what requests take and give back).

pub use crate::cancel::CancelToken;
pub use crate::client::Client;
pub use crate::connect::{connect, connect_stream, connect_stream_paced};
pub use crate::copy::{CopyIn, Flow};
pub use crate::response::RowStream;
pub use crate::result::{
    Described, Format, IsNull, Params, QueryResult, Statement, TransactionStatus,
};
pub use crate::startup::parse_server_version;
pub use crate::state::ConnectionState;
