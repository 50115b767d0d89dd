//! Producers and consumers: a local child or a process inside a container
//! (through the Engine API), behind one interface the pump uses.

use crate::model::Failure;
use crate::process::{Child, Ended, Out, Shutdown, Stdin};
use crate::restic::ErrorClass;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::Stream;
use futures_util::StreamExt;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::AsyncWrite;
use tokio::io::AsyncWriteExt;

use super::presets::DumpCommand;
use super::{CHUNK, STDERR_TAIL, tail, widen_pipe};

type ExecOutput = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// A process started inside a container through the Engine API.
pub(super) struct Exec {
    api: Docker,
    id: String,
    container: String,
    output: ExecOutput,
    input: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    pending: Vec<u8>,
    pos: usize,
    stderr: String,
    eof: bool,
}

fn docker_error(container: &str, what: &str, e: &bollard::errors::Error) -> Failure {
    use bollard::errors::Error as E;
    let (class, detail) = match e {
        E::DockerResponseServerError {
            status_code: 404,
            message,
        } => (
            ErrorClass::ContainerMissing,
            format!(
                "container `{container}` does not exist ({message}); check the dump's `container`"
            ),
        ),
        E::DockerResponseServerError {
            status_code: 409,
            message,
        } => (
            ErrorClass::DockerFailed,
            format!(
                "container `{container}` is not running ({message}); start it, the dump runs inside it"
            ),
        ),
        other => {
            let mut cur: &(dyn std::error::Error + 'static) = other;
            while let Some(s) = cur.source() {
                cur = s;
            }
            let text = cur.to_string();
            let class = if text.contains("ermission denied") {
                ErrorClass::PermissionDenied
            } else if text.contains("onnection refused") || text.contains("No such file") {
                ErrorClass::DockerUnavailable
            } else {
                ErrorClass::DockerFailed
            };
            (class, format!("{what}: {text}"))
        }
    };
    Failure::new(class, detail)
}

impl Exec {
    pub(super) async fn start(
        container: &str,
        cmd: &DumpCommand,
        stdin: bool,
    ) -> Result<Exec, Failure> {
        let host = crate::sources::docker::docker_host();
        let api = Docker::connect_with_host(&host)
            .map_err(|e| docker_error(container, "connecting to the Docker engine", &e))?;
        let api = api
            .negotiate_version()
            .await
            .map_err(|e| docker_error(container, &format!("the Docker engine at `{host}`"), &e))?;
        let mut env: Vec<String> = cmd.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if let Some(cp) = &cmd.container_password
            && let Some(var) = cp.lookup(&api, container).await
        {
            env.push(var);
        }
        let created = api
            .create_exec(
                container,
                CreateExecOptions::<String> {
                    attach_stdin: Some(stdin),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(false),
                    env: Some(env),
                    cmd: Some(cmd.argv.clone()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| docker_error(container, "creating the exec", &e))?;
        let started = api
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: Some(CHUNK),
                }),
            )
            .await
            .map_err(|e| docker_error(container, "starting the exec", &e))?;
        match started {
            StartExecResults::Attached { output, input } => Ok(Exec {
                api,
                id: created.id,
                container: container.to_string(),
                output,
                input: stdin.then_some(input),
                pending: Vec::new(),
                pos: 0,
                stderr: String::new(),
                eof: false,
            }),
            StartExecResults::Detached => Err(Failure::new(
                ErrorClass::DockerFailed,
                format!("the Docker engine did not attach to the exec in `{container}`"),
            )),
        }
    }

    /// Reads the next stdout bytes; stderr frames are kept aside.
    pub(super) async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let rest = &self.pending[self.pos..];
            if !rest.is_empty() {
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                self.pos += n;
                return Ok(n);
            }
            if self.eof {
                return Ok(0);
            }
            match self.output.next().await {
                None => {
                    self.eof = true;
                }
                Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                    self.pending = message.to_vec();
                    self.pos = 0;
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    self.stderr.push_str(&String::from_utf8_lossy(&message));
                    self.stderr = tail(&self.stderr, STDERR_TAIL);
                }
                Some(Ok(LogOutput::StdIn { .. })) => {}
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
            }
        }
    }

    /// Drains stderr until the stream ends (stdout is discarded).
    pub(super) async fn drain(&mut self) {
        let mut buf = vec![0u8; CHUNK];
        while matches!(self.read(&mut buf).await, Ok(n) if n > 0) {}
    }

    /// The exec's exit, once its streams ended.
    pub(super) async fn wait(&mut self) -> Ended {
        self.drain().await;
        for _ in 0..100 {
            match self.api.inspect_exec(&self.id).await {
                Ok(r) if r.running != Some(true) => {
                    return Ended::Exited(
                        r.exit_code
                            .and_then(|c| i32::try_from(c).ok())
                            .unwrap_or(-1),
                    );
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(_) => return Ended::Exited(-1),
            }
        }
        Ended::Exited(-1)
    }
}

