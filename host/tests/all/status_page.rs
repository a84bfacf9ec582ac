//! The live status page: its JSON endpoint (in process, with a record lookup; and `kubewasm run
//! --status-addr`), and the page itself in a real headless Chromium driven over WebDriver
//! against `kubewasm dev` — it lists the plugins, shows a reconcile of an object created with
//! kubectl without a reload, shows a hot-reloaded version, and says why a load failed.
//! Screenshots go to `target/test-output/status-page/`.
//!
//! The browser tests need Debian's `chromium` and `chromium-driver` (`cargo xtask test`
//! installs them); without them they fail with the command to run.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use kubewasm::layer::RecordLookup;
use kubewasm::reload::{PluginWatcher, WatchOptions};
use kubewasm::runtime::version_of;
use kubewasm::status::{self, StatusPage};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::support;
use crate::support::cluster::TestCluster;
use crate::support::process::{Host, compile_cache, http_get, plugin_dir};
use crate::support::wait::{eventually, wait};

/// A plain GET on the status server at `addr`, off the async threads.
async fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let (addr, path) = (addr.to_owned(), path.to_owned());
    tokio::task::spawn_blocking(move || http_get(&addr, &path))
        .await
        .expect("the GET ran")
}

async fn status_json(addr: &str) -> Value {
    let (code, body) = get(addr, "/api/status").await.expect("/api/status answers");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("/api/status is JSON ({e}): {body}"))
}

fn plugin<'v>(status: &'v Value, name: &str) -> Option<&'v Value> {
    status["plugins"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
}

/// Records every reconcile numbered below a million (a stand-in for the recorder).
struct Records;

