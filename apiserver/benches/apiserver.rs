//! Benchmark of the embedded API server over loopback HTTP: create/get/list/watch latency and throughput
//! with 10k objects, list of 10k Pods, watch events/s to one watcher, memory per stored object.
//! Prints a table; not pass/fail. Run: `cargo bench -p kubewasm-apiserver --bench apiserver`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kubewasm_apiserver::{ApiServer, Config};
use serde_json::json;

const N: usize = 10_000;
const CONCURRENCY: usize = 8;

type Http = Client<HttpConnector, Full<Bytes>>;

async fn request(client: &Http, method: &str, url: &str, body: Option<Vec<u8>>) -> (u16, Bytes) {
    let mut b = http::Request::builder().method(method).uri(url);
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let req = b
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    let resp = client.request(req).await.expect("response");
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (code, bytes)
}

fn pod(i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i:05}"), "labels": {"app": "bench", "shard": (i % 10).to_string()}},
        "spec": {"nodeName": format!("node-{}", i % 50), "containers": [{
            "name": "main", "image": "registry.example.com/team/app:1.2.3",
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "env": [{"name": "MODE", "value": "production"}, {"name": "INDEX", "value": i.to_string()}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        }]},
    })
}

fn configmap(i: usize) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i:05}")}, "data": {"key": "value", "index": i.to_string()}})
}

struct Stats {
    name: String,
    count: usize,
    total: Duration,
    lat: Vec<Duration>,
}

impl Stats {
    fn row(&self) {
        let mut l = self.lat.clone();
        l.sort();
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        println!(
            "{:<44} {:>8} {:>12.0} {:>10.3} {:>10.3}",
            self.name,
            self.count,
            self.count as f64 / self.total.as_secs_f64(),
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
        );
    }
}

