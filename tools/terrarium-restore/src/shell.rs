//! The imperative shell: read the facts, plan, show, confirm, carry out.

use anyhow::Context as _;
use serde::Serialize;
use terrarium_archive::keys::KeyLayout;
use terrarium_archive::remote::{self as bucket, RemoteInstance};
use terrarium_archive::s3::{S3Settings, Store};
use terrarium_archive::seal::Identities;
use terrarium_archive::zfs::Zfs;
use terrarium_common::cli::GlobalArgs;
use terrarium_common::{Config, Exit, locks};

use crate::args::{ListArgs, RestoreArgs, Source};
use crate::at::{RestorePoint, describe, parse_at};
use crate::confirm::{Answer, confirm};
use crate::error::RestoreError;
use crate::execute::{Context, Outcome, clear_owed, execute};
use crate::instance::{self, InstanceState};
use crate::local::{LocalFacts, plan_local};
use crate::names::{asides_of, check_instance_name, container_dataset, staging_dataset, work_parent};
use crate::plan::{Plan, Step};
use crate::remote::{RemoteFacts, plan_remote, restore_points, stamp};
use crate::unfinished::{self, Unfinished};
use crate::{facts, recover};

fn usage(message: String) -> anyhow::Error {
    RestoreError::Usage(message).into()
}

fn open_store(config: &Config, global: &GlobalArgs) -> anyhow::Result<Store> {
    let settings = S3Settings::from_config(config, &global.paths())?;
    Ok(Store::new(&settings)?)
}

/// The keys of `--from-host`, by default this host's (the name its exports use).
fn keys_for(store: &Store, global: &GlobalArgs, from_host: Option<&str>) -> anyhow::Result<KeyLayout> {
    let host = match from_host {
        Some(host) => host.to_string(),
        None => terrarium_archive::keys::host_name(&global.paths())?,
    };
    Ok(store.keys(&host))
}

fn unknown_local(zfs: &Zfs, pool: &str, instance: &str) -> anyhow::Error {
    let known: Vec<String> =
        zfs.container_datasets(pool).map(|d| d.into_iter().map(|c| c.instance).collect()).unwrap_or_default();
    let detail = format!(
        "no dataset {} (instances with datasets: {})",
        container_dataset(pool, instance),
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    );
    RestoreError::UnknownInstance { instance: instance.to_string(), detail }.into()
}

#[derive(Debug, Serialize)]
struct Listing<'a> {
    instance: &'a str,
    source: Source,
    restore_points: Vec<RestorePoint>,
}

pub fn list(global: &GlobalArgs, args: &ListArgs) -> anyhow::Result<Exit> {
    check_instance_name("--instance", &args.instance).map_err(usage)?;
    let config = Config::load(&global.paths())?;
    let pool = &config.storage.pool;
    let mut untrusted = None;
    let points = match args.source {
        Source::Local => {
            let zfs = Zfs::new();
            let dataset = container_dataset(pool, &args.instance);
            if !zfs.exists(&dataset)? {
                return Err(unknown_local(&zfs, pool, &args.instance));
            }
            let mut points = facts::local_points(&zfs, &dataset)?;
            points.sort_by_key(|p| p.createtxg);
            points
        }
        Source::S3 => {
            let store = open_store(&config, global)?;
            let keys = keys_for(&store, global, args.from_host.as_deref())?;
            let found = bucket::load_instance(&store, &keys, &args.instance)?;
            if found.manifests.is_empty() && found.unreadable.is_empty() {
                return Err(unknown_remote(&store, &keys, &args.instance));
            }
            untrusted =
                untrusted_manifests(&found, "they are not listed; `terrarium-backup verify` names every problem");
            restore_points(&found.manifests)
        }
    };
    if global.json {
        terrarium_common::output::print_json(&Listing {
            instance: &args.instance,
            source: args.source,
            restore_points: points,
        })?;
    } else {
        for point in &points {
            println!("{}", describe(point));
        }
    }
    // The points that can be read are shown first; the run still fails (exit 5).
    match untrusted {
        Some(err) => Err(err.into()),
        None => Ok(Exit::Success),
    }
}

