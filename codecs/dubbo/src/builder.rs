//! Builders for new Dubbo frames: proxy replies, test frames, echo backends.
//!
//! Every builder serialises the frame and parses it back, so a built frame is exactly
//! what a decoder would produce from the same bytes.

use bytes::{BufMut, Bytes, BytesMut};
use strait_codec_framework::CodecError;

use crate::decode::parse_complete;
use crate::frame::DubboFrame;
use crate::hessian2::writer;
use crate::status;
use crate::types::*;

/// Builds a hessian2 request. Defaults: id 0, two-way, dubbo version "2.0.2", service
/// version null, empty descriptor and arguments, no attachments (an empty `H Z` map).
///
/// Java providers read the `path`, `interface` and `version` attachments too; add them
/// with [`RequestBuilder::attachment`] when talking to one.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    id: u64,
    two_way: bool,
    dubbo_version: String,
    path: String,
    version: Option<String>,
    method: String,
    types: String,
    args: Bytes,
    attachments: Vec<(String, String)>,
}

impl RequestBuilder {
    /// A request for `method` of the service at `path`.
    pub fn new(path: &str, method: &str) -> Self {
        RequestBuilder {
            id: 0,
            two_way: true,
            dubbo_version: DEFAULT_DUBBO_VERSION.to_string(),
            path: path.to_string(),
            version: None,
            method: method.to_string(),
            types: String::new(),
            args: Bytes::new(),
            attachments: Vec::new(),
        }
    }

    /// Sets the request id.
    pub fn id(mut self, id: u64) -> Self {
        self.id = id;
        self
    }

    /// Makes the request oneway (no response expected).
    pub fn oneway(mut self) -> Self {
        self.two_way = false;
        self
    }

    /// Sets whether the request expects a response.
    pub fn two_way(mut self, two_way: bool) -> Self {
        self.two_way = two_way;
        self
    }

    /// Sets the Dubbo protocol version (body field 1).
    pub fn dubbo_version(mut self, v: &str) -> Self {
        self.dubbo_version = v.to_string();
        self
    }

    /// Sets the service version (body field 3); `None` writes null.
    pub fn version(mut self, v: Option<&str>) -> Self {
        self.version = v.map(str::to_string);
        self
    }

    /// Sets the parameter-types descriptor and the arguments, already hessian2-encoded
    /// (one value per parameter the descriptor names).
    pub fn arguments(mut self, descriptor: &str, args: impl Into<Bytes>) -> Self {
        self.types = descriptor.to_string();
        self.args = args.into();
        self
    }

    /// Sets the descriptor to `Ljava/lang/String;` and the single argument to `s`.
    pub fn string_argument(self, s: &str) -> Self {
        let mut args = BytesMut::new();
        writer::write_string(&mut args, s);
        self.arguments("Ljava/lang/String;", args.freeze())
    }

    /// Appends an attachment.
    pub fn attachment(mut self, key: &str, value: &str) -> Self {
        self.attachments.push((key.to_string(), value.to_string()));
        self
    }

    /// Serialises the request.
    pub fn build(self) -> Result<DubboFrame, CodecError> {
        let mut body = BytesMut::new();
        writer::write_string(&mut body, &self.dubbo_version);
        writer::write_string(&mut body, &self.path);
        match &self.version {
            Some(v) => writer::write_string(&mut body, v),
            None => writer::write_null(&mut body),
        }
        writer::write_string(&mut body, &self.method);
        writer::write_string(&mut body, &self.types);
        body.put_slice(&self.args);
        writer::write_string_map(
            &mut body,
            self.attachments
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let flag = FLAG_REQUEST | HESSIAN2 | if self.two_way { FLAG_TWO_WAY } else { 0 };
        frame(flag, 0, self.id, &body)
    }
}

/// What a response carries.
#[derive(Debug, Clone)]
enum Outcome {
    Null,
    Value(Bytes),
    Error(Option<String>),
}

/// Builds a hessian2 response. Defaults: status 20 (OK), null result, no attachments.
#[derive(Debug, Clone)]
pub struct ResponseBuilder {
    id: u64,
    status: u8,
    outcome: Outcome,
    attachments: Option<Vec<(String, String)>>,
}

impl ResponseBuilder {
    /// A response to request `id`.
    pub fn new(id: u64) -> Self {
        ResponseBuilder {
            id,
            status: status::OK,
            outcome: Outcome::Null,
            attachments: None,
        }
    }

    /// Sets the status byte.
    pub fn status(mut self, status: u8) -> Self {
        self.status = status;
        self
    }

    /// Status 20: the result is the string `s` (result flag 1, or 4 with attachments).
    pub fn value(self, s: &str) -> Self {
        let mut v = BytesMut::new();
        writer::write_string(&mut v, s);
        self.raw_value(v.freeze())
    }

