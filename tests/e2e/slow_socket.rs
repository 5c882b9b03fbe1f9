//! A websocket that does not read while the server publishes more than its
//! buffer holds is closed (1008) and counted, instead of silently missing
//! events; it reconnects fine, and a socket that keeps reading is untouched.

use crate::websocket::Client;
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;
use switchboard_tests::TestShim;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Events published in all: well past the buffer (1,024) plus what the
/// kernel's socket buffers hold for a socket that does not read.
const EVENTS: usize = 3000;
/// Published between two checks that the reading socket has them all, so it
/// never falls behind itself.
const BATCH: usize = 200;

#[tokio::test]
async fn a_socket_that_falls_behind_is_closed_and_can_reconnect() {
    let shim = TestShim::start().await.unwrap();
    let events = shim.shim.app.events.clone();
    let admin = shim.admin.id.clone();
    let mut slow = Client::with_header(&shim, &shim.admin_token).await;
    let mut reader = Client::with_header(&shim, &shim.admin_token).await;
    let filler = "x".repeat(8 * 1024);

    let mut published = 0;
    while published < EVENTS {
        for _ in 0..BATCH {
            events.to_user(
                &admin,
                "test_filler",
                json!({"n": published, "filler": filler}),
            );
            published += 1;
        }
        // The reading socket gets every one of them, in order.
        for n in published - BATCH..published {
            let event = reader.next_event().await.expect("the reader keeps up");
            assert_eq!(event["data"]["n"], n);
        }
    }
    assert_eq!(
        events.slow_sockets_closed(),
        0,
        "nothing is noticed before the socket reads"
    );

    // The slow socket now reads: what was buffered, then a close, not a gap.
    let mut received = 0;
    let close = loop {
        let message = tokio::time::timeout(Duration::from_secs(10), slow.socket.next())
            .await
            .expect("the server answers")
            .expect("a close frame before the end")
            .expect("a message");
        match message {
            Message::Text(text) => {
                let event: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(event["data"]["n"], received, "no event is skipped silently");
                received += 1;
            }
            Message::Close(frame) => break frame.expect("a close code"),
            _ => {}
        }
    };
    assert_eq!(close.code, CloseCode::Policy);
    assert!(close.reason.contains("reconnect"), "{}", close.reason);
    assert!(received < EVENTS, "it fell behind: {received} of {EVENTS}");
    assert_eq!(events.slow_sockets_closed(), 1);

    // It reconnects and gets new events; the reading socket still works.
    let mut again = Client::with_header(&shim, &shim.admin_token).await;
    events.to_user(&admin, "test_filler", json!({"n": "after"}));
    assert_eq!(again.next_event().await.unwrap()["data"]["n"], "after");
    assert_eq!(reader.next_event().await.unwrap()["data"]["n"], "after");
    assert_eq!(events.slow_sockets_closed(), 1);
    shim.stop().await.unwrap();
}
