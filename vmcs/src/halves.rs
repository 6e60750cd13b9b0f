//! 64-bit fields on a 32-bit processor: two accesses, FULL then HIGH.
//!
//! Outside 64-bit mode, VMREAD/VMWRITE move 32 bits; a 64-bit field is accessed through its
//! FULL encoding (low half) and its HIGH encoding (upper half) (SDM Vol. 3C, Section 25.11.2).
//! The `vmx` backend uses these on 32-bit x86; host tests check them against `soft`.

use crate::access::VmcsError;
use crate::encoding::{AccessType, FieldEncoding, FieldWidth};

/// Whether `encoding` is the FULL encoding of a 64-bit field.
fn is_full_64(encoding: u32) -> bool {
    FieldEncoding::new(encoding)
        .is_some_and(|e| e.width() == FieldWidth::Bits64 && e.access_type() == AccessType::Full)
}

/// Reads `encoding` with 32-bit accesses `read32`.
pub(crate) fn read_in_halves(
    encoding: u32,
    mut read32: impl FnMut(u32) -> Result<u32, VmcsError>,
) -> Result<u64, VmcsError> {
    let low = u64::from(read32(encoding)?);
    if is_full_64(encoding) {
        let high = u64::from(read32(encoding | 1)?);
        Ok((high << 32) | low)
    } else {
        Ok(low)
    }
}

/// Writes `value` to `encoding` with 32-bit accesses `write32`.
pub(crate) fn write_in_halves(
    encoding: u32,
    value: u64,
    mut write32: impl FnMut(u32, u32) -> Result<(), VmcsError>,
) -> Result<(), VmcsError> {
    write32(encoding, value as u32)?;
    if is_full_64(encoding) {
        write32(encoding | 1, (value >> 32) as u32)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::VmcsAccess;
    use crate::soft::SoftVmcs;
    use std::vec::Vec;

    /// A 32-bit view of a soft VMCS: every access moves 32 bits, as VMREAD/VMWRITE do outside
    /// 64-bit mode; the log records the encodings used.
    #[test]
    fn a_64_bit_field_takes_two_accesses() {
        let mut vmcs = SoftVmcs::default();
        let mut log = Vec::new();
        write_in_halves(0x2010, 0x1234_5678_9ABC_DEF0, |enc, v| {
            log.push(enc);
            vmcs.write(enc, u64::from(v))
        })
        .unwrap();
        assert_eq!(log, [0x2010, 0x2011]);
        // The FULL write set the low half (and cleared the upper one, as a 32-bit VMWRITE
        // does); the HIGH write then supplied the upper half.
        assert_eq!(vmcs.read(0x2010), Ok(0x1234_5678_9ABC_DEF0));
        log.clear();
        let value = read_in_halves(0x2010, |enc| {
            log.push(enc);
            vmcs.read(enc).map(|v| v as u32)
        });
        assert_eq!(value, Ok(0x1234_5678_9ABC_DEF0));
        assert_eq!(log, [0x2010, 0x2011]);
    }

    #[test]
    fn narrow_fields_and_high_encodings_take_one_access() {
        let mut vmcs = SoftVmcs::default();
        for encoding in [0x4002, 0x0802, 0x681E, 0x2011] {
            let mut count = 0;
            write_in_halves(encoding, 0xAB, |enc, v| {
                count += 1;
                vmcs.write(enc, u64::from(v))
            })
            .unwrap();
            assert_eq!(count, 1, "{encoding:#x}");
        }
    }

    #[test]
    fn the_first_failure_stops_the_pair() {
        let mut calls = 0;
        let result = read_in_halves(0x2010, |_| {
            calls += 1;
            Err(VmcsError::VmFailInvalid)
        });
        assert_eq!(result, Err(VmcsError::VmFailInvalid));
        assert_eq!(calls, 1);
    }
}