/// Runs `f(i)` for i in 0..n on CONCURRENCY tasks; per-request latency and total time.
async fn run<F, Fut>(name: &str, n: usize, f: F) -> Stats
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..CONCURRENCY {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = t;
            while i < n {
                let s = Instant::now();
                f(i).await;
                lat.push(s.elapsed());
                i += CONCURRENCY;
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    Stats {
        name: name.to_string(),
        count: n,
        total: start.elapsed(),
        lat,
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

async fn count_watch_events(client: &Http, url: &str, want: usize) -> Duration {
    let req = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let start = Instant::now();
    let resp = client.request(req).await.expect("watch");
    let mut body = resp.into_body();
    let mut seen = 0usize;
    while seen < want {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    seen += data.iter().filter(|b| **b == b'\n').count();
                }
            }
            _ => break,
        }
    }
    assert!(seen >= want, "watch ended after {seen} of {want} events");
    start.elapsed()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let server = ApiServer::start(Config {
        history_limit: 4 * N,
        ..Config::default()
    })
    .await
    .expect("start");
    let base = server.url();
    let client: Http = Client::builder(TokioExecutor::new()).build_http();
    let faults = server.faults();
    println!(
        "embedded API server benchmark, {N} objects, {CONCURRENCY} concurrent clients over loopback HTTP/1.1"
    );
    println!(
        "{:<44} {:>8} {:>12} {:>10} {:>10}",
        "operation", "count", "ops/s", "p50 ms", "p99 ms"
    );

    let cms = format!("{base}/api/v1/namespaces/default/configmaps");
    let c = client.clone();
    let u = cms.clone();
    run("create ConfigMap", N, move |i| {
        let (c, u) = (c.clone(), u.clone());
        async move {
            let (code, _) = request(
                &c,
                "POST",
                &u,
                Some(serde_json::to_vec(&configmap(i)).expect("json")),
            )
            .await;
            assert_eq!(code, 201);
        }
    })
    .await
    .row();
    faults.clear_requests();

    let c = client.clone();
    let u = cms.clone();
    run("get ConfigMap", N, move |i| {
        let (c, u) = (c.clone(), u.clone());
        async move {
            let (code, _) = request(&c, "GET", &format!("{u}/cm-{i:05}"), None).await;
            assert_eq!(code, 200);
        }
    })
    .await
    .row();
    faults.clear_requests();

    let c = client.clone();
    let u = cms.clone();
    run("update ConfigMap (merge patch)", N, move |i| {
        let (c, u) = (c.clone(), u.clone());
        async move {
            let req = http::Request::builder()
                .method("PATCH")
                .uri(format!("{u}/cm-{i:05}"))
                .header("content-type", "application/merge-patch+json")
                .body(Full::new(Bytes::from(r#"{"data":{"key":"changed"}}"#)))
                .expect("request");
            let resp = c.request(req).await.expect("patch");
            assert_eq!(resp.status().as_u16(), 200);
            let _ = resp.into_body().collect().await;
        }
    })
    .await
    .row();
    faults.clear_requests();

    // Lists of 10k ConfigMaps, sequential.
    let mut lat = Vec::new();
    let start = Instant::now();
    for _ in 0..20 {
        let s = Instant::now();
        let (code, body) = request(&client, "GET", &cms, None).await;
        assert_eq!(code, 200);
        assert!(body.len() > N * 50);
        lat.push(s.elapsed());
    }
    Stats {
        name: format!("list {N} ConfigMaps"),
        count: 20,
        total: start.elapsed(),
        lat,
    }
    .row();

    // Memory: 10k Pods.
    let pods = format!("{base}/api/v1/namespaces/default/pods");
    let json_size: usize = (0..N)
        .map(|i| serde_json::to_vec(&pod(i)).expect("json").len())
        .sum();
    let rss_before = rss_bytes();
    let c = client.clone();
    let u = pods.clone();
    run("create Pod", N, move |i| {
        let (c, u) = (c.clone(), u.clone());
        async move {
            let (code, _) = request(
                &c,
                "POST",
                &u,
                Some(serde_json::to_vec(&pod(i)).expect("json")),
            )
            .await;
            assert_eq!(code, 201);
        }
    })
    .await
    .row();
    faults.clear_requests();
    let rss_after = rss_bytes();

    let mut lat = Vec::new();
    let start = Instant::now();
    let mut stored_size = 0;
    for _ in 0..20 {
        let s = Instant::now();
        let (code, body) = request(&client, "GET", &pods, None).await;
        assert_eq!(code, 200);
        stored_size = body.len();
        lat.push(s.elapsed());
    }
    Stats {
        name: format!("list {N} Pods (target <= 100 ms)"),
        count: 20,
        total: start.elapsed(),
        lat,
    }
    .row();

    let mut lat = Vec::new();
    let start = Instant::now();
    for s in 0..10 {
        let t = Instant::now();
        let (code, _) = request(
            &client,
            "GET",
            &format!("{pods}?labelSelector=shard%3D{s}"),
            None,
        )
        .await;
        assert_eq!(code, 200);
        lat.push(t.elapsed());
    }
    Stats {
        name: format!("list {N} Pods, label selector (1/10 match)"),
        count: 10,
        total: start.elapsed(),
        lat,
    }
    .row();

    let mut lat = Vec::new();
    let start = Instant::now();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let t = Instant::now();
        let (code, body) = request(
            &client,
            "GET",
            &format!("{pods}?limit=500&continue={token}"),
            None,
        )
        .await;
        assert_eq!(code, 200);
        lat.push(t.elapsed());
        pages += 1;
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        match v["metadata"]["continue"].as_str() {
            Some(c) => token = c.to_string(),
            None => break,
        }
    }
    Stats {
        name: format!("list {N} Pods in pages of 500"),
        count: pages,
        total: start.elapsed(),
        lat,
    }
    .row();

    // Watch: replay of N events from history (pure delivery), and live delivery during writes.
    let rv_before_updates: u64 = {
        let (_, body) = request(&client, "GET", &format!("{cms}?limit=1"), None).await;
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        v["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("rv")
    };
    let c = client.clone();
    let u = cms.clone();
    let writer = tokio::spawn(async move {
        run(
            "update ConfigMap while watched (merge patch)",
            N,
            move |i| {
                let (c, u) = (c.clone(), u.clone());
                async move {
                    let req = http::Request::builder()
                        .method("PATCH")
                        .uri(format!("{u}/cm-{i:05}"))
                        .header("content-type", "application/merge-patch+json")
                        .body(Full::new(Bytes::from(r#"{"data":{"key":"again"}}"#)))
                        .expect("request");
                    let resp = c.request(req).await.expect("patch");
                    let _ = resp.into_body().collect().await;
                }
            },
        )
        .await
    });
    let live = count_watch_events(
        &client,
        &format!("{cms}?watch=1&resourceVersion={rv_before_updates}&timeoutSeconds=120"),
        N,
    )
    .await;
    writer.await.expect("writer").row();
    println!(
        "{:<44} {:>8} {:>12.0}",
        "watch: live events delivered to one watcher",
        N,
        N as f64 / live.as_secs_f64()
    );
    let replay = count_watch_events(
        &client,
        &format!("{cms}?watch=1&resourceVersion={rv_before_updates}&timeoutSeconds=120"),
        N,
    )
    .await;
    println!(
        "{:<44} {:>8} {:>12.0}",
        "watch: replayed events to one watcher (target >= 10k/s)",
        N,
        N as f64 / replay.as_secs_f64()
    );
    let initial =
        count_watch_events(&client, &format!("{pods}?watch=1&timeoutSeconds=120"), N).await;
    println!(
        "{:<44} {:>8} {:>12.0}",
        "watch: initial ADDED events for 10k Pods",
        N,
        N as f64 / initial.as_secs_f64()
    );

    println!();
    println!(
        "memory: {N} Pods, average JSON {} bytes as sent, {} bytes as stored (with server fields);",
        json_size / N,
        stored_size / N
    );
    println!(
        "        RSS grew {} bytes per Pod ({:.2}x the stored JSON size; includes allocator slack and history)",
        rss_after.saturating_sub(rss_before) / N as u64,
        rss_after.saturating_sub(rss_before) as f64 / stored_size.max(1) as f64
    );
    server.shutdown().await;
}
