//! Incremental body decoder (RFC 9112 §6, §7): fed the read buffer in slices of any split,
//! it returns body data as zero-copy `Bytes` as soon as it arrives and never holds a body.
//! Only a trailer section is kept in the buffer until complete (bounded by
//! [`ChunkLimits::max_trailer_bytes`]).

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, HOST, TE, TRAILER, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::error::DecodeError;
use super::parse::{BodyKind, MAX_HEADERS_CAP, find};

/// Bounds of the chunked decoder, per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Bytes of chunk extensions (and whitespace before them) in the whole message
    /// (hyper's `CHUNKED_EXTENSIONS_LIMIT`, 16 KiB).
    pub max_extension_bytes: usize,
    /// Bytes of the trailer section, final CRLF included (16 KiB).
    pub max_trailer_bytes: usize,
    /// Trailer fields (capped at [`MAX_HEADERS_CAP`]).
    pub max_trailers: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        Self {
            max_extension_bytes: 16 * 1024,
            max_trailer_bytes: 16 * 1024,
            max_trailers: 100,
        }
    }
}

/// Most hex digits in a chunk size (64 bits).
pub const MAX_CHUNK_SIZE_DIGITS: u8 = 16;

/// One decoded piece of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Body data (a slice of the read buffer, not copied).
    Data(Bytes),
    /// The trailer section of a chunked body (never empty; forbidden fields removed).
    Trailers(HeaderMap),
}

/// State of a body being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoder {
    /// This many bytes remain.
    Length(u64),
    /// Chunked transfer coding.
    Chunked(Chunked),
    /// Everything until the connection closes.
    Eof,
    /// The body has ended.
    Done,
}

/// Chunked decoder state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunked {
    state: ChunkState,
    limits: ChunkLimits,
    ext_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading hex digits (how many so far, value so far).
    Size { digits: u8, size: u64 },
    /// Whitespace after the size (BWS before `;` or CR).
    SizeLws { size: u64 },
    /// Inside extensions: skipped up to CR.
    Ext { size: u64 },
    /// CR seen after the size line, LF expected.
    SizeLf { size: u64 },
    /// Chunk data, this many bytes left.
    Data(u64),
    /// CR expected after the data.
    DataCr,
    /// LF expected after the data's CR.
    DataLf,
    /// After the last chunk: trailer section or final CRLF.
    Trailers,
    /// Finished.
    Done,
}

impl Decoder {
    /// The decoder for a parsed head's framing (`None` for a body-less message gives `Done`).
    pub fn new(kind: BodyKind, limits: ChunkLimits) -> Self {
        match kind {
            BodyKind::None | BodyKind::Length(0) => Self::Done,
            BodyKind::Length(n) => Self::Length(n),
            BodyKind::Chunked => Self::Chunked(Chunked {
                state: ChunkState::Size { digits: 0, size: 0 },
                limits,
                ext_bytes: 0,
            }),
            BodyKind::Eof => Self::Eof,
        }
    }

    /// The body has been read completely; bytes left in the buffer belong to the next message.
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Done)
    }

    /// Exact number of body bytes still to come, if known.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            Self::Length(n) => Some(*n),
            Self::Done => Some(0),
            _ => None,
        }
    }

    /// Takes the next piece of the body off the front of `buf`. `Ok(None)`: more bytes
    /// are needed, or the body is done (see [`Decoder::is_done`]); with `buf` empty it
    /// returns `Ok(None)` without changing state. After an error the message is broken:
    /// the decoder and the buffer's contents must not be used again.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        match self {
            Self::Done => Ok(None),
            Self::Eof => Ok((!buf.is_empty()).then(|| Decoded::Data(buf.split().freeze()))),
            Self::Length(left) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                *left -= n as u64;
                let data = buf.split_to(n).freeze();
                if *left == 0 {
                    *self = Self::Done;
                }
                Ok(Some(Decoded::Data(data)))
            }
            Self::Chunked(c) => {
                let out = c.decode(buf)?;
                if c.state == ChunkState::Done {
                    *self = Self::Done;
                }
                Ok(out)
            }
        }
    }

    /// The connection reached EOF: fine for a close-delimited body (which is then done),
    /// [`DecodeError::Incomplete`] for any other unfinished body.
    pub fn on_eof(&mut self) -> Result<(), DecodeError> {
        match self {
            Self::Done => Ok(()),
            Self::Eof => {
                *self = Self::Done;
                Ok(())
            }
            _ => Err(DecodeError::Incomplete),
        }
    }
}