/// The manifests of `found` that cannot be trusted, as one error that names each one
/// and says what to do (`advice`); `None` when every manifest was read.
fn untrusted_manifests(found: &RemoteInstance, advice: &str) -> Option<RestoreError> {
    if found.unreadable.is_empty() {
        return None;
    }
    let problems: Vec<&str> = found.unreadable.iter().map(|(_, problem)| problem.as_str()).collect();
    Some(RestoreError::UntrustedManifests {
        instance: found.instance.clone(),
        problems: format!(
            "{} restore point manifest(s) in S3 cannot be trusted: {}",
            problems.len(),
            problems.join("; ")
        ),
        advice: advice.to_string(),
    })
}

fn unknown_remote(store: &Store, keys: &KeyLayout, instance: &str) -> anyhow::Error {
    let known = bucket::instances(store, keys).unwrap_or_default();
    let detail = format!(
        "no restore points in s3://{}/{} (instances there: {})",
        store.bucket(),
        keys.instance_prefix(instance),
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    );
    RestoreError::UnknownInstance { instance: instance.to_string(), detail }.into()
}

pub fn restore(global: &GlobalArgs, args: &RestoreArgs) -> anyhow::Result<Exit> {
    let instance = args.instance.clone().context("--instance is required")?;
    check_instance_name("--instance", &instance).map_err(usage)?;
    if let Some(new) = &args.as_new {
        check_instance_name("--as-new", new).map_err(usage)?;
        if *new == instance {
            return Err(usage(format!(
                "--as-new {new} names the instance itself; leave --as-new out to restore in place"
            )));
        }
    }
    if args.keep_old && (args.source != Source::S3 || args.as_new.is_some()) {
        return Err(usage(
            "--keep-old applies to an S3 restore in place only (a local rollback and --as-new replace nothing)".into(),
        ));
    }
    if args.identity.is_some() && args.source != Source::S3 {
        return Err(usage("--identity applies to --source s3 (local snapshots are not encrypted)".into()));
    }
    let paths = global.paths();
    let config = Config::load(&paths)?;
    let pool = config.storage.pool.clone();
    // The backups lock: export, prune, replicate and a deep verify change the same
    // datasets, snapshots and holds. A dry run changes nothing and takes no lock.
    let _lock = if args.dry_run { None } else { Some(locks::BACKUPS.acquire(&paths, "restore")?) };
    let zfs = Zfs::new();
    let at = parse_at(args.at.as_deref());
    // What a killed earlier run of this restore still owes (S3 restores record it).
    let target = args.as_new.as_deref().unwrap_or(&instance);
    let owed = match args.source {
        Source::S3 => unfinished::read(&paths, target)?.unwrap_or_default(),
        Source::Local => Unfinished::default(),
    };

    let store = match args.source {
        Source::S3 => Some(open_store(&config, global)?),
        Source::Local => None,
    };
    let plan = match &store {
        None => {
            let dataset = container_dataset(&pool, &instance);
            if !zfs.exists(&dataset)? {
                return Err(unknown_local(&zfs, &pool, &instance));
            }
            let snapshots = facts::local_points(&zfs, &dataset)?;
            let held = facts::backup_holds(&zfs, &dataset)?;
            // `--at` problems first: they need no LXD.
            let mut local = LocalFacts {
                pool: pool.clone(),
                instance: instance.clone(),
                snapshots,
                held,
                state: InstanceState::Unknown,
            };
            plan_local(&local, &at, args.as_new.as_deref())?;
            if let Some(new) = args.as_new.as_deref() {
                check_new_target(&pool, new, zfs.exists(&container_dataset(&pool, new))?)?;
            }
            if args.as_new.is_none() {
                local.state = instance::state(&instance)?;
            }
            plan_local(&local, &at, args.as_new.as_deref())?
        }
        Some(store) => {
            let keys = keys_for(store, global, args.from_host.as_deref())?;
            let found = bucket::load_instance(store, &keys, &instance)?;
            if found.manifests.is_empty() && found.unreadable.is_empty() {
                return Err(unknown_remote(store, &keys, &instance));
            }
            if let Some(err) = untrusted_manifests(
                &found,
                &format!(
                    "which restore point is the newest is not known, so nothing was changed: restore one that can be read with --at (`terrarium-restore list --instance {instance} --source s3` shows them), or fix the bucket first (`terrarium-backup verify` names every problem)"
                ),
            ) {
                // A named point's chain is checked link by link from the manifests that
                // were read, so an unreadable one cannot be part of it; only "the newest"
                // (no --at) depends on every manifest.
                if args.at.is_none() {
                    return Err(err.into());
                }
                log::warn!("{err}");
            }
            let RemoteInstance { manifests, objects, .. } = found;
            let target_instance = args.as_new.clone().unwrap_or_else(|| instance.clone());
            let dataset = container_dataset(&pool, &target_instance);
            let target_exists = zfs.exists(&dataset)?;
            let workspace = facts::children(&zfs, &work_parent(&pool))?;
            let staging_exists = workspace.iter().any(|d| *d == staging_dataset(&pool, &target_instance));
            let unfinished_aside_exists = match owed.aside.as_deref() {
                Some(aside) => zfs.exists(aside)?,
                None => false,
            };
            let mut remote = RemoteFacts {
                pool: pool.clone(),
                instance: instance.clone(),
                manifests,
                objects,
                state: InstanceState::Unknown,
                target_exists,
                staging_exists,
                stamp: stamp(time::OffsetDateTime::now_utc()),
                unfinished: Some(owed.clone()),
                unfinished_aside_exists,
            };
            // Validate the point and the whole chain before asking LXD anything.
            plan_remote(&remote, &at, args.as_new.as_deref(), args.keep_old)?;
            if let Some(new) = args.as_new.as_deref() {
                // A killed earlier run of this restore made the dataset: it is handed off.
                if !(owed.hand_off && target_exists) {
                    check_new_target(&pool, new, target_exists)?;
                }
            } else {
                // A set-aside dataset and no instance dataset, with no record of a run that
                // owes it back: not ours to guess about.
                let owed_back = unfinished_aside_exists && !target_exists;
                if let Some(aside) =
                    asides_of(&pool, &instance, &workspace).last().filter(|_| !target_exists && !owed_back)
                {
                    return Err(RestoreError::Interrupted {
                        instance: instance.clone(),
                        dataset,
                        aside: aside.to_string(),
                    }
                    .into());
                }
                remote.state = instance::state(&instance)?;
            }
            plan_remote(&remote, &at, args.as_new.as_deref(), args.keep_old)?
        }
    };

    let identities = identities_for(&plan, &config, &paths, args.identity.as_deref())?;
    if args.dry_run {
        show_plan(&plan, global.json, true)?;
        return Ok(Exit::Success);
    }
    if plan.is_destructive() {
        eprint!("{}", plan.render());
        match confirm("Go ahead with this restore?", args.yes)? {
            Answer::Yes => {}
            Answer::No => {
                eprintln!("Restore cancelled; nothing was changed.");
                return Ok(Exit::Failure);
            }
            Answer::NoTerminal => return Err(RestoreError::NeedsConfirmation.into()),
        }
    }
    let ctx = Context {
        zfs: &zfs,
        store: store.as_ref(),
        identities: identities.as_ref(),
        pool: &pool,
        paths: (args.source == Source::S3).then_some(&paths),
        owed,
    };
    let outcome = execute(&plan, &ctx)?;
    report(&plan, &outcome, global.json)?;
    if let Some(Step::LxdRecover { instance, dataset }) =
        plan.steps.iter().find(|s| matches!(s, Step::LxdRecover { .. }))
    {
        drop(_lock);
        if !args.yes {
            // Without --yes the import is the operator's, in `lxd recover`.
            clear_owed(&ctx, &plan)?;
        }
        recover::hand_off(&zfs, &plan.instance, instance, dataset, &pool, args.yes, global.json)?;
        clear_owed(&ctx, &plan)?;
    }
    Ok(if outcome.warnings.is_empty() { Exit::Success } else { Exit::Partial })
}

