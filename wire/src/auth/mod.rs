//! Authentication exchanges as sans-IO state machines: given the server's message, produce
//! the next client message. The connection driver only moves bytes.

pub mod md5;
pub mod scram;

pub use scram::{ScramError, ScramSha256};
