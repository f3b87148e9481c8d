//! The bookkeeping of one request in flight: which answer is due next (its [`Plan`]), the
//! results and notices collected so far, the caps on what a server can make us keep, and
//! the rows handed over early to a [`RowStream`].
//!
//! [`Pending::answer`] applies one message to the front request; the driver only routes
//! messages and settles finished requests. Messages that may come at any time
//! (ParameterStatus, notices, ErrorResponse) are the driver's.

use crate::backend::{DataRowBody, ErrorFields, Field, Message, ProtocolErrorKind};
use crate::copy::{CopyHook, Flow};
use crate::error::Error;
use crate::frontend;
use crate::plan::{Expect, Plan};
use crate::result::{QueryResult, Statement};
use bytes::BytesMut;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Takes a statement's rows in batches while its result is still arriving, so the caller can
/// work on the first rows while the server is still producing the rest.
///
/// The loop hands over a batch each time `batch_bytes` of row data are buffered; whatever
/// is left when the statement completes stays in the returned [`QueryResult`]. A result
/// smaller than `batch_bytes` is never batched. Only the request's last Sync group streams
/// (the statement of [`Client::execute_after`], not the probe ahead of it).
pub struct RowStream {
    sink: Box<dyn FnMut(QueryResult) + Send>,
    batch_bytes: usize,
    buffered: usize,
    columns: Option<Arc<[Field]>>,
    formats: Arc<[i16]>,
}

impl RowStream {
    /// `sink` receives each batch as a [`QueryResult`] holding the statement's columns and
    /// formats and the batch's rows (no tag: the statement is still running).
    pub fn new(batch_bytes: usize, sink: impl FnMut(QueryResult) + Send + 'static) -> RowStream {
        RowStream {
            sink: Box::new(sink),
            batch_bytes: batch_bytes.max(1),
            buffered: 0,
            columns: None,
            formats: Arc::from([]),
        }
    }

    pub(crate) fn for_statement(mut self, stmt: &Statement) -> RowStream {
        self.columns = Some(stmt.columns.clone());
        self.formats = stmt.result_formats.clone();
        self
    }

    /// The portal's own description (an unnamed statement's Describe): its columns and
    /// their formats as the server states them.
    fn described(&mut self, fields: &[Field]) {
        self.columns = Some(fields.to_vec().into());
        self.formats = fields.iter().map(|f| f.format).collect();
    }

    /// Counts a row in; hands the buffered rows over once there are enough.
    fn row_added(&mut self, bytes: usize, rows: &mut Vec<DataRowBody>) {
        self.buffered += bytes;
        if self.buffered < self.batch_bytes {
            return;
        }
        self.buffered = 0;
        let batch = std::mem::replace(rows, Vec::with_capacity(rows.len()));
        (self.sink)(QueryResult {
            columns: self.columns.clone(),
            formats: self.formats.clone(),
            rows: batch,
            ..QueryResult::default()
        });
    }
}

impl std::fmt::Debug for RowStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream")
            .field("batch_bytes", &self.batch_bytes)
            .finish_non_exhaustive()
    }
}

/// Everything the loop collected for one request.
#[derive(Debug, Default)]
pub(crate) struct Response {
    pub(crate) results: Vec<QueryResult>,
    /// One entry per Sync group, in order: where its results end in `results`, and the
    /// error that failed it. Each group succeeds or fails on its own (the server skips to
    /// the group's Sync after an error), so a batch reports them separately.
    groups: Vec<GroupEnd>,
    pub(crate) param_types: Option<Vec<u32>>,
    pub(crate) row_description: Option<Vec<Field>>,
}

#[derive(Debug)]
struct GroupEnd {
    end: usize,
    error: Option<Error>,
}

