//! Classic pcap files (libpcap 2.4): written as little-endian microsecond
//! files of Ethernet frames, read in either byte order with micro- or
//! nanosecond timestamps.

use std::path::Path;

const MAGIC_US: u32 = 0xa1b2_c3d4;
const MAGIC_NS: u32 = 0xa1b2_3c4d;
const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

/// A parsed pcap file.
#[derive(Debug)]
pub struct Pcap {
    /// Timestamps in nanoseconds (magic 0xa1b23c4d) rather than µs.
    pub nanosecond: bool,
    /// True for a little-endian file.
    pub little_endian: bool,
    pub snaplen: u32,
    pub linktype: u32,
    pub frames: Vec<Frame>,
    /// Bytes after the last whole record (a file still being written).
    pub trailing: usize,
}

/// One record.
#[derive(Debug)]
pub struct Frame {
    pub data: Vec<u8>,
    /// The frame's length on the wire (more than `data.len()` when the
    /// snap length cut it).
    pub orig_len: usize,
}

impl Pcap {
    /// The records' bytes.
    pub fn frame_data(self) -> Vec<Vec<u8>> {
        self.frames.into_iter().map(|f| f.data).collect()
    }
}

/// The file bytes of a little-endian microsecond pcap of Ethernet frames
/// (snap length 65535; frame `i` stamped 1700000000 + i seconds).
pub fn encode(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC_US.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (index, frame) in frames.iter().enumerate() {
        out.extend_from_slice(&(1_700_000_000u32 + index as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(frame);
    }
    out
}

/// Writes [`encode`]`(frames)` to `path`.
pub fn write(path: &Path, frames: &[Vec<u8>]) {
    std::fs::write(path, encode(frames)).expect("write pcap");
}

/// Parses pcap bytes: `Err` with the reason for a short header or an
/// unknown magic. A truncated last record is left in `trailing`.
pub fn parse(bytes: &[u8]) -> Result<Pcap, String> {
    if bytes.len() < FILE_HEADER_LEN {
        return Err(format!("{} bytes: shorter than a pcap header", bytes.len()));
    }
    let magic_le = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let (little_endian, nanosecond) = match (magic_le, magic_le.swap_bytes()) {
        (MAGIC_US, _) => (true, false),
        (MAGIC_NS, _) => (true, true),
        (_, MAGIC_US) => (false, false),
        (_, MAGIC_NS) => (false, true),
        _ => return Err(format!("not a pcap: magic {magic_le:#010x}")),
    };
    let u32_at = |at: usize| {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if little_endian {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut frames = Vec::new();
    let mut at = FILE_HEADER_LEN;
    while at + RECORD_HEADER_LEN <= bytes.len() {
        let captured = u32_at(at + 8) as usize;
        let orig_len = u32_at(at + 12) as usize;
        let start = at + RECORD_HEADER_LEN;
        if start + captured > bytes.len() {
            break;
        }
        frames.push(Frame {
            data: bytes[start..start + captured].to_vec(),
            orig_len,
        });
        at = start + captured;
    }
    Ok(Pcap {
        nanosecond,
        little_endian,
        snaplen: u32_at(16),
        linktype: u32_at(20),
        frames,
        trailing: bytes.len() - at,
    })
}

/// Reads and parses `path`; panics (naming the file) when it is missing
/// or not a pcap.
pub fn read(path: &Path) -> Pcap {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The frames of `path`, as far as they are written: none when the file is
/// missing or shorter than its header (an output a run did not produce),
/// a truncated last record left out; panics on a file that is not a pcap.
pub fn read_frames(path: &Path) -> Vec<Vec<u8>> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    if bytes.len() < FILE_HEADER_LEN {
        return Vec::new();
    }
    parse(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .frame_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_byte_orders() {
        let frames = vec![vec![1, 2, 3], vec![], vec![9; 60]];
        let le = encode(&frames);
        let p = parse(&le).unwrap();
        assert!(p.little_endian && !p.nanosecond);
        assert_eq!((p.snaplen, p.linktype, p.trailing), (65535, 1, 0));
        assert_eq!(p.frame_data(), frames);

        // The same file big-endian, nanosecond.
        let mut be = Vec::new();
        be.extend_from_slice(&MAGIC_NS.to_be_bytes());
        be.extend_from_slice(&[0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]);
        be.extend_from_slice(&65535u32.to_be_bytes());
        be.extend_from_slice(&1u32.to_be_bytes());
        be.extend_from_slice(&[0; 8]);
        be.extend_from_slice(&3u32.to_be_bytes());
        be.extend_from_slice(&4u32.to_be_bytes());
        be.extend_from_slice(&[7, 8, 9]);
        let p = parse(&be).unwrap();
        assert!(!p.little_endian && p.nanosecond);
        assert_eq!(p.frames[0].data, [7, 8, 9]);
        assert_eq!(p.frames[0].orig_len, 4);
    }

    #[test]
    fn truncated_and_bad_files() {
        let mut f = encode(&[vec![1; 10]]);
        f.truncate(f.len() - 1);
        let p = parse(&f).unwrap();
        assert!(p.frames.is_empty());
        assert_eq!(p.trailing, RECORD_HEADER_LEN + 9);
        assert!(parse(&[0; 10]).is_err());
        assert!(parse(&[0; 24]).unwrap_err().contains("magic"));
    }
}
