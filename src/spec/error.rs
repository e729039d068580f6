//! Configuration errors that point at the exact place to fix: file, line, column and key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One mistake in a config or profile file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file at fault.
    pub file: PathBuf,
    /// 1-based line and column, when the mistake has a place in the text.
    pub position: Option<(usize, usize)>,
    /// Dotted key path (`devices[1].profile`), or empty when the whole file is at fault.
    pub key: String,
    /// What is wrong and, where it helps, what would be right.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every mistake found in one validation run, so the engineer fixes them all in one pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// The errors as a slice.
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }
}

/// The text of one file, to turn byte spans into line/column and key paths.
#[derive(Debug, Clone)]
pub struct SourceText<'a> {
    /// Path shown in errors.
    pub file: &'a Path,
    /// The file's contents.
    pub text: &'a str,
}

impl<'a> SourceText<'a> {
    /// Wraps a file's text.
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Self { file, text }
    }

    /// An error at `span` about `key`.
    pub fn error(&self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            position: Some(self.line_col(span.start)),
            key: key.into(),
            message: message.into(),
        }
    }

    /// An error about the whole file.
    pub fn file_error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            position: None,
            key: String::new(),
            message: message.into(),
        }
    }

    /// Turns a TOML/serde error into one that names the place and the key.
    pub fn from_toml(&self, err: &toml::de::Error) -> ConfigError {
        let message = err.message().trim().to_string();
        match err.span() {
            Some(span) => {
                let key = self.key_at(span.start);
                self.error(span, key, message)
            }
            None => self.file_error(message),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// Best-effort dotted key path at a byte offset: the enclosing `[table]` or `[[array]]`
    /// header (with the array index) and the key on that line.
    pub fn key_at(&self, offset: usize) -> String {
        let offset = floor_char_boundary(self.text, offset.min(self.text.len()));
        let mut table = String::new();
        let mut counts: std::collections::HashMap<String, usize> = Default::default();
        let mut line_start = 0;
        for line in self.text[..offset].split_inclusive('\n') {
            let end = line_start + line.len();
            let trimmed = line.trim();
            if end <= offset || !line.ends_with('\n') {
                if let Some(name) = trimmed.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
                    let name = name.trim().to_string();
                    let n = counts.entry(name.clone()).or_insert(0);
                    table = format!("{name}[{n}]");
                    *n += 1;
                } else if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.split(']').next()) {
                    table = name.trim().to_string();
                }
            }
            line_start = end;
        }
        let line = self.text[offset..].lines().next().unwrap_or_default();
        let full_line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let whole_line = &self.text[full_line_start..offset + line.len()];
        let key = whole_line
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
            .filter(|k| !k.starts_with('['))
            .unwrap_or_default();
        match (table.is_empty(), key.is_empty()) {
            (true, _) => key,
            (false, true) => table,
            (false, false) => format!("{table}.{key}"),
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_path_names_array_index_and_key() {
        let text = "[gateway]\nid = \"x\"\n\n[[devices]]\nname = \"a\"\n\n[[devices]]\nname = \"b\"\nprofle = \"p\"\n";
        let src = SourceText::new(Path::new("c.toml"), text);
        let at = text.find("profle").unwrap();
        assert_eq!(src.key_at(at), "devices[1].profle");
        assert_eq!(src.line_col(at), (9, 1));
        let at = text.find("\"x\"").unwrap();
        assert_eq!(src.key_at(at), "gateway.id");
    }

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let text = "name = \"液氯储罐区\"\nlevel = 9\n";
        let src = SourceText::new(Path::new("c.toml"), text);
        let at = text.find('9').unwrap();
        assert_eq!(src.line_col(at), (2, 9));
    }
}
