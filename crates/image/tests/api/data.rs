//! Image data: upload, download (ranges, Content-MD5), format enforcement, import, deactivation.

use http::Method;
use serde_json::json;

use crate::common::qcow2_bytes;

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

api_test!(async fn upload_download_and_ranges(c) {
    let t = c.tenant("member").await;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let v = c.create(&t.token, json!({"name": "d", "disk_format": "raw", "container_format": "bare"})).await;
    let id = v["id"].as_str().unwrap();
    // Downloading a queued image has no content.
    let (s, _, body) = c.raw(Method::GET, &format!("/image/v2/images/{id}/file"), Some(&t.token), None, vec![], &[]).await;
    assert_eq!((s.as_u16(), body.len()), (204, 0));
    assert_eq!(c.upload(id, &t.token, &data).await, 204);
    let (_, v) = c.show(&t.token, id).await;
    assert_eq!(v["status"], "active");
    assert_eq!(v["size"], 200_000);
    assert_eq!(v["virtual_size"], 200_000);
    assert_eq!(v["checksum"], md5_hex(&data));
    assert_eq!(v["os_hash_algo"], "sha512");
    assert_eq!(v["os_hash_value"].as_str().unwrap().len(), 128);
    let (s, h, body) = c.raw(Method::GET, &format!("/image/v2/images/{id}/file"), Some(&t.token), None, vec![], &[]).await;
    assert_eq!(s, 200);
    assert_eq!(body, data);
    assert_eq!(h["content-md5"], md5_hex(&data).as_str());
    assert_eq!(h["content-type"], "application/octet-stream");
    let (s, h, body) = c
        .raw(Method::GET, &format!("/image/v2/images/{id}/file"), Some(&t.token), None, vec![], &[("range", "bytes=10-19")])
        .await;
    assert_eq!(s, 206);
    assert_eq!(body, &data[10..20]);
    assert_eq!(h["content-range"], "bytes 10-19/200000");
    let (s, _, _) = c
        .raw(Method::GET, &format!("/image/v2/images/{id}/file"), Some(&t.token), None, vec![], &[("range", "bytes=300000-")])
        .await;
    assert_eq!(s, 416);
    // Uploading twice is a conflict; the data stays.
    assert_eq!(c.upload(id, &t.token, b"other").await, 409);
    assert_eq!(c.show(&t.token, id).await.1["size"], 200_000);
    // Deleting removes the data from the store.
    assert_eq!(c.stored_files(), 1);
    let (s, _) = c.json(Method::DELETE, &format!("/image/v2/images/{id}"), &t.token, None).await;
    assert_eq!(s, 204);
    assert_eq!(c.stored_files(), 0);
});

api_test!(async fn content_must_match_the_declared_format(c) {
    let t = c.tenant("member").await;
    let v = c.create(&t.token, json!({"name": "fake", "disk_format": "qcow2", "container_format": "bare"})).await;
    let id = v["id"].as_str().unwrap();
    let (s, _, body) = c
        .raw(Method::PUT, &format!("/image/v2/images/{id}/file"), Some(&t.token), Some("application/octet-stream"), vec![1u8; 4096], &[])
        .await;
    assert_eq!(s, 400);
    assert!(String::from_utf8_lossy(&body).contains("does not match disk_format"));
    let (_, v) = c.show(&t.token, id).await;
    assert_eq!(v["status"], "queued", "refused data leaves the image uploadable again");
    assert!(v["size"].is_null());
    assert_eq!(c.stored_files(), 0);
    // A real qcow2 header is accepted, with its virtual size.
    assert_eq!(c.upload(id, &t.token, &qcow2_bytes(false)).await, 204);
    let (_, v) = c.show(&t.token, id).await;
    assert_eq!((v["status"].as_str(), v["virtual_size"].as_i64()), (Some("active"), Some(1 << 30)));
    // A qcow2 declared raw is refused too (it could hide a backing file).
    let v = c.create(&t.token, json!({"name": "hidden", "disk_format": "raw", "container_format": "bare"})).await;
    assert_eq!(c.upload(v["id"].as_str().unwrap(), &t.token, &qcow2_bytes(false)).await, 400);
});

