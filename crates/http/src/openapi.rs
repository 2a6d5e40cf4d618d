//! `GET /openapi.json`: the hand-written OpenAPI 3.1 description of every route. It is compiled
//! in, and a test keeps it in step with the routes `build_router` declares. It is meant to be
//! exact (schemas as strict as the server, every error status listed): the e2e test
//! `openapi_conformance` and `.ci/schemathesis.sh` check the server's answers against it.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const DOCUMENT: &str = include_str!("../openapi.json");

pub(crate) async fn document() -> Response {
    let mut response = DOCUMENT.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::DOCUMENT;

    /// The methods the proxy's `any(...)` route is documented with.
    const PROXY_METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
    const HTTP_METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    /// `(method, path)` pairs declared in `build_router`, read from the source of server.rs: each
    /// `.route("path", get(..).post(..))`, prefixed by the `.nest("/prefix", router)` its router is
    /// nested under, with axum's `{*path}` written as OpenAPI's `{path}`.
    fn declared_routes(source: &str) -> BTreeSet<(String, String)> {
        let start = source.find("pub fn build_router").expect("server.rs defines build_router");
        let body = &source[start..];
        let body = &body[..body.find("\n}\n").expect("build_router ends")];

        let mut prefixes = std::collections::HashMap::new();
        for (at, _) in body.match_indices(".nest(") {
            let args = call_arguments(&body[at + ".nest".len()..]);
            let (prefix, router) = args.split_once(',').expect(".nest(prefix, router)");
            prefixes.insert(router.trim().to_owned(), string_literal(prefix));
        }

        let mut routes = BTreeSet::new();
        for (at, _) in body.match_indices(".route(") {
            let args = call_arguments(&body[at + ".route".len()..]);
            let (path, handlers) = args.split_once(',').expect(".route(path, handlers)");
            let router = enclosing_let(&body[..at]);
            let prefix = router.and_then(|name| prefixes.get(name)).map(String::as_str).unwrap_or("");
            let path = format!("{prefix}{}", string_literal(path)).replace("{*", "{");
            for method in method_calls(handlers) {
                let methods: Vec<&str> = if method == "any" { PROXY_METHODS.to_vec() } else { vec![method.as_str()] };
                for method in methods {
                    routes.insert((method.to_owned(), path.clone()));
                }
            }
        }
        routes
    }

    /// The text between the parenthesis `text` starts with and its matching close.
    fn call_arguments(text: &str) -> &str {
        assert!(text.starts_with('('), "expected a call: {text:.40}");
        let mut depth = 0;
        for (i, c) in text.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return &text[1..i];
                    }
                }
                _ => {}
            }
        }
        panic!("unbalanced parentheses: {text:.40}");
    }

    fn string_literal(text: &str) -> String {
        let text = text.trim();
        assert!(text.starts_with('"') && text.ends_with('"'), "expected a string literal, got {text}");
        text[1..text.len() - 1].to_owned()
    }

    /// The router variable a `.route` belongs to: the last `let name = ` before it, unless that
    /// statement already ended (then it is the unnamed top-level router).
    fn enclosing_let(before: &str) -> Option<&str> {
        let at = before.rfind("let ")?;
        let statement = &before[at + "let ".len()..];
        if statement.contains(';') {
            return None;
        }
        statement.split_once('=').map(|(name, _)| name.trim())
    }

    /// `get(a::b).post(c::d)` → `["get", "post"]`.
    fn method_calls(handlers: &str) -> Vec<String> {
        let mut methods = Vec::new();
        let mut rest = handlers.trim().trim_end_matches(',').trim_end();
        while !rest.is_empty() {
            let name_end = rest.find('(').unwrap_or_else(|| panic!("expected a method call in {handlers}"));
            methods.push(rest[..name_end].trim().trim_start_matches('.').to_owned());
            let args = call_arguments(&rest[name_end..]);
            rest = rest[name_end + args.len() + 2..].trim();
        }
        methods
    }

    fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
        let paths = document["paths"].as_object().expect("the document has paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                let item = item.as_object().expect("a path item is an object");
                item.keys().filter(|k| HTTP_METHODS.contains(&k.as_str())).map(move |m| (m.clone(), path.clone()))
            })
            .collect()
    }

    /// Every operation an API key can call names, in `x-required-scope` and in its `security`,
    /// exactly the scope the route table enforces; the table has no route the document lacks.
    #[test]
    fn every_app_key_operation_shows_the_scope_the_route_table_enforces() {
        let document: Value = serde_json::from_str(DOCUMENT).unwrap();
        let mut covered = BTreeSet::new();
        for (method, path) in documented_operations(&document) {
            let operation = &document["paths"][&path][&method];
            let security = operation["security"].as_array().expect("security is listed");
            let Some(scopes) = security.iter().find_map(|s| s.get("appApiKey")) else { continue };
            let template = path.replace("{path}", "{*path}");
            let method = method.to_uppercase().parse::<axum::http::Method>().unwrap();
            let required = crate::scopes::required(&method, &template)
                .unwrap_or_else(|| panic!("{method} {path} takes an API key but the scope table has no entry"));
            assert_eq!(operation["x-required-scope"], required.to_string(), "{method} {path}");
            let listed: Vec<String> = serde_json::from_value(scopes.clone()).unwrap();
            match required {
                tokenvault_service::Required::AnyKey => assert!(listed.is_empty(), "{method} {path}"),
                required => assert_eq!(listed, vec![required.to_string()], "{method} {path}"),
            }
            covered.insert(template);
        }
        for (_, path, _) in crate::scopes::ROUTE_SCOPES {
            assert!(covered.contains(*path), "the scope table names {path}, which the document does not describe");
        }
    }

    #[test]
    fn the_document_is_openapi_3_1() {
        let document: Value = serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON");
        let version = document["openapi"].as_str().expect("an `openapi` version field");
        assert!(version.starts_with("3.1."), "expected OpenAPI 3.1, got {version}");
        assert!(document["info"]["title"].is_string() && document["info"]["version"].is_string());
        for scheme in ["appApiKey", "adminToken"] {
            assert_eq!(document["components"]["securitySchemes"][scheme]["scheme"], "bearer", "{scheme}");
        }
    }

    #[test]
    fn the_document_describes_exactly_the_routes_of_build_router() {
        let document: Value = serde_json::from_str(DOCUMENT).unwrap();
        let declared = declared_routes(include_str!("server.rs"));
        assert!(declared.len() > 40, "the route parser found too few routes: {declared:?}");
        let documented = documented_operations(&document);
        let missing: Vec<_> = declared.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&declared).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "openapi.json is out of step with server.rs\n  routes missing from the document: {missing:?}\n  \
             documented operations with no route: {extra:?}"
        );
    }

    #[test]
    fn every_reference_resolves_and_every_operation_is_described() {
        let document: Value = serde_json::from_str(DOCUMENT).unwrap();
        let mut references = Vec::new();
        collect_references(&document, &mut references);
        for reference in references {
            let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("external reference {reference}"));
            assert!(document.pointer(pointer).is_some(), "unresolved reference {reference}");
        }
        for (method, path) in documented_operations(&document) {
            let operation = &document["paths"][&path][&method];
            assert!(operation["summary"].is_string(), "{method} {path} has no summary");
            assert!(operation["security"].is_array(), "{method} {path} does not say its security");
            assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}");
            let templated: BTreeSet<&str> =
                path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
            let declared: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert_eq!(templated, declared, "path parameters of {method} {path}");
        }
    }

    #[test]
    fn the_route_parser_reads_nesting_and_any() {
        let source = r#"
pub fn build_router() -> Router {
    let inner = Router::new()
        .route("/things/{id}", get(a::get).delete(a::delete))
        .route("/x", post(b::x));
    Router::new()
        .route("/p/{*rest}", any(c::p))
        .nest("/v9", inner)
}
"#;
        let routes: Vec<String> = declared_routes(source).into_iter().map(|(m, p)| format!("{m} {p}")).collect();
        assert_eq!(
            routes,
            [
                "delete /p/{rest}",
                "delete /v9/things/{id}",
                "get /p/{rest}",
                "get /v9/things/{id}",
                "patch /p/{rest}",
                "post /p/{rest}",
                "post /v9/x",
                "put /p/{rest}",
            ]
        );
    }

    fn collect_references<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    out.push(reference);
                }
                map.values().for_each(|v| collect_references(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
            _ => {}
        }
    }
}
