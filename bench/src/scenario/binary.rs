//! Figure 9: the size of the `kubewasm` binary the bench runs, and of the `dist` build the
//! container image ships (`cargo build --profile dist -p kubewasm`: no debug info, symbols
//! stripped, thin LTO) when one has been built. The bench does not build `dist` itself: its
//! link-time optimization takes minutes on 2 cores.

use std::path::Path;
use std::time::SystemTime;

use anyhow::Context as _;

use super::Ctx;
use crate::report::{Figure, Side, Unit};
use crate::stats::Summary;

const MIB: f64 = 1024.0 * 1024.0;

/// What the native side says: there is no native binary to weigh.
const NO_PEER: &str = "not built as a binary of its own (the peer runs inside kubewasm-bench)";

/// Runs figure 9.
///
/// # Errors
/// When the binary the bench runs cannot be read.
pub fn run(ctx: &Ctx) -> anyhow::Result<Vec<Figure>> {
    let bin = &ctx.kubewasm_bin;
    let meta = std::fs::metadata(bin).with_context(|| {
        format!(
            "reading {} (build it with `cargo build --release -p kubewasm`)",
            bin.display()
        )
    })?;
    let profile = profile_of(bin);
    let mut figures = vec![
        Figure::new(
            "binary.size",
            9,
            "size of the kubewasm binary the bench runs",
            Unit::MiB,
            Side::measured(
                format!("{} ({profile} profile)", bin.display()),
                Summary::single(meta.len() as f64 / MIB),
            ),
            Side::missing("native peer", NO_PEER),
        )
        .note(format!(
            "{} bytes; a {profile} build keeps its debug info and symbols (see binary.size.dist)",
            meta.len()
        )),
    ];
    // `target/<profile>/kubewasm` → `target/dist/kubewasm`.
    let dist = bin
        .parent()
        .and_then(Path::parent)
        .map(|target| target.join("dist").join("kubewasm"));
    let dist_meta = dist.as_deref().and_then(|d| std::fs::metadata(d).ok());
    let label = dist.as_deref().map_or_else(
        || "target/dist/kubewasm".to_owned(),
        |d| d.display().to_string(),
    );
    let dist_figure = match dist_meta {
        Some(d) => Figure::new(
            "binary.size.dist",
            9,
            "size of the kubewasm dist build (what the container image ships)",
            Unit::MiB,
            Side::measured(
                format!("{label} (dist profile)"),
                Summary::single(d.len() as f64 / MIB),
            ),
            Side::missing("native peer", NO_PEER),
        )
        .note(format!(
            "{} bytes; built {} the binary the bench runs (the bench does not rebuild it)",
            d.len(),
            relative_age(d.modified().ok(), meta.modified().ok())
        )),
        None => Figure::new(
            "binary.size.dist",
            9,
            "size of the kubewasm dist build (what the container image ships)",
            Unit::MiB,
            Side::missing(
                format!("{label} (dist profile)"),
                "not built: run `cargo build --profile dist -p kubewasm` first",
            ),
            Side::missing("native peer", NO_PEER),
        ),
    };
    figures.push(dist_figure);
    Ok(figures)
}

/// The Cargo profile a binary in `target/<profile>/` was built with (the folder's name).
fn profile_of(bin: &Path) -> String {
    bin.parent().and_then(Path::file_name).map_or_else(
        || "unknown".to_owned(),
        |p| p.to_string_lossy().into_owned(),
    )
}

/// "before" or "after" (with the gap), comparing the dist build's time with the run binary's.
fn relative_age(dist: Option<SystemTime>, run: Option<SystemTime>) -> String {
    let (Some(dist), Some(run)) = (dist, run) else {
        return "at an unknown time relative to".to_owned();
    };
    match run.duration_since(dist) {
        Ok(gap) => format!("{} min before", gap.as_secs() / 60),
        Err(e) => format!("{} min after", e.duration().as_secs() / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_is_the_folder_the_binary_is_in() {
        assert_eq!(profile_of(Path::new("target/release/kubewasm")), "release");
        assert_eq!(profile_of(Path::new("target/dist/kubewasm")), "dist");
    }

    #[test]
    fn the_dist_build_is_dated_against_the_run_binary() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(10_000);
        let hour = std::time::Duration::from_secs(3600);
        assert_eq!(relative_age(Some(t), Some(t + hour)), "60 min before");
        assert_eq!(relative_age(Some(t + hour), Some(t)), "60 min after");
        assert!(relative_age(None, Some(t)).contains("unknown"));
    }
}
