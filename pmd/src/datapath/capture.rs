//! Capture sessions: start (tap every PMD, spawn the writer), stop, list.
//!
//! One session per port. The writer thread writes what the tap queues and,
//! once it has written `limit` packets or is told to stop, closes the tap,
//! tells every PMD to drop it ([`PmdCommand::StopCapture`], waiting for
//! them), writes what was already queued (up to the limit), closes the file
//! and removes its session.

use super::{Datapath, PmdCommand};
use crate::capture::{
    CaptureDir, CaptureError, CaptureInfo, CaptureStatus, CaptureTap, CapturedPacket, PcapWriter,
    CAPTURE_QUEUE,
};
use crate::packet::Packet;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a PMD may take to apply a capture command.
const PMD_ACK_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct Session {
    id: u64,
    status: Arc<CaptureStatus>,
    stop_tx: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

/// The running capture sessions, by OpenFlow port.
#[derive(Default)]
pub(super) struct Sessions {
    by_port: Mutex<HashMap<u32, Session>>,
    next_id: AtomicU64,
}

impl<P: Packet + 'static> Datapath<P> {
    /// Starts capturing what `port` receives and sends into the pcap file
    /// `path` (created or truncated), until `limit` packets are written
    /// (`None`: until [`Datapath::stop_capture`]). Returns once every PMD
    /// mirrors the port.
    ///
    /// The file is opened with `O_NOFOLLOW` (a symlink is refused, never
    /// followed: the daemon often runs as root) and must not exist unless
    /// `overwrite`, in which case an existing regular file is truncated.
    pub fn start_capture(
        &self,
        port: u32,
        path: &Path,
        limit: Option<u64>,
        overwrite: bool,
    ) -> Result<CaptureInfo, CaptureError> {
        if limit == Some(0) {
            return Err(CaptureError::ZeroCount);
        }
        let sessions = self.captures.clone();
        let mut by_port = sessions.by_port.lock();
        if let Some(s) = by_port.get(&port) {
            return Err(CaptureError::Busy {
                port,
                path: s.status.path.clone(),
            });
        }
        if let Some(s) = by_port.values().find(|s| s.status.path == path) {
            return Err(CaptureError::FileInUse {
                port: s.status.port,
                path: path.to_path_buf(),
            });
        }
        let create_err = |source| CaptureError::Create {
            path: path.to_path_buf(),
            source,
        };
        let file = open_capture_file(path, overwrite).map_err(create_err)?;
        let mut writer = PcapWriter::new(BufWriter::new(file)).map_err(create_err)?;
        writer.flush().map_err(create_err)?;

        let (tap, rx) = CaptureTap::new(port, CAPTURE_QUEUE);
        let status = Arc::new(CaptureStatus {
            port,
            path: path.to_path_buf(),
            limit,
            started: Instant::now(),
            written_rx: AtomicU64::new(0),
            written_tx: AtomicU64::new(0),
            error: Mutex::new(None),
            tap: tap.clone(),
        });
        let id = sessions.next_id.fetch_add(1, Ordering::Relaxed);
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let pmd_cmds: Vec<Sender<PmdCommand<P>>> =
            self.pmds.iter().map(|p| p.cmd_tx.clone()).collect();
        let thread = {
            let status = status.clone();
            let sessions = sessions.clone();
            std::thread::Builder::new()
                .name(format!("capture-{port}"))
                .spawn(move || {
                    run_writer(writer, &rx, &stop_rx, &status, &pmd_cmds);
                    let info = status.info();
                    match &info.error {
                        None => log::info!(
                            "capture of port {port} to {} ended: {} packet(s) written, {} lost",
                            info.path.display(),
                            info.written(),
                            info.lost
                        ),
                        Some(e) => log::error!(
                            "capture of port {port} to {} failed after {} packet(s): {e}",
                            info.path.display(),
                            info.written()
                        ),
                    }
                    let mut by_port = sessions.by_port.lock();
                    if by_port.get(&port).is_some_and(|s| s.id == id) {
                        by_port.remove(&port);
                    }
                })
                .map_err(CaptureError::Spawn)?
        };
        for p in &self.pmds {
            p.send(PmdCommand::StartCapture {
                port,
                tap: tap.clone(),
            });
        }
        for p in &self.pmds {
            p.barrier(PMD_ACK_TIMEOUT);
        }
        let info = status.info();
        by_port.insert(
            port,
            Session {
                id,
                status,
                stop_tx,
                thread: Some(thread),
            },
        );
        log::info!(
            "capturing port {port} to {}{}",
            path.display(),
            limit.map_or(String::new(), |n| format!(" ({n} packets)"))
        );
        Ok(info)
    }

    /// Stops the capture on `port`, waiting until its file is complete.
    pub fn stop_capture(&self, port: u32) -> Result<CaptureInfo, CaptureError> {
        let session = self
            .captures
            .by_port
            .lock()
            .remove(&port)
            .ok_or(CaptureError::NotRunning(port))?;
        Ok(end_session(session))
    }

    /// The running captures, by port.
    pub fn captures(&self) -> Vec<CaptureInfo> {
        let mut v: Vec<CaptureInfo> = self
            .captures
            .by_port
            .lock()
            .values()
            .map(|s| s.status.info())
            .collect();
        v.sort_by_key(|c| c.port);
        v
    }

    /// Stops every capture (at shutdown, while the PMDs still run).
    pub(super) fn stop_all_captures(&self) {
        let sessions: Vec<Session> = self
            .captures
            .by_port
            .lock()
            .drain()
            .map(|(_, s)| s)
            .collect();
        for s in sessions {
            end_session(s);
        }
    }
}

