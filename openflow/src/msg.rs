//! OpenFlow 1.3 messages: the header, decoding of what a controller sends
//! ([`decode`]), and encoders for what a switch sends.

use crate::actions::{self, decode_actions, decode_instructions};
use crate::buf::{Reader, Writer};
use crate::error::{fail, ErrCode, OfError};
use crate::oxm;
use ofproto::rule::{Instructions, OfAction};
use ofproto::Match;

pub const OFP10_VERSION: u8 = 0x01;
pub const OFP13_VERSION: u8 = 0x04;
pub const OFP14_VERSION: u8 = 0x05;
pub const OFP15_VERSION: u8 = 0x06;

pub const OFPT_HELLO: u8 = 0;
pub const OFPT_ERROR: u8 = 1;
pub const OFPT_ECHO_REQUEST: u8 = 2;
pub const OFPT_ECHO_REPLY: u8 = 3;
pub const OFPT_EXPERIMENTER: u8 = 4;
pub const OFPT_FEATURES_REQUEST: u8 = 5;
pub const OFPT_FEATURES_REPLY: u8 = 6;
pub const OFPT_GET_CONFIG_REQUEST: u8 = 7;
pub const OFPT_GET_CONFIG_REPLY: u8 = 8;
pub const OFPT_SET_CONFIG: u8 = 9;
pub const OFPT_PACKET_IN: u8 = 10;
pub const OFPT_FLOW_REMOVED: u8 = 11;
pub const OFPT_PORT_STATUS: u8 = 12;
pub const OFPT_PACKET_OUT: u8 = 13;
pub const OFPT_FLOW_MOD: u8 = 14;
pub const OFPT_GROUP_MOD: u8 = 15;
pub const OFPT_PORT_MOD: u8 = 16;
pub const OFPT_TABLE_MOD: u8 = 17;
pub const OFPT_MULTIPART_REQUEST: u8 = 18;
pub const OFPT_MULTIPART_REPLY: u8 = 19;
pub const OFPT_BARRIER_REQUEST: u8 = 20;
pub const OFPT_BARRIER_REPLY: u8 = 21;
pub const OFPT_QUEUE_GET_CONFIG_REQUEST: u8 = 22;
pub const OFPT_ROLE_REQUEST: u8 = 24;
pub const OFPT_ROLE_REPLY: u8 = 25;
pub const OFPT_GET_ASYNC_REQUEST: u8 = 26;
pub const OFPT_GET_ASYNC_REPLY: u8 = 27;
pub const OFPT_SET_ASYNC: u8 = 28;
pub const OFPT_METER_MOD: u8 = 29;

pub const OFPMP_DESC: u16 = 0;
pub const OFPMP_FLOW: u16 = 1;
pub const OFPMP_AGGREGATE: u16 = 2;
pub const OFPMP_TABLE: u16 = 3;
pub const OFPMP_PORT_STATS: u16 = 4;
pub const OFPMP_QUEUE: u16 = 5;
pub const OFPMP_GROUP: u16 = 6;
pub const OFPMP_GROUP_DESC: u16 = 7;
pub const OFPMP_GROUP_FEATURES: u16 = 8;
pub const OFPMP_METER: u16 = 9;
pub const OFPMP_METER_CONFIG: u16 = 10;
pub const OFPMP_METER_FEATURES: u16 = 11;
pub const OFPMP_TABLE_FEATURES: u16 = 12;
pub const OFPMP_PORT_DESC: u16 = 13;

/// `OFPMPF_REPLY_MORE`.
pub const OFPMPF_MORE: u16 = 1;
/// No buffered packet.
pub const OFP_NO_BUFFER: u32 = 0xffff_ffff;
pub const OFPG_ANY: u32 = 0xffff_ffff;
pub const OFPTT_ALL: u8 = 0xff;

/// The largest message (the 16-bit length).
pub const MAX_MSG: usize = 65535;

/// The 8-byte header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub type_: u8,
    pub length: u16,
    pub xid: u32,
}

