//! Just enough of the C preprocessor to read the kernel configuration header and libsel4's headers:
//! comments, line continuations, conditional blocks, object-like and function-like `#define`s,
//! integer constant expressions with `defined`, and the enumerators of `enum { ... }` blocks.

use std::collections::{BTreeMap, HashSet};

/// A preprocessing token. Numbers are evaluated when lexed; anything that is not an identifier, a
/// number or a string literal is punctuation.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Num(i128),
    Str(String),
    Punct(String),
}

impl Tok {
    fn is_punct(&self, p: &str) -> bool {
        matches!(self, Tok::Punct(q) if q == p)
    }
}

/// Splits C text into tokens. Character literals become numbers.
pub fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    const PUNCT3: [&str; 3] = ["<<=", ">>=", "..."];
    const PUNCT2: [&str; 19] = [
        "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "->", "++", "--", "+=", "-=", "*=", "/=", "&=", "|=",
        "^=", "##",
    ];
    let bytes = text.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            toks.push(Tok::Ident(text[start..i].to_string()));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            toks.push(Tok::Num(parse_number(&text[start..i])?));
        } else if c == b'"' || c == b'\'' {
            let start = i + 1;
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                if bytes[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            if i >= bytes.len() {
                return Err(format!("unterminated literal in `{text}`"));
            }
            let body = &text[start..i];
            i += 1;
            if c == b'"' {
                toks.push(Tok::Str(body.to_string()));
            } else {
                let value = match body.as_bytes() {
                    [b] => i128::from(*b),
                    [b'\\', b'n'] => 10,
                    [b'\\', b'0'] => 0,
                    [b'\\', b] => i128::from(*b),
                    _ => return Err(format!("unsupported character literal '{body}'")),
                };
                toks.push(Tok::Num(value));
            }
        } else {
            let rest = &text[i..];
            let p = PUNCT3
                .iter()
                .chain(PUNCT2.iter())
                .find(|p| rest.starts_with(**p))
                .map(|p| p.to_string())
                .unwrap_or_else(|| (c as char).to_string());
            i += p.len();
            toks.push(Tok::Punct(p));
        }
    }
    Ok(toks)
}

fn parse_number(s: &str) -> Result<i128, String> {
    let digits = s.trim_end_matches(['u', 'U', 'l', 'L']);
    let parsed = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        i128::from_str_radix(hex, 16)
    } else if digits.len() > 1 && digits.starts_with('0') {
        i128::from_str_radix(&digits[1..], 8)
    } else {
        digits.parse::<i128>()
    };
    parsed.map_err(|_| format!("bad number `{s}`"))
}

