//! Bochs: installing it, building the stub's ROM, and running one Bochs per CPU model with
//! COM1 connected to a TCP listener of ours.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oracle_proto::{MAX_FRAME, Request, Response};

use crate::apt;

/// Size of the ROM image; Bochs maps it at 0xF0000 and below 4 GiB.
pub const ROM_SIZE: usize = 64 * 1024;

/// Installs what is missing (Bochs, its term plugin, objcopy) when running as root; otherwise
/// says which command to run. Returns the Bochs binary.
pub fn ensure_tools() -> Result<PathBuf, String> {
    let [bochs, term] = apt::BOCHS;
    let objcopy = apt::Package {
        name: "binutils",
        probe: apt::Probe::Program("objcopy"),
    };
    apt::ensure("the oracle", &[bochs, term, objcopy])?;
    apt::on_path("bochs-bin")
        .or_else(|| apt::on_path("bochs"))
        .ok_or_else(|| "bochs is still not on PATH".into())
}

/// Builds the stub (its own flags and target directory, outside the workspace) and turns it
/// into a ROM image with the reset vector at the top. Returns the ROM's path.
pub fn build_rom(root: &Path, build_dir: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = build_dir.join("target");
    // Static code at fixed addresses, no red zone (exceptions push onto the interrupted
    // stack), for the host target: there is no bare-metal target on stable without rust-src.
    let rustflags = ["-Crelocation-model=static", "-Cno-redzone=yes"].join("\u{1f}");
    // The stub is outside the workspace, so the format and clippy tiers do not see it: check
    // it here, then build it.
    const TARGET: [&str; 2] = ["--target", "x86_64-unknown-linux-gnu"];
    let steps: [(&str, Vec<&str>); 3] = [
        ("format check", vec!["fmt", "--check"]),
        (
            "clippy",
            [
                &["clippy", "--release", "--quiet"][..],
                &TARGET,
                &["--", "-D", "warnings"],
            ]
            .concat(),
        ),
        (
            "build",
            [&["build", "--release", "--quiet"][..], &TARGET].concat(),
        ),
    ];
    for (what, args) in steps {
        let status = Command::new(&cargo)
            .current_dir(root.join("oracle/stub"))
            .args(&args)
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("CARGO_ENCODED_RUSTFLAGS", &rustflags)
            .env_remove("RUSTFLAGS")
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("oracle stub {what} failed ({status})"));
        }
    }
    let elf = target_dir.join("x86_64-unknown-linux-gnu/release/oracle-stub");
    let rom = build_dir.join("oracle.rom");
    let status = Command::new("objcopy")
        .args(["-O", "binary"])
        .arg(&elf)
        .arg(&rom)
        .status()
        .map_err(|e| format!("cannot run objcopy: {e}"))?;
    if !status.success() {
        return Err(format!("objcopy failed ({status})"));
    }
    let image = std::fs::read(&rom).map_err(|e| format!("{}: {e}", rom.display()))?;
    // The image spans 0xF0000..0x100000: the reset vector (a far JMP, opcode EA) sits at
    // offset 0xFFF0.
    if image.len() != ROM_SIZE || image.get(0xFFF0) != Some(&0xEA) {
        return Err(format!(
            "{}: expected a {ROM_SIZE}-byte ROM with a far jump at 0xFFF0, got {} bytes",
            rom.display(),
            image.len()
        ));
    }
    Ok(rom)
}

/// Time allowed for Bochs to start and the stub to announce itself.
const BOOT_TIMEOUT: Duration = Duration::from_secs(20);
/// Time allowed for one response.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One Bochs process running the stub, and the link to it.
#[derive(Debug)]
pub struct Session {
    model: String,
    child: Child,
    stream: TcpStream,
    pending: Vec<u8>,
    stdout_path: PathBuf,
    /// Requests answered so far.
    pub requests: usize,
}

