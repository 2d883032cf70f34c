//! PACKET_OUT: the packet enters the datapath as if port `in_port` had
//! received it, through an extra rx queue of that port (queue
//! [`INJECT_QUEUE`], fed by a bounded channel) that a PMD polls like any
//! other. With `output:TABLE` it starts with recirculation id 0, so the
//! PMD runs it through the caches and the OpenFlow pipeline and a
//! packet-out sees exactly what a received packet sees; with any other
//! action list it starts with the recirculation id of a frozen translation
//! made of those actions, so the upcall (and then the megaflow of that id)
//! runs exactly them, as OVS's packet-out translates its actions. The
//! control thread never touches a PMD's queues: it only sends mbufs on the
//! channel.

use crate::switch::Switch;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;
use pmd::{Batch, Mbuf, RxQueue};
use std::collections::HashMap;

/// The rx queue number injected packets arrive on (`rxq-show`: `pN/65280`).
pub const INJECT_QUEUE: u16 = 0xff00;
/// Packet-outs waiting for a PMD, per port.
const DEPTH: usize = 256;

/// A queued packet and the recirculation id it starts with.
type Item = (Mbuf, u32);

struct InjectRxq {
    rx: Receiver<Item>,
    /// The first packet of the next burst (its id differed).
    next: Option<Item>,
    /// The id of the packets of the last burst.
    recirc_id: u32,
}

impl RxQueue for InjectRxq {
    type Pkt = Mbuf;

    /// A burst of packets that start with one recirculation id.
    fn recv(&mut self, batch: &mut Batch<Mbuf>) -> usize {
        let mut n = 0;
        while !batch.is_full() {
            let Some((m, id)) = self.next.take().or_else(|| self.rx.try_recv().ok()) else {
                break;
            };
            if n > 0 && id != self.recirc_id {
                self.next = Some((m, id));
                break;
            }
            self.recirc_id = id;
            batch.push(m);
            n += 1;
        }
        n
    }

    fn recirc_id(&self) -> u32 {
        self.recirc_id
    }
}

/// The injection queues, made when a port first needs one.
#[derive(Default)]
pub struct Injector {
    queues: Mutex<HashMap<u32, Sender<Item>>>,
}

impl Injector {
    /// Queues `frame` as received on OpenFlow port `port`, to be looked up
    /// with `recirc_id` (0: from table 0).
    pub fn inject(
        &self,
        sw: &Switch,
        port: u32,
        recirc_id: u32,
        frame: &[u8],
    ) -> Result<(), String> {
        if !sw.ports.lock().by_ofport.contains_key(&port) {
            return Err(format!("no port {port}"));
        }
        let m = (
            Mbuf::from_bytes(&sw.pool, frame).map_err(|e| format!("no mbuf: {e}"))?,
            recirc_id,
        );
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
            dp.add_rxq(
                port,
                INJECT_QUEUE,
                Box::new(InjectRxq {
                    rx,
                    next: None,
                    recirc_id: 0,
                }),
            );
        }
        tx.try_send(m)
            .map_err(|_| "packet-out queue full".to_string())?;
        q.insert(port, tx);
        Ok(())
    }
}
