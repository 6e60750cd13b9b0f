//! Exceptions become reports: every vector 0–31 has a handler that records the vector, error
//! code and faulting RIP, then abandons the request being served and returns to the serving
//! loop (like longjmp: the frames skipped hold nothing that needs dropping). A fault outside
//! a guarded call prints a marker on port 0xE9 and ends the run.

use core::cell::UnsafeCell;

use oracle_proto::Fault;

// Vectors for which the processor pushes an error code (SDM Vol. 3A, Section 7.3, Table 7-1):
// #DF 8, #TS 10, #NP 11, #SS 12, #GP 13, #PF 14, #AC 17, #CP 21, #VC 29, #SX 30.
core::arch::global_asm!(
    r#"
    .macro fault_entry vector, has_error
    .text
fault_vector_\vector:
    .if \has_error == 0
    pushq $0
    .endif
    pushq $\vector
    jmp fault_common
    .section .rodata.fault_table, "a"
    .quad fault_vector_\vector
    .endm

    .section .rodata.fault_table, "a"
    .balign 8
    .globl fault_table
fault_table:
    fault_entry 0, 0
    fault_entry 1, 0
    fault_entry 2, 0
    fault_entry 3, 0
    fault_entry 4, 0
    fault_entry 5, 0
    fault_entry 6, 0
    fault_entry 7, 0
    fault_entry 8, 1
    fault_entry 9, 0
    fault_entry 10, 1
    fault_entry 11, 1
    fault_entry 12, 1
    fault_entry 13, 1
    fault_entry 14, 1
    fault_entry 15, 0
    fault_entry 16, 0
    fault_entry 17, 1
    fault_entry 18, 0
    fault_entry 19, 0
    fault_entry 20, 0
    fault_entry 21, 1
    fault_entry 22, 0
    fault_entry 23, 0
    fault_entry 24, 0
    fault_entry 25, 0
    fault_entry 26, 0
    fault_entry 27, 0
    fault_entry 28, 0
    fault_entry 29, 1
    fault_entry 30, 1
    fault_entry 31, 0

    .text
    # Stack: vector, error code, then the processor's frame (RIP, CS, RFLAGS, RSP, SS).
fault_common:
    movq (%rsp), %rax
    movq %rax, fault_record(%rip)
    movq 8(%rsp), %rax
    movq %rax, fault_record+8(%rip)
    movq 16(%rsp), %rax
    movq %rax, fault_record+16(%rip)
    movq catch_rsp(%rip), %rax
    testq %rax, %rax
    jz fault_unguarded
    movq %rax, %rsp
    movl $1, %eax
    jmp guarded_return
fault_unguarded:
    call oracle_unguarded_fault
3:
    cli
    hlt
    jmp 3b

    # u64 oracle_guarded(void (*f)(void *), void *context): 0 after f returns, 1 after a fault.
    .globl oracle_guarded
oracle_guarded:
    pushq %rbx
    pushq %rbp
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    movq %rsp, catch_rsp(%rip)
    movq %rdi, %rax
    movq %rsi, %rdi
    call *%rax
    xorl %eax, %eax
guarded_return:
    movq $0, catch_rsp(%rip)
    cld
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbp
    popq %rbx
    ret

    .section .bss.fault, "aw", @nobits
    .balign 8
catch_rsp:
    .skip 8
    .globl fault_record
fault_record:
    .skip 24
    .text
"#,
    options(att_syntax)
);

unsafe extern "C" {
    /// Handler addresses for vectors 0–31.
    static fault_table: [u64; 32];
    /// Vector, error code and RIP of the last fault.
    static fault_record: [u64; 3];
    fn oracle_guarded(f: extern "C" fn(*mut u8), context: *mut u8) -> u64;
}

/// 64-bit interrupt gates (SDM Vol. 3A, Section 7.14.1, Figure 7-8).
#[repr(C, align(16))]
struct Idt(UnsafeCell<[u128; 32]>);

// SAFETY: one processor, interrupts off; the IDT is written once before LIDT.
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new([0; 32]));

/// Code segment selector the boot GDT gives 64-bit code.
const CODE64: u16 = 0x18;

/// Builds the IDT from the handler table and loads it.
pub fn init() {
    // SAFETY: `fault_table` is a 32-entry table of addresses emitted by the assembly above.
    let handlers = unsafe { fault_table };
    let mut gates = [0u128; 32];
    for (gate, handler) in gates.iter_mut().zip(handlers) {
        let offset = u128::from(handler);
        *gate = (offset & 0xFFFF)
            | (u128::from(CODE64) << 16)
            | (0x8E << 40) // present, DPL 0, 64-bit interrupt gate
            | (((offset >> 16) & 0xFFFF) << 48)
            | (((offset >> 32) & 0xFFFF_FFFF) << 64);
    }
    // SAFETY: nothing else accesses the IDT yet.
    unsafe { *IDT.0.get() = gates };
    let pointer = DescriptorPointer {
        limit: (32 * 16 - 1) as u16,
        base: IDT.0.get() as u64,
    };
    // SAFETY: the pointer describes a valid, static IDT whose gates point at the handlers.
    unsafe { core::arch::asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack)) }
}

/// Operand of LGDT/LIDT.
#[repr(C, packed)]
pub struct DescriptorPointer {
    /// Size in bytes minus one.
    pub limit: u16,
    /// Linear address.
    pub base: u64,
}

/// Runs `f`; if it raises an exception, abandons it and returns the fault.
pub fn guarded<R, F: FnOnce() -> R>(f: F) -> Result<R, Fault> {
    struct Call<F, R> {
        f: Option<F>,
        result: Option<R>,
    }
    extern "C" fn trampoline<F: FnOnce() -> R, R>(context: *mut u8) {
        // SAFETY: `context` is the `Call` below, alive for the whole guarded call.
        let call = unsafe { &mut *context.cast::<Call<F, R>>() };
        if let Some(f) = call.f.take() {
            call.result = Some(f());
        }
    }
    let mut call = Call {
        f: Some(f),
        result: None,
    };
    // SAFETY: `oracle_guarded` calls the trampoline with the context; on a fault it returns
    // through the saved stack pointer, skipping frames that own nothing to drop.
    let faulted = unsafe { oracle_guarded(trampoline::<F, R>, (&raw mut call).cast()) };
    match (faulted, call.result) {
        (0, Some(result)) => Ok(result),
        _ => {
            // SAFETY: written by the fault handler before it returned here.
            let [vector, error_code, rip] = unsafe { fault_record };
            Err(Fault {
                vector: vector as u8,
                error_code,
                rip,
            })
        }
    }
}

/// Called by the assembly when a fault happens outside a guarded call.
#[unsafe(no_mangle)]
extern "C" fn oracle_unguarded_fault() -> ! {
    crate::port::debug("oracle-stub: FAULT outside a request\n");
    crate::port::shutdown()
}
