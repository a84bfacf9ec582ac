//! The status page as HTML: the shell (`page.html`, with its style and script) around the live
//! part, which `/body` serves alone for the script to swap in.
//!
//! Elements carry classes and `data-` attributes named after the JSON fields (`#plugin-NAME`,
//! `.version`, `tr.reconcile[data-key]`, `li.load.failed`), so the page can be checked as
//! easily as `/api/status`.

use std::fmt::Write as _;

use super::view::{InformerView, PluginView, Snapshot};

const SHELL: &str = include_str!("page.html");

/// Where the shell takes the live part.
const BODY_SLOT: &str = "<!--BODY-->";

/// The whole page.
pub(super) fn page(snapshot: &Snapshot) -> String {
    SHELL.replacen(BODY_SLOT, &body(snapshot), 1)
}

/// The live part of the page.
pub(super) fn body(s: &Snapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<p class="meta">as of <time id="as-of">{}</time> · recording <span id="recording">{}</span></p>"#,
        esc(&s.at),
        if s.recording { "on" } else { "off" }
    );
    if s.plugins.is_empty() {
        out.push_str(r#"<p class="empty">No plugin yet: put plugin components (*.wasm) in the plugins folder.</p>"#);
    }
    for p in &s.plugins {
        plugin(&mut out, p, s.recording);
    }
    informers(&mut out, &s.informers);
    out
}

