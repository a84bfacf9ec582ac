//! [`Projection`]: copies only requested fields out of an object's JSON bytes, in one
//! streaming pass, for the `get-fields`/`list-fields`/`list-by-index-fields` imports.
//!
//! The stored JSON is never turned into a tree: a `serde_json` visitor walks the bytes,
//! skips unwanted values ([`IgnoredAny`]) and copies wanted subtrees verbatim
//! ([`RawValue`]), so the cost is one scan of the object plus the bytes copied out.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::field_path::{Error as FieldPathError, FieldPath};

/// At most this many field paths per call: bounds the work a plugin can ask for.
pub const MAX_FIELDS: usize = 128;

/// Why a projection could not be built or applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectionError {
    /// A field path does not parse.
    Path {
        /// The path as given.
        path: String,
        /// Why.
        source: FieldPathError,
    },
    /// More than [`MAX_FIELDS`] paths.
    TooMany(usize),
    /// The object is not a JSON object.
    Object(String),
}

impl fmt::Display for ProjectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The path error names the path already.
            Self::Path { source, .. } => write!(f, "{source}"),
            Self::TooMany(n) => write!(f, "too many field paths: {n} (at most {MAX_FIELDS})"),
            Self::Object(why) => write!(f, "failed to project the object: {why}"),
        }
    }
}

impl std::error::Error for ProjectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Path { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What to keep below one key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// The whole value.
    All,
    /// Only these keys (of an object, or of each object in an array).
    Keys(Vec<(String, Node)>),
}

impl Node {
    fn insert(&mut self, segments: &[String]) {
        let Self::Keys(children) = self else {
            return; // already keeps everything below
        };
        let Some((first, rest)) = segments.split_first() else {
            *self = Self::All;
            return;
        };
        let child = match children.iter().position(|(k, _)| k == first) {
            Some(i) => &mut children[i].1,
            None => {
                children.push((first.clone(), Self::Keys(Vec::new())));
                &mut children.last_mut().expect("just pushed").1
            }
        };
        child.insert(rest);
    }

    fn child(&self, key: &str) -> Option<&Self> {
        match self {
            Self::All => Some(self),
            Self::Keys(children) => children.iter().find(|(k, _)| k == key).map(|(_, n)| n),
        }
    }
}

/// Fields every projection keeps, so the result is still an identifiable object.
const ALWAYS: [&[&str]; 6] = [
    &["apiVersion"],
    &["kind"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "resourceVersion"],
    &["metadata", "uid"],
];

/// A parsed set of field paths. Build once per call with [`Projection::new`], then
/// [`Projection::write`] each object.
///
/// Paths use the controller's [`FieldPath`] syntax (`spec.nodeName`,
/// `metadata.labels['app.kubernetes.io/name']`). A path ending at an object keeps the whole
/// object; an array on the way keeps, for each element, the rest of the path
/// (`spec.containers.image` gives `spec.containers: [{"image": ...}, ...]`); a path that is
/// missing in an object is simply absent from the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    root: Node,
}

impl Projection {
    /// Parses `fields` and adds `apiVersion`, `kind` and `metadata.name`, `namespace`,
    /// `resourceVersion` and `uid`.
    ///
    /// # Errors
    /// [`ProjectionError::Path`] for a path that does not parse, [`ProjectionError::TooMany`]
    /// for more than [`MAX_FIELDS`] paths.
    pub fn new<S: AsRef<str>>(fields: &[S]) -> Result<Self, ProjectionError> {
        if fields.len() > MAX_FIELDS {
            return Err(ProjectionError::TooMany(fields.len()));
        }
        let mut root = Node::Keys(Vec::new());
        for always in ALWAYS {
            let segments: Vec<String> = always.iter().map(|s| (*s).to_owned()).collect();
            root.insert(&segments);
        }
        for field in fields {
            let path =
                FieldPath::parse(field.as_ref()).map_err(|source| ProjectionError::Path {
                    path: field.as_ref().to_owned(),
                    source,
                })?;
            root.insert(path.segments());
        }
        Ok(Self { root })
    }