impl Header {
    /// Reads a header from the first 8 bytes (`None` if fewer).
    pub fn parse(b: &[u8]) -> Option<Header> {
        if b.len() < 8 {
            return None;
        }
        Some(Header {
            version: b[0],
            type_: b[1],
            length: u16::from_be_bytes([b[2], b[3]]),
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

/// `OFPFC_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowModCommand {
    Add,
    Modify,
    ModifyStrict,
    Delete,
    DeleteStrict,
}

pub const OFPFF_SEND_FLOW_REM: u16 = 1 << 0;
pub const OFPFF_CHECK_OVERLAP: u16 = 1 << 1;
pub const OFPFF_RESET_COUNTS: u16 = 1 << 2;
pub const OFPFF_NO_PKT_COUNTS: u16 = 1 << 3;
pub const OFPFF_NO_BYT_COUNTS: u16 = 1 << 4;

/// A decoded FLOW_MOD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowMod {
    pub cookie: u64,
    pub cookie_mask: u64,
    pub table_id: u8,
    pub command: FlowModCommand,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub buffer_id: u32,
    /// 32-bit, `OFPP_ANY` for none.
    pub out_port: u32,
    pub out_group: u32,
    pub flags: u16,
    pub matches: Match,
    pub instructions: Instructions,
}

/// A decoded PACKET_OUT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketOut<'a> {
    pub buffer_id: u32,
    /// 32-bit (CONTROLLER = 0xfffffffd).
    pub in_port: u32,
    pub actions: Vec<OfAction>,
    pub data: &'a [u8],
}

/// A decoded PORT_MOD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortMod {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    pub config: u32,
    pub mask: u32,
    pub advertise: u32,
}

pub const OFPPC_PORT_DOWN: u32 = 1;

/// The flow/aggregate statistics request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowStatsRequest {
    pub table_id: u8,
    pub out_port: u32,
    pub out_group: u32,
    pub cookie: u64,
    pub cookie_mask: u64,
    pub matches: Match,
}

/// A multipart request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultipartRequest {
    Desc,
    Flow(Box<FlowStatsRequest>),
    Aggregate(Box<FlowStatsRequest>),
    Table,
    PortStats {
        port_no: u32,
    },
    PortDesc,
    /// Without properties (a query); a request that sets features is
    /// refused while decoding.
    TableFeatures,
    GroupDesc,
    GroupFeatures,
    Group {
        group_id: u32,
    },
    MeterFeatures,
    Other(u16),
}

/// `ofp_async_config`: [master/equal, slave] masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsyncConfig {
    pub packet_in: [u32; 2],
    pub port_status: [u32; 2],
    pub flow_removed: [u32; 2],
}

impl Default for AsyncConfig {
    /// OpenFlow 1.3's defaults (§7.3.10, as OVS sets them).
    fn default() -> Self {
        AsyncConfig {
            packet_in: [0x7, 0x0],
            port_status: [0x7, 0x7],
            flow_removed: [0xf, 0x0],
        }
    }
}

