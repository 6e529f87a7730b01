//! The status line: how the guest init tells the host how the agent's
//! command ended, and when the host believes it.
//!
//! The host makes a random token for every run and appends it to the boot
//! image as `/.bottle/token` (root-only, see `initramfs::append_token`). The
//! init reads it before anything else runs, deletes the file and keeps the
//! token only in its own memory; the agent cannot read that memory (it has
//! no capabilities, the init is not dumpable, and Yama allows tracing only
//! one's own descendants). After waiting for the agent's process, the init
//! writes one line on the status port (ttyS2, whose device node it removes
//! once it holds it open): `exit TOKEN CODE`, or `fail TOKEN MESSAGE` when
//! the command could not run.
//!
//! The host accepts the port's content only if it is exactly that one line
//! with this run's token. Anything else — no line (the VM ended without the
//! init's report: powered off, crashed), another token, extra bytes before
//! or after — makes the run's status untrusted, never an exit code.
//!
//! Compiled twice, like `spec.rs`: into `bottle` and into the static init,
//! so it uses `std` only.

/// Where the token lives in the boot image (relative to the guest's `/`).
pub const TOKEN_FILE: &str = ".bottle/token";

/// How the agent's command ended, as the init saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The command ran and exited with this code (128+N for signal N).
    Exit(i32),
    /// The command could not be started; the init's reason.
    Fail(String),
}

/// Why the host does not believe the status port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untrusted {
    /// Nothing at all: the VM ended without the init's report.
    Missing,
    /// Something other than the init's one line.
    Forged(String),
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untrusted::Missing => write!(f, "the VM ended without the init's exit status"),
            Untrusted::Forged(what) => write!(
                f,
                "the status port held something other than the init's report ({what})"
            ),
        }
    }
}

/// The line the init writes for `report`.
pub fn line(token: &str, report: &Report) -> String {
    match report {
        Report::Exit(code) => format!("exit {token} {code}\n"),
        Report::Fail(message) => format!("fail {token} {}\n", message.replace(['\n', '\r'], " ")),
    }
}

/// What the status port held, judged against this run's `token`.
pub fn read(content: &[u8], token: &str) -> Result<Report, Untrusted> {
    if content.is_empty() {
        return Err(Untrusted::Missing);
    }
    let forged = |what: &str| Err(Untrusted::Forged(what.to_string()));
    let Ok(text) = std::str::from_utf8(content) else {
        return forged("bytes that are not text");
    };
    // The port is a terminal: the init's "\n" may arrive as "\r\n".
    let Some(body) = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
    else {
        return forged("no complete line");
    };
    if body.contains(['\n', '\r']) {
        return forged("more than one line");
    }
    let mut words = body.splitn(3, ' ');
    let (kind, got, rest) = (words.next(), words.next(), words.next().unwrap_or(""));
    if token.is_empty() || got != Some(token) {
        return forged("a line without this run's token");
    }
    match kind {
        Some("exit") => match rest.parse::<i32>() {
            Ok(code) if (0..=255 + 128).contains(&code) => Ok(Report::Exit(code)),
            _ => forged("an exit line without a code"),
        },
        Some("fail") => Ok(Report::Fail(rest.to_string())),
        _ => forged("a line of an unknown kind"),
    }
}

/// A fresh random token (128 bits from the kernel, as hex) for one run.
pub fn new_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_inits_line_is_believed() {
        for report in [
            Report::Exit(0),
            Report::Exit(7),
            Report::Fail("no sh".into()),
        ] {
            let text = line(TOKEN, &report);
            assert_eq!(read(text.as_bytes(), TOKEN), Ok(report.clone()));
            let terminal = text.replace('\n', "\r\n");
            assert_eq!(read(terminal.as_bytes(), TOKEN), Ok(report));
        }
    }

    #[test]
    fn nothing_is_missing_and_anything_else_is_forged() {
        assert_eq!(read(b"", TOKEN), Err(Untrusted::Missing));
        let good = line(TOKEN, &Report::Exit(7));
        for bad in [
            "exit 0\n".to_string(),
            format!("exit {} 0\n", "f".repeat(32)),
            format!("exit 0\n{good}"),
            format!("{good}exit 0\n"),
            format!("{good}junk"),
            good.trim_end().to_string(),
            format!("exit {TOKEN} zero\n"),
            format!("exit {TOKEN} 100000\n"),
            format!("quit {TOKEN} 0\n"),
        ] {
            assert!(
                matches!(read(bad.as_bytes(), TOKEN), Err(Untrusted::Forged(_))),
                "{bad:?} was believed"
            );
        }
        // A boot image without a token can vouch for nothing.
        assert!(read(b"exit  0\n", "").is_err());
    }

    #[test]
    fn tokens_are_fresh() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
