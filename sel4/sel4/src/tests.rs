//! Host tests: every typed invocation against a mock kernel that records what reaches the
//! `syscall` instruction (label, message words, extra capabilities) and answers as the kernel
//! would; the byte payload and message info as properties; error decoding.

extern crate std;

use std::boxed::Box;
use std::collections::VecDeque;
use std::string::ToString;
use std::sync::{Mutex, MutexGuard};
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;
use sel4_sys::host_mock::set_handler;
use sel4_sys::{self as sys, SyscallRegisters, seL4_IPCBuffer, seL4_Word};

use crate::*;

/// What one system call carried.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    sys: i64,
    cap: seL4_Word,
    info: MessageInfo,
    msg: Vec<seL4_Word>,
    caps: Vec<seL4_Word>,
}

/// What the mock kernel answers: the reply's label (error code) or raw info word, message
/// registers (0-3 in registers, the rest in the buffer) and badge.
#[derive(Debug, Clone, Default)]
struct Reply {
    info_word: Option<seL4_Word>,
    label: seL4_Word,
    mrs: Vec<seL4_Word>,
    badge: seL4_Word,
}

struct Mock {
    calls: Vec<Call>,
    replies: VecDeque<Reply>,
}

static MOCK: Mutex<Mock> = Mutex::new(Mock {
    calls: Vec::new(),
    replies: VecDeque::new(),
});
static KERNEL: Mutex<()> = Mutex::new(());

fn mock_kernel(sys: i64, regs: &mut SyscallRegisters, ipc: Option<&mut seL4_IPCBuffer>) {
    let mut mock = MOCK.lock().unwrap();
    let info = MessageInfo::from_word(regs.rsi);
    let mut call = Call {
        sys,
        cap: regs.rdi,
        info,
        msg: Vec::new(),
        caps: Vec::new(),
    };
    let reply = mock.replies.pop_front().unwrap_or_default();
    match ipc {
        Some(ipc) => {
            let mut msg = regs.mr.to_vec();
            msg.extend_from_slice(&ipc.msg[4..]);
            msg.truncate(info.length() as usize);
            call.msg = msg;
            call.caps = ipc.caps_or_badges[..info.extra_caps() as usize].to_vec();
            for (i, v) in reply.mrs.iter().enumerate() {
                match i {
                    0..4 => regs.mr[i] = *v,
                    _ => ipc.msg[i] = *v,
                }
            }
        }
        None => call.msg = regs.mr[..(info.length() as usize).min(4)].to_vec(),
    }
    regs.rsi = reply
        .info_word
        .unwrap_or(MessageInfo::new(reply.label, 0, 0, reply.mrs.len() as seL4_Word).word());
    regs.rdi = reply.badge;
    mock.calls.push(call);
}

/// Takes the kernel lock, registers a fresh IPC buffer and installs the mock kernel.
fn kernel() -> MutexGuard<'static, ()> {
    let guard = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    {
        let mut mock = MOCK.lock().unwrap();
        mock.calls.clear();
        mock.replies.clear();
    }
    // SAFETY: on the host the mock kernel is the only other user of the buffer, and it gets it
    // through the syscall layer.
    unsafe { set_ipc_buffer(Box::leak(Box::new(IpcBuffer::new()))) };
    set_handler(Some(mock_kernel));
    guard
}

fn queue(reply: Reply) {
    MOCK.lock().unwrap().replies.push_back(reply);
}

fn calls() -> Vec<Call> {
    std::mem::take(&mut MOCK.lock().unwrap().calls)
}

/// The one invocation made since the last check: its label, message words and extra caps.
fn invocation() -> (seL4_Word, seL4_Word, Vec<seL4_Word>, Vec<seL4_Word>) {
    let calls = calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let c = &calls[0];
    assert_eq!(c.sys, sys::seL4_SysCall, "invocations are Calls");
    (c.cap, c.info.label(), c.msg.clone(), c.caps.clone())
}

