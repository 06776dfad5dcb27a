//! The instance state machine, typed: Nova's vm states and task states, the actions of the
//! compute API, which action is allowed in which state (one table, [`Action::allowed_from`]),
//! and the `status` the API shows for a pair of states. The database keeps Nova's strings
//! (`as_str`/`parse`); the power the guest should have and the agent's one-shot operations
//! are the agent protocol's [`Desired`](ferrostack_agent_api::Desired) and
//! [`OneShot`](ferrostack_agent_api::OneShot), and the observed power its
//! [`PowerState`](ferrostack_agent_api::PowerState).

use std::fmt;

/// Declares a string-backed enum: `as_str` gives Nova's string, `parse` reads it back.
macro_rules! nova_strings {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $s:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// Nova's string, as stored and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s,)+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($s => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// As Nova's string (the API shows these).
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

nova_strings! {
    /// nova/compute/vm_states.py
    VmState {
        Building = "building",
        Active = "active",
        Stopped = "stopped",
        Paused = "paused",
        Suspended = "suspended",
        Shelved = "shelved",
        ShelvedOffloaded = "shelved_offloaded",
        Rescued = "rescued",
        Resized = "resized",
        Error = "error",
        Deleted = "deleted",
        SoftDeleted = "soft-delete",
    }
}

nova_strings! {
    /// nova/compute/task_states.py: what an instance is in the middle of.
    TaskState {
        Scheduling = "scheduling",
        BlockDeviceMapping = "block_device_mapping",
        Networking = "networking",
        Spawning = "spawning",
        ImageSnapshot = "image_snapshot",
        ImageSnapshotPending = "image_snapshot_pending",
        ImagePendingUpload = "image_pending_upload",
        ImageUploading = "image_uploading",
        ImageBackup = "image_backup",
        UpdatingPassword = "updating_password",
        ResizePrep = "resize_prep",
        ResizeMigrating = "resize_migrating",
        ResizeMigrated = "resize_migrated",
        ResizeFinish = "resize_finish",
        ResizeReverting = "resize_reverting",
        ResizeConfirming = "resize_confirming",
        Rebooting = "rebooting",
        RebootPending = "reboot_pending",
        RebootStarted = "reboot_started",
        RebootingHard = "rebooting_hard",
        RebootPendingHard = "reboot_pending_hard",
        RebootStartedHard = "reboot_started_hard",
        Pausing = "pausing",
        Unpausing = "unpausing",
        Suspending = "suspending",
        Resuming = "resuming",
        PoweringOff = "powering-off",
        PoweringOn = "powering-on",
        Rescuing = "rescuing",
        Unrescuing = "unrescuing",
        Rebuilding = "rebuilding",
        RebuildBlockDeviceMapping = "rebuild_block_device_mapping",
        RebuildSpawning = "rebuild_spawning",
        Migrating = "migrating",
        Deleting = "deleting",
        SoftDeleting = "soft-deleting",
        Restoring = "restoring",
        Shelving = "shelving",
        ShelvingImagePendingUpload = "shelving_image_pending_upload",
        ShelvingImageUploading = "shelving_image_uploading",
        ShelvingOffloading = "shelving_offloading",
        Unshelving = "unshelving",
    }
}

nova_strings! {
    /// The actions of the compute API that depend on the instance's state, by the names Nova
    /// gives them in its conflict messages and os-instance-actions.
    Action {
        Reboot = "reboot",
        Stop = "stop",
        Start = "start",
        Pause = "pause",
        Unpause = "unpause",
        Suspend = "suspend",
        Resume = "resume",
        Shelve = "shelve",
        ShelveOffload = "shelveOffload",
        Unshelve = "unshelve",
        Rebuild = "rebuild",
        Rescue = "rescue",
        Unrescue = "unrescue",
        TriggerCrashDump = "trigger_crash_dump",
        CreateImage = "createImage",
        CreateBackup = "createBackup",
        Resize = "resize",
        Migrate = "migrate",
        LiveMigration = "live-migration",
        Evacuate = "evacuate",
        ConfirmResize = "confirmResize",
        RevertResize = "revertResize",
        ForceDelete = "forceDelete",
        Restore = "restore",
        AttachInterface = "attach_interface",
        DetachInterface = "detach_interface",
    }
}

impl TaskState {
    fn rebuilding(self) -> bool {
        matches!(
            self,
            TaskState::Rebuilding
                | TaskState::RebuildBlockDeviceMapping
                | TaskState::RebuildSpawning
        )
    }

    fn resizing(self) -> bool {
        matches!(
            self,
            TaskState::ResizePrep
                | TaskState::ResizeMigrating
                | TaskState::ResizeMigrated
                | TaskState::ResizeFinish
        )
    }
}

/// Why an action is refused: the attribute (`vm_state` or `task_state`) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    VmState(VmState),
    TaskState(TaskState),
}

