//! Lenient decoding of a DNS message: no single record whose RDATA a peer controls may make the
//! whole message unreadable. hickory-proto refuses, for instance, a CAA tag longer than 15
//! octets, which RFC 8659 §4.1 only advises against (SHOULD). Such a record is kept as raw
//! RDATA (`RData::Unknown` with the record's real type), so its signature still verifies (the
//! types kept this way hold no domain names, so raw bytes are their canonical form, RFC 4034
//! §6.2) and the CAA policy reads it with [`caa_parts`]. A message unreadable anyway comes back
//! with the class of the parser's refusal ([`Malformation`]), for the evidence.

use std::fmt;

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, DecodeError, Restrict};

/// Types whose RDATA is free-form data of the zone owner and carries no compressed names: a
/// record of these that hickory cannot parse is kept raw instead of failing the message.
const RAW_TYPES: [RecordType; 5] = [
    RecordType::CAA,
    RecordType::TXT,
    RecordType::SVCB,
    RecordType::HTTPS,
    RecordType::TLSA,
];

/// First code of the private-use range (RFC 6895 §3.1) an unreadable record is renamed to for
/// the second parse, so hickory keeps it raw; the real type is put back afterwards.
const PRIVATE_TYPE: u16 = 65_280;

/// Most labels (or pointers) followed when skipping one name: a name has at most 127 labels.
const MAX_NAME_STEPS: usize = 128;

/// One record renamed for the second parse: its section (0 answer, 1 authority, 2 additional),
/// its index there and its real type.
#[derive(Debug, Clone, Copy)]
struct Renamed {
    section: usize,
    index: usize,
    real: RecordType,
}

/// Why a message could not be read: the class of the parser's error, for the operator (a
/// compression-pointer loop is a broken or hostile server, not a dead one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Malformation {
    /// Shorter than the 12-byte header (RFC 1035 §4.1.1).
    ShortHeader,
    /// A compression pointer that does not point backwards, so names could loop (RFC 1035
    /// §4.1.4; RFC 9267 §2).
    PointerLoop,
    /// A record or name that runs past the end of the message (RDLENGTH too large, a cut
    /// datagram).
    PastTheEnd,
    /// Anything else the parser refused.
    Garbage,
}

impl Malformation {
    /// The class in words, as the detail shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Malformation::ShortHeader => "shorter than a header",
            Malformation::PointerLoop => "compression pointer loop",
            Malformation::PastTheEnd => "record past the end",
            Malformation::Garbage => "garbage",
        }
    }

    /// Classifies the parser's error on a message of `len` bytes.
    pub fn of(error: &DecodeError, len: usize) -> Self {
        match error {
            // A pointer past the end is a cut message, not a loop.
            DecodeError::PointerNotPriorToLabel { ptr, .. } if usize::from(*ptr) >= len => {
                Malformation::PastTheEnd
            }
            DecodeError::PointerNotPriorToLabel { .. }
            | DecodeError::LabelOverlapsWithOther { .. } => Malformation::PointerLoop,
            DecodeError::InsufficientBytes | DecodeError::IncorrectRDataLengthRead { .. } => {
                Malformation::PastTheEnd
            }
            _ => Malformation::Garbage,
        }
    }
}

impl fmt::Display for Malformation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decodes `bytes`; when hickory refuses the message only because of the RDATA of records of
/// the raw-kept types (CAA, TXT, SVCB, HTTPS, TLSA), decodes it again with those records kept
/// raw. When the message is unreadable anyway, the class of hickory's first refusal.
pub fn decode(bytes: &[u8]) -> Result<Message, Malformation> {
    let refusal = match Message::from_vec(bytes) {
        Ok(message) => return Ok(message),
        Err(error) => Malformation::of(&error, bytes.len()),
    };
    decode_with_raw(bytes).ok_or(refusal)
}

