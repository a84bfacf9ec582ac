//! The Job controller: Pods up to `parallelism` until `completions` have succeeded (Indexed Jobs get
//! one Pod per index), then the `SuccessCriteriaMet` and `Complete` conditions and `completionTime`;
//! `suspend` is honoured and a finished Job with `ttlSecondsAfterFinished` is deleted when it expires.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::pods::{is_active, is_ready, phase};
use super::{
    CONTROLLER_MANAGER, Ctx, by_controller, condition, controller_ref, int, pod_from_template,
    set_label,
};
use crate::object::{is_deleting, meta_str, now_rfc3339};

const INDEX: &str = "batch.kubernetes.io/job-completion-index";

pub(super) fn sync_all(ctx: &Ctx) {
    let (Some(ty), Some(pods_ty)) = (ctx.ty("batch", "v1", "jobs"), ctx.ty("", "v1", "pods"))
    else {
        return;
    };
    let jobs = ctx.list(&ty, None);
    if jobs.is_empty() {
        return;
    }
    let mut owned = by_controller(ctx.list(&pods_ty, None));
    for job in &jobs {
        let pods = owned.remove(meta_str(job, "uid")).unwrap_or_default();
        if !is_deleting(job) {
            sync(ctx, job, &pods);
        }
    }
}

fn finished(job: &Value) -> bool {
    ["Complete", "Failed"]
        .iter()
        .any(|k| condition(job, k).is_some_and(|c| c["status"] == "True"))
}

