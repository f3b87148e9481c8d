//! What requests take and give back: parameters, statements, results. Plain data, no I/O:
//! the driver fills them in, `pool` and `napi` read them.

use crate::backend::{DataRowBody, ErrorFields, Field};
use bytes::{BufMut, BytesMut};
use std::sync::Arc;

pub use crate::frontend::IsNull;

/// Wire format of a parameter or result column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text = 0,
    Binary = 1,
}

/// Parameters for `Bind`, encoded by the caller for the types the server declared.
pub trait Params {
    fn count(&self) -> usize;
    /// The format parameter `index` will be sent in, given its declared type.
    fn format(&self, index: usize, type_oid: u32) -> Format;
    /// Appends parameter `index`'s bytes; an error aborts the whole request before sending.
    fn encode(&self, index: usize, type_oid: u32, buf: &mut BytesMut) -> Result<IsNull, String>;
}

/// Text parameters, for tests and simple callers.
impl<S: AsRef<str>> Params for [Option<S>] {
    fn count(&self) -> usize {
        self.len()
    }
    fn format(&self, _: usize, _: u32) -> Format {
        Format::Text
    }
    fn encode(&self, index: usize, _: u32, buf: &mut BytesMut) -> Result<IsNull, String> {
        match self.get(index) {
            Some(Some(s)) => {
                buf.put_slice(s.as_ref().as_bytes());
                Ok(IsNull::No)
            }
            _ => Ok(IsNull::Yes),
        }
    }
}

/// A statement prepared on one connection.
#[derive(Debug)]
pub struct Statement {
    pub(crate) name: String,
    pub(crate) param_types: Vec<u32>,
    pub(crate) columns: Arc<[Field]>,
    pub(crate) result_formats: Arc<[i16]>,
    /// An unnamed statement's text: each execution parses it again, in the same write
    /// (`prepare: false`), so nothing stays prepared on the server.
    pub(crate) unnamed_sql: Option<Box<str>>,
}

impl Statement {
    /// Whether each execution parses the statement again (nothing prepared on the server).
    pub fn is_unnamed(&self) -> bool {
        self.unnamed_sql.is_some()
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn param_types(&self) -> &[u32] {
        &self.param_types
    }
    pub fn columns(&self) -> &Arc<[Field]> {
        &self.columns
    }
    /// Gives `result` the statement's columns and formats. An unnamed statement's result
    /// keeps the columns its execution described, when the server sent them, and their
    /// formats as the server stated them: the description kept for the statement may be
    /// older than a schema change (a single format in Bind applies to every column, however
    /// many there are now).
    pub fn fill(&self, result: &mut QueryResult) {
        match result
            .columns
            .as_ref()
            .filter(|_| self.unnamed_sql.is_some())
        {
            Some(sent) => result.formats = sent.iter().map(|f| f.format).collect(),
            None => {
                result.columns = Some(self.columns.clone());
                result.formats = self.result_formats.clone();
            }
        }
    }

    /// The format each result column is requested in.
    pub fn result_formats(&self) -> &[i16] {
        &self.result_formats
    }
}

/// A statement parsed and described on a connection, not yet cached.
#[derive(Debug)]
pub struct Described {
    #[cfg_attr(not(feature = "driver"), allow(dead_code))]
    pub(crate) name: String,
    pub param_types: Vec<u32>,
    pub columns: Arc<[Field]>,
}

/// The result of one statement: its columns, rows (views into received frames) and tag.
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub columns: Option<Arc<[Field]>>,
    /// Format of each column's values (from the Bind for extended queries; text for simple).
    pub formats: Arc<[i16]>,
    pub rows: Vec<DataRowBody>,
    pub command_tag: Option<String>,
    /// Warnings and notices the server sent while running it.
    pub notices: Vec<ErrorFields>,
    /// The server cancelled waiting for synchronous replication (`WARNING: canceling wait
    /// for synchronous replication`): a COMMIT that reports success may not be durable on a
    /// standby. The pool reports such a commit as in doubt.
    pub sync_replication_cancelled: bool,
    /// The portal stopped at the row limit of its Execute (PortalSuspended): more rows wait.
    pub suspended: bool,
}

impl QueryResult {
    /// Rows affected, from the command tag (`INSERT 0 5` -> 5).
    pub fn rows_affected(&self) -> Option<u64> {
        self.command_tag
            .as_deref()?
            .rsplit(' ')
            .next()?
            .parse()
            .ok()
    }
}

/// Transaction status from the last ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    Idle,
    InTransaction,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_affected_from_tag() {
        let r = QueryResult {
            command_tag: Some("INSERT 0 5".into()),
            ..Default::default()
        };
        assert_eq!(r.rows_affected(), Some(5));
    }
}
