//! The code of a template, read without rendering it: the inside of its `{{ }}` and `{% %}`
//! tags, and the filters and tests that code names, so that a misspelled one is an error before
//! anything runs (Jinja itself finds it only when it renders).

/// Whether a name follows `|` (a filter) or `is` (a test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    Filter,
    Test,
}

/// The code parts of `text` with their byte offsets: the inside of each `{{ }}` and `{% %}`
/// tag (`{% raw %}` blocks are text); an `expression` (`when:`) is all code.
pub fn parts(text: &str, expression: bool) -> Vec<(usize, &str)> {
    if expression {
        return vec![(0, text)];
    }
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = text[at..].find('{').map(|i| at + i) {
        let tail = &text[i..];
        if let Some(end) = super::raw_block_end(tail) {
            at = i + end;
            continue;
        }
        let close = match tail.get(..2) {
            Some("{{") => Some("}}"),
            Some("{%") => Some("%}"),
            _ => None,
        };
        match close.and_then(|c| tail.find(c)) {
            Some(j) => {
                out.push((i + 2, &tail[2..j]));
                at = i + j + 2;
            }
            None => at = i + 1,
        }
    }
    out
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The identifier starting at `i` after blanks, and where it ends.
fn word_at(code: &str, mut i: usize) -> (usize, &str) {
    let b = code.as_bytes();
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let start = i;
    if i < b.len() && is_ident_start(b[i]) {
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
    }
    (start, &code[start..i])
}

/// The filters (`x | name`) and tests (`x is name`, `x is not name`) an expression names, with
/// their byte offsets in `code`; string literals are skipped.
pub fn filters_and_tests(code: &str) -> Vec<(Named, &str, usize)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' || c == b'"' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == b'|' {
            let (at, name) = word_at(code, i + 1);
            if !name.is_empty() {
                out.push((Named::Filter, name, at));
            }
            i = at + name.len().max(1);
        } else if is_ident_start(c) && (i == 0 || !(is_ident(b[i - 1]) || b[i - 1] == b'.')) {
            let (_, word) = word_at(code, i);
            i += word.len();
            if word == "is" {
                let (mut at, mut name) = word_at(code, i);
                if name == "not" {
                    (at, name) = word_at(code, at + name.len());
                }
                if !name.is_empty() {
                    out.push((Named::Test, name, at));
                    i = at + name.len();
                }
            }
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_tests_are_found_outside_strings() {
        let names: Vec<(Named, &str)> =
            filters_and_tests("x | upper is not defined and 'a|b' | regex_replace('|', y is odd)")
                .into_iter()
                .map(|(k, n, _)| (k, n))
                .collect();
        assert_eq!(
            names,
            [
                (Named::Filter, "upper"),
                (Named::Test, "defined"),
                (Named::Filter, "regex_replace"),
                (Named::Test, "odd")
            ]
        );
        assert!(filters_and_tests("this | length > island").len() == 1);
    }

    #[test]
    fn code_parts_skip_text_and_raw_blocks() {
        let text = "a {{ x | f }} {% raw %}{{ y | g }}{% endraw %} {% if z %}";
        let parts: Vec<&str> = parts(text, false).into_iter().map(|(_, p)| p).collect();
        assert_eq!(parts, [" x | f ", " if z "]);
        assert!(super::parts("status is unknown", false).is_empty());
        assert_eq!(super::parts("x is odd", true), [(0, "x is odd")]);
    }
}
