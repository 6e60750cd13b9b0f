//! The VMCS field catalogue: every field of Intel SDM Vol. 3D, Appendix B "Field Encoding in
//! VMCS" (order no. 326019-085, 2024; FRED fields from the FRED specification rev. 7.0, which
//! the SDM has since folded in), declared once.
//!
//! Each category (width × type) is one enum. Its rows carry the encoding, the SDM's name and
//! the SDM section that describes the field; width, type and access come from the category.
//! The enums, their typed accessors, [`Field`], [`Field::from_encoding`] and [`FIELDS`] are all
//! generated from this one table.
//!
//! Chapter and section numbers are those of the 2024 edition (VMCS: Chapter 25; Appendix B
//! tables B-1 to B-15).

use crate::access::{VmcsAccess, VmcsError};
use crate::encoding::{FieldEncoding, FieldType, FieldWidth};

/// What one may do with a field through VMWRITE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum FieldAccess {
    /// Readable and writable.
    ReadWrite,
    /// VM-exit information: VMWRITE fails with VM-instruction error 13 unless IA32_VMX_MISC
    /// bit 29 is set (SDM Vol. 3C, Section 31.3, VMWRITE; Appendix A.6).
    ReadOnly,
}

/// One row of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    /// The field, as a typed value.
    pub field: Field,
    /// Its FULL encoding.
    pub encoding: FieldEncoding,
    /// The Rust identifier, e.g. `VmcsGuestNW::Rip`.
    pub ident: &'static str,
    /// The SDM's name of the field.
    pub name: &'static str,
    /// Width (redundant with the encoding; kept for convenience).
    pub width: FieldWidth,
    /// Type (redundant with the encoding; kept for convenience).
    pub field_type: FieldType,
    /// Read-write or read-only.
    pub access: FieldAccess,
    /// SDM Vol. 3C section that describes the field.
    pub sdm_section: &'static str,
    /// SDM Vol. 3D Appendix B table that lists the field.
    pub sdm_table: &'static str,
}

macro_rules! write_method {
    (ReadWrite, $ty:ty) => {
        /// Writes the field through `vmcs` (VMWRITE or its equivalent).
        ///
        /// # Errors
        /// Whatever the backend reports, e.g. VM-instruction error 12 for a field the
        /// processor does not support.
        pub fn write<A: VmcsAccess + ?Sized>(self, vmcs: &mut A, value: $ty) -> Result<(), VmcsError> {
            vmcs.write_field(self.into(), value as u64)
        }
    };
    (ReadOnly, $ty:ty) => {};
}