api_test!(async fn unsafe_qcow2_is_refused(c) {
    let t = c.tenant("member").await;
    let v = c.create(&t.token, json!({"name": "evil", "disk_format": "qcow2", "container_format": "bare"})).await;
    let id = v["id"].as_str().unwrap();
    let (s, _, body) = c
        .raw(Method::PUT, &format!("/image/v2/images/{id}/file"), Some(&t.token), Some("application/octet-stream"), qcow2_bytes(true), &[])
        .await;
    assert_eq!(s, 400);
    assert!(String::from_utf8_lossy(&body).contains("backing file"));
    assert_eq!(c.show(&t.token, id).await.1["status"], "queued");
    assert_eq!(c.stored_files(), 0);
});

api_test!(async fn upload_needs_formats_and_respects_the_size_cap(c) {
    let t = c.tenant("member").await;
    let v = c.create(&t.token, json!({"name": "noformat"})).await;
    assert_eq!(c.upload(v["id"].as_str().unwrap(), &t.token, b"x").await, 400);
});

#[tokio::test]
async fn size_cap_answers_413_and_keeps_nothing() {
    for engine in crate::common::engines() {
        let c = crate::common::TestCloud::builder(engine)
            .max_image_size(1000)
            .start()
            .await;
        let t = c.tenant("member").await;
        let v = c
            .create(
                &t.token,
                json!({"name": "big", "disk_format": "raw", "container_format": "bare"}),
            )
            .await;
        let id = v["id"].as_str().unwrap();
        assert_eq!(c.upload(id, &t.token, &vec![0u8; 5000]).await, 413);
        assert_eq!(c.show(&t.token, id).await.1["status"], "queued");
        assert_eq!(c.stored_files(), 0);
        assert_eq!(c.upload(id, &t.token, &vec![0u8; 900]).await, 204);
    }
}

api_test!(async fn stage_and_glance_direct_import(c) {
    let t = c.tenant("member").await;
    let v = c.create(&t.token, json!({"name": "imp", "disk_format": "raw", "container_format": "bare"})).await;
    let id = v["id"].as_str().unwrap();
    let (s, _) = c.json(Method::POST, &format!("/image/v2/images/{id}/import"), &t.token, Some(json!({"method": {"name": "glance-direct"}}))).await;
    assert_eq!(s, 409, "nothing staged yet");
    let (s, _, _) = c
        .raw(Method::PUT, &format!("/image/v2/images/{id}/stage"), Some(&t.token), Some("application/octet-stream"), b"staged bytes".to_vec(), &[])
        .await;
    assert_eq!(s, 204);
    assert_eq!(c.show(&t.token, id).await.1["status"], "uploading");
    let (s, _) = c.json(Method::POST, &format!("/image/v2/images/{id}/import"), &t.token, Some(json!({"method": {"name": "web-download"}}))).await;
    assert_eq!(s, 400);
    let (s, _) = c.json(Method::POST, &format!("/image/v2/images/{id}/import"), &t.token, Some(json!({"method": {"name": "glance-direct"}}))).await;
    assert_eq!(s, 202);
    let (_, v) = c.show(&t.token, id).await;
    assert_eq!((v["status"].as_str(), v["size"].as_i64()), (Some("active"), Some(12)));
});

api_test!(async fn deactivated_images_cannot_be_downloaded(c) {
    let admin = c.admin().await;
    let t = c.tenant("member").await;
    let v = c.create(&admin, json!({"name": "pub", "visibility": "public", "disk_format": "raw", "container_format": "bare"})).await;
    let id = v["id"].as_str().unwrap();
    assert_eq!(c.upload(id, &admin, b"data").await, 204);
    let (s, _) = c.json(Method::POST, &format!("/image/v2/images/{id}/actions/deactivate"), &t.token, None).await;
    assert_eq!(s, 403, "not the owner");
    let (s, _) = c.json(Method::POST, &format!("/image/v2/images/{id}/actions/deactivate"), &admin, None).await;
    assert_eq!(s, 204);
    let (s, _, _) = c.raw(Method::GET, &format!("/image/v2/images/{id}/file"), Some(&t.token), None, vec![], &[]).await;
    assert_eq!(s, 403);
    let (s, _) = c.json(Method::POST, &format!("/image/v2/images/{id}/actions/reactivate"), &admin, None).await;
    assert_eq!(s, 204);
    let (s, _, body) = c.raw(Method::GET, &format!("/image/v2/images/{id}/file"), Some(&t.token), None, vec![], &[]).await;
    assert_eq!((s.as_u16(), body.as_slice()), (200, &b"data"[..]));
});
