//! User-facing errors about input: one message that points at file:line:column, shows the source
//! line with a caret and, where it helps, a hint. Every load and validate step reports through it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A loaded text file, kept so errors can quote the offending line.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path as the user gave it (or as found beside an inventory).
    pub path: PathBuf,
    /// The whole file content.
    pub text: Arc<str>,
    /// Decrypted from a vault: errors name the line and column but never show its text.
    pub sealed: bool,
}

impl Source {
    /// Wraps a file's text.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
            sealed: false,
        }
    }

    /// Wraps the plaintext of a vault-encrypted file.
    pub fn sealed(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        Self {
            sealed: true,
            ..Self::new(path, text)
        }
    }

    /// An error located at `line:column` (1-based) of this file.
    pub fn error(&self, line: u32, column: u32, message: impl Into<String>) -> Diagnostic {
        let source_line = if line == 0 || self.sealed {
            None
        } else {
            self.text
                .lines()
                .nth(line as usize - 1)
                .map(|l| l.trim_end().to_string())
        };
        Diagnostic {
            message: message.into(),
            location: Some(Location {
                path: self.path.clone(),
                line,
                column,
                source_line,
            }),
            hint: None,
        }
    }
}

/// Where a value was written, kept on loaded items so later checks can point back at them.
#[derive(Debug, Clone)]
pub struct Span {
    /// The file.
    pub source: Source,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl Span {
    /// The span of a YAML node in `source`.
    pub fn of(source: &Source, node: &crate::yaml::Node) -> Self {
        Self {
            source: source.clone(),
            line: node.line,
            column: node.column,
        }
    }

    /// An error pointing here.
    pub fn error(&self, message: impl Into<String>) -> Diagnostic {
        self.source.error(self.line, self.column, message)
    }

    /// `file:line:column`, for hints and output.
    pub fn short(&self) -> String {
        format!("{}:{}:{}", self.source.path.display(), self.line, self.column)
    }

    /// `file:line`, the way task locations are shown.
    pub fn file_line(&self) -> String {
        format!("{}:{}", self.source.path.display(), self.line)
    }
}

/// Where in which file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// 1-based line; 0 when unknown.
    pub line: u32,
    /// 1-based column; 0 when unknown.
    pub column: u32,
    /// The text of that line, for the snippet.
    pub source_line: Option<String>,
}

/// An error in the user's input, rendered like a compiler diagnostic.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Diagnostic {
    /// What is wrong, without a trailing period.
    pub message: String,
    /// Where, when it comes from a file.
    pub location: Option<Location>,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error not tied to a position in a file (a flag, a pattern).
    pub fn plain(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            location: None,
            hint: None,
        }
    }

    /// An error about a whole file (missing, unreadable).
    pub fn in_file(path: &Path, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            location: Some(Location {
                path: path.to_path_buf(),
                line: 0,
                column: 0,
                source_line: None,
            }),
            hint: None,
        }
    }

    /// Adds a hint line.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) if loc.line > 0 => {
                // Column 0: the line is known, not the column (the source line, no caret).
                let column = if loc.column > 0 {
                    format!(":{}", loc.column)
                } else {
                    String::new()
                };
                // Without the source line (a vault's, or past the end), the message is all.
                write!(f, "{}:{}{column}: {}", loc.path.display(), loc.line, self.message)?;
                if let Some(src) = loc.source_line.as_ref().filter(|_| loc.column == 0) {
                    let number = loc.line.to_string();
                    let pad = " ".repeat(number.len());
                    writeln!(f, "\n{pad} |")?;
                    write!(f, "{number} | {src}")?;
                } else if let Some(src) = &loc.source_line {
                    let number = loc.line.to_string();
                    let pad = " ".repeat(number.len());
                    writeln!(f, "\n{pad} |")?;
                    writeln!(f, "{number} | {src}")?;
                    let caret_at = src
                        .chars()
                        .take(loc.column.saturating_sub(1) as usize)
                        .map(|c| if c == '\t' { '\t' } else { ' ' })
                        .collect::<String>();
                    write!(f, "{pad} | {caret_at}^")?;
                }
            }
            Some(loc) => write!(f, "{}: {}", loc.path.display(), self.message)?,
            None => write!(f, "{}", self.message)?,
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

/// The closest candidate to `word`, for "did you mean" hints; `None` when nothing is close.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        // The first of equally close candidates wins, so hints are stable.
        .fold(None::<(f64, &str)>, |best, (score, c)| match best {
            Some((b, _)) if b >= score => best,
            _ => Some((score, c)),
        })
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_snippet_with_caret() {
        let src = Source::new("inv.yaml", "all:\n  hostz:\n    a: 1\n");
        let d = src
            .error(2, 3, "unknown key `hostz`")
            .with_hint("did you mean `hosts`?");
        assert_eq!(
            d.to_string(),
            "inv.yaml:2:3: unknown key `hostz`\n  |\n2 |   hostz:\n  |   ^\nhint: did you mean `hosts`?"
        );
    }

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(did_you_mean("hostz", ["hosts", "vars", "children"]), Some("hosts"));
        assert_eq!(did_you_mean("childs", ["hosts", "vars", "children"]), Some("children"));
        assert_eq!(did_you_mean("zzz", ["hosts", "vars", "children"]), None);
    }
}
