//! vportctl: the command-line client of vportd's control socket.
//!
//! ```text
//! vportctl [--ctl PATH] [--json] [--timeout SECS] COMMAND [ARG...]
//! ```
//!
//! Sends the command as one shell-quoted line, prints the reply's `text`
//! (or its `data` as pretty JSON with `--json`). Exit status: 0 on
//! success, 1 when the daemon answered with an error (printed on stderr) or
//! the command line is wrong, 2 when the daemon cannot be reached.
//!
//! `add-flows FILE|-`, `replace-flows FILE|-` and `add-groups FILE|-` read the file (or standard
//! input) here and send its lines in the request, so the daemon needs no
//! access to the file. `capture PORT FILE` is written by the daemon: a
//! relative FILE is sent as an absolute path.

#[path = "../ctl/proto.rs"]
#[allow(dead_code)]
mod proto;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage: vportctl [--ctl PATH] [--json] [--timeout SECS] COMMAND [ARG...]

  --ctl PATH      control socket (default: $VPORTD_CTL, else /run/vportd/vportd.ctl
                  for root, $XDG_RUNTIME_DIR/vportd/vportd.ctl otherwise)
  --json          print the reply's data as JSON instead of the table
  --timeout SECS  how long to wait for the reply (default 60)

`vportctl help` lists the daemon's commands.
exit status: 0 ok, 1 the command failed, 2 the daemon cannot be reached";

struct Opts {
    ctl: PathBuf,
    json: bool,
    timeout: Duration,
    words: Vec<String>,
}

enum Fail {
    /// Bad usage or a failed request: exit 1.
    Usage(String),
    /// The daemon cannot be reached: exit 2.
    Unreachable(String),
}

fn parse_args(args: Vec<String>) -> Result<Option<Opts>, Fail> {
    let mut ctl: Option<PathBuf> = std::env::var_os("VPORTD_CTL")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let mut json = false;
    let mut timeout = Duration::from_secs(60);
    let mut it = args.into_iter().peekable();
    while let Some(a) = it.peek().cloned() {
        if !a.starts_with('-') || a == "-" {
            break;
        }
        it.next();
        match a.as_str() {
            "--json" | "-j" => json = true,
            "--ctl" => {
                let v = it
                    .next()
                    .ok_or_else(|| Fail::Usage("--ctl needs a PATH".into()))?;
                ctl = Some(PathBuf::from(v));
            }
            "--timeout" => {
                let v = it
                    .next()
                    .ok_or_else(|| Fail::Usage("--timeout needs SECS".into()))?;
                let s: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s > 0.0 && s.is_finite())
                    .ok_or_else(|| {
                        Fail::Usage(format!("--timeout {v:?}: not a positive number"))
                    })?;
                timeout = Duration::from_secs_f64(s);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("vportctl {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--" => break,
            s => {
                if let Some(v) = s.strip_prefix("--ctl=") {
                    ctl = Some(PathBuf::from(v));
                } else {
                    return Err(Fail::Usage(format!("unknown option {s:?}\n{USAGE}")));
                }
            }
        }
    }
    // `--json` is also accepted after the command (no command takes it).
    let mut words: Vec<String> = it.collect();
    let n = words.len();
    words.retain(|w| w != "--json");
    json |= words.len() != n;
    if words.is_empty() {
        return Err(Fail::Usage(format!("no command given\n{USAGE}")));
    }
    Ok(Some(Opts {
        ctl: ctl.unwrap_or_else(proto::default_ctl_path),
        json,
        timeout,
        words,
    }))
}

/// `add-flows FILE|-` → `add-flows --inline NAME LINE...`.
fn inline_flow_files(words: Vec<String>) -> Result<Vec<String>, Fail> {
    let cmd = words[0].as_str();
    if !matches!(cmd, "add-flows" | "replace-flows" | "add-groups") || words.len() != 2 {
        return Ok(words);
    }
    let file = &words[1];
    let (text, name) = if file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Fail::Usage(format!("{cmd}: reading standard input: {e}")))?;
        (s, "stdin".to_string())
    } else {
        let s = std::fs::read_to_string(file)
            .map_err(|e| Fail::Usage(format!("{cmd}: {file}: {e}")))?;
        (s, file.clone())
    };
    let mut out = vec![cmd.to_string(), proto::INLINE.to_string(), name];
    out.extend(text.lines().map(str::to_string));
    Ok(out)
}

