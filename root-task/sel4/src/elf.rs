//! The little of ELF64 the root task needs to load a component: the entry point and the
//! loadable segments (System V ABI, "ELF-64 Object File Format" 1.5, sections 3 and 6).

/// One `PT_LOAD` segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Virtual address of its first byte.
    pub vaddr: u64,
    /// Where its file bytes start in the image.
    pub offset: u64,
    /// Bytes taken from the file; the rest up to `mem_size` is zero.
    pub file_size: u64,
    /// Bytes in memory.
    pub mem_size: u64,
    /// Writable (`PF_W`).
    pub writable: bool,
}

/// Why an image cannot be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Not an ELF64 little-endian x86-64 executable.
    NotAnExecutable,
    /// A header or segment reaches outside the image.
    Truncated,
    /// A segment's file part is larger than its memory part, or its end overflows.
    BadSegment,
    /// Two segments share a page, or are not in address order.
    SharedPage,
}

/// A parsed image.
#[derive(Clone, Copy, Debug)]
pub struct Elf<'a> {
    bytes: &'a [u8],
    /// Entry point.
    pub entry: u64,
    phoff: u64,
    phentsize: u16,
    phnum: u16,
}

const PT_LOAD: u32 = 1;
const PF_W: u32 = 2;
const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;

fn read<const N: usize>(bytes: &[u8], at: u64) -> Result<[u8; N], ElfError> {
    let start = usize::try_from(at).map_err(|_| ElfError::Truncated)?;
    bytes
        .get(start..start.checked_add(N).ok_or(ElfError::Truncated)?)
        .and_then(|s| s.try_into().ok())
        .ok_or(ElfError::Truncated)
}

fn u16_at(bytes: &[u8], at: u64) -> Result<u16, ElfError> {
    read::<2>(bytes, at).map(u16::from_le_bytes)
}

fn u32_at(bytes: &[u8], at: u64) -> Result<u32, ElfError> {
    read::<4>(bytes, at).map(u32::from_le_bytes)
}

fn u64_at(bytes: &[u8], at: u64) -> Result<u64, ElfError> {
    read::<8>(bytes, at).map(u64::from_le_bytes)
}

impl<'a> Elf<'a> {
    /// Parses the ELF header of `bytes`.
    ///
    /// # Errors
    /// Not a little-endian ELF64 x86-64 executable, or truncated.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ElfError> {
        let ident: [u8; 16] = read(bytes, 0)?;
        // Magic, class 2 (64-bit), data 1 (little-endian).
        if ident[..4] != *b"\x7fELF" || ident[4] != 2 || ident[5] != 1 {
            return Err(ElfError::NotAnExecutable);
        }
        if u16_at(bytes, 16)? != ET_EXEC || u16_at(bytes, 18)? != EM_X86_64 {
            return Err(ElfError::NotAnExecutable);
        }
        let elf = Self {
            bytes,
            entry: u64_at(bytes, 24)?,
            phoff: u64_at(bytes, 32)?,
            phentsize: u16_at(bytes, 54)?,
            phnum: u16_at(bytes, 56)?,
        };
        if elf.phentsize < 56 {
            return Err(ElfError::NotAnExecutable);
        }
        // Every segment must parse, so that loading cannot fail half-way for a header; and no
        // two may share a page (the loader gives each page one frame and one set of rights).
        let mut previous_end: Option<u64> = None;
        for segment in elf.segments() {
            let segment = segment?;
            let first_page = segment.vaddr & !0xFFF;
            if previous_end.is_some_and(|end| first_page < end) {
                return Err(ElfError::SharedPage);
            }
            previous_end = Some((segment.vaddr + segment.mem_size).next_multiple_of(0x1000));
        }
        Ok(elf)
    }

    /// The `PT_LOAD` segments, in header order.
    pub fn segments(&self) -> impl Iterator<Item = Result<Segment, ElfError>> + '_ {
        (0..self.phnum).filter_map(move |i| {
            let Some(at) = self.phoff.checked_add(u64::from(i) * u64::from(self.phentsize)) else {
                return Some(Err(ElfError::Truncated));
            };
            let parse = || -> Result<Option<Segment>, ElfError> {
                if u32_at(self.bytes, at)? != PT_LOAD {
                    return Ok(None);
                }
                let segment = Segment {
                    writable: u32_at(self.bytes, at + 4)? & PF_W != 0,
                    offset: u64_at(self.bytes, at + 8)?,
                    vaddr: u64_at(self.bytes, at + 16)?,
                    file_size: u64_at(self.bytes, at + 32)?,
                    mem_size: u64_at(self.bytes, at + 40)?,
                };
                if segment.file_size > segment.mem_size
                    || segment.vaddr.checked_add(segment.mem_size).is_none()
                {
                    return Err(ElfError::BadSegment);
                }
                self.file_bytes(&segment)?;
                Ok(Some(segment))
            };
            parse().transpose()
        })
    }

    /// The file bytes of `segment`.
    ///
    /// # Errors
    /// They reach outside the image.
    pub fn file_bytes(&self, segment: &Segment) -> Result<&'a [u8], ElfError> {
        let start = usize::try_from(segment.offset).map_err(|_| ElfError::Truncated)?;
        let len = usize::try_from(segment.file_size).map_err(|_| ElfError::Truncated)?;
        self.bytes
            .get(start..start.checked_add(len).ok_or(ElfError::Truncated)?)
            .ok_or(ElfError::Truncated)
    }
}

