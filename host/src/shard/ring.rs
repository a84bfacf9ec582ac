//! [`Ring`]: the consistent-hash ring that assigns every key one owner among the ring's members.
//!
//! The hash is documented so that any tool can tell which replica owns a key: FNV-1a (64 bit)
//! of the UTF-8 text, followed by murmur3's `fmix64` finalizer (FNV-1a alone spreads inputs that
//! differ only in their last bytes, such as `replica#1` and `replica#2`, poorly). A key is the
//! text `group/kind/namespace/name` of the primary object (`group` empty for the core group,
//! `namespace` empty for cluster-scoped kinds); each member stands on the ring at
//! [`VIRTUAL_NODES`] points, the hashes of `identity#0` … `identity#127`; a key belongs to the
//! member of the first point at or after its hash (wrapping around).

use std::sync::Arc;

use kubewasm_controller::ObjectKey;

use crate::runtime::Kind;

/// Points per member on the ring: enough that three members each get 33 % ± a few of the keys.
pub const VIRTUAL_NODES: u32 = 128;

/// FNV-1a (64 bit) of `bytes`, then murmur3's `fmix64` finalizer.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The hash of a primary key: [`hash`] of `group/kind/namespace/name`.
pub fn key_hash(kind: &Kind, key: &ObjectKey) -> u64 {
    let text = format!(
        "{}/{}/{}/{}",
        kind.group,
        kind.kind,
        key.namespace.as_deref().unwrap_or(""),
        key.name
    );
    hash(text.as_bytes())
}

/// The live members of a ring and their points. Cheap to clone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ring {
    /// Sorted, without duplicates.
    members: Arc<Vec<String>>,
    /// `(point, index into members)`, sorted by point.
    points: Arc<Vec<(u64, usize)>>,
}

impl Ring {
    /// The ring over `members` (order and duplicates do not matter).
    pub fn new(members: impl IntoIterator<Item = String>) -> Self {
        let mut members: Vec<String> = members.into_iter().collect();
        members.sort();
        members.dedup();
        let mut points: Vec<(u64, usize)> = members
            .iter()
            .enumerate()
            .flat_map(|(i, m)| {
                (0..VIRTUAL_NODES).map(move |v| (hash(format!("{m}#{v}").as_bytes()), i))
            })
            .collect();
        points.sort_unstable();
        Self {
            members: Arc::new(members),
            points: Arc::new(points),
        }
    }

    /// The members, sorted.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// The member owning the key of `key_hash`; `None` when the ring is empty.
    pub fn owner(&self, key_hash: u64) -> Option<&str> {
        if self.points.is_empty() {
            return None;
        }
        let i = self.points.partition_point(|(p, _)| *p < key_hash);
        let (_, member) = self.points[i % self.points.len()];
        Some(&self.members[member])
    }

    /// The ring's generation as members acknowledge it: [`hash`] of the sorted members joined
    /// by newlines, in hex. Two replicas seeing the same members agree on it.
    pub fn generation(&self) -> String {
        format!("{:016x}", hash(self.members.join("\n").as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<u64> {
        (0..n)
            .map(|i| {
                let kind = Kind {
                    group: String::new(),
                    version: "v1".into(),
                    kind: "ConfigMap".into(),
                    plural: "configmaps".into(),
                    namespaced: true,
                };
                key_hash(&kind, &ObjectKey::namespaced("shards", format!("cm-{i}")))
            })
            .collect()
    }

    fn ring(names: &[&str]) -> Ring {
        Ring::new(names.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn the_hash_is_fnv1a_with_a_finalizer() {
        // FNV-1a of "" is its offset basis; the finalizer is applied on top.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        assert_eq!(hash(b""), h ^ (h >> 33));
        assert_ne!(hash(b"a#1"), hash(b"a#2"));
    }

    #[test]
    fn three_members_share_the_keys_about_evenly() {
        let r = ring(&["a", "b", "c"]);
        let keys = keys(3000);
        for m in r.members() {
            let n = keys
                .iter()
                .filter(|k| r.owner(**k) == Some(m.as_str()))
                .count();
            assert!((700..=1300).contains(&n), "{m} owns {n} of 3000 keys");
        }
        assert_eq!(ring(&[]).owner(1), None);
    }

    #[test]
    fn a_fourth_member_takes_about_a_quarter_and_only_for_itself() {
        let three = ring(&["a", "b", "c"]);
        let four = ring(&["c", "b", "a", "d"]);
        let keys = keys(3000);
        let mut moved = 0;
        for k in &keys {
            let (before, after) = (three.owner(*k).unwrap(), four.owner(*k).unwrap());
            if before != after {
                assert_eq!(after, "d", "a key moves only to the new member");
                moved += 1;
            }
        }
        assert!((450..=1100).contains(&moved), "{moved} of 3000 keys moved");
    }

    #[test]
    fn the_generation_depends_on_the_members_only() {
        assert_eq!(
            ring(&["a", "b"]).generation(),
            ring(&["b", "a", "a"]).generation()
        );
        assert_ne!(ring(&["a", "b"]).generation(), ring(&["a"]).generation());
    }
}
