//! Token payloads in Keystone's Fernet layout: a MessagePack array `[version, ...fields]`,
//! encrypted with Fernet, base64url with the `=` padding stripped.
//!
//! Versions (as Keystone numbers them): 0 unscoped, 1 domain-scoped, 2 project-scoped,
//! 8 system-scoped, 9 application-credential (project-scoped). Ids that are uuid hex are packed
//! as `[true, 16 bytes]`, others as `[false, "string"]`; audit ids as their 16 raw bytes;
//! `expires_at` as a float of seconds; auth methods as a bitmask in Keystone's method order.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rmpv::Value;

/// Auth method names in Keystone's default order; bit `1 << i` in the payload's method mask.
pub const METHODS: [&str; 6] = [
    "external",
    "password",
    "token",
    "oauth1",
    "mapped",
    "application_credential",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    Unscoped,
    Domain(String),
    Project(String),
    System,
    ApplicationCredential {
        project_id: String,
        application_credential_id: String,
    },
}

/// What a token carries. `issued_at` is not in the payload: it is the Fernet timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub user_id: String,
    pub methods: Vec<String>,
    pub scope: Scope,
    /// Seconds since the epoch (fractional).
    pub expires_at: f64,
    pub audit_ids: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed token payload: {0}")]
pub struct PayloadError(&'static str);

fn pack_id(id: &str) -> Value {
    if id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        if let Ok(u) = uuid::Uuid::parse_str(id) {
            return Value::Array(vec![
                Value::Boolean(true),
                Value::Binary(u.as_bytes().to_vec()),
            ]);
        }
    }
    Value::Array(vec![Value::Boolean(false), Value::String(id.into())])
}

fn unpack_id(v: &Value) -> Result<String, PayloadError> {
    let arr = v.as_array().ok_or(PayloadError("id is not a pair"))?;
    match (arr.first(), arr.get(1)) {
        (Some(Value::Boolean(true)), Some(Value::Binary(b))) => uuid::Uuid::from_slice(b)
            .map(|u| u.simple().to_string())
            .map_err(|_| PayloadError("bad uuid bytes")),
        (Some(Value::Boolean(false)), Some(Value::String(s))) => s
            .as_str()
            .map(str::to_string)
            .ok_or(PayloadError("id is not utf-8")),
        _ => Err(PayloadError("bad id pair")),
    }
}

fn pack_methods(methods: &[String]) -> Value {
    let mut mask: u64 = 0;
    for m in methods {
        if let Some(i) = METHODS.iter().position(|k| k == m) {
            mask |= 1 << i;
        }
    }
    Value::from(mask)
}

fn unpack_methods(v: &Value) -> Result<Vec<String>, PayloadError> {
    let mask = v
        .as_u64()
        .ok_or(PayloadError("methods is not an integer"))?;
    Ok(METHODS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, m)| m.to_string())
        .collect())
}

fn pack_audit_ids(ids: &[String]) -> Value {
    Value::Array(
        ids.iter()
            .map(|a| match URL_SAFE_NO_PAD.decode(a.trim_end_matches('=')) {
                Ok(b) => Value::Binary(b),
                Err(_) => Value::String(a.as_str().into()),
            })
            .collect(),
    )
}

fn unpack_audit_ids(v: &Value) -> Result<Vec<String>, PayloadError> {
    let arr = v
        .as_array()
        .ok_or(PayloadError("audit ids is not a list"))?;
    arr.iter()
        .map(|a| match a {
            Value::Binary(b) => Ok(URL_SAFE_NO_PAD.encode(b)),
            Value::String(s) => s
                .as_str()
                .map(str::to_string)
                .ok_or(PayloadError("audit id is not utf-8")),
            _ => Err(PayloadError("bad audit id")),
        })
        .collect()
}

/// A new random audit id (16 random bytes, base64url without padding: 22 characters).
pub fn new_audit_id() -> String {
    let b: [u8; 16] = rand::random();
    URL_SAFE_NO_PAD.encode(b)
}

