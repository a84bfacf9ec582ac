//! [`ProjectionCache`]: a plugin's memo of projected reads (the projection itself is
//! [`kubewasm_core::Projection`], shared with the SDK's fake host).

use kubewasm_core::{Projection, ProjectionError};

/// A plugin's memo of projections, shared by its reconciles: a projected read of an object
/// the cache has not changed since the last projection with the same fields copies the
/// earlier result instead of scanning the object again.
///
/// Objects are recognised by their buffer: cached objects are immutable [`Bytes`], and a
/// change replaces the buffer. The memo keeps a clone of each source buffer it answers for,
/// so a buffer cannot be freed and its address reused by another object while an entry
/// refers to it. Retained source bytes are capped ([`ProjectionCache::new`]); past the cap,
/// or past 16 field sets, the memo is emptied and refills from what is read next.
#[derive(Debug)]
pub(crate) struct ProjectionCache {
    cap: usize,
    sets: parking_lot::Mutex<Vec<(Vec<String>, Memo)>>,
}

#[derive(Debug)]
struct Memo {
    projection: Projection,
    /// (address, length) of the source buffer -> (the source, its projection).
    objects: std::collections::HashMap<(usize, usize), (bytes::Bytes, bytes::Bytes)>,
    retained: usize,
}

/// At most this many distinct field sets are memoised per plugin.
const MAX_SETS: usize = 16;

impl ProjectionCache {
    /// An empty memo retaining at most `cap` bytes of source objects per field set.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            sets: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// The projections of `items` to `fields` as one JSON array (`array`) or, for one item
    /// and `!array`, as the bare object.
    ///
    /// # Errors
    /// [`ProjectionError`] for bad fields, or a stored object that is not a JSON object.
    pub(crate) fn project(
        &self,
        fields: &[String],
        items: &[bytes::Bytes],
        array: bool,
    ) -> Result<Vec<u8>, ProjectionError> {
        let mut sets = self.sets.lock();
        let i = match sets.iter().position(|(f, _)| f.as_slice() == fields) {
            Some(i) => i,
            None => {
                let projection = Projection::new(fields)?;
                if sets.len() >= MAX_SETS {
                    sets.clear();
                }
                sets.push((
                    fields.to_vec(),
                    Memo {
                        projection,
                        objects: std::collections::HashMap::new(),
                        retained: 0,
                    },
                ));
                sets.len() - 1
            }
        };
        let memo = &mut sets[i].1;
        let mut out = Vec::with_capacity(2 + items.len() * 256);
        if array {
            out.push(b'[');
        }
        for (n, item) in items.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            let key = (item.as_ptr() as usize, item.len());
            if let Some((_, projected)) = memo.objects.get(&key) {
                out.extend_from_slice(projected);
                continue;
            }
            let start = out.len();
            memo.projection.write(item, &mut out)?;
            if memo.retained + item.len() > self.cap {
                memo.objects.clear();
                memo.retained = 0;
            }
            memo.retained += item.len();
            let projected = bytes::Bytes::copy_from_slice(&out[start..]);
            memo.objects.insert(key, (item.clone(), projected));
        }
        if array {
            out.push(b']');
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                         "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"}
        })
    }

    #[test]
    fn the_memo_answers_unchanged_objects_and_reprojects_changed_ones() {
        let cache = ProjectionCache::new(1 << 20);
        let fields = vec!["spec.nodeName".to_owned()];
        let a = bytes::Bytes::from(serde_json::to_vec(&pod()).expect("encodes"));
        let first = cache
            .project(&fields, std::slice::from_ref(&a), false)
            .expect("projects");
        let again = cache
            .project(&fields, &[a.clone(), a.clone()], true)
            .expect("projects");
        assert_eq!(again, [&b"["[..], &first, b",", &first, b"]"].concat());
        // A changed object is a new buffer: projected afresh, never the old answer.
        let mut changed = pod();
        changed["spec"]["nodeName"] = json!("n2");
        let b = bytes::Bytes::from(serde_json::to_vec(&changed).expect("encodes"));
        let out: Value =
            serde_json::from_slice(&cache.project(&fields, &[b], false).expect("projects"))
                .expect("JSON");
        assert_eq!(out["spec"]["nodeName"], "n2");
        // Another field set is memoised separately.
        let other = cache
            .project(&["status.phase".to_owned()], &[a], false)
            .expect("projects");
        let other: Value = serde_json::from_slice(&other).expect("JSON");
        assert_eq!(other.get("spec"), None);
        assert_eq!(other["status"]["phase"], "Running");
    }

    #[test]
    fn the_memo_empties_itself_past_its_cap_and_stays_correct() {
        let cache = ProjectionCache::new(10);
        let fields = vec!["spec.nodeName".to_owned()];
        for _ in 0..3 {
            let a = bytes::Bytes::from(serde_json::to_vec(&pod()).expect("encodes"));
            let out: Value =
                serde_json::from_slice(&cache.project(&fields, &[a], false).expect("projects"))
                    .expect("JSON");
            assert_eq!(out["spec"]["nodeName"], "n1");
        }
        assert!(cache.sets.lock()[0].1.objects.len() <= 1);
        assert!(cache.project(&["a..b".to_owned()], &[], true).is_err());
    }
}
