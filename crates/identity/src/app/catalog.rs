//! The service catalog as tokens and `/v3/auth/catalog` show it.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::error::Result;
use crate::{db, Identity};

impl Identity {
    /// The catalog (enabled services with their enabled endpoints), rendered once per identity
    /// generation.
    pub async fn catalog(&self) -> Result<Arc<Value>> {
        let g = self.tokens.generation();
        if let Some((cg, c)) = self.catalog_cache.read().as_ref() {
            if *cg == g {
                return Ok(c.clone());
            }
        }
        let services = db::catalog::list_services(&self.db.pool).await?;
        let endpoints = db::catalog::list_endpoints(&self.db.pool).await?;
        let mut out = Vec::new();
        for s in services.iter().filter(|s| s.enabled) {
            let eps: Vec<Value> = endpoints
                .iter()
                .filter(|e| e.enabled && e.service_id == s.id)
                .map(|e| {
                    json!({
                        "id": e.id,
                        "interface": e.interface,
                        "region": e.region_id,
                        "region_id": e.region_id,
                        "url": e.url,
                    })
                })
                .collect();
            out.push(json!({"endpoints": eps, "id": s.id, "type": s.service_type, "name": s.name}));
        }
        let c = Arc::new(Value::Array(out));
        *self.catalog_cache.write() = Some((g, c.clone()));
        Ok(c)
    }
}
