//! `kubewasm plugin new|check|crd|push|pull`: scaffold a plugin crate, validate a built
//! component, print the CRDs it ships, publish it to and fetch it from an OCI registry
//! (`plugin/oci.rs`).

mod oci;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use kubewasm::runtime::{Manifest, Runtime, WatchMapping};
use sha2::{Digest as _, Sha256};

use super::common::RuntimeArgs;

/// Write and validate plugins.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PluginCommand {
    /// Scaffold a plugin crate (Cargo.toml, src/lib.rs with a working reconcile and tests,
    /// README) that builds with `cargo build --release --target wasm32-wasip2`; with `--crd`,
    /// an operator for a custom resource the plugin defines.
    New(NewArgs),
    /// Validate a plugin component: is it a component of the kubewasm world, is its manifest
    /// sensible; print its manifest, size, content hash and the permissions it implies.
    ///
    /// Exit status: 0 valid, 1 invalid plugin (the reason names the file), 2 usage error.
    Check(CheckArgs),
    /// Print the CustomResourceDefinitions a plugin ships in its manifest (what
    /// `#[derive(CustomResource)]` and `Manifest::custom_resource` put there) as YAML
    /// documents separated by `---`, ready for `kubectl apply -f -`.
    ///
    /// A plugin that defines none prints nothing and says so on stderr (exit status 0).
    /// Exit status: 0 printed, 1 invalid plugin (the reason names the file), 2 usage error.
    Crd(CrdArgs),
    /// Publish a component to an OCI registry as a wasm artifact (config
    /// `application/vnd.wasm.config.v0+json`, one `application/wasm` layer), after checking it
    /// as `check` does; print `REGISTRY/REPOSITORY@sha256:...`, which pulls exactly these bytes.
    ///
    /// Credentials: KUBEWASM_REGISTRY_USERNAME and KUBEWASM_REGISTRY_PASSWORD, else the docker
    /// config's `auths` entry for the registry, else anonymous.
    /// Exit status: 0 pushed, 1 invalid plugin or registry error, 2 usage error.
    Push(oci::PushArgs),
    /// Fetch a component from an OCI registry by tag or `@sha256:` digest into a file, with the
    /// manifest's and the component's digests verified; print `REGISTRY/REPOSITORY@sha256:...`.
    ///
    /// Exit status: 0 pulled, 1 registry error or digest mismatch (nothing written), 2 usage error.
    Pull(oci::PullArgs),
}

/// `kubewasm plugin crd`.
#[derive(Debug, clap::Args)]
pub struct CrdArgs {
    /// The component (a .wasm file).
    file: PathBuf,

    #[command(flatten)]
    size: super::common::PluginSizeArgs,

    #[command(flatten)]
    runtime: RuntimeArgs,
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

