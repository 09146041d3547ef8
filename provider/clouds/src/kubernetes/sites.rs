//! Every Kubernetes edge site behind one [`Driver`]: the driver a workload records in its
//! state is `kubernetes`, and its instance id says which site holds it.
//!
//! Instance ids are `<cluster_id>:<namespace>/<deployment>` (e.g.
//! `ec-0123456789abcdef:edge/hybrid-wl-...`). A create goes to the site of the spec's edge node
//! (`InstanceSpec::node` is a `hybrid_edge_node` id, looked up in the sim store, which holds
//! every site's description); read, update and delete go to the site named in the id. One
//! [`KubernetesDriver`] per site is built on first use and kept while the site's settings and
//! token stay the same.
//!
//! Credentials: a site with `kubeconfig_path` uses the kubeconfig's user; a site with `host`
//! uses `$KUBE_TOKEN` when set. A `token` in the cluster's configuration replaces either, but
//! only a provider process that Terraform sent that configuration has it (it is never written
//! to the store); when a site says it has one and this process has neither it nor
//! `$KUBE_TOKEN`, calls fail with a message that says so.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{metadata_drift, node_metadata, rejected, KubernetesDriver, TARGET};
use crate::edge::{EdgeCluster, EdgeNode, EdgeSites, KubeSite, NodeSync, SiteTokens};
use crate::sim::SimCloud;
use crate::{Driver, DriverError, Instance, InstanceSpec, Metadata};

/// The environment variable a site's bearer token is read from when its configuration has none.
pub const ENV_KUBE_TOKEN: &str = "KUBE_TOKEN";

/// A site's driver with the settings and token it was built from.
type BuiltDriver = (KubeSite, Option<String>, Arc<KubernetesDriver>);

/// The router over every Kubernetes site in the store.
pub struct KubernetesSites {
    sim: Arc<SimCloud>,
    tokens: SiteTokens,
    drivers: tokio::sync::Mutex<BTreeMap<String, BuiltDriver>>,
}

impl std::fmt::Debug for KubernetesSites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesSites").finish_non_exhaustive()
    }
}

/// Splits `<cluster_id>:<rest>`.
fn split_site<'a>(
    operation: &'static str,
    instance_id: &'a str,
) -> Result<(&'a str, &'a str), DriverError> {
    match instance_id.split_once(':') {
        Some((cluster, rest)) if !cluster.is_empty() && !rest.is_empty() => Ok((cluster, rest)),
        _ => Err(rejected(
            operation,
            format!("instance id {instance_id:?} is not <cluster_id>:<namespace>/<name>"),
        )),
    }
}

fn with_site(cluster_id: &str, mut inst: Instance) -> Instance {
    inst.instance_id = format!("{cluster_id}:{}", inst.instance_id);
    inst
}

impl KubernetesSites {
    pub fn new(sim: Arc<SimCloud>) -> KubernetesSites {
        KubernetesSites {
            sim,
            tokens: SiteTokens::default(),
            drivers: tokio::sync::Mutex::default(),
        }
    }

    fn token_for(
        &self,
        operation: &'static str,
        cluster: &EdgeCluster,
        site: &KubeSite,
    ) -> Result<Option<String>, DriverError> {
        let env = || std::env::var(ENV_KUBE_TOKEN).ok().filter(|t| !t.is_empty());
        if let Some(token) = self.tokens.get(&cluster.id) {
            return Ok(Some(token));
        }
        if site.token_in_config {
            return env().map(Some).ok_or_else(|| rejected(
                operation,
                format!("edge cluster {} ({}) sets token in its kubernetes block, and Terraform has not sent this provider process that block in this run (it does so only when it plans or refreshes the cluster); set ${ENV_KUBE_TOKEN} instead, or use a kubeconfig", cluster.id, cluster.name),
            ));
        }
        Ok(if site.kubeconfig_path.is_some() {
            None
        } else {
            env()
        })
    }

    /// The driver for `cluster` (built on first use, rebuilt when its settings changed).
    async fn driver_for(
        &self,
        operation: &'static str,
        cluster: &EdgeCluster,
    ) -> Result<Arc<KubernetesDriver>, DriverError> {
        let Some(site) = &cluster.kubernetes else {
            return Err(rejected(
                operation,
                format!(
                    "edge cluster {} has no kubernetes settings (it is a sim site)",
                    cluster.id
                ),
            ));
        };
        let token = self.token_for(operation, cluster, site)?;
        let mut drivers = self.drivers.lock().await;
        if let Some((known, known_token, driver)) = drivers.get(&cluster.id) {
            if known == site && *known_token == token {
                return Ok(driver.clone());
            }
        }
        let driver = Arc::new(KubernetesDriver::for_site(site, token.as_deref()).await?);
        drivers.insert(cluster.id.clone(), (site.clone(), token, driver.clone()));
        Ok(driver)
    }

    fn cluster(&self, operation: &'static str, id: &str) -> Result<EdgeCluster, DriverError> {
        self.sim.edge_cluster(id)?.ok_or_else(|| {
            rejected(
                operation,
                format!("edge cluster {id} is not in the store (was it destroyed?)"),
            )
        })
    }

