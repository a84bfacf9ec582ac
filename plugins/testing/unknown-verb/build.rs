//! Generates the WIT this plugin is built against from the repository's `wit/` (the host's
//! `kubewasm:controller@0.2.0`) with one change: the `verb` enum gets a case the host does not
//! know, `escalate`. Generated on every build, so it can never drift from the real contract.

use std::path::{Path, PathBuf};
use std::{env, fs};

/// The line the extra case goes after: the last case of `enum verb` in `reconciler.wit`.
const ANCHOR: &str = "        delete,\n    }";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let wit = manifest_dir.join("../../../wit");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("wit");
    println!("cargo:rerun-if-changed={}", wit.display());
    fs::create_dir_all(&out).expect("create OUT_DIR/wit");
    let mut patched = false;
    for entry in fs::read_dir(&wit).expect("read the repository's wit/") {
        let path = entry.expect("a wit/ entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("wit") {
            continue; // wit/0.1.0/ and anything else that is not a file of this package
        }
        println!("cargo:rerun-if-changed={}", path.display());
        let mut text = fs::read_to_string(&path).expect("read a .wit file");
        if file_name(&path) == "reconciler.wit" {
            let verb = text
                .find("enum verb {")
                .expect("reconciler.wit declares `enum verb`");
            let end = verb
                + text[verb..]
                    .find(ANCHOR)
                    .expect("`enum verb` ends with its `delete` case");
            text.insert_str(
                end + "        delete,\n".len(),
                "        /// Not a verb the host knows: this fixture checks that the host refuses it.\n        escalate,\n",
            );
            patched = true;
        }
        fs::write(out.join(file_name(&path)), text).expect("write the generated .wit file");
    }
    assert!(patched, "wit/reconciler.wit was not found");
}

fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .expect("a UTF-8 file name")
}