    /// Scaffold an operator for a custom resource of its own instead, e.g.
    /// `demo.example.com/v1/Greeting`: a spec struct with `#[derive(CustomResource)]`, the CRD
    /// in the manifest, a reconcile that patches the status, and an `example.yaml`.
    #[arg(long, value_name = "GROUP/VERSION/KIND", conflicts_with = "kind")]
    crd: Option<String>,

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
const LIB_RS_CRD: &str = include_str!("plugin_template/lib_crd.rs.tmpl");
const README_CRD: &str = include_str!("plugin_template/README_crd.md.tmpl");
const EXAMPLE_YAML_CRD: &str = include_str!("plugin_template/example.yaml.tmpl");
const GITIGNORE: &str = include_str!("plugin_template/gitignore.tmpl");

/// The annotation the scaffolded reconcile sets.
const ANNOTATION: &str = "kubewasm.dev/reconciled-by";

/// Runs `kubewasm plugin ...`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        PluginCommand::New(args) => new(&args),
        PluginCommand::Check(args) => check(&args).await,
        PluginCommand::Crd(args) => crd(&args).await,
        PluginCommand::Push(args) => oci::push(&args).await,
        PluginCommand::Pull(args) => oci::pull(&args).await,
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
        "Action",
        "Api",
        "Event",
        "Manifest",
        "Patch",
        "Plugin",
        "Request",
        "Result",
        "Verb",
        "Tests",
        "CustomResource",
        "JsonSchema",
        "Serialize",
        "Deserialize",
    ];
    if TAKEN.contains(&out.as_str())
        || out == kind
        || out == format!("{kind}Spec")
        || out == format!("{kind}Status")
    {
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

/// A custom kind `plugin new --crd` scaffolds an operator for.
struct CustomKind {
    group: String,
    version: String,
    kind: String,
}

/// Parses `--crd GROUP/VERSION/KIND` as the derive will check it.
fn parse_crd(text: &str) -> Result<CustomKind, UsageError> {
    let bad = |why: &str| {
        UsageError(format!(
            "--crd {text:?}: {why} (example: --crd demo.example.com/v1/Greeting)"
        ))
    };
    let [group, version, kind] = text.split('/').collect::<Vec<_>>()[..] else {
        return Err(bad("expected GROUP/VERSION/KIND"));
    };
    let dns_label = |l: &str| {
        !l.is_empty()
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !group.contains('.') || group.len() > 253 || !group.split('.').all(dns_label) {
        return Err(bad(
            "the group must be a lowercase DNS name with a dot, such as demo.example.com",
        ));
    }
    let digits_then = version
        .strip_prefix('v')
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    if !digits_then
        || !version
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return Err(bad("the version must look like v1, v1alpha1 or v2beta1"));
    }
    if !kind.starts_with(|c: char| c.is_ascii_uppercase())
        || !kind.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(bad(
            "the kind must be CamelCase letters and digits, such as Greeting",
        ));
    }
    const TAKEN: &[&str] = &[
        "Action",
        "Api",
        "Event",
        "Manifest",
        "Patch",
        "Plugin",
        "Request",
        "Result",
        "Verb",
        "CustomResource",
        "JsonSchema",
        "Serialize",
        "Deserialize",
        "Tests",
    ];
    if TAKEN.contains(&kind) {
        return Err(bad(
            "the kind clashes with a name the scaffold imports; choose another",
        ));
    }
    Ok(CustomKind {
        group: group.to_owned(),
        version: version.to_owned(),
        kind: kind.to_owned(),
    })
}

