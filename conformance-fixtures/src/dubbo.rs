//! Expected decoded fields of every Dubbo fixture.
//!
//! Each row was taken from `data/README.md` and checked by decoding the bytes by hand
//! against `wire-formats.md` §2 (the 16-byte header, the hessian2 body fields, the
//! argument bytes up to the attachments map, and the map's entries in wire order).

/// What a Dubbo fixture holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DubboKind {
    /// Flag 0xc2: two-way hessian2 request.
    Request,
    /// Flag 0x82: oneway request.
    Oneway,
    /// Flag 0x02: response.
    Response,
    /// Flag 0xe2 with body `N`: heartbeat.
    Heartbeat,
    /// Flag 0x22: heartbeat reply.
    HeartbeatAck,
    /// Flag 0xe2 with body "R": a provider going read-only (shutting down).
    ReadonlyEvent,
    /// A request body alone, without the 16-byte header.
    RequestBody,
    /// A response body alone (status 20), without the header.
    ResponseBody,
}

/// The request fields behind the routing variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DubboInvocation {
    /// Body field 1.
    pub dubbo_version: &'static str,
    /// Body field 2.
    pub path: &'static str,
    /// Body field 3 (`None` = null).
    pub version: Option<&'static str>,
    /// Body field 4.
    pub method: &'static str,
    /// Body field 5.
    pub parameter_types: &'static str,
    /// Byte range of the arguments within the body.
    pub args: (usize, usize),
}

/// The fields a Dubbo decoder must find in one fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DubboFixture {
    /// Fixture name (without `.hex`), for [`crate::hex`].
    pub file: &'static str,
    /// What it is.
    pub kind: DubboKind,
    /// Header flag byte (`None` for body-only fixtures).
    pub flag: Option<u8>,
    /// Header status byte.
    pub status: u8,
    /// Request id (echoed by responses).
    pub request_id: u64,
    /// Body length.
    pub body_len: usize,
    /// Length of the whole fixture.
    pub total_len: usize,
    /// Requests: the invocation fields.
    pub invocation: Option<DubboInvocation>,
    /// String attachments in wire order (request or response).
    pub attachments: &'static [(&'static str, &'static str)],
    /// Responses with status 20: the result flag.
    pub result_flag: Option<i32>,
    /// Responses: the string result value.
    pub value: Option<&'static str>,
    /// Responses with another status: the error message.
    pub error: Option<&'static str>,
}

const DEMO: &str = "org.apache.dubbo.demo.DemoService";
const USER: &str = "org.apache.dubbo.demo.UserService";

const DEMO_INVOCATION: DubboInvocation = DubboInvocation {
    dubbo_version: "2.0.2",
    path: DEMO,
    version: Some("1.0.0"),
    method: "sayHello",
    parameter_types: "Ljava/lang/String;",
    args: (75, 81),
};

const DEMO_ATTACHMENTS: &[(&str, &str)] = &[
    ("group", "g1"),
    ("interface", DEMO),
    ("path", DEMO),
    ("timeout", "3000"),
    ("version", "1.0.0"),
];

const USER_INVOCATION: DubboInvocation = DubboInvocation {
    dubbo_version: "2.0.2",
    path: USER,
    version: Some("0.0.0"),
    method: "save",
    parameter_types: "Lorg/apache/dubbo/demo/User;J",
    args: (82, 160),
};

const USER_ATTACHMENTS: &[(&str, &str)] = &[
    ("group", "g2"),
    ("interface", USER),
    ("path", USER),
    ("timeout", "500"),
];

const RESPONSE_ATTACHMENTS: &[(&str, &str)] = &[("dubbo", "2.0.2")];

const NONE: DubboFixture = DubboFixture {
    file: "",
    kind: DubboKind::Request,
    flag: None,
    status: 0,
    request_id: 0,
    body_len: 0,
    total_len: 0,
    invocation: None,
    attachments: &[],
    result_flag: None,
    value: None,
    error: None,
};