impl RecordLookup for Records {
    fn record(&self, id: u64) -> Option<String> {
        (id < 1_000_000).then(|| json!({ "reconcile": id, "calls": [] }).to_string())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_json_endpoint_shows_plugins_loads_reconciles_informers_and_record_links() {
    let cluster = TestCluster::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = plugin_dir(
        dir.path(),
        &[support::example("hello"), support::test_plugin("faulty")],
    );
    std::fs::write(folder.join("broken.wasm"), b"not a component").expect("write");
    let page = StatusPage::new(cluster.manager.clone(), 5, Some(Arc::new(Records)));
    let watcher = PluginWatcher::start(
        cluster.runtime.clone(),
        cluster.manager.clone(),
        &folder,
        WatchOptions {
            watch: false,
            ..WatchOptions::default()
        },
    )
    .await
    .expect("the folder loads");
    page.show_loads(watcher.history());
    let addr = status::serve("127.0.0.1:0".parse().expect("addr"), page.clone())
        .await
        .expect("the status page serves")
        .to_string();
    cluster.manager.wait_synced().await;
    cluster
        .create(
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "status-demo", "namespace": "default"}}),
        )
        .await;

    let hello_version = version_of(&std::fs::read(support::example("hello")).expect("read"));
    // hello stamps the ConfigMap, so a `changed` reconcile follows the `created` one.
    let status = eventually(
        "the reconcile of default/status-demo to show, ended",
        || async {
            let status = status_json(&addr).await;
            let ended = plugin(&status, "hello")?["reconciles"]
                .as_array()?
                .iter()
                .any(|r| {
                    r["key"] == "default/status-demo"
                        && r["reason"] == "created"
                        && r["outcome"] != "running"
                });
            ended.then_some(status)
        },
    )
    .await;
    assert_eq!(status["recording"], true);

    let hello = plugin(&status, "hello").expect("hello listed");
    assert_eq!(hello["running"], true);
    assert_eq!(hello["version"], hello_version.as_str());
    assert_eq!(hello["synced"], true);
    let reconcile = hello["reconciles"]
        .as_array()
        .expect("reconciles")
        .iter()
        .find(|r| r["key"] == "default/status-demo" && r["reason"] == "created")
        .expect("the reconcile");
    assert_eq!(reconcile["outcome"], "ok", "{reconcile}");
    assert_eq!(reconcile["version"], hello_version.as_str());
    assert!(reconcile["took_ms"].as_f64().is_some(), "{reconcile}");
    assert!(
        hello["reconciles_last_minute"].as_u64() >= Some(1),
        "{hello}"
    );
    assert!(
        hello["reconciles"].as_array().expect("array").len() <= 5,
        "at most the last 5 kept: {hello}"
    );
    let versions = hello["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 1, "{hello}");
    assert_eq!(versions[0]["serving"], true);
    assert!(versions[0]["ok"].as_u64() >= Some(1), "{hello}");
    assert_eq!(hello["loads"][0]["what"], "started", "{hello}");
    assert_eq!(hello["loads"][0]["version"], hello_version.as_str());

    // The record link serves what the lookup has; a number it does not know is a 404.
    let id = reconcile["id"].as_u64().expect("an id");
    let link = reconcile["record"].as_str().expect("a record link");
    assert_eq!(link, format!("/reconciles/{id}/record"));
    let (code, body) = get(&addr, link).await.expect("the record answers");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON")["reconcile"],
        id
    );
    let (code, body) = get(&addr, "/reconciles/5000000/record")
        .await
        .expect("answers");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("was not recorded"), "{body}");
    let (code, body) = get(&addr, "/reconciles/x/record").await.expect("answers");
    assert_eq!(code, 400, "{body}");

    // A file that never loaded is listed, not running, with why.
    let broken = plugin(&status, "broken").expect("broken listed");
    assert_eq!(broken["running"], false, "{broken}");
    assert_eq!(broken["loads"][0]["what"], "failed", "{broken}");
    let reason = broken["loads"][0]["reason"].as_str().expect("a reason");
    assert!(!reason.is_empty(), "{broken}");
    assert!(
        broken["loads"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("broken.wasm not loaded") && m.contains(reason)),
        "{broken}"
    );

    let configmaps = status["informers"]
        .as_array()
        .expect("informers")
        .iter()
        .find(|i| i["informer"] == "v1/ConfigMap")
        .unwrap_or_else(|| panic!("the ConfigMap informer: {status}"));
    assert_eq!(configmaps["synced"], true);
    assert!(configmaps["objects"].as_u64() >= Some(1), "{configmaps}");

    // The page itself is served, with the same figures and nothing from elsewhere.
    let (code, html) = get(&addr, "/").await.expect("the page answers");
    assert_eq!(code, 200);
    assert!(html.contains(r#"id="plugin-hello""#), "{html}");
    assert!(html.contains("default/status-demo"), "{html}");
    assert!(html.contains(&format!(r#"href="/reconciles/{id}/record""#)));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );

    // A plugin error and a trap are told apart, per reconcile and in the version's counts.
    cluster
        .create(
            "namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "faulty"}}),
        )
        .await;
    for name in ["panic", "always-error"] {
        cluster
            .create(
                "configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": "faulty"}}),
            )
            .await;
    }
    let outcome_of = |status: &Value, key: &str| -> Option<(String, String)> {
        let row = plugin(status, "faulty")?["reconciles"]
            .as_array()?
            .iter()
            .find(|r| r["key"] == key && r["outcome"] != "running")?
            .clone();
        Some((
            row["outcome"].as_str()?.to_owned(),
            row["result"].as_str()?.to_owned(),
        ))
    };
    let (outcome, result) = eventually("faulty/panic's reconcile on the page", || async {
        outcome_of(&status_json(&addr).await, "faulty/panic")
    })
    .await;
    assert_eq!(outcome, "fault", "{result}");
    assert!(result.contains("panicked on purpose"), "{result}");
    let (outcome, result) = eventually("faulty/always-error's reconcile on the page", || async {
        outcome_of(&status_json(&addr).await, "faulty/always-error")
    })
    .await;
    assert_eq!(outcome, "error", "{result}");
    let status = status_json(&addr).await;
    let counts = &plugin(&status, "faulty").expect("faulty listed")["versions"][0];
    assert!(counts["faults"].as_u64() >= Some(1), "{counts}");
    assert!(counts["errors"].as_u64() >= Some(1), "{counts}");

    watcher.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubewasm_run_serves_the_status_page_at_status_addr() {
    let server = kubewasm_apiserver::ApiServer::start(kubewasm_apiserver::Config::default())
        .await
        .expect("the embedded API server starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .expect("write kubeconfig");
    let plugins = plugin_dir(dir.path(), &[support::example("hello")]);
    let host = Host::start(
        "host",
        &plugins,
        &kubeconfig,
        &["--leader-elect=false", "--status-addr", "127.0.0.1:0"],
    );
    let line = host.wait_log("serving the status page");
    let addr = line["fields"]["address"]
        .as_str()
        .expect("the address is logged")
        .to_owned();
    let status = eventually("hello to be listed as running and synced", || async {
        let status = status_json(&addr).await;
        let hello = plugin(&status, "hello")?;
        (hello["running"] == true && hello["synced"] == true).then_some(status)
    })
    .await;
    let hello = plugin(&status, "hello").expect("hello");
    assert_eq!(hello["loads"][0]["what"], "started", "{hello}");
    assert_eq!(status["recording"], false);
    drop(host);
    server.shutdown().await;
}

#[test]
fn kubewasm_dev_names_the_status_page_in_its_banner_unless_told_not_to_serve_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = plugin_dir(dir.path(), &[support::example("hello")]);
    let banner = support::process::dev_banner(dir.path(), &plugins, &[]);
    let url = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("status page: "))
        .unwrap_or_else(|| panic!("no status page line:\n{banner}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{banner}");
    let banner = support::process::dev_banner(dir.path(), &plugins, &["--no-status".as_ref()]);
    assert!(banner.contains("Press Ctrl-C"), "{banner}");
    assert!(!banner.contains("status page"), "{banner}");
}

// ---- In a browser ----

/// Where the screenshots go.
fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-output/status-page");
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    dir
}

/// `program` on PATH, or a failure that says how to install it.
fn needed(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{program} is not installed: the status page's browser tests need Debian's \
                 chromium and chromium-driver. Run `cargo xtask test` (it installs them) or \
                 `apt-get install -y chromium chromium-driver`"
            )
        })
}

