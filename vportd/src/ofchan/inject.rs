//! PACKET_OUT `output:TABLE`: the packet enters the datapath as if port
//! `in_port` had received it, through an extra rx queue of that port
//! (queue [`INJECT_QUEUE`], fed by a bounded channel) that a PMD polls like
//! any other. The PMD runs it through the caches and the OpenFlow pipeline,
//! so a packet-out sees exactly what a received packet sees. The control
//! thread never touches a PMD's queues: it only sends mbufs on the channel.

use crate::switch::Switch;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;
use pmd::{Batch, Mbuf, RxQueue};
use std::collections::HashMap;

/// The rx queue number injected packets arrive on (`rxq-show`: `pN/65280`).
pub const INJECT_QUEUE: u16 = 0xff00;
/// Packet-outs waiting for a PMD, per port.
const DEPTH: usize = 256;

struct InjectRxq {
    rx: Receiver<Mbuf>,
}

impl RxQueue for InjectRxq {
    type Pkt = Mbuf;

    fn recv(&mut self, batch: &mut Batch<Mbuf>) -> usize {
        let mut n = 0;
        while !batch.is_full() {
            match self.rx.try_recv() {
                Ok(m) => {
                    batch.push(m);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        n
    }
}

/// The injection queues, made when a port first needs one.
#[derive(Default)]
pub struct Injector {
    queues: Mutex<HashMap<u32, Sender<Mbuf>>>,
}

impl Injector {
    /// Queues `frame` as received on OpenFlow port `port`.
    pub fn inject(&self, sw: &Switch, port: u32, frame: &[u8]) -> Result<(), String> {
        if !sw.ports.lock().by_ofport.contains_key(&port) {
            return Err(format!("no port {port}"));
        }
        let m = Mbuf::from_bytes(&sw.pool, frame).map_err(|e| format!("no mbuf: {e}"))?;
        let mut q = self.queues.lock();
        let m = match q.get(&port) {
            Some(tx) => match tx.try_send(m) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(_)) => return Err("packet-out queue full: dropped".into()),
                // A removed port took its queue along: make a new one.
                Err(TrySendError::Disconnected(m)) => m,
            },
            None => m,
        };
        let (tx, rx) = crossbeam_channel::bounded(DEPTH);
        {
            let mut dp = sw.datapath.lock();
            let dp = dp.as_mut().ok_or("the datapath is shut down")?;
            dp.add_rxq(port, INJECT_QUEUE, Box::new(InjectRxq { rx }));
        }
        tx.try_send(m)
            .map_err(|_| "packet-out queue full".to_string())?;
        q.insert(port, tx);
        Ok(())
    }
}