/// One plugin's section; `recording` adds a column of links to the reconciles' records.
fn plugin(out: &mut String, p: &PluginView, recording: bool) {
    let state = match (p.running, p.synced) {
        (false, _) => ("stopped", "not running"),
        (true, false) => ("syncing", "caches syncing"),
        (true, true) => ("ok", "reconciling"),
    };
    let _ = writeln!(
        out,
        r#"<section class="plugin" id="plugin-{id}" data-name="{name}">
<h2>{name} <code class="version">{version}</code> <span class="state {cls}">{state}</span></h2>"#,
        id = esc(&p.name),
        name = esc(&p.name),
        version = esc(p.version.as_deref().unwrap_or("")),
        cls = state.0,
        state = state.1,
    );
    if let Some(error) = &p.last_reload_error {
        let _ = writeln!(
            out,
            r#"<p class="reload-error">last reload failed: {} (the version above keeps serving)</p>"#,
            esc(error)
        );
    }
    if p.running {
        let _ = writeln!(
            out,
            r#"<p class="figures">queue <b class="queue-depth">{}</b> waiting · {} delayed · {} in flight · <b class="rate">{}</b> reconciles in the last minute</p>"#,
            p.queue.depth, p.queue.delayed, p.queue.in_flight, p.reconciles_last_minute
        );
    }
    if !p.versions.is_empty() {
        out.push_str("<table class=\"versions\"><caption>Versions</caption><tr><th>version</th><th>ok</th><th>errors</th><th>faults</th></tr>\n");
        for v in &p.versions {
            let _ = writeln!(
                out,
                r#"<tr class="version-row{serving}" data-version="{version}"><td><code>{version}</code>{now}</td><td>{}</td><td class="{ecls}">{}</td><td class="{fcls}">{}</td></tr>"#,
                v.ok,
                v.errors,
                v.faults,
                serving = if v.serving { " serving" } else { "" },
                now = if v.serving { " (serving)" } else { "" },
                version = esc(&v.version),
                ecls = if v.errors > 0 { "bad" } else { "" },
                fcls = if v.faults > 0 { "bad" } else { "" },
            );
        }
        out.push_str("</table>\n");
    }
    if !p.loads.is_empty() {
        out.push_str(
            "<details class=\"loads\" open><summary>Load history (newest first)</summary><ul>\n",
        );
        for l in p.loads.iter().rev() {
            let _ = writeln!(
                out,
                r#"<li class="load {what}" data-version="{version}"><time>{at}</time> {message}</li>"#,
                what = l.what,
                version = esc(l.version.as_deref().unwrap_or("")),
                at = esc(&l.at),
                message = esc(&l.message),
            );
        }
        out.push_str("</ul></details>\n");
    }
    if p.reconciles.is_empty() {
        out.push_str("<p class=\"none\">No reconcile yet.</p>\n");
    } else {
        out.push_str("<table class=\"reconciles\"><caption>Last reconciles</caption><tr><th>#</th><th>started</th><th>key</th><th>why</th><th>version</th><th>took</th><th>result</th>");
        out.push_str(if recording {
            "<th>record</th></tr>\n"
        } else {
            "</tr>\n"
        });
        for r in &p.reconciles {
            let took = r
                .took_ms
                .map_or_else(String::new, |ms| format!("{ms:.1} ms"));
            let record = match (recording, r.record.as_deref()) {
                (false, _) => String::new(),
                (true, None) => "<td></td>".to_owned(),
                (true, Some(href)) => {
                    format!(
                        r#"<td><a class="record" href="{}">record</a></td>"#,
                        esc(href)
                    )
                }
            };
            let _ = writeln!(
                out,
                r#"<tr class="reconcile {outcome}" data-id="{id}" data-key="{key}"><td>{id}</td><td><time>{at}</time></td><td class="key">{key}</td><td>{reason}</td><td><code>{version}</code></td><td>{took}</td><td class="result">{result}</td>{record}</tr>"#,
                outcome = r.outcome,
                id = r.id,
                key = esc(&r.key),
                at = esc(&r.at),
                reason = esc(&r.reason),
                version = esc(&r.version),
                result = esc(&r.result),
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

fn informers(out: &mut String, informers: &[InformerView]) {
    out.push_str("<section id=\"informers\"><h2>Informers</h2>\n");
    if informers.is_empty() {
        out.push_str("<p class=\"none\">None running.</p></section>\n");
        return;
    }
    out.push_str("<table><tr><th>caches</th><th>objects</th><th>state</th><th>lists</th><th>errors</th></tr>\n");
    for i in informers {
        let state = match (&i.last_error, i.synced) {
            (Some(e), _) => format!(r#"<span class="bad">failing: {}</span>"#, esc(e)),
            (None, true) => "synced".to_owned(),
            (None, false) => "syncing".to_owned(),
        };
        let _ = writeln!(
            out,
            r#"<tr class="informer" data-informer="{name}"><td><code>{name}</code></td><td class="objects">{}</td><td>{state}</td><td>{}</td><td>{}</td></tr>"#,
            i.objects,
            i.lists,
            i.errors,
            name = esc(&i.informer),
        );
    }
    out.push_str("</table></section>\n");
}

/// `text` with HTML's special characters escaped (for element text and quoted attributes).
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::view::{QueueView, ReconcileView};

    #[test]
    fn what_a_plugin_controls_is_escaped() {
        let snapshot = Snapshot {
            at: "2026-01-01T00:00:00.000Z".into(),
            recording: false,
            plugins: vec![PluginView {
                name: "hello".into(),
                running: true,
                version: Some("v1".into()),
                synced: true,
                last_reload_error: None,
                queue: QueueView::default(),
                reconciles_last_minute: 1,
                versions: Vec::new(),
                loads: Vec::new(),
                reconciles: vec![ReconcileView {
                    id: 1,
                    key: "default/x".into(),
                    reason: "created".into(),
                    version: "v1".into(),
                    at: "2026-01-01T00:00:00.000Z".into(),
                    took_ms: Some(1.0),
                    outcome: "error",
                    result: "plugin hello returned an error: <script>alert(\"x\")</script>".into(),
                    record: None,
                }],
            }],
            informers: Vec::new(),
        };
        let html = page(&snapshot);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            !html.contains(BODY_SLOT),
            "the live part is in the page: {html}"
        );
    }
}
