//! The one canonical encoding behind every hash bottle computes.
//!
//! A derivation's hash and an output's content hash are both blake3 over a
//! byte stream written by [`Encoder`]: tagged, length-prefixed values with map
//! keys in byte order, so the same data always gives the same bytes whatever
//! order it was written in, and no two different values share an encoding.
//! The format is versioned by a domain string at the start of each stream;
//! changing anything here changes every hash, which the golden tests catch.
//! See `docs/store.md` for the byte-level description.

use serde_json::Value;
use std::fmt;

/// Domain string opening every derivation hash stream.
pub const DERIVATION_DOMAIN: &str = "bottle-derivation-v1";
/// Domain string opening every output content hash stream.
pub const OUTPUT_DOMAIN: &str = "bottle-output-v1";

/// Bytes of blake3 output kept in a hash (160 bits, 32 base-32 characters).
pub const HASH_BYTES: usize = 20;
/// Length of a hash written as text.
pub const HASH_CHARS: usize = 32;

/// The base-32 alphabet of store hashes (Nix's: no `e`, `o`, `u`, `t`, so
/// hashes never spell words and never look like a version number).
const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// A truncated blake3 hash as used in store paths.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash([u8; HASH_BYTES]);

impl Hash {
    pub fn from_blake3(hash: blake3::Hash) -> Hash {
        let mut bytes = [0u8; HASH_BYTES];
        bytes.copy_from_slice(&hash.as_bytes()[..HASH_BYTES]);
        Hash(bytes)
    }

    /// Parse the 32-character text form; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Hash> {
        if text.len() != HASH_CHARS {
            return None;
        }
        let mut bits: u64 = 0;
        let mut nbits = 0;
        let mut out = Vec::with_capacity(HASH_BYTES);
        for c in text.bytes() {
            let digit = ALPHABET.iter().position(|&a| a == c)? as u64;
            bits = (bits << 5) | digit;
            nbits += 5;
            if nbits >= 8 {
                nbits -= 8;
                out.push((bits >> nbits) as u8);
                bits &= (1 << nbits) - 1;
            }
        }
        let bytes: [u8; HASH_BYTES] = out.try_into().ok()?;
        Some(Hash(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; HASH_BYTES] {
        &self.0
    }
}

impl fmt::Display for Hash {
    /// Big-endian base 32, five bits per character: 160 bits are exactly 32 characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::with_capacity(HASH_CHARS);
        let mut bits: u64 = 0;
        let mut nbits = 0;
        for &b in &self.0 {
            bits = (bits << 8) | b as u64;
            nbits += 8;
            while nbits >= 5 {
                nbits -= 5;
                text.push(ALPHABET[((bits >> nbits) & 31) as usize] as char);
            }
            bits &= (1 << nbits) - 1;
        }
        f.write_str(&text)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

/// Why a value cannot be encoded. Only bottle's own code builds derivation
/// inputs, so reaching this is a bug in a lowering, not a user error.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("derivation inputs cannot hold {0}: only null, bools, integers, strings, lists and maps hash canonically")]
pub struct Unencodable(pub String);

/// Writes the canonical byte stream into a blake3 hasher.
pub struct Encoder {
    hasher: blake3::Hasher,
}

impl Encoder {
    /// Start a stream for `domain` (one of the `*_DOMAIN` constants).
    pub fn new(domain: &str) -> Encoder {
        let mut hasher = blake3::Hasher::new();
        hasher.update(domain.as_bytes());
        hasher.update(&[0]);
        Encoder { hasher }
    }

    fn len(&mut self, n: usize) {
        self.hasher.update(&(n as u64).to_be_bytes());
    }

    pub fn null(&mut self) {
        self.hasher.update(b"n");
    }

    pub fn bool(&mut self, b: bool) {
        self.hasher.update(if b { b"t" } else { b"f" });
    }

    pub fn int(&mut self, i: i64) {
        self.hasher.update(b"i");
        self.hasher.update(&i.to_be_bytes());
    }

    pub fn str(&mut self, s: &str) {
        self.bytes_tagged(b's', s.as_bytes());
    }

