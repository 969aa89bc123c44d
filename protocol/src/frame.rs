//! Length-prefixed CBOR frames: a `u32` big-endian body length, then the body, with a hard cap.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// Default cap for a request frame: 64 KiB holds 100 targets with room to spare.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Default cap for a result frame read by a primary: evidence can be large (a 64 KiB TXT set),
/// but a node has no business sending more than this per target.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The declared length exceeds the cap.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Declared body length.
        len: usize,
        /// The cap in force.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes expected (prefix or body).
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// A frame of length zero, which never carries a message.
    #[error("empty frame")]
    Empty,
    /// The body is not CBOR of the expected message.
    #[error("malformed CBOR body: {0}")]
    Decode(#[from] ciborium::de::Error<std::io::Error>),
    /// The message could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(#[from] ciborium::ser::Error<std::io::Error>),
    /// The underlying stream failed.
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes `message` as one frame (prefix + CBOR body), refusing bodies over `max_len`.
pub fn encode<T: Serialize>(message: &T, max_len: usize) -> Result<Vec<u8>, FrameError> {
    let mut buffer = vec![0u8; LENGTH_PREFIX_LEN];
    ciborium::into_writer(message, &mut buffer)?;
    let len = buffer.len() - LENGTH_PREFIX_LEN;
    if len > max_len {
        return Err(FrameError::TooLarge { len, max: max_len });
    }
    let prefix = u32::try_from(len).map_err(|_| FrameError::TooLarge { len, max: max_len })?;
    buffer[..LENGTH_PREFIX_LEN].copy_from_slice(&prefix.to_be_bytes());
    Ok(buffer)
}

/// Decodes a CBOR body (without its prefix) into a message.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    if body.is_empty() {
        return Err(FrameError::Empty);
    }
    Ok(ciborium::from_reader(body)?)
}

/// One frame's body and the bytes after it.
pub type Split<'a> = (&'a [u8], &'a [u8]);

/// Splits one complete frame off the front of `bytes`: returns the body and the rest. Returns
/// `Ok(None)` when `bytes` holds only part of a frame.
pub fn split_frame(bytes: &[u8], max_len: usize) -> Result<Option<Split<'_>>, FrameError> {
    let Some((prefix, rest)) = bytes.split_first_chunk::<LENGTH_PREFIX_LEN>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*prefix) as usize;
    if len > max_len {
        return Err(FrameError::TooLarge { len, max: max_len });
    }
    if len == 0 {
        return Err(FrameError::Empty);
    }
    Ok((rest.len() >= len).then(|| rest.split_at(len)))
}

/// Async frame I/O over tokio streams.
#[cfg(feature = "io")]
pub mod io {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    use super::{FrameError, LENGTH_PREFIX_LEN};

    /// Reads one frame body. Returns `Ok(None)` on a clean end of stream before any byte of a
    /// frame; a stream that ends inside a frame is [`FrameError::Truncated`]. The cap is checked
    /// before any body byte is buffered, so a hostile length costs nothing.
    pub async fn read_frame<R: AsyncRead + Unpin>(
        reader: &mut R,
        max_len: usize,
    ) -> Result<Option<Vec<u8>>, FrameError> {
        let mut prefix = [0u8; LENGTH_PREFIX_LEN];
        let got = read_full(reader, &mut prefix).await?;
        if got == 0 {
            return Ok(None);
        }
        if got < LENGTH_PREFIX_LEN {
            return Err(FrameError::Truncated {
                expected: LENGTH_PREFIX_LEN,
                got,
            });
        }
        let len = u32::from_be_bytes(prefix) as usize;
        if len > max_len {
            return Err(FrameError::TooLarge { len, max: max_len });
        }
        if len == 0 {
            return Err(FrameError::Empty);
        }
        let mut body = vec![0u8; len];
        let got = read_full(reader, &mut body).await?;
        if got < len {
            return Err(FrameError::Truncated { expected: len, got });
        }
        Ok(Some(body))
    }

    /// Writes an already encoded frame.
    pub async fn write_frame<W: AsyncWrite + Unpin>(
        writer: &mut W,
        frame: &[u8],
    ) -> Result<(), FrameError> {
        writer.write_all(frame).await?;
        Ok(())
    }

