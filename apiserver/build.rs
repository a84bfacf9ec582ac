//! Compiles the vendored Kubernetes `generated.proto` files (`proto/k8s.io/**`) into one
//! FileDescriptorSet, `$OUT_DIR/k8s.fds`, which `src/protobuf/` embeds to decode and encode
//! protobuf bodies by reflection.

use std::path::{Path, PathBuf};

use prost::Message;

fn protos(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            protos(&p, root, out);
        } else if p.extension().is_some_and(|x| x == "proto") {
            let rel = p.strip_prefix(root).expect("under the proto root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn main() {
    let root = Path::new("proto");
    println!("cargo:rerun-if-changed=proto");
    let mut files = Vec::new();
    protos(&root.join("k8s.io"), root, &mut files);
    let mut compiler = protox::Compiler::new([root]).expect("proto include path");
    compiler.include_source_info(false).include_imports(true);
    for f in &files {
        if let Err(e) = compiler.open_file(f) {
            panic!("compiling {f}: {e}");
        }
    }
    let fds = compiler.file_descriptor_set().encode_to_vec();
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo")).join("k8s.fds");
    std::fs::write(&out, fds).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
