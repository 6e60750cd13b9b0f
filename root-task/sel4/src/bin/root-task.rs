//! The root task: creates every object from untyped memory, loads the three components into
//! address spaces of their own, gives each exactly the capabilities of [`sel4_system::layout`],
//! starts them, serves as their fault handler, drives the VMM server as its controller, and
//! judges the run (`SEL4-SYSTEM:` lines on the serial line; QEMU ends through port 0xF4).
#![no_std]
#![no_main]

use sel4::{
    BootInfo, CNode, CapData, CapRights, Endpoint, Error, IoPort, MessageInfo, Notification, ObjectType,
    Page, Tcb, Untyped, UserContext, VSpace, VmAttributes, init_thread,
};
use sel4_system::elf::{Elf, page_contents};
use sel4_system::layout::{
    self, CNODE_BITS, COMPONENT_PRIORITY, Component, IPC_BUFFER, MONITOR_PRIORITY, QEMU_EXIT_PORT,
    UART_DATA_PORT, UART_STATUS_PORT, VMM_READY_BADGE, dm_badge, slot,
};
use sel4_system::report::{DeviceModelStatistics, MAX_REPORT, Report};
use sel4_system::runtime::MARKER;
use sel4_system::{ipc, main, println};
use vmm_protocol::{ErrorCode, Response};
#[cfg(not(sel4_config_vtx))]
use vmm_server::composition::FixedGuestImage;
use vmm_server::composition::{badge, boot_sequence};
use vmm_server::model::StartState;

main!("root-task", compose);

macro_rules! component_image {
    ($name:literal) => {
        include_bytes!(concat!(
            env!(
                "SEL4_COMPONENTS_DIR",
                "built by `cargo xtask`, which names the component images' directory in SEL4_COMPONENTS_DIR"
            ),
            "/",
            $name
        ))
    };
}

static DEVICE_MODEL_IMAGE: &[u8] = component_image!("device-model");
static MONITOR_IMAGE: &[u8] = component_image!("monitor");
static VMM_SERVER_IMAGE: &[u8] = component_image!("vmm-server");
/// The guest the VMM server plays: the root task reads its start state for the boot requests.
#[cfg(not(sel4_config_vtx))]
static GUEST_IMAGE: &[u8] = include_bytes!(env!(
    "SEL4_GUEST_IMAGE",
    "built by `cargo xtask`, which names the guest image in SEL4_GUEST_IMAGE"
));

const PAGE_SIZE: u64 = 4096;
/// Where the root task maps a frame for a moment to fill it (its own address space; away from
/// its image so the kernel's paging structures are not in the way).
const SCRATCH: u64 = 0x80_0000_0000;
/// Capability-pointer depth in the root task's CSpace (a full word).
const ROOT_DEPTH: u8 = 64;
/// Rights of every capability a client calls through: in seL4 5.0 `Call` needs the grant right,
/// without it the kernel makes no reply capability and leaves the caller inactive (the same
/// for the fault endpoint: the kernel's fault IPC is a call).
const CALL_RIGHTS: CapRights = CapRights {
    grant: true,
    read: false,
    write: true,
};

fn image_of(component: Component) -> &'static [u8] {
    match component {
        Component::DeviceModel => DEVICE_MODEL_IMAGE,
        Component::Monitor => MONITOR_IMAGE,
        Component::VmmServer => VMM_SERVER_IMAGE,
    }
}

/// Most untyped regions BootInfo lists (`CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS`).
const MAX_UNTYPED: usize = sel4::sys::MAX_BOOTINFO_UNTYPED_CAPS;

/// Hands out empty slots of the root CNode and kernel objects made from untyped memory.
///
/// It keeps each untyped region's watermark the way the kernel does (seL4 5.0
/// `decodeUntypedInvocation`: the next object starts at the free index rounded up to the
/// object's size), so every retype it asks for fits and none is refused.
struct Allocator {
    next_slot: u64,
    end_slot: u64,
    first_untyped: u64,
    /// Per untyped region: size in bits, device memory, bytes used.
    regions: heapless::Vec<(u8, bool, u64), MAX_UNTYPED>,
}

