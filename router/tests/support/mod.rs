//! A minimal in-memory `Frame`: a header list and a variable map, nothing else.

// Each test binary uses a different subset of the helpers.
#![allow(dead_code)]

use std::any::Any;
use std::borrow::Cow;
use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use strait_codec_framework::{CodecError, Frame, FrameKind, HeaderIter, RequestId};

#[derive(Default)]
pub struct MapFrame {
    pub headers: Vec<(String, String)>,
    pub variables: HashMap<String, String>,
}

impl MapFrame {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.set_header(name, value);
        self
    }

    pub fn with_var(mut self, name: &str, value: &str) -> Self {
        self.variables.insert(name.to_string(), value.to_string());
        self
    }
}

impl Frame for MapFrame {
    fn kind(&self) -> FrameKind {
        FrameKind::Request
    }

    fn request_id(&self) -> RequestId {
        1
    }

    fn set_request_id(&mut self, _id: RequestId) {}

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn set_header(&mut self, name: &str, value: &str) {
        match self.headers.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.headers.push((name.to_string(), value.to_string())),
        }
    }

    fn remove_header(&mut self, name: &str) -> bool {
        let before = self.headers.len();
        self.headers.retain(|(n, _)| n != name);
        self.headers.len() != before
    }

    fn for_each_header(&self, f: HeaderIter<'_>) {
        for (n, v) in &self.headers {
            f(n, v);
        }
    }

    fn variable(&self, name: &str) -> Option<Cow<'_, str>> {
        self.variables.get(name).map(|v| Cow::Borrowed(v.as_str()))
    }

    fn body(&self) -> Bytes {
        Bytes::new()
    }

    fn encode(&self, _dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