fn new(args: &NewArgs) -> anyhow::Result<()> {
    validate_name(&args.name)?;
    let custom = args.crd.as_deref().map(parse_crd).transpose()?;
    // The kind reconciled: a built-in one (`--kind`) or the plugin's own (`--crd`).
    let (kind, plural, namespaced, builtin) = match &custom {
        Some(c) => (
            c.kind.as_str(),
            format!("{}s", c.kind.to_ascii_lowercase()),
            true,
            None,
        ),
        None => {
            let k = KINDS
                .iter()
                .find(|k| k.kind == args.kind)
                .ok_or_else(|| UsageError(format!("unknown kind {}", args.kind)))?;
            (k.kind, k.plural.to_owned(), k.namespaced, Some(k))
        }
    };
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
    let type_name = type_name(&args.name, kind);
    let sdk_dependency = format!("kubewasm-sdk = {{ {} }}", sdk.spec);
    let sdk_dev_dependency = format!(
        "kubewasm-sdk = {{ {}, features = [\"testing\"] }}",
        sdk.spec
    );
    let seed_meta = if namespaced {
        r#""namespace": "default", "name": "example""#
    } else {
        r#""name": "example""#
    };
    let test_namespace = if namespaced { "default" } else { "" };
    let api_new = if namespaced {
        "Api::namespaced(&req.namespace)"
    } else {
        "Api::all()"
    };
    let try_it = format!(
        "{}\nkubectl get {plural} demo -o jsonpath='{{.metadata.annotations}}'   # {ANNOTATION}: {}\n\
         kubectl get events",
        builtin.map_or("", |k| k.create),
        args.name
    );
    let (group, version) = custom
        .as_ref()
        .map_or(("", ""), |c| (c.group.as_str(), c.version.as_str()));
    let api_version = format!("{group}/{version}");
    let vars: &[(&str, &str)] = &[
        ("name", &args.name),
        ("crate_name", &crate_name),
        ("type_name", &type_name),
        ("kind", kind),
        ("kind_path", builtin.map_or("", |k| k.path)),
        ("api_new", api_new),
        ("group", group),
        ("version", version),
        ("api_version", &api_version),
        ("plural", &plural),
        ("annotation", ANNOTATION),
        ("sdk_dependency", &sdk_dependency),
        ("sdk_dev_dependency", &sdk_dev_dependency),
        ("sdk_note", &sdk.note),
        ("try_it", &try_it),
        ("test_namespace", test_namespace),
        ("seed_meta", seed_meta),
    ];
    let mut files = vec![
        ("Cargo.toml", render(CARGO_TOML, vars)),
        (".gitignore", render(GITIGNORE, vars)),
    ];
    if custom.is_some() {
        files.push(("src/lib.rs", render(LIB_RS_CRD, vars)));
        files.push(("README.md", render(README_CRD, vars)));
        files.push(("example.yaml", render(EXAMPLE_YAML_CRD, vars)));
    } else {
        files.push(("src/lib.rs", render(LIB_RS, vars)));
        files.push(("README.md", render(README, vars)));
    }
    std::fs::create_dir_all(abs_dir.join("src"))
        .with_context(|| format!("creating {}", abs_dir.display()))?;
    for (file, text) in files {
        let path = abs_dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    match &custom {
        Some(c) => println!(
            "Created plugin {} (operator for the custom resource {} {}/{}) in {}",
            args.name,
            c.kind,
            c.group,
            c.version,
            dir.display()
        ),
        None => println!(
            "Created plugin {} ({kind} reconciler) in {}",
            args.name,
            dir.display()
        ),
    }
    println!();
    println!("  cd {}", dir.display());
    println!(
        "  cargo test                                       # reconcile against the SDK's fake host"
    );
    println!(
        "  cargo build --release --target wasm32-wasip2     # -> target/wasm32-wasip2/release/{crate_name}.wasm"
    );
    if custom.is_some() {
        println!(
            "  kubewasm plugin crd target/wasm32-wasip2/release/{crate_name}.wasm | kubectl apply -f -   # install the CRD"
        );
    }
    println!();
    println!(
        "Then run it in `kubewasm dev`: see {}.",
        dir.join("README.md").display()
    );
    Ok(())
}

/// What `plugin check` reports.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    plugin: String,
    file: String,
    size: u64,
    sha256: String,
    world: String,
    interfaces: Vec<String>,
    manifest: serde_json::Value,
    /// Whether the plugin keeps its instances between reconciles (`reuse-instances`).
    reuse_instances: bool,
    /// The names of the CRDs the plugin ships (`custom-resources`).
    custom_resources: Vec<String>,
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
    let _ = writeln!(
        out,
        "  instances:    {}",
        if r.reuse_instances {
            "kept between reconciles (reuse-instances; a fresh one after a fault or reload)"
        } else {
            "a fresh one per reconcile"
        }
    );
    let _ = writeln!(out, "  crds:         {}", list(r.custom_resources.clone()));
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
    let (size, sha256) = (bytes.len() as u64, hex::encode(Sha256::digest(&bytes)));
    let plugin = runtime.load(&args.file, bytes).await?;
    let linked = plugin.interfaces();
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
        world: format!("kubewasm:controller/plugin@{}", plugin.wit_version()),
        interfaces: linked,
        manifest: manifest_json(manifest),
        reuse_instances: plugin.reuses_instances(),
        custom_resources: plugin
            .custom_resources()
            .iter()
            .map(|crd| crd["metadata"]["name"].as_str().unwrap_or("?").to_owned())
            .collect(),
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

/// The CRDs as YAML documents, each after a `---` line.
fn crds_yaml(crds: &[serde_json::Value]) -> anyhow::Result<String> {
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(crd).context("writing a CRD as YAML")?);
    }
    Ok(out)
}

