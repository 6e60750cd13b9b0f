//! IA-32e mode transitions when a guest writes CR0.PG.
//!
//! A processor activates IA-32e mode when software sets CR0.PG with IA32_EFER.LME = 1 (and
//! CR4.PAE = 1), setting IA32_EFER.LMA; clearing CR0.PG deactivates it and clears LMA (SDM
//! Vol. 3A, Section 10.8.5, "Initializing IA-32e Mode"; Section 5.1.2, "Paging-Mode
//! Enabling"). When a VMM intercepts that write, it must do the same to the guest's VMCS
//! state: guest IA32_EFER.LMA and the "IA-32e mode guest" VM-entry control (bit 9), which VM
//! entry requires to agree with each other and with CR0.PG, CR4.PAE and EFER.LME (SDM Vol. 3C,
//! Section 27.3.1.1) — or raise the #GP the processor would have raised.
//!
//! [`cr0_write`] is the pure rule; [`apply_cr0_write`] applies it through any [`VmcsAccess`].
//! Neither touches the CR0 guest/host mask, read shadow or fixed bits: the caller passes the
//! value meant for the VMCS guest CR0 field, with those already accounted for.

use core::fmt;

use crate::access::{VmcsAccess, VmcsError};
use crate::catalogue::{VmcsControl32, VmcsGuest32, VmcsGuest64, VmcsGuestNW};
use crate::inject::Event;

/// The "IA-32e mode guest" VM-entry control, bit 9 (SDM Vol. 3C, Section 25.8.1).
pub const IA32E_MODE_GUEST: u32 = 1 << 9;

/// CR0.PE (bit 0).
pub const CR0_PE: u64 = 1 << 0;
/// CR0.PG (bit 31).
pub const CR0_PG: u64 = 1 << 31;
/// CR4.PAE (bit 5).
pub const CR4_PAE: u64 = 1 << 5;
/// CR4.PCIDE (bit 17).
pub const CR4_PCIDE: u64 = 1 << 17;
/// IA32_EFER.LME (bit 8): long mode enable.
pub const EFER_LME: u64 = 1 << 8;
/// IA32_EFER.LMA (bit 10): long mode active.
pub const EFER_LMA: u64 = 1 << 10;
/// The L bit (64-bit code segment) of a segment access-rights field, bit 13 (SDM Vol. 3C,
/// Section 25.4.1).
pub const ACCESS_RIGHTS_L: u32 = 1 << 13;

/// The guest state a CR0 write is judged against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GuestPagingState {
    /// Guest CR0 field.
    pub cr0: u64,
    /// Guest CR4 field.
    pub cr4: u64,
    /// Guest IA32_EFER field.
    pub efer: u64,
    /// VM-entry controls.
    pub entry_controls: u32,
    /// The L bit of the guest's CS (bit 13 of the CS access rights).
    pub cs_long: bool,
}

impl GuestPagingState {
    /// IA-32e mode is active (EFER.LMA = 1).
    pub const fn ia32e_active(&self) -> bool {
        self.efer & EFER_LMA != 0
    }

    /// The guest runs 64-bit code: IA-32e mode with CS.L = 1 (not compatibility mode).
    pub const fn in_64bit_mode(&self) -> bool {
        self.ia32e_active() && self.cs_long
    }
}

/// How a CR0 write changed the paging mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PagingChange {
    /// CR0.PG did not change: EFER and the entry controls are left as they were.
    None,
    /// Paging turned on without IA-32e mode (EFER.LME = 0): 32-bit or PAE paging.
    PagingEnabled,
    /// Paging turned on with EFER.LME = 1: IA-32e mode activated.
    Ia32eActivated,
    /// Paging turned off outside IA-32e mode.
    PagingDisabled,
    /// Paging turned off in IA-32e mode (compatibility mode): IA-32e mode deactivated.
    Ia32eDeactivated,
}

