//! Length-checked big-endian reading and writing.

use crate::error::{ErrCode, OfError};

/// A cursor over a borrowed byte slice; every read checks the length and
/// fails with `OFPBRC_BAD_LEN` instead of panicking.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn short(&self, n: usize, what: &str) -> OfError {
        OfError::new(
            ErrCode::BAD_LEN,
            format!(
                "{what}: need {n} bytes at offset {}, {} left",
                self.pos,
                self.remaining()
            ),
        )
    }

    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], OfError> {
        if self.remaining() < n {
            return Err(self.short(n, what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A sub-reader over the next `n` bytes.
    pub fn sub(&mut self, n: usize, what: &str) -> Result<Reader<'a>, OfError> {
        self.bytes(n, what).map(Reader::new)
    }

    pub fn skip(&mut self, n: usize, what: &str) -> Result<(), OfError> {
        self.bytes(n, what).map(|_| ())
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, OfError> {
        Ok(self.bytes(1, what)?[0])
    }

    pub fn u16(&mut self, what: &str) -> Result<u16, OfError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, what: &str) -> Result<u32, OfError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self, what: &str) -> Result<u64, OfError> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// Peeks a big-endian u16 without consuming it.
    pub fn peek_u16(&self, what: &str) -> Result<u16, OfError> {
        let mut c = *self;
        c.u16(what)
    }
}

/// A growing big-endian message buffer.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    pub fn zeros(&mut self, n: usize) -> &mut Self {
        self.buf.resize(self.buf.len() + n, 0);
        self
    }

    /// Pads with zeros to a multiple of `align` bytes.
    pub fn pad_to(&mut self, align: usize) -> &mut Self {
        let n = (align - self.buf.len() % align) % align;
        self.zeros(n)
    }

    /// Writes a fixed-size, NUL-padded string field (truncated to fit,
    /// always NUL-terminated).
    pub fn str_field(&mut self, s: &str, size: usize) -> &mut Self {
        let b = s.as_bytes();
        let n = b.len().min(size - 1);
        self.bytes(&b[..n]);
        self.zeros(size - n)
    }

    /// Overwrites a big-endian u16 at `at` (a length filled in afterwards).
    pub fn set_u16(&mut self, at: usize, v: u16) {
        self.buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
}
