//! Every validation rule: INVALID_ARGUMENT with a BadRequest naming every bad field, and nothing written.

use orderly::users::v1::{CreateUserRequest, DeleteUserRequest, GetUserRequest, ListUsersRequest};
use tonic::Code;

use crate::support::{TestServer, violated_fields};

crate::on_both_backends!(
    bad_create_lists_every_field_and_writes_nothing,
    ids_must_be_uuids
);

async fn bad_create_lists_every_field_and_writes_nothing(mut server: TestServer) {
    let long_email = format!("{}@{}.com", "a".repeat(64), "b".repeat(186));
    let cases: [(&str, &str, &[&str]); 10] = [
        ("", "ada@example.com", &["name"]),
        ("   ", "ada@example.com", &["name"]),
        (&"n".repeat(201), "ada@example.com", &["name"]),
        ("Ada\u{7}", "ada@example.com", &["name"]),
        ("Ada\u{202E}ecalevol", "ada@example.com", &["name"]),
        ("Ada\u{2028}Lovelace", "ada@example.com", &["name"]),
        ("Ada", "", &["email"]),
        ("Ada", "not-an-email", &["email"]),
        ("Ada", &long_email, &["email"]),
        ("", "ada@", &["name", "email"]),
    ];
    for (name, email, fields) in cases {
        let status = server
            .client
            .create_user(CreateUserRequest {
                name: name.into(),
                email: email.into(),
            })
            .await
            .expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument, "{name:?} {email:?}");
        assert_eq!(violated_fields(&status), fields, "{name:?} {email:?}");
    }
    // 200 characters is the limit, not 200 bytes.
    crate::support::create(&mut server.client, &"é".repeat(200), "long@example.com").await;

    let listed = server
        .client
        .list_users(ListUsersRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.users.len(), 1, "only the valid user was written");
    server.stop().await;
}

async fn ids_must_be_uuids(mut server: TestServer) {
    for id in ["", "42", "not-a-uuid"] {
        let status = server
            .client
            .get_user(GetUserRequest { id: id.into() })
            .await
            .expect_err("bad id");
        assert_eq!(status.code(), Code::InvalidArgument, "{id:?}");
        assert_eq!(violated_fields(&status), ["id"]);
        let status = server
            .client
            .delete_user(DeleteUserRequest { id: id.into() })
            .await
            .expect_err("bad id");
        assert_eq!(status.code(), Code::InvalidArgument, "{id:?}");
    }
    server.stop().await;
}

/// Bytes sent as a message exactly as given, to say what a well-behaved client never would.
#[derive(Clone, Default, Debug)]
struct Raw(Vec<u8>);

impl prost::Message for Raw {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        _tag: u32,
        _wire_type: prost::encoding::WireType,
        _buf: &mut impl prost::bytes::Buf,
        _ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// A request that does not decode as its message is the caller's fault: INVALID_ARGUMENT (not
/// INTERNAL, which clients retry and dashboards count as the server's), and nothing is written.
#[tokio::test]
async fn malformed_protobuf_is_invalid_argument() {
    let Some(server) = crate::support::start(orderly_testkit::TestBackend::Sqlite).await else {
        return;
    };
    let channel = orderly_testkit::channel(server.addr).await;
    // Field 1 (the name) as a string of invalid UTF-8.
    let bad_utf8 = vec![0x0a, 0x02, 0xff, 0xfe];
    // Field 1 as a varint of eleven bytes: longer than any 64-bit value.
    let mut bad_varint = vec![0x08];
    bad_varint.extend([0xff; 10]);
    bad_varint.push(0x01);
    // Groups nested 101 deep in an unknown field: past prost's recursion limit.
    let mut too_deep = Vec::new();
    too_deep.extend(std::iter::repeat_n(0x9b_u8, 101).flat_map(|b| [b, 0x06]));
    too_deep.extend(std::iter::repeat_n(0x9c_u8, 101).flat_map(|b| [b, 0x06]));
    for (case, bytes) in [
        ("invalid UTF-8", bad_utf8),
        ("bad varint", bad_varint),
        ("nested too deep", too_deep),
    ] {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.expect("ready");
        let codec =
            tonic_prost::ProstCodec::<Raw, orderly::users::v1::CreateUserResponse>::default();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(
            "/orderly.users.v1.UserService/CreateUser",
        );
        let status = grpc
            .unary(tonic::Request::new(Raw(bytes)), path, codec)
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    }
    let listed = server
        .client
        .clone()
        .list_users(ListUsersRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(listed.users.is_empty(), "{:?}", listed.users);
    server.stop().await;
}