/// A message from a controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// `bitmap`: the version bitmap element, if any.
    Hello {
        bitmap: Option<u32>,
    },
    Error {
        type_: u16,
        code: u16,
        data: &'a [u8],
    },
    EchoRequest(&'a [u8]),
    EchoReply,
    FeaturesRequest,
    GetConfigRequest,
    SetConfig {
        flags: u16,
        miss_send_len: u16,
    },
    PacketOut(PacketOut<'a>),
    FlowMod(Box<FlowMod>),
    PortMod(PortMod),
    GroupMod(crate::group::GroupMod),
    Multipart {
        flags: u16,
        req: MultipartRequest,
    },
    BarrierRequest,
    RoleRequest {
        role: u32,
        generation_id: u64,
    },
    GetAsyncRequest,
    SetAsync(AsyncConfig),
}

/// Decodes one complete message (`msg` is exactly `header.length` bytes).
/// The version must already have been checked by the caller.
pub fn decode(msg: &[u8]) -> Result<Message<'_>, OfError> {
    let Some(h) = Header::parse(msg) else {
        return fail(ErrCode::BAD_LEN, "message shorter than its header");
    };
    if h.length as usize != msg.len() || msg.len() < 8 {
        return fail(
            ErrCode::BAD_LEN,
            format!("header length {} for {} bytes", h.length, msg.len()),
        );
    }
    let mut r = Reader::new(&msg[8..]);
    let fixed = |r: &Reader<'_>, n: usize, what: &str| -> Result<(), OfError> {
        if r.remaining() != n {
            return fail(
                ErrCode::BAD_LEN,
                format!("{what}: body of {} bytes, expected {n}", r.remaining()),
            );
        }
        Ok(())
    };
    Ok(match h.type_ {
        OFPT_HELLO => {
            let mut bitmap = None;
            while r.remaining() >= 4 {
                let ty = r.u16("hello element type")?;
                let len = r.u16("hello element length")? as usize;
                if len < 4 || len - 4 > r.remaining() {
                    return fail(ErrCode::BAD_LEN, format!("hello element length {len}"));
                }
                let mut e = r.sub(len - 4, "hello element")?;
                if ty == 1 && e.remaining() >= 4 {
                    bitmap = Some(e.u32("version bitmap")?);
                }
                r.skip(
                    (len.div_ceil(8) * 8 - len).min(r.remaining()),
                    "hello padding",
                )?;
            }
            Message::Hello { bitmap }
        }
        OFPT_ERROR => {
            let type_ = r.u16("error type")?;
            let code = r.u16("error code")?;
            Message::Error {
                type_,
                code,
                data: r.rest(),
            }
        }
        OFPT_ECHO_REQUEST => Message::EchoRequest(r.rest()),
        OFPT_ECHO_REPLY => Message::EchoReply,
        OFPT_FEATURES_REQUEST => {
            fixed(&r, 0, "features request")?;
            Message::FeaturesRequest
        }
        OFPT_GET_CONFIG_REQUEST => {
            fixed(&r, 0, "get_config request")?;
            Message::GetConfigRequest
        }
        OFPT_SET_CONFIG => {
            fixed(&r, 4, "set_config")?;
            Message::SetConfig {
                flags: r.u16("flags")?,
                miss_send_len: r.u16("miss_send_len")?,
            }
        }
        OFPT_BARRIER_REQUEST => {
            fixed(&r, 0, "barrier request")?;
            Message::BarrierRequest
        }
        OFPT_GET_ASYNC_REQUEST => {
            fixed(&r, 0, "get_async request")?;
            Message::GetAsyncRequest
        }
        OFPT_SET_ASYNC => {
            fixed(&r, 24, "set_async")?;
            let mut v = [0u32; 6];
            for x in &mut v {
                *x = r.u32("async mask")?;
            }
            Message::SetAsync(AsyncConfig {
                packet_in: [v[0], v[1]],
                port_status: [v[2], v[3]],
                flow_removed: [v[4], v[5]],
            })
        }
        OFPT_GROUP_MOD => Message::GroupMod(crate::group::decode_group_mod(&mut r)?),
        OFPT_ROLE_REQUEST => {
            fixed(&r, 16, "role request")?;
            let role = r.u32("role")?;
            r.skip(4, "pad")?;
            Message::RoleRequest {
                role,
                generation_id: r.u64("generation_id")?,
            }
        }
        OFPT_PORT_MOD => {
            fixed(&r, 32, "port_mod")?;
            let port_no = r.u32("port_no")?;
            r.skip(4, "pad")?;
            let mut hw_addr = [0u8; 6];
            hw_addr.copy_from_slice(r.bytes(6, "hw_addr")?);
            r.skip(2, "pad")?;
            Message::PortMod(PortMod {
                port_no,
                hw_addr,
                config: r.u32("config")?,
                mask: r.u32("mask")?,
                advertise: r.u32("advertise")?,
            })
        }
        OFPT_FLOW_MOD => Message::FlowMod(Box::new(decode_flow_mod(&mut r)?)),
        OFPT_PACKET_OUT => {
            let buffer_id = r.u32("buffer_id")?;
            let in_port = r.u32("in_port")?;
            let alen = r.u16("actions_len")? as usize;
            r.skip(6, "pad")?;
            let acts = r
                .sub(alen, "packet_out actions")
                .map_err(|e| OfError::new(ErrCode::BAD_LEN, e.reason))?;
            let actions = decode_actions(acts)?;
            Message::PacketOut(PacketOut {
                buffer_id,
                in_port,
                actions,
                data: r.rest(),
            })
        }
        OFPT_MULTIPART_REQUEST => {
            let ty = r.u16("multipart type")?;
            let flags = r.u16("multipart flags")?;
            r.skip(4, "pad")?;
            let req = match ty {
                OFPMP_DESC => MultipartRequest::Desc,
                OFPMP_FLOW | OFPMP_AGGREGATE => {
                    let table_id = r.u8("table_id")?;
                    r.skip(3, "pad")?;
                    let out_port = r.u32("out_port")?;
                    let out_group = r.u32("out_group")?;
                    r.skip(4, "pad")?;
                    let cookie = r.u64("cookie")?;
                    let cookie_mask = r.u64("cookie_mask")?;
                    let matches = oxm::decode_match(&mut r)?;
                    let f = FlowStatsRequest {
                        table_id,
                        out_port,
                        out_group,
                        cookie,
                        cookie_mask,
                        matches,
                    };
                    if ty == OFPMP_FLOW {
                        MultipartRequest::Flow(Box::new(f))
                    } else {
                        MultipartRequest::Aggregate(Box::new(f))
                    }
                }
                OFPMP_TABLE => MultipartRequest::Table,
                OFPMP_PORT_STATS => MultipartRequest::PortStats {
                    port_no: r.u32("port_no")?,
                },
                OFPMP_PORT_DESC => MultipartRequest::PortDesc,
                OFPMP_TABLE_FEATURES => {
                    if !r.is_empty() {
                        return fail(
                            ErrCode::TFFC_EPERM,
                            "changing table features is not supported",
                        );
                    }
                    MultipartRequest::TableFeatures
                }
                OFPMP_GROUP_DESC => MultipartRequest::GroupDesc,
                OFPMP_GROUP_FEATURES => MultipartRequest::GroupFeatures,
                OFPMP_GROUP => MultipartRequest::Group {
                    group_id: r.u32("group_id")?,
                },
                OFPMP_METER_FEATURES => MultipartRequest::MeterFeatures,
                t => MultipartRequest::Other(t),
            };
            Message::Multipart { flags, req }
        }
        t @ (OFPT_EXPERIMENTER
        | OFPT_TABLE_MOD
        | OFPT_METER_MOD
        | OFPT_QUEUE_GET_CONFIG_REQUEST) => {
            return fail(
                ErrCode::BAD_TYPE,
                format!("message type {t} not supported yet"),
            )
        }
        t => return fail(ErrCode::BAD_TYPE, format!("message type {t}")),
    })
}

