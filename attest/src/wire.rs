//! Reading marshalled TPM 2.0 structures from untrusted bytes: big-endian integers, `TPM2B_*`
//! buffers and `TPML_PCR_SELECTION` (TCG TPM 2.0 Library, Part 2, §10.6 and §10.9).
//!
//! One cursor serves the TPM responses of [`crate::tpm`] and the quotes, signatures and keys of
//! [`crate::quote`]. Every length is checked before it is read and a count is bounded by the
//! bytes left, so no input allocates more than its own size. The cursor reports a [`Fault`]
//! and the caller's [`Context`] turns it into the caller's error, naming the command or the
//! structure being read.

use eventlog::AlgId;

use crate::tpm::PcrSelection;

/// The largest `sizeofSelect` read (64 PCRs; PC Client TPMs have 24).
pub(crate) const MAX_SELECT_BYTES: u8 = 8;

/// What is wrong with the bytes at the cursor.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The bytes end before `field`.
    Truncated { field: &'static str, offset: usize, needed: usize, available: usize },
    /// `count`, read at `offset`, promises more entries than the bytes left can hold.
    Count { field: &'static str, count: u32, offset: usize },
    /// A `TPMS_PCR_SELECTION` with more select bytes than [`MAX_SELECT_BYTES`].
    SelectTooLarge { size: u8 },
    /// A field holds a value the structure does not allow.
    Malformed(String),
    /// Bytes after the last field.
    Trailing { offset: usize, extra: usize },
}

/// Who is reading: turns a [`Fault`] into the reader's own error.
pub(crate) trait Context: Copy {
    type Error;
    fn error(self, fault: Fault) -> Self::Error;
}

/// The field names of a `TPML_PCR_SELECTION`, as the reader's errors spell them.
#[derive(Debug)]
pub(crate) struct SelectionFields {
    pub count: &'static str,
    pub hash: &'static str,
    pub size_of_select: &'static str,
    pub pcr_select: &'static str,
}

/// A cursor over one structure.
#[derive(Debug)]
pub(crate) struct Cursor<'a, C> {
    ctx: C,
    data: &'a [u8],
    offset: usize,
}

impl<'a, C: Context> Cursor<'a, C> {
    pub fn new(ctx: C, data: &'a [u8]) -> Self {
        Cursor { ctx, data, offset: 0 }
    }

    /// The reader's error for `fault`.
    pub fn fail(&self, fault: Fault) -> C::Error {
        self.ctx.error(fault)
    }

    /// The reader's error for a field value the structure does not allow.
    pub fn malformed(&self, detail: String) -> C::Error {
        self.fail(Fault::Malformed(detail))
    }

    pub fn bytes(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], C::Error> {
        let available = self.data.len() - self.offset;
        if n > available {
            return Err(self.fail(Fault::Truncated { field, offset: self.offset, needed: n, available }));
        }
        let out = &self.data[self.offset..self.offset + n];
        self.offset += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], C::Error> {
        Ok(self.bytes(field, N)?.try_into().expect("N bytes"))
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, C::Error> {
        Ok(self.bytes(field, 1)?[0])
    }

    pub fn u16(&mut self, field: &'static str) -> Result<u16, C::Error> {
        self.array(field).map(u16::from_be_bytes)
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, C::Error> {
        self.array(field).map(u32::from_be_bytes)
    }

    pub fn u64(&mut self, field: &'static str) -> Result<u64, C::Error> {
        self.array(field).map(u64::from_be_bytes)
    }

    /// A `TPM2B_*`: a 16-bit size, then that many bytes.
    pub fn tpm2b(&mut self, field: &'static str) -> Result<&'a [u8], C::Error> {
        let n = usize::from(self.u16(field)?);
        self.bytes(field, n)
    }

    /// A `TPML_PCR_SELECTION`.
    pub fn pcr_selections(&mut self, names: &SelectionFields) -> Result<Vec<PcrSelection>, C::Error> {
        let count = self.u32(names.count)?;
        // Each entry takes at least 3 bytes: a count larger than that is a lie, not an allocation.
        if count as usize > (self.data.len() - self.offset) / 3 {
            return Err(self.fail(Fault::Count { field: names.count, count, offset: self.offset - 4 }));
        }
        let mut out = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let alg = AlgId(self.u16(names.hash)?);
            let select_bytes = self.u8(names.size_of_select)?;
            if select_bytes > MAX_SELECT_BYTES {
                return Err(self.fail(Fault::SelectTooLarge { size: select_bytes }));
            }
            let mut pcrs = [0u8; 8];
            pcrs[..usize::from(select_bytes)].copy_from_slice(self.bytes(names.pcr_select, usize::from(select_bytes))?);
            out.push(PcrSelection { alg, pcrs: u64::from_le_bytes(pcrs), select_bytes });
        }
        Ok(out)
    }

    /// Errors when bytes are left over.
    pub fn finish(self) -> Result<(), C::Error> {
        if self.offset != self.data.len() {
            return Err(self.fail(Fault::Trailing { offset: self.offset, extra: self.data.len() - self.offset }));
        }
        Ok(())
    }
}
