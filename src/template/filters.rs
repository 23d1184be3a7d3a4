//! Ansible's Jinja2 filters and tests, for minijinja.
//!
//! Playbooks written for Ansible lean on filters and tests that plain Jinja2 lacks
//! (`regex_replace`, `combine`, `to_nice_yaml`, `is version`, `is succeeded`, ...) and on
//! Ansible's own reading of a few Jinja2 ones (`bool`, `int`, `default`). [`register`] adds
//! them with Ansible's semantics; minijinja's builtins stay wherever they already behave like
//! Jinja2 (`map`, `select`, `join`, `split`, `unique`, `first`, `sort`, `dictsort`, ...).
//!
//! Every failure is a [`minijinja::Error`] of kind [`ErrorKind::InvalidOperation`] whose
//! message starts with the filter or test name, so a playbook author sees which call is wrong.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::Display;
use std::io;
use std::path::Path;

use base64::Engine as _;
use base64ct::Encoding as _;
use indexmap::IndexMap;
use md5::Md5;
use minijinja::value::{Rest, Serde, Tuple, ValueKind, ValueOrKwargs};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior, Value};
use regex::{Captures, Regex, RegexBuilder};
use serde::Serialize;
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde_json::ser::{Formatter, PrettyFormatter};
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use crate::diagnostic::Source;
use crate::yaml::{self, Node};

/// Adds Ansible's filters and tests to `env`, so templates written for Ansible render the same.
pub fn register(env: &mut Environment<'static>) {
    // Values and types.
    env.add_filter("default", default);
    env.add_filter("d", default);
    env.add_filter("bool", to_bool);
    env.add_filter("int", int);
    env.add_filter("float", float);
    env.add_filter("ternary", ternary);
    env.add_filter("mandatory", mandatory);
    env.add_filter("type_debug", type_debug);

    // Regular expressions.
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_findall", regex_findall);
    env.add_filter("regex_escape", regex_escape);
    env.add_filter("comment", comment);

    // Serialization.
    env.add_filter("to_json", to_json);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("from_json", from_json);
    env.add_filter("to_yaml", to_yaml);
    env.add_filter("to_nice_yaml", to_nice_yaml);
    env.add_filter("from_yaml", from_yaml);

    // Encodings and digests.
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("hash", hash);
    env.add_filter("checksum", checksum);
    env.add_filter("sha1", sha1);
    env.add_filter("md5", md5);
    env.add_filter("password_hash", password_hash);

    // Paths (control-node string operations, POSIX rules).
    env.add_filter("basename", basename);
    env.add_filter("dirname", dirname);
    env.add_filter("splitext", splitext);

    // Collections.
    env.add_filter("combine", combine);
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);
    env.add_filter("flatten", flatten);
    env.add_filter("zip_longest", zip_longest);
    env.add_filter("product", product);
    env.add_filter("extract", extract);
    env.add_filter("union", union);
    env.add_filter("intersect", intersect);
    env.add_filter("difference", difference);
    env.add_filter("symmetric_difference", symmetric_difference);

    // Strings.
    env.add_filter("quote", quote);
    env.add_filter("center", center);

    // Tests.
    env.add_test("truthy", truthy);
    env.add_test("falsy", falsy);
    env.add_test("match", is_match);
    env.add_test("search", is_search);
    env.add_test("regex", is_regex);
    env.add_test("version", version);
    env.add_test("version_compare", version);
    env.add_test("succeeded", succeeded);
    env.add_test("success", succeeded);
    env.add_test("successful", succeeded);
    env.add_test("failed", failed);
    env.add_test("failure", failed);
    env.add_test("changed", changed);
    env.add_test("change", changed);
    env.add_test("skipped", skipped);
    env.add_test("skip", skipped);
    env.add_test("reachable", reachable);
    env.add_test("unreachable", unreachable);
    env.add_test("subset", subset);
    env.add_test("issubset", subset);
    env.add_test("superset", superset);
    env.add_test("issuperset", superset);
    env.add_test("contains", contains);
    env.add_test("any", any);
    env.add_test("all", all);
    env.add_test("sequence", is_sequence);
    env.add_test("file", is_file);
    env.add_test("directory", is_directory);
    env.add_test("exists", exists);
    env.add_test("link", is_link);
    env.add_test("abs", is_abs);
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// An error that names the filter or test it comes from.
fn fail(name: &str, message: impl Display) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("{name}: {message}"))
}

/// Whether undefined inputs must fail rather than read as empty, as under Ansible.
fn is_strict(state: &State) -> bool {
    matches!(
        state.undefined_behavior(),
        UndefinedBehavior::Strict | UndefinedBehavior::SemiStrict
    )
}

/// Refuses an undefined input when the environment is (semi-)strict.
fn check_defined(state: &State, name: &str, value: &Value) -> Result<(), Error> {
    if value.is_undefined() && is_strict(state) {
        Err(fail(name, "input is undefined"))
    } else {
        Ok(())
    }
}

/// The input as text, the way Python's `str()` would give it to a string filter.
fn text<'a>(state: &State, name: &str, value: &'a Value) -> Result<Cow<'a, str>, Error> {
    check_defined(state, name, value)?;
    Ok(match value.as_str() {
        Some(s) => Cow::Borrowed(s),
        None if value.is_undefined() => Cow::Borrowed(""),
        None => Cow::Owned(value.to_string()),
    })
}

/// Whether Ansible's `flatten` and `combine` treat the value as a list.
fn is_list(value: &Value) -> bool {
    matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable)
}

/// The items of a list (or the keys of a mapping, the characters of a string), as Python iterates.
fn items(name: &str, value: &Value) -> Result<Vec<Value>, Error> {
    value
        .try_iter()
        .map(Iterator::collect)
        .map_err(|_| fail(name, format!("expected a list, got {}", value.kind())))
}

/// The key/value pairs of a mapping, in its order.
fn entries(name: &str, value: &Value) -> Result<IndexMap<Value, Value>, Error> {
    if value.kind() != ValueKind::Map {
        return Err(fail(name, format!("expected a dictionary, got {}", value.kind())));
    }
    let mut map = IndexMap::new();
    for key in value.try_iter()? {
        let item = value.get_item(&key)?;
        map.insert(key, item);
    }
    Ok(map)
}

/// Positional and keyword arguments bound to parameter names the way Python binds a call.
struct Args {
    name: &'static str,
    params: &'static [&'static str],
    slots: Vec<Option<Value>>,
}

impl Args {
    /// Binds `rest` to `params`; too many arguments or unknown keywords are errors.
    fn bind(name: &'static str, rest: Rest<ValueOrKwargs>, params: &'static [&'static str]) -> Result<Self, Error> {
        let mut positional = rest.into_values();
        let kwargs = if positional.last().is_some_and(Value::is_kwargs) {
            positional.pop()
        } else {
            None
        };
        if positional.len() > params.len() {
            return Err(fail(
                name,
                format!("takes at most {} argument(s), got {}", params.len(), positional.len()),
            ));
        }
        let mut slots = vec![None; params.len()];
        for (slot, value) in slots.iter_mut().zip(positional) {
            *slot = Some(value);
        }
        if let Some(kwargs) = kwargs {
            for key in kwargs.try_iter()? {
                let Some(word) = key.as_str() else {
                    return Err(fail(name, "keyword names must be strings"));
                };
                let Some(index) = params.iter().position(|p| *p == word) else {
                    return Err(fail(name, format!("unexpected keyword argument `{word}`")));
                };
                if slots[index].is_some() {
                    return Err(fail(name, format!("got multiple values for argument `{word}`")));
                }
                slots[index] = Some(kwargs.get_item(&key)?);
            }
        }
        Ok(Self { name, params, slots })
    }

    /// Like [`Args::bind`], for functions whose arguments Ansible only takes by keyword.
    fn bind_keywords(
        name: &'static str,
        rest: Rest<ValueOrKwargs>,
        params: &'static [&'static str],
    ) -> Result<Self, Error> {
        if rest.iter().any(|v| !v.is_kwargs()) {
            return Err(fail(name, "takes keyword arguments only"));
        }
        Self::bind(name, rest, params)
    }

    /// The argument as given, even when it is `none`.
    fn raw(&self, index: usize) -> Option<&Value> {
        self.slots.get(index).and_then(Option::as_ref)
    }

    /// The argument, or `None` when it is missing, `none` or undefined (Python's default).
    fn get(&self, index: usize) -> Option<&Value> {
        self.raw(index).filter(|v| !v.is_none() && !v.is_undefined())
    }

    /// A yes/no argument, read with Python truthiness.
    fn flag(&self, index: usize, default: bool) -> bool {
        self.get(index).map_or(default, Value::is_true)
    }

    /// A string argument.
    fn string(&self, index: usize) -> Result<Option<&str>, Error> {
        match self.get(index) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| self.wrong(index, "a string", v)),
        }
    }

    /// An integer argument.
    fn int(&self, index: usize) -> Result<Option<i64>, Error> {
        match self.get(index) {
            None => Ok(None),
            Some(v) if v.is_integer() => i64::try_from(v.clone())
                .map(Some)
                .map_err(|_| self.wrong(index, "a smaller integer", v)),
            Some(v) => Err(self.wrong(index, "an integer", v)),
        }
    }

    /// An argument Python requires.
    fn required(&self, index: usize) -> Result<&Value, Error> {
        self.raw(index).ok_or_else(|| {
            let param = self.params.get(index).copied().unwrap_or("argument");
            fail(self.name, format!("missing required argument `{param}`"))
        })
    }

    fn wrong(&self, index: usize, expected: &str, got: &Value) -> Error {
        let param = self.params.get(index).copied().unwrap_or("argument");
        fail(self.name, format!("`{param}` must be {expected}, got {}", got.kind()))
    }
}

// ---------------------------------------------------------------------------------------------
// Values and types
// ---------------------------------------------------------------------------------------------

/// `default(default_value='', boolean=False)`: the fallback for an undefined value, and with
/// `boolean` also for a false one (`''`, `0`, `[]`, `none`, ...). Works under strict undefined.
fn default(value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = Args::bind("default", rest, &["default_value", "boolean"])?;
    let fallback = args.raw(0).cloned().unwrap_or_else(|| Value::from(""));
    if value.is_undefined() || (args.flag(1, false) && !value.is_true()) {
        Ok(fallback)
    } else {
        Ok(value.clone())
    }
}

/// `bool`: the filter's own reading in Ansible, narrower than [`crate::settings::boolean`]:
/// `yes`/`on`/`true`/`1` (any case) and the number 1 are true, everything else (`y` and `t`
/// included) false; real booleans pass through. tests/ansible_compat.rs holds it to ansible-core.
fn to_bool(state: &State, value: &Value) -> Result<bool, Error> {
    check_defined(state, "bool", value)?;
    Ok(match value.kind() {
        ValueKind::Bool => value.is_true(),
        ValueKind::String => matches!(
            value.as_str().map(str::to_lowercase).as_deref(),
            Some("yes" | "on" | "true" | "1")
        ),
        ValueKind::Number => f64::try_from(value.clone()).is_ok_and(|f| f == 1.0),
        _ => false,
    })
}

/// `int(default=0, base=10)`: Jinja2's conversion, which Ansible uses: strings are parsed like
/// Python's `int(s, base)` (`'0x1f'` with base 16), then as floats and truncated; anything
/// else gives `default` instead of an error.
fn int(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = Args::bind("int", rest, &["default", "base"])?;
    let fallback = args.raw(0).cloned().unwrap_or_else(|| Value::from(0));
    let base = args.int(1)?.unwrap_or(10);
    check_defined(state, "int", value)?;
    Ok(match value.kind() {
        ValueKind::Bool => Value::from(i64::from(value.is_true())),
        ValueKind::Number if value.is_integer() => value.clone(),
        ValueKind::Number => f64::try_from(value.clone())
            .ok()
            .and_then(truncate)
            .map_or(fallback, Value::from),
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            parse_python_int(s, base)
                .or_else(|| parse_python_float(s).and_then(truncate))
                .map_or(fallback, Value::from)
        }
        _ => fallback,
    })
}

/// `float(default=0.0)`: Python's `float()`, with `default` for what it cannot read.
fn float(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = Args::bind("float", rest, &["default"])?;
    let fallback = args.raw(0).cloned().unwrap_or_else(|| Value::from(0.0));
    check_defined(state, "float", value)?;
    let parsed = match value.kind() {
        ValueKind::Bool => Some(if value.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => f64::try_from(value.clone()).ok(),
        ValueKind::String => parse_python_float(value.as_str().unwrap_or_default()),
        _ => None,
    };
    Ok(parsed.map_or(fallback, Value::from))
}

/// Python's `int(float)`: truncation toward zero; infinities and NaN have no integer.
fn truncate(f: f64) -> Option<i128> {
    // Below 2^127 so the cast is exact in range.
    (f.is_finite() && f.abs() < 1.7e38).then(|| f.trunc() as i128)
}

/// Python's `int(s, base)`: surrounding whitespace, a sign, the base prefix (`0x`, `0o`, `0b`;
/// any of them for base 0) and single underscores between digits.
fn parse_python_int(s: &str, base: i64) -> Option<i128> {
    let s = s.trim();
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..)?),
        Some(b'+') => (false, s.get(1..)?),
        _ => (false, s),
    };
    let prefix = body.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits, prefixed) = match (base, prefix.as_deref()) {
        (0 | 16, Some("0x")) => (16, body.get(2..)?, true),
        (0 | 8, Some("0o")) => (8, body.get(2..)?, true),
        (0 | 2, Some("0b")) => (2, body.get(2..)?, true),
        (0, _) => (10, body, false),
        (2..=36, _) => (u32::try_from(base).ok()?, body, false),
        _ => return None,
    };
    let mut total: i128 = 0;
    let mut seen_digit = false;
    let mut underscore_ok = prefixed;
    let mut last_underscore = false;
    for c in digits.chars() {
        if c == '_' {
            if !underscore_ok {
                return None;
            }
            underscore_ok = false;
            last_underscore = true;
            continue;
        }
        let digit = c.to_digit(radix)?;
        total = total.checked_mul(i128::from(radix))?.checked_add(i128::from(digit))?;
        seen_digit = true;
        underscore_ok = true;
        last_underscore = false;
    }
    if !seen_digit || last_underscore {
        return None;
    }
    // Base 0 reads decimals only without leading zeros ("010" is an error, "00" is 0).
    if base == 0 && !prefixed && total != 0 && digits.starts_with('0') {
        return None;
    }
    Some(if negative { -total } else { total })
}

/// Python's `float(s)`: surrounding whitespace, `inf`/`nan` in any case, underscores between
/// digits.
fn parse_python_float(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.contains('_') {
        let bytes = s.as_bytes();
        let between_digits = bytes.iter().enumerate().all(|(i, b)| {
            *b != b'_'
                || (i > 0
                    && bytes.get(i - 1).is_some_and(u8::is_ascii_digit)
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        });
        if !between_digits {
            return None;
        }
        return s.replace('_', "").parse().ok();
    }
    s.parse().ok()
}

/// `ternary(true_val, false_val, none_val=None)`: Ansible's inline if/else, with a third
/// choice for `none`.
fn ternary(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = Args::bind("ternary", rest, &["true_val", "false_val", "none_val"])?;
    let when_true = args.required(0)?.clone();
    let when_false = args.required(1)?.clone();
    check_defined(state, "ternary", value)?;
    if value.is_none()
        && let Some(when_none) = args.get(2)
    {
        return Ok(when_none.clone());
    }
    Ok(if value.is_true() { when_true } else { when_false })
}

/// `mandatory(msg=None)`: fails on an undefined value with Ansible's message (or `msg`).
fn mandatory(value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = Args::bind("mandatory", rest, &["msg"])?;
    if value.is_undefined() {
        let message = match args.get(0) {
            Some(msg) => msg.to_string(),
            None => "Mandatory variable not defined.".to_string(),
        };
        return Err(Error::new(ErrorKind::InvalidOperation, message));
    }
    Ok(value.clone())
}

/// `type_debug`: the Python type name Ansible would report, for debugging playbooks.
fn type_debug(value: &Value) -> &'static str {
    match value.kind() {
        ValueKind::Undefined => "AnsibleUndefined",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if value.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq if value.is_tuple() => "tuple",
        ValueKind::Seq => "list",
        ValueKind::Map => "dict",
        ValueKind::Iterable => "generator",
        _ => "object",
    }
}

