//! What a result says besides its rows: the command tag (`command`, `rowCount`) and the
//! columns (`fields`), which `client.js` shows as non-enumerable properties of the rows
//! array, and the notices the server sent while running the statement.
//!
//! `fields` is the same frozen array for every result of one prepared statement: its
//! columns are one `Arc` per statement and connection, and the array made for it is cached
//! under that `Arc` (held, so its address cannot be reused while cached). Building a fresh
//! array of objects per query costs more than the rest of a point query's conversion.

use super::js::Ctx;
use crate::errors::JsResult;
use hyperion_wire::backend::{ErrorFields, Field};
use hyperion_wire::word_hash::BuildWordHash;
use hyperion_wire::QueryResult;
use napi::sys;
use napi::{Env, JsFunction};
use napi_derive::napi;
use smallvec::SmallVec;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ptr;
use std::sync::Arc;

/// A result's tag, columns and notices, taken out of it before its rows are decoded.
pub struct Meta {
    tag: Option<String>,
    columns: Option<Arc<[Field]>>,
    formats: Arc<[i16]>,
    pub(crate) notices: Vec<ErrorFields>,
    /// The caller traces the query: `rows.js` then wants the host (a small result resolves
    /// to `[rows, host]`).
    pub traced: bool,
    /// The configuration index of the host that ran it, when traced and known.
    pub host: Option<u32>,
}

impl Meta {
    pub fn take(result: &mut QueryResult) -> Meta {
        Meta {
            tag: result.command_tag.take(),
            columns: result.columns.clone(),
            formats: result.formats.clone(),
            notices: std::mem::take(&mut result.notices),
            traced: false,
            host: None,
        }
    }

    /// The command (`UPDATE`) and the row count (`UPDATE 5` -> 5; `INSERT 0 5` -> 5); the
    /// count is `None` for a tag without one (`CREATE TABLE`).
    fn command(&self) -> (Option<&str>, Option<f64>) {
        let Some(tag) = self.tag.as_deref() else {
            return (None, None);
        };
        let command = tag.split(' ').next().unwrap_or(tag);
        let count = tag
            .rsplit_once(' ')
            .and_then(|(_, n)| n.parse::<u64>().ok())
            .map(|n| n as f64);
        (Some(command), count)
    }

    /// `[command, rowCount, fields]` as JS values.
    pub(super) unsafe fn values(&self, ctx: &Ctx) -> JsResult<[sys::napi_value; 3]> {
        let (command, count) = self.tag_values(ctx)?;
        Ok([command, count, self.fields(ctx)?])
    }

    /// `command` and `rowCount` as JS values (null when the tag has none).
    unsafe fn tag_values(&self, ctx: &Ctx) -> JsResult<(sys::napi_value, sys::napi_value)> {
        let (command, count) = self.command();
        let command = match command {
            Some(c) => ctx.string(c)?,
            None => ctx.null()?,
        };
        let count = match count {
            Some(n) => {
                let mut out = ptr::null_mut();
                check!(sys::napi_create_double(ctx.env, n, &mut out));
                out
            }
            None => ctx.null()?,
        };
        Ok((command, count))
    }

    unsafe fn fields(&self, ctx: &Ctx) -> JsResult<sys::napi_value> {
        Ok(self.shape(ctx, false)?.0)
    }