    /// Appends the projection of the JSON object `json` to `out`.
    ///
    /// # Errors
    /// [`ProjectionError::Object`] when `json` is not a JSON object.
    pub fn write(&self, json: &[u8], out: &mut Vec<u8>) -> Result<(), ProjectionError> {
        let start = out.len();
        let mut de = serde_json::Deserializer::from_slice(json);
        let wrote = Project {
            node: &self.root,
            out,
            top: true,
        }
        .deserialize(&mut de)
        .and_then(|w| de.end().map(|()| w));
        match wrote {
            Ok(true) => Ok(()),
            Ok(false) => {
                out.truncate(start);
                Err(ProjectionError::Object("it is not a JSON object".into()))
            }
            Err(e) => {
                out.truncate(start);
                Err(ProjectionError::Object(e.to_string()))
            }
        }
    }

    /// The projection of one object, as new bytes.
    ///
    /// # Errors
    /// As [`Projection::write`].
    pub fn project(&self, json: &[u8]) -> Result<Vec<u8>, ProjectionError> {
        let mut out = Vec::with_capacity(256);
        self.write(json, &mut out)?;
        Ok(out)
    }

    /// The projections of `items` as one JSON array.
    ///
    /// # Errors
    /// As [`Projection::write`].
    pub fn project_array<B: AsRef<[u8]>>(&self, items: &[B]) -> Result<Vec<u8>, ProjectionError> {
        let mut out = Vec::with_capacity(2 + items.len() * 256);
        out.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            self.write(item.as_ref(), &mut out)?;
        }
        out.push(b']');
        Ok(out)
    }
}

struct Project<'a> {
    node: &'a Node,
    out: &'a mut Vec<u8>,
    /// The object itself: always written, even when empty.
    top: bool,
}

impl<'de> DeserializeSeed<'de> for Project<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Writes `"key":`. A key borrowed straight from valid JSON input had no escape sequences,
/// so it holds no quote, backslash or control character and is written back as is; an
/// unescaped (owned) key is escaped again.
#[allow(clippy::ptr_arg)] // borrowed vs owned is the point
fn write_key(out: &mut Vec<u8>, key: &Cow<'_, str>) {
    match key {
        Cow::Borrowed(k) => {
            out.push(b'"');
            out.extend_from_slice(k.as_bytes());
            out.push(b'"');
        }
        // Writing a string into a Vec cannot fail.
        Cow::Owned(k) => {
            let _ = serde_json::to_writer(&mut *out, k);
        }
    }
    out.push(b':');
}

