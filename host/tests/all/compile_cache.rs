//! Compiled components are cached on disk: a second load (e.g. after a restart) does not
//! recompile, and a corrupt cache file falls back to compiling.

use std::path::Path;

use kubewasm::runtime::{Runtime, RuntimeConfig};

use crate::support;

fn runtime_with_cache(dir: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        compile_cache_dir: Some(dir.to_owned()),
        ..support::config()
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
    let hello = support::example("hello");

    let first = support::load(&runtime_with_cache(dir.path()), &hello).await;
    assert!(!first.loaded_from_cache());
    assert_eq!(cached_files(dir.path()).len(), 1);

    // A new runtime stands for a restarted host.
    let second = support::load(&runtime_with_cache(dir.path()), &hello).await;
    assert!(second.loaded_from_cache());
    assert_eq!(second.manifest(), first.manifest());
    assert_eq!(cached_files(dir.path()).len(), 1);
}

#[tokio::test]
async fn a_changed_plugin_gets_its_own_cache_entry() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with_cache(dir.path());
    support::load(&runtime, &support::example("hello")).await;
    let other = support::load(&runtime, &support::test_plugin("panic")).await;
    assert!(!other.loaded_from_cache());
    assert_eq!(cached_files(dir.path()).len(), 2);
}

#[tokio::test]
async fn a_corrupt_cache_file_is_replaced_by_a_fresh_compile() {
    let dir = tempfile::tempdir().unwrap();
    let hello = support::example("hello");
    support::load(&runtime_with_cache(dir.path()), &hello).await;
    let [file] = cached_files(dir.path()).try_into().unwrap();
    std::fs::write(&file, b"not a compiled component").unwrap();

    let runtime = runtime_with_cache(dir.path());
    let plugin = support::load(&runtime, &hello).await;
    assert!(!plugin.loaded_from_cache());
    assert!(
        std::fs::metadata(&file).unwrap().len() > 1000,
        "the entry was rewritten"
    );
    assert!(support::load(&runtime, &hello).await.loaded_from_cache());
}

#[tokio::test]
async fn without_a_cache_directory_every_load_compiles() {
    let runtime = Runtime::new(RuntimeConfig {
        compile_cache_dir: None,
        ..support::config()
    })
    .unwrap();
    let hello = support::example("hello");
    assert!(!support::load(&runtime, &hello).await.loaded_from_cache());
    assert!(!support::load(&runtime, &hello).await.loaded_from_cache());
}

#[tokio::test]
async fn a_cache_directory_others_can_write_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = Runtime::new(RuntimeConfig {
        compile_cache_dir: Some(shared.clone()),
        ..support::config()
    })
    .expect_err("a world-writable cache directory is refused");
    let text = err.to_string();
    assert!(
        text.contains(&shared.display().to_string())
            && text.contains("writable by its group and by others (mode 0777)")
            && text.contains("chmod go-w"),
        "{text}"
    );
    // Made private, the same folder is accepted; a folder the cache creates is private.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    runtime_with_cache(&shared);
    let created = dir.path().join("new/components");
    runtime_with_cache(&created);
    let mode = std::fs::metadata(&created).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{mode:o}");
}

#[tokio::test]
async fn a_cache_file_others_can_write_is_not_loaded_but_recompiled_and_replaced() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let hello = support::example("hello");
    support::load(&runtime_with_cache(dir.path()), &hello).await;
    let [file] = cached_files(dir.path()).try_into().unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();

    let runtime = runtime_with_cache(dir.path());
    let plugin = support::load(&runtime, &hello).await;
    assert!(
        !plugin.loaded_from_cache(),
        "the writable file was not trusted"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode & 0o022,
        0,
        "the entry was replaced by a private one: {mode:o}"
    );
    assert!(support::load(&runtime, &hello).await.loaded_from_cache());
}
