//! How the gate runs git against its mirror and the upstream: a clean
//! environment (no user or system config, no prompts, the host's `PATH`) and,
//! for an upstream with credentials, an `Authorization` header passed as
//! configuration through the environment (`GIT_CONFIG_COUNT`), never in argv,
//! a file or a log. Only the gate's own git children hold it.

use super::policy::{Credentials, Remote};
use std::fmt;
use std::path::Path;

/// The environment every git child of the gate gets; holds the credential.
#[derive(Clone, Default)]
pub struct GitEnv {
    vars: Vec<(String, String)>,
}

impl fmt::Debug for GitEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GitEnv(<redacted>)")
    }
}

impl GitEnv {
    /// The environment for `remote`, reading its credential from the host.
    pub fn for_remote(name: &str, remote: &Remote, home: &Path) -> miette::Result<GitEnv> {
        let mut config: Vec<(&str, String)> = vec![
            // No helper may answer for (or store) the upstream's password.
            ("credential.helper", String::new()),
            ("http.followRedirects", "false".into()),
            ("protocol.allow", "never".into()),
            ("protocol.file.allow", "always".into()),
            ("protocol.http.allow", "always".into()),
            ("protocol.https.allow", "always".into()),
        ];
        if let Some(credentials) = &remote.credentials {
            config.push(("http.extraHeader", authorization(name, credentials)?));
        }
        let mut vars = vec![
            (
                "PATH".into(),
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            ),
            ("HOME".into(), home.display().to_string()),
            ("LANG".into(), "C".into()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("GIT_CONFIG_GLOBAL".into(), "/dev/null".into()),
            ("GIT_TERMINAL_PROMPT".into(), "0".into()),
            ("GIT_CONFIG_COUNT".into(), config.len().to_string()),
        ];
        for (i, (key, value)) in config.into_iter().enumerate() {
            vars.push((format!("GIT_CONFIG_KEY_{i}"), key.into()));
            vars.push((format!("GIT_CONFIG_VALUE_{i}"), value));
        }
        Ok(GitEnv { vars })
    }

    /// Apply to a command: the environment is cleared first.
    pub fn apply(&self, command: &mut tokio::process::Command) {
        command.env_clear();
        for (k, v) in &self.vars {
            command.env(k, v);
        }
    }
}

fn authorization(remote: &str, credentials: &Credentials) -> miette::Result<String> {
    let raw = crate::sidecar::egress::secrets::read(
        &format!("credentials of git remote {remote}"),
        &credentials.secret,
    )?;
    let secret = raw.trim_end_matches(['\r', '\n']);
    if secret.contains(['\r', '\n']) {
        return Err(miette::miette!(
            help = "a token or password is one line",
            "the credentials of git remote `{remote}` are not one line"
        ));
    }
    let pair = format!("{}:{secret}", credentials.username);
    Ok(format!("Authorization: Basic {}", base64(pair.as_bytes())))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64() {
        assert_eq!(super::base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(super::base64(b"a"), "YQ==");
        assert_eq!(super::base64(b"ab"), "YWI=");
        assert_eq!(super::base64(b""), "");
    }
}
