//! What the server must answer to a request, read off the request's own bytes.
//!
//! The protocol loop matches responses to requests by order alone, so one message the
//! server sends too many (a second ReadyForQuery, a stray CommandComplete) would shift every
//! later response by one and hand a caller another caller's rows. To refuse that, each
//! request carries a plan: for every frontend message of the extended protocol, the answer
//! it must get (Parse -> ParseComplete, Bind -> BindComplete, Execute -> rows then a
//! completion, Sync -> ReadyForQuery), and for a simple Query, "some answer, then
//! ReadyForQuery". The loop walks the plan as messages arrive and fails the connection on
//! anything the plan does not allow.
//!
//! Sans-IO: a pure function over the encoded request.

use smallvec::SmallVec;

/// One answer the server owes, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Parse: `ParseComplete`.
    ParseComplete,
    /// Bind: `BindComplete`.
    BindComplete,
    /// Describe of a statement, first half: `ParameterDescription`.
    ParameterDescription,
    /// Describe (of a statement, second half, or of a portal): `RowDescription` or `NoData`.
    RowDescription,
    /// Execute: `DataRow`s (or a COPY), then `CommandComplete`, `EmptyQueryResponse` or
    /// `PortalSuspended`.
    Execute,
    /// Close: `CloseComplete`.
    CloseComplete,
    /// Sync: `ReadyForQuery` ends the group.
    Sync,
    /// A simple Query: the results of its statements (at least one answer), then
    /// `ReadyForQuery`.
    Query,
}

impl Expect {
    /// Whether `ReadyForQuery` ends the group at this step.
    pub fn ends_group(self) -> bool {
        matches!(self, Expect::Sync | Expect::Query)
    }
}

/// The answers one request is owed. Small requests (every request this crate builds) stay
/// inline.
pub type Plan = SmallVec<[Expect; 8]>;

/// Reads the plan off an encoded request holding `syncs` Sync groups (a simple Query is a
/// group of its own). Refuses a request the protocol loop could not keep in step with: a
/// count of groups other than `syncs`, bytes after the last group, a group the server
/// answers with nothing but ReadyForQuery (a bare Sync), or malformed framing.
pub fn plan(bytes: &[u8], syncs: u32) -> Result<Plan, String> {
    let mut plan = Plan::new();
    let mut rest = bytes;
    let mut groups = 0u32;
    let mut answered = false;
    while !rest.is_empty() {
        let Some(header) = rest.get(..5) else {
            return Err("a request ends inside a message header".into());
        };
        let tag = header[0];
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let Some(body) = rest.get(5..len.saturating_add(1)).filter(|_| len >= 4) else {
            return Err(format!(
                "message {:?} of a request is framed wrong",
                tag as char
            ));
        };
        rest = &rest[len + 1..];
        let step: &[Expect] = match tag {
            b'P' => &[Expect::ParseComplete],
            b'B' => &[Expect::BindComplete],
            b'D' if body.first() == Some(&b'S') => {
                &[Expect::ParameterDescription, Expect::RowDescription]
            }
            b'D' => &[Expect::RowDescription],
            b'E' => &[Expect::Execute],
            b'C' => &[Expect::CloseComplete],
            b'H' => &[], // Flush: answered by nothing of its own
            b'S' | b'Q' => {
                if tag == b'S' && !answered {
                    return Err(
                        "a Sync group holds no message the server answers (a bare Sync)".into(),
                    );
                }
                if tag == b'Q' && answered {
                    return Err("a Query inside an unfinished extended-protocol group".into());
                }
                groups += 1;
                answered = false;
                plan.push(if tag == b'S' {
                    Expect::Sync
                } else {
                    Expect::Query
                });
                continue;
            }
            other => {
                return Err(format!(
                    "a request holds message {:?}, which the connection does not send",
                    other as char
                ))
            }
        };
        answered |= !step.is_empty();
        plan.extend_from_slice(step);
    }
    if answered {
        return Err("a request ends after its last Sync".into());
    }
    if groups != syncs || groups == 0 {
        return Err(format!(
            "a request declares {syncs} Sync group(s) and holds {groups}"
        ));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::{self, Target};
    use bytes::BytesMut;
    use Expect::*;

    #[test]
    fn every_request_the_client_builds_has_a_plan() {
        let mut b = BytesMut::new();
        frontend::parse("s1", "select $1", &[], &mut b).unwrap();
        frontend::describe(Target::Statement, "s1", &mut b).unwrap();
        frontend::sync(&mut b);
        assert_eq!(
            &plan(&b, 1).unwrap()[..],
            &[ParseComplete, ParameterDescription, RowDescription, Sync]
        );

        let mut b = BytesMut::new();
        frontend::query("SHOW transaction_read_only", &mut b).unwrap();
        frontend::bind(
            "",
            "s1",
            &[],
            0,
            |_, _| Ok(frontend::IsNull::No),
            &[],
            &mut b,
        )
        .unwrap();
        frontend::execute("", 0, &mut b).unwrap();
        frontend::sync(&mut b);
        assert_eq!(
            &plan(&b, 2).unwrap()[..],
            &[Query, BindComplete, Execute, Sync]
        );
    }

    #[test]
    fn requests_the_loop_cannot_follow_are_refused() {
        let mut sync_only = BytesMut::new();
        frontend::sync(&mut sync_only);
        assert!(plan(&sync_only, 1).is_err(), "a bare Sync");

        let mut q = BytesMut::new();
        frontend::query("select 1", &mut q).unwrap();
        assert!(plan(&q, 2).is_err(), "wrong group count");
        assert!(plan(&q, 1).is_ok());
        assert!(plan(&[], 0).is_err(), "no group");
        assert!(plan(&q[..q.len() - 1], 1).is_err(), "truncated");

        let mut tail = BytesMut::new();
        frontend::query("select 1", &mut tail).unwrap();
        frontend::execute("", 0, &mut tail).unwrap();
        assert!(plan(&tail, 1).is_err(), "bytes after the last group");

        let mut term = BytesMut::new();
        frontend::terminate(&mut term);
        assert!(plan(&term, 0).is_err());
    }
}
