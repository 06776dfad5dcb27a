//! One QEMU process per guest, detached from the agent: `-daemonize` puts it in a session of
//! its own, so an agent that restarts or crashes never takes a guest down; a restarted agent
//! finds it again through its pid file ([`QemuProcess::adopt`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::process::{kill_process, test_kill_process, Pid, Signal};

use super::qmp::Qmp;
use super::{io, QemuError, Result};

/// The files of one guest on its host, all in one directory the guest owns (deleting the
/// guest removes the directory, so nothing is left behind), and its sockets in a directory
/// of its own under a short runtime path (a unix socket's path has at most 107 bytes, which
/// a data directory nested deep enough would exceed).
#[derive(Debug, Clone)]
pub struct GuestDir {
    pub uuid: String,
    pub path: PathBuf,
    /// Where the guest's sockets are (QMP, serial, VNC).
    pub run: PathBuf,
}

impl GuestDir {
    /// Files and sockets in `<root>/<uuid>`.
    pub fn new(root: &Path, uuid: &str) -> GuestDir {
        GuestDir::with_run(root, root, uuid)
    }

    /// Files in `<root>/<uuid>`, sockets in `<run_root>/<uuid>`.
    pub fn with_run(root: &Path, run_root: &Path, uuid: &str) -> GuestDir {
        GuestDir {
            uuid: uuid.to_string(),
            path: root.join(uuid),
            run: run_root.join(uuid),
        }
    }
    pub fn pid_file(&self) -> PathBuf {
        self.path.join("qemu.pid")
    }
    pub fn qmp_socket(&self) -> PathBuf {
        self.run.join("qmp.sock")
    }
    /// The serial console's output.
    pub fn console_log(&self) -> PathBuf {
        self.path.join("console.log")
    }
    /// The serial console itself, for an interactive client (one at a time).
    pub fn serial_socket(&self) -> PathBuf {
        self.run.join("serial.sock")
    }
    /// The guest's screen over VNC, when it has one.
    pub fn vnc_socket(&self) -> PathBuf {
        self.run.join("vnc.sock")
    }
    /// What QEMU wrote to stderr while starting.
    fn launch_log(&self) -> PathBuf {
        self.path.join("qemu.log")
    }
}

/// A running QEMU process of one guest.
#[derive(Debug, Clone)]
pub struct QemuProcess {
    pub dir: GuestDir,
    pub pid: i32,
}

impl QemuProcess {
    /// Starts `binary` for the guest with the machine arguments `machine_args` (CPU, memory,
    /// disks, ...); this adds what makes it a detached, controllable process: its name (the
    /// guest's uuid, which [`QemuProcess::adopt`] checks), `-daemonize` with a pid file, the
    /// QMP socket, the serial console to a socket and a log file, no local display. Returns once QEMU has
    /// daemonized, i.e. the machine is set up and its QMP socket listens; QEMU's own words
    /// when it refuses.
    pub async fn launch(
        binary: &Path,
        dir: &GuestDir,
        machine_args: &[OsString],
    ) -> Result<QemuProcess> {
        for d in [&dir.path, &dir.run] {
            tokio::fs::create_dir_all(d)
                .await
                .map_err(io(format!("creating {}", d.display())))?;
        }
        let arg = |a: &str| OsString::from(a);
        let mut args: Vec<OsString> = vec![
            arg("-name"),
            OsString::from(format!("guest={},process=qemu-{}", dir.uuid, dir.uuid)),
            arg("-daemonize"),
            arg("-pidfile"),
            dir.pid_file().into_os_string(),
            arg("-qmp"),
            OsString::from(format!(
                "unix:{},server=on,wait=off",
                dir.qmp_socket().display()
            )),
            // The serial console: a socket for an interactive client, everything it carries
            // also appended to the log across power cycles, as Nova keeps a guest's console
            // log.
            arg("-chardev"),
            OsString::from(format!(
                "socket,id=console0,path={},server=on,wait=off,logfile={},logappend=on",
                dir.serial_socket().display(),
                dir.console_log().display()
            )),
            arg("-serial"),
            arg("chardev:console0"),
            arg("-display"),
            arg("none"),
            arg("-nodefaults"),
        ];
        args.extend(machine_args.iter().cloned());
        let log = std::fs::File::create(dir.launch_log())
            .map_err(io(format!("creating {}", dir.launch_log().display())))?;
        // QEMU's daemonizing parent exits once the child is ready; its exit code says whether
        // the machine started.
        let status = tokio::process::Command::new(binary)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .status()
            .await
            .map_err(io(format!("running {}", binary.display())))?;
        if !status.success() {
            let stderr = tokio::fs::read_to_string(dir.launch_log())
                .await
                .unwrap_or_default()
                .trim()
                .to_string();
            return Err(QemuError::Launch { stderr });
        }
        Self::adopt(dir)
            .await?
            .ok_or_else(|| QemuError::NotRunning(dir.uuid.clone()))
    }