fn decode_flow_mod(r: &mut Reader<'_>) -> Result<FlowMod, OfError> {
    let cookie = r.u64("cookie")?;
    let cookie_mask = r.u64("cookie_mask")?;
    let table_id = r.u8("table_id")?;
    let cmd = r.u8("command")?;
    let idle_timeout = r.u16("idle_timeout")?;
    let hard_timeout = r.u16("hard_timeout")?;
    let priority = r.u16("priority")?;
    let buffer_id = r.u32("buffer_id")?;
    let out_port = r.u32("out_port")?;
    let out_group = r.u32("out_group")?;
    let flags = r.u16("flags")?;
    r.skip(2, "pad")?;
    let matches = oxm::decode_match(r)?;
    let instructions = decode_instructions(*r)?;
    let command = match cmd {
        0 => FlowModCommand::Add,
        1 => FlowModCommand::Modify,
        2 => FlowModCommand::ModifyStrict,
        3 => FlowModCommand::Delete,
        4 => FlowModCommand::DeleteStrict,
        c => return fail(ErrCode::FMFC_BAD_COMMAND, format!("flow_mod command {c}")),
    };
    if flags & !0x1f != 0 {
        return fail(
            ErrCode::FMFC_BAD_FLAGS,
            format!("flow_mod flags {flags:#x}"),
        );
    }
    let deleting = matches!(
        command,
        FlowModCommand::Delete | FlowModCommand::DeleteStrict
    );
    if table_id == OFPTT_ALL && !deleting {
        return fail(ErrCode::FMFC_BAD_TABLE_ID, "table 255 is only for deletes");
    }
    if table_id != OFPTT_ALL && table_id > ofproto::rule::MAX_TABLE {
        return fail(ErrCode::FMFC_BAD_TABLE_ID, format!("table {table_id}"));
    }
    Ok(FlowMod {
        cookie,
        cookie_mask,
        table_id,
        command,
        idle_timeout,
        hard_timeout,
        priority,
        buffer_id,
        out_port,
        out_group,
        flags,
        matches,
        instructions,
    })
}

