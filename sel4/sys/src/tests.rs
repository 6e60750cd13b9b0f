//! Tests of the generated bindings: values against those observed on real 5.0 kernels (the
//! project notes), the stubs' message layout against a mock kernel, and the shared-memory layouts
//! against libsel4's C definitions compiled by gcc.

extern crate std;

use std::string::{String, ToString};
use std::sync::{Mutex, MutexGuard};
use std::vec::Vec;
use std::{format, vec};

use proptest::prelude::*;

use crate::host_mock::set_handler;
use crate::*;

/// The mock kernel is process-wide: tests that use it take this lock.
static KERNEL: Mutex<()> = Mutex::new(());

fn kernel_lock() -> MutexGuard<'static, ()> {
    KERNEL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the last system call carried, as the mock kernel saw it.
#[derive(Debug, Clone, Default)]
struct Seen {
    sys: i64,
    regs: SyscallRegisters,
    msg: Vec<u64>,
    caps: [u64; 3],
}

static SEEN: Mutex<Option<Seen>> = Mutex::new(None);

fn seen() -> Seen {
    SEEN.lock().unwrap().clone().expect("no system call was made")
}

/// Records the call, then answers with label `reply_label`, reply MRs 0..3 = 100 + i in the
/// registers and MRs 4.. = 100 + i in the buffer, and badge 0x77.
fn recording_kernel(reply_label: u64) -> host_mock::Handler {
    fn record(sys: i64, regs: &mut SyscallRegisters, ipc: Option<&mut seL4_IPCBuffer>, label: u64) {
        let ipc = ipc.expect("the call lends the IPC buffer");
        let info = seL4_MessageInfo_t { words: [regs.rsi] };
        let mut msg: Vec<u64> = regs.mr.to_vec();
        msg.extend_from_slice(&ipc.msg[4..]);
        msg.truncate(info.get_length() as usize);
        *SEEN.lock().unwrap() = Some(Seen {
            sys,
            regs: *regs,
            msg,
            caps: ipc.caps_or_badges,
        });
        for i in 4..MSG_MAX_LENGTH {
            ipc.msg[i] = 100 + i as u64;
        }
        regs.mr = [100, 101, 102, 103];
        regs.rsi = seL4_MessageInfo_t::new(label, 0, 0, 20).words[0];
        regs.rdi = 0x77;
    }
    fn ok(sys: i64, regs: &mut SyscallRegisters, ipc: Option<&mut seL4_IPCBuffer>) {
        record(sys, regs, ipc, 0)
    }
    fn illegal(sys: i64, regs: &mut SyscallRegisters, ipc: Option<&mut seL4_IPCBuffer>) {
        record(sys, regs, ipc, seL4_IllegalOperation)
    }
    if reply_label == 0 { ok } else { illegal }
}

#[test]
fn syscall_numbers() {
    assert_eq!(
        [
            seL4_SysCall,
            seL4_SysReplyRecv,
            seL4_SysSend,
            seL4_SysNBSend,
            seL4_SysRecv,
            seL4_SysReply,
            seL4_SysYield
        ],
        [-1, -2, -3, -4, -5, -6, -7]
    );
    assert_eq!(seL4_SysNBRecv, -8);
}

#[cfg(sel4_config_debug_build)]
#[test]
fn debug_syscall_numbers() {
    assert_eq!((seL4_SysDebugPutChar, seL4_SysDebugHalt), (-9, -10));
}

