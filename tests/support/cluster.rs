//! A 3-node nats-server cluster on loopback, configured as `deploy/nats/`
//! configures production: the same server names, the same cluster name, the
//! same JetStream settings (each node fsyncs every acknowledged write), one
//! store per node. Only addresses and directories differ. Any node can be
//! killed with SIGKILL and restarted with its store.

use anyhow::{Context, Result};
use verkosto_testkit::{free_port, NatsServer};

/// How many nodes: as in `deploy/compose.yaml`.
pub const NODES: usize = 3;

pub struct NatsCluster {
    nodes: Vec<NatsServer>,
}

/// `server_name` and the cluster `name` from `deploy/nats/nats-<n>.conf`.
fn deploy_values(n: usize) -> Result<(String, String)> {
    let path = verkosto_testkit::workspace_root().join(format!("deploy/nats/nats-{n}.conf"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let value = |key: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().trim_matches('"').to_string())
            .with_context(|| format!("no `{key}` in {}", path.display()))
    };
    // The test's servers always fsync acknowledged writes; so must production's.
    anyhow::ensure!(
        text.contains("sync_interval: always"),
        "{} no longer says `sync_interval: always`: the fault tests would not match it",
        path.display()
    );
    Ok((value("server_name:")?, value("name:")?))
}

impl NatsCluster {
    /// Starts the three nodes at once (a clustered JetStream node reports
    /// healthy only once it sees a meta leader, which needs a quorum).
    pub async fn start() -> Result<NatsCluster> {
        let route_ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let routes: String = route_ports
            .iter()
            .map(|p| format!("    nats://127.0.0.1:{p}\n"))
            .collect();
        let mut configs = Vec::new();
        for (i, port) in route_ports.iter().enumerate() {
            let (server_name, cluster_name) = deploy_values(i + 1)?;
            configs.push(format!(
                "server_name: {server_name}\ncluster {{\n  name: {cluster_name}\n  \
                 listen: 127.0.0.1:{port}\n  routes: [\n{routes}  ]\n}}\n"
            ));
        }
        let started =
            futures::future::join_all(configs.into_iter().map(NatsServer::start_with)).await;
        let nodes = started.into_iter().collect::<Result<Vec<_>>>()?;
        Ok(NatsCluster { nodes })
    }

    /// Every node's client URL, comma-separated, as `--nats-url` takes them.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node(&self, i: usize) -> &NatsServer {
        &self.nodes[i]
    }

    /// SIGKILL node `i`.
    pub fn kill9(&mut self, i: usize) -> Result<()> {
        self.nodes[i].kill9()
    }

    /// Starts node `i` again on its ports with its store.
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        self.nodes[i].restart().await
    }

    /// SIGKILL every node.
    pub fn kill9_all(&mut self) -> Result<()> {
        self.nodes.iter_mut().try_for_each(NatsServer::kill9)
    }

    /// Starts every node again, all at once (for the quorum).
    pub async fn restart_all(&mut self) -> Result<()> {
        let restarts = self.nodes.iter_mut().map(NatsServer::restart);
        futures::future::join_all(restarts)
            .await
            .into_iter()
            .collect::<Result<Vec<()>>>()?;
        Ok(())
    }

    /// The events stream's replica count and how many of its replicas are
    /// current (the leader plus current followers).
    pub async fn stream_replicas(&self) -> Result<(usize, usize)> {
        let js = verkosto_bus::connect(&self.url(), &crate::nats_access("operator")).await?;
        let mut stream = js.get_stream(verkosto_bus::STREAM_NAME).await?;
        let info = stream.info().await?;
        let current = info
            .cluster
            .as_ref()
            .map(|c| 1 + c.replicas.iter().filter(|r| r.current).count())
            .unwrap_or(1);
        Ok((info.config.num_replicas, current))
    }
}