impl Payload {
    /// MessagePack bytes of this payload.
    pub fn to_msgpack(&self) -> Vec<u8> {
        let user = pack_id(&self.user_id);
        let methods = pack_methods(&self.methods);
        let expires = Value::F64(self.expires_at);
        let audit = pack_audit_ids(&self.audit_ids);
        let fields = match &self.scope {
            Scope::Unscoped => vec![Value::from(0), user, methods, expires, audit],
            Scope::Domain(d) => vec![Value::from(1), user, methods, pack_id(d), expires, audit],
            Scope::Project(p) => vec![Value::from(2), user, methods, pack_id(p), expires, audit],
            Scope::System => vec![
                Value::from(8),
                user,
                methods,
                Value::String("all".into()),
                expires,
                audit,
            ],
            Scope::ApplicationCredential {
                project_id,
                application_credential_id,
            } => vec![
                Value::from(9),
                user,
                methods,
                pack_id(project_id),
                expires,
                audit,
                pack_id(application_credential_id),
            ],
        };
        let mut out = Vec::with_capacity(96);
        // Writing into a Vec cannot fail.
        let _ = rmpv::encode::write_value(&mut out, &Value::Array(fields));
        out
    }

    pub fn from_msgpack(bytes: &[u8]) -> Result<Payload, PayloadError> {
        let v =
            rmpv::decode::read_value(&mut &bytes[..]).map_err(|_| PayloadError("not msgpack"))?;
        let a = v.as_array().ok_or(PayloadError("not an array"))?;
        let get = |i: usize| a.get(i).ok_or(PayloadError("too few fields"));
        let version = get(0)?.as_u64().ok_or(PayloadError("bad version"))?;
        let user_id = unpack_id(get(1)?)?;
        let methods = unpack_methods(get(2)?)?;
        let f64_at = |i: usize| -> Result<f64, PayloadError> {
            let v = get(i)?;
            v.as_f64()
                .or_else(|| v.as_i64().map(|x| x as f64))
                .ok_or(PayloadError("bad expiry"))
        };
        let (scope, expires_at, audit_ids) = match version {
            0 => (Scope::Unscoped, f64_at(3)?, unpack_audit_ids(get(4)?)?),
            1 => (
                Scope::Domain(unpack_id(get(3)?)?),
                f64_at(4)?,
                unpack_audit_ids(get(5)?)?,
            ),
            2 => (
                Scope::Project(unpack_id(get(3)?)?),
                f64_at(4)?,
                unpack_audit_ids(get(5)?)?,
            ),
            8 => (Scope::System, f64_at(4)?, unpack_audit_ids(get(5)?)?),
            9 => (
                Scope::ApplicationCredential {
                    project_id: unpack_id(get(3)?)?,
                    application_credential_id: unpack_id(get(6)?)?,
                },
                f64_at(4)?,
                unpack_audit_ids(get(5)?)?,
            ),
            _ => return Err(PayloadError("unsupported payload version")),
        };
        Ok(Payload {
            user_id,
            methods,
            scope,
            expires_at,
            audit_ids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(scope: Scope) -> Payload {
        Payload {
            user_id: "0f2d8a3c9b1e4f5a8c7d6e5f4a3b2c1d".into(),
            methods: vec!["password".into(), "token".into()],
            scope,
            expires_at: 1_800_000_000.25,
            audit_ids: vec![new_audit_id(), new_audit_id()],
        }
    }

    #[test]
    fn every_scope_round_trips() {
        for scope in [
            Scope::Unscoped,
            Scope::Domain("default".into()),
            Scope::Project("aa2d8a3c9b1e4f5a8c7d6e5f4a3b2c1d".into()),
            Scope::System,
            Scope::ApplicationCredential {
                project_id: "bb2d8a3c9b1e4f5a8c7d6e5f4a3b2c1d".into(),
                application_credential_id: "cc2d8a3c9b1e4f5a8c7d6e5f4a3b2c1d".into(),
            },
        ] {
            let p = sample(scope);
            assert_eq!(Payload::from_msgpack(&p.to_msgpack()).unwrap(), p);
        }
    }

    #[test]
    fn keystone_layout_for_project_scope() {
        let p = sample(Scope::Project("aa2d8a3c9b1e4f5a8c7d6e5f4a3b2c1d".into()));
        let v = rmpv::decode::read_value(&mut &p.to_msgpack()[..]).unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(a[0].as_u64(), Some(2));
        // uuid ids packed as (True, 16 bytes), methods password|token = 2|4.
        assert_eq!(a[1].as_array().unwrap()[0], Value::Boolean(true));
        assert_eq!(a[1].as_array().unwrap()[1].as_slice().unwrap().len(), 16);
        assert_eq!(a[2].as_u64(), Some(6));
        assert_eq!(a[5].as_array().unwrap()[0].as_slice().unwrap().len(), 16);
        assert_eq!(new_audit_id().len(), 22);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Payload::from_msgpack(b"\x93\x63\x01\x02").is_err());
        assert!(Payload::from_msgpack(b"").is_err());
    }
}
