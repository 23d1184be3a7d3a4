//! SSH through OpenSSH: one authenticated master per host, commands as multiplexed channels
//! (native mux protocol, no `ssh` process per command). Honours `~/.ssh/config`.

use super::process::{Process, Waiter};
use super::{ConnectOptions, HostKeyPolicy, SshTarget, TransportError};
use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use std::num::NonZeroUsize;
use std::sync::Arc;
use tokio::sync::{RwLock, Semaphore};

/// An SSH master connection to one host.
#[derive(Debug)]
pub struct SshConnection {
    target: SshTarget,
    options: ConnectOptions,
    session: RwLock<Arc<Session>>,
    channels: Arc<Semaphore>,
}

impl SshConnection {
    /// Starts the master connection and authenticates.
    pub async fn open(target: &SshTarget, options: &ConnectOptions) -> Result<Self, TransportError> {
        let session = connect(target, options).await?;
        Ok(Self {
            target: target.clone(),
            options: options.clone(),
            session: RwLock::new(Arc::new(session)),
            channels: Arc::new(Semaphore::new(options.channels_per_host.max(1))),
        })
    }

    /// Starts a command line through the host's login shell, as a channel of the master.
    pub(super) async fn spawn(&self, line: &str) -> Result<Process, TransportError> {
        let slot = self
            .channels
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| TransportError::Local("connection is closing".into()))?;
        let session = self.session.read().await.clone();
        let child = match start(session.clone(), line).await {
            Ok(child) => child,
            // The master went away while idle (ControlPersist expired, host rebooted): nothing
            // was started on the host, so reconnect once and start the command then.
            Err(_) if session.check().await.is_err() => {
                let fresh = Arc::new(connect(&self.target, &self.options).await?);
                *self.session.write().await = fresh.clone();
                start(fresh, line)
                    .await
                    .map_err(|e| TransportError::Disconnected(error_chain(&e)))?
            }
            Err(e) => return Err(TransportError::Disconnected(error_chain(&e))),
        };
        super::stats::channel_opened();
        let mut child = child;
        let stdin = child
            .stdin()
            .take()
            .map(|w| Box::new(w) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>);
        let (Some(stdout), Some(stderr)) = (child.stdout().take(), child.stderr().take()) else {
            return Err(TransportError::Local("the command's output pipes are missing".into()));
        };
        Ok(Process {
            stdin,
            stdout: Box::new(stdout),
            stderr: Box::new(stderr),
            waiter: Waiter::Ssh(child),
            _slot: slot,
        })
    }

    /// Whether the master connection still answers.
    pub(super) async fn alive(&self) -> bool {
        let session = self.session.read().await.clone();
        session.check().await.is_ok()
    }

    /// How a program that runs `ssh` itself (`rsync -e`) reaches the host: through this
    /// master's control socket, with the same user, port, identity, config, jump hosts,
    /// known-hosts file and host-key policy should the socket be gone.
    pub(super) async fn client(&self) -> super::SshCommand {
        let socket = self.session.read().await.control_socket().to_path_buf();
        let t = &self.target;
        let policy = match t.host_keys.unwrap_or(self.options.host_keys) {
            HostKeyPolicy::Strict => "yes",
            HostKeyPolicy::AcceptNew => "accept-new",
            HostKeyPolicy::Off => "no",
        };
        let timeout = t
            .connect_timeout
            .unwrap_or(self.options.connect_timeout)
            .as_secs()
            .max(1);
        let mut argv: Vec<String> = vec!["ssh".into()];
        let mut opt = |k: &str, v: String| argv.extend(["-o".to_string(), format!("{k}={v}")]);
        opt("ControlMaster", "no".into());
        opt("ControlPath", socket.display().to_string());
        opt("BatchMode", "yes".into());
        opt("StrictHostKeyChecking", policy.into());
        opt("ConnectTimeout", timeout.to_string());
        if let Some(file) = &t.known_hosts_file {
            opt("UserKnownHostsFile", file.display().to_string());
        }
        let mut flag = |f: &str, v: String| argv.extend([f.to_string(), v]);
        if let Some(file) = t.config_file.as_ref().or(self.options.ssh_defaults.as_ref()) {
            flag("-F", file.display().to_string());
        }
        if let Some(user) = &t.user {
            flag("-l", user.clone());
        }
        if let Some(port) = t.port {
            flag("-p", port.to_string());
        }
        if let Some(key) = &t.key_file {
            flag("-i", key.display().to_string());
        }
        if !t.jump_hosts.is_empty() {
            flag("-J", t.jump_hosts.join(","));
        }
        super::SshCommand {
            argv,
            address: t.address.clone(),
        }
    }

    /// Stops the master.
    pub async fn close(self) {
        self.channels.close();
        let session = self.session.into_inner();
        if let Ok(session) = Arc::try_unwrap(session) {
            let _ = session.close().await;
        }
    }
}