impl Allocator {
    fn new(bootinfo: &BootInfo) -> Self {
        let empty = bootinfo.empty();
        let mut regions = heapless::Vec::new();
        for desc in bootinfo.untyped_list() {
            // The list holds at most MAX_UNTYPED entries (it is that array).
            let _ = regions.push((desc.sizeBits, desc.isDevice != 0, 0));
        }
        Self {
            next_slot: empty.start,
            end_slot: empty.end,
            first_untyped: bootinfo.untyped().start,
            regions,
        }
    }

    fn slot(&mut self) -> u64 {
        assert!(self.next_slot < self.end_slot, "the root CNode is full");
        self.next_slot += 1;
        self.next_slot - 1
    }

    /// A new object of `object_type` (`size_bits`: slots of a CNode, in bits) in a new slot:
    /// `seL4_Untyped_Retype` on the first untyped region with room left.
    fn object(&mut self, object_type: ObjectType, size_bits: u64) -> u64 {
        let bits = object_type
            .size_bits()
            .unwrap_or(size_bits + sel4::sys::seL4_SlotBits);
        let size = 1u64 << bits;
        let slot = self.slot();
        for (index, (region_bits, device, used)) in self.regions.iter_mut().enumerate() {
            let start = used.next_multiple_of(size);
            if *device || start + size > 1u64 << *region_bits {
                continue;
            }
            let untyped = Untyped::from_bits(self.first_untyped + index as u64);
            if let Err(e) = untyped.retype(object_type, size_bits, root_cnode(), 0, 0, slot, 1) {
                panic!("retype {object_type:?} from untyped {}: {e:?}", untyped.bits());
            }
            *used = start + size;
            return slot;
        }
        panic!("no untyped memory left for {object_type:?}")
    }
}

fn root_cnode() -> CNode {
    init_thread::CNODE
}

/// An address space (a PML4) and the paging structures mapped into it so far.
struct AddressSpace {
    pml4: VSpace,
    /// (level, index of the region the table covers): 3 PDPT, 2 page directory, 1 page table.
    tables: heapless::Vec<(u8, u64), 32>,
}

impl AddressSpace {
    fn new(pml4: VSpace) -> Self {
        Self {
            pml4,
            tables: heapless::Vec::new(),
        }
    }

    /// Maps the paging structures `vaddr` needs that are not there yet.
    fn ensure_tables(&mut self, alloc: &mut Allocator, vaddr: u64) {
        for (level, shift) in [(3u8, 39u32), (2, 30), (1, 21)] {
            let key = (level, vaddr >> shift);
            if self.tables.contains(&key) {
                continue;
            }
            let base = vaddr & !((1u64 << shift) - 1);
            let mapped = match level {
                3 => {
                    let t = alloc.object(ObjectType::Pdpt, 0);
                    sel4::Pdpt::from_bits(t).map(self.pml4, base, VmAttributes::default())
                }
                2 => {
                    let t = alloc.object(ObjectType::PageDirectory, 0);
                    sel4::PageDirectory::from_bits(t).map(self.pml4, base, VmAttributes::default())
                }
                _ => {
                    let t = alloc.object(ObjectType::PageTable, 0);
                    sel4::PageTable::from_bits(t).map(self.pml4, base, VmAttributes::default())
                }
            };
            match mapped {
                // DeleteFirst: the kernel mapped one there for the root task's own image.
                Ok(()) | Err(Error::DeleteFirst) => {}
                Err(e) => panic!("mapping a level-{level} table at {vaddr:#x}: {e:?}"),
            }
            assert!(self.tables.push(key).is_ok(), "too many paging structures");
        }
    }

    /// `seL4_X86_Page_Map` of `frame` at `vaddr`.
    fn map(&mut self, alloc: &mut Allocator, frame: Page, vaddr: u64, writable: bool) {
        self.ensure_tables(alloc, vaddr);
        let rights = if writable {
            CapRights::READ_WRITE
        } else {
            CapRights::READ
        };
        if let Err(e) = frame.map(self.pml4, vaddr, rights, VmAttributes::default()) {
            panic!("mapping a frame at {vaddr:#x}: {e:?}");
        }
    }
}