    /// `fields`, and with `maker` the function that builds the row objects of a small result
    /// of these columns (see [`Meta::small_rows`]); both are cached per statement.
    unsafe fn shape(
        &self,
        ctx: &Ctx,
        maker: bool,
    ) -> JsResult<(sys::napi_value, Option<sys::napi_value>)> {
        let Some(columns) = &self.columns else {
            let maker = if maker {
                Some(no_columns_maker(ctx)?)
            } else {
                None
            };
            return Ok((ctx.array(0)?, maker));
        };
        let key = (
            ctx.env as usize,
            Arc::as_ptr(columns) as *const Field as usize,
        );
        let cached = SHAPES.with(|f| {
            f.borrow()
                .get(&key)
                .filter(|c| c.formats == self.formats)
                .map(|c| (c.fields, c.maker))
        });
        if let Some((fields, made)) = cached {
            let fields = ctx.reference_value(fields)?;
            match (maker, made) {
                (false, _) => return Ok((fields, None)),
                (true, Some(m)) => return Ok((fields, Some(ctx.reference_value(m)?))),
                (true, None) => {
                    let m = make_maker(ctx, columns)?;
                    let r = ctx.reference(m)?;
                    SHAPES.with(|f| match f.borrow_mut().get_mut(&key) {
                        Some(c) => c.maker = Some(r),
                        None => {
                            sys::napi_delete_reference(ctx.env, r);
                        }
                    });
                    return Ok((fields, Some(m)));
                }
            }
        }
        let fields = self.make_fields(ctx, columns)?;
        let made = if maker {
            Some(make_maker(ctx, columns)?)
        } else {
            None
        };
        let entry = Cached {
            _columns: columns.clone(),
            formats: self.formats.clone(),
            env: ctx.env,
            fields: ctx.reference(fields)?,
            maker: made.map(|m| ctx.reference(m)).transpose()?,
        };
        SHAPES.with(|f| {
            let mut f = f.borrow_mut();
            if f.len() >= MAX_CACHED {
                for (_, old) in f.drain() {
                    old.delete();
                }
            }
            if let Some(old) = f.insert(key, entry) {
                old.delete();
            }
        });
        Ok((fields, made))
    }

    /// A small result's rows: the cached maker called with the result's tag, `fields`, the
    /// host (when traced), the row count and every value in row order. It returns the rows
    /// array with `command`, `rowCount` and `fields` on it (with a host, `[rows, host]`).
    /// V8 builds each row from one object literal: defining the properties here
    /// (`napi_define_properties` per row, the keys made per query) was the largest single
    /// cost of a point query (about 8% of W2's client CPU).
    pub(super) unsafe fn small_rows(
        &self,
        ctx: &Ctx,
        n: usize,
        values: &[sys::napi_value],
    ) -> JsResult<sys::napi_value> {
        let (fields, maker) = self.shape(ctx, true)?;
        let maker = maker.ok_or_else(no_maker)?;
        let (command, count) = self.tag_values(ctx)?;
        let host = match (self.traced, self.host) {
            (false, _) => ctx.undefined()?,
            (true, Some(h)) => ctx.uint(h)?,
            (true, None) => ctx.null()?,
        };
        let mut args: SmallVec<[sys::napi_value; 72]> = SmallVec::new();
        args.extend([
            command,
            count,
            fields,
            host,
            ctx.uint(u32::try_from(n).unwrap_or(u32::MAX))?,
        ]);
        args.extend_from_slice(values);
        // The maker takes one of `rows.js`'s blank arrays (see [`restock`]).
        BLANKS.with(|b| b.set(b.get().saturating_sub(1)));
        ctx.call(maker, &args)
    }

    /// `[{ name, typeOid, format }]`, frozen (the array is shared by later results).
    unsafe fn make_fields(&self, ctx: &Ctx, columns: &[Field]) -> JsResult<sys::napi_value> {
        let array = ctx.array(columns.len())?;
        let (text, binary) = (ctx.string("text")?, ctx.string("binary")?);
        for (i, c) in columns.iter().enumerate() {
            let mut oid = ptr::null_mut();
            check!(sys::napi_create_uint32(ctx.env, c.type_oid, &mut oid));
            let format = if self.formats.get(i).copied().unwrap_or(0) == 1 {
                binary
            } else {
                text
            };
            let mut o = ptr::null_mut();
            check!(sys::napi_create_object(ctx.env, &mut o));
            for (name, v) in [
                (c"name", ctx.string(&c.name)?),
                (c"typeOid", oid),
                (c"format", format),
            ] {
                check!(sys::napi_set_named_property(ctx.env, o, name.as_ptr(), v));
            }
            check!(sys::napi_object_freeze(ctx.env, o));
            ctx.set(array, i, o)?;
        }
        check!(sys::napi_object_freeze(ctx.env, array));
        Ok(array)
    }
}

/// Cached statements at most; past it the cache starts over.
const MAX_CACHED: usize = 512;

struct Cached {
    /// Held so that the key's address stays this statement's.
    _columns: Arc<[Field]>,
    formats: Arc<[i16]>,
    env: sys::napi_env,
    fields: sys::napi_ref,
    /// Made on the first small result.
    maker: Option<sys::napi_ref>,
}

