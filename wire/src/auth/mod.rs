//! Authentication exchanges as sans-IO state machines: given the server's message, produce
//! the next client message. The connection driver only moves bytes.

pub mod end_point;
pub mod md5;
pub mod policy;
pub mod scram;

pub use policy::{AuthMethod, ChannelBindingMode, RequireAuth};
pub use scram::{ScramError, ScramSha256};
