//! The process's allocator: mimalloc. Evaluation allocates many small
//! objects, and mimalloc is markedly faster at that than the system's.
//!
//! Called here rather than through the `mimalloc` crate, which passes every
//! request to mimalloc's aligned entry points: most requests ask for no more
//! than word alignment, which every mimalloc block has, and the plain entry
//! points skip the alignment checks (about 5% of the instructions of a deep
//! recursion went to them).

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use libmimalloc_sys as mi;

pub struct Mimalloc;

/// The alignment of every block mimalloc hands out: its blocks are whole
/// machine words, laid out from aligned page starts.
const WORD: usize = core::mem::size_of::<usize>();

// SAFETY: each method forwards to the mimalloc call with the same contract
// (a block of at least `size` bytes, or null), passing the alignment
// whenever it is more than a word; `dealloc` and `realloc` receive only
// blocks that mimalloc allocated, as `GlobalAlloc` requires of callers.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            mi::mi_malloc(layout.size()).cast()
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            mi::mi_zalloc(layout.size()).cast()
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr.cast::<c_void>());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= WORD {
            mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
        } else {
            mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_alignment_asked_for() {
        for align in [1, 2, 4, 8, 16, 64, 4096] {
            for size in [0, 1, 7, 8, 24, 40, 100, 1000, 20_000, 1 << 20] {
                let layout = Layout::from_size_align(size.max(1), align).expect("a layout");
                // SAFETY: a layout of non-zero size; each block is freed once,
                // by the allocator that made it.
                unsafe {
                    let fresh = Mimalloc.alloc(layout);
                    assert_eq!(fresh as usize % align, 0, "size {size}, align {align}");
                    let grown = Mimalloc.realloc(fresh, layout, layout.size() * 3);
                    assert_eq!(grown as usize % align, 0, "size {size}, align {align}");
                    let grown_layout = Layout::from_size_align(layout.size() * 3, align);
                    Mimalloc.dealloc(grown, grown_layout.expect("a layout"));
                    let zeroed = Mimalloc.alloc_zeroed(layout);
                    assert_eq!(zeroed as usize % align, 0, "size {size}, align {align}");
                    let bytes = core::slice::from_raw_parts(zeroed, layout.size());
                    assert!(bytes.iter().all(|&b| b == 0));
                    Mimalloc.dealloc(zeroed, layout);
                }
            }
        }
    }
}