impl Cached {
    unsafe fn delete(self) {
        // SAFETY: JS thread; the references belong to `env` (part of the key).
        sys::napi_delete_reference(self.env, self.fields);
        if let Some(m) = self.maker {
            sys::napi_delete_reference(self.env, m);
        }
    }
}

/// What `rows.js` registers: the factory of small-result makers (and the maker for results
/// without columns, made once), and its `rowsOf`, which turns a chunk into rows.
struct Builders {
    env: sys::napi_env,
    make: sys::napi_ref,
    rows_of: sys::napi_ref,
    restock: sys::napi_ref,
    no_columns: Option<sys::napi_ref>,
}

type ByAddress<K, V> = HashMap<K, V, BuildWordHash>;

thread_local! {
    /// Per JS thread: an env and its references are only used on their own thread.
    /// Keyed by addresses, looked up once or twice per query: hashed a word at a time
    /// rather than with SipHash.
    static SHAPES: RefCell<ByAddress<(usize, usize), Cached>> = RefCell::new(ByAddress::default());
    /// By env: a thread may hold more than one (the addon loaded in several contexts).
    static BUILDERS: RefCell<ByAddress<usize, Builders>> = RefCell::new(ByAddress::default());
    /// How many blank rows arrays `rows.js` has in stock, as far as this thread knows: set
    /// by [`restock`], less one per small result. Per thread, not per env: a second env on
    /// the thread that takes blanks of its own only makes the next restock come sooner.
    static BLANKS: Cell<u32> = const { Cell::new(0) };
}

/// A restock is due when the stock is below this...
const BLANKS_LOW: u32 = 4;
/// ...and fills it to this.
const BLANKS_HIGH: u32 = 16;

/// Tops up `rows.js`'s stock of blank rows arrays (arrays with `command`, `rowCount` and
/// `fields` defined, their values undefined) when it runs low. Defining the three properties
/// costs about 0.4 µs a result (V8's generic path), a store to a defined one 7 ns: the
/// executor calls this at the end of a round of work, after the queries it started were
/// written to their sockets, so that a sequential query's blank is made while the server
/// runs it rather than between its answer and the next query's write. Nothing happens
/// while the stock lasts (one call per thirteen point queries: 16 down to 3).
///
/// # Safety
/// On the JS thread of `env`, outside any JS frame or with a handle scope of its own.
pub(crate) unsafe fn restock(env: sys::napi_env) {
    if BLANKS.with(Cell::get) >= BLANKS_LOW {
        return;
    }
    let Some(f) = BUILDERS.with(|b| b.borrow().get(&(env as usize)).map(|b| b.restock)) else {
        return;
    };
    // SAFETY: as the caller promises; the scope is closed below.
    unsafe {
        let mut hs = ptr::null_mut();
        if sys::napi_open_handle_scope(env, &mut hs) != sys::Status::napi_ok {
            return;
        }
        let (mut f_value, mut this, mut upto, mut out) = (
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        );
        let ok = sys::napi_get_reference_value(env, f, &mut f_value) == sys::Status::napi_ok
            && sys::napi_get_undefined(env, &mut this) == sys::Status::napi_ok
            && sys::napi_create_uint32(env, BLANKS_HIGH, &mut upto) == sys::Status::napi_ok
            && sys::napi_call_function(env, this, f_value, 1, &upto, &mut out)
                == sys::Status::napi_ok;
        if ok {
            BLANKS.with(|b| b.set(BLANKS_HIGH));
        } else {
            // Out of memory, or the env is going away: the makers make their blanks.
            let mut e = ptr::null_mut();
            sys::napi_get_and_clear_last_exception(env, &mut e);
        }
        sys::napi_close_handle_scope(env, hs);
    }
}

