//! `kubewasm plugin new|check`: scaffold a plugin crate, and validate a built component.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use kubewasm::runtime::{Manifest, Runtime, WatchMapping};
use sha2::{Digest as _, Sha256};

use super::common::RuntimeArgs;

/// The world every plugin implements (what the host serves).
const WORLD: &str = "kubewasm:controller/plugin@0.1.0";

/// Write and validate plugins.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PluginCommand {
    /// Scaffold a plugin crate (Cargo.toml, src/lib.rs with a working reconcile and tests,
    /// README) that builds with `cargo build --release --target wasm32-wasip2`.
    New(NewArgs),
    /// Validate a plugin component: is it a component of the kubewasm world, is its manifest
    /// sensible; print its manifest, size, content hash and the permissions it implies.
    ///
    /// Exit status: 0 valid, 1 invalid plugin (the reason names the file), 2 usage error.
    Check(CheckArgs),
}

/// `kubewasm plugin new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin's name: a crate name (lowercase letters, digits, `-`, `_`; starts with a
    /// letter). The component will be `NAME.wasm`.
    name: String,

    /// Where to create the crate [default: ./NAME]. Must not exist.
    #[arg(long)]
    path: Option<PathBuf>,

    /// The kind the plugin reconciles.
    #[arg(long, default_value = "ConfigMap", value_parser = clap::builder::PossibleValuesParser::new(KINDS.iter().map(|k| k.kind)))]
    kind: String,

    /// Depend on the kubewasm-sdk crate at this path [default: the `sdk/` of the kubewasm
    /// repository around the new crate, else the one this binary was built from].
    #[arg(long)]
    sdk_path: Option<PathBuf>,
}

/// `kubewasm plugin check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The component to check (a .wasm file).
    file: PathBuf,

    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    size: super::common::PluginSizeArgs,

    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// A command-line mistake (exit status 2), as opposed to an invalid plugin (1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// A kind `plugin new` can scaffold for.
struct KindTemplate {
    kind: &'static str,
    path: &'static str,
    plural: &'static str,
    namespaced: bool,
    /// A kubectl command that makes one object named `demo`.
    create: &'static str,
}

const KINDS: &[KindTemplate] = &[
    KindTemplate {
        kind: "ConfigMap",
        path: "k8s_openapi::api::core::v1::ConfigMap",
        plural: "configmaps",
        namespaced: true,
        create: "kubectl create configmap demo --from-literal=greeting=hello",
    },
    KindTemplate {
        kind: "Secret",
        path: "k8s_openapi::api::core::v1::Secret",
        plural: "secrets",
        namespaced: true,
        create: "kubectl create secret generic demo --from-literal=token=s3cret",
    },
    KindTemplate {
        kind: "Pod",
        path: "k8s_openapi::api::core::v1::Pod",
        plural: "pods",
        namespaced: true,
        create: "kubectl run demo --image=nginx",
    },
    KindTemplate {
        kind: "Service",
        path: "k8s_openapi::api::core::v1::Service",
        plural: "services",
        namespaced: true,
        create: "kubectl create service clusterip demo --tcp=80:80",
    },
    KindTemplate {
        kind: "ServiceAccount",
        path: "k8s_openapi::api::core::v1::ServiceAccount",
        plural: "serviceaccounts",
        namespaced: true,
        create: "kubectl create serviceaccount demo",
    },
    KindTemplate {
        kind: "Namespace",
        path: "k8s_openapi::api::core::v1::Namespace",
        plural: "namespaces",
        namespaced: false,
        create: "kubectl create namespace demo",
    },
    KindTemplate {
        kind: "Deployment",
        path: "k8s_openapi::api::apps::v1::Deployment",
        plural: "deployments",
        namespaced: true,
        create: "kubectl create deployment demo --image=nginx",
    },
    KindTemplate {
        kind: "StatefulSet",
        path: "k8s_openapi::api::apps::v1::StatefulSet",
        plural: "statefulsets",
        namespaced: true,
        create: "kubectl apply -f your-statefulset.yaml   # named demo",
    },
    KindTemplate {
        kind: "Job",
        path: "k8s_openapi::api::batch::v1::Job",
        plural: "jobs",
        namespaced: true,
        create: "kubectl create job demo --image=busybox",
    },
];

