//! The binary format of arrays (`array_send`/`array_recv`).

use super::{malformed, nest_flat, MAX_DIMS};
use crate::decode::DecodeError;

/// A binary-format (`array_send`) array, validated, borrowing the input.
///
/// Layout (big-endian): `i32 ndim`, `i32 has_null` (0 or 1), `u32 element OID`, then `ndim`
/// pairs of `i32 length, i32 lower bound`, then every element in row-major order as an `i32`
/// byte length (-1 for NULL) followed by that many bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryArray<'a> {
    elem_oid: u32,
    ndim: usize,
    dims: [i32; MAX_DIMS],
    len: usize,
    has_null: bool,
    /// The element section: exactly `len` length-prefixed elements, nothing after them.
    data: &'a [u8],
}

fn read_i32(raw: &[u8]) -> Option<(i32, &[u8])> {
    let (head, rest) = raw.split_first_chunk::<4>()?;
    Some((i32::from_be_bytes(*head), rest))
}

fn read_u32(raw: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = raw.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head), rest))
}

fn truncated<T>(what: &str) -> Result<T, DecodeError> {
    malformed(format!("input ends inside the {what}"))
}

impl<'a> BinaryArray<'a> {
    /// Parses and validates the header and walks every element once (each length is -1 or
    /// in bounds, the element count is the product of the dimensions, no bytes are left
    /// over), so that iterating afterwards cannot fail.
    ///
    /// Accepted: `ndim` from 0 to [`MAX_DIMS`]; dimension lengths >= 0 (a zero length makes
    /// the whole array empty, reported with no dimensions); lower bounds whose upper bound
    /// fits an `i32`; a NULL element even when the header's `has_null` flag is 0 (PostgreSQL's
    /// own `array_recv` accepts that too; the flag only has to be 0 or 1). The element OID is
    /// reported, not checked.
    pub fn parse(raw: &'a [u8]) -> Result<Self, DecodeError> {
        let Some((ndim, rest)) = read_i32(raw) else {
            return truncated("header");
        };
        let Some((flags, rest)) = read_i32(rest) else {
            return truncated("header");
        };
        let Some((elem_oid, mut rest)) = read_u32(rest) else {
            return truncated("header");
        };
        let ndim = match usize::try_from(ndim) {
            Ok(n) if n <= MAX_DIMS => n,
            _ => {
                return malformed(format!(
                    "number of dimensions {ndim} is not between 0 and {MAX_DIMS}"
                ))
            }
        };
        if flags != 0 && flags != 1 {
            return malformed(format!("invalid array flags {flags}"));
        }

        let mut dims = [0i32; MAX_DIMS];
        for slot in dims.iter_mut().take(ndim) {
            let Some((len, r)) = read_i32(rest) else {
                return truncated("dimensions");
            };
            let Some((lower, r)) = read_i32(r) else {
                return truncated("dimensions");
            };
            rest = r;
            if len < 0 {
                return malformed(format!("negative dimension length {len}"));
            }
            if len > 0 && lower.checked_add(len - 1).is_none() {
                return malformed(format!(
                    "upper bound of a dimension with lower bound {lower} and length {len} \
                     is out of range"
                ));
            }
            *slot = len;
        }
        let dims_read = dims.get(..ndim).unwrap_or(&[]);

        // The element count, checked as it grows: every element costs at least its 4-byte
        // length word, so a count above `rest.len() / 4` cannot be satisfied by this input.
        let mut count: usize = 0;
        if !dims_read.is_empty() && !dims_read.contains(&0) {
            count = 1;
            for &len in dims_read {
                count = match usize::try_from(len).ok().and_then(|l| count.checked_mul(l)) {
                    Some(c) if c <= rest.len() / 4 => c,
                    _ => {
                        return malformed(format!(
                            "dimensions {dims_read:?} need more elements than the {} bytes \
                             of input can hold",
                            raw.len()
                        ))
                    }
                };
            }
        }

        if count == 0 {
            if !rest.is_empty() {
                return malformed(format!(
                    "{} bytes after the end of an empty array",
                    rest.len()
                ));
            }
            return Ok(BinaryArray {
                elem_oid,
                ndim: 0,
                dims: [0; MAX_DIMS],
                len: 0,
                has_null: false,
                data: rest,
            });
        }

        let data = rest;
        let mut has_null = false;
        for index in 0..count {
            let Some((len, r)) = read_i32(rest) else {
                return malformed(format!("input ends before element {index} of {count}"));
            };
            if len == -1 {
                has_null = true;
                rest = r;
                continue;
            }
            let Ok(n) = usize::try_from(len) else {
                return malformed(format!("element {index} has invalid length {len}"));
            };
            let Some(r) = r.get(n..) else {
                return malformed(format!(
                    "element {index} has length {n} but only {} bytes remain",
                    r.len()
                ));
            };
            rest = r;
        }
        if !rest.is_empty() {
            return malformed(format!(
                "{} bytes after the last of {count} elements",
                rest.len()
            ));
        }

        Ok(BinaryArray {
            elem_oid,
            ndim,
            dims,
            len: count,
            has_null,
            data,
        })
    }