#[test]
fn caps_are_typed_addresses() {
    let ep = Endpoint::from_bits(0x42);
    assert_eq!(ep.bits(), 0x42);
    assert_eq!(std::format!("{ep:?}"), "Cap<Endpoint>(0x42)");
    let n: Notification = ep.cast();
    assert_eq!(n.bits(), 0x42);
    assert_eq!(ep.upcast(), Cap::<cap_type::Unknown>::from_bits(0x42));
    assert_eq!(Cap::<cap_type::Null>::NULL.bits(), 0);
    assert_eq!(init_thread::TCB.bits(), 1);
    assert_eq!(init_thread::CNODE.bits(), 2);
    assert_eq!(init_thread::VSPACE.bits(), 3);
    assert_eq!(init_thread::ASID_POOL.bits(), 6);
    assert_eq!(init_thread::IO_PORT.bits(), 7);
    assert_eq!(init_thread::IPC_BUFFER.bits(), 10);
}

#[test]
fn message_info_fields() {
    let info = MessageInfo::new(7, 1, 2, 9);
    assert_eq!(
        (
            info.label(),
            info.caps_unwrapped(),
            info.extra_caps(),
            info.length()
        ),
        (7, 1, 2, 9)
    );
    assert_eq!(info.word(), (7 << 12) | (1 << 9) | (2 << 7) | 9);
    assert_eq!(MessageInfo::from_word(info.word()), info);
    assert_eq!(MessageInfo::with_label(3, 4), MessageInfo::new(3, 0, 0, 4));
    // Masked to the field widths, never into the neighbours.
    assert_eq!(MessageInfo::new(MessageInfo::MAX_LABEL + 1, 0, 4, 128).word(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn message_info_round_trip(label in 0..=MessageInfo::MAX_LABEL, unwrapped in 0u64..8, extra in 0u64..4, len in 0u64..128) {
        let info = MessageInfo::new(label, unwrapped, extra, len);
        prop_assert_eq!((info.label(), info.caps_unwrapped(), info.extra_caps(), info.length()), (label, unwrapped, extra, len));
    }

    #[test]
    fn payload_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..=MAX_PAYLOAD_BYTES)) {
        let mut buf = Box::new(IpcBuffer::new());
        let words = buf.write_bytes(&bytes).unwrap();
        prop_assert_eq!(words as usize, 1 + bytes.len().div_ceil(8));
        let mut out = vec![0xAAu8; MAX_PAYLOAD_BYTES];
        let n = buf.read_bytes(MessageInfo::with_label(0, words), &mut out).unwrap();
        prop_assert_eq!(&out[..n], &bytes[..]);
        // One word short of the payload is refused.
        prop_assert_eq!(
            buf.read_bytes(MessageInfo::with_label(0, words - 1), &mut out),
            Err(PayloadError::Truncated { len: bytes.len(), words: words as usize - 1 })
        );
    }

    #[test]
    fn payload_read_never_panics(mr0 in any::<u64>(), fill in any::<u64>(), length in 0u64..128, cap in 0usize..1100) {
        let mut buf = Box::new(IpcBuffer::new());
        buf.msg_regs_mut().fill(fill);
        buf.msg_regs_mut()[0] = mr0;
        let mut out = vec![0u8; cap];
        if let Ok(n) = buf.read_bytes(MessageInfo::with_label(0, length), &mut out) {
            prop_assert!(n as u64 == mr0 && n <= MAX_PAYLOAD_BYTES && n <= cap);
            prop_assert!(n.div_ceil(8) < length as usize, "the payload needs 1 + ceil(n / 8) words");
        }
    }
}

