//! Built-in transports of an uplink: TCP client, HTTP POST and MQTT publish. Each module
//! holds its `transport = { type = … }` settings, their checks and the [`super::Transport`].

pub mod http;
pub mod mqtt;
pub mod tcp;

/// A short, single-line excerpt of a peer's answer for logs and errors.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match one_line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}