    /// The element type OID from the header (not checked here: compare it with the column's
    /// element type).
    pub fn element_oid(&self) -> u32 {
        self.elem_oid
    }

    /// The length of each dimension, outermost first; `[]` for an empty array. Every length is
    /// at least 1.
    pub fn dims(&self) -> &[i32] {
        self.dims.get(..self.ndim).unwrap_or(&[])
    }

    /// The total number of elements (the product of [`dims`](Self::dims)).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether any element is NULL (what the elements say, not the header flag).
    pub fn has_null(&self) -> bool {
        self.has_null
    }

    /// The elements in row-major order, `None` for NULL, as slices of the input.
    pub fn elements(&self) -> BinaryElements<'a> {
        BinaryElements {
            data: self.data,
            remaining: self.len,
        }
    }

    /// Builds the nested structure: `leaf` maps each element (row-major), `group` turns the
    /// children of one finished sub-array (in order) into a value of its parent. Returns the
    /// outermost level's children (`dims()[0]` of them; empty for an empty array). No
    /// recursion; at most [`MAX_DIMS`] levels are open at once.
    pub fn nest<T, E>(
        &self,
        leaf: impl FnMut(Option<&'a [u8]>) -> Result<T, E>,
        group: impl FnMut(Vec<T>) -> Result<T, E>,
    ) -> Result<Vec<T>, E> {
        let mut dims = [0usize; MAX_DIMS];
        for (d, &n) in dims.iter_mut().zip(self.dims()) {
            *d = usize::try_from(n).unwrap_or(0);
        }
        nest_flat(
            dims.get(..self.ndim).unwrap_or(&[]),
            self.len,
            self.elements(),
            leaf,
            group,
        )
    }
}

/// The elements of a [`BinaryArray`], row-major; `None` is NULL.
#[derive(Debug, Clone)]
pub struct BinaryElements<'a> {
    data: &'a [u8],
    remaining: usize,
}

