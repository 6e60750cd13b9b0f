//! The composition layer: what a root task does, on the host and (later) on seL4.
//!
//! On a Linux host ([`host`]) the VMM server and the device model run in-process, on two
//! threads, or as two processes wired like seL4 components: each gets exactly the channels
//! (file descriptors) it needs, and a server learns a caller's badge from the channel a
//! message arrived on.

pub mod host;
