//! `mock-entra`: MockEntra as a standalone http(s) server that clients in any language use
//! unchanged.
//!
//! ```text
//! cargo run -p mock-entra -- --tls --ca-file ca.pem --config mock-entra/demo-scenario.json
//! ```
//!
//! Once listening it prints exactly one line of JSON on stdout (authority host, CA file,
//! control URL, and everything the scenario set up) and logs to stderr. SIGINT and SIGTERM
//! stop it: requests in flight finish (a short drain with a deadline), then it exits with
//! status 0. See `mock-entra/README.md`.

use std::io::Write as _;
use std::net::{IpAddr, TcpListener};
use std::process::ExitCode;
use std::time::Duration;

use mock_entra::MockEntra;

/// A command-line flag: name, value placeholder (none for switches), help, default.
struct Flag {
    name: &'static str,
    value: Option<&'static str>,
    help: &'static str,
    default: &'static str,
}

/// Every flag, in the order `--help` lists them.
const FLAGS: &[Flag] = &[
    Flag {
        name: "--host",
        value: Some("ADDR"),
        help: "Address to listen on. Anything but loopback (e.g. 0.0.0.0, every interface) hands tokens, secrets and the control API to anyone who can reach the port: it warns on stderr.",
        default: "127.0.0.1",
    },
    Flag {
        name: "--port",
        value: Some("PORT"),
        help: "Port to listen on; 0 lets the OS choose (the ready line says which).",
        default: "0",
    },
    Flag {
        name: "--config",
        value: Some("FILE"),
        help: "Scenario file (JSON) applied at start and again by POST /_mock/reset.",
        default: "the built-in demo scenario",
    },
    Flag {
        name: "--empty",
        value: None,
        help: "Start with no tenants or apps instead of the demo scenario (ignored with --config).",
        default: "off",
    },
    Flag {
        name: "--tls",
        value: None,
        help: "Serve https (rustls) with a server certificate signed by the CA.",
        default: "off: plain http",
    },
    Flag {
        name: "--ca-file",
        value: Some("FILE"),
        help: "Write the CA certificate (PEM) here, for clients to trust.",
        default: "not written",
    },
    Flag {
        name: "--ca-cert",
        value: Some("FILE"),
        help: "CA certificate (PEM) to sign the server certificate with; needs --ca-key; implies --tls.",
        default: "a CA generated at start",
    },
    Flag {
        name: "--ca-key",
        value: Some("FILE"),
        help: "The CA's private key (PKCS#8 PEM).",
        default: "none",
    },
    Flag {
        name: "--public-url",
        value: Some("URL"),
        help: "Origin to advertise in metadata, issuers and expected assertion audiences (behind a proxy or a container port).",
        default: "the origin it listens on",
    },
    Flag {
        name: "--allow-host",
        value: Some("NAME"),
        help: "Also answer requests naming this host (NAME, any port; or NAME:PORT) in Host, e.g. a container's name; repeatable. Others get 421 (DNS rebinding).",
        default: "loopback names on its port, the --host address, --public-url's host",
    },
    Flag {
        name: "--loose",
        value: None,
        help: "Ignore request parameters the mock does not know.",
        default: "off: strict, an unknown parameter gets invalid_request naming it",
    },
    Flag {
        name: "--request-log-limit",
        value: Some("N"),
        help: "How many requests the request log keeps (counters count all).",
        default: "10000",
    },
    Flag {
        name: "--access-log",
        value: None,
        help: "Log one line per request to stderr (never bodies or secrets).",
        default: "off",
    },
    Flag {
        name: "--drain-timeout",
        value: Some("SECS"),
        help: "On SIGTERM or SIGINT, wait this long at most for requests in flight to finish, then exit 0 (a second signal exits at once).",
        default: "5",
    },
    Flag {
        name: "--help",
        value: None,
        help: "Print this help and exit.",
        default: "",
    },
    Flag {
        name: "--version",
        value: None,
        help: "Print the version and exit.",
        default: "",
    },
];

const DEMO_SCENARIO: &str = include_str!("../demo-scenario.json");

