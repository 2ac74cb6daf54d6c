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
