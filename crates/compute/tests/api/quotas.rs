//! Quota sets, quota classes and /limits.

use http::Method;
use serde_json::json;

use crate::common::{InstanceRow, TestCloud};

api_test!(async fn defaults_show_and_versions(c) {
    let m = c.tenant("member").await;
    let path = format!("/os-quota-sets/{}", m.project_id);
    let (s, v) = c.call(Method::GET, &path, &m.token, None).await;
    assert_eq!(s, 200);
    let q = &v["quota_set"];
    assert_eq!(q["id"], m.project_id.as_str());
    for (k, n) in [("instances", 10), ("cores", 20), ("ram", 51200), ("key_pairs", 100),
                   ("metadata_items", 128), ("server_groups", 10), ("server_group_members", 10),
                   ("injected_files", 5), ("injected_file_content_bytes", 10240),
                   ("injected_file_path_bytes", 255), ("floating_ips", 10), ("fixed_ips", -1),
                   ("security_groups", 10), ("security_group_rules", 20)] {
        assert_eq!(q[k], n, "{k}");
    }
    let (_, v) = c.nova(Method::GET, &path, &m.token, "2.36", None).await;
    assert!(v["quota_set"].get("floating_ips").is_none());
    assert_eq!(v["quota_set"]["injected_files"], 5);
    let (_, v) = c.nova(Method::GET, &path, &m.token, "2.57", None).await;
    assert!(v["quota_set"].get("injected_files").is_none());
    assert_eq!(v["quota_set"].as_object().unwrap().len(), 8);

    let (s, v) = c.call(Method::GET, &format!("{path}/defaults"), &m.token, None).await;
    assert_eq!((s.as_u16(), v["quota_set"]["cores"].as_i64()), (200, Some(20)));
    // Another project's quotas are hidden from members; unknown projects are refused.
    let other = c.tenant("member").await;
    assert_eq!(c.call(Method::GET, &path, &other.token, None).await.0, 403);
    let admin = c.admin().await;
    let (s, e) = c.call(Method::GET, "/os-quota-sets/nope", &admin, None).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (400, "Project ID nope is not a valid project.".to_string()));
});

api_test!(async fn update_detail_and_revert(c) {
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    let path = format!("/os-quota-sets/{}", m.project_id);
    let body = Some(json!({"quota_set": {"instances": 3, "cores": "8", "ram": -1}}));
    assert_eq!(c.call(Method::PUT, &path, &m.token, body.clone()).await.0, 403);
    let (s, v) = c.call(Method::PUT, &path, &admin, body).await;
    assert_eq!(s, 200);
    assert!(v["quota_set"].get("id").is_none());
    assert_eq!((v["quota_set"]["instances"].as_i64(), v["quota_set"]["cores"].as_i64(), v["quota_set"]["ram"].as_i64()), (Some(3), Some(8), Some(-1)));

    // Limits below usage are refused unless forced.
    for _ in 0..2 {
        c.add_instance(&InstanceRow { name: "vm", project_id: &m.project_id, user_id: &m.user_id,
            flavor_name: "m1.tiny", vcpus: 2, ram: 512, disk: 1, launched_at: None, terminated_at: None }).await;
    }
    let (s, e) = c.call(Method::PUT, &path, &admin, Some(json!({"quota_set": {"instances": 1}}))).await;
    assert_eq!(s, 400);
    assert_eq!(TestCloud::message(&e), "Quota limit 1 for instances must be greater than or equal to already used and reserved 2.");
    assert_eq!(c.call(Method::PUT, &path, &admin, Some(json!({"quota_set": {"instances": 1, "force": true}}))).await.0, 200);

    let (s, v) = c.call(Method::GET, &format!("{path}/detail"), &m.token, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["quota_set"]["instances"], json!({"in_use": 2, "limit": 1, "reserved": 0}));
    assert_eq!(v["quota_set"]["cores"], json!({"in_use": 4, "limit": 8, "reserved": 0}));
    assert_eq!(v["quota_set"]["ram"]["in_use"], 1024);

    // The servers code reads the same limits and usage.
    let mut conn = c.db.pool.acquire().await.unwrap();
    let limits = ferrostack_compute::db::quotas::limits_for(&mut conn, &m.project_id, &m.user_id).await.unwrap();
    let used = ferrostack_compute::db::quotas::instance_usage(&mut conn, &m.project_id, None).await.unwrap();
    assert_eq!((limits.limit("instances"), used.instances, used.cores), (1, 2, 4));
    let err = limits.check("cores", used.cores, 5).unwrap_err();
    assert_eq!(err.to_string(), "Quota exceeded for cores: Requested 5, but already used 4 of 8 cores");
    assert!(limits.check("ram", 1 << 40, 1).is_ok());
    drop(conn);

    let cases = [
        json!({"quota_set": {"instances": -2}}),
        json!({"quota_set": {"instances": "x"}}),
        json!({"quota_set": {"bogus": 1}}),
        json!({"quota_set": {"instances": 2147483648i64}}),
    ];
    for body in cases {
        assert_eq!(c.call(Method::PUT, &path, &admin, Some(body.clone())).await.0, 400, "{body}");
    }
    // Network resources cannot be set from 2.36.
    assert_eq!(c.nova(Method::PUT, &path, &admin, "2.36", Some(json!({"quota_set": {"floating_ips": 1}}))).await.0, 400);

    // A user's limit may not exceed the project's.
    let upath = format!("{path}?user_id={}", m.user_id);
    assert_eq!(c.call(Method::PUT, &upath, &admin, Some(json!({"quota_set": {"cores": 9}}))).await.0, 400);
    let (s, v) = c.call(Method::PUT, &upath, &admin, Some(json!({"quota_set": {"cores": 6}}))).await;
    assert_eq!((s.as_u16(), v["quota_set"]["cores"].as_i64()), (200, Some(6)));
    assert_eq!(c.call(Method::GET, &path, &m.token, None).await.1["quota_set"]["cores"], 8);

    assert_eq!(c.call(Method::DELETE, &path, &m.token, None).await.0, 403);
    assert_eq!(c.call(Method::DELETE, &path, &admin, None).await.0, 202);
    let (_, v) = c.call(Method::GET, &path, &m.token, None).await;
    assert_eq!((v["quota_set"]["instances"].as_i64(), v["quota_set"]["cores"].as_i64()), (Some(10), Some(20)));
});