const CARGO_TOML: &str = include_str!("plugin_template/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("plugin_template/lib.rs.tmpl");
const README: &str = include_str!("plugin_template/README.md.tmpl");
const GITIGNORE: &str = include_str!("plugin_template/gitignore.tmpl");

/// The annotation the scaffolded reconcile sets.
const ANNOTATION: &str = "kubewasm.dev/reconciled-by";

/// Runs `kubewasm plugin ...`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        PluginCommand::New(args) => new(&args),
        PluginCommand::Check(args) => check(&args).await,
    }
}

/// Checks that `name` can name a crate and a plugin file.
fn validate_name(name: &str) -> Result<(), UsageError> {
    const RESERVED: &[&str] = &[
        "test",
        "core",
        "std",
        "alloc",
        "proc_macro",
        "self",
        "crate",
        "super",
        "kubewasm-sdk",
        "kubewasm_sdk",
        "k8s-openapi",
        "k8s_openapi",
        "serde_json",
        "serde-json",
    ];
    let bad = |why: &str| {
        Err(UsageError(format!(
            "{name:?} is not a valid plugin name: {why} (example: my-plugin)"
        )))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 64 {
        return bad("it is longer than 64 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return bad("it must start with a lowercase letter");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return bad(&format!(
            "{c:?} is not allowed; use lowercase letters, digits, '-' and '_'"
        ));
    }
    if RESERVED.contains(&name) || is_keyword(name) {
        return bad("it is reserved by Rust or names one of the plugin's dependencies");
    }
    Ok(())
}

fn is_keyword(name: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern",
        "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
        "pub", "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use",
        "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro", "override",
        "priv", "try", "typeof", "unsized", "virtual", "yield",
    ];
    KEYWORDS.contains(&name)
}

/// `my-plugin` -> `MyPlugin`; avoids the names the template imports.
fn type_name(name: &str, kind: &str) -> String {
    let mut out = String::new();
    for part in name.split(['-', '_']).filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    const TAKEN: &[&str] = &[
        "Action", "Event", "Manifest", "Patch", "Plugin", "Request", "Result", "Verb", "Tests",
    ];
    if TAKEN.contains(&out.as_str()) || out == kind {
        out.push_str("Plugin");
    }
    out
}

/// How the new crate depends on kubewasm-sdk.
struct SdkDependency {
    /// The dependency's TOML table body (without features).
    spec: String,
    /// A paragraph for the README.
    note: String,
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether `dir` is the kubewasm-sdk crate.
fn is_sdk(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|t| t.contains("name = \"kubewasm-sdk\""))
}

/// A path to `target` usable from `from` (relative when `target` is inside an ancestor of
/// `from`, else absolute). Both are absolute.
fn relative_to(from: &Path, ancestor: &Path, target: &Path) -> PathBuf {
    match (from.strip_prefix(ancestor), target.strip_prefix(ancestor)) {
        (Ok(down), Ok(rest)) => {
            let mut path = PathBuf::new();
            for _ in down.components() {
                path.push("..");
            }
            path.join(rest)
        }
        _ => target.to_owned(),
    }
}

