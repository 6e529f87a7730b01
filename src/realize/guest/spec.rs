//! The guest spec: what the guest init needs to know about the agent (command,
//! user, working directory, environment, the names to pin in `/etc/hosts`),
//! in a line format that the init can read with nothing but `std`.
//!
//! This file is compiled twice: into the `bottle` library (which writes the
//! spec into the initramfs) and into the static guest init (which reads it),
//! so it uses `std` only. One entry per line, `key value`; a value escapes
//! `\` as `\\` and a newline as `\n`, so any argument or variable survives.

/// Everything the init does after the network is up, in the order it does it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GuestSpec {
    /// The agent's user: a name from the rootfs's `/etc/passwd`, or `uid[:gid]`.
    pub user: String,
    /// The directory the command starts in (created if missing).
    pub workdir: String,
    /// The command and its arguments; the first is looked up on the guest `PATH`.
    pub command: Vec<String>,
    /// `KEY=VALUE` pairs for the command's environment, in order.
    pub env: Vec<String>,
    /// `(address, name)` pairs written to `/etc/hosts`.
    pub hosts: Vec<(String, String)>,
    /// The guest's host name.
    pub hostname: String,
    /// PEM certificates the guest must trust (the egress proxy's CA).
    pub ca_certificates: Vec<String>,
}

impl GuestSpec {
    /// The spec as text, one `key value` entry per line.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let mut put = |key: &str, value: &str| {
            out.push_str(key);
            out.push(' ');
            out.push_str(&escape(value));
            out.push('\n');
        };
        put("user", &self.user);
        put("workdir", &self.workdir);
        put("hostname", &self.hostname);
        for arg in &self.command {
            put("arg", arg);
        }
        for var in &self.env {
            put("env", var);
        }
        for (address, name) in &self.hosts {
            put("host", &format!("{address} {name}"));
        }
        for pem in &self.ca_certificates {
            put("ca", pem);
        }
        out
    }

    /// Read a spec written by [`GuestSpec::encode`].
    pub fn decode(text: &str) -> Result<GuestSpec, String> {
        let mut spec = GuestSpec::default();
        for (number, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let (key, raw) = line.split_once(' ').unwrap_or((line, ""));
            let value = unescape(raw).ok_or_else(|| format!("line {}: bad escape", number + 1))?;
            match key {
                "user" => spec.user = value,
                "workdir" => spec.workdir = value,
                "hostname" => spec.hostname = value,
                "arg" => spec.command.push(value),
                "env" => spec.env.push(value),
                "host" => {
                    let (address, name) = value.split_once(' ').ok_or_else(|| {
                        format!("line {}: host needs an address and a name", number + 1)
                    })?;
                    spec.hosts.push((address.to_string(), name.to_string()));
                }
                "ca" => spec.ca_certificates.push(value),
                other => return Err(format!("line {}: unknown key `{other}`", number + 1)),
            }
        }
        if spec.command.is_empty() {
            return Err("the spec has no command".to_string());
        }
        Ok(spec)
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n")
}

fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_text_survives_a_round_trip() {
        let spec = GuestSpec {
            user: "agent".into(),
            workdir: "/work space".into(),
            command: vec!["sh".into(), "-c".into(), "echo a\\nb\nc \\ d".into()],
            env: vec!["A=1=2".into(), "EMPTY=".into()],
            hosts: vec![("192.168.127.254".into(), "proxy.internal".into())],
            hostname: "dev".into(),
            ca_certificates: vec![
                "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n".into(),
            ],
        };
        assert_eq!(GuestSpec::decode(&spec.encode()), Ok(spec));
    }

    #[test]
    fn unknown_keys_and_missing_commands_are_errors() {
        assert!(GuestSpec::decode("arg true\nbogus 1\n").is_err());
        assert!(GuestSpec::decode("user root\n").is_err());
    }
}
