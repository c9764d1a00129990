//! Where a host is in its boot, and when that needs an operator: which boot a stage
//! belongs to, and the stuck and loop rules.
//!
//! Pure: every time is passed in (ms since the epoch), so the rules are tested with
//! hand-set time. [`place`] decides the boot a new stage belongs to and updates the
//! host's [`Progress`]; [`attention`] says whether a host is stuck (its boot started
//! and reached no `/done` within [`Watch::stuck_after`]) or possibly looping (it
//! fetched its script twice within [`Watch::loop_window`] without a `/done` between).

use serde::{Deserialize, Serialize};

use super::model::{HostState, Stage, UnixMillis, BOOT_GAP_MILLIS};

/// What the inventory remembers about a host's current boot beyond its last stage.
///
/// Stored with the host's state (the file backend's `hosts.json`, the PostgreSQL
/// backend's `host_states.progress` `jsonb`); every field defaults to 0 / `none`, so
/// states written before it read as "nothing known".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Progress {
    /// When the current boot's first stage was seen; 0 before any.
    #[serde(skip_serializing_if = "is_zero")]
    pub boot_at: UnixMillis,
    /// The furthest milestone of the current boot in boot order (`files` is no
    /// milestone: any boot phase downloads files).
    #[serde(skip_serializing_if = "is_none")]
    pub furthest: Stage,
    /// When the current boot first got an address, a TFTP file or its script: the
    /// stuck clock starts there. 0: not yet.
    #[serde(skip_serializing_if = "is_zero")]
    pub started_at: UnixMillis,
    /// The last script fetch since the last `/done` or `hosts install` (0: none).
    #[serde(skip_serializing_if = "is_zero")]
    pub script_at: UnixMillis,
    /// The script fetch before that one (0: none).
    #[serde(skip_serializing_if = "is_zero")]
    pub previous_script_at: UnixMillis,
}

fn is_zero(value: &UnixMillis) -> bool {
    *value == 0
}

fn is_none(stage: &Stage) -> bool {
    *stage == Stage::None
}

impl Progress {
    /// Whether nothing is known (what an old state row reads as).
    pub fn is_empty(&self) -> bool {
        *self == Progress::default()
    }

    /// The progress after `/done` or a new `hosts install`: the loop rule starts over.
    pub fn without_scripts(self) -> Progress {
        Progress {
            script_at: 0,
            previous_script_at: 0,
            ..self
        }
    }
}

/// Stages that bring a machine's network up: the firmware's, a chainloaded iPXE's, the
/// installer's or the installed system's.
fn is_bring_up(stage: Stage) -> bool {
    matches!(stage, Stage::Rs | Stage::Solicit | Stage::Reply)
}

/// Whether `stage` seen at `at` starts a new boot of a host in `state`.
///
/// A boot starts with the host's first stage ever, after `/done`, after more than
/// [`BOOT_GAP_MILLIS`] without a stage, when the firmware starts over before anything
/// was downloaded (an RS, Solicit or Reply earlier than the last stage while the boot
/// got no further than an address), and when a boot that already got its script (or
/// its 404) asks for a script, a 404 or a TFTP file again (or for a TFTP file after
/// a TFTP download and a network bring-up). Network bring-ups after a
/// download belong to the boot that downloaded: a chainloaded iPXE after UEFI PXE's
/// TFTP, the installer after the kernel, the installed system after the 404.
pub fn starts_new_boot(state: &HostState, stage: Stage, at: UnixMillis) -> bool {
    let last = state.stage;
    let furthest = state.progress.furthest.max_rank(last);
    if state.boot == 0 || last == Stage::None || last == Stage::Done {
        return true;
    }
    if at.saturating_sub(state.stage_at) > BOOT_GAP_MILLIS {
        return true;
    }
    if is_bring_up(stage) {
        return stage.rank() < last.rank() && furthest.rank() <= Stage::Reply.rank();
    }
    match stage {
        Stage::Script | Stage::LocalDisk => furthest.rank() >= Stage::Script.rank(),
        // After a chainload the next program fetches its script over HTTP: TFTP again
        // after a network bring-up is the firmware starting over.
        Stage::Tftp => {
            furthest.rank() >= Stage::Script.rank()
                || (furthest == Stage::Tftp && is_bring_up(last))
        }
        _ => false,
    }
}