fn sdk_dependency(crate_dir: &Path, flag: Option<&Path>) -> anyhow::Result<SdkDependency> {
    let not_published = "kubewasm-sdk is not published on crates.io yet";
    if let Some(path) = flag {
        let path = std::fs::canonicalize(path)
            .map_err(|e| UsageError(format!("--sdk-path {}: {e}", path.display())))?;
        if !is_sdk(&path) {
            return Err(UsageError(format!(
                "--sdk-path {} is not the kubewasm-sdk crate (no Cargo.toml naming kubewasm-sdk)",
                path.display()
            ))
            .into());
        }
        return Ok(SdkDependency {
            spec: format!("path = {}", toml_string(&path.to_string_lossy())),
            note: format!(
                "`Cargo.toml` uses the SDK at `{}` (given with `--sdk-path`). {not_published}.",
                path.display()
            ),
        });
    }
    // Inside a kubewasm repository: a relative path, so the repository can move.
    for ancestor in crate_dir.ancestors().skip(1) {
        let sdk = ancestor.join("sdk");
        if is_sdk(&sdk) {
            let rel = relative_to(crate_dir, ancestor, &sdk);
            return Ok(SdkDependency {
                spec: format!("path = {}", toml_string(&rel.to_string_lossy())),
                note: format!(
                    "`Cargo.toml` uses the SDK of the kubewasm repository around this crate \
                     (`{}`). {not_published}.",
                    rel.display()
                ),
            });
        }
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    if let Ok(sdk) = std::fs::canonicalize(&built_from)
        && is_sdk(&sdk)
    {
        return Ok(SdkDependency {
            spec: format!("path = {}", toml_string(&sdk.to_string_lossy())),
            note: format!(
                "`Cargo.toml` uses the SDK of the kubewasm checkout this `kubewasm` binary was \
                 built from (`{}`). {not_published}: if you move the crate to another machine, \
                 point the path at a kubewasm checkout's `sdk/` \
                 (or regenerate with `kubewasm plugin new --sdk-path`).",
                sdk.display()
            ),
        });
    }
    Ok(SdkDependency {
        spec: format!("version = \"{}\"", env!("CARGO_PKG_VERSION")),
        note: format!(
            "`Cargo.toml` asks for kubewasm-sdk {} from crates.io, but {not_published}: until \
             it is, replace `version = ...` with `path = \"<a kubewasm checkout>/sdk\"` \
             (or regenerate with `kubewasm plugin new --sdk-path`).",
            env!("CARGO_PKG_VERSION")
        ),
    })
}

fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (key, value) in vars {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    out
}

fn new(args: &NewArgs) -> anyhow::Result<()> {
    validate_name(&args.name)?;
    let kind = KINDS
        .iter()
        .find(|k| k.kind == args.kind)
        .ok_or_else(|| UsageError(format!("unknown kind {}", args.kind)))?;
    let dir = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        return Err(UsageError(format!(
            "{} already exists; choose another --path (nothing was written)",
            dir.display()
        ))
        .into());
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let parent = std::fs::canonicalize(&parent).map_err(|e| {
        UsageError(format!(
            "the folder {} for the new crate is not usable: {e}",
            parent.display()
        ))
    })?;
    let file_name = dir
        .file_name()
        .ok_or_else(|| UsageError(format!("{} names no folder", dir.display())))?;
    let abs_dir = parent.join(file_name);
    let sdk = sdk_dependency(&abs_dir, args.sdk_path.as_deref())?;

    let crate_name = args.name.replace('-', "_");
    let type_name = type_name(&args.name, kind.kind);
    let sdk_dependency = format!("kubewasm-sdk = {{ {} }}", sdk.spec);
    let sdk_dev_dependency = format!(
        "kubewasm-sdk = {{ {}, features = [\"testing\"] }}",
        sdk.spec
    );
    let seed_meta = if kind.namespaced {
        r#""namespace": "default", "name": "example""#
    } else {
        r#""name": "example""#
    };
    let test_namespace = if kind.namespaced { "default" } else { "" };
    let try_it = format!(
        "{}\nkubectl get {} demo -o jsonpath='{{.metadata.annotations}}'   # {ANNOTATION}: {}\n\
         kubectl get events",
        kind.create, kind.plural, args.name
    );
    let vars: &[(&str, &str)] = &[
        ("name", &args.name),
        ("crate_name", &crate_name),
        ("type_name", &type_name),
        ("kind", kind.kind),
        ("kind_path", kind.path),
        ("annotation", ANNOTATION),
        ("sdk_dependency", &sdk_dependency),
        ("sdk_dev_dependency", &sdk_dev_dependency),
        ("sdk_note", &sdk.note),
        ("try_it", &try_it),
        ("test_namespace", test_namespace),
        ("seed_meta", seed_meta),
    ];
    let lib = render(LIB_RS, vars);
    let files = [
        ("Cargo.toml", render(CARGO_TOML, vars)),
        ("src/lib.rs", lib),
        ("README.md", render(README, vars)),
        (".gitignore", render(GITIGNORE, vars)),
    ];
    std::fs::create_dir_all(abs_dir.join("src"))
        .with_context(|| format!("creating {}", abs_dir.display()))?;
    for (file, text) in files {
        let path = abs_dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "Created plugin {} ({} reconciler) in {}",
        args.name,
        kind.kind,
        dir.display()
    );
    println!();
    println!("  cd {}", dir.display());
    println!(
        "  cargo test                                       # reconcile against the SDK's fake host"
    );
    println!(
        "  cargo build --release --target wasm32-wasip2     # -> target/wasm32-wasip2/release/{crate_name}.wasm"
    );
    println!();
    println!(
        "Then run it in `kubewasm dev`: see {}.",
        dir.join("README.md").display()
    );
    Ok(())
}

/// What `plugin check` reports.
#[derive(Debug, serde::Serialize)]
struct Report {
    plugin: String,
    file: String,
    size: u64,
    sha256: String,
    world: &'static str,
    interfaces: Vec<String>,
    manifest: serde_json::Value,
    permissions: Vec<Grant>,
    rbac: Vec<RbacRule>,
}

/// One RBAC rule, as in a ClusterRole.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct RbacRule {
    api_groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<&'static str>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Grant {
    api_group: String,
    resource: String,
    kind: String,
    verbs: Vec<&'static str>,
}