impl Response {
    /// For single-group requests: the group's error, if any, fails the request.
    pub(crate) fn ok(mut self) -> Result<Response, Error> {
        match self.groups.iter_mut().find_map(|g| g.error.take()) {
            Some(e) => {
                let notices = self
                    .results
                    .iter_mut()
                    .flat_map(|r| std::mem::take(&mut r.notices))
                    .collect();
                Err(e.with_notices(notices))
            }
            None => Ok(self),
        }
    }

    /// Splits the results by Sync group.
    pub(crate) fn into_groups(self) -> Vec<Result<Vec<QueryResult>, Error>> {
        let mut results = self.results.into_iter();
        let mut start = 0;
        let mut out = Vec::with_capacity(self.groups.len());
        for g in self.groups {
            let n = g.end.saturating_sub(start);
            start = g.end;
            let group: Vec<QueryResult> = results.by_ref().take(n).collect();
            out.push(match g.error {
                Some(e) => {
                    let notices = group.into_iter().flat_map(|r| r.notices).collect();
                    Err(e.with_notices(notices))
                }
                None => Ok(group),
            });
        }
        out
    }
}

/// One request in flight.
pub(crate) struct Pending {
    pub(crate) sink: Option<oneshot::Sender<Result<Response, Error>>>,
    /// Where the request's bytes start in the connection's output (see `Connection::written`):
    /// until `written` passes it, no byte of the request reached the socket.
    pub(crate) start: u64,
    stream: Option<RowStream>,
    syncs_left: u32,
    pub(crate) response: Response,
    pub(crate) error: Option<Error>,
    /// The answers the server owes this request, and the next one due.
    plan: Plan,
    step: usize,
    /// An ErrorResponse (or a refused COPY) ended the current group early: nothing but
    /// ReadyForQuery may follow.
    skipping: bool,
    /// The current simple Query got an answer (a ReadyForQuery before one is a protocol
    /// error: it belongs to no group we sent).
    answered: bool,
    /// Results the current group created, and bytes kept for the whole request (row
    /// descriptions, command tags, results): caps on what a server can make us hold.
    group_results: usize,
    retained: usize,
    /// A result is open (rows may still arrive for it).
    open: bool,
    /// The current statement is a refused COPY TO STDOUT: its CopyData and CopyDone are
    /// drained until CommandComplete, an error or ReadyForQuery.
    copy_out: bool,
    /// What the caller does with a COPY (none: a COPY is refused, as above).
    copy: Option<CopyHook>,
    /// The server is in copy-in mode for this request's COPY and takes the caller's data.
    copy_in: bool,
    /// The portal's Describe answered NoData: its Execute returns no rows (a DataRow for it
    /// is out of step, not a row of a result without columns).
    no_rows: bool,
    /// Notices that arrived while no result was open. They belong to the next result if one
    /// starts before ReadyForQuery, else to the last one: with the extended protocol an
    /// autocommit statement commits at Sync, so its commit's WARNING (e.g. "canceling wait
    /// for synchronous replication") comes after its CommandComplete.
    loose_notices: Vec<ErrorFields>,
    /// A loose notice (kept or dropped past the cap) said sync replication was cancelled.
    loose_sync_cancelled: bool,
    /// Notices kept for the whole request (count and bytes); past the caps they are dropped.
    notices_kept: usize,
    notice_bytes: usize,
}

impl Pending {
    pub(crate) fn new(
        sink: oneshot::Sender<Result<Response, Error>>,
        start: u64,
        stream: Option<RowStream>,
        copy: Option<CopyHook>,
        syncs: u32,
        plan: Plan,
    ) -> Pending {
        Pending {
            sink: Some(sink),
            start,
            stream,
            syncs_left: syncs,
            response: Response::default(),
            error: None,
            plan,
            step: 0,
            skipping: false,
            answered: false,
            group_results: 0,
            retained: 0,
            open: false,
            copy_out: false,
            copy,
            copy_in: false,
            no_rows: false,
            loose_notices: Vec::new(),
            loose_sync_cancelled: false,
            notices_kept: 0,
            notice_bytes: 0,
        }
    }