impl Session {
    /// Starts Bochs with CPU model `model`, and waits for the stub's `Booted` message.
    pub fn start(
        bochs: &Path,
        rom: &Path,
        model: &str,
        dir: &Path,
    ) -> Result<(Self, oracle_proto::Booted), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot listen: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let config = dir.join("bochsrc");
        let commands = dir.join("commands");
        let stdout_path = dir.join("bochs.out");
        // ips: emulated UART time is counted in instructions, so a low rate moves bytes in
        // fewer host instructions; sync=none runs as fast as the host allows.
        let text = format!(
            "megs: 32\nromimage: file={rom}\ncpu: model={model}, count=1, ips=4000000, ignore_bad_msrs=0\nclock: sync=none\n\
             display_library: term\nport_e9_hack: enabled=1\n\
             com1: enabled=1, mode=socket-client, dev=127.0.0.1:{port}\nlog: {log}\n",
            rom = rom.display(),
            log = dir.join("bochs.log").display(),
        );
        std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
        // The debugger-enabled build stops before the first instruction: "c" continues.
        std::fs::write(&commands, "c\n").map_err(|e| format!("{}: {e}", commands.display()))?;
        let stdout = std::fs::File::create(&stdout_path).map_err(|e| e.to_string())?;
        let stderr = stdout.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(bochs)
            .args(["-q", "-f"])
            .arg(&config)
            .arg("-rc")
            .arg(&commands)
            .env("TERM", "dumb")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bochs.display()))?;
        let mut session = Session {
            model: model.into(),
            child,
            // Replaced once Bochs connects (a placeholder cannot be made without a peer).
            stream: accept(&listener, BOOT_TIMEOUT).map_err(|e| format!("{model}: {e}"))?,
            pending: Vec::new(),
            stdout_path,
            requests: 0,
        };
        session.stream.set_nodelay(true).map_err(|e| e.to_string())?;
        match session.receive(BOOT_TIMEOUT)? {
            Response::Booted(booted) if booted.version == oracle_proto::PROTOCOL_VERSION => {
                Ok((session, booted))
            }
            other => Err(session.failure(&format!("expected Booted, got {other:?}"))),
        }
    }

    /// A failure message with the tail of Bochs' output.
    fn failure(&mut self, what: &str) -> String {
        let output = std::fs::read_to_string(&self.stdout_path).unwrap_or_default();
        let tail: Vec<&str> = output
            .lines()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!("Bochs exited ({status})"),
            _ => "Bochs still running".into(),
        };
        format!(
            "{}: {what}; {status}; its output ends:\n    {}",
            self.model,
            tail.join("\n    ")
        )
    }

    fn receive(&mut self, timeout: Duration) -> Result<Response, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == 0) {
                let mut frame: Vec<u8> = self.pending.drain(..=end).collect();
                return oracle_proto::decode::<Response>(&mut frame)
                    .map_err(|e| self.failure(&format!("undecodable response: {e}")));
            }
            if self.pending.len() > MAX_FRAME {
                return Err(self.failure("response frame too long"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.failure("no response in time"));
            }
            self.stream
                .set_read_timeout(Some(left.min(Duration::from_millis(500))))
                .map_err(|e| e.to_string())?;
            quick_ack(&self.stream);
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(self.failure("the link closed")),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if let Ok(Some(_)) = self.child.try_wait() {
                        return Err(self.failure("Bochs ended while a response was awaited"));
                    }
                }
                Err(e) => return Err(self.failure(&format!("link error: {e}"))),
            }
        }
    }

    fn send(&mut self, request: &Request) -> Result<(), String> {
        let mut buf = [0u8; MAX_FRAME];
        let frame = oracle_proto::encode(request, &mut buf).map_err(|e| format!("cannot encode: {e}"))?;
        self.stream
            .write_all(frame)
            .map_err(|e| self.failure(&format!("cannot send: {e}")))
    }

    /// Sends a request and waits for its response.
    pub fn call(&mut self, request: &Request) -> Result<Response, String> {
        self.send(request)?;
        let response = self.receive(REQUEST_TIMEOUT)?;
        self.requests += 1;
        Ok(response)
    }

    /// Asks the stub to end Bochs and waits for it; checks the stub's shutdown marker.
    pub fn finish(mut self) -> Result<(), String> {
        self.send(&Request::Shutdown)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // Bochs exits with status 1 even after a requested shutdown: judge by the
                // stub's marker instead.
                let output = std::fs::read_to_string(&self.stdout_path).unwrap_or_default();
                return if output.contains("oracle-stub: shutdown") {
                    Ok(())
                } else {
                    Err(self.failure("Bochs ended without the stub's shutdown marker"))
                };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(self.failure("Bochs did not end after Shutdown"))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn accept(listener: &TcpListener, timeout: Duration) -> Result<TcpStream, String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).map_err(|e| e.to_string())?;
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err("Bochs did not connect to COM1's socket in time".into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(format!("accept failed: {e}")),
        }
    }
}

/// Acknowledges received segments at once: Bochs sends the UART's bytes one `send` each and
/// Nagle holds the next until our ACK, which delayed-ACK would hold for ~40 ms. Linux clears
/// the flag again after some reads, so it is set before every read.
fn quick_ack(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a pointer to an int of the size given.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&raw const one).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

impl super::diff::Oracle for Session {
    fn call(&mut self, request: &Request) -> Result<Response, String> {
        Session::call(self, request)
    }
}