/// The interface names (`kubewasm:controller/...`, `wasi:...`) the component's import and
/// export names mention, found by scanning the binary (informational; the load is the check).
fn interfaces(bytes: &[u8]) -> Vec<String> {
    let mut found = std::collections::BTreeSet::new();
    for prefix in [&b"kubewasm:"[..], &b"wasi:"[..]] {
        let mut at = 0;
        while let Some(pos) = bytes[at..].windows(prefix.len()).position(|w| w == prefix) {
            let start = at + pos;
            let end = bytes[start..]
                .iter()
                .position(|&b| !(b.is_ascii_alphanumeric() || b":/@.-_".contains(&b)))
                .map_or(bytes.len(), |n| start + n);
            let name = String::from_utf8_lossy(&bytes[start..end]);
            // `ns:pkg/interface@x.y.z`, cut after the version (adapters append suffixes).
            if let Some((path, version)) = name.split_once('@')
                && path.contains('/')
            {
                let version: String = version
                    .split('.')
                    .take(3)
                    .map(|p| {
                        p.chars()
                            .take_while(char::is_ascii_digit)
                            .collect::<String>()
                    })
                    .collect::<Vec<_>>()
                    .join(".");
                if version.split('.').count() == 3 && !version.split('.').any(str::is_empty) {
                    found.insert(format!("{path}@{version}"));
                }
            }
            at = end.max(start + 1);
        }
    }
    found.into_iter().collect()
}

fn kind_json(k: &kubewasm::runtime::Kind) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": k.api_version(),
        "kind": k.kind,
        "plural": k.plural,
        "namespaced": k.namespaced,
    })
}

fn mapping_text(m: &WatchMapping) -> String {
    match m {
        WatchMapping::OwnerReferences => "owner-references".into(),
        WatchMapping::SameName => "same-name".into(),
        WatchMapping::Namespace => "namespace".into(),
        WatchMapping::All => "all".into(),
        WatchMapping::IndexLookup { index, field } => {
            format!("index-lookup {index} = {field}")
        }
    }
}