/// Removes `/* */` and `//` comments (keeping line structure) and joins continued lines.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_str: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = in_str {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == q {
                in_str = None;
            }
            continue;
        }
        match (c, chars.peek()) {
            ('/', Some('*')) => {
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if d == '\n' {
                        out.push('\n');
                    }
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
                out.push(' ');
            }
            ('/', Some('/')) => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('"', _) | ('\'', _) => {
                in_str = Some(c);
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.replace("\\\r\n", " ").replace("\\\n", " ")
}

#[derive(Debug, Clone)]
struct Macro {
    params: Option<Vec<String>>,
    body: Vec<Tok>,
}

/// The macro table: everything `#define`d so far, plus the enumerators seen so far (as object-like
/// macros with their value), so that later headers can refer to earlier ones.
#[derive(Debug, Default, Clone)]
pub struct Defines {
    macros: BTreeMap<String, Macro>,
}

impl Defines {
    /// Records `#define <rest>`; returns the macro's name.
    pub fn define(&mut self, rest: &str) -> Result<String, String> {
        let rest = rest.trim_start();
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = rest[..name_len].to_string();
        if name.is_empty() {
            return Err(format!("#define without a name: `{rest}`"));
        }
        let after = &rest[name_len..];
        let (params, body) = if let Some(inner) = after.strip_prefix('(') {
            let close = inner
                .find(')')
                .ok_or_else(|| format!("unclosed macro parameters in `{rest}`"))?;
            let params = inner[..close]
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect();
            (Some(params), &inner[close + 1..])
        } else {
            (None, after)
        };
        let body = tokenize(body)?;
        self.macros.insert(name.clone(), Macro { params, body });
        Ok(name)
    }

    /// Defines `name` as an integer (used for enumerators).
    pub fn define_value(&mut self, name: &str, value: i128) {
        self.macros.insert(
            name.to_string(),
            Macro {
                params: None,
                body: vec![Tok::Num(value)],
            },
        );
    }

    pub fn undef(&mut self, name: &str) {
        self.macros.remove(name);
    }

    pub fn is_defined(&self, name: &str) -> bool {
        self.macros.contains_key(name)
    }

    /// The tokens of an object-like macro's replacement list.
    pub fn body(&self, name: &str) -> Option<&[Tok]> {
        self.macros
            .get(name)
            .filter(|m| m.params.is_none())
            .map(|m| m.body.as_slice())
    }

    /// Evaluates an integer constant expression. In `#if` mode identifiers left after macro
    /// expansion count as 0 (as in C); otherwise they make the expression non-constant.
    pub fn eval(&self, toks: &[Tok], if_mode: bool) -> Result<i128, String> {
        let expanded = self.expand(toks, &mut HashSet::new(), 0)?;
        let mut parser = ExprParser {
            toks: &expanded,
            pos: 0,
            if_mode,
        };
        let v = parser.ternary()?;
        if parser.pos != expanded.len() {
            return Err(format!("trailing tokens in expression {toks:?}"));
        }
        Ok(v)
    }

    pub fn eval_str(&self, text: &str, if_mode: bool) -> Result<i128, String> {
        self.eval(&tokenize(text)?, if_mode)
    }

    fn expand(&self, toks: &[Tok], active: &mut HashSet<String>, depth: usize) -> Result<Vec<Tok>, String> {
        if depth > 64 {
            return Err("macro expansion too deep".into());
        }
        let mut out = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let tok = &toks[i];
            i += 1;
            let Tok::Ident(name) = tok else {
                out.push(tok.clone());
                continue;
            };
            if name == "defined" {
                let (target, next) = match (toks.get(i), toks.get(i + 1), toks.get(i + 2)) {
                    (Some(Tok::Ident(t)), _, _) => (t.clone(), i + 1),
                    (Some(open), Some(Tok::Ident(t)), Some(close))
                        if open.is_punct("(") && close.is_punct(")") =>
                    {
                        (t.clone(), i + 3)
                    }
                    _ => return Err("malformed `defined`".into()),
                };
                out.push(Tok::Num(i128::from(self.is_defined(&target))));
                i = next;
                continue;
            }
            let Some(mac) = self.macros.get(name).filter(|_| !active.contains(name)) else {
                out.push(tok.clone());
                continue;
            };
            let body = match &mac.params {
                None => mac.body.clone(),
                Some(params) => {
                    if !toks.get(i).is_some_and(|t| t.is_punct("(")) {
                        out.push(tok.clone());
                        continue;
                    }
                    let (args, next) = split_args(toks, i)?;
                    i = next;
                    if args.len() != params.len()
                        && !(params.is_empty() && args.len() == 1 && args[0].is_empty())
                    {
                        return Err(format!("macro {name} takes {} arguments", params.len()));
                    }
                    let mut body = Vec::new();
                    for t in &mac.body {
                        match t {
                            Tok::Ident(p) if params.contains(p) => {
                                let idx = params.iter().position(|q| q == p).unwrap_or(0);
                                body.push(Tok::Punct("(".into()));
                                body.extend(self.expand(&args[idx], active, depth + 1)?);
                                body.push(Tok::Punct(")".into()));
                            }
                            _ => body.push(t.clone()),
                        }
                    }
                    body
                }
            };
            active.insert(name.clone());
            let expanded = self.expand(&body, active, depth + 1);
            active.remove(name);
            out.extend(expanded?);
        }
        Ok(out)
    }
}

