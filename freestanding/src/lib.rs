//! What a freestanding Rust image needs from outside the language on stable Rust with only the
//! `x86_64-unknown-linux-gnu` target: the memory intrinsics the compiler calls (there is no libc
//! to provide them) and the `rust_eh_personality` symbol the precompiled `core` references.
//!
//! Linked only into freestanding images (the oracle stub, the seL4 root task and components),
//! never into host programs: its unmangled `memcpy` would replace libc's. That is why it is not
//! a member of the root workspace.
//!
//! The intrinsics are written with string instructions so that the compiler cannot turn them
//! back into calls to themselves.
#![no_std]

/// memcpy.
///
/// # Safety
/// As C's memcpy.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller passes valid, non-overlapping ranges of n bytes.
    unsafe {
        core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
            options(nostack, preserves_flags))
    }
    dest
}

/// memmove.
///
/// # Safety
/// As C's memmove.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize) <= (src as usize) || (dest as usize) >= (src as usize).wrapping_add(n) {
        // SAFETY: a forward copy is correct when dest does not start inside src.
        unsafe { memcpy(dest, src, n) }
    } else if n > 0 {
        // SAFETY: a backward copy from the last byte handles dest inside src.
        unsafe {
            core::arch::asm!("std", "rep movsb", "cld", inout("rcx") n => _,
                inout("rdi") dest.add(n - 1) => _, inout("rsi") src.add(n - 1) => _, options(nostack))
        }
        dest
    } else {
        dest
    }
}

/// memset.
///
/// # Safety
/// As C's memset.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, value: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller passes a valid range of n bytes.
    unsafe {
        core::arch::asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _, in("al") value as u8,
            options(nostack, preserves_flags))
    }
    dest
}

/// memcmp.
///
/// # Safety
/// As C's memcmp.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the caller passes valid ranges of n bytes.
        let (x, y) = unsafe {
            (
                core::ptr::read_volatile(a.add(i)),
                core::ptr::read_volatile(b.add(i)),
            )
        };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// bcmp.
///
/// # Safety
/// As memcmp.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract.
    unsafe { memcmp(a, b, n) }
}

/// Referenced by the precompiled `core`; never called (panic = "abort").
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}