/// The boot number and progress after `stage` at `at` (see [`starts_new_boot`]).
pub fn place(state: &HostState, stage: Stage, at: UnixMillis) -> (u64, Progress) {
    let new_boot = starts_new_boot(state, stage, at);
    let mut progress = state.progress;
    let boot = if new_boot {
        progress = Progress {
            boot_at: at,
            furthest: Stage::None,
            started_at: 0,
            ..progress.without_scripts_if(state.stage == Stage::Done)
        };
        state.boot + 1
    } else {
        state.boot
    };
    if stage != Stage::Files && stage.rank() > progress.furthest.rank() {
        progress.furthest = stage;
    }
    if progress.started_at == 0
        && matches!(
            stage,
            Stage::Reply | Stage::Tftp | Stage::Script | Stage::Kernel | Stage::Initrd
        )
    {
        progress.started_at = at;
    }
    if stage == Stage::Script {
        progress.previous_script_at = progress.script_at;
        progress.script_at = at;
    }
    if progress.boot_at == 0 {
        progress.boot_at = at;
    }
    (boot, progress)
}

impl Progress {
    fn without_scripts_if(self, condition: bool) -> Progress {
        if condition {
            self.without_scripts()
        } else {
            self
        }
    }
}

impl Stage {
    /// The later of two stages in boot order (`files` never counts as later).
    fn max_rank(self, other: Stage) -> Stage {
        if other != Stage::Files && other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

/// When a host needs attention: the operator's thresholds (`[monitor]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    /// A boot that started this long ago (ms) without reaching `/done` is stuck.
    pub stuck_after: UnixMillis,
    /// Two script fetches this close together (ms) without a `/done` between are a
    /// possible boot loop.
    pub loop_window: UnixMillis,
}

impl Default for Watch {
    /// 60 minutes to stuck, 10 minutes for a loop.
    fn default() -> Watch {
        Watch {
            stuck_after: 60 * 60 * 1000,
            loop_window: 10 * 60 * 1000,
        }
    }
}

/// What is wrong with a host, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attention {
    /// Since when (ms) the boot runs without `/done`, when it has run longer than
    /// [`Watch::stuck_after`].
    pub stuck_since: Option<UnixMillis>,
    /// The two script fetches (ms) that were closer than [`Watch::loop_window`].
    pub looping: Option<(UnixMillis, UnixMillis)>,
}

impl Attention {
    /// Whether anything is wrong.
    pub fn any(&self) -> bool {
        self.stuck_since.is_some() || self.looping.is_some()
    }
}

/// Whether a host in `state` is stuck or looping at `now`.
///
/// Stuck: it is marked for install, its current boot got an address, a TFTP file or
/// its script at `started_at`, that boot ended neither in `/done` nor in the 404 that
/// sends it to its disk, and `now - started_at >= stuck_after`. Looping: its last two
/// script fetches since the last `/done` (or `hosts install`) were at most
/// `loop_window` apart.
pub fn attention(state: &HostState, now: UnixMillis, watch: &Watch) -> Attention {
    attention_of(state.install, state.stage, &state.progress, now, watch)
}

/// [`attention`] from the fields of a state it reads: the install flag, the stage and
/// the progress.
pub fn attention_of(
    install: bool,
    stage: Stage,
    progress: &Progress,
    now: UnixMillis,
    watch: &Watch,
) -> Attention {
    let finished = matches!(stage, Stage::Done | Stage::LocalDisk)
        || matches!(progress.furthest, Stage::Done | Stage::LocalDisk);
    let stuck_since = (install
        && !finished
        && progress.started_at > 0
        && now.saturating_sub(progress.started_at) >= watch.stuck_after)
        .then_some(progress.started_at);
    let looping = (stage != Stage::Done
        && progress.previous_script_at > 0
        && progress
            .script_at
            .saturating_sub(progress.previous_script_at)
            <= watch.loop_window)
        .then_some((progress.previous_script_at, progress.script_at));
    Attention {
        stuck_since,
        looping,
    }
}

/// A host that needs attention, reported once when it starts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    /// Its install started at `since` (ms) and has not reached `/done`.
    Stuck {
        mac: crate::mac::Mac,
        name: String,
        since: UnixMillis,
    },
    /// It fetched its script at `first` and again at `second` (ms) without `/done`.
    Looping {
        mac: crate::mac::Mac,
        name: String,
        first: UnixMillis,
        second: UnixMillis,
    },
}

/// The hosts already reported, so that each one is logged when it becomes stuck or
/// looping, not at every scan.
#[derive(Debug, Default)]
pub struct Alerts {
    stuck: std::collections::HashSet<crate::mac::Mac>,
    looping: std::collections::HashSet<crate::mac::Mac>,
}

