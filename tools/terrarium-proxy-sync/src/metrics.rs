//! The metrics file of each sync (docs/metrics.md): `terrarium_proxy_sync.prom` in
//! node-exporter's textfile directory, rewritten by every sync that is not a dry run,
//! the watch mode's included.

use terrarium_common::metrics::{LAST_SUCCESS, Metrics, Run, previous_value, record_run};
use terrarium_common::{Config, Exit, Paths};

use crate::sync::Outcome;

const JOB: &str = "terrarium_proxy_sync";

/// The families of a sync that ended in `outcome` (none when it failed: what is live
/// is then unknown, as in the run report). Pure.
pub fn families(outcome: Option<&Outcome>, run: &Run, previous_success: Option<f64>) -> Metrics {
    let mut metrics = Metrics::new();
    record_run(&mut metrics, JOB, &[], run, previous_success);
    if let Some(outcome) = outcome {
        let published = outcome.plan.http.len() + outcome.plan.ports.len();
        metrics
            .gauge(
                "terrarium_proxy_sync_routes",
                "Rules of user.proxy labels after the last successful sync: published (HTTP routes and TCP/UDP ports) or rejected.",
            )
            .with(&[("state", "published")], published as f64)
            .with(&[("state", "rejected")], outcome.plan.rejected.len() as f64);
    }
    metrics
}

/// Write the file for a sync that ended in `result` after `seconds`. A sync counts as
/// a success when it applied the plan: rules it rejected (exit 3) are the labels'
/// problem, shown in `terrarium_proxy_sync_routes{state="rejected"}`, not a failed sync.
/// Without a config (it could not be loaded) nothing is written: where to is in it.
pub fn publish(paths: &Paths, config: Option<&Config>, result: &anyhow::Result<Outcome>, seconds: f64) {
    let Some(dir) = config.and_then(|c| c.metrics.textfile_dir()) else {
        return;
    };
    let path = paths.metrics_file(dir, JOB);
    let previous = previous_value(&path, &format!("{JOB}{LAST_SUCCESS}"), &[]);
    let exit = match result {
        Ok(outcome) => outcome.exit,
        Err(err) => Exit::classify(err.chain()),
    };
    let run = Run { finished_at: time::OffsetDateTime::now_utc(), seconds, exit, success: result.is_ok() };
    terrarium_common::metrics::publish(&path, &families(result.as_ref().ok(), &run, previous));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::plan::{Plan, PortRoute, Problem};
    use terrarium_common::metrics::{parse, render};

    fn run(success: bool) -> Run {
        let exit = if success { Exit::Partial } else { Exit::Failure };
        Run {
            finished_at: time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(500),
            seconds: 0.25,
            exit,
            success,
        }
    }

    #[test]
    fn published_and_rejected_rules_are_counted_and_a_failure_keeps_the_last_success() {
        let mut plan = Plan::default();
        plan.ports.push(PortRoute {
            name: "db-tcp-5433".into(),
            instance: "db".into(),
            rule: "tcp://5433:5432".into(),
            protocol: crate::label::Protocol::Tcp,
            host_port: 5433,
            target: "10.0.0.2:5432".into(),
        });
        let problem = Problem { instance: "web".into(), rule: "x".into(), problem: "p".into(), fix: "f".into() };
        plan.rejected = vec![problem.clone(), problem];
        let outcome = Outcome {
            dry_run: false,
            files: Vec::new(),
            firewall: Default::default(),
            restarts: Vec::new(),
            restarts_owed: Vec::new(),
            secrets_created: Vec::new(),
            plan,
            exit: Exit::Partial,
        };
        let text = render(&families(Some(&outcome), &run(true), Some(1.0)));
        let samples = parse(&text).unwrap();
        let value = |name: &str, labels: &[(String, String)]| {
            samples.iter().find(|s| s.name == name && s.labels == labels).map(|s| s.value)
        };
        let state = |s: &str| vec![("state".to_string(), s.to_string())];
        assert_eq!(value("terrarium_proxy_sync_routes", &state("published")), Some(1.0), "{text}");
        assert_eq!(value("terrarium_proxy_sync_routes", &state("rejected")), Some(2.0), "{text}");
        assert_eq!(
            value("terrarium_proxy_sync_last_run_success", &[]),
            Some(1.0),
            "rejected rules are not a failed sync"
        );
        assert_eq!(value("terrarium_proxy_sync_last_run_exit_code", &[]), Some(3.0));
        assert_eq!(value("terrarium_proxy_sync_last_success_timestamp_seconds", &[]), Some(500.0));

        let failed = render(&families(None, &run(false), Some(500.0)));
        assert!(failed.contains("terrarium_proxy_sync_last_success_timestamp_seconds 500\n"), "{failed}");
        assert!(failed.contains("terrarium_proxy_sync_last_run_success 0\n"), "{failed}");
        assert!(!failed.contains("terrarium_proxy_sync_routes"), "unknown after a failed sync: {failed}");

        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/metrics.md")).unwrap();
        for name in samples.iter().map(|s| s.name.as_str()) {
            assert!(docs.contains(&format!("| `{name}` |")), "{name} is missing from docs/metrics.md");
        }
    }
}
