//! `terrarium-backup sanoid-config`: write /etc/sanoid/sanoid.conf.

use serde::Serialize;
use terrarium_common::Exit;
use terrarium_common::fs::write_if_changed;
use terrarium_common::locks;
use terrarium_common::output::print_json;

use crate::context::Context;

#[derive(Debug, Serialize)]
struct Report {
    path: String,
    changed: bool,
    dry_run: bool,
}

pub fn run(ctx: &Context, dry_run: bool) -> anyhow::Result<Exit> {
    // Ansible and an operator may run this at once; a dry run writes nothing.
    let _lock = if dry_run { None } else { Some(locks::SANOID_CONFIG.acquire(&ctx.paths, "sanoid-config")?) };
    let text = crate::sanoid::render(ctx.pool(), &ctx.config.backup.local_retention);
    let path = ctx.paths.sanoid_conf();
    let changed = if dry_run {
        std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str())
    } else {
        write_if_changed(&path, text.as_bytes(), 0o644)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?
    };
    if ctx.json {
        print_json(&Report { path: path.display().to_string(), changed, dry_run })?;
    } else if dry_run {
        print!("{text}");
        eprintln!("{} {}", path.display(), if changed { "would change" } else { "is up to date" });
    } else {
        log::info!(path = path.display().to_string(), changed = changed; "sanoid config {}", if changed { "written" } else { "up to date" });
    }
    Ok(Exit::Success)
}