macro_rules! catalogue {
    (
        $(
            $(#[doc = $cat_doc:literal])*
            $enum:ident: $width:ident, $ftype:ident, $access:ident, $ty:ty, $table:literal {
                $( $variant:ident = $enc:literal, $name:literal, $section:literal; )*
            }
        )*
    ) => {
        $(
            $(#[doc = $cat_doc])*
            #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
            #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
            #[repr(u32)]
            pub enum $enum {
                $(
                    #[doc = concat!($name, " (encoding `", stringify!($enc), "`; SDM Vol. 3C, Section ", $section, ").")]
                    $variant = $enc,
                )*
            }

            impl $enum {
                /// Every field of this category, in encoding order.
                pub const ALL: &'static [Self] = &[$(Self::$variant),*];
                /// Width of every field in this category.
                pub const WIDTH: FieldWidth = FieldWidth::$width;
                /// Type of every field in this category.
                pub const TYPE: FieldType = FieldType::$ftype;
                /// Access of every field in this category.
                pub const ACCESS: FieldAccess = FieldAccess::$access;

                /// The field's FULL encoding.
                #[inline]
                pub const fn encoding(self) -> FieldEncoding {
                    // Every encoding in the table is valid (checked at compile time by
                    // `CATALOGUE_IS_VALID` and by the tests), so no check is repeated here.
                    FieldEncoding::from_catalogue(self as u32)
                }

                /// The SDM's name of the field.
                pub const fn name(self) -> &'static str {
                    match self { $(Self::$variant => $name,)* }
                }

                /// The field with this FULL encoding, if it is in this category.
                pub const fn from_encoding(raw: u32) -> Option<Self> {
                    match raw { $($enc => Some(Self::$variant),)* _ => None }
                }

                /// Reads the field through `vmcs` (VMREAD or its equivalent), at its natural width.
                ///
                /// # Errors
                /// Whatever the backend reports.
                pub fn read<A: VmcsAccess + ?Sized>(self, vmcs: &mut A) -> Result<$ty, VmcsError> {
                    // Truncation is the point: the backend returns at most the field's width.
                    vmcs.read_field(self.into()).map(|v| v as $ty)
                }

                write_method!($access, $ty);
            }

            impl From<$enum> for Field {
                fn from(field: $enum) -> Field {
                    Field::$enum(field)
                }
            }
        )*

        /// Any field of the catalogue.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum Field {
            $(
                #[doc = concat!("A field of [`", stringify!($enum), "`].")]
                $enum($enum),
            )*
        }

        impl Field {
            /// The field with this FULL encoding; `None` for encodings the SDM does not define
            /// (including HIGH encodings: see [`Field::from_any_encoding`]).
            pub const fn from_encoding(raw: u32) -> Option<Self> {
                match raw {
                    $($($enc => Some(Field::$enum($enum::$variant)),)*)*
                    _ => None,
                }
            }


            /// The field's FULL encoding.
            #[inline]
            pub const fn encoding(self) -> FieldEncoding {
                match self { $(Field::$enum(f) => f.encoding(),)* }
            }

            /// The SDM's name of the field.
            pub const fn name(self) -> &'static str {
                match self { $(Field::$enum(f) => f.name(),)* }
            }

            /// Read-write or read-only.
            pub const fn access(self) -> FieldAccess {
                match self { $(Field::$enum(_) => $enum::ACCESS,)* }
            }
        }

        /// The catalogue: one row per field, grouped by category, in encoding order.
        pub static FIELDS: &[FieldInfo] = &FIELD_TABLE;

        /// The rows of [`FIELDS`], as a constant (for compile-time tables).
        const FIELD_TABLE: [FieldInfo; 0 $($(+ { let _ = $enc; 1 })*)*] = [
            $($(
                FieldInfo {
                    field: Field::$enum($enum::$variant),
                    encoding: $enum::$variant.encoding(),
                    ident: concat!(stringify!($enum), "::", stringify!($variant)),
                    name: $name,
                    width: FieldWidth::$width,
                    field_type: FieldType::$ftype,
                    access: FieldAccess::$access,
                    sdm_section: $section,
                    sdm_table: $table,
                },
            )*)*
        ];
    };
}

/// Where a FULL encoding's row would be in a dense table: width and type (4 bits) and the
/// low 6 bits of the index (no field uses an index above 63).
const fn dense_slot(raw: u32) -> usize {
    let category = (((raw >> 13) & 3) << 2) | ((raw >> 10) & 3);
    ((category << 6) | ((raw >> 1) & 0x3F)) as usize
}

/// Every catalogue encoding is valid, its index is below 64, the rows are sorted by
/// encoding, and no two share a dense slot.
const CATALOGUE_IS_VALID: bool = {
    let mut seen = [false; 16 * 64];
    let mut i = 0;
    let mut ok = true;
    while i < FIELD_TABLE.len() {
        let raw = FIELD_TABLE[i].encoding.raw();
        ok &= FieldEncoding::new(raw).is_some() && (raw >> 1) & 0x1FF < 64 && !seen[dense_slot(raw)];
        ok &= i == 0 || FIELD_TABLE[i - 1].encoding.raw() < raw;
        seen[dense_slot(raw)] = true;
        i += 1;
    }
    ok
};
const _: () = assert!(
    CATALOGUE_IS_VALID,
    "the catalogue holds an invalid, unsorted or colliding encoding"
);

/// Row of [`FIELDS`] by dense slot (`u8::MAX`: no field).
const POSITIONS: [u8; 16 * 64] = {
    let mut table = [u8::MAX; 16 * 64];
    let mut i = 0;
    while i < FIELD_TABLE.len() {
        table[dense_slot(FIELD_TABLE[i].encoding.raw())] = i as u8;
        i += 1;
    }
    table
};
const _: () = assert!(FIELD_TABLE.len() < u8::MAX as usize);

impl Field {
    /// The field's position in [`FIELDS`] (sorted by encoding): one table look-up.
    #[inline]
    pub const fn position(self) -> usize {
        POSITIONS[dense_slot(self.encoding().raw())] as usize
    }

    /// The row of [`FIELDS`] that describes this field.
    #[inline]
    pub fn info(self) -> &'static FieldInfo {
        &FIELDS[self.position()]
    }

    /// The field addressed by any encoding, FULL or HIGH; `None` if undefined.
    pub fn from_any_encoding(raw: u32) -> Option<(Self, crate::encoding::AccessType)> {
        let encoding = FieldEncoding::new(raw)?;
        Self::from_encoding(encoding.full().raw()).map(|f| (f, encoding.access_type()))
    }

    /// Width of the field.
    pub const fn width(self) -> FieldWidth {
        self.encoding().width()
    }

    /// Type of the field.
    pub const fn field_type(self) -> FieldType {
        self.encoding().field_type()
    }
}