#[test]
fn payload_edges() {
    let mut buf = Box::new(IpcBuffer::new());
    // Little-endian packing after the length word.
    assert_eq!(buf.write_bytes(&[1, 2, 3, 4, 5, 6, 7, 8, 9]), Ok(3));
    assert_eq!(&buf.msg_regs()[..3], &[9, 0x0807_0605_0403_0201, 9]);
    // Empty: only the length word.
    assert_eq!(buf.write_bytes(&[]), Ok(1));
    assert_eq!(buf.read_bytes(MessageInfo::with_label(0, 1), &mut []), Ok(0));
    // Maximum: every message register.
    assert_eq!(MAX_PAYLOAD_BYTES, 952);
    let max = [0x5Au8; MAX_PAYLOAD_BYTES];
    assert_eq!(buf.write_bytes(&max), Ok(120));
    let mut out = [0u8; MAX_PAYLOAD_BYTES];
    assert_eq!(
        buf.read_bytes(MessageInfo::with_label(0, 120), &mut out),
        Ok(MAX_PAYLOAD_BYTES)
    );
    assert_eq!(out, max);
    // Too long to write: refused, buffer untouched.
    let before = buf.msg_regs()[0];
    assert_eq!(
        buf.write_bytes(&[0; MAX_PAYLOAD_BYTES + 1]),
        Err(PayloadError::TooLong { len: 953, max: 952 })
    );
    assert_eq!(buf.msg_regs()[0], before);
    // Reading: destination too small, a length word beyond the maximum, an empty message.
    assert_eq!(
        buf.read_bytes(MessageInfo::with_label(0, 120), &mut [0; 10]),
        Err(PayloadError::BufferTooSmall {
            len: 952,
            capacity: 10
        })
    );
    buf.msg_regs_mut()[0] = 953;
    assert_eq!(
        buf.read_bytes(MessageInfo::with_label(0, 120), &mut out),
        Err(PayloadError::TooLong { len: 953, max: 952 })
    );
    assert_eq!(
        buf.read_bytes(MessageInfo::with_label(0, 0), &mut out),
        Err(PayloadError::Truncated { len: 0, words: 0 })
    );
    assert_eq!(
        PayloadError::TooLong { len: 953, max: 952 }.to_string(),
        "payload of 953 bytes exceeds the 952 that fit"
    );
}

#[test]
fn errors_decode_with_details() {
    assert_eq!(Error::decode(0, &[]), None);
    assert_eq!(Error::decode(1, &[2]), Some(Error::InvalidArgument { index: 2 }));
    assert_eq!(
        Error::decode(2, &[1]),
        Some(Error::InvalidCapability { index: 1 })
    );
    assert_eq!(Error::decode(3, &[]), Some(Error::IllegalOperation));
    assert_eq!(
        Error::decode(4, &[1, 5]),
        Some(Error::RangeError { min: 1, max: 5 })
    );
    assert_eq!(
        Error::decode(10, &[4096]),
        Some(Error::NotEnoughMemory { available: 4096 })
    );
    assert_eq!(
        Error::decode(6, &[1, 4, 3, 0x5, 2]),
        Some(Error::FailedLookup {
            source: true,
            failure: LookupFailure::GuardMismatch {
                bits_left: 3,
                guard_found: 5,
                bits_found: 2
            }
        })
    );
    assert_eq!(
        Error::decode(6, &[0, 2, 12]),
        Some(Error::FailedLookup {
            source: false,
            failure: LookupFailure::MissingCapability { bits_left: 12 }
        })
    );
    assert_eq!(Error::decode(99, &[]), Some(Error::Unknown(99)));
    // Missing detail words read as zero rather than failing.
    assert_eq!(Error::decode(4, &[]), Some(Error::RangeError { min: 0, max: 0 }));
    assert_eq!(
        Error::RangeError { min: 1, max: 5 }.to_string(),
        "argument out of range 0x1..=0x5"
    );
    assert_eq!(
        Error::decode(6, &[0, 3, 2, 4]).unwrap().to_string(),
        "destination capability lookup failed: depth mismatch: 2 bits left, the CNode resolves 4"
    );
}

proptest! {
    #[test]
    fn error_codes_round_trip(code in 1u64..64, mrs in proptest::collection::vec(any::<u64>(), 0..6)) {
        let e = Error::decode(code, &mrs).unwrap();
        prop_assert_eq!(e.code(), code);
        prop_assert!(!e.to_string().is_empty());
    }
}