/// The private key for an encrypted chain (`--identity`, else s3.encryption.identity_file),
/// loaded before anything changes: an encrypted chain without a usable key stops the
/// run here, with nothing received.
fn identities_for(
    plan: &Plan,
    config: &Config,
    paths: &terrarium_common::Paths,
    flag: Option<&std::path::Path>,
) -> anyhow::Result<Option<Identities>> {
    let encrypted = plan
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::ReceiveChain { objects, .. } => Some(objects),
            _ => None,
        })
        .flatten()
        .find_map(|object| object.encryption.as_ref());
    let Some(encryption) = encrypted else {
        return Ok(None);
    };
    let configured = config.s3.encryption.identity_file.as_ref().map(|file| paths.host(file));
    let Some(path) = flag.map(std::path::Path::to_path_buf).or(configured) else {
        return Err(usage(format!(
            "the backup of {} at {} is encrypted (to {}); pass --identity FILE with the private key of one of those recipients, or set s3.encryption.identity_file; nothing was changed",
            plan.instance,
            plan.restore_point.snapshot,
            encryption.recipients.join(", ")
        )));
    };
    Identities::load(&path).map(Some).map_err(|err| usage(format!("{err}; nothing was changed")))
}

/// `--as-new NAME` must name neither an existing dataset (`dataset_exists`, read by the
/// caller) nor an instance LXD knows.
fn check_new_target(pool: &str, new: &str, dataset_exists: bool) -> anyhow::Result<()> {
    let dataset = container_dataset(pool, new);
    if dataset_exists {
        return Err(RestoreError::TargetExists { name: new.to_string(), what: format!("the dataset {dataset}") }.into());
    }
    if instance::state(new)? != InstanceState::Unknown {
        return Err(
            RestoreError::TargetExists { name: new.to_string(), what: format!("an LXD instance named {new}") }.into()
        );
    }
    Ok(())
}