fn end_session(mut s: Session) -> CaptureInfo {
    let _ = s.stop_tx.send(());
    if let Some(t) = s.thread.take() {
        let _ = t.join();
    }
    s.status.info()
}

type Writer = PcapWriter<BufWriter<File>>;

/// The writer thread: writes until the limit, a stop request or a write
/// error; then stops the PMDs' mirroring, writes what they had already
/// queued (up to the limit) and closes the file.
fn run_writer<P: Packet>(
    mut w: Writer,
    rx: &Receiver<CapturedPacket>,
    stop_rx: &Receiver<()>,
    st: &CaptureStatus,
    pmds: &[Sender<PmdCommand<P>>],
) {
    while !limit_reached(st) {
        crossbeam_channel::select! {
            recv(rx) -> m => {
                let Ok(p) = m else { break };
                if !write_one(&mut w, &p, st) {
                    break;
                }
                // Keep the file readable while the capture runs.
                if rx.is_empty() && !flush(&mut w, st) {
                    break;
                }
            }
            recv(stop_rx) -> _ => break,
        }
    }
    st.tap.close();
    stop_pmds(pmds, st.port);
    if st.error.lock().is_none() {
        while !limit_reached(st) {
            let Ok(p) = rx.try_recv() else { break };
            if !write_one(&mut w, &p, st) {
                break;
            }
        }
    }
    flush(&mut w, st);
}

fn flush(w: &mut Writer, st: &CaptureStatus) -> bool {
    match w.flush() {
        Ok(()) => true,
        Err(e) => {
            st.error.lock().get_or_insert_with(|| e.to_string());
            false
        }
    }
}

fn limit_reached(st: &CaptureStatus) -> bool {
    st.limit.is_some_and(|n| {
        st.written_rx.load(Ordering::Relaxed) + st.written_tx.load(Ordering::Relaxed) >= n
    })
}

/// Writes one packet; false (error recorded) when the write failed.
fn write_one(w: &mut Writer, p: &CapturedPacket, st: &CaptureStatus) -> bool {
    if let Err(e) = w.write_packet(p.ts, p.orig_len, &p.data) {
        *st.error.lock() = Some(e.to_string());
        return false;
    }
    match p.dir {
        CaptureDir::Rx => st.written_rx.fetch_add(1, Ordering::Relaxed),
        CaptureDir::Tx => st.written_tx.fetch_add(1, Ordering::Relaxed),
    };
    true
}

/// Tells every PMD to drop the tap on `port` and waits until they have.
fn stop_pmds<P: Packet>(pmds: &[Sender<PmdCommand<P>>], port: u32) {
    let mut acks = Vec::new();
    for tx in pmds {
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        if tx.send(PmdCommand::StopCapture { port }).is_ok()
            && tx.send(PmdCommand::Barrier(ack_tx)).is_ok()
        {
            acks.push(ack_rx);
        }
    }
    for a in acks {
        let _ = a.recv_timeout(PMD_ACK_TIMEOUT);
    }
}

/// Opens a capture file without following a symlink at its last component;
/// an existing file is an error unless `overwrite`.
fn open_capture_file(path: &Path, overwrite: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).custom_flags(libc::O_NOFOLLOW).mode(0o600);
    if overwrite {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    // (O_CREAT | O_EXCL never follows a symlink either: EEXIST.)
    let is_link = || std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    o.open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::EEXIST) if is_link() => std::io::Error::new(
            e.kind(),
            "is a symbolic link: refused (capture never follows one)",
        ),
        Some(libc::EEXIST) => {
            std::io::Error::new(e.kind(), "exists: refused (pass --force to overwrite it)")
        }
        _ => e,
    })
}
