//! Reads the kernel's interface descriptions: the system-call list (`syscall.xml`) and the object
//! interfaces (`sel4.xml`, `sel4arch.xml`), and generates syscall numbers, invocation labels, the
//! register structures and the invocation stubs from them, following the tree's own generators
//! (`syscall_header_gen.py`, `invocation_header_gen.py`, `syscall_stub_gen.py`).

use std::fmt::Write as _;

use crate::cpp::Config;

/// Bits in a machine word (x86_64).
const WORD_BITS: u32 = 64;
/// Message registers passed in CPU registers on x86_64 (`MESSAGE_REGISTERS_FOR_ARCH`).
const REGISTER_MRS: usize = 4;
/// `seL4_MsgMaxLength`: an invocation needing more words cannot be sent.
const MAX_MESSAGE_WORDS: usize = 120;

/// How a parameter type travels, as `syscall_stub_gen.py`'s type table for x86_64 says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// An integer of `bits` bits, packed into the message words.
    Word { bits: u32 },
    /// A bitfield structure of one word (`.words[0]`).
    BitField,
    /// A capability: goes into the extra-capability slots (the first one is the invoked cap).
    Cap,
    /// A structure of `words` words, passed by reference.
    Struct { words: u32 },
}

/// The stub generator's type table for x86_64 (`init_data_types` + `init_arch_types["x86_64"]`).
fn kind_of(c_type: &str) -> Option<(Kind, &'static str)> {
    Some(match c_type {
        "int" => (Kind::Word { bits: 32 }, "i32"),
        "long" => (Kind::Word { bits: 64 }, "i64"),
        "seL4_Uint8" => (Kind::Word { bits: 8 }, "seL4_Uint8"),
        "seL4_Uint16" => (Kind::Word { bits: 16 }, "seL4_Uint16"),
        "seL4_Uint32" => (Kind::Word { bits: 32 }, "seL4_Uint32"),
        "seL4_Uint64" => (Kind::Word { bits: 64 }, "seL4_Uint64"),
        "seL4_Word" => (Kind::Word { bits: 64 }, "seL4_Word"),
        "seL4_Bool" => (Kind::Word { bits: 1 }, "seL4_Bool"),
        "seL4_X86_VMAttributes" => (Kind::Word { bits: 64 }, "seL4_X86_VMAttributes"),
        "seL4_CapData_t" => (Kind::BitField, "seL4_CapData_t"),
        "seL4_PrioProps_t" => (Kind::BitField, "seL4_PrioProps_t"),
        "seL4_CapRights_t" => (Kind::BitField, "seL4_CapRights_t"),
        "seL4_CPtr" => (Kind::Cap, "seL4_CPtr"),
        "seL4_CNode" => (Kind::Cap, "seL4_CNode"),
        "seL4_IRQHandler" => (Kind::Cap, "seL4_IRQHandler"),
        "seL4_IRQControl" => (Kind::Cap, "seL4_IRQControl"),
        "seL4_TCB" => (Kind::Cap, "seL4_TCB"),
        "seL4_Untyped" => (Kind::Cap, "seL4_Untyped"),
        "seL4_DomainSet" => (Kind::Cap, "seL4_DomainSet"),
        "seL4_X86_IOPort" => (Kind::Cap, "seL4_X86_IOPort"),
        "seL4_X86_ASIDControl" => (Kind::Cap, "seL4_X86_ASIDControl"),
        "seL4_X86_ASIDPool" => (Kind::Cap, "seL4_X86_ASIDPool"),
        "seL4_X86_IOSpace" => (Kind::Cap, "seL4_X86_IOSpace"),
        "seL4_X86_Page" => (Kind::Cap, "seL4_X86_Page"),
        "seL4_X64_PML4" => (Kind::Cap, "seL4_X64_PML4"),
        "seL4_X86_PDPT" => (Kind::Cap, "seL4_X86_PDPT"),
        "seL4_X86_PageDirectory" => (Kind::Cap, "seL4_X86_PageDirectory"),
        "seL4_X86_PageTable" => (Kind::Cap, "seL4_X86_PageTable"),
        "seL4_X86_IOPageTable" => (Kind::Cap, "seL4_X86_IOPageTable"),
        "seL4_X86_VCPU" => (Kind::Cap, "seL4_X86_VCPU"),
        "seL4_X86_EPTPML4" => (Kind::Cap, "seL4_X86_EPTPML4"),
        "seL4_X86_EPTPDPT" => (Kind::Cap, "seL4_X86_EPTPDPT"),
        "seL4_X86_EPTPD" => (Kind::Cap, "seL4_X86_EPTPD"),
        "seL4_X86_EPTPT" => (Kind::Cap, "seL4_X86_EPTPT"),
        "seL4_VCPUContext" => (Kind::Struct { words: 7 }, "seL4_VCPUContext"),
        "seL4_UserContext" => (Kind::Struct { words: 19 }, "seL4_UserContext"),
        _ => return None,
    })
}