/// The state to write after an accepted CR0 write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Cr0WriteOutcome {
    /// New guest CR0 (the value written).
    pub cr0: u64,
    /// New guest IA32_EFER (LMA updated; every other bit as before).
    pub efer: u64,
    /// New VM-entry controls ("IA-32e mode guest" updated; every other bit as before).
    pub entry_controls: u32,
    /// What changed.
    pub change: PagingChange,
}

/// A CR0 write the processor would refuse with #GP(0); the VMM should inject
/// [`Cr0WriteFault::exception`] and leave the guest state unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Cr0WriteFault {
    /// PG = 1 with PE = 0 (SDM Vol. 2B, MOV—Move to/from Control Registers, exceptions).
    PagingWithoutProtection,
    /// Setting PG with EFER.LME = 1 but CR4.PAE = 0 (SDM Vol. 3A, Section 5.1.2).
    Ia32eWithoutPae,
    /// Setting PG with EFER.LME = 1 while CS.L = 1 (SDM Vol. 3A, Section 10.8.5; Vol. 2B, MOV
    /// to CR0: "attempt to activate IA-32e mode and ... the current CS has the L-bit set").
    Ia32eActivationWithLongCs,
    /// Clearing PG in 64-bit mode: IA-32e mode is left from compatibility mode only (SDM
    /// Vol. 3A, Section 10.8.5.4; Vol. 2B, MOV to CR0, 64-bit mode exceptions).
    PagingOffIn64BitMode,
    /// Clearing PG while CR4.PCIDE = 1 (SDM Vol. 2B, MOV to CR0 exceptions).
    PagingOffWithPcide,
}

impl Cr0WriteFault {
    /// The exception to inject: #GP(0).
    pub const fn exception(self) -> Event {
        Event::general_protection(0)
    }
}

impl fmt::Display for Cr0WriteFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PagingWithoutProtection => "CR0.PG = 1 with CR0.PE = 0",
            Self::Ia32eWithoutPae => "enabling paging with IA32_EFER.LME = 1 requires CR4.PAE = 1",
            Self::Ia32eActivationWithLongCs => "activating IA-32e mode with CS.L = 1",
            Self::PagingOffIn64BitMode => "clearing CR0.PG in 64-bit mode",
            Self::PagingOffWithPcide => "clearing CR0.PG with CR4.PCIDE = 1",
        })?;
        f.write_str(" raises #GP(0)")
    }
}

impl core::error::Error for Cr0WriteFault {}

