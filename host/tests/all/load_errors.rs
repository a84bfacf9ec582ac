//! Bad plugin files fail to load with an error naming the file and the reason; the runtime
//! keeps working.

use std::path::{Path, PathBuf};

use kubewasm::loader::{DEFAULT_MAX_PLUGIN_SIZE, FileError, load_file};
use kubewasm::runtime::{LoadError, Runtime};

use crate::support;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

async fn load_err(runtime: &Runtime, path: &Path) -> FileError {
    match load_file(runtime, path, DEFAULT_MAX_PLUGIN_SIZE).await {
        Ok(p) => panic!("{} loaded as {p:?}", path.display()),
        Err(e) => {
            eprintln!("{e}");
            assert!(
                e.to_string().contains(&path.display().to_string()),
                "{e} does not name the file"
            );
            e
        }
    }
}

#[tokio::test]
async fn a_file_that_is_not_wasm_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = support::runtime();
    let path = write(dir.path(), "notes.wasm", b"hello, I am a text file\n");
    let err = load_err(&runtime, &path).await;
    assert!(
        matches!(err, FileError::Load(LoadError::NotWasm { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("not a WebAssembly file"), "{err}");
}

#[tokio::test]
async fn a_missing_file_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = support::runtime();
    let err = load_err(&runtime, &dir.path().join("absent.wasm")).await;
    assert!(matches!(err, FileError::Read(_)), "{err:?}");
}

#[tokio::test]
async fn a_fifo_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipe.wasm");
    support::mkfifo(&path);
    let runtime = support::runtime();
    // A read of a FIFO with no writer would block this test forever.
    let err = load_err(&runtime, &path).await;
    assert!(matches!(err, FileError::Read(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("is not a regular file (it is a FIFO)"),
        "{err}"
    );
    assert!(err.to_string().contains("pipe.wasm"), "{err}");
}

#[tokio::test]
async fn a_core_module_is_rejected_as_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = support::runtime();
    let module = wat::parse_str(r#"(module (func (export "reconcile")))"#).unwrap();
    let path = write(dir.path(), "core.wasm", &module);
    let err = load_err(&runtime, &path).await;
    assert!(
        matches!(err, FileError::Load(LoadError::CoreModule { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("not a component"), "{err}");
}

#[tokio::test]
async fn a_component_of_another_world_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = support::runtime();
    let component = wat::parse_str(
        r#"(component
             (core module $m (func (export "run")))
             (core instance $i (instantiate $m))
             (func $run (canon lift (core func $i "run")))
             (instance $r (export "run" (func $run)))
             (export "wasi:cli/run@0.2.0" (instance $r)))"#,
    )
    .unwrap();
    let path = write(dir.path(), "other-world.wasm", &component);
    let err = load_err(&runtime, &path).await;
    assert!(
        matches!(err, FileError::Load(LoadError::Incompatible { .. })),
        "{err:?}"
    );
    // The error names both versions the host loads and what the component exports instead.
    for needle in [
        "kubewasm:controller/reconciler@0.2.0",
        "kubewasm:controller/reconciler@0.1.0",
        "it exports wasi:cli/run@0.2.0",
    ] {
        assert!(
            err.to_string().contains(needle),
            "{needle:?} missing: {err}"
        );
    }
}

#[tokio::test]
async fn a_component_exporting_another_major_version_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = support::runtime();
    let component = wat::parse_str(
        r#"(component
             (core module $m (func (export "f") (result i32) i32.const 0))
             (core instance $i (instantiate $m))
             (func $f (result u32) (canon lift (core func $i "f")))
             (instance $r (export "get-manifest" (func $f)))
             (export "kubewasm:controller/reconciler@1.0.0" (instance $r)))"#,
    )
    .unwrap();
    let path = write(dir.path(), "v1-export.wasm", &component);
    let err = load_err(&runtime, &path).await;
    assert!(
        matches!(err, FileError::Load(LoadError::Incompatible { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("reconciler@0.1.0"), "{err}");
}

#[tokio::test]
async fn a_component_importing_another_major_version_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = support::runtime();
    let component = wat::parse_str(
        r#"(component
             (import "kubewasm:controller/cache@1.0.0" (instance (export "get" (func)))))"#,
    )
    .unwrap();
    let path = write(dir.path(), "v1-import.wasm", &component);
    let err = load_err(&runtime, &path).await;
    assert!(
        matches!(err, FileError::Load(LoadError::Incompatible { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("kubewasm:controller/cache@1.0.0"),
        "{err}"
    );
}

#[tokio::test]
async fn a_truncated_component_fails_to_compile() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = support::runtime();
    let good = std::fs::read(support::example("hello")).unwrap();
    let path = write(dir.path(), "truncated.wasm", &good[..good.len() / 2]);
    let err = load_err(&runtime, &path).await;
    assert!(
        matches!(err, FileError::Load(LoadError::Compile { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_nonsense_manifest_is_rejected_with_every_problem() {
    let runtime = support::runtime();
    let path = support::test_plugin("bad-manifest");
    let err = load_err(&runtime, &path).await;
    let FileError::Load(LoadError::Manifest { source, .. }) = &err else {
        panic!("expected a manifest error, got {err:?}")
    };
    let text = err.to_string();
    assert_eq!(source.problems.len(), 4, "{text}");
    for needle in [
        "empty kind",
        "by-zone",
        "no verbs for ConfigMap",
        "concurrency",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from {text}");
    }
}

#[tokio::test]
async fn a_bad_file_leaves_the_runtime_working() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = support::runtime();
    let path = write(dir.path(), "junk.wasm", b"\0asm\x0d\0\x01\0garbage");
    load_err(&runtime, &path).await;
    support::load(&runtime, &support::example("hello")).await;
}

#[tokio::test]
async fn a_manifest_with_an_unknown_verb_is_rejected() {
    // Verbs are a WIT enum: a component can only name an unknown verb by being built
    // against a different `verb` enum, which the host refuses when it type-checks the exports.
    let runtime = support::runtime();
    let path = support::test_plugin("unknown-verb");
    let err = load_err(&runtime, &path).await;
    assert!(
        matches!(err, FileError::Load(LoadError::Incompatible { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("get-manifest"), "{err}");
}
