//! What the sandbox did and how long each step took, printed as it goes and summed up
//! at the end.

use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Journal {
    steps: Vec<(String, Duration, bool)>,
}

impl Journal {
    /// Run one step, printing its title first and its duration after.
    pub fn step<T>(&mut self, title: &str, work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        println!("\n== {title}");
        let started = Instant::now();
        let result = work();
        let took = started.elapsed();
        self.steps.push((title.to_string(), took, result.is_ok()));
        match &result {
            Ok(_) => println!("   ({:.1} s)", took.as_secs_f64()),
            Err(err) => println!("   FAILED after {:.1} s: {err:#}", took.as_secs_f64()),
        }
        result
    }

    pub fn summary(&self) -> String {
        let mut out = String::from("\nSummary\n");
        let width = self.steps.iter().map(|(t, _, _)| t.len()).max().unwrap_or(0);
        let mut total = Duration::ZERO;
        for (title, took, ok) in &self.steps {
            total += *took;
            out.push_str(&format!(
                "  {} {title:width$}  {:6.1} s\n",
                if *ok { "ok  " } else { "FAIL" },
                took.as_secs_f64()
            ));
        }
        out.push_str(&format!("  {:4} {:width$}  {:6.1} s\n", "", "total", total.as_secs_f64()));
        out
    }

    pub fn all_ok(&self) -> bool {
        self.steps.iter().all(|(_, _, ok)| *ok)
    }
}