async fn start(session: Arc<Session>, line: &str) -> Result<openssh::Child<Arc<Session>>, openssh::Error> {
    session
        .arc_raw_command(line)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .await
}

async fn connect(target: &SshTarget, options: &ConnectOptions) -> Result<Session, TransportError> {
    let mut b = SessionBuilder::default();
    let policy = target.host_keys.unwrap_or(options.host_keys);
    b.known_hosts_check(match policy {
        HostKeyPolicy::Strict => KnownHosts::Strict,
        HostKeyPolicy::AcceptNew => KnownHosts::Add,
        HostKeyPolicy::Off => KnownHosts::Accept,
    })
    .connect_timeout(target.connect_timeout.unwrap_or(options.connect_timeout))
    .server_alive_interval(std::time::Duration::from_secs(15))
    .control_directory(&options.control_dir)
    // A backstop only: tend closes its masters on exit and on Ctrl-C.
    .control_persist(ControlPersist::IdleFor(
        NonZeroUsize::new(300).unwrap_or(NonZeroUsize::MIN),
    ));
    if let Some(user) = &target.user {
        b.user(user.clone());
    }
    if let Some(port) = target.port {
        b.port(port);
    }
    if let Some(key) = &target.key_file {
        b.keyfile(key);
    }
    if let Some(file) = &target.known_hosts_file {
        b.user_known_hosts_file(file);
    }
    // A host's own `-F` file is used exactly as given, like ssh does; else tend's defaults,
    // which include the user's and the system's config first.
    if let Some(file) = target.config_file.as_ref().or(options.ssh_defaults.as_ref()) {
        b.config_file(file);
    }
    if !target.jump_hosts.is_empty() {
        b.jump_hosts(&target.jump_hosts);
    }
    let started = std::time::Instant::now();
    let session = b.connect_mux(&target.address).await.map_err(|e| classify(&e, target))?;
    super::stats::connected(started.elapsed());
    Ok(session)
}

/// An error and its causes on one line.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Turns ssh's stderr into one line and a hint the operator can act on.
fn classify(e: &openssh::Error, target: &SshTarget) -> TransportError {
    let raw = match e {
        openssh::Error::Connect(io) | openssh::Error::Master(io) => io.to_string(),
        other => error_chain(other),
    };
    let lines: Vec<&str> = raw
        .lines()
        .map(|l| l.trim().trim_start_matches("ssh: "))
        .filter(|l| !l.is_empty() && !l.starts_with('@') && !l.starts_with("Warning: Permanently added"))
        .collect();
    let known_hosts = target
        .known_hosts_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "~/.ssh/known_hosts".into());
    let port = target.port.map(|p| format!(" -p {p}")).unwrap_or_default();
    let addr = &target.address;
    let (message, hint) = if raw.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        (
            format!("host key verification failed: the host key of `{addr}` has changed"),
            Some(format!(
                "if the host was reinstalled, remove the old key with `ssh-keygen -f {known_hosts} -R {addr}` and rerun with `--accept-new-host-keys`; otherwise someone may be intercepting the connection"
            )),
        )
    } else if raw.contains("Host key verification failed") {
        (
            format!("host key verification failed: no known host key for `{addr}`"),
            Some(format!(
                "after checking the key, rerun with `--accept-new-host-keys` to trust it on first use, or add it with `ssh-keyscan{port} {addr} >> {known_hosts}`"
            )),
        )
    } else if raw.contains("Permission denied") {
        (
            lines.join("; "),
            Some("check `ansible_user` and `ansible_ssh_private_key_file` for this host".into()),
        )
    } else {
        let text = if lines.is_empty() {
            raw.trim().to_string()
        } else {
            lines.join("; ")
        };
        (text, None)
    };
    TransportError::Unreachable { message, hint }
}