impl Refusal {
    /// Nova's conflict message (`InstanceInvalidState`).
    pub fn message(self, action: Action, uuid: &str) -> String {
        let (attr, state) = match self {
            Refusal::VmState(s) => ("vm_state", s.as_str()),
            Refusal::TaskState(t) => ("task_state", t.as_str()),
        };
        crate::instance::conflict_message(action.as_str(), attr, state, uuid)
    }
}

impl Action {
    /// The vm states the action is allowed from (`check_instance_state` in
    /// nova/compute/api.py). Every action also needs no task in progress ([`Action::check`]).
    pub fn allowed_from(self) -> &'static [VmState] {
        use VmState::*;
        match self {
            Action::Reboot => &[Active, Stopped, Paused, Suspended, Error],
            Action::Stop => &[Active, Rescued, Error],
            Action::Start => &[Stopped],
            Action::Pause => &[Active],
            Action::Unpause => &[Paused],
            Action::Suspend => &[Active],
            Action::Resume => &[Suspended],
            Action::Shelve => &[Active, Stopped, Paused, Suspended],
            Action::ShelveOffload => &[Shelved],
            Action::Unshelve => &[Shelved, ShelvedOffloaded],
            Action::Rebuild => &[Active, Stopped, Error],
            Action::Rescue => &[Active, Stopped, Error],
            Action::Unrescue => &[Rescued],
            Action::TriggerCrashDump => &[Active, Paused, Rescued, Resized, Error],
            Action::CreateImage | Action::CreateBackup => &[Active, Stopped, Paused, Suspended],
            Action::Resize | Action::Migrate => &[Active, Stopped],
            Action::LiveMigration => &[Active, Paused],
            Action::Evacuate => &[Active, Stopped, Error],
            Action::ConfirmResize | Action::RevertResize => &[Resized],
            Action::ForceDelete | Action::Restore => &[SoftDeleted],
            Action::AttachInterface | Action::DetachInterface => &[Active, Paused, Stopped],
        }
    }

    /// Ok when an instance in `vm`, doing `task`, may take this action.
    pub fn check(self, vm: VmState, task: Option<TaskState>) -> Result<(), Refusal> {
        if !self.allowed_from().contains(&vm) {
            return Err(Refusal::VmState(vm));
        }
        match task {
            Some(t) => Err(Refusal::TaskState(t)),
            None => Ok(()),
        }
    }
}

