//! `verkosto keys rotate`, `verkosto backup <dir>`, `verkosto restore <dir>`:
//! the operator's side of sealed data (see RUNBOOK.md, "Keys and backups").
//!
//! Erasure destroys a case's data key. A backup of the key store taken
//! before still holds that key, wrapped by the key-encryption key (KEK) of
//! its day; rotating the KEK re-wraps every live key under a new one and
//! deletes the old, so from then on such a backup opens nothing. Hence the
//! log and the key store are backed up apart, and the KEK never is.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use verkosto_keys::{FileKeys, KeyEncryptionKeys};

use crate::config::StoreArgs;

/// The key file a rotation replaces: `--key-file`, or the embedded default.
fn key_file(store: &StoreArgs) -> anyhow::Result<PathBuf> {
    if store.key.is_some() {
        bail!(
            "the key-encryption key comes from VERKOSTO_KEY: rotate it in the secret store that \
             sets it, or move it to a file (--key-file) that `keys rotate` can replace"
        );
    }
    match &store.key_file {
        Some(path) => Ok(path.clone()),
        None if store.distributed() => bail!("--key-file is required with --database-url"),
        None => Ok(store.data_dir.join("kek")),
    }
}

/// Re-wraps every data key under a new KEK and retires the old one. Stop
/// every process first: a running one holds the old KEK, and would no
/// longer open a key it has not cached.
pub async fn rotate(store: &StoreArgs) -> anyhow::Result<()> {
    let path = key_file(store)?;
    // Safe to run again after a crash: an existing `.next` is kept.
    let next = FileKeys::prepare_rotation(&path)
        .with_context(|| format!("cannot prepare a new key beside {}", path.display()))?;
    let new_id = next.current_id();
    let next = Arc::new(next);
    let keys = store.open_keys_with(next.clone()).await?;
    let rewrapped = keys
        .rotate(next)
        .await
        .context("cannot re-wrap the data keys")?;
    let usage = keys.kek_usage().await?;
    keys.close().await;
    if usage.keys().any(|id| *id != new_id) {
        bail!("keys under an old key-encryption key remain ({usage:?}); run `keys rotate` again");
    }
    FileKeys::finish_rotation(&path)
        .with_context(|| format!("cannot put the new key in place at {}", path.display()))?;
    println!(
        "rotated: {rewrapped} keys re-wrapped under key-encryption key {new_id}; the old one is \
         deleted, so key-store backups made before now open nothing"
    );
    Ok(())
}

/// Where a backup keeps the log and the key store: apart.
fn parts(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("log"), dir.join("keys"))
}

/// A consistent online copy of the embedded log and of the key store,
/// each in its own folder under `dir`. Never the KEK.
pub async fn backup(store: &StoreArgs, dir: &Path) -> anyhow::Result<()> {
    if store.distributed() {
        bail!(
            "a PostgreSQL deployment is backed up with its own tools: `pg_dump` of the database \
             without the schema verkosto_keys, and of that schema apart (see RUNBOOK.md)"
        );
    }
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty: a backup goes to a new folder",
            dir.display()
        );
    }
    let (log_dir, keys_dir) = parts(dir);
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("cannot create {}", log_dir.display()))?;
    let log_copy = log_dir.join("verkosto.db");
    let db = verkosto_eventlog::Db::connect(&store.url()).await?;
    let text = log_copy.to_str().context("the backup path is not UTF-8")?;
    sqlx::query("VACUUM INTO $1")
        .bind(text)
        .execute(db.writer())
        .await
        .context("cannot copy the log")?;
    db.close().await;
    std::fs::File::open(&log_copy)?.sync_all()?;
    let keys = store.open_keys().await?;
    let keys_copy = keys
        .backup(&keys_dir)
        .await
        .context("cannot copy the key store")?;
    keys.close().await;
    println!(
        "backed up: the log to {}, the key store to {} (the key-encryption key is not in it: \
         keep it apart)",
        log_copy.display(),
        keys_copy.display()
    );
    Ok(())
}

/// Puts a backup made by [`backup`] in place as the embedded store. The
/// data directory must hold no log yet. The key store opens only with the
/// KEK it was wrapped by: after a rotation, an older backup's keys, erased
/// cases' among them, open nothing.
pub async fn restore(store: &StoreArgs, dir: &Path) -> anyhow::Result<()> {
    if store.distributed() {
        bail!("a PostgreSQL deployment is restored with `pg_restore` (see RUNBOOK.md)");
    }
    let (log_dir, keys_dir) = parts(dir);
    let (log_copy, keys_copy) = (log_dir.join("verkosto.db"), keys_dir.join("keys.db"));
    for file in [&log_copy, &keys_copy] {
        if !file.is_file() {
            bail!(
                "{} is missing: not a backup made by `verkosto backup`",
                file.display()
            );
        }
    }
    let log_target = store.data_dir.join("verkosto.db");
    let keys_target = store.data_dir.join("keys.db");
    for file in [&log_target, &keys_target] {
        if file.exists() {
            bail!(
                "{} exists: restore into an empty data directory (--data-dir)",
                file.display()
            );
        }
    }
    std::fs::create_dir_all(&store.data_dir)?;
    std::fs::copy(&log_copy, &log_target)?;
    std::fs::copy(&keys_copy, &keys_target)?;
    for file in [&log_target, &keys_target] {
        std::fs::File::open(file)?.sync_all()?;
    }
    // The key store must open with this deployment's KEK, else say so now.
    match store.open_keys().await {
        Ok(keys) => keys.close().await,
        Err(e) => {
            for file in [&log_target, &keys_target] {
                let _ = std::fs::remove_file(file);
            }
            return Err(e.context(
                "the backup's key store does not open with this key-encryption key (made before \
                 a rotation?): nothing was restored",
            ));
        }
    }
    println!("restored into {}", store.data_dir.display());
    Ok(())
}
