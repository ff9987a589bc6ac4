//! Expected decoded fields of every Bolt fixture.
//!
//! Each row was taken from `data/README.md` and checked by decoding the frame by hand
//! against the layout in `wire-formats.md` §1 (offsets, the three lengths, the header map
//! pairs and, for v2 ver1=2 switch=1 frames, the CRC-32 over `[0, end of content)`).

/// What a Bolt frame is, as seen from its type byte and command code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoltKind {
    /// type 1, cmdcode 1.
    Request,
    /// type 2, cmdcode 1.
    Oneway,
    /// type 0, cmdcode 2.
    Response,
    /// type 1, cmdcode 0.
    Heartbeat,
    /// type 0, cmdcode 0.
    HeartbeatAck,
}

/// The fields a Bolt decoder must find in one fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoltFixture {
    /// Fixture name (without `.hex`), for [`crate::hex`].
    pub file: &'static str,
    /// Type byte and command code combined.
    pub kind: BoltKind,
    /// Protocol byte: 1 or 2.
    pub version: u8,
    /// v2 only: the protocol version byte after proto.
    pub ver1: Option<u8>,
    /// v2 only: the switch byte after codec.
    pub switch: Option<u8>,
    /// Request id (echoed by responses).
    pub request_id: u32,
    /// Serializer id.
    pub codec: u8,
    /// Requests only: the raw timeout field in milliseconds.
    pub timeout: Option<i32>,
    /// Responses only: the status field.
    pub status: Option<u16>,
    /// The class name section, as text.
    pub class_name: &'static str,
    /// The header map pairs in wire order.
    pub headers: &'static [(&'static str, &'static str)],
    /// Length of the header map section in bytes.
    pub header_len: u16,
    /// Length of the content section in bytes.
    pub content_len: u32,
    /// Length of the whole frame, CRC trailer included.
    pub total_len: usize,
    /// The CRC-32 trailer, when the frame has one.
    pub crc: Option<u32>,
}