/// Splits `( a, b, ... )` starting at `open` (the index of the parenthesis) into argument token
/// lists; returns them and the index after the closing parenthesis.
fn split_args(toks: &[Tok], open: usize) -> Result<(Vec<Vec<Tok>>, usize), String> {
    let mut args = vec![Vec::new()];
    let mut level = 0usize;
    let mut i = open + 1;
    while let Some(t) = toks.get(i) {
        i += 1;
        if t.is_punct("(") {
            level += 1;
        } else if t.is_punct(")") {
            if level == 0 {
                return Ok((args, i));
            }
            level -= 1;
        } else if t.is_punct(",") && level == 0 {
            args.push(Vec::new());
            continue;
        }
        if let Some(last) = args.last_mut() {
            last.push(t.clone());
        }
    }
    Err("unclosed macro argument list".into())
}

struct ExprParser<'a> {
    toks: &'a [Tok],
    pos: usize,
    if_mode: bool,
}

impl ExprParser<'_> {
    fn peek_punct(&self) -> Option<&str> {
        match self.toks.get(self.pos) {
            Some(Tok::Punct(p)) => Some(p.as_str()),
            _ => None,
        }
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.peek_punct() == Some(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn ternary(&mut self) -> Result<i128, String> {
        let cond = self.binary(0)?;
        if self.eat("?") {
            let a = self.ternary()?;
            if !self.eat(":") {
                return Err("expected `:`".into());
            }
            let b = self.ternary()?;
            Ok(if cond != 0 { a } else { b })
        } else {
            Ok(cond)
        }
    }

    fn binary(&mut self, min_prec: u8) -> Result<i128, String> {
        const OPS: [(&str, u8); 18] = [
            ("||", 1),
            ("&&", 2),
            ("|", 3),
            ("^", 4),
            ("&", 5),
            ("==", 6),
            ("!=", 6),
            ("<", 7),
            ("<=", 7),
            (">", 7),
            (">=", 7),
            ("<<", 8),
            (">>", 8),
            ("+", 9),
            ("-", 9),
            ("*", 10),
            ("/", 10),
            ("%", 10),
        ];
        let mut lhs = self.unary()?;
        loop {
            let Some((op, prec)) = self
                .peek_punct()
                .and_then(|p| OPS.iter().find(|(o, _)| *o == p))
                .copied()
            else {
                return Ok(lhs);
            };
            if prec < min_prec {
                return Ok(lhs);
            }
            self.pos += 1;
            let rhs = self.binary(prec + 1)?;
            lhs = match op {
                "||" => i128::from(lhs != 0 || rhs != 0),
                "&&" => i128::from(lhs != 0 && rhs != 0),
                "|" => lhs | rhs,
                "^" => lhs ^ rhs,
                "&" => lhs & rhs,
                "==" => i128::from(lhs == rhs),
                "!=" => i128::from(lhs != rhs),
                "<" => i128::from(lhs < rhs),
                "<=" => i128::from(lhs <= rhs),
                ">" => i128::from(lhs > rhs),
                ">=" => i128::from(lhs >= rhs),
                "<<" => lhs
                    .checked_shl(u32::try_from(rhs).map_err(|_| "bad shift")?)
                    .ok_or("shift overflow")?,
                ">>" => lhs
                    .checked_shr(u32::try_from(rhs).map_err(|_| "bad shift")?)
                    .ok_or("shift overflow")?,
                "+" => lhs.checked_add(rhs).ok_or("overflow")?,
                "-" => lhs.checked_sub(rhs).ok_or("overflow")?,
                "*" => lhs.checked_mul(rhs).ok_or("overflow")?,
                "/" => lhs.checked_div(rhs).ok_or("division by zero")?,
                _ => lhs.checked_rem(rhs).ok_or("division by zero")?,
            };
        }
    }

    fn unary(&mut self) -> Result<i128, String> {
        if self.eat("!") {
            return Ok(i128::from(self.unary()? == 0));
        }
        if self.eat("~") {
            return Ok(!self.unary()?);
        }
        if self.eat("-") {
            return Ok(-self.unary()?);
        }
        if self.eat("+") {
            return self.unary();
        }
        if self.eat("(") {
            let v = self.ternary()?;
            if !self.eat(")") {
                return Err("expected `)`".into());
            }
            return Ok(v);
        }
        match self.toks.get(self.pos) {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(*n)
            }
            Some(Tok::Ident(_)) if self.if_mode => {
                self.pos += 1;
                Ok(0)
            }
            other => Err(format!("not an integer constant expression at {other:?}")),
        }
    }
}

