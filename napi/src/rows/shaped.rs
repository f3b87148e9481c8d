//! A json/jsonb column of documents of one shape, scalar by scalar.
//!
//! While every value of a batch's json column has the same shape (objects with the same
//! keys in the same order, arrays of the same length, at each place scalars of one kind,
//! any place possibly null; read with `hyperion_codec::json::Cursor`), the scalars at each
//! place are kept like columns: numbers in an `f64` column (`i32` when all are int32),
//! booleans as 0/1, strings as a table while they repeat, else joined (`strings.rs`).
//! `rows.js` then builds each document inside the row literal, nested literals and all:
//! kind `o` for an object, `a` for an array. The first value that does not fit ends it, and
//! the column is redone as JSON text (kind `j`).

use super::js::{typed, Ctx};
use super::kind::Kind;
use super::strings::Strings;
use hyperion_codec::json::Cursor;
use napi::sys;

/// Containers nested deeper than this go as JSON text (the literal is compiled once per
/// shape; a deep one is rare and costs the compiler more than it saves).
const MAX_DEPTH: usize = 16;
/// Places (members and items, at every depth) a shape may have before the column goes as
/// JSON text: a literal of thousands of properties compiles slowly and builds no faster.
const MAX_PLACES: usize = 256;

#[derive(Default)]
pub(super) struct Shaped {
    /// An object or an array once a document came; unset while every value was SQL NULL.
    root: Node,
    /// Values pushed (documents and SQL NULLs).
    rows: usize,
    /// Places defined so far, against [`MAX_PLACES`].
    places: usize,
}

/// One place in the shape: the value found there in each row.
#[derive(Default)]
struct Node {
    /// 1 where the value is JSON null; `None` while it never was.
    nulls: Option<Vec<u8>>,
    values: Values,
}

#[derive(Default)]
enum Values {
    /// No value other than null yet.
    #[default]
    Unset,
    /// Numbers, and whether all are int32 (then they go as an `Int32Array`: JS stores an
    /// integer in an object as is, where a number read from a `Float64Array` would take a
    /// heap box per value).
    Number(Vec<f64>, bool),
    Bool(Vec<u8>),
    Str(Strings),
    /// The keys, and the place of each.
    Object(Vec<Box<str>>, Vec<Node>),
    Array(Vec<Node>),
}

/// Reads the members (with `keys`) or the items of a container just opened, into `nodes`,
/// on the first value a place has: one place each is made.
fn define_places(
    nodes: &mut Vec<Node>,
    mut keys: Option<&mut Vec<Box<str>>>,
    r: &mut Read<'_, '_>,
    depth: usize,
) -> Option<()> {
    loop {
        let first = nodes.is_empty();
        let more = match keys.as_deref_mut() {
            None => r.cursor.item(first)?,
            Some(keys) => match r.cursor.key(first)? {
                None => false,
                // A repeated key (json, not jsonb) is a repeated property of the literal: the
                // last value wins, at the first one's place, as in JSON.parse.
                Some(key) => {
                    keys.push(key.into());
                    true
                }
            },
        };
        if !more {
            return Some(());
        }
        *r.places += 1;
        if *r.places > MAX_PLACES {
            return None;
        }
        nodes.push(Node::default());
        nodes.last_mut()?.read(r, depth + 1)?;
    }
}

/// Reads the members of an object just opened into its places: the same keys, in the same
/// order, each compared where it stands in the text.
fn read_members(
    keys: &[Box<str>],
    nodes: &mut [Node],
    r: &mut Read<'_, '_>,
    depth: usize,
) -> Option<()> {
    for (i, (key, node)) in keys.iter().zip(nodes.iter_mut()).enumerate() {
        r.cursor.known_key(i == 0, key)?;
        node.read(r, depth + 1)?;
    }
    // The closing brace, and no member more.
    r.cursor.key(keys.is_empty())?.is_none().then_some(())
}

/// Reads the items of an array just opened into its places: as many as there are.
fn read_items(nodes: &mut [Node], r: &mut Read<'_, '_>, depth: usize) -> Option<()> {
    for (i, node) in nodes.iter_mut().enumerate() {
        if !r.cursor.item(i == 0)? {
            return None;
        }
        node.read(r, depth + 1)?;
    }
    (!r.cursor.item(nodes.is_empty())?).then_some(())
}