    /// Raw bytes under a one-byte tag, length-prefixed.
    pub fn bytes_tagged(&mut self, tag: u8, bytes: &[u8]) {
        self.hasher.update(&[tag]);
        self.len(bytes.len());
        self.hasher.update(bytes);
    }

    /// Like [`Encoder::bytes_tagged`] for `len` bytes read from `reader`
    /// (large files are hashed without holding them in memory).
    pub fn reader_tagged(
        &mut self,
        tag: u8,
        len: u64,
        reader: &mut impl std::io::Read,
    ) -> std::io::Result<()> {
        self.hasher.update(&[tag]);
        self.len(len as usize);
        let copied = std::io::copy(&mut std::io::Read::take(reader, len), &mut self.hasher)?;
        if copied != len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file changed while it was hashed",
            ));
        }
        Ok(())
    }

    /// Open a list of `n` items; the caller then writes exactly `n` values.
    pub fn list(&mut self, n: usize) {
        self.hasher.update(b"l");
        self.len(n);
    }

    /// Open a map of `n` entries; the caller then writes `n` (key, value)
    /// pairs with keys in ascending byte order.
    pub fn map(&mut self, n: usize) {
        self.hasher.update(b"m");
        self.len(n);
    }

    /// A one-byte tag opening a composite of the caller's own (used by the
    /// output tree hash: `D`, `F`, `L`).
    pub fn tag(&mut self, tag: u8) {
        self.hasher.update(&[tag]);
    }

    /// Write a JSON value canonically: object keys sorted, floats refused.
    pub fn json(&mut self, value: &Value) -> Result<(), Unencodable> {
        match value {
            Value::Null => self.null(),
            Value::Bool(b) => self.bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => self.int(i),
                None => return Err(Unencodable(format!("the number {n}"))),
            },
            Value::String(s) => self.str(s),
            Value::Array(items) => {
                self.list(items.len());
                for item in items {
                    self.json(item)?;
                }
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                self.map(entries.len());
                for (k, v) in entries {
                    self.str(k);
                    self.json(v)?;
                }
            }
        }
        Ok(())
    }

    pub fn finish(&self) -> Hash {
        Hash::from_blake3(self.hasher.finalize())
    }
}

/// A JSON value with every object's keys sorted, so its text form is as
/// canonical as its hash (used for `.drv` records and `manifest.json`).
pub fn sorted_json(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(sorted_json).collect()),
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted_json(v)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hash_of(v: &Value) -> Hash {
        let mut e = Encoder::new(DERIVATION_DOMAIN);
        e.json(v).unwrap();
        e.finish()
    }

    #[test]
    fn text_form_round_trips() {
        let h = hash_of(&json!({"a": 1}));
        let text = h.to_string();
        assert_eq!(text.len(), HASH_CHARS);
        assert_eq!(Hash::parse(&text), Some(h));
        assert_eq!(Hash::parse("not-a-hash"), None);
        assert_eq!(Hash::parse(&"e".repeat(32)), None);
    }

    #[test]
    fn key_order_does_not_matter_but_list_order_does() {
        assert_eq!(
            hash_of(&json!({"a": 1, "b": 2})),
            hash_of(&json!({"b": 2, "a": 1}))
        );
        assert_ne!(hash_of(&json!([1, 2])), hash_of(&json!([2, 1])));
    }

    #[test]
    fn encodings_do_not_collide_across_types_or_boundaries() {
        assert_ne!(hash_of(&json!("1")), hash_of(&json!(1)));
        assert_ne!(hash_of(&json!(["ab", "c"])), hash_of(&json!(["a", "bc"])));
        assert_ne!(hash_of(&json!({"a": null})), hash_of(&json!({})));
        assert_ne!(hash_of(&json!(true)), hash_of(&json!("t")));
    }

    #[test]
    fn floats_are_refused() {
        let mut e = Encoder::new(DERIVATION_DOMAIN);
        assert!(e.json(&json!(1.5)).is_err());
    }

    #[test]
    fn golden_encoding_is_pinned() {
        // Changing the encoding changes every store path; this must be deliberate.
        assert_eq!(
            hash_of(&json!({"kind": "file", "list": [1, "x", null, true]})).to_string(),
            "qckn0fhl8bj6gnaq5mlwax06jjr1gw2h"
        );
    }
}