    fn current(&mut self) -> &mut QueryResult {
        if !self.open || self.response.results.is_empty() {
            let mut result = QueryResult {
                sync_replication_cancelled: std::mem::take(&mut self.loose_sync_cancelled),
                ..QueryResult::default()
            };
            result.notices.append(&mut self.loose_notices);
            self.response.results.push(result);
            self.group_results += 1;
            self.retained += std::mem::size_of::<QueryResult>();
            self.open = true;
        }
        let last = self.response.results.len() - 1;
        // `last` is in bounds: the vector was just made non-empty.
        &mut self.response.results[last]
    }

    pub(crate) fn notice(&mut self, fields: ErrorFields) {
        let cancelled = sync_wait_cancelled(&fields);
        let size = notice_size(&fields);
        let keep = self.notices_kept < MAX_NOTICES && self.notice_bytes + size <= MAX_NOTICE_BYTES;
        if keep {
            self.notices_kept += 1;
            self.notice_bytes += size;
        }
        if self.open {
            let r = self.current();
            r.sync_replication_cancelled |= cancelled;
            if keep {
                r.notices.push(fields);
            }
        } else {
            self.loose_sync_cancelled |= cancelled;
            if keep {
                self.loose_notices.push(fields);
            }
        }
    }

    /// At ReadyForQuery: notices still loose belong to the group's last result.
    fn settle_notices(&mut self) {
        if self.loose_notices.is_empty() && !self.loose_sync_cancelled {
            return;
        }
        if self.response.results.is_empty() {
            self.current();
            return;
        }
        let mut notices = std::mem::take(&mut self.loose_notices);
        let cancelled = std::mem::take(&mut self.loose_sync_cancelled);
        if let Some(last) = self.response.results.last_mut() {
            last.notices.append(&mut notices);
            last.sync_replication_cancelled |= cancelled;
        }
    }

    /// The plan step at which the current group ends (its Sync or Query).
    fn group_end(&self) -> usize {
        let mut i = self.step;
        while let Some(e) = self.plan.get(i) {
            if e.ends_group() {
                return i;
            }
            i += 1;
        }
        i
    }
}

/// What a notice costs to keep: every field it holds counted (a notice whose bulk sat in a
/// field left out, its table name say, once passed the byte cap 64 times at any size).
/// Whether a notice is the server's WARNING that it stopped waiting for synchronous
/// replication of a commit it had made (`SyncRepWaitForLSN`, syncrep.c). The message is
/// translated under `lc_messages` and the code is the generic 01000, so the routine's name
/// (never translated; servers built without it send none) says it first, and the English
/// text is the fallback.
fn sync_wait_cancelled(f: &ErrorFields) -> bool {
    f.routine.as_deref() == Some("SyncRepWaitForLSN")
        || f.message
            .contains("canceling wait for synchronous replication")
}

fn notice_size(f: &ErrorFields) -> usize {
    std::mem::size_of::<ErrorFields>() + f.text_len()
}

/// Notices kept per request (count and bytes); more are dropped, not an error: a loop of
/// `RAISE NOTICE` is legitimate.
const MAX_NOTICES: usize = 64;
const MAX_NOTICE_BYTES: usize = 256 * 1024;
/// Results one Sync group may create (a simple Query of many statements); a flood of
/// EmptyQueryResponse or RowDescription past it is a protocol error.
const MAX_RESULTS_PER_GROUP: usize = 4096;
/// Bytes of results, descriptions and tags one request may make us keep (rows excluded:
/// the caller asked for them).
const MAX_RETAINED_PER_REQUEST: usize = 16 << 20;

