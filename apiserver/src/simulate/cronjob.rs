//! The CronJob controller: at each time its `schedule` (standard five-field cron, or `@hourly` and
//! friends, in UTC) names, a Job `{name}-{minutes since the epoch}` from the job template, within the
//! concurrency policy and starting deadline; `status.active`, `lastScheduleTime` and
//! `lastSuccessfulTime`; finished Jobs beyond the history limits are deleted.

use std::time::{Duration, Instant};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use super::{CONTROLLER_MANAGER, Ctx, by_controller, condition, controller_ref, int};
use crate::object::{is_deleting, meta_str};

const SCHEDULED_AT: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// A parsed cron schedule: the allowed values of each field.
#[derive(Debug, PartialEq)]
pub(super) struct Schedule {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    /// Whether a day must match day-of-month *and* day-of-week (one of them is `*`), or either.
    both_days: bool,
}

/// Parses one field (`*`, `*/n`, `a`, `a-b`, `a-b/n`, lists, month and weekday names).
fn field(text: &str, min: u32, max: u32, names: &[&str]) -> Result<Vec<bool>, String> {
    let mut allowed = vec![false; max as usize + 1];
    let value = |s: &str| -> Result<u32, String> {
        let upper = s.to_ascii_uppercase();
        if let Some(i) = names.iter().position(|n| *n == upper) {
            return Ok(min + u32::try_from(i).unwrap_or(0));
        }
        s.parse::<u32>()
            .map_err(|_| format!("{s:?} is not a number"))
    };
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .map_err(|_| format!("bad step in {part:?}"))?,
            ),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("zero step in {part:?}"));
        }
        let (lo, hi) = match range {
            "*" | "?" => (min, max),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if part.contains('/') => (value(r)?, max),
                None => {
                    let v = value(r)?;
                    (v, v)
                }
            },
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{part:?} is outside {min}-{max}"));
        }
        let mut v = lo;
        while v <= hi {
            allowed[v as usize] = true;
            v += step;
        }
    }
    Ok(allowed)
}

