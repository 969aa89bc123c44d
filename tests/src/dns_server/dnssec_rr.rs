//! Presentation-format parsing for the DNSSEC record types hickory's zone parser refuses
//! (DNSKEY, RRSIG, NSEC, NSEC3, NSEC3PARAM), so the fixture can serve zones signed by a real
//! signer (`tests/vectors/dnssec/make.sh`: ldns-signzone, written one record per line by
//! ldns-read-zone). Each line becomes RDATA wire bytes, decoded by hickory's own RDATA reader.

use std::str::FromStr as _;

use anyhow::{Context as _, bail};
use data_encoding::{BASE32_DNSSEC, BASE64};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};

/// The types this module parses.
const TYPES: [&str; 5] = ["DNSKEY", "RRSIG", "NSEC", "NSEC3", "NSEC3PARAM"];

/// Splits zone text: lines whose type is one of [`TYPES`] are parsed here (they must be in
/// ldns-read-zone form, `owner ttl class type rdata`, owner fully qualified); the rest is
/// returned for hickory's parser.
pub(super) fn split(text: &str) -> anyhow::Result<(String, Vec<Record>)> {
    let mut rest = String::with_capacity(text.len());
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, _, "IN", kind, ..] if TYPES.contains(kind) => {
                records
                    .push(parse_line(line).with_context(|| format!("line {}: {line}", index + 1))?);
            }
            _ => {
                rest.push_str(line);
                rest.push('\n');
            }
        }
    }
    Ok((rest, records))
}

fn parse_line(line: &str) -> anyhow::Result<Record> {
    // ldns appends `;{id = ...}` comments to DNSKEYs; none of these types holds a `;`.
    let line = line.split(';').next().unwrap_or_default();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [owner, ttl, _class, kind, rdata @ ..] = fields.as_slice() else {
        bail!("expected owner ttl class type rdata");
    };
    let owner = Name::from_ascii(owner)?;
    let ttl: u32 = ttl.parse()?;
    let record_type = RecordType::from_str(kind)?;
    let bytes = match record_type {
        RecordType::DNSKEY => dnskey(rdata)?,
        RecordType::RRSIG => rrsig(rdata)?,
        RecordType::NSEC => nsec(rdata)?,
        RecordType::NSEC3 => nsec3(rdata, true)?,
        RecordType::NSEC3PARAM => nsec3(rdata, false)?,
        other => bail!("type {other} is not parsed here"),
    };
    let length = u16::try_from(bytes.len())?;
    let data = RData::read(
        &mut BinDecoder::new(&bytes),
        record_type,
        Restrict::new(length),
    )
    .map_err(|error| anyhow::anyhow!("hickory rejects the RDATA: {error}"))?;
    Ok(Record::from_rdata(owner, ttl, data))
}

fn dnskey(fields: &[&str]) -> anyhow::Result<Vec<u8>> {
    let [flags, protocol, algorithm, key @ ..] = fields else {
        bail!("DNSKEY needs flags protocol algorithm key");
    };
    let mut bytes = flags.parse::<u16>()?.to_be_bytes().to_vec();
    bytes.push(protocol.parse()?);
    bytes.push(algorithm.parse()?);
    bytes.extend(BASE64.decode(key.concat().as_bytes())?);
    Ok(bytes)
}

fn rrsig(fields: &[&str]) -> anyhow::Result<Vec<u8>> {
    let [
        covered,
        algorithm,
        labels,
        original_ttl,
        expiration,
        inception,
        key_tag,
        signer,
        signature @ ..,
    ] = fields
    else {
        bail!("RRSIG needs 9 fields");
    };
    let mut bytes = u16::from(RecordType::from_str(covered)?)
        .to_be_bytes()
        .to_vec();
    bytes.push(algorithm.parse()?);
    bytes.push(labels.parse()?);
    bytes.extend(original_ttl.parse::<u32>()?.to_be_bytes());
    bytes.extend(timestamp(expiration)?.to_be_bytes());
    bytes.extend(timestamp(inception)?.to_be_bytes());
    bytes.extend(key_tag.parse::<u16>()?.to_be_bytes());
    bytes.extend(name_wire(signer)?);
    bytes.extend(BASE64.decode(signature.concat().as_bytes())?);
    Ok(bytes)
}

fn nsec(fields: &[&str]) -> anyhow::Result<Vec<u8>> {
    let [next, types @ ..] = fields else {
        bail!("NSEC needs a next name");
    };
    let mut bytes = name_wire(next)?;
    bytes.extend(type_bitmap(types)?);
    Ok(bytes)
}

