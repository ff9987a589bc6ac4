//! The fixture table: every `data/*.hex` file compiled in.

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        /// Every fixture as `(name without .hex, hex text)`, sorted by name.
        pub static FILES: &[(&str, &str)] = &[$(($name, include_str!(concat!("../data/", $name, ".hex")))),*];
    };
}

fixtures!(
    "bolt_v1_heartbeat",
    "bolt_v1_heartbeat_ack",
    "bolt_v1_request_hessian2",
    "bolt_v1_request_hessian4dialect",
    "bolt_v1_request_oneway",
    "bolt_v1_response_server_exception",
    "bolt_v1_response_success",
    "bolt_v1_response_timeout_status",
    "bolt_v2_ver1_heartbeat",
    "bolt_v2_ver1_heartbeat_ack",
    "bolt_v2_ver1_request",
    "bolt_v2_ver1_response_success",
    "bolt_v2_ver2_crc_heartbeat",
    "bolt_v2_ver2_crc_heartbeat_ack",
    "bolt_v2_ver2_crc_request",
    "bolt_v2_ver2_crc_response_success",
    "dubbo_heartbeat_request",
    "dubbo_heartbeat_response",
    "dubbo_readonly_event_request",
    "dubbo_req_body_hessian2",
    "dubbo_req_body_object_arg",
    "dubbo_request_object_arg",
    "dubbo_request_oneway",
    "dubbo_request_twoway",
    "dubbo_resp_body_value_with_attachments",
    "dubbo_response_ok_null_with_attachments",
    "dubbo_response_ok_value",
    "dubbo_response_ok_value_with_attachments",
    "dubbo_response_service_not_found",
    "suite_sofa_bolt_node_v1_rpc_server_exception",
    "suite_sofa_bolt_node_v2_crc_response",
);