/// Starts a message: header with length to be filled by [`finish`].
pub fn start(version: u8, type_: u8, xid: u32) -> Writer {
    let mut w = Writer::new();
    w.u8(version).u8(type_).u16(0).u32(xid);
    w
}

/// Fills in the length; returns the bytes.
pub fn finish(mut w: Writer) -> Vec<u8> {
    let len = w.len().min(MAX_MSG) as u16;
    w.set_u16(2, len);
    w.buf
}

/// HELLO with a version bitmap element.
pub fn hello(version: u8, xid: u32, bitmap: u32) -> Vec<u8> {
    let mut w = start(version, OFPT_HELLO, xid);
    w.u16(1).u16(8).u32(bitmap);
    finish(w)
}

/// ERROR carrying (at most) the first 64 bytes of the offending message.
pub fn error(version: u8, xid: u32, code: ErrCode, offending: &[u8]) -> Vec<u8> {
    let mut w = start(version, OFPT_ERROR, xid);
    w.u16(code.type_).u16(code.code);
    w.bytes(&offending[..offending.len().min(64)]);
    finish(w)
}

/// ERROR with text data (HELLO_FAILED).
pub fn error_text(version: u8, xid: u32, code: ErrCode, text: &str) -> Vec<u8> {
    let mut w = start(version, OFPT_ERROR, xid);
    w.u16(code.type_).u16(code.code).bytes(text.as_bytes());
    finish(w)
}

pub fn echo_reply(version: u8, xid: u32, data: &[u8]) -> Vec<u8> {
    let mut w = start(version, OFPT_ECHO_REPLY, xid);
    w.bytes(&data[..data.len().min(MAX_MSG - 8)]);
    finish(w)
}

pub fn echo_request(version: u8, xid: u32) -> Vec<u8> {
    finish(start(version, OFPT_ECHO_REQUEST, xid))
}

pub fn barrier_reply(version: u8, xid: u32) -> Vec<u8> {
    finish(start(version, OFPT_BARRIER_REPLY, xid))
}

/// FEATURES_REPLY: FLOW, TABLE, PORT and GROUP statistics.
pub fn features_reply(version: u8, xid: u32, datapath_id: u64, n_tables: u8) -> Vec<u8> {
    let mut w = start(version, OFPT_FEATURES_REPLY, xid);
    w.u64(datapath_id).u32(0).u8(n_tables).u8(0).zeros(2);
    w.u32(0x0f).u32(0);
    finish(w)
}

pub fn get_config_reply(version: u8, xid: u32, flags: u16, miss_send_len: u16) -> Vec<u8> {
    let mut w = start(version, OFPT_GET_CONFIG_REPLY, xid);
    w.u16(flags).u16(miss_send_len);
    finish(w)
}