/// NSEC3 (`with_next`) or NSEC3PARAM: algorithm flags iterations salt [next-hash types...].
fn nsec3(fields: &[&str], with_next: bool) -> anyhow::Result<Vec<u8>> {
    let [algorithm, flags, iterations, salt, rest @ ..] = fields else {
        bail!("NSEC3 needs algorithm flags iterations salt");
    };
    let mut bytes = vec![algorithm.parse()?, flags.parse()?];
    bytes.extend(iterations.parse::<u16>()?.to_be_bytes());
    let salt = if *salt == "-" { Vec::new() } else { hex(salt)? };
    bytes.push(u8::try_from(salt.len())?);
    bytes.extend(salt);
    if with_next {
        let [next, types @ ..] = rest else {
            bail!("NSEC3 needs the next hashed owner");
        };
        let hash = BASE32_DNSSEC.decode(next.to_ascii_lowercase().as_bytes())?;
        bytes.push(u8::try_from(hash.len())?);
        bytes.extend(hash);
        bytes.extend(type_bitmap(types)?);
    }
    Ok(bytes)
}

/// RFC 4034 §4.1.2 type bit maps.
fn type_bitmap(types: &[&str]) -> anyhow::Result<Vec<u8>> {
    let mut codes: Vec<u16> = types
        .iter()
        .map(|kind| RecordType::from_str(kind).map(u16::from))
        .collect::<Result<_, _>>()?;
    codes.sort_unstable();
    codes.dedup();
    let mut bytes = Vec::new();
    let mut index = 0;
    while index < codes.len() {
        let window = codes[index] >> 8;
        let mut bitmap = [0u8; 32];
        let mut used = 0;
        while index < codes.len() && codes[index] >> 8 == window {
            let low = usize::from(codes[index] & 0xff);
            bitmap[low / 8] |= 0x80 >> (low % 8);
            used = low / 8 + 1;
            index += 1;
        }
        bytes.push(u8::try_from(window)?);
        bytes.push(u8::try_from(used)?);
        bytes.extend(&bitmap[..used]);
    }
    Ok(bytes)
}

/// An uncompressed wire name (lowercase is the signer's business, not ours).
fn name_wire(text: &str) -> anyhow::Result<Vec<u8>> {
    let name = Name::from_ascii(text)?;
    let mut bytes = Vec::new();
    for label in name.iter() {
        bytes.push(u8::try_from(label.len())?);
        bytes.extend(label);
    }
    bytes.push(0);
    Ok(bytes)
}

fn hex(text: &str) -> anyhow::Result<Vec<u8>> {
    Ok(data_encoding::HEXLOWER_PERMISSIVE.decode(text.as_bytes())?)
}

/// `YYYYMMDDHHmmSS` (or plain seconds) to seconds since the epoch, mod 2^32 (RFC 4034 §3.2).
fn timestamp(text: &str) -> anyhow::Result<u32> {
    if text.len() != 14 {
        return Ok(text.parse()?);
    }
    let part = |range: std::ops::Range<usize>| -> anyhow::Result<i64> {
        Ok(text.get(range).context("short timestamp")?.parse()?)
    };
    let (year, month, day) = (part(0..4)?, part(4..6)?, part(6..8)?);
    let (hour, minute, second) = (part(8..10)?, part(10..12)?, part(12..14)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    Ok((seconds & 0xffff_ffff) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_convert_to_epoch_seconds() {
        assert_eq!(timestamp("19700101000000").unwrap(), 0);
        assert_eq!(timestamp("20260101000000").unwrap(), 1_767_225_600);
        assert_eq!(timestamp("1767225600").unwrap(), 1_767_225_600);
    }

    #[test]
    fn signed_vectors_parse() {
        let text = include_str!("../../vectors/dnssec/child.signed");
        let (_, records) = split(text).unwrap();
        assert!(records.iter().any(|r| r.record_type() == RecordType::RRSIG));
        assert!(
            records
                .iter()
                .any(|r| r.record_type() == RecordType::DNSKEY)
        );
        assert!(records.iter().any(|r| r.record_type() == RecordType::NSEC));
        let text = include_str!("../../vectors/dnssec/optout.signed");
        let (_, records) = split(text).unwrap();
        assert!(records.iter().any(|r| r.record_type() == RecordType::NSEC3));
        assert!(
            records
                .iter()
                .any(|r| r.record_type() == RecordType::NSEC3PARAM)
        );
    }
}
