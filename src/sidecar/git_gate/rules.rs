//! Push rules: whether one ref update may go upstream. Pure, so the
//! pre-receive hook and the tests share it.

use super::policy::Remote;

/// One line of a pre-receive hook's input: `<old> <new> <ref>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub old: String,
    pub new: String,
    pub name: String,
}

impl RefUpdate {
    pub fn parse(line: &str) -> Option<RefUpdate> {
        let mut parts = line.split_whitespace();
        let (old, new, name) = (parts.next()?, parts.next()?, parts.next()?);
        Some(RefUpdate {
            old: old.into(),
            new: new.into(),
            name: name.into(),
        })
    }
    pub fn is_delete(&self) -> bool {
        is_zero(&self.new)
    }
    pub fn is_create(&self) -> bool {
        is_zero(&self.old)
    }
}

fn is_zero(id: &str) -> bool {
    id.bytes().all(|b| b == b'0')
}

/// Whether `name` matches `pattern`, whose one optional `*` matches any run
/// of characters (as in a git refspec).
pub fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.len() >= head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        }
    }
}

/// `Ok` when `update` may be pushed; otherwise the one-line reason the agent
/// sees. `fast_forward` says whether `new` descends from `old`; it is asked
/// only for an update of an existing ref.
pub fn check(
    remote: &Remote,
    update: &RefUpdate,
    fast_forward: impl FnOnce() -> bool,
) -> Result<(), String> {
    if !remote.push.iter().any(|p| matches(p, &update.name)) {
        return Err(if remote.push.is_empty() {
            "this remote takes no pushes (the recipe's `push` is empty)".into()
        } else {
            format!(
                "not allowed by the recipe's push patterns ({})",
                remote.push.join(", ")
            )
        });
    }
    if update.is_delete() {
        if !remote.delete {
            return Err("deleting a ref is not allowed (the recipe has `delete = false`)".into());
        }
        return Ok(());
    }
    if !update.is_create() && !remote.force && !fast_forward() {
        return Err(
            "not a fast-forward; force pushes are not allowed (the recipe has `force = false`)"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> Remote {
        Remote {
            url: "/r".into(),
            fetch: crate::schema::all_refs(),
            push: vec!["refs/heads/claude/*".into()],
            force: false,
            delete: false,
            checkout: None,
            credentials: None,
        }
    }
    fn update(old: &str, new: &str, name: &str) -> RefUpdate {
        RefUpdate::parse(&format!("{old} {new} {name}")).unwrap()
    }
    const Z: &str = "0000000000000000000000000000000000000000";
    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn patterns() {
        assert!(matches("refs/heads/claude/*", "refs/heads/claude/x/y"));
        assert!(!matches("refs/heads/claude/*", "refs/heads/main"));
        assert!(matches("refs/heads/main", "refs/heads/main"));
        assert!(matches("refs/tags/v*-rc", "refs/tags/v1-rc"));
        assert!(!matches("refs/tags/v*-rc", "refs/tags/v-r"));
    }

    #[test]
    fn updates() {
        let r = remote();
        assert!(check(&r, &update(Z, A, "refs/heads/claude/x"), || unreachable!()).is_ok());
        assert!(check(&r, &update(A, B, "refs/heads/claude/x"), || true).is_ok());
        let e = check(&r, &update(A, B, "refs/heads/claude/x"), || false).unwrap_err();
        assert!(e.contains("fast-forward"), "{e}");
        let e = check(&r, &update(A, Z, "refs/heads/claude/x"), || true).unwrap_err();
        assert!(e.contains("delet"), "{e}");
        let e = check(&r, &update(Z, A, "refs/heads/main"), || true).unwrap_err();
        assert!(e.contains("refs/heads/claude/*"), "{e}");
        let open = Remote {
            force: true,
            delete: true,
            ..remote()
        };
        assert!(check(&open, &update(A, B, "refs/heads/claude/x"), || false).is_ok());
        assert!(check(&open, &update(A, Z, "refs/heads/claude/x"), || false).is_ok());
    }
}