fn manifest_json(m: &Manifest) -> serde_json::Value {
    serde_json::json!({
        "reconciles": {
            "kind": kind_json(&m.reconciles.kind),
            "namespace": m.reconciles.namespace,
            "labelSelector": m.reconciles.label_selector.as_ref().map(ToString::to_string),
        },
        "owns": m.owns.iter().map(kind_json).collect::<Vec<_>>(),
        "watches": m.watches.iter().map(|w| serde_json::json!({
            "kind": kind_json(&w.kind),
            "labelSelector": w.label_selector.as_ref().map(ToString::to_string),
            "mapping": mapping_text(&w.mapping),
        })).collect::<Vec<_>>(),
        "indexes": m.indexes.iter().map(|i| serde_json::json!({
            "name": i.name,
            "kind": kind_json(&i.kind),
            "field": i.field.to_string(),
        })).collect::<Vec<_>>(),
        "concurrency": m.concurrency,
    })
}

fn text_report(r: &Report, m: &Manifest) -> String {
    let mut out = String::new();
    let kind = |k: &kubewasm::runtime::Kind| format!("{} ({} {})", k, k.api_version(), k.kind);
    let _ = writeln!(out, "plugin {} is valid", r.plugin);
    let _ = writeln!(out, "  file:         {}", r.file);
    let _ = writeln!(
        out,
        "  size:         {} bytes ({:.1} MiB)",
        r.size,
        r.size as f64 / f64::from(1 << 20)
    );
    let _ = writeln!(out, "  sha256:       {}", r.sha256);
    let _ = writeln!(out, "  world:        {}", r.world);
    let (ours, others): (Vec<&String>, Vec<&String>) = r
        .interfaces
        .iter()
        .partition(|i| i.starts_with("kubewasm:"));
    let join = |v: Vec<&String>| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    let _ = writeln!(out, "  interfaces:   {}", join(ours));
    if !others.is_empty() {
        let _ = writeln!(
            out,
            "  wasi:         {} (linked; the host grants no files, network or environment)",
            join(others)
        );
    }
    let _ = writeln!(out, "manifest:");
    let mut scope = String::new();
    if let Some(ns) = &m.reconciles.namespace {
        let _ = write!(scope, " in namespace {ns}");
    }
    if let Some(sel) = &m.reconciles.label_selector {
        let _ = write!(scope, " with labels {sel}");
    }
    let _ = writeln!(out, "  reconciles:   {}{scope}", kind(&m.reconciles.kind));
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join("\n                ")
        }
    };
    let _ = writeln!(
        out,
        "  owns:         {}",
        list(m.owns.iter().map(kind).collect())
    );
    let _ = writeln!(
        out,
        "  watches:      {}",
        list(
            m.watches
                .iter()
                .map(|w| {
                    let sel = w
                        .label_selector
                        .as_ref()
                        .map(|s| format!(" with labels {s}"))
                        .unwrap_or_default();
                    format!("{}{sel} -> {}", kind(&w.kind), mapping_text(&w.mapping))
                })
                .collect()
        )
    );
    let _ = writeln!(
        out,
        "  indexes:      {}",
        list(
            m.indexes
                .iter()
                .map(|i| format!("{} on {}: {}", i.name, i.kind, i.field))
                .collect()
        )
    );
    let _ = writeln!(out, "  concurrency:  {}", m.concurrency);
    let _ = writeln!(out, "permissions (what the host lets the plugin do):");
    for g in &r.permissions {
        let resource = if g.api_group.is_empty() {
            g.resource.clone()
        } else {
            format!("{}.{}", g.resource, g.api_group)
        };
        let _ = writeln!(out, "  {resource}: {}", g.verbs.join(", "));
    }
    let _ = writeln!(
        out,
        "RBAC rules it implies for the host's service account (`kubewasm rbac` prints the objects):"
    );
    for rule in &r.rbac {
        let _ = writeln!(
            out,
            "  - apiGroups: [{}]  resources: [{}]  verbs: [{}]",
            rule.api_groups
                .iter()
                .map(|g| format!("{g:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            rule.resources.join(", "),
            rule.verbs.join(", ")
        );
    }
    out
}

async fn check(args: &CheckArgs) -> anyhow::Result<()> {
    let runtime = Runtime::new(args.runtime.config()).context("starting the plugin runtime")?;
    // Read once: the size and hash reported are those of the bytes checked, even if the file
    // is replaced meanwhile; a FIFO or an oversized file is refused before any read.
    let bytes = kubewasm::loader::read_plugin_file_async(&args.file, args.size.max_bytes()).await?;
    let (size, sha256, linked) = (
        bytes.len() as u64,
        hex::encode(Sha256::digest(&bytes)),
        interfaces(&bytes),
    );
    let plugin = runtime.load(&args.file, bytes).await?;
    let manifest = plugin.manifest();
    let permissions = manifest
        .grants()
        .map(|(k, verbs)| Grant {
            api_group: k.group.clone(),
            resource: k.plural.clone(),
            kind: k.kind.clone(),
            verbs: verbs.iter().map(|v| v.as_str()).collect(),
        })
        .collect();
    let report = Report {
        plugin: plugin.name().to_owned(),
        file: args.file.display().to_string(),
        size,
        sha256,
        world: WORLD,
        interfaces: linked,
        manifest: manifest_json(manifest),
        permissions,
        rbac: kubewasm::rbac::plugin_rules([manifest.as_ref()])
            .into_iter()
            .map(|((group, resource), verbs)| RbacRule {
                api_groups: vec![group],
                resources: vec![resource],
                verbs,
            })
            .collect(),
    };
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        text_report(&report, manifest)
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing the report")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_must_be_crate_names() {
        for good in ["hello", "my-plugin", "a_b2"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "My",
            "1st",
            "a b",
            "a/b",
            "fn",
            "test",
            "kubewasm-sdk",
            "é",
        ] {
            let err = validate_name(bad).expect_err(bad).to_string();
            assert!(err.contains("not a valid plugin name"), "{err}");
        }
    }

    #[test]
    fn every_kind_renders_every_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        for kind in KINDS {
            let path = dir.path().join(kind.kind);
            let args = NewArgs {
                name: "demo-plugin".into(),
                path: Some(path.clone()),
                kind: kind.kind.into(),
                sdk_path: None,
            };
            new(&args).unwrap();
            for file in ["Cargo.toml", "src/lib.rs", "README.md", ".gitignore"] {
                let text = std::fs::read_to_string(path.join(file)).unwrap();
                assert!(!text.contains("{{"), "{} {file}:\n{text}", kind.kind);
            }
            let lib = std::fs::read_to_string(path.join("src/lib.rs")).unwrap();
            assert!(lib.contains(&format!("use {};", kind.path)), "{lib}");
        }
    }

    #[test]
    fn type_names_are_camel_case_and_avoid_the_imported_names() {
        assert_eq!(type_name("my-plugin", "ConfigMap"), "MyPlugin");
        assert_eq!(type_name("a_b", "Pod"), "AB");
        assert_eq!(type_name("plugin", "Pod"), "PluginPlugin");
        assert_eq!(type_name("config-map", "ConfigMap"), "ConfigMapPlugin");
    }

    #[test]
    fn a_crate_inside_a_repository_points_at_its_sdk_relatively() {
        let root = Path::new("/repo");
        assert_eq!(
            relative_to(Path::new("/repo/plugins/x"), root, Path::new("/repo/sdk")),
            Path::new("../../sdk")
        );
    }

    #[test]
    fn interfaces_are_read_from_the_component_names() {
        let bytes =
            b"\0asm..kubewasm:controller/cache@0.1.0\x05wasi:io/error@0.2.6\x01wasi:nothing";
        assert_eq!(
            interfaces(bytes),
            ["kubewasm:controller/cache@0.1.0", "wasi:io/error@0.2.6"]
        );
    }
}