/// One integer constant found in a header.
#[derive(Debug, Clone)]
pub struct Constant {
    pub name: String,
    pub value: i128,
}

/// The result of reading one header: its integer `#define`s and enumerators, for the
/// configuration in effect.
#[derive(Debug, Default)]
pub struct Header {
    pub constants: Vec<Constant>,
}

/// Runs the conditional directives of `text` against `defs`, records its `#define`s in `defs`, and
/// returns the integer constants it defines (object-like macros that evaluate, and enumerators).
pub fn scan_header(text: &str, defs: &mut Defines) -> Result<Header, String> {
    let text = strip_comments(text);
    let active_text = run_conditionals(&text, defs)?;
    // Enumerators first (they may use this header's macros, already in `defs`), then the macros
    // that evaluate to integers (they may use this header's enumerators).
    let mut header = Header {
        constants: parse_enums(&active_text.body, defs)?,
    };
    for name in &active_text.defined {
        if let Some(body) = defs.body(name) {
            if let Ok(value) = defs.eval(body, false) {
                header.constants.push(Constant {
                    name: name.clone(),
                    value,
                });
            }
        }
    }
    Ok(header)
}

/// Text left after conditional compilation, and the macros defined in it (in order).
pub struct ActiveText {
    pub body: String,
    pub defined: Vec<String>,
}