impl<'de> Visitor<'de> for Project<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let start = self.out.len();
        self.out.push(b'{');
        let mut any = false;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match self.node.child(&key) {
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some(Node::All) => {
                    let raw: &'de RawValue = map.next_value()?;
                    if any {
                        self.out.push(b',');
                    }
                    write_key(self.out, &key);
                    self.out.extend_from_slice(raw.get().as_bytes());
                    any = true;
                }
                Some(node) => {
                    let mark = self.out.len();
                    if any {
                        self.out.push(b',');
                    }
                    write_key(self.out, &key);
                    let wrote = map.next_value_seed(Project {
                        node,
                        out: self.out,
                        top: false,
                    })?;
                    if wrote {
                        any = true;
                    } else {
                        self.out.truncate(mark);
                    }
                }
            }
        }
        if !any && !self.top {
            self.out.truncate(start);
            return Ok(false);
        }
        self.out.push(b'}');
        Ok(true)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        if self.top {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(false);
        }
        let start = self.out.len();
        self.out.push(b'[');
        let mut any = false;
        loop {
            let mark = self.out.len();
            if any {
                self.out.push(b',');
            }
            match seq.next_element_seed(Project {
                node: self.node,
                out: self.out,
                top: false,
            })? {
                None => {
                    self.out.truncate(mark);
                    break;
                }
                Some(true) => any = true,
                Some(false) => self.out.truncate(mark),
            }
        }
        if !any {
            self.out.truncate(start);
            return Ok(false);
        }
        self.out.push(b']');
        Ok(true)
    }

    // A scalar where the path wanted an object: nothing to keep.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn project(fields: &[&str], obj: &Value) -> Value {
        let p = Projection::new(fields).expect("paths parse");
        let bytes = p
            .project(&serde_json::to_vec(obj).expect("encodes"))
            .expect("projects");
        serde_json::from_slice(&bytes).expect("the projection is JSON")
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                         "labels": {"app": "web", "app.kubernetes.io/name": "x"},
                         "annotations": {"big": "value"}},
            "spec": {"nodeName": "n1", "containers": [
                {"name": "a", "image": "ia", "args": ["x"]},
                {"name": "b", "image": "ib"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1"}
        })
    }

    #[test]
    fn keeps_only_the_requested_fields_plus_identity() {
        assert_eq!(
            project(&["spec.nodeName", "status.phase"], &pod()),
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "p", "namespace": "ns", "uid": "u", "resourceVersion": "7"},
                   "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})
        );
    }

    #[test]
    fn a_path_to_an_object_keeps_all_of_it_and_bracketed_keys_pick_one_entry() {
        let out = project(&["metadata.labels"], &pod());
        assert_eq!(out["metadata"]["labels"], pod()["metadata"]["labels"]);
        assert!(out["metadata"].get("annotations").is_none());
        let out = project(&["metadata.labels['app.kubernetes.io/name']"], &pod());
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app.kubernetes.io/name": "x"})
        );
    }

    #[test]
    fn arrays_keep_the_rest_of_the_path_in_each_element() {
        let out = project(&["spec.containers.image"], &pod());
        assert_eq!(
            out["spec"],
            json!({"containers": [{"image": "ia"}, {"image": "ib"}]})
        );
    }

    #[test]
    fn missing_fields_and_scalars_on_the_way_are_left_out() {
        let out = project(&["spec.missing", "spec.nodeName.deeper", "nope"], &pod());
        assert_eq!(out.get("spec"), None);
        assert_eq!(out.get("nope"), None);
    }

    #[test]
    fn escaped_keys_are_written_back_escaped() {
        let obj = json!({"metadata": {"name": "p", "labels": {"a\"b\\c\n": "v"}}});
        let out = project(&["metadata.labels"], &obj);
        assert_eq!(out["metadata"]["labels"]["a\"b\\c\n"], "v");
        let obj = json!({"metadata": {"name": "p"}, "we\"ird": {"x": 1, "y": 2}});
        let out = project(&["[we\"ird].x"], &obj);
        assert_eq!(out["we\"ird"], json!({"x": 1}));
    }

    #[test]
    fn bad_paths_and_too_many_paths_are_refused() {
        assert!(matches!(
            Projection::new(&["spec..x"]),
            Err(ProjectionError::Path { .. })
        ));
        assert!(matches!(
            Projection::new(&[""]),
            Err(ProjectionError::Path { .. })
        ));
        let many: Vec<String> = (0..=MAX_FIELDS).map(|i| format!("f{i}")).collect();
        assert!(matches!(
            Projection::new(&many),
            Err(ProjectionError::TooMany(_))
        ));
    }

    #[test]
    fn a_non_object_is_an_error_and_leaves_the_output_untouched() {
        let p = Projection::new::<&str>(&[]).expect("no paths");
        let mut out = b"[".to_vec();
        assert!(p.write(b"[1,2]", &mut out).is_err());
        assert!(p.write(b"{\"a\":", &mut out).is_err());
        assert_eq!(out, b"[");
    }

    #[test]
    fn lists_project_every_item_into_one_array() {
        let items = [
            serde_json::to_vec(&pod()).expect("encodes"),
            br#"{"metadata":{"name":"q"},"spec":{}}"#.to_vec(),
        ];
        let p = Projection::new(&["spec.nodeName"]).expect("parses");
        let out: Value =
            serde_json::from_slice(&p.project_array(&items).expect("projects")).expect("JSON");
        assert_eq!(out[0]["spec"], json!({"nodeName": "n1"}));
        assert_eq!(out[1], json!({"metadata": {"name": "q"}}));
    }
}
