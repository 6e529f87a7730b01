//! What the schema accepts but `bottle run` on this version cannot realize
//! yet. The checker consults this table and refuses each listed feature at
//! build time, at the recipe span that asks for it, so a bottle that builds
//! is a bottle that runs. When a feature is realized, its line goes and
//! nothing else changes.

/// A part of the recipe schema that the realizer may not support yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// `git.<remote> = { url = …; }`: needs the git-gate sidecar.
    GitRemotes,
    /// `sidecars.supervise = true`: the supervise sidecar.
    Supervise,
    /// `image = "<reference>"` or `image.oci = …`.
    OciImage,
    /// `files."/guest/path" = …`.
    GuestFiles,
    /// A string of the bottle that mentions a derivation (`"${writeText …}"`),
    /// whose output must then be in the guest under `/bottle/store`.
    StorePaths,
}

/// Why a feature cannot run yet, as the checker reports it.
#[derive(Debug)]
pub struct NotYet {
    pub feature: Feature,
    pub message: &'static str,
    pub help: &'static str,
}

/// The features this version of `bottle run` cannot realize.
pub const NOT_YET_REALIZED: &[NotYet] = &[
    NotYet {
        feature: Feature::GitRemotes,
        message: "git remotes need the git-gate sidecar, which this version of `bottle run` cannot start yet",
        help: "leave `git` out for now; the agent can still fetch public repositories through an egress route (e.g. `lib.egress.github-readonly`)",
    },
    NotYet {
        feature: Feature::Supervise,
        message: "the supervise sidecar is not in this version of `bottle run` yet",
        help: "leave `sidecars.supervise` out (or `false`) for now",
    },
    NotYet {
        feature: Feature::OciImage,
        message: "OCI images are not realized by this version of `bottle run` yet",
        help: "use `image = { busybox = true; };` for now",
    },
    NotYet {
        feature: Feature::GuestFiles,
        message: "this version of `bottle run` cannot place `files` in the guest yet",
        help: "leave `files` out for now",
    },
    NotYet {
        feature: Feature::StorePaths,
        message: "this mentions a derivation, whose output this version of `bottle run` cannot place in the guest yet",
        help: "write the text inline for now (e.g. `agent.command = [ \"sh\" \"-c\" \"…\" ]`)",
    },
];

/// The refusal for `feature`, if this version cannot realize it.
pub fn not_yet(feature: Feature) -> Option<&'static NotYet> {
    NOT_YET_REALIZED.iter().find(|n| n.feature == feature)
}