async fn crd(args: &CrdArgs) -> anyhow::Result<()> {
    let runtime = Runtime::new(args.runtime.config()).context("starting the plugin runtime")?;
    let bytes = kubewasm::loader::read_plugin_file_async(&args.file, args.size.max_bytes()).await?;
    let plugin = runtime.load(&args.file, bytes).await?;
    let crds = plugin.custom_resources();
    if crds.is_empty() {
        eprintln!(
            "plugin {} ({}) defines no custom resources: its manifest ships no \
             CustomResourceDefinition (a plugin adds one with \
             `Manifest::custom_resource::<K>()`); nothing to print",
            plugin.name(),
            args.file.display()
        );
        return Ok(());
    }
    let text = crds_yaml(crds)?;
    match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing the CRDs"),
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
                crd: None,
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
    fn crds_print_as_yaml_documents_that_read_back_unchanged() {
        let a = serde_json::json!({"apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition", "metadata": {"name": "as.example.com"},
            "spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
        let b = serde_json::json!({"kind": "CustomResourceDefinition", "metadata": {"name": "bs.example.com"}});
        let text = crds_yaml(&[a.clone(), b.clone()]).unwrap();
        assert!(text.starts_with("---\n"), "{text}");
        assert_eq!(text.matches("\n---\n").count(), 1, "{text}");
        let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        assert_eq!(docs, [a, b]);
    }

    #[test]
    fn the_crd_variant_renders_every_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("greeter");
        new(&NewArgs {
            name: "greeter".into(),
            path: Some(path.clone()),
            kind: "ConfigMap".into(),
            crd: Some("demo.example.com/v1alpha1/Greeting".into()),
            sdk_path: None,
        })
        .unwrap();
        for file in [
            "Cargo.toml",
            "src/lib.rs",
            "README.md",
            ".gitignore",
            "example.yaml",
        ] {
            let text = std::fs::read_to_string(path.join(file)).unwrap();
            assert!(!text.contains("{{"), "{file}:\n{text}");
        }
        let lib = std::fs::read_to_string(path.join("src/lib.rs")).unwrap();
        assert!(
            lib.contains(r#"#[kubewasm(group = "demo.example.com", version = "v1alpha1")]"#)
                && lib.contains(
                    r#"#[kubewasm(kind = "Greeting", namespaced, status = "GreetingStatus")]"#
                ),
            "{lib}"
        );
        assert!(lib.contains("pub struct GreetingSpec {"), "{lib}");
        assert!(lib.contains(".custom_resource::<Greeting>()"), "{lib}");
        assert!(lib.contains("\"greetings.demo.example.com\""), "{lib}");
        let example: serde_json::Value =
            serde_yaml::from_str(&std::fs::read_to_string(path.join("example.yaml")).unwrap())
                .unwrap();
        assert_eq!(example["apiVersion"], "demo.example.com/v1alpha1");
        assert_eq!(example["kind"], "Greeting");
        let readme = std::fs::read_to_string(path.join("README.md")).unwrap();
        assert!(
            readme.contains(
                "kubewasm plugin crd target/wasm32-wasip2/release/greeter.wasm | kubectl apply -f -"
            ),
            "{readme}"
        );
    }

    #[test]
    fn crd_names_are_checked_as_kubernetes_will() {
        let ok = parse_crd("demo.example.com/v1beta2/ScaleSchedule").unwrap();
        assert_eq!(
            (ok.group.as_str(), ok.version.as_str(), ok.kind.as_str()),
            ("demo.example.com", "v1beta2", "ScaleSchedule")
        );
        for (bad, why) in [
            ("Greeting", "expected GROUP/VERSION/KIND"),
            ("demo.example.com/v1", "expected GROUP/VERSION/KIND"),
            ("a/b/c/d", "expected GROUP/VERSION/KIND"),
            ("example/v1/Greeting", "DNS name with a dot"),
            ("Demo.example.com/v1/Greeting", "DNS name with a dot"),
            ("demo.example.com/1/Greeting", "v1, v1alpha1"),
            ("demo.example.com/version1/Greeting", "v1, v1alpha1"),
            ("demo.example.com/v1/greeting", "CamelCase"),
            ("demo.example.com/v1/Gr-eeting", "CamelCase"),
            ("demo.example.com/v1/Patch", "clashes"),
        ] {
            let err = parse_crd(bad).err().expect(bad).to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains("example: --crd"), "{err}");
        }
    }

    #[test]
    fn type_names_are_camel_case_and_avoid_the_imported_names() {
        assert_eq!(type_name("my-plugin", "ConfigMap"), "MyPlugin");
        assert_eq!(type_name("a_b", "Pod"), "AB");
        assert_eq!(type_name("plugin", "Pod"), "PluginPlugin");
        assert_eq!(type_name("config-map", "ConfigMap"), "ConfigMapPlugin");
        assert_eq!(type_name("greeting-spec", "Greeting"), "GreetingSpecPlugin");
        assert_eq!(type_name("api", "Greeting"), "ApiPlugin");
    }

    #[test]
    fn a_crate_inside_a_repository_points_at_its_sdk_relatively() {
        let root = Path::new("/repo");
        assert_eq!(
            relative_to(Path::new("/repo/plugins/x"), root, Path::new("/repo/sdk")),
            Path::new("../../sdk")
        );
    }
}
