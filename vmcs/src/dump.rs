//! A readable dump of every field a backend supports, grouped by category, with names.

use core::fmt;

use crate::access::{VmInstructionError, VmcsAccess, VmcsError};
use crate::catalogue::{FIELDS, FieldInfo};

/// Calls `visit` for every catalogue field in encoding order with the outcome of reading it.
/// Unsupported fields (VM-instruction error 12) are skipped; other errors are passed on.
pub fn for_each_supported<A: VmcsAccess + ?Sized>(
    vmcs: &mut A,
    mut visit: impl FnMut(&'static FieldInfo, Result<u64, VmcsError>),
) {
    for row in FIELDS {
        match vmcs.read(row.encoding.raw()) {
            Err(VmcsError::VmFailValid(VmInstructionError::UnsupportedComponent)) => {}
            outcome => visit(row, outcome),
        }
    }
}

/// Writes a dump of `vmcs` to `out`: one section per category (e.g. "32-bit guest"), one line
/// per supported field with its encoding, name and value in hex. Fields the backend refuses
/// with an error other than "unsupported" are shown with the error.
///
/// # Errors
/// Only those of `out`.
pub fn dump<A: VmcsAccess + ?Sized, W: fmt::Write + ?Sized>(vmcs: &mut A, out: &mut W) -> fmt::Result {
    let mut section = None;
    let mut result = Ok(());
    for_each_supported(vmcs, |row, value| {
        if result.is_err() {
            return;
        }
        result = (|| {
            if section != Some((row.width, row.field_type)) {
                section = Some((row.width, row.field_type));
                let width = match row.width.name() {
                    "natural" => "Natural-width",
                    bits => bits,
                };
                let suffix = if width.len() == 2 { "-bit" } else { "" };
                writeln!(out, "{width}{suffix} {} fields:", row.field_type.name())?;
            }
            match value {
                Ok(v) => writeln!(out, "  {:#06x}  {:<50} {:#018x}", row.encoding.raw(), row.name, v),
                Err(e) => writeln!(out, "  {:#06x}  {:<50} <{e}>", row.encoding.raw(), row.name),
            }
        })();
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{VmcsGuestNW, VmcsReadOnly32};
    use crate::soft::{SoftProfile, SoftVmcs};
    use std::string::String;

    #[test]
    fn dumps_every_supported_field_grouped_with_names() {
        let mut vmcs = SoftVmcs::new(SoftProfile::from_msrs(0, 0x32));
        VmcsGuestNW::Rip.write(&mut vmcs, 0x2000).unwrap();
        vmcs.set(VmcsReadOnly32::ExitReason, 30);
        let mut text = String::new();
        dump(&mut vmcs, &mut text).unwrap();
        assert!(text.contains("16-bit control fields:\n"));
        assert!(text.contains("Natural-width guest fields:\n"));
        assert!(text.contains("32-bit read-only fields:\n"));
        assert!(text.contains("  0x681e  Guest RIP"));
        assert!(text.contains("0x0000000000002000"));
        assert!(text.contains("  0x4402  Exit reason"));
        // Beyond the profile's highest index: not shown.
        assert!(!text.contains("Tertiary"));
        let lines = text.lines().filter(|l| l.starts_with("  0x")).count();
        let supported = FIELDS.iter().filter(|r| r.encoding.index() <= 0x19).count();
        assert_eq!(lines, supported);
    }

    #[test]
    fn other_errors_are_shown_not_hidden() {
        struct Refusing;
        impl VmcsAccess for Refusing {
            fn read(&mut self, _: u32) -> Result<u64, VmcsError> {
                Err(VmcsError::Kernel(3))
            }
            fn write(&mut self, _: u32, _: u64) -> Result<(), VmcsError> {
                Err(VmcsError::Kernel(3))
            }
        }
        let mut text = String::new();
        dump(&mut Refusing, &mut text).unwrap();
        assert!(text.contains("<refused by the kernel (error 3)>"));
        assert_eq!(
            text.lines().filter(|l| l.starts_with("  0x")).count(),
            FIELDS.len()
        );
    }
}