/// Labels and object types that do not depend on VT-x.
#[test]
fn configuration_independent_values() {
    assert_eq!(UntypedRetype, 1);
    assert_eq!(TCBConfigure, 5);
    assert_eq!(CNodeCopy, 17);
    assert_eq!(X86PageMap, 37);
    assert_eq!(X86PageGetAddress, 41);
    assert_eq!(seL4_X86_4K, 8);
    assert_eq!(seL4_X86_PageDirectoryObject, 11);
    assert_eq!(seL4_X64_PML4Object, 6);
    assert_eq!(
        (
            seL4_PageBits,
            seL4_SlotBits,
            seL4_TCBBits,
            seL4_EndpointBits,
            seL4_NotificationBits
        ),
        (12, 5, 11, 4, 5)
    );
    assert_eq!(
        (seL4_MsgMaxLength, seL4_MsgExtraCapBits, seL4_MsgMaxExtraCaps),
        (120, 2, 3)
    );
    assert_eq!(
        (
            seL4_NoError,
            seL4_InvalidArgument,
            seL4_NotEnoughMemory,
            seL4_NumErrors
        ),
        (0, 1, 10, 11)
    );
    assert_eq!(
        (
            seL4_CapInitThreadTCB,
            seL4_CapInitThreadCNode,
            seL4_CapIOPort,
            seL4_CapDomain
        ),
        (1, 2, 7, 11)
    );
    assert_eq!(
        (
            seL4_Fault_NullFault,
            seL4_Fault_CapFault,
            seL4_Fault_UnknownSyscall
        ),
        (0, 1, 2)
    );
    assert_eq!((seL4_Fault_UserException, seL4_Fault_VMFault), (3, 5));
    assert_eq!(
        (
            seL4_CapFault_GuardMismatch_GuardFound,
            seL4_CapFault_GuardMismatch_BitsFound
        ),
        (5, 6)
    );
    assert_eq!(
        (
            seL4_VMFault_IP,
            seL4_VMFault_Addr,
            seL4_VMFault_FSR,
            seL4_VMFault_Length
        ),
        (0, 1, 3, 4)
    );
    assert_eq!(
        (seL4_UnknownSyscall_FaultIP, seL4_UnknownSyscall_Syscall),
        (15, 18)
    );
    assert_eq!((seL4_UserException_Number, seL4_UserException_Code), (3, 4));
    assert_eq!((seL4_MaxPrio, seL4_InvalidPrio), (255, -1));
}

#[cfg(sel4_config_vtx)]
#[test]
fn vtx_configuration_values() {
    // Labels observed by the VT-x experiment (notes/sel4-5.0-vtx-guest.md).
    assert_eq!(X86PageMapEPT, 42);
    assert_eq!(X86ASIDPoolAssign, 44);
    assert_eq!(TCBSetEPTRoot, 53);
    assert_eq!(
        [
            X86VCPUSetTCB,
            X86VCPUReadVMCS,
            X86VCPUWriteVMCS,
            X86VCPUEnableIOPort,
            X86VCPUDisableIOPort,
            X86VCPUWriteRegisters
        ],
        [54, 55, 56, 57, 58, 59]
    );
    assert_eq!(
        (
            X86EPTPDPTMap,
            X86EPTPDPTUnmap,
            X86EPTPDMap,
            X86EPTPTMap,
            X86EPTPTUnmap
        ),
        (60, 61, 62, 64, 65)
    );
    assert_eq!(nArchInvocationLabels, 66);
    assert_eq!(X86IOPortOut8, 48);
    assert_eq!(seL4_SysVMEnter, -22);
    assert_eq!(seL4_X86_VCPUObject, 12);
    assert_eq!(
        [
            seL4_X86_EPTPML4Object,
            seL4_X86_EPTPDPTObject,
            seL4_X86_EPTPDObject,
            seL4_X86_EPTPTObject
        ],
        [13, 14, 15, 16]
    );
    assert_eq!(seL4_ObjectTypeCount, 17);
    assert_eq!((seL4_X86_VCPUBits, seL4_X86_EPTPML4Bits), (14, 12));
    assert_eq!(
        (
            SEL4_VMENTER_FAULT_REASON_MR,
            SEL4_VMENTER_FAULT_EBP,
            SEL4_VMENTER_RESULT_FAULT_LEN
        ),
        (3, 16, 17)
    );
}