impl Kind {
    fn bits(self) -> u32 {
        match self {
            Kind::Word { bits } => bits,
            Kind::BitField | Kind::Cap => WORD_BITS,
            Kind::Struct { words } => words * WORD_BITS,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub c_type: String,
    pub kind: Kind,
    pub rust_type: &'static str,
}

#[derive(Debug, Clone)]
pub struct Method {
    pub interface: String,
    pub name: String,
    pub id: String,
    pub inputs: Vec<Param>,
    pub outputs: Vec<Param>,
    pub brief: Option<String>,
    pub label: u64,
}

/// A `<struct>` of the interface XML: its members, one word each.
#[derive(Debug, Clone)]
pub struct Struct {
    pub name: String,
    pub members: Vec<String>,
}

/// The three interface files in the order the invocation-label enums chain them.
#[derive(Debug, Default)]
pub struct Interfaces {
    pub methods: Vec<Method>,
    pub structs: Vec<Struct>,
    /// `(name, value)` of `InvalidInvocation`, every label and the three `n...Labels` counts.
    pub labels: Vec<(String, u64)>,
}

/// Reads the generic, sel4_arch and arch interface files, in that order. Labels are numbered as
/// `invocation_header_gen.py` numbers them: one C enum per file, each continuing from the previous
/// file's count, the generic one starting after `InvalidInvocation` (0); a method whose
/// `condition` does not hold gets no number.
pub fn read_interfaces(files: &[(&str, String)], config: &Config) -> Result<Interfaces, String> {
    const COUNTS: [&str; 3] = [
        "nInvocationLabels",
        "nSeL4ArchInvocationLabels",
        "nArchInvocationLabels",
    ];
    let mut out = Interfaces::default();
    out.labels.push(("InvalidInvocation".into(), 0));
    let mut next = 1u64;
    for (index, (path, text)) in files.iter().enumerate() {
        let doc = roxmltree::Document::parse(text).map_err(|e| format!("{path}: {e}"))?;
        for s in doc.descendants().filter(|n| n.has_tag_name("struct")) {
            let members = s
                .children()
                .filter(|n| n.has_tag_name("member"))
                .map(|m| m.attribute("name").unwrap_or_default().to_string())
                .collect();
            out.structs.push(Struct {
                name: s.attribute("name").unwrap_or_default().into(),
                members,
            });
        }
        for interface in doc.descendants().filter(|n| n.has_tag_name("interface")) {
            let iname = interface
                .attribute("name")
                .ok_or(format!("{path}: interface without name"))?;
            for m in interface.children().filter(|n| n.has_tag_name("method")) {
                let id = m.attribute("id").ok_or(format!("{path}: method without id"))?;
                let condition = m.attribute("condition").unwrap_or("");
                if !config
                    .condition(condition)
                    .map_err(|e| format!("{path}: {id}: condition: {e}"))?
                {
                    continue;
                }
                let (service_kind, service_rust) =
                    kind_of(iname).ok_or(format!("{path}: unknown interface type {iname}"))?;
                let mut inputs = vec![Param {
                    name: "service".into(),
                    c_type: iname.into(),
                    kind: service_kind,
                    rust_type: service_rust,
                }];
                let mut outputs = Vec::new();
                for p in m.children().filter(|n| n.has_tag_name("param")) {
                    let name = p
                        .attribute("name")
                        .ok_or(format!("{path}: {id}: param without name"))?;
                    let c_type = p
                        .attribute("type")
                        .ok_or(format!("{path}: {id}: param without type"))?;
                    let (kind, rust_type) =
                        kind_of(c_type).ok_or(format!("{path}: {id}: unknown type {c_type}"))?;
                    let param = Param {
                        name: rust_ident(name),
                        c_type: c_type.into(),
                        kind,
                        rust_type,
                    };
                    match p.attribute("dir") {
                        Some("in") => inputs.push(param),
                        Some("out") => outputs.push(param),
                        other => return Err(format!("{path}: {id}: bad dir {other:?}")),
                    }
                }
                let brief = m
                    .children()
                    .find(|n| n.has_tag_name("brief"))
                    .map(|b| normalise_text(&element_text(b)))
                    .filter(|b| !b.is_empty());
                out.labels.push((id.to_string(), next));
                out.methods.push(Method {
                    interface: iname.into(),
                    name: m
                        .attribute("name")
                        .ok_or(format!("{path}: {id}: no name"))?
                        .into(),
                    id: id.into(),
                    inputs,
                    outputs,
                    brief,
                    label: next,
                });
                next += 1;
            }
        }
        out.labels.push((
            COUNTS.get(index).ok_or("too many interface files")?.to_string(),
            next,
        ));
    }
    Ok(out)
}

/// The text of an XML element, with `<texttt text="x"/>` and similar references rendered as `x`.
fn element_text(node: roxmltree::Node) -> String {
    let mut s = String::new();
    for n in node.descendants() {
        if n.is_text() {
            s.push_str(n.text().unwrap_or_default());
        } else if let Some(t) = n.attribute("text").or_else(|| n.attribute("name")) {
            let _ = write!(s, "`{t}`");
        }
    }
    s
}

fn normalise_text(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parameter names of the XML that are Rust keywords get a trailing underscore.
fn rust_ident(name: &str) -> String {
    const KEYWORDS: [&str; 12] = [
        "type", "in", "move", "ref", "fn", "mod", "use", "loop", "match", "impl", "self", "box",
    ];
    if KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

/// Syscall numbers as `syscall_header_gen.py` assigns them: the API list then the debug list,
/// counting down from -1 in file order; a group whose condition does not hold keeps its numbers
/// but is not emitted.
pub fn read_syscalls(text: &str, config: &Config) -> Result<Vec<(String, i64)>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("syscall.xml: {e}"))?;
    let root = doc.root_element();
    let mut out = Vec::new();
    let mut number = -1i64;
    for section in ["api", "debug"] {
        for list in root.children().filter(|n| n.has_tag_name(section)) {
            for config_node in list.children().filter(|n| n.has_tag_name("config")) {
                let cond = config_node.attribute("condition").unwrap_or("");
                let enabled = config
                    .condition(cond)
                    .map_err(|e| format!("syscall.xml: {cond}: {e}"))?;
                for sc in config_node.children().filter(|n| n.has_tag_name("syscall")) {
                    let name = sc.attribute("name").ok_or("syscall.xml: syscall without name")?;
                    if enabled {
                        out.push((name.to_string(), number));
                    }
                    number -= 1;
                }
            }
        }
    }
    Ok(out)
}

/// Where one parameter sits in the message: first bit (counted over consecutive words) and size.
struct Position<'a> {
    param: &'a Param,
    first_bit: u32,
    bits: u32,
}

/// `get_parameter_positions`: each parameter is aligned to its own size or a word, whichever is
/// smaller, and placed after the previous one.
fn place<'a>(params: impl Iterator<Item = &'a Param>) -> Result<Vec<Position<'a>>, String> {
    let mut used = 0u32;
    let mut out = Vec::new();
    for param in params {
        let bits = param.kind.bits();
        if !(bits.is_power_of_two() || bits % WORD_BITS == 0) {
            return Err(format!(
                "{}: size {bits} is neither a power of two nor whole words",
                param.name
            ));
        }
        let align = bits.min(WORD_BITS);
        used = used.div_ceil(align) * align;
        out.push(Position {
            param,
            first_bit: used,
            bits,
        });
        used += bits;
    }
    Ok(out)
}