/// Headless Chromium driven through chromedriver on 127.0.0.1.
struct Browser {
    driver: Child,
    client: Option<fantoccini::Client>,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        let chromium = needed("chromium");
        let chromedriver = needed("chromedriver");
        // Port 0: chromedriver picks a free port and says which.
        let mut driver = Command::new(chromedriver)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let out = driver.stdout.take().expect("stdout");
        let port = Arc::new(Mutex::new(None::<u16>));
        let seen = Arc::clone(&port);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    *seen.lock() = rest.trim_end_matches('.').trim().parse().ok();
                }
            }
        });
        let port = tokio::task::spawn_blocking(move || {
            wait("chromedriver to say its port", || *port.lock())
        })
        .await
        .expect("waited")
        .expect("chromedriver started and said its port");
        let profile = tempfile::tempdir().expect("a profile folder");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,1600",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = fantoccini::ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("a headless Chromium session: {e}"));
        Self {
            driver,
            client: Some(client),
            _profile: profile,
        }
    }

    fn client(&self) -> &fantoccini::Client {
        self.client.as_ref().expect("open")
    }

    async fn goto(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// Runs `script` (a function body that returns a value) in the page.
    async fn eval(&self, script: &str) -> Value {
        self.client()
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("running {script}: {e}"))
    }

    /// Waits until `script` returns something other than `null` or `false`, and returns it.
    async fn until(&self, what: &str, script: &str) -> Value {
        eventually(what, || async {
            let v = self.eval(script).await;
            (!v.is_null() && v != false).then_some(v)
        })
        .await
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client().screenshot().await.expect("a screenshot");
        let path = screenshots().join(name);
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `kubewasm dev` on a folder of plugins, its stdout collected.
struct Dev {
    child: Child,
    stdout: Arc<Mutex<String>>,
    kubeconfig: PathBuf,
    folder: PathBuf,
    url: String,
    _dir: tempfile::TempDir,
}

impl Dev {
    fn start(plugins: &[PathBuf], args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = plugin_dir(dir.path(), plugins);
        let kubeconfig = dir.path().join("dev.kubeconfig");
        let mut child = Command::new(env!("CARGO_BIN_EXE_kubewasm"))
            .arg("dev")
            .arg("--plugins")
            .arg(&folder)
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .arg("--compile-cache")
            .arg(compile_cache())
            .arg("--no-simulate")
            .args(args)
            .env_remove("KUBEWASM_POLICY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubewasm dev starts");
        let out = child.stdout.take().expect("stdout");
        let stdout = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let banner = wait("kubewasm dev's banner", || {
            let s = stdout.lock();
            s.contains("Press Ctrl-C").then(|| s.clone())
        });
        let banner = banner.unwrap_or_else(|| panic!("no banner:\n{}", stdout.lock()));
        let url = banner
            .lines()
            .find_map(|l| l.trim().strip_prefix("status page: "))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("the banner names the status page:\n{banner}"))
            .to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Self {
            child,
            stdout,
            kubeconfig,
            folder,
            url,
            _dir: dir,
        }
    }

    fn kubectl(&self, args: &[&str]) {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl must be installed for this test");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- kubewasm dev's output ---\n{}", self.stdout.lock());
        }
    }
}

