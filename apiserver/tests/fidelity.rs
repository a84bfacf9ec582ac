//! The embedded API server measured against a real kube-apiserver (the control plane
//! `cargo xtask test` starts, see `controlplane/`): every request of the corpus in
//! `apiserver/fidelity/corpus/` is sent to both, the answers are normalised and compared.
//! Prints `matched N / total`, writes `target/fidelity/report.md` with every difference, and
//! fails when a request `apiserver/fidelity/expected.toml` lists as matching stops matching.
//! `FIDELITY_UPDATE=1` rewrites that list from this run.

mod fidelity_support;

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kubewasm_apiserver::{ApiServer, Config};
use kubewasm_controlplane::KUBECONFIG_ENV;

/// At least this many requests are compared: the corpus only grows.
const MIN_REQUESTS: usize = 150;

async fn real_client() -> kube::Client {
    let path = std::env::var_os(KUBECONFIG_ENV).unwrap_or_else(|| {
        panic!(
            "{KUBECONFIG_ENV} is not set: the fidelity suite needs a real control plane. Run it \
             with `cargo xtask test` (it starts one), or start one with `cargo xtask cluster up` \
             and `export {KUBECONFIG_ENV}=$PWD/target/k8s-cluster/kubeconfig`"
        )
    });
    let kc = Kubeconfig::read_from(&path).expect("the real control plane's kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("a client config");
    kube::Client::try_from(config).expect("a client for the real control plane")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_api_server_answers_like_kube_apiserver() {
    let real = real_client().await;
    let server = ApiServer::start(Config::default())
        .await
        .expect("the embedded API server starts");
    let embedded = kube::Client::try_from(kube::Config::new(
        server.url().parse().expect("the server URL parses"),
    ))
    .expect("a client for the embedded server");
    let dir = fidelity_support::fidelity_dir();
    let mut cases = fidelity_support::corpus::load(&dir.join("corpus"));
    // FIDELITY_ONLY=text runs only the cases whose name or file contains it (while writing
    // cases); the expectations and the corpus size are then not checked.
    let only = std::env::var("FIDELITY_ONLY").ok();
    if let Some(only) = &only {
        cases.retain(|c| {
            c.name.contains(only.as_str()) || c.file.to_string_lossy().contains(only.as_str())
        });
    }
    let version = fidelity_support::server_version(&real).await;
    let outcomes = fidelity_support::run_all(&embedded, &real, &cases).await;
    server.shutdown().await;

    let report = fidelity_support::report(&version, &cases, &outcomes);
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fidelity");
    std::fs::create_dir_all(&out).expect("target/fidelity");
    std::fs::write(out.join("report.md"), &report).expect("the report is written");
    let matched = outcomes.iter().filter(|o| o.matched()).count();
    eprintln!(
        "fidelity: matched {matched} / {} requests against kube-apiserver {version} ({})",
        outcomes.len(),
        out.join("report.md").display()
    );

    if only.is_some() {
        eprintln!("fidelity: FIDELITY_ONLY is set; expectations not checked");
        return;
    }
    let expected_path = dir.join("expected.toml");
    if std::env::var_os("FIDELITY_UPDATE").is_some() {
        fidelity_support::write_expected(&expected_path, &version, &outcomes);
        eprintln!("fidelity: wrote {}", expected_path.display());
    }
    let expected = fidelity_support::expected(&expected_path);
    let regressed: Vec<String> = outcomes
        .iter()
        .filter(|o| expected.contains(&o.id) && !o.matched())
        .map(|o| {
            format!(
                "{} `{}`:\n  {}",
                o.id,
                o.request,
                o.differences.join("\n  ")
            )
        })
        .collect();
    let unknown: Vec<&String> = expected
        .iter()
        .filter(|id| !outcomes.iter().any(|o| &o.id == *id))
        .collect();
    let improved = outcomes
        .iter()
        .filter(|o| o.matched() && !expected.contains(&o.id))
        .count();
    if improved > 0 {
        eprintln!(
            "fidelity: {improved} requests match that expected.toml does not list yet \
             (FIDELITY_UPDATE=1 records them)"
        );
    }
    assert!(
        regressed.is_empty(),
        "requests that matched kube-apiserver no longer do:\n{}",
        regressed.join("\n")
    );
    assert!(
        unknown.is_empty(),
        "expected.toml lists requests the corpus no longer has: {unknown:?}"
    );
    assert!(
        outcomes.len() >= MIN_REQUESTS,
        "the corpus compares {} requests; it must keep at least {MIN_REQUESTS}",
        outcomes.len()
    );
}