// ---------------------------------------------------------------------------------------------
// Regular expressions (Python `re` syntax and semantics on the `regex` crate)
// ---------------------------------------------------------------------------------------------

/// Compiled patterns for the duration of one render, so a filter in a loop compiles once.
#[derive(Default)]
struct RegexCache(HashMap<(String, bool, bool), Regex>);

/// How much of the subject a pattern must cover, as Python's `search`, `match`, `fullmatch`.
#[derive(Clone, Copy, PartialEq)]
enum Anchor {
    Search,
    Start,
    Full,
}

/// Compiles a Python-syntax pattern (see [`python_pattern`]), through the render's cache.
fn compile(
    state: &mut State,
    name: &str,
    pattern: &str,
    ignorecase: bool,
    multiline: bool,
    anchor: Anchor,
) -> Result<Regex, Error> {
    let translated = python_pattern(pattern);
    let source = match anchor {
        Anchor::Search => translated,
        Anchor::Start => format!(r"\A(?:{translated})"),
        Anchor::Full => format!(r"\A(?:{translated})\z"),
    };
    let key = (source, ignorecase, multiline);
    let cache = state.get_or_insert_extension_with(RegexCache::default);
    if let Some(re) = cache.0.get(&key) {
        return Ok(re.clone());
    }
    let re = RegexBuilder::new(&key.0)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|e| fail(name, format!("invalid pattern `{pattern}`: {}", regex_error(&e))))?;
    if cache.0.len() >= 256 {
        cache.0.clear();
    }
    cache.0.insert(key, re.clone());
    Ok(re)
}

/// The one-line reason from the `regex` crate's multi-line message.
fn regex_error(e: &regex::Error) -> String {
    let full = e.to_string();
    full.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(|| full.split_whitespace().collect::<Vec<_>>().join(" "), str::to_string)
}

/// Rewrites the Python `re` syntax the `regex` crate reads differently: `\Z` (end of text),
/// a `{` that is not a quantifier (a literal in Python), `{,n}`, and `[`, `&`, `~`, `--` inside
/// a character class (literals in Python, set operations in `regex`). Constructs `regex` lacks
/// (look-around, backreferences) still fail to compile, with its message.
fn python_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let next = chars.get(i + 1).copied();
        if c == '\\' {
            match next {
                Some('Z') if !in_class => out.push_str(r"\z"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
            i += 2;
            continue;
        }
        if in_class {
            match c {
                ']' => {
                    in_class = false;
                    out.push(']');
                }
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                '-' if next == Some('-') => out.push_str(r"\-"),
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A `]` first in a class is a literal in Python.
                if chars.get(i) == Some(&']') {
                    out.push_str(r"\]");
                    i += 1;
                }
                continue;
            }
            '{' => {
                if let Some((quantifier, len)) = quantifier_at(&chars, i) {
                    out.push_str(&quantifier);
                    i += len;
                    continue;
                }
                out.push_str(r"\{");
            }
            '}' => out.push_str(r"\}"),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// A `{m,n}` quantifier starting at `chars[start]` as Python reads it, with its length.
fn quantifier_at(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut i = start + 1;
    let digits = |i: &mut usize| {
        let mut s = String::new();
        while let Some(c) = chars.get(*i).filter(|c| c.is_ascii_digit()) {
            s.push(*c);
            *i += 1;
        }
        s
    };
    let low = digits(&mut i);
    let high = if chars.get(i) == Some(&',') {
        i += 1;
        Some(digits(&mut i))
    } else {
        None
    };
    if chars.get(i) != Some(&'}') || (low.is_empty() && high.is_none()) {
        return None;
    }
    let text = match high {
        None => format!("{{{low}}}"),
        Some(high) => {
            let low = if low.is_empty() { "0" } else { &low };
            format!("{{{low},{high}}}")
        }
    };
    Some((text, i + 1 - start))
}

/// One piece of a parsed Python replacement template.
enum Piece {
    Literal(String),
    Group(usize),
}

/// Parses a Python `re.sub` replacement: `\1`, `\g<1>`, `\g<name>`, `\n` and the other
/// character escapes, octal `\0`/`\123`; an unknown escape of a non-letter stays as written.
fn parse_replacement(name: &str, replacement: &str, re: &Regex) -> Result<Vec<Piece>, Error> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = replacement.chars().peekable();
    let group = |literal: &mut String, pieces: &mut Vec<Piece>, index: usize| {
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(literal)));
        }
        pieces.push(Piece::Group(index));
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            literal.push(c);
            continue;
        }
        let Some(escape) = chars.next() else {
            return Err(fail(name, "bad escape (end of replacement)"));
        };
        match escape {
            'g' => {
                if chars.next() != Some('<') {
                    return Err(fail(name, r"missing < in \g<...> group reference"));
                }
                let mut group_name = String::new();
                loop {
                    match chars.next() {
                        Some('>') => break,
                        Some(ch) => group_name.push(ch),
                        None => return Err(fail(name, r"missing > in \g<...> group reference")),
                    }
                }
                let index = group_index(name, re, &group_name)?;
                group(&mut literal, &mut pieces, index);
            }
            '0' => {
                let mut code = 0u32;
                for _ in 0..2 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            code = code * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                literal.extend(char::from_u32(code));
            }
            '1'..='9' => {
                let mut digits = String::from(escape);
                if let Some(&second) = chars.peek()
                    && second.is_ascii_digit()
                {
                    chars.next();
                    digits.push(second);
                    if escape.is_digit(8)
                        && second.is_digit(8)
                        && let Some(&third) = chars.peek()
                        && third.is_digit(8)
                    {
                        chars.next();
                        digits.push(third);
                        let code = u32::from_str_radix(&digits, 8).unwrap_or(u32::MAX);
                        if code > 0o377 {
                            return Err(fail(
                                name,
                                format!(r"octal escape value \{digits} outside of range 0-0o377"),
                            ));
                        }
                        literal.extend(char::from_u32(code));
                        continue;
                    }
                }
                let index = group_index(name, re, &digits)?;
                group(&mut literal, &mut pieces, index);
            }
            'a' => literal.push('\x07'),
            'b' => literal.push('\x08'),
            'f' => literal.push('\x0c'),
            'n' => literal.push('\n'),
            'r' => literal.push('\r'),
            't' => literal.push('\t'),
            'v' => literal.push('\x0b'),
            '\\' => literal.push('\\'),
            other if other.is_ascii_alphabetic() => {
                return Err(fail(name, format!(r"bad escape \{other} in replacement")));
            }
            other => {
                literal.push('\\');
                literal.push(other);
            }
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

/// The index of a group named by number or by name, checked against the pattern.
fn group_index(name: &str, re: &Regex, group: &str) -> Result<usize, Error> {
    if !group.is_empty() && group.bytes().all(|b| b.is_ascii_digit()) {
        return match group.parse::<usize>() {
            Ok(index) if index < re.captures_len() => Ok(index),
            _ => Err(fail(name, format!("invalid group reference {group}"))),
        };
    }
    re.capture_names()
        .position(|n| n == Some(group))
        .ok_or_else(|| fail(name, format!("unknown group name '{group}'")))
}

/// The matches of `re` in `haystack` in Python's order. Unlike the `regex` crate, Python also
/// takes an empty match right after a non-empty one (`re.sub('x*', '-', 'abxd')` gives
/// `-a-b--d-`), and only refuses the same empty match twice.
struct PythonMatches<'r, 'h> {
    re: &'r Regex,
    haystack: &'h str,
    pos: usize,
    after_empty: bool,
}

impl<'r, 'h> PythonMatches<'r, 'h> {
    fn new(re: &'r Regex, haystack: &'h str) -> Self {
        Self {
            re,
            haystack,
            pos: 0,
            after_empty: false,
        }
    }
}

impl<'h> Iterator for PythonMatches<'_, 'h> {
    type Item = Captures<'h>;

    fn next(&mut self) -> Option<Captures<'h>> {
        loop {
            let caps = self.re.captures_at(self.haystack, self.pos)?;
            let whole = caps.get(0)?;
            if self.after_empty && whole.is_empty() && whole.start() == self.pos {
                // The same empty match again: look from the next character on.
                let next = self.haystack.get(self.pos..)?.chars().next()?;
                self.pos += next.len_utf8();
                self.after_empty = false;
                continue;
            }
            self.pos = whole.end();
            self.after_empty = whole.is_empty();
            return Some(caps);
        }
    }
}

/// Writes a parsed replacement for one match; a group that did not take part is empty.
fn expand(pieces: &[Piece], caps: &Captures<'_>, out: &mut String) {
    for piece in pieces {
        match piece {
            Piece::Literal(s) => out.push_str(s),
            Piece::Group(i) => out.push_str(caps.get(*i).map_or("", |m| m.as_str())),
        }
    }
}

/// `regex_replace(pattern, replacement, ignorecase=False, multiline=False, count=0,
/// mandatory_count=0)`: Python's `re.sub`, backreferences `\1` and `\g<name>` included.
/// `comment`: text as a comment block, in Ansible's styles (`plain`, `erlang`, `c`, `cblock`,
/// `xml`) and with its options (`decoration`, `prefix`, `postfix`, their counts, ...).
fn comment(value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    const PARAMS: &[&str] = &[
        "style",
        "decoration",
        "newline",
        "beginning",
        "prefix",
        "prefix_count",
        "postfix",
        "postfix_count",
        "end",
    ];
    let args = Args::bind("comment", rest, PARAMS)?;
    let text = value.as_str().map_or_else(|| value.to_string(), str::to_string);
    let style = args.string(0)?.unwrap_or("plain");
    let (beginning, decoration, end) = match style {
        "plain" => ("", "# ", ""),
        "erlang" => ("", "% ", ""),
        "c" => ("", "// ", ""),
        "cblock" => ("/*", " * ", " */"),
        "xml" => ("<!--", " - ", "-->"),
        other => return Err(fail("comment", format!("unknown style `{other}`"))),
    };
    let text_of =
        |i: usize, default: &str| -> Result<String, Error> { Ok(args.string(i)?.unwrap_or(default).to_string()) };
    let prepostfix = text_of(1, decoration)?;
    let newline = text_of(2, "\n")?;
    let beginning = text_of(3, beginning)?;
    let prefix = text_of(4, prepostfix.trim_end())?;
    let count = |i: usize| -> Result<usize, Error> {
        match args.get(i) {
            None => Ok(1),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| fail("comment", format!("`{}` must be a count", PARAMS[i]))),
        }
    };
    let prefix_count = count(5)?;
    let postfix = text_of(6, prepostfix.trim_end())?;
    let postfix_count = count(7)?;
    let end = text_of(8, end)?;
    // The style's decoration, unless one was given.
    let decoration = if args.get(1).is_some() {
        prepostfix.clone()
    } else {
        decoration.to_string()
    };
    let mut out = String::new();
    if !beginning.is_empty() {
        out.push_str(&beginning);
        out.push_str(&newline);
    }
    if !prefix.is_empty() {
        let one = if prefix != newline {
            format!("{prefix}{newline}")
        } else {
            newline.clone()
        };
        out.push_str(&one.repeat(prefix_count));
    }
    let body = format!(
        "{decoration}{}",
        text.replace(&newline, &format!("{newline}{decoration}"))
    );
    out.push_str(&body.replace(
        &format!("{decoration}{newline}"),
        &format!("{}{newline}", decoration.trim_end()),
    ));
    for _ in 0..postfix_count {
        out.push_str(&newline);
        out.push_str(&postfix);
    }
    if !end.is_empty() {
        out.push_str(&newline);
        out.push_str(&end);
    }
    Ok(Value::from(out))
}

fn regex_replace(state: &mut State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    const NAME: &str = "regex_replace";
    let args = Args::bind(
        NAME,
        rest,
        &[
            "pattern",
            "replacement",
            "ignorecase",
            "multiline",
            "count",
            "mandatory_count",
        ],
    )?;
    let subject = text(state, NAME, value)?;
    let pattern = args.string(0)?.unwrap_or_default();
    let replacement = args.string(1)?.unwrap_or_default();
    let count = args.int(4)?.unwrap_or(0);
    let mandatory_count = args.int(5)?.unwrap_or(0);
    let re = compile(
        state,
        NAME,
        pattern,
        args.flag(2, false),
        args.flag(3, false),
        Anchor::Search,
    )?;
    let pieces = parse_replacement(NAME, replacement, &re)?;
    let mut out = String::with_capacity(subject.len());
    let mut last = 0;
    let mut done: i64 = 0;
    if count >= 0 {
        for caps in PythonMatches::new(&re, &subject) {
            if count > 0 && done >= count {
                break;
            }
            let Some(whole) = caps.get(0) else { continue };
            out.push_str(subject.get(last..whole.start()).unwrap_or_default());
            expand(&pieces, &caps, &mut out);
            last = whole.end();
            done += 1;
        }
    }
    out.push_str(subject.get(last..).unwrap_or_default());
    if mandatory_count != 0 && mandatory_count != done {
        return Err(fail(
            NAME,
            format!("'{pattern}' should match {mandatory_count} times, but matches {done} times in '{subject}'"),
        ));
    }
    Ok(Value::from(out))
}

/// `regex_search(pattern, *groups, ignorecase=False, multiline=False)`: Python's `re.search`;
/// the matched text, `none` without a match, or with `'\\1'`/`'\\g<name>'` arguments the list
/// of those groups.
fn regex_search(state: &mut State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    const NAME: &str = "regex_search";
    let mut positional = rest.into_values();
    let kwargs = if positional.last().is_some_and(Value::is_kwargs) {
        positional.pop()
    } else {
        None
    };
    let (mut ignorecase, mut multiline) = (false, false);
    if let Some(kwargs) = kwargs {
        for key in kwargs.try_iter()? {
            let flag = kwargs.get_item(&key)?.is_true();
            match key.as_str() {
                Some("ignorecase") => ignorecase = flag,
                Some("multiline") => multiline = flag,
                _ => return Err(fail(NAME, format!("unexpected keyword argument `{key}`"))),
            }
        }
    }
    let mut positional = positional.into_iter();
    let pattern = match positional.next() {
        Some(p) => p
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| fail(NAME, "the pattern must be a string"))?,
        None => return Err(fail(NAME, "missing required argument `pattern`")),
    };
    let subject = text(state, NAME, value)?.into_owned();
    let re = compile(state, NAME, &pattern, ignorecase, multiline, Anchor::Search)?;
    let mut groups = Vec::new();
    for arg in positional {
        let spec = arg.as_str().unwrap_or_default();
        let group = if let Some(inner) = spec.strip_prefix(r"\g<").and_then(|s| s.strip_suffix('>')) {
            inner
        } else if let Some(digits) = spec
            .strip_prefix('\\')
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        {
            digits
        } else {
            return Err(fail(
                NAME,
                format!(r"unknown argument `{arg}` (expected '\\1' or '\\g<name>')"),
            ));
        };
        groups.push(group_index(NAME, &re, group)?);
    }
    let Some(caps) = re.captures(&subject) else {
        return Ok(Value::from(()));
    };
    let group = |i: usize| caps.get(i).map_or(Value::from(()), |m| Value::from(m.as_str()));
    if groups.is_empty() {
        Ok(group(0))
    } else {
        Ok(Value::from(groups.into_iter().map(group).collect::<Vec<_>>()))
    }
}

/// `regex_findall(pattern, multiline=False, ignorecase=False)`: Python's `re.findall`; the
/// matches, the first group's texts, or tuples of all groups.
fn regex_findall(state: &mut State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    const NAME: &str = "regex_findall";
    let args = Args::bind(NAME, rest, &["regex", "multiline", "ignorecase"])?;
    let subject = text(state, NAME, value)?;
    let pattern = args.string(0)?.unwrap_or_default();
    let re = compile(
        state,
        NAME,
        pattern,
        args.flag(2, false),
        args.flag(1, false),
        Anchor::Search,
    )?;
    let text_of = |caps: &Captures<'_>, i: usize| Value::from(caps.get(i).map_or("", |m| m.as_str()));
    let found: Vec<Value> = PythonMatches::new(&re, &subject)
        .map(|caps| match re.captures_len() {
            1 => text_of(&caps, 0),
            2 => text_of(&caps, 1),
            n => Value::from(Tuple::from((1..n).map(|i| text_of(&caps, i)).collect::<Vec<_>>())),
        })
        .collect();
    Ok(Value::from(found))
}