impl Schedule {
    /// Parses a CronJob's `spec.schedule`.
    ///
    /// # Errors
    /// A message saying what is wrong with it.
    pub(super) fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let text = text
            .strip_prefix("TZ=")
            .or_else(|| text.strip_prefix("CRON_TZ="))
            .and_then(|rest| rest.split_once(' ').map(|(_, s)| s.trim()))
            .unwrap_or(text);
        let expanded = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = parts.as_slice() else {
            return Err(format!(
                "expected 5 fields, found {}: {text:?}",
                parts.len()
            ));
        };
        const MONTHS: &[&str] = &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ];
        const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
        let mut weekdays = field(dow, 0, 7, DAYS)?;
        if weekdays[7] {
            weekdays[0] = true;
        }
        Ok(Schedule {
            minutes: field(minute, 0, 59, &[])?,
            hours: field(hour, 0, 23, &[])?,
            days: field(dom, 1, 31, &[])?,
            months: field(month, 1, 12, MONTHS)?,
            weekdays,
            both_days: dom.starts_with('*') || dow.starts_with('*'),
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = self.days[date.day() as usize];
        let dow = self.weekdays[usize::from(date.weekday().to_sunday_zero_offset() as u8)];
        if self.both_days {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first scheduled time strictly after `after` (seconds since the epoch, UTC), within 5 years.
    pub(super) fn next(&self, after: i64) -> Option<i64> {
        let mut t = after - after.rem_euclid(60) + 60;
        let limit = after + 5 * 366 * 86_400;
        while t <= limit {
            let dt = jiff::Timestamp::from_second(t)
                .ok()?
                .to_zoned(TimeZone::UTC);
            let date = dt.date();
            if !self.months[date.month() as usize] {
                let (y, m) = if date.month() == 12 {
                    (date.year() + 1, 1)
                } else {
                    (date.year(), date.month() + 1)
                };
                t = Date::new(y, m, 1)
                    .ok()?
                    .to_zoned(TimeZone::UTC)
                    .ok()?
                    .timestamp()
                    .as_second();
                continue;
            }
            if !self.day_matches(date) {
                t = t - t.rem_euclid(86_400) + 86_400;
                continue;
            }
            if !self.hours[dt.hour() as usize] {
                t = t - t.rem_euclid(3600) + 3600;
                continue;
            }
            if !self.minutes[dt.minute() as usize] {
                t += 60;
                continue;
            }
            return Some(t);
        }
        None
    }
}

fn seconds(v: Option<&Value>) -> Option<i64> {
    v?.as_str()?
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

fn rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn job_finished(job: &Value) -> Option<&'static str> {
    ["Complete", "Failed"]
        .into_iter()
        .find(|k| condition(job, k).is_some_and(|c| c["status"] == "True"))
}

pub(super) fn sync_all(ctx: &Ctx) {
    let (Some(ty), Some(jobs_ty)) = (
        ctx.ty("batch", "v1", "cronjobs"),
        ctx.ty("batch", "v1", "jobs"),
    ) else {
        return;
    };
    let cronjobs = ctx.list(&ty, None);
    if cronjobs.is_empty() {
        return;
    }
    let mut owned = by_controller(ctx.list(&jobs_ty, None));
    for cj in &cronjobs {
        let jobs = owned.remove(meta_str(cj, "uid")).unwrap_or_default();
        if !is_deleting(cj) {
            sync(ctx, cj, &jobs);
        }
    }
}

fn sync(ctx: &Ctx, cj: &Value, jobs: &[Value]) {
    let (Some(ty), Some(jobs_ty)) = (
        ctx.ty("batch", "v1", "cronjobs"),
        ctx.ty("batch", "v1", "jobs"),
    ) else {
        return;
    };
    let (ns, name) = (meta_str(cj, "namespace"), meta_str(cj, "name"));
    let Ok(schedule) = Schedule::parse(
        cj.pointer("/spec/schedule")
            .and_then(Value::as_str)
            .unwrap_or(""),
    ) else {
        return;
    };
    let now = jiff::Timestamp::now().as_second();
    let mut active: Vec<&Value> = jobs
        .iter()
        .filter(|j| job_finished(j).is_none() && !is_deleting(j))
        .collect();
    let last_success = jobs
        .iter()
        .filter(|j| job_finished(j) == Some("Complete"))
        .filter_map(|j| seconds(j.pointer("/status/completionTime")))
        .max();
    let suspended = cj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    let last = seconds(cj.pointer("/status/lastScheduleTime"))
        .or_else(|| seconds(cj.pointer("/metadata/creationTimestamp")))
        .unwrap_or(now);
    // The most recent missed schedule (older ones are skipped, as the controller does).
    let mut due = None;
    let mut t = last;
    while let Some(n) = schedule.next(t) {
        if n > now {
            break;
        }
        due = Some(n);
        t = n;
    }
    let mut scheduled = None;
    if let Some(at) = due.filter(|_| !suspended) {
        let deadline = cj
            .pointer("/spec/startingDeadlineSeconds")
            .and_then(Value::as_i64);
        let too_late = deadline.is_some_and(|d| now - at > d);
        let policy = cj
            .pointer("/spec/concurrencyPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Allow");
        let forbidden = policy == "Forbid" && !active.is_empty();
        if !too_late && !forbidden {
            if policy == "Replace" {
                for j in active.drain(..) {
                    let _ = ctx.delete(&jobs_ty, ns, meta_str(j, "name"), meta_str(j, "uid"));
                }
            }
            let template = cj
                .pointer("/spec/jobTemplate")
                .cloned()
                .unwrap_or(json!({}));
            let mut meta = json!({
                "name": format!("{name}-{}", at / 60),
                "namespace": ns,
                "ownerReferences": [controller_ref(cj, "batch/v1", "CronJob")],
            });
            if let Some(l) = template.pointer("/metadata/labels") {
                meta["labels"] = l.clone();
            }
            let mut annotations = template
                .pointer("/metadata/annotations")
                .cloned()
                .unwrap_or(json!({}));
            annotations[SCHEDULED_AT] = json!(rfc3339(at));
            meta["annotations"] = annotations;
            let job = json!({
                "apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                "spec": template.get("spec").cloned().unwrap_or(json!({})),
            });
            if let Some(created) = ctx.create(&jobs_ty, ns, job, CONTROLLER_MANAGER) {
                let message = format!("Created job {}", meta_str(&created, "name"));
                ctx.record(
                    cj,
                    "Normal",
                    "SuccessfulCreate",
                    &message,
                    "cronjob-controller",
                    None,
                );
            }
        }
        // A run that Forbid held back stays due: it starts once the running Job finishes.
        if !forbidden {
            scheduled = Some(at);
        }
    }
    if let Some(next) = schedule.next(due.unwrap_or(last).max(now)) {
        ctx.wake_at(Instant::now() + Duration::from_secs(u64::try_from(next - now).unwrap_or(1)));
    }
    prune(ctx, cj, jobs);
    // Re-read the active Jobs (one may have just been made) for the status.
    let current: Vec<Value> = ctx
        .list(&jobs_ty, Some(ns))
        .into_iter()
        .filter(|j| {
            super::controller_uid(j) == Some(meta_str(cj, "uid"))
                && job_finished(j).is_none()
                && !is_deleting(j)
        })
        .collect();
    let refs: Vec<Value> = current
        .iter()
        .map(|j| json!({"apiVersion": "batch/v1", "kind": "Job", "name": meta_str(j, "name"), "namespace": ns, "uid": meta_str(j, "uid"), "resourceVersion": meta_str(j, "resourceVersion")}))
        .collect();
    ctx.update_status(&ty, ns, name, CONTROLLER_MANAGER, |o| {
        let mut status = o
            .get("status")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or(json!({}));
        if let Some(s) = status.as_object_mut() {
            if refs.is_empty() {
                s.remove("active");
            } else {
                s.insert("active".into(), json!(refs));
            }
            if let Some(at) = scheduled {
                s.insert("lastScheduleTime".into(), json!(rfc3339(at)));
            }
            if let Some(t) = last_success {
                s.insert("lastSuccessfulTime".into(), json!(rfc3339(t)));
            }
        }
        o["status"] = status;
    });
}

/// Deletes the oldest finished Jobs beyond `successfulJobsHistoryLimit` (3) and `failedJobsHistoryLimit` (1).
fn prune(ctx: &Ctx, cj: &Value, jobs: &[Value]) {
    let Some(jobs_ty) = ctx.ty("batch", "v1", "jobs") else {
        return;
    };
    for (outcome, key, default) in [
        ("Complete", "successfulJobsHistoryLimit", 3),
        ("Failed", "failedJobsHistoryLimit", 1),
    ] {
        let limit = cj
            .pointer(&format!("/spec/{key}"))
            .and_then(Value::as_i64)
            .unwrap_or(default)
            .max(0);
        let mut done: Vec<&Value> = jobs
            .iter()
            .filter(|j| job_finished(j) == Some(outcome) && !is_deleting(j))
            .collect();
        done.sort_by_key(|j| {
            (
                meta_str(j, "creationTimestamp").to_string(),
                int(j, "/metadata/generation"),
            )
        });
        let surplus = done
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        for j in done.into_iter().take(surplus) {
            let _ = ctx.delete(
                &jobs_ty,
                meta_str(j, "namespace"),
                meta_str(j, "name"),
                meta_str(j, "uid"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().expect("time").as_second()
    }

    #[test]
    fn schedules_find_the_next_matching_minute() {
        let every_minute = Schedule::parse("* * * * *").expect("parse");
        assert_eq!(
            every_minute.next(at("2026-01-01T00:00:30Z")),
            Some(at("2026-01-01T00:01:00Z"))
        );
        let quarter = Schedule::parse("*/15 9-17 * * MON-FRI").expect("parse");
        // 2026-01-03 is a Saturday: the next is Monday 09:00.
        assert_eq!(
            quarter.next(at("2026-01-02T17:50:00Z")),
            Some(at("2026-01-05T09:00:00Z"))
        );
        let yearly = Schedule::parse("@yearly").expect("parse");
        assert_eq!(
            yearly.next(at("2026-03-01T00:00:00Z")),
            Some(at("2027-01-01T00:00:00Z"))
        );
        let either = Schedule::parse("0 0 13 * 5").expect("parse");
        // Day 13 or any Friday: 2026-02-06 is a Friday, before the 13th.
        assert_eq!(
            either.next(at("2026-02-01T00:00:00Z")),
            Some(at("2026-02-06T00:00:00Z"))
        );
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert!(Schedule::parse("* * * *").is_err());
        assert!(Schedule::parse("61 * * * *").is_err());
        assert!(Schedule::parse("*/0 * * * *").is_err());
    }
}
