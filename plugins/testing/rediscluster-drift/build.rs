//! Builds the rediscluster example's sources (plugins/rediscluster/src) into one file in
//! OUT_DIR with a single change: Redis listens on 6380 instead of 6379. Everything else is the
//! example's code as it is, so a recording of the example replayed on this build differs in
//! exactly the writes that carry the port. A change to the example that moves the constant
//! fails this build, loudly, rather than silently building an unchanged copy.

use std::path::Path;

const FROM: &str = "pub const PORT: i32 = 6379;";
const TO: &str = "pub const PORT: i32 = 6380;";

fn main() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rediscluster/src");
    let read = |name: &str| {
        let path = src.join(name);
        println!("cargo::rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        prepare(name, &text)
    };
    let mut lib = read("lib.rs");
    for module in ["cluster", "desired"] {
        let declaration = format!("mod {module};");
        assert!(
            lib.contains(&declaration),
            "plugins/rediscluster/src/lib.rs no longer declares `{declaration}`"
        );
        let body = read(&format!("{module}.rs"));
        lib = lib.replacen(&declaration, &format!("mod {module} {{\n{body}\n}}"), 1);
    }
    assert_eq!(
        lib.matches(FROM).count(),
        1,
        "plugins/rediscluster/src/desired.rs must hold `{FROM}` exactly once"
    );
    let lib = lib.replacen(FROM, TO, 1);
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("rediscluster.rs");
    std::fs::write(&out, lib).expect("write the drifted sources");
}

/// The file without its inner doc comments (not allowed in an included file) and without its
/// unit tests (they read files relative to the example's folder).
fn prepare(name: &str, text: &str) -> String {
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("//!"))
        .map(|l| format!("{l}\n"))
        .collect();
    match text.rfind("#[cfg(test)]\nmod tests {") {
        Some(at) => {
            assert!(
                text.trim_end().ends_with('}'),
                "{name}: its tests module is expected at the end of the file"
            );
            text[..at].to_owned()
        }
        None => text,
    }
}
