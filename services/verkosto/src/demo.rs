//! Demo data for `--demo`.

pub async fn load(directory: &verkosto_directory::Directory) -> anyhow::Result<()> {
    verkosto_directory::demo::load(directory)
        .await
        .map_err(|p| anyhow::anyhow!("loading demo data failed: {p}"))?;
    tracing::info!("demo agencies and users loaded");
    Ok(())
}