/// `regex_escape(re_type='python')`: escapes regex metacharacters, Python's `re.escape` or
/// POSIX basic/extended.
fn regex_escape(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<String, Error> {
    const NAME: &str = "regex_escape";
    let args = Args::bind(NAME, rest, &["re_type"])?;
    let special: &str = match args.string(0)?.unwrap_or("python") {
        "python" => "()[]{}?*+-|^$\\.&~# \t\n\r\x0b\x0c",
        "posix_basic" => "[].^$*\\",
        "posix_extended" => "^$.*+?[]|(){}\\",
        other => return Err(fail(NAME, format!("invalid regex type ({other})"))),
    };
    let subject = text(state, NAME, value)?;
    let mut out = String::with_capacity(subject.len() * 2);
    for c in subject.chars() {
        if special.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

/// The shared body of the `match`, `search` and `regex` tests.
fn regex_test(
    state: &mut State,
    name: &'static str,
    value: &Value,
    args: &Args,
    default_type: &str,
) -> Result<bool, Error> {
    let subject = text(state, name, value)?.into_owned();
    let pattern = args.string(0)?.unwrap_or_default();
    let anchor = match args.string(3)?.unwrap_or(default_type) {
        "search" => Anchor::Search,
        "match" => Anchor::Start,
        "fullmatch" => Anchor::Full,
        other => return Err(fail(name, format!("unknown match_type `{other}`"))),
    };
    let re = compile(state, name, pattern, args.flag(1, false), args.flag(2, false), anchor)?;
    Ok(re.is_match(&subject))
}

/// `match(pattern, ignorecase=False, multiline=False)`: Python's `re.match`, anchored at the
/// start of the value.
fn is_match(state: &mut State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<bool, Error> {
    let args = Args::bind("match", rest, &["pattern", "ignorecase", "multiline"])?;
    regex_test(state, "match", value, &args, "match")
}

/// `search(pattern, ignorecase=False, multiline=False)`: Python's `re.search`, anywhere in
/// the value.
fn is_search(state: &mut State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<bool, Error> {
    let args = Args::bind("search", rest, &["pattern", "ignorecase", "multiline"])?;
    regex_test(state, "search", value, &args, "search")
}

/// `regex(pattern, ignorecase=False, multiline=False, match_type='search')`: the general form
/// of `match` and `search`.
fn is_regex(state: &mut State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<bool, Error> {
    let args = Args::bind("regex", rest, &["pattern", "ignorecase", "multiline", "match_type"])?;
    regex_test(state, "regex", value, &args, "search")
}

// ---------------------------------------------------------------------------------------------
// Serialization
// ---------------------------------------------------------------------------------------------

/// How a value is written out by [`View`].
#[derive(Clone, Copy)]
struct Style {
    /// Keys in sorted order, as Python's `sort_keys=True`.
    sort_keys: bool,
    /// Collections holding only scalars in YAML flow style (`[1, 2]`), as PyYAML's
    /// `default_flow_style=None`.
    flow_leaves: bool,
}

/// A template value seen through serde, keyed and styled the way Ansible's dumps write it.
struct View<'a> {
    value: &'a Value,
    style: Style,
}

impl View<'_> {
    fn of(value: &Value, style: Style) -> View<'_> {
        View { value, style }
    }
}

/// Whether a value is no collection (PyYAML writes collections of these in flow style).
fn is_scalar(value: &Value) -> bool {
    !matches!(value.kind(), ValueKind::Seq | ValueKind::Map | ValueKind::Iterable)
}

impl Serialize for View<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.value.kind() {
            ValueKind::Undefined => Err(S::Error::custom("the value holds an undefined value")),
            ValueKind::Map => {
                let mut pairs: Vec<(Value, Value)> = entries("serialize", self.value)
                    .map_err(S::Error::custom)?
                    .into_iter()
                    .collect();
                if self.style.sort_keys {
                    pairs.sort_by(|a, b| a.0.cmp(&b.0));
                }
                let flow = self.style.flow_leaves && !pairs.is_empty() && pairs.iter().all(|(_, v)| is_scalar(v));
                let body = MapView {
                    pairs: &pairs,
                    style: self.style,
                };
                if flow {
                    serde_saphyr::FlowMap(body).serialize(serializer)
                } else {
                    body.serialize(serializer)
                }
            }
            ValueKind::Seq | ValueKind::Iterable => {
                let list: Vec<Value> = self.value.try_iter().map_err(S::Error::custom)?.collect();
                let flow = self.style.flow_leaves && !list.is_empty() && list.iter().all(is_scalar);
                let body = SeqView {
                    items: &list,
                    style: self.style,
                };
                if flow {
                    serde_saphyr::FlowSeq(body).serialize(serializer)
                } else {
                    body.serialize(serializer)
                }
            }
            ValueKind::Plain => serializer.serialize_str(&self.value.to_string()),
            _ => self.value.serialize(serializer),
        }
    }
}

/// The entries of a mapping for [`View`].
struct MapView<'a> {
    pairs: &'a [(Value, Value)],
    style: Style,
}

impl Serialize for MapView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.pairs.len()))?;
        for (key, value) in self.pairs {
            map.serialize_entry(&View::of(key, self.style), &View::of(value, self.style))?;
        }
        map.end()
    }
}

/// The items of a list for [`View`].
struct SeqView<'a> {
    items: &'a [Value],
    style: Style,
}

impl Serialize for SeqView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.items.len()))?;
        for item in self.items {
            seq.serialize_element(&View::of(item, self.style))?;
        }
        seq.end()
    }
}

/// Python's `json.dumps` layout: `", "` and `": "` separators when compact, `","` and
/// `": "` with newlines when indented, and `\uXXXX` escapes for non-ASCII under
/// `ensure_ascii`.
struct PythonJson<'a> {
    pretty: Option<PrettyFormatter<'a>>,
    ensure_ascii: bool,
}

