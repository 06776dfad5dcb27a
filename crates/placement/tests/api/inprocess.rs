//! The in-process API of the compute scheduler and agents, and concurrent claims.

use std::collections::BTreeMap;

use ferrostack_placement::{Allocation, ComputeProvider, Inventory, PlacementError};
use http::Method;
use serde_json::json;

use crate::common::uuid;

fn node(uuid: &str, vcpus: i64, traits: &[&str]) -> ComputeProvider {
    ComputeProvider {
        uuid: uuid.to_string(),
        name: format!("node-{uuid}"),
        inventories: BTreeMap::from([
            ("VCPU".to_string(), Inventory::new(vcpus)),
            (
                "MEMORY_MB".to_string(),
                Inventory {
                    reserved: 512,
                    ..Inventory::new(8192)
                },
            ),
        ]),
        traits: traits.iter().map(|t| t.to_string()).collect(),
    }
}

fn vcpus(rp: &str, n: i64) -> Vec<Allocation> {
    vec![Allocation {
        provider_uuid: rp.to_string(),
        resources: BTreeMap::from([("VCPU".to_string(), n)]),
    }]
}

api_test!(async fn sync_is_idempotent_and_feeds_provider_states(c) {
    let p = c.placement.clone();
    let id = uuid();
    let mut n = node(&id, 8, &["COMPUTE_STATUS_DISABLED", "CUSTOM_RACK_A"]);
    p.sync_compute_provider(&n).await.unwrap();
    let g1 = c.get(&format!("/resource_providers/{id}"), "1.0").await["generation"].clone();
    p.sync_compute_provider(&n).await.unwrap();
    let g2 = c.get(&format!("/resource_providers/{id}"), "1.0").await["generation"].clone();
    assert_eq!(g1, g2, "an unchanged sync keeps the generation");
    n.inventories.insert("CUSTOM_FPGA_X".into(), Inventory::new(2));
    n.traits.retain(|t| t != "COMPUTE_STATUS_DISABLED");
    p.sync_compute_provider(&n).await.unwrap();
    let g3 = c.get(&format!("/resource_providers/{id}"), "1.0").await["generation"].as_i64().unwrap();
    assert!(g3 > g2.as_i64().unwrap());
    assert_eq!(c.get(&format!("/resource_providers/{id}/traits"), "1.6").await["traits"], json!(["CUSTOM_RACK_A"]));
    let bad = ComputeProvider { inventories: BTreeMap::from([("NOPE".into(), Inventory::new(1))]), ..n.clone() };
    assert!(matches!(p.sync_compute_provider(&bad).await, Err(PlacementError::BadRequest(_))));

    let agg = uuid();
    p.set_provider_aggregates(&id, std::slice::from_ref(&agg)).await.unwrap();
    p.claim(&uuid(), "proj", "user", &vcpus(&id, 3)).await.unwrap();
    // Children are not host states.
    let child = c.provider("child", Some(&id)).await;
    let states = p.provider_states().await.unwrap();
    assert_eq!(states.len(), 1);
    let s = &states[0];
    assert_eq!(s.uuid, id);
    assert_eq!(s.used["VCPU"], 3);
    assert_eq!(s.inventories["MEMORY_MB"].reserved, 512);
    assert_eq!(s.inventories["CUSTOM_FPGA_X"].total, 2);
    assert_eq!(s.aggregates, vec![agg]);
    assert_eq!(s.traits, vec!["CUSTOM_RACK_A".to_string()]);
    assert!(matches!(p.delete_provider(&id).await, Err(PlacementError::Conflict(_))));
    p.delete_provider(&child).await.unwrap();
    assert!(matches!(p.set_provider_aggregates(&uuid(), &[]).await, Err(PlacementError::NotFound(_))));
});