pub fn role_reply(version: u8, xid: u32, role: u32, generation_id: u64) -> Vec<u8> {
    let mut w = start(version, OFPT_ROLE_REPLY, xid);
    w.u32(role).zeros(4).u64(generation_id);
    finish(w)
}

pub fn get_async_reply(version: u8, xid: u32, c: &AsyncConfig) -> Vec<u8> {
    let mut w = start(version, OFPT_GET_ASYNC_REPLY, xid);
    for v in c
        .packet_in
        .iter()
        .chain(&c.port_status)
        .chain(&c.flow_removed)
    {
        w.u32(*v);
    }
    finish(w)
}

/// A multipart reply, split into messages of at most 64 KiB (all but the
/// last flagged MORE).
pub struct MultipartReply {
    version: u8,
    xid: u32,
    mp_type: u16,
    done: Vec<Vec<u8>>,
    cur: Writer,
}

impl MultipartReply {
    pub fn new(version: u8, xid: u32, mp_type: u16) -> Self {
        MultipartReply {
            version,
            xid,
            mp_type,
            done: Vec::new(),
            cur: Self::fresh(version, xid, mp_type),
        }
    }

    fn fresh(version: u8, xid: u32, mp_type: u16) -> Writer {
        let mut w = start(version, OFPT_MULTIPART_REPLY, xid);
        w.u16(mp_type).u16(0).zeros(4);
        w
    }

    /// Appends one entry (kept whole in one message).
    pub fn push(&mut self, entry: &[u8]) {
        if self.cur.len() + entry.len() > MAX_MSG && self.cur.len() > 16 {
            let mut full = std::mem::replace(
                &mut self.cur,
                Self::fresh(self.version, self.xid, self.mp_type),
            );
            full.set_u16(10, OFPMPF_MORE);
            self.done.push(finish(full));
        }
        self.cur.bytes(entry);
    }

    pub fn finish(mut self) -> Vec<Vec<u8>> {
        self.done.push(finish(self.cur));
        self.done
    }
}

/// `ofp_desc`.
pub fn desc_body(mfr: &str, hw: &str, sw: &str, serial: &str, dp: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.str_field(mfr, 256)
        .str_field(hw, 256)
        .str_field(sw, 256)
        .str_field(serial, 32)
        .str_field(dp, 256);
    w.buf
}

/// One `ofp_flow_stats` entry.
#[derive(Clone, Debug)]
pub struct FlowStats<'a> {
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: u16,
    pub cookie: u64,
    pub packet_count: u64,
    pub byte_count: u64,
    pub matches: &'a Match,
    pub instructions: &'a Instructions,
}

/// Encodes a flow stats entry; fails if an action cannot be encoded yet.
pub fn flow_stats_entry(f: &FlowStats<'_>) -> Result<Vec<u8>, actions::EncodeError> {
    let mut w = Writer::new();
    w.u16(0)
        .u8(f.table_id)
        .u8(0)
        .u32(f.duration_sec)
        .u32(f.duration_nsec);
    w.u16(f.priority)
        .u16(f.idle_timeout)
        .u16(f.hard_timeout)
        .u16(f.flags);
    w.zeros(4)
        .u64(f.cookie)
        .u64(f.packet_count)
        .u64(f.byte_count);
    oxm::encode_match(&mut w, f.matches);
    actions::encode_instructions(&mut w, f.instructions, oxm::l4_proto(f.matches))?;
    let len = w.len() as u16;
    w.set_u16(0, len);
    Ok(w.buf)
}

pub fn aggregate_body(packets: u64, bytes: u64, flows: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(packets).u64(bytes).u32(flows).zeros(4);
    w.buf
}

pub fn table_stats_entry(table_id: u8, active: u32, lookups: u64, matched: u64) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(table_id)
        .zeros(3)
        .u32(active)
        .u64(lookups)
        .u64(matched);
    w.buf
}

/// Port counters for `ofp_port_stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PortCounters {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
}