impl Alerts {
    /// The hosts of `inventory` that became stuck or looping since the last scan (a
    /// host that recovered is forgotten, so it is reported again if it happens again).
    pub fn scan(
        &mut self,
        inventory: &super::model::Inventory,
        now: UnixMillis,
        watch: &Watch,
    ) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let (mut stuck, mut looping) = (
            std::collections::HashSet::new(),
            std::collections::HashSet::new(),
        );
        for host in inventory.iter() {
            let mac = host.spec.mac;
            let attention = attention(&host.state, now, watch);
            if let Some(since) = attention.stuck_since {
                stuck.insert(mac);
                if !self.stuck.contains(&mac) {
                    alerts.push(Alert::Stuck {
                        mac,
                        name: host.spec.name.clone(),
                        since,
                    });
                }
            }
            if let Some((first, second)) = attention.looping {
                looping.insert(mac);
                if !self.looping.contains(&mac) {
                    alerts.push(Alert::Looping {
                        mac,
                        name: host.spec.name.clone(),
                        first,
                        second,
                    });
                }
            }
        }
        self.stuck = stuck;
        self.looping = looping;
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: UnixMillis = 60 * 1000;
    const T0: UnixMillis = 1_700_000_000_000;

    /// Applies stages in order as the inventory does; returns the boot of each.
    fn run(state: &mut HostState, stages: &[(Stage, UnixMillis)]) -> Vec<u64> {
        stages
            .iter()
            .map(|&(stage, at)| {
                let (boot, progress) = place(state, stage, at);
                state.boot = boot;
                state.progress = progress;
                state.stage = stage;
                state.stage_at = at;
                boot
            })
            .collect()
    }

    fn installing() -> HostState {
        HostState::initial(true)
    }

