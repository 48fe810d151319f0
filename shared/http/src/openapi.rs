//! The OpenAPI 3.1 document, built from what each service declares next to
//! its router: its operations, with request bodies as JSON Schemas derived
//! from the very types the handlers parse (schemars, JSON Schema 2020-12,
//! which OpenAPI 3.1 uses as is).

use schemars::{JsonSchema, Schema};
use serde_json::{json, Map, Value};

/// One operation of the API.
#[derive(Clone, Debug)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Who may call it (shown in the description).
    pub who: &'static str,
    pub body: Option<Schema>,
    /// Whether the body may be left out (it is required unless said).
    pub body_optional: bool,
    /// `(name, description)` of query parameters.
    pub query: Vec<(&'static str, &'static str)>,
    /// `(status, description)` of the answers.
    pub answers: Vec<(u16, &'static str)>,
    /// The JSON Schema of an answer's body, where one is declared (any
    /// JSON otherwise).
    pub answer_schemas: Vec<(u16, Schema)>,
    /// False for the few calls that need no token.
    pub auth: bool,
}

impl Operation {
    pub fn new(
        method: &'static str,
        path: &'static str,
        tag: &'static str,
        summary: &'static str,
    ) -> Operation {
        Operation {
            method,
            path,
            tag,
            summary,
            who: "any signed-in user",
            body: None,
            body_optional: false,
            query: Vec::new(),
            answers: Vec::new(),
            answer_schemas: Vec::new(),
            auth: true,
        }
    }

    pub fn who(mut self, who: &'static str) -> Operation {
        self.who = who;
        self
    }

    pub fn body<T: JsonSchema>(mut self) -> Operation {
        self.body = Some(schemars::schema_for!(T));
        self
    }

    /// A body that may be left out as a whole.
    pub fn optional_body<T: JsonSchema>(mut self) -> Operation {
        self.body = Some(schemars::schema_for!(T));
        self.body_optional = true;
        self
    }

    pub fn query(mut self, name: &'static str, description: &'static str) -> Operation {
        self.query.push((name, description));
        self
    }

    pub fn answer(mut self, status: u16, description: &'static str) -> Operation {
        self.answers.push((status, description));
        self
    }

    /// An answer whose JSON body has the schema of `T`.
    pub fn answer_with<T: JsonSchema>(
        mut self,
        status: u16,
        description: &'static str,
    ) -> Operation {
        self.answers.push((status, description));
        self.answer_schemas.push((status, schemars::schema_for!(T)));
        self
    }

    pub fn public(mut self) -> Operation {
        self.auth = false;
        self
    }
}

/// Path parameters: every `{name}` in the path.
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect()
}

/// Moves a schema's `$defs` into the document's shared schemas and points
/// its references there (`#/$defs/X` only resolves inside the schema).
fn hoist(schema: &Schema, shared: &mut Map<String, Value>) -> Value {
    fn rewrite(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get_mut("$ref") {
                    if let Some(name) = r.strip_prefix("#/$defs/") {
                        *r = format!("#/components/schemas/{name}");
                    }
                }
                map.values_mut().for_each(rewrite);
            }
            Value::Array(items) => items.iter_mut().for_each(rewrite),
            _ => {}
        }
    }
    let mut value = schema.clone().to_value();
    if let Some(Value::Object(defs)) = value.as_object_mut().and_then(|o| o.remove("$defs")) {
        for (name, mut def) in defs {
            rewrite(&mut def);
            shared.insert(name, def);
        }
    }
    if let Some(o) = value.as_object_mut() {
        o.remove("$schema");
    }
    rewrite(&mut value);
    value
}

