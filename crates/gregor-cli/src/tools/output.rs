//! How tools print: aligned tables for people, JSON for scripts (`--output json`).

use clap::ValueEnum;
use gregor_client::ClientError;

/// `--output`.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned columns with a header row.
    #[default]
    Table,
    /// One JSON document.
    Json,
}

/// Formats rows as aligned columns under `header`, two spaces apart.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// Writes `text` to stdout. A closed pipe (`gregor topics list | head -1`) is not an error:
/// the reader has what it wanted, so the tool stays quiet instead of panicking as `print!`
/// would.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// `println!` that survives a closed stdout pipe (see [`emit`]).
macro_rules! emit_line {
    ($($arg:tt)*) => {
        $crate::tools::output::emit(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use emit_line;

/// Prints `value` as pretty JSON on stdout (`--output json`).
pub fn print_json(value: &serde_json::Value) {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    emit(&text);
}

/// A client error as the one line tools print: Kafka's error name first, then what it means
/// for the user and what to do, e.g. `UNKNOWN_TOPIC_OR_PARTITION: topic 'x' does not exist`.
pub fn client_error(error: ClientError) -> anyhow::Error {
    match error {
        ClientError::Kafka { code, message } => anyhow::anyhow!(
            "{}: {}",
            code.name(),
            message.unwrap_or_else(|| "the broker refused the request".to_string())
        ),
        ClientError::Connect { addr, message } => anyhow::anyhow!(
            "NETWORK_EXCEPTION: cannot connect to {addr} ({message}); check --bootstrap-server \
             and that a broker is running there"
        ),
        ClientError::Disconnected { addr, message } => anyhow::anyhow!(
            "NETWORK_EXCEPTION: the connection to {addr} was lost ({message}); check the broker \
             and retry"
        ),
        ClientError::Timeout(ms, what) => anyhow::anyhow!(
            "REQUEST_TIMED_OUT: no answer within {ms} ms ({what}); check the broker, or raise \
             request.timeout.ms with --command-config"
        ),
        ClientError::Config { key, message } => {
            anyhow::anyhow!("INVALID_CONFIG: {key}: {message} (fix it in --command-config)")
        }
        other => anyhow::anyhow!("{other}"),
    }
}

/// The error of an item that failed, prefixed with Kafka's name, with a hint for the codes a
/// user of the tool typically meets.
pub fn item_error(error: ClientError, hint: &str) -> anyhow::Error {
    if hint.is_empty() {
        return client_error(error);
    }
    match error.code() {
        Some(code) => anyhow::anyhow!("{}: {hint}", code.name()),
        None => client_error(error),
    }
}

/// A progress bar on stderr for long work (`total` units, `bytes` to show sizes rather than
/// counts), only when stderr is a terminal: scripts and pipes get no control characters.
pub fn progress(total: u64, bytes: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let template = if bytes {
        "{bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)"
    } else {
        "{bar:40} {pos}/{len} ({per_sec}, {eta} left)"
    };
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let t = table(
            &["TOPIC", "PARTITIONS"],
            &[
                vec!["a".into(), "3".into()],
                vec!["longer".into(), "12".into()],
            ],
        );
        assert_eq!(t, "TOPIC   PARTITIONS\na       3\nlonger  12\n");
    }
}