catalogue! {
    /// 16-bit control fields (SDM Vol. 3D, Table B-1).
    VmcsControl16: Bits16, Control, ReadWrite, u16, "B-1" {
        Vpid = 0x0000, "Virtual-processor identifier (VPID)", "25.6.12";
        PostedInterruptNotificationVector = 0x0002, "Posted-interrupt notification vector", "25.6.8";
        EptpIndex = 0x0004, "EPTP index", "25.6.20";
        HlatPrefixSize = 0x0006, "HLAT prefix size", "25.6.23";
        LastPidPointerIndex = 0x0008, "Last PID-pointer index", "25.6.8";
        VirtualTimerVector = 0x000A, "Virtual-timer vector (APIC-timer virtualization)", "25.6.8";
    }
    /// 16-bit guest-state fields (SDM Vol. 3D, Table B-2).
    VmcsGuest16: Bits16, Guest, ReadWrite, u16, "B-2" {
        EsSelector = 0x0800, "Guest ES selector", "25.4.1";
        CsSelector = 0x0802, "Guest CS selector", "25.4.1";
        SsSelector = 0x0804, "Guest SS selector", "25.4.1";
        DsSelector = 0x0806, "Guest DS selector", "25.4.1";
        FsSelector = 0x0808, "Guest FS selector", "25.4.1";
        GsSelector = 0x080A, "Guest GS selector", "25.4.1";
        LdtrSelector = 0x080C, "Guest LDTR selector", "25.4.1";
        TrSelector = 0x080E, "Guest TR selector", "25.4.1";
        InterruptStatus = 0x0810, "Guest interrupt status", "25.4.2";
        PmlIndex = 0x0812, "PML index", "25.4.2";
        Uinv = 0x0814, "Guest UINV", "25.4.2";
    }
    /// 16-bit host-state fields (SDM Vol. 3D, Table B-3).
    VmcsHost16: Bits16, Host, ReadWrite, u16, "B-3" {
        EsSelector = 0x0C00, "Host ES selector", "25.5";
        CsSelector = 0x0C02, "Host CS selector", "25.5";
        SsSelector = 0x0C04, "Host SS selector", "25.5";
        DsSelector = 0x0C06, "Host DS selector", "25.5";
        FsSelector = 0x0C08, "Host FS selector", "25.5";
        GsSelector = 0x0C0A, "Host GS selector", "25.5";
        TrSelector = 0x0C0C, "Host TR selector", "25.5";
    }
    /// 64-bit control fields (SDM Vol. 3D, Table B-4).
    VmcsControl64: Bits64, Control, ReadWrite, u64, "B-4" {
        IoBitmapA = 0x2000, "Address of I/O bitmap A", "25.6.4";
        IoBitmapB = 0x2002, "Address of I/O bitmap B", "25.6.4";
        MsrBitmaps = 0x2004, "Address of MSR bitmaps", "25.6.9";
        ExitMsrStoreAddress = 0x2006, "VM-exit MSR-store address", "25.7.2";
        ExitMsrLoadAddress = 0x2008, "VM-exit MSR-load address", "25.7.2";
        EntryMsrLoadAddress = 0x200A, "VM-entry MSR-load address", "25.8.2";
        ExecutiveVmcsPointer = 0x200C, "Executive-VMCS pointer", "25.6.10";
        PmlAddress = 0x200E, "PML address", "25.6.19";
        TscOffset = 0x2010, "TSC offset", "25.6.5";
        VirtualApicAddress = 0x2012, "Virtual-APIC address", "25.6.8";
        ApicAccessAddress = 0x2014, "APIC-access address", "25.6.8";
        PostedInterruptDescriptorAddress = 0x2016, "Posted-interrupt descriptor address", "25.6.8";
        VmFunctionControls = 0x2018, "VM-function controls", "25.6.14";
        EptPointer = 0x201A, "EPT pointer (EPTP)", "25.6.11";
        EoiExitBitmap0 = 0x201C, "EOI-exit bitmap 0", "25.6.8";
        EoiExitBitmap1 = 0x201E, "EOI-exit bitmap 1", "25.6.8";
        EoiExitBitmap2 = 0x2020, "EOI-exit bitmap 2", "25.6.8";
        EoiExitBitmap3 = 0x2022, "EOI-exit bitmap 3", "25.6.8";
        EptpListAddress = 0x2024, "EPTP-list address", "25.6.14";
        VmreadBitmapAddress = 0x2026, "VMREAD-bitmap address", "25.6.15";
        VmwriteBitmapAddress = 0x2028, "VMWRITE-bitmap address", "25.6.15";
        VirtualizationExceptionInfoAddress = 0x202A, "Virtualization-exception information address", "25.6.20";
        XssExitingBitmap = 0x202C, "XSS-exiting bitmap", "25.6.21";
        EnclsExitingBitmap = 0x202E, "ENCLS-exiting bitmap", "25.6.16";
        SubPagePermissionTablePointer = 0x2030, "Sub-page-permission-table pointer", "25.6.22";
        TscMultiplier = 0x2032, "TSC multiplier", "25.6.5";
        TertiaryProcBasedControls = 0x2034, "Tertiary processor-based VM-execution controls", "25.6.2";
        EnclvExitingBitmap = 0x2036, "ENCLV-exiting bitmap", "25.6.17";
        LowPasidDirectoryAddress = 0x2038, "Low PASID directory address", "25.6.24";
        HighPasidDirectoryAddress = 0x203A, "High PASID directory address", "25.6.24";
        SharedEptPointer = 0x203C, "Shared EPT pointer", "25.6.11";
        PconfigExitingBitmap = 0x203E, "PCONFIG-exiting bitmap", "25.6.18";
        HlatPointer = 0x2040, "Hypervisor-managed linear-address translation pointer (HLATP)", "25.6.23";
        PidPointerTableAddress = 0x2042, "PID-pointer table address", "25.6.8";
        SecondaryExitControls = 0x2044, "Secondary VM-exit controls", "25.7.1";
        SpecCtrlMask = 0x204A, "IA32_SPEC_CTRL mask", "25.6.26";
        SpecCtrlShadow = 0x204C, "IA32_SPEC_CTRL shadow", "25.6.26";
        GuestDeadlineShadow = 0x204E, "Guest deadline shadow (APIC-timer virtualization)", "25.6.8";
        InjectedEventData = 0x2052, "Injected-event data (FRED)", "25.8.3";
    }
    /// 64-bit read-only data fields (SDM Vol. 3D, Table B-5).
    VmcsReadOnly64: Bits64, ReadOnly, ReadOnly, u64, "B-5" {
        GuestPhysicalAddress = 0x2400, "Guest-physical address", "25.9.1";
        MsrData = 0x2402, "MSR data (RDMSRLIST/WRMSRLIST exits)", "25.9.4";
        OriginalEventData = 0x2404, "Original-event data (FRED)", "25.9.3";
    }
    /// 64-bit guest-state fields (SDM Vol. 3D, Table B-6).
    VmcsGuest64: Bits64, Guest, ReadWrite, u64, "B-6" {
        VmcsLinkPointer = 0x2800, "VMCS link pointer", "25.4.2";
        Debugctl = 0x2802, "Guest IA32_DEBUGCTL", "25.4.1";
        Pat = 0x2804, "Guest IA32_PAT", "25.4.1";
        Efer = 0x2806, "Guest IA32_EFER", "25.4.1";
        PerfGlobalCtrl = 0x2808, "Guest IA32_PERF_GLOBAL_CTRL", "25.4.1";
        Pdpte0 = 0x280A, "Guest PDPTE0", "25.4.2";
        Pdpte1 = 0x280C, "Guest PDPTE1", "25.4.2";
        Pdpte2 = 0x280E, "Guest PDPTE2", "25.4.2";
        Pdpte3 = 0x2810, "Guest PDPTE3", "25.4.2";
        Bndcfgs = 0x2812, "Guest IA32_BNDCFGS", "25.4.1";
        RtitCtl = 0x2814, "Guest IA32_RTIT_CTL", "25.4.1";
        LbrCtl = 0x2816, "Guest IA32_LBR_CTL", "25.4.1";
        Pkrs = 0x2818, "Guest IA32_PKRS", "25.4.1";
        FredConfig = 0x281A, "Guest IA32_FRED_CONFIG", "25.4.1";
        FredRsp1 = 0x281C, "Guest IA32_FRED_RSP1", "25.4.1";
        FredRsp2 = 0x281E, "Guest IA32_FRED_RSP2", "25.4.1";
        FredRsp3 = 0x2820, "Guest IA32_FRED_RSP3", "25.4.1";
        FredStklvls = 0x2822, "Guest IA32_FRED_STKLVLS", "25.4.1";
        FredSsp1 = 0x2824, "Guest IA32_FRED_SSP1", "25.4.1";
        FredSsp2 = 0x2826, "Guest IA32_FRED_SSP2", "25.4.1";
        FredSsp3 = 0x2828, "Guest IA32_FRED_SSP3", "25.4.1";
        SpecCtrl = 0x282E, "Guest IA32_SPEC_CTRL", "25.4.1";
        Deadline = 0x2830, "Guest deadline (APIC-timer virtualization)", "25.4.2";
    }
    /// 64-bit host-state fields (SDM Vol. 3D, Table B-7).
    VmcsHost64: Bits64, Host, ReadWrite, u64, "B-7" {
        Pat = 0x2C00, "Host IA32_PAT", "25.5";
        Efer = 0x2C02, "Host IA32_EFER", "25.5";
        PerfGlobalCtrl = 0x2C04, "Host IA32_PERF_GLOBAL_CTRL", "25.5";
        Pkrs = 0x2C06, "Host IA32_PKRS", "25.5";
        FredConfig = 0x2C08, "Host IA32_FRED_CONFIG", "25.5";
        FredRsp1 = 0x2C0A, "Host IA32_FRED_RSP1", "25.5";
        FredRsp2 = 0x2C0C, "Host IA32_FRED_RSP2", "25.5";
        FredRsp3 = 0x2C0E, "Host IA32_FRED_RSP3", "25.5";
        FredStklvls = 0x2C10, "Host IA32_FRED_STKLVLS", "25.5";
        FredSsp1 = 0x2C12, "Host IA32_FRED_SSP1", "25.5";
        FredSsp2 = 0x2C14, "Host IA32_FRED_SSP2", "25.5";
        FredSsp3 = 0x2C16, "Host IA32_FRED_SSP3", "25.5";
        SpecCtrl = 0x2C1A, "Host IA32_SPEC_CTRL", "25.5";
    }
    /// 32-bit control fields (SDM Vol. 3D, Table B-8).
    VmcsControl32: Bits32, Control, ReadWrite, u32, "B-8" {
        PinBasedControls = 0x4000, "Pin-based VM-execution controls", "25.6.1";
        PrimaryProcBasedControls = 0x4002, "Primary processor-based VM-execution controls", "25.6.2";
        ExceptionBitmap = 0x4004, "Exception bitmap", "25.6.3";
        PageFaultErrorCodeMask = 0x4006, "Page-fault error-code mask", "25.6.3";
        PageFaultErrorCodeMatch = 0x4008, "Page-fault error-code match", "25.6.3";
        Cr3TargetCount = 0x400A, "CR3-target count", "25.6.7";
        PrimaryExitControls = 0x400C, "Primary VM-exit controls", "25.7.1";
        ExitMsrStoreCount = 0x400E, "VM-exit MSR-store count", "25.7.2";
        ExitMsrLoadCount = 0x4010, "VM-exit MSR-load count", "25.7.2";
        EntryControls = 0x4012, "VM-entry controls", "25.8.1";
        EntryMsrLoadCount = 0x4014, "VM-entry MSR-load count", "25.8.2";
        EntryInterruptionInfo = 0x4016, "VM-entry interruption-information field", "25.8.3";
        EntryExceptionErrorCode = 0x4018, "VM-entry exception error code", "25.8.3";
        EntryInstructionLength = 0x401A, "VM-entry instruction length", "25.8.3";
        TprThreshold = 0x401C, "TPR threshold", "25.6.8";
        SecondaryProcBasedControls = 0x401E, "Secondary processor-based VM-execution controls", "25.6.2";
        PleGap = 0x4020, "PLE_Gap", "25.6.13";
        PleWindow = 0x4022, "PLE_Window", "25.6.13";
        InstructionTimeoutControl = 0x4024, "Instruction-timeout control", "25.6.25";
    }
    /// 32-bit read-only data fields (SDM Vol. 3D, Table B-9).
    VmcsReadOnly32: Bits32, ReadOnly, ReadOnly, u32, "B-9" {
        VmInstructionError = 0x4400, "VM-instruction error", "25.9.5";
        ExitReason = 0x4402, "Exit reason", "25.9.1";
        ExitInterruptionInfo = 0x4404, "VM-exit interruption information", "25.9.2";
        ExitInterruptionErrorCode = 0x4406, "VM-exit interruption error code", "25.9.2";
        IdtVectoringInfo = 0x4408, "IDT-vectoring information field", "25.9.3";
        IdtVectoringErrorCode = 0x440A, "IDT-vectoring error code", "25.9.3";
        ExitInstructionLength = 0x440C, "VM-exit instruction length", "25.9.4";
        ExitInstructionInfo = 0x440E, "VM-exit instruction information", "25.9.4";
    }
    /// 32-bit guest-state fields (SDM Vol. 3D, Table B-10).
    VmcsGuest32: Bits32, Guest, ReadWrite, u32, "B-10" {
        EsLimit = 0x4800, "Guest ES limit", "25.4.1";
        CsLimit = 0x4802, "Guest CS limit", "25.4.1";
        SsLimit = 0x4804, "Guest SS limit", "25.4.1";
        DsLimit = 0x4806, "Guest DS limit", "25.4.1";
        FsLimit = 0x4808, "Guest FS limit", "25.4.1";
        GsLimit = 0x480A, "Guest GS limit", "25.4.1";
        LdtrLimit = 0x480C, "Guest LDTR limit", "25.4.1";
        TrLimit = 0x480E, "Guest TR limit", "25.4.1";
        GdtrLimit = 0x4810, "Guest GDTR limit", "25.4.1";
        IdtrLimit = 0x4812, "Guest IDTR limit", "25.4.1";
        EsAccessRights = 0x4814, "Guest ES access rights", "25.4.1";
        CsAccessRights = 0x4816, "Guest CS access rights", "25.4.1";
        SsAccessRights = 0x4818, "Guest SS access rights", "25.4.1";
        DsAccessRights = 0x481A, "Guest DS access rights", "25.4.1";
        FsAccessRights = 0x481C, "Guest FS access rights", "25.4.1";
        GsAccessRights = 0x481E, "Guest GS access rights", "25.4.1";
        LdtrAccessRights = 0x4820, "Guest LDTR access rights", "25.4.1";
        TrAccessRights = 0x4822, "Guest TR access rights", "25.4.1";
        InterruptibilityState = 0x4824, "Guest interruptibility state", "25.4.2";
        ActivityState = 0x4826, "Guest activity state", "25.4.2";
        Smbase = 0x4828, "Guest SMBASE", "25.4.2";
        SysenterCs = 0x482A, "Guest IA32_SYSENTER_CS", "25.4.1";
        PreemptionTimerValue = 0x482E, "VMX-preemption timer value", "25.4.2";
    }
    /// 32-bit host-state field (SDM Vol. 3D, Table B-11).
    VmcsHost32: Bits32, Host, ReadWrite, u32, "B-11" {
        SysenterCs = 0x4C00, "Host IA32_SYSENTER_CS", "25.5";
    }
    /// Natural-width control fields (SDM Vol. 3D, Table B-12).
    VmcsControlNW: Natural, Control, ReadWrite, u64, "B-12" {
        Cr0GuestHostMask = 0x6000, "CR0 guest/host mask", "25.6.6";
        Cr4GuestHostMask = 0x6002, "CR4 guest/host mask", "25.6.6";
        Cr0ReadShadow = 0x6004, "CR0 read shadow", "25.6.6";
        Cr4ReadShadow = 0x6006, "CR4 read shadow", "25.6.6";
        Cr3Target0 = 0x6008, "CR3-target value 0", "25.6.7";
        Cr3Target1 = 0x600A, "CR3-target value 1", "25.6.7";
        Cr3Target2 = 0x600C, "CR3-target value 2", "25.6.7";
        Cr3Target3 = 0x600E, "CR3-target value 3", "25.6.7";
    }
    /// Natural-width read-only data fields (SDM Vol. 3D, Table B-13).
    VmcsReadOnlyNW: Natural, ReadOnly, ReadOnly, u64, "B-13" {
        ExitQualification = 0x6400, "Exit qualification", "25.9.1";
        IoRcx = 0x6402, "I/O RCX", "25.9.4";
        IoRsi = 0x6404, "I/O RSI", "25.9.4";
        IoRdi = 0x6406, "I/O RDI", "25.9.4";
        IoRip = 0x6408, "I/O RIP", "25.9.4";
        GuestLinearAddress = 0x640A, "Guest-linear address", "25.9.1";
    }
    /// Natural-width guest-state fields (SDM Vol. 3D, Table B-14).
    VmcsGuestNW: Natural, Guest, ReadWrite, u64, "B-14" {
        Cr0 = 0x6800, "Guest CR0", "25.4.1";
        Cr3 = 0x6802, "Guest CR3", "25.4.1";
        Cr4 = 0x6804, "Guest CR4", "25.4.1";
        EsBase = 0x6806, "Guest ES base", "25.4.1";
        CsBase = 0x6808, "Guest CS base", "25.4.1";
        SsBase = 0x680A, "Guest SS base", "25.4.1";
        DsBase = 0x680C, "Guest DS base", "25.4.1";
        FsBase = 0x680E, "Guest FS base", "25.4.1";
        GsBase = 0x6810, "Guest GS base", "25.4.1";
        LdtrBase = 0x6812, "Guest LDTR base", "25.4.1";
        TrBase = 0x6814, "Guest TR base", "25.4.1";
        GdtrBase = 0x6816, "Guest GDTR base", "25.4.1";
        IdtrBase = 0x6818, "Guest IDTR base", "25.4.1";
        Dr7 = 0x681A, "Guest DR7", "25.4.1";
        Rsp = 0x681C, "Guest RSP", "25.4.1";
        Rip = 0x681E, "Guest RIP", "25.4.1";
        Rflags = 0x6820, "Guest RFLAGS", "25.4.1";
        PendingDebugExceptions = 0x6822, "Guest pending debug exceptions", "25.4.2";
        SysenterEsp = 0x6824, "Guest IA32_SYSENTER_ESP", "25.4.1";
        SysenterEip = 0x6826, "Guest IA32_SYSENTER_EIP", "25.4.1";
        SCet = 0x6828, "Guest IA32_S_CET", "25.4.1";
        Ssp = 0x682A, "Guest SSP", "25.4.1";
        InterruptSspTableAddress = 0x682C, "Guest IA32_INTERRUPT_SSP_TABLE_ADDR", "25.4.1";
    }
    /// Natural-width host-state fields (SDM Vol. 3D, Table B-15).
    VmcsHostNW: Natural, Host, ReadWrite, u64, "B-15" {
        Cr0 = 0x6C00, "Host CR0", "25.5";
        Cr3 = 0x6C02, "Host CR3", "25.5";
        Cr4 = 0x6C04, "Host CR4", "25.5";
        FsBase = 0x6C06, "Host FS base", "25.5";
        GsBase = 0x6C08, "Host GS base", "25.5";
        TrBase = 0x6C0A, "Host TR base", "25.5";
        GdtrBase = 0x6C0C, "Host GDTR base", "25.5";
        IdtrBase = 0x6C0E, "Host IDTR base", "25.5";
        SysenterEsp = 0x6C10, "Host IA32_SYSENTER_ESP", "25.5";
        SysenterEip = 0x6C12, "Host IA32_SYSENTER_EIP", "25.5";
        Rsp = 0x6C14, "Host RSP", "25.5";
        Rip = 0x6C16, "Host RIP", "25.5";
        SCet = 0x6C18, "Host IA32_S_CET", "25.5";
        Ssp = 0x6C1A, "Host SSP", "25.5";
        InterruptSspTableAddress = 0x6C1C, "Host IA32_INTERRUPT_SSP_TABLE_ADDR", "25.5";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_agrees_with_its_encoding() {
        for row in FIELDS {
            assert_eq!(row.encoding.width(), row.width, "{}", row.ident);
            assert_eq!(row.encoding.field_type(), row.field_type, "{}", row.ident);
            assert_eq!(row.field.encoding(), row.encoding, "{}", row.ident);
            assert_eq!(row.field.name(), row.name);
            assert_eq!(
                row.access == FieldAccess::ReadOnly,
                row.field_type == FieldType::ReadOnly
            );
            assert_eq!(Field::from_encoding(row.encoding.raw()), Some(row.field));
            assert_eq!(row.field.info(), row);
        }
    }

    #[test]
    fn positions_index_the_table() {
        for (i, row) in FIELDS.iter().enumerate() {
            assert_eq!(row.field.position(), i);
        }
    }

    #[test]
    fn encodings_are_unique_and_sorted_within_a_category() {
        for pair in FIELDS.windows(2) {
            assert_ne!(pair[0].encoding, pair[1].encoding);
            if pair[0].width == pair[1].width && pair[0].field_type == pair[1].field_type {
                assert!(
                    pair[0].encoding < pair[1].encoding,
                    "{} before {}",
                    pair[0].ident,
                    pair[1].ident
                );
            }
        }
    }

    #[test]
    fn lookup_is_none_exactly_for_undefined_encodings() {
        let defined: usize = (0..0x8000u32)
            .filter(|&raw| Field::from_encoding(raw).is_some())
            .count();
        assert_eq!(defined, FIELDS.len());
        assert_eq!(Field::from_encoding(0x2C7E), None);
        assert_eq!(Field::from_encoding(0x6BFE), None);
        assert_eq!(
            Field::from_encoding(0x201B),
            None,
            "HIGH encodings are not fields of their own"
        );
        assert_eq!(
            Field::from_any_encoding(0x201B),
            Some((
                Field::VmcsControl64(VmcsControl64::EptPointer),
                crate::encoding::AccessType::High
            ))
        );
    }

    /// `reference-gaps.md` item 1: fields added to the SDM after 2019.
    #[test]
    fn holds_the_fields_added_after_2019() {
        let newer = [
            0x2034, 0x2036, 0x2038, 0x203A, 0x203C, 0x203E, 0x2040, 0x2042, 0x2044, 0x204A, 0x204C, 0x4024,
            0x0006, 0x0008, 0x0814, 0x2816, 0x2818, 0x2C06, 0x6828, 0x682A, 0x682C, 0x6C18, 0x6C1A, 0x6C1C,
        ];
        for raw in newer {
            assert!(Field::from_encoding(raw).is_some(), "{raw:#x} missing");
        }
    }

    /// Every encoding the `x86` crate (2019 SDM) knows is in our catalogue with the same width and type.
    #[test]
    fn is_a_superset_of_the_x86_crate() {
        use x86::vmx::vmcs::*;
        let theirs = [
            control::VPID,
            control::POSTED_INTERRUPT_NOTIFICATION_VECTOR,
            control::EPTP_INDEX,
            guest::ES_SELECTOR,
            guest::TR_SELECTOR,
            guest::INTERRUPT_STATUS,
            guest::PML_INDEX,
            host::ES_SELECTOR,
            host::TR_SELECTOR,
            control::IO_BITMAP_A_ADDR_FULL,
            control::TSC_MULTIPLIER_FULL,
            control::EPTP_FULL,
            control::XSS_EXITING_BITMAP_FULL,
            control::ENCLS_EXITING_BITMAP_FULL,
            control::SUBPAGE_PERM_TABLE_PTR_FULL,
            ro::GUEST_PHYSICAL_ADDR_FULL,
            guest::LINK_PTR_FULL,
            guest::IA32_RTIT_CTL_FULL,
            guest::IA32_BNDCFGS_FULL,
            guest::PDPTE3_FULL,
            host::IA32_PERF_GLOBAL_CTRL_FULL,
            control::PINBASED_EXEC_CONTROLS,
            control::SECONDARY_PROCBASED_EXEC_CONTROLS,
            control::PLE_WINDOW,
            ro::VM_INSTRUCTION_ERROR,
            ro::VMEXIT_INSTRUCTION_INFO,
            guest::VMX_PREEMPTION_TIMER_VALUE,
            host::IA32_SYSENTER_CS,
            control::CR3_TARGET_VALUE3,
            ro::EXIT_QUALIFICATION,
            ro::GUEST_LINEAR_ADDR,
            guest::CR0,
            guest::IA32_SYSENTER_EIP,
            host::RIP,
        ];
        for raw in theirs {
            assert!(Field::from_encoding(raw).is_some(), "{raw:#x} missing");
        }
        assert!(
            FIELDS.len() > 157,
            "the 2019 catalogue had 157 fields; we have {}",
            FIELDS.len()
        );
    }

    #[test]
    fn categories_match_their_enums() {
        assert_eq!(VmcsGuestNW::Rip.encoding().raw(), 0x681E);
        assert_eq!(VmcsGuestNW::WIDTH, FieldWidth::Natural);
        assert_eq!(VmcsReadOnly32::ACCESS, FieldAccess::ReadOnly);
        assert_eq!(
            VmcsReadOnly32::from_encoding(0x4402),
            Some(VmcsReadOnly32::ExitReason)
        );
        assert_eq!(VmcsReadOnly32::from_encoding(0x4800), None);
        let total = VmcsControl16::ALL.len()
            + VmcsGuest16::ALL.len()
            + VmcsHost16::ALL.len()
            + VmcsControl64::ALL.len()
            + VmcsReadOnly64::ALL.len()
            + VmcsGuest64::ALL.len()
            + VmcsHost64::ALL.len()
            + VmcsControl32::ALL.len()
            + VmcsReadOnly32::ALL.len()
            + VmcsGuest32::ALL.len()
            + VmcsHost32::ALL.len()
            + VmcsControlNW::ALL.len()
            + VmcsReadOnlyNW::ALL.len()
            + VmcsGuestNW::ALL.len()
            + VmcsHostNW::ALL.len();
        assert_eq!(total, FIELDS.len());
    }
}
