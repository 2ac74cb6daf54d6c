//! The objects `connector init` keeps in Acumatica — Generic Inquiries, Push Notifications,
//! Automation Schedules — and the one interface that provisions them. Today they go through
//! the connector's own contract-based endpoint (created with the endpoint maintenance API);
//! shipping the GIs in a customization package is the documented alternative for sites that
//! forbid endpoint changes, and would be a second implementation of [`Provisioner`].

pub mod objects;

use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

pub use objects::{Desired, Kind};

use super::{AcumaticaClient, AcumaticaError};
use crate::config::Config;

/// What happened (or, in a dry run, would happen) to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Repaired,
    Unchanged,
    WouldCreate,
    WouldRepair,
    Activated,
    Deactivated,
    Deleted,
    WouldDelete,
}

#[derive(Clone, Debug, Serialize)]
pub struct ObjectReport {
    pub kind: Kind,
    pub name: String,
    pub action: Action,
    /// The object's active flag after the command, where it has one.
    pub active: Option<bool>,
    /// The managed properties that had drifted (names only).
    pub drift: Vec<String>,
}

/// Provisions the connector's objects in Acumatica.
#[allow(async_fn_in_trait)] // used with concrete types only
pub trait Provisioner {
    /// Reads every object back, creates what is missing and repairs what drifted; in a dry run
    /// only says so. `progress` is called once per object.
    async fn reconcile(
        &self,
        desired: &[Desired],
        dry_run: bool,
        progress: &(dyn Fn(&ObjectReport) + Sync),
    ) -> anyhow::Result<Vec<ObjectReport>>;

    /// Sets the active flag of the connector's push notifications and schedules.
    async fn set_active(
        &self,
        desired: &[Desired],
        active: bool,
    ) -> anyhow::Result<Vec<ObjectReport>>;

    /// Deletes every object the connector created — those `known` and any other named with the
    /// prefix — and only those.
    async fn remove(
        &self,
        known: &[(Kind, String)],
        dry_run: bool,
    ) -> anyhow::Result<Vec<ObjectReport>>;
}

/// Provisioning through the connector's own endpoint.
pub struct EndpointProvisioner<'a> {
    client: &'a AcumaticaClient,
    config: &'a Config,
}

fn enc(s: &str) -> String {
    crate::magento::oauth1::encode(s)
}

impl<'a> EndpointProvisioner<'a> {
    pub fn new(client: &'a AcumaticaClient, config: &'a Config) -> EndpointProvisioner<'a> {
        EndpointProvisioner { client, config }
    }

    fn entity_url(&self, kind: Kind) -> String {
        let (name, version) = objects::endpoint(self.config);
        format!(
            "{}/entity/{name}/{version}/{}",
            self.client.site(),
            kind.entity()
        )
    }

    /// The endpoint exists with exactly the definition this build needs.
    async fn ensure_endpoint(&self, dry_run: bool) -> anyhow::Result<ObjectReport> {
        let (name, version) = objects::endpoint(self.config);
        let desired = objects::endpoint_xml(self.config);
        let url = format!(
            "{}/entity/maintenance/23.200/{name}/{version}",
            self.client.site()
        );
        let current = match self.client.send(Method::GET, &url, None, None, true).await {
            Ok(reply) => Some(reply.body),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let action = match &current {
            Some(xml) if squash(xml) == squash(&desired) => Action::Unchanged,
            Some(_) if dry_run => Action::WouldRepair,
            None if dry_run => Action::WouldCreate,
            Some(_) => Action::Repaired,
            None => Action::Created,
        };
        if matches!(action, Action::Created | Action::Repaired) {
            let post = format!("{}/entity/maintenance/23.200/", self.client.site());
            self.client.post_xml(&post, &desired).await?;
        }
        Ok(ObjectReport {
            kind: Kind::Endpoint,
            name: format!("{name}/{version}"),
            action,
            active: None,
            drift: if action == Action::Repaired || action == Action::WouldRepair {
                vec!["definition".into()]
            } else {
                vec![]
            },
        })
    }

    /// One object by its key, with its details, or none.
    async fn read(&self, kind: Kind, name: &str) -> Result<Option<Value>, AcumaticaError> {
        let mut url =
            url::Url::parse(&self.entity_url(kind)).map_err(|e| AcumaticaError::BadReply {
                method: "GET".into(),
                path: kind.entity().into(),
                message: e.to_string(),
            })?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair(
                "$filter",
                &format!("{} eq '{}'", kind.key_field(), name.replace('\'', "''")),
            );
            if !kind.details().is_empty() {
                q.append_pair("$expand", &kind.details().join(","));
            }
        }
        let reply = self
            .client
            .send(Method::GET, url.as_str(), None, None, true)
            .await?;
        let list = reply.json("GET", kind.entity())?;
        Ok(list.as_array().and_then(|a| a.first().cloned()))
    }

    async fn put(&self, kind: Kind, record: &Value) -> Result<Value, AcumaticaError> {
        let mut url = self.entity_url(kind);
        if !kind.details().is_empty() {
            url.push_str(&format!("?$expand={}", kind.details().join(",")));
        }
        let reply = self
            .client
            .send(Method::PUT, &url, Some(record), None, true)
            .await?;
        reply.json("PUT", kind.entity())
    }

    /// Every record of `kind` whose name carries the prefix.
    async fn list_prefixed(&self, kind: Kind) -> anyhow::Result<Vec<String>> {
        let url = format!("{}?$select={}", self.entity_url(kind), kind.key_field());
        let reply = self
            .client
            .send(Method::GET, &url, None, None, true)
            .await?;
        let list = reply.json("GET", kind.entity())?;
        let prefix = format!("{}-", self.config.acumatica.prefix);
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                r.get(kind.key_field())?
                    .get("value")?
                    .as_str()
                    .map(String::from)
            })
            .filter(|name| name.starts_with(&prefix))
            .collect())
    }
}

