//! What the server did wrong, as a value: the common cases are variants a caller can match
//! (pgx's `ExceededMaxBodyLenErr` is a type, not a message); the long tail of malformed
//! bodies carries a description.

use crate::plan::Expect;
use std::fmt;

/// A malformed or unexpected message from the server.
///
/// `.0` is the description, rendered once when the error is made (public because callers,
/// the fuzz checks among them, read it); [`ProtocolError::kind`] is what to match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String, ProtocolErrorKind);

/// The kinds of protocol error. The `Display` texts are the messages users and tests see.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolErrorKind {
    /// A frame header declares a length below the 4 length bytes themselves.
    InvalidLength { tag: u8, declared: i32 },
    /// A frame declares more bytes than the cap in force (small during startup).
    TooLong { tag: u8, len: usize, max: usize },
    /// A message body ends before its fields do.
    Truncated { message: &'static str },
    /// Any other malformed body; the description says what.
    Malformed,
    /// A message the current step of startup or authentication does not allow.
    Unexpected {
        message: &'static str,
        during: &'static str,
    },
    /// A message that does not fit the answer due to the request in flight (or arrives with
    /// none in flight): following it could hand a caller another caller's response.
    OutOfStep {
        message: &'static str,
        due: Option<Expect>,
    },
    /// More results for one Sync group than the loop keeps.
    TooManyResults { max: usize },
    /// More bytes of descriptions and tags for one request than the loop keeps.
    TooMuchRetained { max: usize },
    /// More distinct ParameterStatus names than the connection keeps.
    TooManyParameters { max: usize },
    /// ParameterStatus names and values over the byte cap.
    ParametersTooLarge { max: usize },
    /// A COPY FROM STDIN swallowed requests pipelined behind it.
    CopyInSwallowedPipeline,
}

impl ProtocolError {
    /// A protocol error of one of the named kinds.
    pub fn new(kind: ProtocolErrorKind) -> Self {
        ProtocolError(kind.to_string(), kind)
    }

    /// A malformed message, described in words.
    pub fn malformed(description: impl Into<String>) -> Self {
        ProtocolError(description.into(), ProtocolErrorKind::Malformed)
    }

    pub fn kind(&self) -> &ProtocolErrorKind {
        &self.1
    }

    /// The description, without the "protocol error: " prefix of `Display`.
    pub fn description(&self) -> &str {
        &self.0
    }
}

impl From<ProtocolErrorKind> for ProtocolError {
    fn from(kind: ProtocolErrorKind) -> Self {
        ProtocolError::new(kind)
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

impl fmt::Display for ProtocolErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProtocolErrorKind::*;
        match self {
            InvalidLength { tag, declared } => write!(
                f,
                "message {:?} declares an invalid length {declared}",
                *tag as char
            ),
            TooLong { tag, len, max } => write!(
                f,
                "message {:?} declares {len} bytes, over the {max}-byte limit",
                *tag as char
            ),
            Truncated { message } => write!(f, "{message} message is truncated"),
            Malformed => f.write_str("malformed message"),
            Unexpected { message, during } => write!(f, "unexpected {message} during {during}"),
            OutOfStep { message, due } => {
                f.write_str("the server sent ")?;
                f.write_str(message)?;
                match due {
                    Some(e) => write!(f, " where {e:?} was due")?,
                    None => f.write_str(" where nothing (no request in flight) was due")?,
                }
                f.write_str(
                    "; the connection is closed so that no response reaches the wrong caller",
                )
            }
            TooManyResults { max } => write!(
                f,
                "the server sent more than {max} results for one Sync group"
            ),
            TooMuchRetained { max } => write!(
                f,
                "the server's answer to one request holds more than {max} bytes of \
                 descriptions and tags"
            ),
            TooManyParameters { max } => {
                write!(f, "the server reported more than {max} parameters")
            }
            ParametersTooLarge { max } => {
                write!(f, "the server's parameters exceed {max} bytes")
            }
            CopyInSwallowedPipeline => f.write_str(
                "COPY FROM STDIN is not supported, and the requests pipelined behind it were \
                 consumed by the server's copy mode; the connection is closed",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts are what users (and tests matching messages) have always seen.
    #[test]
    fn texts_are_unchanged() {
        let e = ProtocolError::new(ProtocolErrorKind::TooLong {
            tag: b'D',
            len: 10,
            max: 5,
        });
        assert_eq!(
            e.to_string(),
            "protocol error: message 'D' declares 10 bytes, over the 5-byte limit"
        );
        let e = ProtocolError::new(ProtocolErrorKind::OutOfStep {
            message: "ReadyForQuery",
            due: None,
        });
        assert_eq!(
            e.0,
            "the server sent ReadyForQuery where nothing (no request in flight) was due; the \
             connection is closed so that no response reaches the wrong caller"
        );
        let e = ProtocolError::new(ProtocolErrorKind::OutOfStep {
            message: "DataRow",
            due: Some(Expect::Sync),
        });
        assert!(e
            .0
            .starts_with("the server sent DataRow where Sync was due;"));
        let e = ProtocolError::new(ProtocolErrorKind::Unexpected {
            message: "DataRow",
            during: "startup",
        });
        assert_eq!(e.0, "unexpected DataRow during startup");
        assert_eq!(
            ProtocolError::malformed("x").kind(),
            &ProtocolErrorKind::Malformed
        );
    }
}