/// `capture PORT FILE ...`: the daemon writes FILE, so a relative path is
/// made absolute here (relative to vportctl's working directory).
fn absolute_capture_file(mut words: Vec<String>) -> Result<Vec<String>, Fail> {
    if words[0] != "capture" {
        return Ok(words);
    }
    let mut positional = 0;
    let mut i = 1;
    while i < words.len() {
        let w = &words[i];
        if w == "--count" {
            i += 2;
            continue;
        }
        if !w.starts_with("--") {
            positional += 1;
            if positional == 2 {
                let p = std::path::Path::new(w);
                if !p.is_absolute() {
                    let cwd = std::env::current_dir()
                        .map_err(|e| Fail::Usage(format!("capture: current directory: {e}")))?;
                    words[i] = cwd.join(p).display().to_string();
                }
                break;
            }
        }
        i += 1;
    }
    Ok(words)
}

fn request(opts: &Opts, line: &str) -> Result<proto::Reply, Fail> {
    let path = &opts.ctl;
    let unreachable = |what: &str, e: std::io::Error| {
        Fail::Unreachable(format!(
            "cannot {what} the control socket {}: {e} (is vportd running? --ctl PATH selects another socket)",
            path.display()
        ))
    };
    let mut stream = UnixStream::connect(path).map_err(|e| unreachable("connect to", e))?;
    stream
        .set_read_timeout(Some(opts.timeout))
        .map_err(|e| unreachable("use", e))?;
    stream
        .write_all(line.as_bytes())
        .and_then(|_| stream.write_all(b"\n"))
        .and_then(|_| stream.flush())
        .map_err(|e| unreachable("write to", e))?;
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    match reader.read_line(&mut reply) {
        Ok(0) => {
            return Err(Fail::Unreachable(format!(
                "the daemon closed the control socket {} without a reply",
                path.display()
            )))
        }
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            return Err(Fail::Unreachable(format!(
                "no reply on {} within {:.0?} (--timeout SECS waits longer)",
                path.display(),
                opts.timeout
            )))
        }
        Err(e) => return Err(unreachable("read from", e)),
    }
    serde_json::from_str(&reply)
        .map_err(|e| Fail::Usage(format!("unreadable reply from the daemon: {e}: {reply}")))
}

fn run() -> Result<(), Fail> {
    let Some(opts) = parse_args(std::env::args().skip(1).collect())? else {
        return Ok(());
    };
    let words = absolute_capture_file(inline_flow_files(opts.words.clone())?)?;
    if let Some(w) = words.iter().find(|w| w.contains('\n') || w.contains('\r')) {
        return Err(Fail::Usage(format!(
            "argument {w:?} contains a line break (not allowed in a request)"
        )));
    }
    let line = shlex::try_join(words.iter().map(String::as_str))
        .map_err(|e| Fail::Usage(format!("cannot quote the request: {e}")))?;
    let reply = request(&opts, &line)?;
    if !reply.ok {
        return Err(Fail::Usage(reply.error.unwrap_or_else(|| {
            "the daemon reported an error without a reason".into()
        })));
    }
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (`| head`) is not an error worth a panic.
    let _ = if opts.json {
        let data = reply.data.unwrap_or(serde_json::Value::Null);
        let s = serde_json::to_string_pretty(&data).unwrap_or_default();
        writeln!(stdout, "{s}")
    } else {
        let text = reply.text.unwrap_or_default();
        if text.is_empty() || text.ends_with('\n') {
            write!(stdout, "{text}")
        } else {
            writeln!(stdout, "{text}")
        }
    };
    let _ = stdout.flush();
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::Usage(e)) => {
            eprintln!("vportctl: {e}");
            ExitCode::from(1)
        }
        Err(Fail::Unreachable(e)) => {
            eprintln!("vportctl: {e}");
            ExitCode::from(2)
        }
    }
}