#[test]
fn untyped_retype() {
    let _k = kernel();
    Untyped::from_bits(0x30)
        .retype(ObjectType::Endpoint, 0, init_thread::CNODE, 0, 0, 0x100, 2)
        .unwrap();
    let (cap, label, msg, caps) = invocation();
    assert_eq!((cap, label), (0x30, sys::UntypedRetype));
    assert_eq!(label, 1);
    // type, size bits, node index, node depth, node offset, count; the root CNode as extra cap.
    assert_eq!(msg, vec![2, 0, 0, 0, 0x100, 2]);
    assert_eq!(caps, vec![2]);
    assert_eq!(ObjectType::Page.into_word(), 8);
    assert_eq!(ObjectType::Page.size_bits(), Some(12));
    assert_eq!(ObjectType::CNode.size_bits(), None);

    queue(Reply {
        label: sys::seL4_NotEnoughMemory,
        mrs: vec![64],
        ..Default::default()
    });
    let err = Untyped::from_bits(0x30).retype(ObjectType::Tcb, 0, init_thread::CNODE, 0, 0, 0x100, 1);
    assert_eq!(err, Err(Error::NotEnoughMemory { available: 64 }));
    set_handler(None);
}

#[test]
fn cnode_operations() {
    let _k = kernel();
    let root = init_thread::CNODE;
    root.copy(0x200, 64, root, 0x10, 64, CapRights::READ).unwrap();
    let (cap, label, msg, caps) = invocation();
    assert_eq!(
        (cap, label, msg, caps),
        (2, sys::CNodeCopy, vec![0x200, 64, 0x10, 64, 2], vec![2])
    );
    assert_eq!(sys::CNodeCopy, 17);

    root.mint(0x201, 64, root, 0x11, 64, CapRights::ALL, CapData::badge(0xBEEF))
        .unwrap();
    let (_, label, msg, _) = invocation();
    assert_eq!(
        (label, msg),
        (sys::CNodeMint, vec![0x201, 64, 0x11, 64, 7, 0xBEEF])
    );

    root.mint(
        0x202,
        64,
        root,
        7,
        64,
        CapRights::ALL,
        CapData::io_port_range(0xF4, 0xF7),
    )
    .unwrap();
    let (_, _, msg, _) = invocation();
    assert_eq!(msg[5], 0x00F4_00F7);

    root.move_cap(0x203, 64, root, 0x12, 64).unwrap();
    assert_eq!(invocation().1, sys::CNodeMove);
    root.delete(0x203, 64).unwrap();
    let (_, label, msg, _) = invocation();
    assert_eq!((label, msg), (sys::CNodeDelete, vec![0x203, 64]));
    root.revoke(0x10, 64).unwrap();
    assert_eq!(invocation().1, sys::CNodeRevoke);

    queue(Reply {
        label: sys::seL4_DeleteFirst,
        ..Default::default()
    });
    assert_eq!(
        root.copy(0x200, 64, root, 0x10, 64, CapRights::READ),
        Err(Error::DeleteFirst)
    );
    assert_eq!(CapData::guard(0, 52).word(), (1 << 31) | (52 << 2));
    set_handler(None);
}