impl Chunked {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        loop {
            match self.state {
                ChunkState::Done => return Ok(None),
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let rest = left - n as u64;
                    self.state = if rest == 0 {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data(rest)
                    };
                    return Ok(Some(Decoded::Data(buf.split_to(n).freeze())));
                }
                ChunkState::Trailers => return self.trailers(buf),
                _ => {
                    // Size line and CRLF states: byte by byte through the state machine,
                    // then the consumed bytes dropped at once; nothing kept.
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let mut used = 0;
                    for &b in buf.iter() {
                        self.state = self.step(b)?;
                        used += 1;
                        if matches!(self.state, ChunkState::Data(_) | ChunkState::Trailers) {
                            break;
                        }
                    }
                    buf.advance(used);
                }
            }
        }
    }

    fn step(&mut self, b: u8) -> Result<ChunkState, DecodeError> {
        use ChunkState::*;
        Ok(match self.state {
            Size { digits, size } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    if digits >= MAX_CHUNK_SIZE_DIGITS {
                        return Err(DecodeError::ChunkSizeOverflow);
                    }
                    let d = (b as char).to_digit(16).unwrap_or(0);
                    Size {
                        digits: digits + 1,
                        size: (size << 4) | u64::from(d),
                    }
                }
                _ if digits == 0 => return Err(DecodeError::BadChunkSize),
                b' ' | b'\t' => self.ext(SizeLws { size })?,
                b';' => self.ext(Ext { size })?,
                b'\r' => SizeLf { size },
                _ => return Err(DecodeError::BadChunkSize),
            },
            SizeLws { size } => match b {
                b' ' | b'\t' => self.ext(SizeLws { size })?,
                b';' => self.ext(Ext { size })?,
                b'\r' => SizeLf { size },
                _ => return Err(DecodeError::BadChunkSize),
            },
            Ext { size } => match b {
                b'\r' => SizeLf { size },
                b'\n' => return Err(DecodeError::BadChunkSize),
                _ => self.ext(Ext { size })?,
            },
            SizeLf { size } => match b {
                b'\n' if size == 0 => Trailers,
                b'\n' => Data(size),
                _ => return Err(DecodeError::BadChunkSize),
            },
            DataCr => match b {
                b'\r' => DataLf,
                _ => return Err(DecodeError::BadChunkEnd),
            },
            DataLf => match b {
                b'\n' => Size { digits: 0, size: 0 },
                _ => return Err(DecodeError::BadChunkEnd),
            },
            Data(_) | Trailers | Done => self.state,
        })
    }

    fn ext(&mut self, next: ChunkState) -> Result<ChunkState, DecodeError> {
        self.ext_bytes += 1;
        if self.ext_bytes > self.limits.max_extension_bytes {
            return Err(DecodeError::ExtensionsTooLarge {
                max: self.limits.max_extension_bytes,
            });
        }
        Ok(next)
    }

    /// Trailer section: kept in `buf` until its final CRLF is there, then parsed at once.
    fn trailers(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        let max = self.limits.max_trailer_bytes;
        match buf.first() {
            None => return Ok(None),
            Some(b'\r') => {
                let Some(&second) = buf.get(1) else {
                    return Ok(None);
                };
                if second != b'\n' {
                    return Err(DecodeError::BadTrailers);
                }
                buf.advance(2);
                self.state = ChunkState::Done;
                return Ok(None);
            }
            Some(_) => {}
        }
        let window = &buf[..buf.len().min(max)];
        let Some(end) = find(window, b"\r\n\r\n").map(|i| i + 4) else {
            return if buf.len() >= max {
                Err(DecodeError::TrailersTooLarge { max })
            } else {
                Ok(None)
            };
        };
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS_CAP];
        let n = self.limits.max_trailers.min(MAX_HEADERS_CAP);
        let mut map = HeaderMap::new();
        match httparse::parse_headers(&buf[..end], &mut fields[..n]) {
            Ok(httparse::Status::Complete((len, parsed))) if len == end => {
                for h in parsed {
                    let name = HeaderName::from_bytes(h.name.as_bytes())
                        .map_err(|_| DecodeError::BadTrailers)?;
                    if [CONTENT_LENGTH, TRANSFER_ENCODING, HOST, TRAILER, TE].contains(&name) {
                        continue;
                    }
                    let value =
                        HeaderValue::from_bytes(h.value).map_err(|_| DecodeError::BadTrailers)?;
                    map.append(name, value);
                }
            }
            _ => return Err(DecodeError::BadTrailers),
        }
        buf.advance(end);
        self.state = ChunkState::Done;
        Ok((!map.is_empty()).then_some(Decoded::Trailers(map)))
    }
}