/// The guest state after the guest writes `new_cr0` to CR0, or the fault it raises.
///
/// Setting CR0.PG: with EFER.LME = 1 (and CR4.PAE = 1, CS.L = 0) EFER.LMA and "IA-32e mode
/// guest" are set; with LME = 0 both are cleared. Clearing CR0.PG clears both (EFER.LME is
/// kept: the guest may turn paging on again into IA-32e mode). A write that keeps CR0.PG as
/// it was leaves EFER and the controls alone. Pure; the faults are [`Cr0WriteFault`].
///
/// The result satisfies the VM-entry checks that tie these together (SDM Vol. 3C, Section
/// 27.3.1.1): "IA-32e mode guest" = EFER.LMA; if it is 1, CR0.PG = CR4.PAE = 1; if CR0.PG = 1,
/// EFER.LME = EFER.LMA — given a starting state that satisfied them.
///
/// # Errors
/// The [`Cr0WriteFault`] the processor would raise.
pub fn cr0_write(state: &GuestPagingState, new_cr0: u64) -> Result<Cr0WriteOutcome, Cr0WriteFault> {
    if new_cr0 & CR0_PG != 0 && new_cr0 & CR0_PE == 0 {
        return Err(Cr0WriteFault::PagingWithoutProtection);
    }
    let paging_before = state.cr0 & CR0_PG != 0;
    let paging_after = new_cr0 & CR0_PG != 0;
    let (ia32e, change) = match (paging_before, paging_after) {
        (false, true) if state.efer & EFER_LME != 0 => {
            if state.cr4 & CR4_PAE == 0 {
                return Err(Cr0WriteFault::Ia32eWithoutPae);
            }
            if state.cs_long {
                return Err(Cr0WriteFault::Ia32eActivationWithLongCs);
            }
            (true, PagingChange::Ia32eActivated)
        }
        (false, true) => (false, PagingChange::PagingEnabled),
        (true, false) => {
            if state.in_64bit_mode() {
                return Err(Cr0WriteFault::PagingOffIn64BitMode);
            }
            if state.cr4 & CR4_PCIDE != 0 {
                return Err(Cr0WriteFault::PagingOffWithPcide);
            }
            let was_ia32e = state.ia32e_active() || state.entry_controls & IA32E_MODE_GUEST != 0;
            let change = if was_ia32e {
                PagingChange::Ia32eDeactivated
            } else {
                PagingChange::PagingDisabled
            };
            (false, change)
        }
        (false, false) | (true, true) => {
            return Ok(Cr0WriteOutcome {
                cr0: new_cr0,
                efer: state.efer,
                entry_controls: state.entry_controls,
                change: PagingChange::None,
            });
        }
    };
    let (efer, entry_controls) = if ia32e {
        (state.efer | EFER_LMA, state.entry_controls | IA32E_MODE_GUEST)
    } else {
        (state.efer & !EFER_LMA, state.entry_controls & !IA32E_MODE_GUEST)
    };
    Ok(Cr0WriteOutcome {
        cr0: new_cr0,
        efer,
        entry_controls,
        change,
    })
}

/// Why [`apply_cr0_write`] changed nothing, or stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Cr0WriteError {
    /// The guest's write raises #GP(0); nothing was written.
    Fault(Cr0WriteFault),
    /// A VMCS access failed.
    Vmcs(VmcsError),
}

impl From<VmcsError> for Cr0WriteError {
    fn from(e: VmcsError) -> Self {
        Self::Vmcs(e)
    }
}

impl fmt::Display for Cr0WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fault(fault) => write!(f, "guest CR0 write refused: {fault}"),
            Self::Vmcs(e) => write!(f, "VMCS access failed: {e}"),
        }
    }
}

impl core::error::Error for Cr0WriteError {}

