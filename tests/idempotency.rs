//! `Idempotency-Key`: a retry after a lost reply appends nothing and gets
//! the first answer; the same key with another body is refused.

use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use verkosto_e2e::{agency, both_modes, Verkosto};

both_modes!(
    a_retry_after_a_dropped_reply_appends_once,
    |mode| async move {
        let v = Verkosto::start(mode).await.unwrap();
        let admin = v.token("admin").await.unwrap();
        let key = uuid::Uuid::new_v4().to_string();
        let body = agency("ngo-retry", "ngo").to_string();

        // Send the write, then hang up without reading the reply.
        let addr = v.base.trim_start_matches("http://").to_string();
        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request = format!(
        "POST /api/v1/agencies HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: application/json\r\nIdempotency-Key: {key}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
        socket.write_all(request.as_bytes()).await.unwrap();
        socket.flush().await.unwrap();

        // Once the write has committed, hang up without reading the reply.
        let log = v.log().await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while log.stream_version("agency", "ngo-retry").await.unwrap() == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the first attempt never committed"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(socket);

        let retry = |b: String| {
            v.http()
                .post(v.url("/api/v1/agencies"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .header("idempotency-key", &key)
                .body(b)
                .send()
        };
        let first = verkosto_e2e::answer(retry(body.clone()).await.unwrap())
            .await
            .unwrap();
        let second = verkosto_e2e::answer(retry(body.clone()).await.unwrap())
            .await
            .unwrap();
        assert_eq!(first.0, 201, "{first:?}");
        assert_eq!(first, second);
        assert_eq!(first.1, json!({ "id": "ngo-retry", "version": 1 }));
        assert_eq!(
            log.stream_version("agency", "ngo-retry").await.unwrap(),
            1,
            "appended once"
        );

        // The same key with a different body.
        let (status, problem) =
            verkosto_e2e::answer(retry(agency("ngo-other", "ngo").to_string()).await.unwrap())
                .await
                .unwrap();
        assert_eq!(
            (status, problem["field"].as_str()),
            (422, Some("Idempotency-Key")),
            "{problem}"
        );
        assert_eq!(log.stream_version("agency", "ngo-other").await.unwrap(), 0);

        // Concurrent retries with one key: still one append, one answer.
        let key2 = uuid::Uuid::new_v4().to_string();
        let body2 = agency("ngo-burst", "ngo").to_string();
        let sends = (0..8).map(|_| {
            v.http()
                .post(v.url("/api/v1/agencies"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .header("idempotency-key", &key2)
                .body(body2.clone())
                .send()
        });
        for r in futures::future::join_all(sends).await {
            let (status, body) = verkosto_e2e::answer(r.unwrap()).await.unwrap();
            assert_eq!(
                (status, body),
                (201, json!({ "id": "ngo-burst", "version": 1 }))
            );
        }
        assert_eq!(log.stream_version("agency", "ngo-burst").await.unwrap(), 1);
        v.stop().await;
    }
);