pub fn port_stats_entry(port_no: u32, c: &PortCounters, dur_sec: u32, dur_nsec: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(port_no).zeros(4);
    for v in [
        c.rx_packets,
        c.tx_packets,
        c.rx_bytes,
        c.tx_bytes,
        c.rx_dropped,
        c.tx_dropped,
        c.rx_errors,
        c.tx_errors,
    ] {
        w.u64(v);
    }
    // rx_frame_err, rx_over_err, rx_crc_err, collisions: not counted
    // (all ones, as OpenFlow says for unavailable counters).
    for _ in 0..4 {
        w.u64(u64::MAX);
    }
    w.u32(dur_sec).u32(dur_nsec);
    w.buf
}

/// `ofp_port` description.
#[derive(Clone, Debug, Default)]
pub struct PortDesc {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    pub name: String,
    pub config: u32,
    pub state: u32,
    pub curr: u32,
    pub curr_speed: u32,
    pub max_speed: u32,
}

pub const OFPPS_LINK_DOWN: u32 = 1;
pub const OFPPS_LIVE: u32 = 4;

pub fn port_desc(p: &PortDesc) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(p.port_no).zeros(4).bytes(&p.hw_addr).zeros(2);
    w.str_field(&p.name, 16);
    w.u32(p.config)
        .u32(p.state)
        .u32(p.curr)
        .u32(0)
        .u32(0)
        .u32(0);
    w.u32(p.curr_speed).u32(p.max_speed);
    w.buf
}

pub const OFPPR_ADD: u8 = 0;
pub const OFPPR_DELETE: u8 = 1;
pub const OFPPR_MODIFY: u8 = 2;

pub fn port_status(version: u8, reason: u8, p: &PortDesc) -> Vec<u8> {
    let mut w = start(version, OFPT_PORT_STATUS, 0);
    w.u8(reason).zeros(7).bytes(&port_desc(p));
    finish(w)
}

/// A PACKET_IN (buffer_id NO_BUFFER).
pub struct PacketIn<'a> {
    pub total_len: u16,
    pub reason: u8,
    pub table_id: u8,
    pub cookie: u64,
    pub matches: &'a Match,
    pub data: &'a [u8],
}

pub const OFPR_NO_MATCH: u8 = 0;
pub const OFPR_ACTION: u8 = 1;
pub const OFPR_INVALID_TTL: u8 = 2;

pub fn packet_in(version: u8, p: &PacketIn<'_>) -> Vec<u8> {
    let mut w = start(version, OFPT_PACKET_IN, 0);
    w.u32(OFP_NO_BUFFER)
        .u16(p.total_len)
        .u8(p.reason)
        .u8(p.table_id)
        .u64(p.cookie);
    oxm::encode_match(&mut w, p.matches);
    w.zeros(2);
    let room = MAX_MSG - w.len();
    w.bytes(&p.data[..p.data.len().min(room)]);
    finish(w)
}

/// A FLOW_REMOVED.
pub struct FlowRemoved<'a> {
    pub cookie: u64,
    pub priority: u16,
    pub reason: u8,
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub packet_count: u64,
    pub byte_count: u64,
    pub matches: &'a Match,
}

pub const OFPRR_IDLE_TIMEOUT: u8 = 0;
pub const OFPRR_HARD_TIMEOUT: u8 = 1;
pub const OFPRR_DELETE: u8 = 2;

pub fn flow_removed(version: u8, f: &FlowRemoved<'_>) -> Vec<u8> {
    let mut w = start(version, OFPT_FLOW_REMOVED, 0);
    w.u64(f.cookie).u16(f.priority).u8(f.reason).u8(f.table_id);
    w.u32(f.duration_sec).u32(f.duration_nsec);
    w.u16(f.idle_timeout).u16(f.hard_timeout);
    w.u64(f.packet_count).u64(f.byte_count);
    oxm::encode_match(&mut w, f.matches);
    finish(w)
}