#[test]
fn tcb_operations() {
    let _k = kernel();
    let tcb = Tcb::from_bits(0x40);
    tcb.configure(
        0x9,
        200,
        255,
        init_thread::CNODE,
        CapData::guard(0, 52),
        init_thread::VSPACE,
        CapData::NONE,
        0x7000,
        Page::from_bits(0x41),
    )
    .unwrap();
    let (cap, label, msg, caps) = invocation();
    assert_eq!((cap, label), (0x40, sys::TCBConfigure));
    // fault endpoint, priorities (mcp << 8 | prio), CSpace data, VSpace data, buffer address.
    assert_eq!(
        msg,
        vec![0x9, (255 << 8) | 200, CapData::guard(0, 52).word(), 0, 0x7000]
    );
    assert_eq!(caps, vec![2, 3, 0x41]);

    let regs = UserContext {
        rip: 0x40_1000,
        rsp: 0x50_0000,
        rdi: 0x77,
        ..Default::default()
    };
    tcb.write_registers(true, 99, &regs).unwrap();
    let (_, label, msg, _) = invocation();
    assert_eq!(label, sys::TCBWriteRegisters);
    // resume flag | arch flags << 8, count (capped at the 19 registers), the registers in order.
    assert_eq!(&msg[..4], &[1, 19, 0x40_1000, 0x50_0000]);
    assert_eq!(msg.len(), 2 + 19);
    assert_eq!(msg[2 + 8], 0x77);

    // Only the `count` registers the kernel sent are kept.
    queue(Reply {
        mrs: (1..=19).collect(),
        ..Default::default()
    });
    let got = tcb.read_registers(false, 3).unwrap();
    assert_eq!(
        (got.rip, got.rsp, got.rflags, got.rax, got.tls_base),
        (1, 2, 3, 0, 0)
    );
    let (_, label, msg, _) = invocation();
    assert_eq!((label, msg), (sys::TCBReadRegisters, vec![0, 3]));

    tcb.set_priority(100).unwrap();
    assert_eq!(invocation().2, vec![100]);
    tcb.set_space(
        0,
        init_thread::CNODE,
        CapData::NONE,
        init_thread::VSPACE,
        CapData::NONE,
    )
    .unwrap();
    let (_, label, msg, caps) = invocation();
    assert_eq!((label, msg, caps), (sys::TCBSetSpace, vec![0, 0, 0], vec![2, 3]));
    tcb.resume().unwrap();
    assert_eq!(invocation().1, sys::TCBResume);
    tcb.suspend().unwrap();
    assert_eq!(invocation().1, sys::TCBSuspend);
    tcb.bind_notification(Notification::from_bits(0x50)).unwrap();
    let (_, label, _, caps) = invocation();
    assert_eq!((label, caps), (sys::TCBBindNotification, vec![0x50]));
    tcb.unbind_notification().unwrap();
    assert_eq!(invocation().1, sys::TCBUnbindNotification);
    set_handler(None);
}

#[test]
fn x86_memory_and_io_ports() {
    let _k = kernel();
    init_thread::ASID_CONTROL
        .make_pool(Untyped::from_bits(0x60), init_thread::CNODE, 0x61, 64)
        .unwrap();
    let (cap, label, msg, caps) = invocation();
    assert_eq!(
        (cap, label, msg, caps),
        (5, sys::X86ASIDControlMakePool, vec![0x61, 64], vec![0x60, 2])
    );

    init_thread::ASID_POOL.assign(VSpace::from_bits(0x62)).unwrap();
    let (cap, label, msg, caps) = invocation();
    assert_eq!(
        (cap, label, msg, caps),
        (6, sys::X86ASIDPoolAssign, vec![], vec![0x62])
    );

    PageTable::from_bits(0x63)
        .map(init_thread::VSPACE, 0x40_0000, VmAttributes::default())
        .unwrap();
    let (_, label, msg, caps) = invocation();
    assert_eq!(
        (label, msg, caps),
        (sys::X86PageTableMap, vec![0x40_0000, 0], vec![3])
    );
    PageDirectory::from_bits(0x64)
        .map(init_thread::VSPACE, 0x4000_0000, VmAttributes::WriteBack)
        .unwrap();
    assert_eq!(invocation().1, sys::X86PageDirectoryMap);
    Pdpt::from_bits(0x65)
        .map(init_thread::VSPACE, 0, VmAttributes::WriteBack)
        .unwrap();
    assert_eq!(invocation().1, sys::X86PDPTMap);

    let page = Page::from_bits(0x66);
    page.map(
        init_thread::VSPACE,
        0x1_0000,
        CapRights::READ_WRITE,
        VmAttributes::Uncacheable,
    )
    .unwrap();
    let (_, label, msg, caps) = invocation();
    // vaddr, rights, attributes; the VSpace as extra cap.
    assert_eq!(
        (label, msg, caps),
        (sys::X86PageMap, vec![0x1_0000, 3, 3], vec![3])
    );
    assert_eq!(sys::X86PageMap, 37);
    queue(Reply {
        mrs: vec![0x1234_5000],
        ..Default::default()
    });
    assert_eq!(page.get_address(), Ok(0x1234_5000));
    assert_eq!(invocation().1, sys::X86PageGetAddress);
    page.unmap().unwrap();
    assert_eq!(invocation().1, sys::X86PageUnmap);
    LargePage::from_bits(0x67)
        .map(
            init_thread::VSPACE,
            0x20_0000,
            CapRights::READ,
            VmAttributes::WriteBack,
        )
        .unwrap();
    assert_eq!(invocation().1, sys::X86PageMap);

    let io = init_thread::IO_PORT;
    queue(Reply {
        mrs: vec![0x1FF],
        ..Default::default()
    });
    assert_eq!(io.in8(0x3FD), Ok(0xFF));
    let (cap, label, msg, _) = invocation();
    assert_eq!((cap, label, msg), (7, sys::X86IOPortIn8, vec![0x3FD]));
    io.out8(0xF4, 0x31).unwrap();
    let (_, label, msg, _) = invocation();
    assert_eq!((label, msg), (sys::X86IOPortOut8, vec![0xF4, 0x31]));
    io.out32(0xCF8, 0x8000_0000).unwrap();
    assert_eq!(invocation().2, vec![0xCF8, 0x8000_0000]);
    queue(Reply {
        label: sys::seL4_IllegalOperation,
        ..Default::default()
    });
    assert_eq!(io.in16(0x60), Err(Error::IllegalOperation));
    set_handler(None);
}