/// One message word: the OR of its parts (0 if none).
fn or_parts(parts: &[String]) -> String {
    match parts {
        [] => "0".into(),
        [one] => one.clone(),
        _ => parts
            .iter()
            .map(|p| format!("({p})"))
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

fn mask(bits: u32) -> String {
    if bits >= WORD_BITS {
        "!0".into()
    } else {
        format!("{:#x}", (1u128 << bits) - 1)
    }
}

/// Generates the invocation stubs, as methods of `seL4_IPCBuffer` (the words after the fourth
/// travel in the buffer; the first four in registers), and their result structures.
pub fn generate_stubs(interfaces: &Interfaces) -> Result<String, String> {
    let mut out = String::new();
    let mut results = String::new();
    out.push_str("#[allow(clippy::too_many_arguments, clippy::unnecessary_cast, clippy::identity_op)]\n");
    out.push_str("impl seL4_IPCBuffer {\n");
    for m in &interfaces.methods {
        let fn_name = format!("{}_{}", m.interface, m.name);
        let (caps, words): (Vec<&Param>, Vec<&Param>) = m.inputs.iter().partition(|p| p.kind == Kind::Cap);
        let service = caps.first().ok_or(format!("{fn_name}: no service capability"))?;
        let extra_caps = &caps[1..];
        let extra_cap_slots = 3;
        if extra_caps.len() > extra_cap_slots {
            return Err(format!("{fn_name}: too many capabilities"));
        }
        for p in m.inputs.iter().chain(&m.outputs) {
            if ["msg_tag", "out_tag", "error", "mr0", "mr1", "mr2", "mr3"].contains(&p.name.as_str()) {
                return Err(format!(
                    "{fn_name}: parameter name {} collides with a local",
                    p.name
                ));
            }
        }
        let struct_members = |p: &Param| -> Result<Vec<String>, String> {
            let s = interfaces
                .structs
                .iter()
                .find(|s| s.name == p.c_type)
                .ok_or(format!("{fn_name}: no <struct> for {}", p.c_type))?;
            match p.kind {
                Kind::Struct { words } if words as usize == s.members.len() => Ok(s.members.clone()),
                _ => Err(format!("{}: member count differs from the type table", s.name)),
            }
        };

        // Marshal the inputs into words, each an OR of parts.
        let in_pos = place(words.iter().copied())?;
        let mut word_exprs: Vec<Vec<String>> = Vec::new();
        let mut layout_doc = Vec::new();
        for pos in &in_pos {
            let word = (pos.first_bit / WORD_BITS) as usize;
            let shift = pos.first_bit % WORD_BITS;
            let p = pos.param;
            let needed = word + (pos.bits.div_ceil(WORD_BITS) as usize);
            if word_exprs.len() < needed {
                word_exprs.resize(needed, Vec::new());
            }
            match p.kind {
                Kind::Struct { .. } => {
                    for (i, member) in struct_members(p)?.iter().enumerate() {
                        word_exprs[word + i].push(format!("{}.{member}", p.name));
                    }
                    layout_doc.push(format!(
                        "MR{word}.. `{}` ({} words)",
                        p.name,
                        pos.bits / WORD_BITS
                    ));
                }
                Kind::BitField => {
                    word_exprs[word].push(format!("{}.words[0]", p.name));
                    layout_doc.push(format!("MR{word} `{}`", p.name));
                }
                Kind::Word { bits } if bits == WORD_BITS => {
                    word_exprs[word].push(format!("{} as seL4_Word", p.name));
                    layout_doc.push(format!("MR{word} `{}`", p.name));
                }
                Kind::Word { bits } => {
                    let e = format!("({} as seL4_Word) & {}", p.name, mask(bits));
                    word_exprs[word].push(if shift == 0 {
                        e
                    } else {
                        format!("({e}) << {shift}")
                    });
                    layout_doc.push(format!("MR{word} bits {}..{} `{}`", shift, shift + bits, p.name));
                }
                Kind::Cap => unreachable!("capabilities were split off"),
            }
        }
        if word_exprs.len() > MAX_MESSAGE_WORDS {
            return Err(format!("{fn_name}: message too long"));
        }

        // Outputs: fields of a result structure, or structures written through a reference.
        let out_pos = place(m.outputs.iter())?;
        let by_value: Vec<&Position> = out_pos
            .iter()
            .filter(|p| !matches!(p.param.kind, Kind::Struct { .. }))
            .collect();
        let result_type = if by_value.is_empty() {
            "seL4_Error".to_string()
        } else {
            format!("{fn_name}_t")
        };
        if !by_value.is_empty() {
            let _ = writeln!(results, "/// The result of [`seL4_IPCBuffer::{fn_name}`].");
            let _ = writeln!(results, "#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]");
            let _ = writeln!(results, "pub struct {fn_name}_t {{");
            let _ = writeln!(results, "    /// The error code (`seL4_NoError` on success).");
            let _ = writeln!(results, "    pub error: seL4_Error,");
            for pos in &by_value {
                let _ = writeln!(results, "    /// Output `{}`.", pos.param.name);
                let _ = writeln!(results, "    pub {}: {},", pos.param.name, pos.param.rust_type);
            }
            let _ = writeln!(results, "}}\n");
        }

        // Signature.
        let mut args = vec!["&mut self".to_string()];
        for p in &m.inputs {
            let ty = match p.kind {
                Kind::Struct { .. } => format!("&{}", p.rust_type),
                _ => p.rust_type.to_string(),
            };
            args.push(format!("{}: {ty}", p.name));
        }
        for pos in out_pos
            .iter()
            .filter(|p| matches!(p.param.kind, Kind::Struct { .. }))
        {
            args.push(format!("{}: &mut {}", pos.param.name, pos.param.rust_type));
        }

        // Documentation.
        let mut doc = format!(
            "Performs `{fn_name}` (invocation label `{}` = {}).",
            m.id, m.label
        );
        if let Some(brief) = &m.brief {
            doc.push_str("\n\n");
            doc.push_str(brief);
            if !brief.ends_with('.') {
                doc.push('.');
            }
        }
        doc.push_str(&format!("\n\nInvoked capability: `{}`.", service.name));
        if !layout_doc.is_empty() {
            doc.push_str(&format!(" Message: {}.", layout_doc.join(", ")));
        }
        if !extra_caps.is_empty() {
            let list: Vec<String> = extra_caps
                .iter()
                .enumerate()
                .map(|(i, p)| format!("{i} `{}`", p.name))
                .collect();
            doc.push_str(&format!(" Extra capabilities: {}.", list.join(", ")));
        }
        if !out_pos.is_empty() {
            let list: Vec<String> = out_pos
                .iter()
                .map(|p| format!("MR{} `{}`", p.first_bit / WORD_BITS, p.param.name))
                .collect();
            doc.push_str(&format!(" Reply: {}.", list.join(", ")));
        }

        // Body.
        let mut body = String::new();
        let _ = writeln!(
            body,
            "        let msg_tag = seL4_MessageInfo_t::new({}, 0, {}, {});",
            m.id,
            extra_caps.len(),
            word_exprs.len()
        );
        for (i, c) in extra_caps.iter().enumerate() {
            let _ = writeln!(body, "        self.caps_or_badges[{i}] = {};", c.name);
        }
        for i in 0..REGISTER_MRS {
            let e = word_exprs.get(i).map(|w| or_parts(w)).unwrap_or("0".into());
            let _ = writeln!(body, "        let mut mr{i}: seL4_Word = {e};");
        }
        for (i, w) in word_exprs.iter().enumerate().skip(REGISTER_MRS) {
            let e = or_parts(w);
            let _ = writeln!(body, "        self.msg[{i}] = {e};");
        }
        let _ = writeln!(
            body,
            "        let out_tag = self.seL4_CallWithMRs({}, msg_tag, &mut mr0, &mut mr1, &mut mr2, &mut mr3);",
            service.name
        );
        let _ = writeln!(body, "        let error = out_tag.get_label();");
        let _ = writeln!(body, "        if error != seL4_NoError {{");
        let _ = writeln!(
            body,
            "            self.msg[..4].copy_from_slice(&[mr0, mr1, mr2, mr3]);"
        );
        if by_value.is_empty() {
            let _ = writeln!(body, "            return error;");
        } else {
            let _ = writeln!(
                body,
                "            return {fn_name}_t {{ error, ..Default::default() }};"
            );
        }
        let _ = writeln!(body, "        }}");
        let word_src = |w: usize| {
            if w < REGISTER_MRS {
                format!("mr{w}")
            } else {
                format!("self.msg[{w}]")
            }
        };
        let mut fields = Vec::new();
        for pos in &out_pos {
            let w = (pos.first_bit / WORD_BITS) as usize;
            let shift = pos.first_bit % WORD_BITS;
            let p = pos.param;
            match p.kind {
                Kind::Struct { .. } => {
                    for (i, member) in struct_members(p)?.iter().enumerate() {
                        let _ = writeln!(body, "        {}.{member} = {};", p.name, word_src(w + i));
                    }
                }
                Kind::Word { bits } if bits < WORD_BITS => {
                    fields.push(format!(
                        "{}: ((({} >> {shift}) & {}) as {})",
                        p.name,
                        word_src(w),
                        mask(bits),
                        p.rust_type
                    ));
                }
                Kind::BitField => fields.push(format!(
                    "{}: {} {{ words: [{}] }}",
                    p.name,
                    p.rust_type,
                    word_src(w)
                )),
                _ => fields.push(format!("{}: {} as {}", p.name, word_src(w), p.rust_type)),
            }
        }
        if by_value.is_empty() {
            let _ = writeln!(body, "        error");
        } else {
            let _ = writeln!(body, "        {fn_name}_t {{ error, {} }}", fields.join(", "));
        }

        let _ = writeln!(out, "    #[doc = {doc:?}]");
        let _ = writeln!(
            out,
            "    pub fn {fn_name}({}) -> {result_type} {{",
            args.join(", ")
        );
        out.push_str(&body);
        let _ = writeln!(out, "    }}\n");
    }
    out.push_str("}\n");
    Ok(format!("{results}\n{out}"))
}

/// Generates the register structures declared in the interface XML (`seL4_UserContext`,
/// `seL4_VCPUContext`): one word per member, in the order the messages carry them.
pub fn generate_structs(interfaces: &Interfaces) -> String {
    let mut out = String::new();
    for s in &interfaces.structs {
        let _ = writeln!(
            out,
            "/// `{}`: the registers in the order the kernel's messages carry them.",
            s.name
        );
        let _ = writeln!(
            out,
            "#[repr(C)]\n#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]"
        );
        let _ = writeln!(out, "pub struct {} {{", s.name);
        for (i, member) in s.members.iter().enumerate() {
            let _ = writeln!(out, "    /// `{member}` (word {i}).");
            let _ = writeln!(out, "    pub {member}: seL4_Word,");
        }
        let _ = writeln!(out, "}}\n");
        let n = s.members.len();
        let _ = writeln!(out, "impl {} {{", s.name);
        let _ = writeln!(out, "    /// Number of registers (words).");
        let _ = writeln!(out, "    pub const WORDS: usize = {n};\n");
        let _ = writeln!(out, "    /// The registers as words, in message order.");
        let _ = writeln!(out, "    pub const fn to_words(&self) -> [seL4_Word; {n}] {{");
        let list: Vec<String> = s.members.iter().map(|m| format!("self.{m}")).collect();
        let _ = writeln!(out, "        [{}]", list.join(", "));
        let _ = writeln!(out, "    }}\n");
        let _ = writeln!(out, "    /// From words in message order.");
        let _ = writeln!(
            out,
            "    pub const fn from_words(words: [seL4_Word; {n}]) -> Self {{"
        );
        let _ = writeln!(out, "        let [{}] = words;", s.members.join(", "));
        let _ = writeln!(out, "        Self {{ {} }}", s.members.join(", "));
        let _ = writeln!(out, "    }}");
        let _ = writeln!(out, "}}\n");
    }
    out
}
