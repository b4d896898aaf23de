//! LXD instance names, as flags and labels name them. Pure.

/// A valid LXD instance name: letters, digits and `-`, starting with a letter, at most
/// 63 characters (LXD's rule; it also keeps names safe inside dataset names).
pub fn check_name(flag: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{flag} `{name}` is not a valid instance name; use letters, digits and `-`, starting with a letter (at most 63)"
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_are_checked() {
        assert!(check_name("--instance", "web-1").is_ok());
        for bad in ["", "1web", "web/x", "web@s", "-web", "web-", "we b", &"a".repeat(64)] {
            let err = check_name("--instance", bad).unwrap_err();
            assert!(err.starts_with(&format!("--instance `{bad}`")), "{err}");
        }
    }
}