#[cfg(sel4_config_vtx)]
#[test]
fn vtx_operations() {
    let _k = kernel();
    let vcpu = Vcpu::from_bits(0x80);
    let ept = EptPml4::from_bits(0x81);
    vcpu.set_tcb(init_thread::TCB).unwrap();
    let (cap, label, msg, caps) = invocation();
    assert_eq!((cap, label, msg, caps), (0x80, 54, vec![], vec![1]));

    queue(Reply {
        mrs: vec![0x8000_0031],
        ..Default::default()
    });
    assert_eq!(vcpu.read_vmcs(0x6800), Ok(0x8000_0031));
    assert_eq!(invocation().1, 55);
    // 5.0 answers WriteVMCS with the value written in MR0 (and a reply length of 0).
    queue(Reply {
        info_word: Some(0),
        mrs: vec![0x8000_0031],
        ..Default::default()
    });
    assert_eq!(vcpu.write_vmcs(0x6800, 0x8000_0011), Ok(0x8000_0031));
    let (_, label, msg, _) = invocation();
    assert_eq!((label, msg), (56, vec![0x6800, 0x8000_0011]));
    vcpu.enable_io_port(init_thread::IO_PORT, 0x60, 0x64).unwrap();
    let (_, label, msg, caps) = invocation();
    assert_eq!((label, msg, caps), (57, vec![0x60, 0x64], vec![7]));
    vcpu.disable_io_port(0x60, 0x64).unwrap();
    assert_eq!(invocation().1, 58);
    vcpu.write_registers(&VcpuContext {
        eax: 1,
        ebx: 2,
        ecx: 3,
        edx: 4,
        esi: 5,
        edi: 6,
        ebp: 7,
    })
    .unwrap();
    let (_, label, msg, _) = invocation();
    assert_eq!((label, msg), (59, vec![1, 2, 3, 4, 5, 6, 7]));

    init_thread::ASID_POOL.assign(ept).unwrap();
    assert_eq!(invocation().1, 44);
    EptPdpt::from_bits(0x82)
        .map(ept, 0, VmAttributes::WriteBack)
        .unwrap();
    let (_, label, msg, caps) = invocation();
    assert_eq!((label, msg, caps), (60, vec![0, 0], vec![0x81]));
    EptPd::from_bits(0x83)
        .map(ept, 0, VmAttributes::WriteBack)
        .unwrap();
    assert_eq!(invocation().1, 62);
    EptPt::from_bits(0x84)
        .map(ept, 0, VmAttributes::WriteBack)
        .unwrap();
    assert_eq!(invocation().1, 64);
    EptPt::from_bits(0x84).unmap().unwrap();
    assert_eq!(invocation().1, 65);
    Page::from_bits(0x85)
        .map_ept(ept, 0x3000, CapRights::READ_WRITE, VmAttributes::WriteBack)
        .unwrap();
    let (_, label, msg, caps) = invocation();
    assert_eq!((label, msg, caps), (42, vec![0x3000, 3, 0], vec![0x81]));
    init_thread::TCB.set_ept_root(ept).unwrap();
    let (_, label, _, caps) = invocation();
    assert_eq!((label, caps), (53, vec![0x81]));
    assert_eq!(ObjectType::Vcpu.into_word(), 12);
    assert_eq!(ObjectType::Vcpu.size_bits(), Some(14));
    assert_eq!(
        [
            ObjectType::EptPml4,
            ObjectType::EptPdpt,
            ObjectType::EptPd,
            ObjectType::EptPt
        ]
        .map(ObjectType::into_word),
        [13, 14, 15, 16]
    );
    set_handler(None);
}