#[cfg(not(sel4_config_vtx))]
#[test]
fn non_vtx_configuration_values() {
    // Without VT-x there is no Page MapEPT (42 with VT-x): every later x86 label moves down one,
    // e.g. IOPort Out8 (used to end QEMU) is 47 here and 48 with VT-x.
    assert_eq!(X86ASIDControlMakePool, 42);
    assert_eq!(X86ASIDPoolAssign, 43);
    assert_eq!(X86IOPortIn8, 44);
    assert_eq!(X86IOPortOut8, 47);
    assert_eq!(X86IRQIssueIRQHandlerMSI, 51);
    assert_eq!(nArchInvocationLabels, 52);
    assert_eq!(seL4_ObjectTypeCount, 12);
    // libsel4 keeps out-of-range placeholders for the VT-x object types.
    assert_eq!(seL4_X86_VCPUObject, 0xfffffe);
    assert_eq!(seL4_X86_EPTPTObject, 0xfffffa);
}

#[test]
fn config_module() {
    assert_eq!(config::CONFIG_WORD_SIZE, 64);
    assert_eq!(
        MAX_BOOTINFO_UNTYPED_CAPS as u64,
        config::CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS
    );
}

#[test]
fn message_info_layout() {
    // label << 12 | capsUnwrapped << 9 | extraCaps << 7 | length
    let info = seL4_MessageInfo_t::new(0xABCDE, 5, 2, 0x55);
    assert_eq!(info.words[0], (0xABCDE << 12) | (5 << 9) | (2 << 7) | 0x55);
    // Out-of-range values are masked to the field, never spill into the neighbours.
    assert_eq!(seL4_MessageInfo_t::new(0, 0, 0, 0x80).words[0], 0);
    assert_eq!(seL4_MessageInfo_t::new(1 << 20, 0, 0, 0).words[0], 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn message_info_round_trip(label in 0u64..1 << 20, unwrapped in 0u64..8, extra in 0u64..4, length in 0u64..128) {
        let info = seL4_MessageInfo_t::new(label, unwrapped, extra, length);
        prop_assert_eq!(
            (info.get_label(), info.get_capsUnwrapped(), info.get_extraCaps(), info.get_length()),
            (label, unwrapped, extra, length)
        );
        prop_assert_eq!(info.words[0] >> 32, 0);
    }

    #[test]
    fn message_info_setters_touch_one_field(word in any::<u32>(), value in any::<u64>()) {
        let mut info = seL4_MessageInfo_t { words: [u64::from(word)] };
        let before = info;
        info.set_extraCaps(value);
        prop_assert_eq!(info.get_extraCaps(), value & 3);
        prop_assert_eq!(
            (info.get_label(), info.get_capsUnwrapped(), info.get_length()),
            (before.get_label(), before.get_capsUnwrapped(), before.get_length())
        );
    }
}

#[test]
fn cap_rights_and_cap_data() {
    // bit 0 write, bit 1 read, bit 2 grant
    assert_eq!(seL4_CapRights_t::new(1, 1, 1).words[0], 7);
    assert_eq!(seL4_CapRights_t::new(0, 1, 0).words[0], 2);
    assert_eq!(seL4_CapRights_t::new(0, 0, 1).words[0], 1);
    // Badge: tag 0 in bit 31, badge in bits 0..28. Guard: tag 1, guard bits 8..26, size 2..8.
    let badge = seL4_CapData_t::Badge_new(0x123);
    assert_eq!(badge.words[0], 0x123);
    assert_eq!(
        (badge.get_CapDataType(), badge.Badge_get_Badge()),
        (seL4_CapData_Badge, 0x123)
    );
    let guard = seL4_CapData_t::Guard_new(0, 52);
    assert_eq!(guard.words[0], (1 << 31) | (52 << 2));
    assert_eq!(guard.get_CapDataType(), seL4_CapData_Guard);
    assert_eq!(seL4_PrioProps_t::new(254, 100).words[0], (254 << 8) | 100);
    // An I/O port capability minted with this data covers first..=last.
    assert_eq!(io_port_capdata_t::new(0x3F8, 0x3FF).words[0], 0x03F8_03FF);
}

#[test]
fn stub_marshals_as_the_interface_says() {
    let _k = kernel_lock();
    set_handler(Some(recording_kernel(0)));
    let mut buf = seL4_IPCBuffer::zeroed();
    let rights = seL4_CapRights_t::new(0, 1, 1);
    let err = buf.seL4_CNode_Copy(2, 0x40, 12, 3, 0x41, 13, rights);
    assert_eq!(err, seL4_NoError);
    let s = seen();
    assert_eq!(s.sys, seL4_SysCall);
    assert_eq!(s.regs.rdi, 2, "the destination CNode is invoked");
    let info = seL4_MessageInfo_t { words: [s.regs.rsi] };
    assert_eq!(
        (info.get_label(), info.get_extraCaps(), info.get_length()),
        (CNodeCopy, 1, 5)
    );
    // dest index, dest depth, source index, source depth, rights; the source CNode as extra cap.
    assert_eq!(s.msg, vec![0x40, 12, 0x41, 13, 3]);
    assert_eq!(s.caps[0], 3);

    // Packed small parameters share a word: TCB WriteRegisters' resume flag and arch flags.
    let regs = seL4_UserContext {
        rip: 0x1000,
        rsp: 0x2000,
        r15: 15,
        tls_base: 0x99,
        ..Default::default()
    };
    assert_eq!(buf.seL4_TCB_WriteRegisters(1, 1, 0x5A, 19, &regs), seL4_NoError);
    let s = seen();
    assert_eq!(s.msg.len(), 2 + 19);
    assert_eq!(s.msg[0], 1 | (0x5A << 8));
    assert_eq!(&s.msg[1..4], &[19, 0x1000, 0x2000]);
    assert_eq!(s.msg[2 + 17], 15);
    assert_eq!(s.msg[2 + 18], 0x99);

    // TCB Configure in 5.0: fault endpoint, priority props, cspace data, vspace data, buffer; the
    // CSpace root, VSpace root and buffer frame as extra caps.
    let prio = seL4_PrioProps_t::new(255, 100);
    let data = seL4_CapData_t::Guard_new(0, 52);
    let none = seL4_CapData_t::Badge_new(0);
    assert_eq!(
        buf.seL4_TCB_Configure(1, 9, prio, 2, data, 3, none, 0x5000, 10),
        seL4_NoError
    );
    let s = seen();
    assert_eq!(s.msg, vec![9, prio.words[0], data.words[0], 0, 0x5000]);
    assert_eq!(s.caps, [2, 3, 10]);
    set_handler(None);
}

#[test]
fn stub_results_and_errors() {
    let _k = kernel_lock();
    set_handler(Some(recording_kernel(0)));
    let mut buf = seL4_IPCBuffer::zeroed();
    // The reply's MR0 is the result; In8 keeps 8 bits of it.
    let r = buf.seL4_X86_IOPort_In8(7, 0x3F8);
    assert_eq!(
        r,
        seL4_X86_IOPort_In8_t {
            error: 0,
            result: 100
        }
    );
    assert_eq!(seen().msg, vec![0x3F8]);
    let addr = buf.seL4_X86_Page_GetAddress(20);
    assert_eq!((addr.error, addr.paddr), (0, 100));
    // ReadRegisters fills the structure from MR0.. (registers, then the buffer).
    let mut regs = seL4_UserContext::default();
    assert_eq!(buf.seL4_TCB_ReadRegisters(1, 0, 0, 19, &mut regs), seL4_NoError);
    assert_eq!(
        (regs.rip, regs.rflags, regs.rbx, regs.tls_base),
        (100, 102, 104, 118)
    );

    // On an error the stub returns the error code and leaves the reply registers in the buffer
    // (the kernel's error details, as libsel4 does).
    set_handler(Some(recording_kernel(seL4_IllegalOperation)));
    let r = buf.seL4_X86_IOPort_In8(7, 0x60);
    assert_eq!(r.error, seL4_IllegalOperation);
    assert_eq!(r.result, 0);
    assert_eq!(&buf.msg[..5], &[100, 101, 102, 103, 104]);
    set_handler(None);
}

#[cfg(sel4_config_vtx)]
#[test]
fn vcpu_stubs() {
    let _k = kernel_lock();
    set_handler(Some(recording_kernel(0)));
    let mut buf = seL4_IPCBuffer::zeroed();
    let w = buf.seL4_X86_VCPU_WriteVMCS(30, 0x6800, 0x80000011);
    assert_eq!((w.error, w.written), (0, 100));
    assert_eq!(seen().msg, vec![0x6800, 0x80000011]);
    let ctx = seL4_VCPUContext {
        eax: 1,
        ebx: 2,
        ecx: 3,
        edx: 4,
        esi: 5,
        edi: 6,
        ebp: 7,
    };
    assert_eq!(buf.seL4_X86_VCPU_WriteRegisters(30, &ctx), seL4_NoError);
    assert_eq!(seen().msg, vec![1, 2, 3, 4, 5, 6, 7]);
    // EnableIOPort: the I/O port capability is an extra cap, first and last port are words.
    assert_eq!(buf.seL4_X86_VCPU_EnableIOPort(30, 7, 0x60, 0x64), seL4_NoError);
    let s = seen();
    assert_eq!((s.msg.clone(), s.caps[0]), (vec![0x60, 0x64], 7));
    // Page MapEPT: guest-physical address, rights, attributes; the EPT PML4 as extra cap.
    assert_eq!(
        buf.seL4_X86_Page_MapEPT(40, 41, 0x3000, seL4_CapRights_t::new(0, 1, 1), 0),
        seL4_NoError
    );
    let s = seen();
    assert_eq!((s.msg.clone(), s.caps[0]), (vec![0x3000, 3, 0], 41));
    let info = seL4_MessageInfo_t { words: [s.regs.rsi] };
    assert_eq!(info.get_label(), X86PageMapEPT);
    set_handler(None);
}

#[test]
fn message_syscalls_move_mrs_between_registers_and_buffer() {
    let _k = kernel_lock();
    set_handler(Some(recording_kernel(0)));
    let mut buf = seL4_IPCBuffer::zeroed();
    buf.msg[..6].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
    let reply = buf.seL4_Call(9, seL4_MessageInfo_t::new(42, 0, 0, 6));
    let s = seen();
    assert_eq!((s.sys, s.regs.rdi), (seL4_SysCall, 9));
    assert_eq!(s.msg, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(reply.get_length(), 20);
    assert_eq!(&buf.msg[..5], &[100, 101, 102, 103, 104]);

    let (info, badge) = buf.seL4_Recv(9);
    assert_eq!((seen().sys, info.get_length(), badge), (seL4_SysRecv, 20, 0x77));
    let (_, badge) = buf.seL4_ReplyRecv(9, seL4_MessageInfo_t::new(0, 0, 0, 1));
    assert_eq!((seen().sys, badge), (seL4_SysReplyRecv, 0x77));
    buf.seL4_Reply(seL4_MessageInfo_t::new(0, 0, 0, 0));
    assert_eq!(seen().sys, seL4_SysReply);
    buf.seL4_NBSend(5, seL4_MessageInfo_t::new(1, 0, 0, 0));
    assert_eq!((seen().sys, seen().regs.rdi), (seL4_SysNBSend, 5));
    set_handler(None);
}

#[cfg(sel4_config_vtx)]
#[test]
fn vm_enter_syscall() {
    let _k = kernel_lock();
    set_handler(Some(recording_kernel(0)));
    let mut buf = seL4_IPCBuffer::zeroed();
    buf.msg[..3].copy_from_slice(&[0x2000, 0x80, 0]);
    // The mock answers info word 20 << 0 | label 0 << 12: the raw rsi comes back unchanged.
    let (result, badge) = buf.seL4_VMEnter(0);
    let s = seen();
    assert_eq!(s.sys, -22);
    assert_eq!(&s.regs.mr[..3], &[0x2000, 0x80, 0]);
    assert_eq!((result, badge), (20, 0x77));
    assert_eq!(buf.msg[3], 103);
    set_handler(None);
}

/// The layouts shared with the kernel, compared with libsel4's C definitions: a small C program
/// built by gcc against the tree's headers prints every `sizeof`/`offsetof`.
#[test]
fn layouts_match_libsel4() {
    macro_rules! layouts {
        ($($ty:ident { $($field:ident),* $(,)? })*) => {
            vec![$((
                stringify!($ty),
                core::mem::size_of::<$ty>(),
                core::mem::align_of::<$ty>(),
                vec![$((stringify!($field), core::mem::offset_of!($ty, $field))),*],
            )),*]
        };
    }
    let rust = layouts! {
        seL4_IPCBuffer { tag, msg, userData, caps_or_badges, receiveCNode, receiveIndex, receiveDepth }
        seL4_SlotRegion { start, end }
        seL4_UntypedDesc { paddr, padding1, padding2, sizeBits, isDevice }
        seL4_BootInfo {
            extraLen, nodeID, numNodes, numIOPTLevels, ipcBuffer, empty, sharedFrames, userImageFrames,
            userImagePaging, ioSpaceCaps, extraBIPages, initThreadCNodeSizeBits, initThreadDomain, archInfo,
            untyped, untypedList,
        }
        seL4_BootInfoHeader { id, len }
        seL4_UserContext {
            rip, rsp, rflags, rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15, tls_base,
        }
        seL4_VCPUContext { eax, ebx, ecx, edx, esi, edi, ebp }
        seL4_MessageInfo_t { words }
    };
    let mut c = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include <sel4/macros.h>\n#include <sel4/sel4_arch/types.h>\n\
         #include <sel4/arch/types.h>\n\
         /* What bitfield_gen.py makes of the one-word seL4_MessageInfo block. */\n\
         typedef struct seL4_MessageInfo { seL4_Uint64 words[1]; } seL4_MessageInfo_t;\n\
         #include <sel4/constants.h>\n#include <sel4/shared_types.h>\n#include <sel4/bootinfo_types.h>\n\
         int main(void) {\n",
    );
    let mut expected = Vec::new();
    for (ty, size, align, fields) in &rust {
        c.push_str(&format!(
            "printf(\"{ty} size %zu align %zu\\n\", sizeof({ty}), _Alignof({ty}));\n"
        ));
        expected.push(format!("{ty} size {size} align {align}"));
        for (f, off) in fields {
            c.push_str(&format!("printf(\"{ty}.{f} %zu\\n\", offsetof({ty}, {f}));\n"));
            expected.push(format!("{ty}.{f} {off}"));
        }
    }
    c.push_str("return 0;\n}\n");

    let tree = std::path::Path::new(env!("SEL4_SYS_KERNEL_TREE"));
    let autoconf = std::path::Path::new(env!("SEL4_SYS_AUTOCONF"));
    let dir = std::env::temp_dir().join(format!("sel4-sys-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&src, &c).unwrap();
    let lib = tree.join("libsel4");
    let status = std::process::Command::new("gcc")
        .arg("-std=gnu11")
        .arg(format!("-I{}", autoconf.parent().unwrap().display()))
        .arg(format!("-I{}", lib.join("include").display()))
        .arg(format!("-I{}", lib.join("arch_include/x86").display()))
        .arg(format!("-I{}", lib.join("sel4_arch_include/x86_64").display()))
        .arg(format!("-I{}", lib.join("sel4_plat_include/pc99").display()))
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("gcc is needed for this test (it is also needed to build the kernel)");
    assert!(status.success(), "gcc failed on {}", src.display());
    let out = std::process::Command::new(&exe).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(ToString::to_string)
        .collect();
    assert_eq!(got, expected);
    // The derived facts, for the reader: 1024-byte IPC buffer aligned to its size, packed boot info.
    assert_eq!(
        (
            core::mem::size_of::<seL4_IPCBuffer>(),
            core::mem::align_of::<seL4_IPCBuffer>()
        ),
        (1024, 1024)
    );
    assert_eq!(core::mem::offset_of!(seL4_BootInfo, untypedList), 169);
    assert_eq!(core::mem::size_of::<seL4_UntypedDesc>(), 12);
}