/// Loads `image` into a new address space; returns it and the entry point.
fn load(alloc: &mut Allocator, scratch: &mut AddressSpace, image: &[u8]) -> (AddressSpace, u64) {
    let elf = match Elf::parse(image) {
        Ok(elf) => elf,
        Err(e) => panic!("component image: {e:?}"),
    };
    let pml4 = VSpace::from_bits(alloc.object(ObjectType::Pml4, 0));
    if let Err(e) = init_thread::ASID_POOL.assign(pml4) {
        panic!("ASID for a component: {e:?}");
    }
    let mut space = AddressSpace::new(pml4);
    for segment in elf.segments() {
        let segment = segment.unwrap_or_else(|e| panic!("component segment: {e:?}"));
        let first = segment.vaddr & !(PAGE_SIZE - 1);
        let end = segment.vaddr + segment.mem_size;
        for page in (first..end).step_by(PAGE_SIZE as usize) {
            let frame = Page::from_bits(alloc.object(ObjectType::Page, 0));
            // New frames are zero (the kernel clears untyped memory it retypes): only the
            // file bytes need copying, through a moment's mapping into the root task.
            if let Some((at, bytes)) = page_contents(&elf, &segment, page, PAGE_SIZE) {
                scratch.map(alloc, frame, SCRATCH, true);
                // SAFETY: the frame is mapped writable at SCRATCH for one page; `at + len`
                // stays within it (page_contents clips to the page).
                unsafe {
                    core::ptr::copy_nonoverlapping(bytes.as_ptr(), (SCRATCH as *mut u8).add(at), bytes.len());
                }
                if let Err(e) = frame.unmap() {
                    panic!("unmapping the scratch page: {e:?}");
                }
            }
            space.map(alloc, frame, page, segment.writable);
        }
    }
    (space, elf.entry)
}

/// The kernel objects the components share.
struct Shared {
    root_endpoint: Endpoint,
    vmm_endpoint: Endpoint,
    dm_endpoint: Endpoint,
    vmm_notification: Notification,
}

/// Copies (badge `None`) or mints the root task's capability `source` into `cnode` at `slot`.
fn give(cnode: CNode, slot: u64, source: u64, rights: CapRights, badge: Option<u64>) {
    let done = match badge {
        None => cnode.copy(slot, CNODE_BITS, root_cnode(), source, ROOT_DEPTH, rights),
        Some(badge) => cnode.mint(
            slot,
            CNODE_BITS,
            root_cnode(),
            source,
            ROOT_DEPTH,
            rights,
            CapData::badge(badge),
        ),
    };
    if let Err(e) = done {
        panic!("giving slot {slot}: {e:?}");
    }
}