    /// Status 20: the result is this pre-encoded hessian2 value.
    pub fn raw_value(mut self, value: impl Into<Bytes>) -> Self {
        self.outcome = Outcome::Value(value.into());
        self
    }

    /// Status 20: a null result (flag 2, or 5 with attachments). The default.
    pub fn null_value(mut self) -> Self {
        self.outcome = Outcome::Null;
        self
    }

    /// An error response: `status` (not 20) and the message the body carries.
    pub fn error(mut self, status: u8, message: &str) -> Self {
        self.status = status;
        self.outcome = Outcome::Error(Some(message.to_string()));
        self
    }

    /// Appends a response attachment (status 20 only: result flags 4 and 5).
    pub fn attachment(mut self, key: &str, value: &str) -> Self {
        self.attachments
            .get_or_insert_with(Vec::new)
            .push((key.to_string(), value.to_string()));
        self
    }

    /// Serialises the response. An OK status with an error message, or attachments on
    /// an error status, cannot be expressed and are refused.
    pub fn build(self) -> Result<DubboFrame, CodecError> {
        let mut body = BytesMut::new();
        if self.status != status::OK {
            if self.attachments.is_some() {
                return Err(CodecError::Encode(
                    "an error response carries no attachments".into(),
                ));
            }
            match &self.outcome {
                Outcome::Error(Some(msg)) => writer::write_string(&mut body, msg),
                Outcome::Error(None) | Outcome::Null => writer::write_null(&mut body),
                Outcome::Value(_) => {
                    return Err(CodecError::Encode(format!(
                        "status {} carries an error message, not a value",
                        self.status
                    )));
                }
            }
        } else {
            let with = i32::from(self.attachments.is_some()) * 3;
            match &self.outcome {
                Outcome::Value(v) => {
                    writer::write_int(&mut body, RESPONSE_VALUE + with);
                    body.put_slice(v);
                }
                Outcome::Null => writer::write_int(&mut body, RESPONSE_NULL_VALUE + with),
                Outcome::Error(_) => {
                    return Err(CodecError::Encode(
                        "status 20 carries a value, not an error message".into(),
                    ));
                }
            }
            if let Some(att) = &self.attachments {
                writer::write_string_map(
                    &mut body,
                    att.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                );
            }
        }
        frame(HESSIAN2, self.status, self.id, &body)
    }
}

/// Serialises a header and `body` and parses the result back.
pub(crate) fn frame(flag: u8, status: u8, id: u64, body: &[u8]) -> Result<DubboFrame, CodecError> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or_else(|| CodecError::Encode(format!("body of {} bytes", body.len())))?;
    let mut dst = BytesMut::with_capacity(HEADER_LEN + body.len());
    put_header(&mut dst, flag, status, id, len);
    dst.put_slice(body);
    parse_complete(dst.freeze())
}

// === impl DubboFrame (constructors) ===

impl DubboFrame {
    /// A builder for a request to `method` of the service at `path`.
    pub fn request(path: &str, method: &str) -> RequestBuilder {
        RequestBuilder::new(path, method)
    }

    /// A builder for a response to request `id`.
    pub fn response(id: u64) -> ResponseBuilder {
        ResponseBuilder::new(id)
    }

    /// A hessian2 heartbeat request (`0xe2`, or `0xa2` when not two-way), body `N`.
    pub fn heartbeat(id: u64, two_way: bool) -> DubboFrame {
        let flag = FLAG_REQUEST | FLAG_EVENT | HESSIAN2 | if two_way { FLAG_TWO_WAY } else { 0 };
        Self::fixed(flag, 0, id, &HEARTBEAT_BODY)
    }

    /// A hessian2 heartbeat reply (`0x22`, status 20, body `N`).
    pub fn heartbeat_ack(id: u64) -> DubboFrame {
        Self::fixed(FLAG_EVENT | HESSIAN2, status::OK, id, &HEARTBEAT_BODY)
    }

    /// The read-only event a provider sends when it shuts down (`0xe2`, body "R").
    pub fn readonly_event(id: u64) -> DubboFrame {
        let flag = FLAG_REQUEST | FLAG_TWO_WAY | FLAG_EVENT | HESSIAN2;
        Self::fixed(flag, 0, id, &READONLY_EVENT_BODY)
    }

    /// Parses `bytes` as exactly one complete frame.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Result<DubboFrame, CodecError> {
        parse_complete(bytes.into())
    }

    /// A frame with a body of at most a few bytes, built without parsing.
    pub(crate) fn fixed(flag: u8, status: u8, id: u64, body: &[u8]) -> DubboFrame {
        // Callers pass constant bodies of 1-2 bytes.
        let len = body.len() as u32;
        let mut dst = BytesMut::with_capacity(HEADER_LEN + body.len());
        put_header(&mut dst, flag, status, id, len);
        dst.put_slice(body);
        let head = Head {
            flag,
            status,
            request_id: id,
            body_len: len,
        };
        DubboFrame::from_parts(dst.freeze(), head)
    }
}