api_test!(async fn quota_classes(c) {
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    let (s, v) = c.call(Method::GET, "/os-quota-class-sets/default", &admin, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["quota_class_set"]["id"], "default");
    assert!(v["quota_class_set"].get("server_groups").is_none());
    assert_eq!(v["quota_class_set"]["floating_ips"], 10);
    let (_, v) = c.nova(Method::GET, "/os-quota-class-sets/default", &admin, "2.50", None).await;
    assert_eq!(v["quota_class_set"]["server_groups"], 10);
    assert!(v["quota_class_set"].get("floating_ips").is_none());
    assert_eq!(c.call(Method::GET, "/os-quota-class-sets/default", &m.token, None).await.0, 403);

    let body = Some(json!({"quota_class_set": {"instances": 50}}));
    assert_eq!(c.call(Method::PUT, "/os-quota-class-sets/default", &m.token, body.clone()).await.0, 403);
    let (s, v) = c.call(Method::PUT, "/os-quota-class-sets/default", &admin, body).await;
    assert_eq!((s.as_u16(), v["quota_class_set"]["instances"].as_i64()), (200, Some(50)));
    assert!(v["quota_class_set"].get("id").is_none());
    // New defaults apply to projects without their own limits.
    let path = format!("/os-quota-sets/{}", m.project_id);
    assert_eq!(c.call(Method::GET, &path, &m.token, None).await.1["quota_set"]["instances"], 50);
    assert_eq!(c.call(Method::GET, &format!("{path}/defaults"), &m.token, None).await.1["quota_set"]["instances"], 50);
    assert_eq!(c.call(Method::PUT, "/os-quota-class-sets/default", &admin, Some(json!({"quota_class_set": {"instances": "many"}}))).await.0, 400);
});

api_test!(async fn limits(c) {
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    c.add_instance(&InstanceRow { name: "vm", project_id: &m.project_id, user_id: &m.user_id,
        flavor_name: "m1.small", vcpus: 1, ram: 2048, disk: 20, launched_at: None, terminated_at: None }).await;
    c.add_instance(&InstanceRow { name: "gone", project_id: &m.project_id, user_id: &m.user_id,
        flavor_name: "m1.small", vcpus: 1, ram: 2048, disk: 20, launched_at: Some(1), terminated_at: Some(2) }).await;
    let (s, v) = c.call(Method::GET, "/limits", &m.token, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["limits"]["rate"], json!([]));
    let a = &v["limits"]["absolute"];
    assert_eq!(a["maxTotalInstances"], 10);
    assert_eq!(a["maxTotalCores"], 20);
    assert_eq!(a["maxTotalRAMSize"], 51200);
    assert_eq!(a["maxServerMeta"], 128);
    assert_eq!(a["maxImageMeta"], 128);
    assert_eq!(a["maxPersonality"], 5);
    assert_eq!(a["maxPersonalitySize"], 10240);
    assert_eq!(a["maxTotalKeypairs"], 100);
    assert_eq!(a["maxServerGroups"], 10);
    assert_eq!(a["maxServerGroupMembers"], 10);
    assert_eq!(a["maxTotalFloatingIps"], 10);
    assert_eq!(a["totalInstancesUsed"], 1);
    assert_eq!(a["totalCoresUsed"], 1);
    assert_eq!(a["totalRAMUsed"], 2048);
    assert_eq!(a["totalServerGroupsUsed"], 0);
    let (_, v) = c.nova(Method::GET, "/limits", &m.token, "2.57", None).await;
    let a = v["limits"]["absolute"].as_object().unwrap();
    for gone in ["maxTotalFloatingIps", "maxSecurityGroups", "totalSecurityGroupsUsed", "maxImageMeta", "maxPersonality"] {
        assert!(!a.contains_key(gone), "{gone}");
    }
    // tenant_id is for admins.
    let q = format!("/limits?tenant_id={}", m.project_id);
    assert_eq!(c.call(Method::GET, &q, &admin, None).await.1["limits"]["absolute"]["totalRAMUsed"], 2048);
    let other = c.tenant("member").await;
    assert_eq!(c.call(Method::GET, &q, &other.token, None).await.0, 403);
});
