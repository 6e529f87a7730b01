//! Secret values for header injection, read on the host when the sidecar
//! starts. A value only ever lives in memory here and in the header of a
//! request going upstream: `Debug` is redacted and header values are marked
//! sensitive so nothing prints them.

use super::policy::{Policy, SecretRef};
use hyper::header::HeaderValue;
use std::collections::HashMap;
use std::fmt;

/// One secret's value, ready to be sent as a header value.
#[derive(Clone)]
pub struct SecretValue(HeaderValue);

impl SecretValue {
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// Every secret the policy declares, by name.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    values: HashMap<String, SecretValue>,
}

impl Secrets {
    /// Read every declared secret from its env var or file. A missing source
    /// is an error naming the source, never the value.
    pub fn load(policy: &Policy) -> miette::Result<Secrets> {
        let mut values = HashMap::new();
        for (name, reference) in &policy.secrets {
            let raw = read(name, reference)?;
            // A file usually ends in a newline that is not part of the value.
            let trimmed = raw.trim_end_matches(['\r', '\n']);
            let mut value = HeaderValue::from_str(trimmed).map_err(|_| {
                miette::miette!(
                    help = "a header value is one line of visible ASCII characters",
                    "secret `{name}` cannot be sent as a header value"
                )
            })?;
            value.set_sensitive(true);
            values.insert(name.clone(), SecretValue(value));
        }
        Ok(Secrets { values })
    }

    pub fn get(&self, name: &str) -> Option<&SecretValue> {
        self.values.get(name)
    }
}

/// Read the value of the secret `name` from where `reference` points (the
/// one place a secret's value is read, for every sidecar).
pub fn read(name: &str, reference: &SecretRef) -> miette::Result<String> {
    match (&reference.env, &reference.file) {
        (Some(var), _) => std::env::var(var).map_err(|_| {
            miette::miette!(
                help = format!("export {var} in the environment that starts the bottle"),
                "secret `{name}` reads the environment variable {var}, which is not set (or not UTF-8)"
            )
        }),
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|err| {
            miette::miette!(
                help = "create the file, or point the secret at another one",
                "secret `{name}` reads {}, which cannot be read: {err}",
                path.display()
            )
        }),
        (None, None) => Err(miette::miette!("secret `{name}` names no source")),
    }
}
