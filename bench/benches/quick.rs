//! `cargo bench -p kubewasm-bench`: the quick mode of the suite (needs the plugins and a release
//! `kubewasm` binary; `cargo xtask bench` builds both first).

use std::path::PathBuf;

use kubewasm_bench::RunArgs;
use kubewasm_bench::mode::Mode;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = RunArgs {
        mode: Mode::Quick,
        full: false,
        json: None,
        only: Vec::new(),
        plugins: None,
        kubewasm_bin: None,
        go_peer_bin: None,
    };
    kubewasm_bench::run(args, PathBuf::from(env!("CARGO_BIN_EXE_kubewasm-bench")))
        .await
        .map(|_| ())
}