#[derive(Default)]
struct Options {
    host: Option<String>,
    port: Option<String>,
    config: Option<String>,
    empty: bool,
    tls: bool,
    ca_file: Option<String>,
    ca_cert: Option<String>,
    ca_key: Option<String>,
    public_url: Option<String>,
    loose: bool,
    request_log_limit: Option<String>,
    access_log: bool,
    allow_hosts: Vec<String>,
    drain_timeout: Option<String>,
}

enum Command {
    Run(Box<Options>),
    Help,
    Version,
}

fn usage() -> String {
    let mut out = String::from(
        "mock-entra: a fake Microsoft Entra ID for tests in any language.\n\nUsage: mock-entra [OPTIONS]\n\nOptions:\n",
    );
    for flag in FLAGS {
        let left = match flag.value {
            Some(v) => format!("{} {v}", flag.name),
            None => flag.name.to_owned(),
        };
        let default = if flag.default.is_empty() {
            String::new()
        } else {
            format!(" [default: {}]", flag.default)
        };
        out.push_str(&format!("  {left:<22} {}{default}\n", flag.help));
    }
    out.push_str("\nControl API: {authority}/_mock/ (see mock-entra/README.md). SIGINT or SIGTERM stops it: requests in flight finish, then exit 0.\n");
    out
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut o = Options::default();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let flag = FLAGS
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("unknown argument {arg:?}"))?;
        let value = match (flag.value, inline) {
            (Some(_), Some(v)) => Some(v),
            (Some(placeholder), None) => Some(
                args.next()
                    .ok_or_else(|| format!("{name} needs a value ({placeholder})"))?,
            ),
            (None, Some(_)) => return Err(format!("{name} takes no value")),
            (None, None) => None,
        };
        match name.as_str() {
            "--help" => return Ok(Command::Help),
            "--version" => return Ok(Command::Version),
            "--host" => o.host = value,
            "--port" => o.port = value,
            "--config" => o.config = value,
            "--empty" => o.empty = true,
            "--tls" => o.tls = true,
            "--ca-file" => o.ca_file = value,
            "--ca-cert" => o.ca_cert = value,
            "--ca-key" => o.ca_key = value,
            "--public-url" => o.public_url = value,
            "--loose" => o.loose = true,
            "--request-log-limit" => o.request_log_limit = value,
            "--access-log" => o.access_log = true,
            "--allow-host" => o.allow_hosts.extend(value),
            "--drain-timeout" => o.drain_timeout = value,
            _ => unreachable!("every flag is matched"),
        }
    }
    if o.ca_cert.is_some() != o.ca_key.is_some() {
        return Err("--ca-cert and --ca-key go together".into());
    }
    Ok(Command::Run(Box::new(o)))
}

fn read(path: &str, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {what} {path}: {e}"))
}

/// Builds and starts the mock the options describe.
fn start(o: &Options) -> Result<MockEntra, String> {
    let host = o.host.as_deref().unwrap_or("127.0.0.1");
    let port = o.port.as_deref().unwrap_or("0");
    let port: u16 = port
        .parse()
        .map_err(|_| format!("--port {port:?} is not a port number (0 to 65535)"))?;
    let listener = TcpListener::bind((host, port))
        .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
    let mut builder = MockEntra::builder()
        .listener(listener)
        .access_log(o.access_log);
    if o.tls {
        builder = builder.tls();
    }
    if let (Some(cert), Some(key)) = (&o.ca_cert, &o.ca_key) {
        builder = builder.ca(&read(cert, "--ca-cert")?, &read(key, "--ca-key")?);
    }
    if let Some(url) = &o.public_url {
        builder = builder.public_url(
            url.parse()
                .map_err(|e| format!("--public-url {url:?}: {e}"))?,
        );
    }
    if o.loose {
        builder = builder.loose();
    }
    for name in &o.allow_hosts {
        builder = builder.allow_host(name);
    }
    if let Some(n) = &o.request_log_limit {
        builder = builder.request_log_limit(
            n.parse()
                .map_err(|_| format!("--request-log-limit {n:?} is not a number"))?,
        );
    }
    let scenario = match (&o.config, o.empty) {
        (Some(path), _) => Some(read(path, "--config")?),
        (None, true) => None,
        (None, false) => Some(DEMO_SCENARIO.to_owned()),
    };
    if let Some(text) = scenario {
        let source = o.config.as_deref().unwrap_or("the demo scenario");
        let document =
            serde_json::from_str(&text).map_err(|e| format!("{source} is not JSON: {e}"))?;
        builder = builder.scenario(document);
    }
    builder.try_start().map_err(|e| e.to_string())
}

