//! The connector's life cycle (DESIGN.md section 1): which command may run in which state, and
//! where it leads. The remote side effects live with the commands' operations; this file is
//! the state machine they all consult.

use crate::store::LifecycleState;

/// A command that changes the life-cycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Init,
    Pause,
    Stop,
    Activate,
    Uninstall,
}

impl Transition {
    pub fn command(self) -> &'static str {
        match self {
            Transition::Init => "init",
            Transition::Pause => "deactivate --pause",
            Transition::Stop => "deactivate --stop",
            Transition::Activate => "activate",
            Transition::Uninstall => "uninstall",
        }
    }
}

/// The state `transition` leads to from `from`, or why it makes no sense there.
pub fn next_state(from: LifecycleState, transition: Transition) -> Result<LifecycleState, String> {
    use LifecycleState::*;
    use Transition::*;
    match (transition, from) {
        // init creates and repairs; it keeps a paused connector paused.
        (Init, Uninitialized | Active) => Ok(Active),
        (Init, Paused) => Ok(Paused),
        (Init, Stopped) => Err(
            "the connector is stopped: `connector activate` turns its objects back on (init would repair them as active)".into(),
        ),
        (Pause, Active) => Ok(Paused),
        (Stop, Active | Paused) => Ok(Stopped),
        (Activate, Paused | Stopped) => Ok(Active),
        (Uninstall, Stopped) => Ok(Uninitialized),
        (_, Uninitialized) => Err("the connector is not initialized: run `connector init` first".into()),
        (Pause, Paused) => Err("the connector is already paused".into()),
        (Pause, Stopped) => Err("the connector is stopped: `connector activate` first, then pause".into()),
        (Stop, Stopped) => Err("the connector is already stopped".into()),
        (Activate, Active) => Err("the connector is already active".into()),
        (Uninstall, _) => Err(format!(
            "uninstall runs only from the stopped state (the connector is {}): `connector deactivate --stop` first",
            from.as_str()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleState::*;

    #[test]
    fn the_documented_paths_are_allowed() {
        assert_eq!(next_state(Uninitialized, Transition::Init), Ok(Active));
        assert_eq!(next_state(Active, Transition::Init), Ok(Active));
        assert_eq!(next_state(Active, Transition::Pause), Ok(Paused));
        assert_eq!(next_state(Paused, Transition::Activate), Ok(Active));
        assert_eq!(next_state(Active, Transition::Stop), Ok(Stopped));
        assert_eq!(next_state(Paused, Transition::Stop), Ok(Stopped));
        assert_eq!(next_state(Stopped, Transition::Activate), Ok(Active));
        assert_eq!(
            next_state(Stopped, Transition::Uninstall),
            Ok(Uninitialized)
        );
    }

    #[test]
    fn senseless_commands_say_why() {
        for (from, t, says) in [
            (
                Uninitialized,
                Transition::Pause,
                "run `connector init` first",
            ),
            (
                Uninitialized,
                Transition::Activate,
                "run `connector init` first",
            ),
            (Active, Transition::Activate, "already active"),
            (Paused, Transition::Pause, "already paused"),
            (Active, Transition::Uninstall, "only from the stopped state"),
            (Stopped, Transition::Init, "`connector activate`"),
        ] {
            let err = next_state(from, t).unwrap_err();
            assert!(err.contains(says), "{from:?} {t:?}: {err}");
        }
    }
}

// ---- the operations: remote side effects, then the state change ----

use anyhow::Context as _;
use serde::Serialize;

use crate::acumatica::admin::{self, Action, EndpointProvisioner, Kind, ObjectReport, Provisioner};
use crate::acumatica::{AcumaticaClient, with_sessions};
use crate::config::Config;
use crate::entities::{Direction, Entity};
use crate::error::Failure;
use crate::magento::{MagentoClient, Scope, SearchCriteria};
use crate::store::Store;

/// What a life-cycle command did.
#[derive(Clone, Debug, Serialize)]
pub struct LifecycleReport {
    pub command: &'static str,
    pub state: &'static str,
    pub dry_run: bool,
    pub objects: Vec<ObjectReport>,
    pub created: usize,
    pub repaired: usize,
    pub unchanged: usize,
    /// Held messages released (activate after pause).
    pub released: usize,
    /// Entities whose catch-up was queued (activate after stop).
    pub catch_up: Vec<&'static str>,
}

impl LifecycleReport {
    fn new(
        transition: Transition,
        state: LifecycleState,
        dry_run: bool,
        objects: Vec<ObjectReport>,
    ) -> Self {
        let count = |a: &[Action]| objects.iter().filter(|o| a.contains(&o.action)).count();
        LifecycleReport {
            command: transition.command(),
            state: state.as_str(),
            dry_run,
            created: count(&[Action::Created, Action::WouldCreate]),
            repaired: count(&[Action::Repaired, Action::WouldRepair]),
            unchanged: count(&[Action::Unchanged]),
            objects,
            released: 0,
            catch_up: vec![],
        }
    }
}

/// The state `transition` leads to from the store's current state, or exit 2 saying why.
pub fn check(store: &Store, transition: Transition) -> anyhow::Result<LifecycleState> {
    let from = store
        .lifecycle()
        .context("reading the life-cycle state")?
        .state;
    next_state(from, transition).map_err(|why| Failure::CannotStart(why).into())
}

fn remember(store: &mut Store, objects: &[ObjectReport]) -> anyhow::Result<()> {
    let rows: Vec<(String, String, Option<bool>)> = objects
        .iter()
        .filter(|o| {
            !matches!(
                o.action,
                Action::WouldCreate | Action::WouldRepair | Action::WouldDelete
            )
        })
        .map(|o| (o.kind.as_str().to_string(), o.name.clone(), o.active))
        .collect();
    store
        .record_remote_objects(&rows)
        .context("recording the remote objects")
}

/// Both systems answer with these credentials: an Acumatica read and a Magento read. Run
/// before anything is changed.
pub async fn check_connections(
    acumatica: &AcumaticaClient,
    magento: &MagentoClient,
) -> anyhow::Result<()> {
    acumatica
        .get("/StockItem?$top=1&$select=InventoryID")
        .await
        .context("checking the Acumatica connection")?;
    magento
        .get(
            Scope::Store,
            "/V1/products",
            &SearchCriteria::new().page(1, 1).to_query(),
        )
        .await
        .context("checking the Magento connection")?;
    Ok(())
}

/// `connector init`: create what is missing, repair what drifted, then be active (or stay
/// paused). Logs out of Acumatica on every path.
pub async fn init(
    config: &Config,
    acumatica: &AcumaticaClient,
    dry_run: bool,
    progress: &(dyn Fn(&ObjectReport) + Sync),
) -> anyhow::Result<LifecycleReport> {
    let mut store = Store::open(&config.store.path)?;
    let to = check(&store, Transition::Init)?;
    let desired = admin::objects::desired(config, true);
    let objects = with_sessions(acumatica, async {
        EndpointProvisioner::new(acumatica, config)
            .reconcile(&desired, dry_run, progress)
            .await
    })
    .await?;
    if !dry_run {
        remember(&mut store, &objects)?;
        if store.lifecycle()?.state != to {
            store.transition(to, Transition::Init.command())?;
        }
    }
    Ok(LifecycleReport::new(Transition::Init, to, dry_run, objects))
}

/// The number of objects `init` would create: for the progress bar.
pub fn object_count(config: &Config) -> usize {
    admin::objects::desired(config, true).len() + 1
}

/// `connector deactivate --pause`: notifications stay active; messages for Magento are held.
pub fn pause(config: &Config) -> anyhow::Result<LifecycleReport> {
    let mut store = Store::open(&config.store.path)?;
    let to = check(&store, Transition::Pause)?;
    store.transition(to, Transition::Pause.command())?;
    Ok(LifecycleReport::new(Transition::Pause, to, false, vec![]))
}

/// `connector deactivate --stop`: every notification and schedule set inactive in Acumatica;
/// the stop time recorded (the catch-up starts there).
pub async fn stop(config: &Config, acumatica: &AcumaticaClient) -> anyhow::Result<LifecycleReport> {
    let mut store = Store::open(&config.store.path)?;
    let to = check(&store, Transition::Stop)?;
    let desired = admin::objects::desired(config, false);
    let objects = with_sessions(acumatica, async {
        EndpointProvisioner::new(acumatica, config)
            .set_active(&desired, false)
            .await
    })
    .await?;
    remember(&mut store, &objects)?;
    store.transition(to, Transition::Stop.command())?;
    Ok(LifecycleReport::new(Transition::Stop, to, false, objects))
}

/// `connector activate`: from paused, release what was held; from stopped, turn the
/// notifications and schedules back on and queue the catch-up of what changed meanwhile.
pub async fn activate(
    config: &Config,
    acumatica: &AcumaticaClient,
    catch_up: bool,
) -> anyhow::Result<LifecycleReport> {
    let mut store = Store::open(&config.store.path)?;
    let lifecycle = store.lifecycle()?;
    let to = check(&store, Transition::Activate)?;
    let mut report;
    if lifecycle.state == LifecycleState::Stopped {
        let desired = admin::objects::desired(config, true);
        let objects = with_sessions(acumatica, async {
            EndpointProvisioner::new(acumatica, config)
                .set_active(&desired, true)
                .await
        })
        .await?;
        remember(&mut store, &objects)?;
        report = LifecycleReport::new(Transition::Activate, to, false, objects);
        if catch_up {
            let entities: Vec<&'static str> = Entity::ALL
                .into_iter()
                .filter(|e| e.direction() == Direction::ToMagento && e.enabled(&config.entities))
                .map(Entity::name)
                .collect();
            store.request_catch_up(
                &entities,
                lifecycle.stopped_at.as_deref(),
                "activate after stop: what changed while stopped",
            )?;
            report.catch_up = entities;
        }
    } else {
        report = LifecycleReport::new(Transition::Activate, to, false, vec![]);
        report.released = store.release_held(Direction::ToMagento.as_str())?;
    }
    store.transition(to, Transition::Activate.command())?;
    Ok(report)
}

/// `connector uninstall`: delete every object the connector created, and only those; forget
/// them; back to uninitialized.
pub async fn uninstall(
    config: &Config,
    acumatica: &AcumaticaClient,
    dry_run: bool,
) -> anyhow::Result<LifecycleReport> {
    let mut store = Store::open(&config.store.path)?;
    let to = check(&store, Transition::Uninstall)?;
    let known: Vec<(Kind, String)> = store
        .remote_objects()?
        .into_iter()
        .filter_map(|o| {
            let kind = match o.kind.as_str() {
                "generic_inquiry" => Kind::GenericInquiry,
                "push_notification" => Kind::PushNotification,
                "schedule" => Kind::Schedule,
                _ => return None,
            };
            Some((kind, o.name))
        })
        .collect();
    let objects = with_sessions(acumatica, async {
        EndpointProvisioner::new(acumatica, config)
            .remove(&known, dry_run)
            .await
    })
    .await?;
    if !dry_run {
        store.forget_remote_objects()?;
        store.transition(to, Transition::Uninstall.command())?;
    }
    Ok(LifecycleReport::new(
        Transition::Uninstall,
        to,
        dry_run,
        objects,
    ))
}