api_test!(async fn claim_move_and_remove(c) {
    let p = c.placement.clone();
    let (a, b) = (uuid(), uuid());
    p.sync_compute_provider(&node(&a, 4, &[])).await.unwrap();
    p.sync_compute_provider(&node(&b, 4, &[])).await.unwrap();
    let (instance, migration) = (uuid(), uuid());
    p.claim(&instance, "proj", "user", &vcpus(&a, 3)).await.unwrap();
    match p.claim(&uuid(), "proj", "user", &vcpus(&a, 2)).await {
        Err(PlacementError::Conflict(m)) => assert!(m.contains(&a) && m.contains("VCPU"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // A unit violation (max_unit is the total by default... here above the total) conflicts.
    assert!(matches!(p.claim(&uuid(), "proj", "user", &vcpus(&b, 5)).await, Err(PlacementError::Conflict(_))));
    assert!(matches!(p.claim(&uuid(), "proj", "user", &vcpus(&uuid(), 1)).await, Err(PlacementError::BadRequest(_))));
    assert_eq!(p.allocations_of(&instance).await.unwrap(), vcpus(&a, 3));

    // Migration: the source allocation moves to the migration, the instance claims the target.
    let mut tx = c.placement.db.begin_write().await.unwrap();
    p.move_allocations_in(&mut tx, &instance, &migration, "proj", "user").await.unwrap();
    tx.commit().await.unwrap();
    assert!(p.allocations_of(&instance).await.unwrap().is_empty());
    assert_eq!(p.allocations_of(&migration).await.unwrap(), vcpus(&a, 3));
    p.claim(&instance, "proj", "user", &vcpus(&b, 3)).await.unwrap();
    p.remove_allocations(&migration).await.unwrap();
    p.remove_allocations(&migration).await.unwrap();
    let usage = c.get(&format!("/resource_providers/{a}/usages"), "1.0").await;
    assert_eq!(usage["usages"]["VCPU"], 0);
    // The HTTP view of an in-process claim.
    let v = c.get(&format!("/allocations/{instance}"), "1.28").await;
    assert_eq!(v["allocations"][&b]["resources"]["VCPU"], 3);
    assert_eq!(v["project_id"], "proj");
    // Replacing an allocation with an empty list removes it.
    p.claim(&instance, "proj", "user", &[]).await.unwrap();
    assert_eq!(c.req(Method::DELETE, &format!("/allocations/{instance}"), "1.0", None).await.0, 404);
});

api_test!(async fn concurrent_claims_never_overcommit(c) {
    let p = c.placement.clone();
    let rp = uuid();
    p.sync_compute_provider(&node(&rp, 8, &[])).await.unwrap();
    let mut tasks = vec![];
    for _ in 0..20 {
        let p = p.clone();
        let rp = rp.clone();
        tasks.push(tokio::spawn(async move {
            p.claim(&uuid(), "proj", "user", &vcpus(&rp, 1)).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(PlacementError::Conflict(_)) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(ok, 8);
    let states = p.provider_states().await.unwrap();
    assert_eq!(states[0].used["VCPU"], 8);
});

api_test!(async fn claims_inside_a_caller_transaction(c) {
    let p = c.placement.clone();
    let (a, b, d) = (uuid(), uuid(), uuid());
    for rp in [&a, &b, &d] {
        p.sync_compute_provider(&node(rp, 4, &[])).await.unwrap();
    }
    p.claim(&uuid(), "proj", "user", &vcpus(&a, 4)).await.unwrap();
    let generation = |rp: String| {
        let c = &c;
        async move { c.get(&format!("/resource_providers/{rp}"), "1.0").await["generation"].clone() }
    };
    let gen_a = generation(a.clone()).await;

    // A conflict rolls back to the claim's savepoint: the transaction goes on, and the full
    // provider's generation bump is undone.
    let instance = uuid();
    let mut tx = p.db.begin_write().await.unwrap();
    let lost = p.claim_in(&mut tx, &instance, None, "proj", "user", &vcpus(&a, 1)).await;
    assert!(matches!(lost, Err(PlacementError::Conflict(_))), "{lost:?}");
    p.claim_in(&mut tx, &instance, None, "proj", "user", &vcpus(&b, 1)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(p.allocations_of(&instance).await.unwrap(), vcpus(&b, 1));
    assert_eq!(generation(a.clone()).await, gen_a);

    // A transaction the caller abandons takes its claim with it.
    let other = uuid();
    let mut tx = p.db.begin_write().await.unwrap();
    p.claim_in(&mut tx, &other, None, "proj", "user", &vcpus(&b, 1)).await.unwrap();
    drop(tx);
    assert!(p.allocations_of(&other).await.unwrap().is_empty());

    // A move: the holder takes the instance's allocations over, the instance claims anew.
    let migration = uuid();
    let mut tx = p.db.begin_write().await.unwrap();
    p.claim_in(&mut tx, &instance, Some(&migration), "proj", "user", &vcpus(&d, 2))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(p.allocations_of(&migration).await.unwrap(), vcpus(&b, 1));
    assert_eq!(p.allocations_of(&instance).await.unwrap(), vcpus(&d, 2));
});
