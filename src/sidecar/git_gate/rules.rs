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

/// Why an update may not be pushed: the one-line reason the agent sees, and
/// whether a person may still allow it (a ref outside the push patterns of
/// a remote with `push-ask`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: String,
    pub askable: bool,
}

/// `Ok` when `update` may be pushed. `fast_forward` says whether `new`
/// descends from `old`; it is asked only for an update of an existing ref.
/// A ref outside the patterns meets the other rules first, so a person is
/// never asked about a push the rules would refuse anyway.
pub fn check(
    remote: &Remote,
    update: &RefUpdate,
    fast_forward: impl FnOnce() -> bool,
) -> Result<(), Refused> {
    let refused = |reason: String| {
        Err(Refused {
            reason,
            askable: false,
        })
    };
    let outside = !remote.push.iter().any(|p| matches(p, &update.name));
    let outside_reason = || {
        if remote.push.is_empty() {
            "this remote takes no pushes (the recipe's `push` is empty)".to_string()
        } else {
            format!(
                "not allowed by the recipe's push patterns ({})",
                remote.push.join(", ")
            )
        }
    };
    if outside && !remote.push_ask {
        return refused(outside_reason());
    }
    if update.is_delete() {
        if !remote.delete {
            return refused(
                "deleting a ref is not allowed (the recipe has `delete = false`)".into(),
            );
        }
    } else if !update.is_create() && !remote.force && !fast_forward() {
        return refused(
            "not a fast-forward; force pushes are not allowed (the recipe has `force = false`)"
                .into(),
        );
    }
    if outside {
        return Err(Refused {
            reason: outside_reason(),
            askable: true,
        });
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
            push_ask: false,
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
        assert!(e.reason.contains("fast-forward") && !e.askable, "{e:?}");
        let e = check(&r, &update(A, Z, "refs/heads/claude/x"), || true).unwrap_err();
        assert!(e.reason.contains("delet") && !e.askable, "{e:?}");
        let e = check(&r, &update(Z, A, "refs/heads/main"), || true).unwrap_err();
        assert!(
            e.reason.contains("refs/heads/claude/*") && !e.askable,
            "{e:?}"
        );
        // With push-ask a ref outside the patterns may be asked about, once
        // it passes the other rules.
        let asking = Remote {
            push_ask: true,
            ..remote()
        };
        let e = check(&asking, &update(A, B, "refs/heads/main"), || true).unwrap_err();
        assert!(e.askable, "{e:?}");
        let e = check(&asking, &update(A, B, "refs/heads/main"), || false).unwrap_err();
        assert!(e.reason.contains("fast-forward") && !e.askable, "{e:?}");
        let e = check(&asking, &update(A, Z, "refs/heads/main"), || true).unwrap_err();
        assert!(e.reason.contains("delet") && !e.askable, "{e:?}");
        assert!(check(&asking, &update(Z, A, "refs/heads/claude/x"), || true).is_ok());
        let open = Remote {
            force: true,
            delete: true,
            ..remote()
        };
        assert!(check(&open, &update(A, B, "refs/heads/claude/x"), || false).is_ok());
        assert!(check(&open, &update(A, Z, "refs/heads/claude/x"), || false).is_ok());
    }
}