impl<'a> Iterator for BinaryElements<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        // `parse` has checked every length, so none of these early returns is taken.
        let (len, rest) = read_i32(self.data)?;
        self.remaining -= 1;
        match usize::try_from(len) {
            Ok(n) => {
                let element = rest.get(..n)?;
                self.data = rest.get(n..)?;
                Some(Some(element))
            }
            Err(_) => {
                self.data = rest;
                Some(None)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for BinaryElements<'_> {}

impl std::iter::FusedIterator for BinaryElements<'_> {}

/// Writes an array in the binary format: `dims` as given (lower bounds 1), the has-null flag
/// set when an element is `None`. For tests, fuzzing and benchmarks: the caller keeps
/// `elements.len()` equal to the product of `dims`, `dims.len() <= MAX_DIMS` and every
/// element shorter than 2 GiB, or the output will not parse.
pub fn encode_binary_array(
    elem_oid: u32,
    dims: &[i32],
    elements: &[Option<&[u8]>],
    out: &mut Vec<u8>,
) {
    let ndim = i32::try_from(dims.len()).unwrap_or(i32::MAX);
    let has_null = elements.iter().any(Option::is_none);
    out.extend_from_slice(&ndim.to_be_bytes());
    out.extend_from_slice(&i32::from(has_null).to_be_bytes());
    out.extend_from_slice(&elem_oid.to_be_bytes());
    for &d in dims {
        out.extend_from_slice(&d.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
    }
    for element in elements {
        match element {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(bytes) => {
                let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::strategies::array_strategy;
    use super::*;
    use proptest::prelude::*;

    fn encoded(oid: u32, dims: &[i32], elements: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_binary_array(oid, dims, elements, &mut out);
        out
    }

    fn header(ndim: i32, flags: i32, oid: u32, dims: &[(i32, i32)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&ndim.to_be_bytes());
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&oid.to_be_bytes());
        for (len, lb) in dims {
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&lb.to_be_bytes());
        }
        out
    }

    #[test]
    fn binary_empty() {
        let raw = encoded(23, &[], &[]);
        assert_eq!(raw.len(), 12);
        let a = BinaryArray::parse(&raw).unwrap();
        assert_eq!(a.element_oid(), 23);
        assert!(a.is_empty());
        assert_eq!(a.dims(), &[] as &[i32]);
        assert_eq!(a.elements().count(), 0);
        // A zero-length dimension is the empty array too.
        let raw = header(2, 0, 25, &[(3, 1), (0, 1)]);
        let a = BinaryArray::parse(&raw).unwrap();
        assert!(a.is_empty());
        assert_eq!(a.dims(), &[] as &[i32]);
        let mut trailing = raw.clone();
        trailing.push(0);
        assert!(BinaryArray::parse(&trailing).is_err());
    }

    #[test]
    fn binary_one_dim_with_null() {
        let raw = encoded(25, &[3], &[Some(b"ab"), None, Some(b"")]);
        let a = BinaryArray::parse(&raw).unwrap();
        assert_eq!(a.dims(), &[3]);
        assert_eq!(a.len(), 3);
        assert!(a.has_null());
        let got: Vec<_> = a.elements().collect();
        assert_eq!(got, [Some(&b"ab"[..]), None, Some(&b""[..])]);
        assert_eq!(a.elements().len(), 3);
    }

    #[test]
    fn binary_null_without_flag_is_accepted() {
        let mut raw = encoded(25, &[1], &[None]);
        raw[7] = 0;
        let a = BinaryArray::parse(&raw).unwrap();
        assert!(a.has_null());
        raw[7] = 2;
        assert!(BinaryArray::parse(&raw).is_err());
    }

    #[test]
    fn binary_two_by_two() {
        let one = 1i32.to_be_bytes();
        let two = 2i32.to_be_bytes();
        let raw = encoded(23, &[2, 2], &[Some(&one), Some(&two), None, Some(&one)]);
        let a = BinaryArray::parse(&raw).unwrap();
        assert_eq!(a.dims(), &[2, 2]);
        assert_eq!(a.len(), 4);
        let nested: Vec<Vec<Option<i32>>> = a
            .nest(
                |e| Ok::<_, ()>(vec![e.map(|b| i32::from_be_bytes(b.try_into().unwrap()))]),
                |children| Ok(children.concat()),
            )
            .unwrap();
        assert_eq!(nested, [vec![Some(1), Some(2)], vec![None, Some(1)]]);
    }

    #[test]
    fn binary_lower_bounds() {
        let mut raw = header(1, 0, 23, &[(2, -5)]);
        raw.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(BinaryArray::parse(&raw).unwrap().dims(), &[2]);
        let mut raw = header(1, 0, 23, &[(2, i32::MAX)]);
        raw.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(BinaryArray::parse(&raw).is_err());
    }

    #[test]
    fn binary_rejects() {
        // Lengths beyond the input.
        let mut raw = header(1, 0, 25, &[(1, 1)]);
        raw.extend_from_slice(&5i32.to_be_bytes());
        raw.extend_from_slice(b"abcd");
        assert!(BinaryArray::parse(&raw).is_err());
        // Length below -1.
        let mut raw = header(1, 0, 25, &[(1, 1)]);
        raw.extend_from_slice(&(-2i32).to_be_bytes());
        assert!(BinaryArray::parse(&raw).is_err());
        // Trailing bytes.
        let mut raw = encoded(25, &[1], &[Some(b"x")]);
        raw.push(0);
        assert!(BinaryArray::parse(&raw).is_err());
        // Too few elements for the dims.
        let raw = encoded(25, &[3], &[Some(b"x"), Some(b"y")]);
        assert!(BinaryArray::parse(&raw).is_err());
        // ndim 7, negative ndim, negative dim, truncated header.
        let raw = header(7, 0, 25, &[(1, 1); 7]);
        assert!(BinaryArray::parse(&raw).is_err());
        assert!(BinaryArray::parse(&header(-1, 0, 25, &[])).is_err());
        assert!(BinaryArray::parse(&header(1, 0, 25, &[(-1, 1)])).is_err());
        assert!(BinaryArray::parse(&[0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(BinaryArray::parse(&header(2, 0, 25, &[(1, 1)])).is_err());
    }

    #[test]
    fn binary_huge_dims_rejected_without_allocating() {
        let raw = header(2, 0, 25, &[(i32::MAX, 1), (i32::MAX, 1)]);
        assert!(BinaryArray::parse(&raw[..20]).is_err());
        let mut raw = raw;
        raw.extend_from_slice(&[0; 16]);
        let err = BinaryArray::parse(&raw).unwrap_err();
        assert!(err.message.contains("need more elements"), "{err}");
        let raw = header(6, 0, 25, &[(i32::MAX, 1); 6]);
        assert!(BinaryArray::parse(&raw).is_err());
    }

    proptest! {
        #[test]
        fn binary_round_trip(
            dims in prop::collection::vec(0i32..=3, 0..=4),
            pool in prop::collection::vec(prop::option::of(prop::collection::vec(any::<u8>(), 0..6)), 81),
            oid: u32,
        ) {
            let n = if dims.is_empty() { 0 } else { dims.iter().product::<i32>() as usize };
            let elements: Vec<Option<&[u8]>> = pool[..n].iter().map(|e| e.as_deref()).collect();
            let raw = encoded(oid, &dims, &elements);
            let a = BinaryArray::parse(&raw).unwrap();
            prop_assert_eq!(a.element_oid(), oid);
            prop_assert_eq!(a.len(), n);
            if n == 0 {
                prop_assert_eq!(a.dims(), &[] as &[i32]);
            } else {
                prop_assert_eq!(a.dims(), &dims[..]);
            }
            prop_assert_eq!(a.has_null(), elements.contains(&None));
            prop_assert_eq!(a.elements().collect::<Vec<_>>(), elements);
            let flat: Vec<Option<&[u8]>> = a
                .nest(|e| Ok::<_, ()>(vec![e]), |c| Ok(c.concat()))
                .unwrap()
                .concat();
            prop_assert_eq!(flat.len(), n);
        }

        #[test]
        fn binary_parse_never_panics(bytes: Vec<u8>) {
            if let Ok(a) = BinaryArray::parse(&bytes) {
                prop_assert_eq!(a.elements().count(), a.len());
            }
        }

        #[test]
        fn binary_mutations_never_panic(
            (dims, elements) in array_strategy(),
            at: usize,
            byte: u8,
            cut: usize,
        ) {
            let els: Vec<Option<&[u8]>> = elements.iter().map(|e| e.as_deref().map(str::as_bytes)).collect();
            let dims: Vec<i32> = dims.iter().map(|&d| d as i32).collect();
            let mut raw = encoded(25, &dims, &els);
            let i = at % raw.len();
            raw[i] = byte;
            raw.truncate(raw.len() - cut % 4);
            if let Ok(a) = BinaryArray::parse(&raw) {
                prop_assert_eq!(a.elements().count(), a.len());
            }
        }
    }
}
