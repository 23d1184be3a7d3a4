//! Ansible's `module: k=v k2="v 2" free form text` argument strings.

/// One word of the string: its text as written and, for `k=v`, the key and unquoted value.
#[derive(Debug, PartialEq)]
struct Word<'a> {
    raw: &'a str,
    kv: Option<(String, String)>,
}

/// Decodes Python's escapes (`\\n`, `\\t`, `\\"`, `\\'`, `\\\\`, `\\xHH`, `\\uHHHH`; no octal, which Ansible does not decode),
/// then removes one pair of matching outer quotes, as Ansible's `parse_kv` does
/// (`_decode_escapes`, then `unquote`): quotes inside the value, as in `{{ 'a b' }}`, stay.
fn unquote(s: &str) -> String {
    let s = s.trim();
    // Outer quotes are judged on the text as written (`"say \\"hi\\""` is quoted).
    let b = s.as_bytes();
    let quoted = b.len() > 1 && b[0] == b[b.len() - 1] && matches!(b[0], b'"' | b'\'') && b[b.len() - 2] != b'\\';
    let decoded = decode_escapes(s);
    if quoted {
        let mut chars = decoded.chars();
        chars.next();
        chars.next_back();
        chars.as_str().to_string()
    } else {
        decoded
    }
}

/// Python's `unicode-escape` sequences, as Ansible's `_decode_escapes` decodes them; any other
/// backslash stays.
fn decode_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let hex = |from: usize, n: usize| -> Option<char> {
        let digits: String = chars.get(from..from + n)?.iter().collect();
        u32::from_str_radix(&digits, 16).ok().and_then(char::from_u32)
    };
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' || i + 1 >= chars.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let next = chars[i + 1];
        let simple = match next {
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            _ => None,
        };
        if let Some(d) = simple {
            out.push(d);
            i += 2;
            continue;
        }
        let (decoded, len) = match next {
            'x' => (hex(i + 2, 2), 4),
            'u' => (hex(i + 2, 4), 6),
            'U' => (hex(i + 2, 8), 10),
            _ => (None, 0),
        };
        match decoded {
            Some(d) => {
                out.push(d);
                i += len;
            }
            None => {
                out.push('\\');
                i += 1;
            }
        }
    }
    out
}

/// Splits on whitespace outside quotes, keeping each word's original text.
fn words(text: &str) -> Result<Vec<Word<'_>>, String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        let mut quote: Option<u8> = None;
        // Whitespace inside `{{ }}` / `{% %}` does not split a word, as in Ansible.
        let mut jinja = 0usize;
        while i < bytes.len() {
            let c = bytes[i];
            let next = bytes.get(i + 1).copied();
            if quote.is_none() && c == b'{' && matches!(next, Some(b'{' | b'%')) {
                jinja += 1;
                i += 2;
                continue;
            }
            if quote.is_none() && jinja > 0 && matches!(c, b'}' | b'%') && next == Some(b'}') {
                jinja -= 1;
                i += 2;
                continue;
            }
            if jinja > 0 {
                i += 1;
                continue;
            }
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) if c == b'\\' => i += 1,
                Some(_) => {}
                None if c == b'"' || c == b'\'' => quote = Some(c),
                None if c == b'\\' => i += 1,
                None if c.is_ascii_whitespace() => break,
                None => {}
            }
            i += 1;
        }
        if quote.is_some() {
            return Err(format!("unbalanced quotes in `{text}`"));
        }
        let raw = &text[start..i.min(text.len())];
        let kv = raw.split_once('=').and_then(|(k, v)| {
            (!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .then(|| (k.to_string(), unquote(v)))
        });
        out.push(Word { raw, kv });
    }
    Ok(out)
}

/// `k=v` pairs and the remaining free-form text.
pub type KeyValues = (Vec<(String, String)>, Option<String>);

