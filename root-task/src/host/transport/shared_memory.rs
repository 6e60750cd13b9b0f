//! Memory shared between components: a sealed `memfd` that the composer creates and passes
//! on, mapped by each holder.
//!
//! The other holders are other processes, buggy or malicious, that may write any byte at any
//! time: a layout shared this way is made of atomics only ([`AtomicLayout`]), so no plain Rust
//! reference to its bytes exists, and everything read from it is checked before use.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

/// A `#[repr(C)]` layout of atomics only (arrays and structs of atomics included).
///
/// # Safety
/// Every bit pattern must be a value of the type (a zeroed file is the initial state, and a
/// peer may store anything), and it must allow shared access from many threads (`Sync`).
pub unsafe trait AtomicLayout: Sync {}

/// A mapping of a shared `T`.
#[derive(Debug)]
pub struct Mapping<T: AtomicLayout> {
    shared: NonNull<T>,
}

// SAFETY: the mapping is plain shared memory, valid until `drop`, and `T` is atomics only
// (`AtomicLayout`): any thread may use it, and many at once.
unsafe impl<T: AtomicLayout> Send for Mapping<T> {}
// SAFETY: as for `Send`: `&Mapping` gives access to atomics only.
unsafe impl<T: AtomicLayout> Sync for Mapping<T> {}

impl<T: AtomicLayout> Mapping<T> {
    /// Bytes the region needs.
    pub const SIZE: usize = size_of::<T>();

    /// Creates a zeroed region named `name` (a `memfd`, close-on-exec) sealed at its size, so
    /// that no holder can shrink it under another's mapping (which would fault the other's
    /// next access).
    ///
    /// # Errors
    /// The kernel refused the `memfd`.
    pub fn create(name: &CStr) -> io::Result<OwnedFd> {
        let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
        let file = File::from(fd);
        file.set_len(Self::SIZE as u64)?;
        fcntl(
            file.as_fd(),
            FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL),
        )?;
        Ok(file.into())
    }

    /// Maps a region made by [`Mapping::create`] (e.g. inherited from the composer).
    ///
    /// # Errors
    /// The descriptor is no such region: too small, or not sealed against shrinking.
    pub fn map(fd: BorrowedFd<'_>) -> io::Result<Self> {
        let seals = SealFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GET_SEALS)?);
        if !seals.contains(SealFlag::F_SEAL_SHRINK) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "region not sealed"));
        }
        let size = nix::sys::stat::fstat(fd)?.st_size;
        if usize::try_from(size).map_or(true, |size| size < Self::SIZE) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "region too small"));
        }
        // SAFETY: a fresh shared mapping of `SIZE` bytes of a file at least that long that
        // nobody can shrink; it overlaps no Rust object. The kernel chooses the address.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let shared =
            NonNull::new(address.cast::<T>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { shared })
    }

    /// The shared layout.
    pub fn get(&self) -> &T {
        // SAFETY: the mapping is page-aligned (as much as any `T` here needs), `SIZE` bytes
        // long and lives as long as `self`. `T` is only atomics, for which any bit pattern is
        // a value (`AtomicLayout`), and they may change under us by design: the peer's writes
        // are atomic stores to the same memory.
        unsafe { self.shared.as_ref() }
    }
}

impl<T: AtomicLayout> Drop for Mapping<T> {
    fn drop(&mut self) {
        // SAFETY: `shared` is the start of our mapping of `SIZE` bytes, and no reference into
        // it outlives `self`.
        unsafe {
            libc::munmap(self.shared.as_ptr().cast(), Self::SIZE);
        }
    }
}