/// The error for a COPY that started where it was not asked for: `copy_in` tells which way
/// the server started it, `hook` what the caller asked for.
fn copy_misplaced(copy_in: bool, hook: Option<&CopyHook>) -> Error {
    let message = match (copy_in, hook) {
        (true, Some(CopyHook::Out { .. })) => {
            "copyTo takes a COPY ... TO STDOUT statement; this one is a COPY FROM STDIN: use copyFrom"
        }
        (false, Some(CopyHook::In(_))) => {
            "copyFrom takes a COPY ... FROM STDIN statement; this one is a COPY TO STDOUT: use copyTo"
        }
        (true, _) => "COPY ... FROM STDIN runs through copyFrom, not query()",
        (false, _) => "COPY ... TO STDOUT runs through copyTo, not query()",
    };
    Error::db(ErrorFields {
        severity: "ERROR".into(),
        severity_nonlocalized: Some("ERROR".into()),
        code: crate::sqlstate::FEATURE_NOT_SUPPORTED.into(),
        message: message.into(),
        ..Default::default()
    })
}

/// What one answered message did to its request.
pub(crate) enum Answered {
    /// The request goes on.
    More,
    /// A ReadyForQuery closed one of the request's Sync groups, with this transaction status;
    /// `done` when it was the last.
    GroupEnd { status: u8, done: bool },
}

impl Pending {
    /// An ErrorResponse for this request: it fails the current group, and the server skips
    /// to the group's Sync (or the Query's end).
    pub(crate) fn error_response(&mut self, error: Error) {
        self.copy_out = false;
        self.copy_in = false;
        if self.error.is_none() {
            self.error = Some(error);
        }
        self.skipping = true;
        self.answered = true;
        self.open = false;
    }

