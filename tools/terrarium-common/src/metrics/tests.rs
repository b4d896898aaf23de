use super::*;

fn sample_metrics() -> Metrics {
    let mut metrics = Metrics::new();
    // Recorded out of order: the output is sorted all the same.
    metrics
        .gauge("terrarium_x_bytes", "Bytes sent.")
        .with(&[("instance", "web")], 2048.0)
        .with(&[("instance", "db")], 0.0);
    metrics.gauge("terrarium_x_last_run_success", "Whether it worked.").set(1.0);
    metrics
}

#[test]
fn families_render_sorted_with_help_and_type_once() {
    let text = render(&sample_metrics());
    assert_eq!(
        text,
        "# HELP terrarium_x_bytes Bytes sent.\n\
         # TYPE terrarium_x_bytes gauge\n\
         terrarium_x_bytes{instance=\"db\"} 0\n\
         terrarium_x_bytes{instance=\"web\"} 2048\n\
         # HELP terrarium_x_last_run_success Whether it worked.\n\
         # TYPE terrarium_x_last_run_success gauge\n\
         terrarium_x_last_run_success 1\n"
    );
    // Recording the same families in another order changes nothing.
    let mut other = Metrics::new();
    other.gauge("terrarium_x_last_run_success", "Whether it worked.").set(1.0);
    other.gauge("terrarium_x_bytes", "Bytes sent.").with(&[("instance", "web")], 2048.0);
    other.gauge("terrarium_x_bytes", "ignored: the first help stays").with(&[("instance", "db")], 0.0);
    assert_eq!(render(&other), text);
    parse(&text).unwrap();
}

