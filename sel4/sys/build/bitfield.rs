//! Reads seL4's bitfield specification files (`.bf`, the input of the tree's `bitfield_gen.py`):
//! `base`, `block`s of `field`/`padding` entries listed from the most significant bit down, and
//! `tagged_union`s. Conditional lines are evaluated against the kernel configuration.

use crate::cpp::{Defines, run_conditionals};

/// A named bit range of a block, `offset` counted from bit 0 of the block's first word.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub offset: u32,
    pub size: u32,
    /// `field_high`: the field holds the high bits of a value (never used by the blocks we emit).
    pub high: bool,
}

/// A `block`: a structure of `size` bits made of `base`-bit words.
#[derive(Debug, Clone)]
pub struct Block {
    pub name: String,
    pub base: u32,
    pub size: u32,
    /// Fields in declaration order (most significant first), padding left out.
    pub fields: Vec<Field>,
}

impl Block {
    pub fn words(&self) -> u32 {
        self.size / self.base
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A `tagged_union NAME TAGFIELD { tag BLOCK VALUE ... }`.
#[derive(Debug, Clone)]
pub struct Union {
    pub name: String,
    pub tag_field: String,
    pub tags: Vec<(String, u64)>,
}

#[derive(Debug, Default)]
pub struct BfFile {
    pub blocks: Vec<Block>,
    pub unions: Vec<Union>,
}

impl BfFile {
    pub fn block(&self, name: &str) -> Option<&Block> {
        self.blocks.iter().find(|b| b.name == name)
    }
}

pub fn parse(text: &str, defs: &mut Defines) -> Result<BfFile, String> {
    // `--` starts a comment; it is removed first because comments contain apostrophes.
    let uncommented: String = text
        .lines()
        .map(|l| match l.find("--") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let active = run_conditionals(&uncommented, defs)?;
    let toks = split(&active.body);
    let mut p = Parser { toks: &toks, pos: 0 };
    let mut file = BfFile::default();
    let mut base = 0u32;
    while let Some(word) = p.next() {
        match word {
            "base" => {
                base = p.number()?;
                if p.peek() == Some("(") {
                    p.skip_group()?;
                }
            }
            "block" => {
                let name = p.ident()?;
                if p.peek() == Some("(") {
                    p.skip_group()?;
                }
                p.expect("{")?;
                let mut entries = Vec::new();
                loop {
                    match p.next() {
                        Some("}") => break,
                        Some("padding") => entries.push((None, p.number()?, false)),
                        Some(kind @ ("field" | "field_high")) => {
                            let name = p.ident()?;
                            entries.push((Some(name), p.number()?, kind == "field_high"));
                        }
                        other => return Err(format!("block {name}: unexpected {other:?}")),
                    }
                }
                if base == 0 {
                    return Err(format!("block {name} before any `base`"));
                }
                let size: u32 = entries.iter().map(|(_, s, _)| s).sum();
                if size % base != 0 {
                    return Err(format!(
                        "block {name}: {size} bits is not a whole number of words"
                    ));
                }
                let mut offset = size;
                let mut fields = Vec::new();
                for (name, bits, high) in entries {
                    offset -= bits;
                    if let Some(name) = name {
                        fields.push(Field {
                            name,
                            offset,
                            size: bits,
                            high,
                        });
                    }
                }
                file.blocks.push(Block {
                    name,
                    base,
                    size,
                    fields,
                });
            }
            "tagged_union" => {
                let name = p.ident()?;
                let tag_field = p.ident()?;
                p.expect("{")?;
                let mut tags = Vec::new();
                loop {
                    match p.next() {
                        Some("}") => break,
                        Some("tag") => {
                            let tag = p.ident()?;
                            tags.push((tag, u64::from(p.number()?)));
                        }
                        other => return Err(format!("tagged_union {name}: unexpected {other:?}")),
                    }
                }
                file.unions.push(Union {
                    name,
                    tag_field,
                    tags,
                });
            }
            other => return Err(format!("unexpected `{other}`")),
        }
    }
    Ok(file)
}

fn split(text: &str) -> Vec<String> {
    let mut toks = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_whitespace() || "{}(),".contains(c) {
            if !word.is_empty() {
                toks.push(std::mem::take(&mut word));
            }
            if !c.is_whitespace() {
                toks.push(c.to_string());
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        toks.push(word);
    }
    toks
}

struct Parser<'a> {
    toks: &'a [String],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let t = self.toks.get(self.pos)?;
        self.pos += 1;
        Some(t)
    }

    fn peek(&self) -> Option<&'a str> {
        self.toks.get(self.pos).map(String::as_str)
    }

    fn ident(&mut self) -> Result<String, String> {
        match self.next() {
            Some(t) if t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => Ok(t.to_string()),
            other => Err(format!("expected a name, found {other:?}")),
        }
    }

    fn number(&mut self) -> Result<u32, String> {
        let t = self.next().ok_or("expected a number")?;
        t.parse().map_err(|_| format!("expected a number, found `{t}`"))
    }

    fn expect(&mut self, what: &str) -> Result<(), String> {
        match self.next() {
            Some(t) if t == what => Ok(()),
            other => Err(format!("expected `{what}`, found {other:?}")),
        }
    }

    fn skip_group(&mut self) -> Result<(), String> {
        self.expect("(")?;
        loop {
            match self.next() {
                Some(")") => return Ok(()),
                Some(_) => {}
                None => return Err("unclosed `(`".into()),
            }
        }
    }
}

/// Parameter names that are Rust keywords get a trailing underscore.
fn ident(name: &str) -> String {
    if [
        "type", "in", "move", "ref", "fn", "mod", "use", "loop", "match", "impl", "self", "box",
    ]
    .contains(&name)
    {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

fn mask(bits: u32) -> String {
    if bits >= 64 {
        "!0".into()
    } else {
        format!("{:#x}", (1u128 << bits) - 1)
    }
}

fn check_emittable(block: &Block) -> Result<(), String> {
    if block.base != 64 {
        return Err(format!("block {}: only 64-bit words are supported", block.name));
    }
    if let Some(f) = block
        .fields
        .iter()
        .find(|f| f.high || (f.offset % 64) + f.size > 64)
    {
        return Err(format!(
            "block {}: field {} is a high field or straddles words",
            block.name, f.name
        ));
    }
    Ok(())
}

/// Statements OR-ing each field argument into `words`.
fn pack_fields(block: &Block, skip: Option<&str>) -> String {
    let mut s = String::new();
    for f in block.fields.iter().filter(|f| Some(f.name.as_str()) != skip) {
        s.push_str(&format!(
            "        words[{}] |= ({} & {}) << {};\n",
            f.offset / 64,
            ident(&f.name),
            mask(f.size),
            f.offset % 64
        ));
    }
    s
}

fn field_doc(f: &Field) -> String {
    format!(
        "bits {}..{} of word {}",
        f.offset % 64,
        f.offset % 64 + f.size,
        f.offset / 64
    )
}

fn getter(f: &Field, fn_name: &str) -> String {
    format!(
        "    /// Reads `{name}` ({doc}).\n    pub const fn {fn_name}(&self) -> seL4_Word {{\n        (self.words[{w}] >> {sh}) & {m}\n    }}\n\n",
        name = f.name,
        doc = field_doc(f),
        w = f.offset / 64,
        sh = f.offset % 64,
        m = mask(f.size)
    )
}

fn setter(f: &Field, fn_name: &str) -> String {
    format!(
        "    /// Writes `{name}` ({doc}); the value is masked to the field's width.\n    pub const fn {fn_name}(&mut self, value: seL4_Word) {{\n        self.words[{w}] = (self.words[{w}] & !({m} << {sh})) | ((value & {m}) << {sh});\n    }}\n\n",
        name = f.name,
        doc = field_doc(f),
        w = f.offset / 64,
        sh = f.offset % 64,
        m = mask(f.size)
    )
}

fn struct_decl(type_name: &str, words: u32, doc: &str) -> String {
    format!(
        "#[doc = {doc:?}]\n#[repr(C)]\n#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]\npub struct {type_name} {{\n    /// The raw words, as the kernel reads them.\n    pub words: [seL4_Word; {words}],\n}}\n\n"
    )
}

/// A plain block as a `<name>_t` structure with `new`, `get_<field>` and `set_<field>`.
pub fn generate_block(block: &Block, type_name: &str, source: &str) -> Result<String, String> {
    check_emittable(block)?;
    let doc = format!(
        "`{type_name}`: the `{}` block of `{source}` ({} bits).",
        block.name, block.size
    );
    let mut s = struct_decl(type_name, block.words(), &doc);
    s.push_str(&format!("#[allow(clippy::identity_op)]\nimpl {type_name} {{\n"));
    let args: Vec<String> = block
        .fields
        .iter()
        .map(|f| format!("{}: seL4_Word", ident(&f.name)))
        .collect();
    s.push_str("    /// Builds the value from its fields, each masked to its width.\n");
    s.push_str("    #[allow(clippy::too_many_arguments)]\n");
    s.push_str(&format!("    pub const fn new({}) -> Self {{\n", args.join(", ")));
    s.push_str(&format!("        let mut words = [0; {}];\n", block.words()));
    s.push_str(&pack_fields(block, None));
    s.push_str("        Self { words }\n    }\n\n");
    for f in &block.fields {
        s.push_str(&getter(f, &format!("get_{}", f.name)));
        s.push_str(&setter(f, &format!("set_{}", f.name)));
    }
    s.push_str("}\n\n");
    Ok(s)
}

/// A tagged union as a `<name>_t` structure with `<Block>_new` constructors (which set the tag),
/// `<Block>_get_<field>` readers, `get_<tag field>`, and one `<name>_<Block>` tag constant per
/// block.
pub fn generate_union(u: &Union, file: &BfFile, source: &str) -> Result<String, String> {
    let type_name = format!("{}_t", u.name);
    let mut blocks = Vec::new();
    for (tag, value) in &u.tags {
        let block = file
            .block(tag)
            .ok_or(format!("union {}: no block {tag}", u.name))?;
        check_emittable(block)?;
        blocks.push((block, *value));
    }
    let (first, _) = blocks.first().ok_or(format!("union {} has no tags", u.name))?;
    let tag_field = first
        .field(&u.tag_field)
        .ok_or(format!("union {}: no tag field", u.name))?
        .clone();
    for (b, _) in &blocks {
        let f = b
            .field(&u.tag_field)
            .ok_or(format!("block {}: no tag field", b.name))?;
        if (f.offset, f.size, b.size) != (tag_field.offset, tag_field.size, first.size) {
            return Err(format!(
                "union {}: blocks disagree on the tag or the size",
                u.name
            ));
        }
    }
    let doc = format!(
        "`{type_name}`: the tagged union `{}` of `{source}` ({} bits).",
        u.name, first.size
    );
    let mut s = struct_decl(&type_name, first.words(), &doc);
    s.push_str(&format!("#[allow(clippy::identity_op)]\nimpl {type_name} {{\n"));
    s.push_str(&getter(&tag_field, &format!("get_{}", u.tag_field)));
    for (b, value) in &blocks {
        let args: Vec<String> = b
            .fields
            .iter()
            .filter(|f| f.name != u.tag_field)
            .map(|f| format!("{}: seL4_Word", ident(&f.name)))
            .collect();
        s.push_str(&format!(
            "    /// Builds a `{}` value (tag {value}), each field masked to its width.\n",
            b.name
        ));
        s.push_str(&format!(
            "    pub const fn {}_new({}) -> Self {{\n",
            b.name,
            args.join(", ")
        ));
        s.push_str(&format!("        let mut words = [0; {}];\n", b.words()));
        s.push_str(&format!(
            "        words[{}] |= {value} << {};\n",
            tag_field.offset / 64,
            tag_field.offset % 64
        ));
        s.push_str(&pack_fields(b, Some(&u.tag_field)));
        s.push_str("        Self { words }\n    }\n\n");
        for f in b.fields.iter().filter(|f| f.name != u.tag_field) {
            s.push_str(&getter(f, &format!("{}_get_{}", b.name, f.name)));
        }
    }
    s.push_str("}\n\n");
    s.push_str(&generate_union_tags(u, source));
    Ok(s)
}

/// The tag values of a tagged union, as `<union>_<tag>` constants.
pub fn generate_union_tags(u: &Union, source: &str) -> String {
    let mut s = String::new();
    for (tag, value) in &u.tags {
        s.push_str(&format!(
            "/// `{}_{tag}`: tag of `{tag}` in the tagged union `{}` (`{source}`).\npub const {}_{tag}: seL4_Word = {value};\n",
            u.name, u.name, u.name
        ));
    }
    s.push('\n');
    s
}
