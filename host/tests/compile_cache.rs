//! Compiled components are cached on disk: a second load (e.g. after a restart) does not
//! recompile, and a corrupt cache file falls back to compiling.

mod common;

use std::path::Path;

use kubewasm::runtime::{Runtime, RuntimeConfig};

fn runtime_with_cache(dir: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        compile_cache_dir: Some(dir.to_owned()),
        ..common::config()
    })
    .unwrap()
}

fn cached_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

#[tokio::test]
async fn a_second_load_in_a_new_runtime_hits_the_compile_cache() {
    let dir = tempfile::tempdir().unwrap();
    let hello = common::example("hello");

    let first = common::load(&runtime_with_cache(dir.path()), &hello).await;
    assert!(!first.loaded_from_cache());
    assert_eq!(cached_files(dir.path()).len(), 1);

    // A new runtime stands for a restarted host.
    let second = common::load(&runtime_with_cache(dir.path()), &hello).await;
    assert!(second.loaded_from_cache());
    assert_eq!(second.manifest(), first.manifest());
    assert_eq!(cached_files(dir.path()).len(), 1);
}

#[tokio::test]
async fn a_changed_plugin_gets_its_own_cache_entry() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with_cache(dir.path());
    common::load(&runtime, &common::example("hello")).await;
    let other = common::load(&runtime, &common::test_plugin("panic")).await;
    assert!(!other.loaded_from_cache());
    assert_eq!(cached_files(dir.path()).len(), 2);
}

#[tokio::test]
async fn a_corrupt_cache_file_is_replaced_by_a_fresh_compile() {
    let dir = tempfile::tempdir().unwrap();
    let hello = common::example("hello");
    common::load(&runtime_with_cache(dir.path()), &hello).await;
    let [file] = cached_files(dir.path()).try_into().unwrap();
    std::fs::write(&file, b"not a compiled component").unwrap();

    let runtime = runtime_with_cache(dir.path());
    let plugin = common::load(&runtime, &hello).await;
    assert!(!plugin.loaded_from_cache());
    assert!(
        std::fs::metadata(&file).unwrap().len() > 1000,
        "the entry was rewritten"
    );
    assert!(common::load(&runtime, &hello).await.loaded_from_cache());
}

#[tokio::test]
async fn without_a_cache_directory_every_load_compiles() {
    let runtime = Runtime::new(RuntimeConfig {
        compile_cache_dir: None,
        ..common::config()
    })
    .unwrap();
    let hello = common::example("hello");
    assert!(!common::load(&runtime, &hello).await.loaded_from_cache());
    assert!(!common::load(&runtime, &hello).await.loaded_from_cache());
}