    /// The guest's running QEMU, if its pid file names a live process that is this guest's
    /// QEMU (a recycled pid is not).
    pub async fn adopt(dir: &GuestDir) -> Result<Option<QemuProcess>> {
        let text = match tokio::fs::read_to_string(dir.pid_file()).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(format!("reading {}", dir.pid_file().display()))(e)),
        };
        let Ok(pid) = text.trim().parse::<i32>() else {
            return Ok(None);
        };
        let cmdline = match tokio::fs::read(format!("/proc/{pid}/cmdline")).await {
            Ok(c) => c,
            Err(_) => return Ok(None),
        };
        let marker = format!("guest={}", dir.uuid);
        let ours = cmdline
            .split(|b| *b == 0)
            .any(|a| a.starts_with(marker.as_bytes()));
        Ok(ours.then(|| QemuProcess {
            dir: dir.clone(),
            pid,
        }))
    }

    pub fn qmp(&self) -> Qmp {
        Qmp::new(&self.dir.qmp_socket())
    }

    fn rustix_pid(&self) -> Option<Pid> {
        Pid::from_raw(self.pid)
    }

    /// Whether the process still runs (a zombie nobody reaped yet does not). A killed QEMU's
    /// main thread may be a zombie while its other threads still exit and hold its files
    /// (the pid file's lock among them): it runs until every thread is gone.
    pub fn is_alive(&self) -> bool {
        if self
            .rustix_pid()
            .is_none_or(|p| test_kill_process(p).is_err())
        {
            return false;
        }
        let live = |stat: &str| {
            // The state is the first field after the parenthesised command name.
            stat.rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next())
                .is_some_and(|state| state != "Z" && state != "X")
        };
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return false;
        };
        tasks
            .filter_map(|t| t.ok())
            .any(|t| std::fs::read_to_string(t.path().join("stat")).is_ok_and(|stat| live(&stat)))
    }

    /// Ends QEMU: `quit` over QMP, then SIGKILL if it is still there after `grace`. Returns
    /// once the process is gone.
    pub async fn kill(&self, grace: Duration) -> Result<()> {
        if self.is_alive() {
            let _ = self.qmp().quit().await;
        }
        let until = tokio::time::Instant::now() + grace;
        while self.is_alive() && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.is_alive() {
            if let Some(p) = self.rustix_pid() {
                let _ = kill_process(p, Signal::KILL);
            }
            while self.is_alive() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        Ok(())
    }
}

/// What a QEMU process holds in memory, in KiB: everything resident, and the resident part
/// of the guest's RAM (the one anonymous mapping of the guest's memory size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUse {
    pub resident_kib: u64,
    pub guest_kib: u64,
}

/// The memory use of QEMU process `pid` running a guest of `memory_mb`, from
/// `/proc/<pid>/smaps`.
pub fn memory_use(pid: i32, memory_mb: i64) -> Option<MemoryUse> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let guest = u64::try_from(memory_mb).ok()? * 1024;
    let (mut size, mut resident_kib, mut guest_kib) = (0u64, 0u64, 0u64);
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        match (
            words.next(),
            words.next().and_then(|n| n.parse::<u64>().ok()),
        ) {
            (Some("Size:"), Some(n)) => size = n,
            (Some("Rss:"), Some(n)) => {
                resident_kib += n;
                // The guest's RAM, rounded up to QEMU's alignment.
                if size >= guest && size <= guest + 4096 {
                    guest_kib += n;
                }
            }
            _ => {}
        }
    }
    Some(MemoryUse {
        resident_kib,
        guest_kib,
    })
}
