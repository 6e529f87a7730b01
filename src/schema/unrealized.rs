//! What the schema accepts but `bottle run` on this version cannot realize
//! yet. The checker consults this table and refuses each listed feature at
//! build time, at the recipe span that asks for it, so a bottle that builds
//! is a bottle that runs. When a feature is realized, its line goes and
//! nothing else changes.

/// A part of the recipe schema that the realizer may not support yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
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
        feature: Feature::StorePaths,
        message: "this mentions a derivation, whose output this version of `bottle run` cannot place in the guest yet",
        help: "place the file with `files.\"/guest/path\" = …;` and name that guest path, or write the text inline",
    },
];

/// The refusal for `feature`, if this version cannot realize it.
pub fn not_yet(feature: Feature) -> Option<&'static NotYet> {
    NOT_YET_REALIZED.iter().find(|n| n.feature == feature)
}
