//! What the codec knows about a type OID: the built-in types of the type table, plus the
//! user-defined ones (enums, domains, arrays of them) learnt from `pg_type`.
//!
//! Built-in OIDs are answered from the type table ([`crate::builtin`], no lookup). Anything else must be learnt once:
//! [`Types::missing`] names the OIDs a statement uses that are not known yet, the pool runs
//! [`lookup_sql`] for them (on the same connection, before the first Bind) and
//! [`Types::learn`] adds the rows to a new snapshot. OIDs are the same on every node of a
//! streaming-replication cluster, so one snapshot serves a whole pool, and a type created
//! after the pool started is simply missing until a statement uses it.

use crate::builtin::{builtin, builtin_array};
use std::collections::HashMap;
use std::fmt::Write as _;

/// How values of one type are represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A type of the type table with its own decoder (the OID is the type itself).
    Builtin,
    /// An enum: its values are their labels, in text and in binary.
    Enum,
    /// A domain: decoded and encoded as `base`.
    Domain { base: u32 },
    /// An array of `elem`; `delim` separates elements in its text form.
    Array { elem: u32, delim: u8 },
    /// Anything else (composite, range, a base type outside the table): its text form.
    Other,
}

/// Whether `type_oid` is a scalar type of the built-in type table.
pub fn is_builtin_scalar(type_oid: u32) -> bool {
    builtin(type_oid).is_some()
}

/// The element type of a built-in array type of the type table.
pub fn builtin_array_element(type_oid: u32) -> Option<u32> {
    builtin_array(type_oid).map(|t| t.oid)
}

/// Domains can be stacked (a domain over a domain); PostgreSQL forbids cycles, a hostile
/// catalog answer could still hold one, so following them is bounded.
const MAX_DOMAIN_DEPTH: usize = 16;

/// One snapshot of what is known. Cheap to read; replaced as a whole when something is learnt.
#[derive(Debug, Clone, Default)]
pub struct Types {
    learnt: HashMap<u32, Kind>,
}

impl Types {
    pub fn new() -> Types {
        Types::default()
    }

    /// Whether `type_oid` is a built-in type or an array of one: known to every snapshot,
    /// the empty one included (a caller can skip loading the pool's).
    pub fn is_builtin(type_oid: u32) -> bool {
        is_builtin_scalar(type_oid) || builtin_array_element(type_oid).is_some()
    }

    /// What `type_oid` is, if known.
    pub fn kind(&self, type_oid: u32) -> Option<Kind> {
        if is_builtin_scalar(type_oid) {
            return Some(Kind::Builtin);
        }
        if let Some(elem) = builtin_array_element(type_oid) {
            return Some(Kind::Array { elem, delim: b',' });
        }
        self.learnt.get(&type_oid).copied()
    }

    /// Follows domains down to the type whose representation is used (itself when it is not
    /// a domain). Unknown or too deep: the OID reached so far, which then decodes as text.
    pub fn base(&self, mut type_oid: u32) -> u32 {
        for _ in 0..MAX_DOMAIN_DEPTH {
            match self.kind(type_oid) {
                Some(Kind::Domain { base }) => type_oid = base,
                _ => return type_oid,
            }
        }
        type_oid
    }

    /// The element type when `type_oid` (after domains) is an array.
    pub fn array_element(&self, type_oid: u32) -> Option<(u32, u8)> {
        match self.kind(self.base(type_oid)) {
            Some(Kind::Array { elem, delim }) => Some((elem, delim)),
            _ => None,
        }
    }

    /// Whether every OID in `oids` and everything they refer to is known.
    pub fn missing(&self, oids: impl IntoIterator<Item = u32>) -> Vec<u32> {
        let mut out = Vec::new();
        for o in oids {
            self.collect_missing(o, &mut out, 0);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn collect_missing(&self, o: u32, out: &mut Vec<u32>, depth: usize) {
        if o == 0 || depth > MAX_DOMAIN_DEPTH {
            return;
        }
        match self.kind(o) {
            None => out.push(o),
            Some(Kind::Domain { base }) => self.collect_missing(base, out, depth + 1),
            Some(Kind::Array { elem, .. }) => self.collect_missing(elem, out, depth + 1),
            Some(_) => {}
        }
    }

    /// A snapshot that also knows the rows of a [`lookup_sql`] answer: `(oid, typtype,
    /// typbasetype, typelem, typdelim)` as text. Rows that do not parse are skipped; OIDs that
    /// were asked for but are not in the answer (a type dropped meanwhile) are recorded as
    /// [`Kind::Other`] so they are not asked for again and decode as text.
    pub fn learn<'a, I>(&self, asked: &[u32], rows: I) -> Types
    where
        I: IntoIterator<Item = [Option<&'a str>; 5]>,
    {
        let mut next = self.clone();
        // Element delimiters are on the element's row; PostgreSQL uses ',' for every built-in
        // type but box (';'), and a user-defined base type may choose its own.
        let mut delims: HashMap<u32, u8> = HashMap::new();
        let mut arrays = Vec::new();
        for [o, typtype, base, elem, delim] in rows {
            let (Some(o), Some(typtype)) = (o.and_then(|s| s.parse::<u32>().ok()), typtype) else {
                continue;
            };
            let num = |s: Option<&str>| s.and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
            let (base, elem) = (num(base), num(elem));
            if let Some(&[d]) = delim.map(str::as_bytes) {
                delims.insert(o, d);
            }
            let kind = match typtype {
                "e" => Kind::Enum,
                "d" if base != 0 => Kind::Domain { base },
                _ if elem != 0 => {
                    arrays.push(o);
                    Kind::Array { elem, delim: b',' }
                }
                _ => Kind::Other,
            };
            next.learnt.insert(o, kind);
        }
        for o in arrays {
            if let Some(Kind::Array { elem, .. }) = next.learnt.get(&o).copied() {
                let delim = delims.get(&elem).copied().unwrap_or(b',');
                next.learnt.insert(o, Kind::Array { elem, delim });
            }
        }
        for &o in asked {
            next.learnt.entry(o).or_insert(Kind::Other);
        }
        next
    }

    /// Adds everything `other` knows.
    pub fn absorb(&mut self, other: &Types) {
        for (&o, &k) in &other.learnt {
            self.learnt.insert(o, k);
        }
    }
}

/// The catalog query for `oids` and, transitively, the types they are built on (a domain's
/// base type, an array's element type). One simple-protocol round trip; rows are
/// `oid, typtype, typbasetype, array element (0 if none), typdelim`.
pub fn lookup_sql(oids: &[u32]) -> String {
    let mut list = String::new();
    for (i, o) in oids.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        let _ = write!(list, "{o}");
    }
    // A "true" array has typlen -1 and an element type; fixed-length types such as `point`
    // also carry a typelem but are not arrays.
    format!(
        "WITH RECURSIVE t(oid) AS (\
           SELECT pg_catalog.unnest('{{{list}}}'::pg_catalog.oid[]) \
           UNION \
           SELECT x.oid FROM pg_catalog.pg_type p JOIN t ON p.oid = t.oid, \
             LATERAL (VALUES (p.typbasetype), \
               (CASE WHEN p.typlen = -1 THEN p.typelem ELSE 0 END)) AS x(oid) \
           WHERE x.oid <> 0) \
         SELECT p.oid, p.typtype, p.typbasetype, \
           CASE WHEN p.typlen = -1 THEN p.typelem ELSE 0 END, p.typdelim \
         FROM pg_catalog.pg_type p JOIN t ON p.oid = t.oid"
    )
}