#[test]
fn label_values_and_help_are_escaped_and_read_back() {
    let mut metrics = Metrics::new();
    let hostile = "a\\b\"c\nd}e,f=\"g";
    metrics.gauge("terrarium_t", "Line one\nline two \\ done.").with(&[("instance", hostile), ("kind", "")], 1.5);
    let text = render(&metrics);
    assert!(text.contains(r#"# HELP terrarium_t Line one\nline two \\ done."#), "{text}");
    assert!(text.contains(r#"terrarium_t{instance="a\\b\"c\nd}e,f=\"g",kind=""} 1.5"#), "{text}");
    assert_eq!(text.lines().count(), 3, "no raw newline may reach the file: {text}");
    let samples = parse(&text).unwrap();
    assert_eq!(
        samples,
        [Sample {
            name: "terrarium_t".into(),
            labels: vec![("instance".into(), hostile.into()), ("kind".into(), String::new())],
            value: 1.5
        }]
    );
}

#[test]
fn special_and_large_values_use_the_formats_spelling() {
    assert_eq!(format_value(f64::NAN), "NaN");
    assert_eq!(format_value(f64::INFINITY), "+Inf");
    assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    assert_eq!(format_value(1_765_000_000.25), "1765000000.25");
    assert_eq!(format_value(-3.0), "-3");
    let mut metrics = Metrics::new();
    metrics.gauge("terrarium_v", "v").with(&[("k", "a")], f64::NAN).with(&[("k", "b")], 1e21);
    let samples = parse(&render(&metrics)).unwrap();
    assert!(samples[0].value.is_nan());
    assert_eq!(samples[1].value, 1e21);
}

#[test]
fn the_reader_refuses_what_breaks_the_grammar() {
    let good = "# HELP a_b x\n# TYPE a_b gauge\na_b{l=\"v\"} 1\n";
    parse(good).unwrap();
    parse("").unwrap();
    for (bad, why) in [
        ("a_b 1", "no final newline"),
        ("# TYPE a_b gauge\n# TYPE a_b gauge\na_b 1\n", "TYPE twice"),
        ("# HELP a_b x\n# HELP a_b y\na_b 1\n", "HELP twice"),
        ("a_b 1\n# TYPE a_b gauge\n", "TYPE after samples"),
        ("# TYPE a_b gauge\na_b 1\nc 2\na_b{x=\"1\"} 3\n", "family split"),
        ("a_b 1\na_b 2\n", "same series twice"),
        ("a-b 1\n", "bad metric name"),
        ("1a 1\n", "bad metric name start"),
        ("a{1l=\"v\"} 1\n", "bad label name"),
        ("a{__l=\"v\"} 1\n", "reserved label name"),
        ("a{l=\"v\",} 1\n", "trailing comma"),
        ("a{l=\"v\" m=\"w\"} 1\n", "no comma"),
        ("a{l=\"v\",l=\"w\"} 1\n", "label twice"),
        ("a{l=\"v\\t\"} 1\n", "bad escape"),
        ("a{l=\"v} 1\n", "unclosed quote"),
        ("a{l=v} 1\n", "unquoted value"),
        ("a one\n", "not a number"),
        ("a inf\n", "Rust's spelling of infinity"),
        ("a 1 1700000000\n", "timestamp"),
        ("a  1\n", "two spaces"),
        ("a\n", "no value"),
        ("# TYPE a gauges\na 1\n", "unknown type"),
        ("# HELP a bad \\t escape\na 1\n", "bad HELP escape"),
    ] {
        assert!(parse(bad).is_err(), "{why}: {bad:?} was accepted");
    }
}

#[test]
fn every_name_the_renderer_accepts_is_valid() {
    assert!(is_metric_name("terrarium_backup_last_run_success"));
    assert!(is_metric_name("a:b_c"));
    for bad in ["", "9a", "a-b", "a b", "ä"] {
        assert!(!is_metric_name(bad), "{bad}");
    }
    assert!(is_label_name("instance"));
    for bad in ["", "__name__", "a:b", "1a"] {
        assert!(!is_label_name(bad), "{bad}");
    }
}

fn run(success: bool, at: i64) -> Run {
    Run {
        finished_at: time::OffsetDateTime::from_unix_timestamp(at).unwrap(),
        seconds: 2.5,
        exit: if success { crate::Exit::Success } else { crate::Exit::Failure },
        success,
    }
}

#[test]
fn a_failed_run_keeps_the_last_success_and_a_first_failure_has_none() {
    let labels = [("command", "export")];
    let mut ok = Metrics::new();
    record_run(&mut ok, "terrarium_t", &labels, &run(true, 1000), Some(10.0));
    let text = render(&ok);
    parse(&text).unwrap();
    assert!(text.contains("terrarium_t_last_success_timestamp_seconds{command=\"export\"} 1000\n"), "{text}");
    assert!(text.contains("terrarium_t_last_run_success{command=\"export\"} 1\n"), "{text}");
    assert!(text.contains("terrarium_t_last_run_duration_seconds{command=\"export\"} 2.5\n"), "{text}");
    assert!(text.contains("terrarium_t_last_run_exit_code{command=\"export\"} 0\n"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.prom");
    assert_eq!(write_textfile(&path, &text).unwrap(), Written::Wrote(path.clone()));
    let previous = previous_value(&path, &format!("terrarium_t{LAST_SUCCESS}"), &labels);
    assert_eq!(previous, Some(1000.0));
    assert_eq!(previous_value(&path, &format!("terrarium_t{LAST_SUCCESS}"), &[]), None, "labels must match");

    let mut failed = Metrics::new();
    record_run(&mut failed, "terrarium_t", &labels, &run(false, 2000), previous);
    let text = render(&failed);
    assert!(text.contains("terrarium_t_last_success_timestamp_seconds{command=\"export\"} 1000\n"), "{text}");
    assert!(text.contains("terrarium_t_last_run_success{command=\"export\"} 0\n"), "{text}");
    assert!(text.contains("terrarium_t_last_run_timestamp_seconds{command=\"export\"} 2000\n"), "{text}");
    assert!(text.contains("terrarium_t_last_run_exit_code{command=\"export\"} 1\n"), "{text}");

    let mut first = Metrics::new();
    record_run(&mut first, "terrarium_t", &labels, &run(false, 2000), None);
    assert!(!render(&first).contains(LAST_SUCCESS), "never succeeded: no time to give");
}

#[test]
fn a_missing_directory_is_left_alone_and_the_write_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("node-exporter/t.prom");
    assert_eq!(write_textfile(&missing, "x 1\n").unwrap(), Written::NoDirectory(dir.path().join("node-exporter")));
    assert!(!dir.path().join("node-exporter").exists(), "the directory must not be created");
    publish(&missing, &sample_metrics());
    assert!(!dir.path().join("node-exporter").exists());

    let path = dir.path().join("t.prom");
    publish(&path, &sample_metrics());
    publish(&path, &sample_metrics());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), render(&sample_metrics()));
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["t.prom"], "a temp file was left behind");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644, "node-exporter must read it");
    // Garbage where the previous file was: nothing is read back from it.
    std::fs::write(&path, "not metrics at all\n").unwrap();
    assert_eq!(previous_value(&path, "x", &[]), None);
}