    async fn read_full<R: AsyncRead + Unpin>(
        reader: &mut R,
        buffer: &mut [u8],
    ) -> Result<usize, FrameError> {
        let mut filled = 0;
        while filled < buffer.len() {
            let n = reader.read(&mut buffer[filled..]).await?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        Ok(filled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{CaaCheck, Check, PROTOCOL_VERSION, Request, Target};

    fn sample_request() -> Request {
        Request {
            version: PROTOCOL_VERSION,
            request_id: "req-1".into(),
            nonce: vec![7; 16],
            deadline_unix_ms: 1_800_000_000_000,
            targets: vec![Target {
                identifier: "example.com".into(),
                check: Check::Caa(CaaCheck {
                    issuer_domains: vec!["ca.example".into()],
                    ..CaaCheck::default()
                }),
            }],
        }
    }

    #[test]
    fn encode_then_split_then_decode_round_trips() {
        let frame = encode(&sample_request(), DEFAULT_MAX_REQUEST_BYTES).unwrap();
        let (body, rest) = split_frame(&frame, DEFAULT_MAX_REQUEST_BYTES)
            .unwrap()
            .unwrap();
        assert!(rest.is_empty());
        let decoded: Request = decode_body(body).unwrap();
        assert_eq!(decoded, sample_request());
    }

    #[test]
    fn oversize_frames_are_refused_both_ways() {
        let frame = encode(&sample_request(), DEFAULT_MAX_REQUEST_BYTES).unwrap();
        let body_len = frame.len() - LENGTH_PREFIX_LEN;
        assert!(matches!(
            encode(&sample_request(), body_len - 1),
            Err(FrameError::TooLarge { len, max }) if len == body_len && max == body_len - 1
        ));
        assert!(matches!(
            split_frame(&frame, body_len - 1),
            Err(FrameError::TooLarge { len, .. }) if len == body_len
        ));
    }

    #[test]
    fn partial_frames_wait_for_more() {
        let frame = encode(&sample_request(), DEFAULT_MAX_REQUEST_BYTES).unwrap();
        assert!(split_frame(&frame[..2], 1024).unwrap().is_none());
        assert!(
            split_frame(&frame[..frame.len() - 1], 1024)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn empty_and_garbage_bodies_are_errors() {
        assert!(matches!(
            split_frame(&[0, 0, 0, 0], 1024),
            Err(FrameError::Empty)
        ));
        assert!(matches!(
            decode_body::<Request>(&[]),
            Err(FrameError::Empty)
        ));
        assert!(matches!(
            decode_body::<Request>(&[0xff, 0x00, 0x13]),
            Err(FrameError::Decode(_))
        ));
        // Well-formed CBOR of the wrong shape (an integer) is a decode error too.
        assert!(matches!(
            decode_body::<Request>(&[0x01]),
            Err(FrameError::Decode(_))
        ));
    }

    #[test]
    fn unknown_check_kind_and_unknown_fields_decode() {
        #[derive(serde::Serialize)]
        struct FutureCheck {
            kind: &'static str,
            shiny: u32,
        }
        #[derive(serde::Serialize)]
        struct FutureTarget {
            identifier: &'static str,
            check: FutureCheck,
            extra: &'static str,
        }
        let mut body = Vec::new();
        ciborium::into_writer(
            &FutureTarget {
                identifier: "example.com",
                check: FutureCheck {
                    kind: "quantum",
                    shiny: 1,
                },
                extra: "ignored",
            },
            &mut body,
        )
        .unwrap();
        let target: Target = decode_body(&body).unwrap();
        assert_eq!(
            target.check,
            Check::Unknown {
                kind: "quantum".into()
            }
        );
    }

    #[cfg(feature = "io")]
    #[tokio::test]
    async fn async_reader_reports_truncation_and_clean_eof() {
        let frame = encode(&sample_request(), DEFAULT_MAX_REQUEST_BYTES).unwrap();
        let mut whole = &frame[..];
        let body = io::read_frame(&mut whole, 1024).await.unwrap().unwrap();
        assert_eq!(decode_body::<Request>(&body).unwrap(), sample_request());
        assert!(io::read_frame(&mut whole, 1024).await.unwrap().is_none());

        let mut cut = &frame[..frame.len() - 3];
        assert!(matches!(
            io::read_frame(&mut cut, 1024).await,
            Err(FrameError::Truncated { got, expected }) if expected == got + 3
        ));
        let mut short_prefix = &frame[..2];
        assert!(matches!(
            io::read_frame(&mut short_prefix, 1024).await,
            Err(FrameError::Truncated {
                expected: 4,
                got: 2
            })
        ));
        let huge = [0xffu8, 0xff, 0xff, 0xff];
        assert!(matches!(
            io::read_frame(&mut &huge[..], 1024).await,
            Err(FrameError::TooLarge {
                len: 0xffff_ffff,
                max: 1024
            })
        ));
    }
}
