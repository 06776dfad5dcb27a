//! The QEMU building blocks against the real `qemu-system-x86_64` (installed by the README's
//! commands): a detached process, its QMP socket, adoption by pid file, a clean end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrostack_virt::qemu::{GuestDir, QemuError, QemuProcess, RunState};

/// The testvm build (`scripts/lib.sh` build_testvm): FERROSTACK_TESTVM_DIR, else its cache.
fn testvm_dir() -> PathBuf {
    std::env::var("FERROSTACK_TESTVM_DIR").map_or_else(
        |_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/ferrostack-testvm/out"),
        PathBuf::from,
    )
}

fn qemu() -> PathBuf {
    let p = PathBuf::from("/usr/bin/qemu-system-x86_64");
    assert!(
        p.exists(),
        "{} is missing: scripts/lib.sh install_qemu installs Debian's qemu-system-x86",
        p.display()
    );
    p
}

/// A small machine under TCG (KVM does not run guests on the development machines), started
/// paused (`-S`) so it does nothing until asked.
fn machine() -> Vec<OsString> {
    ["-machine", "pc,accel=tcg", "-m", "64", "-S"]
        .into_iter()
        .map(OsString::from)
        .collect()
}

fn session_of(pid: i32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command: state ppid pgrp session ...
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(3).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_detached_qemu_is_controlled_over_qmp_adopted_and_ended() {
    let root = tempfile::tempdir().unwrap();
    let dir = GuestDir::new(root.path(), "0b7f7c1e-1111-4222-8333-444455556666");
    let p = QemuProcess::launch(&qemu(), &dir, &machine())
        .await
        .unwrap();
    assert!(p.is_alive());
    // Its own session: an agent that dies (with its session) leaves the guest running.
    assert_ne!(
        session_of(p.pid),
        session_of(i32::try_from(std::process::id()).unwrap())
    );

    let qmp = p.qmp();
    assert_eq!(qmp.status().await.unwrap(), RunState::Paused);
    qmp.cont().await.unwrap();
    assert_eq!(qmp.status().await.unwrap(), RunState::Running);
    qmp.stop().await.unwrap();
    assert_eq!(qmp.status().await.unwrap(), RunState::Paused);
    qmp.cont().await.unwrap();

    // A restarted agent finds the same process through the pid file.
    let again = QemuProcess::adopt(&GuestDir::new(root.path(), &dir.uuid))
        .await
        .unwrap()
        .expect("adopted");
    assert_eq!(again.pid, p.pid);
    // Another guest's directory does not adopt it.
    let other = GuestDir::new(root.path(), "other");
    std::fs::create_dir_all(&other.path).unwrap();
    std::fs::write(other.pid_file(), p.pid.to_string()).unwrap();
    assert!(QemuProcess::adopt(&other).await.unwrap().is_none());

    again.kill(Duration::from_secs(5)).await.unwrap();
    assert!(!p.is_alive());
    assert!(QemuProcess::adopt(&dir).await.unwrap().is_none());
    assert!(qmp.status().await.is_err());
}

#[tokio::test]
async fn a_qemu_that_refuses_to_start_says_why() {
    let root = tempfile::tempdir().unwrap();
    let dir = GuestDir::new(root.path(), "bad");
    let mut args = machine();
    args.extend(["-m", "not-a-size"].map(OsString::from));
    match QemuProcess::launch(&qemu(), &dir, &args).await {
        Err(QemuError::Launch { stderr }) => assert!(!stderr.is_empty()),
        other => panic!("expected a launch error, got {other:?}"),
    }
    assert!(QemuProcess::adopt(&dir).await.unwrap().is_none());
    assert!(!Path::new(&dir.qmp_socket()).exists() || !dir.pid_file().exists());
}

/// SIGKILLs a QEMU (as a crash would end it) and waits, up to 2 s, until it is gone.
async fn kill_9(p: &QemuProcess) {
    std::process::Command::new("kill")
        .args(["-9", &p.pid.to_string()])
        .status()
        .unwrap();
    for _ in 0..200 {
        if !p.is_alive() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_killed_qemu_is_not_adopted() {
    let root = tempfile::tempdir().unwrap();
    let dir = GuestDir::new(root.path(), "killed");
    let p = QemuProcess::launch(&qemu(), &dir, &machine())
        .await
        .unwrap();
    kill_9(&p).await;
    assert!(!p.is_alive());
    // The pid file is still there (QEMU had no chance to remove it) but names no QEMU of ours.
    assert!(QemuProcess::adopt(&dir).await.unwrap().is_none());
}

/// The probe's boot ends by itself (so a hang under KVM means KVM, not the probe): under TCG
/// the testvm kernel panics without a root disk and QEMU exits.
#[tokio::test]
async fn the_kvm_probe_boot_finishes_under_tcg() {
    use ferrostack_virt::qemu::probe::{choose, probe_boot, BootOutcome};
    use ferrostack_virt::qemu::{Accel, VirtTypeSetting};
    let dir = testvm_dir();
    let kernel = dir.join("testvm-kernel");
    assert!(
        kernel.exists(),
        "{} is missing: scripts/lib.sh build_testvm builds it",
        kernel.display()
    );
    let outcome = probe_boot(&qemu(), &kernel, Accel::Tcg, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(outcome, BootOutcome::Finished);

    let forced = choose(
        &qemu(),
        VirtTypeSetting::Qemu,
        Some(&kernel),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(forced.accel, Accel::Tcg);
    // `auto` decides either way on any machine, and always says why.
    let auto = choose(
        &qemu(),
        VirtTypeSetting::Auto,
        Some(&kernel),
        Duration::from_secs(10),
    )
    .await;
    assert!(!auto.reason.is_empty());
    eprintln!("auto: {:?} because {}", auto.accel, auto.reason);
    let none = choose(&qemu(), VirtTypeSetting::Auto, None, Duration::from_secs(1)).await;
    assert_eq!(none.accel, Accel::Tcg);
}

/// A real guest: the testvm image as a qcow2 overlay grown to 1 GiB, its kernel booted
/// directly under TCG in a detached QEMU, until it prints `testvm ready` on its serial
/// console; then it is ended and nothing of it runs.
#[tokio::test]
async fn the_testvm_boots_from_an_overlay_in_a_detached_qemu() {
    use ferrostack_virt::qemu::disk::{create_overlay, info, qemu_img};
    use ferrostack_virt::qemu::machine::Machine;
    use ferrostack_virt::qemu::Accel;
    let out = testvm_dir();
    assert!(
        out.join("testvm.qcow2").exists(),
        "{} has no testvm.qcow2: scripts/lib.sh build_testvm builds it",
        out.display()
    );
    let root = tempfile::tempdir().unwrap();
    let dir = GuestDir::new(root.path(), "5d1c3f4e-aaaa-4bbb-8ccc-ddddeeeeffff");
    std::fs::create_dir_all(&dir.path).unwrap();
    let disk = dir.path.join("disk.qcow2");
    create_overlay(&qemu_img(), &out.join("testvm.qcow2"), "qcow2", &disk, 1)
        .await
        .unwrap();
    let di = info(&qemu_img(), &disk).await.unwrap();
    assert_eq!(di.format, "qcow2");
    assert_eq!(di.virtual_size, 1 << 30);
    assert!(di.backing.unwrap().ends_with("testvm.qcow2"));

    let m = Machine {
        accel: Accel::Tcg,
        vcpus: 1,
        memory_mb: 256,
        hardware: Default::default(),
        disks: vec![disk],
        cdrom: None,
        kernel: Some(out.join("testvm-kernel")),
        ramdisk: Some(out.join("testvm-ramdisk")),
        cmdline: Some("console=ttyS0 panic=-1".into()),
        vnc_socket: Some(dir.vnc_socket()),
        nics: Vec::new(),
    };
    let p = QemuProcess::launch(&qemu(), &dir, &m.args()).await.unwrap();
    let mut ready = None;
    for _ in 0..1200 {
        let log = std::fs::read(dir.console_log()).unwrap_or_default();
        let text = String::from_utf8_lossy(&log).replace('\r', "");
        if let Some(l) = text.lines().find(|l| l.starts_with("testvm ready")) {
            ready = Some(l.to_string());
            break;
        }
        assert!(p.is_alive(), "QEMU ended before 'testvm ready':\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = ready.expect("'testvm ready' within 120 s");
    assert!(ready.contains("hostname="), "{ready}");
    p.kill(Duration::from_secs(5)).await.unwrap();
    assert!(!p.is_alive());
}

mod driver {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use ferrostack_virt::qemu::driver::{BootImage, ImageSource, QemuDriver};
    use ferrostack_virt::qemu::{Accel, GuestDir, QemuProcess};
    use ferrostack_virt::{Driver, DriverError, GuestSpec, PowerState};

    /// The testvm image as the image cache would hold it (`testvm`), and nothing else.
    struct TestvmImages(PathBuf);

    #[async_trait::async_trait]
    impl ImageSource for TestvmImages {
        async fn boot_image(&self, image_ref: &str) -> ferrostack_virt::Result<BootImage> {
            if image_ref != "testvm" {
                return Err(DriverError::failed(format!("image {image_ref} not found")));
            }
            Ok(BootImage {
                disk: self.0.join("testvm.qcow2"),
                format: "qcow2".into(),
                kernel: Some(self.0.join("testvm-kernel")),
                ramdisk: Some(self.0.join("testvm-ramdisk")),
                cmdline: Some("console=ttyS0 panic=-1".into()),
                properties: Default::default(),
            })
        }
    }

    fn driver(root: &std::path::Path) -> QemuDriver {
        capped_driver(root, None)
    }

    /// A host whose live migrations go at most `bandwidth` bytes per second.
    fn capped_driver(root: &std::path::Path, bandwidth: Option<u64>) -> QemuDriver {
        let out = super::testvm_dir();
        QemuDriver {
            root: root.to_path_buf(),
            run_root: root.join("run"),
            binary: super::qemu(),
            accel: Accel::Tcg,
            qemu_version: 7_002_000,
            images: Arc::new(TestvmImages(out)),
            shutdown_timeout: Duration::from_secs(2),
            migration_address: "127.0.0.1".into(),
            migration_bandwidth: bandwidth,
            vifs: None,
        }
    }

    /// Runs `program` with `args` and fails the test unless it succeeds.
    fn run_ok(program: &str, args: &[&str]) {
        let out = std::process::Command::new(program)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A bridge in this machine's root namespace with no address (a plain L2 segment that
    /// nothing of the host's own traffic uses), deleted on drop.
    struct TestBridge(String);
    impl TestBridge {
        fn new() -> TestBridge {
            let name = format!("fsbrt{}", std::process::id() % 100_000);
            let ip = |args: &[&str]| run_ok("ip", args);
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &name])
                .output();
            ip(&["link", "add", "name", &name, "type", "bridge"]);
            ip(&["link", "set", &name, "up"]);
            TestBridge(name)
        }
    }
    impl Drop for TestBridge {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &self.0])
                .output();
        }
    }

    /// A guest on a host that gives its guests a NIC on a plain bridge (`--guest-bridge`):
    /// its tap is on the bridge, and the guest's own frames (its DHCP requests) reach it, so
    /// the bridge learns the guest's MAC on that tap. The tap goes with the guest.
    #[tokio::test]
    async fn a_guest_gets_a_nic_plugged_into_the_hosts_bridge() {
        let root = tempfile::tempdir().unwrap();
        let _guard = KillAll(root.path().to_path_buf());
        let br = TestBridge::new();
        let d = QemuDriver {
            vifs: Some(Arc::new(ferrostack_virt::vif::LinuxBridge {
                bridge: br.0.clone(),
            })),
            ..driver(root.path())
        };
        let uuid = "0e7f0000-1234-4567-89ab-cdef01234567";
        d.spawn(&spec(uuid, "testvm")).await.unwrap();
        let vif = ferrostack_virt::vif::guest_vifs(root.path(), uuid, 1).remove(0);
        let master = std::fs::read_link(format!("/sys/class/net/{}/master", vif.tap)).unwrap();
        assert_eq!(master.file_name().unwrap().to_str(), Some(br.0.as_str()));
        let mut learned = String::new();
        for _ in 0..600 {
            let out = std::process::Command::new("bridge")
                .args(["fdb", "show", "br", &br.0, "dynamic"])
                .output()
                .unwrap();
            learned = String::from_utf8_lossy(&out.stdout).to_string();
            if learned
                .lines()
                .any(|l| l.starts_with(&vif.mac) && l.contains(&vif.tap))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            learned
                .lines()
                .any(|l| l.starts_with(&vif.mac) && l.contains(&vif.tap)),
            "the guest's MAC {} was never seen on {}: {learned}",
            vif.mac,
            vif.tap
        );
        d.destroy(uuid).await.unwrap();
        assert!(!std::path::Path::new(&format!("/sys/class/net/{}", vif.tap)).exists());
        assert_nothing_left(root.path());
    }

    /// Sends the guest (one step after another, as the agent's passes do) until all is sent;
    /// returns the progress reports seen on the way.
    async fn send_all(
        d: &QemuDriver,
        uuid: &str,
        endpoint: &str,
        force: bool,
    ) -> Vec<ferrostack_virt::MoveProgress> {
        let mut seen = Vec::new();
        for _ in 0..1200 {
            match d.send(uuid, endpoint, force).await.unwrap() {
                ferrostack_virt::Outgoing::Sent => return seen,
                ferrostack_virt::Outgoing::Sending(p) => seen.push(p),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the guest was not sent within 60 s");
    }

    /// Nothing of any guest remains: no guest directory, no socket directory.
    fn assert_nothing_left(root: &std::path::Path) {
        let names = |d: &std::path::Path| -> Vec<String> {
            std::fs::read_dir(d).map_or(Vec::new(), |r| {
                r.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                    .collect()
            })
        };
        let files: Vec<String> = names(root).into_iter().filter(|n| n != "run").collect();
        assert!(files.is_empty(), "left in {}: {files:?}", root.display());
        let sockets = names(&root.join("run"));
        assert!(sockets.is_empty(), "sockets left: {sockets:?}");
    }

    fn spec(uuid: &str, image: &str) -> GuestSpec {
        GuestSpec {
            uuid: uuid.into(),
            name: "vm1".into(),
            hostname: "vm1".into(),
            vcpus: 1,
            memory_mb: 256,
            root_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
            image_ref: image.into(),
            user_data: None,
            key_data: None,
            metadata: serde_json::json!({}),
            key_name: None,
            config_drive: false,
            project_id: String::new(),
            availability_zone: None,
            injected: None,
            nics: Vec::new(),
        }
    }

    async fn power(d: &QemuDriver, uuid: &str) -> Option<PowerState> {
        d.list()
            .await
            .unwrap()
            .into_iter()
            .find(|o| o.uuid == uuid)
            .map(|o| o.power)
    }

    async fn wait_ready(d: &QemuDriver, uuid: &str, after: usize) {
        for _ in 0..1200 {
            let log = d.console_output(uuid, None).await.unwrap();
            if log.matches("testvm ready").count() > after {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no 'testvm ready' within 120 s");
    }

    /// Ends every QEMU of a test's directory even when the test fails half-way.
    struct KillAll(PathBuf);
    impl Drop for KillAll {
        fn drop(&mut self) {
            let _ = std::process::Command::new("pkill")
                .args(["-9", "-f", &self.0.display().to_string()])
                .status();
        }
    }

    #[tokio::test]
    async fn a_guest_lives_through_the_driver_and_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let _guard = KillAll(root.path().to_path_buf());
        let d = driver(root.path());
        let uuid = "9e0b6a8c-1234-4567-89ab-cdef01234567";
        d.spawn(&spec(uuid, "testvm")).await.unwrap();
        d.spawn(&spec(uuid, "testvm")).await.unwrap(); // idempotent
        assert_eq!(power(&d, uuid).await, Some(PowerState::Running));
        wait_ready(&d, uuid, 0).await;
        // Measured: the vCPU thread's time, the guest memory resident, the disk counters.
        let diag = d.diagnostics(uuid).await.unwrap();
        assert_eq!(diag["num_cpus"], 1);
        assert!(
            diag["cpu_details"][0]["time"].as_u64().unwrap() > 0,
            "{diag}"
        );
        assert!(
            diag["memory_details"]["used"].as_u64().unwrap() > 0,
            "{diag}"
        );
        assert_eq!(diag["memory_details"]["maximum"], 256);
        assert!(
            !diag["disk_details"].as_array().unwrap().is_empty(),
            "{diag}"
        );
        assert_eq!(diag["hypervisor"], "qemu");

        d.pause(uuid).await.unwrap();
        assert_eq!(power(&d, uuid).await, Some(PowerState::Paused));
        d.unpause(uuid).await.unwrap();
        assert_eq!(power(&d, uuid).await, Some(PowerState::Running));

        // A new driver (a restarted agent) adopts the running guest instead of restarting it.
        let pid = QemuProcess::adopt(&GuestDir::new(root.path(), uuid))
            .await
            .unwrap()
            .unwrap()
            .pid;
        let d2 = driver(root.path());
        assert_eq!(power(&d2, uuid).await, Some(PowerState::Running));
        let again = QemuProcess::adopt(&GuestDir::new(root.path(), uuid))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.pid, pid);

        d2.power_off(uuid).await.unwrap();
        assert_eq!(power(&d2, uuid).await, Some(PowerState::Shutdown));
        d2.power_off(uuid).await.unwrap(); // idempotent
        d2.power_on(uuid).await.unwrap();
        assert_eq!(power(&d2, uuid).await, Some(PowerState::Running));
        wait_ready(&d2, uuid, 1).await; // booted again from the same disk

        // A QEMU that ends on its own shows the guest shut down.
        let p = QemuProcess::adopt(&GuestDir::new(root.path(), uuid))
            .await
            .unwrap()
            .unwrap();
        super::kill_9(&p).await;
        assert_eq!(power(&d2, uuid).await, Some(PowerState::Shutdown));

        d2.power_on(uuid).await.unwrap();
        d2.destroy(uuid).await.unwrap();
        d2.destroy(uuid).await.unwrap(); // idempotent
        assert_eq!(power(&d2, uuid).await, None);
        assert!(!root.path().join(uuid).exists());
        assert_nothing_left(root.path());
    }

    #[tokio::test]
    async fn a_failed_spawn_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let _guard = KillAll(root.path().to_path_buf());
        let d = driver(root.path());
        let err = d.spawn(&spec("f00", "no-such-image")).await.unwrap_err();
        assert!(err.to_string().contains("no-such-image"), "{err}");
        assert!(d.list().await.unwrap().is_empty());
        assert_nothing_left(root.path());
        // QEMU itself refusing (no memory size it accepts) is reported with its words.
        let mut bad = spec("f01", "testvm");
        bad.memory_mb = 1 << 40;
        let err = d.spawn(&bad).await.unwrap_err();
        assert!(err.to_string().contains("QEMU did not start"), "{err}");
        assert_nothing_left(root.path());
    }

    fn cmdline_of(root: &std::path::Path, uuid: &str) -> String {
        let dir = GuestDir::with_run(root, &root.join("run"), uuid);
        let pid = std::fs::read_to_string(dir.pid_file()).unwrap();
        std::fs::read(format!("/proc/{}/cmdline", pid.trim()))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default()
    }

    async fn disk_size(path: &std::path::Path) -> (u64, Option<String>) {
        let i = ferrostack_virt::qemu::disk::info(&ferrostack_virt::qemu::disk::qemu_img(), path)
            .await
            .unwrap();
        (i.virtual_size, i.backing)
    }

    /// Suspend to disk and resume, a live snapshot, a resize and its revert, rescue and
    /// unrescue, a soft reboot: each leaves the guest where Nova's libvirt driver would.
    #[tokio::test]
    async fn every_action_on_a_real_guest() {
        let root = tempfile::tempdir().unwrap();
        let _guard = KillAll(root.path().to_path_buf());
        let d = driver(root.path());
        let uuid = "7a1e0c6d-2222-4333-8444-555566667777";
        let dir = root.path().join(uuid);
        d.spawn(&spec(uuid, "testvm")).await.unwrap();
        wait_ready(&d, uuid, 0).await;

        // Suspend: the machine state goes to disk and QEMU ends; resume brings it back.
        d.suspend(uuid).await.unwrap();
        assert_eq!(power(&d, uuid).await, Some(PowerState::Suspended));
        assert!(dir.join("suspend.state").exists());
        assert!(QemuProcess::adopt(&GuestDir::with_run(
            root.path(),
            &root.path().join("run"),
            uuid
        ))
        .await
        .unwrap()
        .is_none());
        d.suspend(uuid).await.unwrap(); // idempotent
        d.resume(uuid).await.unwrap();
        assert_eq!(power(&d, uuid).await, Some(PowerState::Running));
        assert!(!dir.join("suspend.state").exists());
        // Resumed, not rebooted: no second boot on the console.
        assert_eq!(
            d.console_output(uuid, None)
                .await
                .unwrap()
                .matches("testvm ready")
                .count(),
            1
        );

        // A live snapshot: a standalone qcow2 of the root disk, the guest still running.
        let snap = root.path().join("snap.qcow2");
        assert_eq!(d.snapshot(uuid, &snap).await.unwrap(), "qcow2");
        assert_eq!(power(&d, uuid).await, Some(PowerState::Running));
        let (size, backing) = disk_size(&snap).await;
        assert_eq!(size, 1 << 30);
        assert_eq!(backing, None, "a snapshot stands alone");

        // Rescue: the testvm boots from a fresh disk with the guest's disk second.
        d.rescue(uuid, "testvm").await.unwrap();
        wait_ready(&d, uuid, 1).await;
        let cmd = cmdline_of(root.path(), uuid);
        assert!(
            cmd.contains("rescue-disk.qcow2") && cmd.contains("/disk.qcow2"),
            "{cmd}"
        );
        d.rescue(uuid, "testvm").await.unwrap(); // idempotent
        d.unrescue(uuid).await.unwrap();
        let cmd = cmdline_of(root.path(), uuid);
        assert!(!cmd.contains("rescue-disk.qcow2"), "{cmd}");
        assert!(!dir.join("rescue-disk.qcow2").exists());
        wait_ready(&d, uuid, 2).await;

        // Resize on this host: off, then bigger; a resize back to the old sizes restores
        // the old disk.
        d.power_off(uuid).await.unwrap();
        let mut bigger = spec(uuid, "testvm");
        bigger.root_gb = 2;
        bigger.memory_mb = 320;
        d.resize(&bigger).await.unwrap();
        assert_eq!(disk_size(&dir.join("disk.qcow2")).await.0, 2 << 30);
        d.power_on(uuid).await.unwrap();
        assert!(cmdline_of(root.path(), uuid).contains("320M"));
        d.power_off(uuid).await.unwrap();
        d.resize(&spec(uuid, "testvm")).await.unwrap();
        assert_eq!(disk_size(&dir.join("disk.qcow2")).await.0, 1 << 30);
        assert!(!dir.join("pre-resize-disk.qcow2").exists());

        // Soft reboot: through ACPI, the guest boots again.
        d.power_on(uuid).await.unwrap();
        wait_ready(&d, uuid, 3).await;
        d.reboot(uuid, false).await.unwrap();
        assert_eq!(power(&d, uuid).await, Some(PowerState::Running));
        wait_ready(&d, uuid, 4).await;

        d.destroy(uuid).await.unwrap();
        std::fs::remove_file(&snap).unwrap();
        assert_nothing_left(root.path());
    }

    /// Runs qemu-io on a disk file: `write` a pattern into a powered-off guest's disk, or
    /// `read` it back (checked: qemu-io says "Pattern verification failed" otherwise).
    fn qemu_io(disk: &std::path::Path, command: &str) -> String {
        let read_only: &[&str] = if command.starts_with("read") {
            &["-r", "-U"]
        } else {
            &[]
        };
        let out = std::process::Command::new("/usr/bin/qemu-io")
            .args(read_only)
            .args(["-f", "qcow2", "-c", command])
            .arg(disk)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "qemu-io {command}: {text}");
        text
    }

    fn has_pattern(disk: &std::path::Path) -> bool {
        !qemu_io(disk, "read -P 0x5a 3M 64k").contains("verification failed")
    }

    /// Where the tests write into an ephemeral disk: a data block of its file system's last
    /// group (past the metadata mkfs wrote).
    const EPHEMERAL_DATA: &str = "1000M";

    fn has_ephemeral_pattern(disk: &std::path::Path) -> bool {
        !qemu_io(disk, &format!("read -P 0x6b {EPHEMERAL_DATA} 64k"))
            .contains("verification failed")
    }

    /// A guest spec with the flavor's extra disks: a 1 GiB ephemeral disk and 64 MiB of swap.
    fn spec_with_scratch(uuid: &str) -> GuestSpec {
        GuestSpec {
            ephemeral_gb: 1,
            swap_mb: 64,
            ..spec(uuid, "testvm")
        }
    }

    /// The sizes (in KiB) of the guest's vdb and vdc as its kernel sees them.
    async fn guest_extra_disks(dir: &GuestDir) -> (Option<u64>, Option<u64>) {
        let text = serial_run(dir, "cat /proc/partitions").await;
        let size = |name: &str| {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 4 && f[3] == name).then(|| f[2].parse().unwrap())
            })
        };
        (size("vdb"), size("vdc"))
    }

    /// Runs `command` on the guest's serial console (logging in as testvm/testvm when it
    /// asks) and returns what it printed: proof that the guest runs and answers.
    async fn serial_run(dir: &GuestDir, command: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::UnixStream::connect(dir.serial_socket())
            .await
            .unwrap();
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        let until = tokio::time::Instant::now() + Duration::from_secs(90);
        let mut sent_command = false;
        s.write_all(b"\n").await.unwrap();
        loop {
            assert!(
                tokio::time::Instant::now() < until,
                "serial console: {seen:?}"
            );
            if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await
            {
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            if sent_command {
                // The marker as printed, not as echoed while typed.
                if let Some(i) = seen.find("MARK-42\r\n") {
                    return seen[..i].to_string();
                }
            } else if seen.ends_with("login: ") || seen.ends_with("Password: ") {
                s.write_all(b"testvm\n").await.unwrap();
                seen.clear();
            } else if seen.contains("$ ") {
                let line = format!("{command}; echo MARK-$((40+2))\n");
                s.write_all(line.as_bytes()).await.unwrap();
                seen.clear();
                sent_command = true;
            }
        }
    }

    /// A cold move: the source hands its powered-off guest's disk over, the destination (its
    /// own image cache, its own directories) builds the guest from it, grown to the new
    /// flavor's disk, with what the guest wrote.
    #[tokio::test]
    async fn a_cold_move_carries_the_disk_to_another_host() {
        let root = tempfile::tempdir().unwrap();
        let _guard = KillAll(root.path().to_path_buf());
        let (a, b) = (
            driver(&root.path().join("a")),
            driver(&root.path().join("b")),
        );
        let uuid = "c01d0000-1234-4567-89ab-cdef01234567";
        // With a config drive holding what was injected at create (which the controller no
        // longer has when the guest moves): it moves as it was.
        let created = GuestSpec {
            config_drive: true,
            injected: Some(ferrostack_agent_api::Injected {
                files: Vec::new(),
                admin_pass: Some("moved-pass".into()),
            }),
            ..spec_with_scratch(uuid)
        };
        a.spawn(&created).await.unwrap();
        a.power_off(uuid).await.unwrap();
        let disk_a = root.path().join("a").join(uuid).join("disk.qcow2");
        qemu_io(&disk_a, "write -P 0x5a 3M 64k");
        // The flavor's extra disks, made as Nova makes them: ext4 labelled `ephemeral0`
        // (the label at byte 1144, in the superblock), swap labelled `swap0` (byte 1052).
        let eph_a = root.path().join("a").join(uuid).join("disk.eph0.qcow2");
        let swap_a = root.path().join("a").join(uuid).join("disk.swap.qcow2");
        assert!(qemu_io(&eph_a, "read -v 1144 16").contains("ephemeral0"));
        assert!(qemu_io(&swap_a, "read -v 1052 16").contains("swap0"));
        assert_eq!(disk_size(&swap_a).await.0, 64 << 20);
        qemu_io(&eph_a, &format!("write -P 0x6b {EPHEMERAL_DATA} 64k"));

        let handed = root.path().join("handed.qcow2");
        assert!(a.hand_over(uuid, &handed).await.unwrap());
        let mut bigger = GuestSpec {
            config_drive: true,
            ..spec_with_scratch(uuid)
        };
        bigger.root_gb = 2;
        bigger.ephemeral_gb = 2;
        bigger.swap_mb = 128;
        b.receive(&bigger, Some(&handed)).await.unwrap();
        b.receive(&bigger, Some(&handed)).await.unwrap(); // idempotent
        assert_eq!(power(&b, uuid).await, Some(PowerState::Running));
        wait_ready(&b, uuid, 0).await;
        // The guest sees its ephemeral disk grown and its new swap disk.
        let dir_b = GuestDir::with_run(&root.path().join("b"), &root.path().join("b/run"), uuid);
        assert_eq!(
            guest_extra_disks(&dir_b).await,
            (Some(2 << 20), Some(128 << 10))
        );
        let disk_b = root.path().join("b").join(uuid).join("disk.qcow2");
        let (size, backing) = disk_size(&disk_b).await;
        assert_eq!(size, 2 << 30);
        assert_eq!(
            backing.as_deref(),
            Some(super::testvm_dir().join("testvm.qcow2").to_str().unwrap())
        );
        b.power_off(uuid).await.unwrap();
        assert!(has_pattern(&disk_b), "the written data did not move");
        let eph_b = root.path().join("b").join(uuid).join("disk.eph0.qcow2");
        assert!(
            has_ephemeral_pattern(&eph_b),
            "the ephemeral disk did not move"
        );
        let iso = |host: &str| {
            std::fs::read(root.path().join(host).join(uuid).join("disk.config")).unwrap()
        };
        assert_eq!(iso("a"), iso("b"), "the config drive moved as it was");
        // The source still has its copy (a revert would start it again).
        assert!(has_pattern(&disk_a));

        a.destroy(uuid).await.unwrap();
        b.destroy(uuid).await.unwrap();
        std::fs::remove_file(&handed).unwrap();
        assert_nothing_left(&root.path().join("a"));
        assert_nothing_left(&root.path().join("b"));
    }

    /// A hand-over comes over the network: a disk in it whose qcow2 header names another file
    /// of this host (a backing file for the ephemeral disk, an external data file) is refused
    /// before anything opens it for a guest, and nothing of the guest stays.
    #[tokio::test]
    async fn a_handed_over_disk_naming_other_files_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let _guard = KillAll(root.path().to_path_buf());
        let b = driver(&root.path().join("b"));
        let uuid = "bad00000-1234-4567-89ab-cdef01234567";
        let secret = root.path().join("secret.raw");
        std::fs::write(&secret, vec![0x42u8; 1 << 20]).unwrap();
        let staging = root.path().join("staging");
        std::fs::create_dir_all(&staging).unwrap();
        let img = |args: &[&str]| run_ok("qemu-img", args);
        let testvm = super::testvm_dir().join("testvm.qcow2");
        let root_disk = staging.join("disk.qcow2");
        let eph = staging.join("disk.eph0.qcow2");
        let backing: Vec<String> = ["-b", secret.to_str().unwrap(), "-F", "raw"]
            .map(String::from)
            .to_vec();
        let data_file = vec!["-o".to_string(), format!("data_file={}", secret.display())];
        for (what, make_eph) in [("backing file", backing), ("external data file", data_file)] {
            let _ = std::fs::remove_file(&root_disk);
            let _ = std::fs::remove_file(&eph);
            img(&[
                "create",
                "-q",
                "-f",
                "qcow2",
                "-b",
                testvm.to_str().unwrap(),
                "-F",
                "qcow2",
                root_disk.to_str().unwrap(),
                "1G",
            ]);
            let mut args = vec!["create", "-q", "-f", "qcow2"];
            args.extend(make_eph.iter().map(String::as_str));
            args.extend([eph.to_str().unwrap(), "1M"]);
            img(&args);
            let handed = root.path().join("handed.tar");
            run_ok(
                "tar",
                &[
                    "-cf",
                    handed.to_str().unwrap(),
                    "-C",
                    staging.to_str().unwrap(),
                    "disk.qcow2",
                    "disk.eph0.qcow2",
                ],
            );
            let spec = GuestSpec {
                ephemeral_gb: 1,
                ..spec(uuid, "testvm")
            };
            let err = b
                .receive(&spec, Some(&handed))
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains(what), "{what}: {err}");
            assert!(b.list().await.unwrap().is_empty());
            assert_nothing_left(&root.path().join("b"));
        }
    }

    /// Live migration without shared storage: the destination waits with a fresh overlay
    /// served over NBD; the source mirrors its disk there and sends its memory; the guest
    /// runs on at the destination without booting again, its data with it.
    #[tokio::test]
    async fn a_live_migration_keeps_the_guest_running_with_its_disk() {
        let root = tempfile::tempdir().unwrap();
        let _guard = KillAll(root.path().to_path_buf());
        let (a, b) = (
            driver(&root.path().join("a")),
            driver(&root.path().join("b")),
        );
        // The second host is reached over IPv6 (brackets in QEMU's URIs), the first over IPv4.
        let b = QemuDriver {
            migration_address: "::1".into(),
            ..b
        };
        let uuid = "11fe0000-1234-4567-89ab-cdef01234567";
        let s = spec_with_scratch(uuid);
        a.spawn(&s).await.unwrap();
        a.power_off(uuid).await.unwrap();
        qemu_io(
            &root.path().join("a").join(uuid).join("disk.qcow2"),
            "write -P 0x5a 3M 64k",
        );
        let eph = |host: &str| root.path().join(host).join(uuid).join("disk.eph0.qcow2");
        qemu_io(&eph("a"), &format!("write -P 0x6b {EPHEMERAL_DATA} 64k"));
        a.power_on(uuid).await.unwrap();
        wait_ready(&a, uuid, 0).await;
        let dir_a = GuestDir::with_run(&root.path().join("a"), &root.path().join("a/run"), uuid);
        let booted = serial_run(&dir_a, "cat /proc/sys/kernel/random/boot_id").await;

        let ferrostack_virt::Incoming::Waiting { endpoint } = b.incoming(&s, false).await.unwrap()
        else {
            panic!("the destination did not wait for the guest")
        };
        // Asked again (the agent's next pass), it still waits at the same place.
        assert_eq!(
            b.incoming(&s, false).await.unwrap(),
            ferrostack_virt::Incoming::Waiting {
                endpoint: endpoint.clone()
            }
        );
        let progress = send_all(&a, uuid, &endpoint, false).await;
        assert!(!progress.is_empty());
        // Sent: the source's guest is stopped (not running, not to be run), until removed.
        assert_eq!(power(&a, uuid).await, Some(PowerState::NoState));
        a.destroy(uuid).await.unwrap();
        // Until told the source is done, the destination keeps the guest paused.
        assert!(matches!(
            b.incoming(&s, false).await.unwrap(),
            ferrostack_virt::Incoming::Waiting { .. }
        ));
        assert_eq!(
            b.incoming(&s, true).await.unwrap(),
            ferrostack_virt::Incoming::Arrived
        );
        assert_eq!(power(&b, uuid).await, Some(PowerState::Paused));
        b.unpause(uuid).await.unwrap();
        assert_eq!(power(&b, uuid).await, Some(PowerState::Running));

        // The same boot (no 'testvm ready' here), answering on its serial console.
        let dir_b = GuestDir::with_run(&root.path().join("b"), &root.path().join("b/run"), uuid);
        let log = b.console_output(uuid, None).await.unwrap();
        assert!(!log.contains("testvm ready"), "{log}");
        let after = serial_run(&dir_b, "cat /proc/sys/kernel/random/boot_id").await;
        let id = |t: &str| {
            t.lines()
                .map(str::trim)
                .find(|l| l.len() == 36 && l.matches('-').count() == 4)
                .map(str::to_string)
        };
        assert!(id(&booted).is_some(), "{booted:?}");
        assert_eq!(id(&booted), id(&after));
        // Every disk came along: the ephemeral one with its data, the swap disk.
        assert_eq!(
            guest_extra_disks(&dir_b).await,
            (Some(1 << 20), Some(64 << 10))
        );

        // And back: a guest that came by migration goes on by migration (its QEMU's
        // `query-migrate` shows the incoming one completed; that is not a sent guest).
        let ferrostack_virt::Incoming::Waiting { endpoint } = a.incoming(&s, false).await.unwrap()
        else {
            panic!("the first host did not wait for the guest")
        };
        send_all(&b, uuid, &endpoint, false).await;
        b.destroy(uuid).await.unwrap();
        assert_eq!(
            a.incoming(&s, true).await.unwrap(),
            ferrostack_virt::Incoming::Arrived
        );
        a.unpause(uuid).await.unwrap();
        let back = serial_run(&dir_a, "cat /proc/sys/kernel/random/boot_id").await;
        assert_eq!(id(&booted), id(&back));

        a.power_off(uuid).await.unwrap();
        assert!(has_pattern(
            &root.path().join("a").join(uuid).join("disk.qcow2")
        ));
        assert!(has_ephemeral_pattern(&eph("a")));
        a.destroy(uuid).await.unwrap();
        assert_nothing_left(&root.path().join("a"));
        assert_nothing_left(&root.path().join("b"));
    }

    /// Where the destination `d` waits for the guest of `s`.
    async fn waiting(d: &QemuDriver, s: &GuestSpec) -> String {
        match d.incoming(s, false).await.unwrap() {
            ferrostack_virt::Incoming::Waiting { endpoint } => endpoint,
            other => panic!("the destination does not wait: {other:?}"),
        }
    }

    /// Boot id printed on the guest's serial console.
    fn boot_id(t: &str) -> Option<String> {
        t.lines()
            .map(str::trim)
            .find(|l| l.len() == 36 && l.matches('-').count() == 4)
            .map(str::to_string)
    }

    /// An admin's hand on a live migration: called off mid-way (abort), the guest runs on
    /// at its source; called off just after all was sent (an abort that won the race with
    /// the source's report), it runs on there too; forced to complete, a migration held back
    /// by its bandwidth cap finishes at once, the guest paused for it.
    #[tokio::test]
    async fn a_live_migration_can_be_called_off_or_forced_to_complete() {
        let root = tempfile::tempdir().unwrap();
        let _guard = KillAll(root.path().to_path_buf());
        // 1 MiB/s: a 256 MiB guest takes far longer than this test to send without help.
        let a = capped_driver(&root.path().join("a"), Some(1 << 20));
        let b = driver(&root.path().join("b"));
        let uuid = "ab0e0000-1234-4567-89ab-cdef01234567";
        let s = spec(uuid, "testvm");
        a.spawn(&s).await.unwrap();
        wait_ready(&a, uuid, 0).await;
        let dir_a = GuestDir::with_run(&root.path().join("a"), &root.path().join("a/run"), uuid);
        let booted = boot_id(&serial_run(&dir_a, "cat /proc/sys/kernel/random/boot_id").await);
        assert!(booted.is_some());

        // 1. Aborted while the memory goes: the figures said how far it was.
        let endpoint = waiting(&b, &s).await;
        let mut memory = None;
        for _ in 0..1200 {
            match a.send(uuid, &endpoint, false).await.unwrap() {
                ferrostack_virt::Outgoing::Sending(p) if p.memory_total.is_some() => {
                    memory = Some(p);
                    break;
                }
                ferrostack_virt::Outgoing::Sending(_) => {}
                ferrostack_virt::Outgoing::Sent => panic!("sent despite the cap"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let memory = memory.expect("the memory copy did not start within 60 s");
        // The guest's RAM and the machine's other memory (ROMs, video).
        assert!(memory.memory_total.unwrap() >= 256 << 20, "{memory:?}");
        assert!(memory.memory_remaining.unwrap() > 0, "{memory:?}");
        // The disk's figures too (its overlay: what the guest wrote, here nothing yet).
        assert!(memory.disk_total.is_some(), "{memory:?}");
        a.stay(uuid).await.unwrap();
        a.stay(uuid).await.unwrap(); // idempotent
        b.destroy(uuid).await.unwrap();
        assert_eq!(power(&a, uuid).await, Some(PowerState::Running));
        let after = serial_run(&dir_a, "cat /proc/sys/kernel/random/boot_id").await;
        assert_eq!(boot_id(&after), booted);

        // 2. Forced to complete: done at once despite the cap; then called off all the same
        // (the abort won): the sent guest runs on here.
        let endpoint = waiting(&b, &s).await;
        a.send(uuid, &endpoint, false).await.unwrap();
        send_all(&a, uuid, &endpoint, true).await;
        assert_eq!(power(&a, uuid).await, Some(PowerState::NoState));
        b.destroy(uuid).await.unwrap();
        a.stay(uuid).await.unwrap();
        assert_eq!(power(&a, uuid).await, Some(PowerState::Running));
        let after = serial_run(&dir_a, "cat /proc/sys/kernel/random/boot_id").await;
        assert_eq!(boot_id(&after), booted);

        // 3. Forced from the start, and let through: the guest arrives paused (as forced)
        // and runs on at the destination, the same boot.
        let endpoint = waiting(&b, &s).await;
        send_all(&a, uuid, &endpoint, true).await;
        a.destroy(uuid).await.unwrap();
        assert_eq!(
            b.incoming(&s, true).await.unwrap(),
            ferrostack_virt::Incoming::Arrived
        );
        b.unpause(uuid).await.unwrap();
        let dir_b = GuestDir::with_run(&root.path().join("b"), &root.path().join("b/run"), uuid);
        let there = serial_run(&dir_b, "cat /proc/sys/kernel/random/boot_id").await;
        assert_eq!(boot_id(&there), booted);

        b.destroy(uuid).await.unwrap();
        assert_nothing_left(&root.path().join("a"));
        assert_nothing_left(&root.path().join("b"));
    }
}
