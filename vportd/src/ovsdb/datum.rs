//! OVSDB values as RFC 7047 §5.1 encodes them in JSON: atoms (strings,
//! integers, reals, booleans, `["uuid", U]`), sets (`["set", [...]]`, or a
//! bare atom for a set of one) and maps (`["map", [[k, v], ...]]`).

use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The atoms of a set column (a bare atom is a set of one).
pub fn set_atoms(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None => Vec::new(),
        Some(Value::Array(a)) if a.len() == 2 && a[0] == "set" => a[1]
            .as_array()
            .map(|s| s.iter().collect())
            .unwrap_or_default(),
        Some(atom) => vec![atom],
    }
}

/// The UUID of a `["uuid", U]` atom.
pub fn uuid(atom: &Value) -> Option<&str> {
    match atom {
        Value::Array(a) if a.len() == 2 && a[0] == "uuid" => a[1].as_str(),
        _ => None,
    }
}

/// The UUIDs of a set-of-references column.
pub fn uuids(v: Option<&Value>) -> Vec<String> {
    set_atoms(v)
        .into_iter()
        .filter_map(uuid)
        .map(str::to_string)
        .collect()
}

/// A string column (empty when absent or an empty set).
pub fn string(v: Option<&Value>) -> String {
    set_atoms(v)
        .first()
        .and_then(|a| a.as_str())
        .unwrap_or_default()
        .to_string()
}

/// An optional integer column (`[0, 1]` integers, or a plain integer).
pub fn integer(v: Option<&Value>) -> Option<i64> {
    set_atoms(v).first().and_then(|a| a.as_i64())
}

/// The integers of a set column (`trunks`).
pub fn integers(v: Option<&Value>) -> Vec<i64> {
    set_atoms(v)
        .into_iter()
        .filter_map(|a| a.as_i64())
        .collect()
}

/// A string-to-string map column.
pub fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(Value::Array(a)) = v {
        if a.len() == 2 && a[0] == "map" {
            for pair in a[1].as_array().into_iter().flatten() {
                if let Some([k, v]) = pair.as_array().map(|p| p.as_slice()) {
                    if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                        out.insert(k.to_string(), v.to_string());
                    }
                }
            }
        }
    }
    out
}

/// `["uuid", U]`.
pub fn uuid_atom(u: &str) -> Value {
    json!(["uuid", u])
}

/// An optional column's value: the atom, or the empty set.
pub fn optional(v: Option<Value>) -> Value {
    v.unwrap_or_else(|| json!(["set", []]))
}

/// A map column's value.
pub fn map<K: ToString, V: Into<Value>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
    let pairs: Vec<Value> = pairs
        .into_iter()
        .map(|(k, v)| json!([k.to_string(), v.into()]))
        .collect();
    json!(["map", pairs])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_encodings_of_rfc_7047() {
        let set = json!(["set", [["uuid", "a"], ["uuid", "b"]]]);
        assert_eq!(uuids(Some(&set)), ["a", "b"]);
        assert_eq!(uuids(Some(&json!(["uuid", "c"]))), ["c"]);
        assert!(uuids(Some(&json!(["set", []]))).is_empty());
        assert_eq!(string(Some(&json!("dpdk"))), "dpdk");
        assert_eq!(string(Some(&json!(["set", []]))), "");
        assert_eq!(integer(Some(&json!(["set", [7]]))), Some(7));
        assert_eq!(integer(Some(&json!(3))), Some(3));
        assert_eq!(integer(Some(&json!(["set", []]))), None);
        assert_eq!(integers(Some(&json!(["set", [10, 20]]))), [10, 20]);
        let m = string_map(Some(&json!(["map", [["dpdk-devargs", "net_null0"]]])));
        assert_eq!(m["dpdk-devargs"], "net_null0");
        assert_eq!(
            map([("rx_packets", 5)]),
            json!(["map", [["rx_packets", 5]]])
        );
    }
}
