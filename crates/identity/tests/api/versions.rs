//! Version discovery: `GET /identity` and `GET /identity/v3`.

use serde_json::Value;

use crate::common::V3;

fn check_v3_entry(v: &Value) {
    assert_eq!(v["id"], "v3.14", "{v}");
    assert_eq!(v["status"], "stable", "{v}");
    assert!(
        v["updated"].as_str().is_some_and(|u| u.ends_with('Z')),
        "{v}"
    );
    let links = v["links"].as_array().expect("links");
    assert!(
        links
            .iter()
            .any(|l| l["rel"] == "self" && l["href"] == format!("{V3}/")),
        "self link to the v3 root: {v}"
    );
    let media = v["media-types"].as_array().expect("media-types");
    assert_eq!(media.len(), 1, "{v}");
    assert_eq!(media[0]["base"], "application/json");
    assert_eq!(
        media[0]["type"],
        "application/vnd.openstack.identity-v3+json"
    );
}

api_test!(
    async fn root_lists_versions_with_300(c) {
        let (s, h, b) = c.req("GET", "/identity", None, None).await;
        assert_eq!(s, 300, "{b}");
        assert_eq!(h["content-type"], "application/json");
        let values = b["versions"]["values"].as_array().expect("versions.values");
        assert_eq!(values.len(), 1, "{b}");
        check_v3_entry(&values[0]);
    }
);

api_test!(
    #[ignore = "`/identity/` never reaches the identity router (axum's nest matches `/identity` only); \
                the binary trims trailing slashes in server::run, outside Cloud::router"]
    async fn root_with_trailing_slash(c) {
        let (s, _, b) = c.req("GET", "/identity/", None, None).await;
        assert_eq!(s, 300, "{b}");
        check_v3_entry(&b["versions"]["values"][0]);
    }
);

api_test!(
    async fn v3_root_describes_v3(c) {
        for path in ["/identity/v3", "/identity/v3/"] {
            let (s, _, b) = c.req("GET", path, None, None).await;
            assert_eq!(s, 200, "{path}: {b}");
            check_v3_entry(&b["version"]);
        }
    }
);

api_test!(
    async fn version_documents_need_no_token_and_ignore_a_bad_one(c) {
        let (s, _, b) = c.req("GET", "/identity/v3", Some("garbage"), None).await;
        assert_eq!(s, 200, "{b}");
        let (s, _, _) = c.req("GET", "/identity", Some("garbage"), None).await;
        assert_eq!(s, 300);
    }
);

api_test!(
    async fn unknown_paths_and_methods_are_keystone_errors(c) {
        let (s, _, b) = c.req("GET", "/identity/v3/nonsense", None, None).await;
        assert_eq!(s, 404, "{b}");
        let t = c.admin_token().await;
        let (s, _, b) = c.req("PUT", "/identity/v3/users", Some(&t), None).await;
        assert_eq!(s, 405, "{b}");
    }
);
