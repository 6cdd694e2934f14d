//! Writing results to standard output: parsec-tool's text, aligned tables, JSON.
//!
//! Text from the service (key and client names, descriptions) is chosen by other clients and
//! could hold terminal escape sequences or line breaks: the human-readable formats show it
//! through [`escape`], so it can neither drive the terminal nor add lines. JSON escapes it
//! already.

use std::io::Write as _;

use crate::error::Failure;

/// Writes `text` to standard output as is.
pub(crate) fn print(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::generic(format!("cannot write to standard output: {e}")))
}

/// Writes `value` as pretty-printed JSON and a newline.
pub(crate) fn json(value: &serde_json::Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::generic(format!("cannot encode JSON: {e}")))?;
    print(&format!("{text}\n"))
}

/// `text` with every control character (C0, DEL, C1) written as a Rust escape (`\n`, `\t`,
/// `\u{1b}`, ...) and backslashes doubled, so that an escape in the output always means one.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' || c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `rows` under `headers`, each column as wide as its widest cell, two spaces apart; the last
/// column is not padded. Cells are shown through [`escape`].
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| escape(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 == widths.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        text.push_str(out.trim_end());
        text.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let hostile = "app\u{1b}]0;owned\u{7}\u{1b}[2J\nroot\r\t\\n\u{9b}é";
        assert_eq!(
            escape(hostile),
            "app\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\nroot\\r\\t\\\\n\\u{9b}é"
        );
        let text = table(&["CLIENT"], &[vec![hostile.to_owned()]]);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
    }

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["ID", "NAME", "NOTE"],
            &[
                vec!["0x01".into(), "long name here".into(), "x".into()],
                vec!["0x00".into(), "n".into(), "".into()],
            ],
        );
        assert_eq!(
            text,
            "ID    NAME            NOTE\n0x01  long name here  x\n0x00  n\n"
        );
    }
}