/// What one document's reading needs besides the node it is at.
struct Read<'c, 'a> {
    cursor: &'c mut Cursor<'a>,
    /// The row being read: rows before it that a new place never saw get placeholders.
    row: usize,
    places: &'c mut usize,
}

impl Node {
    /// Reads the value at the cursor into this place; `None` if it does not fit. The next
    /// byte says which kind of value comes, and the place's kind which reader takes it.
    fn read(&mut self, r: &mut Read<'_, '_>, depth: usize) -> Option<()> {
        let c = r.cursor.peek()?;
        if c == b'n' {
            r.cursor.null()?;
            self.nulls.get_or_insert_with(|| vec![0; r.row]).push(1);
            self.values.placeholder();
            return Some(());
        }
        if let Some(z) = &mut self.nulls {
            z.push(0);
        }
        if matches!(self.values, Values::Unset) {
            return self.define(c, r, depth);
        }
        self.values.read(c, r, depth)
    }

    /// The first value at this place other than null, starting with byte `c`: makes the
    /// place's kind (with placeholders for the rows before) and reads the value into it.
    fn define(&mut self, c: u8, r: &mut Read<'_, '_>, depth: usize) -> Option<()> {
        self.values = match c {
            b'"' => Values::Str(Strings::table(r.row)),
            b't' | b'f' => Values::Bool(vec![0; r.row]),
            b'-' | b'0'..=b'9' => Values::Number(vec![0.0; r.row], true),
            b'{' | b'[' if depth < MAX_DEPTH => {
                r.cursor.open(c)?;
                self.values = match c {
                    b'{' => Values::Object(Vec::new(), Vec::new()),
                    _ => Values::Array(Vec::new()),
                };
                return match &mut self.values {
                    Values::Object(keys, nodes) => define_places(nodes, Some(keys), r, depth),
                    Values::Array(nodes) => define_places(nodes, None, r, depth),
                    _ => None,
                };
            }
            _ => return None,
        };
        self.values.read(c, r, depth)
    }

    /// A row where this place has no value (its container is null, or the row is SQL NULL).
    fn placeholder(&mut self) {
        if let Some(z) = &mut self.nulls {
            z.push(0);
        }
        self.values.placeholder();
    }

    /// Total bytes of the strings at this place and under it.
    fn text_len(&self) -> usize {
        match &self.values {
            Values::Str(strings) => strings.text_len(),
            Values::Object(_, nodes) | Values::Array(nodes) => {
                nodes.iter().map(Node::text_len).sum()
            }
            _ => 0,
        }
    }

    fn kind(&self) -> Kind {
        match &self.values {
            Values::Unset => Kind::Null,
            Values::Number(_, true) => Kind::Int32,
            Values::Number(_, false) => Kind::Float64,
            Values::Bool(_) => Kind::Bool,
            Values::Str(strings) => strings.kind(),
            Values::Object(..) => Kind::Shaped,
            Values::Array(_) => Kind::Array,
        }
    }

    /// The place's values for `rows.js`: a typed array, strings, or for a container
    /// `{ kinds, names, cols, nulls }` (`names` only for an object).
    unsafe fn finish(self, ctx: &Ctx) -> crate::errors::JsResult<sys::napi_value> {
        let env = ctx.env;
        let nodes: Vec<Node> = match self.values {
            Values::Unset => return ctx.null(),
            Values::Number(v, true) => {
                let v: Vec<i32> = v.iter().map(|&x| x as i32).collect();
                return typed(env, sys::TypedarrayType::int32_array, &v, 4);
            }
            Values::Number(v, false) => {
                return typed(env, sys::TypedarrayType::float64_array, &v, 8)
            }
            Values::Bool(v) => return typed(env, sys::TypedarrayType::uint8_array, &v, 1),
            Values::Str(strings) => return strings.finish(ctx),
            Values::Array(items) => items,
            Values::Object(keys, nodes) => {
                let names = ctx.array(keys.len())?;
                for (i, k) in keys.iter().enumerate() {
                    ctx.set(names, i, ctx.string(k)?)?;
                }
                return container(ctx, nodes, Some(names));
            }
        };
        container(ctx, nodes, None)
    }
}