fn sync(ctx: &Ctx, job: &Value, pods: &[Value]) {
    let (Some(ty), Some(pods_ty)) = (ctx.ty("batch", "v1", "jobs"), ctx.ty("", "v1", "pods"))
    else {
        return;
    };
    let (ns, name, uid) = (
        meta_str(job, "namespace"),
        meta_str(job, "name"),
        meta_str(job, "uid"),
    );
    if finished(job) {
        expire(ctx, job);
        return;
    }
    let suspended = job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    let active: Vec<&Value> = pods.iter().filter(|p| is_active(p)).collect();
    let succeeded_pods: Vec<&Value> = pods.iter().filter(|p| phase(p) == "Succeeded").collect();
    let succeeded = (succeeded_pods.len() as i64).max(int(job, "/status/succeeded"));
    let failed = pods.iter().filter(|p| phase(p) == "Failed").count() as i64;
    let parallelism = job
        .pointer("/spec/parallelism")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0);
    let completions = job.pointer("/spec/completions").and_then(Value::as_i64);
    let indexed = job.pointer("/spec/completionMode").and_then(Value::as_str) == Some("Indexed");
    let complete = match completions {
        Some(c) => succeeded >= c,
        None => succeeded > 0 && active.is_empty(),
    };
    if suspended {
        for pod in &active {
            let _ = ctx.delete(&pods_ty, ns, meta_str(pod, "name"), meta_str(pod, "uid"));
        }
    } else if !complete {
        let remaining = match completions {
            Some(c) => c - succeeded - active.len() as i64,
            None if succeeded > 0 => 0,
            None => parallelism - active.len() as i64,
        };
        let want = remaining.min(parallelism - active.len() as i64).max(0);
        let template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let mut taken: HashSet<String> = active
            .iter()
            .chain(succeeded_pods.iter())
            .filter_map(|p| {
                p.pointer(&format!(
                    "/metadata/annotations/{}",
                    INDEX.replace('/', "~1")
                ))
            })
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        for _ in 0..want {
            let mut prefix = format!("{name}-");
            let mut pod = pod_from_template(
                &template,
                ns,
                None,
                &prefix,
                controller_ref(job, "batch/v1", "Job"),
            );
            for (k, v) in [
                ("batch.kubernetes.io/controller-uid", uid),
                ("batch.kubernetes.io/job-name", name),
                ("controller-uid", uid),
                ("job-name", name),
            ] {
                if pod
                    .pointer(&format!("/metadata/labels/{}", k.replace('/', "~1")))
                    .is_none()
                {
                    set_label(&mut pod, k, v);
                }
            }
            if indexed {
                let Some(index) = (0..completions.unwrap_or(0))
                    .map(|i| i.to_string())
                    .find(|i| !taken.contains(i))
                else {
                    break;
                };
                taken.insert(index.clone());
                prefix = format!("{name}-{index}-");
                pod["metadata"]["generateName"] = json!(prefix);
                pod["metadata"]["annotations"][INDEX] = json!(index);
                set_label(&mut pod, INDEX, &index);
                pod["spec"]["hostname"] = json!(format!("{name}-{index}"));
            }
            if let Some(created) = ctx.create(&pods_ty, ns, pod, CONTROLLER_MANAGER) {
                let message = format!("Created pod: {}", meta_str(&created, "name"));
                ctx.record(
                    job,
                    "Normal",
                    "SuccessfulCreate",
                    &message,
                    "job-controller",
                    None,
                );
            }
        }
    }
    if complete {
        ctx.record(
            job,
            "Normal",
            "Completed",
            "Job completed",
            "job-controller",
            None,
        );
    }
    let ready = active.iter().filter(|p| is_ready(p)).count();
    let now = now_rfc3339();
    ctx.update_status(&ty, ns, name, CONTROLLER_MANAGER, |o| {
        let mut status = o.get("status").cloned().filter(Value::is_object).unwrap_or(json!({}));
        if !suspended && status.get("startTime").is_none() {
            status["startTime"] = json!(now);
        }
        status["ready"] = json!(ready);
        status["terminating"] = json!(0);
        status["uncountedTerminatedPods"] = json!({});
        if let Some(s) = status.as_object_mut() {
            for (k, v) in [("active", active.len() as i64), ("succeeded", succeeded), ("failed", failed)] {
                if v > 0 && !(complete && k == "active") {
                    s.insert(k.into(), json!(v));
                } else {
                    s.remove(k);
                }
            }
        }
        if indexed {
            let mut done: Vec<i64> = succeeded_pods
                .iter()
                .filter_map(|p| p.pointer(&format!("/metadata/annotations/{}", INDEX.replace('/', "~1"))))
                .filter_map(|v| v.as_str()?.parse().ok())
                .collect();
            done.sort_unstable();
            done.dedup();
            if !done.is_empty() {
                status["completedIndexes"] = json!(ranges(&done));
            }
        }
        let stamps = ["lastProbeTime", "lastTransitionTime"];
        let suspended_cond = if suspended {
            Some(json!({"type": "Suspended", "status": "True", "reason": "JobSuspended", "message": "Job suspended"}))
        } else if condition(o, "Suspended").is_some() {
            Some(json!({"type": "Suspended", "status": "False", "reason": "JobResumed", "message": "Job resumed"}))
        } else {
            None
        };
        if let Some(c) = suspended_cond {
            super::set_condition(&mut status, c, &stamps);
        }
        if complete {
            for kind in ["SuccessCriteriaMet", "Complete"] {
                super::set_condition(
                    &mut status,
                    json!({"type": kind, "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"}),
                    &stamps,
                );
            }
            status["completionTime"] = json!(now);
        }
        o["status"] = status;
    });
}

/// Indexes as kube writes `completedIndexes`: "0-2,5".
fn ranges(sorted: &[i64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// The TTL-after-finished controller: a finished Job with `ttlSecondsAfterFinished` is deleted (with
/// its Pods, in the background) once that many seconds passed since it finished.
fn expire(ctx: &Ctx, job: &Value) {
    let Some(ttl) = job
        .pointer("/spec/ttlSecondsAfterFinished")
        .and_then(Value::as_i64)
    else {
        return;
    };
    let Some(ty) = ctx.ty("batch", "v1", "jobs") else {
        return;
    };
    let finished_at = job
        .pointer("/status/completionTime")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or(0, |t| t.as_second());
    let left = finished_at + ttl - jiff::Timestamp::now().as_second();
    if left > 0 {
        ctx.wake_at(Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(1)));
        return;
    }
    let _ = ctx.delete(
        &ty,
        meta_str(job, "namespace"),
        meta_str(job, "name"),
        meta_str(job, "uid"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes_are_written_as_ranges() {
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(ranges(&[3]), "3");
    }
}