/// Creates `component`: CSpace with its capabilities, address space with its image and IPC
/// buffer, TCB; then starts it.
fn spawn(alloc: &mut Allocator, scratch: &mut AddressSpace, shared: &Shared, component: Component) {
    let cnode = CNode::from_bits(alloc.object(ObjectType::CNode, u64::from(CNODE_BITS)));
    let call = CALL_RIGHTS;
    give(
        cnode,
        slot::FAULT,
        shared.root_endpoint.bits(),
        call,
        Some(layout::fault_badge(component)),
    );
    // Only the monitor reports with `Call` (to wait for ever after): the others send.
    let report_rights = match component {
        Component::Monitor => CALL_RIGHTS,
        Component::DeviceModel | Component::VmmServer => CapRights::WRITE,
    };
    give(
        cnode,
        slot::REPORT,
        shared.root_endpoint.bits(),
        report_rights,
        Some(layout::report_badge(component)),
    );
    match component {
        Component::VmmServer => {
            give(
                cnode,
                slot::SERVICE,
                shared.vmm_endpoint.bits(),
                CapRights::READ,
                None,
            );
            give(
                cnode,
                slot::DEVICE_MODEL,
                shared.dm_endpoint.bits(),
                call,
                Some(dm_badge::EXIT_RECORDS),
            );
        }
        Component::DeviceModel => {
            give(
                cnode,
                slot::SERVICE,
                shared.dm_endpoint.bits(),
                CapRights::READ,
                None,
            );
            give(
                cnode,
                slot::VMM,
                shared.vmm_endpoint.bits(),
                call,
                Some(badge::DEVICE_MODEL),
            );
            give(
                cnode,
                slot::VMM_NOTIFICATION,
                shared.vmm_notification.bits(),
                CapRights::WRITE,
                Some(VMM_READY_BADGE),
            );
            for (slot, port) in [
                (slot::UART_DATA, UART_DATA_PORT),
                (slot::UART_STATUS, UART_STATUS_PORT),
            ] {
                let issued = cnode.mint(
                    slot,
                    CNODE_BITS,
                    root_cnode(),
                    init_thread::IO_PORT.bits(),
                    ROOT_DEPTH,
                    CapRights::ALL,
                    CapData::io_port_range(port, port),
                );
                if let Err(e) = issued {
                    panic!("minting the UART's I/O port {port:#x}: {e:?}");
                }
            }
        }
        Component::Monitor => {
            give(
                cnode,
                slot::VMM,
                shared.vmm_endpoint.bits(),
                call,
                Some(badge::MONITOR),
            );
        }
    }

    let (mut space, entry) = load(alloc, scratch, image_of(component));
    let ipc_buffer = Page::from_bits(alloc.object(ObjectType::Page, 0));
    space.map(alloc, ipc_buffer, IPC_BUFFER, true);

    let tcb = Tcb::from_bits(alloc.object(ObjectType::Tcb, 0));
    // The guard makes a slot number the whole capability pointer (see `layout::CNODE_BITS`).
    let guard = CapData::guard(0, 64 - u64::from(CNODE_BITS));
    let priority = match component {
        Component::Monitor => MONITOR_PRIORITY,
        Component::DeviceModel | Component::VmmServer => COMPONENT_PRIORITY,
    };
    // Maximum controlled priority 0: no component holds a TCB capability to use it with.
    let configured = tcb.configure(
        slot::FAULT,
        priority,
        0,
        cnode,
        guard,
        space.pml4,
        CapData::NONE,
        IPC_BUFFER,
        ipc_buffer,
    );
    if let Err(e) = configured {
        panic!("configuring {}: {e:?}", component.name());
    }
    if component == Component::VmmServer
        && let Err(e) = tcb.bind_notification(shared.vmm_notification)
    {
        panic!("binding the VMM server's notification: {e:?}");
    }
    #[cfg(sel4_config_vtx)]
    if component == Component::VmmServer {
        vtx::give_vcpu_and_guest_ram(alloc, cnode, tcb, &mut space);
    }
    let registers = UserContext {
        rip: entry,
        ..UserContext::default()
    };
    if let Err(e) = tcb.write_registers(true, UserContext::WORDS as u64, &registers) {
        panic!("starting {}: {e:?}", component.name());
    }
    println!("started {} (entry {entry:#x})", component.name());
}

/// The VT-x kernel's extra objects: the VMM server's VCPU, the guest's EPT and RAM.
#[cfg(sel4_config_vtx)]
mod vtx {
    use sel4::{CNode, CapRights, ObjectType, Page, Tcb, VmAttributes};
    use sel4_system::layout::{GUEST_RAM, slot};
    use sel4_system::vtx_guest::RAM_SIZE;

    use super::{AddressSpace, Allocator, PAGE_SIZE, ROOT_DEPTH, give, root_cnode};

    /// Creates the VCPU and binds it to the VMM server's thread (`seL4_X86_VCPU_SetTCB`),
    /// builds an EPT with guest RAM at guest-physical 0 and installs it
    /// (`seL4_TCB_SetEPTRoot`), maps the same frames into the VMM server at [`GUEST_RAM`] (a
    /// second capability to each: a frame capability holds one mapping), and gives the VMM
    /// server the VCPU capability. The EPT's capabilities stay with the root task.
    pub fn give_vcpu_and_guest_ram(alloc: &mut Allocator, cnode: CNode, tcb: Tcb, space: &mut AddressSpace) {
        let ept = sel4::EptPml4::from_bits(alloc.object(ObjectType::EptPml4, 0));
        if let Err(e) = sel4::init_thread::ASID_POOL.assign(ept) {
            panic!("ASID for the EPT: {e:?}");
        }
        let attributes = VmAttributes::default();
        let tables = [
            sel4::EptPdpt::from_bits(alloc.object(ObjectType::EptPdpt, 0)).map(ept, 0, attributes),
            sel4::EptPd::from_bits(alloc.object(ObjectType::EptPd, 0)).map(ept, 0, attributes),
            sel4::EptPt::from_bits(alloc.object(ObjectType::EptPt, 0)).map(ept, 0, attributes),
        ];
        for mapped in tables {
            if let Err(e) = mapped {
                panic!("EPT table at 0: {e:?}");
            }
        }
        for offset in (0..RAM_SIZE as u64).step_by(PAGE_SIZE as usize) {
            let frame = Page::from_bits(alloc.object(ObjectType::Page, 0));
            if let Err(e) = frame.map_ept(ept, offset, CapRights::READ_WRITE, attributes) {
                panic!("guest RAM at {offset:#x}: {e:?}");
            }
            let view = Page::from_bits(alloc.slot());
            if let Err(e) = root_cnode().copy(
                view.bits(),
                ROOT_DEPTH,
                root_cnode(),
                frame.bits(),
                ROOT_DEPTH,
                CapRights::ALL,
            ) {
                panic!("second capability to guest RAM: {e:?}");
            }
            space.map(alloc, view, GUEST_RAM + offset, true);
        }
        let vcpu = sel4::Vcpu::from_bits(alloc.object(ObjectType::Vcpu, 0));
        if let Err(e) = vcpu.set_tcb(tcb) {
            panic!("binding the VCPU: {e:?}");
        }
        if let Err(e) = tcb.set_ept_root(ept) {
            panic!("installing the EPT: {e:?}");
        }
        give(cnode, slot::VCPU, vcpu.bits(), CapRights::ALL, None);
    }
}