/// Splits `k=v` arguments from free-form text. Keys that are not parameters of the module stay
/// in the free-form text (`echo a=b` is a command); without free form every word must be `k=v`.
pub fn parse_kv(text: &str, is_param: impl Fn(&str) -> bool, free_form: bool) -> Result<KeyValues, String> {
    let mut args = Vec::new();
    // The free-form text keeps what separated its words as written (line breaks of a `|`
    // block, runs of spaces), as Ansible's `join_args` does; where a `k=v` was taken out
    // between two of them, one space joins them.
    let mut rest = String::new();
    let mut last_end: Option<usize> = None;
    let mut taken_since = false;
    for w in words(text)? {
        match w.kv {
            Some((k, v)) if is_param(&k) => {
                args.push((k, v));
                taken_since = true;
            }
            Some((k, _)) if !free_form => return Err(format!("unknown parameter `{k}`")),
            _ if !free_form => return Err(format!("`{}` is not of the form key=value", w.raw)),
            _ => {
                let start = w.raw.as_ptr() as usize - text.as_ptr() as usize;
                match last_end {
                    Some(end) if !taken_since => rest.push_str(&text[end..start]),
                    Some(_) => rest.push(' '),
                    None => {}
                }
                rest.push_str(w.raw);
                last_end = Some(start + w.raw.len());
                taken_since = false;
            }
        }
    }
    if let Some(end) = last_end
        && !taken_since
    {
        rest.push_str(&text[end..]);
    }
    let rest = (!rest.is_empty()).then_some(rest);
    Ok((args, rest))
}

#[cfg(test)]
mod tests {
    use super::parse_kv;

    #[test]
    fn splits_params_from_free_form() {
        let (args, rest) = parse_kv(
            r#"echo "a  b" x=1 chdir=/tmp creates="/x y""#,
            |k| k == "chdir" || k == "creates",
            true,
        )
        .unwrap();
        assert_eq!(
            args,
            [("chdir".into(), "/tmp".into()), ("creates".into(), "/x y".into())]
        );
        assert_eq!(rest.as_deref(), Some(r#"echo "a  b" x=1"#));
    }

    #[test]
    fn free_form_text_keeps_its_lines_as_ansibles_join_args() {
        let text = "echo a > o\n{% for r in [1, 2] %}\necho \"{{ r }}\"  >> o\n{% endfor %}\n";
        let (args, rest) = parse_kv(text, |k| k == "chdir", true).unwrap();
        assert!(args.is_empty());
        assert_eq!(rest.as_deref(), Some(text));
        let (args, rest) = parse_kv("ls\t-l chdir=/tmp  /srv\n", |k| k == "chdir", true).unwrap();
        assert_eq!(args.len(), 1);
        assert_eq!(rest.as_deref(), Some("ls\t-l /srv\n"));
    }

    #[test]
    fn templates_keep_their_spaces() {
        let (args, rest) = parse_kv(
            "path={{ dir }}/x state=directory msg=\"{{ a ~ ' ' ~ b }}\"",
            |_| true,
            false,
        )
        .unwrap();
        assert_eq!(args[0], ("path".into(), "{{ dir }}/x".into()));
        assert_eq!(args[2], ("msg".into(), "{{ a ~ ' ' ~ b }}".into()));
        assert!(rest.is_none());
    }

    #[test]
    fn escapes_decode_as_ansibles_parse_kv_decodes_them() {
        let (args, _) = parse_kv(r#"m="say \"hi\"" p='it\'s' t=a\tb x=\x41 w=c:\\dir"#, |_| true, false).unwrap();
        assert_eq!(args[0].1, "say \"hi\"");
        assert_eq!(args[1].1, "it's");
        assert_eq!(args[2].1, "a\tb");
        assert_eq!(args[3].1, "A");
        assert_eq!(args[4].1, "c:\\dir");
        let (args, _) = parse_kv(r"line='\1 no' p=C:\2024", |_| true, false).unwrap();
        assert_eq!(args[0].1, r"\1 no");
        assert_eq!(args[1].1, r"C:\2024");
    }

    #[test]
    fn quotes_inside_a_value_stay_as_ansible_keeps_them() {
        let (args, _) = parse_kv("a={{ 'x y' | upper }} c=\"q\" d=x'y'z", |_| true, false).unwrap();
        assert_eq!(args[0].1, "{{ 'x y' | upper }}");
        assert_eq!(args[1].1, "q");
        assert_eq!(args[2].1, "x'y'z");
    }

    #[test]
    fn key_values_only_without_free_form() {
        let (args, _) = parse_kv("content=\"a\\nb\" x=1", |_| true, false).unwrap();
        assert_eq!(args[0].1, "a\nb");
        let (args, rest) = parse_kv("src=a.conf dest='/etc/my app.conf' mode=0644", |_| true, false).unwrap();
        assert_eq!(args[1], ("dest".into(), "/etc/my app.conf".into()));
        assert_eq!(args[2], ("mode".into(), "0644".into()));
        assert!(rest.is_none());
        assert_eq!(
            parse_kv("src=a oops", |_| true, false).unwrap_err(),
            "`oops` is not of the form key=value"
        );
        assert!(
            parse_kv("msg='unclosed", |_| true, false)
                .unwrap_err()
                .contains("unbalanced")
        );
    }
}
