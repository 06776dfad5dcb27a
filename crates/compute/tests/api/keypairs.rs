//! Key pairs: generate, import, list, show, delete, per-user scoping and quotas.

use base64::Engine as _;
use http::Method;
use md5::Digest as _;
use serde_json::json;

use crate::common::TestCloud;

/// An OpenSSH ed25519 public key line with a fixed key, and Nova's fingerprint of it.
fn ed25519_key() -> (String, String) {
    let mut blob = Vec::new();
    for part in [b"ssh-ed25519".as_slice(), &[7u8; 32]] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    let line = format!(
        "ssh-ed25519 {} test@host",
        base64::engine::general_purpose::STANDARD.encode(&blob)
    );
    let fp = md5::Md5::digest(&blob)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    (line, fp)
}

api_test!(async fn import_generate_show_delete(c) {
    let m = c.tenant("member").await;
    let (key, fp) = ed25519_key();
    let (s, v) = c.call(Method::POST, "/os-keypairs", &m.token,
        Some(json!({"keypair": {"name": "imported", "public_key": key}}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["keypair"]["fingerprint"], fp.as_str());
    assert_eq!(v["keypair"]["user_id"], m.user_id.as_str());
    assert!(v["keypair"].get("private_key").is_none());
    assert!(v["keypair"].get("type").is_none());

    // Generated at 2.2: 201, the private key once, type shown.
    let (s, v) = c.nova(Method::POST, "/os-keypairs", &m.token, "2.2",
        Some(json!({"keypair": {"name": "gen"}}))).await;
    assert_eq!(s, 201);
    assert!(v["keypair"]["private_key"].as_str().unwrap().contains("OPENSSH PRIVATE KEY"));
    assert!(v["keypair"]["public_key"].as_str().unwrap().starts_with("ssh-ed25519 "));
    assert_eq!(v["keypair"]["type"], "ssh");
    let gen_fp = v["keypair"]["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(gen_fp.len(), 47);

    let (s, e) = c.call(Method::POST, "/os-keypairs", &m.token,
        Some(json!({"keypair": {"name": "gen"}}))).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (409, "Key pair 'gen' already exists.".to_string()));

    let (s, v) = c.nova(Method::GET, "/os-keypairs", &m.token, "2.2", None).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = v["keypairs"].as_array().unwrap().iter().map(|k| k["keypair"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["gen", "imported"]);
    assert_eq!(v["keypairs"][0]["keypair"]["type"], "ssh");

    let (s, v) = c.nova(Method::GET, "/os-keypairs/gen", &m.token, "2.2", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["keypair"]["fingerprint"], gen_fp.as_str());
    assert!(v["keypair"]["id"].as_i64().unwrap() > 0);
    assert_eq!(v["keypair"]["deleted"], false);
    assert!(v["keypair"]["created_at"].as_str().unwrap().contains('T'));

    // The servers' lookup.
    let mut conn = c.db.pool.acquire().await.unwrap();
    let k = ferrostack_compute::db::keypairs::get(&mut conn, &m.user_id, "imported").await.unwrap().unwrap();
    assert_eq!(k.fingerprint, fp);
    drop(conn);

    // Another user of the same project sees none of them.
    let other = c.user_on(&m.project_id, "member").await;
    assert_eq!(c.call(Method::GET, "/os-keypairs/gen", &other.token, None).await.0, 404);
    assert_eq!(c.call(Method::GET, "/os-keypairs", &other.token, None).await.1["keypairs"], json!([]));

    assert_eq!(c.call(Method::DELETE, "/os-keypairs/gen", &m.token, None).await.0, 202);
    assert_eq!(c.nova(Method::DELETE, "/os-keypairs/imported", &m.token, "2.2", None).await.0, 204);
    let (s, e) = c.call(Method::DELETE, "/os-keypairs/gen", &m.token, None).await;
    assert_eq!(s, 404);
    assert_eq!(TestCloud::message(&e), format!("Keypair gen not found for user {}", m.user_id));
});

api_test!(async fn validation_and_versions(c) {
    let m = c.tenant("member").await;
    let (key, _) = ed25519_key();
    let cases = [
        ("2.1", json!({"keypair": {}}), "'name' is a required property"),
        ("2.1", json!({"keypair": {"name": "a!b"}}), "does not match"),
        ("2.1", json!({"keypair": {"name": "a@b.c", "public_key": key}}), "does not match"),
        ("2.1", json!({"keypair": {"name": "x".repeat(256)}}), "is too long"),
        ("2.1", json!({"keypair": {"name": "k", "public_key": "ssh-rsa garbage"}}),
         "Keypair data is invalid: failed to generate fingerprint"),
        ("2.1", json!({"keypair": {"name": "k", "type": "ssh"}}), "('type' was unexpected)"),
        ("2.2", json!({"keypair": {"name": "k", "type": "dsa"}}), "is not one of ['ssh', 'x509']"),
        ("2.2", json!({"keypair": {"name": "k", "type": "x509", "public_key": "nope"}}),
         "failed to generate X509 fingerprint"),
        ("2.92", json!({"keypair": {"name": "k"}}), "'public_key' is a required property"),
        ("2.2", json!({"keypair": {"name": "k", "user_id": "u"}}), "('user_id' was unexpected)"),
    ];
    for (mv, body, msg) in cases {
        let (s, e) = c.nova(Method::POST, "/os-keypairs", &m.token, mv, Some(body.clone())).await;
        assert_eq!(s, 400, "{mv} {body}");
        assert!(TestCloud::message(&e).contains(msg), "{mv} {body}: {e}");
    }
    // 2.92 allows '@' and '.'.
    let (s, _) = c.nova(Method::POST, "/os-keypairs", &m.token, "2.92",
        Some(json!({"keypair": {"name": "me@host.x", "public_key": key}}))).await;
    assert_eq!(s, 201);
});

api_test!(async fn admin_acts_for_users_and_pages(c) {
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    let other = c.tenant("member").await;
    let (key, _) = ed25519_key();
    for name in ["a", "b", "c"] {
        let (s, _) = c.nova(Method::POST, "/os-keypairs", &admin, "2.10",
            Some(json!({"keypair": {"name": name, "public_key": key, "user_id": m.user_id}}))).await;
        assert_eq!(s, 201);
    }
    let (s, v) = c.nova(Method::GET, "/os-keypairs", &m.token, "2.35", None).await;
    assert_eq!((s.as_u16(), v["keypairs"].as_array().unwrap().len()), (200, 3));
    // Members cannot act for other users.
    let q = format!("/os-keypairs?user_id={}", m.user_id);
    assert_eq!(c.nova(Method::GET, &q, &other.token, "2.10", None).await.0, 403);
    assert_eq!(c.nova(Method::POST, "/os-keypairs", &other.token, "2.10",
        Some(json!({"keypair": {"name": "x", "public_key": key, "user_id": m.user_id}}))).await.0, 403);
    assert_eq!(c.nova(Method::GET, &format!("/os-keypairs/a?user_id={}", m.user_id), &other.token, "2.10", None).await.0, 403);
    // Admins can, with pagination at 2.35.
    let (s, v) = c.nova(Method::GET, &format!("{q}&limit=2"), &admin, "2.35", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["keypairs"].as_array().unwrap().len(), 2);
    assert!(v["keypairs_links"][0]["href"].as_str().unwrap().contains("marker=b"));
    let (_, v) = c.nova(Method::GET, &format!("{q}&marker=b"), &admin, "2.35", None).await;
    assert_eq!(v["keypairs"][0]["keypair"]["name"], "c");
    assert_eq!(c.nova(Method::GET, &format!("{q}&marker=zz"), &admin, "2.35", None).await.0, 400);
    let (s, _) = c.nova(Method::DELETE, &format!("/os-keypairs/a?user_id={}", m.user_id), &admin, "2.10", None).await;
    assert_eq!(s, 204);
});

api_test!(async fn keypair_quota(c) {
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    let (s, _) = c.call(Method::PUT, &format!("/os-quota-sets/{}", m.project_id), &admin,
        Some(json!({"quota_set": {"key_pairs": 1}}))).await;
    assert_eq!(s, 200);
    assert_eq!(c.call(Method::POST, "/os-keypairs", &m.token, Some(json!({"keypair": {"name": "one"}}))).await.0, 200);
    let (s, e) = c.call(Method::POST, "/os-keypairs", &m.token, Some(json!({"keypair": {"name": "two"}}))).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (403, "Quota exceeded, too many key pairs.".to_string()));
});

api_test!(async fn generates_x509_certificates(c) {
    let admin = c.admin().await;
    let (s, v) = c
        .nova(
            Method::POST,
            "/os-keypairs",
            &admin,
            "2.2",
            Some(json!({"keypair": {"name": "cert", "type": "x509"}})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let kp = &v["keypair"];
    assert_eq!(kp["type"], "x509");
    assert!(kp["private_key"].as_str().unwrap().contains("PRIVATE KEY"));
    assert!(kp["public_key"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    // The fingerprint is the certificate's SHA-1, colon-separated hex.
    assert_eq!(kp["fingerprint"].as_str().unwrap().split(':').count(), 20, "{kp}");
    let (s, v) = c.nova(Method::GET, "/os-keypairs/cert", &admin, "2.2", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["keypair"]["type"], "x509");
});