/// The bytes page `page` (a page-aligned virtual address) must hold for `segment`: its
/// slice of the file bytes and where in the page it goes. `None` when the file part of the
/// segment does not touch the page (the page is all zero, or belongs to another segment).
pub fn page_contents<'a>(
    elf: &Elf<'a>,
    segment: &Segment,
    page: u64,
    page_size: u64,
) -> Option<(usize, &'a [u8])> {
    let file = elf.file_bytes(segment).ok()?;
    let file_end = segment.vaddr + segment.file_size;
    let start = page.max(segment.vaddr);
    let end = (page + page_size).min(file_end);
    if start >= end {
        return None;
    }
    let from = usize::try_from(start - segment.vaddr).ok()?;
    let to = usize::try_from(end - segment.vaddr).ok()?;
    Some((usize::try_from(start - page).ok()?, file.get(from..to)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal executable: header, two program headers (one PT_LOAD, one PT_NOTE), data.
    fn image(load_offset: u64, file_size: u64, mem_size: u64) -> Vec<u8> {
        let mut b = vec![0u8; 0x200];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        b[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        b[24..32].copy_from_slice(&0x40_1234u64.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&2u16.to_le_bytes());
        let ph = 64;
        b[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        b[ph + 4..ph + 8].copy_from_slice(&(PF_W | 4).to_le_bytes());
        b[ph + 8..ph + 16].copy_from_slice(&load_offset.to_le_bytes());
        b[ph + 16..ph + 24].copy_from_slice(&0x40_0F00u64.to_le_bytes());
        b[ph + 32..ph + 40].copy_from_slice(&file_size.to_le_bytes());
        b[ph + 40..ph + 48].copy_from_slice(&mem_size.to_le_bytes());
        b[ph + 56..ph + 60].copy_from_slice(&4u32.to_le_bytes()); // PT_NOTE
        for (i, byte) in b[0x100..0x200].iter_mut().enumerate() {
            *byte = i as u8;
        }
        b
    }

    #[test]
    fn loadable_segments_and_the_entry_are_read() {
        let bytes = image(0x100, 0x100, 0x2000);
        let elf = Elf::parse(&bytes).unwrap();
        assert_eq!(elf.entry, 0x40_1234);
        let segments: Vec<_> = elf.segments().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            segments,
            [Segment {
                vaddr: 0x40_0F00,
                offset: 0x100,
                file_size: 0x100,
                mem_size: 0x2000,
                writable: true
            }]
        );
    }

    #[test]
    fn a_segment_across_a_page_boundary_is_split_between_the_pages() {
        let bytes = image(0x100, 0x180, 0x2000);
        let bytes = [bytes, vec![0xEE; 0x80]].concat();
        let elf = Elf::parse(&bytes).unwrap();
        let segment = elf.segments().next().unwrap().unwrap();
        let (at, first) = page_contents(&elf, &segment, 0x40_0000, 0x1000).unwrap();
        assert_eq!((at, first.len(), first[0], first[0xFF]), (0xF00, 0x100, 0, 0xFF));
        let (at, second) = page_contents(&elf, &segment, 0x40_1000, 0x1000).unwrap();
        assert_eq!((at, second.len(), second[0]), (0, 0x80, 0xEE));
        // Past the file part: zero-filled memory only.
        assert_eq!(page_contents(&elf, &segment, 0x40_2000, 0x1000), None);
    }

    #[test]
    fn segments_sharing_a_page_are_refused() {
        let mut bytes = image(0x100, 0x100, 0x100);
        // Make the second program header a PT_LOAD in the same page as the first.
        let ph = 64 + 56;
        bytes[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        bytes[ph + 8..ph + 16].copy_from_slice(&0x100u64.to_le_bytes());
        bytes[ph + 16..ph + 24].copy_from_slice(&0x40_0F80u64.to_le_bytes());
        bytes[ph + 32..ph + 40].copy_from_slice(&0x10u64.to_le_bytes());
        bytes[ph + 40..ph + 48].copy_from_slice(&0x10u64.to_le_bytes());
        assert_eq!(Elf::parse(&bytes).unwrap_err(), ElfError::SharedPage);
        // The next page is fine.
        bytes[ph + 16..ph + 24].copy_from_slice(&0x40_1000u64.to_le_bytes());
        assert_eq!(Elf::parse(&bytes).unwrap().segments().count(), 2);
    }

    #[test]
    fn bad_images_are_refused_without_panicking() {
        assert_eq!(Elf::parse(b"").unwrap_err(), ElfError::Truncated);
        assert_eq!(Elf::parse(&[0u8; 64]).unwrap_err(), ElfError::NotAnExecutable);
        assert_eq!(
            Elf::parse(&image(0x100, 0x200, 0x100)).unwrap_err(),
            ElfError::BadSegment
        );
        assert_eq!(
            Elf::parse(&image(0x1F0, 0x100, 0x100)).unwrap_err(),
            ElfError::Truncated
        );
        let mut truncated = image(0x100, 0x100, 0x100);
        truncated[56..58].copy_from_slice(&40u16.to_le_bytes());
        assert_eq!(Elf::parse(&truncated).unwrap_err(), ElfError::Truncated);
        for len in 0..0x200 {
            let _ = Elf::parse(&image(0x100, 0x100, 0x200)[..len]);
        }
    }
}
