//! The addon's allocator: mimalloc (why, in `lib.rs`), through its plain entry points
//! wherever they give the alignment asked for.
//!
//! The `mimalloc` crate sends every allocation through `mi_malloc_aligned`, whose path
//! checks the alignment and the free block it found before it takes the block: counted with
//! callgrind over W2's point queries, `mi_malloc_aligned` and `mi_heap_malloc_aligned_at`
//! were 580 instructions a query of the addon's 14,300, for 16 allocations. This one calls
//! `mi_malloc` when mimalloc's size classes give the alignment by construction: when the
//! alignment is at most 16 and divides the size. A page's blocks start 16-aligned
//! (`_mi_segment_page_start_from_slice`), and a class's block size is the size rounded up to
//! whole words (pairs of words in this build), and above 64 bytes to a multiple of 16; so a
//! size the alignment divides gets a block size it divides too. std's `System` asks less of
//! `malloc` (alignment at most 16 and at most the size), which glibc meets for any size; with
//! mimalloc it holds in this build (24 bytes are served from the 32-byte class) but not with
//! word-sized classes, where a `Layout` of 24 bytes aligned to 16 would get every other
//! block 8 past a multiple of 16. So such layouts, and alignments above 16, take the aligned
//! entry point.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use libmimalloc_sys as mi;

/// The largest alignment `mi_malloc`'s size classes give by construction (`MI_MAX_ALIGN_SIZE`).
const PLAIN_ALIGN: usize = 16;

/// `mi_malloc`'s block for `size` bytes is aligned to `align` (a power of two, as `Layout`
/// guarantees: the mask is the remainder without a division).
#[inline]
fn plain(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && size & (align - 1) == 0
}

/// `layout`'s block from the plain entry point when it gives the alignment, else from the
/// aligned one (both inlined to a direct call).
#[inline(always)]
unsafe fn entry(
    layout: Layout,
    plain_entry: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned_entry: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    // SAFETY: plain C calls with a non-zero size (the callers' contract).
    unsafe {
        if plain(layout.align(), layout.size()) {
            plain_entry(layout.size()) as *mut u8
        } else {
            aligned_entry(layout.size(), layout.align()) as *mut u8
        }
    }
}

pub struct Mimalloc;

// SAFETY: every block comes from mimalloc and goes back to it (`mi_free` takes both kinds);
// a block is at least as aligned as its layout asks (above).
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `layout.size()` is not zero (GlobalAlloc's contract).
        unsafe { entry(layout, mi::mi_malloc, mi::mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { entry(layout, mi::mi_zalloc, mi::mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator.
        unsafe { mi::mi_free(ptr as *mut c_void) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator; `new_size` is not zero.
        unsafe {
            if plain(layout.align(), new_size) {
                mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
            } else {
                mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every layout gets a block of its alignment, over every small size class and into the
    /// large ones, sizes the alignment divides (`mi_malloc`) and sizes it does not (the
    /// aligned entry point), also after frees have shuffled the free lists, and through
    /// `realloc` and `alloc_zeroed`.
    #[test]
    fn blocks_have_the_alignment_of_their_layout() {
        let a = Mimalloc;
        let mut kept = Vec::new();
        for round in 0..3 {
            for size in (1..=4096).chain([8192, 65536, 1 << 20]) {
                for align in [1usize, 2, 4, 8, 16, 32, 64] {
                    let layout = Layout::from_size_align(size, align).unwrap();
                    // SAFETY: a non-zero size; every block is freed below with its layout.
                    unsafe {
                        let p = if round == 1 {
                            a.alloc_zeroed(layout)
                        } else {
                            a.alloc(layout)
                        };
                        assert!(!p.is_null());
                        assert_eq!(p as usize % align, 0, "size {size}, align {align}");
                        if round == 1 {
                            assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == 0));
                        }
                        if round == 2 && size % 7 == 0 {
                            let grown = a.realloc(p, layout, size * 3 + 8);
                            assert_eq!(grown as usize % align, 0, "realloc of {size}, {align}");
                            let layout = Layout::from_size_align(size * 3 + 8, align).unwrap();
                            kept.push((grown, layout));
                        } else if size % 3 == 0 {
                            a.dealloc(p, layout);
                        } else {
                            kept.push((p, layout));
                        }
                    }
                }
            }
        }
        // Many blocks of one size the alignment does not divide, back to back: with
        // word-sized classes (not this build's) a 24-byte class packs blocks 24 bytes apart,
        // and `mi_malloc` would give every other one at 8 past a multiple of 16.
        for (size, align) in [(24, 16), (40, 16), (56, 16), (12, 8), (20, 8)] {
            let layout = Layout::from_size_align(size, align).unwrap();
            for _ in 0..64 {
                // SAFETY: a non-zero size; freed below with its layout.
                let p = unsafe { a.alloc(layout) };
                assert_eq!(
                    p as usize % align,
                    0,
                    "size {size}, align {align}, in a row"
                );
                kept.push((p, layout));
            }
        }
        for (p, layout) in kept {
            // SAFETY: allocated above with this layout.
            unsafe { a.dealloc(p, layout) };
        }
    }
}