    /// Applies one message answering this request, at the step its plan is on. `alone`: no
    /// other request is in flight behind it; `out` is the connection's write buffer (a
    /// refused COPY FROM STDIN writes its CopyFail there).
    pub(crate) fn answer(
        &mut self,
        msg: Message,
        alone: bool,
        out: &mut BytesMut,
    ) -> Result<Answered, Error> {
        let due = if self.skipping {
            None
        } else {
            self.plan.get(self.step).copied()
        };
        let row_result_open = self.open
            && self
                .response
                .results
                .last()
                .is_some_and(|r| r.columns.is_some());
        let copy_out = self.copy_out;
        match (msg, due) {
            (Message::ReadyForQuery { status }, _)
                if self.skipping
                    || due == Some(Expect::Sync)
                    || (due == Some(Expect::Query) && self.answered) =>
            {
                return Ok(self.end_group(status));
            }
            (Message::DataRow(row), Some(Expect::Execute))
            | (Message::DataRow(row), Some(Expect::Query))
                if !copy_out
                    && ((due == Some(Expect::Execute) && !self.no_rows) || row_result_open) =>
            {
                self.data_row(row)
            }
            (Message::CommandComplete { tag }, Some(e @ (Expect::Execute | Expect::Query))) => {
                self.copy_out = false;
                self.copy_in = false;
                self.retained += tag.len();
                let r = self.current();
                // A tag is ASCII; `from_utf8` takes it in one pass, where `from_utf8_lossy`
                // walked it in chunks on every statement.
                r.command_tag = Some(match std::str::from_utf8(&tag) {
                    Ok(t) => t.to_owned(),
                    Err(_) => String::from_utf8_lossy(&tag).into_owned(),
                });
                self.completed(e);
            }
            (Message::EmptyQueryResponse, Some(e @ (Expect::Execute | Expect::Query)))
                if !copy_out =>
            {
                self.current();
                self.completed(e);
            }
            (Message::PortalSuspended, Some(Expect::Execute)) if !copy_out => {
                self.current().suspended = true;
                self.open = false;
                self.step += 1;
            }
            (Message::RowDescription(fields), Some(Expect::RowDescription)) => {
                self.retained += description_size(&fields);
                if self.describing_statement() {
                    self.response.row_description = Some(fields);
                } else {
                    // Describe of a portal: the columns of the result that follows, which
                    // its streamed rows are decoded by too (the statement's may be stale).
                    if let Some(s) = self.stream.as_mut().filter(|_| self.syncs_left == 1) {
                        s.described(&fields);
                    }
                    self.open = false;
                    self.start_result(fields);
                }
                self.step += 1;
            }
            (Message::RowDescription(fields), Some(Expect::Query)) if !copy_out => {
                self.retained += description_size(&fields);
                self.open = false;
                self.answered = true;
                self.start_result(fields);
            }
            (Message::NoData, Some(Expect::RowDescription)) => {
                self.no_rows |= !self.describing_statement();
                self.step += 1;
            }
            (Message::ParseComplete, Some(Expect::ParseComplete))
            | (Message::BindComplete, Some(Expect::BindComplete))
            | (Message::CloseComplete, Some(Expect::CloseComplete)) => self.step += 1,
            (Message::ParameterDescription(types), Some(Expect::ParameterDescription)) => {
                self.retained += types.len() * 4;
                self.response.param_types = Some(types);
                self.step += 1;
            }
            (Message::CopyInResponse, Some(e @ (Expect::Execute | Expect::Query)))
                if !copy_out && !self.copy_in =>
            {
                match self.copy.as_mut() {
                    Some(CopyHook::In(ready)) if ready.is_some() => {
                        self.answered = true;
                        let taken = ready.take().is_some_and(|r| r.send(()).is_ok());
                        if taken {
                            self.copy_in = true;
                        } else {
                            // The caller gave up before the server was ready (`copy_in`'s
                            // future dropped): no `CopyIn` exists to send the data or fail
                            // the COPY, and the server would wait in copy-in mode for ever,
                            // and the connection with it. Failed here instead.
                            self.fail_copy_in(e, crate::copy::ABANDONED, out)?;
                        }
                    }
                    _ => self.refuse_copy_in(e, alone, out)?,
                }
            }
            (Message::CopyOutResponse, Some(Expect::Execute | Expect::Query)) if !copy_out => {
                self.copy_out = true;
                self.answered = true;
                if !matches!(self.copy, Some(CopyHook::Out { .. })) {
                    let e = copy_misplaced(false, self.copy.as_ref());
                    self.error.get_or_insert(e);
                }
            }
            (Message::CopyData(data), _) if copy_out => {
                if let Some(CopyHook::Out { sink, flow }) = self.copy.as_mut() {
                    if !flow.is_closed() {
                        flow.added(data.len());
                        sink(data);
                    }
                }
            }
            (Message::CopyDone, _) if copy_out => {}
            (Message::CopyBothResponse, _) => {
                return Err(Error::unsupported(
                    "replication (CopyBoth) is not supported",
                ));
            }
            (msg, due) => {
                return Err(ProtocolErrorKind::OutOfStep {
                    message: msg.name(),
                    due,
                }
                .into())
            }
        }
        self.check_caps()?;
        Ok(Answered::More)
    }

    /// ReadyForQuery: the current Sync group is over.
    fn end_group(&mut self, status: u8) -> Answered {
        self.copy_out = false;
        self.no_rows = false;
        self.step = self.group_end() + 1;
        self.skipping = false;
        self.answered = false;
        self.group_results = 0;
        self.settle_notices();
        self.open = false;
        self.syncs_left = self.syncs_left.saturating_sub(1);
        let end = self.response.results.len();
        let error = self.error.take();
        self.response.groups.push(GroupEnd { end, error });
        Answered::GroupEnd {
            status,
            done: self.syncs_left == 0,
        }
    }

    fn data_row(&mut self, row: DataRowBody) {
        self.current();
        // Only the request's last group streams (not a probe ahead of the statement).
        let streaming = self.syncs_left == 1;
        let bytes = row.frame().len();
        if let Some(r) = self.response.results.last_mut() {
            r.rows.push(row);
            if let Some(s) = self.stream.as_mut().filter(|_| streaming) {
                s.row_added(bytes, &mut r.rows);
            }
        }
    }

