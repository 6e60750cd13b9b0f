# bare-pc: runs the vtx-hello guest on a plain PC (QEMU, no VMM), to check the guest itself.
#
# A multiboot kernel: QEMU loads it at 1 MiB (-kernel) and the flat guest binary as its one
# module (-initrd). It sets the machine up the way guest.S's header says the VMM's loader
# does (GDT at 0x0, page directory at 0x1000, guest at LOAD_ADDRESS, stack up to 0x4000, paging
# on, interrupts off), programs the PIC so that IRQ n arrives as vector 0x20 + n like the
# device model delivers it, and jumps to the guest. The guest's debug-exit write reaches
# QEMU's isa-debug-exit device, which ends QEMU with status (value << 1) | 1.
#
# LOAD_ADDRESS comes from the command line (as --defsym LOAD_ADDRESS=...).

        .intel_syntax noprefix
        .code32

        .set MULTIBOOT_MAGIC, 0x1BADB002
        .set MBI_MODS_ADDR, 24              # multiboot information: address of the module list
        .set GDT_ADDRESS, 0x0
        .set PAGE_DIRECTORY, 0x1000
        .set STACK_TOP, 0x4000
        .set PDE_RAM, 0x00000083            # 0-4 MiB: present, writable, 4 MiB page
        .set PDE_MMIO, 0xFEC00093           # 0xFEC00000: present, writable, uncached, 4 MiB
        .set CR4_PSE, 0x10
        .set CR0_PG, 0x80000000

        .text
        # The multiboot header must lie in the first 8 KiB of the file: first thing here.
        .balign 4
        .long MULTIBOOT_MAGIC, 0, -MULTIBOOT_MAGIC

        .globl _start
_start:
        # EBX: the multiboot information. The first module is the guest.
        mov esi, [ebx + MBI_MODS_ADDR]
        mov ebp, [esi]                      # module start
        mov edx, [esi + 4]
        sub edx, ebp                        # module length

        # The loader's GDT at 0x0, then reload every segment register from it.
        mov edi, GDT_ADDRESS
        lea esi, gdt
        mov ecx, gdt_end - gdt
        rep movsb
        lgdt [gdt_pointer]
        ljmp 0x08, offset segments_reloaded
segments_reloaded:
        mov ax, 0x10
        mov ds, ax
        mov es, ax
        mov fs, ax
        mov gs, ax
        mov ss, ax
        mov ax, 0x18
        ltr ax                              # marks the TSS busy, as the VMM's guest state has it

        # The guest at LOAD_ADDRESS.
        mov esi, ebp
        mov edi, LOAD_ADDRESS
        mov ecx, edx
        rep movsb

        # The page directory: identity, two 4 MiB pages (RAM and the MMIO probe's).
        mov edi, PAGE_DIRECTORY
        xor eax, eax
        mov ecx, 1024
        rep stosd
        mov dword ptr [PAGE_DIRECTORY + 0x000 * 4], PDE_RAM
        mov dword ptr [PAGE_DIRECTORY + 0x3FB * 4], PDE_MMIO
        mov eax, cr4
        or eax, CR4_PSE
        mov cr4, eax
        mov eax, PAGE_DIRECTORY
        mov cr3, eax
        mov eax, cr0
        or eax, CR0_PG
        mov cr0, eax

        # The master PIC: vectors 0x20-0x27, only IRQ 4 (the UART) unmasked; the slave masked.
        mov al, 0x11                        # ICW1: edge, cascade, ICW4 follows
        out 0x20, al
        mov al, 0x20                        # ICW2: vector base
        out 0x21, al
        mov al, 0x04                        # ICW3: slave on IRQ 2
        out 0x21, al
        mov al, 0x01                        # ICW4: 8086 mode
        out 0x21, al
        mov al, 0xEF                        # mask everything but IRQ 4
        out 0x21, al
        mov al, 0xFF
        out 0xA1, al

        # The guest's initial state: the stack, EFLAGS 0x2 (interrupts off), registers clear.
        mov esp, STACK_TOP
        push 0x2
        popfd
        xor eax, eax
        xor ebx, ebx
        xor ecx, ecx
        xor edx, edx
        xor esi, esi
        xor edi, edi
        xor ebp, ebp
        push 0x08
        push LOAD_ADDRESS
        retf

        .balign 8
gdt:
        .quad 0                             # null
        .quad 0x00CF9B000000FFFF            # 0x08: code, flat, 32-bit
        .quad 0x00CF93000000FFFF            # 0x10: data, flat
        .quad 0x0000890001000067            # 0x18: 32-bit TSS at 0x100, limit 0x67 (available)
gdt_end:
        .word 0                             # aligns the base below to 4 bytes
gdt_pointer:
        .word gdt_end - gdt - 1
        .long GDT_ADDRESS
