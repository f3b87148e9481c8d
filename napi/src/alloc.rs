//! The addon's allocator: mimalloc (why, in `lib.rs`), through its plain entry points
//! wherever they give the alignment asked for.
//!
//! The `mimalloc` crate sends every allocation through `mi_malloc_aligned`, whose path
//! checks the alignment and the free block it found before it takes the block: counted with
//! callgrind over W2's point queries, `mi_malloc_aligned` and `mi_heap_malloc_aligned_at`
//! were 580 instructions a query of the addon's 14,300, for 16 allocations. Like std's
//! `System` allocator with `malloc`, this one calls `mi_malloc` when its guarantee covers
//! the layout: mimalloc is a `malloc` (programs load it in glibc's place), so a block of 16
//! bytes or more is aligned to 16, as `max_align_t` requires on x86-64 and aarch64, and a
//! smaller one to its size (a layout's size is a multiple of its alignment).

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use libmimalloc_sys as mi;

/// The alignment `mi_malloc` gives any block at least as large (`MI_MAX_ALIGN_SIZE`).
const PLAIN_ALIGN: usize = 16;

/// `mi_malloc`'s own alignment covers `align` for a block of `size` bytes.
#[inline]
fn plain(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

pub struct Mimalloc;

// SAFETY: every block comes from mimalloc and goes back to it (`mi_free` takes both kinds);
// a block is at least as aligned as its layout asks (above).
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain C calls; `layout.size()` is not zero (GlobalAlloc's contract).
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_malloc(layout.size()) as *mut u8
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_zalloc(layout.size()) as *mut u8
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
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

    /// Every layout this allocator sends to `mi_malloc` gets a block of its alignment, over
    /// every small size class and into the large ones, also after frees have shuffled the
    /// free lists, and through `realloc` and `alloc_zeroed`.
    #[test]
    fn plain_blocks_have_the_alignment_of_their_layout() {
        let a = Mimalloc;
        let mut kept = Vec::new();
        for round in 0..3 {
            for size in (1..=4096).chain([8192, 65536, 1 << 20]) {
                for align in [1usize, 2, 4, 8, 16, 32, 64] {
                    if size % align != 0 {
                        continue;
                    }
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
                            let grown = a.realloc(p, layout, size * 3);
                            assert_eq!(grown as usize % align, 0, "realloc of {size}, {align}");
                            let layout = Layout::from_size_align(size * 3, align).unwrap();
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
        for (p, layout) in kept {
            // SAFETY: allocated above with this layout.
            unsafe { a.dealloc(p, layout) };
        }
    }
}
