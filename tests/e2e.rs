//! End to end through real sockets: `strata local` and a master/worker/gateway cluster.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Body, start_cluster, start_local};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_put_get_restart_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(3 << 20);
    let run = start_local(dir.path()).await;
    assert_eq!(run.s3.put("/bkt", b"").await.status(), 200);
    assert_eq!(run.s3.put("/bkt/a/b.bin", &data).await.status(), 200);
    assert_eq!(run.s3.put("/bkt/..%2F..%2Fescape", b"inside").await.status(), 200);
    run.stop().await;

    // Same folder, new process state: every bucket and object is still there.
    let run = start_local(dir.path()).await;
    let got = run.s3.get("/bkt/a/b.bin").await;
    assert_eq!(got.status(), 200);
    assert_eq!(Sha256::digest(got.bytes().await.unwrap()), Sha256::digest(&data));
    // A plain file with the same key in the bucket's folder of the under store.
    assert_eq!(std::fs::read(dir.path().join("ufs/bkt/a/b.bin")).unwrap(), data);
    // `../../escape` stayed inside the bucket's folder.
    assert!(!dir.path().join("escape").exists() && !dir.path().join("ufs/escape").exists());
    let got = run.s3.get("/bkt/..%2F..%2Fescape").await;
    assert_eq!(got.bytes().await.unwrap(), Bytes::from_static(b"inside"));
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_trailer_checksum_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let run = start_local(dir.path()).await;
    run.s3.put("/bkt", b"").await;
    let chunked = |crc: &str| {
        Bytes::from(format!("5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n").into_bytes())
    };
    let headers = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "11"),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ];
    // CRC32("hello world") = 0x0d4a1185.
    let ok = run
        .s3
        .send("PUT", "/bkt/t", &headers, Body::Raw("STREAMING-UNSIGNED-PAYLOAD-TRAILER", chunked("DUoRhQ==")))
        .await;
    assert_eq!(ok.status(), 200, "{}", ok.text().await.unwrap());
    assert_eq!(run.s3.get("/bkt/t").await.bytes().await.unwrap(), Bytes::from_static(b"hello world"));
    let bad = run
        .s3
        .send("PUT", "/bkt/u", &headers, Body::Raw("STREAMING-UNSIGNED-PAYLOAD-TRAILER", chunked("AAAAAA==")))
        .await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("<Code>BadDigest</Code>"));
    assert_eq!(run.s3.get("/bkt/u").await.status(), 404);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_dying_mid_upload_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = start_local(dir.path()).await;
    run.s3.put("/bkt", b"").await;
    // Sign a 1 MiB unsigned-payload PUT, send a tenth of the body, then hang up.
    let url = run.s3.endpoint.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&url).await.unwrap();
    let signed = signed_headers(&run.s3, "/bkt/partial", 1 << 20);
    let mut head = format!("PUT /bkt/partial HTTP/1.1\r\nhost: {url}\r\ncontent-length: {}\r\n", 1 << 20);
    for (k, v) in signed {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![7u8; 100 << 10]).await.unwrap();
    drop(stream);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(run.s3.get("/bkt/partial").await.status(), 404);
    assert!(!dir.path().join("ufs/bkt/partial").exists());
    run.stop().await;
}

fn signed_headers(s3: &common::S3, path: &str, len: usize) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let url = format!("{}{}", s3.endpoint, path);
    let identity = aws_credential_types::Credentials::new(&s3.access_key, &s3.secret_key, None, None, "t").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let len = len.to_string();
    let hs = [("content-length", len.as_str())];
    let signable =
        SignableRequest::new("PUT", &url, hs.iter().copied(), SignableBody::Precomputed("UNSIGNED-PAYLOAD".into()))
            .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder().uri(&url).body(()).unwrap();
    instructions.apply_to_request_http1x(&mut req);
    req.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_reads_bytes_from_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let (run, worker) = start_cluster(dir.path()).await;
    assert_eq!(run.s3.put("/bkt", b"").await.status(), 200);
    let data = pattern(5 << 20);
    assert_eq!(run.s3.put("/bkt/obj", &data).await.status(), 200);
    let before = served(&worker).await;
    let got = run.s3.get("/bkt/obj").await.bytes().await.unwrap();
    assert_eq!(Sha256::digest(&got), Sha256::digest(&data));
    assert!(served(&worker).await - before >= data.len() as f64, "the worker served the bytes");
    let wrong = common::S3::new(run.s3.endpoint.clone(), "AKTEST".into(), "wrong".into());
    let r = wrong.get("/bkt/obj").await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("SignatureDoesNotMatch"));
    run.stop().await;
}

async fn served(worker: &str) -> f64 {
    let text = reqwest::get(format!("{worker}/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with("strata_worker_bytes_served_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_before_the_body_is_read_closes_the_connection() {
    // With `Expect: 100-continue` a client may or may not send the body after an early error:
    // reusing the connection could take the body for the next request.
    let dir = tempfile::tempdir().unwrap();
    let run = start_local(dir.path()).await;
    // An anonymous PUT into a private bucket is refused before its body is read.
    assert_eq!(run.s3.put("/bkt", b"").await.status(), 200);
    let r = run.s3.http.put(format!("{}/bkt/k", run.s3.endpoint)).body("unsigned body").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers().get("connection").map(|v| v.to_str().unwrap()), Some("close"));
    let r = run.s3.http.get(format!("{}/bkt/k", run.s3.endpoint)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers().get("connection"), None, "no body, nothing to fear: keep-alive");
    run.stop().await;
}