/// The record to `PUT` when repairing: the desired one, with every detail row read back
/// marked for deletion (rows without an id are added, so they replace the old ones).
fn repair_record(kind: Kind, desired: &Value, current: &Value) -> Value {
    let mut record = desired.clone();
    if let Some(id) = current.get("id") {
        record["id"] = id.clone();
    }
    for detail in kind.details() {
        let mut rows: Vec<Value> = current
            .get(*detail)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|row| row.get("id").cloned())
            .map(|id| json!({ "id": id, "delete": true }))
            .collect();
        rows.extend(
            desired
                .get(*detail)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        record[*detail] = Value::Array(rows);
    }
    record
}

impl Provisioner for EndpointProvisioner<'_> {
    async fn reconcile(
        &self,
        desired: &[Desired],
        dry_run: bool,
        progress: &(dyn Fn(&ObjectReport) + Sync),
    ) -> anyhow::Result<Vec<ObjectReport>> {
        let mut reports = Vec::new();
        let endpoint = self.ensure_endpoint(dry_run).await?;
        let endpoint_missing = endpoint.action == Action::WouldCreate;
        progress(&endpoint);
        reports.push(endpoint);
        for object in desired {
            // In a dry run on a site without the endpoint, nothing behind it can be read.
            let current = if endpoint_missing {
                None
            } else {
                self.read(object.kind, &object.name).await?
            };
            let want = object.managed();
            let (action, drift) = match &current {
                None => (
                    if dry_run {
                        Action::WouldCreate
                    } else {
                        Action::Created
                    },
                    vec![],
                ),
                Some(record) => {
                    let drift = objects::drift(&want, &objects::managed(object.kind, record));
                    match (drift.is_empty(), dry_run) {
                        (true, _) => (Action::Unchanged, drift),
                        (false, true) => (Action::WouldRepair, drift),
                        (false, false) => (Action::Repaired, drift),
                    }
                }
            };
            match (action, &current) {
                (Action::Created, _) => {
                    self.put(object.kind, &object.record).await?;
                }
                (Action::Repaired, Some(record)) => {
                    self.put(
                        object.kind,
                        &repair_record(object.kind, &object.record, record),
                    )
                    .await?;
                }
                _ => {}
            }
            let report = ObjectReport {
                kind: object.kind,
                name: object.name.clone(),
                action,
                active: want.get("active").and_then(Value::as_bool),
                drift,
            };
            progress(&report);
            reports.push(report);
        }
        Ok(reports)
    }

    async fn set_active(
        &self,
        desired: &[Desired],
        active: bool,
    ) -> anyhow::Result<Vec<ObjectReport>> {
        let mut reports = Vec::new();
        for object in desired
            .iter()
            .filter(|o| matches!(o.kind, Kind::PushNotification | Kind::Schedule))
        {
            let record = json!({
                object.kind.key_field(): { "value": object.name },
                "Active": { "value": active },
            });
            self.put(object.kind, &record).await?;
            reports.push(ObjectReport {
                kind: object.kind,
                name: object.name.clone(),
                action: if active {
                    Action::Activated
                } else {
                    Action::Deactivated
                },
                active: Some(active),
                drift: vec![],
            });
        }
        Ok(reports)
    }

    async fn remove(
        &self,
        known: &[(Kind, String)],
        dry_run: bool,
    ) -> anyhow::Result<Vec<ObjectReport>> {
        let mut reports = Vec::new();
        // Notifications before the inquiries they use (Acumatica refuses the other order).
        for kind in [Kind::PushNotification, Kind::Schedule, Kind::GenericInquiry] {
            let mut names: Vec<String> = known
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, n)| n.clone())
                .collect();
            for name in self.list_prefixed(kind).await? {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            for name in names {
                if self.read(kind, &name).await?.is_none() {
                    continue;
                }
                if !dry_run {
                    let url = format!("{}/{}", self.entity_url(kind), enc(&name));
                    self.client
                        .send(Method::DELETE, &url, None, None, true)
                        .await?;
                }
                reports.push(ObjectReport {
                    kind,
                    name,
                    action: if dry_run {
                        Action::WouldDelete
                    } else {
                        Action::Deleted
                    },
                    active: None,
                    drift: vec![],
                });
            }
        }
        Ok(reports)
    }
}