fn show_plan(plan: &Plan, json: bool, dry_run: bool) -> anyhow::Result<()> {
    if json {
        #[derive(Serialize)]
        struct DryRun<'a> {
            dry_run: bool,
            #[serde(flatten)]
            plan: &'a Plan,
        }
        terrarium_common::output::print_json(&DryRun { dry_run, plan })?;
    } else {
        print!("{}", plan.render());
        if dry_run {
            println!("Dry run: nothing was changed.");
        }
    }
    Ok(())
}

fn report(plan: &Plan, outcome: &Outcome, json: bool) -> anyhow::Result<()> {
    if json {
        #[derive(Serialize)]
        struct Summary<'a> {
            instance: &'a str,
            target_instance: &'a str,
            restore_point: &'a RestorePoint,
            #[serde(flatten)]
            outcome: &'a Outcome,
        }
        terrarium_common::output::print_json(&Summary {
            instance: &plan.instance,
            target_instance: &plan.target_instance,
            restore_point: &plan.restore_point,
            outcome,
        })?;
    } else {
        for line in &outcome.done {
            println!("{line}");
        }
        for warning in &outcome.warnings {
            eprintln!("warning: {warning}");
        }
        println!("Restored {} to {}.", plan.target_instance, describe(&plan.restore_point));
    }
    Ok(())
}