/// Every Dubbo fixture, sorted by file name.
pub static DUBBO_FIXTURES: &[DubboFixture] = &[
    DubboFixture {
        file: "dubbo_heartbeat_request",
        kind: DubboKind::Heartbeat,
        flag: Some(0xe2),
        request_id: 7,
        body_len: 1,
        total_len: 17,
        ..NONE
    },
    DubboFixture {
        file: "dubbo_heartbeat_response",
        kind: DubboKind::HeartbeatAck,
        flag: Some(0x22),
        status: 20,
        request_id: 7,
        body_len: 1,
        total_len: 17,
        ..NONE
    },
    DubboFixture {
        file: "dubbo_readonly_event_request",
        kind: DubboKind::ReadonlyEvent,
        flag: Some(0xe2),
        request_id: 8,
        body_len: 2,
        total_len: 18,
        ..NONE
    },
    DubboFixture {
        file: "dubbo_req_body_hessian2",
        kind: DubboKind::RequestBody,
        body_len: 204,
        total_len: 204,
        invocation: Some(DEMO_INVOCATION),
        attachments: DEMO_ATTACHMENTS,
        ..NONE
    },
    DubboFixture {
        file: "dubbo_req_body_object_arg",
        kind: DubboKind::RequestBody,
        body_len: 268,
        total_len: 268,
        invocation: Some(USER_INVOCATION),
        attachments: USER_ATTACHMENTS,
        ..NONE
    },
    DubboFixture {
        file: "dubbo_request_object_arg",
        kind: DubboKind::Request,
        flag: Some(0xc2),
        request_id: 5,
        body_len: 268,
        total_len: 284,
        invocation: Some(USER_INVOCATION),
        attachments: USER_ATTACHMENTS,
        ..NONE
    },
    DubboFixture {
        file: "dubbo_request_oneway",
        kind: DubboKind::Oneway,
        flag: Some(0x82),
        request_id: 2,
        body_len: 204,
        total_len: 220,
        invocation: Some(DEMO_INVOCATION),
        attachments: DEMO_ATTACHMENTS,
        ..NONE
    },
    DubboFixture {
        file: "dubbo_request_twoway",
        kind: DubboKind::Request,
        flag: Some(0xc2),
        request_id: 1,
        body_len: 204,
        total_len: 220,
        invocation: Some(DEMO_INVOCATION),
        attachments: DEMO_ATTACHMENTS,
        ..NONE
    },
    DubboFixture {
        file: "dubbo_resp_body_value_with_attachments",
        kind: DubboKind::ResponseBody,
        status: 20,
        body_len: 27,
        total_len: 27,
        attachments: RESPONSE_ATTACHMENTS,
        result_flag: Some(4),
        value: Some("Hello world"),
        ..NONE
    },
    DubboFixture {
        file: "dubbo_response_ok_null_with_attachments",
        kind: DubboKind::Response,
        flag: Some(0x02),
        status: 20,
        request_id: 1,
        body_len: 15,
        total_len: 31,
        attachments: RESPONSE_ATTACHMENTS,
        result_flag: Some(5),
        ..NONE
    },
    DubboFixture {
        file: "dubbo_response_ok_value",
        kind: DubboKind::Response,
        flag: Some(0x02),
        status: 20,
        request_id: 1,
        body_len: 13,
        total_len: 29,
        result_flag: Some(1),
        value: Some("Hello world"),
        ..NONE
    },
    DubboFixture {
        file: "dubbo_response_ok_value_with_attachments",
        kind: DubboKind::Response,
        flag: Some(0x02),
        status: 20,
        request_id: 1,
        body_len: 27,
        total_len: 43,
        attachments: RESPONSE_ATTACHMENTS,
        result_flag: Some(4),
        value: Some("Hello world"),
        ..NONE
    },
    DubboFixture {
        file: "dubbo_response_service_not_found",
        kind: DubboKind::Response,
        flag: Some(0x02),
        status: 60,
        request_id: 1,
        body_len: 23,
        total_len: 39,
        error: Some("404|router unavailable"),
        ..NONE
    },
];

/// The expectations for one fixture by name (with or without `.hex`).
pub fn dubbo_fixture(name: &str) -> Option<&'static DubboFixture> {
    let stem = name.strip_suffix(".hex").unwrap_or(name);
    DUBBO_FIXTURES.iter().find(|f| f.file == stem)
}

/// The whole-frame fixtures (those with a 16-byte header).
pub fn dubbo_frames() -> impl Iterator<Item = &'static DubboFixture> {
    DUBBO_FIXTURES.iter().filter(|f| f.flag.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dubbo_fixture_has_expectations() {
        let names: Vec<_> = crate::all("dubbo_").into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), DUBBO_FIXTURES.len());
        assert!(DUBBO_FIXTURES.windows(2).all(|w| w[0].file < w[1].file));
        for name in names {
            let f = dubbo_fixture(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(crate::hex(name).len(), f.total_len, "{name}");
        }
    }

    #[test]
    fn headers_match_the_table() {
        for f in dubbo_frames() {
            let b = crate::hex(f.file);
            assert_eq!(&b[..2], &[0xda, 0xbb], "{}", f.file);
            assert_eq!(Some(b[2]), f.flag, "{}", f.file);
            assert_eq!(b[3], f.status, "{}", f.file);
            let id = u64::from_be_bytes(b[4..12].try_into().unwrap());
            let len = u32::from_be_bytes(b[12..16].try_into().unwrap());
            assert_eq!(id, f.request_id, "{}", f.file);
            assert_eq!(len as usize, f.body_len, "{}", f.file);
            assert_eq!(f.total_len, 16 + f.body_len, "{}", f.file);
        }
        assert_eq!(dubbo_frames().count(), 10);
    }

    #[test]
    fn frames_carry_their_bodies() {
        for (frame, body) in [
            ("dubbo_request_twoway", "dubbo_req_body_hessian2"),
            ("dubbo_request_oneway", "dubbo_req_body_hessian2"),
            ("dubbo_request_object_arg", "dubbo_req_body_object_arg"),
            (
                "dubbo_response_ok_value_with_attachments",
                "dubbo_resp_body_value_with_attachments",
            ),
        ] {
            assert_eq!(crate::hex(frame)[16..], crate::hex(body)[..], "{frame}");
        }
    }

    #[test]
    fn argument_ranges_end_at_the_attachments_map() {
        for f in DUBBO_FIXTURES {
            let Some(inv) = f.invocation else { continue };
            let b = crate::hex(f.file);
            let body = &b[f.total_len - f.body_len..];
            assert_eq!(body[inv.args.1], b'H', "{}", f.file);
            assert_eq!(*body.last().unwrap(), b'Z', "{}", f.file);
        }
    }
}