    #[test]
    fn an_install_with_the_installers_own_network_setup_is_one_boot() {
        let mut state = installing();
        let stages = [
            Stage::Rs,
            Stage::Solicit,
            Stage::Reply,
            Stage::Script,
            Stage::Kernel,
            Stage::Initrd,
            Stage::Rs,
            Stage::Solicit,
            Stage::Reply,
            Stage::Kickstart,
            Stage::Files,
        ];
        let timed: Vec<(Stage, UnixMillis)> = stages
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, T0 + i as u64 * 1000))
            .collect();
        assert_eq!(run(&mut state, &timed), vec![1; stages.len()]);
        assert_eq!(state.progress.furthest, Stage::Kickstart);
        assert_eq!(state.progress.started_at, T0 + 2000);
        assert_eq!(state.progress.boot_at, T0);
    }

    #[test]
    fn uefi_pxe_chainloading_ipxe_is_one_boot() {
        let mut state = installing();
        let stages = [
            (Stage::Solicit, T0),
            (Stage::Reply, T0 + 1),
            (Stage::Tftp, T0 + 2),
            (Stage::Solicit, T0 + 3),
            (Stage::Reply, T0 + 4),
            (Stage::Script, T0 + 5),
        ];
        assert_eq!(run(&mut state, &stages), vec![1; 6]);
    }

    #[test]
    fn a_new_boot_starts_after_done_after_a_gap_and_when_the_firmware_starts_over() {
        let mut state = installing();
        let boots = run(
            &mut state,
            &[
                (Stage::Reply, T0),
                (Stage::Script, T0 + 1),
                (Stage::Kickstart, T0 + 2),
                (Stage::Done, T0 + 3),
                // The installed system reboots: firmware, then 404 to its disk, then
                // the system's own network set-up (same boot).
                (Stage::Rs, T0 + 4),
                (Stage::Reply, T0 + 5),
                (Stage::LocalDisk, T0 + 6),
                (Stage::Rs, T0 + 7),
                (Stage::Solicit, T0 + 8),
                // Next day.
                (Stage::Rs, T0 + 8 + BOOT_GAP_MILLIS + 1),
                // The firmware gives up after its address and starts again.
                (Stage::Solicit, T0 + 9 + BOOT_GAP_MILLIS),
                (Stage::Reply, T0 + 10 + BOOT_GAP_MILLIS),
                (Stage::Rs, T0 + 11 + BOOT_GAP_MILLIS),
            ],
        );
        assert_eq!(boots, vec![1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 4]);
    }

    #[test]
    fn a_second_script_or_404_in_one_boot_starts_the_next() {
        let mut state = installing();
        let boots = run(
            &mut state,
            &[
                (Stage::Reply, T0),
                (Stage::Script, T0 + 1),
                (Stage::Solicit, T0 + 2),
                (Stage::Reply, T0 + 3),
                (Stage::Script, T0 + 4),
                (Stage::Script, T0 + 5),
                (Stage::LocalDisk, T0 + 6),
            ],
        );
        assert_eq!(boots, vec![1, 1, 1, 1, 2, 3, 4]);
    }

    #[test]
    fn a_boot_is_stuck_only_after_the_threshold_and_only_while_installing() {
        let watch = Watch::default();
        let mut state = installing();
        run(&mut state, &[(Stage::Rs, T0), (Stage::Solicit, T0 + 1)]);
        // No address yet: the clock has not started.
        assert_eq!(
            attention(&state, T0 + 120 * MIN, &watch),
            Attention::default()
        );
        run(
            &mut state,
            &[(Stage::Reply, T0 + 2), (Stage::Script, T0 + 3)],
        );
        assert_eq!(
            attention(&state, T0 + 2 + 60 * MIN - 1, &watch).stuck_since,
            None
        );
        assert_eq!(
            attention(&state, T0 + 2 + 60 * MIN, &watch).stuck_since,
            Some(T0 + 2)
        );
        // Not marked for install (the operator cleared it): nothing to wait for.
        state.install = false;
        assert!(!attention(&state, T0 + 600 * MIN, &watch).any());
        state.install = true;
        // /done ends it.
        run(&mut state, &[(Stage::Done, T0 + 4)]);
        state.install = false;
        assert!(!attention(&state, T0 + 600 * MIN, &watch).any());
    }

    #[test]
    fn a_boot_that_ends_in_the_404_to_disk_is_never_stuck() {
        let mut state = installing();
        run(
            &mut state,
            &[(Stage::Reply, T0), (Stage::LocalDisk, T0 + 1)],
        );
        assert!(!attention(&state, T0 + 600 * MIN, &Watch::default()).any());
    }

    #[test]
    fn two_script_fetches_close_together_are_a_possible_loop() {
        let watch = Watch {
            stuck_after: 60 * MIN,
            loop_window: 5 * MIN,
        };
        let mut state = installing();
        run(&mut state, &[(Stage::Reply, T0), (Stage::Script, T0 + MIN)]);
        assert_eq!(attention(&state, T0 + 2 * MIN, &watch).looping, None);
        run(
            &mut state,
            &[(Stage::Reply, T0 + 2 * MIN), (Stage::Script, T0 + 3 * MIN)],
        );
        assert_eq!(
            attention(&state, T0 + 4 * MIN, &watch).looping,
            Some((T0 + MIN, T0 + 3 * MIN))
        );
        // Far apart: a reinstall, not a loop.
        run(
            &mut state,
            &[
                (Stage::Reply, T0 + 20 * MIN),
                (Stage::Script, T0 + 30 * MIN),
            ],
        );
        assert_eq!(attention(&state, T0 + 31 * MIN, &watch).looping, None);
        // /done forgets the fetches.
        run(
            &mut state,
            &[(Stage::Script, T0 + 31 * MIN), (Stage::Done, T0 + 32 * MIN)],
        );
        assert_eq!(attention(&state, T0 + 33 * MIN, &watch).looping, None);
        run(&mut state, &[(Stage::Script, T0 + 34 * MIN)]);
        assert_eq!(attention(&state, T0 + 35 * MIN, &watch).looping, None);
    }

    #[test]
    fn a_stuck_host_is_reported_once_and_again_after_it_recovered() {
        use crate::inventory::model::{Inventory, Rows};
        let mac = crate::mac::Mac([2, 0, 0, 0, 0, 9]);
        let inventory_with = |state: HostState| {
            let mut rows = Rows::default();
            rows.hosts.insert(
                mac,
                crate::inventory::model::StoredHost {
                    spec: crate::inventory::model::HostSpec {
                        mac,
                        name: "n9".into(),
                        address: None,
                        vars: Default::default(),
                        installer: None,
                        bmc: None,
                    },
                    version: 1,
                },
            );
            rows.states.insert(mac, state);
            Inventory::new(Vec::new(), rows)
        };
        let watch = Watch::default();
        let mut state = installing();
        run(&mut state, &[(Stage::Reply, T0), (Stage::Script, T0 + 1)]);
        let inventory = inventory_with(state.clone());
        let mut alerts = Alerts::default();
        assert!(alerts.scan(&inventory, T0 + MIN, &watch).is_empty());
        let late = T0 + 61 * MIN;
        assert_eq!(
            alerts.scan(&inventory, late, &watch),
            vec![Alert::Stuck {
                mac,
                name: "n9".into(),
                since: T0
            }]
        );
        assert!(alerts.scan(&inventory, late + MIN, &watch).is_empty());
        // /done: recovered, forgotten; a new install that hangs is reported again.
        run(&mut state, &[(Stage::Done, late + 2 * MIN)]);
        state.install = false;
        assert!(alerts
            .scan(&inventory_with(state.clone()), late + 3 * MIN, &watch)
            .is_empty());
        state.install = true;
        run(&mut state, &[(Stage::Reply, late + 4 * MIN)]);
        let alerts_now = alerts.scan(&inventory_with(state), late + 65 * MIN, &watch);
        assert!(matches!(alerts_now.as_slice(), [Alert::Stuck { .. }]));
    }

    #[test]
    fn old_states_without_progress_read_as_nothing_known() {
        let state: HostState =
            serde_json::from_str(r#"{"install":true,"stage":"script","stage_at":5,"boot":2}"#)
                .unwrap();
        assert!(state.progress.is_empty());
        assert_eq!(
            serde_json::to_string(&Progress::default()).unwrap(),
            "{}",
            "an empty progress costs nothing in hosts.json"
        );
    }
}
