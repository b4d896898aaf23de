//! Reading what a tool run with `TERRARIUM_TEST_KILLPOINTS=FILE` recorded: the kill
//! points it passed (see `terrarium_common::killpoint`), so each harness discovers the
//! points of a normal run instead of keeping a list that drifts from the code.

use std::path::Path;

/// The points recorded in `record`, in the order first passed, each once (a point
/// inside a loop is passed more than once). Empty when the file does not exist.
pub fn passed(record: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(record).unwrap_or_default();
    let mut points: Vec<String> = Vec::new();
    for point in text.lines().filter(|line| !line.is_empty()) {
        if !points.iter().any(|p| p == point) {
            points.push(point.to_string());
        }
    }
    points
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn points_come_in_first_passed_order_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("points");
        assert!(passed(&record).is_empty());
        std::fs::write(&record, "a.one\na.two\na.one\n\na.three\n").unwrap();
        assert_eq!(passed(&record), ["a.one", "a.two", "a.three"]);
    }
}
