# vtx-hello: the first real guest of the VMM (issue #8). 32-bit protected mode, paging on.
#
# Every step makes the VMM handle one kind of exit, in this order:
#   1. the greeting, byte by byte, to the UART at 0x3F8 (IN from LSR, then OUT to THR)
#   2. CPUID leaf 0
#   3. RDMSR IA32_APIC_BASE
#   4. a read at guest-physical 0xFEC00000, which the EPT does not map (MMIO)
#   5. the UART's THR-empty interrupt: MCR and IER writes, STI, HLT, vector UART_VECTOR
#   6. the exit status to the debug-exit port 0xF4
# Values the VMM returns are stored in `results` (guest memory, never read back by the guest):
# only the interrupt changes what the guest does next (the status it reports).
#
# What the VMM's loader provides (seL4 5.0 forces CR0.PE and CR0.PG, so the guest cannot
# start in real mode and set this up itself). Guest-physical 0x0-0x3FFF is RAM, identity-paged:
#   0x0000  GDT: null; 0x08 code (0x00CF9B000000FFFF); 0x10 data (0x00CF93000000FFFF);
#           0x18 busy 32-bit TSS (base 0x100, limit 0x67)
#   0x1000  page directory (CR3 = 0x1000, CR4.PSE = 1), two 4 MiB pages:
#             PDE[0x000] = 0x00000083  RAM 0-4 MiB (present, writable, 4 MiB page)
#             PDE[0x3FB] = 0xFEC00093  0xFEC00000-0xFEFFFFFF (present, writable, cache
#                                      disabled, 4 MiB page): without it the read in step 4
#                                      would be a guest page fault, not an EPT violation
#   0x2000  this image (LOAD_ADDRESS; xtask links it there), entry at its first byte
#   0x3000  stack page (ESP = 0x4000)
# CS = 0x08, DS/ES/SS/FS/GS = 0x10, TR = 0x18; EFLAGS = 0x2 (interrupts off); IDTR empty
# (this guest loads its own). bare-pc.S sets a plain PC up the same way: xtask's tests run the
# guest there (QEMU, no VMM) to check the guest and this contract apart from the VMM.

        .intel_syntax noprefix
        .code32

        # The UART (COM1) and its registers.
        .set UART_BASE, 0x3F8
        .set UART_THR, UART_BASE + 0        # transmit holding register (write)
        .set UART_IER, UART_BASE + 1        # interrupt enable register
        .set UART_MCR, UART_BASE + 4        # modem control register
        .set UART_LSR, UART_BASE + 5        # line status register
        .set LSR_THR_EMPTY, 0x20            # LSR bit 5: THR can take a byte
        .set IER_THR_EMPTY, 0x02            # IER bit 1: interrupt when THR is empty
        .set MCR_OUT2, 0x08                 # MCR bit 3: on a PC, connects the UART's
                                            # interrupt output to the interrupt controller

        # The UART's interrupt line is ISA IRQ 4; the device model delivers line n as vector
        # 0x20 + n (a PIC programmed with base 0x20), so the UART interrupt arrives as 0x24.
        .set UART_VECTOR, 0x24

        .set DEBUG_EXIT_PORT, 0xF4          # a byte written here ends the guest with that status
        .set MSR_APIC_BASE, 0x1B            # IA32_APIC_BASE
        .set MMIO_PROBE, 0xFEC00000         # not mapped in the EPT: an EPT violation
        .set CODE_SELECTOR, 0x08            # the loader's GDT code segment
        .set INTERRUPT_GATE, 0x8E00         # present, DPL 0, 32-bit interrupt gate

        .text
        .globl _start
_start:
        # 1. The greeting. Poll LSR before each byte as a driver for a real 16550 must.
        lea esi, greeting
next_byte:
        movzx ebx, byte ptr [esi]
        test bl, bl
        jz greeting_done
        mov dx, UART_LSR
wait_thr_empty:
        in al, dx
        test al, LSR_THR_EMPTY
        jz wait_thr_empty
        mov dx, UART_THR
        mov al, bl
        out dx, al
        inc esi
        jmp next_byte
greeting_done:

        # 2. CPUID leaf 0: EAX highest leaf, EBX:EDX:ECX the vendor string.
        xor eax, eax
        cpuid
        mov [cpuid0_eax], eax
        mov [cpuid0_ebx], ebx
        mov [cpuid0_ecx], ecx
        mov [cpuid0_edx], edx

        # 3. RDMSR: every guest RDMSR exits on seL4 5.0 (one global MSR bitmap).
        mov ecx, MSR_APIC_BASE
        rdmsr
        mov [apic_base_low], eax
        mov [apic_base_high], edx

        # 4. MMIO read. The absolute-address form (opcode A1, 5 bytes) is what the VMM's
        # decoder must take apart: EPT exits carry no reliable instruction length.
        mov eax, dword ptr ds:[MMIO_PROBE]
        mov [mmio_value], eax

        # 5. One interrupt. The IDT gate is filled here: its offset is split in two halves.
        lea eax, uart_interrupt
        mov word ptr [idt + UART_VECTOR * 8], ax
        mov word ptr [idt + UART_VECTOR * 8 + 2], CODE_SELECTOR
        mov word ptr [idt + UART_VECTOR * 8 + 4], INTERRUPT_GATE
        shr eax, 16
        mov word ptr [idt + UART_VECTOR * 8 + 6], ax
        lidt [idt_pointer]
        # A PC UART's interrupt reaches the interrupt controller only with OUT2 set.
        mov dx, UART_MCR
        mov al, MCR_OUT2
        out dx, al
        # THR is empty, so enabling its interrupt raises the line at once; IF is still 0,
        # so the VMM must hold the interrupt until the guest can take it.
        mov dx, UART_IER
        mov al, IER_THR_EMPTY
        out dx, al
        # STI's one-instruction shadow covers HLT: the interrupt cannot slip in between, and
        # the HLT exit may report blocking by STI, which the VMM must clear when it moves RIP
        # past HLT before it injects.
        sti
        hlt

        # 6. Status 0 if the interrupt arrived, 1 if HLT returned without it.
        xor eax, eax
        cmp dword ptr [interrupts_taken], 0
        setz al
        mov dx, DEBUG_EXIT_PORT
        out dx, al
        # The VMM should not resume the guest after that: if it does, stay halted.
halt_forever:
        cli
        hlt
        jmp halt_forever

# The UART interrupt: count it and return with interrupts left off (IF cleared in the saved
# EFLAGS), so the guest takes exactly one whatever the device does with its line. Nothing is
# acknowledged: the device model's UART interrupt is an edge.
uart_interrupt:
        inc dword ptr [interrupts_taken]
        and dword ptr [esp + 8], ~0x200
        iret

greeting:
        .asciz "Hello from a VT-x guest on seL4\n"

        .balign 4
results:
cpuid0_eax:       .long 0
cpuid0_ebx:       .long 0
cpuid0_ecx:       .long 0
cpuid0_edx:       .long 0
apic_base_low:    .long 0
apic_base_high:   .long 0
mmio_value:       .long 0
interrupts_taken: .long 0

        .balign 2
        .word 0                             # aligns the base below to 4 bytes
idt_pointer:
        .word (UART_VECTOR + 1) * 8 - 1     # limit: gates 0..UART_VECTOR
        .long idt

        .balign 8
idt:
        # Only the UART's gate is ever filled: any other vector (an exception) finds a
        # not-present gate, escalates to a triple fault, and the VMM sees exit reason 2.
        .fill (UART_VECTOR + 1) * 8, 1, 0