/// Where dump bytes come from.
pub(super) enum Producer {
    Local(Box<Child>),
    Exec(Box<Exec>),
}

impl Producer {
    pub(super) async fn start(
        cmd: &DumpCommand,
        container: Option<&str>,
        stdin: bool,
    ) -> Result<Producer, Failure> {
        match container {
            Some(c) => Ok(Producer::Exec(Box::new(Exec::start(c, cmd, stdin).await?))),
            None => cmd
                .spec()
                .stdin(if stdin { Stdin::Piped } else { Stdin::Null })
                .stdout(Out::Raw)
                .spawn()
                .map(|mut p| {
                    widen_pipe(p.stdout_pipe());
                    widen_pipe(p.stdin());
                    Producer::Local(Box::new(p))
                })
                .map_err(|e| {
                    Failure::new(
                        ErrorClass::DumpFailed,
                        format!("{e}; is it installed and on PATH?"),
                    )
                }),
        }
    }

    pub(super) async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Producer::Local(p) => p.read(buf).await,
            Producer::Exec(e) => e.read(buf).await,
        }
    }

    pub(super) async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        let w: &mut (dyn AsyncWrite + Unpin + Send) = match self {
            Producer::Local(p) => match p.stdin() {
                Some(s) => s,
                None => return Err(std::io::ErrorKind::BrokenPipe.into()),
            },
            Producer::Exec(e) => match e.input.as_mut() {
                Some(s) => s,
                None => return Err(std::io::ErrorKind::BrokenPipe.into()),
            },
        };
        w.write_all(data).await
    }

    /// Closes the child's stdin (end of data).
    pub(super) async fn close_input(&mut self) {
        match self {
            Producer::Local(p) => {
                if let Some(mut s) = p.take_stdin() {
                    let _ = s.shutdown().await;
                }
            }
            Producer::Exec(e) => {
                if let Some(mut s) = e.input.take() {
                    let _ = s.shutdown().await;
                }
            }
        }
    }

    pub(super) async fn wait(&mut self) -> Ended {
        match self {
            Producer::Local(p) => p.wait(&Shutdown::never()).await,
            Producer::Exec(e) => e.wait().await,
        }
    }

    /// Stops the producer. A process inside a container cannot be
    /// signalled through the API; closing the connection leaves it writing
    /// into a closed pipe, which ends it.
    pub(super) async fn stop(&mut self) {
        match self {
            Producer::Local(p) => {
                p.stop().await;
            }
            Producer::Exec(e) => {
                e.input = None;
                e.eof = true;
            }
        }
    }

    /// The stderr tail once it ended.
    pub(super) async fn finish(self, ended: Ended) -> String {
        match self {
            Producer::Local(p) => tail(&p.output(ended).await.stderr, STDERR_TAIL),
            Producer::Exec(e) => e.stderr.clone(),
        }
    }

    pub(super) fn describe(&self, cmd: &DumpCommand) -> String {
        match self {
            Producer::Local(_) => format!("`{}`", cmd.display()),
            Producer::Exec(e) => format!("`{}` in container `{}`", cmd.display(), e.container),
        }
    }
}
