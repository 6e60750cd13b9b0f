//! The reset path: 16-bit real mode at the reset vector, 32-bit protected mode, 64-bit long
//! mode with identity-mapped page tables, then `oracle_main`.
//!
//! The processor starts at linear 0xFFFFFFF0 with CS.base = 0xFFFF0000 (SDM Vol. 3A, Section
//! 10.1.4), which Bochs backs with the top 16 bytes of the ROM image; the ROM is also visible
//! at 0xF0000, where the boot code runs. 32-bit code copies the Rust image from the ROM to
//! 1 MiB and zeroes `.bss`; then PAE paging with 2 MiB pages maps the first GiB 1:1 and EFER.LME
//! with CR0.PG activates IA-32e mode (SDM Vol. 3A, Section 10.8.5).

core::arch::global_asm!(
    r#"
    .section .reset, "ax"
    .code16
reset_vector:
    ljmp $0xf000, $0
    .balign 16, 0xf4

    .section .boot, "ax"
    .code16
    .globl boot16
boot16:
    cli
    cld
    lgdtl %cs:(boot_gdt_pointer - boot16)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $boot32

    .code32
boot32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movl $__rom_image, %esi
    movl $__image_start, %edi
    movl $__image_end, %ecx
    subl %edi, %ecx
    rep movsb
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb

    # One PML4 entry -> one PDPT entry -> 512 2-MiB pages: the first GiB, identity-mapped.
    movl $boot_pd, %edi
    movl $0x83, %eax
    movl $512, %ecx
1:
    movl %eax, (%edi)
    movl $0, 4(%edi)
    addl $0x200000, %eax
    addl $8, %edi
    loop 1b
    movl $boot_pd, %eax
    orl $3, %eax
    movl %eax, boot_pdpt
    movl $boot_pdpt, %eax
    orl $3, %eax
    movl %eax, boot_pml4

    # CR4: PAE, OSFXSR, OSXMMEXCPT (SSE is used by compiled code).
    movl $0x620, %eax
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx
    rdmsr
    orl $0x100, %eax
    wrmsr
    # CR0: PG, NE, MP, PE; EM and TS clear.
    movl $0x80000023, %eax
    movl %eax, %cr0
    ljmpl $0x18, $boot64

    .code64
boot64:
    movl $stack_top, %esp
    xorl %ebp, %ebp
    call oracle_main
2:
    cli
    hlt
    jmp 2b

    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF
    .quad 0x00CF92000000FFFF
    .quad 0x00AF9A000000FFFF
boot_gdt_end:
boot_gdt_pointer:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .bss.boot, "aw", @nobits
    .balign 4096
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4096
    .balign 16
stack_bottom:
    .skip 0x10000
stack_top:
    .text
"#,
    options(att_syntax)
);