/// `{ kinds, names, cols, nulls }` for the places of one container.
unsafe fn container(
    ctx: &Ctx,
    nodes: Vec<Node>,
    names: Option<sys::napi_value>,
) -> crate::errors::JsResult<sys::napi_value> {
    let env = ctx.env;
    let kinds: String = nodes.iter().map(|m| m.kind().letter()).collect();
    let cols = ctx.array(nodes.len())?;
    let nulls = ctx.array(nodes.len())?;
    for (i, m) in nodes.into_iter().enumerate() {
        let z = match &m.nulls {
            Some(z) => typed(env, sys::TypedarrayType::uint8_array, z, 1)?,
            None => ctx.null()?,
        };
        ctx.set(nulls, i, z)?;
        ctx.set(cols, i, m.finish(ctx)?)?;
    }
    let mut obj = std::ptr::null_mut();
    check!(sys::napi_create_object(env, &mut obj));
    let kinds = ctx.string(&kinds)?;
    let names = match names {
        Some(names) => names,
        None => ctx.null()?,
    };
    for (name, v) in [
        (c"kinds", kinds),
        (c"names", names),
        (c"cols", cols),
        (c"nulls", nulls),
    ] {
        check!(sys::napi_set_named_property(env, obj, name.as_ptr(), v));
    }
    Ok(obj)
}

impl Values {
    /// Reads the value at the cursor, starting with byte `c`, into a place of its kind;
    /// `None` for any other kind.
    fn read(&mut self, c: u8, r: &mut Read<'_, '_>, depth: usize) -> Option<()> {
        match (self, c) {
            (Values::Number(n, int32), b'-' | b'0'..=b'9') => {
                let x = r.cursor.number()?;
                // Bit equality keeps -0 a float.
                *int32 &= (x as i32 as f64).to_bits() == x.to_bits();
                n.push(x);
            }
            (Values::Bool(b), b't' | b'f') => b.push(u8::from(r.cursor.boolean()?)),
            (Values::Str(strings), b'"') => {
                return strings.push(Some(r.cursor.string()?)).then_some(())
            }
            (Values::Object(keys, nodes), b'{') => {
                r.cursor.open(b'{')?;
                return read_members(keys, nodes, r, depth);
            }
            (Values::Array(nodes), b'[') => {
                r.cursor.open(b'[')?;
                return read_items(nodes, r, depth);
            }
            _ => return None,
        }
        Some(())
    }

    fn placeholder(&mut self) {
        match self {
            Values::Unset => {}
            Values::Number(n, _) => n.push(0.0),
            Values::Bool(b) => b.push(0),
            Values::Str(strings) => {
                // A placeholder adds no text: it cannot make the table too large.
                strings.push(None);
            }
            Values::Object(_, nodes) | Values::Array(nodes) => {
                nodes.iter_mut().for_each(Node::placeholder)
            }
        }
    }
}

impl Shaped {
    /// Adds one value (`None`: SQL NULL); false when the value is not an object or array
    /// of the column's shape so far.
    pub(super) fn push(&mut self, text: Option<&str>) -> bool {
        let row = self.rows;
        self.rows += 1;
        let Some(text) = text else {
            self.root.placeholder();
            return true;
        };
        let mut cursor = Cursor::new(text);
        let fits = match cursor.peek() {
            Some(b'{' | b'[') => {
                let mut read = Read {
                    cursor: &mut cursor,
                    row,
                    places: &mut self.places,
                };
                self.root.read(&mut read, 0).is_some()
            }
            _ => false,
        };
        fits && cursor.at_end()
    }

    /// Total bytes of the documents' strings (the column goes value by value past a limit).
    pub(super) fn text_len(&self) -> usize {
        self.root.text_len()
    }

    /// The column's kind: `o` (objects; also a column of SQL NULLs only) or `a` (arrays).
    pub(super) fn kind(&self) -> Kind {
        match self.root.values {
            Values::Array(_) => Kind::Array,
            _ => Kind::Shaped,
        }
    }

    /// `{ kinds, names, cols, nulls }` for `rows.js`.
    pub(super) unsafe fn finish(self, ctx: &Ctx) -> crate::errors::JsResult<sys::napi_value> {
        match self.root.values {
            Values::Unset => container(ctx, Vec::new(), Some(ctx.array(0)?)),
            _ => self.root.finish(ctx),
        }
    }
}
