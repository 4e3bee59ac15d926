//! Argon2id's working memory (19 MiB a check), mapped from the system
//! apart from the allocator. A hashing slot keeps its memory between checks
//! while sign-ins keep coming (mapping and faulting 19 MiB anew each time
//! cost a fifth of the rate) and gives it back when they stop: through the
//! allocator it was never given back at all.

use argon2::Block;
use std::time::{Duration, Instant};

/// Working memory for one Argon2id computation at a time.
#[derive(Default)]
pub struct WorkingMemory {
    mapped: Option<Mapping>,
}

impl WorkingMemory {
    /// `len` blocks, kept from the last use when it had as many; `None`
    /// when the system has no memory to give.
    pub(super) fn blocks(&mut self, len: usize) -> Option<&mut [Block]> {
        if self.mapped.as_ref().is_none_or(|m| m.len != len) {
            self.mapped = None;
            self.mapped = Some(Mapping::new(len)?);
        }
        self.mapped.as_mut().map(Mapping::as_mut_slice)
    }
}

/// The working memories of idle hashing slots, with when each was put back.
#[derive(Default)]
pub struct MemoryPool {
    idle: std::sync::Mutex<Vec<(WorkingMemory, Instant)>>,
}

impl MemoryPool {
    /// A memory to compute in: an idle slot's, or a new (empty) one.
    pub fn take(&self) -> WorkingMemory {
        self.lock().pop().map(|(m, _)| m).unwrap_or_default()
    }

    pub fn put_back(&self, memory: WorkingMemory) {
        self.lock().push((memory, Instant::now()));
    }

    /// Gives back to the system what has been idle for `idle`; how many
    /// memories that was.
    pub fn trim(&self, idle: Duration) -> usize {
        let mut pool = self.lock();
        let before = pool.len();
        pool.retain(|(_, since)| since.elapsed() < idle);
        before - pool.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(WorkingMemory, Instant)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Argon2 blocks in an anonymous private mapping of their own.
struct Mapping {
    ptr: *mut Block,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> Option<Self> {
        let bytes = len.checked_mul(std::mem::size_of::<Block>())?;
        if bytes == 0 {
            return None;
        }
        // SAFETY: a fresh anonymous mapping; nothing else refers to it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        // Argon2 reads its blocks all over: huge pages spare it most TLB
        // misses (a hint; without transparent huge pages nothing changes).
        // SAFETY: advice on the mapping just made.
        unsafe {
            libc::madvise(ptr, bytes, libc::MADV_HUGEPAGE);
        }
        Some(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    fn as_mut_slice(&mut self) -> &mut [Block] {
        // SAFETY: the mapping holds `len` blocks, is page-aligned (more than
        // a block's 64-byte alignment), zero-filled or left by Argon2 (a
        // valid Block either way) and borrowed mutably through `self` alone.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, once.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len * std::mem::size_of::<Block>());
        }
    }
}

// SAFETY: the mapping is owned by one `Mapping` and moves with it.
unsafe impl Send for Mapping {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_keeps_its_memory_until_trimmed() {
        let pool = MemoryPool::default();
        let mut m = pool.take();
        let first = m.blocks(64).unwrap().as_ptr();
        pool.put_back(m);
        let mut again = pool.take();
        assert_eq!(again.blocks(64).unwrap().as_ptr(), first, "reused");
        assert_ne!(
            again.blocks(32).unwrap().len(),
            64,
            "resized for other parameters"
        );
        pool.put_back(again);
        assert_eq!(pool.trim(Duration::from_secs(60)), 0, "recently used");
        assert_eq!(pool.trim(Duration::ZERO), 1, "idle, given back");
        assert!(pool.take().mapped.is_none());
    }
}