/// Applies `#if`/`#ifdef`/`#ifndef`/`#elif`/`#else`/`#endif`, `#define` and `#undef` to `text`;
/// returns the active non-directive lines and the names defined, in order.
pub fn run_conditionals(text: &str, defs: &mut Defines) -> Result<ActiveText, String> {
    struct Frame {
        parent_active: bool,
        taken: bool,
        active: bool,
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut body = String::new();
    let mut defined = Vec::new();
    for line in text.lines() {
        let active = stack.last().is_none_or(|f| f.active);
        let trimmed = line.trim_start();
        let Some(directive) = trimmed.strip_prefix('#') else {
            if active {
                body.push_str(line);
                body.push('\n');
            }
            continue;
        };
        let directive = directive.trim_start();
        let word_len = directive
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(directive.len());
        let (word, rest) = directive.split_at(word_len);
        let rest = rest.trim();
        match word {
            "if" | "ifdef" | "ifndef" => {
                let cond = active
                    && match word {
                        "if" => defs.eval_str(rest, true)? != 0,
                        "ifdef" => defs.is_defined(rest),
                        _ => !defs.is_defined(rest),
                    };
                stack.push(Frame {
                    parent_active: active,
                    taken: cond,
                    active: cond,
                });
            }
            "elif" => {
                let frame = stack.last_mut().ok_or("#elif without #if")?;
                let cond = frame.parent_active && !frame.taken && defs.eval_str(rest, true)? != 0;
                frame.active = cond;
                frame.taken |= cond;
            }
            "else" => {
                let frame = stack.last_mut().ok_or("#else without #if")?;
                frame.active = frame.parent_active && !frame.taken;
                frame.taken = true;
            }
            "endif" => {
                stack.pop().ok_or("#endif without #if")?;
            }
            "define" if active => {
                let name = defs.define(rest)?;
                defined.retain(|n| n != &name);
                defined.push(name);
            }
            "undef" if active => {
                defs.undef(rest);
                defined.retain(|n| n != rest);
            }
            "error" if active => return Err(format!("#error {rest}")),
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("unterminated #if".into());
    }
    Ok(ActiveText { body, defined })
}

/// Finds `enum [tag] { ... }` blocks and numbers their enumerators as C does. Entries that are
/// macro invocations (`SEL4_FORCE_LONG_ENUM(x)`) only force the enum's width and are skipped.
fn parse_enums(text: &str, defs: &mut Defines) -> Result<Vec<Constant>, String> {
    let toks = tokenize(text)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if toks[i] != Tok::Ident("enum".into()) {
            i += 1;
            continue;
        }
        i += 1;
        if matches!(toks.get(i), Some(Tok::Ident(_))) {
            i += 1;
        }
        if !toks.get(i).is_some_and(|t| t.is_punct("{")) {
            continue;
        }
        i += 1;
        let mut entries: Vec<Vec<Tok>> = vec![Vec::new()];
        let mut level = 0usize;
        while let Some(t) = toks.get(i) {
            i += 1;
            if t.is_punct("(") {
                level += 1;
            } else if t.is_punct(")") {
                level = level.saturating_sub(1);
            } else if t.is_punct("}") && level == 0 {
                break;
            } else if t.is_punct(",") && level == 0 {
                entries.push(Vec::new());
                continue;
            }
            if let Some(e) = entries.last_mut() {
                e.push(t.clone());
            }
        }
        let mut next = 0i128;
        for entry in entries {
            let Some(Tok::Ident(name)) = entry.first() else {
                continue;
            };
            if entry.get(1).is_some_and(|t| t.is_punct("(")) {
                continue;
            }
            let value = if entry.get(1).is_some_and(|t| t.is_punct("=")) {
                defs.eval(&entry[2..], false)
                    .map_err(|e| format!("enumerator {name}: {e}"))?
            } else if entry.len() == 1 {
                next
            } else {
                return Err(format!("cannot read enumerator {entry:?}"));
            };
            defs.define_value(name, value);
            out.push(Constant {
                name: name.clone(),
                value,
            });
            next = value + 1;
        }
    }
    Ok(out)
}

/// The kernel configuration: every `#define CONFIG_...` of the autoconf header, as text and, where
/// it is an integer, as a number.
#[derive(Debug, Default)]
pub struct Config {
    pub defs: Defines,
    pub entries: Vec<(String, ConfigValue)>,
}

/// The value of one configuration entry.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    Int(i128),
    Str(String),
}

impl Config {
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut defs = Defines::default();
        let active = run_conditionals(&strip_comments(text), &mut defs)?;
        let mut entries = Vec::new();
        for name in active.defined {
            if !name.starts_with("CONFIG_") {
                continue;
            }
            let body = defs.body(&name).unwrap_or(&[]).to_vec();
            let value = match body.as_slice() {
                [] => ConfigValue::Int(1),
                [Tok::Str(s)] => ConfigValue::Str(s.clone()),
                _ => match defs.eval(&body, false) {
                    Ok(v) => ConfigValue::Int(v),
                    Err(_) => continue,
                },
            };
            entries.push((name, value));
        }
        if entries.is_empty() {
            return Err("no `#define CONFIG_...` lines found".into());
        }
        Ok(Config { defs, entries })
    }

    /// Whether `CONFIG_<name>` is defined (the kernel's `#ifdef` test).
    pub fn is_set(&self, name: &str) -> bool {
        self.defs.is_defined(name)
    }

    pub fn int(&self, name: &str) -> Option<i128> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| match v {
                ConfigValue::Int(i) => Some(*i),
                ConfigValue::Str(_) => None,
            })
    }

    /// Evaluates a condition attribute of the interface XML (C `#if` syntax).
    pub fn condition(&self, cond: &str) -> Result<bool, String> {
        if cond.trim().is_empty() {
            return Ok(true);
        }
        Ok(self.defs.eval_str(cond, true)? != 0)
    }
}
