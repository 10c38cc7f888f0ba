//! Java `.properties` syntax, as `java.util.Properties.load` reads it.
//!
//! Kafka's `server.properties` files are read with Java's loader, so a file that works with
//! `kafka-server-start` must parse the same way here: `key=value`, `key: value` or `key value`;
//! `#` and `!` comment lines; blank lines; a line ending in an odd number of backslashes
//! continues on the next one (whose leading whitespace is dropped); `\t`, `\n`, `\r`, `\f`,
//! `\uXXXX` escapes, and a backslash before any other character keeps that character. A key
//! given twice keeps its last value. Values are trimmed, as Kafka's `ConfigDef` trims them.

use super::ConfigError;

/// One `key=value` entry and the line it started on (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// Whether `s` ends in an odd number of backslashes, i.e. its last backslash is not escaped.
fn ends_with_continuation(s: &str) -> bool {
    s.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Splits `text` into entries, in file order.
pub(crate) fn parse(text: &str) -> Result<Vec<Entry>, ConfigError> {
    // Natural lines end at \n, \r\n or \r, as in Java.
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines = normalised.split('\n').enumerate().map(|(i, l)| (i + 1, l));
    let mut entries = Vec::new();
    while let Some((line_no, natural)) = lines.next() {
        let start = natural.trim_start_matches(is_blank);
        if start.is_empty() || start.starts_with('#') || start.starts_with('!') {
            // Comment lines are never continued, even when they end in a backslash.
            continue;
        }
        let mut logical = start.to_string();
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start_matches(is_blank)),
                None => break,
            }
        }
        let (key, value) = split_key_value(&logical);
        entries.push(Entry {
            key: unescape(key, line_no)?,
            value: unescape(value, line_no)?.trim().to_string(),
            line: line_no,
        });
    }
    Ok(entries)
}

/// Splits a logical line at the first unescaped `=`, `:` or whitespace; one `=` or `:` after
/// whitespace still belongs to the separator.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_blank(c) {
            key_end = i;
            break;
        }
    }
    let key = &line[..key_end];
    let mut rest = line[key_end..].trim_start_matches(is_blank);
    if let Some(stripped) = rest.strip_prefix(['=', ':']) {
        rest = stripped.trim_start_matches(is_blank);
    }
    (key, rest)
}

fn unescape(s: &str, line: usize) -> Result<String, ConfigError> {
    if !s.contains('\\') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32)
                    .ok_or_else(|| ConfigError::Syntax {
                        line,
                        message: format!("malformed \\uXXXX escape \"\\u{hex}\""),
                    })?;
                out.push(code);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn separators_comments_and_blank_lines() {
        let text = "# comment\n! also a comment\n\n  a=1\nb: 2\nc 3\nd = 4  \ne\t\t5\nf=\ng=x=y\n";
        assert_eq!(
            pairs(text),
            vec![
                p("a", "1"),
                p("b", "2"),
                p("c", "3"),
                p("d", "4"),
                p("e", "5"),
                p("f", ""),
                p("g", "x=y"),
            ]
        );
    }

    #[test]
    fn continuation_lines() {
        let text = "listeners=PLAINTEXT://:9092,\\\n    CONTROLLER://:9093\nnext=1\r\nlast=a\\\\\n";
        assert_eq!(
            pairs(text),
            vec![
                p("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
                p("next", "1"),
                p("last", "a\\"),
            ]
        );
        // A comment ending in a backslash does not swallow the next line; an empty
        // continuation line ends the entry; a backslash at end of file is dropped.
        assert_eq!(
            pairs("# note \\\nkey=v\\\n\nother=w\\"),
            vec![p("key", "v"), p("other", "w")]
        );
    }

    #[test]
    fn escapes_and_line_numbers() {
        let entries = parse("\n\na\\=b=\\u0041\\tz\\q\n").unwrap();
        assert_eq!(entries[0].key, "a=b");
        assert_eq!(entries[0].value, "A\tzq");
        assert_eq!(entries[0].line, 3);
        let err = parse("ok=1\nbad=\\u12G4\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