async fn run(o: Options) -> Result<(), String> {
    let drain = match &o.drain_timeout {
        None => Duration::from_secs(5),
        Some(secs) => Duration::from_secs(
            secs.parse()
                .map_err(|_| format!("--drain-timeout {secs:?} is not a number of seconds"))?,
        ),
    };
    let entra = start(&o)?;
    if let (Some(path), Some(pem)) = (&o.ca_file, entra.ca_pem()) {
        std::fs::write(path, pem).map_err(|e| format!("cannot write --ca-file {path}: {e}"))?;
    }
    // Handlers go in before the ready line: a caller may signal as soon as it reads it.
    let mut stop = Stop::install()?;
    let mut ready = entra.ready_info();
    ready["ca_file"] = serde_json::json!(o.ca_file.as_deref().filter(|_| entra.ca_pem().is_some()));
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{ready}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    drop(stdout);
    let address = entra.address();
    eprintln!(
        "mock-entra: listening on {address} ({}); authority {}, control API {}; SIGINT or SIGTERM stops it",
        reach(address.ip()),
        entra.uri(),
        entra.control_url()
    );
    if !address.ip().is_loopback() {
        eprintln!(
            "mock-entra: WARNING: listening on {address}, not on loopback: anyone who can reach this port \
can sign in as any user, get tokens, and read every secret and private key (GET /_mock/setup). \
It is a test tool: use --host 127.0.0.1 (the default) unless it runs in a container or on a \
network you own. Requests must name a host it serves in Host (loopback names, --public-url's \
host, --allow-host)."
        );
    }
    let signal = stop.wait().await;
    eprintln!(
        "mock-entra: {signal}: stopping; finishing requests in flight ({} s at most)",
        drain.as_secs()
    );
    tokio::select! {
        open = entra.shutdown(drain) => {
            if open > 0 {
                eprintln!("mock-entra: {open} connection(s) still open after {} s: closing them", drain.as_secs());
            }
        }
        again = stop.wait() => eprintln!("mock-entra: {again} again: stopping now"),
    }
    eprintln!("mock-entra: stopped");
    Ok(())
}

/// Who can reach an address, in words.
fn reach(ip: IpAddr) -> &'static str {
    match ip {
        ip if ip.is_loopback() => "loopback: this machine only",
        IpAddr::V4(v4) if v4.is_unspecified() => "every IPv4 interface of this machine",
        IpAddr::V6(v6) if v6.is_unspecified() => "every interface of this machine",
        _ => "one network interface of this machine",
    }
}

/// SIGINT and SIGTERM, listened for from the moment it is installed.
struct Stop {
    #[cfg(unix)]
    signals: (tokio::signal::unix::Signal, tokio::signal::unix::Signal),
}

impl Stop {
    fn install() -> Result<Self, String> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind| {
                signal(kind).map_err(|e| format!("cannot listen for signals: {e}"))
            };
            Ok(Self {
                signals: (
                    listen(SignalKind::interrupt())?,
                    listen(SignalKind::terminate())?,
                ),
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves on SIGINT or SIGTERM (Ctrl-C elsewhere), naming it.
    async fn wait(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            let (int, term) = &mut self.signals;
            tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(Command::Run(o)) => o,
        Ok(Command::Help) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("mock-entra {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("mock-entra: {message}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mock-entra: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(*options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mock-entra: {message}");
            ExitCode::FAILURE
        }
    }
}