    async fn site(
        &self,
        operation: &'static str,
        cluster_id: &str,
    ) -> Result<Arc<KubernetesDriver>, DriverError> {
        let cluster = self.cluster(operation, cluster_id)?;
        self.driver_for(operation, &cluster).await
    }

    fn kube_clusters(&self) -> Result<Vec<EdgeCluster>, DriverError> {
        Ok(self
            .sim
            .edge_clusters()?
            .into_iter()
            .filter(|c| c.kubernetes.is_some())
            .collect())
    }
}

#[async_trait]
impl Driver for KubernetesSites {
    fn name(&self) -> &'static str {
        TARGET
    }

    async fn create(&self, spec: &InstanceSpec) -> Result<Instance, DriverError> {
        let node_id = spec.node.as_deref().ok_or_else(|| {
            rejected(
                "create",
                "a Kubernetes workload needs an edge node to say which site it goes to",
            )
        })?;
        let node = self.sim.edge_node(node_id)?.ok_or_else(|| {
            rejected("create", format!("edge node {node_id} is not in the store"))
        })?;
        let driver = self.site("create", &node.cluster_id).await?;
        Ok(with_site(&node.cluster_id, driver.create(spec).await?))
    }

    async fn read(&self, instance_id: &str) -> Result<Option<Instance>, DriverError> {
        let (cluster, rest) = split_site("read", instance_id)?;
        let driver = self.site("read", cluster).await?;
        Ok(driver.read(rest).await?.map(|i| with_site(cluster, i)))
    }

    async fn find_by_workload(&self, workload_id: &str) -> Result<Option<Instance>, DriverError> {
        for cluster in self.kube_clusters()? {
            let driver = self.driver_for("read", &cluster).await?;
            if let Some(found) = driver.find_by_workload(workload_id).await? {
                return Ok(Some(with_site(&cluster.id, found)));
            }
        }
        Ok(None)
    }

    async fn update_tags(
        &self,
        instance_id: &str,
        tags: &BTreeMap<String, String>,
        metadata: Option<&Metadata>,
    ) -> Result<Instance, DriverError> {
        let (cluster, rest) = split_site("update", instance_id)?;
        let driver = self.site("update", cluster).await?;
        Ok(with_site(
            cluster,
            driver.update_tags(rest, tags, metadata).await?,
        ))
    }

    async fn delete(&self, instance_id: &str) -> Result<(), DriverError> {
        let (cluster, rest) = split_site("delete", instance_id)?;
        self.site("delete", cluster).await?.delete(rest).await
    }

    async fn list_managed(&self) -> Result<Vec<Instance>, DriverError> {
        let mut all = Vec::new();
        for cluster in self.kube_clusters()? {
            let driver = self.driver_for("list", &cluster).await?;
            all.extend(
                driver
                    .list_managed()
                    .await?
                    .into_iter()
                    .map(|i| with_site(&cluster.id, i)),
            );
        }
        Ok(all)
    }
}

#[async_trait]
impl EdgeSites for KubernetesSites {
    fn driver(self: Arc<Self>) -> Arc<dyn Driver> {
        self
    }

    fn remember_token(&self, cluster_id: &str, token: Option<&str>) {
        self.tokens.remember(cluster_id, token);
    }

    async fn label_node(&self, node: &EdgeNode) -> Result<(), DriverError> {
        let driver = self.site("label node", &node.cluster_id).await?;
        let (labels, annotations) = node_metadata(node);
        driver.label_node(&node.name, &labels, &annotations).await
    }

    async fn unlabel_node(&self, node: &EdgeNode) -> Result<(), DriverError> {
        let driver = self.site("unlabel node", &node.cluster_id).await?;
        driver.unlabel_node(&node.name).await
    }

    async fn check(&self, cluster: &EdgeCluster) -> Result<(), DriverError> {
        self.driver_for("connect", cluster).await?.check().await
    }

    async fn node_sync(&self, node: &EdgeNode) -> Result<NodeSync, DriverError> {
        let driver = self.site("read node", &node.cluster_id).await?;
        let Some((labels, annotations)) = driver.node_metadata_of(&node.name).await? else {
            return Ok(NodeSync::NodeMissing);
        };
        let (want_labels, want_annotations) = node_metadata(node);
        let mut drift = metadata_drift("label ", &want_labels, &labels);
        drift.extend(metadata_drift(
            "annotation ",
            &want_annotations,
            &annotations,
        ));
        Ok(if drift.is_empty() {
            NodeSync::InSync
        } else {
            NodeSync::Drifted(drift)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_name_the_site() {
        assert_eq!(
            split_site("read", "ec-1:ns/hybrid-wl").expect("valid"),
            ("ec-1", "ns/hybrid-wl")
        );
        for bad in ["ns/hybrid-wl", ":ns/x", "ec-1:"] {
            assert!(split_site("read", bad).is_err(), "{bad}");
        }
    }
}