#[cfg(sel4_config_vtx)]
#[test]
fn vm_enter_decodes_exits_and_notifications() {
    let _k = kernel();
    // An OUT to 0x3F8 (reason 30), as seen in Bochs: MR0-2 echo, MR3 reason, MR4.. the rest.
    let mrs: Vec<u64> = vec![
        0x2010,
        0x9600_61F2,
        0,
        30,
        0x03F8_0000,
        1,
        0xdead,
        0x2,
        0,
        0x1000,
        0x41,
        2,
        3,
        0x3F8,
        5,
        6,
        7,
    ];
    queue(Reply {
        info_word: Some(sys::SEL4_VMENTER_RESULT_FAULT),
        mrs,
        badge: 0,
        label: 0,
    });
    let exit = vm_enter(0x2010, 0x80, 0);
    let c = calls();
    assert_eq!(c[0].sys, -22);
    assert_eq!(MOCK.lock().unwrap().calls.len(), 0);
    assert_eq!(
        exit,
        VmEnterResult::Exit(VmExit {
            rip: 0x2010,
            primary_controls: 0x9600_61F2,
            entry_interruption_info: 0,
            reason: 30,
            qualification: 0x03F8_0000,
            instruction_length: 1,
            guest_physical_address: 0xdead,
            rflags: 2,
            interruptibility: 0,
            cr3: 0x1000,
            registers: VcpuContext {
                eax: 0x41,
                ebx: 2,
                ecx: 3,
                edx: 0x3F8,
                esi: 5,
                edi: 6,
                ebp: 7
            },
        })
    );
    // The guest state went in MR0-2 (registers r10, r8, r9).
    with_ipc_buffer(|b| assert_eq!(&b.msg_regs()[..3], &[0x2010, 0x9600_61F2, 0]));

    // A signalled bound notification: info 0, the badge in rdi, MR0-2 handed back.
    queue(Reply {
        info_word: Some(sys::SEL4_VMENTER_RESULT_NOTIF),
        mrs: vec![0x2011, 0x80, 0],
        badge: 0b100,
        label: 0,
    });
    assert_eq!(
        vm_enter(0x2011, 0x80, 0),
        VmEnterResult::Notification {
            badge: 0b100,
            rip: 0x2011,
            primary_controls: 0x80,
            entry_interruption_info: 0
        }
    );
    set_handler(None);
}