/// Applies a guest write of `new_cr0` to CR0 through `vmcs`.
///
/// Reads guest CR0, CR4, IA32_EFER, CS access rights and the VM-entry controls; on success
/// writes the VM-entry controls and guest IA32_EFER (each only if it changes), then guest CR0.
/// The guest IA32_EFER field is written even if "load IA32_EFER" is 0 (VM entry then derives
/// LMA from "IA-32e mode guest" itself, SDM Vol. 3C, Section 27.3.2.1), so it always tells the
/// truth to whoever reads it.
///
/// # Errors
/// [`Cr0WriteError::Fault`] if the write raises #GP (nothing written: inject
/// [`Cr0WriteFault::exception`]); [`Cr0WriteError::Vmcs`] if an access fails.
pub fn apply_cr0_write<A: VmcsAccess + ?Sized>(
    vmcs: &mut A,
    new_cr0: u64,
) -> Result<Cr0WriteOutcome, Cr0WriteError> {
    let state = GuestPagingState {
        cr0: VmcsGuestNW::Cr0.read(vmcs)?,
        cr4: VmcsGuestNW::Cr4.read(vmcs)?,
        efer: VmcsGuest64::Efer.read(vmcs)?,
        entry_controls: VmcsControl32::EntryControls.read(vmcs)?,
        cs_long: VmcsGuest32::CsAccessRights.read(vmcs)? & ACCESS_RIGHTS_L != 0,
    };
    let outcome = cr0_write(&state, new_cr0).map_err(Cr0WriteError::Fault)?;
    if outcome.entry_controls != state.entry_controls {
        VmcsControl32::EntryControls.write(vmcs, outcome.entry_controls)?;
    }
    if outcome.efer != state.efer {
        VmcsGuest64::Efer.write(vmcs, outcome.efer)?;
    }
    VmcsGuestNW::Cr0.write(vmcs, outcome.cr0)?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inject::tests::Recorder;
    use crate::soft::SoftVmcs;
    use proptest::prelude::*;

    /// "Load IA32_EFER" (bit 15) and the default-1 bits of the VM-entry controls, so tests see
    /// that other bits survive.
    const OTHER_ENTRY_CONTROLS: u32 = 0x11FF | (1 << 15);
    const PE_ONLY: u64 = CR0_PE | 0x30;
    const PAGING: u64 = PE_ONLY | CR0_PG;

    fn state(cr0: u64, cr4: u64, efer: u64, ia32e: bool) -> GuestPagingState {
        GuestPagingState {
            cr0,
            cr4,
            efer,
            entry_controls: OTHER_ENTRY_CONTROLS | if ia32e { IA32E_MODE_GUEST } else { 0 },
            cs_long: false,
        }
    }

    /// The VM-entry checks that tie CR0, CR4, IA32_EFER and "IA-32e mode guest" together
    /// (SDM Vol. 3C, Section 27.3.1.1, with "load IA32_EFER" = 1 and unrestricted guest),
    /// written independently of the code under test.
    fn vm_entry_accepts(cr0: u64, cr4: u64, efer: u64, entry_controls: u32) -> bool {
        let ia32e = entry_controls & (1 << 9) != 0;
        let pg = cr0 & (1 << 31) != 0;
        let pe = cr0 & 1 != 0;
        let pae = cr4 & (1 << 5) != 0;
        let pcide = cr4 & (1 << 17) != 0;
        let lme = efer & (1 << 8) != 0;
        let lma = efer & (1 << 10) != 0;
        (!pg || pe) && (!ia32e || (pae && pg)) && (ia32e || !pcide) && lma == ia32e && (!pg || lme == lma)
    }

    /// reference-gaps.md item 9: with EFER.LME = 0, enabling paging gives no LMA.
    #[test]
    fn paging_without_lme_is_not_ia32e() {
        let before = state(PE_ONLY, CR4_PAE, 0, false);
        let after = cr0_write(&before, PAGING).unwrap();
        assert_eq!(after.efer & EFER_LMA, 0);
        assert_eq!(after.entry_controls, OTHER_ENTRY_CONTROLS);
        assert_eq!(after.change, PagingChange::PagingEnabled);
        assert!(vm_entry_accepts(
            after.cr0,
            before.cr4,
            after.efer,
            after.entry_controls
        ));
    }

    #[test]
    fn paging_with_lme_and_pae_activates_ia32e() {
        let efer = EFER_LME | (1 << 11) | 1; // NXE and SCE survive
        let before = state(PE_ONLY, CR4_PAE, efer, false);
        let after = cr0_write(&before, PAGING).unwrap();
        assert_eq!(after.efer, efer | EFER_LMA);
        assert_eq!(after.entry_controls, OTHER_ENTRY_CONTROLS | IA32E_MODE_GUEST);
        assert_eq!(after.change, PagingChange::Ia32eActivated);
        assert!(vm_entry_accepts(
            after.cr0,
            before.cr4,
            after.efer,
            after.entry_controls
        ));
    }

    /// reference-gaps.md item 9: CR4.PAE is checked.
    #[test]
    fn paging_with_lme_but_no_pae_is_a_gp() {
        let before = state(PE_ONLY, 0, EFER_LME, false);
        assert_eq!(cr0_write(&before, PAGING), Err(Cr0WriteFault::Ia32eWithoutPae));
        assert_eq!(
            Cr0WriteFault::Ia32eWithoutPae.exception(),
            crate::inject::Event::general_protection(0)
        );
    }

    /// reference-gaps.md item 9: turning paging off leaves IA-32e mode.
    #[test]
    fn clearing_paging_clears_lma_and_ia32e_mode_guest() {
        let before = state(PAGING, CR4_PAE, EFER_LME | EFER_LMA, true);
        let after = cr0_write(&before, PE_ONLY).unwrap();
        assert_eq!(after.efer, EFER_LME);
        assert_eq!(after.entry_controls, OTHER_ENTRY_CONTROLS);
        assert_eq!(after.change, PagingChange::Ia32eDeactivated);
        assert!(vm_entry_accepts(
            after.cr0,
            before.cr4,
            after.efer,
            after.entry_controls
        ));
        // And back on again.
        let again = cr0_write(
            &GuestPagingState {
                cr0: after.cr0,
                efer: after.efer,
                entry_controls: after.entry_controls,
                ..before
            },
            PAGING,
        )
        .unwrap();
        assert_eq!(again.change, PagingChange::Ia32eActivated);
        // Outside IA-32e mode.
        let legacy = cr0_write(&state(PAGING, 0, 0, false), PE_ONLY).unwrap();
        assert_eq!(legacy.change, PagingChange::PagingDisabled);
    }

    #[test]
    fn architectural_faults() {
        let long = state(PAGING, CR4_PAE, EFER_LME | EFER_LMA, true);
        let in_64bit = GuestPagingState {
            cs_long: true,
            ..long
        };
        assert_eq!(
            cr0_write(&in_64bit, PE_ONLY),
            Err(Cr0WriteFault::PagingOffIn64BitMode)
        );
        assert_eq!(
            cr0_write(
                &GuestPagingState {
                    cr4: CR4_PAE | CR4_PCIDE,
                    ..long
                },
                PE_ONLY
            ),
            Err(Cr0WriteFault::PagingOffWithPcide)
        );
        let activating_with_long_cs = GuestPagingState {
            cs_long: true,
            ..state(PE_ONLY, CR4_PAE, EFER_LME, false)
        };
        assert_eq!(
            cr0_write(&activating_with_long_cs, PAGING),
            Err(Cr0WriteFault::Ia32eActivationWithLongCs)
        );
        assert_eq!(
            cr0_write(&state(0, 0, 0, false), CR0_PG),
            Err(Cr0WriteFault::PagingWithoutProtection)
        );
        // CS.L means nothing outside IA-32e mode when LME = 0.
        let legacy_long_cs = GuestPagingState {
            cs_long: true,
            ..state(PE_ONLY, 0, 0, false)
        };
        assert!(cr0_write(&legacy_long_cs, PAGING).is_ok());
    }

    #[test]
    fn unchanged_paging_leaves_efer_and_controls_alone() {
        let long = state(PAGING, CR4_PAE, EFER_LME | EFER_LMA, true);
        let after = cr0_write(&long, PAGING | (1 << 16)).unwrap(); // set WP
        assert_eq!(
            (after.efer, after.entry_controls, after.change),
            (long.efer, long.entry_controls, PagingChange::None)
        );
        assert_eq!(after.cr0, PAGING | (1 << 16));
        let off = state(PE_ONLY, 0, EFER_LME, false);
        let after = cr0_write(&off, 0x30).unwrap(); // back to real mode
        assert_eq!((after.efer, after.change), (EFER_LME, PagingChange::None));
    }

    #[test]
    fn apply_cr0_write_through_the_vmcs() {
        let mut soft = SoftVmcs::default();
        soft.set(VmcsGuestNW::Cr0, PE_ONLY);
        soft.set(VmcsGuestNW::Cr4, CR4_PAE);
        soft.set(VmcsGuest64::Efer, EFER_LME);
        soft.set(VmcsControl32::EntryControls, u64::from(OTHER_ENTRY_CONTROLS));
        soft.set(VmcsGuest32::CsAccessRights, 0xA09B & !u64::from(ACCESS_RIGHTS_L)); // 32-bit code
        let mut vmcs = Recorder::new(soft);
        let outcome = apply_cr0_write(&mut vmcs, PAGING).unwrap();
        assert_eq!(outcome.change, PagingChange::Ia32eActivated);
        assert_eq!(vmcs.inner.get(VmcsGuestNW::Cr0), PAGING);
        assert_eq!(vmcs.inner.get(VmcsGuest64::Efer), EFER_LME | EFER_LMA);
        assert_eq!(
            vmcs.inner.get(VmcsControl32::EntryControls),
            u64::from(OTHER_ENTRY_CONTROLS | IA32E_MODE_GUEST)
        );

        // Now in 64-bit mode (CS.L = 1): turning paging off is refused and nothing is written.
        vmcs.inner.set(VmcsGuest32::CsAccessRights, 0xA09B);
        vmcs.writes.clear();
        assert_eq!(
            apply_cr0_write(&mut vmcs, PE_ONLY),
            Err(Cr0WriteError::Fault(Cr0WriteFault::PagingOffIn64BitMode))
        );
        assert!(vmcs.writes.is_empty());

        // A CR0 write that keeps PG writes only CR0.
        let outcome = apply_cr0_write(&mut vmcs, PAGING | (1 << 16)).unwrap();
        assert_eq!(outcome.change, PagingChange::None);
        assert_eq!(vmcs.written(), [VmcsGuestNW::Cr0 as u32]);

        // Failures are reported.
        vmcs.fail_on = Some(VmcsGuest64::Efer as u32);
        assert_eq!(
            apply_cr0_write(&mut vmcs, PAGING),
            Err(Cr0WriteError::Vmcs(VmcsError::Kernel(99)))
        );
    }

    /// A guest state that passes VM entry, built from its free choices.
    fn consistent_state() -> impl Strategy<Value = GuestPagingState> {
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(pe, pg, pae, lme, cs_long, cr0_rest, efer_rest)| {
                let pg = pg && pe;
                let lma = pg && lme && pae;
                let lme = lme && (!pg || lma);
                let cr0 = (cr0_rest & !(CR0_PE | CR0_PG))
                    | if pe { CR0_PE } else { 0 }
                    | if pg { CR0_PG } else { 0 };
                let cr4 = if pae { CR4_PAE } else { 0 } | if lma && cs_long { CR4_PCIDE } else { 0 };
                let efer = (efer_rest & !(EFER_LME | EFER_LMA))
                    | if lme { EFER_LME } else { 0 }
                    | if lma { EFER_LMA } else { 0 };
                GuestPagingState {
                    cr0,
                    cr4,
                    efer,
                    entry_controls: OTHER_ENTRY_CONTROLS | if lma { IA32E_MODE_GUEST } else { 0 },
                    cs_long,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// From a state VM entry accepts, any accepted CR0 write leads to one it accepts too.
        #[test]
        fn transitions_keep_vm_entry_consistency(before in consistent_state(), new_cr0 in any::<u64>()) {
            prop_assert!(vm_entry_accepts(before.cr0, before.cr4, before.efer, before.entry_controls));
            if let Ok(after) = cr0_write(&before, new_cr0) {
                prop_assert!(vm_entry_accepts(after.cr0, before.cr4, after.efer, after.entry_controls));
                prop_assert_eq!(after.efer & !EFER_LMA, before.efer & !EFER_LMA);
                prop_assert_eq!(after.entry_controls & !IA32E_MODE_GUEST, before.entry_controls & !IA32E_MODE_GUEST);
            }
        }

        /// Any state at all: no panic.
        #[test]
        fn cr0_write_never_panics(
            cr0 in any::<u64>(), cr4 in any::<u64>(), efer in any::<u64>(), entry_controls in any::<u32>(),
            cs_long in any::<bool>(), new_cr0 in any::<u64>(),
        ) {
            let _ = cr0_write(&GuestPagingState { cr0, cr4, efer, entry_controls, cs_long }, new_cr0);
        }
    }
}