/// What the run produced, for the verdict.
#[derive(Default)]
struct Collected {
    device_model: Option<Report>,
    monitor: Option<Report>,
    guest: Option<Report>,
}

fn compose(bootinfo: u64) -> ! {
    // SAFETY: the kernel passes the BootInfo frame's address in rdi; it stays mapped for ever.
    let bootinfo = unsafe { BootInfo::from_ptr(bootinfo as *const sel4::sys::seL4_BootInfo) };
    // SAFETY: BootInfo names the initial thread's IPC buffer; this is the only thread.
    unsafe { sel4::set_ipc_buffer(&mut *bootinfo.ipc_buffer().cast::<sel4::IpcBuffer>()) };
    println!(
        "{} untyped regions, slots {}..{} free",
        bootinfo.untyped().end - bootinfo.untyped().start,
        bootinfo.empty().start,
        bootinfo.empty().end
    );
    let mut alloc = Allocator::new(&bootinfo);
    let mut scratch = AddressSpace::new(init_thread::VSPACE);
    let shared = Shared {
        root_endpoint: Endpoint::from_bits(alloc.object(ObjectType::Endpoint, 0)),
        vmm_endpoint: Endpoint::from_bits(alloc.object(ObjectType::Endpoint, 0)),
        dm_endpoint: Endpoint::from_bits(alloc.object(ObjectType::Endpoint, 0)),
        vmm_notification: Notification::from_bits(alloc.object(ObjectType::Notification, 0)),
    };
    // The root task's own badged capabilities: controller of the VMM server, statistics of
    // the device model, and QEMU's exit port.
    let controller = Endpoint::from_bits(alloc.slot());
    give_root(controller.bits(), shared.vmm_endpoint.bits(), badge::CONTROLLER);
    let dm_statistics = Endpoint::from_bits(alloc.slot());
    give_root(
        dm_statistics.bits(),
        shared.dm_endpoint.bits(),
        dm_badge::STATISTICS,
    );
    let exit_port = IoPort::from_bits(alloc.slot());
    if let Err(e) = root_cnode().mint(
        exit_port.bits(),
        ROOT_DEPTH,
        root_cnode(),
        init_thread::IO_PORT.bits(),
        ROOT_DEPTH,
        CapRights::ALL,
        CapData::io_port_range(QEMU_EXIT_PORT, QEMU_EXIT_PORT),
    ) {
        panic!("minting the exit port: {e:?}");
    }

    for component in Component::ALL {
        spawn(&mut alloc, &mut scratch, &shared, component);
    }
    println!("{} slots used", alloc.next_slot - bootinfo.empty().start);

    let collected = collect(&shared, controller);
    let verdict = judge(&collected, controller, dm_statistics);
    finish(exit_port, verdict)
}

fn give_root(dest: u64, source: u64, badge: u64) {
    if let Err(e) = root_cnode().mint(
        dest,
        ROOT_DEPTH,
        root_cnode(),
        source,
        ROOT_DEPTH,
        CALL_RIGHTS,
        CapData::badge(badge),
    ) {
        panic!("minting slot {dest}: {e:?}");
    }
}

