//! The guest's UART output, as it reaches the user.
//!
//! The device model sends the bytes a record produced tagged with the record's sequence
//! number, before its reply. A device model that dies after that but before replying is
//! restarted and handles the same record again, producing the same bytes with the same
//! number: accepting each number once keeps the output complete and free of duplicates.

use std::io::Write;

/// Collected (and optionally echoed) UART output.
#[derive(Debug, Default)]
pub struct Console {
    last_seq: u64,
    text: Vec<u8>,
    echo: bool,
    duplicates: u64,
}

impl Console {
    /// A console; with `echo`, output is printed to stdout as it comes.
    pub fn new(echo: bool) -> Self {
        Self {
            echo,
            ..Self::default()
        }
    }

    /// Output of record `seq`. Bytes of a record already accepted are dropped.
    pub fn accept(&mut self, seq: u64, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if seq <= self.last_seq {
            self.duplicates += 1;
            return;
        }
        self.last_seq = seq;
        self.text.extend_from_slice(bytes);
        if self.echo {
            let mut out = std::io::stdout().lock();
            // The user closing stdout must not stop the guest.
            let _ = out.write_all(bytes).and_then(|()| out.flush());
        }
    }

    /// Everything accepted.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }

    /// Chunks dropped as repeats.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_record_counts_once() {
        let mut c = Console::new(false);
        c.accept(1, b"H");
        c.accept(2, b"");
        c.accept(3, b"i");
        c.accept(3, b"i");
        c.accept(1, b"H");
        c.accept(4, b"!");
        assert_eq!(c.text(), "Hi!");
        assert_eq!(c.duplicates(), 2);
    }
}