/// One `ofp_table_features` entry with the properties OVS requires
/// (instructions, next tables, write/apply actions, match, wildcards,
/// write/apply set-fields, and their `_MISS` twins).
pub fn table_features_entry(table_id: u8, n_tables: u8, max_entries: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.u16(0).u8(table_id).zeros(5);
    w.str_field("", 32);
    w.u64(u64::MAX).u64(u64::MAX).u32(0).u32(max_entries);
    let prop = |w: &mut Writer, ty: u16, body: &dyn Fn(&mut Writer)| {
        let at = w.len();
        w.u16(ty).u16(0);
        body(w);
        let len = w.len() - at;
        w.set_u16(at + 2, len as u16);
        w.pad_to(8);
    };
    let insts = |w: &mut Writer| {
        for t in [
            actions::OFPIT_GOTO_TABLE,
            actions::OFPIT_WRITE_METADATA,
            actions::OFPIT_WRITE_ACTIONS,
            actions::OFPIT_APPLY_ACTIONS,
            actions::OFPIT_CLEAR_ACTIONS,
        ] {
            w.u16(t).u16(4);
        }
    };
    let next = |w: &mut Writer| {
        for t in table_id.saturating_add(1)..n_tables {
            w.u8(t);
        }
    };
    let acts = |w: &mut Writer| {
        for t in [
            actions::OFPAT_OUTPUT,
            actions::OFPAT_SET_MPLS_TTL,
            actions::OFPAT_DEC_MPLS_TTL,
            actions::OFPAT_PUSH_VLAN,
            actions::OFPAT_POP_VLAN,
            actions::OFPAT_PUSH_MPLS,
            actions::OFPAT_POP_MPLS,
            actions::OFPAT_SET_QUEUE,
            actions::OFPAT_GROUP,
            actions::OFPAT_SET_NW_TTL,
            actions::OFPAT_DEC_NW_TTL,
            actions::OFPAT_SET_FIELD,
        ] {
            w.u16(t).u16(4);
        }
    };
    let fields: &[(ofproto::FieldId, bool)] = &{
        use ofproto::FieldId::*;
        [
            (InPort, false),
            (Metadata, true),
            (DlDst, true),
            (DlSrc, true),
            (DlType, false),
            (VlanVid, true),
            (VlanPcp, false),
            (IpDscp, false),
            (NwEcn, false),
            (NwProto, false),
            (NwSrc, true),
            (NwDst, true),
            (TpSrc, true),
            (TpDst, true),
            (IcmpType, false),
            (IcmpCode, false),
            (ArpOp, false),
            (ArpSpa, true),
            (ArpTpa, true),
            (ArpSha, true),
            (ArpTha, true),
            (Ipv6Src, true),
            (Ipv6Dst, true),
            (Ipv6Label, true),
            (Icmpv6Type, false),
            (Icmpv6Code, false),
            (NdTarget, true),
            (NdSll, true),
            (NdTll, true),
            (MplsLabel, false),
            (MplsTc, false),
            (MplsBos, false),
            (TunId, true),
        ]
    };
    let oxms = |w: &mut Writer, with_mask: bool| {
        for (f, m) in fields {
            oxm::put_header(w, oxm::oxm_id(*f, None), with_mask && *m);
        }
        for r in 0..16u8 {
            oxm::put_header(w, oxm::nxm_id(ofproto::FieldId::Reg(r), None), with_mask);
        }
    };
    for miss in [0u16, 1] {
        prop(&mut w, miss, &insts);
        prop(&mut w, 2 + miss, &next);
        prop(&mut w, 4 + miss, &acts);
        prop(&mut w, 6 + miss, &acts);
        prop(&mut w, 12 + miss, &|w| oxms(w, false));
        prop(&mut w, 14 + miss, &|w| oxms(w, false));
    }
    prop(&mut w, 8, &|w| oxms(w, true));
    prop(&mut w, 10, &|w| oxms(w, false));
    let len = w.len() as u16;
    w.set_u16(0, len);
    w.buf
}