    /// CommandComplete or EmptyQueryResponse: the statement's result is whole.
    fn completed(&mut self, e: Expect) {
        self.open = false;
        self.answered = true;
        self.no_rows = false;
        if e == Expect::Execute {
            self.step += 1;
        }
    }

    /// A result whose columns are `fields`, sent in text (a simple Query, or a portal's
    /// Describe whose formats the caller fills in).
    fn start_result(&mut self, fields: Vec<Field>) {
        let n = fields.len();
        let r = self.current();
        r.columns = Some(fields.into());
        r.formats = vec![0i16; n].into();
    }

    /// CopyInResponse: COPY FROM STDIN is refused with a CopyFail, when that can be done
    /// without losing step with the server.
    /// At a RowDescription step: whether it describes a statement (it follows the
    /// statement's ParameterDescription) rather than a portal.
    fn describing_statement(&self) -> bool {
        self.step > 0 && self.plan.get(self.step - 1) == Some(&Expect::ParameterDescription)
    }

    /// Ends a COPY FROM STDIN the server has just started: CopyFail with `reason`, and for
    /// an Execute the Sync its own was swallowed by (in copy mode the server discards up to
    /// the next Sync after the CopyFail: this one). The server answers an ErrorResponse, then
    /// ReadyForQuery. For a refused COPY, and for one whose caller left before it started
    /// (`copy_in`'s future dropped: no `CopyIn` exists to send data or fail it).
    fn fail_copy_in(&mut self, e: Expect, reason: &str, out: &mut BytesMut) -> Result<(), Error> {
        frontend::copy_fail(reason, out)?;
        if e == Expect::Execute {
            frontend::sync(out);
        }
        self.skipping = true;
        Ok(())
    }

    fn refuse_copy_in(&mut self, e: Expect, alone: bool, out: &mut BytesMut) -> Result<(), Error> {
        let refused = copy_misplaced(true, self.copy.as_ref());
        self.error.get_or_insert(refused);
        self.answered = true;
        // In copy-in mode the server swallows every message but CopyData, CopyDone,
        // CopyFail, Flush and Sync: whatever was pipelined behind the COPY (another group,
        // another caller's request) would be consumed, and the answers would shift. Only a
        // COPY with nothing behind it can be refused in place.
        let group_end = self.group_end();
        let nothing_behind = alone
            && group_end + 1 == self.plan.len()
            && (e == Expect::Query || group_end == self.step + 1);
        if !nothing_behind {
            return Err(ProtocolErrorKind::CopyInSwallowedPipeline.into());
        }
        self.fail_copy_in(e, "COPY FROM STDIN runs through copyFrom", out)
    }

    /// The consumer's flow control while this request's COPY TO sends data.
    pub(crate) fn flow(&self) -> Option<&Flow> {
        match &self.copy {
            Some(CopyHook::Out { flow, .. }) if self.copy_out => Some(flow),
            _ => None,
        }
    }

    /// Whether the caller's COPY data may be written now (the server is in copy-in mode
    /// for this request). `end`: the caller's last message (CopyDone or CopyFail).
    pub(crate) fn takes_copy_data(&mut self, end: bool) -> bool {
        let takes = self.copy_in;
        if end {
            self.copy_in = false;
        }
        takes
    }

    /// The caps on what one request may make us keep.
    fn check_caps(&self) -> Result<(), Error> {
        if self.group_results > MAX_RESULTS_PER_GROUP {
            return Err(ProtocolErrorKind::TooManyResults {
                max: MAX_RESULTS_PER_GROUP,
            }
            .into());
        }
        if self.retained > MAX_RETAINED_PER_REQUEST {
            return Err(ProtocolErrorKind::TooMuchRetained {
                max: MAX_RETAINED_PER_REQUEST,
            }
            .into());
        }
        Ok(())
    }
}

/// Roughly what a row description costs to keep.
fn description_size(fields: &[Field]) -> usize {
    fields.iter().map(|f| f.name.len() + 32).sum()
}