/// Sets `rows.js`'s row builders (it calls this once as it loads, in each JS thread):
/// `makerFactory(names)` compiles the maker of a small result's rows for its column names,
/// and `rowsOf(chunk)` turns a result in columns into rows (or a promise of them, for a
/// result still arriving), for queries that resolve to finished rows ([`Chunk::finish`]);
/// `restock(upTo)` fills its stock of blank rows arrays ([`restock`]).
///
/// [`Chunk::finish`]: super::Chunk::finish
#[napi]
pub fn set_row_builders(
    env: Env,
    maker_factory: JsFunction,
    rows_of: JsFunction,
    restock: JsFunction,
) -> napi::Result<()> {
    let env = env.raw();
    let keep = |f: &JsFunction| {
        let mut r = ptr::null_mut();
        // SAFETY: JS thread, live env and value.
        let status = unsafe { sys::napi_create_reference(env, napi::NapiRaw::raw(f), 1, &mut r) };
        if status == sys::Status::napi_ok {
            Ok(r)
        } else {
            Err(napi::Error::from_reason("cannot keep the row builders"))
        }
    };
    let (make, rows_of, restock) = (keep(&maker_factory)?, keep(&rows_of)?, keep(&restock)?);
    // A new `rows.js` (this env's module loaded again) starts with no stock.
    BLANKS.with(|b| b.set(0));
    let old = BUILDERS.with(|f| {
        f.borrow_mut().insert(
            env as usize,
            Builders {
                env,
                make,
                rows_of,
                restock,
                no_columns: None,
            },
        )
    });
    if let Some(old) = old {
        // SAFETY: JS thread; the references belong to `old.env`, which is this thread's.
        unsafe {
            sys::napi_delete_reference(old.env, old.make);
            sys::napi_delete_reference(old.env, old.rows_of);
            sys::napi_delete_reference(old.env, old.restock);
            if let Some(m) = old.no_columns {
                sys::napi_delete_reference(old.env, m);
            }
        }
    }
    Ok(())
}

/// `rows.js`'s `rowsOf` called on `chunk`: the rows, or a promise of them.
pub(super) unsafe fn rows_of(ctx: &Ctx, chunk: sys::napi_value) -> JsResult<sys::napi_value> {
    let rows_of = BUILDERS
        .with(|f| f.borrow().get(&(ctx.env as usize)).map(|f| f.rows_of))
        .ok_or_else(no_maker)?;
    ctx.call(ctx.reference_value(rows_of)?, &[chunk])
}

fn no_maker() -> crate::errors::Failure {
    crate::errors::Failure::client(
        "INTERNAL",
        "rows.js has not registered its row builders in this thread",
    )
}

/// The factory's maker for `columns`' names.
unsafe fn make_maker(ctx: &Ctx, columns: &[Field]) -> JsResult<sys::napi_value> {
    let factory = BUILDERS
        .with(|f| f.borrow().get(&(ctx.env as usize)).map(|f| f.make))
        .ok_or_else(no_maker)?;
    let factory = ctx.reference_value(factory)?;
    let names = ctx.array(columns.len())?;
    for (i, c) in columns.iter().enumerate() {
        ctx.set(names, i, ctx.string(&c.name)?)?;
    }
    ctx.call(factory, &[names])
}

/// The maker for results without columns (`INSERT`, `BEGIN`), made once per thread.
unsafe fn no_columns_maker(ctx: &Ctx) -> JsResult<sys::napi_value> {
    let cached = BUILDERS.with(|f| {
        f.borrow()
            .get(&(ctx.env as usize))
            .and_then(|f| f.no_columns)
    });
    if let Some(m) = cached {
        return ctx.reference_value(m);
    }
    let m = make_maker(ctx, &[])?;
    let r = ctx.reference(m)?;
    let spare = BUILDERS.with(|f| match f.borrow_mut().get_mut(&(ctx.env as usize)) {
        Some(f) if f.no_columns.is_none() => {
            f.no_columns = Some(r);
            None
        }
        _ => Some(r),
    });
    if let Some(r) = spare {
        sys::napi_delete_reference(ctx.env, r);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(tag: &str) -> Meta {
        Meta {
            tag: Some(tag.into()),
            columns: None,
            formats: Arc::from([]),
            notices: Vec::new(),
            traced: false,
            host: None,
        }
    }

    #[test]
    fn command_and_count_come_from_the_tag() {
        assert_eq!(meta("UPDATE 5").command(), (Some("UPDATE"), Some(5.0)));
        assert_eq!(meta("INSERT 0 3").command(), (Some("INSERT"), Some(3.0)));
        assert_eq!(meta("SELECT 0").command(), (Some("SELECT"), Some(0.0)));
        assert_eq!(meta("CREATE TABLE").command(), (Some("CREATE"), None));
        assert_eq!(meta("BEGIN").command(), (Some("BEGIN"), None));
    }
}
