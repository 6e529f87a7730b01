//! The guest's side of the gate: a short `sh` script run as the agent, in its
//! workdir, before the agent's command (the realizer wraps the command with
//! it). It clones the checked-out remote from the gate (`origin` points at
//! the gate), adds the other remotes, and configures the agent's identity;
//! then it `exec`s the command. A workdir that already has `.git` is left
//! as it is.

use super::policy::Policy;

/// The command that sets up the checkout and then runs `command`.
pub fn wrap(policy: &Policy, host: &str, port: u16, command: &[String]) -> Vec<String> {
    let mut argv = vec![
        "/bin/sh".to_string(),
        "-c".into(),
        script(policy, host, port),
        "bottle-git-checkout".into(),
    ];
    argv.extend(command.iter().cloned());
    argv
}

/// The remote checked out in the workdir: the one with `checkout`, else
/// `origin`, else the first.
pub fn checked_out(policy: &Policy) -> Option<&str> {
    policy
        .remotes
        .iter()
        .find(|(_, r)| r.checkout.is_some())
        .or_else(|| policy.remotes.get_key_value("origin"))
        .or_else(|| policy.remotes.iter().next())
        .map(|(name, _)| name.as_str())
}

pub fn script(policy: &Policy, host: &str, port: u16) -> String {
    let url = |name: &str| quote(&format!("http://{host}:{port}/{name}.git"));
    let mut s = String::from(
        "set -e\n\
         if ! command -v git >/dev/null 2>&1; then\n  \
         echo 'bottle: the guest has no git, which the checkout from the git gate needs' >&2\n  \
         exit 127\n\
         fi\n",
    );
    if let Some(main) = checked_out(policy) {
        let branch = match &policy.remotes[main].checkout {
            Some(b) => format!(" --branch {}", quote(b)),
            None => String::new(),
        };
        s.push_str(&format!(
            "if [ ! -e .git ]; then\n  \
             if [ -n \"$(ls -A)\" ]; then\n    \
             echo \"bottle: $(pwd) is not empty, so the git gate's checkout is skipped\" >&2\n  \
             else\n    \
             git clone --quiet --origin {name}{branch} {url} .\n  \
             fi\n\
             fi\n",
            name = quote(main),
            url = url(main),
        ));
    }
    s.push_str("if [ -e .git ]; then\n");
    for name in policy.remotes.keys() {
        s.push_str(&format!(
            "  git remote get-url {n} >/dev/null 2>&1 || git remote add {n} {u}\n",
            n = quote(name),
            u = url(name)
        ));
    }
    s.push_str(&format!(
        "  git config user.name {}\n  git config user.email {}\nfi\nexec \"$@\"\n",
        quote(&policy.user.name),
        quote(&policy.user.email)
    ));
    s
}

/// `value` as one single-quoted shell word.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}