/// Serves the root endpoint: reports and faults. Boots the guest once the device model and the
/// monitor have reported; returns when the guest has stopped (or failed).
fn collect(shared: &Shared, controller: Endpoint) -> Collected {
    let mut collected = Collected::default();
    let mut booted = false;
    loop {
        let (info, badge) = shared.root_endpoint.recv();
        let Some((component, is_fault)) = Component::from_badge(badge) else {
            println!("{MARKER} FAIL message with unknown badge {badge:#x}");
            return collected;
        };
        if is_fault {
            print_fault(component, info);
            return collected;
        }
        let mut buf = [0u8; MAX_REPORT];
        let report = ipc::read_payload(info, &mut buf)
            .ok()
            .and_then(|len| postcard::from_bytes::<Report>(&buf[..len]).ok());
        let Some(report) = report else {
            println!("{MARKER} FAIL unreadable report from {}", component.name());
            return collected;
        };
        println!("report from {}: {report:?}", component.name());
        let finished = matches!(report, Report::GuestStopped { .. } | Report::GuestFailed { .. });
        match component {
            Component::DeviceModel => collected.device_model = Some(report),
            Component::Monitor => collected.monitor = Some(report),
            Component::VmmServer => collected.guest = Some(report),
        }
        if finished {
            return collected;
        }
        if !booted && collected.device_model.is_some() && collected.monitor.is_some() {
            booted = true;
            if let Err(why) = boot(controller) {
                println!("{MARKER} FAIL boot: {why}");
                return collected;
            }
        }
    }
}

/// Where the guest starts and its CR0: from the guest image the model VCPU plays.
#[cfg(not(sel4_config_vtx))]
fn guest_start() -> Result<(StartState, u64), &'static str> {
    let image: FixedGuestImage =
        postcard::from_bytes(GUEST_IMAGE).map_err(|_| "the guest image does not decode")?;
    Ok((image.start, image.cr0))
}

/// Where the guest starts and its CR0: the VT-x guest's layout.
#[cfg(sel4_config_vtx)]
fn guest_start() -> Result<(StartState, u64), &'static str> {
    let start = StartState {
        rip: sel4_system::vtx_guest::LOAD_ADDRESS,
        rflags: 0x2,
    };
    Ok((start, sel4_system::vtx_guest::CR0))
}

/// Whether the monitor read the guest RIP it should have, before the controller's boot: on
/// the VT-x kernel the VMM server has written the guest's start (the monitor reads it through
/// the server, which must not have lost it); the model VCPU has not been given one yet.
#[cfg(sel4_config_vtx)]
fn expected_monitor_rip(rip: Option<u64>) -> bool {
    rip == Some(sel4_system::vtx_guest::LOAD_ADDRESS)
}

/// See the VT-x version.
#[cfg(not(sel4_config_vtx))]
fn expected_monitor_rip(rip: Option<u64>) -> bool {
    rip.is_some()
}

/// The controller's boot sequence over IPC.
fn boot(controller: Endpoint) -> Result<(), &'static str> {
    let (start, cr0) = guest_start()?;
    for step in boot_sequence(start, cr0) {
        match ipc::request(controller, &step.request) {
            Ok(response) if (step.accepted)(&response) => {}
            Ok(response) => {
                println!("{}: refused: {response:?}", step.name);
                return Err(step.name);
            }
            Err(e) => {
                println!("{}: {e:?}", step.name);
                return Err(step.name);
            }
        }
    }
    println!("guest started");
    Ok(())
}

fn print_fault(component: Component, info: MessageInfo) {
    let length = (info.length() as usize).min(8);
    let mut words = [0u64; 8];
    sel4::with_ipc_buffer(|buffer| words[..length].copy_from_slice(&buffer.msg_regs()[..length]));
    println!(
        "{MARKER} FAIL fault in {}: label {} (seL4_Fault tag), message {:x?}",
        component.name(),
        info.label(),
        &words[..length]
    );
}

