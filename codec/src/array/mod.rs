//! PostgreSQL arrays: the binary format (`array_send`/`array_recv`) and the text format
//! (`array_out`/`array_in`).
//!
//! Both parsers validate the whole value up front, in one pass, and then hand out the
//! elements flat, in row-major order, together with the dimensions. Nothing is allocated in
//! proportion to a length read from the input before that length has been checked against
//! the size of the input.
//!
//! * [`BinaryArray::parse`] borrows: its elements are slices of the input, and walking them
//!   again with [`BinaryArray::elements`] cannot fail.
//! * [`parse_text_array`] borrows whenever it can: an element without backslash escapes is a
//!   slice of the input, only an element with escapes is copied.
//!
//! Lower bounds (`[0:2]={...}` in text, the lower-bound words in binary) are validated and
//! then dropped: the caller (JavaScript) indexes every dimension from 0.
//!
//! To build nested arrays from the flat elements, use `nest` ([`BinaryArray::nest`],
//! [`TextArray::nest`]): it walks the elements once, with an explicit stack of at most
//! [`MAX_DIMS`] levels (no recursion), and calls back for every element and every finished
//! sub-array. Doing it by hand is also simple: with dims `[d0, d1, .., dn]`, the flat index
//! of `[i0][i1]..[in]` is `((i0 * d1 + i1) * d2 + ..) * dn + in`.
//!
//! An empty array has no dimensions (`dims()` is `[]`), whichever way it was written: `{}`,
//! `ndim = 0`, or a binary header with a zero-length dimension (which `array_recv` also turns
//! into the empty array).

//!
//! The binary format is in `binary.rs`, the text format in `text.rs`; what they share (the
//! dimension limit, the error, nesting) is here.

mod binary;
mod text;

pub use binary::{encode_binary_array, BinaryArray, BinaryElements};
pub use text::{parse_text_array, write_text_array, write_text_element, TextArray};

use crate::decode::{bad, DecodeError};

/// The most dimensions PostgreSQL allows in an array (`MAXDIM`).
pub const MAX_DIMS: usize = 6;

const TYPE_NAME: &str = "array";

fn malformed<T>(message: impl Into<String>) -> Result<T, DecodeError> {
    bad(TYPE_NAME, message)
}

/// `dims` (all >= 1, product `total`) describe `elements`, as they do for parsed arrays.
fn nest_flat<X, T, E>(
    dims: &[usize],
    total: usize,
    elements: impl Iterator<Item = X>,
    mut leaf: impl FnMut(X) -> Result<T, E>,
    mut group: impl FnMut(Vec<T>) -> Result<T, E>,
) -> Result<Vec<T>, E> {
    if dims.is_empty() || total == 0 {
        return Ok(Vec::new());
    }
    // levels[k] collects the children of the sub-array currently open at depth k. Each
    // dimension length is at most `total`, itself bounded by the input size.
    let mut levels: [Vec<T>; MAX_DIMS] = Default::default();
    for (level, &d) in levels.iter_mut().zip(dims) {
        level.reserve(d.min(total));
    }
    let innermost = dims.len() - 1;
    for x in elements {
        let value = leaf(x)?;
        let Some(level) = levels.get_mut(innermost) else {
            break;
        };
        level.push(value);
        // Close every sub-array that this element completed, innermost first.
        let mut k = innermost;
        while k > 0 {
            let (outer, inner) = levels.split_at_mut(k);
            let (Some(parent), Some(child), Some(&len)) =
                (outer.last_mut(), inner.first_mut(), dims.get(k))
            else {
                break;
            };
            if child.len() < len {
                break;
            }
            let full = std::mem::replace(child, Vec::with_capacity(len));
            parent.push(group(full)?);
            k -= 1;
        }
    }
    let [top, ..] = levels;
    Ok(top)
}

#[cfg(test)]
mod strategies {
    use proptest::prelude::*;

    pub(super) fn element_strategy() -> impl Strategy<Value = Option<String>> {
        prop::option::weighted(
            0.85,
            prop_oneof![
                any::<String>(),
                "[ a\"\\\\{},;NUL\t\n\x0bé€]{0,8}",
                Just("NULL".to_owned()),
                Just("null".to_owned()),
                Just(String::new()),
            ],
        )
    }

    pub(super) fn array_strategy() -> impl Strategy<Value = (Vec<usize>, Vec<Option<String>>)> {
        prop::collection::vec(1usize..=3, 1..=4).prop_flat_map(|dims| {
            let n = dims.iter().product::<usize>();
            (Just(dims), prop::collection::vec(element_strategy(), n..=n))
        })
    }
}