/// Every Bolt fixture (`bolt_*` and `suite_*`), sorted by file name.
pub static BOLT_FIXTURES: &[BoltFixture] = &[
    BoltFixture {
        file: "bolt_v1_heartbeat",
        kind: BoltKind::Heartbeat,
        version: 1,
        ver1: None,
        switch: None,
        request_id: 3,
        codec: 1,
        timeout: Some(3000),
        status: None,
        class_name: "",
        headers: &[],
        header_len: 0,
        content_len: 0,
        total_len: 22,
        crc: None,
    },
    BoltFixture {
        file: "bolt_v1_heartbeat_ack",
        kind: BoltKind::HeartbeatAck,
        version: 1,
        ver1: None,
        switch: None,
        request_id: 3,
        codec: 1,
        timeout: None,
        status: Some(0),
        class_name: "",
        headers: &[],
        header_len: 0,
        content_len: 0,
        total_len: 20,
        crc: None,
    },
    BoltFixture {
        file: "bolt_v1_request_hessian2",
        kind: BoltKind::Request,
        version: 1,
        ver1: None,
        switch: None,
        request_id: 1,
        codec: 1,
        timeout: Some(3000),
        status: None,
        class_name: "com.alipay.sofa.rpc.core.request.SofaRequest",
        headers: &[("service", "com.alipay.test.TestService:1.0")],
        header_len: 46,
        content_len: 207,
        total_len: 319,
        crc: None,
    },
    BoltFixture {
        file: "bolt_v1_request_hessian4dialect",
        kind: BoltKind::Request,
        version: 1,
        ver1: None,
        switch: None,
        request_id: 1,
        codec: 1,
        timeout: Some(3000),
        status: None,
        class_name: "com.alipay.sofa.rpc.core.request.SofaRequest",
        headers: &[("service", "com.alipay.test.TestService:1.0")],
        header_len: 46,
        content_len: 202,
        total_len: 314,
        crc: None,
    },
    BoltFixture {
        file: "bolt_v1_request_oneway",
        kind: BoltKind::Oneway,
        version: 1,
        ver1: None,
        switch: None,
        request_id: 2,
        codec: 1,
        timeout: Some(3000),
        status: None,
        class_name: "com.alipay.sofa.rpc.core.request.SofaRequest",
        headers: &[("service", "com.alipay.test.TestService:1.0")],
        header_len: 46,
        content_len: 207,
        total_len: 319,
        crc: None,
    },
    BoltFixture {
        file: "bolt_v1_response_server_exception",
        kind: BoltKind::Response,
        version: 1,
        ver1: None,
        switch: None,
        request_id: 1,
        codec: 1,
        timeout: None,
        status: Some(2),
        class_name: "com.alipay.sofa.rpc.core.response.SofaResponse",
        headers: &[],
        header_len: 0,
        content_len: 742,
        total_len: 808,
        crc: None,
    },
    BoltFixture {
        file: "bolt_v1_response_success",
        kind: BoltKind::Response,
        version: 1,
        ver1: None,
        switch: None,
        request_id: 1,
        codec: 1,
        timeout: None,
        status: Some(0),
        class_name: "com.alipay.sofa.rpc.core.response.SofaResponse",
        headers: &[],
        header_len: 0,
        content_len: 98,
        total_len: 164,
        crc: None,
    },
    BoltFixture {
        file: "bolt_v1_response_timeout_status",
        kind: BoltKind::Response,
        version: 1,
        ver1: None,
        switch: None,
        request_id: 1,
        codec: 1,
        timeout: None,
        status: Some(7),
        class_name: "com.alipay.sofa.rpc.core.response.SofaResponse",
        headers: &[],
        header_len: 0,
        content_len: 745,
        total_len: 811,
        crc: None,
    },
    BoltFixture {
        file: "bolt_v2_ver1_heartbeat",
        kind: BoltKind::Heartbeat,
        version: 2,
        ver1: Some(1),
        switch: Some(0),
        request_id: 3,
        codec: 1,
        timeout: Some(3000),
        status: None,
        class_name: "",
        headers: &[],
        header_len: 0,
        content_len: 0,
        total_len: 24,
        crc: None,
    },
    BoltFixture {
        file: "bolt_v2_ver1_heartbeat_ack",
        kind: BoltKind::HeartbeatAck,
        version: 2,
        ver1: Some(1),
        switch: Some(0),
        request_id: 3,
        codec: 1,
        timeout: None,
        status: Some(0),
        class_name: "",
        headers: &[],
        header_len: 0,
        content_len: 0,
        total_len: 22,
        crc: None,
    },
    BoltFixture {
        file: "bolt_v2_ver1_request",
        kind: BoltKind::Request,
        version: 2,
        ver1: Some(1),
        switch: Some(0),
        request_id: 1,
        codec: 1,
        timeout: Some(3000),
        status: None,
        class_name: "com.alipay.sofa.rpc.core.request.SofaRequest",
        headers: &[("service", "com.alipay.test.TestService:1.0")],
        header_len: 46,
        content_len: 207,
        total_len: 321,
        crc: None,
    },
    BoltFixture {
        file: "bolt_v2_ver1_response_success",
        kind: BoltKind::Response,
        version: 2,
        ver1: Some(1),
        switch: Some(0),
        request_id: 1,
        codec: 1,
        timeout: None,
        status: Some(0),
        class_name: "com.alipay.sofa.rpc.core.response.SofaResponse",
        headers: &[],
        header_len: 0,
        content_len: 98,
        total_len: 166,
        crc: None,
    },
    BoltFixture {
        file: "bolt_v2_ver2_crc_heartbeat",
        kind: BoltKind::Heartbeat,
        version: 2,
        ver1: Some(2),
        switch: Some(1),
        request_id: 3,
        codec: 1,
        timeout: Some(3000),
        status: None,
        class_name: "",
        headers: &[],
        header_len: 0,
        content_len: 0,
        total_len: 28,
        crc: Some(0x0d1efaa6),
    },
    BoltFixture {
        file: "bolt_v2_ver2_crc_heartbeat_ack",
        kind: BoltKind::HeartbeatAck,
        version: 2,
        ver1: Some(2),
        switch: Some(1),
        request_id: 3,
        codec: 1,
        timeout: None,
        status: Some(0),
        class_name: "",
        headers: &[],
        header_len: 0,
        content_len: 0,
        total_len: 26,
        crc: Some(0x02fa4d3f),
    },
    BoltFixture {
        file: "bolt_v2_ver2_crc_request",
        kind: BoltKind::Request,
        version: 2,
        ver1: Some(2),
        switch: Some(1),
        request_id: 1,
        codec: 1,
        timeout: Some(3000),
        status: None,
        class_name: "com.alipay.sofa.rpc.core.request.SofaRequest",
        headers: &[("service", "com.alipay.test.TestService:1.0")],
        header_len: 46,
        content_len: 207,
        total_len: 325,
        crc: Some(0x7b32b6fa),
    },
    BoltFixture {
        file: "bolt_v2_ver2_crc_response_success",
        kind: BoltKind::Response,
        version: 2,
        ver1: Some(2),
        switch: Some(1),
        request_id: 1,
        codec: 1,
        timeout: None,
        status: Some(0),
        class_name: "com.alipay.sofa.rpc.core.response.SofaResponse",
        headers: &[],
        header_len: 0,
        content_len: 98,
        total_len: 170,
        crc: Some(0x5400ad4d),
    },
    BoltFixture {
        file: "suite_sofa_bolt_node_v1_rpc_server_exception",
        kind: BoltKind::Response,
        version: 1,
        ver1: None,
        switch: None,
        request_id: 1,
        codec: 1,
        timeout: None,
        status: Some(2),
        class_name: "com.alipay.remoting.rpc.exception.RpcServerException",
        headers: &[],
        header_len: 0,
        content_len: 1121,
        total_len: 1193,
        crc: None,
    },
    BoltFixture {
        file: "suite_sofa_bolt_node_v2_crc_response",
        kind: BoltKind::Response,
        version: 2,
        ver1: Some(2),
        switch: Some(1),
        request_id: 1,
        codec: 1,
        timeout: None,
        status: Some(0),
        class_name: "com.alipay.sofa.rpc.core.response.SofaResponse",
        headers: &[],
        header_len: 0,
        content_len: 750,
        total_len: 822,
        crc: Some(0xfa4bbeb0),
    },
];

/// The expectations for one fixture by name (with or without `.hex`).
pub fn bolt_fixture(name: &str) -> Option<&'static BoltFixture> {
    let stem = name.strip_suffix(".hex").unwrap_or(name);
    BOLT_FIXTURES.iter().find(|f| f.file == stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bolt_fixture_has_expectations() {
        let mut names: Vec<_> = crate::all("bolt_").into_iter().map(|(n, _)| n).collect();
        names.extend(crate::all("suite_").into_iter().map(|(n, _)| n));
        assert_eq!(names.len(), BOLT_FIXTURES.len());
        for name in names {
            let f = bolt_fixture(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(crate::hex(name).len(), f.total_len, "{name}");
        }
    }

    #[test]
    fn lengths_add_up() {
        for f in BOLT_FIXTURES {
            let fixed = match (f.version, f.timeout.is_some()) {
                (1, true) => 22,
                (1, false) => 20,
                (_, true) => 24,
                (_, false) => 22,
            };
            let crc = if f.crc.is_some() { 4 } else { 0 };
            let sum =
                fixed + f.class_name.len() + usize::from(f.header_len) + f.content_len as usize;
            assert_eq!(sum + crc, f.total_len, "{}", f.file);
        }
    }
}