/// The API `status` for a vm state and task state (nova/api/openstack/common.py).
pub fn status(vm: VmState, task: Option<TaskState>) -> &'static str {
    use TaskState as T;
    match vm {
        VmState::Building => "BUILD",
        VmState::Active => match task {
            Some(T::Rebooting | T::RebootPending | T::RebootStarted) => "REBOOT",
            Some(T::RebootingHard | T::RebootPendingHard | T::RebootStartedHard) => "HARD_REBOOT",
            Some(t) if t.rebuilding() => "REBUILD",
            Some(T::Migrating) => "MIGRATING",
            Some(t) if t.resizing() => "RESIZE",
            Some(T::UpdatingPassword) => "PASSWORD",
            _ => "ACTIVE",
        },
        VmState::Stopped => match task {
            Some(t) if t.resizing() => "RESIZE",
            Some(t) if t.rebuilding() => "REBUILD",
            _ => "SHUTOFF",
        },
        VmState::Paused => "PAUSED",
        VmState::Suspended => "SUSPENDED",
        VmState::Shelved => "SHELVED",
        VmState::ShelvedOffloaded => "SHELVED_OFFLOADED",
        VmState::Rescued => "RESCUE",
        VmState::Resized => match task {
            Some(T::ResizeReverting) => "REVERT_RESIZE",
            _ => "VERIFY_RESIZE",
        },
        VmState::Error => match task {
            Some(t) if t.rebuilding() => "REBUILD",
            _ => "ERROR",
        },
        VmState::Deleted => "DELETED",
        VmState::SoftDeleted => "SOFT_DELETED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip() {
        for v in VmState::ALL {
            assert_eq!(VmState::parse(v.as_str()), Some(*v));
        }
        for t in TaskState::ALL {
            assert_eq!(TaskState::parse(t.as_str()), Some(*t));
        }
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(*a));
        }
        assert_eq!(VmState::parse("ACTIVE"), None);
        assert_eq!(VmState::SoftDeleted.as_str(), "soft-delete");
        assert_eq!(TaskState::PoweringOff.as_str(), "powering-off");
    }

    /// The whole table, written out as Nova's `check_instance_state` decorators have it, so
    /// a change to one row is a deliberate change here too.
    #[test]
    fn the_transition_table_is_novas() {
        use Action as A;
        use VmState::*;
        let expect: &[(Action, &[VmState])] = &[
            (A::Reboot, &[Active, Stopped, Paused, Suspended, Error]),
            (A::Stop, &[Active, Rescued, Error]),
            (A::Start, &[Stopped]),
            (A::Pause, &[Active]),
            (A::Unpause, &[Paused]),
            (A::Suspend, &[Active]),
            (A::Resume, &[Suspended]),
            (A::Shelve, &[Active, Stopped, Paused, Suspended]),
            (A::ShelveOffload, &[Shelved]),
            (A::Unshelve, &[Shelved, ShelvedOffloaded]),
            (A::Rebuild, &[Active, Stopped, Error]),
            (A::Rescue, &[Active, Stopped, Error]),
            (A::Unrescue, &[Rescued]),
            (
                A::TriggerCrashDump,
                &[Active, Paused, Rescued, Resized, Error],
            ),
            (A::CreateImage, &[Active, Stopped, Paused, Suspended]),
            (A::CreateBackup, &[Active, Stopped, Paused, Suspended]),
            (A::Resize, &[Active, Stopped]),
            (A::Migrate, &[Active, Stopped]),
            (A::LiveMigration, &[Active, Paused]),
            (A::Evacuate, &[Active, Stopped, Error]),
            (A::ConfirmResize, &[Resized]),
            (A::RevertResize, &[Resized]),
            (A::ForceDelete, &[SoftDeleted]),
            (A::Restore, &[SoftDeleted]),
            (A::AttachInterface, &[Active, Paused, Stopped]),
            (A::DetachInterface, &[Active, Paused, Stopped]),
        ];
        assert_eq!(expect.len(), Action::ALL.len(), "every action has a row");
        for (action, allowed) in expect {
            for vm in VmState::ALL {
                let ok = action.check(*vm, None).is_ok();
                assert_eq!(ok, allowed.contains(vm), "{action} from {vm}");
            }
        }
    }

    #[test]
    fn a_task_in_progress_refuses_every_action() {
        for a in Action::ALL {
            let from = a.allowed_from()[0];
            assert_eq!(
                a.check(from, Some(TaskState::Deleting)),
                Err(Refusal::TaskState(TaskState::Deleting))
            );
        }
    }

    #[test]
    fn building_and_deleted_instances_take_no_action() {
        for a in Action::ALL {
            for vm in [VmState::Building, VmState::Deleted] {
                assert_eq!(a.check(vm, None), Err(Refusal::VmState(vm)));
            }
        }
    }

    #[test]
    fn refusals_read_as_novas() {
        assert_eq!(
            Refusal::VmState(VmState::Stopped).message(Action::Pause, "u1"),
            "Cannot 'pause' instance u1 while it is in vm_state stopped"
        );
        assert_eq!(
            Refusal::TaskState(TaskState::PoweringOff).message(Action::Start, "u1"),
            "Cannot 'start' instance u1 while it is in task_state powering-off"
        );
    }

    #[test]
    fn status_mapping_follows_nova() {
        use TaskState as T;
        assert_eq!(status(VmState::Building, Some(T::Spawning)), "BUILD");
        assert_eq!(status(VmState::Active, None), "ACTIVE");
        assert_eq!(
            status(VmState::Active, Some(T::RebootingHard)),
            "HARD_REBOOT"
        );
        assert_eq!(status(VmState::Active, Some(T::Rebooting)), "REBOOT");
        assert_eq!(status(VmState::Active, Some(T::ResizeMigrating)), "RESIZE");
        assert_eq!(status(VmState::Active, Some(T::Migrating)), "MIGRATING");
        assert_eq!(status(VmState::Stopped, None), "SHUTOFF");
        assert_eq!(status(VmState::Stopped, Some(T::Rebuilding)), "REBUILD");
        assert_eq!(status(VmState::Resized, None), "VERIFY_RESIZE");
        assert_eq!(
            status(VmState::Resized, Some(T::ResizeReverting)),
            "REVERT_RESIZE"
        );
        assert_eq!(status(VmState::Error, None), "ERROR");
        assert_eq!(status(VmState::Error, Some(T::RebuildSpawning)), "REBUILD");
        assert_eq!(status(VmState::Active, Some(T::PoweringOff)), "ACTIVE");
        assert_eq!(status(VmState::SoftDeleted, None), "SOFT_DELETED");
    }
}
