//! A json/jsonb column of flat objects, member by member.
//!
//! While every value of a batch's json column is an object of scalars with the same keys in
//! the same order (`hyperion_codec::json::flat_object`), its members are kept like columns:
//! numbers in an `f64` column (`i32` when all are int32), booleans as 0/1, strings as a
//! table while they repeat, else joined (`strings.rs`). `rows.js` then builds each object
//! inside the row literal: kind `o`. The first value that does not fit ends it, and the
//! column is redone as JSON text (kind `j`).

use super::js::{typed, Ctx};
use super::kind::Kind;
use super::strings::Strings;
use hyperion_codec::json::{flat_object, Flat};
use napi::sys;

#[derive(Default)]
pub(super) struct Shaped {
    keys: Vec<Box<str>>,
    members: Vec<Member>,
    /// Values pushed (objects and SQL NULLs).
    rows: usize,
    /// The first object fixed the keys.
    keyed: bool,
}

#[derive(Default)]
struct Member {
    values: Values,
    /// 1 where the member is JSON null; `None` while it never was.
    nulls: Option<Vec<u8>>,
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
}

impl Values {
    /// The values for a member first seen at row `rows` (earlier rows get placeholders; their
    /// null map or the column's says what they are).
    fn first(v: Flat<'_>, rows: usize) -> Values {
        match v {
            Flat::Number(_) => Values::Number(vec![0.0; rows], true),
            Flat::Bool(_) => Values::Bool(vec![0; rows]),
            Flat::Str(_) => Values::Str(Strings::table(rows)),
            Flat::Null => Values::Unset,
        }
    }

    /// Appends `v` (`None`: a placeholder); false if it is of another kind than the member's.
    fn push(&mut self, v: Option<Flat<'_>>) -> bool {
        match (&mut *self, v) {
            (Values::Unset, _) => true,
            (Values::Number(n, _), None) => {
                n.push(0.0);
                true
            }
            (Values::Number(n, int32), Some(Flat::Number(x))) => {
                // Bit equality keeps -0 a float.
                *int32 &= (x as i32 as f64).to_bits() == x.to_bits();
                n.push(x);
                true
            }
            (Values::Bool(b), None) => {
                b.push(0);
                true
            }
            (Values::Bool(b), Some(Flat::Bool(x))) => {
                b.push(u8::from(x));
                true
            }
            (Values::Str(strings), None) => strings.push(None),
            (Values::Str(strings), Some(Flat::Str(x))) => strings.push(Some(x)),
            _ => false,
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Values::Unset => Kind::Null,
            Values::Number(_, true) => Kind::Int32,
            Values::Number(_, false) => Kind::Float64,
            Values::Bool(_) => Kind::Bool,
            Values::Str(strings) => strings.kind(),
        }
    }
}

impl Shaped {
    /// Adds one value (`None`: SQL NULL); false when the value is not a flat object with
    /// the keys and member kinds of the column so far.
    pub(super) fn push(&mut self, text: Option<&str>) -> bool {
        let row = self.rows;
        self.rows += 1;
        let Some(text) = text else {
            return self.members.iter_mut().all(|m| {
                if let Some(z) = &mut m.nulls {
                    z.push(0);
                }
                m.values.push(None)
            });
        };
        let first = !self.keyed;
        self.keyed = true;
        let n = flat_object(text, |i, key, value| {
            if first && self.keys.len() == i {
                // A repeated key (json, not jsonb) is a repeated property of the literal:
                // the last value wins, at the first one's place, as in JSON.parse.
                self.keys.push(key.into());
                self.members.push(Member::default());
            } else if self.keys.get(i).map(|k| &**k) != Some(key) {
                return false;
            }
            let m = &mut self.members[i];
            if let (Values::Unset, Flat::Number(_) | Flat::Bool(_) | Flat::Str(_)) =
                (&m.values, value)
            {
                m.values = Values::first(value, row);
            }
            let null = value == Flat::Null;
            if null {
                m.nulls.get_or_insert_with(|| vec![0; row]).push(1);
            } else if let Some(z) = &mut m.nulls {
                z.push(0);
            }
            m.values.push((!null).then_some(value))
        });
        n == Some(self.keys.len())
    }

    /// Total bytes of the members' texts (the column goes value by value past a limit).
    pub(super) fn text_len(&self) -> usize {
        self.members
            .iter()
            .map(|m| match &m.values {
                Values::Str(strings) => strings.text_len(),
                _ => 0,
            })
            .sum()
    }

    /// `{ kinds, names, cols, nulls }` for `rows.js`.
    pub(super) unsafe fn finish(self, ctx: &Ctx) -> crate::errors::JsResult<sys::napi_value> {
        let env = ctx.env;
        let kinds: String = self
            .members
            .iter()
            .map(|m| m.values.kind().letter())
            .collect();
        let names = ctx.array(self.keys.len())?;
        for (i, k) in self.keys.iter().enumerate() {
            ctx.set(names, i, ctx.string(k)?)?;
        }
        let cols = ctx.array(self.members.len())?;
        let nulls = ctx.array(self.members.len())?;
        for (i, m) in self.members.into_iter().enumerate() {
            let z = match &m.nulls {
                Some(z) => typed(env, sys::TypedarrayType::uint8_array, z, 1)?,
                None => ctx.null()?,
            };
            ctx.set(nulls, i, z)?;
            let v = match m.values {
                Values::Unset => ctx.null()?,
                Values::Number(v, true) => {
                    let v: Vec<i32> = v.iter().map(|&x| x as i32).collect();
                    typed(env, sys::TypedarrayType::int32_array, &v, 4)?
                }
                Values::Number(v, false) => typed(env, sys::TypedarrayType::float64_array, &v, 8)?,
                Values::Bool(v) => typed(env, sys::TypedarrayType::uint8_array, &v, 1)?,
                Values::Str(strings) => strings.finish(ctx)?,
            };
            ctx.set(cols, i, v)?;
        }
        let mut obj = std::ptr::null_mut();
        check!(sys::napi_create_object(env, &mut obj));
        let kinds = ctx.string(&kinds)?;
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
}