/// The whole document.
pub fn document(version: &str, operations: &[Operation]) -> Value {
    let mut paths = Map::new();
    let mut shared = Map::new();
    for op in operations {
        let mut parameters = path_parameters(op.path);
        for (name, description) in &op.query {
            parameters.push(json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } }));
        }
        let mut responses = Map::new();
        for (status, description) in &op.answers {
            // What the answer really carries: nothing with 204, a calendar
            // for a feed, JSON otherwise.
            let answer = match (*status, op.path.ends_with(".ics")) {
                (204, _) => json!({ "description": description }),
                (400.., _) => {
                    json!({ "description": description, "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } })
                }
                (_, true) => {
                    json!({ "description": description, "content": { "text/calendar": { "schema": { "type": "string" } } } })
                }
                _ => {
                    let schema = op
                        .answer_schemas
                        .iter()
                        .find(|(s, _)| s == status)
                        .map(|(_, schema)| hoist(schema, &mut shared))
                        .unwrap_or_else(|| json!({}));
                    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
                }
            };
            responses.insert(status.to_string(), answer);
        }
        for (status, description) in [
            (400, "Bad input: the problem names the field"),
            (401, "No valid token"),
            (403, "The caller's role may not do this"),
            (
                404,
                "Not found, or a case the caller's agency is not a member of",
            ),
            (422, "A field breaks a rule: the problem names it"),
        ] {
            responses.entry(status.to_string()).or_insert_with(|| {
                json!({ "description": description, "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } })
            });
        }
        // Every route is behind the rate limits (per user, per address,
        // and stricter on sign-in): one shared answer, declared once.
        responses
            .entry("429".to_string())
            .or_insert_with(|| json!({ "$ref": "#/components/responses/TooManyRequests" }));
        let mut operation = json!({
            "tags": [op.tag],
            "summary": op.summary,
            "description": format!("Who: {}.", op.who),
            "operationId": format!("{}_{}", op.method, op.path.replace(['/', '{', '}', '.', '-'], "_").trim_matches('_')),
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(schema) = &op.body {
            let schema = hoist(schema, &mut shared);
            operation["requestBody"] = json!({ "required": !op.body_optional, "content": { "application/json": { "schema": schema } } });
        }
        if !op.auth {
            operation["security"] = json!([]);
        }
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    shared.insert(
        "Problem".into(),
        json!({
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": { "type": "string" },
                "title": { "type": "string" },
                "status": { "type": "integer" },
                "detail": { "type": "string" },
                "field": { "type": "string" },
                "code": { "type": "string" },
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "code", "detail"],
                        "properties": {
                            "field": { "type": "string" },
                            "code": { "type": "string" },
                            "detail": { "type": "string" },
                        },
                    },
                },
                "request_id": { "type": "string" },
            },
        }),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Verkosto",
            "version": version,
            "description": "Multi-agency case conferences for victims of human trafficking. Every read of client data is filtered by the client's consent and returns `consent_version` and `withheld`.",
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": shared,
            "responses": {
                "TooManyRequests": {
                    "description": "Too many requests from this user or address (code `rate_limited`): wait the Retry-After seconds",
                    "headers": {
                        "Retry-After": {
                            "description": "Seconds to wait before trying again",
                            "schema": { "type": "integer", "minimum": 1 },
                        },
                    },
                    "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(JsonSchema, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
    }

    #[test]
    fn operations_become_paths_with_parameters_and_bodies() {
        let doc = document(
            "1",
            &[Operation::new(
                "post",
                "/api/v1/cases/{id}/records",
                "cases",
                "Add a record",
            )
            .body::<Body>()
            .answer(201, "Recorded")],
        );
        let op = &doc["paths"]["/api/v1/cases/{id}/records"]["post"];
        assert_eq!(op["parameters"][0]["name"], "id");
        assert_eq!(
            op["requestBody"]["content"]["application/json"]["schema"]["properties"]["name"]
                ["type"],
            "string"
        );
        assert!(op["responses"]["201"].is_object() && op["responses"]["422"].is_object());
        assert_eq!(
            op["responses"]["429"]["$ref"],
            "#/components/responses/TooManyRequests"
        );
        let limited = &doc["components"]["responses"]["TooManyRequests"];
        assert!(limited["headers"]["Retry-After"].is_object(), "{limited}");
        assert_eq!(doc["openapi"], "3.1.0");
    }

    #[test]
    fn answers_promise_what_they_carry() {
        let doc = document(
            "1",
            &[
                Operation::new("delete", "/api/v1/things/{id}", "t", "Remove").answer(204, "Gone"),
                Operation::new("get", "/api/v1/calendar/{agency}.ics", "t", "Feed")
                    .answer(200, "Feed"),
            ],
        );
        let gone = &doc["paths"]["/api/v1/things/{id}"]["delete"]["responses"]["204"];
        assert!(gone.get("content").is_none(), "{gone}");
        let feed = &doc["paths"]["/api/v1/calendar/{agency}.ics"]["get"]["responses"]["200"];
        assert!(feed["content"]["text/calendar"].is_object(), "{feed}");
    }

    #[derive(JsonSchema, serde::Serialize)]
    struct Made {
        id: String,
    }

    #[test]
    fn a_declared_answer_body_and_an_optional_request_body_are_in_the_document() {
        let doc = document(
            "1",
            &[Operation::new("post", "/api/v1/things", "t", "Make")
                .optional_body::<Body>()
                .answer_with::<Made>(201, "Made")],
        );
        let op = &doc["paths"]["/api/v1/things"]["post"];
        assert_eq!(op["requestBody"]["required"], false);
        let made = &op["responses"]["201"]["content"]["application/json"]["schema"];
        assert_eq!(made["properties"]["id"]["type"], "string", "{made}");
    }
}