/// Checks everything the run must show; prints the facts and returns whether all held.
fn judge(collected: &Collected, controller: Endpoint, dm_statistics: Endpoint) -> bool {
    let mut pass = true;
    let mut check = |ok: bool, what: core::fmt::Arguments<'_>| {
        println!("{MARKER} {} {what}", if ok { "ok" } else { "FAIL" });
        pass &= ok;
    };
    match &collected.device_model {
        Some(Report::DeviceModelReady {
            hello,
            forbidden_request,
            never_granted_slot,
        }) => {
            check(*hello, format_args!("device-model hello"));
            check(
                *forbidden_request == Some(ErrorCode::Forbidden),
                format_args!("device-model forbidden-request {forbidden_request:?}"),
            );
            let invalid = sel4::sys::seL4_InvalidCapability;
            check(
                *never_granted_slot == Some(invalid),
                format_args!(
                    "device-model never-granted-slot kernel-error {never_granted_slot:?} (InvalidCapability = {invalid})"
                ),
            );
        }
        other => check(false, format_args!("device-model report {other:?}")),
    }
    match &collected.monitor {
        Some(Report::Monitor { rip, write }) => {
            check(
                expected_monitor_rip(*rip),
                format_args!("monitor read guest-rip {rip:?}"),
            );
            check(
                *write == Some(ErrorCode::Forbidden),
                format_args!("monitor write refused {write:?}"),
            );
        }
        other => check(false, format_args!("monitor report {other:?}")),
    }
    let Some(Report::GuestStopped {
        status,
        exits,
        records,
        replies,
        notifications,
    }) = &collected.guest
    else {
        check(false, format_args!("guest {:?}", collected.guest));
        return false;
    };
    let total: u64 = exits.iter().map(|(_, n)| n).sum();
    check(*status == 0, format_args!("guest exit-status {status}"));
    check(
        *notifications >= 1,
        format_args!("vmm notifications {notifications}"),
    );
    for (reason, count) in exits {
        println!("{MARKER} exits reason {reason} count {count}");
    }
    check(
        total == *records && records == replies,
        format_args!("vmm exits {total} records-sent {records} replies-received {replies}"),
    );
    let mut answer = [0u8; MAX_REPORT];
    let dm: Option<DeviceModelStatistics> = ipc::call(dm_statistics, &[], &mut answer)
        .ok()
        .and_then(|len| postcard::from_bytes(&answer[..len]).ok());
    match dm {
        Some(dm) => check(
            dm.records == *records && dm.replies == *records && dm.malformed == 0,
            format_args!(
                "device-model records-received {} replies-sent {} malformed {} uart-bytes {}",
                dm.records, dm.replies, dm.malformed, dm.uart_bytes
            ),
        ),
        None => check(false, format_args!("device-model statistics")),
    }
    match ipc::request(controller, &vmm_protocol::Request::Statistics) {
        Ok(Response::Statistics(stats)) => {
            check(
                stats.exits == total,
                format_args!("vmm statistics exits {}", stats.exits),
            );
            println!(
                "{MARKER} vmm interrupts-raised {} events-injected {} requests {} forbidden {} malformed {}",
                stats.interrupts_raised,
                stats.events_injected,
                stats.requests,
                stats.forbidden,
                stats.malformed
            );
            for class in vmm_protocol::ExitClass::ALL {
                let exits = stats.exits_by_class[class.index()];
                let invocations = stats.kernel_invocations_by_class[class.index()];
                // Hundredths of an invocation per exit; classes without exits are left out.
                if let Some(per_exit) = (invocations * 100).checked_div(exits) {
                    println!(
                        "{MARKER} invocations class {class:?} exits {exits} kernel-invocations {invocations} per-exit {}.{:02}",
                        per_exit / 100,
                        per_exit % 100
                    );
                }
            }
        }
        other => check(false, format_args!("vmm statistics {other:?}")),
    }
    pass
}

/// Prints the verdict and ends QEMU through its exit port (QEMU exits with `value * 2 + 1`).
fn finish(exit_port: IoPort, pass: bool) -> ! {
    println!("{MARKER} {}", if pass { "PASS" } else { "FAIL" });
    let _ = exit_port.out8(QEMU_EXIT_PORT, if pass { 0 } else { 1 });
    // Not in QEMU (or the port did nothing): stop this thread; the components are blocked
    // in their receives and the machine idles.
    let suspended = init_thread::TCB.suspend();
    panic!("the root task could not suspend itself: {suspended:?}")
}
