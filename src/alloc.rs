//! The process's allocator: small blocks from mimalloc (fast under many threads), blocks of
//! [`LARGE`] and more from the system's malloc, which with a fixed mmap threshold maps each on
//! its own and gives it back on free (cache pages come and go all the time; mimalloc keeps freed
//! large blocks committed for a while: +300 MiB of RSS during 64 1 GiB GETs).

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// Blocks of this size or more go to the system allocator.
pub const LARGE: usize = 128 << 10;

pub struct Split;

fn large(size: usize) -> bool {
    size >= LARGE
}

// SAFETY: each block is freed and resized by the allocator that made it: Rust hands back the
// layout a block was made with, so its size names the same allocator on every call.
unsafe impl GlobalAlloc for Split {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { if large(layout.size()) { System.alloc(layout) } else { MiMalloc.alloc(layout) } }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in alloc.
        unsafe { if large(layout.size()) { System.alloc_zeroed(layout) } else { MiMalloc.alloc_zeroed(layout) } }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was made with `layout`, by the allocator its size names.
        unsafe { if large(layout.size()) { System.dealloc(ptr, layout) } else { MiMalloc.dealloc(ptr, layout) } }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was made with `layout` by the allocator its size names; a block that
        // changes sides is copied (the smaller of the two sizes) and freed where it was made.
        unsafe {
            match (large(layout.size()), large(new_size)) {
                (true, true) => System.realloc(ptr, layout, new_size),
                (false, false) => MiMalloc.realloc(ptr, layout, new_size),
                _ => {
                    let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_their_bytes_across_sides() {
        let a = Split;
        let small = Layout::from_size_align(1000, 16).unwrap();
        // SAFETY: every block is freed with the layout it has at that moment.
        unsafe {
            let p = a.alloc(small);
            assert!(!p.is_null());
            for i in 0..1000 {
                *p.add(i) = (i % 251) as u8;
            }
            let big = a.realloc(p, small, LARGE * 2);
            assert!(!big.is_null());
            assert!((0..1000).all(|i| *big.add(i) == (i % 251) as u8), "small -> large keeps the bytes");
            *big.add(LARGE * 2 - 1) = 7;
            let big_layout = Layout::from_size_align(LARGE * 2, 16).unwrap();
            let back = a.realloc(big, big_layout, 500);
            assert!((0..500).all(|i| *back.add(i) == (i % 251) as u8), "large -> small keeps the prefix");
            assert_eq!(back as usize % 16, 0, "the alignment holds");
            a.dealloc(back, Layout::from_size_align(500, 16).unwrap());
            let z = a.alloc_zeroed(big_layout);
            assert!((0..LARGE * 2).all(|i| *z.add(i) == 0));
            a.dealloc(z, big_layout);
        }
    }
}