/// The text of `selector`'s first match, or `null`.
fn text_of(selector: &str) -> String {
    format!(
        "const e = document.querySelector({}); return e ? e.textContent.trim() : null;",
        json!(selector)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_a_browser_the_page_lists_the_plugins_and_shows_a_new_reconcile_without_a_reload() {
    let hello = support::example("hello");
    let version = version_of(&std::fs::read(&hello).expect("read"));
    let dev = Dev::start(&[hello], &[]);
    let browser = Browser::start().await;
    browser.goto(&dev.url).await;
    let shown = browser
        .until(
            "hello and its version on the page",
            &text_of("#plugin-hello .version"),
        )
        .await;
    assert_eq!(shown, version.as_str());
    assert_eq!(
        browser.eval(&text_of("#plugin-hello .state")).await,
        "reconciling"
    );
    browser.screenshot("loaded.png").await;

    // Anything set now is lost if the page reloads.
    browser
        .eval("window.kubewasmMarker = 'same page'; return true;")
        .await;
    dev.kubectl(&["create", "configmap", "status-demo", "--from-literal=a=1"]);
    let row = browser
        .until(
            "the reconcile of default/status-demo on the page",
            r#"const r = document.querySelector('#plugin-hello tr.reconcile[data-key="default/status-demo"]:not(.running)');
               return r ? [r.className, r.querySelector('.result').textContent] : null;"#,
        )
        .await;
    assert_eq!(row[0], "reconcile ok", "{row}");
    assert_eq!(row[1], "done", "{row}");
    assert_eq!(
        browser.eval("return window.kubewasmMarker;").await,
        "same page",
        "the page updated itself, without a reload"
    );
    let path = browser.screenshot("reconcile.png").await;
    eprintln!("screenshot: {}", path.display());
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_a_browser_a_hot_reloaded_version_appears() {
    let hello = support::example("hello");
    let bytes = std::fs::read(&hello).expect("read");
    let dev = Dev::start(&[hello], &[]);
    let browser = Browser::start().await;
    browser.goto(&dev.url).await;
    browser
        .until("hello on the page", &text_of("#plugin-hello .version"))
        .await;

    let v2 = support::variant(&bytes, "v2");
    let v2_version = version_of(&v2);
    support::replace_by_rename(&dev.folder.join("hello.wasm"), &v2);
    browser
        .until(
            "the new version serving on the page",
            &format!(
                "return document.querySelector('#plugin-hello .version')?.textContent === {};",
                json!(v2_version)
            ),
        )
        .await;
    let rows = browser
        .eval("return [...document.querySelectorAll('#plugin-hello tr.version-row')].map(r => [r.dataset.version, r.classList.contains('serving')]);")
        .await;
    assert_eq!(
        rows,
        json!([[version_of(&bytes), false], [v2_version, true]]),
        "both versions listed, the new one serving"
    );
    let reload = browser
        .eval(&text_of(&format!(
            "#plugin-hello li.load.reloaded[data-version=\"{v2_version}\"]"
        )))
        .await;
    assert!(
        reload
            .as_str()
            .is_some_and(|t| t.contains(&format!("-> {v2_version}"))),
        "{reload}"
    );
    browser.screenshot("reloaded.png").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_a_browser_a_failed_load_shows_why() {
    let hello = support::example("hello");
    let bytes = std::fs::read(&hello).expect("read");
    let dev = Dev::start(&[hello], &[]);
    let browser = Browser::start().await;
    browser.goto(&dev.url).await;
    browser
        .until("hello on the page", &text_of("#plugin-hello .version"))
        .await;

    // A new file that is not a component: listed, not running, with the reason.
    support::replace_by_rename(&dev.folder.join("broken.wasm"), b"not a component");
    let line = browser
        .until(
            "broken.wasm's failed load on the page",
            &text_of("#plugin-broken li.load.failed"),
        )
        .await;
    let line = line.as_str().expect("text").to_owned();
    assert!(line.contains("broken.wasm not loaded: "), "{line}");
    assert_eq!(
        browser.eval(&text_of("#plugin-broken .state")).await,
        "not running"
    );

    // A bad replacement of a running plugin: why, and the old version keeps serving.
    support::replace_by_rename(&dev.folder.join("hello.wasm"), b"\0asm garbage");
    let error = browser
        .until(
            "hello's failed reload on the page",
            &text_of("#plugin-hello .reload-error"),
        )
        .await;
    assert!(
        error
            .as_str()
            .is_some_and(|t| t.starts_with("last reload failed: ") && t.len() > 40),
        "{error}"
    );
    assert_eq!(
        browser.eval(&text_of("#plugin-hello .version")).await,
        version_of(&bytes).as_str(),
        "the running version keeps serving"
    );
    assert!(
        browser
            .eval(&text_of("#plugin-hello li.load.failed"))
            .await
            .as_str()
            .is_some_and(|t| t.contains("hello.wasm not loaded: ") && t.contains("keeps serving")),
        "the failed load is in hello's history"
    );
    let path = browser.screenshot("failed-load.png").await;
    eprintln!("screenshot: {}", path.display());
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_a_browser_a_recorded_reconcile_links_to_its_record() {
    let records = tempfile::tempdir().expect("tempdir");
    let record_dir = records.path().join("recording");
    let dev = Dev::start(
        &[support::example("hello")],
        &["--record", record_dir.to_str().expect("a UTF-8 path")],
    );
    let browser = Browser::start().await;
    browser.goto(&dev.url).await;
    assert_eq!(
        browser.until("the page", &text_of("#recording")).await,
        "on"
    );
    dev.kubectl(&["create", "configmap", "recorded-demo", "--from-literal=a=1"]);
    let link = r#"#plugin-hello tr.reconcile[data-key="default/recorded-demo"] a.record"#;
    browser
        .until(
            "a record link on the reconcile of default/recorded-demo",
            &format!("return document.querySelector({}) !== null;", json!(link)),
        )
        .await;
    browser
        .client()
        .find(fantoccini::Locator::Css(link))
        .await
        .expect("the link")
        .click()
        .await
        .expect("the link opens");
    let text = browser
        .until(
            "the record to open",
            "return location.pathname.endsWith('/record') ? document.body.innerText : null;",
        )
        .await;
    let text = text.as_str().expect("text");
    let record: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("the record is JSON ({e}): {text}"));
    assert!(
        record.to_string().contains("recorded-demo"),
        "the record is of that reconcile: {record}"
    );
    browser.screenshot("record.png").await;
    browser.close().await;
}