/// The second parse of [`decode`], with the unreadable records of the raw-kept types renamed.
fn decode_with_raw(bytes: &[u8]) -> Option<Message> {
    let mut patched = bytes.to_vec();
    let renamed = rename_unreadable(&mut patched)?;
    if renamed.is_empty() {
        return None;
    }
    let mut message = Message::from_vec(&patched).ok()?;
    for item in renamed {
        let section = match item.section {
            0 => &mut message.answers,
            1 => &mut message.authorities,
            _ => &mut message.additionals,
        };
        if item.section == 2 {
            // hickory moves OPT out of the additional section, shifting indexes: drop the raw
            // records there instead (nothing we check reads an additional CAA, TXT or SVCB).
            section.retain(|r| !is_renamed(r));
            continue;
        }
        let record = section.get_mut(item.index)?;
        let RData::Unknown { code, .. } = &mut record.data else {
            return None;
        };
        *code = item.real;
    }
    Some(message)
}

fn is_renamed(record: &Record) -> bool {
    matches!(&record.data, RData::Unknown { code, .. }
        if (PRIVATE_TYPE..PRIVATE_TYPE + RAW_TYPES.len() as u16).contains(&u16::from(*code)))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// The offset just past the (possibly compressed) name at `at`.
fn skip_name(bytes: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..MAX_NAME_STEPS {
        let len = *bytes.get(at)?;
        match len & 0xC0 {
            0xC0 => return Some(at + 2),
            0 if len == 0 => return Some(at + 1),
            0 => at += 1 + usize::from(len),
            _ => return None,
        }
    }
    None
}

/// Walks the records and renames, in `bytes`, the type of every record of [`RAW_TYPES`] whose
/// RDATA hickory refuses. `None` when the message cannot even be walked.
fn rename_unreadable(bytes: &mut [u8]) -> Option<Vec<Renamed>> {
    let questions = u16_at(bytes, 4)?;
    let counts = [u16_at(bytes, 6)?, u16_at(bytes, 8)?, u16_at(bytes, 10)?];
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(bytes, at)? + 4;
    }
    let mut renamed = Vec::new();
    for (section, count) in counts.into_iter().enumerate() {
        for index in 0..usize::from(count) {
            at = skip_name(bytes, at)?;
            let code = u16_at(bytes, at)?;
            let length = u16_at(bytes, at + 8)?;
            let start = at + 10;
            let end = start + usize::from(length);
            let rdata = bytes.get(start..end)?;
            let real = RecordType::from(code);
            if let Some(position) = RAW_TYPES.iter().position(|t| *t == real) {
                let mut decoder = BinDecoder::new(rdata);
                if RData::read(&mut decoder, real, Restrict::new(length)).is_err() {
                    // RAW_TYPES has 5 entries: the position always fits.
                    let private = PRIVATE_TYPE + u16::try_from(position).unwrap_or(0);
                    let [high, low] = private.to_be_bytes();
                    *bytes.get_mut(at)? = high;
                    *bytes.get_mut(at + 1)? = low;
                    renamed.push(Renamed {
                        section,
                        index,
                        real,
                    });
                }
            }
            at = end;
        }
    }
    Some(renamed)
}

/// A CAA record's flags octet, tag and value.
pub type CaaParts = (u8, String, Vec<u8>);

/// A CAA record's parts, whether hickory parsed it or it was kept raw: the flags octet, the tag
/// (lossy UTF-8; a tag with other octets matches no known property) and the value.
pub fn caa_parts(record: &Record) -> Option<CaaParts> {
    match &record.data {
        RData::CAA(caa) => Some((
            (u8::from(caa.issuer_critical) << 7) | caa.reserved_flags,
            caa.tag.clone(),
            caa.value.clone(),
        )),
        RData::Unknown {
            code: RecordType::CAA,
            rdata,
        } => raw_caa(&rdata.anything),
        _ => None,
    }
}

/// RFC 8659 §4.1: flags (1 octet), tag length (1 octet), tag, value (the rest).
fn raw_caa(rdata: &[u8]) -> Option<CaaParts> {
    let (&flags, rest) = rdata.split_first()?;
    let (&tag_len, rest) = rest.split_first()?;
    let tag = rest.get(..usize::from(tag_len))?;
    let value = rest.get(usize::from(tag_len)..)?;
    Some((
        flags,
        String::from_utf8_lossy(tag).into_owned(),
        value.to_vec(),
    ))
}

#[cfg(test)]
mod tests;
