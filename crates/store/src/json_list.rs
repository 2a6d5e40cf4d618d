//! Lists stored as JSON text: portable across both databases and never queried inside.

pub(crate) fn encode(items: &[String]) -> String {
    serde_json::to_string(items).expect("a list of strings serializes")
}

pub(crate) fn decode(text: &str) -> Result<Vec<String>, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}
