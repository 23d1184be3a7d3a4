//! Colour only for terminals, and never when `NO_COLOR` is set (https://no-color.org).

use std::io::IsTerminal;

/// Whether and how to colour text for one stream.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    enabled: bool,
}

impl Style {
    /// Colour when the stream is a terminal and `NO_COLOR` is unset or empty.
    pub fn detect(stream_is_terminal: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            enabled: stream_is_terminal && !no_color,
        }
    }

    /// For stdout.
    pub fn stdout() -> Self {
        Self::detect(std::io::stdout().is_terminal())
    }

    /// For stderr.
    pub fn stderr() -> Self {
        Self::detect(std::io::stderr().is_terminal())
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Success.
    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }
    /// A change was made.
    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }
    /// Failure.
    pub fn red(self, text: &str) -> String {
        self.paint("1;31", text)
    }
    /// Unreachable or skipped.
    pub fn magenta(self, text: &str) -> String {
        self.paint("35", text)
    }
    /// Secondary information.
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }
    /// Emphasis.
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
}
