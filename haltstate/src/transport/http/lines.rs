//! An event stream's bytes cut into lines as SSE defines them: a line ends at `\n`, `\r\n` or `\r`, and its bytes
//! are decoded only once the whole line is in, so a character split across network chunks arrives whole (and a
//! `\r\n` split between two chunks is one ending, not two).

/// The longest line kept while waiting for its end: a stream sending more without one is broken (or hostile), and
/// is reconnected rather than let grow the buffer.
pub(crate) const MAX_LINE: usize = 1 << 20;

/// A line longer than [`MAX_LINE`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LineTooLong;

/// Lines cut from chunks as they arrive.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    pending: Vec<u8>,
    /// The last chunk ended a line with `\r`: a `\n` first in the next one belongs to that ending.
    after_cr: bool,
}

impl Lines {
    /// The lines `chunk` completes, in order, without their endings.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, LineTooLong> {
        let mut lines = Vec::new();
        let mut bytes = chunk;
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.pending.extend_from_slice(&bytes[..end]);
            lines.push(String::from_utf8_lossy(&self.pending).into_owned());
            self.pending.clear();
            let cr = bytes[end] == b'\r';
            bytes = &bytes[end + 1..];
            if cr {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() > MAX_LINE {
            return Err(LineTooLong);
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the whole stream holds, decoded at once.
    const STREAM: &str =
        "data: {\"reason\":\"approuvé — 承認\"}\r\n\r\n: ping\rdata: x\n\ndata: ü\r";

    fn whole() -> Vec<String> {
        let mut lines = Lines::default();
        lines.push(STREAM.as_bytes()).unwrap()
    }

    #[test]
    fn the_three_line_endings_end_lines() {
        assert_eq!(
            whole(),
            [
                "data: {\"reason\":\"approuvé — 承認\"}",
                "",
                ": ping",
                "data: x",
                "",
                "data: ü"
            ]
        );
    }

    /// Cut anywhere (inside a multi-byte character, between `\r` and `\n`), in two or three chunks, the stream
    /// gives the same lines as whole.
    #[test]
    fn a_character_or_an_ending_split_across_chunks_arrives_whole() {
        let bytes = STREAM.as_bytes();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let mut lines = Lines::default();
                let mut got = lines.push(&bytes[..i]).unwrap();
                got.extend(lines.push(&bytes[i..j]).unwrap());
                got.extend(lines.push(&bytes[j..]).unwrap());
                assert_eq!(got, whole(), "cut at {i} and {j}");
            }
        }
    }

    #[test]
    fn a_line_that_never_ends_is_refused_not_kept() {
        let mut lines = Lines::default();
        let chunk = vec![b'a'; 64 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..=(MAX_LINE / chunk.len()) {
            result = lines.push(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(LineTooLong));
    }
}