#[test]
fn endpoint_and_notification_syscalls() {
    let _k = kernel();
    let ep = Endpoint::from_bits(0x90);
    with_ipc_buffer(|b| b.write_bytes(b"hello, device model").unwrap());
    queue(Reply {
        label: 5,
        mrs: vec![3, u64::from_le_bytes(*b"ok!\0\0\0\0\0")],
        badge: 0,
        info_word: None,
    });
    let reply = ep.call(MessageInfo::with_label(1, 4));
    assert_eq!((reply.label(), reply.length()), (5, 2));
    let mut out = [0u8; 16];
    let n = with_ipc_buffer(|b| b.read_bytes(reply, &mut out)).unwrap();
    assert_eq!(&out[..n], b"ok!");
    let c = calls();
    assert_eq!(
        (c[0].sys, c[0].cap, c[0].info.label()),
        (sys::seL4_SysCall, 0x90, 1)
    );
    assert_eq!(c[0].msg[0], 19);

    queue(Reply {
        label: 2,
        mrs: vec![1, 2],
        badge: 0xB,
        info_word: None,
    });
    let (info, badge) = ep.recv();
    assert_eq!((info.label(), badge), (2, 0xB));
    assert_eq!(calls()[0].sys, sys::seL4_SysRecv);
    ep.send(MessageInfo::with_label(9, 0));
    ep.nb_send(MessageInfo::with_label(9, 0));
    let _ = ep.nb_recv();
    let _ = ep.reply_recv(MessageInfo::with_label(0, 1));
    reply_now();
    let sent: Vec<i64> = calls().iter().map(|c| c.sys).collect();
    assert_eq!(
        sent,
        vec![
            sys::seL4_SysSend,
            sys::seL4_SysNBSend,
            sys::seL4_SysNBRecv,
            sys::seL4_SysReplyRecv,
            sys::seL4_SysReply
        ]
    );

    let ntfn = Notification::from_bits(0x91);
    ntfn.signal();
    queue(Reply {
        badge: 0b11,
        ..Default::default()
    });
    assert_eq!(ntfn.wait(), 0b11);
    queue(Reply {
        badge: 0,
        ..Default::default()
    });
    assert_eq!(ntfn.poll(), 0);
    let c = calls();
    assert_eq!(
        c.iter().map(|c| (c.sys, c.cap)).collect::<Vec<_>>(),
        vec![
            (sys::seL4_SysSend, 0x91),
            (sys::seL4_SysRecv, 0x91),
            (sys::seL4_SysNBRecv, 0x91)
        ]
    );
    set_handler(None);
}

fn reply_now() {
    reply(MessageInfo::with_label(0, 0));
}

#[test]
fn ipc_buffer_is_lent_to_one_user_at_a_time() {
    let _k = kernel();
    let nested = std::panic::catch_unwind(|| with_ipc_buffer(|_| with_ipc_buffer(|_| ())));
    assert!(nested.is_err());
    // The guard is released even when the user panicked.
    with_ipc_buffer(|b| {
        b.set_receive_slot(init_thread::CNODE, 0x300, 64);
        assert_eq!(b.receive_slot(), (init_thread::CNODE, 0x300, 64));
    });
    set_handler(None);
}

#[test]
fn boot_info_accessors() {
    // SAFETY: seL4_BootInfo is plain data (the pointer may be null); all zeroes is a valid value.
    let mut raw: Box<sys::seL4_BootInfo> = Box::new(unsafe { core::mem::zeroed() });
    raw.empty = sys::seL4_SlotRegion {
        start: 0x20,
        end: 0x1000,
    };
    raw.untyped = sys::seL4_SlotRegion {
        start: 0x10,
        end: 0x13,
    };
    raw.initThreadCNodeSizeBits = 12;
    raw.untypedList[1] = sys::seL4_UntypedDesc {
        paddr: 0x10_0000,
        sizeBits: 20,
        isDevice: 0,
        padding1: 0,
        padding2: 0,
    };
    let ptr: *const sys::seL4_BootInfo = Box::leak(raw);
    // SAFETY: `ptr` is a leaked, never-modified boot information.
    let bi = unsafe { BootInfo::from_ptr(ptr) };
    assert_eq!(bi.empty(), 0x20..0x1000);
    assert_eq!(bi.untyped(), 0x10..0x13);
    assert_eq!(bi.untyped_list().len(), 3);
    assert_eq!({ bi.untyped_list()[1].paddr }, 0x10_0000);
    assert_eq!(bi.init_thread_cnode_size_bits(), 12);

    // A region claiming more untypeds than the list holds is clamped; an inverted one is empty.
    // SAFETY: as above.
    let mut raw: Box<sys::seL4_BootInfo> = Box::new(unsafe { core::mem::zeroed() });
    raw.untyped = sys::seL4_SlotRegion {
        start: 0,
        end: 100_000,
    };
    raw.empty = sys::seL4_SlotRegion { start: 9, end: 3 };
    let ptr: *const sys::seL4_BootInfo = Box::leak(raw);
    // SAFETY: as above.
    let bi = unsafe { BootInfo::from_ptr(ptr) };
    assert_eq!(bi.untyped_list().len(), sys::MAX_BOOTINFO_UNTYPED_CAPS);
    assert!(bi.empty().is_empty());
}