impl Formatter for PythonJson<'_> {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        match &mut self.pretty {
            Some(p) => p.begin_array(w),
            None => w.write_all(b"["),
        }
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        match &mut self.pretty {
            Some(p) => p.end_array(w),
            None => w.write_all(b"]"),
        }
    }

    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        match &mut self.pretty {
            Some(p) => p.begin_array_value(w, first),
            None if first => Ok(()),
            None => w.write_all(b", "),
        }
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        match &mut self.pretty {
            Some(p) => p.end_array_value(w),
            None => Ok(()),
        }
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        match &mut self.pretty {
            Some(p) => p.begin_object(w),
            None => w.write_all(b"{"),
        }
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        match &mut self.pretty {
            Some(p) => p.end_object(w),
            None => w.write_all(b"}"),
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        match &mut self.pretty {
            Some(p) => p.begin_object_key(w, first),
            None if first => Ok(()),
            None => w.write_all(b", "),
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        match &mut self.pretty {
            Some(p) => p.end_object_value(w),
            None => Ok(()),
        }
    }

    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        if !self.ensure_ascii {
            return w.write_all(fragment.as_bytes());
        }
        let mut units = [0u16; 2];
        for c in fragment.chars() {
            if c.is_ascii() && c != '\x7f' {
                w.write_all(&[c as u8])?;
            } else {
                for unit in c.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// Writes JSON as Python's `json.dumps(value, indent=, sort_keys=, ensure_ascii=)` lays it out.
fn dump_json(
    name: &str,
    value: &Value,
    indent: Option<usize>,
    sort_keys: bool,
    ensure_ascii: bool,
) -> Result<String, Error> {
    let spaces = indent.map(|n| " ".repeat(n));
    let formatter = PythonJson {
        pretty: spaces.as_deref().map(|s| PrettyFormatter::with_indent(s.as_bytes())),
        ensure_ascii,
    };
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    let style = Style {
        sort_keys,
        flow_leaves: false,
    };
    View::of(value, style)
        .serialize(&mut serializer)
        .map_err(|e| fail(name, e))?;
    String::from_utf8(out).map_err(|e| fail(name, e))
}

/// Reads the `indent` argument of the dump filters.
fn indent_arg(args: &Args, index: usize) -> Result<Option<usize>, Error> {
    args.int(index)?
        .map(|n| usize::try_from(n).map_err(|_| fail(args.name, "`indent` must not be negative")))
        .transpose()
}

/// `to_json(indent=None, sort_keys=False, ensure_ascii=True)`: Python's `json.dumps`, compact
/// with `", "` and `": "` like Ansible's output.
fn to_json(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    const NAME: &str = "to_json";
    let args = Args::bind_keywords(NAME, rest, &["indent", "sort_keys", "ensure_ascii"])?;
    check_defined(state, NAME, value)?;
    let indent = indent_arg(&args, 0)?;
    dump_json(NAME, value, indent, args.flag(1, false), args.flag(2, true)).map(Value::from)
}

/// `to_nice_json(indent=4, sort_keys=True, ensure_ascii=True)`: indented, sorted JSON for
/// humans and diffs.
fn to_nice_json(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    const NAME: &str = "to_nice_json";
    let args = Args::bind(NAME, rest, &["indent", "sort_keys", "ensure_ascii"])?;
    check_defined(state, NAME, value)?;
    let indent = indent_arg(&args, 0)?.unwrap_or(4);
    dump_json(NAME, value, Some(indent), args.flag(1, true), args.flag(2, true)).map(Value::from)
}

/// `from_json`: parses a JSON string into data.
fn from_json(state: &State, value: &Value) -> Result<Value, Error> {
    const NAME: &str = "from_json";
    let source = text(state, NAME, value)?;
    let parsed: serde_json::Value =
        serde_json::from_str(&source).map_err(|e| fail(NAME, format!("invalid JSON: {e}")))?;
    Ok(Value::from(Serde(parsed)))
}

/// Writes YAML with serde-saphyr: keys sorted by default like PyYAML, leaf collections in
/// flow style unless `block` is asked for.
fn dump_yaml(name: &str, value: &Value, indent: usize, sort_keys: bool, flow_leaves: bool) -> Result<String, Error> {
    if !(1..=64).contains(&indent) {
        return Err(fail(name, "`indent` must be between 1 and 64"));
    }
    let mut options = serde_saphyr::SerializerOptions::default();
    options.indent_step = indent;
    let style = Style { sort_keys, flow_leaves };
    serde_saphyr::to_string_with_options(&View::of(value, style), options).map_err(|e| fail(name, e))
}

/// The keyword arguments of the YAML dump filters.
const YAML_PARAMS: &[&str] = &["indent", "sort_keys", "default_flow_style", "width", "allow_unicode"];

/// Whether leaf collections are written in flow style, from PyYAML's `default_flow_style`:
/// `None` for leaves only, `False` for none; `True` (all flow style) is refused.
fn flow_leaves(name: &str, args: &Args, default: bool) -> Result<bool, Error> {
    match args.raw(2) {
        None => Ok(default),
        Some(v) if v.is_none() => Ok(true),
        Some(v) if v.kind() == ValueKind::Bool && !v.is_true() => Ok(false),
        Some(_) => Err(fail(
            name,
            "`default_flow_style` must be none or false (full flow style is not supported)",
        )),
    }
}

/// `to_yaml(indent=2, sort_keys=True, default_flow_style=None)`: YAML for machines, with
/// PyYAML's flow style for lists and dicts that hold only scalars. `width` and
/// `allow_unicode` are accepted; lines are never folded and text stays Unicode.
fn to_yaml(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    const NAME: &str = "to_yaml";
    let args = Args::bind_keywords(NAME, rest, YAML_PARAMS)?;
    check_defined(state, NAME, value)?;
    let indent = indent_arg(&args, 0)?.unwrap_or(2);
    let flow = flow_leaves(NAME, &args, true)?;
    dump_yaml(NAME, value, indent, args.flag(1, true), flow).map(Value::from)
}

/// `to_nice_yaml(indent=4, sort_keys=True)`: block-style YAML for humans.
fn to_nice_yaml(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    const NAME: &str = "to_nice_yaml";
    let args = Args::bind(NAME, rest, YAML_PARAMS)?;
    check_defined(state, NAME, value)?;
    let indent = indent_arg(&args, 0)?.unwrap_or(4);
    let flow = flow_leaves(NAME, &args, false)?;
    dump_yaml(NAME, value, indent, args.flag(1, true), flow).map(Value::from)
}

/// `from_yaml`: parses a YAML string the way playbooks are read (YAML 1.1 booleans such as
/// `yes`, legacy octal); `none` and non-strings pass through like in Ansible.
fn from_yaml(state: &State, value: &Value) -> Result<Value, Error> {
    const NAME: &str = "from_yaml";
    check_defined(state, NAME, value)?;
    let Some(source) = value.as_str() else {
        return Ok(value.clone());
    };
    let source = Source::new("<from_yaml>", source);
    let node = yaml::parse(&source).map_err(|d| match &d.location {
        Some(at) if at.line > 0 => fail(NAME, format!("{} (line {})", d.message, at.line)),
        _ => fail(NAME, d.message),
    })?;
    Ok(node_value(&node))
}

/// Converts a parsed YAML node into a template value.
fn node_value(node: &Node) -> Value {
    match &node.value {
        yaml::Value::Null => Value::from(()),
        yaml::Value::Bool(b) => Value::from(*b),
        yaml::Value::Int(i) => Value::from(*i),
        yaml::Value::Float(f) => Value::from(*f),
        yaml::Value::Str(s) => Value::from(s.as_str()),
        yaml::Value::Seq(items) => Value::from(items.iter().map(node_value).collect::<Vec<_>>()),
        yaml::Value::Map(pairs) => Value::from_pairs(pairs.iter().map(|(k, v)| (node_value(k), node_value(v)))),
    }
}

// ---------------------------------------------------------------------------------------------
// Encodings and digests
// ---------------------------------------------------------------------------------------------

/// Python's normalized codec name for the encodings Ansible users pass.
fn codec(name: &str, encoding: &str) -> Result<&'static str, Error> {
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" => Ok("utf-8"),
        "utf-16-le" | "utf-16le" | "utf16le" => Ok("utf-16-le"),
        "utf-16-be" | "utf-16be" | "utf16be" => Ok("utf-16-be"),
        "ascii" | "us-ascii" => Ok("ascii"),
        "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" => Ok("latin-1"),
        _ => Err(fail(name, format!("unsupported encoding `{encoding}`"))),
    }
}

/// Encodes text to bytes in one of the [`codec`] encodings.
fn encode_text(name: &str, s: &str, encoding: &str) -> Result<Vec<u8>, Error> {
    let unencodable = || fail(name, format!("the text cannot be encoded as {encoding}"));
    match codec(name, encoding)? {
        "utf-16-le" => Ok(s.encode_utf16().flat_map(u16::to_le_bytes).collect()),
        "utf-16-be" => Ok(s.encode_utf16().flat_map(u16::to_be_bytes).collect()),
        "ascii" if s.is_ascii() => Ok(s.as_bytes().to_vec()),
        "ascii" => Err(unencodable()),
        "latin-1" => s
            .chars()
            .map(|c| u8::try_from(u32::from(c)).map_err(|_| unencodable()))
            .collect(),
        _ => Ok(s.as_bytes().to_vec()),
    }
}

/// Decodes bytes as text in one of the [`codec`] encodings.
fn decode_text(name: &str, bytes: &[u8], encoding: &str) -> Result<String, Error> {
    let undecodable = || fail(name, format!("the decoded bytes are not valid {encoding}"));
    let utf16 = |to_unit: fn([u8; 2]) -> u16| {
        if !bytes.len().is_multiple_of(2) {
            return Err(undecodable());
        }
        let units: Vec<u16> = bytes.chunks_exact(2).map(|pair| to_unit([pair[0], pair[1]])).collect();
        String::from_utf16(&units).map_err(|_| undecodable())
    };
    match codec(name, encoding)? {
        "utf-16-le" => utf16(u16::from_le_bytes),
        "utf-16-be" => utf16(u16::from_be_bytes),
        "ascii" if bytes.is_ascii() => Ok(bytes.iter().map(|b| char::from(*b)).collect()),
        "ascii" => Err(undecodable()),
        "latin-1" => Ok(bytes.iter().map(|b| char::from(*b)).collect()),
        _ => String::from_utf8(bytes.to_vec()).map_err(|_| undecodable()),
    }
}

/// `b64encode(encoding='utf-8', urlsafe=False)`: Base64 of the text's bytes (`utf-16-le` for
/// PowerShell's `-EncodedCommand`).
fn b64encode(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<String, Error> {
    const NAME: &str = "b64encode";
    let args = Args::bind(NAME, rest, &["encoding", "urlsafe"])?;
    let source = text(state, NAME, value)?;
    let bytes = encode_text(NAME, &source, args.string(0)?.unwrap_or("utf-8"))?;
    Ok(if args.flag(1, false) {
        base64::engine::general_purpose::URL_SAFE.encode(bytes)
    } else {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    })
}

/// `b64decode(encoding='utf-8', urlsafe=False)`: Python's lenient `base64.b64decode`
/// (characters outside the alphabet, such as line breaks, are skipped; padding is required).
fn b64decode(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<String, Error> {
    const NAME: &str = "b64decode";
    let args = Args::bind(NAME, rest, &["encoding", "urlsafe"])?;
    let source = text(state, NAME, value)?;
    let urlsafe = args.flag(1, false);
    let cleaned: String = source
        .chars()
        .map(|c| match c {
            '-' if urlsafe => '+',
            '_' if urlsafe => '/',
            _ => c,
        })
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        .collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
    );
    let bytes = engine
        .decode(cleaned)
        .map_err(|e| fail(NAME, format!("invalid base64: {e}")))?;
    decode_text(NAME, &bytes, args.string(0)?.unwrap_or("utf-8"))
}

/// The hex digest of `bytes` with one of the algorithms Ansible users ask `hash` for.
fn hex_digest(name: &str, algorithm: &str, bytes: &[u8]) -> Result<String, Error> {
    Ok(match algorithm.to_ascii_lowercase().as_str() {
        "md5" => hex::encode(Md5::digest(bytes)),
        "sha1" => hex::encode(Sha1::digest(bytes)),
        "sha224" => hex::encode(Sha224::digest(bytes)),
        "sha256" => hex::encode(Sha256::digest(bytes)),
        "sha384" => hex::encode(Sha384::digest(bytes)),
        "sha512" => hex::encode(Sha512::digest(bytes)),
        other => {
            return Err(fail(
                name,
                format!("unsupported hash type `{other}` (md5, sha1, sha224, sha256, sha384, sha512)"),
            ));
        }
    })
}

/// `hash(hashtype='sha1')`: the hex digest of the text's UTF-8 bytes.
fn hash(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<String, Error> {
    const NAME: &str = "hash";
    let args = Args::bind(NAME, rest, &["hashtype"])?;
    let source = text(state, NAME, value)?;
    hex_digest(NAME, args.string(0)?.unwrap_or("sha1"), source.as_bytes())
}

/// `checksum`: the SHA-1 hex digest, the checksum Ansible uses for files.
fn checksum(state: &State, value: &Value) -> Result<String, Error> {
    hex_digest("checksum", "sha1", text(state, "checksum", value)?.as_bytes())
}

/// `sha1`: the SHA-1 hex digest of the text.
fn sha1(state: &State, value: &Value) -> Result<String, Error> {
    hex_digest("sha1", "sha1", text(state, "sha1", value)?.as_bytes())
}

/// `md5`: the MD5 hex digest of the text.
fn md5(state: &State, value: &Value) -> Result<String, Error> {
    hex_digest("md5", "md5", text(state, "md5", value)?.as_bytes())
}

/// The characters of a crypt(3) salt.
const SALT_CHARS: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The byte order in which SHA-256-crypt encodes its digest (step 22 of Drepper's
/// SHA-crypt specification; the `sha-crypt` crate keeps its copy private).
const SHA256_ORDER: [usize; 32] = [
    20, 10, 0, 11, 1, 21, 2, 22, 12, 23, 13, 3, 14, 4, 24, 5, 25, 15, 26, 16, 6, 17, 7, 27, 8, 28, 18, 29, 19, 9, 30,
    31,
];

/// The byte order in which SHA-512-crypt encodes its digest (see [`SHA256_ORDER`]).
const SHA512_ORDER: [usize; 64] = [
    42, 21, 0, 1, 43, 22, 23, 2, 44, 45, 24, 3, 4, 46, 25, 26, 5, 47, 48, 27, 6, 7, 49, 28, 29, 8, 50, 51, 30, 9, 10,
    52, 31, 32, 11, 53, 54, 33, 12, 13, 55, 34, 35, 14, 56, 57, 36, 15, 16, 58, 37, 38, 17, 59, 60, 39, 18, 19, 61, 40,
    41, 20, 62, 63,
];

/// A random crypt(3) salt of `size` characters, as Ansible draws one when none is given.
fn random_salt(name: &str, size: usize) -> Result<String, Error> {
    let mut bytes = vec![0u8; size];
    getrandom::fill(&mut bytes).map_err(|e| fail(name, format!("no random salt: {e}")))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(SALT_CHARS[usize::from(b & 63)]))
        .collect())
}

/// `password_hash(hashtype='sha512', salt=None, salt_size=None, rounds=None)`: a crypt(3)
/// `$6$` (or `$5$` for `sha256`) hash for `/etc/shadow`, deterministic for a given salt. Like
/// Ansible, 5000 rounds are the default and then left out of the string.
fn password_hash(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<String, Error> {
    const NAME: &str = "password_hash";
    let args = Args::bind(NAME, rest, &["hashtype", "salt", "salt_size", "rounds", "ident"])?;
    let password = text(state, NAME, value)?;
    let sha512 = match args.string(0)?.unwrap_or("sha512") {
        "sha512" | "sha512_crypt" => true,
        "sha256" | "sha256_crypt" => false,
        other => {
            return Err(fail(
                NAME,
                format!("unsupported hash type `{other}` (only sha512 and sha256 crypt)"),
            ));
        }
    };
    if args.get(4).is_some() {
        return Err(fail(NAME, "`ident` applies to bcrypt only"));
    }
    let salt = match args.string(1)? {
        Some(salt) if !salt.is_empty() => salt.to_string(),
        _ => {
            let size = args.int(2)?.unwrap_or(16);
            let size = usize::try_from(size)
                .ok()
                .filter(|n| (1..=16).contains(n))
                .ok_or_else(|| fail(NAME, "`salt_size` must be between 1 and 16"))?;
            random_salt(NAME, size)?
        }
    };
    if salt.len() > 16 {
        return Err(fail(NAME, "salt too large (at most 16 characters)"));
    }
    if !salt.bytes().all(|b| SALT_CHARS.contains(&b)) {
        return Err(fail(NAME, "invalid characters in salt (allowed: a-z A-Z 0-9 . /)"));
    }
    let rounds = args.int(3)?.unwrap_or(5000);
    let params = u32::try_from(rounds)
        .ok()
        .and_then(|r| sha_crypt::Params::new(r).ok())
        .ok_or_else(|| fail(NAME, "`rounds` must be between 1000 and 999999999"))?;
    let rounds_field = if rounds == 5000 {
        String::new()
    } else {
        format!("rounds={rounds}$")
    };
    let encoded = if sha512 {
        let raw = sha_crypt::sha512_crypt(password.as_bytes(), salt.as_bytes(), params);
        let ordered: Vec<u8> = SHA512_ORDER.iter().map(|&i| raw[i]).collect();
        base64ct::Base64ShaCrypt::encode_string(&ordered)
    } else {
        let raw = sha_crypt::sha256_crypt(password.as_bytes(), salt.as_bytes(), params);
        let ordered: Vec<u8> = SHA256_ORDER.iter().map(|&i| raw[i]).collect();
        base64ct::Base64ShaCrypt::encode_string(&ordered)
    };
    let id = if sha512 { 6 } else { 5 };
    Ok(format!("${id}${rounds_field}{salt}${encoded}"))
}

// ---------------------------------------------------------------------------------------------
// Paths (POSIX rules of Python's os.path)
// ---------------------------------------------------------------------------------------------

/// `basename`: the part after the last `/` (`'/etc/'` gives `''`), like `os.path.basename`.
fn basename(state: &State, value: &Value) -> Result<String, Error> {
    let path = text(state, "basename", value)?;
    Ok(path.rsplit('/').next().unwrap_or_default().to_string())
}

/// `dirname`: the part before the last `/`, trailing slashes dropped, like `os.path.dirname`.
fn dirname(state: &State, value: &Value) -> Result<String, Error> {
    let path = text(state, "dirname", value)?;
    let cut = path.rfind('/').map_or(0, |i| i + 1);
    let head = path.get(..cut).unwrap_or_default();
    Ok(if head.bytes().any(|b| b != b'/') {
        head.trim_end_matches('/').to_string()
    } else {
        head.to_string()
    })
}

/// `splitext`: `(root, extension)` like `os.path.splitext` (a leading dot is no extension).
fn splitext(state: &State, value: &Value) -> Result<Value, Error> {
    let path = text(state, "splitext", value)?;
    let sep = path.rfind('/');
    if let Some(dot) = path.rfind('.')
        && sep.is_none_or(|s| dot > s)
    {
        let name_start = sep.map_or(0, |s| s + 1);
        let before_dot = path.get(name_start..dot).unwrap_or_default();
        if before_dot.bytes().any(|b| b != b'.') {
            let root = path.get(..dot).unwrap_or_default();
            let ext = path.get(dot..).unwrap_or_default();
            return Ok(Value::from((root, ext)));
        }
    }
    Ok(Value::from((path.as_ref(), "")))
}

// ---------------------------------------------------------------------------------------------
// Collections
// ---------------------------------------------------------------------------------------------

/// The `list_merge` strategies of `combine`.
const LIST_MERGES: [&str; 6] = ["replace", "keep", "append", "prepend", "append_rp", "prepend_rp"];

/// Ansible's `merge_hash`: `high` wins over `low`; nested dicts merge when `recursive`, lists
/// per `list_merge`.
fn merge(
    mut low: IndexMap<Value, Value>,
    high: IndexMap<Value, Value>,
    recursive: bool,
    list_merge: &str,
) -> Result<IndexMap<Value, Value>, Error> {
    for (key, high_value) in high {
        let merged = match low.get(&key) {
            Some(low_value)
                if recursive && low_value.kind() == ValueKind::Map && high_value.kind() == ValueKind::Map =>
            {
                let inner = merge(
                    entries("combine", low_value)?,
                    entries("combine", &high_value)?,
                    recursive,
                    list_merge,
                )?;
                Value::from_pairs(inner)
            }
            Some(low_value) if is_list(low_value) && is_list(&high_value) => {
                let low_items = items("combine", low_value)?;
                let high_items = items("combine", &high_value)?;
                let kept = |from: &[Value]| -> Vec<Value> {
                    from.iter().filter(|v| !high_items.contains(v)).cloned().collect()
                };
                Value::from(match list_merge {
                    "keep" => low_items,
                    "append" => [low_items, high_items].concat(),
                    "prepend" => [high_items, low_items].concat(),
                    "append_rp" => [kept(&low_items), high_items.clone()].concat(),
                    "prepend_rp" => [high_items.clone(), kept(&low_items)].concat(),
                    _ => high_items,
                })
            }
            _ => high_value,
        };
        low.insert(key, merged);
    }
    Ok(low)
}

/// Whether Ansible's `flatten` drops an item as null.
fn is_null(value: &Value) -> bool {
    value.is_none() || matches!(value.as_str(), Some("None" | "null"))
}

/// `combine(*dicts, recursive=False, list_merge='replace')`: merges dicts (or lists of dicts)
/// left to right, the later winning.
fn combine(value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    const NAME: &str = "combine";
    let mut positional = rest.into_values();
    let kwargs = if positional.last().is_some_and(Value::is_kwargs) {
        positional.pop()
    } else {
        None
    };
    let mut recursive = false;
    let mut list_merge = "replace".to_string();
    if let Some(kwargs) = kwargs {
        for key in kwargs.try_iter()? {
            let arg = kwargs.get_item(&key)?;
            match key.as_str() {
                Some("recursive") => recursive = arg.is_true(),
                Some("list_merge") => list_merge = arg.to_string(),
                _ => {
                    return Err(fail(
                        NAME,
                        "'recursive' and 'list_merge' are the only valid keyword arguments",
                    ));
                }
            }
        }
    }
    if !LIST_MERGES.contains(&list_merge.as_str()) {
        return Err(fail(
            NAME,
            format!("'list_merge' must be one of {}", LIST_MERGES.join(", ")),
        ));
    }
    let mut dicts = Vec::new();
    for term in std::iter::once(value.clone()).chain(positional) {
        if is_list(&term) {
            dicts.extend(items(NAME, &term)?.into_iter().filter(|v| !is_null(v)));
        } else if !is_null(&term) {
            dicts.push(term);
        }
    }
    let mut merged = IndexMap::new();
    for dict in &dicts {
        if dict.kind() != ValueKind::Map {
            return Err(fail(
                NAME,
                format!("failed to combine variables, expected dicts but got {}", dict.kind()),
            ));
        }
        merged = merge(merged, entries(NAME, dict)?, recursive, &list_merge)?;
    }
    Ok(Value::from_pairs(merged))
}

/// `dict2items(key_name='key', value_name='value')`: a dict as a list of key/value dicts,
/// for looping.
fn dict2items(value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    const NAME: &str = "dict2items";
    let args = Args::bind(NAME, rest, &["key_name", "value_name"])?;
    let key_name = args.string(0)?.unwrap_or("key");
    let value_name = args.string(1)?.unwrap_or("value");
    if value.kind() != ValueKind::Map {
        return Err(fail(
            NAME,
            format!("dict2items requires a dictionary, got {} instead", value.kind()),
        ));
    }
    let list: Vec<Value> = entries(NAME, value)?
        .into_iter()
        .map(|(k, v)| Value::from_pairs([(key_name, k), (value_name, v)]))
        .collect();
    Ok(Value::from(list))
}

/// `items2dict(key_name='key', value_name='value')`: the reverse of `dict2items`.
fn items2dict(value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    const NAME: &str = "items2dict";
    let args = Args::bind(NAME, rest, &["key_name", "value_name"])?;
    let key_name = Value::from(args.string(0)?.unwrap_or("key"));
    let value_name = Value::from(args.string(1)?.unwrap_or("value"));
    if !is_list(value) {
        return Err(fail(
            NAME,
            format!("items2dict requires a list, got {} instead", value.kind()),
        ));
    }
    let mut map = IndexMap::new();
    for item in items(NAME, value)? {
        if item.kind() != ValueKind::Map {
            return Err(fail(
                NAME,
                format!("items2dict requires a list of dictionaries, got a {}", item.kind()),
            ));
        }
        let (k, v) = (item.get_item(&key_name)?, item.get_item(&value_name)?);
        if k.is_undefined() || v.is_undefined() {
            return Err(fail(
                NAME,
                format!("each dictionary must contain the keys '{key_name}' and '{value_name}'"),
            ));
        }
        map.insert(k, v);
    }
    Ok(Value::from_pairs(map))
}

/// Ansible's `flatten` into `out`.
fn flatten_into(out: &mut Vec<Value>, list: &Value, levels: Option<i64>, skip_nulls: bool) -> Result<(), Error> {
    for item in items("flatten", list)? {
        if skip_nulls && is_null(&item) {
            continue;
        }
        match levels {
            _ if !is_list(&item) => out.push(item),
            None => flatten_into(out, &item, None, skip_nulls)?,
            Some(n) if n >= 1 => flatten_into(out, &item, Some(n - 1), skip_nulls)?,
            Some(_) => out.push(item),
        }
    }
    Ok(())
}

/// `flatten(levels=None, skip_nulls=True)`: nested lists into one list, nulls dropped.
fn flatten(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = Args::bind("flatten", rest, &["levels", "skip_nulls"])?;
    check_defined(state, "flatten", value)?;
    let mut out = Vec::new();
    flatten_into(&mut out, value, args.int(0)?, args.flag(1, true))?;
    Ok(Value::from(out))
}

/// `zip_longest(*lists, fillvalue=None)`: like `zip`, padded to the longest list.
fn zip_longest(value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    const NAME: &str = "zip_longest";
    let mut positional = rest.into_values();
    let mut fill = Value::from(());
    if let Some(kwargs) = positional.pop_if(|v| v.is_kwargs()) {
        for key in kwargs.try_iter()? {
            match key.as_str() {
                Some("fillvalue") => fill = kwargs.get_item(&key)?,
                _ => return Err(fail(NAME, format!("unexpected keyword argument `{key}`"))),
            }
        }
    }
    let lists = std::iter::once(value)
        .chain(positional.iter())
        .map(|v| items(NAME, v))
        .collect::<Result<Vec<_>, _>>()?;
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    let rows: Vec<Value> = (0..longest)
        .map(|i| {
            let row: Vec<Value> = lists
                .iter()
                .map(|list| list.get(i).cloned().unwrap_or_else(|| fill.clone()))
                .collect();
            Value::from(Tuple::from(row))
        })
        .collect();
    Ok(Value::from(rows))
}

/// The most combinations `product` builds, so a template cannot exhaust memory.
const MAX_PRODUCT: usize = 1_000_000;

/// `product(*lists, repeat=1)`: the cartesian product, like `itertools.product`.
fn product(value: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    const NAME: &str = "product";
    let mut positional = rest.into_values();
    let mut repeat = 1usize;
    if let Some(kwargs) = positional.pop_if(|v| v.is_kwargs()) {
        for key in kwargs.try_iter()? {
            let arg = kwargs.get_item(&key)?;
            match (key.as_str(), arg.as_usize()) {
                (Some("repeat"), Some(n)) => repeat = n,
                _ => return Err(fail(NAME, format!("unexpected keyword argument `{key}`"))),
            }
        }
    }
    let lists = std::iter::once(value)
        .chain(positional.iter())
        .map(|v| items(NAME, v))
        .collect::<Result<Vec<_>, _>>()?;
    let mut pools = Vec::new();
    for _ in 0..repeat {
        pools.extend(lists.iter().cloned());
    }
    let total = pools
        .iter()
        .try_fold(1usize, |acc, pool| acc.checked_mul(pool.len()))
        .filter(|n| *n <= MAX_PRODUCT)
        .ok_or_else(|| fail(NAME, format!("more than {MAX_PRODUCT} combinations")))?;
    let mut rows: Vec<Vec<Value>> = vec![Vec::new()];
    for pool in &pools {
        let mut next = Vec::with_capacity(total);
        for row in &rows {
            for item in pool {
                let mut longer = row.clone();
                longer.push(item.clone());
                next.push(longer);
            }
        }
        rows = next;
    }
    Ok(Value::from(
        rows.into_iter()
            .map(|r| Value::from(Tuple::from(r)))
            .collect::<Vec<_>>(),
    ))
}

/// `extract(container, morekeys=None)`: `container[item]` (then `[key]` for each of
/// `morekeys`), as in `groups['db'] | map('extract', hostvars, 'ansible_host')`.
fn extract(item: &Value, rest: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = Args::bind("extract", rest, &["container", "morekeys"])?;
    let mut current = args.required(0)?.clone();
    let mut keys = vec![item.clone()];
    match args.get(1) {
        Some(more) if is_list(more) => keys.extend(items("extract", more)?),
        Some(more) => keys.push(more.clone()),
        None => {}
    }
    for key in keys {
        if current.is_undefined() {
            break;
        }
        current = current.get_item(&key)?;
    }
    Ok(current)
}

/// Jinja2's `unique` (case-insensitive, first kept), which Ansible's set filters end with.
fn unique_of(state: &mut State, list: Vec<Value>) -> Result<Value, Error> {
    state.apply_filter("unique", &[Value::from(list)])
}

/// `union(other)`: the items of both lists, each once.
fn union(state: &mut State, value: &Value, other: &Value) -> Result<Value, Error> {
    let mut all = items("union", value)?;
    all.extend(items("union", other)?);
    unique_of(state, all)
}

/// The items of `value` that are (or are not) in `other`, in order.
fn filter_by(name: &str, value: &Value, other: &Value, keep_if_in: bool) -> Result<Vec<Value>, Error> {
    let others = items(name, other)?;
    Ok(items(name, value)?
        .into_iter()
        .filter(|v| others.contains(v) == keep_if_in)
        .collect())
}

/// `intersect(other)`: the items of the list also in `other`.
fn intersect(state: &mut State, value: &Value, other: &Value) -> Result<Value, Error> {
    let common = filter_by("intersect", value, other, true)?;
    unique_of(state, common)
}

/// `difference(other)`: the items of the list not in `other`.
fn difference(state: &mut State, value: &Value, other: &Value) -> Result<Value, Error> {
    let only = filter_by("difference", value, other, false)?;
    unique_of(state, only)
}

/// `symmetric_difference(other)`: the items in exactly one of the two lists.
fn symmetric_difference(state: &mut State, value: &Value, other: &Value) -> Result<Value, Error> {
    let common = items("symmetric_difference", &intersect(state, value, other)?)?;
    let all = items("symmetric_difference", &union(state, value, other)?)?;
    Ok(Value::from(
        all.into_iter().filter(|v| !common.contains(v)).collect::<Vec<_>>(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------------

/// `quote`: POSIX shell single quoting (`none` quotes as `''`), through the same quoting the
/// transport uses for every remote command.
fn quote(state: &State, value: &Value) -> Result<String, Error> {
    if value.is_none() {
        return Ok(crate::transport::shell::quote(""));
    }
    Ok(crate::transport::shell::quote(&text(state, "quote", value)?))
}

/// `center(width=80)`: Python's `str.center`, padded with spaces.
fn center(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<String, Error> {
    let args = Args::bind("center", rest, &["width"])?;
    let width = args.int(0)?.unwrap_or(80);
    let s = text(state, "center", value)?;
    let len = i64::try_from(s.chars().count()).unwrap_or(i64::MAX);
    if width <= len {
        return Ok(s.into_owned());
    }
    let pad = width - len;
    // CPython puts the odd space on the left when both pad and width are odd.
    let left = pad / 2 + (pad & width & 1);
    let spaces = |n: i64| " ".repeat(usize::try_from(n).unwrap_or(0));
    Ok(format!("{}{s}{}", spaces(left), spaces(pad - left)))
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// Ansible's `boolean()` reading of yes/no words, for `truthy(convert_bool=True)`.
fn boolean_word(value: &Value) -> Option<bool> {
    crate::settings::boolean(&serde_json::to_value(value).ok()?)
}

/// The shared body of `truthy` and `falsy`: Python truthiness, optionally of yes/no words.
fn truthiness(state: &State, name: &'static str, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<bool, Error> {
    let args = Args::bind(name, rest, &["convert_bool"])?;
    check_defined(state, name, value)?;
    if args.flag(0, false)
        && let Some(b) = boolean_word(value)
    {
        return Ok(b);
    }
    Ok(value.is_true())
}

/// `truthy(convert_bool=False)`: whether Python would take the value as true.
fn truthy(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<bool, Error> {
    truthiness(state, "truthy", value, rest)
}

/// `falsy(convert_bool=False)`: whether Python would take the value as false.
fn falsy(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<bool, Error> {
    truthiness(state, "falsy", value, rest).map(|b| !b)
}

/// A key of a registered task result, read as a flag (missing is false).
fn result_flag(state: &State, name: &str, result: &Value, key: &str) -> Result<bool, Error> {
    check_defined(state, name, result)?;
    if result.kind() != ValueKind::Map {
        return Err(fail(name, format!("The '{name}' test expects a dictionary")));
    }
    Ok(result.get_item(&Value::from(key))?.is_true())
}

/// `failed`/`failure`: whether a registered result has `failed` set.
fn failed(state: &State, value: &Value) -> Result<bool, Error> {
    result_flag(state, "failed", value, "failed")
}

/// `succeeded`/`success`/`successful`: whether a registered result did not fail.
fn succeeded(state: &State, value: &Value) -> Result<bool, Error> {
    result_flag(state, "succeeded", value, "failed").map(|f| !f)
}

/// `skipped`/`skip`: whether a registered result has `skipped` set.
fn skipped(state: &State, value: &Value) -> Result<bool, Error> {
    result_flag(state, "skipped", value, "skipped")
}

/// `unreachable`: whether a registered result has `unreachable` set.
fn unreachable(state: &State, value: &Value) -> Result<bool, Error> {
    result_flag(state, "unreachable", value, "unreachable")
}

/// `reachable`: whether a registered result does not have `unreachable` set.
fn reachable(state: &State, value: &Value) -> Result<bool, Error> {
    result_flag(state, "reachable", value, "unreachable").map(|f| !f)
}

/// `changed`/`change`: whether a registered result has `changed` set, or for a loop's result
/// without one, whether any item in `results` changed.
fn changed(state: &State, value: &Value) -> Result<bool, Error> {
    const NAME: &str = "changed";
    let own = result_flag(state, NAME, value, "changed")?;
    if !value.get_item(&Value::from("changed"))?.is_undefined() {
        return Ok(own);
    }
    let results = value.get_item(&Value::from("results"))?;
    let first_is_map = results.get_item_by_index(0).is_ok_and(|r| r.kind() == ValueKind::Map);
    if results.kind() != ValueKind::Seq || !first_is_map {
        return Ok(false);
    }
    for item in items(NAME, &results)? {
        if item.kind() == ValueKind::Map && item.get_item(&Value::from("changed"))?.is_true() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One component of a loose version: a number or a run of other characters.
#[derive(PartialEq)]
enum Part {
    Number(String),
    Text(String),
}

/// Python's `LooseVersion` components: digit runs become numbers, `.` separates, lowercase
/// letter runs and everything else stay text.
fn loose_parts(version: &str) -> Vec<Part> {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Digit,
        Lower,
        Dot,
        Other,
    }
    let class = |c: char| match c {
        '0'..='9' => Class::Digit,
        'a'..='z' => Class::Lower,
        '.' => Class::Dot,
        _ => Class::Other,
    };
    let mut parts = Vec::new();
    let mut run = String::new();
    let mut run_class = Class::Dot;
    let mut finish = |run: &mut String, run_class: Class| {
        if run.is_empty() {
            return;
        }
        let taken = std::mem::take(run);
        match run_class {
            Class::Dot => {}
            Class::Digit => {
                let trimmed = taken.trim_start_matches('0');
                parts.push(Part::Number(if trimmed.is_empty() {
                    "0".to_string()
                } else {
                    trimmed.to_string()
                }));
            }
            Class::Lower | Class::Other => parts.push(Part::Text(taken)),
        }
    };
    for c in version.chars() {
        let c_class = class(c);
        // Dots are separators one at a time; other classes form runs.
        if c_class != run_class || c_class == Class::Dot {
            finish(&mut run, run_class);
            run_class = c_class;
        }
        run.push(c);
    }
    finish(&mut run, run_class);
    parts
}

/// `LooseVersion` ordering; Python refuses to order a number against text.
fn loose_cmp(a: &str, b: &str) -> Result<Ordering, String> {
    let (a, b) = (loose_parts(a), loose_parts(b));
    for (x, y) in a.iter().zip(&b) {
        if x == y {
            continue;
        }
        return match (x, y) {
            (Part::Number(x), Part::Number(y)) => Ok(x.len().cmp(&y.len()).then_with(|| x.cmp(y))),
            (Part::Text(x), Part::Text(y)) => Ok(x.cmp(y)),
            (Part::Number(_), Part::Text(_)) => {
                Err("'<' not supported between instances of 'int' and 'str'".to_string())
            }
            (Part::Text(_), Part::Number(_)) => {
                Err("'<' not supported between instances of 'str' and 'int'".to_string())
            }
        };
    }
    Ok(a.len().cmp(&b.len()))
}

/// A `StrictVersion`: major, minor, patch, and the pre-release tag with its number.
type StrictVersion = ([u64; 3], Option<(char, u64)>);

/// Python's `StrictVersion`: `N.N[.N][(a|b)N]`.
fn strict_parts(version: &str) -> Result<StrictVersion, String> {
    let invalid = || format!("invalid version number '{version}'");
    let number = |s: &str| {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse::<u64>().map_err(|_| invalid())
        } else {
            Err(invalid())
        }
    };
    let (release, pre) = match version.find(['a', 'b']) {
        Some(i) => {
            let tag = version[i..].chars().next().unwrap_or('a');
            (&version[..i], Some((tag, number(&version[i + 1..])?)))
        }
        None => (version, None),
    };
    let fields: Vec<&str> = release.split('.').collect();
    if !(2..=3).contains(&fields.len()) {
        return Err(invalid());
    }
    let mut numbers = [0u64; 3];
    for (slot, field) in numbers.iter_mut().zip(&fields) {
        *slot = number(field)?;
    }
    Ok((numbers, pre))
}

/// `StrictVersion` ordering: a pre-release sorts before its release.
fn strict_cmp(a: &str, b: &str) -> Result<Ordering, String> {
    let (a, b) = (strict_parts(a)?, strict_parts(b)?);
    Ok(a.0.cmp(&b.0).then_with(|| match (a.1, b.1) {
        (None, None) => Ordering::Equal,
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(&y),
    }))
}

/// `version(version, operator='eq', strict=False, version_type='loose')` (alias
/// `version_compare`): compares versions like `'1.2.10' is version('1.2.9', '>')`.
fn version(state: &State, value: &Value, rest: Rest<ValueOrKwargs>) -> Result<bool, Error> {
    const NAME: &str = "version";
    let args = Args::bind(NAME, rest, &["version", "operator", "strict", "version_type"])?;
    check_defined(state, NAME, value)?;
    let left = value.to_string();
    if left.is_empty() || value.is_none() {
        return Err(fail(NAME, "Input version value cannot be empty"));
    }
    let right = args.required(0)?.to_string();
    if right.is_empty() {
        return Err(fail(NAME, "Version parameter to compare against cannot be empty"));
    }
    let operator = args.string(1)?.unwrap_or("eq");
    let test: fn(Ordering) -> bool = match operator {
        "==" | "=" | "eq" => Ordering::is_eq,
        "<" | "lt" => Ordering::is_lt,
        "<=" | "le" => Ordering::is_le,
        ">" | "gt" => Ordering::is_gt,
        ">=" | "ge" => Ordering::is_ge,
        "!=" | "<>" | "ne" => Ordering::is_ne,
        other => {
            return Err(fail(
                NAME,
                format!(
                    "Invalid operator type ({other}). Must be one of ==, =, eq, <, lt, <=, le, >, gt, >=, ge, !=, <>, ne"
                ),
            ));
        }
    };
    if args.get(2).is_some() && args.get(3).is_some() {
        return Err(fail(NAME, "Cannot specify both 'strict' and 'version_type'"));
    }
    let kind = match args.string(3)? {
        Some(kind) => kind,
        None if args.flag(2, false) => "strict",
        None => "loose",
    };
    let ordering = match kind {
        "loose" => loose_cmp(&left, &right),
        "strict" => strict_cmp(&left, &right),
        other => {
            return Err(fail(
                NAME,
                format!("unsupported version_type `{other}` (loose or strict)"),
            ));
        }
    };
    ordering
        .map(test)
        .map_err(|e| fail(NAME, format!("Version comparison failed: {e}")))
}

/// `subset(other)` (alias `issubset`): whether every item is also in `other`.
fn subset(value: &Value, other: &Value) -> Result<bool, Error> {
    let others = items("subset", other)?;
    Ok(items("subset", value)?.iter().all(|v| others.contains(v)))
}

/// `superset(other)` (alias `issuperset`): whether every item of `other` is also in the value.
fn superset(value: &Value, other: &Value) -> Result<bool, Error> {
    subset(other, value)
}

/// `contains(item)`: whether the list holds `item` (the reverse of `in`, for `select`).
fn contains(value: &Value, item: &Value) -> Result<bool, Error> {
    if let (Some(haystack), Some(needle)) = (value.as_str(), item.as_str()) {
        return Ok(haystack.contains(needle));
    }
    Ok(items("contains", value)?.contains(item))
}

/// `any`: whether any item is true.
fn any(value: &Value) -> Result<bool, Error> {
    Ok(items("any", value)?.iter().any(Value::is_true))
}

/// `all`: whether every item is true.
fn all(value: &Value) -> Result<bool, Error> {
    Ok(items("all", value)?.iter().all(Value::is_true))
}

/// `sequence`: Jinja2's test (anything with a length and items: lists, strings, dicts),
/// where minijinja's counts lists only.
fn is_sequence(value: &Value) -> bool {
    value.is_undefined()
        || matches!(
            value.kind(),
            ValueKind::Seq | ValueKind::String | ValueKind::Map | ValueKind::Bytes
        )
}

/// A control-node path test on the value as text.
fn path_test(state: &State, name: &str, value: &Value, check: fn(&Path) -> bool) -> Result<bool, Error> {
    if value.is_none() {
        return Ok(false);
    }
    Ok(check(Path::new(text(state, name, value)?.as_ref())))
}

/// `file`: whether the path is a regular file on the control node (links followed).
fn is_file(state: &State, value: &Value) -> Result<bool, Error> {
    path_test(state, "file", value, Path::is_file)
}

/// `directory`: whether the path is a directory on the control node (links followed).
fn is_directory(state: &State, value: &Value) -> Result<bool, Error> {
    path_test(state, "directory", value, Path::is_dir)
}

/// `exists`: whether the path exists on the control node (a dangling link does not).
fn exists(state: &State, value: &Value) -> Result<bool, Error> {
    path_test(state, "exists", value, Path::exists)
}

/// `link`: whether the path is a symbolic link on the control node.
fn is_link(state: &State, value: &Value) -> Result<bool, Error> {
    path_test(state, "link", value, Path::is_symlink)
}

/// `abs`: whether the path is absolute.
fn is_abs(state: &State, value: &Value) -> Result<bool, Error> {
    path_test(state, "abs", value, Path::is_absolute)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    /// An environment like the playbook engine's: strict undefined plus these filters.
    fn env() -> Environment<'static> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        register(&mut env);
        env
    }

    fn render_in(src: &str, ctx: Value) -> String {
        env().render_str(src, ctx).unwrap_or_else(|e| panic!("{src}: {e:#}"))
    }

    fn render(src: &str) -> String {
        render_in(src, context! {})
    }

    /// The error detail of a template that must fail with an invalid operation.
    fn failure(src: &str) -> String {
        let err = env()
            .render_str(src, context! {})
            .expect_err("the template should fail");
        assert_eq!(err.kind(), ErrorKind::InvalidOperation, "{src}: {err:#}");
        err.detail().unwrap_or_default().to_string()
    }

    fn json(value: serde_json::Value) -> Value {
        Value::from(Serde(value))
    }

    #[test]
    fn default_replaces_undefined_even_under_strict_undefined() {
        assert_eq!(render("{{ missing | default('x') }}"), "x");
        assert_eq!(render("{{ missing | d('x') }}"), "x");
        assert_eq!(render("{{ missing | default }}"), "");
        assert_eq!(render("{{ (missing | default(none)) is none }}"), "True");
        assert_eq!(render("{{ 'set' | default('x') }}"), "set");
        // Strict undefined is really on: without `default` the same lookup fails.
        assert!(env().render_str("{{ missing }}", context! {}).is_err());
    }

    #[test]
    fn default_with_boolean_also_replaces_false_values() {
        assert_eq!(render("{{ '' | default('x', true) }}"), "x");
        assert_eq!(render("{{ '' | default('x') }}"), "");
        assert_eq!(render("{{ 0 | default('x', boolean=true) }}"), "x");
        assert_eq!(render("{{ [] | d('x', true) }}"), "x");
        assert_eq!(render("{{ 'v' | default('x', true) }}"), "v");
        assert!(failure("{{ 1 | default('x', true, 3) }}").starts_with("default: takes at most"));
    }

    #[test]
    fn attribute_of_undefined_still_fails_under_strict_undefined() {
        // Ansible accepts `missing.attr | default(...)`; minijinja's strict mode fails the
        // lookup before any filter runs, so templates must guard the parent instead.
        let err = env()
            .render_str("{{ missing.attr | default('x') }}", context! {})
            .expect_err("strict undefined");
        assert_eq!(err.kind(), ErrorKind::UndefinedError);
        assert_eq!(render("{{ (missing | default({})).attr | default('x') }}"), "x");
    }

    #[test]
    fn bool_reads_ansible_yes_no_words() {
        for yes in ["yes", "Yes", "on", "ON", "1", "true", "True"] {
            assert_eq!(render(&format!("{{{{ '{yes}' | bool }}}}")), "True", "{yes}");
        }
        for no in ["no", "off", "0", "false", "", "y", "foo", " yes"] {
            assert_eq!(render(&format!("{{{{ '{no}' | bool }}}}")), "False", "{no}");
        }
        assert_eq!(render("{{ true | bool }} {{ false | bool }}"), "True False");
        assert_eq!(
            render("{{ 1 | bool }} {{ 1.0 | bool }} {{ 2 | bool }}"),
            "True True False"
        );
        assert_eq!(render("{{ none | bool }} {{ [1] | bool }}"), "False False");
        assert_eq!(failure("{{ missing | bool }}"), "bool: input is undefined");
    }

    #[test]
    fn int_parses_like_jinja2_and_defaults_on_failure() {
        assert_eq!(render("{{ '42' | int + 1 }}"), "43");
        assert_eq!(render("{{ '0x1f' | int(base=16) }}"), "31");
        assert_eq!(render("{{ '1f' | int(0, 16) }}"), "31");
        assert_eq!(render("{{ '0b101' | int(base=2) }}"), "5");
        assert_eq!(render("{{ '0o17' | int(base=0) }}"), "15");
        assert_eq!(render("{{ '3.9' | int }} {{ '-3.9' | int }} {{ 4.7 | int }}"), "3 -3 4");
        assert_eq!(
            render("{{ ' 12 ' | int }} {{ '1_000' | int }} {{ '1e3' | int }}"),
            "12 1000 1000"
        );
        assert_eq!(
            render("{{ 'abc' | int }} {{ 'abc' | int(5) }} {{ 'x' | int(default=7) }}"),
            "0 5 7"
        );
        assert_eq!(render("{{ true | int }} {{ none | int }} {{ [1] | int }}"), "1 0 0");
        assert_eq!(render("{{ '1__0' | int }} {{ 'inf' | int }} {{ '' | int }}"), "0 0 0");
        assert_eq!(render("{{ '99999999999999999999' | int }}"), "99999999999999999999");
        assert!(failure("{{ '1' | int(base='x') }}").starts_with("int: `base` must be an integer"));
    }

    #[test]
    fn float_parses_like_python_and_defaults_on_failure() {
        assert_eq!(render("{{ '3.14' | float }}"), "3.14");
        assert_eq!(render("{{ 2 | float }} {{ true | float }}"), "2.0 1.0");
        assert_eq!(render("{{ 'abc' | float }} {{ 'abc' | float(1.5) }}"), "0.0 1.5");
        assert_eq!(render("{{ '1_000.5' | float }} {{ ' -2 ' | float }}"), "1000.5 -2.0");
        assert_eq!(render("{{ 'Infinity' | float > 1e308 }}"), "True");
        assert_eq!(render("{{ '1__0' | float }} {{ none | float }}"), "0.0 0.0");
    }

    #[test]
    fn string_lower_upper_and_replace_stay_jinja2_builtins() {
        assert_eq!(render("{{ 42 | string }} {{ true | string }}"), "42 True");
        assert_eq!(render("{{ 'ABC' | lower }} {{ 'abc' | upper }}"), "abc ABC");
        assert_eq!(
            render("{{ 'Hello World' | replace('Hello', 'Goodbye') }}"),
            "Goodbye World"
        );
        assert_eq!(render("{{ 'aaa' | replace('a', 'b', 2) }}"), "bba");
    }

    #[test]
    fn regex_replace_has_python_backreferences() {
        assert_eq!(
            render(r#"{{ 'ansible' | regex_replace('^a.*i(.*)$', 'a\\1') }}"#),
            "able"
        );
        assert_eq!(render(r#"{{ 'foobar' | regex_replace('^f.*o(.*)$', '\\1') }}"#), "bar");
        assert_eq!(render(r#"{{ 'a1b2' | regex_replace('(\\d)', '<\\1>') }}"#), "a<1>b<2>");
        assert_eq!(
            render(r#"{{ 'localhost:80' | regex_replace('^(?P<host>.+):(?P<port>\\d+)$', '\\g<host>, \\g<port>') }}"#),
            "localhost, 80"
        );
        assert_eq!(render(r#"{{ 'ab' | regex_replace('a(x)?b', '[\\1]') }}"#), "[]");
        assert_eq!(
            render(r#"{{ 'x' | regex_replace('x', '$1 costs $ \\g<0>') }}"#),
            "$1 costs $ x"
        );
        assert_eq!(
            render(r#"{{ 'x' | regex_replace('x', '\\0101\\t\\.') }}"#),
            "\u{8}1\t\\."
        );
    }

    #[test]
    fn regex_replace_flags_and_counts() {
        assert_eq!(render("{{ 'ABC' | regex_replace('b', 'x', ignorecase=true) }}"), "AxC");
        assert_eq!(render("{{ 'ABC' | regex_replace('b', 'x') }}"), "ABC");
        assert_eq!(
            render("{{ 'a\nb' | regex_replace('^', '# ', multiline=true) }}"),
            "# a\n# b"
        );
        assert_eq!(render("{{ 'aaa' | regex_replace('a', 'b', count=2) }}"), "bba");
        assert_eq!(
            render("{{ 'aaa' | regex_replace('a', 'b', mandatory_count=3) }}"),
            "bbb"
        );
        assert!(
            failure("{{ 'aaa' | regex_replace('a', 'b', mandatory_count=2) }}")
                .contains("should match 2 times, but matches 3 times")
        );
    }

    #[test]
    fn regex_patterns_are_read_as_python_reads_them() {
        assert_eq!(render("{{ 'a{b}' | regex_replace('{b}', 'c') }}"), "ac");
        assert_eq!(render("{{ 'aaa' | regex_replace('a{,2}', 'x') }}"), "xxx");
        assert_eq!(render("{{ '[x]' | regex_replace('[[]', '<') }}"), "<x]");
        assert_eq!(render("{{ 'a]b' | regex_replace('[]]', '-') }}"), "a-b");
        assert_eq!(render("{{ 'a~b&c' | regex_replace('[~&]', '-') }}"), "a-b-c");
        assert_eq!(render(r#"{{ 'abc' | regex_replace('c\\Z', 'C') }}"#), "abC");
        // Empty matches next to a match count, as in Python's re.sub and re.findall.
        assert_eq!(render("{{ 'abxd' | regex_replace('x*', '-') }}"), "-a-b--d-");
        assert_eq!(render("{{ 'ab  ' | regex_replace('\\s*$', ';') }}"), "ab;;");
        assert_eq!(render("{{ 'abxd' | regex_findall('x*') }}"), "['', '', 'x', '', '']");
        assert_eq!(render("{{ 'é' | regex_replace('', '-') }}"), "-é-");
    }

    #[test]
    fn regex_errors_name_the_filter_and_the_problem() {
        let detail = failure("{{ 'x' | regex_replace('(', 'y') }}");
        assert!(detail.starts_with("regex_replace: invalid pattern `(`: "), "{detail}");
        assert!(!detail.contains('\n'));
        assert_eq!(
            failure(r#"{{ 'x' | regex_replace('(x)', '\\2') }}"#),
            "regex_replace: invalid group reference 2"
        );
        assert_eq!(
            failure(r#"{{ 'x' | regex_replace('x', '\\g<nope>') }}"#),
            "regex_replace: unknown group name 'nope'"
        );
        assert_eq!(
            failure(r#"{{ 'x' | regex_replace('x', '\\q') }}"#),
            r"regex_replace: bad escape \q in replacement"
        );
        assert!(failure(r#"{{ 'x' | regex_search('(?<=a)x') }}"#).starts_with("regex_search: invalid pattern"));
        assert!(failure("{{ 'x' | regex_replace(1, 'y') }}").contains("`pattern` must be a string"));
    }

    #[test]
    fn regex_search_returns_match_groups_or_none() {
        assert_eq!(
            render("{{ 'server1/database42' | regex_search('database[0-9]+') }}"),
            "database42"
        );
        assert_eq!(
            render(r#"{{ 'server1/database42' | regex_search('server([0-9]+)/database([0-9]+)', '\\1', '\\2') }}"#),
            "['1', '42']"
        );
        assert_eq!(
            render(r#"{{ 'ab12' | regex_search('(?P<num>\\d+)', '\\g<num>') | first }}"#),
            "12"
        );
        assert_eq!(render("{{ 'foo' | regex_search('bar') is none }}"), "True");
        assert_eq!(render("{{ 'FOO' | regex_search('foo', ignorecase=true) }}"), "FOO");
        assert_eq!(render("{{ 'a\nfoo' | regex_search('^foo', multiline=true) }}"), "foo");
        assert_eq!(render("{{ 'a\nfoo' | regex_search('^foo') is none }}"), "True");
        assert!(failure("{{ 'a' | regex_search('a', 'x') }}").starts_with("regex_search: unknown argument"));
        assert_eq!(
            failure(r#"{{ 'a' | regex_search('a', '\\3') }}"#),
            "regex_search: invalid group reference 3"
        );
    }

    #[test]
    fn regex_findall_returns_matches_groups_or_tuples() {
        assert_eq!(
            render(
                r#"{{ 'Some DNS servers are 8.8.8.8 and 8.8.4.4' | regex_findall('\\b(?:[0-9]{1,3}\\.){3}[0-9]{1,3}\\b') }}"#
            ),
            "['8.8.8.8', '8.8.4.4']"
        );
        assert_eq!(render(r#"{{ 'a1 b2' | regex_findall('[a-z](\\d)') }}"#), "['1', '2']");
        assert_eq!(
            render(r#"{{ 'a1 b2' | regex_findall('([a-z])(\\d)') }}"#),
            "[('a', '1'), ('b', '2')]"
        );
        assert_eq!(render("{{ 'abc' | regex_findall('x') }}"), "[]");
        assert_eq!(
            render("{{ 'A a' | regex_findall('a', ignorecase=true) | length }}"),
            "2"
        );
    }

    #[test]
    fn regex_escape_quotes_metacharacters() {
        assert_eq!(render("{{ '^f.*o(.*)$' | regex_escape }}"), r"\^f\.\*o\(\.\*\)\$");
        assert_eq!(
            render("{{ '^f.*o(.*)$' | regex_escape('posix_basic') }}"),
            r"\^f\.\*o(\.\*)\$"
        );
        assert_eq!(
            failure("{{ 'x' | regex_escape('perl') }}"),
            "regex_escape: invalid regex type (perl)"
        );
    }

    #[test]
    fn join_and_split_stay_builtins_with_python_split() {
        assert_eq!(render("{{ ['a', 'b', 1] | join(',') }}"), "a,b,1");
        assert_eq!(render("{{ 'a,b,,c' | split(',') }}"), "['a', 'b', '', 'c']");
        assert_eq!(render("{{ '  a \t b\n' | split }}"), "['a', 'b']");
        assert_eq!(render("{{ 'a b c' | split(' ', 1) }}"), "['a', 'b c']");
        assert_eq!(render("{{ '' | split }} {{ '' | split(',') }}"), "[] ['']");
    }

    #[test]
    fn to_json_is_python_json_dumps() {
        assert_eq!(
            render("{{ {'a': 1, 'b': [1, 2], 'c': none, 'd': true} | to_json }}"),
            r#"{"a": 1, "b": [1, 2], "c": null, "d": true}"#
        );
        assert_eq!(
            render("{{ {'é': 'ü 😀'} | to_json }}"),
            r#"{"\u00e9": "\u00fc \ud83d\ude00"}"#
        );
        assert_eq!(
            render("{{ {'é': 'ü'} | to_json(ensure_ascii=false) }}"),
            r#"{"é": "ü"}"#
        );
        assert_eq!(
            render("{{ {'b': 1, 'a': 2} | to_json(sort_keys=true) }}"),
            r#"{"a": 2, "b": 1}"#
        );
        assert_eq!(
            render("{{ {'a': [1, 2], 'b': {'c': 'd'}} | to_json(indent=2) }}"),
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {\n    \"c\": \"d\"\n  }\n}"
        );
        assert_eq!(render("{{ 'a\"b\n' | to_json }}"), r#""a\"b\n""#);
        assert_eq!(
            failure("{{ {} | to_json(2) }}"),
            "to_json: takes keyword arguments only"
        );
        assert!(failure("{{ {'a': missing} | to_json }}").starts_with("to_json: "));
    }

    #[test]
    fn to_nice_json_indents_four_and_sorts_keys() {
        assert_eq!(
            render("{{ {'b': 1, 'a': {'d': [1, 2], 'c': none}} | to_nice_json }}"),
            "{\n    \"a\": {\n        \"c\": null,\n        \"d\": [\n            1,\n            2\n        ]\n    },\n    \"b\": 1\n}"
        );
        assert_eq!(render("{{ [] | to_nice_json }} {{ {} | to_nice_json }}"), "[] {}");
        assert_eq!(
            render("{{ {'b': 1, 'a': 2} | to_nice_json(indent=2, sort_keys=false) }}"),
            "{\n  \"b\": 1,\n  \"a\": 2\n}"
        );
    }

    #[test]
    fn from_json_parses_data() {
        assert_eq!(render(r#"{{ ('{"a": [1, 2], "b": null}' | from_json).a[1] }}"#), "2");
        assert_eq!(render(r#"{{ ('{"z": 1, "a": 2}' | from_json) | list }}"#), "['z', 'a']");
        assert!(failure("{{ '{oops' | from_json }}").starts_with("from_json: invalid JSON"));
    }

    #[test]
    fn to_yaml_uses_flow_style_for_leaf_collections() {
        let ctx = context! { data => json(serde_json::json!(
            {"b": [1, 2], "a": {"y": "x", "x": [{"k": 1}, {"k": 2}]}, "c": "hello world", "e": []}
        )) };
        assert_eq!(
            render_in("{{ data | to_yaml }}", ctx.clone()),
            "a:\n  x:\n  - {k: 1}\n  - {k: 2}\n  \"y\": x\nb: [1, 2]\nc: hello world\ne: []\n"
        );
        assert_eq!(
            render_in("{{ data | to_nice_yaml }}", ctx.clone()),
            "a:\n    x:\n    - k: 1\n    - k: 2\n    \"y\": x\nb:\n- 1\n- 2\nc: hello world\ne: []\n"
        );
        assert_eq!(
            render_in("{{ data | to_nice_yaml(indent=2, sort_keys=false) }}", ctx.clone()),
            "b:\n- 1\n- 2\na:\n  \"y\": x\n  x:\n  - k: 1\n  - k: 2\nc: hello world\ne: []\n"
        );
        // Whatever the layout, the text reads back as the same data.
        assert_eq!(
            render_in("{{ (data | to_nice_yaml | from_yaml) == data }}", ctx.clone()),
            "True"
        );
        assert_eq!(render_in("{{ (data | to_yaml | from_yaml) == data }}", ctx), "True");
    }

    #[test]
    fn to_yaml_quotes_strings_that_would_read_back_as_other_types() {
        assert_eq!(
            render("{{ {'a': 'yes', 'b': '123', 'c': 'multi\nline'} | to_nice_yaml | from_yaml }}"),
            "{'a': 'yes', 'b': '123', 'c': 'multi\\nline'}"
        );
        assert_eq!(render("{{ [] | to_yaml }}"), "[]\n");
        assert!(failure("{{ {'a': 1} | to_yaml(default_flow_style=true) }}").contains("default_flow_style"));
        assert!(failure("{{ {'a': 1} | to_nice_yaml(indent=0) }}").contains("indent"));
    }

    #[test]
    fn from_yaml_reads_yaml_like_playbooks() {
        assert_eq!(
            render(
                "{% set d = 'a: yes\nb: [1, 2]\nmode: 0644\nn: ~' | from_yaml %}{{ d.a }} {{ d.b[1] }} {{ d.mode }} {{ d.n }}"
            ),
            "True 2 420 None"
        );
        assert_eq!(render("{{ none | from_yaml }}"), "None");
        assert_eq!(render("{{ ('' | from_yaml) is none }}"), "True");
        assert!(failure("{{ 'a: [1' | from_yaml }}").starts_with("from_yaml: "));
    }

    #[test]
    fn base64_round_trips_utf8_and_utf16() {
        assert_eq!(
            render("{{ 'Ansible - くらとみ' | b64encode }}"),
            "QW5zaWJsZSAtIOOBj+OCieOBqOOBvw=="
        );
        assert_eq!(
            render("{{ 'QW5zaWJsZSAtIOOBj+OCieOBqOOBvw==' | b64decode }}"),
            "Ansible - くらとみ"
        );
        assert_eq!(render("{{ 'Hi' | b64encode(encoding='utf-16-le') }}"), "SABpAA==");
        assert_eq!(render("{{ 'SABpAA==' | b64decode(encoding='utf-16-le') }}"), "Hi");
        assert_eq!(render("{{ 'aGVs\nbG8=' | b64decode }}"), "hello");
        assert_eq!(render("{{ '???>' | b64encode(urlsafe=true) }}"), "Pz8_Pg==");
        assert_eq!(render("{{ 'Pz8_Pg==' | b64decode(urlsafe=true) }}"), "???>");
        assert!(failure("{{ 'YQ' | b64decode }}").starts_with("b64decode: invalid base64"));
        assert!(failure("{{ '/w==' | b64decode }}").contains("not valid utf-8"));
        assert!(failure("{{ 'x' | b64encode(encoding='ebcdic') }}").contains("unsupported encoding"));
    }

    #[test]
    fn path_filters_follow_posix_os_path() {
        assert_eq!(render("{{ '/etc/asdf/foo.txt' | basename }}"), "foo.txt");
        assert_eq!(render("{{ '/etc/asdf/foo.txt' | dirname }}"), "/etc/asdf");
        assert_eq!(render("[{{ '/etc/' | basename }}] {{ '/etc/' | dirname }}"), "[] /etc");
        assert_eq!(
            render("{{ '/' | dirname }} [{{ 'foo' | dirname }}] {{ '//a' | dirname }}"),
            "/ [] //"
        );
        assert_eq!(render("{{ '/etc/my.cnf' | splitext }}"), "('/etc/my', '.cnf')");
        assert_eq!(render("{{ ('a.tar.gz' | splitext)[1] }}"), ".gz");
        assert_eq!(render("{{ '.bashrc' | splitext }}"), "('.bashrc', '')");
        assert_eq!(
            render("{{ '/a.b/c' | splitext }} {{ '..x' | splitext }}"),
            "('/a.b/c', '') ('..x', '')"
        );
    }

    #[test]
    fn combine_merges_dicts_later_wins() {
        assert_eq!(
            render("{{ {'a': 1} | combine({'b': 2}) | to_json }}"),
            r#"{"a": 1, "b": 2}"#
        );
        assert_eq!(
            render("{{ {'a': 1, 'b': 2} | combine({'b': 3}) | to_json }}"),
            r#"{"a": 1, "b": 3}"#
        );
        assert_eq!(
            render("{{ {'a': {'x': 1, 'y': 2}} | combine({'a': {'y': 3, 'z': 4}}, recursive=true) | to_json }}"),
            r#"{"a": {"x": 1, "y": 3, "z": 4}}"#
        );
        assert_eq!(
            render("{{ {'a': {'x': 1, 'y': 2}} | combine({'a': {'y': 3, 'z': 4}}) | to_json }}"),
            r#"{"a": {"y": 3, "z": 4}}"#
        );
        assert_eq!(
            render("{{ [{'a': 1}, {'b': 2}] | combine({'c': 3}, [{'a': 4}]) | to_json }}"),
            r#"{"a": 4, "b": 2, "c": 3}"#
        );
        assert_eq!(render("{{ [] | combine | to_json }}"), "{}");
        assert_eq!(
            render("{{ {'l': [1, 2]} | combine({'l': [2, 3]}, list_merge='append') | to_json }}"),
            r#"{"l": [1, 2, 2, 3]}"#
        );
        assert_eq!(
            render("{{ {'l': [1, 2]} | combine({'l': [2, 3]}, list_merge='prepend_rp') | to_json }}"),
            r#"{"l": [2, 3, 1]}"#
        );
        assert_eq!(
            render("{{ {'l': [1]} | combine({'l': [2]}, list_merge='keep') | to_json }}"),
            r#"{"l": [1]}"#
        );
        assert!(failure("{{ {'a': 1} | combine([1]) }}").contains("expected dicts"));
        assert!(failure("{{ {} | combine({}, deep=true) }}").contains("only valid keyword"));
        assert!(failure("{{ {} | combine({}, list_merge='zip') }}").contains("list_merge"));
    }

    #[test]
    fn dict2items_and_items2dict_convert_both_ways() {
        assert_eq!(
            render("{{ {'a': 1, 'b': 2} | dict2items | to_json }}"),
            r#"[{"key": "a", "value": 1}, {"key": "b", "value": 2}]"#
        );
        assert_eq!(
            render("{{ {'Env': 'dev'} | dict2items(key_name='k', value_name='v') | to_json }}"),
            r#"[{"k": "Env", "v": "dev"}]"#
        );
        assert_eq!(
            render("{{ [{'key': 'a', 'value': 1}, {'key': 'b', 'value': 2}] | items2dict | to_json }}"),
            r#"{"a": 1, "b": 2}"#
        );
        assert_eq!(
            render("{{ [{'name': 'x', 'v': 1}] | items2dict(key_name='name', value_name='v') | to_json }}"),
            r#"{"x": 1}"#
        );
        assert!(failure("{{ [1] | dict2items }}").contains("requires a dictionary"));
        assert!(failure("{{ [{'key': 1}] | items2dict }}").contains("'key' and 'value'"));
        assert!(failure("{{ [1] | items2dict }}").contains("list of dictionaries"));
    }

    #[test]
    fn list_builtins_behave_like_jinja2() {
        assert_eq!(render("{{ [1, 2, 2, 'a', 'A'] | unique }}"), "[1, 2, 'a']");
        assert_eq!(render("{{ [{'a': 1}, {'a': 1}] | unique | length }}"), "1");
        assert_eq!(render("{{ [1, 2, 3] | first }} {{ [1, 2, 3] | last }}"), "1 3");
        assert_eq!(render("{{ ([] | first) is undefined }}"), "True");
        assert_eq!(
            render("{{ [1, 2] | length }} {{ {'a': 1} | count }} {{ 'abc' | length }}"),
            "2 1 3"
        );
        assert_eq!(
            render("{{ [3, 1, 2] | min }} {{ [3, 1, 2] | max }} {{ [3, 1, 2] | sum }}"),
            "1 3 6"
        );
        assert_eq!(
            render("{{ [3, 1, 2] | sort }} {{ {'b': 1, 'a': 2} | dictsort }}"),
            "[1, 2, 3] [('a', 2), ('b', 1)]"
        );
        assert_eq!(render("{{ [1, 2] | zip(['a', 'b']) | list }}"), "[(1, 'a'), (2, 'b')]");
        assert_eq!(
            render("[{{ '  x ' | trim }}] {{ 'a b&c' | urlencode }}"),
            "[x] a%20b%26c"
        );
    }

    #[test]
    fn map_select_and_friends_take_ansible_filters_and_tests() {
        let users = context! { users => json(serde_json::json!([
            {"name": "alice", "active": true, "shell": "/bin/bash"},
            {"name": "bob", "active": false},
        ])) };
        let cases = [
            ("{{ users | map(attribute='name') | join(',') }}", "alice,bob"),
            (
                "{{ users | map(attribute='name') | map('upper') | join(',') }}",
                "ALICE,BOB",
            ),
            (
                "{{ users | selectattr('active') | map(attribute='name') | join }}",
                "alice",
            ),
            (
                "{{ users | rejectattr('active') | map(attribute='name') | join }}",
                "bob",
            ),
            (
                "{{ users | selectattr('shell', 'defined') | map(attribute='name') | join }}",
                "alice",
            ),
            (
                "{{ users | selectattr('name', 'match', 'b') | map(attribute='name') | join }}",
                "bob",
            ),
            (
                "{{ users | rejectattr('name', 'equalto', 'bob') | map(attribute='name') | join }}",
                "alice",
            ),
            ("{{ ['ab', 'cd', 'xa'] | select('match', 'a') | join(',') }}", "ab"),
            ("{{ ['ab', 'cd', 'xa'] | select('search', 'a') | join(',') }}", "ab,xa"),
            ("{{ ['ab', 'cd'] | reject('search', 'd') | join }}", "ab"),
            (
                "{{ ['a', 'b'] | map('regex_replace', '^', 'x-') | join(',') }}",
                "x-a,x-b",
            ),
            ("{{ ['1', 'x'] | map('int') | list }}", "[1, 0]"),
            ("{{ ['yes', 'no'] | map('bool') | list }}", "[True, False]"),
        ];
        for (src, want) in cases {
            assert_eq!(render_in(src, users.clone()), want, "{src}");
        }
    }

    #[test]
    fn hashes_are_hex_digests_of_utf8() {
        assert_eq!(
            render("{{ 'test1' | hash('sha1') }}"),
            "b444ac06613fc8d63795be9ad0beaf55011936ac"
        );
        assert_eq!(
            render("{{ 'test1' | hash }}"),
            "b444ac06613fc8d63795be9ad0beaf55011936ac"
        );
        assert_eq!(
            render("{{ 'test1' | hash('md5') }}"),
            "5a105e8b9d40e1329780d62ea2265d8a"
        );
        assert_eq!(
            render("{{ 'test1' | hash('sha256') }}"),
            "1b4f0e9851971998e732078544c96b36c3d01cedf7caa332359d6f1d83567014"
        );
        assert_eq!(
            render("{{ 'test1' | hash('sha512') }}"),
            "b16ed7d24b3ecbd4164dcdad374e08c0ab7518aa07f9d3683f34c2b3c67a15830268cb4a56c1ff6f54c8e54a795f5b87c08668b51f82d0093f7baee7d2981181"
        );
        assert_eq!(
            render("{{ 'test1' | checksum }}"),
            "b444ac06613fc8d63795be9ad0beaf55011936ac"
        );
        assert_eq!(
            render("{{ 'test1' | sha1 }}"),
            "b444ac06613fc8d63795be9ad0beaf55011936ac"
        );
        assert_eq!(render("{{ 'test1' | md5 }}"), "5a105e8b9d40e1329780d62ea2265d8a");
        assert!(failure("{{ 'x' | hash('whirlpool') }}").starts_with("hash: unsupported hash type"));
    }

    #[test]
    fn password_hash_matches_crypt3() {
        // Expected values from Python's crypt.crypt (glibc).
        assert_eq!(
            render("{{ 'secret' | password_hash('sha512', 'mysalt') }}"),
            "$6$mysalt$UX6P1VKOf6dr0s2pg4pLNvIUB6hLXvP6M5f/Yj9hJgMPdAJ4oArvk5YUD9/XWtk1JOpVwt/JTsczMJr8sFVML1"
        );
        assert_eq!(
            render("{{ '' | password_hash(salt='abc') }}"),
            "$6$abc$mJP3a6FyA8uCnzRtlnNypPwjnvpi5TP9qOrInzrfDmwxUQG38PkpCPdqfTb8JQfAngapMxeim4AZ..hSdRRzD."
        );
        assert_eq!(
            render("{{ 'secret' | password_hash('sha256', 'mysalt', rounds=10000) }}"),
            "$5$rounds=10000$mysalt$RK8oV3aZ0mdR6FVKOsrBjdx9qLpoXF151qNsu.uoLzD"
        );
        assert_eq!(
            render("{{ 'secret' | password_hash('sha512_crypt', 'saltsaltsaltsalt', rounds=1000) }}"),
            "$6$rounds=1000$saltsaltsaltsalt$cv7no.30n.S75jcCNBQv6o7WVXQ5AaB1EpIeSKwsNupcnQDQ0DsukcAPRNjPumwKIBg2JK5ii9uw5enNnnA4N/"
        );
        // 5000 rounds is the default and, as with Ansible, left out of the string.
        assert_eq!(
            render("{{ 'secret' | password_hash('sha512', 'mysalt', rounds=5000) }}"),
            render("{{ 'secret' | password_hash('sha512', 'mysalt') }}")
        );
    }

    #[test]
    fn password_hash_draws_a_salt_and_checks_arguments() {
        let first = render("{{ 'secret' | password_hash }}");
        let second = render("{{ 'secret' | password_hash }}");
        assert!(first.starts_with("$6$") && first.len() == 3 + 16 + 1 + 86, "{first}");
        assert_ne!(first, second);
        assert_eq!(
            render("{{ ('x' | password_hash('sha256', salt_size=8) | split('$'))[2] | length }}"),
            "8"
        );
        assert!(failure("{{ 'x' | password_hash('sha512', 'bad salt') }}").contains("invalid characters in salt"));
        assert!(failure("{{ 'x' | password_hash('sha512', 'a' * 17) }}").contains("salt too large"));
        assert!(failure("{{ 'x' | password_hash('sha512', 'abc', rounds=10) }}").contains("rounds"));
        assert!(failure("{{ 'x' | password_hash('blowfish') }}").contains("unsupported hash type"));
    }

    #[test]
    fn quote_single_quotes_for_posix_shells() {
        assert_eq!(render("{{ 'hello world' | quote }}"), "'hello world'");
        assert_eq!(render("{{ \"it's\" | quote }}"), r"'it'\''s'");
        assert_eq!(render("{{ '/etc/x-1.conf' | quote }}"), "/etc/x-1.conf");
        assert_eq!(render("{{ '' | quote }} {{ none | quote }}"), "'' ''");
        assert_eq!(render("{{ '$(id)' | quote }}"), "'$(id)'");
    }

    #[test]
    fn ternary_picks_by_truth_and_none() {
        assert_eq!(render("{{ true | ternary('yes', 'no') }}"), "yes");
        assert_eq!(render("{{ (1 == 2) | ternary('yes', 'no') }}"), "no");
        assert_eq!(render("{{ none | ternary('yes', 'no') }}"), "no");
        assert_eq!(render("{{ none | ternary('yes', 'no', 'null') }}"), "null");
        assert_eq!(render("{{ [] | ternary('yes', 'no', 'null') }}"), "no");
        assert!(failure("{{ true | ternary('yes') }}").contains("missing required argument `false_val`"));
    }

    #[test]
    fn mandatory_fails_on_undefined_only() {
        assert_eq!(render("{{ 'x' | mandatory }} {{ none | mandatory }}"), "x None");
        assert_eq!(failure("{{ missing | mandatory }}"), "Mandatory variable not defined.");
        assert_eq!(
            failure("{{ missing | mandatory('set missing in group_vars') }}"),
            "set missing in group_vars"
        );
    }

    #[test]
    fn type_debug_names_python_types() {
        assert_eq!(
            render("{{ 'a' | type_debug }} {{ 1 | type_debug }} {{ 1.5 | type_debug }} {{ true | type_debug }}"),
            "str int float bool"
        );
        assert_eq!(
            render("{{ [] | type_debug }} {{ {} | type_debug }} {{ none | type_debug }} {{ missing | type_debug }}"),
            "list dict NoneType AnsibleUndefined"
        );
    }

    #[test]
    fn flatten_unnests_and_drops_nulls() {
        assert_eq!(render("{{ [1, [2, [3, [4]]]] | flatten }}"), "[1, 2, 3, 4]");
        assert_eq!(
            render("{{ [1, [2, [3, [4]]]] | flatten(levels=1) }}"),
            "[1, 2, [3, [4]]]"
        );
        assert_eq!(render("{{ [1, none, 'None', 'null', [none, 2]] | flatten }}"), "[1, 2]");
        assert_eq!(render("{{ [1, none] | flatten(skip_nulls=false) }}"), "[1, None]");
        assert_eq!(render("{{ [{'a': 1}] | flatten }}"), "[{'a': 1}]");
    }

    #[test]
    fn zip_longest_and_product_follow_itertools() {
        assert_eq!(
            render("{{ [1, 2, 3] | zip_longest(['a'], fillvalue='-') | list }}"),
            "[(1, 'a'), (2, '-'), (3, '-')]"
        );
        assert_eq!(render("{{ [1] | zip_longest([]) | list }}"), "[(1, None)]");
        assert_eq!(
            render("{{ [1, 2] | product(['a', 'b']) | list }}"),
            "[(1, 'a'), (1, 'b'), (2, 'a'), (2, 'b')]"
        );
        assert_eq!(render("{{ [0, 1] | product(repeat=2) | length }}"), "4");
        assert!(failure("{{ range(1000) | product(range(1000), range(1000)) }}").contains("combinations"));
    }

    #[test]
    fn extract_and_set_filters() {
        let ctx = context! {
            hostvars => json(serde_json::json!({"web1": {"ip": "10.0.0.1", "net": {"if": "eth0"}}})),
        };
        assert_eq!(
            render_in("{{ ['web1'] | map('extract', hostvars, 'ip') | list }}", ctx.clone()),
            "['10.0.0.1']"
        );
        assert_eq!(
            render_in("{{ 'web1' | extract(hostvars, ['net', 'if']) }}", ctx),
            "eth0"
        );
        assert_eq!(render("{{ [1, 2] | union([2, 3]) }}"), "[1, 2, 3]");
        assert_eq!(render("{{ [1, 2, 2] | intersect([2, 3]) }}"), "[2]");
        assert_eq!(render("{{ [1, 2, 1] | difference([2]) }}"), "[1]");
        assert_eq!(render("{{ [1, 2] | symmetric_difference([2, 3]) }}"), "[1, 3]");
    }

    #[test]
    fn center_pads_like_python() {
        assert_eq!(render("[{{ 'abc' | center(9) }}]"), "[   abc   ]");
        assert_eq!(
            render("[{{ 'ab' | center(5) }}] [{{ 'abc' | center(6) }}]"),
            "[  ab ] [ abc  ]"
        );
        assert_eq!(render("[{{ 'abc' | center(2) }}]"), "[abc]");
    }

    #[test]
    fn defined_undefined_and_none_tests_work_under_strict_undefined() {
        assert_eq!(
            render("{{ missing is defined }} {{ missing is undefined }}"),
            "False True"
        );
        assert_eq!(
            render("{{ 1 is defined }} {{ none is none }} {{ 0 is none }}"),
            "True True False"
        );
        assert_eq!(render("{% if missing is not defined %}unset{% endif %}"), "unset");
    }

    #[test]
    fn truthy_and_falsy_tests() {
        assert_eq!(
            render("{{ 'a' is truthy }} {{ '' is truthy }} {{ [] is falsy }}"),
            "True False True"
        );
        assert_eq!(
            render("{{ 'no' is truthy }} {{ 'no' is truthy(convert_bool=true) }}"),
            "True False"
        );
        assert_eq!(
            render("{{ 'off' is falsy(convert_bool=true) }} {{ 0 is falsy }}"),
            "True True"
        );
        assert!(failure("{{ missing is truthy }}").starts_with("truthy: input is undefined"));
    }

    #[test]
    fn match_search_and_regex_tests() {
        assert_eq!(
            render("{{ 'http://example.com/users/1/resources' is match('http://example.com/users/.*/resources') }}"),
            "True"
        );
        assert_eq!(
            render("{{ 'abc' is match('b') }} {{ 'abc' is search('b') }}"),
            "False True"
        );
        assert_eq!(render("{{ 'x\nabc' is match('^abc', multiline=true) }}"), "False");
        assert_eq!(render("{{ 'x\nabc' is search('^abc', multiline=true) }}"), "True");
        assert_eq!(render("{{ 'ABC' is match('a', ignorecase=true) }}"), "True");
        assert_eq!(render("{{ 'ab' is regex('a|ab', match_type='fullmatch') }}"), "True");
        assert_eq!(
            render("{{ 'abc' is regex('b') }} {{ 'abc' is regex('b', match_type='match') }}"),
            "True False"
        );
        assert!(failure("{{ 'a' is match('(') }}").starts_with("match: invalid pattern"));
    }

    #[test]
    fn version_test_compares_loose_versions() {
        assert_eq!(render("{{ '1.2.10' is version('1.2.9', '>') }}"), "True");
        assert_eq!(render("{{ '1.2.10' is version_compare('1.2.9', 'lt') }}"), "False");
        let ops = [
            ("<", false),
            ("lt", false),
            ("<=", false),
            ("le", false),
            (">", true),
            ("gt", true),
            (">=", true),
            ("ge", true),
            ("==", false),
            ("=", false),
            ("eq", false),
            ("!=", true),
            ("<>", true),
            ("ne", true),
        ];
        for (op, want) in ops {
            let got = render(&format!("{{{{ '2.0' is version('1.10', '{op}') }}}}"));
            assert_eq!(got, if want { "True" } else { "False" }, "{op}");
        }
        assert_eq!(
            render("{{ '1.0' is version('1.0') }} {{ '1.0.0' is version('1.0', '>') }}"),
            "True True"
        );
        assert_eq!(
            render("{{ '1.10a' is version('1.9z', 'gt') }} {{ '2.6.32-431.el6' is version('2.6.32', '>') }}"),
            "True True"
        );
        assert_eq!(render("{{ 3.1 is version('3.0', operator='>') }}"), "True");
        assert_eq!(render("{{ '1.0a1' is version('1.0', '<', strict=true) }}"), "True");
        assert_eq!(
            render("{{ '1.0b2' is version('1.0a9', '>', version_type='strict') }}"),
            "True"
        );
        assert!(failure("{{ '1.0' is version('1.0', 'foo') }}").starts_with("version: Invalid operator type (foo)"));
        assert!(failure("{{ '1.a' is version('1.2', '<') }}").contains("Version comparison failed: '<' not supported"));
        assert!(failure("{{ '1.0.x' is version('1.0', strict=true) }}").contains("invalid version number '1.0.x'"));
        assert!(failure("{{ '' is version('1.0') }}").contains("cannot be empty"));
        assert!(failure("{{ '1' is version('1', version_type='semver') }}").contains("unsupported version_type"));
    }

    #[test]
    fn task_result_tests_read_registered_results() {
        let ctx = context! {
            ok => json(serde_json::json!({"changed": false, "rc": 0})),
            bad => json(serde_json::json!({"failed": true, "changed": true})),
            skip => json(serde_json::json!({"skipped": true, "changed": false})),
            looped => json(serde_json::json!({"results": [{"changed": false}, {"changed": true}]})),
            down => json(serde_json::json!({"unreachable": true})),
        };
        let cases = [
            (
                "{{ ok is succeeded }} {{ ok is success }} {{ ok is successful }}",
                "True True True",
            ),
            (
                "{{ ok is failed }} {{ bad is failed }} {{ bad is failure }} {{ bad is succeeded }}",
                "False True True False",
            ),
            (
                "{{ ok is changed }} {{ bad is changed }} {{ bad is change }} {{ looped is changed }}",
                "False True True True",
            ),
            (
                "{{ skip is skipped }} {{ skip is skip }} {{ ok is skipped }}",
                "True True False",
            ),
            ("{{ down is unreachable }} {{ ok is reachable }}", "True True"),
        ];
        for (src, want) in cases {
            assert_eq!(render_in(src, ctx.clone()), want, "{src}");
        }
        assert_eq!(
            failure("{{ 'x' is failed }}"),
            "failed: The 'failed' test expects a dictionary"
        );
    }

    #[test]
    fn membership_and_set_tests() {
        assert_eq!(
            render("{{ 1 in [1, 2] }} {{ 'a' is in ['a'] }} {{ 'b' in 'abc' }}"),
            "True True True"
        );
        assert_eq!(
            render("{{ [1, 2] is subset([1, 2, 3]) }} {{ [1, 4] is issubset([1, 2]) }}"),
            "True False"
        );
        assert_eq!(
            render("{{ [1, 2, 3] is superset([1, 2]) }} {{ [1] is issuperset([1, 2]) }}"),
            "True False"
        );
        assert_eq!(
            render("{{ [1, 2] is contains(2) }} {{ 'abc' is contains('bc') }}"),
            "True True"
        );
        assert_eq!(
            render("{{ [0, 1] is any }} {{ [0, 1] is all }} {{ [] is all }}"),
            "True False True"
        );
    }

    #[test]
    fn type_tests_behave_like_jinja2() {
        let cases = [
            ("{{ 'a' is string }} {{ 1 is string }}", "True False"),
            (
                "{{ 1 is number }} {{ 1.5 is number }} {{ '1' is number }}",
                "True True False",
            ),
            ("{{ {} is mapping }} {{ [] is mapping }}", "True False"),
            (
                "{{ [] is sequence }} {{ 'ab' is sequence }} {{ {} is sequence }} {{ 1 is sequence }}",
                "True True True False",
            ),
            (
                "{{ [] is iterable }} {{ 'ab' is iterable }} {{ 1 is iterable }}",
                "True True False",
            ),
            ("{{ true is boolean }} {{ 1 is boolean }}", "True False"),
            (
                "{{ 1 is integer }} {{ true is integer }} {{ 1.0 is integer }}",
                "True False False",
            ),
            ("{{ 1.0 is float }} {{ 1 is float }}", "True False"),
        ];
        for (src, want) in cases {
            assert_eq!(render(src), want, "{src}");
        }
    }

    #[test]
    fn path_tests_look_at_the_control_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f.txt");
        std::fs::write(&file, "x").expect("write");
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        let ctx = context! {
            dir => dir.path().display().to_string(),
            file => file.display().to_string(),
            link => link.display().to_string(),
            missing => dir.path().join("nope").display().to_string(),
        };
        let cases = [
            (
                "{{ file is file }} {{ dir is file }} {{ link is file }}",
                "True False True",
            ),
            ("{{ dir is directory }} {{ file is directory }}", "True False"),
            ("{{ file is exists }} {{ missing is exists }}", "True False"),
            ("{{ link is link }} {{ file is link }}", "True False"),
            ("{{ file is abs }} {{ 'rel/x' is abs }}", "True False"),
        ];
        for (src, want) in cases {
            assert_eq!(render_in(src, ctx.clone()), want, "{src}");
        }
    }

    #[test]
    fn odd_inputs_never_panic() {
        let inputs = [
            "missing",
            "none",
            "true",
            "0",
            "-1",
            "1.5",
            "''",
            "'x'",
            "'0x'",
            "'{'",
            "'\\\\'",
            "'é😀'",
            "[]",
            "[none, [1]]",
            "{}",
            "{'a': {'b': none}}",
            "range(3)",
            "('a', 1)",
        ];
        let calls = [
            "default",
            "d('x', true)",
            "bool",
            "int",
            "int(base=1)",
            "int(base=99)",
            "float",
            "ternary(1, 2)",
            "type_debug",
            "regex_replace('(a|)*', '\\\\1')",
            "regex_replace('[', '')",
            "regex_replace('x', '\\\\')",
            "regex_replace('x', '\\\\g<')",
            "regex_search('.*', '\\\\0')",
            "regex_search('(x)?', '\\\\1')",
            "regex_findall('()|(x)')",
            "regex_escape",
            "to_json",
            "to_nice_json",
            "to_yaml",
            "to_nice_yaml",
            "from_json",
            "from_yaml",
            "b64encode",
            "b64decode",
            "hash('md5')",
            "checksum",
            "md5",
            "sha1",
            "password_hash('sha512', 'salt', rounds=1000)",
            "basename",
            "dirname",
            "splitext",
            "combine",
            "combine({'a': 1}, recursive=true, list_merge='append_rp')",
            "dict2items",
            "items2dict",
            "flatten",
            "flatten(levels=-1)",
            "zip_longest([1])",
            "product",
            "extract({})",
            "union([1])",
            "intersect('ab')",
            "difference([])",
            "symmetric_difference([2])",
            "quote",
            "center(-5)",
            "center(10)",
            "unique",
            "first",
            "last",
            "length",
            "mandatory",
        ];
        let tests = [
            "truthy",
            "falsy(convert_bool=true)",
            "match('a')",
            "search('')",
            "regex('.', match_type='fullmatch')",
            "version('1.0')",
            "version('1', 'gt', strict=true)",
            "succeeded",
            "failed",
            "changed",
            "skipped",
            "subset([1])",
            "superset('a')",
            "contains(1)",
            "any",
            "all",
            "sequence",
            "file",
            "directory",
            "exists",
            "link",
            "abs",
            "defined",
            "string",
            "mapping",
        ];
        let env = env();
        for input in inputs {
            for call in calls {
                let _ = env.render_str(&format!("{{{{ {input} | {call} }}}}"), context! {});
            }
            for test in tests {
                let _ = env.render_str(&format!("{{{{ {input} is {test} }}}}"), context! {});
            }
        }
    }
}
